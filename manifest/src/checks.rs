//! The sandbox rules, object by object.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Container, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec,
    SeccompProfile, WindowsSecurityContextOptions,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::error::{ManifestError, Refusal};
use super::object::Object;
use super::{CheckedManifest, SandboxContext, entrance, resources};

/// Volume types a pod may use: the ones Pod Security `restricted` allows, less inline CSI
/// (its driver decides what it reaches). `hostPath` has its own code.
const ALLOWED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "secret",
    "emptyDir",
    "persistentVolumeClaim",
    "projected",
    "downwardAPI",
    "ephemeral",
];

/// Taints a pod may not tolerate: those that keep ordinary pods off control-plane nodes and
/// off nodes being drained.
const PROTECTED_TAINTS: &[&str] = &[
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
    "node.kubernetes.io/unschedulable",
];

/// Finalizers an object may carry: the ones the cluster's own controllers remove.
const ALLOWED_FINALIZERS: &[&str] = &["kubernetes.io/pvc-protection"];

/// Checks parsed objects against the sandbox of `ctx` and prepares them for apply:
///
/// - every object goes to the order's namespace (set when missing, refused when another);
/// - pod templates get `automountServiceAccountToken: false`;
/// - a container with a request and no limit gets the limit equal to the request, and
///   containers without cpu or memory share what the order has left (see
///   [the crate docs](crate) and the README);
/// - everything that leaves the sandbox is refused, naming object and field;
/// - requests and limits, summed over replicas, must fit the order;
/// - the entrance is the first Service's first TCP port, or a Service generated for the
///   first workload when the manifest has none.
pub fn check(
    mut objects: Vec<Object>,
    ctx: &SandboxContext,
) -> Result<CheckedManifest, ManifestError> {
    if objects.is_empty() {
        return Err(ManifestError::Empty);
    }
    let mut seen = HashSet::new();
    for object in &objects {
        if !seen.insert((object.kind(), object.name().to_owned())) {
            return Err(ManifestError::DuplicateObject {
                object: object.describe(),
            });
        }
    }
    for object in &mut objects {
        check_object(object, ctx)?;
    }
    if !objects.iter().any(Object::is_workload) {
        return Err(ManifestError::NoWorkload);
    }
    resources::account(&mut objects, ctx)?;
    let (entrance, generated_service) = entrance::pick_or_generate(&mut objects, ctx)?;
    Ok(CheckedManifest {
        objects,
        entrance,
        generated_service,
    })
}

/// Builds refusals about one object.
pub(super) struct At {
    object: String,
}

impl At {
    pub(super) fn new(object: &Object) -> Self {
        At {
            object: object.describe(),
        }
    }

    pub(super) fn refuse(&self, field: impl Into<String>, reason: impl Into<String>) -> Refusal {
        Refusal::new(self.object.clone(), field, reason)
    }
}

