//! Support for the whole-node tests: the node's parts as child processes (anvil, the fake
//! cluster, gateways), apps on loopback, and a user driven with the walkthrough client's
//! own modules (its HTTP client, its Market transactions, its SIWE message).
//!
//! Every child is killed (SIGKILL) when its handle drops, so a failing test leaves nothing
//! running; a test that panics prints the last lines of each gateway's logs.

#![allow(dead_code)]

#[path = "../../examples/walkthrough/src/api.rs"]
pub mod api;
#[path = "../../examples/walkthrough/src/market.rs"]
pub mod market;
#[path = "../../examples/walkthrough/src/siwe.rs"]
pub mod siwe;

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result, bail, ensure};
use grid_chain::bindings::Market;
use serde_json::{Value, json};

pub use api::Api;
pub use market::UserMarket;

/// anvil's default accounts (public test keys, never for a real network): 1 is the user,
/// 2 and 5 are the two nodes' wallets, 3 the payee the payee policy accepts.
pub const USER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub const NODE_A_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
pub const NODE_B_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
pub const PAYEE: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

/// How long anything a test waits for (a process up, an app available, a teardown) may take.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_owned()
}

/// A binary of the workspace (`grid-gateway`, `grid-fake-cluster`), as this checkout
/// builds it.
///
/// Once per test process, `cargo build --workspace --tests --bin grid-gateway --bin
/// grid-fake-cluster` runs (through the `cargo` that runs the tests, same target directory
/// and profile), and the two binaries (and the policy components `host/build.rs` built,
/// see [`policy_component`]) are hard-linked to a
/// directory of this process's own under `CARGO_TARGET_TMPDIR`: a target directory shared
/// with other checkouts may get another checkout's binary at `<target>/debug/grid-gateway`
/// any moment. `GRID_NODE_TESTS_BIN_DIR` names a directory of ready binaries instead (no
/// build).
pub fn binary(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| match std::env::var_os("GRID_NODE_TESTS_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build_binaries(),
    })
    .join(name)
}

fn build_binaries() -> PathBuf {
    // cargo puts test executables in <target>/<profile>/deps and binaries in <target>/<profile>.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace())
        // The same package selection and dev-dependency features as `cargo test --workspace`
        // (the README's test command), so that inside it this build is a no-op. `-p
        // grid-gateway -p grid-fake-cluster` resolved other features (no dev-dependencies,
        // two packages' unification) and compiled wasmtime a second time: minutes, and
        // gigabytes of a clean CI machine's disk.
        .args([
            "build",
            "--workspace",
            "--tests",
            "--bin",
            "grid-gateway",
            "--bin",
            "grid-fake-cluster",
        ]);
    // What cargo sets for this test's own run (the package's name, paths) would otherwise
    // reach the build scripts of the binaries' dependencies and rebuild them.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_RUSTC_CURRENT_DIR",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&key.as_ref())
        {
            build.env_remove(key.as_ref());
        }
    }
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build");
    assert!(
        status.success(),
        "cargo build of grid-gateway and grid-fake-cluster failed"
    );
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // Links left by earlier runs keep old binaries on disk: remove those of ended processes.
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("grid-node-tests-bin-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let own = tmp.join(format!("grid-node-tests-bin-{}", std::process::id()));
    std::fs::create_dir_all(&own).expect("creating the binaries' directory");
    for name in ["grid-gateway", "grid-fake-cluster"] {
        let (from, to) = (profile_dir.join(name), own.join(name));
        let _ = std::fs::remove_file(&to);
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
        }
    }
    // The policy components host/build.rs built for that build (see `policy_component`).
    let guests = std::env::var_os("GRID_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| profile_dir.parent().map(|target| target.join("guests")))
        .expect("the target directory")
        .join("wasm32-wasip2/policy");
    for stem in POLICY_COMPONENTS {
        let (from, to) = (
            guests.join(format!("{stem}.wasm")),
            own.join(format!("{stem}.wasm")),
        );
        let _ = std::fs::remove_file(&to);
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
        }
    }
    own
}

