//! Certificates from an ACME CA (RFC 8555), through `instant-acme` on the ring provider.
//!
//! An [`AcmeIssuer`] keeps one certificate per host name: the configured `hosts`, and with
//! `on_demand_apps` each `<order-id>.<apps_domain>` whose app is available (never a host
//! without one, so a scan of random names orders nothing). A check runs every
//! `check_interval_ms` (and when [`AcmeIssuer::wake`] is called): a host without a
//! certificate, or past two thirds of its certificate's lifetime, gets an order, at most
//! `max_orders_in_flight` at once. Challenges are answered by the gateway itself: HTTP-01
//! on the plain listener ([`AcmeIssuer::http01_answer`]), TLS-ALPN-01 on the TLS listener
//! (a challenge certificate put into the [`CertStore`]).
//!
//! The account key and every certificate live under `<data_dir>/acme/` (written to a
//! temporary file and renamed over the old one): a restart serves the stored certificates
//! and contacts no CA until one needs renewing. A failed order keeps the last good
//! certificate serving and is retried after a back-off that doubles up to
//! `retry_max_ms`; failures show in `/_grid/v1/node` and the metrics.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use super::CertStore;

/// `[tls.acme]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's directory URL (Let's Encrypt: `https://acme-v02.api.letsencrypt.org/directory`).
    pub directory_url: String,
    /// Contact email for the account (`mailto:` is added).
    #[serde(default)]
    pub contact_email: Option<String>,
    /// PEM root the CA's own HTTPS endpoint is verified with, for a private CA (pebble);
    /// default: the system's roots.
    #[serde(default)]
    pub ca_root_file: Option<PathBuf>,
    /// Host names the gateway gets certificates for (its own names).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Also get one for each app host `<order-id>.<process.apps_domain>` while its app is
    /// available. Default false.
    #[serde(default)]
    pub on_demand_apps: bool,
    /// Orders at the CA at once, at most. Default 4.
    #[serde(default = "default_max_orders")]
    pub max_orders_in_flight: usize,
    /// Challenge types, in order of preference: `tls-alpn-01`, `http-01`.
    #[serde(default = "default_challenges")]
    pub challenges: Vec<ChallengeKind>,
    /// How often hosts are checked for a missing or renewable certificate (ms). Default 10000.
    #[serde(default = "default_check")]
    pub check_interval_ms: u64,
    /// First back-off after a failed order (ms); doubles per failure. Default 60000.
    #[serde(default = "default_retry_min")]
    pub retry_min_ms: u64,
    /// Longest back-off (ms). Default 3600000.
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
}

/// A challenge type the gateway answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeKind {
    /// On the TLS listener (RFC 8737).
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// On the plain listener, `/.well-known/acme-challenge/<token>`.
    #[serde(rename = "http-01")]
    Http01,
}

fn default_max_orders() -> usize {
    4
}
fn default_challenges() -> Vec<ChallengeKind> {
    vec![ChallengeKind::TlsAlpn01, ChallengeKind::Http01]
}
fn default_check() -> u64 {
    10_000
}
fn default_retry_min() -> u64 {
    60_000
}
fn default_retry_max() -> u64 {
    3_600_000
}

impl AcmeConfig {
    /// What serde cannot check: `(key, message)` for the first problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self.directory_url.starts_with("https://") {
            return Err(("tls.acme.directory_url", "must be an https:// URL".into()));
        }
        if self.max_orders_in_flight == 0 {
            return Err(("tls.acme.max_orders_in_flight", "must be at least 1".into()));
        }
        if self.challenges.is_empty() {
            return Err(("tls.acme.challenges", "name at least one".into()));
        }
        for host in &self.hosts {
            if !is_host_name(host) {
                return Err((
                    "tls.acme.hosts",
                    format!("{host:?} is not a host name (no wildcards: DNS-01 is not supported)"),
                ));
            }
        }
        Ok(())
    }
}

fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Why an order or the stored state failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA refused or could not be reached.
    #[error("acme: {0}")]
    Acme(#[from] instant_acme::Error),
    /// Reading or writing under `data_dir/acme`.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The order ended without a certificate, or what came back is unusable.
    #[error("{0}")]
    Order(String),
    /// The issued certificate does not load.
    #[error("{0}")]
    Tls(#[from] super::TlsError),
}

/// One host's state, for `/_grid/v1/node` (its schema there, closed).
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcmeHostStatus {
    /// The host name.
    pub host: String,
    /// A certificate from the CA is in service.
    pub serving: bool,
    /// Its end of validity (unix seconds).
    pub not_after: Option<i64>,
    /// When it is renewed: two thirds through its lifetime (unix seconds).
    pub renew_at: Option<i64>,
    /// Orders failed in a row.
    pub failures: u32,
    /// The last failure (`null` after a success).
    pub last_error: Option<String>,
    /// No order before this (unix seconds) after a failure.
    pub retry_at: Option<i64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabel {
    host: String,
}

/// The ACME metrics (`grid_tls_acme_*`).
#[derive(Clone, Debug, Default)]
pub struct AcmeMetrics {
    expiry: Family<HostLabel, Gauge>,
    failures: Family<HostLabel, Counter>,
    issued: Counter,
    in_flight: Gauge,
}

impl AcmeMetrics {
    /// Registers under `grid_tls_acme_`.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("grid_tls_acme");
        sub.register(
            "certificate_expiry_timestamp_seconds",
            "End of validity of the certificate served for a host (unix seconds)",
            self.expiry.clone(),
        );
        sub.register(
            "order_failures",
            "ACME orders (issuance or renewal) that failed; the last good certificate kept serving",
            self.failures.clone(),
        );
        sub.register(
            "certificates_issued",
            "Certificates obtained from the CA",
            self.issued.clone(),
        );
        sub.register(
            "orders_in_flight",
            "ACME orders in progress",
            self.in_flight.clone(),
        );
    }
}

#[derive(Default)]
struct HostState {
    status: AcmeHostStatus,
    /// Unix seconds before which no order is placed.
    retry_at: i64,
    in_flight: bool,
}

/// Where hosts needing certificates come from besides the configured ones.
pub trait AppHosts: Send + Sync + 'static {
    /// The hosts of the apps available now.
    fn app_hosts(&self) -> Vec<String>;
}

/// Obtains and renews certificates; see the module docs.
pub struct AcmeIssuer {
    config: AcmeConfig,
    dir: PathBuf,
    store: Arc<CertStore>,
    metrics: AcmeMetrics,
    hosts: Mutex<HashMap<String, HostState>>,
    /// HTTP-01 token → key authorization.
    http01: Mutex<HashMap<String, String>>,
    account: tokio::sync::Mutex<Option<Account>>,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for AcmeIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeIssuer")
            .field("directory_url", &self.config.directory_url)
            .finish()
    }
}

