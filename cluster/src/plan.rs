//! From a fetched manifest to what the gateway applies: parse, check against the order,
//! the sandbox around it, each object ready for server-side apply, the workloads to wait
//! for and the entrance. Everything here happens before the cluster is touched, so a
//! refusal costs the cluster nothing.

use bytes::Bytes;
use grid_policy_sdk::Resources;

use crate::client::{ApplyObject, WorkloadRef};
use crate::config::ClusterConfig;
use crate::error::ClusterError;
use crate::manifest::{self, ManifestError, Object};
use crate::sandbox::{self, SandboxError};

pub use crate::config::EntranceMode;

/// Whose deploy this is.
#[derive(Clone, Copy, Debug)]
pub struct PlanInput<'a> {
    /// The gateway's identity (names the namespace, labels every object).
    pub identity: &'a crate::labels::Identity,
    /// The order id (decimal).
    pub order_id: &'a str,
    /// The order's user, `0x` and 40 lower-case hex digits.
    pub user: &'a str,
    /// What the order bought.
    pub resources: &'a Resources,
}

/// Everything a deploy applies, in order.
#[derive(Clone, Debug)]
pub struct DeployPlan {
    /// The order's namespace.
    pub namespace: String,
    /// Namespace, quota, limit range, network policies: applied first, for real.
    pub sandbox: Vec<ApplyObject>,
    /// The user's objects (and a generated Service): dry-run, then applied.
    pub app: Vec<ApplyObject>,
    /// The Deployments and StatefulSets to wait for.
    pub workloads: Vec<WorkloadRef>,
    /// The Service traffic goes to.
    pub service: String,
    /// Its port.
    pub port: u16,
    /// Label selector of the first workload's pods (for logs), e.g. `app=web`.
    pub pod_selector: String,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The manifest is refused (the user's fault, except `manifest_internal`).
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The sandbox could not be built: the node's `[cluster.sandbox]` config or an order
    /// id that names no namespace.
    #[error("sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    /// An object could not be encoded for the API server.
    #[error(transparent)]
    Encode(#[from] ClusterError),
}

/// Parses and checks `bytes` for the order in `input`, and builds the whole plan.
pub async fn prepare(
    bytes: Bytes,
    input: &PlanInput<'_>,
    config: &ClusterConfig,
) -> Result<DeployPlan, PlanError> {
    let context = manifest::sandbox_context(
        input.identity,
        input.order_id,
        input.resources.clone(),
        &config.sandbox,
    )
    .ok_or_else(|| SandboxError::InvalidOrderId(input.order_id.to_owned()))?;
    let objects = manifest::parse(bytes, &config.manifest).await?;
    let checked = manifest::check(objects, &context)?;
    let sandbox = sandbox::sandbox_objects(
        input.identity,
        input.order_id,
        input.user,
        input.resources,
        &config.sandbox,
    )?;

    let mut sandbox_objects = vec![
        ApplyObject::new(&sandbox.namespace)?,
        ApplyObject::new(&sandbox.quota)?,
        ApplyObject::new(&sandbox.limit_range)?,
    ];
    for policy in &sandbox.network_policies {
        sandbox_objects.push(ApplyObject::new(policy)?);
    }
    let mut app = Vec::with_capacity(checked.objects.len());
    let mut workloads = Vec::new();
    let mut pod_selector = None;
    // Labelled so a later deploy can tell the app's objects from what Kubernetes puts in
    // the namespace, and prune what the new manifest dropped.
    let mut labels = input.identity.labels().to_vec();
    labels.push((crate::labels::ORDER_ID_KEY, input.order_id));
    for object in &checked.objects {
        app.push(apply_object(object)?.with_labels(&labels));
        if let Some((workload, selector)) = workload_of(object) {
            pod_selector.get_or_insert(selector);
            workloads.push(workload);
        }
    }
    // What a gateway that lost its record of the app needs to adopt it again.
    let port = checked.entrance.port.to_string();
    let pod_selector = pod_selector.unwrap_or_default();
    if let Some(namespace) = sandbox_objects.first_mut() {
        *namespace = namespace.clone().with_annotations(&[
            (
                crate::labels::ENTRANCE_SERVICE_ANNOTATION,
                checked.entrance.service.as_str(),
            ),
            (crate::labels::ENTRANCE_PORT_ANNOTATION, port.as_str()),
            (
                crate::labels::POD_SELECTOR_ANNOTATION,
                pod_selector.as_str(),
            ),
        ]);
    }
    Ok(DeployPlan {
        namespace: context.namespace,
        sandbox: sandbox_objects,
        app,
        workloads,
        service: checked.entrance.service,
        port: checked.entrance.port,
        pod_selector,
    })
}

fn apply_object(object: &Object) -> Result<ApplyObject, ClusterError> {
    match object {
        Object::Deployment(o) => ApplyObject::new(o.as_ref()),
        Object::StatefulSet(o) => ApplyObject::new(o.as_ref()),
        Object::Service(o) => ApplyObject::new(o.as_ref()),
        Object::ConfigMap(o) => ApplyObject::new(o.as_ref()),
        Object::Secret(o) => ApplyObject::new(o.as_ref()),
        Object::PersistentVolumeClaim(o) => ApplyObject::new(o.as_ref()),
    }
}

/// The workload an object is, with its pods' label selector.
fn workload_of(object: &Object) -> Option<(WorkloadRef, String)> {
    let (selector, kind) = match object {
        Object::Deployment(d) => (d.spec.as_ref().map(|s| &s.selector), "Deployment"),
        Object::StatefulSet(s) => (s.spec.as_ref().map(|s| &s.selector), "StatefulSet"),
        _ => return None,
    };
    let labels = selector
        .and_then(|s| s.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    Some((
        WorkloadRef {
            kind: kind.to_owned(),
            name: object.name().to_owned(),
        },
        labels,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web, tier: front}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec:
      containers:
        - name: web
          image: nginx
          ports: [{containerPort: 8080}]
          resources: {requests: {cpu: 250m, memory: 64Mi}}
"#;

    fn resources() -> Resources {
        Resources {
            cpu_millis: 2_000,
            memory_bytes: 4 << 30,
            storage_bytes: 10 << 30,
            gpus: 0,
            gpu_model: None,
        }
    }

    #[tokio::test]
    async fn a_plan_has_the_sandbox_first_the_app_and_a_generated_service() {
        let identity = crate::labels::Identity::new(31337, [1; 20], [2; 20]);
        let input = PlanInput {
            identity: &identity,
            order_id: "7",
            user: "0x00000000000000000000000000000000000000aa",
            resources: &resources(),
        };
        let plan = prepare(
            Bytes::from_static(WEB.as_bytes()),
            &input,
            &ClusterConfig::default(),
        )
        .await
        .expect("plan");
        assert_eq!(
            plan.namespace,
            format!("grid-{}-order-7", identity.short_hash())
        );
        let kinds: Vec<&str> = plan.sandbox.iter().map(ApplyObject::kind).collect();
        assert_eq!(&kinds[..3], ["Namespace", "ResourceQuota", "LimitRange"]);
        assert!(kinds[3..].iter().all(|k| *k == "NetworkPolicy"));
        let app: Vec<String> = plan.app.iter().map(ApplyObject::describe).collect();
        assert_eq!(app, ["Deployment/web", "Service/web"]);
        assert_eq!(
            plan.workloads,
            vec![WorkloadRef {
                kind: "Deployment".into(),
                name: "web".into()
            }]
        );
        assert_eq!((plan.service.as_str(), plan.port), ("web", 8080));
        assert_eq!(plan.pod_selector, "app=web,tier=front");
        let annotations = &plan.sandbox[0].body()["metadata"]["annotations"];
        assert_eq!(annotations["grid.dev/entrance-service"], "web");
        assert_eq!(annotations["grid.dev/entrance-port"], "8080");
        assert_eq!(annotations["grid.dev/pod-selector"], "app=web,tier=front");
        let deployment = &plan.app[0];
        assert_eq!(
            deployment.body()["metadata"]["labels"]["grid.dev/order-id"],
            "7"
        );
        assert_eq!(
            deployment.body()["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "grid-gateway"
        );
        assert_eq!(
            deployment.body()["metadata"]["labels"]["grid.dev/node"],
            "02".repeat(20)
        );
    }

    #[tokio::test]
    async fn a_refused_manifest_makes_no_plan() {
        let identity = crate::labels::Identity::new(31337, [1; 20], [2; 20]);
        let input = PlanInput {
            identity: &identity,
            order_id: "7",
            user: "0x00000000000000000000000000000000000000aa",
            resources: &resources(),
        };
        let privileged = WEB.replace(
            "ports: [{containerPort: 8080}]",
            "ports: [{containerPort: 8080}]\n          securityContext: {privileged: true}",
        );
        let err = prepare(Bytes::from(privileged), &input, &ClusterConfig::default())
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, PlanError::Manifest(e) if e.code() == "manifest_privileged"),
            "{err}"
        );
    }
}
