//! An authorization policy that uses WASI's output streams, for the gateway's runtime
//! tests: per-request evaluations run on the HTTP workers, where those streams cannot be
//! used, and the host must notice and move the policy's evaluations off the workers.
//!
//! `authorize-request` by the request's path:
//! - `/print`: prints a line to stdout, then allows;
//! - `/panic`: panics (the guest's panic message goes to stderr, then it traps);
//! - `/deny`: denies with the reason "denied by chatty-authz";
//! - anything else: allows.
//!
//! Sessions are always granted for an hour.

use grid_policy_sdk::prelude::*;
use serde::Deserialize;

/// No settings.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Chatty {}

impl Policy for Chatty {}

impl AuthorizationPolicy for Chatty {
    fn authorize_session(&self, _request: &SessionRequest, ctx: &Context) -> SessionDecision {
        SessionDecision::Grant(SessionGrant {
            expires_at: ctx.now().saturating_add(3600),
            scopes: None,
        })
    }

    fn authorize_request(&self, request: &RequestMeta, _ctx: &Context) -> Decision {
        match request.path.as_str() {
            "/print" => {
                println!("chatty-authz saw {}", request.path);
                Decision::Allow
            }
            "/panic" => panic!("chatty-authz was asked to panic"),
            "/deny" => Decision::deny("denied by chatty-authz"),
            _ => Decision::Allow,
        }
    }
}

grid_policy_sdk::export_authorization!(Chatty);
