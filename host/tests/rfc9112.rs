//! RFC 9112 conformance of the gateway as a proxy: one table of raw requests, each with the
//! outcome the RFC's MUST rules (§2–§7: message format, request line, field syntax, body
//! length, chunked coding, Host) require of a server that forwards. Every row is written on a
//! raw TCP socket to a whole gateway (`server::start`, a seeded session, the request signed
//! in by the session cookie so it reaches Process) in front of a recording app on loopback,
//! once on each request path: the wire fast path (the row first on its connection) and
//! hyper's (an API request first moves the connection to hyper). A refusal must not reach
//! the app; a forwarded row must reach it as the table says (method, target, body framing
//! and decoded bytes). The results are printed as a table (`-- --nocapture`).
//!
//! Rows that are a MAY or SHOULD are not asserted, except where the gateway's own rule is
//! stricter and documented (both `Transfer-Encoding` and `Content-Length` → 400).

mod seeded_support;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid_gateway::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the app read of one request.
#[derive(Clone, Debug)]
struct Seen {
    /// `METHOD target HTTP/1.1`, as sent.
    line: String,
    /// The head, lower case.
    head: String,
    /// How the body was framed.
    framing: Framing,
    /// The body, decoded.
    body: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Framing {
    /// No `Content-Length` nor `Transfer-Encoding`.
    None,
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// The recording app: what it read, request by request.
struct App {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl App {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
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

/// Takes one CRLF-ended line off `buf` (reading more as needed), without its CRLF.
async fn line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(at) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf[..at].to_vec();
            buf.drain(..at + 2);
            return Some(line);
        }
        fill(stream, buf).await?;
    }
}

/// Takes `n` bytes off `buf` (reading more as needed).
async fn take(stream: &mut TcpStream, buf: &mut Vec<u8>, n: usize) -> Option<Vec<u8>> {
    while buf.len() < n {
        fill(stream, buf).await?;
    }
    Some(buf.drain(..n).collect())
}

/// Reads one request off `stream`, decoding a chunked body strictly (a proxy must send
/// well-formed chunks).
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Seen> {
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        fill(stream, buf).await?;
    };
    let text = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end);
    let head = text.to_ascii_lowercase();
    let line = text.lines().next().unwrap_or_default().to_owned();
    let field = |name: &str| {
        head.lines()
            .skip(1)
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let (framing, body) = if field("transfer-encoding") == Some("chunked") {
        let mut body = Vec::new();
        loop {
            let size_line = line_text(&self::line(stream, buf).await?);
            let size = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).ok()?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self::line(stream, buf).await?.is_empty() {}
                break;
            }
            body.extend(take(stream, buf, size).await?);
            if take(stream, buf, 2).await? != b"\r\n" {
                return None;
            }
        }
        (Framing::Chunked, body)
    } else if let Some(length) = field("content-length") {
        let length: usize = length.parse().ok()?;
        (Framing::Length(length), take(stream, buf, length).await?)
    } else {
        (Framing::None, Vec::new())
    };
    Some(Seen {
        line,
        head,
        framing,
        body,
    })
}

fn line_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An app recording every request and answering each `200 seen`.
async fn app() -> App {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(request) = read_request(&mut stream, &mut buf).await {
                    log.lock().unwrap().push(request);
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nseen";
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    App { addr, seen }
}

/// A whole gateway in front of `app` (no request policy: admission alone), with
/// `apps.test` as its apps domain, and the session cookie line of its seeded session.
struct Gateway {
    addr: SocketAddr,
    cookie: String,
    running: grid_gateway::server::Running,
    _dir: tempfile::TempDir,
}

async fn gateway(app: &App) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    seeded_support::seed(dir.path(), &format!("http://{}", app.addr));
    let mut config =
        seeded_support::config("127.0.0.1:0", dir.path(), false, ProxyConfig::default());
    config.process.apps_domain = Some("apps.test".into());
    config.http.workers = 1;
    let running = grid_gateway::server::start(config, grid_gateway::orders::Hooks::default())
        .await
        .unwrap();
    Gateway {
        addr: running.addr,
        cookie: format!(
            "cookie: grid_session={}\r\n",
            running.gateway.auth.seal(seeded_support::SESSION)
        ),
        running,
        _dir: dir,
    }
}

