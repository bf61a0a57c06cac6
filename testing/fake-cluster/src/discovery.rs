//! `/version`, `/healthz`, and the legacy discovery documents (`/api`, `/api/v1`, `/apis`,
//! `/apis/{group}`, `/apis/{group}/{version}`), built from kube-fake-client's table of the
//! built-in resources (Kubernetes 1.32 to 1.36; aggregated discovery is not served).

use std::collections::{BTreeMap, BTreeSet};

use http::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::api::State;
use crate::util::{RespBody, full, json_response};
use kube_fake_client::r#gen::discovery as table;

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn groups() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (group, version, _, _) in table::list_resources() {
        if !group.is_empty() {
            groups.entry(group).or_default().insert(version);
        }
    }
    groups
}

fn preferred<'a>(versions: &BTreeSet<&'a str>) -> &'a str {
    ["v1", "v2"]
        .into_iter()
        .find_map(|v| versions.get(v).copied())
        .or_else(|| versions.iter().next_back().copied())
        .unwrap_or("v1")
}

fn group_doc(group: &str, versions: &BTreeSet<&str>) -> Value {
    let gv = |v: &str| json!({ "groupVersion": format!("{group}/{v}"), "version": v });
    json!({
        "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(preferred(versions)),
    })
}

fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for (g, v, kind, plural) in table::list_resources() {
        if *g != group || *v != version {
            continue;
        }
        let namespaced = table::is_namespaced(g, v, kind).unwrap_or(true);
        let verbs: Vec<&str> = VERBS
            .iter()
            .copied()
            .filter(|verb| table::supports_verb(g, v, kind, verb))
            .collect();
        resources.push(json!({
            "name": plural,
            "singularName": table::get_singular(g, v, kind).unwrap_or_default(),
            "namespaced": namespaced,
            "kind": kind,
            "verbs": verbs,
            "shortNames": table::get_short_names(g, v, kind),
        }));
        if table::has_subresource(g, v, kind, "status") {
            resources.push(json!({
                "name": format!("{plural}/status"), "singularName": "", "namespaced": namespaced,
                "kind": kind, "verbs": ["get", "patch", "update"],
            }));
        }
        if group.is_empty() && *plural == "pods" {
            resources.push(json!({
                "name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// The answer to a discovery GET, or `None` when `path` is not a discovery path.
pub(crate) fn answer(state: &State, path: &str) -> Option<Response<RespBody>> {
    let path = path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let value = match segs.as_slice() {
        ["version"] => json!({
            "major": "1",
            "minor": "32",
            "gitVersion": "v1.32.0-grid-fake",
            "gitCommit": "grid-fake-cluster",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "none (grid-fake-cluster is a development stand-in, not a cluster)",
            "compiler": "rustc",
            "platform": "linux/amd64",
        }),
        ["healthz" | "readyz" | "livez"] => {
            return Some(
                Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(full("ok"))
                    .expect("a valid response"),
            );
        }
        ["api"] => json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                { "clientCIDR": "0.0.0.0/0", "serverAddress": state.addr.to_string() }
            ],
        }),
        ["apis"] => json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups().iter().map(|(g, v)| group_doc(g, v)).collect::<Vec<_>>(),
        }),
        ["api", "v1"] => resource_list("", "v1")?,
        ["apis", group] => {
            let groups = groups();
            let versions = groups.get(group)?;
            let mut doc = group_doc(group, versions);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        }
        ["apis", group, version] => resource_list(group, version)?,
        _ => return None,
    };
    Some(json_response(StatusCode::OK, &value))
}
