//! Support for the gateway's integration tests: a real anvil with the Market (grid-chain's
//! harness, reused by path), a gateway on it with real policies, requests through the
//! router (`oneshot`), SIWE messages signed by the test keys.

#![allow(dead_code)]

#[path = "../../../chain/tests/support/mod.rs"]
pub mod chain;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::SignerSync;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use grid_chain::ChainConfig;
use grid_chain::bindings::Market;
use grid_gateway::config::Config;
use grid_gateway::gateway::Gateway;
use grid_gateway::orders::Hooks;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

#[allow(unused_imports)]
pub use chain::{Chain, PAYEE_KEY, PROVIDER_KEY, STRANGER_KEY, USER_KEY, address};

pub const DOMAIN: &str = "gateway.test";
pub const CHAIN_ID: u64 = 31337;
/// The price of `chain::resources("")` for 3600 s under the pricing fixture settings
/// (2 cores × 10 + 4 GiB × 4 + 10 GiB × 1 = 46 per second).
pub const PRICE_1H: u64 = 46 * 3600;

/// The policy directory: the built-in policies with the reference fixtures' settings, the
/// payee list naming the test payee.
pub fn policy_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::copy(
        workspace.join("policies/pricing-linear/fixtures/settings.json"),
        dir.join("pricing.settings.json"),
    )
    .unwrap();
    std::fs::write(
        dir.join("payee.settings.json"),
        format!(
            r#"{{"payees":["{}"],"max_order_age_secs":3600,"max_clock_skew_secs":600}}"#,
            address(PAYEE_KEY)
        ),
    )
    .unwrap();
    dir
}

/// A config for a gateway on `rpc_url`/`market` with data in `root`.
pub fn config(root: &Path, rpc_url: &str, market: Address) -> Config {
    let key_file = root.join("node.key");
    if !key_file.exists() {
        std::fs::write(&key_file, PROVIDER_KEY).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut chain = ChainConfig::new(rpc_url, market, CHAIN_ID);
    chain.key_file = Some(key_file);
    chain.poll_interval_ms = 50;
    chain.retry_attempts = 1;
    chain.rpc_timeout_ms = 2_000;
    let text = format!(
        r#"
data_dir = "{data}"
[auth]
domain = "{DOMAIN}"
[session]
secure = false
[policy]
dir = "{policies}"
[policy.watch]
debounce_ms = 20
poll_interval_ms = 200
# Unoptimised wasmtime on a loaded two-core machine can take the default 10 ms for one
# evaluation; these tests are about the node, not deadlines (those set their own).
[policy.limits]
deadline_ms = 250
load_deadline_ms = 2000
"#,
        data = root.join("data").display(),
        policies = policy_dir(root).display(),
    );
    let mut config = Config::from_toml(&text, Path::new("test.toml"), []).unwrap();
    config.chain = Some(chain);
    config
}

/// Builds a gateway; retries while the previous one's store is still closing (redb opens a
/// file once per process, and a dropped chain client's signer task lets go of it
/// asynchronously).
pub async fn gateway(config: Config, hooks: Hooks) -> Arc<Gateway> {
    for _ in 0..200 {
        match Gateway::build(config.clone(), hooks.clone()).await {
            Ok(gw) => return gw,
            Err(grid_gateway::gateway::BuildError::Store(e)) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("gateway: {e}"),
        }
    }
    panic!("the store stayed locked");
}

/// A response: status, headers, JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("<no code>")
    }

    /// Asserts an error status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "body: {}",
            self.json
        );
    }

    /// The session cookie's `name=value`, from Set-Cookie.
    pub fn session_cookie(&self) -> String {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.contains("grid_session="))
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_owned()
    }
}

/// Sends a request through the router.
pub async fn send(gw: &Arc<Gateway>, request: Request<Body>) -> Reply {
    let response = grid_gateway::http::router(gw.clone())
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        json,
    }
}

pub async fn get(gw: &Arc<Gateway>, path: &str) -> Reply {
    send(gw, Request::get(path).body(Body::empty()).unwrap()).await
}

/// GETs `path` every 25 ms until `done` holds of the answer (at most 5 s); returns the last
/// answer, so the caller's assertion shows what it was.
pub async fn get_until(gw: &Arc<Gateway>, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut reply = get(gw, path).await.json;
    for _ in 0..200 {
        if done(&reply) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        reply = get(gw, path).await.json;
    }
    reply
}