/// The policy components the tests install in a gateway's policy directory, as
/// `host/build.rs` names them (`<stem>.wasm`).
const POLICY_COMPONENTS: [&str; 2] = ["pricing_linear", "pricing_surge"];

/// The bytes of a policy component `host/build.rs` built (the reference `pricing_linear`,
/// the example `pricing_surge`), from the binaries' directory: linked there with the
/// binaries, or ready in `GRID_NODE_TESTS_BIN_DIR`.
pub fn policy_component(stem: &str) -> Result<Vec<u8>> {
    let path = binary(&format!("{stem}.wasm"));
    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A child process, killed with SIGKILL when dropped; its stdout and stderr go to `log`.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(command: &mut Command, log: &Path) -> Proc {
        let out = File::create(log).expect("creating a log file");
        let err = out.try_clone().expect("cloning a log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Proc {
            child,
            log: log.to_owned(),
        }
    }

    /// kill -9, and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (what systemd and Kubernetes send), then waits up to [`PATIENCE`] for it to
    /// exit; its exit status. Still running after that is an error (the drop kills it).
    pub async fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill -TERM")?;
        ensure!(sent.success(), "kill -TERM {pid} failed");
        let child = &mut self.child;
        eventually("the process to exit after SIGTERM", move || {
            let exited = child.try_wait().ok().flatten();
            async move { exited }
        })
        .await
    }

    /// Whether it exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `check` every 100 ms until it gives `Some`, or fails after `PATIENCE`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("gave up after {PATIENCE:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// anvil with the Market and the test token deployed by `grid-gateway chain deploy-dev`.
pub struct Chain {
    _anvil: Proc,
    pub rpc: String,
    /// The `[chain]` table deploy-dev printed (rpc_url, market, chain_id).
    pub table: String,
}

impl Chain {
    pub async fn start(dir: &Path) -> Result<Chain> {
        let anvil = std::env::var_os("ANVIL_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                workspace().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
            });
        let port = free_port();
        let proc = Proc::spawn(
            Command::new(&anvil).args(["--host", "127.0.0.1", "--port", &port.to_string()]),
            &dir.join("anvil.log"),
        );
        let rpc = format!("http://127.0.0.1:{port}");
        let http = &reqwest::Client::new();
        let url = &rpc;
        eventually("anvil to answer JSON-RPC", move || async move {
            let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []});
            let reply = http.post(url).json(&body).send().await.ok()?;
            reply.status().is_success().then_some(())
        })
        .await
        .with_context(|| format!("anvil ({}) did not come up", anvil.display()))?;
        let deployed = Command::new(binary("grid-gateway"))
            .args(["chain", "deploy-dev", "--rpc", &rpc, "--timeout-secs", "30"])
            .output()
            .context("running grid-gateway chain deploy-dev")?;
        ensure!(
            deployed.status.success(),
            "deploy-dev failed: {}",
            String::from_utf8_lossy(&deployed.stderr)
        );
        let table = String::from_utf8(deployed.stdout).context("deploy-dev's output")?;
        Ok(Chain {
            _anvil: proc,
            rpc,
            table,
        })
    }
}

/// The `grid-fake-cluster` API server (Services at 127.0.0.1, so an app's Service port is
/// an app on loopback), with one node.
pub struct FakeCluster {
    _proc: Proc,
    pub url: String,
    pub kubeconfig: PathBuf,
}

