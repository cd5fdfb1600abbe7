//! Events of the last hour (the API server's default `--event-ttl`): the rollout's
//! progress to its pause, and, when a zone is lost, the node controller's NodeNotReady
//! and RemovingNode events and the scheduler's FailedScheduling for the GPU pod.
//! `etcd_nospace` records none: with the NOSPACE alarm raised the API server can write
//! nothing to etcd, Events included. `gpu_hot` shows only in DCGM metrics.

use serde_json::{Value, json};

use super::clock::MINUTE;
use super::{Ctx, NODE_MONITOR_GRACE, Sink, ZONE_LOST_AGO, gpu, ids, rollout};

/// One event to record.
struct Event<'a> {
    namespace: &'a str,
    involved: Value,
    reason: &'a str,
    message: String,
    warning: bool,
    component: &'a str,
    first_ago: i64,
    last_ago: i64,
    count: u32,
}

pub(super) fn all(ctx: &Ctx, out: &mut dyn Sink) {
    rollout_progress(ctx, out);
    zone_loss(ctx, out);
}

fn rollout_progress(ctx: &Ctx, out: &mut dyn Sink) {
    let ro = &ctx.topo.rollout;
    let r = &ctx.rollout;
    let involved = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": ro.name,
        "namespace": ro.namespace,
        "uid": ctx.uid("Rollout", &ro.namespace, &ro.name),
    });
    let steps = (ro.steps.len() * 2).saturating_sub(1);
    let first = ro.steps.first().copied().unwrap_or(0);
    let second = ro.steps.get(1).copied().unwrap_or(first);
    let start = rollout::CANARY_STARTED_AGO;
    let paused = start - 5 * MINUTE - 4;
    let scaled = |from: usize, to: usize, rs: &str, revision: u32, up: bool| {
        format!(
            "Scaled {} ReplicaSet {rs} (revision {revision}) from {from} to {to}",
            if up { "up" } else { "down" }
        )
    };
    let p = &ctx.placement;
    let list = [
        (
            "RolloutUpdated",
            format!("Rollout updated to revision {}", r.canary.revision),
            start + 6,
        ),
        (
            "NewReplicaSetCreated",
            format!(
                "Created ReplicaSet {} (revision {})",
                r.canary.name, r.canary.revision
            ),
            start + 5,
        ),
        (
            "ScalingReplicaSet",
            scaled(0, 1.min(p.canary), &r.canary.name, r.canary.revision, true),
            start + 4,
        ),
        (
            "RolloutStepCompleted",
            format!("Rollout step 1/{steps} completed (setWeight: {first})"),
            start,
        ),
        (
            "RolloutStepCompleted",
            format!("Rollout step 2/{steps} completed (pause: 5m)"),
            paused + 8,
        ),
        (
            "ScalingReplicaSet",
            scaled(
                1.min(p.canary),
                p.canary,
                &r.canary.name,
                r.canary.revision,
                true,
            ),
            paused + 6,
        ),
        (
            "ScalingReplicaSet",
            scaled(
                p.rollout,
                p.rollout - p.canary,
                &r.stable.name,
                r.stable.revision,
                false,
            ),
            paused + 3,
        ),
        (
            "RolloutStepCompleted",
            format!("Rollout step 3/{steps} completed (setWeight: {second})"),
            paused + 1,
        ),
        (
            "RolloutPaused",
            "Rollout is paused (CanaryPauseStep)".to_string(),
            paused,
        ),
    ];
    for (reason, message, ago) in list {
        out.push(event(
            ctx,
            Event {
                namespace: &ro.namespace,
                involved: involved.clone(),
                reason,
                message,
                warning: false,
                component: "rollouts-controller",
                first_ago: ago,
                last_ago: ago,
                count: 1,
            },
        ));
    }
}

fn zone_loss(ctx: &Ctx, out: &mut dyn Sink) {
    let Some(zone) = &ctx.faults.zone_down else {
        return;
    };
    let noticed = ZONE_LOST_AGO - NODE_MONITOR_GRACE;
    for n in ctx.down_nodes() {
        out.push(event(
            ctx,
            Event {
                namespace: "default",
                involved: node_ref(ctx, n.name),
                reason: "NodeNotReady",
                message: format!("Node {} status is now: NodeNotReady", n.name),
                warning: false,
                component: "node-controller",
                first_ago: noticed,
                last_ago: noticed,
                count: 1,
            },
        ));
    }
    for g in ctx.topo.gpu_nodes.iter().filter(|g| &g.zone == zone) {
        out.push(event(
            ctx,
            Event {
                namespace: "default",
                involved: node_ref(ctx, &g.name),
                reason: "RemovingNode",
                message: format!("Node {0} event: Removing Node {0} from Controller", g.name),
                warning: false,
                component: "node-controller",
                first_ago: noticed - 20,
                last_ago: noticed - 20,
                count: 1,
            },
        ));
    }
    let mut pending = Vec::new();
    gpu::pending_pods(ctx, &mut pending);
    for pod in pending {
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let message = pod["status"]["conditions"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        out.push(event(
            ctx,
            Event {
                namespace: gpu::NAMESPACE,
                involved: json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": name,
                    "namespace": gpu::NAMESPACE,
                    "uid": pod["metadata"]["uid"],
                }),
                reason: "FailedScheduling",
                message,
                warning: true,
                component: "default-scheduler",
                first_ago: noticed - 25,
                last_ago: 20,
                count: 4,
            },
        ));
    }
}

fn node_ref(ctx: &Ctx, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "name": name,
        "uid": ids::uid(ctx.node_seed(name)),
    })
}

/// A core/v1 Event, named `<object>.<first timestamp in hex nanoseconds>` as client-go's
/// recorder names them.
fn event(ctx: &Ctx, e: Event) -> Value {
    let object = e.involved["name"].as_str().unwrap_or_default().to_string();
    let h = ids::hash_parts(ctx.seed, &["Event", e.reason, &object, &e.message]);
    let nanos = (ctx.clock.now - e.first_ago).max(0) as u64 * 1_000_000_000 + h % 1_000_000_000;
    let name = format!("{object}.{nanos:x}");
    json!({
        "apiVersion": "v1",
        "count": e.count,
        "eventTime": null,
        "firstTimestamp": ctx.clock.ago(e.first_ago),
        "involvedObject": e.involved,
        "kind": "Event",
        "lastTimestamp": ctx.clock.ago(e.last_ago),
        "message": e.message,
        "metadata": {
            "creationTimestamp": ctx.clock.ago(e.first_ago),
            "name": name,
            "namespace": e.namespace,
            "uid": ids::uid(h),
        },
        "reason": e.reason,
        "reportingComponent": e.component,
        "reportingInstance": "",
        "source": {"component": e.component},
        "type": if e.warning { "Warning" } else { "Normal" },
    })
}
