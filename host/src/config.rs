//! The gateway's configuration: a TOML file, then environment overrides.
//!
//! Every key has a default chosen for a single-node setup except where no sensible
//! default exists (the SIWE domain, the chain). An environment variable
//! `GRID_GATEWAY__<KEY>` overrides a key, `__` separating tables:
//! `GRID_GATEWAY__LISTEN=0.0.0.0:8080`, `GRID_GATEWAY__CHAIN__RPC_URL=http://…`,
//! `GRID_GATEWAY__HTTP__CORS_ORIGINS='["https://app.example"]'`. The value is read as a TOML
//! value when it is a number, boolean or array, else as a string.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use grid_chain::ChainConfig;
use grid_cluster::ClusterConfig;
use serde::{Deserialize, Serialize};

use crate::capacity::CapacityConfig;
use crate::policy::{RuntimeLimits, WatchConfig};
use crate::process::ProcessConfig;
use crate::proxy::ProxyConfig;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "GRID_GATEWAY__";

/// Why a config cannot be used. Each message names the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has the wrong type or is unknown.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with the line).
        message: String,
    },
    /// An environment override does not fit the config.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A key has a value the gateway cannot use.
    #[error("{key}: {message}")]
    Invalid {
        /// The key, dotted (`session.same_site`).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on. Default `127.0.0.1:8080`: loopback until the
    /// operator decides to expose it (usually behind a TLS-terminating proxy).
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// Where the store (`gateway.redb`) and a generated session key live. Default `./data`.
    #[serde(default = "defaults::data_dir")]
    pub data_dir: PathBuf,
    /// `text` (default) or `json` log lines on stderr.
    #[serde(default)]
    pub log_format: LogFormat,
    /// HTTP settings.
    #[serde(default)]
    pub http: HttpConfig,
    /// Sign-in settings.
    pub auth: AuthConfig,
    /// Session cookie settings.
    #[serde(default)]
    pub session: SessionConfig,
    /// Policy directory, limits and watcher.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Capacity when no cluster is configured.
    #[serde(default)]
    pub capacity: CapacityConfig,
    /// The chain and the Market. Without it the node quotes inline specs only.
    #[serde(default)]
    pub chain: Option<ChainConfig>,
    /// When and how the node settles its orders on chain (`crate::settlement`).
    #[serde(default)]
    pub settlement: crate::settlement::SettlementConfig,
    /// The Kubernetes cluster apps are deployed into. Without it the node quotes, accepts
    /// and signs users in, but answers deploys with `cluster_not_configured`.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// How requests find apps (Process).
    #[serde(default)]
    pub process: ProcessConfig,
    /// How the reverse proxy talks to apps: timeouts, body limit, pool, trusted proxies.
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// HTTPS: a TLS listener beside `listen`, its certificates, the redirect and HSTS.
    /// Without it the node speaks plain HTTP only.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
    /// Who may use the operator API (`/_grid/v1/operator/…`), and how long their sessions
    /// last. Default: nobody.
    #[serde(default)]
    pub operators: crate::auth::operator::OperatorsConfig,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[http]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted. Default 64 KiB: the largest body the API takes is a
    /// sign-in message of a few hundred bytes.
    pub body_limit_bytes: usize,
    /// Bound on a request that waits for the chain (reading an order; not the lock's
    /// confirmation, see `accept_timeout_ms`). Default 15 s.
    pub chain_timeout_ms: u64,
    /// Bound on an accept, including waiting for the lock to be mined. Default 120 s; a
    /// client that sees `lock_pending` or a timeout accepts again and resumes.
    pub accept_timeout_ms: u64,
    /// Frontend origins allowed to call the API with credentials (`https://app.example`).
    /// Default none: only same-origin callers.
    pub cors_origins: Vec<String>,
    /// Threads serving HTTP, each its own event loop accepting from the one listening
    /// socket (nginx's `worker_processes`). Default 0: one per CPU.
    pub workers: usize,
    /// Milliseconds a client has to send a whole request head, the wait for the next
    /// request on a kept-alive connection included; then the connection is closed (a slow
    /// client holds a descriptor and buffers). Default 30 s.
    pub header_read_timeout_ms: u64,
    /// Milliseconds a write toward a client may wait without the client accepting a byte;
    /// then the connection is closed and the app's connection with it (a client that reads
    /// nothing of a large response holds a task and an app connection). Default 60 s, as
    /// nginx's `send_timeout`.
    pub send_timeout_ms: u64,
    /// Most client connections open at once, over all workers; one more is closed as soon
    /// as it is accepted (as nginx does when `worker_connections` are used up) and counted
    /// in `grid_gateway_connections_refused_total`. Each proxied request also holds a
    /// connection to its app: keep twice this under the descriptor limit (`ulimit -n`).
    /// 0: no cap. Default 10000.
    pub max_connections: usize,
    /// Milliseconds a stopping server lets requests in flight finish (a followed log or an
    /// event stream never ends by itself); then they are cut. Default 30 s.
    pub shutdown_grace_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit_bytes: 64 << 10,
            chain_timeout_ms: 15_000,
            accept_timeout_ms: 120_000,
            cors_origins: Vec::new(),
            workers: 0,
            header_read_timeout_ms: 30_000,
            send_timeout_ms: 60_000,
            max_connections: 10_000,
            shutdown_grace_ms: 30_000,
        }
    }
}

