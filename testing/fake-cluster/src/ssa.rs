//! Server-side apply pruning, which kube-fake-client leaves out.
//!
//! kube-fake-client applies by JSON-merging the patch into the object and records the
//! manager's fields (`fieldsV1`, keys `f:<name>` only; lists are atomic). A real API server
//! also removes the fields the manager applied before and has now left out, unless another
//! manager still owns them. This module computes those fields from the manager's entry
//! before and after the apply.

use serde_json::{Map, Value};

/// A field path: object keys from the root, without the `f:` prefix.
pub(crate) type FieldPath = Vec<String>;

fn entries(object: &Value) -> &[Value] {
    object["metadata"]["managedFields"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn is_main_resource(entry: &Value) -> bool {
    entry
        .get("subresource")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
}

/// The `fieldsV1` of `manager`'s Apply entry for the main resource.
fn applied_fields<'a>(object: &'a Value, manager: &str) -> Option<&'a Value> {
    entries(object)
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == "Apply" && is_main_resource(e))
        .map(|e| &e["fieldsV1"])
}

/// Leaf paths present in `before` and absent from `after` (tries of `f:` keys).
fn removed(
    before: &Map<String, Value>,
    after: Option<&Map<String, Value>>,
    prefix: &mut FieldPath,
    out: &mut Vec<FieldPath>,
) {
    for (key, child) in before {
        let Some(field) = key.strip_prefix("f:") else {
            continue;
        };
        prefix.push(field.to_string());
        match after.and_then(|a| a.get(key)) {
            None => out.push(prefix.clone()),
            Some(after_child) => {
                let before_child = child.as_object().filter(|m| !m.is_empty());
                let after_child = after_child.as_object().filter(|m| !m.is_empty());
                // A leaf then and a leaf or subtree now: nothing is removed here.
                if let (Some(b), Some(a)) = (before_child, after_child) {
                    removed(b, Some(a), prefix, out);
                }
            }
        }
        prefix.pop();
    }
}

/// Whether a manager's `fieldsV1` owns `path`: the path itself, a descendant of it, or an
/// ancestor that is a leaf (an atomic value containing it).
fn owns(fields: &Value, path: &FieldPath) -> bool {
    let mut node = fields;
    for (i, field) in path.iter().enumerate() {
        match node.get(format!("f:{field}")) {
            None => return false,
            Some(child) => {
                let is_leaf = child.as_object().is_none_or(Map::is_empty);
                if is_leaf && i + 1 < path.len() {
                    return true;
                }
                node = child;
            }
        }
    }
    true
}

/// The fields to remove after `manager` applied: owned by it in `before`, not in `after`
/// (the object the merge produced), and owned by no other manager of the main resource.
pub(crate) fn fields_to_prune(before: &Value, after: &Value, manager: &str) -> Vec<FieldPath> {
    let Some(old) = applied_fields(before, manager).and_then(Value::as_object) else {
        return Vec::new();
    };
    let new = applied_fields(after, manager).and_then(Value::as_object);
    let mut candidates = Vec::new();
    removed(old, new, &mut Vec::new(), &mut candidates);
    let others: Vec<&Value> = entries(after)
        .iter()
        .filter(|e| e["manager"] != manager && is_main_resource(e))
        .map(|e| &e["fieldsV1"])
        .collect();
    candidates
        .into_iter()
        .filter(|path| !others.iter().any(|fields| owns(fields, path)))
        .filter(|path| {
            !matches!(
                path.first().map(String::as_str),
                Some("status" | "apiVersion" | "kind")
            )
        })
        .collect()
}

/// Removes the value at `path` from `object`, if it is there.
pub(crate) fn remove_path(object: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for key in parents {
        match node.get_mut(key.as_str()) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_fields(manager_fields: &[(&str, Value)]) -> Value {
        let entries: Vec<Value> = manager_fields
            .iter()
            .map(|(m, f)| json!({"manager": m, "operation": "Apply", "fieldsV1": f}))
            .collect();
        json!({"metadata": {"managedFields": entries}})
    }

    #[test]
    fn prunes_what_the_manager_left_out() {
        let before = with_fields(&[(
            "gw",
            json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}),
        )]);
        let after = with_fields(&[
            ("gw", json!({"f:data": {"f:a": {}}})),
            ("other", json!({"f:metadata": {"f:labels": {"f:x": {}}}})),
        ]);
        let pruned = fields_to_prune(&before, &after, "gw");
        assert_eq!(pruned, vec![vec!["data".to_string(), "b".to_string()]]);
    }

    #[test]
    fn nothing_without_a_previous_apply() {
        let before = json!({"metadata": {}});
        let after = with_fields(&[("gw", json!({"f:data": {}}))]);
        assert!(fields_to_prune(&before, &after, "gw").is_empty());
    }

    #[test]
    fn removes_paths() {
        let mut v = json!({"data": {"a": "1", "b": "2"}});
        remove_path(&mut v, &vec!["data".into(), "b".into()]);
        remove_path(&mut v, &vec!["nothing".into(), "here".into()]);
        assert_eq!(v, json!({"data": {"a": "1"}}));
    }
}
