//! Controllers and their status: Deployments with their current ReplicaSets, DaemonSets
//! and PodDisruptionBudgets. Their counts come from the placement arithmetic, so a lost
//! zone shows in `readyReplicas`, `numberReady` and `disruptionsAllowed` as it would
//! once the node lifecycle controller marks the zone's pods NotReady.

use serde_json::{Map, Value, json};

use super::catalog::{APPS, Budget};
use super::clock::{DAY, MINUTE};
use super::daemons::DAEMONS;
use super::{Ctx, Sink, ZONE_LOST_AGO, gpu, ids, nodes};

/// Replica counts of one controller.
#[derive(Debug, Clone, Copy)]
pub(super) struct Replicas {
    pub desired: usize,
    pub ready: usize,
}

pub(super) fn all(ctx: &Ctx, out: &mut dyn Sink) {
    let down = ctx.placement.count_on(ctx.down_workers());
    for (i, app) in APPS.iter().enumerate() {
        let desired = ctx.placement.app_replicas(i);
        let r = Replicas {
            desired,
            ready: desired - down.apps[i],
        };
        let ids = &ctx.apps[i];
        let spec = Template {
            namespace: app.namespace,
            app: app.name,
            hash: &ids.hash,
            replica_set: &ids.replica_set,
            image: app.image,
            cpu: app.cpu,
            memory: app.memory,
            gpus: 0,
            deployed_ago: app.deployed_days_ago * DAY,
            revision: 3 + (ids::hash(ctx.seed, app.name) % 17) as u32,
        };
        out.push(deployment(ctx, &spec, r));
        out.push(replica_set(ctx, &spec, r));
        out.push(budget(
            ctx,
            app.namespace,
            app.name,
            app.budget,
            r,
            app.deployed_days_ago * DAY,
        ));
    }

    let g = gpu::ids(ctx);
    let gpus = ctx.topo.gpu_nodes.first().map_or(8, |n| n.gpus);
    let lost = ctx
        .topo
        .gpu_nodes
        .iter()
        .filter(|n| ctx.faults.zone_is_down(&n.zone))
        .count();
    let r = Replicas {
        desired: ctx.topo.gpu_nodes.len(),
        ready: ctx.topo.gpu_nodes.len() - lost,
    };
    let spec = Template {
        namespace: gpu::NAMESPACE,
        app: gpu::APP,
        hash: &g.hash,
        replica_set: &g.replica_set,
        image: gpu::IMAGE,
        cpu: "32",
        memory: "192Gi",
        gpus: gpu::request(gpus),
        deployed_ago: 11 * DAY,
        revision: 2,
    };
    out.push(deployment(ctx, &spec, r));
    out.push(replica_set(ctx, &spec, r));
    out.push(budget(
        ctx,
        gpu::NAMESPACE,
        gpu::APP,
        Budget::MinAvailable("1"),
        r,
        11 * DAY,
    ));

    daemon_sets(ctx, out);
}

/// Rollout pods' disruption budget; the rollout module owns the Rollout itself.
pub(super) fn rollout_budget(ctx: &Ctx, r: Replicas) -> Value {
    let ro = &ctx.topo.rollout;
    budget(
        ctx,
        &ro.namespace,
        &ro.name,
        Budget::MinAvailable("75%"),
        r,
        40 * DAY,
    )
}

/// What a Deployment and its ReplicaSet share.
struct Template<'a> {
    namespace: &'a str,
    app: &'a str,
    hash: &'a str,
    replica_set: &'a str,
    image: &'a str,
    cpu: &'a str,
    memory: &'a str,
    gpus: u32,
    deployed_ago: i64,
    revision: u32,
}