fn check_object(object: &mut Object, ctx: &SandboxContext) -> Result<(), ManifestError> {
    let at = At::new(object);
    check_metadata(&at, object.metadata_mut(), ctx)?;
    match object {
        Object::Deployment(d) => {
            let spec = d
                .spec
                .as_mut()
                .ok_or_else(|| ManifestError::InvalidObject(at.refuse("spec", "is missing")))?;
            check_template(&at, "spec.template", &mut spec.template, ctx)
        }
        Object::StatefulSet(s) => {
            let spec = s
                .spec
                .as_mut()
                .ok_or_else(|| ManifestError::InvalidObject(at.refuse("spec", "is missing")))?;
            check_template(&at, "spec.template", &mut spec.template, ctx)?;
            for (i, claim) in spec.volume_claim_templates.iter_mut().flatten().enumerate() {
                let path = format!("spec.volumeClaimTemplates[{i}]");
                if let Some(spec) = &claim.spec {
                    check_claim_spec(&at, &format!("{path}.spec"), spec, ctx)?;
                }
            }
            Ok(())
        }
        Object::Service(s) => {
            let Some(spec) = &s.spec else {
                return Ok(());
            };
            match spec.type_.as_deref() {
                None | Some("ClusterIP") => {}
                Some(other) => {
                    return Err(ManifestError::ServiceType(at.refuse(
                        "spec.type",
                        format!(
                            "is {other}: an order's Services are ClusterIP, the gateway is the only way in"
                        ),
                    )));
                }
            }
            if spec
                .external_ips
                .as_ref()
                .is_some_and(|ips| !ips.is_empty())
            {
                return Err(ManifestError::ExternalIps(at.refuse(
                    "spec.externalIPs",
                    "is set: a Service may not claim addresses outside the cluster",
                )));
            }
            if spec.external_name.as_ref().is_some_and(|n| !n.is_empty()) {
                return Err(ManifestError::ServiceType(at.refuse(
                    "spec.externalName",
                    "is set: a Service may not point the gateway at another host",
                )));
            }
            Ok(())
        }
        Object::Secret(s) => {
            if s.type_.as_deref() == Some("kubernetes.io/service-account-token") {
                return Err(ManifestError::ServiceAccount(at.refuse(
                    "type",
                    "is kubernetes.io/service-account-token: the sandbox hands out no service-account tokens",
                )));
            }
            Ok(())
        }
        Object::PersistentVolumeClaim(c) => match &c.spec {
            Some(spec) => check_claim_spec(&at, "spec", spec, ctx),
            None => Err(ManifestError::InvalidObject(
                at.refuse("spec", "is missing"),
            )),
        },
        Object::ConfigMap(_) => Ok(()),
    }
}

fn check_metadata(
    at: &At,
    meta: &mut ObjectMeta,
    ctx: &SandboxContext,
) -> Result<(), ManifestError> {
    if meta.name.as_deref().unwrap_or_default().is_empty() {
        return Err(ManifestError::InvalidObject(
            at.refuse("metadata.name", "is missing"),
        ));
    }
    match meta.namespace.as_deref() {
        None | Some("") => meta.namespace = Some(ctx.namespace.clone()),
        Some(ns) if ns == ctx.namespace => {}
        Some(ns) => {
            return Err(ManifestError::NamespaceMismatch(at.refuse(
                "metadata.namespace",
                format!(
                    "is {ns:?}: the order's objects go to {:?} (leave the field out to use it)",
                    ctx.namespace
                ),
            )));
        }
    }
    for (i, finalizer) in meta.finalizers.iter().flatten().enumerate() {
        if !ALLOWED_FINALIZERS.contains(&finalizer.as_str()) {
            return Err(ManifestError::Finalizers(at.refuse(
                format!("metadata.finalizers[{i}]"),
                format!(
                    "is {finalizer:?}: nothing in the sandbox would remove it, and it would hold the namespace at teardown"
                ),
            )));
        }
    }
    // What `kubectl get -o yaml` leaves behind belongs to another object's life: a server-side
    // apply refuses managedFields and would compare resourceVersion and uid.
    meta.uid = None;
    meta.resource_version = None;
    meta.managed_fields = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.generation = None;
    meta.self_link = None;
    Ok(())
}

fn check_template(
    at: &At,
    path: &str,
    template: &mut PodTemplateSpec,
    ctx: &SandboxContext,
) -> Result<(), ManifestError> {
    if let Some(meta) = &template.metadata {
        for (key, value) in meta.annotations.iter().flatten() {
            if key.starts_with("container.apparmor.security.beta.kubernetes.io/")
                && value.eq_ignore_ascii_case("unconfined")
            {
                return Err(ManifestError::SecurityContext(at.refuse(
                    format!("{path}.metadata.annotations[{key}]"),
                    "is unconfined: containers run under the runtime's AppArmor profile",
                )));
            }
        }
    }
    let spec = template.spec.as_mut().ok_or_else(|| {
        ManifestError::InvalidObject(at.refuse(format!("{path}.spec"), "is missing"))
    })?;
    check_pod_spec(at, &format!("{path}.spec"), spec, ctx)
}

