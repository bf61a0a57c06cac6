//! Where the gateway routes an order's traffic: a Service of the manifest, or one generated
//! for its first workload.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodTemplateSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::SandboxContext;
use super::checks::At;
use super::error::ManifestError;
use super::object::Object;
use crate::labels;

/// The Service and port the gateway forwards an order's traffic to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entrance {
    /// The Service's name.
    pub service: String,
    /// The order's namespace.
    pub namespace: String,
    /// The Service port.
    pub port: u16,
}

impl Entrance {
    /// `http://<service>.<namespace>.svc:<port>`, as the host records it.
    pub fn url(&self) -> String {
        format!(
            "http://{}.{}.svc:{}",
            self.service, self.namespace, self.port
        )
    }
}

/// The entrance of checked objects: the first TCP port of the first Service that has a
/// cluster IP (not headless, `clusterIP: None`), in manifest order. `None` when no Service
/// has one.
pub fn entrance(objects: &[Object], namespace: &str) -> Option<Entrance> {
    objects.iter().find_map(|object| {
        let Object::Service(service) = object else {
            return None;
        };
        let spec = service.spec.as_ref()?;
        if spec.cluster_ip.as_deref() == Some("None") {
            return None;
        }
        let port = spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))?;
        Some(Entrance {
            service: object.name().to_owned(),
            namespace: namespace.to_owned(),
            port: u16::try_from(port.port).ok().filter(|p| *p != 0)?,
        })
    })
}

/// The entrance of the objects, generating a Service (appended to `objects`) when the
/// manifest has none; the flag says whether one was generated.
pub(super) fn pick_or_generate(
    objects: &mut Vec<Object>,
    ctx: &SandboxContext,
) -> Result<(Entrance, bool), ManifestError> {
    if let Some(entrance) = entrance(objects, &ctx.namespace) {
        return Ok((entrance, false));
    }
    if let Some(first) = objects.iter().find(|o| matches!(o, Object::Service(_))) {
        return Err(ManifestError::NoPort(At::new(first).refuse(
            "spec.ports",
            "has no TCP port on a cluster IP, and it is the manifest's first Service: \
             the gateway would have nothing to route to",
        )));
    }
    let workload = objects
        .iter()
        .find(|o| o.is_workload())
        .ok_or(ManifestError::NoWorkload)?;
    let service = generate(workload, ctx)?;
    let entrance = Entrance {
        service: service.metadata.name.clone().unwrap_or_default(),
        namespace: ctx.namespace.clone(),
        port: service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|p| p.first())
            .and_then(|p| u16::try_from(p.port).ok())
            .expect("generated with one port"),
    };
    objects.push(Object::Service(Box::new(service)));
    Ok((entrance, true))
}

