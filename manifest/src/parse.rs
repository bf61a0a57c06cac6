//! YAML → typed objects, under budgets and a time bound.

use std::collections::HashSet;

use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;

use super::ManifestLimits;
use super::error::{ManifestError, Refusal};
use super::object::{ALLOWED_KINDS, Object};

/// Kinds refused as cluster-scoped (`manifest_cluster_scoped`) rather than merely not
/// allowed: the ones a manifest is likely to carry.
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "APIService",
    "CertificateSigningRequest",
    "ClusterIssuer",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterTrustBundle",
    "CSIDriver",
    "CSINode",
    "CustomResourceDefinition",
    "FlowSchema",
    "IngressClass",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// Longest parser message passed on to the user.
const MAX_MESSAGE: usize = 400;

/// Parses a manifest on the calling thread: one object per non-empty YAML document, each
/// of an allowed kind and apiVersion, with a name, no field the Kubernetes 1.32 API lacks,
/// and no kind and name twice. `status` is dropped (the cluster writes it). From async code,
/// `grid_cluster::manifest::parse` runs it on the blocking pool under a time bound.
pub fn parse_blocking(bytes: &[u8], limits: &ManifestLimits) -> Result<Vec<Object>, ManifestError> {
    check_size(bytes, limits)?;
    let values: Vec<Value> =
        serde_saphyr::from_slice_multiple_with_options(bytes, saphyr_options(limits))
            .map_err(|e| classify(&e, limits))?;
    if values.is_empty() {
        return Err(ManifestError::Empty);
    }
    if values.len() > limits.max_documents {
        return Err(ManifestError::TooManyDocuments {
            max: limits.max_documents,
        });
    }
    let mut objects = Vec::with_capacity(values.len());
    let mut seen = HashSet::new();
    for (index, value) in values.into_iter().enumerate() {
        let object = to_object(index + 1, value)?;
        if !seen.insert((object.kind(), object.name().to_owned())) {
            return Err(ManifestError::DuplicateObject {
                object: object.describe(),
            });
        }
        objects.push(object);
    }
    Ok(objects)
}

