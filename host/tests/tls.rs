//! HTTPS at the edge, on loopback with real certificates: a test CA (rcgen) signs the
//! gateway's certificates, and clients trust that CA only. Requests go through the whole
//! gateway (`server::start`, seeded with a running app) to a real app: HTTP/1.1 over TLS
//! (the wire fast path, with and without ALPN, counted per path so a silent fall-back to
//! hyper fails; a websocket upgrade through hyper), HTTP/2 over TLS (hyper), server-sent
//! events streamed event by event on both,
//! SNI choosing between two certificates, certificate files swapped and corrupted under
//! a running node, the plain listener's redirect, HSTS.

mod schema_support;
mod seeded_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use grid_gateway::proxy::ProxyConfig;
use grid_gateway::tls::{CertificateFiles, HstsConfig, TlsConfig};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

/// A test CA and the leaves it signs.
struct Pki {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A leaf: its PEM chain and key, and its DER (what a client sees).
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "grid test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        Pki {
            ca: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    fn leaf(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A client trusting this CA only, offering `alpn`.
    fn client(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// Writes `leaf` to `cert`/`key` the way a deploy tool does: new files renamed over the old.
fn install(leaf: &Leaf, cert: &Path, key: &Path) {
    let swap = |path: &Path, text: &str| {
        let next = path.with_extension("next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, path).unwrap();
    };
    swap(key, &leaf.key_pem);
    swap(cert, &leaf.cert_pem);
}

/// The app: echoes what it got (method, path, the forwarded proto, body length) as JSON,
/// a websocket echo on `/ws`, and server-sent events on `/events`.
async fn app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(answer(req).await)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Holds `/events`' second event until the test has read the first.
fn second_event() -> &'static tokio::sync::Notify {
    static GATE: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    GATE.get_or_init(tokio::sync::Notify::new)
}

/// `/events`: one event now, the second only once [`second_event`] is notified, then the end.
fn events() -> Response<UnsyncBoxBody<Bytes, Infallible>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        let _ = tx.send(Bytes::from_static(b"data: one\n\n")).await;
        second_event().notified().await;
        let _ = tx.send(Bytes::from_static(b"data: two\n\n")).await;
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let data = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(data)), rx))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(StreamBody::new(frames).boxed_unsync())
        .unwrap()
}

async fn answer(mut req: Request<Incoming>) -> Response<UnsyncBoxBody<Bytes, Infallible>> {
    if req.uri().path() == "/ws"
        && let Some(switching) = seeded_support::websocket_echo(&mut req)
    {
        return switching.body(Full::default().boxed_unsync()).unwrap();
    }
    if req.uri().path() == "/events" {
        return events();
    }
    let method = req.method().to_string();
    let path = req.uri().to_string();
    let proto = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::json!({
        "method": method, "path": path, "proto": proto, "bytes": body.len(),
        "sum": body.iter().map(|b| *b as u64).sum::<u64>(),
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json.to_string())).boxed_unsync())
        .unwrap()
}

/// A whole gateway with `[tls]`, in front of a real app.
struct Node {
    pki: Pki,
    plain: SocketAddr,
    tls: SocketAddr,
    bearer: String,
    /// The default certificate's files and `b.test`'s.
    default_files: (PathBuf, PathBuf),
    b_files: (PathBuf, PathBuf),
    default_leaf: Leaf,
    b_leaf: Leaf,
    running: grid_gateway::server::Running,
    _dir: tempfile::TempDir,
}

