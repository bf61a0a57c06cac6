//! The wire fast path through the whole gateway (`server::start` with a seeded session and
//! route), against an app on loopback that answers byte by byte what each test needs:
//! response framings a proxy must follow (chunked with trailers, close-delimited, HEAD,
//! 204, interim 1xx), an app that closes idle connections, one that hangs, one that answers
//! garbage. Clients write raw bytes too, to pipeline, mix API and app requests on one
//! connection, and send what the fast path hands to hyper.

mod seeded_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid_gateway::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The scripted app: its address, how many connections it accepted, and the request line
/// of every request it read.
struct App {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    /// Every request head it read, in lower case.
    heads: Arc<Mutex<Vec<String>>>,
}

impl App {
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The head of the request whose request line contains `needle`.
    fn head_of(&self, needle: &str) -> String {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .find(|h| h.lines().next().is_some_and(|l| l.contains(needle)))
            .cloned()
            .unwrap_or_else(|| panic!("the app saw no request {needle:?}"))
    }
}

/// Reads more of `stream` into `buf`; None when it closed.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

/// Reads one request head off `stream`: its request line, and the head in lower case.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    buf.drain(..head_end);
    let line = head.lines().next().unwrap_or_default().to_owned();
    Some((line, head.to_ascii_lowercase()))
}

/// Reads the body `head` announces (a `Content-Length` or chunked one).
async fn read_body(stream: &mut TcpStream, buf: &mut Vec<u8>, head: &str) -> Option<Vec<u8>> {
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        while buf.len() < len {
            fill(stream, buf).await?;
        }
        return Some(buf.drain(..len).collect());
    }
    if head.contains("transfer-encoding: chunked") {
        // The test bodies are small: read up to the last chunk and keep the raw chunks.
        loop {
            if let Some(at) = buf.windows(5).position(|w| w == b"0\r\n\r\n") {
                return Some(buf.drain(..at + 5).collect());
            }
            fill(stream, buf).await?;
        }
    }
    Some(Vec::new())
}

/// What the app answers to `line` (`METHOD /path HTTP/1.1`); None to close without one.
fn answer(line: &str, body: &[u8]) -> Option<Vec<u8>> {
    let path = line.split(' ').nth(1).unwrap_or_default();
    let text = match path {
        "/chunked" => "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                       4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nx-trailer: 1\r\n\r\n"
            .to_owned(),
        "/until-close" => {
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nto the end".to_owned()
        }
        "/head" => "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_owned(),
        "/no-content" => "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n".to_owned(),
        "/early-hints" => "HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\n\
                           HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal"
            .to_owned(),
        "/garbage" => "SURPRISE\r\n\r\n".to_owned(),
        // Three digits, but no status code (RFC 9110 §15: 100 to 599; hyper reads 100 to 999).
        "/status-042" => "HTTP/1.1 042 Odd\r\ncontent-length: 0\r\n\r\n".to_owned(),
        "/two-lengths" => {
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd".to_owned()
        }
        "/conn-cl" => {
            "HTTP/1.1 200 OK\r\nconnection: content-length\r\ncontent-length: 5\r\n\r\nhello"
                .to_owned()
        }
        "/gzip-chunked" => "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n\
                            2\r\nzz\r\n0\r\n\r\n"
            .to_owned(),
        // Cookies of the gateway's names in every spelling an app could try, and two of
        // the app's own.
        "/set-cookies" => "HTTP/1.1 200 OK\r\n\
                           set-cookie: grid_session=evil; Path=/\r\n\
                           set-cookie: __Host-grid_session=evil; Path=/; Secure\r\n\
                           set-cookie: __Secure-grid_session=evil; Domain=gw.test; Secure\r\n\
                           set-cookie: GRID_Session=evil; Path=/x\r\n\
                           set-cookie: __HOST-grid_session=evil\r\n\
                           set-cookie: grid%5Fsession=evil\r\n\
                           set-cookie: =grid_session=evil\r\n\
                           set-cookie:  grid_session =evil\r\n\
                           set-cookie: app=kept; Path=/\r\n\
                           set-cookie: grid_session_2=kept\r\n\
                           content-length: 2\r\n\r\nok"
            .to_owned(),
        "/hang" => return None,
        _ => {
            let echo = format!("{line} body={}", body.len());
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{echo}",
                echo.len()
            )
        }
    };
    Some(text.into_bytes())
}

