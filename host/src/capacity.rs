//! What the node can sell: total capacity from a [`CapacitySource`] (the cluster's
//! allocatable resources once a cluster is wired, the config until then), free capacity
//! = total − resources of the orders in the store that still hold capacity.

use std::sync::Arc;

use grid_policy_sdk::Resources;
use grid_policy_sdk::quantity::{parse_bytes, parse_cpu_millis};
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

/// Where the node's total capacity comes from.
pub trait CapacitySource: Send + Sync {
    /// All capacity the node offers.
    fn total(&self) -> Resources;
}

/// Capacity stated in the config (`[capacity]`), in Kubernetes quantities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacityConfig {
    /// CPU, e.g. `"8"` or `"7500m"`.
    #[serde(deserialize_with = "quantity")]
    pub cpu: String,
    /// Memory, e.g. `"32Gi"`.
    #[serde(deserialize_with = "quantity")]
    pub memory: String,
    /// Storage, e.g. `"500Gi"`.
    #[serde(deserialize_with = "quantity")]
    pub storage: String,
    /// GPUs.
    pub gpus: u32,
    /// The GPU model offered (lower case), if any.
    pub gpu_model: Option<String>,
}

/// A quantity written as a string or a bare number (`cpu = 8`, or an env override `8`).
fn quantity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Q {
        S(String),
        I(u64),
        F(f64),
    }
    Ok(match Q::deserialize(d)? {
        Q::S(s) => s,
        Q::I(i) => i.to_string(),
        Q::F(f) => f.to_string(),
    })
}

impl Default for CapacityConfig {
    /// A small node: 4 cores, 8 GiB, 100 GiB, no GPU (each key defaults on its own). Enough
    /// to try the gateway out; an operator states the real numbers.
    fn default() -> Self {
        CapacityConfig {
            cpu: "4".into(),
            memory: "8Gi".into(),
            storage: "100Gi".into(),
            gpus: 0,
            gpu_model: None,
        }
    }
}

impl CapacityConfig {
    /// The configured capacity as resources; the error names the bad key.
    pub fn resources(&self) -> Result<Resources, String> {
        Ok(Resources {
            cpu_millis: parse_cpu_millis(&self.cpu).map_err(|e| format!("capacity.cpu: {e}"))?,
            memory_bytes: parse_bytes(&self.memory).map_err(|e| format!("capacity.memory: {e}"))?,
            storage_bytes: parse_bytes(&self.storage)
                .map_err(|e| format!("capacity.storage: {e}"))?,
            gpus: self.gpus,
            gpu_model: self.gpu_model.as_ref().map(|m| m.to_ascii_lowercase()),
        })
    }
}

/// A fixed capacity (from the config).
#[derive(Clone, Debug)]
pub struct StaticCapacity(pub Resources);

impl CapacitySource for StaticCapacity {
    fn total(&self) -> Resources {
        self.0.clone()
    }
}

/// A capacity read from somewhere slow (the cluster's nodes) and refreshed in the
/// background; the hot path reads the last value without waiting.
#[derive(Debug)]
pub struct RefreshedCapacity(arc_swap::ArcSwap<Resources>);

impl RefreshedCapacity {
    /// Starts at `initial`.
    pub fn new(initial: Resources) -> Self {
        RefreshedCapacity(arc_swap::ArcSwap::from_pointee(initial))
    }

    /// Replaces the value.
    pub fn set(&self, total: Resources) {
        self.0.store(Arc::new(total));
    }
}

impl CapacitySource for RefreshedCapacity {
    fn total(&self) -> Resources {
        (**self.0.load()).clone()
    }
}

/// Total and free capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CapacitySnapshot {
    /// All capacity the node offers.
    pub total: Resources,
    /// What accepted orders leave.
    pub free: Resources,
}

/// Measures capacity against the orders in the store.
#[derive(Clone)]
pub struct Capacity {
    source: Arc<dyn CapacitySource>,
    store: Store,
}

impl Capacity {
    /// Capacity of `source` minus the store's orders.
    pub fn new(source: Arc<dyn CapacitySource>, store: Store) -> Self {
        Capacity { source, store }
    }

    /// Total and free now. `except` leaves one order out of the used capacity: an order
    /// being re-checked must not compete with itself.
    pub fn snapshot(&self, now: u64, except: Option<&str>) -> Result<CapacitySnapshot, StoreError> {
        let total = self.source.total();
        let mut free = total.clone();
        for record in self.store.orders()? {
            if Some(record.order.id.as_str()) == except || !record.holds_capacity(now) {
                continue;
            }
            let used = &record.order.resources;
            free.cpu_millis = free.cpu_millis.saturating_sub(used.cpu_millis);
            free.memory_bytes = free.memory_bytes.saturating_sub(used.memory_bytes);
            free.storage_bytes = free.storage_bytes.saturating_sub(used.storage_bytes);
            free.gpus = free.gpus.saturating_sub(used.gpus);
        }
        Ok(CapacitySnapshot { total, free })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OrderRecord, OrderState};
    use grid_policy_sdk::{Address, Amount, Order, OrderStatus};

    fn order(id: &str, cpu: u64, start: Option<u64>, duration: u64) -> OrderRecord {
        // Accepted at 100 (matters only for an order without a start time).
        OrderRecord {
            order: Order {
                id: id.into(),
                user: Address::ZERO,
                provider: Address::ZERO,
                payee: Address::ZERO,
                resources: Resources {
                    cpu_millis: cpu,
                    memory_bytes: 1 << 30,
                    ..Resources::default()
                },
                duration_secs: duration,
                payment: Amount::from(1u64),
                start_time: start,
                created_at: 0,
                status: OrderStatus::Active,
            },
            state: OrderState::Active,
            tx_hash: None,
            accepted_at: 100,
        }
    }

    #[test]
    fn free_is_total_minus_orders_still_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_order(&order("1", 1000, Some(100), 100)).unwrap();
        store.put_order(&order("2", 500, None, 100)).unwrap(); // reserved until 200
        store.put_order(&order("3", 700, Some(0), 50)).unwrap(); // ended at 50
        store.put_order(&order("4", 900, None, 10)).unwrap(); // reservation over at 110
        let total = CapacityConfig::default().resources().unwrap();
        let capacity = Capacity::new(Arc::new(StaticCapacity(total.clone())), store);
        let snap = capacity.snapshot(150, None).unwrap();
        assert_eq!(snap.free.cpu_millis, 4000 - 1500);
        assert_eq!(snap.free.memory_bytes, (8 << 30) - (2 << 30));
        let snap = capacity.snapshot(150, Some("1")).unwrap();
        assert_eq!(snap.free.cpu_millis, 4000 - 500);
        assert_eq!(snap.total, total);
    }

    #[test]
    fn config_quantities_are_checked() {
        let cfg = CapacityConfig {
            memory: "lots".into(),
            ..CapacityConfig::default()
        };
        assert!(cfg.resources().unwrap_err().starts_with("capacity.memory"));
    }
}
