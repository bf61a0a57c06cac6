//! Load-test rig for the proxy's forwarding core, used by `host/benches/proxy.sh`:
//! a small upstream app, the forwarder in front of it without a policy, and the forwarder
//! with the built-in authorization policy evaluated on every request.
//!
//! `cargo run --release -p grid-gateway --example proxy_bench -- <app port> <proxy port> <proxy+policy port>`
//! Each server runs on its own runtime with one worker thread (like one nginx worker).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use grid_gateway::policy::{PolicyEngine, PolicySet, reload};
use grid_gateway::proxy::{
    ClientInfo, ForwardOptions, Forwarder, ProxyBody, ProxyConfig, Upstream, full,
};
use grid_policy_sdk::{Address, RequestMeta};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Handler = Arc<
    dyn Fn(
            Request<Incoming>,
            SocketAddr,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<ProxyBody>> + Send>>
        + Send
        + Sync,
>;

/// Serves `handler` on `port` on a dedicated runtime with one worker thread (multi-thread
/// flavour, as the gateway runs, so policy evaluations take the `block_in_place` path).
fn serve(port: u16, handler: Handler) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
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
        })
    })
}

fn proxy(upstream: Upstream, policy: Option<Arc<PolicySet>>) -> Handler {
    let forwarder = Forwarder::new(ProxyConfig::default());
    Arc::new(move |req, peer| {
        let (forwarder, upstream, policy) = (forwarder.clone(), upstream.clone(), policy.clone());
        Box::pin(async move {
            if let Some(policy) = policy {
                let meta = RequestMeta {
                    method: req.method().to_string(),
                    path: req.uri().path().to_owned(),
                    host: None,
                    headers: Vec::new(),
                    caller: Some(Address([0xaa; 20])),
                    order_id: Some("1".into()),
                    scopes: Vec::new(),
                };
                match policy.authorize_request(meta).await {
                    Ok(d) if d.is_allowed() => {}
                    _ => {
                        return Response::builder()
                            .status(StatusCode::FORBIDDEN)
                            .body(full("denied"))
                            .expect("response");
                    }
                }
            }
            let client = ClientInfo { peer, https: false };
            match forwarder
                .forward(req, &upstream, &client, &ForwardOptions::default())
                .await
            {
                Ok(response) => response,
                Err(e) => Response::builder()
                    .status(e.status())
                    .body(full(e.code()))
                    .expect("response"),
            }
        })
    })
}

fn main() {
    let ports: Vec<u16> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [app, plain, with_policy] = ports[..] else {
        eprintln!("usage: proxy_bench <app port> <proxy port> <proxy+policy port>");
        std::process::exit(2);
    };
    let hello: Handler = Arc::new(|_req, _peer| {
        Box::pin(async {
            Response::builder()
                .header("content-type", "text/plain")
                .body(full("hello, world\n"))
                .expect("response")
        })
    });
    let upstream: Upstream = format!("http://127.0.0.1:{app}").parse().expect("upstream");
    let set = Arc::new(PolicySet::new(
        PolicyEngine::builder().build().expect("engine"),
    ));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(reload(&set, None));
    let threads = [
        serve(app, hello),
        serve(plain, proxy(upstream.clone(), None)),
        serve(with_policy, proxy(upstream, Some(set))),
    ];
    eprintln!("app :{app}  proxy :{plain}  proxy+policy :{with_policy}");
    for t in threads {
        let _ = t.join();
    }
}