/// Serves [`answer`]s; with `close_after_each`, closes every connection after one answer
/// without saying so (an app whose keep-alive ends while the gateway holds it idle).
async fn app(close_after_each: bool) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (counted, log, head_log) = (connections.clone(), seen.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let (log, head_log) = (log.clone(), head_log.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some((line, head)) = read_head(&mut stream, &mut buf).await {
                    log.lock().unwrap().push(line.clone());
                    head_log.lock().unwrap().push(head.clone());
                    if line.contains("/die") {
                        // Gone without a word: what an app crashing on a request looks like.
                        return;
                    }
                    if line.contains("/refuse-upload") {
                        // Refuses the upload at once, without reading it, and stays there.
                        let refusal = "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\
                                       connection: close\r\n\r\ntoo big!";
                        let _ = stream.write_all(refusal.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        return;
                    }
                    let Some(body) = read_body(&mut stream, &mut buf, &head).await else {
                        return;
                    };
                    if line.contains("/slow") {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    let Some(response) = answer(&line, &body) else {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    };
                    if stream.write_all(&response).await.is_err() {
                        return;
                    }
                    if line.contains("/until-close") || close_after_each {
                        return;
                    }
                }
            });
        }
    });
    App {
        addr,
        connections,
        seen,
        heads,
    }
}

/// A whole gateway in front of `app`, and a bearer header for its seeded session.
struct Gateway {
    addr: SocketAddr,
    bearer: String,
    running: grid_gateway::server::Running,
    _dir: tempfile::TempDir,
}

async fn gateway(app: &App, proxy: ProxyConfig) -> Gateway {
    gateway_with(app, proxy, |_| {}).await
}

async fn gateway_with(
    app: &App,
    proxy: ProxyConfig,
    tweak: impl FnOnce(&mut grid_gateway::config::Config),
) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    seeded_support::seed(dir.path(), &format!("http://{}", app.addr));
    let mut config = seeded_support::config("127.0.0.1:0", dir.path(), false, proxy);
    // One worker: every connection to the app is pooled on the same thread.
    config.http.workers = 1;
    tweak(&mut config);
    let running = grid_gateway::server::start(config, grid_gateway::orders::Hooks::default())
        .await
        .unwrap();
    Gateway {
        addr: running.addr,
        bearer: format!(
            "authorization: Bearer {}",
            running.gateway.auth.seal(seeded_support::SESSION)
        ),
        running,
        _dir: dir,
    }
}

