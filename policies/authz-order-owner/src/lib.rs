//! `authz-order-owner`: sessions only for addresses that own an active order on this node;
//! per-request rules from settings.

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

/// Settings of `authz-order-owner`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrderOwner {
    /// Longest session granted, in seconds. A session also never outlives the caller's
    /// last active order.
    pub session_lifetime_secs: u64,
    /// If not empty, only these addresses get sessions.
    pub allow: Vec<Address>,
    /// These addresses never get a session, and their existing sessions' requests are denied.
    pub deny: Vec<Address>,
    /// HTTP methods refused on every request (compared case-insensitively), e.g. `["TRACE"]`.
    pub deny_methods: Vec<String>,
    /// Path prefixes refused on every request, e.g. `["/admin"]`.
    pub deny_path_prefixes: Vec<String>,
    /// Scopes put on every granted session; `None` leaves sessions unscoped.
    pub scopes: Option<Vec<String>>,
}

impl Default for OrderOwner {
    fn default() -> Self {
        OrderOwner {
            session_lifetime_secs: 3600,
            allow: Vec::new(),
            deny: Vec::new(),
            deny_methods: Vec::new(),
            deny_path_prefixes: Vec::new(),
            scopes: None,
        }
    }
}

impl Policy for OrderOwner {
    fn validate(&self) -> Result<(), String> {
        if self.session_lifetime_secs == 0 {
            return Err("session_lifetime_secs must be above 0".into());
        }
        if let Some(both) = self.allow.iter().find(|a| self.deny.contains(a)) {
            return Err(format!("{both} is in both allow and deny"));
        }
        if let Some(bad) = self.deny_path_prefixes.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("deny_path_prefixes: {bad:?} must start with '/'"));
        }
        if let Some(bad) = self
            .deny_methods
            .iter()
            .find(|m| m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return Err(format!("deny_methods: {bad:?} is not an HTTP method"));
        }
        Ok(())
    }
}

impl OrderOwner {
    fn refused_address(&self, address: &Address) -> Option<String> {
        if self.deny.contains(address) {
            return Some(format!("{address} is denied by the node's policy"));
        }
        if !self.allow.is_empty() && !self.allow.contains(address) {
            return Some(format!("{address} is not on the node's allow list"));
        }
        None
    }
}

impl AuthorizationPolicy for OrderOwner {
    fn authorize_session(&self, request: &SessionRequest, ctx: &Context) -> SessionDecision {
        if let Some(reason) = self.refused_address(&request.address) {
            return SessionDecision::deny(reason);
        }
        let now = ctx.now();
        // The session lasts until the last of the caller's active orders ends, capped by
        // the configured lifetime. An order without a start time is counted from now.
        let last_order_end = request
            .orders
            .iter()
            .filter(|o| o.status == OrderStatus::Active && o.user == request.address)
            .map(|o| o.start_time.unwrap_or(now).saturating_add(o.duration_secs))
            .filter(|end| *end > now)
            .max();
        let Some(order_end) = last_order_end else {
            return SessionDecision::deny(format!(
                "{} has no active order on this node",
                request.address
            ));
        };
        SessionDecision::Grant(SessionGrant {
            expires_at: order_end.min(now.saturating_add(self.session_lifetime_secs)),
            scopes: self.scopes.clone(),
        })
    }

    fn authorize_request(&self, request: &RequestMeta, _ctx: &Context) -> Decision {
        if let Some(reason) = request
            .caller
            .as_ref()
            .and_then(|c| self.refused_address(c))
        {
            return Decision::deny(reason);
        }
        if self
            .deny_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&request.method))
        {
            return Decision::deny(format!(
                "method {} is not allowed on this node",
                request.method
            ));
        }
        if let Some(prefix) = self
            .deny_path_prefixes
            .iter()
            .find(|p| path_has_prefix(&request.path, p))
        {
            return Decision::deny(format!(
                "path {} is not allowed on this node ({prefix})",
                request.path
            ));
        }
        Decision::Allow
    }
}

/// True when `path` is `prefix` or lies under it as whole segments ("/admin" covers
/// "/admin" and "/admin/x", not "/administrator"), so a rule cannot be side-stepped or
/// over-match by a shared spelling.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

grid_policy_sdk::export_authorization!(OrderOwner);

#[cfg(test)]
mod tests;
