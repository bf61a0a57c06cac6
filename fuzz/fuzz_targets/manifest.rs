//! The manifest parser and checks (`grid_manifest`, what a deploy runs on the bytes a
//! user's manifest URL returned): any bytes are parsed without a panic and within the
//! documented budgets (`ManifestLimits`: size, documents, depth, nodes, aliases; the
//! allocations are bounded by `scripts/fuzz.sh`'s `-malloc_limit_mb`/`-rss_limit_mb`).
//! A refusal is a typed error with a parse-stage code; an accepted manifest holds between
//! one and `max_documents` objects, each of an allowed kind and apiVersion, named, unique,
//! and written as JSON (what the gateway applies) it parses back to the same objects. The
//! sandbox checks then run on it: a refusal is a user error with a check-stage code, and
//! what passes is in the order's namespace, with no service-account token mounted, no
//! privileged container and no host namespace, and routes to one of its own Services.
#![no_main]

use grid_manifest::{
    ALLOWED_KINDS, ManifestError, ManifestLimits, Object, SandboxContext, check, parse_blocking,
};
use grid_policy_sdk::Resources;
use k8s_openapi::api::core::v1::PodSpec;
use libfuzzer_sys::fuzz_target;

/// Codes `parse_blocking` may refuse with.
const PARSE_CODES: &[&str] = &[
    "manifest_too_large",
    "manifest_invalid_yaml",
    "manifest_budget_exceeded",
    "manifest_too_many_documents",
    "manifest_empty",
    "manifest_kind_not_allowed",
    "manifest_cluster_scoped",
    "manifest_unknown_field",
    "manifest_invalid_object",
    "manifest_duplicate_object",
];

/// Codes only `parse` (timeout, a panicked task) or nothing at all refuse with.
const NEVER_FROM_CHECK: &[&str] = &[
    "manifest_too_large",
    "manifest_invalid_yaml",
    "manifest_budget_exceeded",
    "manifest_parse_timeout",
    "manifest_too_many_documents",
    "manifest_empty",
    "manifest_cluster_scoped",
    "manifest_unknown_field",
    "manifest_duplicate_object",
    "manifest_internal",
];

fn context() -> SandboxContext {
    SandboxContext {
        order_id: "7".into(),
        namespace: "grid-order-7".into(),
        resources: Resources {
            cpu_millis: 4000,
            memory_bytes: 8 << 30,
            storage_bytes: 20 << 30,
            gpus: 1,
            gpu_model: None,
        },
        max_pods: 64,
        max_pvcs: 16,
    }
}

fn pod_spec(object: &Object) -> Option<&PodSpec> {
    match object {
        Object::Deployment(o) => o.spec.as_ref()?.template.spec.as_ref(),
        Object::StatefulSet(o) => o.spec.as_ref()?.template.spec.as_ref(),
        _ => None,
    }
}

fn assert_refusal(e: &ManifestError) {
    assert!(e.is_user_error(), "{e:?}");
    assert!(!e.to_string().is_empty(), "{e:?}");
    if let Some(refusal) = e.refusal() {
        assert!(
            !refusal.object.is_empty() && !refusal.field.is_empty(),
            "{e:?}"
        );
    }
    if let ManifestError::InvalidYaml(message) | ManifestError::BudgetExceeded(message) = e {
        // The parser's message is cut at 400 bytes (plus the ellipsis).
        assert!(
            message.len() <= 400 + '…'.len_utf8(),
            "{} bytes",
            message.len()
        );
    }
}

fn assert_allowed(object: &Object) {
    assert!(
        ALLOWED_KINDS.contains(&(object.api_version(), object.kind())),
        "{}",
        object.describe()
    );
    let json = object.to_json();
    assert_eq!(json["kind"], object.kind());
    assert_eq!(json["apiVersion"], object.api_version());
}

fuzz_target!(|data: &[u8]| {
    let limits = ManifestLimits::default();
    let objects = match parse_blocking(data, &limits) {
        Ok(objects) => objects,
        Err(e) => {
            assert_refusal(&e);
            assert!(PARSE_CODES.contains(&e.code()), "{}: {e}", e.code());
            if data.len() > limits.max_bytes {
                assert_eq!(e.code(), "manifest_too_large");
            }
            return;
        }
    };
    assert!(data.len() <= limits.max_bytes);
    assert!(!objects.is_empty() && objects.len() <= limits.max_documents);
    let mut seen = std::collections::HashSet::new();
    for object in &objects {
        assert_allowed(object);
        assert!(!object.name().is_empty(), "{}", object.describe());
        assert!(seen.insert((object.kind(), object.name().to_owned())));
        assert!(
            object.to_json().get("status").is_none(),
            "{}",
            object.describe()
        );
    }

    // What the gateway applies is each object written as JSON; JSON is YAML, so the
    // objects written out parse back to themselves. Aliases are expanded in the output, so
    // the size budget is not the input's.
    let written: Vec<String> = objects
        .iter()
        .map(|o| serde_json::to_string(&o.to_json()).expect("an object is written as JSON"))
        .collect();
    let written = written.join("\n---\n");
    let relaxed = ManifestLimits {
        max_bytes: usize::MAX,
        max_nodes: usize::MAX,
        max_events: usize::MAX,
        max_scalar_bytes: usize::MAX,
        ..ManifestLimits::default()
    };
    let again = parse_blocking(written.as_bytes(), &relaxed)
        .unwrap_or_else(|e| panic!("written objects do not parse back: {e}\n{written}"));
    assert_eq!(again, objects, "{written}");

    let ctx = context();
    match check(objects, &ctx) {
        Err(e) => {
            assert_refusal(&e);
            assert!(!NEVER_FROM_CHECK.contains(&e.code()), "{}: {e}", e.code());
        }
        Ok(checked) => {
            assert!(checked.objects.iter().any(Object::is_workload));
            for object in &checked.objects {
                assert_allowed(object);
                assert_eq!(object.namespace(), Some(ctx.namespace.as_str()));
                if let Some(pod) = pod_spec(object) {
                    assert_eq!(pod.automount_service_account_token, Some(false));
                    assert_ne!(pod.host_network, Some(true));
                    assert_ne!(pod.host_pid, Some(true));
                    assert_ne!(pod.host_ipc, Some(true));
                    assert!(pod.node_name.is_none());
                    for container in pod
                        .containers
                        .iter()
                        .chain(pod.init_containers.iter().flatten())
                    {
                        let privileged = container
                            .security_context
                            .as_ref()
                            .and_then(|s| s.privileged);
                        assert_ne!(privileged, Some(true), "{}", object.describe());
                    }
                }
            }
            let entrance = &checked.entrance;
            assert_eq!(entrance.namespace, ctx.namespace);
            assert!(
                checked
                    .objects
                    .iter()
                    .any(|o| o.kind() == "Service" && o.name() == entrance.service),
                "entrance {} is none of the objects",
                entrance.service
            );
            let generated = checked.objects.last().filter(|_| checked.generated_service);
            if let Some(service) = generated {
                assert_eq!(service.kind(), "Service");
            }
        }
    }
});