fn now() -> i64 {
    crate::policy::unix_now() as i64
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AcmeError + '_ {
    move |source| AcmeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file renamed over it (mode 0600).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AcmeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// `(not_before, not_after)` of the first certificate of a PEM chain.
fn validity(cert_pem: &[u8]) -> Result<(i64, i64), AcmeError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::pem_slice_iter(cert_pem)
        .next()
        .ok_or_else(|| AcmeError::Order("no certificate in the chain".into()))?
        .map_err(|e| AcmeError::Order(format!("not a PEM chain: {e}")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| AcmeError::Order(format!("unreadable certificate: {e}")))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// Two thirds of the way from `not_before` to `not_after`.
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    not_before + (not_after - not_before) * 2 / 3
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory_url: String,
    credentials: AccountCredentials,
}

impl AcmeIssuer {
    /// The issuer for `config`, keeping its files under `data_dir/acme`, serving into
    /// `store`. Loads the certificates stored for the configured hosts (and app hosts,
    /// served only while [`AcmeIssuer::check`] finds their app available); contacts no CA.
    pub fn load(
        config: AcmeConfig,
        data_dir: &Path,
        store: Arc<CertStore>,
        metrics: AcmeMetrics,
    ) -> Result<AcmeIssuer, AcmeError> {
        let dir = data_dir.join("acme");
        std::fs::create_dir_all(dir.join("certs")).map_err(io(&dir))?;
        let issuer = AcmeIssuer {
            config,
            dir,
            store,
            metrics,
            hosts: Mutex::new(HashMap::new()),
            http01: Mutex::new(HashMap::new()),
            account: tokio::sync::Mutex::new(None),
            wake: tokio::sync::Notify::new(),
        };
        for host in issuer.config.hosts.clone() {
            issuer.load_stored(&host.to_ascii_lowercase());
        }
        Ok(issuer)
    }

    fn cert_paths(&self, host: &str) -> (PathBuf, PathBuf) {
        let certs = self.dir.join("certs");
        (
            certs.join(format!("{host}.crt")),
            certs.join(format!("{host}.key")),
        )
    }

    /// Serves `host`'s stored certificate, if there is a usable one; true when it does.
    fn load_stored(&self, host: &str) -> bool {
        let (cert, key) = self.cert_paths(host);
        if !cert.exists() {
            return false;
        }
        let loaded = super::files::load_pair(&cert, &key)
            .map_err(AcmeError::from)
            .and_then(|certified| {
                let pem = std::fs::read(&cert).map_err(io(&cert))?;
                Ok((certified, validity(&pem)?))
            });
        match loaded {
            Ok((certified, (not_before, not_after))) if not_after > now() => {
                self.serve(host, Arc::new(certified), not_before, not_after);
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%host, %error, "stored ACME certificate unusable; ordering a new one");
                false
            }
        }
    }

    fn serve(&self, host: &str, key: Arc<CertifiedKey>, not_before: i64, not_after: i64) {
        self.store.set(host, key);
        self.metrics
            .expiry
            .get_or_create(&HostLabel { host: host.into() })
            .set(not_after);
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let state = hosts.entry(host.to_owned()).or_default();
        state.status.host = host.to_owned();
        state.status.serving = true;
        state.status.not_after = Some(not_after);
        state.status.renew_at = Some(renew_at(not_before, not_after));
    }

    /// Each host's state, sorted by host.
    pub fn status(&self) -> Vec<AcmeHostStatus> {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<AcmeHostStatus> = hosts.values().map(|s| s.status.clone()).collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }

    /// The key authorization for an HTTP-01 `token`, while its challenge is pending.
    pub fn http01_answer(&self, token: &str) -> Option<String> {
        let map = self.http01.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token).cloned()
    }

    /// Runs a check now instead of at the next interval.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Checks every `check_interval_ms` (or when woken) until the task is aborted.
    pub async fn run(self: Arc<Self>, apps: Arc<dyn AppHosts>) {
        let interval = Duration::from_millis(self.config.check_interval_ms.max(50));
        loop {
            self.clone().check(apps.as_ref());
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// The hosts wanted now: the configured ones and, on demand, the available apps'.
    fn wanted(&self, apps: &dyn AppHosts) -> Vec<String> {
        let mut wanted: Vec<String> = self
            .config
            .hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if self.config.on_demand_apps {
            wanted.extend(apps.app_hosts().into_iter().map(|h| h.to_ascii_lowercase()));
        }
        let mut seen = HashSet::new();
        wanted.retain(|h| seen.insert(h.clone()));
        wanted
    }

    /// Starts an order for each wanted host that needs one (within the cap on orders in
    /// flight); app hosts whose app is gone stop being served.
    pub fn check(self: Arc<Self>, apps: &dyn AppHosts) {
        let wanted = self.wanted(apps);
        let configured: HashSet<String> = self
            .config
            .hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let mut start = Vec::new();
        {
            // A stored certificate for an app host that became available again.
            for host in &wanted {
                let known = self
                    .hosts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains_key(host);
                if !known && !configured.contains(host) {
                    self.load_stored(host);
                }
            }
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<String> = hosts
                .keys()
                .filter(|h| !wanted.contains(h))
                .cloned()
                .collect();
            for host in gone {
                if hosts.get(&host).is_some_and(|s| !s.in_flight) {
                    hosts.remove(&host);
                    self.store.remove(&host);
                    self.metrics.expiry.remove(&HostLabel { host });
                }
            }
            let mut in_flight = hosts.values().filter(|s| s.in_flight).count();
            let t = now();
            for host in wanted {
                if in_flight >= self.config.max_orders_in_flight {
                    break;
                }
                let state = hosts.entry(host.clone()).or_default();
                state.status.host.clone_from(&host);
                let due = state.status.renew_at.is_none_or(|at| t >= at);
                if state.in_flight || !due || t < state.retry_at {
                    continue;
                }
                state.in_flight = true;
                in_flight += 1;
                start.push(host);
            }
            self.metrics.in_flight.set(in_flight as i64);
        }
        for host in start {
            let issuer = self.clone();
            tokio::spawn(async move {
                let result = issuer.order(&host).await;
                issuer.finish(&host, result);
            });
        }
    }

    fn finish(&self, host: &str, result: Result<(), AcmeError>) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let state = hosts.entry(host.to_owned()).or_default();
        state.in_flight = false;
        match result {
            Ok(()) => {
                state.status.failures = 0;
                state.status.last_error = None;
                state.status.retry_at = None;
                state.retry_at = 0;
                self.metrics.issued.inc();
                tracing::info!(%host, not_after = ?state.status.not_after, "ACME certificate issued");
            }
            Err(error) => {
                state.status.failures = state.status.failures.saturating_add(1);
                let shift = (state.status.failures - 1).min(20);
                let wait_ms = self
                    .config
                    .retry_min_ms
                    .saturating_mul(1 << shift)
                    .min(self.config.retry_max_ms.max(self.config.retry_min_ms));
                state.retry_at = now() + (wait_ms / 1000).max(1) as i64;
                state.status.retry_at = Some(state.retry_at);
                state.status.last_error = Some(error.to_string());
                self.metrics
                    .failures
                    .get_or_create(&HostLabel { host: host.into() })
                    .inc();
                tracing::warn!(%host, %error, retry_in_ms = wait_ms, serving = state.status.serving,
                    "ACME order failed; the last good certificate keeps serving");
            }
        }
        let in_flight = hosts.values().filter(|s| s.in_flight).count();
        self.metrics.in_flight.set(in_flight as i64);
    }

    /// The account: read from `data_dir/acme/account.json`, or created at the CA and stored.
    async fn account(&self) -> Result<Account, AcmeError> {
        let mut slot = self.account.lock().await;
        if let Some(account) = slot.as_ref() {
            return Ok(account.clone());
        }
        let path = self.dir.join("account.json");
        let stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<StoredAccount>(&bytes)
                .ok()
                .filter(|s| s.directory_url == self.config.directory_url),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&path)(e)),
        };
        let builder = || -> Result<_, AcmeError> {
            Ok(Account::builder_with_http(Box::new(self.http_client()?)))
        };
        let account = match stored {
            Some(stored) => builder()?.from_credentials(stored.credentials).await?,
            None => {
                let contact = self
                    .config
                    .contact_email
                    .as_ref()
                    .map(|email| format!("mailto:{email}"));
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let (account, credentials) = builder()?
                    .create(
                        &NewAccount {
                            contact: &contacts,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.config.directory_url.clone(),
                        None,
                    )
                    .await?;
                let stored = StoredAccount {
                    directory_url: self.config.directory_url.clone(),
                    credentials,
                };
                let json = serde_json::to_vec_pretty(&stored)
                    .map_err(|e| AcmeError::Order(format!("account credentials: {e}")))?;
                write_atomic(&path, &json)?;
                account
            }
        };
        *slot = Some(account.clone());
        Ok(account)
    }

    /// An HTTPS client on ring, trusting `ca_root_file` or the system's roots.
    fn http_client(
        &self,
    ) -> Result<
        hyper_util::client::legacy::Client<
            hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
            instant_acme::BodyWrapper<bytes::Bytes>,
        >,
        AcmeError,
    > {
        use hyper_rustls::ConfigBuilderExt;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(super::TlsError::from)?;
        let config = match &self.config.ca_root_file {
            Some(path) => builder.with_root_certificates(read_roots(path)?),
            None => builder
                .with_native_roots()
                .map_err(|e| AcmeError::Order(format!("the system's root certificates: {e}")))?,
        }
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector),
        )
    }

    /// One order for `host`: answer its challenges, finalize, store and serve the result.
    async fn order(&self, host: &str) -> Result<(), AcmeError> {
        let account = self.account().await?;
        let identifiers = [Identifier::Dns(host.to_owned())];
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let mut tokens = Vec::new();
        let mut alpn = false;
        let answered = self
            .answer_challenges(&mut order, host, &mut tokens, &mut alpn)
            .await;
        let result = match answered {
            Ok(()) => self.complete(&mut order, host).await,
            Err(e) => Err(e),
        };
        {
            let mut map = self.http01.lock().unwrap_or_else(|p| p.into_inner());
            for token in &tokens {
                map.remove(token);
            }
        }
        if alpn {
            self.store.clear_challenge(host);
        }
        result
    }

    async fn answer_challenges(
        &self,
        order: &mut instant_acme::Order,
        host: &str,
        tokens: &mut Vec<String>,
        alpn: &mut bool,
    ) -> Result<(), AcmeError> {
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let offered: Vec<ChallengeType> =
                authz.challenges.iter().map(|c| c.r#type.clone()).collect();
            let kind = self
                .config
                .challenges
                .iter()
                .copied()
                .find(|kind| offered.contains(&challenge_type(*kind)))
                .ok_or_else(|| {
                    AcmeError::Order(format!(
                        "the CA offers none of the configured challenges for {host}"
                    ))
                })?;
            let mut challenge = authz
                .challenge(challenge_type(kind))
                .ok_or_else(|| AcmeError::Order("challenge vanished".into()))?;
            let key_auth = challenge.key_authorization();
            match kind {
                ChallengeKind::Http01 => {
                    let token = challenge.token.clone();
                    self.http01
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(token.clone(), key_auth.as_str().to_owned());
                    tokens.push(token);
                }
                ChallengeKind::TlsAlpn01 => {
                    let cert = alpn_certificate(host, key_auth.digest().as_ref())?;
                    self.store.set_challenge(host, Arc::new(cert));
                    *alpn = true;
                }
            }
            challenge.set_ready().await?;
        }
        Ok(())
    }

    async fn complete(&self, order: &mut instant_acme::Order, host: &str) -> Result<(), AcmeError> {
        let retries = RetryPolicy::new()
            .initial_delay(Duration::from_millis(100))
            .backoff(1.5)
            .timeout(Duration::from_secs(60));
        let status = order.poll_ready(&retries).await?;
        if status != OrderStatus::Ready {
            let detail = order
                .state()
                .error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| format!("{status:?}"));
            return Err(AcmeError::Order(format!(
                "order for {host} not ready: {detail}"
            )));
        }
        let key_pem = order.finalize().await?;
        let cert_pem = order.poll_certificate(&retries).await?;
        let (not_before, not_after) = validity(cert_pem.as_bytes())?;
        let (cert_path, key_path) = self.cert_paths(host);
        write_atomic(&key_path, key_pem.as_bytes())?;
        write_atomic(&cert_path, cert_pem.as_bytes())?;
        let certified = super::files::load_pair(&cert_path, &key_path)?;
        self.serve(host, Arc::new(certified), not_before, not_after);
        Ok(())
    }
}

