//! Labels and names shared by everything the gateway writes into the cluster.

/// The field manager of every server-side apply the gateway does.
pub const FIELD_MANAGER: &str = "grid-gateway";
/// `app.kubernetes.io/managed-by` value on every object the gateway writes; reconciliation
/// lists namespaces by it, so nothing else in the cluster is ever touched.
pub const MANAGED_BY: &str = "grid-gateway";
/// Label key: the standard managed-by label.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
/// Label key: the order id (decimal).
pub const ORDER_ID_KEY: &str = "grid.dev/order-id";
/// Label key: the order's user, as a lower-case hex address (label values cannot hold
/// the mixed case of EIP-55).
pub const USER_KEY: &str = "grid.dev/user";

/// The longest order id (decimal digits) that names a namespace: `grid-order-` plus the id
/// must be a DNS label (63 characters), and the id must be a label value (63 too).
pub const MAX_ORDER_ID_DIGITS: usize = 63 - "grid-order-".len();

/// The namespace of an order: `grid-order-<id>`, or `None` when the id is longer than
/// [`MAX_ORDER_ID_DIGITS`]. The Market numbers orders sequentially, so no real order gets
/// near that; the caller refuses such an id rather than hashing it into a name nobody can read.
pub fn namespace_for(order_id: &str) -> Option<String> {
    (!order_id.is_empty()
        && order_id.len() <= MAX_ORDER_ID_DIGITS
        && order_id.bytes().all(|b| b.is_ascii_digit()))
    .then(|| format!("grid-order-{order_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels_or_refused() {
        let longest = "9".repeat(MAX_ORDER_ID_DIGITS);
        assert_eq!(namespace_for(&longest).map(|n| n.len()), Some(63));
        assert_eq!(namespace_for(&format!("{longest}9")), None);
        assert_eq!(namespace_for("7").as_deref(), Some("grid-order-7"));
        assert_eq!(namespace_for(""), None);
        assert_eq!(namespace_for("7/../x"), None);
    }
}
