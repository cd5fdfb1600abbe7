//! Argo Rollouts runbooks: abort, retry, promote, promote --full and undo, sending
//! exactly what `kubectl argo rollouts` sends (argoproj/argo-rollouts
//! `pkg/kubectl-argo-rollouts/cmd/{abort,retry,promote,undo}`): merge patches of the
//! `status` subresource with the main resource as the fallback on 404, the status patch
//! before the spec patch, and a JSON patch of `spec.template` for undo. Plans are built
//! from the rollout as just read (and, for undo, its ReplicaSets), so the preview shows
//! the very bodies that will be sent.

use std::time::Duration;

use serde_json::{Value, json};

use super::exec_cr::{FieldWant, Resource, resource};
use super::{Operation, Precondition, Risk, Runbook, Step, Verification};

/// The annotation holding a Rollout's and a ReplicaSet's revision.
pub const REVISION: &str = "rollout.argoproj.io/revision";
/// The label Argo adds to a ReplicaSet's pod template.
pub const HASH_LABEL: &str = "rollouts-pod-template-hash";

pub fn rollout_resource() -> Resource {
    resource("argoproj.io", "v1alpha1", "Rollout", "rollouts")
}

pub fn replica_set_resource() -> Resource {
    resource("apps", "v1", "ReplicaSet", "replicasets")
}

/// What the runbooks read of a Rollout.
struct Seen<'a> {
    obj: &'a Value,
    namespace: String,
    name: String,
}

impl<'a> Seen<'a> {
    fn new(obj: &'a Value) -> Self {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
        Seen {
            obj,
            namespace: s("/metadata/namespace").to_string(),
            name: s("/metadata/name").to_string(),
        }
    }

