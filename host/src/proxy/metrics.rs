//! Prometheus metrics of the proxy.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a proxied request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusClassLabels {
    /// `1xx` … `5xx`, the status the client got (the proxy's own 502/504 included).
    pub class: String,
}

/// Labels of the request path that served a proxied request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabels {
    /// `wire` (the HTTP/1.1 fast path) or `hyper` (HTTP/2, upgrades, chunked uploads, a
    /// connection handed over).
    pub path: String,
}

/// Which of the gateway's two request paths forwarded a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServedBy {
    /// The HTTP/1.1 wire fast path ([`crate::proxy::Forwarder::forward_wire`]).
    Wire,
    /// hyper's path ([`crate::proxy::Forwarder::forward`]).
    Hyper,
}

impl ServedBy {
    /// The `path` label.
    pub fn label(self) -> &'static str {
        match self {
            ServedBy::Wire => "wire",
            ServedBy::Hyper => "hyper",
        }
    }
}

/// The proxy's metrics. Cloning shares the series.
#[derive(Clone)]
pub struct ProxyMetrics {
    /// Proxied requests by status class.
    pub requests: Family<StatusClassLabels, Counter>,
    /// Time from sending a request to the app until its response headers, in seconds.
    pub upstream_duration: Histogram,
    /// Requests being forwarded now (until response headers).
    pub in_flight: Gauge,
    /// Upgraded connections (websockets) open now.
    pub tunnels_open: Gauge,
    /// Requests the authorization policy refused before they were forwarded.
    pub policy_denials: Counter,
    /// App `Set-Cookie` headers dropped because they set the gateway's session cookie.
    pub app_cookies_dropped: Counter,
    /// Forwarded requests by the path that served them (`wire`, `hyper`): whether
    /// HTTP/1.1 traffic (over TLS too) takes the fast path.
    pub served: Family<PathLabels, Counter>,
    /// The series of `served` for `wire` and `hyper`, made once.
    paths: [Counter; 2],
    /// The series of `requests` for 1xx … 5xx, made once: counting a request is then one
    /// atomic add, not a label allocation and a map lookup.
    classes: [Counter; 5],
}

/// 100 µs to 60 s: loopback apps answer in the first buckets, slow apps in the last.
const UPSTREAM_BUCKETS: [f64; 14] = [
    1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.5, 1.0, 10.0, 60.0,
];

impl Default for ProxyMetrics {
    fn default() -> Self {
        let requests = Family::<StatusClassLabels, Counter>::default();
        let classes = std::array::from_fn(|i| {
            requests
                .get_or_create(&StatusClassLabels {
                    class: format!("{}xx", i + 1),
                })
                .clone()
        });
        let served = Family::<PathLabels, Counter>::default();
        let paths = [ServedBy::Wire, ServedBy::Hyper].map(|by| {
            served
                .get_or_create(&PathLabels {
                    path: by.label().into(),
                })
                .clone()
        });
        ProxyMetrics {
            requests,
            classes,
            served,
            paths,
            upstream_duration: Histogram::new(UPSTREAM_BUCKETS),
            in_flight: Gauge::default(),
            tunnels_open: Gauge::default(),
            policy_denials: Counter::default(),
            app_cookies_dropped: Counter::default(),
        }
    }
}

impl ProxyMetrics {
    /// Registers every series under the `grid_proxy_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("grid_proxy");
        sub.register(
            "requests",
            "Proxied requests by status class",
            self.requests.clone(),
        );
        sub.register(
            "served",
            "Forwarded requests by the path that served them (wire: the HTTP/1.1 fast path, hyper: the rest)",
            self.served.clone(),
        );
        sub.register(
            "upstream_duration_seconds",
            "Time from forwarding a request to the app's response headers",
            self.upstream_duration.clone(),
        );
        sub.register(
            "in_flight",
            "Requests being forwarded now",
            self.in_flight.clone(),
        );
        sub.register(
            "tunnels_open",
            "Upgraded connections (websockets) open now",
            self.tunnels_open.clone(),
        );
        sub.register(
            "policy_denials",
            "Requests the authorization policy refused before forwarding",
            self.policy_denials.clone(),
        );
        sub.register(
            "app_cookies_dropped",
            "App Set-Cookie headers dropped because they set the gateway's session cookie",
            self.app_cookies_dropped.clone(),
        );
    }

    /// Counts a request that ended with `status`.
    pub(crate) fn count(&self, status: http::StatusCode) {
        // `StatusCode` is 100..=999; classes above 5xx are not HTTP's but still counted.
        let class = usize::from(status.as_u16() / 100);
        match self.classes.get(class - 1) {
            Some(counter) => counter.inc(),
            None => self
                .requests
                .get_or_create(&StatusClassLabels {
                    class: format!("{class}xx"),
                })
                .inc(),
        };
    }

    /// Counts a request forwarded by `by`.
    pub(crate) fn served_by(&self, by: ServedBy) {
        match by {
            ServedBy::Wire => self.paths[0].inc(),
            ServedBy::Hyper => self.paths[1].inc(),
        };
    }

    /// The count of requests forwarded by `by`.
    pub fn served_count(&self, by: ServedBy) -> u64 {
        match by {
            ServedBy::Wire => self.paths[0].get(),
            ServedBy::Hyper => self.paths[1].get(),
        }
    }

    /// The count of requests in a status class (`"2xx"`, `"5xx"` …).
    pub fn request_count(&self, class: &str) -> u64 {
        self.requests
            .get_or_create(&StatusClassLabels {
                class: class.into(),
            })
            .get()
    }
}
