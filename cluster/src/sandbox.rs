//! The objects the gateway writes around an order's app: the namespace (Pod Security
//! `restricted`), a ResourceQuota and a LimitRange from the order's resources, and
//! NetworkPolicies that admit traffic only from the gateway and from the order's own pods
//! and let the pods reach DNS and the internet, but not private ranges, link-local (cloud
//! metadata at 169.254.169.254), the cluster's networks or the node.
//!
//! [`sandbox_objects`] builds them; the caller applies the namespace first, then the rest,
//! before the user's objects.

use std::collections::BTreeMap;

use grid_policy_sdk::Resources;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

use crate::labels;

/// Name of the order's ResourceQuota.
pub const QUOTA_NAME: &str = "grid-quota";
/// Name of the order's LimitRange.
pub const LIMIT_RANGE_NAME: &str = "grid-limits";

/// IPv4 ranges order pods never reach: "this network", private (RFC 1918), shared/CGNAT
/// (RFC 6598, also Alibaba's metadata), loopback, link-local (every cloud's metadata
/// service), IETF protocol assignments, benchmarking, multicast and reserved.
pub const DENIED_IPV4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IPv6 ranges order pods never reach: unspecified and loopback, IPv4-mapped and NAT64
/// (both can spell a private IPv4 address), discard, 6to4 (same), unique local (AWS's
/// metadata at fd00:ec2::254), link-local and multicast.
pub const DENIED_IPV6: &[&str] = &[
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// `[sandbox]` in the gateway's configuration: what the order's objects are derived from
/// besides the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Namespace the gateway's pods run in: ingress is admitted from there only.
    /// Default `grid-gateway`.
    pub gateway_namespace: String,
    /// Labels of the gateway's pods (all must match). Default
    /// `{"app.kubernetes.io/name" = "grid-gateway"}`. Empty admits every pod of
    /// `gateway_namespace`.
    pub gateway_pod_labels: BTreeMap<String, String>,
    /// Namespace of the cluster's DNS. Default `kube-system`.
    pub dns_namespace: String,
    /// Labels of the cluster's DNS pods. Default `{"k8s-app" = "kube-dns"}` (CoreDNS keeps
    /// the label). Egress to them is allowed on port 53, UDP and TCP.
    pub dns_pod_labels: BTreeMap<String, String>,
    /// The cluster's pod CIDRs, denied in egress besides [`DENIED_IPV4`] and
    /// [`DENIED_IPV6`]. Default none: the usual ones (k3s 10.42.0.0/16, kubeadm's choices)
    /// are private ranges, denied anyway; list them when they are not.
    #[serde(with = "cidr_list")]
    pub pod_cidrs: Vec<IpNet>,
    /// The cluster's Service CIDRs, denied in egress. Default none (k3s 10.43.0.0/16 and
    /// kubeadm's 10.96.0.0/12 are private).
    #[serde(with = "cidr_list")]
    pub service_cidrs: Vec<IpNet>,
    /// More ranges denied in egress: the nodes' and the gateway's public addresses, the
    /// provider's own networks. Default none.
    #[serde(with = "cidr_list")]
    pub denied_egress_cidrs: Vec<IpNet>,
    /// Most pods of an order (ResourceQuota `pods`). Default 64.
    pub max_pods: u32,
    /// Most PersistentVolumeClaims of an order (ResourceQuota `persistentvolumeclaims`).
    /// Default 16.
    pub max_pvcs: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            gateway_namespace: "grid-gateway".into(),
            gateway_pod_labels: BTreeMap::from([(
                "app.kubernetes.io/name".into(),
                "grid-gateway".into(),
            )]),
            dns_namespace: "kube-system".into(),
            dns_pod_labels: BTreeMap::from([("k8s-app".into(), "kube-dns".into())]),
            pod_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            denied_egress_cidrs: Vec::new(),
            max_pods: 64,
            max_pvcs: 16,
        }
    }
}

