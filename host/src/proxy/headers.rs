//! Header rewriting between client and app, written once for both header containers the
//! gateway forwards with: hyper's `HeaderMap` (the general path) and the wire fast path's
//! [`HeaderList`] (headers as they arrived, in order, borrowed from the read buffer).

use std::borrow::Cow;
use std::net::IpAddr;

use axum_extra::extract::cookie::Cookie;
use http::header::{HeaderMap, HeaderValue};

pub use grid_wire::fields::{HeaderList, Headers};

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the non-standard `Keep-Alive` and
/// `Proxy-Connection` clients still send): they describe one connection, never the message.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const FORWARDED: &str = "forwarded";

/// The tokens of every `Connection` header, lower case.
pub fn connection_tokens(headers: &impl Headers) -> Vec<String> {
    headers
        .values("connection")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The protocol asked for by an upgrade request (`Connection: upgrade` and `Upgrade: x`).
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants_upgrade = connection_tokens(headers).iter().any(|t| t == "upgrade");
    wants_upgrade
        .then(|| headers.get(http::header::UPGRADE).cloned())
        .flatten()
}

/// Headers a `Connection` header may not make disappear: they frame or address the
/// message, and removing one while its bytes go on (a client sending `Connection:
/// content-length`) would have the app read the body as a request of its own — one that
/// never passed the gateway's checks. The proxy writes these itself in any case.
const NEVER_CONNECTION_NAMED: [&str; 3] = ["content-length", "host", "transfer-encoding"];

/// Removes the hop-by-hop headers and every header the `Connection` header names (except
/// those that frame the message: `NEVER_CONNECTION_NAMED`). Returns the `Connection`
/// tokens, lower case, for a caller that also needs them (`close`).
pub fn remove_hop_by_hop(headers: &mut impl Headers) -> Vec<String> {
    let tokens = connection_tokens(headers);
    // One pass over the headers (per proxied request, both ways), not one per name.
    headers.remove_names(|name| {
        HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || tokens.iter().any(|token| {
                name.eq_ignore_ascii_case(token)
                    && !NEVER_CONNECTION_NAMED.contains(&token.as_str())
            })
    });
    tokens
}

/// Restores the two headers an upgrade needs after [`remove_hop_by_hop`].
pub fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("upgrade"),
    );
    headers.insert(http::header::UPGRADE, protocol);
}

/// Removes the named cookies from the `Cookie` header(s), keeping the others in order.
pub fn strip_cookies(headers: &mut impl Headers, names: &[&str]) {
    if !headers.contains("cookie") {
        return;
    }
    let kept: Vec<String> = headers
        .values("cookie")
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n).trim();
            // Compared as sent and percent-decoded: the session is read from decoded
            // cookies (`grid%5Fsession` signs in as `grid_session`), so both spellings go.
            let decoded = Cookie::parse_encoded(*pair).ok();
            !names.contains(&name) && !decoded.is_some_and(|c| names.contains(&c.name()))
        })
        .map(str::to_owned)
        .collect();
    headers.remove("cookie");
    if !kept.is_empty() {
        headers.set("cookie", &kept.join("; "));
    }
}

/// Removes `Authorization` (the gateway's bearer token must not reach the app).
pub fn strip_authorization(headers: &mut impl Headers) {
    headers.remove("authorization");
}

/// Removes every `Authorization` whose bearer token `is_token` recognises (a gateway
/// session token, whoever's, live or not); other credentials (`Basic`, an app's own
/// bearer) pass untouched.
pub fn strip_bearers(headers: &mut impl Headers, is_token: impl Fn(&str) -> bool) {
    headers.remove_values("authorization", |value| {
        let Ok(value) = std::str::from_utf8(value) else {
            return false;
        };
        let value = value.trim();
        // The scheme is case-insensitive (RFC 9110 §11.1); any whitespace may follow it.
        let Some((scheme, token)) = value.split_once([' ', '\t']) else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer") && is_token(token.trim())
    });
}

/// The gateway's session cookie under both its names (`session.secure` on and off).
const GATEWAY_COOKIES: [&str; 2] = [
    crate::auth::cookie_name(true),
    crate::auth::cookie_name(false),
];

/// Removes every `Set-Cookie` of an app response that would set the gateway's own session
/// cookie: its names in any case, with or without a `__Host-` / `__Secure-` prefix,
/// percent-encoded (the gateway reads cookies decoded), and the nameless form
/// (`=grid_session=x`, which browsers send back as `grid_session=x`). Whatever its
/// `Domain` or `Path`: in path mode a tenant could otherwise swap its visitor's session,
/// and with an apps domain toss cookies onto other apps' hosts. Returns how many went.
pub fn drop_gateway_set_cookies(headers: &mut impl Headers) -> usize {
    headers.remove_values("set-cookie", |value| {
        set_cookie_name(value).is_some_and(|name| {
            let name = unprefixed(&name);
            GATEWAY_COOKIES.iter().any(|ours| unprefixed(ours) == name)
        })
    })
}

