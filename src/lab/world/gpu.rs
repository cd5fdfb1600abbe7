//! The GPU workload: Deployment `ml/llm-inference`, one pod per GPU node holding most of
//! its GPUs. When a zone's GPU node is lost its pod is replaced by one the scheduler
//! cannot place, Pending with the message the default scheduler writes.

use serde_json::{Value, json};

use super::nodes::{NodeRef, Role};
use super::pod::{self, Container, Running};
use super::{Ctx, Sink, ZONE_LOST_AGO, ids, versions};

pub(super) const NAMESPACE: &str = "ml";
pub(super) const APP: &str = "llm-inference";
pub(super) const IMAGE: &str = "nvcr.io/nvidia/tritonserver:24.08-py3";
const DEPLOYED_AGO: i64 = 11 * super::clock::DAY;

/// Names of the GPU Deployment's current ReplicaSet.
pub(super) struct GpuIds {
    pub hash: String,
    pub replica_set: String,
    pub replica_set_uid: String,
    salt: u64,
}

pub(super) fn ids(ctx: &Ctx) -> GpuIds {
    let h = ids::hash_parts(ctx.seed, &["ReplicaSet", NAMESPACE, APP, IMAGE]);
    let hash = ids::template_hash(h);
    let replica_set = format!("{APP}-{hash}");
    GpuIds {
        replica_set_uid: ctx.uid("ReplicaSet", NAMESPACE, &replica_set),
        hash,
        replica_set,
        salt: ids::mix(h, 5),
    }
}

/// The inference pod's name on the `k`-th GPU node: what `kubectl get pods -n ml` lists
/// and what the DCGM series' `pod` label names.
pub(super) fn pod_name(seed: u64, k: usize) -> String {
    let h = ids::hash_parts(seed, &["ReplicaSet", NAMESPACE, APP, IMAGE]);
    format!(
        "{APP}-{}-{}",
        ids::template_hash(h),
        ids::name_suffix(ids::mix(h, 5), k as u64)
    )
}

/// GPUs each inference pod asks for: three quarters of a node, so a lost node's pod can
/// never fit in what the others have left.
pub(super) fn request(gpus: u32) -> u32 {
    (gpus * 3 / 4).max(1)
}

