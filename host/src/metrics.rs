//! The gateway's Prometheus metrics (the policy runtime registers its own beside them).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an HTTP request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template (`/_grid/v1/orders/{id}/accept`), never the raw path, so ids do
    /// not explode the label space.
    pub route: String,
    /// Method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route template.
    pub route: String,
}

/// Labels of a chain call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChainLabels {
    /// `order` or `activate`.
    pub call: String,
    /// `ok` or the error code.
    pub result: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s: quotes take milliseconds, accepts wait for a block.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The gateway's own metrics.
#[derive(Clone)]
pub struct GatewayMetrics {
    /// Requests by route, method and status.
    pub http_requests: Family<HttpLabels, Counter>,
    /// Request latency by route, seconds.
    pub http_latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Chain calls by call and result.
    pub chain_calls: Family<ChainLabels, Counter>,
    /// Client connections open now, over all workers (what `http.max_connections` caps).
    pub connections_open: Gauge,
    /// Client connections closed at accept because `http.max_connections` were open.
    pub connections_refused: Counter,
    /// Available apps whose namespace or workloads vanished from the cluster.
    pub apps_vanished: Counter,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        GatewayMetrics {
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(latency_histogram),
            chain_calls: Family::default(),
            connections_open: Gauge::default(),
            connections_refused: Counter::default(),
            apps_vanished: Counter::default(),
        }
    }
}

impl GatewayMetrics {
    /// Registers under the `grid_gateway` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("grid_gateway");
        sub.register(
            "http_requests",
            "HTTP requests by route, method and status",
            self.http_requests.clone(),
        );
        sub.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            self.http_latency.clone(),
        );
        sub.register(
            "chain_calls",
            "Chain calls by call and result",
            self.chain_calls.clone(),
        );
        sub.register(
            "connections_open",
            "Client connections open now, over all workers",
            self.connections_open.clone(),
        );
        sub.register(
            "connections_refused",
            "Client connections closed at accept because http.max_connections were open",
            self.connections_refused.clone(),
        );
        sub.register(
            "apps_vanished",
            "Available apps found without their namespace or workloads (failed, app_vanished)",
            self.apps_vanished.clone(),
        );
    }

    /// Counts one chain call.
    pub fn chain_call(&self, call: &str, result: &str) {
        self.chain_calls
            .get_or_create(&ChainLabels {
                call: call.into(),
                result: result.into(),
            })
            .inc();
    }
}