/// The name a browser would send back for this `Set-Cookie` value, percent-decoded.
fn set_cookie_name(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let pair = text.split(';').next().unwrap_or_default();
    let name = match pair.split_once('=') {
        Some((name, _)) if !name.trim().is_empty() => name.trim(),
        // No name: the browser sends the value alone, read back as `name=value`.
        Some((_, value)) => value.split_once('=').map_or(value, |(n, _)| n).trim(),
        None => pair.trim(),
    };
    let decoded = Cookie::parse_encoded(format!("{name}=x"))
        .ok()
        .map(|c| c.name().to_owned());
    Some(decoded.unwrap_or_else(|| name.to_owned()))
}

/// A cookie name in lower case without a `__Host-` / `__Secure-` prefix.
fn unprefixed(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower
        .strip_prefix("__host-")
        .or_else(|| lower.strip_prefix("__secure-"))
    {
        Some(bare) => bare.to_owned(),
        None => lower,
    }
}

/// Who the request came from, as the gateway saw it.
#[derive(Clone, Debug)]
pub struct Origin<'a> {
    /// The TCP peer.
    pub peer: IpAddr,
    /// `http` or `https`, as the client reached the gateway's listener.
    pub proto: &'a str,
    /// The Host the client asked for.
    pub host: Option<&'a str>,
    /// Whether the peer is a trusted proxy whose forwarding headers are kept and extended.
    pub trusted: bool,
    /// Whether to also send RFC 7239 `Forwarded`.
    pub forwarded_header: bool,
}