fn check_size(bytes: &[u8], limits: &ManifestLimits) -> Result<(), ManifestError> {
    if bytes.len() > limits.max_bytes {
        return Err(ManifestError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    Ok(())
}

fn saphyr_options(limits: &ManifestLimits) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_events = limits.max_events;
    budget.max_aliases = limits.max_aliases;
    budget.max_anchors = limits.max_anchors;
    budget.max_depth = limits.max_depth;
    budget.flow_nesting_limit = limits.max_depth;
    // Empty documents (a leading or trailing `---`) count here but are not objects; the
    // object count is checked after parsing.
    budget.max_documents = limits.max_documents.saturating_mul(2).saturating_add(2);
    budget.max_nodes = limits.max_nodes;
    budget.max_total_scalar_bytes = limits.max_scalar_bytes;
    budget.max_total_comment_bytes = limits.max_bytes;
    budget.max_merge_keys = limits.max_aliases;
    budget.max_recorded_anchor_events = limits.max_alias_replayed_events;
    budget.max_recorded_anchor_bytes = limits.max_scalar_bytes;
    budget.max_reader_input_bytes = Some(limits.max_bytes);
    budget.max_inclusion_depth = 0;

    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = limits.max_alias_replayed_events;
    alias_limits.max_replay_stack_depth = 16;
    alias_limits.max_alias_expansions_per_anchor = limits.max_aliases;

    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits = alias_limits;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.emit_comments = false;
    options.with_snippet = false;
    // kubectl reads YAML 1.1: `defaultMode: 0644` is octal (420), not six hundred
    // forty-four.
    options.legacy_octal_numbers = true;
    // But only `true` and `false` are booleans: `name: n`, `country: NO` and `value: on`
    // stay strings. A boolean field given `yes` is refused by the typed object instead.
    options.strict_booleans = true;
    options
}

/// Budget and alias-replay breaches are `manifest_budget_exceeded` (too many documents has
/// its own code); anything else the parser says is `manifest_invalid_yaml`.
fn classify(err: &serde_saphyr::Error, limits: &ManifestLimits) -> ManifestError {
    let mut inner = err.without_snippet();
    while let serde_saphyr::Error::AliasError { error, .. } = inner {
        inner = error.without_snippet();
    }
    // The parser's advice is for programmers, not for the manifest's author.
    let message = truncate(
        err.to_string()
            .replace(", set DuplicateKeyPolicy in Options if acceptable", ""),
    );
    match inner {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Documents { .. },
            ..
        } => ManifestError::TooManyDocuments {
            max: limits.max_documents,
        },
        serde_saphyr::Error::Budget { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. }
        | serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } => {
            ManifestError::BudgetExceeded(message)
        }
        // The scanner's own nesting limit (flow collections) is the depth budget too.
        _ if message.contains("nesting limit") || message.contains("recursion limit") => {
            ManifestError::BudgetExceeded(message)
        }
        _ => ManifestError::InvalidYaml(message),
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// One document: an allowed kind, typed, named, without unknown fields.
fn to_object(index: usize, value: Value) -> Result<Object, ManifestError> {
    let str_at = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let kind = str_at("/kind").unwrap_or_default().to_owned();
    let api_version = str_at("/apiVersion").unwrap_or_default().to_owned();
    let name = str_at("/metadata/name").unwrap_or_default().to_owned();
    let object = match (kind.is_empty(), name.is_empty()) {
        (true, _) => format!("object #{index}"),
        (false, true) => format!("{kind} (object #{index})"),
        (false, false) => format!("{kind} {name:?}"),
    };
    let refusal = |field: &str, reason: String| Refusal::new(object.clone(), field, reason);

    if !value.is_object() {
        return Err(ManifestError::InvalidObject(refusal(
            "(document)",
            "is not a mapping".into(),
        )));
    }
    if kind.is_empty() {
        return Err(ManifestError::InvalidObject(refusal(
            "kind",
            "is missing".into(),
        )));
    }
    let allowed_names =
        "Deployment, StatefulSet, Service, ConfigMap, Secret and PersistentVolumeClaim";
    match ALLOWED_KINDS.iter().find(|(_, k)| *k == kind) {
        Some((version, _)) if *version == api_version => {}
        Some((version, _)) => {
            return Err(ManifestError::KindNotAllowed(refusal(
                "apiVersion",
                format!("is {api_version:?}: a {kind} is applied as {version}"),
            )));
        }
        None if kind == "List" => {
            return Err(ManifestError::KindNotAllowed(refusal(
                "kind",
                "is List: write each object as its own YAML document".into(),
            )));
        }
        None if CLUSTER_SCOPED_KINDS.contains(&kind.as_str()) => {
            return Err(ManifestError::ClusterScoped(refusal(
                "kind",
                format!(
                    "is {kind}, a cluster-scoped kind: an order's objects live in its namespace"
                ),
            )));
        }
        None => {
            return Err(ManifestError::KindNotAllowed(refusal(
                "kind",
                format!("is {kind}: the gateway applies only {allowed_names}"),
            )));
        }
    }

    let mut object = Object::from_json(&kind, value.clone()).map_err(|(path, message)| {
        let field = if path.is_empty() || path == "." {
            "(object)".to_owned()
        } else {
            path
        };
        ManifestError::InvalidObject(refusal(&field, format!("is invalid: {message}")))
    })?;
    let mut path = String::new();
    if let Some(field) = first_unknown_field(&value, &object.to_json(), &mut path) {
        return Err(ManifestError::UnknownField(refusal(
            &field,
            format!("is not a field of {kind} in the Kubernetes 1.32 API"),
        )));
    }
    if name.is_empty() {
        return Err(ManifestError::InvalidObject(refusal(
            "metadata.name",
            "is missing".into(),
        )));
    }
    // The cluster writes status; an applied one would be ignored at best.
    match &mut object {
        Object::Deployment(o) => o.status = None,
        Object::StatefulSet(o) => o.status = None,
        Object::Service(o) => o.status = None,
        Object::PersistentVolumeClaim(o) => o.status = None,
        Object::ConfigMap(_) | Object::Secret(_) => {}
    }
    Ok(object)
}

/// The path of the first non-null field of `raw` that `typed` (its typed round trip)
/// lost: a field the typed object has no place for.
fn first_unknown_field(raw: &Value, typed: &Value, path: &mut String) -> Option<String> {
    match (raw, typed) {
        (Value::Object(raw), Value::Object(typed)) => {
            for (key, value) in raw {
                if value.is_null() {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let found = match typed.get(key) {
                    None => Some(path.clone()),
                    Some(typed) => first_unknown_field(value, typed, path),
                };
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        (Value::Array(raw), Value::Array(typed)) if raw.len() == typed.len() => {
            for (i, (raw, typed)) in raw.iter().zip(typed).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = first_unknown_field(raw, typed, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn limits() -> ManifestLimits {
        ManifestLimits::default()
    }

    fn parse(yaml: &str) -> Result<Vec<Object>, ManifestError> {
        parse_blocking(yaml.as_bytes(), &limits())
    }

    fn err(yaml: &str) -> ManifestError {
        parse(yaml).expect_err("should be refused")
    }

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 8080
";

    /// Anchors nested `levels` deep, each a list referencing the previous one `fanout`
    /// times: a few hundred bytes that expand to fanout^levels nodes.
    fn alias_bomb(levels: usize, fanout: usize) -> String {
        let mut yaml = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\n");
        yaml.push_str("a0: &a0 [lol]\n");
        for level in 1..=levels {
            let refs = vec![format!("*a{}", level - 1); fanout].join(",");
            yaml.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        yaml
    }

    #[test]
    fn parses_documents_and_skips_empty_ones() {
        let yaml = format!(
            "---\n# comment only\n---\n{DEPLOYMENT}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: conf}}\ndata: {{a: b}}\n---\n"
        );
        let objects = parse(&yaml).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].kind(), "Deployment");
        assert_eq!(objects[0].name(), "web");
        assert_eq!(objects[1].describe(), "ConfigMap \"conf\"");
        let json = objects[0].to_json();
        assert_eq!(json["apiVersion"], "apps/v1");
        assert_eq!(
            json["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
            8080
        );
    }

    #[test]
    fn empty_manifests_are_refused() {
        for yaml in ["", "# nothing\n", "---\n---\n", "~\n"] {
            assert_eq!(err(yaml).code(), "manifest_empty", "{yaml:?}");
        }
    }

    #[test]
    fn yaml_1_1_octal_modes_read_as_kubectl_reads_them() {
        let yaml = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
      volumes:
        - name: conf
          configMap: {name: conf, defaultMode: 0644}
";
        let objects = parse(yaml).unwrap();
        let json = objects[0].to_json();
        assert_eq!(
            json["spec"]["template"]["spec"]["volumes"][0]["configMap"]["defaultMode"],
            0o644
        );
    }

    #[test]
    fn only_true_and_false_are_booleans() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: n}\ndata: {country: NO, debug: on}\n";
        let objects = parse(yaml).unwrap();
        assert_eq!(objects[0].name(), "n");
        assert_eq!(objects[0].to_json()["data"]["debug"], "on");
        let e = err(&DEPLOYMENT.replace("    spec:\n", "    spec:\n      hostNetwork: yes\n"));
        assert_eq!(e.code(), "manifest_invalid_object");
        assert_eq!(e.refusal().unwrap().field, "spec.template.spec.hostNetwork");
    }

    #[test]
    fn not_yaml_is_invalid_yaml() {
        for yaml in [
            "kind: [unclosed\n",
            "a: 1\na: 2\n",
            "a: *undefined\n",
            "\u{0}\u{1}",
        ] {
            let e = err(yaml);
            assert_eq!(e.code(), "manifest_invalid_yaml", "{yaml:?}: {e}");
        }
        let e = parse_blocking(&[0xff, 0xfe, b'a'], &limits()).unwrap_err();
        assert_eq!(e.code(), "manifest_invalid_yaml", "{e}");
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let bomb = alias_bomb(9, 9);
        assert!(bomb.len() < 500, "the bomb is {} bytes", bomb.len());
        let start = Instant::now();
        let e = err(&bomb);
        assert_eq!(e.code(), "manifest_budget_exceeded", "{e}");
        assert!(
            start.elapsed().as_millis() < 500,
            "took {:?}",
            start.elapsed()
        );
    }

    #[test]
    fn default_saphyr_budget_would_let_a_small_bomb_through() {
        // The reason for our budgets: serde-saphyr's defaults accept this 4^8 = 65,536-leaf
        // expansion of a few hundred bytes; ours refuse it.
        let bomb = alias_bomb(8, 4);
        let expanded: Value = serde_saphyr::from_str(&bomb).unwrap();
        assert!(serde_json::to_string(&expanded).unwrap().len() > 300_000);
        assert_eq!(err(&bomb).code(), "manifest_budget_exceeded");
    }

    #[test]
    fn modest_aliases_are_fine() {
        let yaml = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: conf
  labels: &labels {app: web, tier: front}
  annotations: *labels
data: {a: b}
";
        let objects = parse(yaml).unwrap();
        assert_eq!(
            objects[0].metadata().annotations.as_ref().unwrap()["tier"],
            "front"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let block = {
            let mut yaml =
                String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nx:\n");
            for depth in 1..200 {
                yaml.push_str(&"  ".repeat(depth));
                yaml.push_str("a:\n");
            }
            yaml
        };
        let flow = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: deep}}\nx: {}{}\n",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        for yaml in [block, flow] {
            let e = err(&yaml);
            assert_eq!(e.code(), "manifest_budget_exceeded", "{e}");
        }
    }

    #[test]
    fn too_many_nodes_is_refused() {
        let mut yaml =
            String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n");
        for i in 0..60_000 {
            yaml.push_str(&format!("  k{i}: v\n"));
        }
        let limits = ManifestLimits {
            max_bytes: 4 << 20,
            ..limits()
        };
        let e = parse_blocking(yaml.as_bytes(), &limits).unwrap_err();
        assert_eq!(e.code(), "manifest_budget_exceeded", "{e}");
    }

    #[test]
    fn too_large_and_too_many_documents() {
        let limits = ManifestLimits {
            max_bytes: 100,
            ..limits()
        };
        let e = parse_blocking(DEPLOYMENT.as_bytes(), &limits).unwrap_err();
        assert_eq!(e.code(), "manifest_too_large");

        let one = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        let many: String = (0..65)
            .map(|i| one.replace("name: c", &format!("name: c{i}")))
            .collect::<Vec<_>>()
            .join("---\n");
        assert_eq!(err(&many).code(), "manifest_too_many_documents");
        let separators = "---\n".repeat(500);
        assert_eq!(err(&separators).code(), "manifest_too_many_documents");
    }

    #[test]
    fn kinds_outside_the_allowlist_are_refused() {
        let cases = [
            (
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n",
                "manifest_kind_not_allowed",
                "Role \"r\": kind is Role",
            ),
            (
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\n",
                "manifest_kind_not_allowed",
                "Ingress \"i\": kind",
            ),
            (
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\n",
                "manifest_kind_not_allowed",
                "NetworkPolicy \"np\": kind",
            ),
            (
                "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\n",
                "manifest_kind_not_allowed",
                "Endpoints \"e\": kind",
            ),
            (
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\n",
                "manifest_kind_not_allowed",
                "EndpointSlice \"e\": kind",
            ),
            (
                "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
                "manifest_kind_not_allowed",
                "Pod \"p\": kind",
            ),
            (
                "apiVersion: v1\nkind: List\nitems: []\n",
                "manifest_kind_not_allowed",
                "List (object #1): kind is List",
            ),
            (
                "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\n",
                "manifest_kind_not_allowed",
                "Deployment \"d\": apiVersion is \"extensions/v1beta1\"",
            ),
            (
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n",
                "manifest_cluster_scoped",
                "Namespace \"kube-system\": kind is Namespace",
            ),
            (
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: b}\n",
                "manifest_cluster_scoped",
                "ClusterRoleBinding \"b\": kind",
            ),
            (
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: c}\n",
                "manifest_cluster_scoped",
                "CustomResourceDefinition \"c\": kind",
            ),
            (
                "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: w}\n",
                "manifest_cluster_scoped",
                "MutatingWebhookConfiguration \"w\": kind",
            ),
        ];
        for (yaml, code, message) in cases {
            let e = err(yaml);
            assert_eq!(e.code(), code, "{yaml}");
            assert!(e.to_string().starts_with(message), "{e}");
        }
    }

    #[test]
    fn bad_shapes_name_the_field() {
        let e = err(&DEPLOYMENT.replace("containerPort: 8080", "containerPort: eighty"));
        assert_eq!(e.code(), "manifest_invalid_object");
        let r = e.refusal().unwrap();
        assert_eq!(r.object, "Deployment \"web\"");
        assert_eq!(
            r.field,
            "spec.template.spec.containers[0].ports[0].containerPort"
        );

        let e = err("apiVersion: v1\nkind: ConfigMap\ndata: {a: b}\n");
        assert_eq!(e.code(), "manifest_invalid_object");
        assert_eq!(
            e.to_string(),
            "ConfigMap (object #1): metadata.name is missing"
        );

        assert_eq!(err("just a string\n").code(), "manifest_invalid_object");
        assert_eq!(
            err("metadata: {name: x}\n").code(),
            "manifest_invalid_object"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = err(&DEPLOYMENT.replace(
            "image: nginx:1.27",
            "image: nginx:1.27\n          imagePullPolcy: Always",
        ));
        assert_eq!(e.code(), "manifest_unknown_field");
        assert_eq!(
            e.refusal().unwrap().field,
            "spec.template.spec.containers[0].imagePullPolcy"
        );
        let e = err("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nspec: {}\n");
        assert_eq!(
            e.to_string(),
            "ConfigMap \"c\": spec is not a field of ConfigMap in the Kubernetes 1.32 API"
        );
        // Nulls (kubectl's `creationTimestamp: null`) are not fields.
        parse(&DEPLOYMENT.replace(
            "  name: web\n",
            "  name: web\n  creationTimestamp: null\n  bogus: ~\n",
        ))
        .unwrap();
    }

    #[test]
    fn duplicates_are_refused() {
        let yaml = format!("{DEPLOYMENT}---\n{DEPLOYMENT}");
        let e = err(&yaml);
        assert_eq!(e.code(), "manifest_duplicate_object");
        assert!(e.to_string().contains("Deployment \"web\""));
        // Same name, different kinds: fine.
        parse(&format!(
            "{DEPLOYMENT}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\n"
        ))
        .unwrap();
    }

    #[test]
    fn status_is_dropped() {
        let yaml = format!("{DEPLOYMENT}status:\n  replicas: 3\n");
        let objects = parse(&yaml).unwrap();
        assert!(objects[0].to_json().get("status").is_none());
    }
}