impl FakeCluster {
    pub async fn start(dir: &Path) -> Result<FakeCluster> {
        let kubeconfig = dir.join("kubeconfig");
        let log = dir.join("fake-cluster.log");
        let proc = Proc::spawn(
            Command::new(binary("grid-fake-cluster"))
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["--service-ip", "127.0.0.1"])
                .args(["--node", "cpu=8,memory=32Gi,storage=500Gi,gpu=0"]),
            &log,
        );
        // It prints its URL on stdout once it serves.
        let (log_ref, kubeconfig_ref) = (&log, &kubeconfig);
        let url = eventually("the fake cluster's URL", move || async move {
            let text = std::fs::read_to_string(log_ref).ok()?;
            let url = text.lines().find(|l| l.starts_with("http://"))?.trim();
            kubeconfig_ref.is_file().then(|| url.to_owned())
        })
        .await?;
        Ok(FakeCluster {
            _proc: proc,
            url,
            kubeconfig,
        })
    }

    /// A namespace object as the API server has it; `None` when there is none.
    pub async fn namespace(&self, name: &str) -> Result<Option<Value>> {
        let reply = reqwest::get(format!("{}/api/v1/namespaces/{name}", self.url))
            .await
            .context("getting a namespace")?;
        if reply.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        ensure!(
            reply.status().is_success(),
            "GET namespace {name}: {}",
            reply.status()
        );
        Ok(Some(reply.json().await.context("the namespace")?))
    }

    /// Creates a namespace (as someone else, another tool or another gateway would).
    pub async fn create_namespace(&self, object: Value) -> Result<()> {
        let reply = reqwest::Client::new()
            .post(format!("{}/api/v1/namespaces", self.url))
            .json(&object)
            .send()
            .await
            .context("creating a namespace")?;
        ensure!(
            reply.status().is_success(),
            "POST namespace {object}: {}",
            reply.status()
        );
        Ok(())
    }

    /// Deletes a namespace behind the gateway's back (by hand, by another tool).
    pub async fn delete_namespace(&self, name: &str) -> Result<()> {
        let reply = reqwest::Client::new()
            .delete(format!("{}/api/v1/namespaces/{name}", self.url))
            .send()
            .await
            .context("deleting a namespace")?;
        ensure!(
            reply.status().is_success(),
            "DELETE namespace {name}: {}",
            reply.status()
        );
        Ok(())
    }

    /// Waits until the namespace `name` is gone from the cluster's list.
    pub async fn namespace_gone(&self, name: &str) -> Result<()> {
        let cluster = self;
        eventually(
            &format!("namespace {name} to be deleted"),
            move || async move {
                let namespaces = cluster.namespaces().await.ok()?;
                (!namespaces.iter().any(|n| n == name)).then_some(())
            },
        )
        .await
    }

    /// The names of the namespaces in the cluster.
    pub async fn namespaces(&self) -> Result<Vec<String>> {
        let list: Value = reqwest::get(format!("{}/api/v1/namespaces", self.url))
            .await
            .context("listing namespaces")?
            .json()
            .await
            .context("the namespace list")?;
        Ok(list["items"]
            .as_array()
            .context("the namespace list has no items")?
            .iter()
            .filter_map(|ns| ns["metadata"]["name"].as_str().map(str::to_owned))
            .collect())
    }
}

/// One `grid-gateway serve` with its own directory (config, key, data_dir, policies, logs)
/// and a fixed port, so a restart keeps its URL and sign-in domain.
pub struct Gateway {
    pub name: String,
    pub dir: PathBuf,
    pub url: String,
    config: PathBuf,
    /// On a cluster: a start is done once it has reconciled its apps.
    reconciles: bool,
    proc: Option<Proc>,
    logs: Vec<PathBuf>,
}

impl Gateway {
    /// Writes the gateway's files and starts it on `chain` and `cluster` with the wallet
    /// `key`; returns once it is ready and has reconciled with the cluster.
    pub async fn start(
        root: &Path,
        name: &str,
        key: &str,
        chain: &Chain,
        cluster: &FakeCluster,
    ) -> Result<Gateway> {
        let mut gateway = Gateway::new(root, name, Some((key, chain)), Some(cluster), "")?;
        gateway.launch().await?;
        Ok(gateway)
    }

