//! Pieces every pod shares: the kubelet's status for a running pod (and how the node
//! lifecycle controller rewrites it when the node stops reporting), the default
//! tolerations the admission plugin adds, and the service-account token volume.

use serde_json::Value;

use super::{Ctx, ids};

/// A container as the kubelet reports it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Container<'a> {
    pub name: &'a str,
    pub image: &'a str,
    /// `repo@sha256:...` of the image.
    pub image_id: &'a str,
}

/// What the kubelet last reported about a running pod.
#[derive(Debug, Clone, Copy)]
pub(super) struct Running<'a> {
    pub host_ip: &'a str,
    pub pod_ip: &'a str,
    /// Seconds before now the pod started.
    pub started_ago: i64,
    pub containers: &'a [Container<'a>],
    pub restarts: u32,
    /// The node stopped posting status: the pod's Ready condition was set False.
    pub node_down: bool,
    /// Seeds container IDs.
    pub seed: u64,
    pub qos: &'static str,
}

fn condition(kind: &str, status: &str, at: String) -> Value {
    obj! {
        "lastProbeTime" => Value::Null,
        "lastTransitionTime" => at,
        "status" => status,
        "type" => kind,
    }
}

pub(super) fn running_status(ctx: &Ctx, r: &Running) -> Value {
    let started = ctx.clock.ago(r.started_ago);
    let ready_at = ctx.clock.ago(r.started_ago - 4);
    let ready = if r.node_down {
        let noticed = ctx
            .clock
            .ago(super::ZONE_LOST_AGO - super::NODE_MONITOR_GRACE);
        condition("Ready", "False", noticed)
    } else {
        condition("Ready", "True", ready_at.clone())
    };
    let running_since = ctx.clock.ago(r.started_ago - 2);
    let statuses: Vec<Value> = r
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            obj! {
                "containerID" => container_id(ids::mix(r.seed, i as u64)),
                "image" => c.image,
                "imageID" => c.image_id,
                "lastState" => obj! {},
                "name" => c.name,
                "ready" => true,
                "restartCount" => r.restarts,
                "started" => true,
                "state" => obj! {"running" => obj! {"startedAt" => running_since.clone()}},
            }
        })
        .collect();
    obj! {
        "conditions" => vec![
            condition("PodReadyToStartContainers", "True", running_since.clone()),
            condition("Initialized", "True", started.clone()),
            ready,
            condition("ContainersReady", "True", ready_at),
            condition("PodScheduled", "True", started.clone()),
        ],
        "containerStatuses" => statuses,
        "hostIP" => r.host_ip,
        "hostIPs" => vec![obj! {"ip" => r.host_ip}],
        "phase" => "Running",
        "podIP" => r.pod_ip,
        "podIPs" => vec![obj! {"ip" => r.pod_ip}],
        "qosClass" => r.qos,
        "startTime" => started,
    }
}

pub(super) fn container_id(h: u64) -> String {
    let mut s = String::with_capacity(77);
    s.push_str("containerd://");
    s.push_str(&ids::hex(h, 64));
    s
}

fn toleration(key: &str, effect: &str, seconds: Option<u32>) -> Value {
    let mut t = obj! {"effect" => effect, "key" => key, "operator" => "Exists"};
    if let Some(s) = seconds {
        t["tolerationSeconds"] = Value::from(s);
    }
    t
}

/// The NoExecute tolerations the DefaultTolerationSeconds admission plugin adds.
pub(super) fn default_tolerations() -> Vec<Value> {
    vec![
        toleration("node.kubernetes.io/not-ready", "NoExecute", Some(300)),
        toleration("node.kubernetes.io/unreachable", "NoExecute", Some(300)),
    ]
}

/// A toleration of any taint with the given key and effect (`None`: any effect).
pub(super) fn tolerate(key: &str, effect: Option<&str>) -> Value {
    match effect {
        Some(effect) => toleration(key, effect, None),
        None => obj! {"key" => key, "operator" => "Exists"},
    }
}

/// The projected service-account volume the ServiceAccount admission plugin adds, and
/// its mount.
pub(super) fn api_access(suffix: &str) -> (Value, Value) {
    let name = format!("kube-api-access-{suffix}");
    let mount = obj! {
        "mountPath" => "/var/run/secrets/kubernetes.io/serviceaccount",
        "name" => name.clone(),
        "readOnly" => true,
    };
    let volume = obj! {
        "name" => name,
        "projected" => obj! {
            "defaultMode" => 420,
            "sources" => vec![
                obj! {"serviceAccountToken" => obj! {"expirationSeconds" => 3607, "path" => "token"}},
                obj! {"configMap" => obj! {
                    "items" => vec![obj! {"key" => "ca.crt", "path" => "ca.crt"}],
                    "name" => "kube-root-ca.crt",
                }},
                obj! {"downwardAPI" => obj! {"items" => vec![obj! {
                    "fieldRef" => obj! {"apiVersion" => "v1", "fieldPath" => "metadata.namespace"},
                    "path" => "namespace",
                }]}},
            ],
        },
    };
    (volume, mount)
}

/// An ownerReference to a controller.
pub(super) fn controller_ref(api_version: &str, kind: &str, name: &str, uid: String) -> Value {
    Value::from(vec![obj! {
        "apiVersion" => api_version,
        "blockOwnerDeletion" => true,
        "controller" => true,
        "kind" => kind,
        "name" => name,
        "uid" => uid,
    }])
}