impl SandboxConfig {
    /// Checks what serde cannot: non-empty namespaces, CIDRs narrower than everything.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let invalid = |key: &str, reason: String| SandboxError::InvalidConfig {
            key: key.to_owned(),
            reason,
        };
        if self.gateway_namespace.is_empty() {
            return Err(invalid("gateway_namespace", "is empty".into()));
        }
        if self.dns_namespace.is_empty() {
            return Err(invalid("dns_namespace", "is empty".into()));
        }
        for (key, cidrs) in [
            ("pod_cidrs", &self.pod_cidrs),
            ("service_cidrs", &self.service_cidrs),
            ("denied_egress_cidrs", &self.denied_egress_cidrs),
        ] {
            if let Some(all) = cidrs.iter().find(|c| c.prefix_len() == 0) {
                return Err(invalid(
                    key,
                    format!("holds {all}, which would deny all egress"),
                ));
            }
        }
        Ok(())
    }
}

/// Why the sandbox of an order cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The order id is not decimal digits short enough to name a namespace.
    #[error("order id {0:?} does not name a namespace")]
    InvalidOrderId(String),
    /// The user is not a lower-case `0x` address (40 hex digits), as labels carry it.
    #[error("user {0:?} is not a lower-case 0x address")]
    InvalidUser(String),
    /// A configuration value is unusable.
    #[error("sandbox.{key} {reason}")]
    InvalidConfig {
        /// The key under `[sandbox]`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The objects around an order's app.
#[derive(Clone, Debug, PartialEq)]
pub struct Sandbox {
    /// `grid-order-<id>`, labelled with the order and the user, Pod Security `restricted`.
    pub namespace: Namespace,
    /// The order's resources as a quota.
    pub quota: ResourceQuota,
    /// Defaults and per-container maxima.
    pub limit_range: LimitRange,
    /// Default deny, then the allows: gateway ingress, the namespace's own traffic, DNS,
    /// the internet without private and metadata ranges.
    pub network_policies: Vec<NetworkPolicy>,
}

/// The sandbox of order `order_id` (decimal) of `user` (`0x` and 40 lower-case hex
/// digits) on the gateway `identity`. All objects carry the identity's, the order's and
/// the user's labels.
pub fn sandbox_objects(
    identity: &labels::Identity,
    order_id: &str,
    user: &str,
    resources: &Resources,
    cfg: &SandboxConfig,
) -> Result<Sandbox, SandboxError> {
    let namespace = identity
        .namespace_for(order_id)
        .ok_or_else(|| SandboxError::InvalidOrderId(order_id.to_owned()))?;
    if !is_lower_hex_address(user) {
        return Err(SandboxError::InvalidUser(user.to_owned()));
    }
    cfg.validate()?;
    let mut common: BTreeMap<String, String> = identity
        .labels()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    common.insert(labels::ORDER_ID_KEY.to_owned(), order_id.to_owned());
    common.insert(labels::USER_KEY.to_owned(), user.to_owned());
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.clone()),
        labels: Some(common.clone()),
        ..ObjectMeta::default()
    };

    let mut namespace_labels = common.clone();
    for mode in ["enforce", "audit", "warn"] {
        namespace_labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".into(),
        );
        namespace_labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".into(),
        );
    }
    let namespace_object = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.clone()),
            labels: Some(namespace_labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };

    let quota = ResourceQuota {
        metadata: meta(QUOTA_NAME),
        spec: Some(ResourceQuotaSpec {
            hard: Some(quota_hard(resources, cfg)),
            ..ResourceQuotaSpec::default()
        }),
        status: None,
    };

    let limit_range = LimitRange {
        metadata: meta(LIMIT_RANGE_NAME),
        spec: Some(limit_range_spec(resources)),
    };

    Ok(Sandbox {
        namespace: namespace_object,
        quota,
        limit_range,
        network_policies: network_policies(cfg, &meta),
    })
}

fn is_lower_hex_address(user: &str) -> bool {
    user.strip_prefix("0x").is_some_and(|hex| {
        hex.len() == 40
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn cpu(millis: u64) -> Quantity {
    Quantity(format!("{millis}m"))
}

fn bytes(bytes: u64) -> Quantity {
    Quantity(bytes.to_string())
}

/// The order, as the quota: requests and limits of cpu and memory, requested storage and
/// GPUs, counts of pods and claims, and no NodePort or LoadBalancer Services.
fn quota_hard(resources: &Resources, cfg: &SandboxConfig) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("requests.cpu".into(), cpu(resources.cpu_millis)),
        ("limits.cpu".into(), cpu(resources.cpu_millis)),
        ("requests.memory".into(), bytes(resources.memory_bytes)),
        ("limits.memory".into(), bytes(resources.memory_bytes)),
        ("requests.storage".into(), bytes(resources.storage_bytes)),
        (
            "requests.nvidia.com/gpu".into(),
            Quantity(resources.gpus.to_string()),
        ),
        ("pods".into(), Quantity(cfg.max_pods.to_string())),
        (
            "persistentvolumeclaims".into(),
            Quantity(cfg.max_pvcs.to_string()),
        ),
        ("services.nodeports".into(), Quantity("0".into())),
        ("services.loadbalancers".into(), Quantity("0".into())),
    ])
}