/// A request for the raw client: `METHOD path`, extra header lines, a body.
fn request(gw: &Gateway, method: &str, path: &str, extra: &[&str], body: &str) -> String {
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nhost: gw.test\r\n{}\r\n",
        gw.bearer
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    if !body.is_empty() && !extra.iter().any(|l| l.starts_with("transfer-encoding")) {
        text.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

/// Writes `requests` at once on one connection and reads until the gateway closes it
/// (the last request should say `connection: close`).
async fn exchange(gw: &Gateway, requests: &[String]) -> String {
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(requests.concat().as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the gateway closes the connection after the last request")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The positions of `needles` in `text`, asserting each is there after the previous one.
fn in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        let at = text[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not found (in order) in:\n{text}"));
        from += at + needle.len();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_on_kept_app_connections() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let text = exchange(
        &gw,
        &[
            request(&gw, "GET", "/one?x=1", &[], ""),
            request(&gw, "POST", "/two", &[], "hello"),
            request(&gw, "PUT", "/three", &["connection: close"], "abc"),
        ],
    )
    .await;
    in_order(
        &text,
        &[
            "HTTP/1.1 200 OK",
            "via: 1.1 grid-gateway",
            "GET /one?x=1 HTTP/1.1 body=0",
            "HTTP/1.1 200 OK",
            "POST /two HTTP/1.1 body=5",
            "HTTP/1.1 200 OK",
            "connection: close",
            "PUT /three HTTP/1.1 body=3",
        ],
    );
    assert!(text.contains("date: "), "a Date is added: {text}");
    assert_eq!(
        app.connections.load(Ordering::SeqCst),
        1,
        "one kept connection to the app serves all three"
    );
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_moves_to_hyper_at_its_first_api_request_and_keeps_serving() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let text = exchange(
        &gw,
        &[
            request(&gw, "GET", "/before", &[], ""),
            request(&gw, "GET", "/_grid/healthz", &[], ""),
            request(&gw, "GET", "/after", &["connection: close"], ""),
        ],
    )
    .await;
    in_order(
        &text,
        &[
            "GET /before HTTP/1.1 body=0",
            "x-request-id",
            "GET /after HTTP/1.1 body=0",
        ],
    );
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_fast_path_does_not_take_is_served_by_hyper() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    // A chunked upload: hyper reads it and the forwarder sends it on.
    let chunked = exchange(
        &gw,
        &[request(
            &gw,
            "POST",
            "/upload",
            &["transfer-encoding: chunked", "connection: close"],
            "5\r\nhello\r\n0\r\n\r\n",
        )],
    )
    .await;
    assert!(chunked.starts_with("HTTP/1.1 200 OK"), "{chunked}");
    assert!(chunked.contains("POST /upload HTTP/1.1"), "{chunked}");
    // HTTP/1.0.
    let old = exchange(
        &gw,
        &[format!(
            "GET /old HTTP/1.0\r\nhost: gw.test\r\n{}\r\n\r\n",
            gw.bearer
        )],
    )
    .await;
    assert!(old.contains("GET /old HTTP/1.1 body=0"), "{old}");
    // A malformed head: hyper's 400.
    let bad = exchange(&gw, &["GET /x HTTP/1.1\r\nbad header\r\n\r\n".to_owned()]).await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    // Without a session: the API's 401 body, on the fast path as on hyper's.
    let anonymous = exchange(
        &gw,
        &["GET /x HTTP/1.1\r\nhost: gw.test\r\nconnection: close\r\n\r\n".to_owned()],
    )
    .await;
    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    assert!(
        anonymous.contains(r#""code":"unauthenticated""#),
        "{anonymous}"
    );
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_framing_reaches_the_client_whole() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let text = exchange(
        &gw,
        &[
            request(&gw, "GET", "/chunked", &[], ""),
            request(&gw, "HEAD", "/head", &[], ""),
            request(&gw, "GET", "/no-content", &[], ""),
            request(&gw, "GET", "/early-hints", &[], ""),
            request(&gw, "GET", "/gzip-chunked", &[], ""),
            request(&gw, "GET", "/echo", &["connection: close"], ""),
        ],
    )
    .await;
    // The app's connection survives each of these; the last answer is the echo, whole.
    in_order(
        &text,
        &[
            "transfer-encoding: chunked",
            "4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nx-trailer: 1\r\n\r\n",
            "content-length: 100\r\n",
            "HTTP/1.1 204 No Content",
            "HTTP/1.1 200 OK",
            "final",
            // The app's codings pass on with its bytes.
            "transfer-encoding: gzip, chunked",
            "2\r\nzz\r\n0\r\n\r\n",
            "GET /echo HTTP/1.1 body=0",
        ],
    );
    assert!(
        !text.contains("103"),
        "interim responses are dropped: {text}"
    );
    // A close-delimited body: the client gets all of it, told the connection closes.
    let until_close = exchange(&gw, &[request(&gw, "GET", "/until-close", &[], "")]).await;
    // (The app ends this connection itself, so the request need not ask to close.)
    assert!(until_close.contains("connection: close"), "{until_close}");
    assert!(until_close.ends_with("\r\n\r\nto the end"), "{until_close}");
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_closing_kept_connections_costs_idempotent_requests_nothing() {
    let app = app(true).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    for n in 0..5 {
        let text = exchange(
            &gw,
            &[request(
                &gw,
                "GET",
                &format!("/again/{n}"),
                &["connection: close"],
                "",
            )],
        )
        .await;
        assert!(
            text.contains(&format!("GET /again/{n} HTTP/1.1 body=0")),
            "request {n}: {text}"
        );
    }
    assert_eq!(app.connections.load(Ordering::SeqCst), 5);
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_app_is_504_and_a_garbled_one_502_with_the_usual_error_body() {
    let app = app(false).await;
    let proxy = ProxyConfig {
        response_header_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let gw = gateway(&app, proxy).await;
    let hang = exchange(
        &gw,
        &[request(&gw, "GET", "/hang", &["connection: close"], "")],
    )
    .await;
    assert!(hang.starts_with("HTTP/1.1 504"), "{hang}");
    assert!(hang.contains(r#""code":"upstream_timeout""#), "{hang}");
    for path in ["/garbage", "/two-lengths", "/status-042"] {
        let bad = exchange(
            &gw,
            &[request(&gw, "GET", path, &["connection: close"], "")],
        )
        .await;
        assert!(bad.starts_with("HTTP/1.1 502"), "{path}: {bad}");
        assert!(
            bad.contains(r#""code":"upstream_bad_response""#),
            "{path}: {bad}"
        );
    }
    let metrics = gw.running.gateway.forwarder.metrics();
    assert!(metrics.request_count("5xx") >= 3);
    // And the gateway goes on serving.
    let fine = exchange(
        &gw,
        &[request(&gw, "GET", "/fine", &["connection: close"], "")],
    )
    .await;
    assert!(fine.contains("GET /fine HTTP/1.1 body=0"), "{fine}");
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413_before_anything_reaches_the_app() {
    let app = app(false).await;
    let proxy = ProxyConfig {
        max_request_body_bytes: 4,
        ..ProxyConfig::default()
    };
    let gw = gateway(&app, proxy).await;
    let text = exchange(
        &gw,
        &[request(
            &gw,
            "POST",
            "/big",
            &["connection: close"],
            "too long",
        )],
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains(r#""code":"body_too_large""#), "{text}");
    assert_eq!(app.connections.load(Ordering::SeqCst), 0);
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_a_refused_body_reads_the_refusal() {
    let app = app(false).await;
    let proxy = ProxyConfig {
        max_request_body_bytes: 1024,
        ..ProxyConfig::default()
    };
    let gw = gateway(&app, proxy).await;
    // 12 MiB announced and sent in full while the 413 is already on its way (more than
    // loopback's socket buffers hold, so the gateway closes with it unread): the client,
    // reading once it has sent everything, still gets the 413, and the app nothing.
    let body = "x".repeat(12 << 20);
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = request(&gw, "POST", "/upload", &[], "");
    let head = head.replace(
        "\r\n\r\n",
        &format!("\r\ncontent-length: {}\r\n\r\n", body.len()),
    );
    let sending = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await.ok();
        writer.write_all(body.as_bytes()).await.ok();
        writer
    });
    // Read only once everything is sent, as a client that writes its whole body first does.
    let writer = sending.await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer))
        .await
        .expect("the gateway closes after the refusal")
        .expect("no reset");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    drop(writer);
    assert_eq!(app.connections.load(Ordering::SeqCst), 0);
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_finishes_the_request_in_flight() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    // An idle keep-alive connection that has been served once.
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    idle.write_all(request(&gw, "GET", "/first", &[], "").as_bytes())
        .await
        .unwrap();
    let mut got = vec![0u8; 4096];
    let n = idle.read(&mut got).await.unwrap();
    assert!(String::from_utf8_lossy(&got[..n]).contains("GET /first"));
    // A request the app takes half a second to answer, in flight when the stop comes.
    let mut busy = TcpStream::connect(gw.addr).await.unwrap();
    busy.write_all(request(&gw, "GET", "/slow", &[], "").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(gw.running.shutdown());

    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), busy.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(_))), "{read:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.contains("GET /slow HTTP/1.1 body=0"),
        "the request in flight is answered whole, then the connection closes: {answer}"
    );
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("an idle connection does not hold the shutdown")
        .unwrap()
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection is closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_must_arrive_whole_within_the_header_timeout() {
    let app = app(false).await;
    let gw = gateway_with(&app, ProxyConfig::default(), |c| {
        c.http.header_read_timeout_ms = 500;
    })
    .await;
    // A client trickling a head that never ends: one header line every 100 ms, each
    // resetting no clock.
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        writer.write_all(b"GET /slowloris HTTP/1.1\r\n").await.ok();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b"x-more: 1\r\n").await.is_err() {
                return true;
            }
        }
        false
    });
    let mut rest = Vec::new();
    let cut = tokio::time::timeout(Duration::from_secs(4), reader.read_to_end(&mut rest)).await;
    assert!(
        cut.is_ok(),
        "the connection is closed well before the client stops"
    );
    trickle.abort();
    // A kept-alive connection waiting for its next request is closed by the same clock.
    let mut idle = TcpStream::connect(gw.addr).await.unwrap();
    idle.write_all(request(&gw, "GET", "/once", &[], "").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(4), idle.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "an idle keep-alive connection is closed");
    assert!(String::from_utf8_lossy(&answer).contains("GET /once HTTP/1.1 body=0"));
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cuts_what_is_still_running_after_the_grace() {
    let app = app(false).await;
    let gw = gateway_with(&app, ProxyConfig::default(), |c| {
        c.http.shutdown_grace_ms = 300;
    })
    .await;
    let mut hung = TcpStream::connect(gw.addr).await.unwrap();
    hung.write_all(request(&gw, "GET", "/hang", &[], "").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), gw.running.shutdown())
        .await
        .expect("the drain ends at the grace, not when the app answers")
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), hung.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the cut request's connection is closed without an answer: {read:?} {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_header_cannot_unframe_a_message() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    // A client naming Content-Length in Connection: were the length dropped as hop-by-hop
    // while the body went on, the app would read the body as a request of its own, one
    // that never passed the session check.
    let smuggled = "GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
    let carrier = request(
        &gw,
        "POST",
        "/carrier",
        &["connection: content-length"],
        smuggled,
    );
    let text = exchange(
        &gw,
        &[
            carrier,
            request(&gw, "GET", "/after", &["connection: close"], ""),
        ],
    )
    .await;
    in_order(
        &text,
        &[
            &format!("POST /carrier HTTP/1.1 body={}", smuggled.len()),
            "GET /after HTTP/1.1 body=0",
        ],
    );
    assert!(
        !app.seen().iter().any(|line| line.contains("/smuggled")),
        "{:?}",
        app.seen()
    );
    // The same from the app's side: the client still gets the length.
    let text = exchange(
        &gw,
        &[
            request(&gw, "GET", "/conn-cl", &[], ""),
            request(&gw, "GET", "/after", &["connection: close"], ""),
        ],
    )
    .await;
    in_order(
        &text,
        &[
            "content-length: 5\r\n",
            "hello",
            "HTTP/1.1 200 OK",
            "GET /after",
        ],
    );
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_a_fragment_reaches_the_app_as_the_router_reads_it() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let text = exchange(
        &gw,
        &[request(
            &gw,
            "GET",
            "/admin#/../../public",
            &["connection: close"],
            "",
        )],
    )
    .await;
    assert!(text.contains("GET /admin HTTP/1.1 body=0"), "{text}");
    assert!(
        !app.seen().iter().any(|line| line.contains('#')),
        "{:?}",
        app.seen()
    );
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_refusing_an_upload_before_reading_it_is_heard() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let body = "x".repeat(20 << 20);
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = request(&gw, "POST", "/refuse-upload", &[], "").replace(
        "\r\n\r\n",
        &format!("\r\ncontent-length: {}\r\n\r\n", body.len()),
    );
    let sending = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await.ok();
        writer.write_all(body.as_bytes()).await.ok();
        writer
    });
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer))
        .await
        .expect("the app's early answer reaches the client, and the connection closes")
        .ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large"),
        "{answer}"
    );
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(answer.ends_with("too big!"), "{answer}");
    sending.abort();
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_head_request_gets_headers_only() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let anonymous =
        |method: &str, extra: &str| format!("{method} /x HTTP/1.1\r\nhost: gw.test\r\n{extra}\r\n");
    let text = exchange(
        &gw,
        &[
            anonymous("HEAD", ""),
            anonymous("GET", "connection: close\r\n"),
        ],
    )
    .await;
    let (first, rest) = text.split_once("\r\n\r\n").expect("a head");
    assert!(first.starts_with("HTTP/1.1 401"), "{text}");
    assert!(first.contains("content-length: "), "{text}");
    assert!(
        rest.starts_with("HTTP/1.1 401"),
        "no body after the HEAD answer: {text}"
    );
    assert!(rest.contains(r#""code":"unauthenticated""#), "{text}");
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_app_dies_of_is_sent_twice_at_most() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    // Three kept connections to the app.
    let slow = (0..3).map(|n| {
        let request = request(
            &gw,
            "GET",
            &format!("/slow/{n}"),
            &["connection: close"],
            "",
        );
        let gw = &gw;
        async move { exchange(gw, &[request]).await }
    });
    for text in futures_util::future::join_all(slow).await {
        assert!(text.contains("body=0"), "{text}");
    }
    assert_eq!(app.connections.load(Ordering::SeqCst), 3);
    let text = exchange(
        &gw,
        &[request(&gw, "GET", "/die", &["connection: close"], "")],
    )
    .await;
    assert!(text.starts_with("HTTP/1.1 502"), "{text}");
    let deaths = app.seen().iter().filter(|l| l.contains("/die")).count();
    assert_eq!(deaths, 2, "once on a kept connection, once on a new one");
    gw.running.shutdown().await.unwrap();
}

/// A raw request signed in by the session cookie (not the bearer), with `extra` header
/// lines; `hyper` sends it with a chunked body, which the fast path hands to hyper.
fn cookie_request(gw: &Gateway, path: &str, extra: &[String], hyper: bool) -> String {
    let token = gw.running.gateway.auth.seal(seeded_support::SESSION);
    let mut text =
        format!("POST {path} HTTP/1.1\r\nhost: gw.test\r\ncookie: grid_session={token}\r\n");
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    if hyper {
        text.push_str("transfer-encoding: chunked\r\n\r\n0\r\n\r\n");
    } else {
        text.push_str("content-length: 0\r\n\r\n");
    }
    text
}

/// The gateway's metrics page.
async fn metrics(gw: &Gateway) -> String {
    exchange(
        gw,
        &["GET /_grid/metrics HTTP/1.1\r\nhost: gw.test\r\nconnection: close\r\n\r\n".to_owned()],
    )
    .await
}

/// The value of the metric line starting with `name ` (0 when absent).
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gateway_token_reaches_the_app_whatever_signed_the_request_in() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let auth = &gw.running.gateway.auth;
    let own = auth.seal(seeded_support::SESSION);
    // Another user's token (no live session behind it here: it still decrypts as ours).
    let other = auth.seal("another-users-session");
    // An operator's token (operator API only): never an app's either.
    let operator = auth.operator_token(alloy::primitives::Address::ZERO, u64::MAX);
    let cases = [
        (format!("authorization: Bearer {own}"), false),
        (format!("authorization: bearer  {other}"), false),
        (format!("authorization: Bearer {operator}"), false),
        ("authorization: Bearer app-token-xyz".to_owned(), true),
        ("authorization: Basic dXNlcjpwYXNz".to_owned(), true),
    ];
    for hyper in [false, true] {
        let mut requests: Vec<String> = cases
            .iter()
            .enumerate()
            .map(|(n, (line, _))| {
                cookie_request(
                    &gw,
                    &format!("/tok/{hyper}/{n}"),
                    std::slice::from_ref(line),
                    hyper,
                )
            })
            .collect();
        requests.push(request(&gw, "GET", "/end", &["connection: close"], ""));
        let text = exchange(&gw, &requests).await;
        assert_eq!(
            text.matches("HTTP/1.1 200 OK").count(),
            cases.len() + 1,
            "{text}"
        );
        for (n, (line, passes)) in cases.iter().enumerate() {
            let head = app.head_of(&format!("/tok/{hyper}/{n} "));
            assert_eq!(
                head.contains(&line.to_ascii_lowercase()),
                *passes,
                "{line} (hyper path: {hyper}) reached the app: {head}"
            );
            if !passes {
                assert!(!head.contains("authorization"), "{head}");
            }
        }
    }
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_cannot_set_the_gateway_cookie_on_any_path() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let kept = |text: &str| {
        let mut cookies: Vec<String> = text
            .lines()
            .filter_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("set-cookie:")
                    .map(|v| v.trim().to_owned())
            })
            .collect();
        cookies.sort();
        cookies
    };
    let want = ["app=kept; path=/", "grid_session_2=kept"];
    let fast = exchange(
        &gw,
        &[request(
            &gw,
            "GET",
            "/set-cookies",
            &["connection: close"],
            "",
        )],
    )
    .await;
    assert!(fast.starts_with("HTTP/1.1 200 OK"), "{fast}");
    assert_eq!(kept(&fast), want, "fast path: {fast}");
    let hyper = exchange(
        &gw,
        &[request(
            &gw,
            "POST",
            "/set-cookies",
            &["transfer-encoding: chunked", "connection: close"],
            "0\r\n\r\n",
        )],
    )
    .await;
    assert!(hyper.starts_with("HTTP/1.1 200 OK"), "{hyper}");
    assert_eq!(kept(&hyper), want, "hyper path: {hyper}");
    // HTTP/2 (prior knowledge, h2c).
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let token = gw.running.gateway.auth.seal(seeded_support::SESSION);
    let response = sender
        .send_request(
            http::Request::get("http://gw.test/set-cookies")
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut h2: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect();
    h2.sort();
    assert_eq!(h2, want, "HTTP/2");
    let page = metrics(&gw).await;
    assert_eq!(
        metric(&page, "grid_proxy_app_cookies_dropped_total"),
        24.0,
        "{page}"
    );
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_http2_connection_is_closed_at_the_head_deadline() {
    let app = app(false).await;
    let gw = gateway_with(&app, ProxyConfig::default(), |c| {
        c.http.header_read_timeout_ms = 300;
    })
    .await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // The preface and an empty SETTINGS frame: a client that opened properly, then idles.
    let mut settings = preface.clone();
    settings.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    for opening in [preface, settings] {
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        stream.write_all(&opening).await.unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a silent HTTP/2 connection is closed");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
    // A live client waiting longer than the deadline for its answer keeps its connection:
    // it answers the gateway's pings.
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let token = gw.running.gateway.auth.seal(seeded_support::SESSION);
    let response = sender
        .send_request(
            http::Request::get("http://gw.test/slow")
                .header("authorization", format!("Bearer {token}"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    gw.running.shutdown().await.unwrap();
}

/// Bytes of the body [`huge_app`] answers with.
const HUGE: usize = 64 << 20;

/// An app answering every request with a `HUGE` body; it sends on `closings` how much it
/// had written when its connection was closed (or `HUGE` if it wrote it all).
async fn huge_app() -> (App, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, closings) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let closed = closed.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                if read_head(&mut stream, &mut buf).await.is_none() {
                    return;
                }
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {HUGE}\r\n\r\n");
                let chunk = vec![b'x'; 1 << 16];
                let mut sent = 0;
                let mut ok = stream.write_all(head.as_bytes()).await.is_ok();
                while ok && sent < HUGE {
                    ok = stream.write_all(&chunk).await.is_ok();
                    sent += chunk.len();
                }
                let _ = closed.send(if ok { HUGE } else { sent });
            });
        }
    });
    let app = App {
        addr,
        connections: Arc::default(),
        seen: Arc::default(),
        heads: Arc::default(),
    };
    (app, closings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_nothing_is_cut_at_the_send_timeout_with_its_app_connection() {
    let (app, mut closings) = huge_app().await;
    let gw = gateway_with(&app, ProxyConfig::default(), |c| {
        c.http.send_timeout_ms = 500;
    })
    .await;
    for hyper in [false, true] {
        let mut client = TcpStream::connect(gw.addr).await.unwrap();
        let asked = if hyper {
            let framing = ["transfer-encoding: chunked"];
            request(&gw, "POST", "/huge", &framing, "0\r\n\r\n")
        } else {
            request(&gw, "GET", "/huge", &[], "")
        };
        client.write_all(asked.as_bytes()).await.unwrap();
        // The client reads nothing: the app's connection is closed under it.
        let sent = tokio::time::timeout(Duration::from_secs(10), closings.recv())
            .await
            .unwrap_or_else(|_| panic!("the app's connection is released (hyper path: {hyper})"))
            .unwrap();
        assert!(sent < HUGE, "the app could not have sent it all");
        // And the client's: what the buffers held, then the end.
        let mut got = 0;
        let mut chunk = vec![0u8; 1 << 16];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(n @ 1..) = client.read(&mut chunk).await {
                got += n;
            }
        })
        .await;
        assert!(ended.is_ok(), "the client's connection is closed");
        assert!(got < HUGE, "{got} bytes");
    }
    // Their tasks are gone: the page's own connection is the only one open.
    let page = metrics(&gw).await;
    assert_eq!(
        metric(&page, "grid_gateway_connections_open"),
        1.0,
        "{page}"
    );
    gw.running.shutdown().await.unwrap();
}

