//! The application pods on the worker nodes: Deployment pods (owned by their current
//! ReplicaSet) and the Argo Rollout's stable and canary pods.

use serde_json::{Value, json};

use super::catalog::{APPS, Slot};
use super::clock::{DAY, MINUTE};
use super::nodes::NodeRef;
use super::pod::{self, Container, Running};
use super::{Ctx, Sink, ids, rollout};
use crate::lab::skeleton::Skeleton;
use std::sync::Arc;

/// The `pods_per_node` pods bound to worker `n`.
pub(super) fn pods_on(ctx: &Ctx, n: &NodeRef, out: &mut dyn Sink) {
    let worker = worker_index(ctx, n);
    for s in 0..ctx.spec.pods_per_node {
        if out.takes_skeletons() {
            let o = owner(ctx, worker, s);
            let skeleton = skeleton_of(ctx, n, s, &o);
            out.push_filled(&skeleton, fills(ctx, n, s, &o));
        } else {
            out.push(pod(ctx, n, worker, s, None));
        }
    }
}

/// The pod in `slot` of worker `n` right after its container restarted (a churn event);
/// `h` chooses how often and why it restarted.
pub(super) fn restarted_pod(ctx: &Ctx, n: &NodeRef, slot: usize, h: u64) -> Value {
    pod(ctx, n, worker_index(ctx, n), slot, Some(h))
}

fn worker_index(ctx: &Ctx, n: &NodeRef) -> usize {
    n.index - ctx.topo.control_plane.len() - ctx.topo.gpu_nodes.len()
}

/// What differs between the kinds of application pod.
struct Owner<'a> {
    namespace: &'a str,
    app: &'a str,
    /// `pod-template-hash` or `rollouts-pod-template-hash`
    hash_label: &'static str,
    hash: &'a str,
    replica_set: &'a str,
    replica_set_uid: &'a str,
    image: &'a str,
    image_id: &'a str,
    port: u16,
    cpu: &'a str,
    memory: &'a str,
    memory_limit: &'a str,
    started_ago: i64,
    salt: u64,
    replica: usize,
}

fn pod(ctx: &Ctx, n: &NodeRef, worker: usize, slot: usize, restart: Option<u64>) -> Value {
    build(ctx, n, slot, &owner(ctx, worker, slot), restart)
}

fn owner<'a>(ctx: &'a Ctx, worker: usize, slot: usize) -> Owner<'a> {
    match ctx.placement.slot(worker, slot) {
        Slot::App { app, replica } => {
            let a = &APPS[app];
            let ids = &ctx.apps[app];
            Owner {
                namespace: a.namespace,
                app: a.name,
                hash_label: "pod-template-hash",
                hash: &ids.hash,
                replica_set: &ids.replica_set,
                replica_set_uid: &ids.replica_set_uid,
                image: a.image,
                image_id: &ids.image_id,
                port: a.port,
                cpu: a.cpu,
                memory: a.memory,
                memory_limit: a.memory_limit,
                started_ago: a.deployed_days_ago * DAY - (replica as i64 * 7) % 900,
                salt: ids.salt,
                replica,
            }
        }
        Slot::Rollout(i) => {
            let r = &ctx.rollout;
            let canary = i < ctx.placement.canary;
            let rs = if canary { &r.canary } else { &r.stable };
            Owner {
                namespace: &ctx.topo.rollout.namespace,
                app: &ctx.topo.rollout.name,
                hash_label: "rollouts-pod-template-hash",
                hash: &rs.hash,
                replica_set: &rs.name,
                replica_set_uid: &rs.uid,
                image: rs.image,
                image_id: &rs.image_id,
                port: 8080,
                cpu: "500m",
                memory: "512Mi",
                memory_limit: "1Gi",
                // The first canary pod came with setWeight 10, the others five minutes
                // later with setWeight 25.
                started_ago: if canary {
                    rollout::CANARY_STARTED_AGO
                        - 20
                        - if i == 0 { 0 } else { 5 * MINUTE + 9 * i as i64 }
                } else {
                    rollout::STABLE_STARTED_AGO - 30 * i as i64
                },
                salt: rs.salt,
                replica: i,
            }
        }
    }
}

