//! The reverse proxy against a real app on loopback: an upstream app that echoes what it
//! got, streams, hangs, aborts and speaks websocket, reached either through a bare HTTP
//! server forwarding every request with `Forwarder` (the proxy's own behaviour), or through
//! the whole gateway (`server::start`: session, route table, Process) with a seeded session
//! and route — the streaming tests run both ways.

mod seeded_support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use grid_gateway::proxy::{
    ClientInfo, ForwardOptions, Forwarder, ProxyBody, ProxyConfig, Upstream, full,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Serves `handler` on a loopback port until the test ends.
async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req, peer).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(value.to_string()))
        .unwrap()
}

fn chunks(total: usize, chunk: usize) -> ProxyBody {
    let stream = futures_util::stream::unfold(total, move |left| async move {
        (left > 0).then(|| {
            let n = left.min(chunk);
            (
                Ok::<_, grid_gateway::proxy::BoxError>(Frame::data(Bytes::from(vec![b'x'; n]))),
                left - n,
            )
        })
    });
    BodyExt::boxed_unsync(StreamBody::new(stream))
}

/// `total` bytes, then a body that never ends: the client is still "sending" when the
/// gateway answers, so the answer is read rather than lost in a reset connection.
fn chunks_then_stall(total: usize, chunk: usize) -> ProxyBody {
    let head = futures_util::stream::unfold(total, move |left| async move {
        (left > 0).then(|| {
            let n = left.min(chunk);
            (
                Ok::<_, grid_gateway::proxy::BoxError>(Frame::data(Bytes::from(vec![b'x'; n]))),
                left - n,
            )
        })
    });
    BodyExt::boxed_unsync(StreamBody::new(head.chain(futures_util::stream::pending())))
}

/// The app behind the proxy.
async fn app(mut req: Request<Incoming>, sse_gate: Arc<Notify>) -> Response<ProxyBody> {
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/upload" => {
            let mut total = 0usize;
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => total += f.data_ref().map_or(0, |d| d.len()),
                    Err(_) => {
                        return json(
                            StatusCode::BAD_REQUEST,
                            serde_json::json!({"aborted": total}),
                        );
                    }
                }
            }
            json(StatusCode::OK, serde_json::json!({"bytes": total}))
        }
        "/download" => {
            let n: usize = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("bytes="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Response::builder()
                .header("content-length", n)
                .body(chunks(n, 64 * 1024))
                .unwrap()
        }
        "/sse" => {
            let stream = futures_util::stream::unfold(0, move |step| {
                let gate = sse_gate.clone();
                async move {
                    match step {
                        0 => Some((
                            Ok::<_, grid_gateway::proxy::BoxError>(Frame::data(Bytes::from(
                                "data: one\n\n",
                            ))),
                            1,
                        )),
                        1 => {
                            // The second event waits until the client has seen the first
                            // through the proxy: a buffering proxy would deadlock here.
                            gate.notified().await;
                            Some((Ok(Frame::data(Bytes::from("data: two\n\n"))), 2))
                        }
                        _ => None,
                    }
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
                .unwrap()
        }
        "/ws" => match seeded_support::websocket_echo(&mut req) {
            Some(switching) => switching.body(full("")).unwrap(),
            None => json(StatusCode::BAD_REQUEST, serde_json::json!({})),
        },
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            json(StatusCode::OK, serde_json::json!({}))
        }
        "/abort" => {
            // Promise a megabyte, send a little, then fail: the connection is cut.
            let stream = futures_util::stream::unfold(0, |step| async move {
                match step {
                    0 => Some((
                        Ok::<_, grid_gateway::proxy::BoxError>(Frame::data(Bytes::from(vec![
                            b'x';
                            1000
                        ]))),
                        1,
                    )),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((Err("the app crashed".into()), 2))
                    }
                    _ => None,
                }
            });
            Response::builder()
                .header("content-length", 1_000_000)
                .body(BodyExt::boxed_unsync(StreamBody::new(stream)))
                .unwrap()
        }
        _ => {
            let method = req.method().to_string();
            let query = req.uri().query().map(str::to_owned);
            let mut headers = serde_json::Map::new();
            for (name, value) in req.headers() {
                let entry = headers
                    .entry(name.as_str())
                    .or_insert_with(|| serde_json::json!([]));
                entry
                    .as_array_mut()
                    .unwrap()
                    .push(value.to_str().unwrap_or("").into());
            }
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "method": method, "path": path, "query": query, "headers": headers,
                    "body": String::from_utf8_lossy(&body),
                }),
            )
        }
    }
}

