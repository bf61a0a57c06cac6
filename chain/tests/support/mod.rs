//! Test support: a real anvil on a free loopback port, the contracts deployed on it, and the
//! accounts the tests play.
//!
//! anvil comes from `node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil` (`npm ci` at the
//! workspace root); `ANVIL_BIN` overrides the path.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use grid_chain::bindings::{Market, TestToken};
use grid_chain::{ChainClient, ChainConfig, DevDeployment, NodeWallet, deploy_dev};
use redb::Database;
use std::path::Path;
use std::sync::Arc;

/// anvil's default accounts 1..=4 (0 deploys). Public test keys.
pub const USER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
pub const PROVIDER_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
pub const PAYEE_KEY: &str = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
pub const STRANGER_KEY: &str = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";

/// A running anvil, killed when dropped.
pub struct Anvil {
    child: Child,
    pub url: String,
}

impl Anvil {
    /// Starts anvil on a free loopback port and waits until it answers JSON-RPC.
    pub fn start() -> Anvil {
        let bin = anvil_bin();
        // The port is free when probed but could be taken before anvil binds it; then anvil
        // exits and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--silent"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start anvil at {}: {e} (run `npm ci` at the workspace root or set ANVIL_BIN)",
                        bin.display()
                    )
                });
            let mut anvil = Anvil {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            if anvil.wait_ready(port) {
                return anvil;
            }
        }
        panic!("anvil did not come up on any of 5 ports");
    }

    fn wait_ready(&mut self, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if answers_rpc(port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn anvil_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ANVIL_BIN") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn answers_rpc(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"result\"")
}

pub fn signer(key: &str) -> PrivateKeySigner {
    key.parse().expect("test key")
}

pub fn address(key: &str) -> Address {
    signer(key).address()
}

/// anvil with the token and the Market deployed, the user funded and the Market approved.
pub struct Chain {
    pub anvil: Anvil,
    pub deployment: DevDeployment,
}

pub const USER_FUNDS: u64 = 1_000_000;

impl Chain {
    pub async fn start() -> Chain {
        let anvil = Anvil::start();
        let deployment = deploy_dev(&anvil.url, Duration::from_secs(10))
            .await
            .expect("deploy_dev");
        let chain = Chain { anvil, deployment };
        chain.fund(USER_KEY).await;
        chain
    }

    /// Mints `USER_FUNDS` test tokens to `key`'s wallet and approves the Market to take them.
    pub async fn fund(&self, key: &str) {
        let user = address(key);
        let token = self.token(key);
        token
            .mint(user, U256::from(USER_FUNDS))
            .send()
            .await
            .expect("mint")
            .get_receipt()
            .await
            .expect("mint receipt");
        token
            .approve(self.deployment.market, U256::MAX)
            .send()
            .await
            .expect("approve")
            .get_receipt()
            .await
            .expect("approve receipt");
    }