/// The fields that differ between pods of one owner on nodes in the same state, as
/// paths into the pod: the holes of the owner's skeleton, in order. Hole 11 is the
/// restart count, a number.
const HOLES: [&[&str]; 12] = [
    &["/metadata/name"],
    &["/metadata/uid"],
    &["/metadata/creationTimestamp"],
    &["/spec/nodeName"],
    &[
        "/spec/containers/0/volumeMounts/0/name",
        "/spec/volumes/0/name",
    ],
    &["/status/hostIP", "/status/hostIPs/0/ip"],
    &["/status/podIP", "/status/podIPs/0/ip"],
    &[
        "/status/startTime",
        "/status/conditions/1/lastTransitionTime",
        "/status/conditions/4/lastTransitionTime",
    ],
    &["/status/conditions/3/lastTransitionTime"],
    &[
        "/status/conditions/0/lastTransitionTime",
        "/status/containerStatuses/0/state/running/startedAt",
    ],
    &["/status/containerStatuses/0/containerID"],
    &["/status/containerStatuses/0/restartCount"],
];
/// Hole 8 also times the Ready condition, unless the node is down (then that time is
/// the node lifecycle controller's, the same for every pod).
const READY_AT: usize = 8;

/// The skeleton of `o`'s pods on nodes in `n`'s state, built from this pod the first
/// time it is asked for.
fn skeleton_of(ctx: &Ctx, n: &NodeRef, slot: usize, o: &Owner) -> Arc<Skeleton> {
    let node_down = ctx.faults.zone_is_down(n.zone);
    let key = (o.replica_set.to_string(), node_down);
    if let Some(s) = ctx.skeletons.borrow().get(&key) {
        return s.clone();
    }
    let mut tree = build(ctx, n, slot, o, None);
    for (i, paths) in HOLES.iter().enumerate() {
        let marker = if i == 11 {
            Skeleton::raw_hole(i)
        } else {
            Value::String(Skeleton::hole(i))
        };
        for path in *paths {
            if let Some(v) = tree.pointer_mut(path) {
                *v = marker.clone();
            }
        }
        if i == READY_AT
            && !node_down
            && let Some(v) = tree.pointer_mut("/status/conditions/2/lastTransitionTime")
        {
            *v = marker.clone();
        }
    }
    let skeleton = Arc::new(Skeleton::new(tree, HOLES.len()));
    ctx.skeletons.borrow_mut().insert(key, skeleton.clone());
    skeleton
}

/// The values of the skeleton's holes for the pod in `slot` of `n`, computed as
/// [`build`] computes them (a test holds the two together).
fn fills(ctx: &Ctx, n: &NodeRef, slot: usize, o: &Owner) -> Vec<String> {
    let suffix = ids::name_suffix(o.salt, o.replica as u64);
    let name = format!("{}-{suffix}", o.replica_set);
    let seed = ids::hash_parts(ctx.seed, &["Pod", o.namespace, &name]);
    let uid = ids::uid(seed);
    let restarts = restarts(seed);
    vec![
        name,
        uid,
        ctx.clock.ago(o.started_ago + 3),
        n.name.to_string(),
        format!(
            "kube-api-access-{}",
            ids::name_suffix(o.salt ^ 0x5a5a, o.replica as u64)
        ),
        n.ip.to_string(),
        n.pod_ip(10 + slot),
        ctx.clock.ago(o.started_ago),
        ctx.clock.ago(o.started_ago - 4),
        ctx.clock.ago(o.started_ago - 2),
        pod::container_id(ids::mix(seed, 0)),
        restarts.to_string(),
    ]
}

/// How often the container restarted before now: a few pods restarted a few times.
fn restarts(seed: u64) -> u32 {
    if seed.is_multiple_of(23) {
        (seed % 4 + 1) as u32
    } else {
        0
    }
}

