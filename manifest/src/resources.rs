//! Requests and limits summed over replicas against the order, the way the ResourceQuota
//! will count them.
//!
//! Per container, Kubernetes' own defaulting first: a limit without a request makes the
//! request equal to it. Then the gateway's:
//!
//! - a request without a limit gets the limit equal to the request (written into the
//!   object). The quota caps the sum of limits at the order, so a larger limit could only
//!   come out of another container's share; and the LimitRange's default limit would
//!   otherwise apply, which Kubernetes refuses when it is below the request.
//! - a container with neither (for cpu, or for memory) gets an equal share of what the
//!   order has left after the containers that state theirs, request and limit alike: one
//!   such container gets the whole order, two get half each. A plain init container with
//!   neither gets its pod's containers' total, which never raises the pod's total.
//!
//! A pod counts as Kubernetes counts it: the larger of its containers plus sidecars, and
//! its largest init container (plus the sidecars started before it). cpu, memory and
//! `nvidia.com/gpu` requests, cpu and memory limits, storage of claims (PVCs, StatefulSet
//! claim templates and ephemeral volumes, per replica), pods and claims are each checked
//! against the order.

use std::collections::BTreeMap;

use grid_policy_sdk::quantity::{format_bytes, format_cpu_millis, parse_bytes, parse_cpu_millis};
use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaimSpec, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::SandboxContext;
use super::checks::At;
use super::error::ManifestError;
use super::object::Object;

const GPU: &str = "nvidia.com/gpu";
/// Resource names a container may state.
const OFFERED: [&str; 4] = ["cpu", "memory", "ephemeral-storage", GPU];
/// Least cpu (millicores) a container without a cpu request may be given.
const MIN_CPU_SHARE: u64 = 10;
/// Least memory (bytes) a container without a memory request may be given.
const MIN_MEMORY_SHARE: u64 = 16 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Regular,
    Sidecar,
    Init,
}

/// One resource of one container, after defaulting; `None` for a container that states
/// neither request nor limit.
#[derive(Clone, Copy, Default)]
struct Amount {
    stated: Option<(u64, u64)>,
}

struct ContainerAmounts {
    role: Role,
    cpu: Amount,
    memory: Amount,
    /// GPUs requested (equal to the limit).
    gpus: u64,
}

/// A workload's pods, as found in the first pass.
struct Workload {
    describe: String,
    replicas: u64,
    containers: Vec<ContainerAmounts>,
}

/// Totals per resource, with where they come from.
#[derive(Default)]
struct Tally {
    total: u128,
    parts: Vec<String>,
}

impl Tally {
    fn add(&mut self, describe: &str, count: u64, each: u64, format: fn(u64) -> String) {
        self.total += u128::from(count) * u128::from(each);
        if count > 0 && each > 0 {
            self.parts
                .push(format!("{describe}: {count} × {}", format(each)));
        }
    }

    fn check(
        &self,
        resource: &str,
        available: u64,
        format: fn(u64) -> String,
    ) -> Result<(), ManifestError> {
        if self.total <= u128::from(available) {
            return Ok(());
        }
        Err(ManifestError::ResourcesExceeded {
            resource: resource.to_owned(),
            requested: format_wide(self.total, format),
            available: format(available),
            breakdown: self.parts.join(", "),
        })
    }
}

fn format_wide(value: u128, format: fn(u64) -> String) -> String {
    u64::try_from(value).map_or_else(|_| value.to_string(), format)
}

fn count(value: u64) -> String {
    value.to_string()
}

