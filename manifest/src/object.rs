//! The objects a manifest may hold: six namespaced kinds, typed.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The kinds a manifest may hold, as `(apiVersion, kind)`: workloads, their Services,
/// their configuration and their storage; all namespaced, none that grants permissions,
/// admits traffic or reaches outside the namespace.
pub const ALLOWED_KINDS: [(&str, &str); 6] = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"),
];

/// One object of an allowed kind. What the gateway applies is this typed object
/// re-serialised, never the user's text: a field the checks did not see cannot reach the
/// cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// `apps/v1` Deployment.
    Deployment(Box<Deployment>),
    /// `apps/v1` StatefulSet.
    StatefulSet(Box<StatefulSet>),
    /// `v1` Service.
    Service(Box<Service>),
    /// `v1` ConfigMap.
    ConfigMap(Box<ConfigMap>),
    /// `v1` Secret.
    Secret(Box<Secret>),
    /// `v1` PersistentVolumeClaim.
    PersistentVolumeClaim(Box<PersistentVolumeClaim>),
}

impl Object {
    /// The kind (`Deployment`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Deployment(_) => "Deployment",
            Object::StatefulSet(_) => "StatefulSet",
            Object::Service(_) => "Service",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
        }
    }

    /// The apiVersion (`apps/v1` or `v1`).
    pub fn api_version(&self) -> &'static str {
        match self {
            Object::Deployment(_) | Object::StatefulSet(_) => "apps/v1",
            _ => "v1",
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Deployment(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::PersistentVolumeClaim(o) => &o.metadata,
        }
    }

    pub(crate) fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Deployment(o) => &mut o.metadata,
            Object::StatefulSet(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::ConfigMap(o) => &mut o.metadata,
            Object::Secret(o) => &mut o.metadata,
            Object::PersistentVolumeClaim(o) => &mut o.metadata,
        }
    }

    /// The name (`metadata.name`); parsing refuses objects without one.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The namespace (`metadata.namespace`); after [`super::check`], the order's.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// `Kind "name"`, as error messages name the object.
    pub fn describe(&self) -> String {
        format!("{} {:?}", self.kind(), self.name())
    }

    /// True for a Deployment or a StatefulSet.
    pub fn is_workload(&self) -> bool {
        matches!(self, Object::Deployment(_) | Object::StatefulSet(_))
    }

    /// The object as JSON, with apiVersion and kind: the body of a server-side apply.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Object::Deployment(o) => serde_json::to_value(o),
            Object::StatefulSet(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::PersistentVolumeClaim(o) => serde_json::to_value(o),
        };
        // k8s-openapi's types serialise to JSON maps with string keys: this cannot fail.
        value.expect("k8s-openapi objects serialise to JSON")
    }

    /// Typed from JSON whose apiVersion and kind were already checked against
    /// [`ALLOWED_KINDS`]; the error names the path of the field that does not fit.
    pub(crate) fn from_json(
        kind: &str,
        value: serde_json::Value,
    ) -> Result<Object, (String, String)> {
        fn typed<T: serde::de::DeserializeOwned>(
            value: serde_json::Value,
        ) -> Result<Box<T>, (String, String)> {
            serde_path_to_error::deserialize(value)
                .map(Box::new)
                .map_err(|e| (e.path().to_string(), e.inner().to_string()))
        }
        Ok(match kind {
            "Deployment" => Object::Deployment(typed(value)?),
            "StatefulSet" => Object::StatefulSet(typed(value)?),
            "Service" => Object::Service(typed(value)?),
            "ConfigMap" => Object::ConfigMap(typed(value)?),
            "Secret" => Object::Secret(typed(value)?),
            "PersistentVolumeClaim" => Object::PersistentVolumeClaim(typed(value)?),
            other => return Err(("kind".into(), format!("{other} is not an allowed kind"))),
        })
    }
}