/// Reads `stream` until `needle` arrived; false when it closed first.
async fn read_until(stream: &mut TcpStream, needle: &str) -> bool {
    let mut buf = Vec::new();
    while !String::from_utf8_lossy(&buf).contains(needle) {
        if fill(stream, &mut buf).await.is_none() {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_accept_and_counted() {
    let app = app(false).await;
    let gw = gateway_with(&app, ProxyConfig::default(), |c| {
        c.http.max_connections = 2;
        // Counted over every worker.
        c.http.workers = 2;
    })
    .await;
    let mut held = Vec::new();
    for n in 0..2 {
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        let asked = request(&gw, "GET", &format!("/held/{n}"), &[], "");
        stream.write_all(asked.as_bytes()).await.unwrap();
        assert!(read_until(&mut stream, "body=0").await);
        held.push(stream);
    }
    let mut third = TcpStream::connect(gw.addr).await.unwrap();
    let asked = request(&gw, "GET", "/third", &["connection: close"], "");
    let _ = third.write_all(asked.as_bytes()).await;
    let mut answer = Vec::new();
    let refused =
        tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer)).await;
    assert!(refused.is_ok(), "the third connection is closed");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    drop(held.remove(0));
    let mut served = false;
    for _ in 0..50 {
        let mut again = TcpStream::connect(gw.addr).await.unwrap();
        let asked = request(&gw, "GET", "/again", &["connection: close"], "");
        if again.write_all(asked.as_bytes()).await.is_ok() && read_until(&mut again, "body=0").await
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "a place freed serves a new connection");
    drop(held);
    // Until the held connections' places are given back, the metrics request may itself be
    // closed at accept (a reset): ask again rather than fail.
    let mut page = String::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        let asked = "GET /_grid/metrics HTTP/1.1\r\nhost: gw.test\r\nconnection: close\r\n\r\n";
        let mut out = Vec::new();
        if stream.write_all(asked.as_bytes()).await.is_ok() {
            let _ =
                tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
        }
        page = String::from_utf8_lossy(&out).into_owned();
        if page.contains("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metric(&page, "grid_gateway_connections_refused_total") >= 1.0,
        "{page}"
    );
    gw.running.shutdown().await.unwrap();
}

/// One request on its own connection: `METHOD path` with `bearer`; the whole answer.
async fn with_bearer(gw: &Gateway, method: &str, path: &str, bearer: &str) -> String {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: gw.test\r\nauthorization: Bearer {bearer}\r\n\
         content-length: 0\r\nconnection: close\r\n\r\n"
    );
    exchange(gw, &[head]).await
}