/// Fills the containers' missing amounts and checks the totals against the order; see the
/// module documentation.
pub(super) fn account(objects: &mut [Object], ctx: &SandboxContext) -> Result<(), ManifestError> {
    let order = &ctx.resources;

    // First pass: what each container states, limits written where only a request is.
    let mut workloads = Vec::new();
    for object in objects.iter_mut() {
        let at = At::new(object);
        let describe = object.describe();
        if let Some((replicas, spec)) = pod_spec_mut(object, &at)? {
            let mut containers = Vec::new();
            for (role, cp, container) in containers_mut(spec) {
                containers.push(read_container(&at, &cp, container, role)?);
            }
            workloads.push(Workload {
                describe,
                replicas,
                containers,
            });
        }
    }

    // The shares of containers that state nothing.
    let cpu_share = share(
        &workloads,
        |c| c.cpu,
        order.cpu_millis,
        MIN_CPU_SHARE,
        "cpu",
        format_cpu_millis,
    )?;
    let memory_share = share(
        &workloads,
        |c| c.memory,
        order.memory_bytes,
        MIN_MEMORY_SHARE,
        "memory",
        format_bytes,
    )? & !((1 << 20) - 1);

    // Second pass: write the shares, total the pods.
    let mut cpu_requests = Tally::default();
    let mut cpu_limits = Tally::default();
    let mut memory_requests = Tally::default();
    let mut memory_limits = Tally::default();
    let mut gpus = Tally::default();
    let mut storage = Tally::default();
    let mut pods = Tally::default();
    let mut claims = Tally::default();
    let mut workloads = workloads.into_iter();
    for object in objects.iter_mut() {
        let at = At::new(object);
        let describe = object.describe();
        match object {
            Object::PersistentVolumeClaim(claim) => {
                let bytes = claim_storage(&at, "spec", claim.spec.as_ref())?;
                storage.add(&describe, 1, bytes, format_bytes);
                claims.add(&describe, 1, 1, count);
                continue;
            }
            Object::StatefulSet(set) => {
                let spec = set
                    .spec
                    .as_ref()
                    .expect("checked: a StatefulSet has a spec");
                let replicas = replicas_of(&at, spec.replicas)?;
                for (i, template) in spec.volume_claim_templates.iter().flatten().enumerate() {
                    let path = format!("spec.volumeClaimTemplates[{i}].spec");
                    let bytes = claim_storage(&at, &path, template.spec.as_ref())?;
                    storage.add(&describe, replicas, bytes, format_bytes);
                    claims.add(&describe, replicas, 1, count);
                }
            }
            _ => {}
        }
        let Some((replicas, spec)) = pod_spec_mut(object, &at)? else {
            continue;
        };
        let workload = workloads.next().expect("one workload per pod spec");
        let fill = Fill {
            cpu: cpu_share,
            memory: memory_share,
        };
        let pod = fill_and_total(spec, &workload, &fill);
        cpu_requests.add(&describe, replicas, pod.cpu.0, format_cpu_millis);
        cpu_limits.add(&describe, replicas, pod.cpu.1, format_cpu_millis);
        memory_requests.add(&describe, replicas, pod.memory.0, format_bytes);
        memory_limits.add(&describe, replicas, pod.memory.1, format_bytes);
        gpus.add(&describe, replicas, pod.gpus, count);
        pods.add(&describe, replicas, 1, count);
        for (i, volume) in spec.volumes.iter().flatten().enumerate() {
            if let Some(template) = volume
                .ephemeral
                .as_ref()
                .and_then(|e| e.volume_claim_template.as_ref())
            {
                let path =
                    format!("spec.template.spec.volumes[{i}].ephemeral.volumeClaimTemplate.spec");
                let bytes = claim_storage(&at, &path, Some(&template.spec))?;
                storage.add(&describe, replicas, bytes, format_bytes);
                claims.add(&describe, replicas, 1, count);
            }
        }
    }

    cpu_requests.check("cpu", order.cpu_millis, format_cpu_millis)?;
    cpu_limits.check("limits.cpu", order.cpu_millis, format_cpu_millis)?;
    memory_requests.check("memory", order.memory_bytes, format_bytes)?;
    memory_limits.check("limits.memory", order.memory_bytes, format_bytes)?;
    gpus.check(GPU, u64::from(order.gpus), count)?;
    storage.check("storage", order.storage_bytes, format_bytes)?;
    pods.check("pods", u64::from(ctx.max_pods), count)?;
    claims.check("persistentvolumeclaims", u64::from(ctx.max_pvcs), count)?;
    Ok(())
}

/// The replicas and pod spec of a workload; `None` for other kinds.
fn pod_spec_mut<'a>(
    object: &'a mut Object,
    at: &At,
) -> Result<Option<(u64, &'a mut PodSpec)>, ManifestError> {
    let (replicas, template) = match object {
        Object::Deployment(d) => {
            let spec = d.spec.as_mut().expect("checked: a Deployment has a spec");
            (spec.replicas, &mut spec.template)
        }
        Object::StatefulSet(s) => {
            let spec = s.spec.as_mut().expect("checked: a StatefulSet has a spec");
            (spec.replicas, &mut spec.template)
        }
        _ => return Ok(None),
    };
    let replicas = replicas_of(at, replicas)?;
    let spec = template
        .spec
        .as_mut()
        .expect("checked: a pod template has a spec");
    Ok(Some((replicas, spec)))
}