impl HttpConfig {
    /// Most serving threads a config may ask for.
    pub const MAX_WORKERS: usize = 256;

    /// The number of serving threads: `workers`, or one per CPU when 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The bound on a chain read.
    pub fn chain_timeout(&self) -> Duration {
        Duration::from_millis(self.chain_timeout_ms.max(1))
    }
    /// The bound on an accept.
    pub fn accept_timeout(&self) -> Duration {
        Duration::from_millis(self.accept_timeout_ms.max(1))
    }
    /// The bound on reading a request head.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms.max(1))
    }
    /// The bound on a write toward a client that accepts nothing.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms.max(1))
    }
    /// The bound on the drain at shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

/// `[auth]`: Sign-In with Ethereum.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The domain (RFC 3986 authority, `host[:port]`) sign-in messages must name: the
    /// gateway's public host as the wallet shows it. No default: a wrong one would accept
    /// messages signed for another site.
    pub domain: String,
    /// Chain id messages must name. Default: `chain.chain_id`, else 1.
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// How long an issued nonce can be used. Default 300 s: long enough for a wallet prompt.
    #[serde(default = "defaults::nonce_ttl_secs")]
    pub nonce_ttl_secs: u64,
    /// Nonces one client address (IPv6: its /64) may get per second on average; beyond
    /// it `GET /_grid/v1/auth/nonce` answers 429 `rate_limited` with `Retry-After`.
    /// Default 2; 0 turns the limit off. The address is the TCP peer's: behind a reverse
    /// proxy every client shares the proxy's, so limit there instead and set 0.
    #[serde(default = "defaults::nonce_rate_per_sec")]
    pub nonce_rate_per_sec: f64,
    /// Nonces one client address may get at once before the rate applies. Default 20.
    #[serde(default = "defaults::nonce_burst")]
    pub nonce_burst: u32,
    /// Tolerated clock difference with the signer's device for issued-at, not-before and
    /// expiration-time. Default 60 s.
    #[serde(default = "defaults::clock_skew_secs")]
    pub clock_skew_secs: u64,
}

/// `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SameSite {
    /// Sent only same-site.
    Strict,
    /// Sent same-site and on top-level navigations (default).
    #[default]
    Lax,
    /// Sent cross-site too: needed for a frontend on another site; requires `secure`.
    None,
}

