//! Request-side refusals at the edge (issue 16, items 1, 2, 7, 8, 9, 10), through a whole
//! gateway (`server::start` with a seeded session and route, the reference authorization
//! policy denying `/admin` and `TRACE`) in front of a recording app on loopback. Each case
//! goes through both request paths: the wire fast path (the request first on its
//! connection) and hyper's (the same request after an API call moved the connection to
//! hyper), and over h2c or in absolute form where the case says so.

mod seeded_support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid_gateway::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The recording app: every request head it read (lower case), and how many connections
/// it accepted.
struct App {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl App {
    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Whether the app read a request whose request line contains `needle`.
    fn saw(&self, needle: &str) -> bool {
        let needle = needle.to_ascii_lowercase();
        self.heads()
            .iter()
            .any(|h| h.lines().next().is_some_and(|l| l.contains(&needle)))
    }
}

/// An app answering `<request line> body=<n>` to everything; `/twice` answers twice (the
/// second answer at once after the first), `/late-twice` a second answer 50 ms later. A
/// chunked body is read to its last chunk.
async fn app() -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (counted, log) = (connections.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    buf.drain(..head_end);
                    log.lock().unwrap().push(head.clone());
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    let body_len = if let Some(len) = length {
                        len
                    } else if head.contains("transfer-encoding: chunked") {
                        loop {
                            if let Some(at) = buf.windows(5).position(|w| w == b"0\r\n\r\n") {
                                break at + 5;
                            }
                            let mut chunk = [0u8; 4096];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                    } else {
                        0
                    };
                    while buf.len() < body_len {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..body_len);
                    let line = head.lines().next().unwrap_or_default().to_owned();
                    let echo = format!("{line} body={body_len}");
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{echo}",
                        echo.len()
                    );
                    let stale = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nSTALE";
                    if line.contains("/twice") && !line.contains("/late-twice") {
                        answer.push_str(stale);
                    }
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    if line.contains("/late-twice") {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if stream.write_all(stale.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    App {
        addr,
        connections,
        heads,
    }
}

/// A whole gateway in front of `app` whose authorization policy denies `/admin` and
/// `TRACE`, with `apps.test` as its apps domain, and a bearer header for its session.
struct Gateway {
    addr: SocketAddr,
    bearer: String,
    running: grid_gateway::server::Running,
    _dir: tempfile::TempDir,
}

async fn gateway(app: &App, tweak: impl FnOnce(&mut grid_gateway::config::Config)) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    seeded_support::seed(dir.path(), &format!("http://{}", app.addr));
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("authorization.settings.json"),
        r#"{"deny_path_prefixes":["/admin"],"deny_methods":["TRACE"]}"#,
    )
    .unwrap();
    let mut config =
        seeded_support::config("127.0.0.1:0", dir.path(), true, ProxyConfig::default());
    config.policy.dir = Some(policies);
    config.process.apps_domain = Some("apps.test".into());
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

/// The two ways into the gateway for an HTTP/1.1 request.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// The request is the first on its connection: the wire fast path takes it.
    Wire,
    /// An API request first: the connection, then this request, is hyper's.
    Hyper,
}

const BOTH: [Path; 2] = [Path::Wire, Path::Hyper];

impl Gateway {
    /// `METHOD target HTTP/1.1` with the session, `host`, `extra` header lines and a raw
    /// `body` (no framing added), closing the connection after it.
    fn raw(&self, method: &str, target: &str, host: &str, extra: &[&str], body: &str) -> String {
        let mut text = format!(
            "{method} {target} HTTP/1.1\r\nhost: {host}\r\n{}\r\nconnection: close\r\n",
            self.bearer
        );
        for line in extra {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        text.push_str(body);
        text
    }

    /// Sends `request` by `path` and reads until the gateway closes; returns the answer to
    /// `request` (the API's answer before it, on hyper's path, cut off).
    async fn send(&self, path: Path, request: &str) -> String {
        let api = "GET /_grid/healthz HTTP/1.1\r\nhost: gw.test\r\n\r\n";
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let text = match path {
            Path::Wire => request.to_owned(),
            Path::Hyper => format!("{api}{request}"),
        };
        stream.write_all(text.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
            .await
            .expect("the gateway closes the connection after the request")
            .ok();
        let out = String::from_utf8_lossy(&out).into_owned();
        match path {
            Path::Wire => out,
            Path::Hyper => {
                // The health answer is `{"status":"ok"...}`-like JSON with a length.
                let length: usize = out
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse().ok())
                    .expect("the API answers with a length");
                let body_at = out.find("\r\n\r\n").expect("a whole head") + 4;
                out[body_at + length..].to_owned()
            }
        }
    }
}

/// Asserts `answer` is `status` in the error envelope with `code`.
fn refused(answer: &str, status: u16, code: &str, case: &str) {
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status} ")),
        "{case}: expected {status}, got:\n{answer}"
    );
    assert!(
        answer.contains(&format!(r#"{{"error":{{"code":"{code}","message":"#)),
        "{case}: expected code {code}, got:\n{answer}"
    );
}

fn ok(answer: &str, case: &str) {
    assert!(
        answer.starts_with("HTTP/1.1 200 "),
        "{case}: expected 200, got:\n{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_the_policy_and_the_app_could_read_differently_is_refused() {
    let app = app().await;
    let gw = gateway(&app, |_| {}).await;
    let ambiguous = [
        "/admin%2fsecret.txt",
        "/admin%2Fsecret.txt",
        "/x/..%2fadmin/secret.txt",
        "/%2fadmin/secret.txt",
        "/admin%5csecret.txt",
        "/x/%2e%2e/admin/secret.txt",
        "/x/.%2e/admin",
        "/x/%2E./admin",
        "/%2e/admin",
        "/admin%00.txt",
        "/a%0d%0ax",
        "/a%7f",
        "/a%1b",
    ];
    for path in BOTH {
        for target in ambiguous {
            let case = format!("{target} on {path:?}");
            let answer = gw
                .send(path, &gw.raw("GET", target, "gw.test", &[], ""))
                .await;
            refused(&answer, 400, "ambiguous_path", &case);
            // The same on the apps domain (the whole path space is the app's).
            let answer = gw
                .send(path, &gw.raw("GET", target, "1.apps.test", &[], ""))
                .await;
            refused(
                &answer,
                400,
                "ambiguous_path",
                &format!("{case}, apps host"),
            );
            // And in absolute form.
            let absolute = format!("http://gw.test{target}");
            let answer = gw
                .send(path, &gw.raw("GET", &absolute, "gw.test", &[], ""))
                .await;
            refused(&answer, 400, "ambiguous_path", &format!("{case}, absolute"));
        }
        // A raw backslash is no path an app routes alike either.
        let answer = gw
            .send(
                path,
                &gw.raw("GET", "/admin\\secret.txt", "gw.test", &[], ""),
            )
            .await;
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "raw \\ on {path:?}: {answer}"
        );
        // What normalises cleanly still reaches the policy as the app reads it.
        let answer = gw
            .send(path, &gw.raw("GET", "/%61dmin/x", "gw.test", &[], ""))
            .await;
        refused(&answer, 403, "request_denied", "/%61dmin");
        let answer = gw
            .send(path, &gw.raw("GET", "/a%20b/%7euser", "gw.test", &[], ""))
            .await;
        ok(&answer, "/a%20b");
        let answer = gw
            .send(path, &gw.raw("GET", "/x/..z/.x", "gw.test", &[], ""))
            .await;
        ok(&answer, "dots that are no dot segment");
    }
    for needle in ["secret", "%00", "%0d", "%7f", "%1b", "%2e"] {
        assert!(
            !app.saw(needle),
            "{needle} reached the app: {:?}",
            app.heads()
        );
    }
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_h2c_an_ambiguous_target_is_refused_too() {
    let app = app().await;
    let gw = gateway(&app, |_| {}).await;
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let token = gw.bearer.trim_start_matches("authorization: ").to_owned();
    for (target, status, code) in [
        ("/admin%2fsecret.txt", 400, Some("ambiguous_path")),
        ("/x/%2e%2e/admin", 400, Some("ambiguous_path")),
        ("/admin/x", 403, Some("request_denied")),
        ("/public", 200, None),
    ] {
        let request = http::Request::builder()
            .uri(format!("http://gw.test{target}"))
            .header("authorization", &token)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{target} over h2c");
        use http_body_util::BodyExt;
        let body = response.into_body().collect().await.unwrap().to_bytes();
        if let Some(code) = code {
            let text = String::from_utf8_lossy(&body);
            assert!(
                text.contains(&format!(r#""code":"{code}""#)),
                "{target}: {text}"
            );
        }
    }
    assert!(!app.saw("secret"), "{:?}", app.heads());
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_can_let_encoded_slashes_through_and_the_policy_sees_them_encoded() {
    let app = app().await;
    let gw = gateway(&app, |c| c.process.allow_encoded_slash = true).await;
    for path in BOTH {
        let answer = gw
            .send(path, &gw.raw("GET", "/files/a%2Fb", "gw.test", &[], ""))
            .await;
        ok(&answer, "an encoded slash, allowed");
        // A dot segment made by splitting at an encoded slash is still refused.
        let answer = gw
            .send(path, &gw.raw("GET", "/x/..%2fadmin", "gw.test", &[], ""))
            .await;
        refused(&answer, 400, "ambiguous_path", "..%2f, allowed slashes");
        // Backslashes and control bytes stay refused.
        let answer = gw
            .send(path, &gw.raw("GET", "/a%5cb", "gw.test", &[], ""))
            .await;
        refused(&answer, 400, "ambiguous_path", "%5c, allowed slashes");
    }
    assert!(app.saw("get /files/a%2fb http/1.1"), "{:?}", app.heads());
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_method_in_another_spelling_is_refused() {
    let app = app().await;
    let gw = gateway(&app, |_| {}).await;
    for path in BOTH {
        for method in ["trace", "Trace", "get", "Get", "pOST", "delete", "patch"] {
            let answer = gw
                .send(path, &gw.raw(method, "/x", "gw.test", &[], ""))
                .await;
            refused(
                &answer,
                400,
                "non_canonical_method",
                &format!("{method} on {path:?}"),
            );
        }
        let answer = gw
            .send(path, &gw.raw("TRACE", "/x", "gw.test", &[], ""))
            .await;
        refused(&answer, 403, "request_denied", "TRACE");
        // Extension methods are case-sensitive tokens: they pass as sent.
        let answer = gw
            .send(path, &gw.raw("purge", "/x", "gw.test", &[], ""))
            .await;
        ok(&answer, "an extension method");
    }
    assert!(!app.saw("trace"), "{:?}", app.heads());
    assert!(
        !app.heads()
            .iter()
            .any(|h| h.starts_with("get ") && !h.starts_with("get /"))
    );
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_host_fields_are_refused_and_an_absolute_target_names_the_host() {
    let app = app().await;
    let gw = gateway(&app, |_| {}).await;
    for path in BOTH {
        let answer = gw
            .send(
                path,
                &gw.raw("GET", "/x", "gw.test", &["host: 1.apps.test"], ""),
            )
            .await;
        refused(
            &answer,
            400,
            "duplicate_host",
            &format!("two hosts on {path:?}"),
        );
        let answer = gw
            .send(
                path,
                &gw.raw("GET", "/_grid/healthz", "gw.test", &["Host: gw.test"], ""),
            )
            .await;
        refused(
            &answer,
            400,
            "duplicate_host",
            &format!("two hosts, API, {path:?}"),
        );
        // RFC 9112 §3.2.2: the absolute form's authority wins over the Host field.
        let answer = gw
            .send(
                path,
                &gw.raw(
                    "GET",
                    "http://1.apps.test/_grid/healthz",
                    "gw.test",
                    &[],
                    "",
                ),
            )
            .await;
        ok(&answer, "absolute form on the apps host");
        assert!(
            answer.contains("get /_grid/healthz http/1.1 body=0"),
            "the app's path, not the API: {answer}"
        );
    }
    let last = app.heads().pop().unwrap();
    assert!(last.contains("x-forwarded-host: 1.apps.test"), "{last}");
    assert!(!app.saw("/x "), "{:?}", app.heads());
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_the_clients_400_and_the_app_connection_goes() {
    let app = app().await;
    let gw = gateway(&app, |_| {}).await;
    for path in BOTH {
        let answer = gw
            .send(
                path,
                &gw.raw(
                    "POST",
                    "/upload",
                    "gw.test",
                    &["transfer-encoding: chunked"],
                    "5\r\nhelloXX\r\n0\r\n\r\n",
                ),
            )
            .await;
        refused(
            &answer,
            400,
            "bad_request_body",
            &format!("bad chunk on {path:?}"),
        );
    }
    // The app may accept the broken uploads' connections after the gateway has answered:
    // count once the number has settled.
    let mut before = app.connections.load(Ordering::SeqCst);
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = app.connections.load(Ordering::SeqCst);
        if now == before {
            break;
        }
        before = now;
    }
    let answer = gw
        .send(Path::Wire, &gw.raw("GET", "/after", "gw.test", &[], ""))
        .await;
    ok(&answer, "the next request");
    assert!(answer.contains("get /after http/1.1 body=0"), "{answer}");
    assert_eq!(
        app.connections.load(Ordering::SeqCst),
        before + 1,
        "the app connection of a broken upload is never reused"
    );
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_on_get_or_head_is_refused_unless_allowed() {
    let app = app().await;
    let gw = gateway(&app, |_| {}).await;
    for path in BOTH {
        for (method, extra, body) in [
            ("GET", &["content-length: 5"][..], "hello"),
            ("GET", &["transfer-encoding: chunked"][..], "0\r\n\r\n"),
            (
                "GET",
                &["transfer-encoding: chunked"][..],
                "5\r\nhello\r\n0\r\n\r\n",
            ),
        ] {
            let case = format!("{method} {extra:?} on {path:?}");
            let answer = gw
                .send(path, &gw.raw(method, "/smuggle", "gw.test", extra, body))
                .await;
            refused(&answer, 400, "body_not_allowed", &case);
        }
        let answer = gw
            .send(
                path,
                &gw.raw(
                    "HEAD",
                    "/smuggle",
                    "gw.test",
                    &["content-length: 5"],
                    "hello",
                ),
            )
            .await;
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "HEAD with a body: {answer}"
        );
        let answer = gw
            .send(
                path,
                &gw.raw("GET", "/empty", "gw.test", &["content-length: 0"], ""),
            )
            .await;
        ok(&answer, "GET with an empty length");
    }
    assert!(!app.saw("/smuggle"), "{:?}", app.heads());
    gw.running.shutdown().await.unwrap();

    let app = crate::app().await;
    let gw = gateway(&app, |c| c.process.allow_get_body = true).await;
    for path in BOTH {
        let answer = gw
            .send(
                path,
                &gw.raw("GET", "/search", "gw.test", &["content-length: 5"], "hello"),
            )
            .await;
        ok(&answer, "allowed GET body");
        assert!(answer.contains("get /search http/1.1 body=5"), "{answer}");
    }
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_answering_twice_never_answers_the_next_request() {
    let app = app().await;
    let gw = gateway(&app, |_| {}).await;
    let api = "GET /_grid/healthz HTTP/1.1\r\nhost: gw.test\r\n\r\n";
    for path in BOTH {
        for first in ["/twice", "/late-twice"] {
            let mut stream = TcpStream::connect(gw.addr).await.unwrap();
            if let Path::Hyper = path {
                stream.write_all(api.as_bytes()).await.unwrap();
            }
            let keep = gw
                .raw("GET", first, "gw.test", &[], "")
                .replace("connection: close\r\n", "");
            stream.write_all(keep.as_bytes()).await.unwrap();
            // The stale answer is on the app connection by the time the next request goes.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let next = gw.raw("GET", "/next", "gw.test", &[], "");
            stream.write_all(next.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
                .await
                .expect("closed after the last request")
                .ok();
            let out = String::from_utf8_lossy(&out);
            assert!(!out.contains("STALE"), "{first} on {path:?}: {out}");
            assert!(
                out.contains("get /next http/1.1 body=0"),
                "{first} on {path:?}: {out}"
            );
        }
    }
    gw.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_claims_of_address_url_or_method_never_reach_the_app() {
    let app = app().await;
    let gw = gateway(&app, |_| {}).await;
    let claims = [
        "x-real-ip: 6.6.6.6",
        "true-client-ip: 6.6.6.6",
        "cf-connecting-ip: 6.6.6.6",
        "x-client-ip: 6.6.6.6",
        "forwarded-for: 6.6.6.6",
        "x-cluster-client-ip: 6.6.6.6",
        "fastly-client-ip: 6.6.6.6",
        "x-originating-ip: 6.6.6.6",
        "x-remote-ip: 6.6.6.6",
        "x-remote-addr: 6.6.6.6",
        "x-original-url: /admin",
        "x-rewrite-url: /admin",
        "x-original-uri: /admin",
        "x-http-method-override: DELETE",
        "x-http-method: DELETE",
        "x-method-override: DELETE",
        "x_real_ip: 6.6.6.6",
    ];
    for path in BOTH {
        let answer = gw
            .send(path, &gw.raw("GET", "/claims", "gw.test", &claims, ""))
            .await;
        ok(&answer, "claims");
        let head = app.heads().pop().unwrap();
        assert!(!head.contains("6.6.6.6"), "{path:?}: {head}");
        assert!(!head.contains("/admin"), "{path:?}: {head}");
        assert!(!head.contains("delete"), "{path:?}: {head}");
    }
    gw.running.shutdown().await.unwrap();
}
