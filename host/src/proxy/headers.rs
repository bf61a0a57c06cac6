//! Header rewriting between client and app. Pure functions over `HeaderMap`.

use std::net::IpAddr;

use http::header::{
    AUTHORIZATION, CONNECTION, COOKIE, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};

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

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// The tokens of every `Connection` header, lower case.
fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The protocol asked for by an upgrade request (`Connection: upgrade` and `Upgrade: x`).
pub fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants_upgrade = connection_tokens(headers).iter().any(|t| t == "upgrade");
    wants_upgrade
        .then(|| headers.get(UPGRADE).cloned())
        .flatten()
}

/// Removes the hop-by-hop headers and every header the `Connection` header names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for token in connection_tokens(headers) {
        if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // Keep the compiler honest that the constants above are the real header names.
    debug_assert!(
        [
            CONNECTION,
            PROXY_AUTHENTICATE,
            PROXY_AUTHORIZATION,
            TE,
            TRAILER,
            TRANSFER_ENCODING,
            UPGRADE
        ]
        .iter()
        .all(|h| HOP_BY_HOP.contains(&h.as_str()))
    );
}

/// Restores the two headers an upgrade needs after [`remove_hop_by_hop`].
pub fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocol);
}

/// Removes the named cookies from the `Cookie` header(s), keeping the others in order.
pub fn strip_cookies(headers: &mut HeaderMap, names: &[&str]) {
    if !headers.contains_key(COOKIE) {
        return;
    }
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n).trim();
            !names.contains(&name)
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if !kept.is_empty()
        && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
    {
        headers.insert(COOKIE, value);
    }
}

/// Removes `Authorization` (the gateway's bearer token must not reach the app).
pub fn strip_authorization(headers: &mut HeaderMap) {
    headers.remove(AUTHORIZATION);
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

fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn put(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(v) => {
            headers.insert(name.clone(), v);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

/// Sets `X-Forwarded-For/Proto/Host` (and `Forwarded` if asked). From a trusted proxy the
/// client's chain is extended with the peer; from anyone else it is replaced, so a client
/// cannot make the app believe it comes from elsewhere.
pub fn set_forwarding(headers: &mut HeaderMap, origin: &Origin<'_>) {
    let peer = origin.peer.to_string();
    let chain = match (origin.trusted, joined(headers, &X_FORWARDED_FOR)) {
        (true, Some(existing)) => format!("{existing}, {peer}"),
        _ => peer.clone(),
    };
    put(headers, &X_FORWARDED_FOR, &chain);
    let keep =
        |headers: &HeaderMap, name: &HeaderName| origin.trusted && headers.contains_key(name);
    if !keep(headers, &X_FORWARDED_PROTO) {
        put(headers, &X_FORWARDED_PROTO, origin.proto);
    }
    if !keep(headers, &X_FORWARDED_HOST) {
        match origin.host {
            Some(host) => put(headers, &X_FORWARDED_HOST, host),
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
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
        let value = match (origin.trusted, joined(headers, &FORWARDED)) {
            (true, Some(existing)) => format!("{existing}, {element}"),
            _ => element,
        };
        put(headers, &FORWARDED, &value);
    } else if !origin.trusted {
        headers.remove(&FORWARDED);
    }
}

/// Appends this hop to `Via` (RFC 9110 §7.6.3).
pub fn add_via(headers: &mut HeaderMap, version: http::Version) {
    let hop = match version {
        http::Version::HTTP_10 => "1.0 grid-gateway",
        http::Version::HTTP_2 => "2 grid-gateway",
        _ => "1.1 grid-gateway",
    };
    let value = match joined(headers, &VIA) {
        Some(existing) => format!("{existing}, {hop}"),
        None => hop.to_owned(),
    };
    put(headers, &VIA, &value);
}

#[cfg(test)]
mod tests {
    use super::*;

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
