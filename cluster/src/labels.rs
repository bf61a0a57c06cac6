//! Labels and names shared by everything the gateway writes into the cluster.
//!
//! Several gateways may share one cluster (nodes of one provider on different chains or
//! Markets, two wallets, a staging node beside production). Each writes only under its own
//! [`Identity`]: every object it writes carries the identity's labels, its namespaces are
//! named with the identity's short hash, its server-side applies use a field manager of its
//! own, and it lists (and so reconciles or deletes) only objects selected by its labels.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// `app.kubernetes.io/managed-by` value, its key, and the order-id key: defined beside the
/// manifest checks (a generated Service carries them).
pub use grid_manifest::labels::{MANAGED_BY, MANAGED_BY_KEY, ORDER_ID_KEY};
/// Label key: the order's user, as a lower-case hex address (label values cannot hold
/// the mixed case of EIP-55).
pub const USER_KEY: &str = "grid.dev/user";
/// Label key: the chain id (decimal) of the gateway that wrote the object.
pub const CHAIN_ID_KEY: &str = "grid.dev/chain-id";
/// Label key: the Market address of that gateway, 40 lower-case hex digits without `0x`.
pub const MARKET_KEY: &str = "grid.dev/market";
/// Label key: the node wallet of that gateway, 40 lower-case hex digits without `0x`.
pub const NODE_KEY: &str = "grid.dev/node";
/// Label key: the 8 hex digits of [`Identity::short_hash`] (also in the namespace names).
pub const GATEWAY_KEY: &str = "grid.dev/gateway";

/// Annotation on an order's namespace: the Service traffic goes to. With the port and the
/// pod selector, what a gateway whose store lost the app needs to adopt it again.
pub const ENTRANCE_SERVICE_ANNOTATION: &str = "grid.dev/entrance-service";
/// Annotation on an order's namespace: the entrance Service's port.
pub const ENTRANCE_PORT_ANNOTATION: &str = "grid.dev/entrance-port";
/// Annotation on an order's namespace: the label selector of the app's first workload's pods.
pub const POD_SELECTOR_ANNOTATION: &str = "grid.dev/pod-selector";
/// Annotation on an order's namespace: the manifest URL the app was deployed from.
pub const MANIFEST_URL_ANNOTATION: &str = "grid.dev/manifest-url";

/// Prefix of every field manager the gateway applies with (followed by `-` and the short
/// hash of its identity).
pub const FIELD_MANAGER_PREFIX: &str = "grid-gateway";

/// Length of `grid-<8 hex>-order-`, the namespace prefix before the order id.
const NAMESPACE_PREFIX_LEN: usize = "grid-".len() + 8 + "-order-".len();

/// The longest order id (decimal digits) that names a namespace: `grid-<hash>-order-` plus
/// the id must be a DNS label (63 characters).
pub const MAX_ORDER_ID_DIGITS: usize = 63 - NAMESPACE_PREFIX_LEN;

/// Who a gateway is in a cluster: the chain, the Market and the node wallet it serves.
/// Two gateways with different identities never name, select or apply the same objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    chain_id: String,
    market: String,
    wallet: String,
    hash: String,
}

