//! A whole gateway with no chain and no cluster, its store seeded with one user's running
//! order, that order's available app at a given entrance, and a session: what Process
//! needs, and nothing else. Used by the proxy tests that go through the whole gateway and
//! by the load-test rig (`host/examples/proxy_bench.rs`, which includes this file by path).

#![allow(dead_code)]

use std::path::Path;

use grid_gateway::config::Config;
use grid_gateway::policy::unix_now;
use grid_gateway::proxy::ProxyConfig;
use grid_gateway::store::{AppRecord, AppStatus, OrderRecord, OrderState, SessionRecord, Store};
use grid_policy_sdk::{Address, Amount, Order, OrderStatus, Resources};

/// The seeded user.
pub const USER: Address = Address([0xaa; 20]);
/// The seeded session's id (seal it with the gateway's `auth.seal` for a bearer token).
pub const SESSION: &str = "seeded-session";
/// The seeded order.
pub const ORDER: &str = "1";

/// Seeds a store at `data_dir` with the user's running order, its available app at
/// `entrance` (`http://host:port`), and a session.
pub fn seed(data_dir: &Path, entrance: &str) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let store = Store::open(data_dir).expect("store");
    let now = unix_now();
    let order = Order {
        id: ORDER.into(),
        user: USER,
        provider: Address::ZERO,
        payee: Address::ZERO,
        resources: Resources {
            cpu_millis: 1000,
            memory_bytes: 1 << 30,
            ..Resources::default()
        },
        duration_secs: 30 * 86_400,
        payment: Amount::from(1u64),
        start_time: Some(now),
        created_at: now,
        status: OrderStatus::Active,
    };
    store
        .put_order(&OrderRecord {
            order,
            state: OrderState::Active,
            tx_hash: None,
            accepted_at: now,
        })
        .expect("order");
    store
        .put_app(&AppRecord {
            order_id: ORDER.into(),
            user: USER,
            namespace: format!("grid-order-{ORDER}"),
            manifest_url: "https://example.com/app.yaml".into(),
            status: AppStatus::Available,
            code: None,
            reason: None,
            conditions: Vec::new(),
            entrance: Some(entrance.into()),
            pod_selector: None,
            generation: 1,
            updated_at: now,
        })
        .expect("app");
    store
        .put_session(&SessionRecord {
            id: SESSION.into(),
            address: USER,
            expires_at: now + 86_400,
            scopes: None,
            created_at: now,
            revoked: false,
        })
        .expect("session");
}

/// The config of a gateway on `listen` (`127.0.0.1:0` for any port) with its data in
/// `data_dir`, asking the per-request policy or not, with these proxy settings.
pub fn config(listen: &str, data_dir: &Path, request_policy: bool, proxy: ProxyConfig) -> Config {
    let text = format!(
        "listen = \"{listen}\"\ndata_dir = \"{}\"\nlog_format = \"text\"\n\
         [auth]\ndomain = \"seeded.local\"\n[session]\nsecure = false\n\
         [process]\nskip_request_policy = {}\n",
        data_dir.display(),
        !request_policy
    );
    let mut config = Config::from_toml(&text, Path::new("seeded.toml"), []).expect("config");
    config.proxy = proxy;
    config
}

/// An app's websocket echo (the test apps' `/ws`): spawns the echo of each text message as
/// `echo: <text>` on the upgraded connection and gives the 101 answer to build with the
/// app's body type; `None` without a `Sec-WebSocket-Key`.
pub fn websocket_echo(
    req: &mut http::Request<hyper::body::Incoming>,
) -> Option<http::response::Builder> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let key = req.headers().get("sec-websocket-key")?.clone();
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            hyper_util::rt::TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        // Keep polling after a Close: tungstenite answers it and then ends the stream.
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(t) = message {
                let _ = ws.send(Message::text(format!("echo: {t}"))).await;
            }
        }
    });
    Some(
        http::Response::builder()
            .status(http::StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header(
                "sec-websocket-accept",
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()),
            ),
    )
}