/// What stands between the client and the app.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// A bare server calling `Forwarder::forward`.
    Forwarder,
    /// The whole gateway, the request carrying the seeded session's bearer token.
    Gateway,
}

const BOTH: [Via; 2] = [Via::Forwarder, Via::Gateway];

struct Harness {
    gateway: SocketAddr,
    sse_gate: Arc<Notify>,
    metrics: grid_gateway::proxy::ProxyMetrics,
    /// `Authorization` value for the whole gateway.
    bearer: Option<String>,
    /// Keeps the whole gateway and its data alive for the test.
    _gateway: Option<(grid_gateway::server::Running, tempfile::TempDir)>,
}

async fn harness_with(config: ProxyConfig, upstream: Option<String>) -> Harness {
    harness_via(Via::Forwarder, config, upstream).await
}

async fn harness_via(via: Via, config: ProxyConfig, upstream: Option<String>) -> Harness {
    let sse_gate = Arc::new(Notify::new());
    let gate = sse_gate.clone();
    let app_addr = serve(move |req, _| app(req, gate.clone())).await;
    let entrance = upstream.unwrap_or_else(|| format!("http://{app_addr}"));
    if let Via::Gateway = via {
        let dir = tempfile::tempdir().unwrap();
        seeded_support::seed(dir.path(), &entrance);
        let config = seeded_support::config("127.0.0.1:0", dir.path(), false, config);
        let running = grid_gateway::server::start(config, grid_gateway::orders::Hooks::default())
            .await
            .unwrap();
        return Harness {
            gateway: running.addr,
            sse_gate,
            metrics: running.gateway.forwarder.metrics().clone(),
            bearer: Some(format!(
                "Bearer {}",
                running.gateway.auth.seal(seeded_support::SESSION)
            )),
            _gateway: Some((running, dir)),
        };
    }
    let upstream: Upstream = entrance.parse().unwrap();
    let forwarder = Forwarder::new(config);
    let metrics = forwarder.metrics().clone();
    let gateway = serve(move |req, peer| {
        let (forwarder, upstream) = (forwarder.clone(), upstream.clone());
        async move {
            let options = ForwardOptions {
                strip_cookies: &["grid_session"],
                strip_authorization: true,
            };
            match forwarder
                .forward(req, &upstream, &ClientInfo { peer, https: false }, &options)
                .await
            {
                Ok(response) => response,
                Err(e) => json(
                    e.status(),
                    serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}}),
                ),
            }
        }
    })
    .await;
    Harness {
        gateway,
        sse_gate,
        metrics,
        bearer: None,
        _gateway: None,
    }
}

async fn harness() -> Harness {
    harness_with(ProxyConfig::default(), None).await
}

async fn harness_through(via: Via) -> Harness {
    harness_via(via, ProxyConfig::default(), None).await
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    ProxyBody,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

fn at(h: &Harness, method: &str, path: &str) -> http::request::Builder {
    let builder = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", h.gateway));
    match &h.bearer {
        Some(bearer) => builder.header("authorization", bearer),
        None => builder,
    }
}

/// The websocket handshake request, with the session when going through the gateway.
fn ws_request(h: &Harness) -> http::Request<()> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws", h.gateway)
        .into_client_request()
        .unwrap();
    if let Some(bearer) = &h.bearer {
        request
            .headers_mut()
            .insert("authorization", bearer.parse().unwrap());
    }
    request
}