    pub fn wallet_provider(&self, key: &str) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer(key)))
            .connect_http(self.anvil.url.parse().expect("url"))
            .erased()
    }

    pub fn market(&self, key: &str) -> Market::MarketInstance<DynProvider> {
        Market::new(self.deployment.market, self.wallet_provider(key))
    }

    pub fn token(&self, key: &str) -> TestToken::TestTokenInstance<DynProvider> {
        TestToken::new(self.deployment.token, self.wallet_provider(key))
    }

    pub async fn balance(&self, who: Address) -> U256 {
        self.token(USER_KEY)
            .balanceOf(who)
            .call()
            .await
            .expect("balanceOf")
    }

    /// Creates an order as the user for `provider`, paid to the payee; returns its id.
    pub async fn create_order(
        &self,
        provider: Address,
        resources: Market::Resources,
        duration_secs: u64,
        amount: u64,
    ) -> U256 {
        self.create_order_paying(
            provider,
            address(PAYEE_KEY),
            resources,
            duration_secs,
            amount,
        )
        .await
    }

    /// Creates an order as the user for `provider`, paid to `payee`; returns its id.
    pub async fn create_order_paying(
        &self,
        provider: Address,
        payee: Address,
        resources: Market::Resources,
        duration_secs: u64,
        amount: u64,
    ) -> U256 {
        self.create_order_by(USER_KEY, provider, payee, resources, duration_secs, amount)
            .await
    }

    /// Creates an order as `key` (funded with [`Chain::fund`]); returns its id.
    pub async fn create_order_by(
        &self,
        key: &str,
        provider: Address,
        payee: Address,
        resources: Market::Resources,
        duration_secs: u64,
        amount: u64,
    ) -> U256 {
        let receipt = self
            .market(key)
            .createOrder(
                provider,
                payee,
                resources,
                duration_secs,
                U256::from(amount),
            )
            .send()
            .await
            .expect("createOrder")
            .get_receipt()
            .await
            .expect("createOrder receipt");
        assert!(receipt.status(), "createOrder reverted");
        receipt
            .decoded_log::<Market::OrderCreated>()
            .expect("OrderCreated event")
            .id
    }

    /// Cancels order `id` as the user and waits for the receipt (reverted or not: the caller
    /// asserts what it expects of it).
    pub async fn cancel(&self, id: U256) -> TransactionReceipt {
        self.market(USER_KEY)
            .cancel(id)
            .send()
            .await
            .expect("cancel")
            .get_receipt()
            .await
            .expect("cancel receipt")
    }

    /// The wallet's count of sent transactions (its next nonce).
    pub async fn tx_count(&self, who: Address) -> u64 {
        self.wallet_provider(USER_KEY)
            .get_transaction_count(who)
            .await
            .expect("nonce")
    }

    pub async fn rpc(&self, method: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.wallet_provider(USER_KEY)
            .raw_request(method.into(), params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Mines one block with exactly this timestamp (anvil's time controls).
    pub async fn mine_at(&self, timestamp: u64) {
        self.rpc("evm_setNextBlockTimestamp", serde_json::json!([timestamp]))
            .await;
        self.rpc("evm_mine", serde_json::json!([])).await;
    }

    /// The next block will have this timestamp (for a transaction sent next).
    pub async fn next_block_at(&self, timestamp: u64) {
        self.rpc("evm_setNextBlockTimestamp", serde_json::json!([timestamp]))
            .await;
    }

    /// Moves time forward and mines, as `evm_increaseTime` + `evm_mine`.
    pub async fn advance(&self, secs: u64) {
        self.rpc("evm_increaseTime", serde_json::json!([secs]))
            .await;
        self.rpc("evm_mine", serde_json::json!([])).await;
    }

    /// Turns anvil's mining on every transaction on (its default) or off (transactions wait
    /// in the pool until [`Chain::mine`]).
    pub async fn automine(&self, on: bool) {
        self.rpc("evm_setAutomine", serde_json::json!([on])).await;
    }

    pub async fn mine(&self) {
        self.rpc("evm_mine", serde_json::json!([])).await;
    }

    pub async fn block_number(&self) -> u64 {
        self.wallet_provider(USER_KEY)
            .get_block_number()
            .await
            .expect("block number")
    }
}

pub fn resources(gpu_model: &str) -> Market::Resources {
    Market::Resources {
        cpuMillis: 2_000,
        memoryBytes: 4 << 30,
        storageBytes: 10 << 30,
        gpus: if gpu_model.is_empty() { 0 } else { 2 },
        gpuModel: gpu_model.to_owned(),
    }
}

/// The client settings for this chain: anvil mines at once, so poll fast.
pub fn config(chain: &Chain) -> ChainConfig {
    let mut cfg = ChainConfig::new(
        chain.anvil.url.clone(),
        chain.deployment.market,
        chain.deployment.chain_id,
    );
    cfg.token = Some(chain.deployment.token);
    cfg.start_block = chain.deployment.start_block;
    // anvil mines on every transaction: poll fast.
    cfg.poll_interval_ms = 50;
    cfg.retry_backoff_ms = 50;
    cfg
}

/// A client of this chain as the provider's node, its state in the database file at `path`.
pub fn client_on(chain: &Chain, path: &Path) -> ChainClient {
    client_on_db(chain, open_db(path))
}

/// A client of this chain as the provider's node, on an open database.
pub fn client_on_db(chain: &Chain, db: Arc<Database>) -> ChainClient {
    ChainClient::new(config(chain), db, node_wallet()).expect("client")
}

pub fn open_db(path: &Path) -> Arc<Database> {
    Arc::new(Database::create(path).expect("redb"))
}

/// Opens the database file again once every handle of the previous "process" is gone (the
/// signer task drops its handle when it notices its client is gone).
pub async fn reopen_db(path: &Path) -> Arc<Database> {
    for _ in 0..200 {
        match Database::create(path) {
            Ok(db) => return Arc::new(db),
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                tokio::time::sleep(Duration::from_millis(25)).await
            }
            Err(e) => panic!("redb: {e}"),
        }
    }
    panic!("the previous client still holds the database");
}

pub fn node_wallet() -> NodeWallet {
    NodeWallet::from_signer(signer(PROVIDER_KEY))
}

/// Transactions waiting in anvil's pool.
pub async fn pool_pending(chain: &Chain) -> u64 {
    let status = chain.rpc("txpool_status", serde_json::json!([])).await;
    let pending = status["pending"].as_str().expect("pending count");
    u64::from_str_radix(pending.trim_start_matches("0x"), 16).expect("hex count")
}