/// Default cpu request and limit of a container that states none: 100m, or the order's
/// cpu when smaller.
pub const DEFAULT_CONTAINER_CPU_MILLIS: u64 = 100;
/// Default memory request and limit of a container that states none: 128 MiB, or the
/// order's memory when smaller.
pub const DEFAULT_CONTAINER_MEMORY_BYTES: u64 = 128 << 20;

/// Containers: a default request and limit (equal) of 100m cpu and 128 MiB memory, capped
/// at the order; at most the order's cpu and memory each.
///
/// With `requests.*` and `limits.*` in the quota, Kubernetes refuses a pod whose
/// containers lack either; the defaults admit them. [`crate::manifest::check`] writes
/// requests and limits into every container it passes (a share of the order for those
/// that state none), so the defaults are the floor for anything else, not what an
/// order's app normally gets. Default limit equal to default request keeps a defaulted
/// container from holding more of the limits quota than it asked for.
fn limit_range_spec(resources: &Resources) -> LimitRangeSpec {
    let default = BTreeMap::from([
        (
            "cpu".to_owned(),
            cpu(DEFAULT_CONTAINER_CPU_MILLIS.min(resources.cpu_millis)),
        ),
        (
            "memory".to_owned(),
            bytes(DEFAULT_CONTAINER_MEMORY_BYTES.min(resources.memory_bytes)),
        ),
    ]);
    let max = BTreeMap::from([
        ("cpu".to_owned(), cpu(resources.cpu_millis)),
        ("memory".to_owned(), bytes(resources.memory_bytes)),
    ]);
    LimitRangeSpec {
        limits: vec![LimitRangeItem {
            type_: "Container".into(),
            default: Some(default.clone()),
            default_request: Some(default),
            max: Some(max),
            ..LimitRangeItem::default()
        }],
    }
}

fn selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: (!labels.is_empty()).then(|| labels.clone()),
        ..LabelSelector::default()
    }
}

fn namespace_selector(namespace: &str) -> LabelSelector {
    selector(&BTreeMap::from([(
        "kubernetes.io/metadata.name".to_owned(),
        namespace.to_owned(),
    )]))
}

fn policy(
    meta: ObjectMeta,
    types: &[&str],
    ingress: Option<Vec<NetworkPolicyIngressRule>>,
    egress: Option<Vec<NetworkPolicyEgressRule>>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(types.iter().map(|t| (*t).to_owned()).collect()),
            ingress,
            egress,
        }),
    }
}

/// Policies are additive: the first denies everything to and from every pod of the
/// namespace, each of the others allows one thing.
fn network_policies(cfg: &SandboxConfig, meta: &dyn Fn(&str) -> ObjectMeta) -> Vec<NetworkPolicy> {
    let same_namespace = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector::default()),
        ..NetworkPolicyPeer::default()
    };
    let dns_ports = ["UDP", "TCP"]
        .into_iter()
        .map(|protocol| NetworkPolicyPort {
            protocol: Some(protocol.into()),
            port: Some(IntOrString::Int(53)),
            end_port: None,
        })
        .collect();
    let (except_v4, except_v6) = denied_egress(cfg);
    vec![
        policy(
            meta("grid-default-deny"),
            &["Ingress", "Egress"],
            None,
            None,
        ),
        policy(
            meta("grid-allow-gateway"),
            &["Ingress"],
            Some(vec![NetworkPolicyIngressRule {
                // One peer with both selectors: pods with those labels in that namespace.
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespace_selector(&cfg.gateway_namespace)),
                    pod_selector: Some(selector(&cfg.gateway_pod_labels)),
                    ip_block: None,
                }]),
                ports: None,
            }]),
            None,
        ),
        policy(
            meta("grid-allow-namespace"),
            &["Ingress", "Egress"],
            Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![same_namespace.clone()]),
                ports: None,
            }]),
            Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![same_namespace]),
                ports: None,
            }]),
        ),
        policy(
            meta("grid-allow-dns"),
            &["Egress"],
            None,
            Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespace_selector(&cfg.dns_namespace)),
                    pod_selector: Some(selector(&cfg.dns_pod_labels)),
                    ip_block: None,
                }]),
                ports: Some(dns_ports),
            }]),
        ),
        policy(
            meta("grid-allow-internet"),
            &["Egress"],
            None,
            Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![
                    NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: "0.0.0.0/0".into(),
                            except: Some(except_v4),
                        }),
                        ..NetworkPolicyPeer::default()
                    },
                    NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: "::/0".into(),
                            except: Some(except_v6),
                        }),
                        ..NetworkPolicyPeer::default()
                    },
                ]),
                ports: None,
            }]),
        ),
    ]
}