async fn node(tweak: impl FnOnce(&mut TlsConfig)) -> Node {
    let app = app().await;
    let dir = tempfile::tempdir().unwrap();
    seeded_support::seed(&dir.path().join("data"), &format!("http://{app}"));
    let pki = Pki::new();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let default_files = (certs.join("default.crt"), certs.join("default.key"));
    let b_files = (certs.join("b.crt"), certs.join("b.key"));
    let default_leaf = pki.leaf(&["a.test", "gw.test"]);
    let b_leaf = pki.leaf(&["b.test"]);
    install(&default_leaf, &default_files.0, &default_files.1);
    install(&b_leaf, &b_files.0, &b_files.1);
    let mut tls = TlsConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        cert_file: Some(default_files.0.clone()),
        key_file: Some(default_files.1.clone()),
        certificates: vec![CertificateFiles {
            hosts: vec!["b.test".into()],
            cert_file: b_files.0.clone(),
            key_file: b_files.1.clone(),
        }],
        redirect_http: true,
        plain_health: false,
        hsts: HstsConfig::default(),
        reload_poll_ms: 200,
        acme: None,
    };
    tweak(&mut tls);
    let mut config = seeded_support::config(
        "127.0.0.1:0",
        &dir.path().join("data"),
        false,
        ProxyConfig::default(),
    );
    config.session.secure = true;
    config.http.workers = 1;
    config.tls = Some(tls);
    config.validate().unwrap();
    let running = grid_gateway::server::start(config, grid_gateway::orders::Hooks::default())
        .await
        .unwrap();
    Node {
        pki,
        plain: running.addr,
        tls: running.tls_addr.unwrap(),
        bearer: format!(
            "Bearer {}",
            running.gateway.auth.seal(seeded_support::SESSION)
        ),
        default_files,
        b_files,
        default_leaf,
        b_leaf,
        running,
        _dir: dir,
    }
}

impl Node {
    /// A TLS connection for `sni`, offering `alpn`, verified against the test CA.
    async fn connect(&self, sni: &str, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.tls).await.unwrap();
        let name = ServerName::try_from(sni.to_owned()).unwrap();
        self.pki.client(alpn).connect(name, tcp).await.unwrap()
    }

    /// An HTTP/1.1 connection over TLS for `gw.test`, offering `alpn` (none: no ALPN
    /// extension at all); the agreed protocol is checked.
    async fn h1_sender(
        &self,
        alpn: &[&[u8]],
    ) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let stream = self.connect("gw.test", alpn).await;
        let agreed = alpn.first().map(|_| &b"http/1.1"[..]);
        assert_eq!(stream.get_ref().1.alpn_protocol(), agreed);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }

    /// An HTTP/2 connection over TLS for `gw.test`, offering h2 then http/1.1; h2 must win.
    async fn h2_sender(&self) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
        let stream = self.connect("gw.test", &[b"h2", b"http/1.1"]).await;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        sender
    }

    /// An HTTP/1.1 request over TLS; status, `Strict-Transport-Security`, JSON body.
    async fn h1(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Option<String>, serde_json::Value) {
        self.h1_offering(&[b"http/1.1"], method, path, body).await
    }

    /// [`Node::h1`] on a connection offering `alpn` (none: no ALPN extension at all).
    async fn h1_offering(
        &self,
        alpn: &[&[u8]],
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Option<String>, serde_json::Value) {
        let mut sender = self.h1_sender(alpn).await;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "gw.test")
            .header("authorization", &self.bearer)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        read(response).await
    }
}

async fn read(response: Response<Incoming>) -> (StatusCode, Option<String>, serde_json::Value) {
    let status = response.status();
    let hsts = response
        .headers()
        .get("strict-transport-security")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, hsts, json)
}