pub async fn get_with(
    gw: &Arc<Gateway>,
    path: &str,
    name: header::HeaderName,
    value: &str,
) -> Reply {
    send(
        gw,
        Request::get(path)
            .header(name, value)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

pub async fn post(gw: &Arc<Gateway>, path: &str, body: Value) -> Reply {
    send(
        gw,
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

/// Creates an order as the user; returns its id in decimal.
pub async fn create_order(
    chain: &Chain,
    provider: Address,
    payee: Address,
    resources: Market::Resources,
    duration_secs: u64,
    amount: u64,
) -> String {
    chain
        .create_order_paying(provider, payee, resources, duration_secs, amount)
        .await
        .to_string()
}

/// An order for this node, paid enough, to the accepted payee.
pub async fn good_order(chain: &Chain) -> String {
    create_order(
        chain,
        address(PROVIDER_KEY),
        address(PAYEE_KEY),
        chain::resources(""),
        3600,
        PRICE_1H,
    )
    .await
}

/// `Market.Status` values.
pub const CREATED: u8 = 1;
pub const ACTIVE: u8 = 2;

/// The Market's status of an order ([`CREATED`], [`ACTIVE`], …).
pub async fn chain_status(chain: &Chain, id: &str) -> u8 {
    let order = chain
        .market(USER_KEY)
        .getOrder(id.parse::<U256>().unwrap())
        .call()
        .await
        .expect("getOrder");
    order.status
}

pub fn now() -> u64 {
    grid_gateway::policy::unix_now()
}

pub fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The parts of a SIWE message a test varies.
pub struct Siwe {
    pub domain: String,
    /// The `URI:` line; default `https://<DOMAIN>/`.
    pub uri: String,
    pub address: Address,
    pub chain_id: u64,
    pub nonce: String,
    pub issued_at: u64,
    pub expiration: Option<u64>,
}

impl Siwe {
    pub fn new(address: Address, nonce: &str) -> Siwe {
        Siwe {
            domain: DOMAIN.into(),
            uri: format!("https://{DOMAIN}/"),
            address,
            chain_id: CHAIN_ID,
            nonce: nonce.into(),
            issued_at: now(),
            expiration: Some(now() + 600),
        }
    }

    pub fn text(&self) -> String {
        let mut text = format!(
            "{domain} wants you to sign in with your Ethereum account:\n{address}\n\nSign in to the grid node.\n\nURI: {uri}\nVersion: 1\nChain ID: {chain}\nNonce: {nonce}\nIssued At: {issued}",
            domain = self.domain,
            uri = self.uri,
            address = self.address.to_checksum(None),
            chain = self.chain_id,
            nonce = self.nonce,
            issued = rfc3339(self.issued_at),
        );
        if let Some(exp) = self.expiration {
            text.push_str(&format!("\nExpiration Time: {}", rfc3339(exp)));
        }
        text
    }
}

/// personal_sign of `text` with `key`, as 0x-hex.
pub fn sign(key: &str, text: &str) -> String {
    let signature = chain::signer(key)
        .sign_message_sync(text.as_bytes())
        .expect("sign");
    format!("0x{}", hex::encode(signature.as_bytes()))
}

/// Gets a nonce from the gateway.
pub async fn nonce(gw: &Arc<Gateway>) -> String {
    let reply = get(gw, "/_grid/v1/auth/nonce").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    reply.json["nonce"].as_str().unwrap().to_owned()
}

/// Logs in with a message signed by `key`.
pub async fn login(gw: &Arc<Gateway>, key: &str, message: &str) -> Reply {
    post(
        gw,
        "/_grid/v1/auth/login",
        serde_json::json!({"message": message, "signature": sign(key, message)}),
    )
    .await
}

/// Sends `method path` with `headers` and an optional JSON body to a server on `addr`
/// over real HTTP.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(header::HeaderName, &str)],
    body: Option<Value>,
) -> Reply {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, http_body_util::Full<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        builder = builder.header(name, *value);
    }
    let body = match body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            http_body_util::Full::from(json.to_string())
        }
        None => http_body_util::Full::default(),
    };
    let response = client
        .request(builder.body(body).unwrap())
        .await
        .expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Reply {
        status,
        headers,
        json,
    }
}
