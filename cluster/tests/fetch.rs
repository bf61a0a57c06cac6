//! The manifest fetcher against real HTTP servers on loopback.
//!
//! The servers are raw tokio TCP listeners writing canned HTTP/1.1, so a test can send what
//! no well-behaved server library would (an endless body, a lying Content-Length, silence).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grid_cluster::fetch::{FetchConfig, FetchError, Fetched, Fetcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a test server does with a request for a path.
enum Reply {
    /// Writes these bytes and closes.
    Canned(Vec<u8>),
    /// Writes this head, then body bytes until the client goes away.
    Endless { head: String, chunked: bool },
    /// Reads the request and never answers.
    Silent,
}

struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    /// `Endless` replies that stopped because the client went away.
    abandoned: Arc<AtomicUsize>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    /// Waits until `n` endless replies were abandoned by the client.
    async fn wait_abandoned(&self, n: usize) {
        while self.abandoned.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A server on 127.0.0.1 answering each request with `route(path, port)`.
async fn serve(route: impl Fn(&str, u16) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let abandoned = Arc::new(AtomicUsize::new(0));
    let route = Arc::new(route);
    let server = Server {
        addr,
        connections: connections.clone(),
        requests: requests.clone(),
        abandoned: abandoned.clone(),
    };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            connections.fetch_add(1, Ordering::SeqCst);
            let (route, requests, abandoned) = (route.clone(), requests.clone(), abandoned.clone());
            tokio::spawn(async move {
                handle(stream, addr.port(), &*route, &requests, &abandoned).await;
            });
        }
    });
    server
}