/// The fixed denied ranges and the configured ones, split by family, without repeats.
fn denied_egress(cfg: &SandboxConfig) -> (Vec<String>, Vec<String>) {
    let mut v4: Vec<String> = DENIED_IPV4.iter().map(|s| (*s).to_owned()).collect();
    let mut v6: Vec<String> = DENIED_IPV6.iter().map(|s| (*s).to_owned()).collect();
    let configured = cfg
        .pod_cidrs
        .iter()
        .chain(&cfg.service_cidrs)
        .chain(&cfg.denied_egress_cidrs);
    for net in configured {
        let net = net.trunc();
        let list = match net {
            IpNet::V4(_) => &mut v4,
            IpNet::V6(_) => &mut v6,
        };
        let text = net.to_string();
        if !list.contains(&text) {
            list.push(text);
        }
    }
    (v4, v6)
}

/// CIDR lists as strings in the configuration (`["10.42.0.0/16"]`).
mod cidr_list {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(nets: &[IpNet], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(nets.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a CIDR")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "0x52908400098527886e0f7030069857d2e4169ee7";

    fn order() -> Resources {
        Resources {
            cpu_millis: 1500,
            memory_bytes: 3 << 30,
            storage_bytes: 10 << 30,
            gpus: 1,
            gpu_model: None,
        }
    }

    fn identity() -> labels::Identity {
        labels::Identity::new(31337, [1; 20], [2; 20])
    }

    fn sandbox() -> Sandbox {
        sandbox_objects(&identity(), "42", USER, &order(), &SandboxConfig::default()).unwrap()
    }

    fn labels_of(meta: &ObjectMeta) -> &BTreeMap<String, String> {
        meta.labels.as_ref().expect("labelled")
    }

    #[test]
    fn every_object_is_labelled_and_in_the_namespace() {
        let s = sandbox();
        let mut metas = vec![
            &s.namespace.metadata,
            &s.quota.metadata,
            &s.limit_range.metadata,
        ];
        metas.extend(s.network_policies.iter().map(|p| &p.metadata));
        for meta in metas {
            let l = labels_of(meta);
            assert_eq!(l[labels::MANAGED_BY_KEY], labels::MANAGED_BY);
            assert_eq!(l[labels::ORDER_ID_KEY], "42");
            assert_eq!(l[labels::USER_KEY], USER);
            assert!(identity().owns(Some(l)), "{l:?}");
        }
        let ns = identity().namespace_for("42");
        assert_eq!(s.namespace.metadata.name, ns);
        assert_eq!(s.quota.metadata.namespace, ns);
        for p in &s.network_policies {
            assert_eq!(p.metadata.namespace, ns);
        }
    }

    #[test]
    fn namespace_enforces_restricted() {
        let s = sandbox();
        let l = labels_of(&s.namespace.metadata);
        for mode in ["enforce", "audit", "warn"] {
            assert_eq!(
                l[&format!("pod-security.kubernetes.io/{mode}")],
                "restricted"
            );
            assert_eq!(
                l[&format!("pod-security.kubernetes.io/{mode}-version")],
                "latest"
            );
        }
    }

    #[test]
    fn quota_is_the_order() {
        let hard = sandbox().quota.spec.unwrap().hard.unwrap();
        let get = |k: &str| hard[k].0.clone();
        assert_eq!(get("requests.cpu"), "1500m");
        assert_eq!(get("limits.cpu"), "1500m");
        assert_eq!(get("requests.memory"), (3u64 << 30).to_string());
        assert_eq!(get("limits.memory"), (3u64 << 30).to_string());
        assert_eq!(get("requests.storage"), (10u64 << 30).to_string());
        assert_eq!(get("requests.nvidia.com/gpu"), "1");
        assert_eq!(get("pods"), "64");
        assert_eq!(get("persistentvolumeclaims"), "16");
        assert_eq!(get("services.nodeports"), "0");
        assert_eq!(get("services.loadbalancers"), "0");
        // Every quantity reads back as what the order bought.
        assert_eq!(
            grid_policy_sdk::quantity::parse_cpu_millis(&get("requests.cpu")).unwrap(),
            1500
        );
    }

    #[test]
    fn limit_range_defaults_are_capped_at_the_order() {
        let item = &sandbox().limit_range.spec.unwrap().limits[0];
        assert_eq!(item.type_, "Container");
        let default = item.default.as_ref().unwrap();
        assert_eq!(default["cpu"].0, "100m");
        assert_eq!(default["memory"].0, (128u64 << 20).to_string());
        assert_eq!(item.default_request.as_ref(), Some(default));
        assert_eq!(item.max.as_ref().unwrap()["cpu"].0, "1500m");

        let tiny = Resources {
            cpu_millis: 50,
            memory_bytes: 64 << 20,
            ..order()
        };
        let s = sandbox_objects(&identity(), "1", USER, &tiny, &SandboxConfig::default()).unwrap();
        let item = &s.limit_range.spec.unwrap().limits[0];
        assert_eq!(item.default.as_ref().unwrap()["cpu"].0, "50m");
        assert_eq!(
            item.default.as_ref().unwrap()["memory"].0,
            (64u64 << 20).to_string()
        );
    }

    fn policy_named<'a>(s: &'a Sandbox, name: &str) -> &'a NetworkPolicySpec {
        s.network_policies
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .and_then(|p| p.spec.as_ref())
            .unwrap_or_else(|| panic!("no policy {name}"))
    }

