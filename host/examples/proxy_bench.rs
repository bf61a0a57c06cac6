//! Load-test rig for Process, used by `host/benches/proxy.sh`: a small upstream app and two
//! whole gateways in front of it (the real router, session check, route table and
//! forwarder), one asking the authorization policy on every request and one not.
//!
//! `cargo run --release -p grid-gateway --example proxy_bench -- <app port> <gateway port>
//! <gateway+policy port> <work dir>`
//!
//! Each gateway's store is seeded with one user, one running order whose app is available
//! at the upstream, and a session; the session's bearer tokens are written to
//! `<work dir>/tokens` (one line per gateway) for the load generator. No chain and no
//! cluster are involved: what is measured is the request path. The app runs on a runtime
//! with one worker thread; each gateway serves with one HTTP worker (`http.workers = 1`,
//! like nginx's `worker_processes 1`), its background work on a runtime of its own.
//!
//! With `GRID_BENCH_TLS=<port>,<cert.pem>,<key.pem>` (`host/benches/tls.sh`) the gateway
//! without the policy also serves HTTPS on that port with that certificate (`[tls]`, the
//! same HTTP worker; its plain listener keeps serving instead of redirecting).

use std::convert::Infallible;
use std::path::Path;

use grid_gateway::orders::Hooks;
use grid_gateway::proxy::ProxyConfig;
use http::Response;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[path = "../tests/seeded_support/mod.rs"]
mod seeded;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The upstream: `hello, world` for every request.
fn app(port: u16) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_req| async {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "text/plain")
                                .body(Full::new(bytes::Bytes::from_static(b"hello, world\n")))
                                .expect("response"),
                        )
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    })
}

/// A gateway on `port` in front of `entrance`; returns the session's bearer token.
fn gateway(port: u16, entrance: String, policy: bool, root: &Path) -> String {
    let data_dir = root.join(format!("gw-{port}"));
    seeded::seed(&data_dir, &entrance);
    let mut config = seeded::config(
        &format!("127.0.0.1:{port}"),
        &data_dir,
        policy,
        ProxyConfig::default(),
    );
    // One HTTP worker, like nginx's `worker_processes 1`.
    config.http.workers = 1;
    if !policy && let Some(tls) = tls_from_env() {
        config.tls = Some(tls);
        config.session.secure = true;
    }
    // instructions.sh runs the rig under valgrind, whose address space is smaller than the
    // pooling allocator's reservations for 256 instances.
    if let Some(max) = std::env::var("GRID_BENCH_MAX_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.policy.limits.max_instances = max;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let running = grid_gateway::server::start(config, Hooks::default())
                .await
                .expect("gateway");
            let token = running.gateway.auth.seal(seeded::SESSION);
            let _ = tx.send(token);
            std::future::pending::<()>().await;
            drop(running);
        })
    });
    rx.recv().expect("the gateway started")
}

/// `GRID_BENCH_TLS=<port>,<cert.pem>,<key.pem>`: an HTTPS listener for the gateway.
fn tls_from_env() -> Option<grid_gateway::tls::TlsConfig> {
    let value = std::env::var("GRID_BENCH_TLS").ok()?;
    let parts: Vec<&str> = value.split(',').collect();
    let [port, cert, key] = parts[..] else {
        eprintln!("GRID_BENCH_TLS must be <port>,<cert.pem>,<key.pem>");
        std::process::exit(2);
    };
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\nredirect_http = false\n"
    );
    Some(toml::from_str(&text).expect("GRID_BENCH_TLS: a [tls] table"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ports: Vec<u16> = args.iter().take(3).filter_map(|a| a.parse().ok()).collect();
    let (&[app_port, plain, with_policy], Some(work)) = (&ports[..], args.get(3)) else {
        eprintln!("usage: proxy_bench <app port> <gateway port> <gateway+policy port> <work dir>");
        std::process::exit(2);
    };
    let root = Path::new(work);
    let entrance = format!("http://127.0.0.1:{app_port}");
    let upstream = app(app_port);
    // Each gateway has its own session key, so each has its own token.
    let tokens = [
        gateway(plain, entrance.clone(), false, root),
        gateway(with_policy, entrance, true, root),
    ];
    std::fs::write(root.join("tokens"), tokens.join("\n") + "\n").expect("token file");
    eprintln!("app :{app_port}  gateway :{plain}  gateway+policy :{with_policy}");
    let _ = upstream.join();
}