/// `[session]`: the session cookie.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Longest session, whatever the policy grants. Default 24 h.
    pub max_lifetime_secs: u64,
    /// `Secure` attribute and the `__Host-` name prefix. Default true; turn off only for
    /// plain-http local development.
    pub secure: bool,
    /// `SameSite`. Default `lax`; `none` for a frontend on another site.
    pub same_site: SameSite,
    /// The cookie key (base64 of 64 bytes). Default: `key_file`, else a key generated
    /// once into `<data_dir>/session.key` (mode 0600).
    pub key: Option<String>,
    /// File holding the key (base64 of 64 bytes).
    pub key_file: Option<PathBuf>,
    /// Previous keys (base64), still accepted for sessions made before a rotation.
    pub old_keys: Vec<String>,
    /// Files holding previous keys.
    pub old_key_files: Vec<PathBuf>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_lifetime_secs: 24 * 3600,
            secure: true,
            same_site: SameSite::Lax,
            key: None,
            key_file: None,
            old_keys: Vec::new(),
            old_key_files: Vec::new(),
        }
    }
}

/// `[policy]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Directory with `<world>.wasm` / `<world>.settings.json`, watched for changes.
    /// Default none: the built-in reference policies with their default settings.
    pub dir: Option<PathBuf>,
    /// Largest policy file (`.wasm` or settings) a reload reads, in bytes; a larger one is
    /// refused (`policy_file_too_large`) and the last good version keeps serving. Default
    /// 64 MiB.
    pub max_file_bytes: u64,
    /// Bytes of compiled components kept in `<data_dir>/policy-cache` so a restart does
    /// not compile them again (least recently used removed first); 0 keeps none on disk.
    /// Default 1 GiB.
    pub compile_cache_max_bytes: u64,
    /// Per-evaluation limits (`[policy.limits]`).
    pub limits: RuntimeLimits,
    /// Watcher timing (`[policy.watch]`).
    pub watch: WatchConfig,
    /// Worlds whose policy is a signed artefact in an OCI registry (`[policy.oci]`).
    pub oci: crate::oci::follower::OciConfig,
    /// Refuse the policy directory's files (they are unsigned, `policy_unsigned`): only
    /// signed registry artefacts and the built-in policies serve. Default false.
    pub require_signatures: bool,
    /// Opt-in recording of evaluations for `policy replay` (`[policy.recording]`).
    pub recording: crate::policy::recording::RecordingConfig,
    /// Candidates evaluated in shadow beside the live versions (`[policy.candidates]`).
    pub candidates: crate::policy::lifecycle::CandidatesConfig,
    /// How candidates are evaluated (`[policy.shadow]`).
    pub shadow: crate::policy::ShadowConfig,
    /// Replaced versions kept compiled per world for an instant rollback. Default 3.
    pub keep_previous_versions: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            dir: None,
            max_file_bytes: crate::policy::DEFAULT_MAX_FILE_BYTES,
            compile_cache_max_bytes: crate::policy::disk_cache::DEFAULT_MAX_BYTES,
            limits: RuntimeLimits::default(),
            watch: WatchConfig::default(),
            oci: Default::default(),
            require_signatures: false,
            recording: Default::default(),
            candidates: Default::default(),
            shadow: Default::default(),
            keep_previous_versions: crate::policy::DEFAULT_KEEP_PREVIOUS,
        }
    }
}

mod defaults {
    use super::*;
    pub fn listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }
    pub fn data_dir() -> PathBuf {
        PathBuf::from("data")
    }
    pub fn nonce_ttl_secs() -> u64 {
        300
    }
    pub fn clock_skew_secs() -> u64 {
        60
    }
    pub fn nonce_rate_per_sec() -> f64 {
        2.0
    }
    pub fn nonce_burst() -> u32 {
        20
    }
}