    /// Writes the gateway's files under `root/name` without starting it (a test may put
    /// files in its policy directory first; [`Gateway::launch`] starts it): on `chain` with
    /// the wallet `key` and on `cluster` when given, with `extra` TOML (tables) appended to
    /// its config.
    pub fn new(
        root: &Path,
        name: &str,
        chain: Option<(&str, &Chain)>,
        cluster: Option<&FakeCluster>,
        extra: &str,
    ) -> Result<Gateway> {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("policies"))?;
        std::fs::write(
            dir.join("policies/payee.settings.json"),
            json!({"payees": [PAYEE], "max_order_age_secs": 3600, "max_clock_skew_secs": 600})
                .to_string(),
        )?;
        let port = free_port();
        let config = dir.join("gateway.toml");
        // As scripts/dev-node.sh writes it, with fast polling so a test takes seconds.
        let mut text = format!(
            "listen = \"127.0.0.1:{port}\"\n\
             data_dir = \"{dir}/data\"\n\
             [auth]\ndomain = \"127.0.0.1:{port}\"\n\
             [session]\nsecure = false\n\
             [policy]\ndir = \"{dir}/policies\"\n",
            dir = dir.display(),
        );
        if let Some((key, chain)) = chain {
            let key_file = dir.join("node.key");
            std::fs::write(&key_file, key)?;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
            text.push_str(&format!(
                "{chain}\nkey_file = \"{key_file}\"\npoll_interval_ms = 200\n",
                chain = chain.table.trim_end(),
                key_file = key_file.display(),
            ));
        }
        if let Some(cluster) = cluster {
            text.push_str(&format!(
                "[cluster]\nkubeconfig = \"{kubeconfig}\"\nentrance = \"cluster_ip\"\n\
                 ready_poll_ms = 100\nsweep_interval_secs = 1\n\
                 [cluster.fetch]\nallow_cidrs = [\"127.0.0.1/32\"]\n",
                kubeconfig = cluster.kubeconfig.display(),
            ));
        }
        text.push_str(extra);
        std::fs::write(&config, text)?;
        Ok(Gateway {
            name: name.to_owned(),
            dir,
            url: format!("http://127.0.0.1:{port}"),
            config,
            reconciles: cluster.is_some(),
            proc: None,
            logs: Vec::new(),
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts the process (again); returns once `/_grid/readyz` says ready and, on a
    /// cluster, its log says it reconciled its apps with the cluster (what a restart must
    /// not get wrong).
    pub async fn launch(&mut self) -> Result<()> {
        ensure!(self.proc.is_none(), "{} is running", self.name);
        let log = self
            .dir
            .join(format!("gateway-{}.log", self.logs.len() + 1));
        self.logs.push(log.clone());
        let mut command = Command::new(binary("grid-gateway"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info");
        self.proc = Some(Proc::spawn(&mut command, &log));
        let http = reqwest::Client::new();
        let ready = format!("{}/_grid/readyz", self.url);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.proc.as_mut().and_then(Proc::exited) {
                bail!("{} exited ({status}):\n{}", self.name, self.logs());
            }
            let ready = match http.get(&ready).send().await {
                Ok(reply) => reply.status().is_success(),
                Err(_) => false,
            };
            let reconciled = !self.reconciles
                || std::fs::read_to_string(&log)
                    .is_ok_and(|text| text.contains("reconciled apps with the cluster"));
            if ready && reconciled {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} was not ready and reconciled after {PATIENCE:?}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// kill -9: no shutdown, no chance to tidy up.
    pub fn kill9(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill9();
        }
    }

    /// kill -9, then start again on the same directory and port.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9();
        self.launch().await
    }

    /// Graceful stop: SIGTERM, and it must exit with success.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut proc) = self.proc.take() else {
            bail!("{} is not running", self.name);
        };
        let status = proc.terminate().await?;
        ensure!(
            status.success(),
            "{} exited with {status} on SIGTERM",
            self.name
        );
        Ok(())
    }

    /// The log of its latest start.
    pub fn last_log(&self) -> String {
        self.logs
            .last()
            .and_then(|log| std::fs::read_to_string(log).ok())
            .unwrap_or_default()
    }

    /// The value of the OpenMetrics sample `name` (without labels) at `/_grid/metrics`.
    pub async fn metric(&self, name: &str) -> Result<Option<String>> {
        let text = reqwest::get(format!("{}/_grid/metrics", self.url))
            .await
            .context("GET /_grid/metrics")?
            .text()
            .await
            .context("the metrics")?;
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(str::to_owned))
    }