    #[test]
    fn default_deny_covers_every_pod_both_ways() {
        let s = sandbox();
        let deny = policy_named(&s, "grid-default-deny");
        assert_eq!(deny.pod_selector, Some(LabelSelector::default()));
        assert_eq!(
            deny.policy_types.as_deref(),
            Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
        );
        assert!(deny.ingress.is_none() && deny.egress.is_none());
    }

    #[test]
    fn ingress_only_from_gateway_pods_and_the_namespace() {
        let s = sandbox();
        let gateway = policy_named(&s, "grid-allow-gateway");
        let peer = &gateway.ingress.as_ref().unwrap()[0].from.as_ref().unwrap()[0];
        assert_eq!(
            peer.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "grid-gateway"
        );
        assert_eq!(
            peer.pod_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["app.kubernetes.io/name"],
            "grid-gateway"
        );
        assert!(gateway.egress.is_none());

        let own = policy_named(&s, "grid-allow-namespace");
        let peer = &own.ingress.as_ref().unwrap()[0].from.as_ref().unwrap()[0];
        assert_eq!(peer.pod_selector, Some(LabelSelector::default()));
        assert!(peer.namespace_selector.is_none() && peer.ip_block.is_none());
        let peer = &own.egress.as_ref().unwrap()[0].to.as_ref().unwrap()[0];
        assert_eq!(peer.pod_selector, Some(LabelSelector::default()));
        assert!(peer.namespace_selector.is_none());
    }

    #[test]
    fn egress_to_dns_and_the_internet_only() {
        let cfg = SandboxConfig {
            pod_cidrs: vec![
                "10.42.0.0/16".parse().unwrap(),
                "fd42::/48".parse().unwrap(),
            ],
            service_cidrs: vec!["198.51.100.0/24".parse().unwrap()],
            denied_egress_cidrs: vec!["203.0.113.9/32".parse().unwrap()],
            ..SandboxConfig::default()
        };
        let s = sandbox_objects(&identity(), "42", USER, &order(), &cfg).unwrap();
        let dns = policy_named(&s, "grid-allow-dns");
        let rule = &dns.egress.as_ref().unwrap()[0];
        let peer = &rule.to.as_ref().unwrap()[0];
        assert_eq!(
            peer.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["kubernetes.io/metadata.name"],
            "kube-system"
        );
        assert_eq!(
            peer.pod_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()["k8s-app"],
            "kube-dns"
        );
        let ports: Vec<_> = rule
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| (p.protocol.clone().unwrap(), p.port.clone().unwrap()))
            .collect();
        assert_eq!(
            ports,
            [
                ("UDP".to_owned(), IntOrString::Int(53)),
                ("TCP".to_owned(), IntOrString::Int(53))
            ]
        );

