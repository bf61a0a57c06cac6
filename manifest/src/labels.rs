//! The labels a generated Service carries; `grid_cluster::labels` re-exports them beside
//! the rest of the names the gateway writes into the cluster.

/// `app.kubernetes.io/managed-by` value on every object the gateway writes.
pub const MANAGED_BY: &str = "grid-gateway";
/// Label key: the standard managed-by label.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
/// Label key: the order id (decimal).
pub const ORDER_ID_KEY: &str = "grid.dev/order-id";
