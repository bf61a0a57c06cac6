//! Small pieces shared by the API layer: response bodies, Status errors, query strings,
//! request targets, name validation, timestamps.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// The body of every response the fake sends.
pub(crate) type RespBody = BoxBody<Bytes, std::io::Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> RespBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<RespBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(value.to_string()))
        .expect("a valid response")
}

pub(crate) fn raw_json_response(status: StatusCode, body: Bytes) -> Response<RespBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(body))
        .expect("a valid response")
}

/// A `Status` object as the API server writes it for a failure.
pub(crate) fn status_value(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

pub(crate) fn status_response(code: u16, reason: &str, message: &str) -> Response<RespBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &status_value(code, reason, message))
}

/// `404 NotFound` for `resource "name" not found`, with details as the API server sends them.
pub(crate) fn not_found(resource: &str, group: &str, name: &str) -> Response<RespBody> {
    let mut v = status_value(404, "NotFound", &format!("{resource} \"{name}\" not found"));
    v["details"] = json!({ "name": name, "group": group, "kind": resource });
    json_response(StatusCode::NOT_FOUND, &v)
}

pub(crate) fn no_such_resource() -> Response<RespBody> {
    status_response(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

pub(crate) fn bad_request(message: &str) -> Response<RespBody> {
    status_response(400, "BadRequest", message)
}

pub(crate) fn invalid(kind: &str, name: &str, detail: &str) -> Response<RespBody> {
    status_response(
        422,
        "Invalid",
        &format!("{kind} \"{name}\" is invalid: {detail}"),
    )
}

/// Percent-decodes a query component (`+` is a space, as in forms).
pub(crate) fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query component.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The decoded `key=value` pairs of a query string.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Self(pairs)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | ""))
    }

    /// The query string with only these keys, re-encoded (empty string when none).
    pub(crate) fn only(&self, keys: &[&str]) -> String {
        let kept: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| keys.contains(&k.as_str()))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        if kept.is_empty() {
            String::new()
        } else {
            format!("?{}", kept.join("&"))
        }
    }
}

/// What a resource path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub kind: String,
    pub namespaced: bool,
}

impl Target {
    /// Parses `/api/v1/...` and `/apis/{group}/{version}/...`. `None` when the path is not a
    /// resource path or names a resource this Kubernetes version does not have.
    pub(crate) fn parse(path: &str) -> Option<Target> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return None,
        };
        let (namespace, resource, name, subresource) = match rest {
            // Namespace objects themselves (core group only).
            ["namespaces"] if group.is_empty() => (None, "namespaces", None, None),
            ["namespaces", n] if group.is_empty() => (None, "namespaces", Some(*n), None),
            ["namespaces", n, sub @ ("status" | "finalize")] if group.is_empty() => {
                (None, "namespaces", Some(*n), Some(*sub))
            }
            ["namespaces", ns, res] => (Some(*ns), *res, None, None),
            ["namespaces", ns, res, n] => (Some(*ns), *res, Some(*n), None),
            ["namespaces", ns, res, n, sub] => (Some(*ns), *res, Some(*n), Some(*sub)),
            [res] => (None, *res, None, None),
            [res, n] => (None, *res, Some(*n), None),
            [res, n, sub] => (None, *res, Some(*n), Some(*sub)),
            _ => return None,
        };
        let kind = kube_fake_client::r#gen::discovery::plural_to_kind(group, version, resource)?;
        let namespaced = kube_fake_client::r#gen::discovery::is_namespaced(group, version, kind)?;
        Some(Target {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            resource: resource.to_string(),
            name: name.map(str::to_string),
            subresource: subresource.map(str::to_string),
            kind: kind.to_string(),
            namespaced,
        })
    }

    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub(crate) fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.resource == "namespaces"
    }

    /// The collection path in the store (Namespaces: their storage form).
    pub(crate) fn storage_collection(&self) -> String {
        if self.is_namespace() {
            return format!(
                "/apis/{}/namespaces/{}/{}",
                crate::storage::NS_STORAGE_API_VERSION,
                crate::storage::NS_STORAGE_NAMESPACE,
                crate::storage::NS_STORAGE_PLURAL
            );
        }
        let prefix = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match &self.namespace {
            Some(ns) => format!("{prefix}/namespaces/{ns}/{}", self.resource),
            None => format!("{prefix}/{}", self.resource),
        }
    }

    /// The object's path in the store, without the subresource.
    pub(crate) fn storage_object(&self, name: &str) -> String {
        format!("{}/{name}", self.storage_collection())
    }

    /// The path in the store this request addresses (with `/status` when it does).
    pub(crate) fn storage_path(&self) -> String {
        match (&self.name, self.subresource.as_deref()) {
            (Some(name), Some("status")) => format!("{}/status", self.storage_object(name)),
            (Some(name), _) => self.storage_object(name),
            (None, _) => self.storage_collection(),
        }
    }
}

