//! A user's manifest: parsed under tight budgets, then checked object by object against the
//! sandbox rules. The parsing and the checks are the crate `grid-manifest` (pure, fuzzed on
//! their own), re-exported here; this module adds what needs the runtime or the cluster's
//! types: [`parse`] on the blocking pool under a time bound, the [`SandboxContext`] of an
//! order of this gateway ([`sandbox_context`]), and the kube-rs view of an [`Object`]
//! ([`KubeObject`]).

use grid_policy_sdk::Resources;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::core::{ApiResource, DynamicObject};

pub use grid_manifest::{
    ALLOWED_KINDS, CheckedManifest, Entrance, ManifestError, ManifestLimits, Object, Refusal,
    SandboxContext, check, entrance, parse_blocking,
};

use crate::labels;
use crate::sandbox::SandboxConfig;

/// Parses a manifest on the blocking pool, bounded by `limits.parse_timeout_ms`; see
/// [`parse_blocking`] for what is refused. A parse that overruns is left to finish on the
/// pool (the budgets end it); the caller gets `manifest_parse_timeout`.
pub async fn parse(
    bytes: impl Into<bytes::Bytes>,
    limits: &ManifestLimits,
) -> Result<Vec<Object>, ManifestError> {
    let bytes = bytes.into();
    if bytes.len() > limits.max_bytes {
        return Err(ManifestError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let task_limits = limits.clone();
    let task = tokio::task::spawn_blocking(move || parse_blocking(&bytes, &task_limits));
    match tokio::time::timeout(limits.parse_timeout(), task).await {
        Err(_elapsed) => Err(ManifestError::ParseTimeout(limits.parse_timeout())),
        Ok(Err(join)) => Err(ManifestError::Internal(join.to_string())),
        Ok(Ok(result)) => result,
    }
}

/// The context of an order of the gateway `identity`, with the counts of `cfg`; `None`
/// when the order id does not name a namespace ([`labels::Identity::namespace_for`]).
pub fn sandbox_context(
    identity: &labels::Identity,
    order_id: &str,
    resources: Resources,
    cfg: &SandboxConfig,
) -> Option<SandboxContext> {
    Some(SandboxContext {
        order_id: order_id.to_owned(),
        namespace: identity.namespace_for(order_id)?,
        resources,
        max_pods: cfg.max_pods,
        max_pvcs: cfg.max_pvcs,
    })
}

/// An [`Object`] as kube-rs' dynamic API sees it.
pub trait KubeObject {
    /// The object as a [`DynamicObject`], for `Api::<DynamicObject>` with
    /// [`KubeObject::api_resource`].
    fn to_dynamic(&self) -> DynamicObject;
    /// The API resource of the object's kind (group, version, plural).
    fn api_resource(&self) -> ApiResource;
}

impl KubeObject for Object {
    fn to_dynamic(&self) -> DynamicObject {
        serde_json::from_value(self.to_json()).expect("a k8s-openapi object is a DynamicObject")
    }

    fn api_resource(&self) -> ApiResource {
        match self {
            Object::Deployment(_) => ApiResource::erase::<Deployment>(&()),
            Object::StatefulSet(_) => ApiResource::erase::<StatefulSet>(&()),
            Object::Service(_) => ApiResource::erase::<Service>(&()),
            Object::ConfigMap(_) => ApiResource::erase::<ConfigMap>(&()),
            Object::Secret(_) => ApiResource::erase::<Secret>(&()),
            Object::PersistentVolumeClaim(_) => ApiResource::erase::<PersistentVolumeClaim>(&()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn limits() -> ManifestLimits {
        ManifestLimits::default()
    }

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
    fn kube_view_of_an_object() {
        let objects = parse_blocking(DEPLOYMENT.as_bytes(), &limits()).unwrap();
        let dynamic = objects[0].to_dynamic();
        assert_eq!(dynamic.metadata.name.as_deref(), Some("web"));
        assert_eq!(objects[0].api_resource().plural, "deployments");
    }

    #[tokio::test]
    async fn async_parse_runs_and_times_out() {
        let objects = parse(DEPLOYMENT.as_bytes().to_vec(), &limits())
            .await
            .unwrap();
        assert_eq!(objects.len(), 1);

        let e = parse(alias_bomb(9, 9).into_bytes(), &limits())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "manifest_budget_exceeded");

        // A bound no parse meets (60 ConfigMaps of 700 keys, within every budget, take
        // milliseconds even optimised): the caller hears of the timeout.
        let big: String = (0..60)
            .map(|i| {
                let data: String = (0..700).map(|k| format!("  k{k}: v\n")).collect();
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata:\n{data}")
            })
            .collect::<Vec<_>>()
            .join("---\n");
        assert!(parse_blocking(big.as_bytes(), &limits()).is_ok());
        let tight = ManifestLimits {
            parse_timeout_ms: 1,
            ..limits()
        };
        let mut timed_out = false;
        for _ in 0..20 {
            if let Err(e) = parse(big.clone().into_bytes(), &tight).await {
                assert_eq!(e.code(), "manifest_parse_timeout");
                timed_out = true;
                break;
            }
        }
        assert!(timed_out, "a 1 ms bound never elapsed");
    }
}