    fn str(&self, p: &str) -> Option<&'a str> {
        self.obj.pointer(p).and_then(Value::as_str)
    }

    fn who(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn aborted(&self) -> bool {
        self.obj.pointer("/status/abort") == Some(&Value::Bool(true))
    }

    fn phase(&self) -> String {
        self.str("/status/phase").unwrap_or("unknown").to_string()
    }

    fn steps(&self) -> Option<usize> {
        self.obj
            .pointer("/spec/strategy/canary/steps")
            .and_then(Value::as_array)
            .map(Vec::len)
    }

    fn is_canary(&self) -> bool {
        self.obj.pointer("/spec/strategy/canary").is_some()
    }

    /// `GetCurrentCanaryStep`'s index: none without canary steps, 0 when unset.
    fn step_index(&self) -> Option<usize> {
        let n = self.steps().filter(|n| *n > 0)?;
        let i = self
            .obj
            .pointer("/status/currentStepIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Some(usize::try_from(i).unwrap_or(n).min(n))
    }

    fn pause_conditions(&self) -> usize {
        self.obj
            .pointer("/status/pauseConditions")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }

    fn spec_paused(&self) -> bool {
        self.obj.pointer("/spec/paused") == Some(&Value::Bool(true))
    }

    fn inconclusive(&self) -> bool {
        self.is_canary()
            && self.str("/status/canary/currentStepAnalysisRunStatus/status")
                == Some("Inconclusive")
    }

    fn controller_pause(&self) -> bool {
        self.obj.pointer("/status/controllerPause") == Some(&Value::Bool(true))
    }

    fn current_hash(&self) -> &str {
        self.str("/status/currentPodHash").unwrap_or("")
    }

    fn stable_hash(&self) -> &str {
        self.str("/status/stableRS").unwrap_or("")
    }

    fn summary(&self) -> String {
        let step = match (self.step_index(), self.steps()) {
            (Some(i), Some(n)) => format!(", step {i}/{n}"),
            _ => String::new(),
        };
        format!(
            "phase {}{step}, abort {}, pauseConditions {}, currentPodHash {}, stableRS {}",
            self.phase(),
            self.aborted(),
            self.pause_conditions(),
            or_none(self.current_hash()),
            or_none(self.stable_hash())
        )
    }

    fn fields(&self, want: Vec<FieldWant>) -> Verification {
        Verification::KubeFields {
            resource: rollout_resource(),
            namespace: Some(self.namespace.clone()),
            name: self.name.clone(),
            want,
            fail_if: Vec::new(),
        }
    }

    fn status_patch(
        &self,
        status: Value,
        spec: Option<Value>,
        fallback: Option<Value>,
    ) -> Operation {
        Operation::KubeStatusMergePatch {
            resource: rollout_resource(),
            namespace: Some(self.namespace.clone()),
            name: self.name.clone(),
            status_patch: status.to_string(),
            spec_patch: spec.map(|s| s.to_string()),
            fallback_patch: fallback.map(|f| f.to_string()),
        }
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "none" } else { s }
}

fn precondition(description: &str, met: bool, evidence: String) -> Precondition {
    Precondition {
        description: description.into(),
        met,
        evidence,
    }
}

const ON_FAILURE: &str = "check the rollout with `kubectl argo rollouts get rollout -n NS NAME`; a 403 needs `patch` on `rollouts/status` (and `rollouts`) for your user";

/// `kubectl argo rollouts abort`: `{"status":{"abort":true}}` on `rollouts/N/status`,
/// the same on the rollout on 404. The canary's traffic goes back to stable.
pub fn abort(cluster: &str, rollout: &Value) -> Runbook {
    let ro = Seen::new(rollout);
    let patch = json!({"status": {"abort": true}});
    Runbook {
        id: "rollout.abort".into(),
        title: format!("Abort the canary of Rollout {}", ro.who()),
        cluster: cluster.into(),
        summary: "Stops the update: Argo scales the canary down and sends all traffic back to the stable ReplicaSet. The rollout stays Degraded (RolloutAborted) with the new template in spec until you retry or undo.".into(),
        preconditions: vec![
            precondition(
                "The rollout is not already aborted",
                !ro.aborted(),
                ro.summary(),
            ),
            precondition(
                "An update is in progress (currentPodHash differs from stableRS)",
                ro.current_hash() != ro.stable_hash(),
                format!(
                    "currentPodHash {}, stableRS {}",
                    or_none(ro.current_hash()),
                    or_none(ro.stable_hash())
                ),
            ),
        ],
        steps: vec![Step {
            title: format!("Abort {}", ro.who()),
            explanation: "The abort flag is status, so it goes to the status subresource, as `kubectl argo rollouts abort` sends it.".into(),
            risk: Risk::Disruptive,
            operation: ro.status_patch(patch.clone(), None, Some(patch)),
            verification: ro.fields(vec![
                FieldWant::new("/status/abort", [json!(true)]),
                FieldWant::new("/status/phase", [json!("Degraded")]),
            ]),
            timeout: Duration::from_secs(60),
            on_failure: ON_FAILURE.into(),
            skippable: false,
        }],
    }
}

/// `kubectl argo rollouts retry rollout`: `{"status":{"abort":false}}`, same pattern.
pub fn retry(cluster: &str, rollout: &Value) -> Runbook {
    let ro = Seen::new(rollout);
    let patch = json!({"status": {"abort": false}});
    Runbook {
        id: "rollout.retry".into(),
        title: format!("Retry the aborted update of Rollout {}", ro.who()),
        cluster: cluster.into(),
        summary: "Clears the abort: Argo starts the canary steps of the current template again from the first step.".into(),
        preconditions: vec![precondition(
            "The rollout is aborted",
            ro.aborted(),
            ro.summary(),
        )],
        steps: vec![Step {
            title: format!("Retry {}", ro.who()),
            explanation: "The abort flag goes back to false on the status subresource, as `kubectl argo rollouts retry rollout` sends it.".into(),
            risk: Risk::Disruptive,
            operation: ro.status_patch(patch.clone(), None, Some(patch)),
            verification: ro.fields(vec![
                FieldWant::new("/status/abort", [json!(false), Value::Null]),
                FieldWant::new(
                    "/status/phase",
                    [json!("Progressing"), json!("Paused"), json!("Healthy")],
                ),
            ]),
            timeout: Duration::from_secs(120),
            on_failure: ON_FAILURE.into(),
            skippable: false,
        }],
    }
}

/// The spec, status and 404-fallback patches of `kubectl argo rollouts promote`
/// (`getPatches`), in that order. `--full` also unpauses a manually paused rollout, as
/// the plugin does since argo-rollouts#4412 (2025): `promoteFull` alone left a rollout
/// paused with `kubectl argo rollouts pause` stuck at its last step.
pub fn promote_patches(
    rollout: &Value,
    full: bool,
) -> (Option<Value>, Option<Value>, Option<Value>) {
    let ro = Seen::new(rollout);
    if full {
        let status = (ro.current_hash() != ro.stable_hash())
            .then(|| json!({"status": {"promoteFull": true}}));
        let spec = ro.spec_paused().then(|| json!({"spec": {"paused": false}}));
        // Without the status subresource, one patch carries both.
        let unified = match (&spec, &status) {
            (Some(_), Some(_)) => {
                Some(json!({"spec": {"paused": false}, "status": {"promoteFull": true}}))
            }
            _ => None,
        };
        return (spec, status, unified);
    }
    let mut unified = json!({"spec": {"paused": false}, "status": {"pauseConditions": null}});
    let spec = ro.spec_paused().then(|| json!({"spec": {"paused": false}}));
    let steps = ro.steps().unwrap_or(0);
    let next = |i: usize| if i < steps { i + 1 } else { i };
    let mut status = None;
    if ro.inconclusive() && ro.pause_conditions() > 0 && ro.controller_pause() {
        if let Some(i) = ro.step_index() {
            status = Some(json!({"status": {
                "pauseConditions": null,
                "controllerPause": false,
                "currentStepIndex": next(i),
            }}));
        }
    } else if ro.pause_conditions() > 0 {
        status = Some(json!({"status": {"pauseConditions": null}}));
    } else if ro.is_canary()
        && let Some(i) = ro.step_index()
    {
        status = Some(json!({"status": {"pauseConditions": null, "currentStepIndex": next(i)}}));
        unified = json!({"spec": {"paused": false}, "status": {"pauseConditions": null, "currentStepIndex": next(i)}});
    }
    (spec, status, Some(unified))
}

/// `kubectl argo rollouts promote [--full]`, from the rollout as read now.
pub fn promote(cluster: &str, rollout: &Value, full: bool) -> Runbook {
    let ro = Seen::new(rollout);
    let (spec, status, unified) = promote_patches(rollout, full);
    let steps = ro.steps().unwrap_or(0);
    let main_patch = |patch: &Value| Operation::KubeMergePatch {
        resource: rollout_resource(),
        namespace: Some(ro.namespace.clone()),
        name: ro.name.clone(),
        patch: patch.to_string(),
    };
    let (operation, something) = match (&status, &spec) {
        (Some(st), _) => (ro.status_patch(st.clone(), spec.clone(), unified), true),
        (None, Some(sp)) => (main_patch(sp), true),
        (None, None) => (
            Operation::Nothing {
                reason: if full {
                    "the rollout is fully promoted already (currentPodHash = stableRS)".into()
                } else {
                    "the rollout is neither paused nor at a canary step".into()
                },
            },
            false,
        ),
    };
    let mut want = Vec::new();
    if spec.is_some() {
        want.push(FieldWant::new("/spec/paused", [json!(false), Value::Null]));
    }
    let (title, id, summary, risk, verification, timeout) = if full {
        want.push(FieldWant::new(
            "/status/stableRS",
            [json!(ro.current_hash())],
        ));
        want.push(FieldWant::new("/status/phase", [json!("Healthy")]));
        (
            format!("Fully promote Rollout {}", ro.who()),
            "rollout.promote-full",
            "Skips every remaining step, pause and analysis (and unpauses a rollout paused by hand): the new version takes all traffic and becomes stable. Use it only when the canary is known good.",
            Risk::Destructive,
            want,
            Duration::from_secs(600),
        )
    } else {
        if let Some(i) = ro.step_index().filter(|i| *i < steps) {
            want.push(FieldWant::new(
                "/status/currentStepIndex",
                (i + 1..=steps).map(|n| json!(n)),
            ));
        } else if status.is_some() {
            want.push(FieldWant::new(
                "/status/pauseConditions",
                [Value::Null, json!([])],
            ));
        }
        (
            format!("Promote Rollout {} to its next step", ro.who()),
            "rollout.promote",
            "Ends the current pause (or analysis) so the canary moves on to its next step.",
            Risk::Disruptive,
            want,
            Duration::from_secs(120),
        )
    };
    Runbook {
        id: id.into(),
        title,
        cluster: cluster.into(),
        summary: summary.into(),
        preconditions: vec![
            precondition(
                "The rollout is not aborted (retry or undo it instead)",
                !ro.aborted(),
                ro.summary(),
            ),
            precondition(
                if full {
                    "An update is in progress (currentPodHash differs from stableRS)"
                } else {
                    "The rollout is paused or mid-canary"
                },
                something,
                ro.summary(),
            ),
        ],
        steps: vec![Step {
            title: if full {
                format!("Promote {} fully", ro.who())
            } else {
                format!("Promote {}", ro.who())
            },
            explanation: "The status patch goes first (status subresource), then the spec patch, as `kubectl argo rollouts promote` sends them; a CRD without the status subresource gets one combined patch.".into(),
            risk,
            operation,
            verification: if verification.is_empty() {
                Verification::None
            } else {
                ro.fields(verification)
            },
            timeout,
            on_failure: ON_FAILURE.into(),
            skippable: false,
        }],
    }
}

/// A ReplicaSet's revision annotation.
fn revision_of(obj: &Value) -> Option<u64> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(REVISION))
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
}