    /// All of this gateway's logs, each start's in turn.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for log in &self.logs {
            out.push_str(&format!("--- {}\n", log.display()));
            out.push_str(&std::fs::read_to_string(log).unwrap_or_default());
        }
        out
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let logs = self.logs();
            let lines: Vec<&str> = logs.lines().collect();
            eprintln!(
                "\n=== gateway {} (last lines of its logs)\n{}",
                self.name,
                lines[lines.len().saturating_sub(60)..].join("\n")
            );
        }
    }
}

/// A real app on loopback: answers `app <name>: <method> <path>`, and serves its own
/// manifest (a Deployment and a Service on its port) at `/manifest.yaml`.
pub struct App {
    pub port: u16,
    pub manifest_url: String,
}

impl App {
    pub async fn start(name: &'static str) -> Result<App> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let path = request.uri().path().to_owned();
            let method = request.method().clone();
            async move {
                if path == "/manifest.yaml" {
                    manifest(port)
                } else {
                    format!("app {name}: {method} {path}")
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(App {
            port,
            manifest_url: format!("http://127.0.0.1:{port}/manifest.yaml"),
        })
    }
}

/// A Deployment and a Service whose port is `port`: on the fake cluster the Service's
/// address is 127.0.0.1, so the gateway's entrance is the app listening there.
fn manifest(port: u16) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: ghcr.io/example/web:1.0
          ports: [{{containerPort: {port}}}]
          resources:
            requests: {{cpu: 250m, memory: 64Mi}}
            limits: {{cpu: 250m, memory: 64Mi}}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports: [{{port: {port}, targetPort: {port}}}]
"#
    )
}

/// The user's order on one gateway: created and paid on chain, accepted by the node.
pub struct Order {
    pub id: String,
    pub wallet: UserMarket,
}

impl Order {
    /// Cancels it on chain (the user's transaction).
    pub async fn cancel(&self) -> Result<()> {
        self.wallet.cancel(self.id.parse()?).await.map(|_| ())
    }
}

/// The node's answer to `GET /_grid/v1/node`: its wallet, Market and chain.
async fn node_info(api: &Api) -> Result<(Address, Address, u64)> {
    let node = api.get("/_grid/v1/node").await?.expect(200)?;
    let wallet = node["wallet"].as_str().context("no wallet")?.parse()?;
    let market = node["market"].as_str().context("no market")?.parse()?;
    let chain_id = node["chain_id"].as_u64().context("no chain_id")?;
    Ok((wallet, market, chain_id))
}