impl Config {
    /// Reads `path`, applies the `GRID_GATEWAY__*` variables of `env`, and validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path, env)
    }

    /// Parses TOML text (`path` only names it in errors), applies `env`, and validates.
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let parse = |message: String| ConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse(e.to_string()))?;
        for (var, value) in env {
            let Some(key) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            apply_env(&mut table, &var, key, &value)?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The chain id sign-in messages must name.
    pub fn auth_chain_id(&self) -> u64 {
        self.auth
            .chain_id
            .or(self.chain.as_ref().map(|c| c.chain_id))
            .unwrap_or(1)
    }

    /// Checks what serde cannot: quantities, origins, key encodings, combinations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.capacity
            .resources()
            .map_err(|m| invalid("capacity", m))?;
        if self.auth.domain.trim().is_empty() || self.auth.domain.contains(['/', ' ']) {
            return Err(invalid(
                "auth.domain",
                format!(
                    "{:?} is not a host[:port] authority (e.g. \"gateway.example.com\")",
                    self.auth.domain
                ),
            ));
        }
        if !self.auth.nonce_rate_per_sec.is_finite() || self.auth.nonce_rate_per_sec < 0.0 {
            return Err(invalid(
                "auth.nonce_rate_per_sec",
                "must be 0 (no limit) or a positive number",
            ));
        }
        if let Err((key, message)) = self.settlement.validate() {
            return Err(invalid(key, message));
        }
        if let Err((key, message)) = self.operators.validate() {
            return Err(invalid(key, message));
        }
        if self.auth.nonce_ttl_secs == 0 {
            return Err(invalid("auth.nonce_ttl_secs", "must be above 0"));
        }
        if self.session.max_lifetime_secs == 0 {
            return Err(invalid("session.max_lifetime_secs", "must be above 0"));
        }
        if self.session.same_site == SameSite::None && !self.session.secure {
            return Err(invalid(
                "session.same_site",
                "\"none\" requires session.secure = true (browsers drop such cookies otherwise)",
            ));
        }
        if self.session.key.is_some() && self.session.key_file.is_some() {
            return Err(invalid(
                "session.key",
                "set either key or key_file, not both",
            ));
        }
        if let Some(key) = &self.session.key {
            crate::auth::keys::decode_key(key).map_err(|m| invalid("session.key", m))?;
        }
        for key in &self.session.old_keys {
            crate::auth::keys::decode_key(key).map_err(|m| invalid("session.old_keys", m))?;
        }
        for origin in &self.http.cors_origins {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin
                    .trim_end_matches('/')
                    .contains(|c: char| c.is_whitespace())
                && origin
                    .split("://")
                    .nth(1)
                    .is_some_and(|h| !h.is_empty() && !h.contains('/'));
            if !ok {
                return Err(invalid(
                    "http.cors_origins",
                    format!("{origin:?} is not an origin (scheme://host[:port], no path)"),
                ));
            }
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(invalid("http.body_limit_bytes", "must be at least 1024"));
        }
        // Below this, clients on slow links could not send a head at all.
        if self.http.header_read_timeout_ms < 100 {
            return Err(invalid(
                "http.header_read_timeout_ms",
                "must be at least 100",
            ));
        }
        if self.http.workers > HttpConfig::MAX_WORKERS {
            return Err(invalid(
                "http.workers",
                format!(
                    "must be at most {} (0: one per CPU)",
                    HttpConfig::MAX_WORKERS
                ),
            ));
        }
        self.policy
            .limits
            .validate()
            .map_err(|e| invalid("policy.limits", e.to_string()))?;
        self.policy
            .recording
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        if self.policy.max_file_bytes == 0 {
            return Err(invalid(
                "policy.max_file_bytes",
                "must be at least 1 (every policy file would be refused)",
            ));
        }
        self.policy
            .oci
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        self.policy
            .shadow
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        self.policy
            .oci
            .validate_candidates(&self.policy.candidates)
            .map_err(|(key, message)| invalid(key, message))?;
        if let Some(dir) = &self.policy.dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "policy.dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        if let Some(tls) = &self.tls {
            tls.validate()
                .map_err(|(key, message)| invalid(key, message))?;
            if tls.listen == self.listen && tls.listen.port() != 0 {
                return Err(invalid("tls.listen", "must differ from listen"));
            }
            if tls.acme.as_ref().is_some_and(|a| a.on_demand_apps)
                && self.process.apps_domain.is_none()
            {
                return Err(invalid(
                    "tls.acme.on_demand_apps",
                    "needs process.apps_domain (app hosts are <order-id>.<apps_domain>)",
                ));
            }
            if !self.session.secure {
                return Err(invalid(
                    "session.secure",
                    "must be true when [tls] is on (the session cookie travels over HTTPS)",
                ));
            }
        }
        if let Some(chain) = &self.chain {
            chain
                .key_source()
                .map_err(|e| invalid("chain", e.to_string()))?;
            if let Some(id) = self.auth.chain_id
                && id != chain.chain_id
            {
                return Err(invalid(
                    "auth.chain_id",
                    format!("{id} differs from chain.chain_id = {}", chain.chain_id),
                ));
            }
        }
        Ok(())
    }

    /// What `config check` adds to [`Config::validate`]: things that need files (the node
    /// wallet loads, session key files decode). Returns notes worth showing.
    pub fn check_files(&self) -> Result<Vec<String>, ConfigError> {
        let mut notes = Vec::new();
        if let Some(chain) = &self.chain {
            let source = chain
                .key_source()
                .map_err(|e| invalid("chain", e.to_string()))?;
            let wallet = grid_chain::NodeWallet::load(&source)
                .map_err(|e| invalid("chain", e.to_string()))?;
            notes.push(format!("node wallet: {}", wallet.address()));
        } else {
            notes.push("no [chain]: only inline quotes are served".into());
        }
        for file in self
            .session
            .key_file
            .iter()
            .chain(&self.session.old_key_files)
        {
            crate::auth::keys::read_key_file(file).map_err(|m| invalid("session.key_file", m))?;
        }
        if self.session.key.is_none() && self.session.key_file.is_none() {
            notes.push(format!(
                "session key: {} (generated on first start)",
                self.data_dir
                    .join(crate::auth::keys::GENERATED_KEY_FILE)
                    .display()
            ));
        }
        if !self.session.secure {
            notes.push("session.secure = false: for plain-http development only".into());
        }
        match &self.tls {
            Some(tls) => {
                for source in tls.sources() {
                    crate::tls::files::load_pair(&source.cert_file, &source.key_file)
                        .map_err(|e| invalid("tls", e.to_string()))?;
                    let serves = if source.hosts.is_empty() {
                        "the default".to_owned()
                    } else {
                        source.hosts.join(", ")
                    };
                    notes.push(format!(
                        "tls: {} serves {serves}",
                        source.cert_file.display()
                    ));
                }
                if let Some(acme) = &tls.acme {
                    if let Some(root) = &acme.ca_root_file {
                        crate::tls::acme::read_roots(root)
                            .map_err(|e| invalid("tls.acme.ca_root_file", e.to_string()))?;
                    }
                    notes.push(format!(
                        "tls.acme: {} for {}{}; state in {}",
                        acme.directory_url,
                        if acme.hosts.is_empty() {
                            "no configured host".to_owned()
                        } else {
                            acme.hosts.join(", ")
                        },
                        if acme.on_demand_apps {
                            " and each available app's host"
                        } else {
                            ""
                        },
                        self.data_dir.join("acme").display()
                    ));
                }
            }
            None => notes.push("no [tls]: plain HTTP only".into()),
        }
        Ok(notes)
    }
}