/// The ReplicaSet `undo` goes back to: revision `to`, else the newest one below the
/// rollout's current revision.
pub fn undo_target<'a>(
    rollout: &Value,
    replica_sets: &'a [Value],
    to: Option<u64>,
) -> Result<(u64, &'a Value), String> {
    let current = revision_of(rollout)
        .or_else(|| replica_sets.iter().filter_map(revision_of).max())
        .unwrap_or(0);
    let mut owned: Vec<(u64, &Value)> = replica_sets
        .iter()
        .filter_map(|rs| Some((revision_of(rs)?, rs)))
        .collect();
    owned.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
    match to {
        Some(n) => owned
            .into_iter()
            .find(|(r, _)| *r == n)
            .ok_or_else(|| format!("no ReplicaSet of revision {n}")),
        None => owned
            .into_iter()
            .find(|(r, _)| *r < current)
            .ok_or_else(|| format!("no ReplicaSet of a revision before {current}")),
    }
}

/// The ReplicaSet's pod template without Argo's hash label.
fn template_without_hash(rs: &Value) -> Value {
    let mut t = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    t
}

/// `kubectl argo rollouts undo [--to-revision N]`: the rollout's template goes back to
/// the chosen ReplicaSet's (hash label removed), as a JSON patch.
pub fn undo(cluster: &str, rollout: &Value, replica_sets: &[Value], to: Option<u64>) -> Runbook {
    let ro = Seen::new(rollout);
    let target = undo_target(rollout, replica_sets, to);
    let workload_ref = rollout.pointer("/spec/workloadRef").is_some();
    let (operation, verification, evidence, found, differs) = match &target {
        Ok((revision, rs)) => {
            let template = template_without_hash(rs);
            let differs = rollout.pointer("/spec/template") != Some(&template);
            let patch = json!([{"op": "replace", "path": "/spec/template", "value": template}]);
            let op = if differs {
                Operation::KubeJsonPatch {
                    resource: rollout_resource(),
                    namespace: Some(ro.namespace.clone()),
                    name: ro.name.clone(),
                    patch: patch.to_string(),
                }
            } else {
                Operation::Nothing {
                    reason: format!("the template already is revision {revision}'s"),
                }
            };
            let rs_name = rs
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            (
                op,
                ro.fields(vec![FieldWant::new("/spec/template", [template])]),
                format!("ReplicaSet {rs_name} holds revision {revision}"),
                true,
                differs,
            )
        }
        Err(why) => (
            Operation::Nothing {
                reason: why.clone(),
            },
            Verification::None,
            why.clone(),
            false,
            false,
        ),
    };
    let revision = target.as_ref().map(|(r, _)| *r).unwrap_or(0);
    Runbook {
        id: "rollout.undo".into(),
        title: format!("Roll Rollout {} back to revision {revision}", ro.who()),
        cluster: cluster.into(),
        summary: "Puts the previous revision's pod template back into the rollout; Argo then rolls it out as a new revision (back to the stable pods at once when they are that template).".into(),
        preconditions: vec![
            precondition("A ReplicaSet of the target revision exists", found, evidence),
            precondition(
                "The rollout's template differs from the target's",
                differs,
                ro.summary(),
            ),
            precondition(
                "The rollout has its own template (no spec.workloadRef)",
                !workload_ref,
                if workload_ref {
                    "spec.workloadRef is set: undo the referenced workload with kubectl".into()
                } else {
                    "spec.template is inline".into()
                },
            ),
        ],
        steps: vec![Step {
            title: format!("Replace the template of {} with revision {revision}'s", ro.who()),
            explanation: "A JSON patch replaces spec.template with the ReplicaSet's template minus the rollouts-pod-template-hash label, as `kubectl argo rollouts undo` sends it.".into(),
            risk: Risk::Disruptive,
            operation,
            verification,
            timeout: Duration::from_secs(60),
            on_failure: ON_FAILURE.into(),
            skippable: false,
        }],
    }
}