/// A ClusterIP Service named after the workload, selecting its pods, on the first TCP port
/// of its first container.
fn generate(workload: &Object, ctx: &SandboxContext) -> Result<Service, ManifestError> {
    let at = At::new(workload);
    let (selector, template): (&LabelSelector, &PodTemplateSpec) = match workload {
        Object::Deployment(d) => {
            let spec = d.spec.as_ref().expect("checked: a Deployment has a spec");
            (&spec.selector, &spec.template)
        }
        Object::StatefulSet(s) => {
            let spec = s.spec.as_ref().expect("checked: a StatefulSet has a spec");
            (&spec.selector, &spec.template)
        }
        _ => unreachable!("only workloads are passed"),
    };
    let name = workload.name();
    if !is_dns_label(name) {
        return Err(ManifestError::NoPort(at.refuse(
            "metadata.name",
            "is not a valid Service name (a DNS label: lower-case letters, digits and '-', \
             starting with a letter, at most 63 characters), so no Service can be generated \
             for it: add a Service",
        )));
    }
    // The selector's labels (they select this workload's pods and nothing else it owns);
    // the template's when the selector has only expressions.
    let match_labels = selector.match_labels.clone().filter(|l| !l.is_empty());
    let template_labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .filter(|l| !l.is_empty());
    let Some(pod_labels) = match_labels.or(template_labels) else {
        return Err(ManifestError::NoPort(at.refuse(
            "spec.template.metadata.labels",
            "is empty: no Service can be generated to select the pods; add a Service",
        )));
    };
    let containers: &[Container] = template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let p = "spec.template.spec.containers[0].ports";
    let port = containers
        .first()
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| {
            ports
                .iter()
                .find(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
        })
        .ok_or_else(|| {
            ManifestError::NoPort(at.refuse(
                p,
                "has no TCP port: the manifest has no Service, and one is generated from the \
                 first container's first TCP port; add a containerPort or a Service",
            ))
        })?;
    let number = u16::try_from(port.container_port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            ManifestError::InvalidObject(
                at.refuse(format!("{p}.containerPort"), "is not a port number"),
            )
        })?;
    Ok(Service {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(BTreeMap::from([
                (
                    labels::MANAGED_BY_KEY.to_owned(),
                    labels::MANAGED_BY.to_owned(),
                ),
                (labels::ORDER_ID_KEY.to_owned(), ctx.order_id.clone()),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(pod_labels),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: i32::from(number),
                target_port: Some(IntOrString::Int(i32::from(number))),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

/// An RFC 1035 label, as Service names must be.
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tests::{check_yaml, deployment};

    #[test]
    fn a_service_is_generated_when_there_is_none() {
        let yaml = deployment(
            "      containers:\n        - name: web\n          image: nginx\n          ports: [{containerPort: 9000, protocol: UDP}, {containerPort: 8080}]\n        - name: side\n          image: envoy\n          ports: [{containerPort: 15000}]\n",
        );
        let checked = check_yaml(&yaml).unwrap();
        assert!(checked.generated_service);
        assert_eq!(checked.objects.len(), 2);
        let Object::Service(service) = &checked.objects[1] else {
            panic!("the generated Service comes last");
        };
        let spec = service.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector.as_ref().unwrap()["app"], "web");
        let port = &spec.ports.as_ref().unwrap()[0];
        assert_eq!((port.port, port.protocol.as_deref()), (8080, Some("TCP")));
        assert_eq!(port.target_port, Some(IntOrString::Int(8080)));
        assert_eq!(
            service.metadata.labels.as_ref().unwrap()[labels::ORDER_ID_KEY],
            "7"
        );
        assert_eq!(checked.objects[1].namespace(), Some("grid-order-7"));
        assert_eq!(
            checked.entrance,
            Entrance {
                service: "web".into(),
                namespace: "grid-order-7".into(),
                port: 8080
            }
        );
        assert_eq!(checked.entrance.url(), "http://web.grid-order-7.svc:8080");
    }

    #[test]
    fn no_port_no_service() {
        let yaml = deployment("      containers: [{name: web, image: nginx}]\n");
        let e = check_yaml(&yaml).unwrap_err();
        assert_eq!(e.code(), "manifest_no_port");
        assert_eq!(
            e.refusal().unwrap().field,
            "spec.template.spec.containers[0].ports"
        );
        assert!(e.to_string().starts_with("Deployment \"web\": "), "{e}");
    }

    #[test]
    fn the_first_routable_service_is_the_entrance() {
        let yaml = format!(
            "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web-headless}}\nspec: {{clusterIP: None, selector: {{app: web}}, ports: [{{port: 8080}}]}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: front}}\nspec: {{selector: {{app: web}}, ports: [{{port: 53, protocol: UDP}}, {{name: http, port: 80, targetPort: 8080}}]}}\n",
            deployment("      containers: [{name: web, image: nginx}]\n")
        );
        let checked = check_yaml(&yaml).unwrap();
        assert!(!checked.generated_service);
        assert_eq!(checked.objects.len(), 3);
        assert_eq!(checked.entrance.url(), "http://front.grid-order-7.svc:80");
    }

    #[test]
    fn only_headless_services_is_no_port() {
        let yaml = format!(
            "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{clusterIP: None, selector: {{app: web}}, ports: [{{port: 8080}}]}}\n",
            deployment(
                "      containers: [{name: web, image: nginx, ports: [{containerPort: 8080}]}]\n"
            )
        );
        let e = check_yaml(&yaml).unwrap_err();
        assert_eq!(e.code(), "manifest_no_port");
        assert!(
            e.to_string().starts_with("Service \"web\": spec.ports"),
            "{e}"
        );
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("web-1"));
        for bad in ["", "Web", "1web", "web.front", "web-", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }
}
