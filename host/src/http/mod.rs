//! The gateway's HTTP API: the router, its layers (request ids, tracing, metrics, CORS,
//! body limit), handlers, errors and the OpenAPI document. Handlers call the services
//! on [`Gateway`]; nothing here talks to wasmtime or alloy.

pub mod api;
pub mod apps;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod node;
mod openapi;
pub mod operator;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::gateway::Gateway;
use crate::metrics::{HttpLabels, RouteLabels};
pub use openapi::openapi;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole router for `gateway`: the API (`/_grid/…`, `/greet`) with its layers, and
/// Process for every other path. Process is routed before the API's layer stack (request
/// ids, spans, per-route metrics, CORS, body limit): a proxied request pays only for what
/// it needs, and has its own metrics (`grid_proxy_*`). The server's workers dispatch the
/// same way per connection ([`crate::wire::serve`], then [`connection_service`] for what the fast
/// path does not take); this router is for embedding and tests that call it without a
/// socket.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let api = api_router(gateway.clone());
    Router::new().fallback_service(tower::service_fn(move |request: Request| {
        let (api, gateway) = (api.clone(), gateway.clone());
        async move {
            let mut request = request;
            if let Err(error) = crate::admission::settle_host(&mut request) {
                return Ok(error.into_response());
            }
            if is_api(&gateway, &request) {
                api.oneshot(request).await
            } else {
                Ok(crate::admission::hyper_path::handle(&gateway, request).await)
            }
        }
    }))
}

/// The service of one client connection from `peer`: Process requests go straight to the
/// proxy with their body as received, on the connection's thread; API requests through
/// [`api_router`] on `api_runtime`, so that what they start (a deploy, a chain client's
/// connections) outlives no worker.
pub fn connection_service(
    gateway: Arc<Gateway>,
    api: Router,
    api_runtime: tokio::runtime::Handle,
    peer: SocketAddr,
    listener: Arc<Listener>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = Response,
    Error = Infallible,
    Future = impl Future<Output = Result<Response, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let (api, gateway, api_runtime, listener) = (
            api.clone(),
            gateway.clone(),
            api_runtime.clone(),
            listener.clone(),
        );
        async move {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(ClientTls(listener.secure));
            let settled = crate::admission::require_host(&request)
                .and_then(|()| crate::admission::settle_host(&mut request));
            if let Err(error) = settled {
                return Ok(listener.finish(error.into_response()));
            }
            if let Some(redirect) = &listener.redirect
                && let Some(response) = redirect.answer(&request)
            {
                return Ok(response);
            }
            let response = if is_api(&gateway, &request) {
                let handled = api_runtime.spawn(api.oneshot(request.map(axum::body::Body::new)));
                handled.await.unwrap_or_else(|error| {
                    tracing::error!(%error, "an API handler panicked");
                    Ok(axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
                })
            } else {
                Ok(crate::admission::hyper_path::handle(&gateway, request).await)
            };
            response.map(|response| listener.finish(response))
        }
    })
}

/// Whether the request's connection is TLS (a request extension set per connection).
#[derive(Clone, Copy, Debug)]
pub struct ClientTls(pub bool);

/// What a listener does beyond serving: the plain one may redirect to HTTPS, the TLS one
/// may add HSTS. One per listener, shared by its connections.
#[derive(Clone, Debug, Default)]
pub struct Listener {
    /// Connections on it are TLS.
    pub secure: bool,
    /// Requests are answered with a redirect to HTTPS (the plain listener with `[tls]`).
    pub redirect: Option<Redirect>,
    /// `Strict-Transport-Security`, added to every response that has none (TLS only).
    pub hsts: Option<HeaderValue>,
}

impl Listener {
    /// The plain listener's role under `config`, the HTTPS listener bound on `https_port`.
    pub fn plain(config: &crate::config::Config, https_port: u16) -> Listener {
        let redirect = config
            .tls
            .as_ref()
            .filter(|tls| tls.redirect_http)
            .map(|tls| Redirect {
                https_port,
                plain_health: tls.plain_health,
            });
        Listener {
            secure: false,
            redirect,
            hsts: None,
        }
    }

    /// The TLS listener's role under `tls`.
    pub fn tls(tls: &crate::tls::TlsConfig) -> Listener {
        Listener {
            secure: true,
            redirect: None,
            hsts: tls.hsts.header_value(),
        }
    }

    fn finish(&self, mut response: Response) -> Response {
        if let Some(hsts) = &self.hsts {
            response
                .headers_mut()
                .entry(header::STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| hsts.clone());
        }
        response
    }
}

/// The plain listener's redirect to HTTPS.
#[derive(Clone, Debug)]
pub struct Redirect {
    /// The HTTPS listener's port (left out of `Location` when 443).
    pub https_port: u16,
    /// `/_grid/healthz` and `/_grid/readyz` are served, not redirected.
    pub plain_health: bool,
}

/// Where ACME HTTP-01 challenges are answered (RFC 8555 §8.3): never redirected.
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