/// The inference pod bound to GPU node `n`.
pub(super) fn pods_on(ctx: &Ctx, n: &NodeRef, out: &mut dyn Sink) {
    let Role::Gpu { gpus, .. } = n.role else {
        return;
    };
    let k = n.index - ctx.topo.control_plane.len();
    let ids = ids(ctx);
    let name = pod_name(ctx.seed, k);
    let seed = ids::hash_parts(ctx.seed, &["Pod", NAMESPACE, &name]);
    let image_id = versions::digest_ref(IMAGE);
    let containers = [Container {
        name: "triton",
        image: IMAGE,
        image_id: &image_id,
    }];
    let started_ago = DEPLOYED_AGO - 40 * k as i64;
    let pod_ip = n.pod_ip(20);
    let mut object = skeleton(ctx, &ids, &name, seed, request(gpus), started_ago + 3);
    object["spec"]["nodeName"] = json!(n.name);
    object["status"] = pod::running_status(
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
    out.push(object);
}

/// Replacements for the inference pods of lost GPU nodes, which no node can take.
pub(super) fn pending_pods(ctx: &Ctx, out: &mut dyn Sink) {
    let gpu_nodes = &ctx.topo.gpu_nodes;
    let ids = ids(ctx);
    for (k, g) in gpu_nodes.iter().enumerate() {
        if !ctx.faults.zone_is_down(&g.zone) {
            continue;
        }
        let index = (gpu_nodes.len() + k) as u64;
        let name = format!("{}-{}", ids.replica_set, ids::name_suffix(ids.salt, index));
        let seed = ids::hash_parts(ctx.seed, &["Pod", NAMESPACE, &name]);
        let created = ZONE_LOST_AGO - super::NODE_MONITOR_GRACE - 25;
        let mut object = skeleton(ctx, &ids, &name, seed, request(g.gpus), created);
        object["status"] = json!({
            "conditions": [{
                "lastProbeTime": null,
                "lastTransitionTime": ctx.clock.ago(created),
                "message": unschedulable_message(ctx, request(g.gpus)),
                "reason": "Unschedulable",
                "status": "False",
                "type": "PodScheduled",
            }],
            "phase": "Pending",
            "qosClass": "Burstable",
        });
        out.push(object);
    }
}

/// The default scheduler's FitError text for an inference pod: each node fails the first
/// filter it does not pass (TaintToleration, then NodeAffinity, then NodeResourcesFit),
/// reasons counted and sorted as strings, then the preemption verdict.
pub(super) fn unschedulable_message(ctx: &Ctx, want: u32) -> String {
    let nodes = super::nodes::all(ctx);
    let (mut cp, mut unreachable, mut no_gpu, mut short) = (0, 0, 0, 0);
    for n in &nodes {
        match n.role {
            Role::ControlPlane => cp += 1,
            _ if ctx.faults.zone_is_down(n.zone) => unreachable += 1,
            Role::Worker => no_gpu += 1,
            Role::Gpu { gpus, .. } => {
                // Every up GPU node already runs one inference pod.
                if gpus.saturating_sub(request(gpus)) < want {
                    short += 1;
                }
            }
        }
    }
    let total = nodes.len();
    let mut reasons: Vec<String> = [
        (short, "Insufficient nvidia.com/gpu"),
        (no_gpu, "node(s) didn't match Pod's node affinity/selector"),
        (
            cp,
            "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
        ),
        (
            unreachable,
            "node(s) had untolerated taint {node.kubernetes.io/unreachable: }",
        ),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, reason)| format!("{count} {reason}"))
    .collect();
    reasons.sort();
    let mut preemption: Vec<String> = [
        (short, "No preemption victims found for incoming pod"),
        (total - short, "Preemption is not helpful for scheduling"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, reason)| format!("{count} {reason}"))
    .collect();
    preemption.sort();
    format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {}.",
        reasons.join(", "),
        preemption.join(", ")
    )
}

/// Metadata and spec of an inference pod, not yet bound.
fn skeleton(ctx: &Ctx, ids: &GpuIds, name: &str, seed: u64, gpus: u32, created_ago: i64) -> Value {
    let (volume, mount) = pod::api_access(&ids::name_suffix(ids.salt ^ 0x33, seed % 1000));
    let mut tolerations = pod::default_tolerations();
    tolerations.insert(0, pod::tolerate("nvidia.com/gpu", Some("NoSchedule")));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "creationTimestamp": ctx.clock.ago(created_ago),
            "generateName": format!("{}-", ids.replica_set),
            "labels": {"app": APP, "pod-template-hash": ids.hash},
            "name": name,
            "namespace": NAMESPACE,
            "ownerReferences": pod::controller_ref("apps/v1", "ReplicaSet", &ids.replica_set, ids.replica_set_uid.clone()),
            "uid": ids::uid(seed),
        },
        "spec": {
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"app": APP}},
                "topologyKey": "kubernetes.io/hostname",
            }]}},
            "containers": [{
                "args": ["tritonserver", "--model-repository=s3://acme-models-eu-west-1/triton", "--metrics-port=8002"],
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "name": "triton",
                "ports": [
                    {"containerPort": 8000, "name": "http", "protocol": "TCP"},
                    {"containerPort": 8001, "name": "grpc", "protocol": "TCP"},
                    {"containerPort": 8002, "name": "metrics", "protocol": "TCP"},
                ],
                "readinessProbe": {
                    "failureThreshold": 3,
                    "httpGet": {"path": "/v2/health/ready", "port": "http", "scheme": "HTTP"},
                    "periodSeconds": 10,
                    "successThreshold": 1,
                    "timeoutSeconds": 1,
                },
                "resources": {
                    "limits": {"memory": "256Gi", "nvidia.com/gpu": gpus.to_string()},
                    "requests": {"cpu": "32", "memory": "192Gi", "nvidia.com/gpu": gpus.to_string()},
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [mount],
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": tolerations,
            "volumes": [volume],
        },
    })
}