fn check_pod_spec(
    at: &At,
    p: &str,
    spec: &mut PodSpec,
    ctx: &SandboxContext,
) -> Result<(), ManifestError> {
    for (field, value, shares) in [
        ("hostNetwork", spec.host_network, "network"),
        ("hostPID", spec.host_pid, "process table"),
        ("hostIPC", spec.host_ipc, "IPC namespace"),
    ] {
        if value == Some(true) {
            return Err(ManifestError::HostNamespace(at.refuse(
                format!("{p}.{field}"),
                format!("is true: the pod would share the node's {shares}"),
            )));
        }
    }
    if spec.node_name.as_ref().is_some_and(|n| !n.is_empty()) {
        return Err(ManifestError::NodeSelection(at.refuse(
            format!("{p}.nodeName"),
            "is set: pods are placed by the scheduler, which checks that the node has room",
        )));
    }
    for (i, toleration) in spec.tolerations.iter().flatten().enumerate() {
        let key = toleration.key.as_deref().unwrap_or_default();
        if key.is_empty() && toleration.operator.as_deref() == Some("Exists") {
            return Err(ManifestError::NodeSelection(at.refuse(
                format!("{p}.tolerations[{i}]"),
                "tolerates every taint: order pods stay off the nodes the cluster keeps apart",
            )));
        }
        if PROTECTED_TAINTS.contains(&key) {
            return Err(ManifestError::NodeSelection(at.refuse(
                format!("{p}.tolerations[{i}].key"),
                format!("is {key}: order pods stay off control-plane and draining nodes"),
            )));
        }
    }
    if spec
        .priority_class_name
        .as_ref()
        .is_some_and(|n| !n.is_empty())
    {
        return Err(ManifestError::PriorityClass(at.refuse(
            format!("{p}.priorityClassName"),
            "is set: an order's pods may not preempt other pods",
        )));
    }
    if spec.priority.is_some() {
        return Err(ManifestError::PriorityClass(at.refuse(
            format!("{p}.priority"),
            "is set: an order's pods may not preempt other pods",
        )));
    }
    if spec.automount_service_account_token == Some(true) {
        return Err(ManifestError::ServiceAccount(at.refuse(
            format!("{p}.automountServiceAccountToken"),
            "is true: the sandbox mounts no service-account tokens",
        )));
    }
    spec.automount_service_account_token = Some(false);
    for (field, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("serviceAccount", &spec.service_account),
    ] {
        if let Some(name) = value.as_deref()
            && !name.is_empty()
            && name != "default"
        {
            return Err(ManifestError::ServiceAccount(at.refuse(
                format!("{p}.{field}"),
                format!("is {name:?}: the order's namespace has only the default service account"),
            )));
        }
    }
    if let Some(sc) = &spec.security_context {
        let sp = format!("{p}.securityContext");
        check_confinement(at, &sp, &sc.seccomp_profile, &sc.app_armor_profile)?;
        check_host_process(at, &sp, &sc.windows_options)?;
    }
    if spec.resources.is_some() {
        return Err(ManifestError::ResourceNotOffered(at.refuse(
            format!("{p}.resources"),
            "is set: pod-level resources are not supported, set them on the containers",
        )));
    }
    if spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(ManifestError::ResourceNotOffered(at.refuse(
            format!("{p}.resourceClaims"),
            "is set: devices come with the order, not from resource claims",
        )));
    }
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return Err(ManifestError::InvalidObject(at.refuse(
            format!("{p}.ephemeralContainers"),
            "cannot be set in a pod template",
        )));
    }
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let vp = format!("{p}.volumes[{i}]");
        // The volume's JSON has its name and one key naming its type.
        let json = serde_json::to_value(volume).unwrap_or_default();
        for key in json.as_object().into_iter().flat_map(|o| o.keys()) {
            if key == "name" {
                continue;
            }
            if key == "hostPath" {
                return Err(ManifestError::HostPath(at.refuse(
                    format!("{vp}.hostPath"),
                    "is set: a pod may not mount the node's files",
                )));
            }
            if !ALLOWED_VOLUME_TYPES.contains(&key.as_str()) {
                return Err(ManifestError::VolumeType(at.refuse(
                    format!("{vp}.{key}"),
                    format!(
                        "is not an allowed volume type (allowed: {})",
                        ALLOWED_VOLUME_TYPES.join(", ")
                    ),
                )));
            }
        }
        if let Some(projected) = &volume.projected {
            for (j, source) in projected.sources.iter().flatten().enumerate() {
                if source.service_account_token.is_some() {
                    return Err(ManifestError::ServiceAccount(at.refuse(
                        format!("{vp}.projected.sources[{j}].serviceAccountToken"),
                        "is set: the sandbox mounts no service-account tokens",
                    )));
                }
            }
        }
        if let Some(claim) = volume
            .ephemeral
            .as_ref()
            .and_then(|e| e.volume_claim_template.as_ref())
        {
            check_claim_spec(
                at,
                &format!("{vp}.ephemeral.volumeClaimTemplate.spec"),
                &claim.spec,
                ctx,
            )?;
        }
    }
    if spec.containers.is_empty() {
        return Err(ManifestError::InvalidObject(
            at.refuse(format!("{p}.containers"), "is empty"),
        ));
    }
    for (i, container) in spec.containers.iter_mut().enumerate() {
        check_container(at, &format!("{p}.containers[{i}]"), container)?;
    }
    for (i, container) in spec.init_containers.iter_mut().flatten().enumerate() {
        check_container(at, &format!("{p}.initContainers[{i}]"), container)?;
    }
    restricted_defaults(spec);
    Ok(())
}

