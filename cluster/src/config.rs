//! `[cluster]` of the gateway's config.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fetch::FetchConfig;
use crate::manifest::ManifestLimits;
use crate::sandbox::SandboxConfig;

/// How the gateway addresses an app's Service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntranceMode {
    /// `http://<service>.<namespace>.svc:<port>`: the gateway runs in the cluster and
    /// resolves Services through cluster DNS. Survives a Service being recreated with a new IP.
    #[default]
    ServiceDns,
    /// `http://<cluster IP>:<port>`: for a gateway outside the cluster that routes to the
    /// service network (and for the test fake, whose Services point at loopback).
    ClusterIp,
}

/// The cluster the gateway deploys into, and the rules for what it deploys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// A kubeconfig file. Default: none, which means what kubectl does: `KUBECONFIG`,
    /// `~/.kube/config`, then the in-cluster service account (the usual case: the gateway
    /// runs in the cluster with the ServiceAccount from `deploy/`).
    pub kubeconfig: Option<PathBuf>,
    /// Bound on one call to the API server. Default 10 s.
    pub api_timeout_ms: u64,
    /// How long an app's workloads get to become available before the deploy fails.
    /// Default 300 s: an image pull of a few GB on a slow registry fits.
    pub ready_timeout_secs: u64,
    /// How often readiness is polled. Default 1 s.
    pub ready_poll_ms: u64,
    /// How entrances are addressed. Default `service_dns`.
    pub entrance: EntranceMode,
    /// Sell what the cluster's nodes have (sum of allocatable of Ready, schedulable nodes)
    /// instead of `[capacity]`. Default true.
    pub capacity_from_nodes: bool,
    /// How often node capacity is re-read. Default 30 s.
    pub capacity_refresh_secs: u64,
    /// How often apps of ended or expired orders are looked for and torn down. Default 10 s:
    /// a user pays per second, so an app should not outlive its order by much.
    pub sweep_interval_secs: u64,
    /// Fetching manifest URLs.
    pub fetch: FetchConfig,
    /// Parsing manifests.
    pub manifest: ManifestLimits,
    /// The order's sandbox.
    pub sandbox: SandboxConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            kubeconfig: None,
            api_timeout_ms: 10_000,
            ready_timeout_secs: 300,
            ready_poll_ms: 1_000,
            entrance: EntranceMode::default(),
            capacity_from_nodes: true,
            capacity_refresh_secs: 30,
            sweep_interval_secs: 10,
            fetch: FetchConfig::default(),
            manifest: ManifestLimits::default(),
            sandbox: SandboxConfig::default(),
        }
    }
}

impl ClusterConfig {
    /// [`ClusterConfig::api_timeout_ms`].
    pub fn api_timeout(&self) -> Duration {
        Duration::from_millis(self.api_timeout_ms.max(1))
    }

    /// [`ClusterConfig::ready_timeout_secs`].
    pub fn ready_timeout(&self) -> Duration {
        Duration::from_secs(self.ready_timeout_secs)
    }

    /// [`ClusterConfig::ready_poll_ms`].
    pub fn ready_poll(&self) -> Duration {
        Duration::from_millis(self.ready_poll_ms.max(10))
    }

    /// [`ClusterConfig::capacity_refresh_secs`].
    pub fn capacity_refresh(&self) -> Duration {
        Duration::from_secs(self.capacity_refresh_secs.max(1))
    }

    /// [`ClusterConfig::sweep_interval_secs`].
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.sweep_interval_secs.max(1))
    }
}
