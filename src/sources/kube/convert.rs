//! Node and Pod objects trimmed into the small records the panes need, so that a
//! 5,000-node cluster costs kilobytes per node, not the full objects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::DynamicObject;

use crate::model::kube::{GPU_RESOURCE, NodeInfo, PodInfo, Readiness, Taint, Toleration};

const ZONE_LABELS: [&str; 2] = [
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
];
const ROLE_PREFIX: &str = "node-role.kubernetes.io/";

/// Labels a pane shows: accelerators, NVIDIA GPU feature discovery, instance type and
/// node group.
fn label_of_interest(key: &str) -> bool {
    key.starts_with("nvidia.com/")
        || key.contains("accelerator")
        || key == "node.kubernetes.io/instance-type"
        || key.ends_with("/nodegroup")
        || key.ends_with("/nodepool")
        || key.ends_with("/gke-nodepool")
}

/// `"8"` -> 8; anything else (fractions, suffixes) -> 0, as GPUs are whole.
fn whole(q: Option<&Quantity>) -> u32 {
    q.and_then(|q| q.0.trim().parse().ok()).unwrap_or(0)
}

pub fn node(node: Node) -> Option<NodeInfo> {
    let name = node.metadata.name.clone()?;
    let labels = node.metadata.labels.unwrap_or_default();
    let zone = ZONE_LABELS.iter().find_map(|k| labels.get(*k).cloned());
    let mut roles: Vec<String> = labels
        .keys()
        .filter_map(|k| k.strip_prefix(ROLE_PREFIX))
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(r) = labels.get("kubernetes.io/role")
        && !roles.contains(r)
    {
        roles.push(r.clone());
    }
    let kept: BTreeMap<String, String> = labels
        .into_iter()
        .filter(|(k, _)| label_of_interest(k))
        .collect();
    let spec = node.spec.unwrap_or_default();
    let taints = spec
        .taints
        .unwrap_or_default()
        .into_iter()
        .map(|t| Taint {
            key: t.key,
            value: t.value,
            effect: t.effect,
        })
        .collect();
    let status = node.status.unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let ready_condition = conditions.iter().find(|c| c.type_ == "Ready");
    let ready = match ready_condition.map(|c| c.status.as_str()) {
        Some("True") => Readiness::Ready,
        Some("False") => Readiness::NotReady,
        _ => Readiness::Unknown,
    };
    let ready_reason = ready_condition
        .filter(|_| ready != Readiness::Ready)
        .map(|c| match (&c.reason, &c.message) {
            (Some(r), Some(m)) => format!("{r}: {m}"),
            (Some(r), None) => r.clone(),
            (None, Some(m)) => m.clone(),
            (None, None) => "no reason given".into(),
        });
    let pressures = conditions
        .iter()
        .filter(|c| c.type_ != "Ready" && c.status == "True")
        .map(|c| c.type_.clone())
        .collect();
    let internal_ip = status
        .addresses
        .unwrap_or_default()
        .into_iter()
        .find(|a| a.type_ == "InternalIP")
        .map(|a| a.address);
    Some(NodeInfo {
        name,
        zone,
        roles,
        labels: kept,
        taints,
        ready,
        ready_reason,
        pressures,
        unschedulable: spec.unschedulable.unwrap_or(false),
        internal_ip,
        gpu_capacity: whole(status.capacity.as_ref().and_then(|c| c.get(GPU_RESOURCE))),
        gpu_allocatable: whole(
            status
                .allocatable
                .as_ref()
                .and_then(|c| c.get(GPU_RESOURCE)),
        ),
        kubelet_version: status.node_info.map(|i| i.kubelet_version),
    })
}

/// GPUs a container asks for: requests, else limits (extended resources default the
/// request to the limit).
fn container_gpus(c: &Container) -> u32 {
    let r = c.resources.as_ref();
    let request = r.and_then(|r| r.requests.as_ref()?.get(GPU_RESOURCE));
    let limit = r.and_then(|r| r.limits.as_ref()?.get(GPU_RESOURCE));
    whole(request.or(limit))
}

/// `--name=etcd-a` from etcd's command line.
fn flag_value(c: &Container, flag: &str) -> Option<String> {
    let prefix = format!("--{flag}=");
    c.command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .find_map(|a| a.strip_prefix(&prefix).map(str::to_string))
}