fn body(n: usize) -> (Vec<u8>, u64) {
    let body: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    let sum = body.iter().map(|b| *b as u64).sum();
    (body, sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tls_proxies_to_the_app_with_hsts() {
    let node = node(|tls| {
        tls.hsts = HstsConfig {
            max_age_secs: 600,
            include_subdomains: true,
        }
    })
    .await;
    let (status, hsts, json) = node.h1("GET", "/hello?x=1", Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["path"], "/hello?x=1");
    assert_eq!(json["proto"], "https", "the app learns the client used TLS");
    assert_eq!(hsts.as_deref(), Some("max-age=600; includeSubDomains"));
    let (upload, sum) = body(300_000);
    let (status, hsts, json) = node.h1("POST", "/upload", upload).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["bytes"], 300_000);
    assert_eq!(json["sum"], sum);
    assert!(hsts.is_some());
    node.running.shutdown().await.unwrap();
}

/// `grid_proxy_served_total{path="…"}` on the node's metrics page (0 when absent).
async fn served_by(node: &Node, path: &str) -> u64 {
    let page = node_metrics(node).await;
    let name = format!("grid_proxy_served_total{{path=\"{path}\"}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The fast path's advantage must hold over TLS: were TLS connections ever silently handed
/// to hyper, the `wire` count would stop moving and this fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tls_takes_the_wire_fast_path_and_h2_takes_hyper() {
    let node = node(|_| {}).await;
    assert_eq!(
        (
            served_by(&node, "wire").await,
            served_by(&node, "hyper").await
        ),
        (0, 0)
    );
    let (status, _, json) = node
        .h1_offering(&[b"http/1.1"], "GET", "/alpn", Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (upload, _) = body(10_000);
    let (status, _, json) = node.h1_offering(&[], "POST", "/no-alpn", upload).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["bytes"], 10_000);
    assert_eq!(
        served_by(&node, "wire").await,
        2,
        "ALPN http/1.1 and no ALPN"
    );
    assert_eq!(served_by(&node, "hyper").await, 0);

    let mut sender = node.h2_sender().await;
    let request = Request::builder()
        .uri("https://gw.test/h2")
        .header("authorization", &node.bearer)
        .body(Full::<Bytes>::default())
        .unwrap();
    let (status, _, json) = read(sender.send_request(request).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(served_by(&node, "hyper").await, 1, "h2 is hyper's");
    assert_eq!(served_by(&node, "wire").await, 2);
    node.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_over_tls_proxies_bodies_to_the_app() {
    let node = node(|_| {}).await;
    let mut sender = node.h2_sender().await;
    let (upload, sum) = body(200_000);
    let request = Request::builder()
        .method("POST")
        .uri("https://gw.test/upload")
        .header("authorization", &node.bearer)
        .body(Full::new(Bytes::from(upload)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let (status, hsts, json) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["bytes"], 200_000);
    assert_eq!(json["sum"], sum);
    assert_eq!(json["proto"], "https");
    assert_eq!(hsts, None, "HSTS is off by default");
    node.running.shutdown().await.unwrap();
}

/// Reads `/events` from `response`: the first event must arrive while the app still holds
/// the second — a gateway that buffered the response would never deliver it (the guard
/// turns that hang into a failure) — then the second and the end.
async fn expect_streamed_events(response: Response<Incoming>) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut seen = Vec::new();
    while !seen.ends_with(b"data: one\n\n") {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("the first event was held back until the stream ended")
            .expect("the stream ended before the first event")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.extend_from_slice(&data);
        }
    }
    second_event().notify_one();
    seen.extend_from_slice(&body.collect().await.unwrap().to_bytes());
    assert_eq!(seen, b"data: one\n\ndata: two\n\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_stream_over_tls_on_both_paths() {
    let node = node(|_| {}).await;
    let mut sender = node.h1_sender(&[b"http/1.1"]).await;
    let request = Request::builder()
        .uri("/events")
        .header("host", "gw.test")
        .header("authorization", &node.bearer)
        .header("accept", "text/event-stream")
        .body(Full::<Bytes>::default())
        .unwrap();
    expect_streamed_events(sender.send_request(request).await.unwrap()).await;

    let mut sender = node.h2_sender().await;
    let request = Request::builder()
        .uri("https://gw.test/events")
        .header("authorization", &node.bearer)
        .header("accept", "text/event-stream")
        .body(Full::<Bytes>::default())
        .unwrap();
    expect_streamed_events(sender.send_request(request).await.unwrap()).await;
    assert_eq!(
        served_by(&node, "wire").await,
        1,
        "HTTP/1.1 events: the wire path"
    );
    assert_eq!(served_by(&node, "hyper").await, 1, "h2 events: hyper's");
    node.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrades_over_tls() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let node = node(|_| {}).await;
    let stream = node.connect("gw.test", &[b"http/1.1"]).await;
    let mut request = "wss://gw.test/ws".into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", node.bearer.parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("over tls")).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    assert_eq!(reply, Message::text("echo: over tls"));
    node.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate() {
    let node = node(|_| {}).await;
    let served =
        |stream: &TlsStream<TcpStream>| stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    let b = node.connect("b.test", &[b"http/1.1"]).await;
    assert_eq!(served(&b), node.b_leaf.der);
    let a = node.connect("a.test", &[b"http/1.1"]).await;
    assert_eq!(
        served(&a),
        node.default_leaf.der,
        "a name without its own: the default"
    );
    // A name no certificate covers gets the default, which the client rejects.
    let tcp = TcpStream::connect(node.tls).await.unwrap();
    let name = ServerName::try_from("c.test".to_owned()).unwrap();
    let refused = node.pki.client(&[]).connect(name, tcp).await;
    assert!(refused.is_err());
    node.running.shutdown().await.unwrap();
}

/// The certificate served for `sni` by a new connection.
async fn served(node: &Node, sni: &str) -> CertificateDer<'static> {
    let stream = node.connect(sni, &[b"http/1.1"]).await;
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// `/_grid/v1/node`'s `tls` array, over TLS.
async fn node_tls_status(node: &Node) -> serde_json::Value {
    let (status, _, json) = node.h1("GET", "/_grid/v1/node", Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    schema_support::assert_documented("/_grid/v1/node", "get", 200, &json);
    json["tls"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_are_hot_swapped_and_a_corrupt_one_keeps_the_last_good() {
    let node = node(|_| {}).await;
    assert_eq!(served(&node, "b.test").await, node.b_leaf.der);
    let renewed = node.pki.leaf(&["b.test"]);
    install(&renewed, &node.b_files.0, &node.b_files.1);
    let mut waited = 0;
    while served(&node, "b.test").await != renewed.der {
        waited += 1;
        assert!(waited < 200, "the renewed certificate was never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Corrupt: the renewed certificate keeps serving, and the node says why.
    std::fs::write(
        &node.b_files.0,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    )
    .unwrap();
    let mut waited = 0;
    let status = loop {
        let status = node_tls_status(&node).await;
        if status[1]["last_error"].is_string() {
            break status;
        }
        waited += 1;
        assert!(
            waited < 200,
            "the corrupt file was never reported: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status[1]["hosts"], serde_json::json!(["b.test"]));
    assert_eq!(status[1]["serving"], true);
    assert!(
        status[1]["last_error"].as_str().unwrap().contains("b.crt"),
        "{status}"
    );
    assert!(status[0]["last_error"].is_null());
    assert_eq!(served(&node, "b.test").await, renewed.der);
    let (_, _, _) = node.h1("GET", "/", Vec::new()).await;
    let metrics = node_metrics(&node).await;
    assert!(
        metrics.contains("grid_tls_certificate_reload_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("grid_tls_certificates_failing 1"),
        "{metrics}"
    );
    // A good file again: served, and the error is gone.
    let fixed = node.pki.leaf(&["b.test"]);
    install(&fixed, &node.b_files.0, &node.b_files.1);
    let mut waited = 0;
    while served(&node, "b.test").await != fixed.der {
        waited += 1;
        assert!(waited < 200, "the fixed certificate was never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(node_tls_status(&node).await[1]["last_error"].is_null());
    let _ = &node.default_files;
    node.running.shutdown().await.unwrap();
}

async fn node_metrics(node: &Node) -> String {
    let mut sender = node.h1_sender(&[b"http/1.1"]).await;
    let request = Request::builder()
        .uri("/_grid/metrics")
        .header("host", "gw.test")
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A raw HTTP/1.1 request on the plain listener; the response head, lower-cased.
async fn plain(node: &Node, path: &str) -> String {
    let mut stream = TcpStream::connect(node.plain).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: gw.test:8080\r\nauthorization: {}\r\nconnection: close\r\n\r\n",
        node.bearer
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    let text = String::from_utf8_lossy(&reply).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_listener_redirects_to_https_except_acme_challenges() {
    let node = node(|_| {}).await;
    let port = node.tls.port();
    let head = plain(&node, "/some/page?x=1").await;
    assert!(head.starts_with("http/1.1 308"), "{head}");
    assert!(
        head.contains(&format!("location: https://gw.test:{port}/some/page?x=1")),
        "{head}"
    );
    let head = plain(&node, "/_grid/healthz").await;
    assert!(
        head.starts_with("http/1.1 308"),
        "health is redirected unless plain_health: {head}"
    );
    // The ACME challenge path is served plain, by the gateway itself (here without
    // [tls.acme]: no challenge pending, 404).
    let head = plain(&node, "/.well-known/acme-challenge/token").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    node.running.shutdown().await.unwrap();

    let node = node_with_plain_health().await;
    let head = plain(&node, "/_grid/healthz").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let head = plain(&node, "/page").await;
    assert!(head.starts_with("http/1.1 308"), "{head}");
    node.running.shutdown().await.unwrap();
}

async fn node_with_plain_health() -> Node {
    node(|tls| tls.plain_health = true).await
}
