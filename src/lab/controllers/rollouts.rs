//! The Argo Rollouts controller, as far as the runbooks need it (argo-rollouts
//! `rollout/canary.go`, `utils/conditions`): an abort turns the rollout Degraded with the
//! `RolloutAborted` condition, back to step 0 and the canary scaled to nothing; a retry
//! starts the steps again; a promote (pause conditions cleared, or the step index moved)
//! runs the steps up to the next pause; `promoteFull` makes the canary stable. Steps
//! with a duration do not expire here: only promotions move the lab's canary.

use serde_json::{Value, json};

use super::Controller;
use crate::lab::kube::{EventType, Store, WatchEvent};

pub fn controller() -> Controller {
    Controller {
        name: "argo-rollouts",
        resources: &["rollouts.argoproj.io"],
        react,
    }
}

const API_VERSION: &str = "argoproj.io/v1alpha1";

fn react(store: &Store, event: &WatchEvent) {
    if event.event_type == EventType::Deleted {
        return;
    }
    let obj = event.object.value();
    let (Some(ns), Some(name)) = (
        obj.pointer("/metadata/namespace").and_then(Value::as_str),
        obj.pointer("/metadata/name").and_then(Value::as_str),
    ) else {
        return;
    };
    let now = super::now_rfc3339();
    let mut scaled = None;
    let _ = store.modify(API_VERSION, "Rollout", Some(ns), name, |ro| {
        if let Some((next, scale)) = reconcile(ro, &now) {
            *ro = next;
            scaled = Some(scale);
        }
    });
    if let Some(scale) = scaled {
        scale_replica_sets(store, ns, &scale);
    }
}

/// Which ReplicaSet (by pod-template hash) ends up with every replica, which with none.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub full: String,
    pub empty: String,
    pub replicas: u64,
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": now, "lastUpdateTime": now,
    })
}

/// Replaces the condition of `cond`'s type (or adds it).
fn set_condition(status: &mut Value, cond: Value) {
    let kind = cond["type"].clone();
    let list = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = list {
        list.retain(|c| c["type"] != kind);
        list.push(cond);
    }
}

fn remove(status: &mut Value, keys: &[&str]) {
    if let Some(s) = status.as_object_mut() {
        for k in keys {
            s.remove(*k);
        }
    }
}

/// The rollout after the controller's next sync, and what it scales; `None` when there
/// is nothing to do (so the controller's own writes settle).
pub fn reconcile(ro: &Value, now: &str) -> Option<(Value, Scale)> {
    let steps: Vec<Value> = ro
        .pointer("/spec/strategy/canary/steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut next = ro.clone();
    let status = next.get_mut("status")?;
    let current = s(ro, "/status/currentPodHash").to_string();
    let stable = s(ro, "/status/stableRS").to_string();
    let replicas = ro
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let revision = s(ro, "/metadata/annotations/rollout.argoproj.io~1revision").to_string();
    let aborted = ro.pointer("/status/abort") == Some(&Value::Bool(true));
    let marked_aborted = ro
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["reason"] == "RolloutAborted"));
    let to_stable = Scale {
        full: stable.clone(),
        empty: current.clone(),
        replicas,
    };
    let to_canary = Scale {
        full: current.clone(),
        empty: stable.clone(),
        replicas,
    };
    if aborted {
        if marked_aborted || current == stable {
            return None;
        }
        let message = format!("Rollout aborted update to revision {revision}");
        set_condition(
            status,
            condition("Progressing", "False", "RolloutAborted", &message, now),
        );
        set_condition(
            status,
            condition(
                "Paused",
                "False",
                "RolloutResumed",
                "Rollout is resumed",
                now,
            ),
        );
        remove(status, &["pauseConditions", "controllerPause"]);
        status["abortedAt"] = json!(now);
        status["phase"] = json!("Degraded");
        status["message"] = json!(format!("RolloutAborted: {message}"));
        status["currentStepIndex"] = json!(0);
        status["updatedReplicas"] = json!(0);
        return Some((next, to_stable));
    }
    if current == stable || current.is_empty() {
        return None;
    }
    if marked_aborted {
        // Retried: the steps start again from the first.
        set_condition(
            status,
            condition(
                "Progressing",
                "True",
                "RolloutRetry",
                "Retrying Rollout after abort",
                now,
            ),
        );
        remove(status, &["abortedAt"]);
        status["currentStepIndex"] = json!(0);
        status["phase"] = json!("Progressing");
        status["message"] = json!("more replicas need to be updated");
        advance(status, &steps, 0, now);
        return Some((next, partial(&to_canary)));
    }
    let paused = ro.pointer("/spec/paused") == Some(&Value::Bool(true));
    let has_pause = ro
        .pointer("/status/pauseConditions")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    if ro.pointer("/status/promoteFull") == Some(&Value::Bool(true)) {
        healthy(status, &current, steps.len(), now);
        return Some((next, to_canary));
    }
    if paused || has_pause {
        return None;
    }
    // A pause ended (promoted): run the steps from the current one to the next pause.
    let i = ro
        .pointer("/status/currentStepIndex")
        .and_then(Value::as_u64)
        .and_then(|i| usize::try_from(i).ok())
        .unwrap_or(0);
    let start = match steps.get(i) {
        Some(step) if step.get("pause").is_some() => i + 1,
        _ => i,
    };
    if advance(status, &steps, start, now) {
        Some((next, partial(&to_canary)))
    } else {
        healthy(status, &current, steps.len(), now);
        Some((next, to_canary))
    }
}

/// While the canary runs, the ReplicaSets keep what they have.
fn partial(s: &Scale) -> Scale {
    Scale {
        full: String::new(),
        empty: String::new(),
        replicas: s.replicas,
    }
}

