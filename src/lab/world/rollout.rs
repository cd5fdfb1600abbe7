//! The Argo Rollout `shop/checkout` paused mid-canary: its stable and canary ReplicaSets,
//! the `success-rate` AnalysisTemplate and the background AnalysisRun measuring the
//! canary. With `canary_bad` the measurements fail and accumulate, but the rollout is
//! not aborted yet: that is the call the cockpit's advisory leaves to the engineer.

use serde_json::{Value, json};

use super::clock::{DAY, MINUTE};
use super::workloads::{self, Replicas};
use super::{Ctx, Sink, ids, versions};
use crate::lab::topology::Topology;

/// When the update started (the first canary pod, at setWeight 10).
pub(super) const CANARY_STARTED_AGO: i64 = 26 * MINUTE;
/// When the stable pods started.
pub(super) const STABLE_STARTED_AGO: i64 = 6 * DAY;
/// When the rollout reached its second weight and paused; the analysis starts there.
const PAUSED_AGO: i64 = CANARY_STARTED_AGO - 5 * MINUTE - 4;
/// The background analysis measures every 5 minutes.
const INTERVAL: i64 = 5 * MINUTE;
const REVISION: u32 = 7;
const GENERATION: u32 = 14;
const TEMPLATE: &str = "success-rate";

/// One of the rollout's ReplicaSets.
#[derive(Debug, Clone)]
pub(super) struct RsIds {
    pub hash: String,
    pub name: String,
    pub uid: String,
    pub image: &'static str,
    pub image_id: String,
    pub salt: u64,
    pub revision: u32,
}

#[derive(Debug, Clone)]
pub(super) struct RolloutIds {
    pub stable: RsIds,
    pub canary: RsIds,
}

impl RolloutIds {
    pub fn new(topo: &Topology, seed: u64) -> RolloutIds {
        let ro = &topo.rollout;
        let rs = |image: &'static str, revision: u32| {
            let h = ids::hash_parts(seed, &["ReplicaSet", &ro.namespace, &ro.name, image]);
            let hash = ids::template_hash(h);
            let name = format!("{}-{hash}", ro.name);
            RsIds {
                uid: ids::uid(ids::hash_parts(seed, &["ReplicaSet", &ro.namespace, &name])),
                image_id: versions::digest_ref(image),
                salt: ids::mix(h, 5),
                hash,
                name,
                image,
                revision,
            }
        };
        RolloutIds {
            stable: rs("ghcr.io/acme-shop/checkout:1.41.3", REVISION - 1),
            canary: rs("ghcr.io/acme-shop/checkout:1.42.0", REVISION),
        }
    }
}

/// The AnalysisRun's name: `<rollout>-<canary hash>-<revision>`, as Argo names
/// background runs.
pub(super) fn analysis_run_name(ctx: &Ctx) -> String {
    format!(
        "{}-{}-{REVISION}",
        ctx.topo.rollout.name, ctx.rollout.canary.hash
    )
}

/// The canary steps: each weight, with a pause between (the one after the second weight
/// is indefinite: promotion is manual).
fn steps(weights: &[u32]) -> (Vec<Value>, usize) {
    let mut steps = Vec::new();
    let mut paused_at = 0;
    for (i, w) in weights.iter().enumerate() {
        steps.push(json!({"setWeight": w}));
        if i + 1 < weights.len() {
            if i == 1 {
                paused_at = steps.len();
                steps.push(json!({"pause": {}}));
            } else {
                steps.push(json!({"pause": {"duration": if i == 0 { "5m" } else { "10m" }}}));
            }
        }
    }
    if paused_at == 0 {
        paused_at = steps.len().saturating_sub(1);
    }
    (steps, paused_at)
}

pub(super) fn objects(ctx: &Ctx, out: &mut dyn Sink) {
    let p = &ctx.placement;
    let down = p.count_on(ctx.down_workers());
    let stable = Replicas {
        desired: p.rollout - p.canary,
        ready: p.rollout - p.canary - down.stable,
    };
    let canary = Replicas {
        desired: p.canary,
        ready: p.canary - down.canary,
    };
    let all = Replicas {
        desired: p.rollout,
        ready: stable.ready + canary.ready,
    };
    out.push(rollout(ctx, all, canary));
    out.push(replica_set(
        ctx,
        &ctx.rollout.stable,
        stable,
        STABLE_STARTED_AGO + 10,
    ));
    out.push(replica_set(
        ctx,
        &ctx.rollout.canary,
        canary,
        CANARY_STARTED_AGO + 10,
    ));
    out.push(analysis_run(ctx));
    out.push(workloads::rollout_budget(ctx, all));
}