async fn handle(
    mut stream: TcpStream,
    port: u16,
    route: &(dyn Fn(&str, u16) -> Reply + Send + Sync),
    requests: &Mutex<Vec<String>>,
    abandoned: &AtomicUsize,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
    requests.lock().expect("lock").push(head);
    match route(&path, port) {
        Reply::Canned(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Endless { head, chunked } => {
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b'x'; 16 * 1024];
            let mut framed = Vec::new();
            if chunked {
                framed.extend_from_slice(format!("{:x}\r\n", block.len()).as_bytes());
                framed.extend_from_slice(&block);
                framed.extend_from_slice(b"\r\n");
            } else {
                framed = block.clone();
            }
            while stream.write_all(&framed).await.is_ok() {}
            abandoned.fetch_add(1, Ordering::SeqCst);
        }
        Reply::Silent => {
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    }
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    Reply::Canned(bytes)
}

fn redirect(to: &str) -> Reply {
    response("302 Found", &[("Location", to)], b"")
}

const MANIFEST: &[u8] = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n";

fn loopback_allowed() -> FetchConfig {
    FetchConfig {
        allow_cidrs: vec!["127.0.0.1/32".parse().expect("cidr")],
        ..FetchConfig::default()
    }
}

/// Fetches under `config`; a fetch that does not end within 10 s fails the test instead of
/// hanging it.
async fn fetch(config: FetchConfig, url: &str) -> Result<Fetched, FetchError> {
    let fetcher = Fetcher::new(config).expect("fetcher");
    tokio::time::timeout(Duration::from_secs(10), fetcher.fetch(url))
        .await
        .expect("the fetch ends on its own")
}

async fn fetch_err(config: FetchConfig, url: &str) -> FetchError {
    match fetch(config, url).await {
        Ok(fetched) => panic!("{url} fetched: {:?}", fetched.final_url),
        Err(e) => e,
    }
}

/// In a module so that `cargo test -p grid-cluster fetch` selects these too.
mod fetch {
    use super::*;

    #[tokio::test]
    async fn internal_addresses_are_refused_by_default() {
        let server = serve(|_, _| response("200 OK", &[], MANIFEST)).await;
        let port = server.addr.port();
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://[::1]:{port}/"),
            format!("http://0.0.0.0:{port}/"),
            format!("http://2130706433:{port}/"),
        ] {
            let err = fetch_err(FetchConfig::default(), &url).await;
            assert_eq!(err.code(), "manifest_address_refused", "{url}: {err}");
            assert_eq!(err.status_hint(), 422);
        }
        assert_eq!(server.connections(), 0, "nothing reached the server");
    }

    /// Nothing listens on these; a connect attempt would sit in SYN retries for the whole
    /// connect timeout, so the short outer bound proves there was none.
    #[tokio::test]
    async fn metadata_and_private_addresses_are_refused_before_connecting() {
        for (url, says) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                "169.254.169.254 is link-local (cloud metadata)",
            ),
            ("http://10.0.0.1/app.yaml", "10.0.0.1 is private"),
            ("https://[fd00:ec2::254]/", "cloud metadata"),
            ("http://100.64.0.1/", "carrier-grade NAT"),
            (
                "http://[64:ff9b::a9fe:a9fe]/",
                "NAT64 form of 169.254.169.254",
            ),
        ] {
            let fetcher = Fetcher::new(FetchConfig::default()).expect("fetcher");
            let err = tokio::time::timeout(Duration::from_secs(2), fetcher.fetch(url))
                .await
                .expect("refused without a connect attempt")
                .expect_err("refused");
            assert_eq!(err.code(), "manifest_address_refused", "{url}: {err}");
            assert!(err.to_string().contains(says), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn a_name_is_checked_after_resolution() {
        let server = serve(|_, _| response("200 OK", &[], MANIFEST)).await;
        let url = format!("http://localhost:{}/", server.addr.port());
        let err = fetch_err(FetchConfig::default(), &url).await;
        assert_eq!(err.code(), "manifest_address_refused", "{err}");
        assert!(err.to_string().contains("localhost resolves to"), "{err}");
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn an_allowed_loopback_server_is_fetched() {
        let server =
            serve(|_, _| response("200 OK", &[("Content-Type", "application/yaml")], MANIFEST))
                .await;
        let url = server.url("/app.yaml");
        let fetched = fetch(loopback_allowed(), &url).await.expect("fetched");
        assert_eq!(&fetched.bytes[..], MANIFEST);
        assert_eq!(fetched.final_url.as_str(), url);

        let requests = server.requests.lock().expect("lock").clone();
        assert_eq!(requests.len(), 1);
        let head = requests[0].to_ascii_lowercase();
        assert!(head.starts_with("get /app.yaml http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nuser-agent: grid-gateway\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\nhost: {}\r\n", server.addr)),
            "{head}"
        );
        assert!(!head.contains("gzip") && !head.contains("proxy"), "{head}");
    }

    #[tokio::test]
    async fn a_body_of_exactly_the_limit_is_fetched_and_one_more_byte_is_not() {
        let server = serve(|path, _| {
            let len = if path == "/exact" { 1024 } else { 1025 };
            response("200 OK", &[], &vec![b'a'; len])
        })
        .await;
        let config = FetchConfig {
            max_bytes: 1024,
            ..loopback_allowed()
        };
        let fetched = fetch(config.clone(), &server.url("/exact"))
            .await
            .expect("fetched");
        assert_eq!(fetched.bytes.len(), 1024);
        let err = fetch_err(config, &server.url("/over")).await;
        assert_eq!(
            err,
            FetchError::TooLarge {
                limit: 1024,
                declared: Some(1025)
            }
        );
    }

    #[tokio::test]
    async fn redirects_are_followed_and_each_target_checked() {
        let server = serve(|path, port| match path {
            "/start" => redirect("/moved/app.yaml"),
            "/moved/app.yaml" => response("200 OK", &[], MANIFEST),
            "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-ipv6-loopback" => redirect(&format!("http://[::1]:{port}/moved/app.yaml")),
            "/to-ftp" => redirect("ftp://example.com/app.yaml"),
            _ => response("404 Not Found", &[], b""),
        })
        .await;

        let fetched = fetch(loopback_allowed(), &server.url("/start"))
            .await
            .expect("fetched");
        assert_eq!(&fetched.bytes[..], MANIFEST);
        assert_eq!(fetched.final_url.as_str(), server.url("/moved/app.yaml"));

        let err = fetch_err(loopback_allowed(), &server.url("/to-metadata")).await;
        assert_eq!(err.code(), "manifest_address_refused", "{err}");
        assert!(err.to_string().contains("cloud metadata"), "{err}");
        match &err {
            FetchError::AddressRefused { url, .. } => {
                assert_eq!(url, "http://169.254.169.254/latest/meta-data/")
            }
            other => panic!("{other:?}"),
        }

        // The same server under another address is a new target, checked on its own.
        let err = fetch_err(loopback_allowed(), &server.url("/to-ipv6-loopback")).await;
        assert_eq!(err.code(), "manifest_address_refused", "{err}");
        assert!(err.to_string().contains("::1 is loopback"), "{err}");

        let err = fetch_err(loopback_allowed(), &server.url("/to-ftp")).await;
        assert_eq!(err.code(), "manifest_redirect_refused", "{err}");
    }

    #[tokio::test]
    async fn redirects_are_bounded() {
        // /hop/N redirects to /hop/N-1; /hop/0 serves the manifest.
        let server = serve(|path, _| {
            match path
                .strip_prefix("/hop/")
                .and_then(|n| n.parse::<u32>().ok())
            {
                Some(0) => response("200 OK", &[], MANIFEST),
                Some(n) => redirect(&format!("/hop/{}", n - 1)),
                None => redirect("/loop"),
            }
        })
        .await;
        let five = fetch(loopback_allowed(), &server.url("/hop/5"))
            .await
            .expect("5 redirects");
        assert_eq!(five.final_url.path(), "/hop/0");

        let err = fetch_err(loopback_allowed(), &server.url("/hop/6")).await;
        assert_eq!(err, FetchError::TooManyRedirects { max: 5 });
        assert_eq!(err.code(), "manifest_too_many_redirects");

        let err = fetch_err(loopback_allowed(), &server.url("/loop")).await;
        assert_eq!(err.code(), "manifest_too_many_redirects");
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_while_the_server_keeps_sending() {
        let two_mib = 2 * 1024 * 1024;
        let server = serve(move |path, _| match path {
            "/declared" => Reply::Endless {
                head: format!("HTTP/1.1 200 OK\r\nContent-Length: {two_mib}\r\n\r\n"),
                chunked: false,
            },
            "/chunked" => Reply::Endless {
                head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
                chunked: true,
            },
            _ => Reply::Endless {
                head: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".into(),
                chunked: false,
            },
        })
        .await;

        let err = fetch_err(loopback_allowed(), &server.url("/declared")).await;
        assert_eq!(
            err,
            FetchError::TooLarge {
                limit: 1 << 20,
                declared: Some(two_mib as u64)
            }
        );

        // These two never end: the fetch returning at all shows it stopped reading.
        for path in ["/chunked", "/until-close"] {
            let err = fetch_err(loopback_allowed(), &server.url(path)).await;
            assert_eq!(
                err,
                FetchError::TooLarge {
                    limit: 1 << 20,
                    declared: None
                },
                "{path}"
            );
            assert_eq!(err.code(), "manifest_too_large");
        }
        // And it closed the connections, so the server could not keep the gateway reading.
        tokio::time::timeout(Duration::from_secs(10), server.wait_abandoned(3))
            .await
            .expect("every endless reply ends when the fetch gives up");
    }

    #[tokio::test]
    async fn compressed_bodies_are_refused() {
        let server = serve(|path, _| match path {
            "/gzip" => response(
                "200 OK",
                &[("Content-Encoding", "gzip")],
                b"\x1f\x8b\x08\x00",
            ),
            _ => response("200 OK", &[("Content-Encoding", "identity")], MANIFEST),
        })
        .await;
        let err = fetch_err(loopback_allowed(), &server.url("/gzip")).await;
        assert_eq!(err.code(), "manifest_encoded", "{err}");
        assert_eq!(err.status_hint(), 422);
        let plain = fetch(loopback_allowed(), &server.url("/identity"))
            .await
            .expect("identity is plain");
        assert_eq!(&plain.bytes[..], MANIFEST);
    }

    #[tokio::test]
    async fn only_http_and_https_are_fetched() {
        for url in [
            "ftp://127.0.0.1/app.yaml",
            "file:///etc/passwd",
            "data:text/plain,hi",
        ] {
            let err = fetch_err(loopback_allowed(), url).await;
            assert_eq!(err.code(), "manifest_url_scheme", "{url}: {err}");
        }
        let https_only = FetchConfig {
            allow_http: false,
            ..loopback_allowed()
        };
        let err = fetch_err(https_only, "http://127.0.0.1:1/").await;
        assert_eq!(err.code(), "manifest_url_scheme");
        let err = fetch_err(loopback_allowed(), "http://exa mple.com/").await;
        assert_eq!(err.code(), "manifest_url_invalid");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let server = serve(|_, _| Reply::Silent).await;
        let config = FetchConfig {
            total_timeout_ms: 300,
            ..loopback_allowed()
        };
        let err = fetch_err(config, &server.url("/")).await;
        assert_eq!(err.code(), "manifest_timeout", "{err}");
        assert_eq!(err.status_hint(), 504);
        assert_eq!(server.connections(), 1);
    }

    #[tokio::test]
    async fn deny_cidrs_refuse_an_otherwise_allowed_address() {
        let server = serve(|_, _| response("200 OK", &[], MANIFEST)).await;
        let config = FetchConfig {
            allow_cidrs: vec!["127.0.0.0/8".parse().expect("cidr")],
            deny_cidrs: vec!["127.0.0.1/32".parse().expect("cidr")],
            ..FetchConfig::default()
        };
        let err = fetch_err(config, &server.url("/")).await;
        assert_eq!(err.code(), "manifest_address_refused", "{err}");
        assert!(err.to_string().contains("deny_cidrs"), "{err}");
        assert_eq!(server.connections(), 0);
    }

    #[tokio::test]
    async fn a_non_2xx_status_is_an_error_with_the_status() {
        let server = serve(|path, _| match path {
            "/gone" => redirect("/missing"),
            _ => response("404 Not Found", &[], b"no such manifest"),
        })
        .await;
        let err = fetch_err(loopback_allowed(), &server.url("/gone")).await;
        match &err {
            FetchError::HttpStatus { status, url } => {
                assert_eq!(*status, 404);
                assert_eq!(*url, server.url("/missing"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.code(), "manifest_http_status");
        assert_eq!(err.status_hint(), 502);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let err = fetch_err(loopback_allowed(), &format!("http://{addr}/")).await;
        assert_eq!(err.code(), "manifest_connect_failed", "{err}");
        assert_eq!(err.status_hint(), 502);
    }

    #[tokio::test]
    async fn https_goes_through_tls_on_the_checked_connection() {
        // A plain-HTTP server behind an https URL: the handshake fails, which shows https
        // URLs are fetched over TLS on top of the guarded connector.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let err = fetch_err(loopback_allowed(), &format!("https://{addr}/")).await;
        assert_eq!(err.code(), "manifest_tls_failed", "{err}");

        // And the address check comes first for https too.
        let err = fetch_err(FetchConfig::default(), &format!("https://{addr}/")).await;
        assert_eq!(err.code(), "manifest_address_refused", "{err}");
    }
}