impl Identity {
    /// The identity of a gateway on chain `chain_id`, Market `market`, node wallet `wallet`
    /// (a gateway without a chain passes zero addresses).
    pub fn new(chain_id: u64, market: [u8; 20], wallet: [u8; 20]) -> Self {
        let hex = |bytes: &[u8]| {
            bytes.iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        let mut digest = Sha256::new();
        digest.update(b"grid-gateway identity\0");
        digest.update(chain_id.to_be_bytes());
        digest.update(market);
        digest.update(wallet);
        let hash = hex(&digest.finalize()[..4]);
        Identity {
            chain_id: chain_id.to_string(),
            market: hex(&market),
            wallet: hex(&wallet),
            hash,
        }
    }

    /// 8 hex digits of SHA-256 over chain id, Market and wallet.
    pub fn short_hash(&self) -> &str {
        &self.hash
    }

    /// The node wallet, 40 lower-case hex digits without `0x`.
    pub fn wallet(&self) -> &str {
        &self.wallet
    }

    /// The field manager of this gateway's server-side applies: `grid-gateway-<hash>`.
    pub fn field_manager(&self) -> String {
        format!("{FIELD_MANAGER_PREFIX}-{}", self.hash)
    }

    /// The labels every object this gateway writes carries (managed-by and identity).
    pub fn labels(&self) -> [(&'static str, &str); 5] {
        [
            (MANAGED_BY_KEY, MANAGED_BY),
            (CHAIN_ID_KEY, &self.chain_id),
            (MARKET_KEY, &self.market),
            (NODE_KEY, &self.wallet),
            (GATEWAY_KEY, &self.hash),
        ]
    }

    /// The label selector of this gateway's objects (all of [`Identity::labels`]).
    pub fn selector(&self) -> String {
        self.labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// True when `labels` (an object's) carry exactly this identity.
    pub fn owns(&self, labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
        labels.is_some_and(|labels| {
            self.labels()
                .iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The namespace of an order: `grid-<hash>-order-<id>`, or `None` when the id is not
    /// decimal digits or longer than [`MAX_ORDER_ID_DIGITS`]. The Market numbers orders
    /// sequentially, so no real order gets near that; the caller refuses such an id rather
    /// than hashing it into a name nobody can read.
    pub fn namespace_for(&self, order_id: &str) -> Option<String> {
        (!order_id.is_empty()
            && order_id.len() <= MAX_ORDER_ID_DIGITS
            && order_id.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("grid-{}-order-{order_id}", self.hash))
    }

    /// The order id a namespace of this gateway is named for, if it is one.
    pub fn order_of_namespace<'a>(&self, namespace: &'a str) -> Option<&'a str> {
        let id = namespace
            .strip_prefix("grid-")?
            .strip_prefix(self.hash.as_str())?
            .strip_prefix("-order-")?;
        self.namespace_for(id).is_some().then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(chain: u64, market: u8, wallet: u8) -> Identity {
        Identity::new(chain, [market; 20], [wallet; 20])
    }

    #[test]
    fn namespace_names_are_dns_labels_or_refused() {
        let id = identity(31337, 1, 2);
        let longest = "9".repeat(MAX_ORDER_ID_DIGITS);
        assert_eq!(id.namespace_for(&longest).map(|n| n.len()), Some(63));
        assert_eq!(id.namespace_for(&format!("{longest}9")), None);
        assert_eq!(
            id.namespace_for("7"),
            Some(format!("grid-{}-order-7", id.short_hash()))
        );
        assert_eq!(id.namespace_for(""), None);
        assert_eq!(id.namespace_for("7/../x"), None);
        let ns = id.namespace_for("42").unwrap();
        assert_eq!(id.order_of_namespace(&ns), Some("42"));
        assert_eq!(id.order_of_namespace("grid-order-42"), None);
    }

    #[test]
    fn identities_differing_in_any_part_name_and_select_apart() {
        let base = identity(1, 1, 1);
        for other in [identity(2, 1, 1), identity(1, 2, 1), identity(1, 1, 2)] {
            assert_ne!(base.namespace_for("7"), other.namespace_for("7"));
            assert_ne!(base.field_manager(), other.field_manager());
            assert_ne!(base.selector(), other.selector());
            let labels = other
                .labels()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert!(!base.owns(Some(&labels)));
            assert!(other.owns(Some(&labels)));
        }
        assert_eq!(
            identity(1, 1, 1),
            base,
            "the same inputs, the same identity"
        );
    }

    #[test]
    fn label_values_fit_kubernetes_limits() {
        let id = Identity::new(u64::MAX, [0xab; 20], [0xcd; 20]);
        for (key, value) in id.labels() {
            assert!(value.len() <= 63, "{key}={value}");
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            );
        }
        assert_eq!(id.wallet(), "cd".repeat(20));
        assert!(id.field_manager().len() <= 128);
    }
}