/// RFC 1123 label: at most 63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// RFC 1035 label: an RFC 1123 label that starts with a letter.
pub(crate) fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// RFC 1123 subdomain: at most 253 characters, dot-separated RFC 1123 labels.
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Why `name` is not a valid object name for `resource`, in the API server's words.
pub(crate) fn name_problem(resource: &str, name: &str) -> Option<String> {
    let (ok, rule) = match resource {
        "services" => (
            is_dns1035_label(name),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        ),
        "namespaces" => (
            is_dns1123_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
        _ => (
            is_dns1123_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ),
    };
    (!ok).then(|| format!("metadata.name: Invalid value: \"{name}\": {rule}"))
}

/// Now, as Kubernetes writes a `Time` (seconds, UTC).
pub(crate) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Now with nanoseconds, as in log timestamps.
pub(crate) fn now_nanos() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        .to_string()
}

/// A short random-looking suffix for `generateName`.
pub(crate) fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = h.finish();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Collects a body into bytes, refusing more than `limit`.
pub(crate) async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, String>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("/api/v1/namespaces/foo").unwrap();
        assert!(t.is_namespace() && !t.namespaced && t.name.as_deref() == Some("foo"));
        let t = Target::parse("/api/v1/namespaces").unwrap();
        assert!(t.is_namespace() && t.name.is_none());
        let t = Target::parse("/api/v1/namespaces/foo/status").unwrap();
        assert!(t.is_namespace() && t.subresource.as_deref() == Some("status"));
        let t = Target::parse("/api/v1/namespaces/foo/pods").unwrap();
        assert_eq!(t.namespace.as_deref(), Some("foo"));
        assert_eq!(t.kind, "Pod");
        let t = Target::parse("/api/v1/namespaces/foo/pods/p/log").unwrap();
        assert_eq!(t.subresource.as_deref(), Some("log"));
        let t = Target::parse("/apis/apps/v1/namespaces/n/deployments/d/status").unwrap();
        assert_eq!(
            t.storage_path(),
            "/apis/apps/v1/namespaces/n/deployments/d/status"
        );
        let t = Target::parse("/apis/networking.k8s.io/v1/namespaces/n/networkpolicies").unwrap();
        assert_eq!(t.kind, "NetworkPolicy");
        let t = Target::parse("/api/v1/nodes/n1").unwrap();
        assert!(!t.namespaced && t.kind == "Node");
        assert!(Target::parse("/api/v1/widgets").is_none());
        assert!(Target::parse("/version").is_none());
    }

    #[test]
    fn queries() {
        let q = Query::parse(Some("labelSelector=a%3Db%2Cc&dryRun=All&follow=true&x"));
        assert_eq!(q.get("labelSelector"), Some("a=b,c"));
        assert!(q.flag("follow") && q.flag("x") && !q.flag("dryRun"));
        assert_eq!(q.only(&["labelSelector"]), "?labelSelector=a%3Db%2Cc");
        assert_eq!(decode("a+b%2"), "a b%2");
    }

    #[test]
    fn names() {
        assert!(is_dns1123_label("grid-order-7"));
        assert!(!is_dns1123_label("Grid"));
        assert!(!is_dns1123_label("-a"));
        assert!(is_dns1035_label("web"));
        assert!(!is_dns1035_label("7web"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(name_problem("services", "7web").is_some());
        assert!(name_problem("configmaps", "7web").is_none());
    }
}