impl Template<'_> {
    fn pod_template(&self, with_hash: bool) -> Value {
        let mut labels = json!({"app": self.app});
        if with_hash {
            labels["pod-template-hash"] = json!(self.hash);
        }
        let mut requests = json!({"cpu": self.cpu, "memory": self.memory});
        let mut limits = json!({});
        if self.gpus > 0 {
            requests["nvidia.com/gpu"] = json!(self.gpus.to_string());
            limits["nvidia.com/gpu"] = json!(self.gpus.to_string());
        }
        json!({
            "metadata": {"labels": labels},
            "spec": {
                "containers": [{
                    "image": self.image,
                    "imagePullPolicy": "IfNotPresent",
                    "name": if self.gpus > 0 { "triton" } else { self.app },
                    "resources": {"limits": limits, "requests": requests},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                }],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
            },
        })
    }
}

fn deployment(ctx: &Ctx, t: &Template, r: Replicas) -> Value {
    let generation = t.revision + 1;
    // RollingUpdate's maxUnavailable 25 %, rounded down.
    let min_available = r.desired - r.desired / 4;
    let available = r.ready >= min_available;
    let unavailable_since = ctx.clock.ago(ZONE_LOST_AGO - super::NODE_MONITOR_GRACE);
    let mut status = json!({
        "conditions": [
            if available {
                json!({
                    "lastTransitionTime": ctx.clock.ago(t.deployed_ago - MINUTE),
                    "lastUpdateTime": ctx.clock.ago(t.deployed_ago - MINUTE),
                    "message": "Deployment has minimum availability.",
                    "reason": "MinimumReplicasAvailable",
                    "status": "True",
                    "type": "Available",
                })
            } else {
                json!({
                    "lastTransitionTime": unavailable_since,
                    "lastUpdateTime": unavailable_since,
                    "message": "Deployment does not have minimum availability.",
                    "reason": "MinimumReplicasUnavailable",
                    "status": "False",
                    "type": "Available",
                })
            },
            {
                "lastTransitionTime": ctx.clock.ago(t.deployed_ago + 20),
                "lastUpdateTime": ctx.clock.ago(t.deployed_ago - 2 * MINUTE),
                "message": format!("ReplicaSet \"{}\" has successfully progressed.", t.replica_set),
                "reason": "NewReplicaSetAvailable",
                "status": "True",
                "type": "Progressing",
            },
        ],
        "observedGeneration": generation,
    });
    put_counts(
        &mut status,
        &[
            ("availableReplicas", r.ready),
            ("readyReplicas", r.ready),
            ("replicas", r.desired),
            ("unavailableReplicas", r.desired - r.ready),
            ("updatedReplicas", r.desired),
        ],
    );
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "annotations": {"deployment.kubernetes.io/revision": t.revision.to_string()},
            "creationTimestamp": ctx.clock.ago(t.deployed_ago + 200 * DAY),
            "generation": generation,
            "labels": {"app": t.app},
            "name": t.app,
            "namespace": t.namespace,
            "uid": ctx.uid("Deployment", t.namespace, t.app),
        },
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": r.desired,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": t.app}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
            "template": t.pod_template(false),
        },
        "status": status,
    })
}

fn replica_set(ctx: &Ctx, t: &Template, r: Replicas) -> Value {
    let mut status = json!({"observedGeneration": 1, "replicas": r.desired});
    put_counts(
        &mut status,
        &[
            ("availableReplicas", r.ready),
            ("fullyLabeledReplicas", r.desired),
            ("readyReplicas", r.ready),
        ],
    );
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": r.desired.to_string(),
                "deployment.kubernetes.io/max-replicas": (r.desired + r.desired.div_ceil(4)).to_string(),
                "deployment.kubernetes.io/revision": t.revision.to_string(),
            },
            "creationTimestamp": ctx.clock.ago(t.deployed_ago + 5),
            "generation": 1,
            "labels": {"app": t.app, "pod-template-hash": t.hash},
            "name": t.replica_set,
            "namespace": t.namespace,
            "ownerReferences": super::pod::controller_ref("apps/v1", "Deployment", t.app, ctx.uid("Deployment", t.namespace, t.app)),
            "uid": ctx.uid("ReplicaSet", t.namespace, t.replica_set),
        },
        "spec": {
            "replicas": r.desired,
            "selector": {"matchLabels": {"app": t.app, "pod-template-hash": t.hash}},
            "template": t.pod_template(true),
        },
        "status": status,
    })
}