/// The walkthrough's steps 2 to 6: quote, create the order on chain paying the quote (test
/// tokens minted first), and have `gateway` accept it.
pub async fn order_accepted(gateway: &Gateway, rpc: &str, user_key: &str) -> Result<Order> {
    let api = Api::new(&gateway.url)?;
    let signer: PrivateKeySigner = user_key.parse().context("the user key")?;
    let user = signer.address();
    let (provider, market, _) = node_info(&api).await?;
    let wallet = UserMarket::connect(rpc, market, signer)?;
    let spec = json!({"cpu": "1", "memory": "512Mi", "storage": "1Gi", "gpu": 0});
    let resources = Market::Resources {
        cpuMillis: 1_000,
        memoryBytes: 512 << 20,
        storageBytes: 1 << 30,
        gpus: 0,
        gpuModel: String::new(),
    };
    let quote = api
        .post(
            "/_grid/v1/quote",
            json!({"resources": spec, "duration_secs": 3600, "payment": "0"}),
        )
        .await?
        .expect(200)?;
    let price: U256 = quote["price"].as_str().context("no price")?.parse()?;
    wallet
        .fund_with_test_tokens(user, price * U256::from(2))
        .await?;
    let id = wallet
        .create_order(provider, PAYEE.parse()?, resources, 3600, price)
        .await?
        .to_string();
    let accepted = api
        .post(&format!("/_grid/v1/orders/{id}/accept"), json!({}))
        .await?
        .expect(200)?;
    ensure!(accepted["status"] == "active", "not active: {accepted}");
    Ok(Order { id, wallet })
}

/// Signs in to `gateway` with the wallet `user_key` (nonce, EIP-4361 message, login); the
/// returned client sends the session cookie.
pub async fn signed_in(gateway: &Gateway, user_key: &str) -> Result<Api> {
    let mut api = Api::new(&gateway.url)?;
    let signer: PrivateKeySigner = user_key.parse().context("the user key")?;
    let (_, _, chain_id) = node_info(&api).await?;
    let nonce = api.get("/_grid/v1/auth/nonce").await?.expect(200)?;
    let domain = gateway.url.trim_start_matches("http://");
    let message = siwe::message(
        domain,
        signer.address(),
        chain_id,
        nonce["nonce"].as_str().context("no nonce")?,
    )?;
    let signature = signer.sign_message_sync(message.as_bytes())?;
    let login = api
        .post(
            "/_grid/v1/auth/login",
            json!({"message": message, "signature": alloy::hex::encode_prefixed(signature.as_bytes())}),
        )
        .await?;
    let cookie = login.set_cookie.clone().context("no session cookie")?;
    login.expect(200)?;
    api.keep_session(&cookie);
    Ok(api)
}

/// Deploys `app` to `order` and waits until it is available; returns its namespace.
pub async fn deployed(api: &Api, order: &Order, app: &App) -> Result<String> {
    api.post(
        "/_grid/v1/apps",
        json!({"order_id": order.id, "manifest_url": app.manifest_url}),
    )
    .await?
    .expect(202)?;
    let app = app_status(api, &order.id, "available").await?;
    Ok(app["namespace"]
        .as_str()
        .context("the app has no namespace")?
        .to_owned())
}

/// Waits until the app of order `id` has `status` (failing at once on `failed`, unless
/// that is what is awaited); returns the app.
pub async fn app_status(api: &Api, id: &str, status: &str) -> Result<Value> {
    let path = &format!("/_grid/v1/apps/{id}");
    let found = eventually(&format!("app {id} to be {status}"), move || async move {
        let reply = api.poll(path).await.ok()?;
        if reply.json["status"] == status {
            return Some(Ok(reply.json));
        }
        if reply.json["status"] == "failed" {
            return Some(Err(anyhow::anyhow!("app {id} failed: {}", reply.json)));
        }
        None
    })
    .await;
    match found {
        Ok(outcome) => outcome,
        Err(e) => {
            let last = api.poll(path).await.map(|r| r.json).unwrap_or_default();
            Err(anyhow::anyhow!("{e}; last answer: {last}"))
        }
    }
}

/// `GET path` through the gateway, to the user's app: the status and the body's text.
pub async fn call_app(api: &Api, path: &str) -> Result<(u16, String)> {
    let reply = api.get(path).await?;
    let text = match reply.json {
        Value::String(text) => text,
        other => other.to_string(),
    };
    Ok((reply.status.as_u16(), text))
}

/// Copies a directory tree (a backup of a stopped gateway's `data_dir`).
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