fn pod_template(ctx: &Ctx, image: &str, hash: Option<&str>) -> Value {
    let ro = &ctx.topo.rollout;
    let mut labels = json!({"app": ro.name});
    if let Some(h) = hash {
        labels["rollouts-pod-template-hash"] = json!(h);
    }
    json!({
        "metadata": {"labels": labels},
        "spec": {
            "containers": [{
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "name": ro.name,
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "512Mi"}},
            }],
        },
    })
}

fn rollout(ctx: &Ctx, all: Replicas, canary: Replicas) -> Value {
    let ro = &ctx.topo.rollout;
    let r = &ctx.rollout;
    let (steps, step_index) = steps(&ro.steps);
    let paused = ctx.clock.ago(PAUSED_AGO);
    let min_available = all.desired - all.desired / 4;
    let available = if all.ready >= min_available {
        json!({
            "lastTransitionTime": ctx.clock.ago(STABLE_STARTED_AGO - MINUTE),
            "lastUpdateTime": ctx.clock.ago(STABLE_STARTED_AGO - MINUTE),
            "message": "Rollout has minimum availability",
            "reason": "AvailableReason",
            "status": "True",
            "type": "Available",
        })
    } else {
        let since = ctx
            .clock
            .ago(super::ZONE_LOST_AGO - super::NODE_MONITOR_GRACE);
        json!({
            "lastTransitionTime": since,
            "lastUpdateTime": since,
            "message": "Rollout does not have minimum availability",
            "reason": "AvailableReason",
            "status": "False",
            "type": "Available",
        })
    };
    let condition = |kind: &str, status: &str, reason: &str, message: String| {
        json!({
            "lastTransitionTime": paused,
            "lastUpdateTime": paused,
            "message": message,
            "reason": reason,
            "status": status,
            "type": kind,
        })
    };
    let step_hash = ids::template_hash(ids::hash(
        ctx.seed,
        &serde_json::to_string(&steps).unwrap_or_default(),
    ));
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "annotations": {"rollout.argoproj.io/revision": REVISION.to_string()},
            "creationTimestamp": ctx.clock.ago(40 * DAY),
            "generation": GENERATION,
            "labels": {"app": ro.name},
            "name": ro.name,
            "namespace": ro.namespace,
            "uid": ctx.uid("Rollout", &ro.namespace, &ro.name),
        },
        "spec": {
            "replicas": all.desired,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app": ro.name}},
            "strategy": {"canary": {
                "analysis": {
                    "args": [{"name": "service-name", "value": canary_service_host(ctx)}],
                    "startingStep": 2,
                    "templates": [{"templateName": TEMPLATE}],
                },
                "canaryService": format!("{}-canary", ro.service),
                "stableService": ro.service,
                "steps": steps,
            }},
            "template": pod_template(ctx, r.canary.image, None),
        },
        "status": {
            "HPAReplicas": all.desired,
            "availableReplicas": all.ready,
            "blueGreen": {},
            "canary": {"currentBackgroundAnalysisRunStatus": {
                "name": analysis_run_name(ctx),
                "status": "Running",
            }},
            "conditions": [
                condition("Progressing", "True", "RolloutPaused", "Rollout is paused".into()),
                condition("Paused", "True", "RolloutPaused", "Rollout is paused".into()),
                available,
                condition("Healthy", "False", "RolloutHealthy", "Rollout is not healthy".into()),
                condition(
                    "Completed",
                    "False",
                    "RolloutNotCompleted",
                    format!("Rollout not completed, started update to revision {REVISION} ({})", r.canary.hash),
                ),
            ],
            "currentPodHash": r.canary.hash,
            "currentStepHash": step_hash,
            "currentStepIndex": step_index,
            "message": "CanaryPauseStep",
            "observedGeneration": GENERATION.to_string(),
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": paused}],
            "phase": "Paused",
            "readyReplicas": all.ready,
            "replicas": all.desired,
            "selector": format!("app={}", ro.name),
            "stableRS": r.stable.hash,
            "updatedReplicas": canary.desired,
        },
    })
}

fn canary_service_host(ctx: &Ctx) -> String {
    let ro = &ctx.topo.rollout;
    format!("{}-canary.{}.svc.cluster.local", ro.service, ro.namespace)
}