fn replicas_of(at: &At, replicas: Option<i32>) -> Result<u64, ManifestError> {
    u64::try_from(replicas.unwrap_or(1))
        .map_err(|_| ManifestError::InvalidObject(at.refuse("spec.replicas", "is negative")))
}

/// Every container of a pod spec with its role and path, init containers first (as they
/// start).
fn containers_mut(spec: &mut PodSpec) -> Vec<(Role, String, &mut Container)> {
    let p = "spec.template.spec";
    let mut out = Vec::new();
    for (i, c) in spec.init_containers.iter_mut().flatten().enumerate() {
        let role = if c.restart_policy.as_deref() == Some("Always") {
            Role::Sidecar
        } else {
            Role::Init
        };
        out.push((role, format!("{p}.initContainers[{i}]"), c));
    }
    for (i, c) in spec.containers.iter_mut().enumerate() {
        out.push((Role::Regular, format!("{p}.containers[{i}]"), c));
    }
    out
}

/// `.cpu`, or `[nvidia.com/gpu]` for a key that is not a plain field name.
fn key_path(key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        format!(".{key}")
    } else {
        format!("[{key}]")
    }
}

fn read_container(
    at: &At,
    cp: &str,
    container: &mut Container,
    role: Role,
) -> Result<ContainerAmounts, ManifestError> {
    let Some(resources) = container.resources.as_mut() else {
        return Ok(ContainerAmounts {
            role,
            cpu: Amount::default(),
            memory: Amount::default(),
            gpus: 0,
        });
    };
    if resources.claims.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(ManifestError::ResourceNotOffered(at.refuse(
            format!("{cp}.resources.claims"),
            "is set: devices come with the order, not from resource claims",
        )));
    }
    for (which, map) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        for key in map.iter().flat_map(BTreeMap::keys) {
            if !OFFERED.contains(&key.as_str()) {
                return Err(ManifestError::ResourceNotOffered(at.refuse(
                    format!("{cp}.resources.{which}{}", key_path(key)),
                    format!(
                        "is not something the order has (containers may state {})",
                        OFFERED.join(", ")
                    ),
                )));
            }
        }
    }
    let read = |which: &str,
                map: &Option<BTreeMap<String, Quantity>>,
                key: &str,
                parse: fn(&str) -> Result<u64, grid_policy_sdk::quantity::QuantityError>|
     -> Result<Option<u64>, ManifestError> {
        let Some(quantity) = map.as_ref().and_then(|m| m.get(key)) else {
            return Ok(None);
        };
        parse(&quantity.0).map(Some).map_err(|e| {
            ManifestError::InvalidObject(at.refuse(
                format!("{cp}.resources.{which}{}", key_path(key)),
                format!("is invalid: {e}"),
            ))
        })
    };
    let mut amounts = [Amount::default(); 3];
    for (slot, (key, parse)) in amounts.iter_mut().zip([
        ("cpu", parse_cpu_millis as fn(&str) -> _),
        ("memory", parse_bytes),
        (GPU, parse_cpu_millis),
    ]) {
        let request = read("requests", &resources.requests, key, parse)?;
        let limit = read("limits", &resources.limits, key, parse)?;
        let request_path = format!("{cp}.resources.requests{}", key_path(key));
        if key == GPU
            && let Some(millis) = request.or(limit)
            && millis % 1000 != 0
        {
            return Err(ManifestError::InvalidObject(
                at.refuse(request_path, "is not a whole number of GPUs"),
            ));
        }
        slot.stated = match (request, limit) {
            (None, None) => None,
            (None, Some(limit)) => Some((limit, limit)),
            (Some(request), None) => {
                let quantity = resources.requests.as_ref().expect("read from it")[key].clone();
                resources
                    .limits
                    .get_or_insert_default()
                    .insert(key.to_owned(), quantity);
                Some((request, request))
            }
            (Some(request), Some(limit)) if key == GPU && request != limit => {
                return Err(ManifestError::InvalidObject(at.refuse(
                    request_path,
                    "differs from the limit: GPUs are requested whole, request equal to limit",
                )));
            }
            (Some(request), Some(limit)) if request > limit => {
                return Err(ManifestError::InvalidObject(
                    at.refuse(request_path, "is above the limit"),
                ));
            }
            (Some(request), Some(limit)) => Some((request, limit)),
        };
        if key == GPU {
            slot.stated = slot.stated.map(|(r, l)| (r / 1000, l / 1000));
        }
    }
    read(
        "requests",
        &resources.requests,
        "ephemeral-storage",
        parse_bytes,
    )?;
    read(
        "limits",
        &resources.limits,
        "ephemeral-storage",
        parse_bytes,
    )?;
    let [cpu, memory, gpu] = amounts;
    Ok(ContainerAmounts {
        role,
        cpu,
        memory,
        gpus: gpu.stated.map_or(0, |(request, _)| request),
    })
}