#[track_caller]
fn assert_refused(text: &str, code: &str) {
    assert!(
        text.starts_with("HTTP/1.1 401 ") && text.contains(&format!("\"code\":\"{code}\"")),
        "expected 401 {code}, got:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_is_refused_at_the_next_request_once_revoked_logged_out_or_expired() {
    let app = app(false).await;
    let gw = gateway(&app, ProxyConfig::default()).await;
    let (auth, store) = (&gw.running.gateway.auth, &gw.running.gateway.store);
    let now = grid_gateway::policy::unix_now();
    // Sessions of the seeded user: revoked in the store, logged out, expiring, the device
    // that logs out everywhere and another device of the same wallet.
    let session = |id: &str, expires_at: u64| grid_gateway::store::SessionRecord {
        id: id.into(),
        address: seeded_support::USER,
        expires_at,
        scopes: None,
        created_at: now,
        revoked: false,
    };
    let ids = [
        "revoked",
        "logged-out",
        "expiring",
        "logs-out-all",
        "other-device",
    ];
    for id in ids {
        store.put_session(&session(id, now + 86_400)).unwrap();
    }
    let tokens: Vec<String> = ids.iter().map(|id| auth.seal(id)).collect();
    let [revoked, logged_out, expiring, logs_out_all, other_device] = &tokens[..] else {
        unreachable!()
    };
    // Each token is opened once and then served from the cache.
    let before = auth.cached_tokens();
    for round in 0..2 {
        for token in &tokens {
            let text = with_bearer(&gw, "GET", &format!("/warm/{round}"), token).await;
            assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        }
    }
    assert_eq!(auth.cached_tokens(), before + tokens.len());

    // Revoked in the store (what every way of ending a session writes).
    assert!(store.revoke_session("revoked").unwrap());
    assert_refused(
        &with_bearer(&gw, "GET", "/r", revoked).await,
        "session_revoked",
    );

    // Logged out through the API.
    let logout = with_bearer(&gw, "POST", "/_grid/v1/auth/logout", logged_out).await;
    assert!(logout.starts_with("HTTP/1.1 200 "), "{logout}");
    assert_refused(
        &with_bearer(&gw, "GET", "/l", logged_out).await,
        "session_revoked",
    );

    // Expired: its record now ends in the past; and a record that ends while its token is
    // cached is refused once now passes it.
    store.put_session(&session("expiring", now - 1)).unwrap();
    assert_refused(
        &with_bearer(&gw, "GET", "/e", expiring).await,
        "session_expired",
    );
    let soon = grid_gateway::policy::unix_now() + 1;
    store.put_session(&session("expiring", soon)).unwrap();
    while grid_gateway::policy::unix_now() < soon {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_refused(
        &with_bearer(&gw, "GET", "/e", expiring).await,
        "session_expired",
    );

    // Logged out everywhere from one device: the other device's cached token ends too.
    assert!(
        with_bearer(&gw, "GET", "/o", other_device)
            .await
            .starts_with("HTTP/1.1 200 ")
    );
    let all = with_bearer(&gw, "POST", "/_grid/v1/auth/logout-all", logs_out_all).await;
    assert!(all.starts_with("HTTP/1.1 200 "), "{all}");
    assert_refused(
        &with_bearer(&gw, "GET", "/o", other_device).await,
        "session_revoked",
    );

    // Forged tokens are refused and never cached, however many arrive.
    let cached = auth.cached_tokens();
    for n in 0..50 {
        let mut forged: Vec<char> = other_device.chars().collect();
        let i = n % 40; // inside the sealed bytes, away from base64 padding
        forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
        let forged: String = forged.into_iter().collect();
        assert_refused(
            &with_bearer(&gw, "GET", "/f", &forged).await,
            "invalid_session",
        );
    }
    assert_eq!(auth.cached_tokens(), cached, "a forged token was cached");
    gw.running.shutdown().await.unwrap();
}