/// The two ways into the gateway for an HTTP/1 request.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// The row is the first request on its connection.
    Wire,
    /// An API request first: the connection, then the row, is hyper's.
    Hyper,
}

impl Gateway {
    /// Sends `request` by `path` and reads until the gateway closes the connection; the
    /// answer to `request` (on hyper's path, the API's answer before it cut off).
    async fn send(&self, path: Path, request: &[u8]) -> String {
        let api = b"GET /_grid/healthz HTTP/1.1\r\nhost: gw.test\r\n\r\n";
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let mut bytes = Vec::new();
        if let Path::Hyper = path {
            bytes.extend_from_slice(api);
        }
        bytes.extend_from_slice(request);
        stream.write_all(&bytes).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
            .await
            .expect("the gateway closes the connection after the row")
            .ok();
        let out = String::from_utf8_lossy(&out).into_owned();
        match path {
            Path::Wire => out,
            Path::Hyper => {
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

/// The outcome a row requires.
enum Want {
    /// Refused with this status (and, when the gateway itself refuses, this code in the
    /// error envelope); `unseen`: the app must have read nothing of it.
    Refused {
        status: u16,
        code: Option<&'static str>,
        unseen: bool,
    },
    /// Answered by the app, which read this request line and body.
    Forwarded {
        line: &'static str,
        framing: Framing,
        body: &'static str,
    },
}

use Want::{Forwarded, Refused};

const fn refused(status: u16) -> Want {
    Refused {
        status,
        code: None,
        unseen: true,
    }
}

const fn refused_as(status: u16, code: &'static str) -> Want {
    Refused {
        status,
        code: Some(code),
        unseen: true,
    }
}

const fn forwarded(line: &'static str, framing: Framing, body: &'static str) -> Want {
    Forwarded {
        line,
        framing,
        body,
    }
}

/// One row: the RFC clause, a name, the raw request (`{s}` is the session cookie line and
/// `connection: close`; `{k}` the cookie alone, for rows the gateway must close after), and
/// the outcome (on hyper's path another one where the row says so).
struct Row {
    rule: &'static str,
    case: &'static str,
    request: &'static str,
    want: Want,
    on_hyper: Option<Want>,
}

const fn row(rule: &'static str, case: &'static str, request: &'static str, want: Want) -> Row {
    Row {
        rule,
        case,
        request,
        want,
        on_hyper: None,
    }
}

const GET_X: &str = "GET /x HTTP/1.1";

fn table() -> Vec<Row> {
    use Framing::{Chunked, Length};
    vec![
        // §2.2, §3: message format and the request line.
        row(
            "§3",
            "plain request",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\n{s}\r\n",
            forwarded(GET_X, Framing::None, ""),
        ),
        row(
            "§3",
            "query kept",
            "GET /x?a=1&b HTTP/1.1\r\nhost: gw.test\r\n{s}\r\n",
            forwarded("GET /x?a=1&b HTTP/1.1", Framing::None, ""),
        ),
        row(
            "§3.1",
            "method not a token",
            "G@T /x HTTP/1.1\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§3.1",
            "empty method",
            " /x HTTP/1.1\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§3",
            "two SP after method",
            "GET  /x HTTP/1.1\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§3",
            "no SP before version",
            "GET /x\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§3",
            "space in target",
            "GET /a b HTTP/1.1\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.3",
            "lower-case http name",
            "GET /x http/1.1\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.3",
            "version without minor",
            "GET /x HTTP/1\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.3",
            "two-digit minor",
            "GET /x HTTP/1.10\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.3",
            "HTTP/2.0 on an HTTP/1 connection",
            "GET /x HTTP/2.0\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.3",
            "unknown major version",
            "GET /x HTTP/3.0\r\nhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.2",
            "whitespace before the first field",
            "GET /x HTTP/1.1\r\n host: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.2",
            "bare CR ends the request line",
            "GET /x HTTP/1.1\rhost: gw.test\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.2",
            "bare CR in a field value",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx-a: b\rc\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§2.2",
            "bare LF line ends (MAY accept)",
            "GET /x HTTP/1.1\nhost: gw.test\n{s}\n",
            forwarded(GET_X, Framing::None, ""),
        ),
        // §5: field syntax.
        row(
            "§5.1",
            "SP between name and colon",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx-a : b\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§5.1",
            "TAB between name and colon",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx-a\t: b\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§5.1",
            "SP inside a name",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx a: b\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§5.1",
            "non-token byte in a name",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx(a): b\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§5.1",
            "empty name",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\n: b\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§5.1",
            "no colon",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx-a b\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§5.2",
            "obs-fold",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx-a: b\r\n c\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "§5.2",
            "obs-fold by TAB",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx-a: b\r\n\tc\r\n{s}\r\n",
            refused(400),
        ),
        row(
            "RFC 9110 §5.5",
            "NUL in a field value",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nx-a: b\0c\r\n{s}\r\n",
            refused(400),
        ),
        // §6: message body length.
        row(
            "§6.3",
            "Content-Length body",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 5\r\n{s}\r\nhello",
            forwarded("POST /x HTTP/1.1", Length(5), "hello"),
        ),
        row(
            "§6.3",
            "identical Content-Length twice",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 5\r\ncontent-length: 5\r\n{s}\r\nhello",
            forwarded("POST /x HTTP/1.1", Length(5), "hello"),
        ),
        row(
            "§6.3",
            "differing Content-Length",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 5\r\ncontent-length: 6\r\n{s}\r\nhello!",
            refused(400),
        ),
        row(
            "§6.3",
            "Content-Length list of two values",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 5, 6\r\n{s}\r\nhello!",
            refused(400),
        ),
        row(
            "§6.3",
            "Content-Length with a sign",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: +5\r\n{s}\r\nhello",
            refused(400),
        ),
        row(
            "§6.3",
            "negative Content-Length",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: -1\r\n{s}\r\nhello",
            refused(400),
        ),
        row(
            "§6.3",
            "Content-Length not decimal",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 0x5\r\n{s}\r\nhello",
            refused(400),
        ),
        row(
            "§6.3",
            "Content-Length with a trailing letter",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 5a\r\n{s}\r\nhello",
            refused(400),
        ),
        row(
            "§6.3",
            "empty Content-Length",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length:\r\n{s}\r\nhello",
            refused(400),
        ),
        row(
            "§6.3",
            "Content-Length over u64",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 18446744073709551616\r\n{s}\r\nhello",
            refused(400),
        ),
        // Both Transfer-Encoding and Content-Length: the RFC lets a server refuse, or read
        // the chunks, remove the Content-Length before forwarding and close after; this
        // gateway refuses with 400 `ambiguous_length` wherever it sees the head itself (a
        // connection's requests up to its hand-over to hyper, the wire column). After the
        // hand-over hyper parses the head and removes the Content-Length before the gateway
        // sees the request, so there the RFC's other branch is what is asserted: forwarded
        // chunked, without Content-Length, and the connection closed (the rows keep it
        // alive otherwise).
        Row {
            on_hyper: Some(forwarded("POST /x HTTP/1.1", Chunked, "hello")),
            ..row(
                "§6.3 + project rule",
                "Transfer-Encoding then Content-Length",
                "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n{k}\r\n5\r\nhello\r\n0\r\n\r\n",
                refused_as(400, "ambiguous_length"),
            )
        },
        Row {
            on_hyper: Some(forwarded("POST /x HTTP/1.1", Chunked, "hello")),
            ..row(
                "§6.3 + project rule",
                "Content-Length then Transfer-Encoding",
                "POST /x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n{k}\r\n5\r\nhello\r\n0\r\n\r\n",
                refused_as(400, "ambiguous_length"),
            )
        },
        row(
            "§6.3",
            "chunked body",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\n{s}\r\n5\r\nhello\r\n0\r\n\r\n",
            forwarded("POST /x HTTP/1.1", Chunked, "hello"),
        ),
        row(
            "§6.1",
            "chunked spelled in another case",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: Chunked\r\n{s}\r\n5\r\nhello\r\n0\r\n\r\n",
            forwarded("POST /x HTTP/1.1", Chunked, "hello"),
        ),
        row(
            "§6.3",
            "final coding not chunked",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: gzip\r\n{s}\r\nhello",
            refused(400),
        ),
        row(
            "§6.3",
            "chunked not last",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked, gzip\r\n{s}\r\n5\r\nhello\r\n0\r\n\r\n",
            refused(400),
        ),
        row(
            "§6.3",
            "chunked not last, two fields",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\ntransfer-encoding: identity\r\n{s}\r\n5\r\nhello\r\n0\r\n\r\n",
            refused(400),
        ),
        // §7: chunked transfer coding.
        row(
            "§7.1",
            "chunk size not hex",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\n{s}\r\nz\r\nhello\r\n0\r\n\r\n",
            refused(400),
        ),
        row(
            "§7.1",
            "chunk size with 0x",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\n{s}\r\n0x5\r\nhello\r\n0\r\n\r\n",
            refused(400),
        ),
        row(
            "§7.1",
            "chunk size overflowing u64",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\n{s}\r\n10000000000000005\r\nhello\r\n0\r\n\r\n",
            refused(400),
        ),
        row(
            "§7.1",
            "no CRLF after chunk data",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\n{s}\r\n5\r\nhelloXX\r\n0\r\n\r\n",
            refused_as(400, "bad_request_body"),
        ),
        row(
            "§7.1.1",
            "chunk extensions ignored",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\n{s}\r\n5;a=b;c=\"d\"\r\nhello\r\n0;e\r\n\r\n",
            forwarded("POST /x HTTP/1.1", Chunked, "hello"),
        ),
        row(
            "§7.1.2",
            "trailer section",
            "POST /x HTTP/1.1\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\n{s}\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
            forwarded("POST /x HTTP/1.1", Chunked, "hello"),
        ),
        // §3.2: Host.
        row(
            "§3.2",
            "no Host in HTTP/1.1",
            "GET /x HTTP/1.1\r\n{s}\r\n",
            refused_as(400, "bad_host"),
        ),
        row(
            "§3.2",
            "no Host, absolute form",
            "GET http://gw.test/x HTTP/1.1\r\n{s}\r\n",
            refused_as(400, "bad_host"),
        ),
        row(
            "§3.2",
            "two Host fields",
            "GET /x HTTP/1.1\r\nhost: gw.test\r\nhost: gw.test\r\n{s}\r\n",
            refused_as(400, "duplicate_host"),
        ),
        row(
            "§3.2",
            "Host not a host",
            "GET /x HTTP/1.1\r\nhost: gw test\r\n{s}\r\n",
            refused_as(400, "bad_host"),
        ),
        row(
            "§3.2",
            "Host with a path",
            "GET /x HTTP/1.1\r\nhost: gw.test/y\r\n{s}\r\n",
            refused_as(400, "bad_host"),
        ),
        row(
            "§3.2",
            "Host with a userinfo",
            "GET /x HTTP/1.1\r\nhost: me@gw.test\r\n{s}\r\n",
            refused_as(400, "bad_host"),
        ),
        row(
            "§3.2.2",
            "absolute form",
            "GET http://gw.test/x?q HTTP/1.1\r\nhost: gw.test\r\n{s}\r\n",
            forwarded("GET /x?q HTTP/1.1", Framing::None, ""),
        ),
        row(
            "§3.2.2",
            "absolute-form authority wins",
            "GET http://1.apps.test/_grid/healthz HTTP/1.1\r\nhost: gw.test\r\n{s}\r\n",
            forwarded("GET /_grid/healthz HTTP/1.1", Framing::None, ""),
        ),
        // HTTP/1.0.
        row(
            "§3.2",
            "HTTP/1.0 without Host",
            "GET /x HTTP/1.0\r\n{s}\r\n",
            forwarded(GET_X, Framing::None, ""),
        ),
        row(
            "§6.3",
            "HTTP/1.0 Content-Length body",
            "POST /x HTTP/1.0\r\nhost: gw.test\r\ncontent-length: 5\r\n{s}\r\nhello",
            forwarded("POST /x HTTP/1.1", Length(5), "hello"),
        ),
        row(
            "§6.1",
            "HTTP/1.0 with Transfer-Encoding",
            "POST /x HTTP/1.0\r\nhost: gw.test\r\ntransfer-encoding: chunked\r\n{s}\r\n5\r\nhello\r\n0\r\n\r\n",
            refused(400),
        ),
    ]
}

/// Runs `row` on `path`; an error line when the outcome is not the required one.
async fn run(gw: &Gateway, app: &App, row: &Row, path: Path) -> (String, Result<(), String>) {
    let eol = if row.request.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let cookie = format!("{}{eol}", gw.cookie.trim_end());
    let session = format!("{cookie}connection: close{eol}");
    let request = row.request.replace("{s}", &session).replace("{k}", &cookie);
    let want = match (path, &row.on_hyper) {
        (Path::Hyper, Some(want)) => want,
        _ => &row.want,
    };
    let before = app.seen().len();
    let answer = gw.send(path, request.as_bytes()).await;
    // An HTTP/1.0 request is answered in HTTP/1.0.
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| answer.strip_prefix("HTTP/1.0 "))
        .and_then(|a| a.get(..3))
        .unwrap_or("---")
        .to_owned();
    let seen: Vec<Seen> = app.seen().split_off(before);
    let got = match seen.first() {
        Some(s) => format!("{status} app: {} {:?} {}B", s.line, s.framing, s.body.len()),
        None => format!("{status} app: -"),
    };
    let verdict = match want {
        Refused {
            status: want,
            code,
            unseen,
        } => {
            if status != want.to_string() {
                Err(format!("want {want}, got {status}"))
            } else if *unseen && !seen.is_empty() {
                Err(format!("refused, but the app read {:?}", seen[0].line))
            } else if let Some(code) = code
                && !answer.contains(&format!(r#"{{"error":{{"code":"{code}""#))
            {
                Err(format!("want code {code}: {answer}"))
            } else {
                Ok(())
            }
        }
        Forwarded {
            line,
            framing,
            body,
        } => match seen.as_slice() {
            // A sender never sends both framings (RFC 9112 §6.2, §6.3).
            [s] if s.framing == Framing::Chunked && s.head.contains("\ncontent-length:") => {
                Err(format!("forwarded with both framings:\n{}", s.head))
            }
            [s] if status == "200"
                && s.line == *line
                && s.framing == *framing
                && s.body == body.as_bytes() =>
            {
                Ok(())
            }
            [s] => Err(format!(
                "want {line} {framing:?} {body:?}, app read {} {:?} {:?} ({status})\n{}",
                s.line,
                s.framing,
                String::from_utf8_lossy(&s.body),
                s.head
            )),
            _ => Err(format!(
                "want forwarded once, the app read {} ({status}): {answer}",
                seen.len()
            )),
        },
    };
    (got, verdict)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_must_of_rfc_9112_for_a_proxy_holds_on_both_request_paths() {
    let app = app().await;
    let gw = gateway(&app).await;
    let mut report = String::from("\nRFC 9112 conformance (wire | hyper)\n");
    let mut failures = Vec::new();
    for row in table() {
        let mut cells = Vec::new();
        for path in [Path::Wire, Path::Hyper] {
            let (got, verdict) = run(&gw, &app, &row, path).await;
            let mark = if verdict.is_ok() { "ok" } else { "FAIL" };
            cells.push(format!("{mark:4} {got}"));
            if let Err(why) = verdict {
                failures.push(format!("{} {} on {path:?}: {why}", row.rule, row.case));
            }
        }
        let _ = writeln!(
            report,
            "{:<20} {:<40} {:<50} | {}",
            row.rule, row.case, cells[0], cells[1]
        );
    }
    println!("{report}");
    gw.running.shutdown().await.unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