/// Fills what Pod Security `restricted` requires where the manifest says nothing: the
/// runtime's default seccomp profile, no privilege escalation, all capabilities dropped.
/// Only absent fields are filled, and each makes the pod more confined; without them the
/// namespace's admission would refuse the pods (`runAsNonRoot` is left to the user: it
/// depends on the image).
fn restricted_defaults(spec: &mut PodSpec) {
    let pod = spec.security_context.get_or_insert_default();
    let containers_all_set = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .all(|c| {
            c.security_context
                .as_ref()
                .is_some_and(|sc| sc.seccomp_profile.is_some())
        });
    if pod.seccomp_profile.is_none() && !containers_all_set {
        pod.seccomp_profile = Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        });
    }
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for container in containers {
        let sc = container.security_context.get_or_insert_default();
        sc.allow_privilege_escalation.get_or_insert(false);
        let capabilities = sc.capabilities.get_or_insert_default();
        if capabilities.drop.is_none() {
            capabilities.drop = Some(vec!["ALL".into()]);
        }
    }
}

fn check_container(at: &At, cp: &str, container: &mut Container) -> Result<(), ManifestError> {
    if let Some(sc) = &container.security_context {
        let sp = format!("{cp}.securityContext");
        if sc.privileged == Some(true) {
            return Err(ManifestError::Privileged(at.refuse(
                format!("{sp}.privileged"),
                "is true: a privileged container has the node's devices and capabilities",
            )));
        }
        if sc.allow_privilege_escalation == Some(true) {
            return Err(ManifestError::PrivilegeEscalation(at.refuse(
                format!("{sp}.allowPrivilegeEscalation"),
                "is true: processes may not gain privileges (setuid, file capabilities)",
            )));
        }
        let added = sc.capabilities.as_ref().and_then(|c| c.add.as_ref());
        for (j, capability) in added.into_iter().flatten().enumerate() {
            let name = capability.trim().to_ascii_uppercase();
            if name.trim_start_matches("CAP_") != "NET_BIND_SERVICE" {
                return Err(ManifestError::Capabilities(at.refuse(
                    format!("{sp}.capabilities.add[{j}]"),
                    format!("is {capability:?}: containers may add only NET_BIND_SERVICE"),
                )));
            }
        }
        if sc.proc_mount.as_deref() == Some("Unmasked") {
            return Err(ManifestError::SecurityContext(at.refuse(
                format!("{sp}.procMount"),
                "is Unmasked: /proc stays masked",
            )));
        }
        check_confinement(at, &sp, &sc.seccomp_profile, &sc.app_armor_profile)?;
        check_host_process(at, &sp, &sc.windows_options)?;
    }
    for (j, port) in container.ports.iter().flatten().enumerate() {
        if port.host_port.is_some_and(|p| p != 0) {
            return Err(ManifestError::HostPort(at.refuse(
                format!("{cp}.ports[{j}].hostPort"),
                "is set: a host port listens on the node's address, outside the sandbox",
            )));
        }
        if port.host_ip.as_ref().is_some_and(|ip| !ip.is_empty()) {
            return Err(ManifestError::HostPort(at.refuse(
                format!("{cp}.ports[{j}].hostIP"),
                "is set: a host port listens on the node's address, outside the sandbox",
            )));
        }
    }
    Ok(())
}