/// `NS/NAME` as the CLI takes it (`NAME` alone is in `default`).
pub fn split_target(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.into(), name.into()))
        }
        None if !text.is_empty() => Ok(("default".into(), text.into())),
        _ => Err(format!("{text:?}: expected NAMESPACE/NAME")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paused_at(i: u64) -> Value {
        json!({
            "metadata": {"namespace": "shop", "name": "checkout"},
            "spec": {"strategy": {"canary": {"steps": [
                {"setWeight": 10}, {"pause": {"duration": "5m"}},
                {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}
            ]}}},
            "status": {"currentStepIndex": i, "pauseConditions": [{"reason": "CanaryPauseStep"}],
                       "currentPodHash": "new", "stableRS": "old", "phase": "Paused"}
        })
    }

    #[test]
    fn promote_clears_pause_conditions_or_moves_the_step_never_both() {
        let (spec, status, unified) = promote_patches(&paused_at(3), false);
        assert_eq!(spec, None);
        assert_eq!(status, Some(json!({"status": {"pauseConditions": null}})));
        assert_eq!(
            unified,
            Some(json!({"spec": {"paused": false}, "status": {"pauseConditions": null}}))
        );
        let mut running = paused_at(2);
        running["status"]["pauseConditions"] = Value::Null;
        running["spec"]["paused"] = json!(true);
        let (spec, status, _) = promote_patches(&running, false);
        assert_eq!(spec, Some(json!({"spec": {"paused": false}})));
        assert_eq!(
            status,
            Some(json!({"status": {"pauseConditions": null, "currentStepIndex": 3}}))
        );
        let mut inconclusive = paused_at(3);
        inconclusive["status"]["controllerPause"] = json!(true);
        inconclusive["status"]["canary"] =
            json!({"currentStepAnalysisRunStatus": {"status": "Inconclusive"}});
        let (_, status, _) = promote_patches(&inconclusive, false);
        assert_eq!(
            status,
            Some(
                json!({"status": {"pauseConditions": null, "controllerPause": false, "currentStepIndex": 4}})
            )
        );
    }

    #[test]
    fn full_promotion_only_when_an_update_is_in_progress() {
        let (spec, status, fallback) = promote_patches(&paused_at(3), true);
        assert_eq!(status, Some(json!({"status": {"promoteFull": true}})));
        assert_eq!(spec, None, "not paused by hand");
        assert_eq!(fallback, None);
        // Paused by hand (`kubectl argo rollouts pause`): unpaused too.
        let mut by_hand = paused_at(3);
        by_hand["spec"]["paused"] = json!(true);
        let (spec, status, fallback) = promote_patches(&by_hand, true);
        assert_eq!(spec, Some(json!({"spec": {"paused": false}})));
        assert_eq!(status, Some(json!({"status": {"promoteFull": true}})));
        assert_eq!(
            fallback,
            Some(json!({"spec": {"paused": false}, "status": {"promoteFull": true}}))
        );
        let mut done = paused_at(5);
        done["status"]["stableRS"] = json!("new");
        assert_eq!(promote_patches(&done, true), (None, None, None));
        assert!(!promote("c", &done, true).unmet().is_empty());
    }

    #[test]
    fn undo_picks_the_revision_before_the_current_one() {
        let ro =
            json!({"metadata": {"annotations": {REVISION: "7"}}, "spec": {"template": {"a": 1}}});
        let rs = |r: u64| {
            json!({"metadata": {"name": format!("rs-{r}"), "annotations": {REVISION: r.to_string()}},
                                  "spec": {"template": {"metadata": {"labels": {"app": "x", HASH_LABEL: "h"}}}}})
        };
        let sets = [rs(5), rs(7), rs(6)];
        assert_eq!(undo_target(&ro, &sets, None).map(|(r, _)| r), Ok(6));
        assert_eq!(undo_target(&ro, &sets, Some(5)).map(|(r, _)| r), Ok(5));
        assert!(undo_target(&ro, &sets, Some(9)).is_err());
        assert_eq!(
            template_without_hash(&sets[0]),
            json!({"metadata": {"labels": {"app": "x"}}})
        );
        assert_eq!(
            split_target("shop/checkout"),
            Ok(("shop".into(), "checkout".into()))
        );
        assert!(split_target("a/b/c").is_err());
    }
}