/// The amount each container that states nothing gets: what the order has left after the
/// stated limits of containers and sidecars, split evenly. When only workloads of zero
/// replicas have such containers, they get the minimum (it counts for nothing).
fn share(
    workloads: &[Workload],
    pick: fn(&ContainerAmounts) -> Amount,
    available: u64,
    minimum: u64,
    resource: &str,
    format: fn(u64) -> String,
) -> Result<u64, ManifestError> {
    let mut stated = Tally::default();
    let mut unstated: u128 = 0;
    for w in workloads {
        let mut per_pod = 0;
        for c in w.containers.iter().filter(|c| c.role != Role::Init) {
            match pick(c).stated {
                Some((_, limit)) => per_pod += limit,
                None => unstated += u128::from(w.replicas),
            }
        }
        stated.add(&w.describe, w.replicas, per_pod, format);
    }
    if unstated == 0 {
        return Ok(minimum);
    }
    let left = u128::from(available).saturating_sub(stated.total);
    let each = u64::try_from(left / unstated).unwrap_or(u64::MAX);
    if each < minimum {
        let mut breakdown = stated.parts;
        breakdown.push(format!(
            "{unstated} containers without a {resource} request or limit, at least {} each",
            format(minimum)
        ));
        return Err(ManifestError::ResourcesExceeded {
            resource: resource.to_owned(),
            requested: format_wide(stated.total + unstated * u128::from(minimum), format),
            available: format(available),
            breakdown: breakdown.join(", "),
        });
    }
    Ok(each)
}

struct Fill {
    cpu: u64,
    memory: u64,
}

/// One container's amounts once filled: (request, limit) of cpu and memory, and GPUs.
#[derive(Clone, Copy)]
struct Filled {
    role: Role,
    cpu: (u64, u64),
    memory: (u64, u64),
    gpus: u64,
}

/// A pod's totals: (requests, limits) of cpu and memory, and GPUs.
struct PodTotals {
    cpu: (u64, u64),
    memory: (u64, u64),
    gpus: u64,
}

/// Writes the shares into the containers that state nothing and totals the pod.
fn fill_and_total(spec: &mut PodSpec, workload: &Workload, fill: &Fill) -> PodTotals {
    let containers = containers_mut(spec);
    let mut amounts: Vec<Filled> = Vec::new();
    // Regular containers and sidecars first, so an init container's fill can be its pod's
    // total.
    let mut regular_cpu = 0;
    let mut regular_memory = 0;
    let mut pending_init = Vec::new();
    for ((role, _, container), read) in containers.into_iter().zip(&workload.containers) {
        let gpus = read.gpus;
        if role == Role::Init {
            pending_init.push((container, read));
            amounts.push(Filled {
                role,
                cpu: (0, 0),
                memory: (0, 0),
                gpus,
            });
            continue;
        }
        let cpu = read
            .cpu
            .stated
            .unwrap_or_else(|| write_share(container, "cpu", fill.cpu, format_cpu_millis));
        let memory = read
            .memory
            .stated
            .unwrap_or_else(|| write_share(container, "memory", fill.memory, format_bytes));
        if role == Role::Regular {
            regular_cpu += cpu.1;
            regular_memory += memory.1;
        }
        amounts.push(Filled {
            role,
            cpu,
            memory,
            gpus,
        });
    }
    let mut init_values = Vec::new();
    for (container, read) in pending_init {
        let cpu = read.cpu.stated.unwrap_or_else(|| {
            write_share(
                container,
                "cpu",
                regular_cpu.max(MIN_CPU_SHARE),
                format_cpu_millis,
            )
        });
        let memory = read.memory.stated.unwrap_or_else(|| {
            write_share(
                container,
                "memory",
                regular_memory.max(MIN_MEMORY_SHARE),
                format_bytes,
            )
        });
        init_values.push((cpu, memory));
    }
    let mut init_values = init_values.into_iter();
    for entry in amounts.iter_mut().filter(|a| a.role == Role::Init) {
        (entry.cpu, entry.memory) = init_values.next().expect("one per init container");
    }
    PodTotals {
        cpu: (
            pod_total(&amounts, |a| a.cpu.0),
            pod_total(&amounts, |a| a.cpu.1),
        ),
        memory: (
            pod_total(&amounts, |a| a.memory.0),
            pod_total(&amounts, |a| a.memory.1),
        ),
        gpus: pod_total(&amounts, |a| a.gpus),
    }
}