fn build(ctx: &Ctx, n: &NodeRef, slot: usize, o: &Owner, restart: Option<u64>) -> Value {
    let suffix = ids::name_suffix(o.salt, o.replica as u64);
    let name = format!("{}-{suffix}", o.replica_set);
    let seed = ids::hash_parts(ctx.seed, &["Pod", o.namespace, &name]);
    let (volume, mount) = pod::api_access(&ids::name_suffix(o.salt ^ 0x5a5a, o.replica as u64));
    let containers = [Container {
        name: o.app,
        image: o.image,
        image_id: o.image_id,
    }];
    let pod_ip = n.pod_ip(10 + slot);
    let mut status = pod::running_status(
        ctx,
        &Running {
            host_ip: n.ip,
            pod_ip: &pod_ip,
            started_ago: o.started_ago,
            containers: &containers,
            restarts: restarts(seed),
            node_down: ctx.faults.zone_is_down(n.zone),
            seed,
            qos: "Burstable",
        },
    );
    if let Some(h) = restart {
        restart_container(ctx, &mut status, seed, h);
    }
    let scheme = if o.port == 8443 { "HTTPS" } else { "HTTP" };
    obj! {
        "apiVersion" => "v1",
        "kind" => "Pod",
        "metadata" => obj! {
            "creationTimestamp" => ctx.clock.ago(o.started_ago + 3),
            "generateName" => format!("{}-", o.replica_set),
            "labels" => obj! {"app" => o.app, o.hash_label => o.hash},
            "name" => name,
            "namespace" => o.namespace,
            "ownerReferences" => pod::controller_ref("apps/v1", "ReplicaSet", o.replica_set, o.replica_set_uid.to_string()),
            "uid" => ids::uid(seed),
        },
        "spec" => obj! {
            "containers" => vec![obj! {
                "image" => o.image,
                "imagePullPolicy" => "IfNotPresent",
                "name" => o.app,
                "ports" => vec![obj! {"containerPort" => o.port, "name" => "http", "protocol" => "TCP"}],
                "readinessProbe" => obj! {
                    "failureThreshold" => 3,
                    "httpGet" => obj! {"path" => "/readyz", "port" => "http", "scheme" => scheme},
                    "periodSeconds" => 10,
                    "successThreshold" => 1,
                    "timeoutSeconds" => 1,
                },
                "resources" => obj! {
                    "limits" => obj! {"memory" => o.memory_limit},
                    "requests" => obj! {"cpu" => o.cpu, "memory" => o.memory},
                },
                "terminationMessagePath" => "/dev/termination-log",
                "terminationMessagePolicy" => "File",
                "volumeMounts" => vec![mount],
            }],
            "dnsPolicy" => "ClusterFirst",
            "enableServiceLinks" => true,
            "nodeName" => n.name,
            "preemptionPolicy" => "PreemptLowerPriority",
            "priority" => 0,
            "restartPolicy" => "Always",
            "schedulerName" => "default-scheduler",
            "securityContext" => obj! {},
            "serviceAccount" => "default",
            "serviceAccountName" => "default",
            "terminationGracePeriodSeconds" => 30,
            "tolerations" => pod::default_tolerations(),
            "volumes" => vec![volume],
        },
        "status" => status,
    }
}

/// The container came back a few seconds ago after being OOM-killed or crashing.
fn restart_container(ctx: &Ctx, status: &mut Value, seed: u64, h: u64) {
    let (code, reason) = match h % 3 {
        0 => (137, "OOMKilled"),
        1 => (1, "Error"),
        _ => (143, "Error"),
    };
    let back = 2 + (h >> 8) as i64 % 20;
    let old_id = pod::container_id(ids::mix(seed, 0));
    let Some(c) = status["containerStatuses"].get_mut(0) else {
        return;
    };
    let previous_start = c["state"]["running"]["startedAt"].clone();
    c["restartCount"] = json!(c["restartCount"].as_u64().unwrap_or(0) + 1 + (h >> 16) % 3);
    c["lastState"] = json!({"terminated": {
        "containerID": old_id,
        "exitCode": code,
        "finishedAt": ctx.clock.ago(back + 1),
        "reason": reason,
        "startedAt": previous_start,
    }});
    c["containerID"] = json!(pod::container_id(ids::mix(seed, h)));
    c["state"] = json!({"running": {"startedAt": ctx.clock.ago(back)}});
    if let Some(conds) = status["conditions"].as_array_mut() {
        for cond in conds {
            if cond["type"] == "Ready" || cond["type"] == "ContainersReady" {
                cond["lastTransitionTime"] = json!(ctx.clock.ago(back - 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::topology::{Faults, LabSpec, Scenario, Topology};
    use std::time::SystemTime;

    /// Every worker pod from its skeleton and fills equals the pod built directly,
    /// in a healthy lab and with a zone down.
    #[test]
    fn skeleton_pods_equal_built_pods() {
        let spec = LabSpec {
            nodes: 9,
            pods_per_node: 12,
            ..LabSpec::default()
        };
        let topo = Topology::generate(&spec);
        for scenario in [Scenario::Healthy, Scenario::AzFailure] {
            let faults = Faults::for_scenario(scenario, &topo);
            let ctx = Ctx::new(&topo, &spec, &faults, SystemTime::now());
            let base = topo.control_plane.len() + topo.gpu_nodes.len();
            let mut compared = 0;
            for w in 0..topo.workers.len() {
                let n = super::super::nodes::worker(&ctx, w, base);
                for slot in 0..spec.pods_per_node {
                    let o = owner(&ctx, w, slot);
                    let from_skeleton =
                        skeleton_of(&ctx, &n, slot, &o).fill_value(&fills(&ctx, &n, slot, &o));
                    assert_eq!(
                        from_skeleton,
                        build(&ctx, &n, slot, &o, None),
                        "{scenario:?}"
                    );
                    compared += 1;
                }
            }
            assert_eq!(compared, 9 * 12);
            assert!(ctx.skeletons.borrow().len() > 1);
        }
    }
}