impl Redirect {
    /// The `308` for `request`, or `None` when it is served here.
    pub fn answer<B>(&self, request: &hyper::Request<B>) -> Option<Response> {
        let path = request.uri().path();
        if path.starts_with(ACME_CHALLENGE_PREFIX)
            || (self.plain_health && matches!(path, "/_grid/healthz" | "/_grid/readyz"))
        {
            return None;
        }
        let no_host = || {
            crate::error::Error::BadHost("a redirect to HTTPS needs the request's host")
                .into_response()
        };
        let Some(host) = crate::admission::host(request).filter(|h| !h.is_empty()) else {
            return Some(no_host());
        };
        let name = match host.rsplit_once(':') {
            // `[::1]:80` and `example.com:80`, not the colons inside `[::1]`.
            Some((name, port)) if !port.contains(']') => name,
            _ => host,
        };
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let location = if self.https_port == 443 {
            format!("https://{name}{target}")
        } else {
            format!("https://{name}:{}{target}", self.https_port)
        };
        let Ok(location) = HeaderValue::from_str(&location) else {
            return Some(no_host());
        };
        Some(
            (
                axum::http::StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
        )
    }
}

/// The gateway's own paths; everything else is Process. On an app's own host
/// (`<order-id>.<apps_domain>`) the whole path space is the app's, `/_grid/` included.
fn is_api<B>(gateway: &Gateway, request: &hyper::Request<B>) -> bool {
    is_api_path(
        gateway,
        request.uri().path(),
        crate::admission::host(request),
    )
}

/// [`is_api`] for a request's path and `Host`.
pub(crate) fn is_api_path(gateway: &Gateway, path: &str, host: Option<&str>) -> bool {
    let gateway_path = path == "/greet" || path == "/_grid" || path.starts_with("/_grid/");
    // ACME HTTP-01 challenges are the gateway's on every host, app hosts included (a 404
    // without `[tls.acme]`): one answer whatever the config, as the OpenAPI document says.
    path.starts_with(ACME_CHALLENGE_PREFIX) || (gateway_path && !gateway.process.is_app_host(host))
}

/// The API (`/_grid/…`, `/greet`) with its layers; unknown `/_grid/` paths are 404.
pub fn api_router(gateway: Arc<Gateway>) -> Router {
    let body_limit = gateway.config.http.body_limit_bytes;
    let cors = cors(&gateway.config.http.cors_origins);
    let api = Router::new()
        .route("/_grid/v1/quote", post(handlers::quote))
        .route("/_grid/v1/orders/{id}", get(handlers::order))
        .route("/_grid/v1/orders/{id}/accept", post(handlers::accept))
        .route("/_grid/v1/auth/nonce", get(handlers::nonce))
        .route("/_grid/v1/auth/login", post(handlers::login))
        .route("/_grid/v1/auth/logout", post(handlers::logout))
        .route("/_grid/v1/auth/logout-all", post(handlers::logout_all))
        .route("/_grid/v1/auth/session", get(handlers::session))
        .route("/_grid/v1/node", get(handlers::node))
        .route("/_grid/v1/apps", post(apps::deploy))
        .route(
            "/_grid/v1/apps/{order_id}",
            get(apps::status).delete(apps::delete),
        )
        .route("/_grid/v1/apps/{order_id}/logs", get(apps::logs))
        .route("/_grid/v1/apps/{order_id}/handoff", post(apps::handoff))
        .route("/_grid/v1/operator/login", post(operator::login))
        .route("/_grid/v1/operator/policies", get(operator::policies))
        .route("/_grid/v1/operator/policies/{world}", get(operator::policy))
        .route(
            "/_grid/v1/operator/policies/{world}/candidate",
            axum::routing::put(operator::set_candidate).delete(operator::clear_candidate),
        )
        .route(
            "/_grid/v1/operator/policies/{world}/promote",
            post(operator::promote),
        )
        .route(
            "/_grid/v1/operator/policies/{world}/rollback",
            post(operator::rollback),
        )
        .route(
            "/_grid/v1/operator/disagreements",
            get(operator::disagreements),
        )
        .route("/_grid/v1/operator/recordings", get(operator::recordings))
        .route(
            "/_grid/v1/operator/recordings/{name}",
            get(operator::recording),
        )
        .route("/_grid/healthz", get(handlers::healthz))
        .route("/_grid/readyz", get(handlers::readyz))
        .route("/_grid/metrics", get(handlers::metrics))
        .route("/_grid/openapi.json", get(openapi::serve))
        .route("/greet", get(handlers::greet))
        .route(
            "/.well-known/acme-challenge/{token}",
            get(handlers::acme_challenge),
        )
        .fallback(not_found)
        // axum answers a known path's unknown method with an empty 405; ours carries the
        // envelope (axum still adds `Allow`).
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(gateway.clone(), track));
    let mut router = api.with_state(gateway);
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    router
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// `405 method_not_allowed` in the error envelope.
async fn method_not_allowed(method: Method) -> crate::error::Error {
    crate::error::Error::MethodNotAllowed(method.to_string())
}

/// CORS with credentials for the configured origins; none configured, no CORS headers
/// (same-origin only).
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-grid-order"),
            ])
            .expose_headers([REQUEST_ID])
            .max_age(Duration::from_secs(600)),
    )
}

/// Counts every request by route template and status, and observes its latency.
async fn track(State(gw): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    gw.metrics
        .http_requests
        .get_or_create(&HttpLabels {
            route: route.clone(),
            method,
            status: response.status().as_u16(),
        })
        .inc();
    gw.metrics
        .http_latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Unknown API paths.
async fn not_found(uri: axum::http::Uri) -> crate::error::Error {
    crate::error::Error::NotFound(uri.path().to_owned())
}