/// Writes `value` as the container's request and limit of `key`; returns it as both.
fn write_share(
    container: &mut Container,
    key: &str,
    value: u64,
    format: fn(u64) -> String,
) -> (u64, u64) {
    let quantity = Quantity(format(value));
    let resources = container.resources.get_or_insert_default();
    resources
        .requests
        .get_or_insert_default()
        .insert(key.to_owned(), quantity.clone());
    resources
        .limits
        .get_or_insert_default()
        .insert(key.to_owned(), quantity);
    (value, value)
}

/// A pod's amount as Kubernetes computes it: containers plus sidecars, or the largest init
/// container plus the sidecars started before it, whichever is larger.
fn pod_total(amounts: &[Filled], pick: fn(&Filled) -> u64) -> u64 {
    let mut sidecars: u64 = 0;
    let mut init_max: u64 = 0;
    let mut containers: u64 = 0;
    for amount in amounts {
        let value = pick(amount);
        match amount.role {
            Role::Sidecar => {
                sidecars = sidecars.saturating_add(value);
                init_max = init_max.max(sidecars);
            }
            Role::Init => init_max = init_max.max(value.saturating_add(sidecars)),
            Role::Regular => containers = containers.saturating_add(value),
        }
    }
    init_max.max(containers.saturating_add(sidecars))
}