/// The PEM certificates of `path` as roots (`ca_root_file`); at least one.
pub fn read_roots(path: &Path) -> Result<rustls::RootCertStore, AcmeError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(io(path))?;
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(&pem) {
        let der = der.map_err(|e| {
            AcmeError::Order(format!("{}: not a PEM certificate: {e}", path.display()))
        })?;
        roots
            .add(der)
            .map_err(|e| AcmeError::Order(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(AcmeError::Order(format!(
            "{}: no CERTIFICATE block",
            path.display()
        )));
    }
    Ok(roots)
}

fn challenge_type(kind: ChallengeKind) -> ChallengeType {
    match kind {
        ChallengeKind::Http01 => ChallengeType::Http01,
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
    }
}

/// The TLS-ALPN-01 certificate for `host`: self-signed, with the `acmeIdentifier`
/// extension holding the key authorization's digest (RFC 8737 §3).
fn alpn_certificate(host: &str, digest: &[u8]) -> Result<CertifiedKey, AcmeError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let rcgen_error = |e: rcgen::Error| AcmeError::Order(format!("challenge certificate: {e}"));
    let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).map_err(rcgen_error)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(rcgen_error)?;
    let cert = params.self_signed(&key).map_err(rcgen_error)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(super::TlsError::from)?;
    Ok(CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        signing,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_two_thirds_through_the_lifetime() {
        assert_eq!(renew_at(0, 90 * 86_400), 60 * 86_400);
        assert_eq!(renew_at(1000, 1030), 1020);
    }

    struct Apps(Vec<String>);

    impl AppHosts for Apps {
        fn app_hosts(&self) -> Vec<String> {
            self.0.clone()
        }
    }

    /// A burst of app hosts starts at most `max_orders_in_flight` orders; with
    /// `on_demand_apps` off, none for app hosts at all.
    #[tokio::test(flavor = "current_thread")]
    async fn orders_in_flight_are_capped_and_app_hosts_need_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let config = |on_demand_apps| AcmeConfig {
            // Nothing listens there: the orders fail once they run (they do not before
            // this test yields).
            directory_url: "https://127.0.0.1:9/dir".into(),
            contact_email: None,
            ca_root_file: None,
            hosts: vec!["gw.test".into()],
            on_demand_apps,
            max_orders_in_flight: 2,
            challenges: default_challenges(),
            check_interval_ms: 100,
            retry_min_ms: 60_000,
            retry_max_ms: 60_000,
        };
        let apps = Apps((1..=10).map(|i| format!("{i}.apps.test")).collect());

        let issuer = Arc::new(
            AcmeIssuer::load(
                config(false),
                dir.path(),
                Arc::new(CertStore::new()),
                AcmeMetrics::default(),
            )
            .unwrap(),
        );
        issuer.clone().check(&apps);
        let hosts: Vec<String> = issuer.status().into_iter().map(|s| s.host).collect();
        assert_eq!(hosts, ["gw.test"], "no app host without on_demand_apps");

        let issuer = Arc::new(
            AcmeIssuer::load(
                config(true),
                dir.path(),
                Arc::new(CertStore::new()),
                AcmeMetrics::default(),
            )
            .unwrap(),
        );
        issuer.clone().check(&apps);
        assert_eq!(issuer.metrics.in_flight.get(), 2);
        issuer.clone().check(&apps);
        assert_eq!(
            issuer.metrics.in_flight.get(),
            2,
            "a second check starts no more"
        );
        let in_flight = issuer
            .hosts
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.in_flight)
            .count();
        assert_eq!(in_flight, 2);
    }

    #[test]
    fn hosts_are_plain_names() {
        assert!(is_host_name("gw.example.net"));
        assert!(!is_host_name("*.apps.example.net"));
        assert!(!is_host_name("a..b"));
        assert!(!is_host_name("-a.b"));
    }
}