fn joined(headers: &impl Headers, name: &str) -> Option<String> {
    let values: Vec<&str> = headers.values(name).collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Sets `X-Forwarded-For/Proto/Host` (and `Forwarded` if asked). From a trusted proxy the
/// client's chain is extended with the peer; from anyone else it is replaced, so a client
/// cannot make the app believe it comes from elsewhere.
pub fn set_forwarding(headers: &mut impl Headers, origin: &Origin<'_>) {
    if !origin.trusted {
        headers.remove_names(client_claims_origin);
    }
    headers.remove_names(overrides_request);
    let peer = origin.peer.to_string();
    let chain = match (origin.trusted, joined(headers, X_FORWARDED_FOR)) {
        (true, Some(existing)) => format!("{existing}, {peer}"),
        _ => peer,
    };
    headers.set(X_FORWARDED_FOR, &chain);
    // A trusted proxy's own protocol and host stand; anyone else's are replaced.
    if !(origin.trusted && headers.contains(X_FORWARDED_PROTO)) {
        headers.set(X_FORWARDED_PROTO, origin.proto);
    }
    if !(origin.trusted && headers.contains(X_FORWARDED_HOST)) {
        match origin.host {
            Some(host) => headers.set(X_FORWARDED_HOST, host),
            None => headers.remove(X_FORWARDED_HOST),
        }
    }
    if origin.forwarded_header {
        let node = match origin.peer {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("\"[{v6}]\""),
        };
        let mut element = format!("for={node};proto={}", origin.proto);
        if let Some(host) = origin
            .host
            .filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
        {
            element.push_str(&format!(";host=\"{host}\""));
        }
        let value = match (origin.trusted, joined(headers, FORWARDED)) {
            (true, Some(existing)) => format!("{existing}, {element}"),
            _ => element,
        };
        headers.set(FORWARDED, &value);
    } else if !origin.trusted {
        headers.remove(FORWARDED);
    }
}

/// Headers through which a client could claim another address, scheme, port or path
/// prefix, and that apps' frameworks believe: the `X-Forwarded-*` family beyond the three
/// the gateway sets, `X-Real-IP`, and any of them spelled with underscores (servers that
/// map `_` to `-`, as CGI-style ones do, would read `X_Forwarded_For` as the real thing).
/// Only a trusted proxy may send them.
pub(crate) fn client_claims_origin(name: &str) -> bool {
    const SET_BY_US: [&str; 3] = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];
    const OTHERS: [&str; 16] = [
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-ssl",
        "x-forwarded-scheme",
        "x-real-ip",
        "forwarded",
        // CDNs' and load balancers' own names for the client's address.
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-client-ip",
        "x-cluster-client-ip",
        "forwarded-for",
        "x-originating-ip",
        "x-remote-ip",
        "x-remote-addr",
        "x-forwarded-server",
    ];
    // Per header of every proxied request: compared in place, without case, `_` as `-`.
    let spelled = |claim: &str| {
        name.len() == claim.len()
            && name
                .bytes()
                .zip(claim.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
    };
    OTHERS.iter().any(|c| spelled(c))
        || (name.contains('_') && SET_BY_US.iter().any(|c| spelled(c)))
}

/// Headers through which frameworks let a request name another path or method than its
/// request line (IIS and Symfony's `X-Original-URL`/`X-Rewrite-URL`, the method overrides
/// of Rails, Express, Spring): the policy judged the request line, so nobody may send
/// them, a trusted proxy included. Underscore spellings too.
pub(crate) fn overrides_request(name: &str) -> bool {
    const OVERRIDES: [&str; 6] = [
        "x-original-url",
        "x-original-uri",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ];
    OVERRIDES.iter().any(|o| {
        name.len() == o.len()
            && name
                .bytes()
                .zip(o.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-'))
    })
}

/// Appends this hop to `Via` (RFC 9110 §7.6.3).
pub fn add_via(headers: &mut impl Headers, version: http::Version) {
    let via = take_via(headers, version);
    headers.set("via", &via);
}

/// The `Via` value [`add_via`] sets (what came, then this hop), every `Via` removed: for a
/// writer that puts it straight into a head. Allocates only when a `Via` came.
pub fn take_via(headers: &mut impl Headers, version: http::Version) -> Cow<'static, str> {
    let hop = match version {
        http::Version::HTTP_10 => "1.0 grid-gateway",
        http::Version::HTTP_2 => "2 grid-gateway",
        _ => "1.1 grid-gateway",
    };
    if !headers.contains("via") {
        return Cow::Borrowed(hop);
    }
    let via = match joined(headers, "via") {
        Some(existing) => Cow::Owned(format!("{existing}, {hop}")),
        None => Cow::Borrowed(hop),
    };
    headers.remove("via");
    via
}

/// Whether `name` is a header [`set_forwarding`] drops or replaces for a peer that is not
/// a trusted proxy (the wire path drops them in one pass and writes its own).
pub(crate) fn forwarding_replaced(name: &str) -> bool {
    [
        X_FORWARDED_FOR,
        X_FORWARDED_PROTO,
        X_FORWARDED_HOST,
        FORWARDED,
    ]
    .iter()
    .any(|ours| name.eq_ignore_ascii_case(ours))
        || client_claims_origin(name)
        || overrides_request(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderName;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic abc"),
            ("x-app", "stays"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-app"], "stays");
    }

    #[test]
    fn a_connection_header_cannot_remove_what_frames_the_message() {
        let mut h = map(&[
            ("connection", "content-length, host, x-gone"),
            ("content-length", "5"),
            ("host", "gw"),
            ("x-gone", "1"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(h["content-length"], "5");
        assert_eq!(h["host"], "gw");
        assert!(h.get("x-gone").is_none());
    }

    #[test]
    fn untrusted_claims_of_origin_are_removed_in_every_spelling() {
        let mut h = map(&[
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/admin"),
            ("x-real-ip", "6.6.6.6"),
            ("x_forwarded_for", "6.6.6.6"),
            ("x-forwarded-ssl", "on"),
            ("x-app", "stays"),
        ]);
        let origin = Origin {
            peer: "10.1.2.3".parse().unwrap(),
            proto: "http",
            host: Some("gw"),
            trusted: false,
            forwarded_header: false,
        };
        set_forwarding(&mut h, &origin);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "x-app",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto"
            ]
        );
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
    }

    #[test]
    fn upgrade_needs_both_headers() {
        assert!(
            upgrade_protocol(&map(&[("connection", "Upgrade"), ("upgrade", "websocket")]))
                .is_some()
        );
        assert!(upgrade_protocol(&map(&[("upgrade", "websocket")])).is_none());
        assert!(upgrade_protocol(&map(&[("connection", "keep-alive, upgrade")])).is_none());
    }

    #[test]
    fn only_the_named_cookies_are_removed() {
        let mut h = map(&[
            ("cookie", "a=1; __Host-grid_session=secret; b=2"),
            ("cookie", "grid_session=x"),
        ]);
        strip_cookies(&mut h, &["__Host-grid_session", "grid_session"]);
        assert_eq!(h["cookie"], "a=1; b=2");
        let mut only = map(&[("cookie", "grid_session=x")]);
        strip_cookies(&mut only, &["grid_session"]);
        assert!(only.get("cookie").is_none());
        let mut encoded = map(&[("cookie", "grid%5Fsession=x; a=1")]);
        strip_cookies(&mut encoded, &["grid_session"]);
        assert_eq!(
            encoded["cookie"], "a=1",
            "a percent-encoded name is the same cookie"
        );
    }

    #[test]
    fn untrusted_forwarding_headers_are_replaced() {
        let mut h = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=6.6.6.6"),
        ]);
        let origin = Origin {
            peer: "10.1.2.3".parse().unwrap(),
            proto: "http",
            host: Some("gw.example"),
            trusted: false,
            forwarded_header: false,
        };
        set_forwarding(&mut h, &origin);
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "gw.example");
        assert!(h.get("forwarded").is_none());
    }

    #[test]
    fn trusted_forwarding_headers_are_extended_once() {
        let mut h = map(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "2.2.2.2"),
            ("x-forwarded-proto", "https"),
        ]);
        let origin = Origin {
            peer: "::1".parse().unwrap(),
            proto: "http",
            host: Some("gw"),
            trusted: true,
            forwarded_header: true,
        };
        set_forwarding(&mut h, &origin);
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, ::1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http;host=\"gw\"");
    }

    #[test]
    fn via_is_appended() {
        let mut h = map(&[("via", "1.1 edge")]);
        add_via(&mut h, http::Version::HTTP_11);
        assert_eq!(h["via"], "1.1 edge, 1.1 grid-gateway");
    }
}