/// A claim's requested storage, required as the API server requires it.
fn claim_storage(
    at: &At,
    path: &str,
    spec: Option<&PersistentVolumeClaimSpec>,
) -> Result<u64, ManifestError> {
    let quantity = spec
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|m| m.get("storage"))
        .ok_or_else(|| {
            ManifestError::InvalidObject(
                at.refuse(format!("{path}.resources.requests.storage"), "is missing"),
            )
        })?;
    parse_bytes(&quantity.0).map_err(|e| {
        ManifestError::InvalidObject(at.refuse(
            format!("{path}.resources.requests.storage"),
            format!("is invalid: {e}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tests::{check_yaml, ctx};
    use crate::{CheckedManifest, check};

    /// A Deployment `name` of `replicas` pods whose pod spec is `pod` (flow YAML fields).
    fn workload(kind: &str, name: &str, replicas: i32, pod: &str, extra: &str) -> String {
        format!(
            "---\napiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{{pod}}}\n{extra}"
        )
    }

    fn container(name: &str, resources: &str) -> String {
        format!(
            "{{name: {name}, image: app, ports: [{{containerPort: 8080}}], resources: {{{resources}}}}}"
        )
    }

    fn deployment(name: &str, replicas: i32, resources: &str) -> String {
        workload(
            "Deployment",
            name,
            replicas,
            &format!("containers: [{}]", container("app", resources)),
            "",
        )
    }

    fn exceeded(yaml: &str) -> (String, String, String, String) {
        match check_yaml(yaml) {
            Err(ManifestError::ResourcesExceeded {
                resource,
                requested,
                available,
                breakdown,
            }) => (resource, requested, available, breakdown),
            other => panic!("expected manifest_resources_exceeded, got {other:?}"),
        }
    }

    fn container_resources(
        checked: &CheckedManifest,
        object: usize,
        path: &str,
    ) -> serde_json::Value {
        checked.objects[object].to_json()["spec"]["template"]["spec"]
            .pointer(path)
            .unwrap_or_else(|| panic!("no {path}"))
            .clone()
    }

    #[test]
    fn replicas_times_requests_exactly_the_order_is_accepted() {
        // 4 × 1 cpu and 4 × 2Gi: the order's 4 cpu and 8Gi exactly.
        let yaml = deployment("web", 4, "requests: {cpu: '1', memory: 2Gi}");
        let checked = check_yaml(&yaml).unwrap();
        // The limit is written equal to the request.
        let resources = container_resources(&checked, 0, "/containers/0/resources");
        assert_eq!(resources["limits"]["cpu"], "1");
        assert_eq!(resources["limits"]["memory"], "2Gi");
    }

    #[test]
    fn one_millicore_over_is_refused() {
        let yaml = format!(
            "{}{}",
            deployment("web", 3, "requests: {cpu: '1'}"),
            deployment("api", 1, "requests: {cpu: 1001m}")
        );
        let (resource, requested, available, breakdown) = exceeded(&yaml);
        assert_eq!(resource, "cpu");
        assert_eq!(requested, "4001m");
        assert_eq!(available, "4");
        assert_eq!(
            breakdown,
            "Deployment \"web\": 3 × 1, Deployment \"api\": 1 × 1001m"
        );
        let e = check_yaml(&yaml).unwrap_err();
        assert_eq!(e.code(), "manifest_resources_exceeded");
        assert!(
            e.to_string().contains("4001m of cpu, above the order's 4"),
            "{e}"
        );
    }

    #[test]
    fn limits_count_against_the_order_too() {
        let yaml = deployment("web", 2, "requests: {cpu: 100m}, limits: {cpu: '3'}");
        let (resource, requested, ..) = exceeded(&yaml);
        assert_eq!((resource.as_str(), requested.as_str()), ("limits.cpu", "6"));
        // A limit alone is the request as well.
        let yaml = deployment("web", 1, "limits: {memory: 9Gi}");
        assert_eq!(exceeded(&yaml).0, "memory");
    }

    #[test]
    fn containers_without_resources_share_what_is_left() {
        // One container alone: the whole order.
        let checked = check_yaml(&deployment("web", 1, "")).unwrap();
        let resources = container_resources(&checked, 0, "/containers/0/resources");
        assert_eq!(resources["requests"]["cpu"], "4");
        assert_eq!(resources["limits"]["cpu"], "4");
        assert_eq!(resources["requests"]["memory"], "8Gi");

        // 1 cpu stated; two replicas of a pod with two containers without cpu: 4 shares
        // of 3 cpu. Memory is stated by all.
        let pod = format!(
            "containers: [{}, {}]",
            container("a", "requests: {memory: 1Gi}"),
            container("b", "requests: {memory: 1Gi}")
        );
        let yaml = format!(
            "{}{}",
            deployment("db", 1, "requests: {cpu: '1', memory: 1Gi}"),
            workload("Deployment", "web", 2, &pod, "")
        );
        let checked = check_yaml(&yaml).unwrap();
        let resources = container_resources(&checked, 1, "/containers/1/resources");
        assert_eq!(resources["requests"]["cpu"], "750m");
        assert_eq!(resources["limits"]["cpu"], "750m");
        assert_eq!(resources["requests"]["memory"], "1Gi");

        // Nothing left for a container that states nothing.
        let yaml = format!(
            "{}{}",
            deployment("db", 1, "requests: {cpu: '4'}"),
            deployment("web", 1, "")
        );
        let (resource, _, _, breakdown) = exceeded(&yaml);
        assert_eq!(resource, "cpu");
        assert!(
            breakdown.contains("1 containers without a cpu request or limit"),
            "{breakdown}"
        );
    }

    #[test]
    fn init_containers_and_sidecars_count_as_kubernetes_counts_them() {
        // A plain init container of 3 cpu dominates a 500m pod: 2 × 3 > 4.
        let pod = format!(
            "initContainers: [{{name: migrate, image: app, resources: {{requests: {{cpu: '3'}}}}}}], containers: [{}]",
            container("app", "requests: {cpu: 500m}")
        );
        let (resource, requested, ..) = exceeded(&workload("Deployment", "web", 2, &pod, ""));
        assert_eq!((resource.as_str(), requested.as_str()), ("cpu", "6"));

        // A sidecar (restartPolicy: Always) runs beside the containers: 2 × (1 + 1) = 4, fits.
        let pod = format!(
            "initContainers: [{{name: proxy, image: envoy, restartPolicy: Always, resources: {{requests: {{cpu: '1'}}}}}}], containers: [{}]",
            container("app", "requests: {cpu: '1'}")
        );
        check_yaml(&workload("Deployment", "web", 2, &pod, "")).unwrap();
        let (_, requested, ..) = exceeded(&workload("Deployment", "web", 3, &pod, ""));
        assert_eq!(requested, "6");

        // A plain init container that states nothing gets its pod's total.
        let pod = format!(
            "initContainers: [{{name: wait, image: busybox}}], containers: [{}]",
            container("app", "requests: {cpu: 300m, memory: 256Mi}")
        );
        let checked = check_yaml(&workload("Deployment", "web", 1, &pod, "")).unwrap();
        let resources = container_resources(&checked, 0, "/initContainers/0/resources");
        assert_eq!(resources["requests"]["cpu"], "300m");
        assert_eq!(resources["limits"]["memory"], "256Mi");
    }

    #[test]
    fn gpus() {
        check_yaml(&deployment("web", 1, "limits: {nvidia.com/gpu: 1}")).unwrap();
        let (resource, requested, available, _) =
            exceeded(&deployment("web", 2, "limits: {nvidia.com/gpu: 1}"));
        assert_eq!(
            (resource.as_str(), requested.as_str(), available.as_str()),
            ("nvidia.com/gpu", "2", "1")
        );
        let e = check_yaml(&deployment("web", 1, "limits: {nvidia.com/gpu: 500m}")).unwrap_err();
        assert_eq!(e.code(), "manifest_invalid_object");
        assert_eq!(
            e.refusal().unwrap().field,
            "spec.template.spec.containers[0].resources.requests[nvidia.com/gpu]"
        );
        let e = check_yaml(&deployment(
            "web",
            1,
            "requests: {nvidia.com/gpu: 1}, limits: {nvidia.com/gpu: 2}",
        ))
        .unwrap_err();
        assert_eq!(e.code(), "manifest_invalid_object");
        // A request alone gets its limit, as Kubernetes requires for GPUs.
        let checked = check_yaml(&deployment("web", 1, "requests: {nvidia.com/gpu: 1}")).unwrap();
        let resources = container_resources(&checked, 0, "/containers/0/resources");
        assert_eq!(resources["limits"]["nvidia.com/gpu"], "1");
    }

    fn claim(name: &str, storage: &str) -> String {
        format!(
            "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\nspec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: {storage}}}}}}}\n"
        )
    }

    fn stateful_set(replicas: i32, storage: &str) -> String {
        workload(
            "StatefulSet",
            "db",
            replicas,
            &format!(
                "containers: [{}]",
                container("db", "requests: {cpu: 10m, memory: 16Mi}")
            ),
            &format!(
                "  serviceName: db\n  volumeClaimTemplates:\n    - metadata: {{name: data}}\n      spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: {storage}}}}}}}\n"
            ),
        )
    }

    #[test]
    fn storage_counts_claims_and_claim_templates_per_replica() {
        // 10Gi + 2 × 5Gi = the order's 20Gi.
        let fits = format!("{}{}", claim("files", "10Gi"), stateful_set(2, "5Gi"));
        check_yaml(&fits).unwrap();
        let over = format!(
            "{}{}",
            claim("files", "10737418241"),
            stateful_set(2, "5Gi")
        );
        let (resource, _, available, breakdown) = exceeded(&over);
        assert_eq!((resource.as_str(), available.as_str()), ("storage", "20Gi"));
        assert!(
            breakdown.contains("StatefulSet \"db\": 2 × 5Gi"),
            "{breakdown}"
        );

        // Ephemeral volumes are claims too, one per pod.
        let pod = format!(
            "containers: [{}], volumes: [{{name: scratch, ephemeral: {{volumeClaimTemplate: {{spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 8Gi}}}}}}}}}}}}]",
            container("app", "requests: {cpu: 10m, memory: 16Mi}")
        );
        let (resource, requested, ..) = exceeded(&workload("Deployment", "web", 3, &pod, ""));
        assert_eq!((resource.as_str(), requested.as_str()), ("storage", "24Gi"));

        let missing = "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: c}\nspec: {accessModes: [ReadWriteOnce]}\n";
        let e = check_yaml(&format!("{missing}{}", deployment("web", 1, ""))).unwrap_err();
        assert_eq!(e.code(), "manifest_invalid_object");
        assert_eq!(
            e.refusal().unwrap().field,
            "spec.resources.requests.storage"
        );
    }

    #[test]
    fn pods_and_claims_are_counted() {
        let (resource, requested, available, _) =
            exceeded(&deployment("web", 65, "requests: {cpu: 10m, memory: 16Mi}"));
        assert_eq!(
            (resource.as_str(), requested.as_str(), available.as_str()),
            ("pods", "65", "64")
        );
        let (resource, ..) = exceeded(&stateful_set(17, "1Gi"));
        assert_eq!(resource, "persistentvolumeclaims");
        // Zero replicas count nothing.
        check_yaml(&deployment("web", 0, "requests: {cpu: '100'}")).unwrap();
    }

    #[test]
    fn resources_the_order_does_not_have() {
        for (resources, field) in [
            (
                "limits: {hugepages-2Mi: 1Gi}",
                "spec.template.spec.containers[0].resources.limits.hugepages-2Mi",
            ),
            (
                "requests: {amd.com/gpu: 1}",
                "spec.template.spec.containers[0].resources.requests[amd.com/gpu]",
            ),
            (
                "claims: [{name: gpu}]",
                "spec.template.spec.containers[0].resources.claims",
            ),
        ] {
            let e = check_yaml(&deployment("web", 1, resources)).unwrap_err();
            assert_eq!(e.code(), "manifest_resource_not_offered", "{e}");
            assert_eq!(e.refusal().unwrap().field, field);
        }
        check_yaml(&deployment("web", 1, "limits: {ephemeral-storage: 1Gi}")).unwrap();
    }

    #[test]
    fn bad_quantities_and_replicas() {
        let e = check_yaml(&deployment("web", 1, "requests: {cpu: lots}")).unwrap_err();
        assert_eq!(e.code(), "manifest_invalid_object");
        assert_eq!(
            e.refusal().unwrap().field,
            "spec.template.spec.containers[0].resources.requests.cpu"
        );
        let e = check_yaml(&deployment(
            "web",
            1,
            "requests: {cpu: '2'}, limits: {cpu: '1'}",
        ))
        .unwrap_err();
        assert_eq!(e.code(), "manifest_invalid_object");
        let e = check_yaml(&deployment("web", -1, "")).unwrap_err();
        assert_eq!(e.refusal().unwrap().field, "spec.replicas");
    }

    #[test]
    fn a_checked_manifest_fits_the_quota() {
        // Whatever check() passes, the ResourceQuota of the same order admits: the totals
        // it computed are at most the order, and every container states cpu and memory.
        let yaml = format!(
            "{}{}{}",
            deployment("web", 2, ""),
            deployment("api", 1, "requests: {cpu: 700m}"),
            stateful_set(1, "1Gi")
        );
        let checked = check(crate::checks::tests::parse(&yaml), &ctx()).unwrap();
        let mut cpu = 0;
        let mut memory = 0;
        for object in &checked.objects {
            let json = object.to_json();
            let Some(spec) = json.pointer("/spec/template/spec") else {
                continue;
            };
            let replicas = json["spec"]["replicas"].as_u64().unwrap_or(1);
            for c in spec["containers"].as_array().unwrap() {
                let limits = &c["resources"]["limits"];
                cpu += replicas * parse_cpu_millis(limits["cpu"].as_str().unwrap()).unwrap();
                memory += replicas * parse_bytes(limits["memory"].as_str().unwrap()).unwrap();
            }
        }
        assert!(cpu <= ctx().resources.cpu_millis, "{cpu}");
        assert!(memory <= ctx().resources.memory_bytes, "{memory}");
        assert!(
            cpu > ctx().resources.cpu_millis - 10,
            "the shares use the order: {cpu}"
        );
    }
}
