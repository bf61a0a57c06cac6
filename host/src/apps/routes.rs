//! The route table: which apps are available, whose they are, where their traffic goes.
//! Read on every proxied request, so it is an immutable map swapped whole (`ArcSwap`):
//! readers never lock, and the table changes only when an app's state does.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use grid_policy_sdk::Address;

use crate::proxy::Upstream;

/// One available app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The order it runs for.
    pub order_id: String,
    /// The order's user.
    pub user: Address,
    /// Where its traffic goes.
    pub entrance: Upstream,
}

/// Available apps by user.
#[derive(Default)]
pub struct RouteTable {
    by_user: ArcSwap<HashMap<Address, Vec<Route>>>,
}

impl RouteTable {
    /// Replaces the whole table.
    pub fn replace(&self, routes: impl IntoIterator<Item = Route>) {
        let mut by_user: HashMap<Address, Vec<Route>> = HashMap::new();
        for route in routes {
            by_user.entry(route.user).or_default().push(route);
        }
        for routes in by_user.values_mut() {
            routes.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        }
        self.by_user.store(Arc::new(by_user));
    }

    /// The user's available apps, ordered by order id.
    pub fn of_user(&self, user: &Address) -> Vec<Route> {
        self.by_user.load().get(user).cloned().unwrap_or_default()
    }

    /// The user's app of one order, if it is available.
    pub fn find(&self, user: &Address, order_id: &str) -> Option<Route> {
        self.by_user
            .load()
            .get(user)?
            .iter()
            .find(|r| r.order_id == order_id)
            .cloned()
    }

    /// The order ids of every available app.
    pub fn order_ids(&self) -> Vec<String> {
        self.by_user
            .load()
            .values()
            .flatten()
            .map(|r| r.order_id.clone())
            .collect()
    }

    /// Number of available apps.
    pub fn len(&self) -> usize {
        self.by_user.load().values().map(Vec::len).sum()
    }

    /// True when no app is available.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(user: u8, order: &str) -> Route {
        Route {
            order_id: order.into(),
            user: Address([user; 20]),
            entrance: "http://127.0.0.1:1".parse().expect("uri"),
        }
    }

    #[test]
    fn routes_are_found_by_user_and_order_only() {
        let table = RouteTable::default();
        table.replace([route(1, "2"), route(1, "1"), route(2, "3")]);
        assert_eq!(table.len(), 3);
        let mine = table.of_user(&Address([1; 20]));
        assert_eq!(
            mine.iter().map(|r| r.order_id.as_str()).collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert!(
            table.find(&Address([1; 20]), "3").is_none(),
            "another user's order"
        );
        assert!(table.find(&Address([2; 20]), "3").is_some());
        table.replace([]);
        assert!(table.is_empty());
    }
}
