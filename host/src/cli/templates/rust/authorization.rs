//! `{{name}}`: an authorization policy for grid-gateway (world `authorization`).
//!
//! A session for an address that has an active order, until that order ends or
//! `session_lifetime_secs` pass, whichever comes first; a request under one of
//! `deny_path_prefixes` is denied.

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

/// The settings (`fixtures/settings.json`): a key left out keeps its default, an unknown
/// key is refused.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Longest session granted, in seconds.
    pub session_lifetime_secs: u64,
    /// Path prefixes refused on every request, e.g. `["/admin"]`.
    pub deny_path_prefixes: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            session_lifetime_secs: 3600,
            deny_path_prefixes: Vec::new(),
        }
    }
}

impl Policy for Settings {
    fn validate(&self) -> Result<(), String> {
        if self.session_lifetime_secs == 0 {
            return Err("session_lifetime_secs must be above 0".into());
        }
        if let Some(bad) = self.deny_path_prefixes.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("deny_path_prefixes: {bad:?} must start with '/'"));
        }
        Ok(())
    }
}

impl AuthorizationPolicy for Settings {
    fn authorize_session(&self, request: &SessionRequest, ctx: &Context) -> SessionDecision {
        let now = ctx.now();
        let order_end = request
            .orders
            .iter()
            .filter(|o| o.status == OrderStatus::Active && o.user == request.address)
            .map(|o| o.start_time.unwrap_or(now).saturating_add(o.duration_secs))
            .filter(|end| *end > now)
            .max();
        let Some(order_end) = order_end else {
            let reason = format!("{} has no active order on this node", request.address);
            return SessionDecision::deny(reason);
        };
        SessionDecision::Grant(SessionGrant {
            expires_at: order_end.min(now.saturating_add(self.session_lifetime_secs)),
            scopes: None,
        })
    }

    fn authorize_request(&self, request: &RequestMeta, _ctx: &Context) -> Decision {
        // Whole segments: "/admin" covers "/admin" and "/admin/x", not "/administrator".
        let denied = self.deny_path_prefixes.iter().find(|prefix| {
            let prefix = prefix.trim_end_matches('/');
            request.path == prefix || request.path.starts_with(&format!("{prefix}/"))
        });
        match denied {
            Some(prefix) => Decision::deny(format!(
                "path {} is not allowed on this node ({prefix})",
                request.path
            )),
            None => Decision::Allow,
        }
    }
}

grid_policy_sdk::export_authorization!(Settings);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use grid_policy_sdk::fixture::{Fixture, check_dir};

    use super::*;

    #[test]
    fn every_fixture_gives_its_expected_answer() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
        let ran = check_dir::<Settings>(dir, Fixture::run_authorization)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(ran >= 3, "only {ran} fixtures");
    }

    #[test]
    fn a_prefix_covers_whole_segments_only() {
        let policy = parse_settings::<Settings>(r#"{"deny_path_prefixes": ["/admin"]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let at = |path: &str| RequestMeta {
            method: "GET".into(),
            path: path.into(),
            ..RequestMeta::default()
        };
        assert!(
            !policy
                .authorize_request(&at("/admin"), &Context::at(0))
                .is_allowed()
        );
        assert!(
            policy
                .authorize_request(&at("/administrator"), &Context::at(0))
                .is_allowed()
        );
    }
}