fn check_confinement(
    at: &At,
    sp: &str,
    seccomp: &Option<SeccompProfile>,
    app_armor: &Option<AppArmorProfile>,
) -> Result<(), ManifestError> {
    if seccomp.as_ref().is_some_and(|s| s.type_ == "Unconfined") {
        return Err(ManifestError::SecurityContext(at.refuse(
            format!("{sp}.seccompProfile.type"),
            "is Unconfined: containers keep a seccomp profile",
        )));
    }
    if app_armor.as_ref().is_some_and(|a| a.type_ == "Unconfined") {
        return Err(ManifestError::SecurityContext(at.refuse(
            format!("{sp}.appArmorProfile.type"),
            "is Unconfined: containers keep an AppArmor profile",
        )));
    }
    Ok(())
}

fn check_host_process(
    at: &At,
    sp: &str,
    windows: &Option<WindowsSecurityContextOptions>,
) -> Result<(), ManifestError> {
    if windows.as_ref().and_then(|w| w.host_process) == Some(true) {
        return Err(ManifestError::Privileged(at.refuse(
            format!("{sp}.windowsOptions.hostProcess"),
            "is true: a host-process container runs as the node",
        )));
    }
    Ok(())
}

fn check_claim_spec(
    at: &At,
    path: &str,
    spec: &PersistentVolumeClaimSpec,
    ctx: &SandboxContext,
) -> Result<(), ManifestError> {
    if spec.volume_name.as_ref().is_some_and(|n| !n.is_empty()) {
        return Err(ManifestError::VolumeBinding(at.refuse(
            format!("{path}.volumeName"),
            "is set: a claim gets a volume provisioned for it, not an existing one",
        )));
    }
    if spec.selector.is_some() {
        return Err(ManifestError::VolumeBinding(at.refuse(
            format!("{path}.selector"),
            "is set: a claim gets a volume provisioned for it, not an existing one",
        )));
    }
    if let Some(ns) = spec
        .data_source_ref
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        && !ns.is_empty()
        && ns != ctx.namespace
    {
        return Err(ManifestError::NamespaceMismatch(at.refuse(
            format!("{path}.dataSourceRef.namespace"),
            format!("is {ns:?}: a claim may copy only from the order's own namespace"),
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::{ManifestLimits, parse_blocking};
    use grid_policy_sdk::Resources;

    pub(crate) fn ctx() -> SandboxContext {
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

    pub(crate) fn parse(yaml: &str) -> Vec<Object> {
        parse_blocking(yaml.as_bytes(), &ManifestLimits::default()).expect("parses")
    }

    pub(crate) fn check_yaml(yaml: &str) -> Result<CheckedManifest, ManifestError> {
        check(parse(yaml), &ctx())
    }

    /// A Deployment whose pod spec is `pod` (indented 6 spaces, as under `spec:`).
    pub(crate) fn deployment(pod: &str) -> String {
        format!(
            "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
{pod}"
        )
    }

    const CONTAINER: &str = "      containers:
        - name: web
          image: nginx:1.27
          ports: [{containerPort: 8080}]
";

    fn refused(yaml: &str, code: &str, field: &str) -> ManifestError {
        let e = check_yaml(yaml).expect_err("should be refused");
        assert_eq!(e.code(), code, "{e}");
        let r = e.refusal().unwrap_or_else(|| panic!("{e} names no field"));
        assert_eq!(r.field, field, "{e}");
        assert!(e.to_string().contains(field), "{e}");
        e
    }

    fn with_container_field(extra: &str) -> String {
        deployment(&format!("{CONTAINER}{extra}"))
    }

    #[test]
    fn an_ordinary_deployment_passes_and_is_prepared() {
        let checked = check_yaml(&deployment(CONTAINER)).unwrap();
        let json = checked.objects[0].to_json();
        assert_eq!(json["metadata"]["namespace"], "grid-order-7");
        let pod = &json["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        // Pod Security `restricted`'s requirements, filled where absent.
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let sc = &pod["containers"][0]["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert!(sc.get("runAsNonRoot").is_none());

        // What the manifest states stays.
        let stated = with_container_field(
            "          securityContext: {capabilities: {drop: [NET_RAW]}, seccompProfile: {type: Localhost, localhostProfile: app.json}}\n",
        );
        let checked = check_yaml(&stated).unwrap();
        let pod = checked.objects[0].to_json()["spec"]["template"]["spec"].clone();
        assert!(pod["securityContext"].get("seccompProfile").is_none());
        let sc = &pod["containers"][0]["securityContext"];
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["NET_RAW"]));
        assert_eq!(sc["seccompProfile"]["type"], "Localhost");
    }

    #[test]
    fn the_example_message() {
        let yaml = with_container_field("          securityContext: {privileged: true}\n");
        let e = refused(
            &yaml,
            "manifest_privileged",
            "spec.template.spec.containers[0].securityContext.privileged",
        );
        assert!(
            e.to_string().starts_with(
                "Deployment \"web\": spec.template.spec.containers[0].securityContext.privileged is true"
            ),
            "{e}"
        );
    }

    #[test]
    fn namespace_is_set_or_refused() {
        let yaml = deployment(CONTAINER)
            .replace("  name: web\n", "  name: web\n  namespace: grid-order-7\n");
        check_yaml(&yaml).unwrap();
        let yaml = deployment(CONTAINER)
            .replace("  name: web\n", "  name: web\n  namespace: kube-system\n");
        let e = refused(&yaml, "manifest_namespace_mismatch", "metadata.namespace");
        assert!(e.to_string().contains("kube-system"));
    }

    #[test]
    fn pod_spec_refusals() {
        let p = "spec.template.spec";
        let cases: Vec<(String, &str, String)> = vec![
            ("      hostNetwork: true\n".into(), "manifest_host_namespace", format!("{p}.hostNetwork")),
            ("      hostPID: true\n".into(), "manifest_host_namespace", format!("{p}.hostPID")),
            ("      hostIPC: true\n".into(), "manifest_host_namespace", format!("{p}.hostIPC")),
            ("      nodeName: node-1\n".into(), "manifest_node_selection", format!("{p}.nodeName")),
            ("      tolerations: [{operator: Exists}]\n".into(), "manifest_node_selection", format!("{p}.tolerations[0]")),
            ("      tolerations: [{key: a, operator: Exists}, {key: node-role.kubernetes.io/control-plane, operator: Exists}]\n".into(), "manifest_node_selection", format!("{p}.tolerations[1].key")),
            ("      priorityClassName: system-node-critical\n".into(), "manifest_priority_class", format!("{p}.priorityClassName")),
            ("      priority: 1000000\n".into(), "manifest_priority_class", format!("{p}.priority")),
            ("      automountServiceAccountToken: true\n".into(), "manifest_service_account", format!("{p}.automountServiceAccountToken")),
            ("      serviceAccountName: admin\n".into(), "manifest_service_account", format!("{p}.serviceAccountName")),
            ("      volumes: [{name: root, hostPath: {path: /}}]\n".into(), "manifest_host_path", format!("{p}.volumes[0].hostPath")),
            ("      volumes: [{name: c, configMap: {name: c}}, {name: n, nfs: {server: 10.0.0.1, path: /}}]\n".into(), "manifest_volume_type", format!("{p}.volumes[1].nfs")),
            ("      volumes: [{name: t, projected: {sources: [{serviceAccountToken: {path: token}}]}}]\n".into(), "manifest_service_account", format!("{p}.volumes[0].projected.sources[0].serviceAccountToken")),
            ("      volumes: [{name: e, ephemeral: {volumeClaimTemplate: {spec: {volumeName: pv-1, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}}]\n".into(), "manifest_volume_binding", format!("{p}.volumes[0].ephemeral.volumeClaimTemplate.spec.volumeName")),
            ("      securityContext: {seccompProfile: {type: Unconfined}}\n".into(), "manifest_security_context", format!("{p}.securityContext.seccompProfile.type")),
            ("      securityContext: {windowsOptions: {hostProcess: true}}\n".into(), "manifest_privileged", format!("{p}.securityContext.windowsOptions.hostProcess")),
            ("      resourceClaims: [{name: gpu, resourceClaimName: gpu}]\n".into(), "manifest_resource_not_offered", format!("{p}.resourceClaims")),
        ];
        for (extra, code, field) in cases {
            refused(&deployment(&format!("{CONTAINER}{extra}")), code, &field);
        }
        // The default service account by name is fine; so is sharing the pod's own
        // process namespace.
        check_yaml(&deployment(&format!(
            "{CONTAINER}      serviceAccountName: default\n      shareProcessNamespace: true\n"
        )))
        .unwrap();
    }

    #[test]
    fn container_refusals() {
        let c = "spec.template.spec.containers[0]";
        let cases: Vec<(&str, &str, String)> = vec![
            (
                "          securityContext: {allowPrivilegeEscalation: true}\n",
                "manifest_privilege_escalation",
                format!("{c}.securityContext.allowPrivilegeEscalation"),
            ),
            (
                "          securityContext: {capabilities: {add: [NET_BIND_SERVICE, SYS_ADMIN]}}\n",
                "manifest_capabilities",
                format!("{c}.securityContext.capabilities.add[1]"),
            ),
            (
                "          securityContext: {capabilities: {add: [CAP_NET_RAW]}}\n",
                "manifest_capabilities",
                format!("{c}.securityContext.capabilities.add[0]"),
            ),
            (
                "          securityContext: {procMount: Unmasked}\n",
                "manifest_security_context",
                format!("{c}.securityContext.procMount"),
            ),
            (
                "          securityContext: {appArmorProfile: {type: Unconfined}}\n",
                "manifest_security_context",
                format!("{c}.securityContext.appArmorProfile.type"),
            ),
        ];
        for (extra, code, field) in cases {
            refused(&with_container_field(extra), code, &field);
        }
        let yaml = deployment(
            "      containers:\n        - name: web\n          image: nginx\n          ports: [{containerPort: 80, hostPort: 80}]\n",
        );
        refused(
            &yaml,
            "manifest_host_port",
            &format!("{c}.ports[0].hostPort"),
        );

        let init = deployment(&format!(
            "{CONTAINER}      initContainers:\n        - name: init\n          image: busybox\n          securityContext: {{privileged: true}}\n"
        ));
        refused(
            &init,
            "manifest_privileged",
            "spec.template.spec.initContainers[0].securityContext.privileged",
        );
        // Dropping everything and adding NET_BIND_SERVICE is Pod Security `restricted`'s recipe.
        check_yaml(&with_container_field(
            "          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}\n",
        ))
        .unwrap();
    }

    #[test]
    fn apparmor_annotation_is_refused() {
        let yaml = deployment(CONTAINER).replace(
            "      labels: {app: web}\n",
            "      labels: {app: web}\n      annotations: {container.apparmor.security.beta.kubernetes.io/web: unconfined}\n",
        );
        refused(
            &yaml,
            "manifest_security_context",
            "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/web]",
        );
    }

    #[test]
    fn service_refusals() {
        let service = |spec: &str| {
            format!(
                "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 8080}}]\n{spec}",
                deployment(CONTAINER)
            )
        };
        for kind in ["NodePort", "LoadBalancer", "ExternalName"] {
            let e = refused(
                &service(&format!("  type: {kind}\n")),
                "manifest_service_type",
                "spec.type",
            );
            assert!(
                e.to_string().starts_with("Service \"web\": spec.type is"),
                "{e}"
            );
        }
        refused(
            &service("  externalIPs: [203.0.113.7]\n"),
            "manifest_external_ips",
            "spec.externalIPs",
        );
        refused(
            &service("  externalName: metadata.google.internal\n"),
            "manifest_service_type",
            "spec.externalName",
        );
        check_yaml(&service("  type: ClusterIP\n")).unwrap();
    }

    #[test]
    fn secrets_and_claims() {
        let token = format!(
            "{}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: tok\n  annotations: {{kubernetes.io/service-account.name: default}}\ntype: kubernetes.io/service-account-token\n",
            deployment(CONTAINER)
        );
        refused(&token, "manifest_service_account", "type");

        let claim = |spec: &str| {
            format!(
                "{}---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n{spec}",
                deployment(CONTAINER)
            )
        };
        check_yaml(&claim("")).unwrap();
        refused(
            &claim("  volumeName: pv-of-someone-else\n"),
            "manifest_volume_binding",
            "spec.volumeName",
        );
        refused(
            &claim("  selector: {matchLabels: {team: other}}\n"),
            "manifest_volume_binding",
            "spec.selector",
        );
        refused(
            &claim(
                "  dataSourceRef: {kind: PersistentVolumeClaim, name: db, namespace: grid-order-6}\n",
            ),
            "manifest_namespace_mismatch",
            "spec.dataSourceRef.namespace",
        );

        let sts = "\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres, ports: [{containerPort: 5432}]}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec: {volumeName: pv-1, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
";
        refused(
            sts,
            "manifest_volume_binding",
            "spec.volumeClaimTemplates[0].spec.volumeName",
        );
    }

    #[test]
    fn finalizers_and_leftover_metadata() {
        let yaml = deployment(CONTAINER).replace(
            "  name: web\n",
            "  name: web\n  finalizers: [example.com/forever]\n",
        );
        refused(&yaml, "manifest_finalizers", "metadata.finalizers[0]");
        let yaml = deployment(CONTAINER).replace(
            "  name: web\n",
            "  name: web\n  uid: 0b7e1f5c-8b1a-4d59-9d3c-1f2e3d4c5b6a\n  resourceVersion: \"12345\"\n",
        );
        let checked = check_yaml(&yaml).unwrap();
        let meta = checked.objects[0].metadata();
        assert_eq!(
            (meta.uid.as_deref(), meta.resource_version.as_deref()),
            (None, None)
        );
    }

    #[test]
    fn a_manifest_without_workloads_is_refused() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        assert_eq!(check_yaml(yaml).unwrap_err().code(), "manifest_no_workload");
        assert_eq!(check(vec![], &ctx()).unwrap_err().code(), "manifest_empty");
    }
}