/// Moves to the first pause step at or after `from`; `false` when there is none.
fn advance(status: &mut Value, steps: &[Value], from: usize, now: &str) -> bool {
    let Some(j) = (from..steps.len()).find(|j| steps[*j].get("pause").is_some()) else {
        return false;
    };
    status["currentStepIndex"] = json!(j);
    status["pauseConditions"] = json!([{"reason": "CanaryPauseStep", "startTime": now}]);
    status["phase"] = json!("Paused");
    status["message"] = json!("CanaryPauseStep");
    set_condition(
        status,
        condition("Paused", "True", "RolloutPaused", "Rollout is paused", now),
    );
    true
}

fn healthy(status: &mut Value, current: &str, steps: usize, now: &str) {
    remove(
        status,
        &[
            "pauseConditions",
            "controllerPause",
            "promoteFull",
            "message",
        ],
    );
    status["stableRS"] = json!(current);
    status["currentStepIndex"] = json!(steps);
    status["phase"] = json!("Healthy");
    if let Some(r) = status.get("replicas").cloned() {
        status["updatedReplicas"] = r.clone();
        status["availableReplicas"] = r.clone();
        status["readyReplicas"] = r;
    }
    set_condition(
        status,
        condition(
            "Paused",
            "False",
            "RolloutResumed",
            "Rollout is resumed",
            now,
        ),
    );
    set_condition(
        status,
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            "Rollout has successfully progressed",
            now,
        ),
    );
    set_condition(
        status,
        condition(
            "Completed",
            "True",
            "RolloutCompleted",
            "Rollout completed update",
            now,
        ),
    );
    set_condition(
        status,
        condition(
            "Healthy",
            "True",
            "RolloutHealthy",
            "Rollout is healthy",
            now,
        ),
    );
}

/// The ReplicaSet of `hash` gets every replica and the other none, as Argo scales them.
fn scale_replica_sets(store: &Store, ns: &str, scale: &Scale) {
    if scale.full.is_empty() && scale.empty.is_empty() {
        return;
    }
    for rs in store.list("apps/v1", "ReplicaSet") {
        if s(&rs, "/metadata/namespace") != ns {
            continue;
        }
        let hash = s(&rs, "/metadata/labels/rollouts-pod-template-hash");
        let n = if !scale.full.is_empty() && hash == scale.full {
            scale.replicas
        } else if !scale.empty.is_empty() && hash == scale.empty {
            0
        } else {
            continue;
        };
        let name = s(&rs, "/metadata/name").to_string();
        let _ = store.modify("apps/v1", "ReplicaSet", Some(ns), &name, |rs| {
            rs["spec"]["replicas"] = json!(n);
            rs["status"]["replicas"] = json!(n);
            for k in ["availableReplicas", "readyReplicas", "fullyLabeledReplicas"] {
                if n == 0 {
                    remove(&mut rs["status"], &[k]);
                } else {
                    rs["status"][k] = json!(n);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paused() -> Value {
        json!({
            "metadata": {"namespace": "shop", "name": "checkout",
                         "annotations": {"rollout.argoproj.io/revision": "7"}},
            "spec": {"replicas": 10, "strategy": {"canary": {"steps": [
                {"setWeight": 10}, {"pause": {"duration": "5m"}},
                {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "10m"}}
            ]}}},
            "status": {"currentStepIndex": 3, "pauseConditions": [{"reason": "CanaryPauseStep"}],
                       "currentPodHash": "new", "stableRS": "old", "phase": "Paused", "replicas": 10,
                       "conditions": []}
        })
    }

    #[test]
    fn abort_degrades_then_settles_and_retry_restarts_the_steps() {
        let mut ro = paused();
        ro["status"]["abort"] = json!(true);
        let (aborted, scale) = reconcile(&ro, "T").expect("abort reacts");
        assert_eq!(aborted["status"]["phase"], "Degraded");
        assert_eq!(
            aborted["status"]["message"],
            "RolloutAborted: Rollout aborted update to revision 7"
        );
        assert_eq!(aborted["status"]["currentStepIndex"], 0);
        assert!(aborted["status"].get("pauseConditions").is_none());
        assert_eq!((scale.full.as_str(), scale.empty.as_str()), ("old", "new"));
        assert!(reconcile(&aborted, "T").is_none(), "settled");
        let mut retried = aborted.clone();
        retried["status"]["abort"] = json!(false);
        let (r, _) = reconcile(&retried, "T").expect("retry reacts");
        assert_eq!(r["status"]["phase"], "Paused");
        assert_eq!(r["status"]["currentStepIndex"], 1);
        assert!(reconcile(&r, "T").is_none());
    }

    #[test]
    fn promote_runs_to_the_next_pause_and_full_promotion_makes_it_stable() {
        let mut ro = paused();
        ro["status"]["pauseConditions"] = Value::Null;
        let (p, _) = reconcile(&ro, "T").expect("promote reacts");
        assert_eq!(p["status"]["currentStepIndex"], 5);
        assert_eq!(p["status"]["phase"], "Paused");
        let mut full = paused();
        full["status"]["promoteFull"] = json!(true);
        let (h, scale) = reconcile(&full, "T").expect("full reacts");
        assert_eq!(h["status"]["phase"], "Healthy");
        assert_eq!(h["status"]["stableRS"], "new");
        assert_eq!(h["status"]["currentStepIndex"], 6);
        assert!(h["status"].get("promoteFull").is_none());
        assert_eq!(scale.full, "new");
        assert!(reconcile(&h, "T").is_none());
    }
}