pub fn pod(pod: Pod) -> Option<PodInfo> {
    let name = pod.metadata.name.clone()?;
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let component = pod.labels().get("component").cloned();
    let annotations = pod.annotations();
    let advertise = annotations
        .get("kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint")
        .or_else(|| annotations.get("kubeadm.kubernetes.io/etcd.advertise-client-urls"))
        .map(|v| v.split(',').next().unwrap_or(v).to_string());
    let spec = pod.spec.unwrap_or_default();
    let gpus: u32 = spec.containers.iter().map(container_gpus).sum();
    let init_gpus = spec
        .init_containers
        .iter()
        .flatten()
        .map(container_gpus)
        .max()
        .unwrap_or(0);
    let etcd_name = (component.as_deref() == Some("etcd"))
        .then(|| spec.containers.iter().find_map(|c| flag_value(c, "name")))
        .flatten();
    let tolerations = spec
        .tolerations
        .unwrap_or_default()
        .into_iter()
        .map(|t| Toleration {
            key: t.key,
            operator: t.operator,
            value: t.value,
            effect: t.effect,
        })
        .collect();
    let status = pod.status.unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let ready = conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let unschedulable = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .map(|c| {
            c.message
                .clone()
                .or(c.reason.clone())
                .unwrap_or_else(|| "not scheduled".into())
        });
    let containers = status.container_statuses.unwrap_or_default();
    let restarts = containers
        .iter()
        .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
        .sum();
    let reason = containers
        .iter()
        .filter(|c| !c.ready)
        .find_map(|c| {
            let state = c.state.as_ref()?;
            state
                .waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .or_else(|| state.terminated.as_ref().and_then(|t| t.reason.clone()))
        })
        .or(status.reason)
        .or_else(|| {
            (!ready)
                .then(|| {
                    conditions
                        .iter()
                        .find(|c| c.type_ == "Ready" && c.status != "True")
                        .and_then(|c| c.reason.clone())
                })
                .flatten()
        });
    Some(PodInfo {
        namespace,
        name,
        node: spec.node_name,
        phase: status.phase.unwrap_or_else(|| "Unknown".into()),
        ready,
        restarts,
        reason,
        component,
        gpu_request: gpus.max(init_gpus),
        tolerations,
        unschedulable,
        advertise,
        etcd_name,
    })
}

/// A custom object as kept: without `managedFields` and the last-applied annotation,
/// which are most of an object's bytes and no pane reads.
pub fn custom(mut object: DynamicObject) -> Option<DynamicObject> {
    object.metadata.managed_fields = None;
    if let Some(a) = object.metadata.annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    Some(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_gpu_node_keeps_only_what_the_panes_need() {
        let n: Node = serde_json::from_value(json!({
            "metadata": {"name": "gpu-a", "labels": {
                "topology.kubernetes.io/zone": "eu-west-1a",
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
                "kubernetes.io/hostname": "gpu-a",
                "node-role.kubernetes.io/gpu": ""}},
            "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
                     "unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                                       "message": "Kubelet stopped posting node status."}],
                       "capacity": {"nvidia.com/gpu": "8"}, "allocatable": {"nvidia.com/gpu": "8"},
                       "addresses": [{"type": "InternalIP", "address": "10.0.1.50"}]}
        }))
        .unwrap();
        let info = node(n).unwrap();
        assert_eq!(info.zone.as_deref(), Some("eu-west-1a"));
        assert_eq!(info.roles, ["gpu"]);
        assert_eq!(info.labels.len(), 1, "hostname is not kept");
        assert_eq!((info.gpu_capacity, info.gpu_allocatable), (8, 8));
        assert_eq!(info.ready, Readiness::Unknown);
        assert_eq!(
            info.ready_reason.as_deref(),
            Some("NodeStatusUnknown: Kubelet stopped posting node status.")
        );
        assert!(info.unschedulable && info.is_gpu());
        assert_eq!(info.internal_ip.as_deref(), Some("10.0.1.50"));
    }

    #[test]
    fn a_static_etcd_pod_gives_its_name_and_advertise_url() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "etcd-cp-a", "namespace": "kube-system",
                "labels": {"component": "etcd", "tier": "control-plane"},
                "annotations": {"kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://10.0.1.10:2379"}},
            "spec": {"nodeName": "cp-a", "containers": [{"name": "etcd", "command": ["etcd", "--name=etcd-a"],
                "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "etcd", "ready": false, "restartCount": 3, "image": "x", "imageID": "",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        }))
        .unwrap();
        let info = pod(p).unwrap();
        assert_eq!(info.etcd_name.as_deref(), Some("etcd-a"));
        assert_eq!(info.advertise.as_deref(), Some("https://10.0.1.10:2379"));
        assert_eq!((info.restarts, info.ready), (3, false));
        assert_eq!(info.reason.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(info.gpu_request, 1, "limits count when requests are absent");
    }
}
