//! DaemonSet pods: the Cilium agent on every node, and the NVIDIA device plugin and DCGM
//! exporter of the GPU Operator on the GPU nodes.

use serde_json::Value;

use super::nodes::{NodeRef, Role};
use super::pod::{self, Container, Running};
use super::{Ctx, Sink, ids, versions};

/// One DaemonSet of the cluster.
#[derive(Debug)]
pub(super) struct Daemon {
    pub namespace: &'static str,
    pub name: &'static str,
    /// Value of the selector label (`k8s-app` for Cilium, `app` otherwise).
    pub selector: (&'static str, &'static str),
    pub container: &'static str,
    pub image: &'static str,
    pub gpu_only: bool,
    pub host_network: bool,
    pub generation: u32,
    pub cpu: &'static str,
    pub memory: &'static str,
}

pub(super) const DAEMONS: &[Daemon] = &[
    Daemon {
        namespace: "kube-system",
        name: "cilium",
        selector: ("k8s-app", "cilium"),
        container: "cilium-agent",
        image: versions::CILIUM_IMAGE,
        gpu_only: false,
        host_network: true,
        generation: 3,
        cpu: "100m",
        memory: "256Mi",
    },
    Daemon {
        namespace: "gpu-operator",
        name: "nvidia-device-plugin-daemonset",
        selector: ("app", "nvidia-device-plugin-daemonset"),
        container: "nvidia-device-plugin",
        image: "nvcr.io/nvidia/k8s-device-plugin:v0.16.2",
        gpu_only: true,
        host_network: false,
        generation: 1,
        cpu: "50m",
        memory: "64Mi",
    },
    Daemon {
        namespace: "gpu-operator",
        name: "nvidia-dcgm-exporter",
        selector: ("app", "nvidia-dcgm-exporter"),
        container: "nvidia-dcgm-exporter",
        image: "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.7-3.5.0-ubuntu22.04",
        gpu_only: true,
        host_network: false,
        generation: 1,
        cpu: "100m",
        memory: "512Mi",
    },
];

impl Daemon {
    pub fn runs_on(&self, n: &NodeRef) -> bool {
        !self.gpu_only || matches!(n.role, Role::Gpu { .. })
    }

    /// The `controller-revision-hash` of the current template.
    pub fn revision_hash(&self, seed: u64) -> String {
        ids::template_hash(ids::hash_parts(seed, &["ControllerRevision", self.name]))
    }
}

/// The DaemonSet pods bound to node `n`.
pub(super) fn pods_on(ctx: &Ctx, n: &NodeRef, out: &mut dyn Sink) {
    for (i, d) in DAEMONS.iter().enumerate() {
        if d.runs_on(n) {
            out.push(daemon_pod(ctx, d, i, n));
        }
    }
}

fn daemon_pod(ctx: &Ctx, d: &Daemon, host: usize, n: &NodeRef) -> Value {
    let salt = ids::hash_parts(ctx.seed, &["DaemonSet", d.namespace, d.name]);
    let name = format!("{}-{}", d.name, ids::name_suffix(salt, n.index as u64));
    let seed = ids::hash_parts(ctx.seed, &["Pod", d.namespace, &name]);
    let image_id = versions::digest_ref(d.image);
    let containers = [Container {
        name: d.container,
        image: d.image,
        image_id: &image_id,
    }];
    let pod_ip = if d.host_network {
        n.ip.to_string()
    } else {
        n.pod_ip(3 + host)
    };
    let started_ago = (super::versions::UPGRADED_AGO - 90).min(match n.role {
        Role::Gpu { .. } => 96 * super::clock::DAY - 120,
        _ => i64::MAX,
    });
    let (volume, mount) = pod::api_access(&ids::name_suffix(salt ^ 0x77, n.index as u64));
    let mut labels = obj! {
        "controller-revision-hash" => d.revision_hash(ctx.seed),
        "pod-template-generation" => d.generation.to_string(),
    };
    labels[d.selector.0] = Value::from(d.selector.1);
    let mut tolerations = vec![obj! {"operator" => "Exists"}];
    tolerations.extend(
        [
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ]
        .into_iter()
        .map(|(key, effect)| pod::tolerate(key, Some(effect))),
    );
    let node_affinity = obj! {"requiredDuringSchedulingIgnoredDuringExecution" => obj! {
        "nodeSelectorTerms" => vec![obj! {"matchFields" => vec![obj! {
            "key" => "metadata.name",
            "operator" => "In",
            "values" => vec![n.name],
        }]}],
    }};
    let mut spec = obj! {
        "affinity" => obj! {"nodeAffinity" => node_affinity},
        "containers" => vec![obj! {
            "image" => d.image,
            "imagePullPolicy" => "IfNotPresent",
            "name" => d.container,
            "resources" => obj! {"requests" => obj! {"cpu" => d.cpu, "memory" => d.memory}},
            "securityContext" => obj! {"privileged" => true},
            "terminationMessagePath" => "/dev/termination-log",
            "terminationMessagePolicy" => "FallbackToLogsOnError",
            "volumeMounts" => vec![mount],
        }],
        "dnsPolicy" => "ClusterFirst",
        "enableServiceLinks" => true,
        "nodeName" => n.name,
        "preemptionPolicy" => "PreemptLowerPriority",
        "priority" => 2_000_001_000,
        "priorityClassName" => "system-node-critical",
        "restartPolicy" => "Always",
        "schedulerName" => "default-scheduler",
        "securityContext" => obj! {},
        "serviceAccount" => d.name,
        "serviceAccountName" => d.name,
        "terminationGracePeriodSeconds" => 1,
        "tolerations" => tolerations,
        "volumes" => vec![volume],
    };
    if d.host_network {
        spec["hostNetwork"] = Value::from(true);
        spec["dnsPolicy"] = Value::from("ClusterFirstWithHostNet");
    }
    let status = pod::running_status(
        ctx,
        &Running {
            host_ip: n.ip,
            pod_ip: &pod_ip,
            started_ago,
            containers: &containers,
            restarts: 0,
            node_down: ctx.faults.zone_is_down(n.zone),
            seed,
            qos: "Burstable",
        },
    );
    obj! {
        "apiVersion" => "v1",
        "kind" => "Pod",
        "metadata" => obj! {
            "creationTimestamp" => ctx.clock.ago(started_ago + 2),
            "generateName" => format!("{}-", d.name),
            "labels" => labels,
            "name" => name,
            "namespace" => d.namespace,
            "ownerReferences" => pod::controller_ref("apps/v1", "DaemonSet", d.name, ctx.uid("DaemonSet", d.namespace, d.name)),
            "uid" => ids::uid(seed),
        },
        "spec" => spec,
        "status" => status,
    }
}