/// Sets `key` (`A__B__C`, case-insensitive) in `table` from an environment variable.
fn apply_env(
    table: &mut toml::Table,
    var: &str,
    key: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let env_err = |message: &str| ConfigError::Env {
        var: var.to_owned(),
        message: message.to_owned(),
    };
    let parts: Vec<String> = key.split("__").map(|p| p.to_ascii_lowercase()).collect();
    if parts.iter().any(String::is_empty) {
        return Err(env_err("empty key segment"));
    }
    let (last, tables) = parts.split_last().ok_or_else(|| env_err("no key"))?;
    let mut current = table;
    for part in tables {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| env_err(&format!("{part} is not a table")))?;
    }
    // Keep strings strings when the file already has a string there; otherwise a number,
    // boolean or array is taken as such.
    let existing_is_string = matches!(current.get(last.as_str()), Some(toml::Value::String(_)));
    let parsed = if existing_is_string {
        None
    } else {
        format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| {
                matches!(
                    v,
                    toml::Value::Integer(_)
                        | toml::Value::Float(_)
                        | toml::Value::Boolean(_)
                        | toml::Value::Array(_)
                )
            })
    };
    current.insert(
        last.clone(),
        parsed.unwrap_or_else(|| toml::Value::String(value.to_owned())),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[auth]\ndomain = \"gw.example\"\n";

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml(
            text,
            Path::new("test.toml"),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let c = parse(MINIMAL, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.http.body_limit_bytes, 65536);
        assert!(c.session.secure);
        assert_eq!(c.session.same_site, SameSite::Lax);
        assert_eq!(c.auth.nonce_ttl_secs, 300);
        assert!(c.chain.is_none());
        assert_eq!(c.auth_chain_id(), 1);
    }

    #[test]
    fn env_overrides_keys_in_nested_tables() {
        let c = parse(
            MINIMAL,
            &[
                ("GRID_GATEWAY__LISTEN", "0.0.0.0:9000"),
                ("GRID_GATEWAY__SESSION__SECURE", "false"),
                (
                    "GRID_GATEWAY__HTTP__CORS_ORIGINS",
                    "[\"https://app.example\"]",
                ),
                ("GRID_GATEWAY__CAPACITY__CPU", "16"),
                ("GRID_GATEWAY__CAPACITY__MEMORY", "64Gi"),
                ("GRID_GATEWAY__AUTH__DOMAIN", "other.example"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert!(!c.session.secure);
        assert_eq!(c.http.cors_origins, vec!["https://app.example"]);
        assert_eq!(c.auth.domain, "other.example");
        assert_eq!(c.capacity.resources().unwrap().cpu_millis, 16_000);
    }

    #[test]
    fn acme_alone_is_enough_for_tls_and_its_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let tls = |acme: &str| {
            format!(
                "data_dir = \"{}\"\n{MINIMAL}[tls]\nlisten = \"127.0.0.1:0\"\n[tls.acme]\n{acme}",
                dir.path().display()
            )
        };
        let root = dir.path().join("root.pem");
        std::fs::write(&root, "not a certificate").unwrap();
        let c = parse(
            &tls(&format!(
                "directory_url = \"https://ca.test/dir\"\nhosts = [\"gw.test\"]\nca_root_file = \"{}\"\n",
                root.display()
            )),
            &[],
        )
        .expect("no certificate file is needed with [tls.acme]");
        let e = c.check_files().unwrap_err();
        assert!(e.to_string().starts_with("tls.acme.ca_root_file"), "{e}");
        let e = parse(&tls("directory_url = \"http://ca.test/dir\"\n"), &[]).unwrap_err();
        assert!(e.to_string().starts_with("tls.acme.directory_url"), "{e}");
        let e = parse(
            &tls("directory_url = \"https://ca.test/dir\"\nhosts = [\"*.apps.test\"]\n"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("tls.acme.hosts"), "{e}");
        let e = parse(
            &tls("directory_url = \"https://ca.test/dir\"\non_demand_apps = true\n"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("tls.acme.on_demand_apps"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse("[auth]\ndomain = \"x\"\nbogus = 1\n", &[]).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = parse(
            &format!("{MINIMAL}[session]\nsame_site = \"none\"\nsecure = false\n"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("session.same_site"), "{e}");
        let e = parse(
            &format!("{MINIMAL}[capacity]\ncpu = \"x\"\nmemory = \"1Gi\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("capacity.cpu"), "{e}");
        let e = parse(
            &format!("{MINIMAL}[http]\ncors_origins = [\"app.example\"]\n"),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("http.cors_origins"), "{e}");
        let e = parse(&format!("{MINIMAL}[session]\nkey = \"short\"\n"), &[]).unwrap_err();
        assert!(e.to_string().starts_with("session.key"), "{e}");
        assert!(parse("", &[]).unwrap_err().to_string().contains("auth"));
    }
}