        let internet = policy_named(&s, "grid-allow-internet");
        let peers = internet.egress.as_ref().unwrap()[0].to.as_ref().unwrap();
        let v4 = peers[0].ip_block.as_ref().unwrap();
        let v6 = peers[1].ip_block.as_ref().unwrap();
        assert_eq!((v4.cidr.as_str(), v6.cidr.as_str()), ("0.0.0.0/0", "::/0"));
        let except_v4 = v4.except.as_ref().unwrap();
        for denied in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "169.254.0.0/16",
            "127.0.0.0/8",
            "198.51.100.0/24",
            "203.0.113.9/32",
        ] {
            assert!(
                except_v4.contains(&denied.to_owned()),
                "{denied} not denied"
            );
        }
        // 10.42.0.0/16 is a configured range already denied by 10/8; listed once anyway.
        assert_eq!(except_v4.iter().filter(|c| *c == "10.42.0.0/16").count(), 1);
        let except_v6 = v6.except.as_ref().unwrap();
        for denied in ["fc00::/7", "fe80::/10", "::ffff:0:0/96", "fd42::/48"] {
            assert!(
                except_v6.contains(&denied.to_owned()),
                "{denied} not denied"
            );
        }
        // Every except is a valid CIDR inside its family's block.
        for c in except_v4 {
            assert!(matches!(c.parse::<IpNet>(), Ok(IpNet::V4(_))), "{c}");
        }
        for c in except_v6 {
            assert!(matches!(c.parse::<IpNet>(), Ok(IpNet::V6(_))), "{c}");
        }
        // Only the four allow policies open anything, and none opens ingress wider than the
        // gateway and the namespace.
        for p in &s.network_policies {
            let spec = p.spec.as_ref().unwrap();
            for rule in spec.ingress.iter().flatten() {
                for peer in rule.from.iter().flatten() {
                    assert!(peer.ip_block.is_none(), "ingress by address");
                }
            }
        }
    }

    #[test]
    fn bad_inputs_are_refused() {
        let cfg = SandboxConfig::default();
        assert_eq!(
            sandbox_objects(&identity(), "4x", USER, &order(), &cfg),
            Err(SandboxError::InvalidOrderId("4x".into()))
        );
        for user in [
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "52908400098527886e0f7030069857d2e4169ee7",
            "0x1234",
        ] {
            assert!(matches!(
                sandbox_objects(&identity(), "4", user, &order(), &cfg),
                Err(SandboxError::InvalidUser(_))
            ));
        }
        let everything = SandboxConfig {
            denied_egress_cidrs: vec!["0.0.0.0/0".parse().unwrap()],
            ..cfg
        };
        assert!(matches!(
            sandbox_objects(&identity(), "4", USER, &order(), &everything),
            Err(SandboxError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn config_reads_with_defaults_and_cidrs() {
        let cfg: SandboxConfig = serde_json::from_str(
            r#"{"gateway_namespace": "gw", "pod_cidrs": ["100.96.0.0/11"], "max_pods": 10}"#,
        )
        .unwrap();
        assert_eq!(cfg.gateway_namespace, "gw");
        assert_eq!(
            cfg.pod_cidrs,
            vec!["100.96.0.0/11".parse::<IpNet>().unwrap()]
        );
        assert_eq!(cfg.dns_namespace, "kube-system");
        assert_eq!(cfg.max_pods, 10);
        assert!(serde_json::from_str::<SandboxConfig>(r#"{"pod_cidrs": ["nope"]}"#).is_err());
        assert!(serde_json::from_str::<SandboxConfig>(r#"{"unknown": 1}"#).is_err());
        let round_trip: SandboxConfig =
            serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
        assert_eq!(round_trip, cfg);
    }
}
