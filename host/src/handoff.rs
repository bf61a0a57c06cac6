//! Sign-in hand-off to an app's own host (`<order-id>.<apps_domain>`).
//!
//! The session cookie belongs to the gateway's host, so a browser sends nothing to an app's
//! host. The signed-in user asks the gateway for a hand-off URL; it carries a one-time code
//! on the app's host (`?grid_handoff=<code>`), where the gateway trades the code for the same
//! session as a cookie of that host alone and redirects to the URL without the code. The
//! app never sees the code or the cookie (Process strips the cookie like on the gateway's
//! host). This is how other proxies in front of per-app subdomains do it (Coder's
//! subdomain apps, for one); a query parameter is used rather than a reserved path because
//! on an app's host every path is the app's.
//!
//! Codes are random (192 bits), single use, bound to one order, and live 60 s, in memory:
//! a restart drops the few that are pending, and the user asks again.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use rand::RngCore as _;

/// The query parameter that carries a code.
pub const PARAM: &str = "grid_handoff";

/// Seconds a code can be redeemed.
pub const CODE_TTL_SECS: u64 = 60;

/// Codes one session may have pending: more asks replace its oldest, so one user cannot
/// crowd out the others' links.
const MAX_PER_SESSION: usize = 8;

/// Codes pending at once, all sessions together: beyond it the oldest go first, so a burst
/// of sessions cannot grow memory without bound.
const MAX_PENDING: usize = 10_000;

struct Pending {
    session_id: String,
    order_id: String,
    expires_at: u64,
}

/// Pending codes.
#[derive(Default)]
pub struct HandoffCodes {
    pending: Mutex<HashMap<String, Pending>>,
}

impl HandoffCodes {
    /// A new code for `session_id` on `order_id`'s host; returns it and when it expires.
    pub fn issue(&self, session_id: &str, order_id: &str, now: u64) -> (String, u64) {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let expires_at = now + CODE_TTL_SECS;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, p| p.expires_at > now);
        let oldest_where = |pending: &HashMap<String, Pending>, mine: bool| {
            pending
                .iter()
                .filter(|(_, p)| !mine || p.session_id == session_id)
                .min_by_key(|(_, p)| p.expires_at)
                .map(|(c, _)| c.clone())
        };
        let of_session = pending
            .values()
            .filter(|p| p.session_id == session_id)
            .count();
        if of_session >= MAX_PER_SESSION
            && let Some(oldest) = oldest_where(&pending, true)
        {
            pending.remove(&oldest);
        } else if pending.len() >= MAX_PENDING
            && let Some(oldest) = oldest_where(&pending, false)
        {
            pending.remove(&oldest);
        }
        pending.insert(
            code.clone(),
            Pending {
                session_id: session_id.to_owned(),
                order_id: order_id.to_owned(),
                expires_at,
            },
        );
        (code, expires_at)
    }

    /// The session a code hands off, if it is pending, unexpired and for `order_id`. A code
    /// is gone after one try, right or wrong.
    pub fn redeem(&self, code: &str, order_id: &str, now: u64) -> Option<String> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(code)?;
        (pending.order_id == order_id && pending.expires_at > now).then_some(pending.session_id)
    }
}

/// `query` without the hand-off parameter (`None` when nothing is left).
pub fn strip_param(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(PARAM))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// The hand-off code in `query`, if any.
pub fn code_in(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(PARAM)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_single_use_bound_to_its_order_and_expires() {
        let codes = HandoffCodes::default();
        let (code, expires_at) = codes.issue("s1", "7", 1000);
        assert_eq!(expires_at, 1000 + CODE_TTL_SECS);
        assert_eq!(codes.redeem(&code, "7", 1001).as_deref(), Some("s1"));
        assert_eq!(codes.redeem(&code, "7", 1001), None, "single use");

        let (code, _) = codes.issue("s1", "7", 1000);
        assert_eq!(codes.redeem(&code, "8", 1001), None, "another order's host");
        assert_eq!(
            codes.redeem(&code, "7", 1001),
            None,
            "a wrong try spends it"
        );

        let (code, _) = codes.issue("s1", "7", 1000);
        assert_eq!(
            codes.redeem(&code, "7", 1000 + CODE_TTL_SECS),
            None,
            "expired"
        );
    }

    #[test]
    fn one_session_cannot_crowd_out_another() {
        let codes = HandoffCodes::default();
        let (theirs, _) = codes.issue("other", "2", 0);
        let (first, _) = codes.issue("greedy", "1", 0);
        for _ in 0..100 {
            codes.issue("greedy", "1", 1);
        }
        assert_eq!(codes.redeem(&first, "1", 2), None, "its oldest went first");
        assert_eq!(codes.redeem(&theirs, "2", 2).as_deref(), Some("other"));
    }

    #[test]
    fn codes_are_distinct_and_url_safe() {
        let codes = HandoffCodes::default();
        let (a, _) = codes.issue("s", "1", 0);
        let (b, _) = codes.issue("s", "1", 0);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn the_parameter_is_found_and_removed_alone() {
        assert_eq!(code_in("a=1&grid_handoff=xyz&b=2"), Some("xyz"));
        assert_eq!(code_in("grid_handoffx=1"), None);
        assert_eq!(
            strip_param("a=1&grid_handoff=xyz&b=2").as_deref(),
            Some("a=1&b=2")
        );
        assert_eq!(strip_param("grid_handoff=xyz"), None);
    }
}