fn replica_set(ctx: &Ctx, rs: &RsIds, r: Replicas, age: i64) -> Value {
    let ro = &ctx.topo.rollout;
    let mut status = json!({"observedGeneration": 2, "replicas": r.desired});
    if r.desired > 0 {
        status["fullyLabeledReplicas"] = json!(r.desired);
    }
    if r.ready > 0 {
        status["availableReplicas"] = json!(r.ready);
        status["readyReplicas"] = json!(r.ready);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "annotations": {
                "rollout.argoproj.io/desired-replicas": ctx.placement.rollout.to_string(),
                "rollout.argoproj.io/revision": rs.revision.to_string(),
            },
            "creationTimestamp": ctx.clock.ago(age),
            "generation": 2,
            "labels": {"app": ro.name, "rollouts-pod-template-hash": rs.hash},
            "name": rs.name,
            "namespace": ro.namespace,
            "ownerReferences": super::pod::controller_ref("argoproj.io/v1alpha1", "Rollout", &ro.name, ctx.uid("Rollout", &ro.namespace, &ro.name)),
            "uid": rs.uid,
        },
        "spec": {
            "replicas": r.desired,
            "selector": {"matchLabels": {"app": ro.name, "rollouts-pod-template-hash": rs.hash}},
            "template": pod_template(ctx, rs.image, Some(&rs.hash)),
        },
        "status": status,
    })
}

fn metric() -> Value {
    json!({
        "failureLimit": 3,
        "interval": "5m",
        "name": TEMPLATE,
        "provider": {"prometheus": {
            "address": "http://prometheus-operated.monitoring.svc.cluster.local:9090",
            "query": "sum(irate(istio_requests_total{reporter=\"source\",destination_service=~\"{{args.service-name}}\",response_code!~\"5.*\"}[5m])) / sum(irate(istio_requests_total{reporter=\"source\",destination_service=~\"{{args.service-name}}\"}[5m]))",
            "timeout": 40,
        }},
        "successCondition": "result[0] >= 0.95",
    })
}

/// The `success-rate` AnalysisTemplate (never changes).
pub(super) fn analysis_template(ctx: &Ctx, out: &mut dyn Sink) {
    let ns = &ctx.topo.rollout.namespace;
    out.push(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {
            "creationTimestamp": ctx.clock.ago(40 * DAY + 30),
            "generation": 1,
            "name": TEMPLATE,
            "namespace": ns,
            "uid": ctx.uid("AnalysisTemplate", ns, TEMPLATE),
        },
        "spec": {"args": [{"name": "service-name"}], "metrics": [metric()]},
    }));
}

/// The success rate measured `k` intervals after the analysis started.
pub(super) fn success_rate(ctx: &Ctx, k: i64) -> f64 {
    let jitter = (ids::mix(ctx.seed, k as u64) % 1000) as f64 / 1000.0;
    let first_bad = 2;
    if ctx.faults.canary_bad && k >= first_bad {
        0.915 + 0.01 * jitter
    } else {
        0.994 + 0.005 * jitter
    }
}

fn analysis_run(ctx: &Ctx) -> Value {
    let ro = &ctx.topo.rollout;
    let r = &ctx.rollout;
    let name = analysis_run_name(ctx);
    let count = (PAUSED_AGO / INTERVAL + 1).max(1);
    let mut measurements = Vec::new();
    let (mut ok, mut failed) = (0, 0);
    for k in 0..count {
        let at = PAUSED_AGO - 2 - k * INTERVAL;
        let rate = success_rate(ctx, k);
        let good = rate >= 0.95;
        if good {
            ok += 1;
        } else {
            failed += 1;
        }
        measurements.push(json!({
            "finishedAt": ctx.clock.ago(at - 1),
            "phase": if good { "Successful" } else { "Failed" },
            "startedAt": ctx.clock.ago(at),
            "value": format!("[{rate}]"),
        }));
    }
    let mut result = json!({
        "count": count,
        "measurements": measurements,
        "metadata": {"ResolvedPrometheusQuery": metric()["provider"]["prometheus"]["query"]
            .as_str()
            .unwrap_or_default()
            .replace("{{args.service-name}}", &canary_service_host(ctx))},
        "name": TEMPLATE,
        "phase": "Running",
    });
    if ok > 0 {
        result["successful"] = json!(ok);
    }
    if failed > 0 {
        result["failed"] = json!(failed);
    }
    let spec_metric = metric();
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisRun",
        "metadata": {
            "annotations": {"rollout.argoproj.io/revision": REVISION.to_string()},
            "creationTimestamp": ctx.clock.ago(PAUSED_AGO),
            "generation": 2 + count,
            "labels": {"rollout-type": "Background", "rollouts-pod-template-hash": r.canary.hash},
            "name": name,
            "namespace": ro.namespace,
            "ownerReferences": super::pod::controller_ref("argoproj.io/v1alpha1", "Rollout", &ro.name, ctx.uid("Rollout", &ro.namespace, &ro.name)),
            "uid": ctx.uid("AnalysisRun", &ro.namespace, &name),
        },
        "spec": {
            "args": [{"name": "service-name", "value": canary_service_host(ctx)}],
            "metrics": [spec_metric],
        },
        "status": {
            "dryRunSummary": {},
            "metricResults": [result],
            "phase": "Running",
            "runSummary": {"count": 1},
            "startedAt": ctx.clock.ago(PAUSED_AGO),
        },
    })
}
