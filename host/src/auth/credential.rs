//! How a request carries a session: the session cookie or `Authorization: Bearer`, read
//! alike by the API's extractor and by admission on both request paths, and the cookie the
//! gateway sets (at login, and when an app's host redeems a sign-in hand-off).

use cookie::{Cookie, SameSite as CookieSameSite};

use crate::config::{SameSite, SessionConfig};
use crate::proxy::headers::Headers;

/// Where a request's session came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// The session cookie.
    Cookie,
    /// `Authorization: Bearer`.
    Bearer,
}

/// The sealed session value a request carries, if any (the cookie first, then the bearer
/// token), and which of the two carried it. Works on hyper's header map and on the wire
/// fast path's header list alike.
pub fn session_credential(
    headers: &impl Headers,
    cookie_name: &str,
) -> Option<(String, Credential)> {
    // Parsed as a cookie jar does: every `Cookie` header, `;`-separated, percent-decoded;
    // of several cookies with the name, the last one counts.
    let cookie = headers
        .values("cookie")
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| Cookie::parse_encoded(pair.trim()).ok())
        .filter(|c| c.name() == cookie_name)
        .last();
    if let Some(cookie) = cookie {
        return Some((cookie.value().to_owned(), Credential::Cookie));
    }
    headers
        .values("authorization")
        .next()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| (t.trim().to_owned(), Credential::Bearer))
}

/// The session cookie `name` carrying `token` until `expires_at`, as `settings` say, for
/// the host that answers (no `Domain`: never shared with other hosts, such as the apps'
/// own).
pub fn session_cookie(
    settings: &SessionConfig,
    name: &'static str,
    token: String,
    expires_at: u64,
    now: u64,
) -> Cookie<'static> {
    Cookie::build((name, token))
        .path("/")
        .http_only(true)
        .secure(settings.secure)
        .same_site(match settings.same_site {
            SameSite::Strict => CookieSameSite::Strict,
            SameSite::Lax => CookieSameSite::Lax,
            SameSite::None => CookieSameSite::None,
        })
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(expires_at.saturating_sub(now)).unwrap_or(i64::MAX),
        ))
        .build()
}