async fn request(
    _h: &Harness,
    builder: http::request::Builder,
    body: ProxyBody,
) -> (StatusCode, serde_json::Value) {
    let response = client().request(builder.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_bodies_and_queries_arrive_intact() {
    for via in BOTH {
        eprintln!("through {via:?}");
        let h = harness_through(via).await;
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let body = if method == "GET" {
                grid_gateway::proxy::empty()
            } else {
                full(format!("payload of {method}"))
            };
            let (status, echo) =
                request(&h, at(&h, method, "/items/42?sort=desc&q=a%20b"), body).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(echo["method"], method);
            assert_eq!(echo["path"], "/items/42");
            assert_eq!(echo["query"], "sort=desc&q=a%20b");
            if method != "GET" {
                assert_eq!(echo["body"], format!("payload of {method}"));
            }
        }
        assert_eq!(h.metrics.request_count("2xx"), 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_hop_by_hop_headers_never_reach_the_app() {
    let h = harness().await;
    let builder = at(&h, "GET", "/echo")
        .header("cookie", "theme=dark; grid_session=SECRET; lang=en")
        .header("authorization", "Bearer SECRET")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic SECRET")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .header("x-app-header", "kept");
    let (status, echo) = request(&h, builder, grid_gateway::proxy::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let headers = &echo["headers"];
    let text = headers.to_string();
    assert!(!text.contains("SECRET"), "a credential leaked: {text}");
    assert_eq!(
        headers["cookie"],
        serde_json::json!(["theme=dark; lang=en"])
    );
    for gone in [
        "authorization",
        "x-hop",
        "keep-alive",
        "proxy-authorization",
    ] {
        assert!(headers.get(gone).is_none(), "{gone} reached the app");
    }
    assert_eq!(headers["x-app-header"], serde_json::json!(["kept"]));
    assert_eq!(
        headers["x-forwarded-for"],
        serde_json::json!(["127.0.0.1"]),
        "an untrusted client's XFF is replaced"
    );
    assert_eq!(headers["x-forwarded-proto"], serde_json::json!(["http"]));
    assert_eq!(
        headers["x-forwarded-host"],
        serde_json::json!([h.gateway.to_string()])
    );
    assert_eq!(headers["via"], serde_json::json!(["1.1 grid-gateway"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_chain_is_extended() {
    let config = ProxyConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        forwarded_header: true,
        ..ProxyConfig::default()
    };
    let h = harness_with(config, None).await;
    let (_, echo) = request(
        &h,
        at(&h, "GET", "/echo").header("x-forwarded-for", "203.0.113.9"),
        grid_gateway::proxy::empty(),
    )
    .await;
    assert_eq!(
        echo["headers"]["x-forwarded-for"],
        serde_json::json!(["203.0.113.9, 127.0.0.1"])
    );
    assert!(
        echo["headers"]["forwarded"][0]
            .as_str()
            .unwrap()
            .starts_with("for=127.0.0.1;proto=http")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_upload_and_download_stream_through() {
    for via in BOTH {
        eprintln!("through {via:?}");
        let h = harness_through(via).await;
        const SIZE: usize = 100 << 20;
        let (status, echo) = request(&h, at(&h, "POST", "/upload"), chunks(SIZE, 256 * 1024)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echo["bytes"], SIZE);

        let response = client()
            .request(
                at(&h, "GET", &format!("/download?bytes={SIZE}"))
                    .body(grid_gateway::proxy::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let (mut total, mut largest_frame) = (0usize, 0usize);
        while let Some(frame) = body.frame().await {
            let len = frame.unwrap().data_ref().map_or(0, |d| d.len());
            total += len;
            largest_frame = largest_frame.max(len);
        }
        assert_eq!(total, SIZE);
        // Streamed, not buffered: data arrives in pieces of the size the app wrote, not as
        // one 100 MiB buffer.
        assert!(largest_frame <= 1 << 20, "largest frame {largest_frame}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_arrive_incrementally() {
    for via in BOTH {
        eprintln!("through {via:?}");
        let h = harness_through(via).await;
        let response = client()
            .request(
                at(&h, "GET", "/sse")
                    .body(grid_gateway::proxy::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let mut body = response.into_body();
        let first = tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("the first event must arrive before the stream ends");
        assert_eq!(
            first.unwrap().unwrap().into_data().unwrap(),
            "data: one\n\n"
        );
        h.sse_gate.notify_one();
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(rest, "data: two\n\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_echoes_both_ways_and_closes_cleanly() {
    for via in BOTH {
        eprintln!("through {via:?}");
        let h = harness_through(via).await;
        let (mut ws, response) = tokio_tungstenite::connect_async(ws_request(&h))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        for text in ["hello", "again"] {
            ws.send(Message::text(text)).await.unwrap();
            let reply = tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(reply, Message::text(format!("echo: {text}")));
        }
        assert_eq!(
            h.metrics.tunnels_open.get(),
            1,
            "the tunnel is counted while open"
        );
        ws.close(None).await.unwrap();
        // The close handshake completes through the tunnel: the stream ends without error.
        while let Some(message) = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .unwrap()
        {
            assert!(matches!(message, Ok(Message::Close(_))), "{message:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_refuses_connections_is_502() {
    for via in BOTH {
        eprintln!("through {via:?}");
        // Bind then drop: nothing listens on that port any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let h = harness_via(
            via,
            ProxyConfig::default(),
            Some(format!("http://127.0.0.1:{port}")),
        )
        .await;
        let (status, body) = request(&h, at(&h, "GET", "/"), grid_gateway::proxy::empty()).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body["error"]["code"], "upstream_unreachable");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_hangs_is_504_within_the_configured_timeout() {
    for via in BOTH {
        eprintln!("through {via:?}");
        let config = ProxyConfig {
            response_header_timeout: Duration::from_millis(300),
            ..ProxyConfig::default()
        };
        let h = harness_via(via, config, None).await;
        let (status, body) = tokio::time::timeout(
            Duration::from_secs(20),
            request(&h, at(&h, "GET", "/hang"), grid_gateway::proxy::empty()),
        )
        .await
        .expect("the gateway must answer, not hang");
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(body["error"]["code"], "upstream_timeout");
        assert_eq!(h.metrics.request_count("5xx"), 1);
        assert_eq!(h.metrics.in_flight.get(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_closing_mid_body_aborts_the_response_and_the_gateway_keeps_serving() {
    for via in BOTH {
        eprintln!("through {via:?}");
        let h = harness_through(via).await;
        let response = client()
            .request(
                at(&h, "GET", "/abort")
                    .body(grid_gateway::proxy::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.into_body().collect().await.is_err(),
            "a cut body must not look complete"
        );
        let (status, _) = request(&h, at(&h, "GET", "/echo"), grid_gateway::proxy::empty()).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_over_the_limit_are_413_also_when_streamed() {
    let config = ProxyConfig {
        max_request_body_bytes: 1 << 20,
        ..ProxyConfig::default()
    };
    let h = harness_with(config, None).await;
    let declared = at(&h, "POST", "/upload").header("content-length", (2 << 20).to_string());
    let (status, body) = request(&h, declared, chunks_then_stall(64 * 1024, 64 * 1024)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "body_too_large");
    // Chunked, no length announced: cut when the limit is crossed.
    let (status, body) = request(
        &h,
        at(&h, "POST", "/upload"),
        chunks_then_stall(3 << 19, 64 * 1024),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_smuggling_attempt_with_both_lengths_cannot_smuggle() {
    // CL.TE smuggling: Content-Length covers only the chunked terminator, so a front end
    // that trusted it would take "GET /smuggled" as the next request on the connection.
    // hyper frames the request by Transfer-Encoding, drops Content-Length and closes the
    // connection after answering (RFC 9112 §6.3), so nothing follows; the app sees one
    // request, framed one way. (The forwarder also refuses a request that still carries
    // both headers, for front ends that keep them: `ProxyError::AmbiguousLength`.)
    let h = harness().await;
    let mut stream = TcpStream::connect(h.gateway).await.unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n",
        )
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut reply))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert_eq!(
        reply.matches("HTTP/1.1 ").count(),
        1,
        "exactly one response: {reply}"
    );
    assert!(!reply.contains("/smuggled"), "{reply}");
    let body = &reply[reply.find("\r\n\r\n").unwrap() + 4..];
    let echo: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(echo["path"], "/echo");
    assert!(
        echo["headers"].get("content-length").is_none()
            || echo["headers"].get("transfer-encoding").is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_refuses_a_request_that_still_carries_both_lengths() {
    let forwarder = Forwarder::new(ProxyConfig::default());
    let request = Request::builder()
        .method("POST")
        .uri("/echo")
        .header("content-length", "5")
        .header("transfer-encoding", "chunked")
        .body(full("hello"))
        .unwrap();
    let client = ClientInfo {
        peer: "127.0.0.1:1".parse().unwrap(),
        https: false,
    };
    let upstream: Upstream = "http://127.0.0.1:9".parse().unwrap();
    let err = forwarder
        .forward(request, &upstream, &client, &ForwardOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert_eq!(err.code(), "ambiguous_length");
    for bad in ["https://svc:443", "svc:80", "http://svc/path", "not a url"] {
        assert!(bad.parse::<Upstream>().is_err(), "{bad}");
    }
}