/// A PodDisruptionBudget over `app=<app>` with the disruption controller's arithmetic:
/// percentages rounded up, `disruptionsAllowed = currentHealthy - desiredHealthy`.
fn budget(ctx: &Ctx, namespace: &str, app: &str, policy: Budget, r: Replicas, age: i64) -> Value {
    let expected = r.desired;
    let scaled = |v: &str| -> (Value, usize) {
        match v.strip_suffix('%') {
            Some(pct) => {
                let pct: usize = pct.parse().unwrap_or(0);
                (json!(v), (expected * pct).div_ceil(100))
            }
            None => {
                let n: usize = v.parse().unwrap_or(0);
                (json!(n), n)
            }
        }
    };
    let (key, value, desired) = match policy {
        Budget::MinAvailable(v) => {
            let (value, n) = scaled(v);
            ("minAvailable", value, n)
        }
        Budget::MaxUnavailable(v) => {
            let (value, n) = scaled(v);
            ("maxUnavailable", value, expected.saturating_sub(n))
        }
    };
    let allowed = r.ready.saturating_sub(desired);
    let mut spec = json!({"selector": {"matchLabels": {"app": app}}});
    spec[key] = value;
    // The condition flips when the zone's pods went NotReady, if that changed it.
    let healthy_allowed = expected.saturating_sub(desired) > 0;
    let since = if (allowed > 0) == healthy_allowed {
        ctx.clock.ago(age - 3 * MINUTE)
    } else {
        ctx.clock.ago(ZONE_LOST_AGO - super::NODE_MONITOR_GRACE)
    };
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "creationTimestamp": ctx.clock.ago(age),
            "generation": 1,
            "labels": {"app": app},
            "name": app,
            "namespace": namespace,
            "uid": ctx.uid("PodDisruptionBudget", namespace, app),
        },
        "spec": spec,
        "status": {
            "conditions": [{
                "lastTransitionTime": since,
                "message": "",
                "observedGeneration": 1,
                "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
                "status": if allowed > 0 { "True" } else { "False" },
                "type": "DisruptionAllowed",
            }],
            "currentHealthy": r.ready,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "expectedPods": expected,
            "observedGeneration": 1,
        },
    })
}

fn daemon_sets(ctx: &Ctx, out: &mut dyn Sink) {
    let nodes = nodes::all(ctx);
    for d in DAEMONS {
        let on: Vec<_> = nodes.iter().filter(|n| d.runs_on(n)).collect();
        let desired = on.len();
        let ready = on
            .iter()
            .filter(|n| !ctx.faults.zone_is_down(n.zone))
            .count();
        let mut selector = Map::new();
        selector.insert(d.selector.0.to_string(), json!(d.selector.1));
        let mut status = json!({
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "observedGeneration": d.generation,
            "updatedNumberScheduled": desired,
        });
        put_counts(
            &mut status,
            &[
                ("numberAvailable", ready),
                ("numberUnavailable", desired - ready),
            ],
        );
        let mut spec = json!({
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "containers": [{"image": d.image, "imagePullPolicy": "IfNotPresent", "name": d.container}],
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": d.name,
                    "tolerations": [{"operator": "Exists"}],
                },
            },
            "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"},
        });
        if d.gpu_only {
            spec["template"]["spec"]["nodeSelector"] = json!({"nvidia.com/gpu.present": "true"});
        }
        out.push(json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {
                "annotations": {"deprecated.daemonset.template.generation": d.generation.to_string()},
                "creationTimestamp": ctx.clock.ago(412 * DAY - 600),
                "generation": d.generation,
                "labels": selector,
                "name": d.name,
                "namespace": d.namespace,
                "uid": ctx.uid("DaemonSet", d.namespace, d.name),
            },
            "spec": spec,
            "status": status,
        }));
    }
}

/// Sets integer status fields, leaving out zeros as the API's `omitempty` does.
fn put_counts(status: &mut Value, counts: &[(&str, usize)]) {
    for &(key, n) in counts {
        if n > 0 {
            status[key] = json!(n);
        }
    }
}
