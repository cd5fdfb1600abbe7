use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::*;
use crate::lab::topology::Scenario;
use crate::model::ceph::fields::lab_objects;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_773_135_000)
}

struct Lab {
    rollouts: Vec<DynamicObject>,
    runs: Vec<DynamicObject>,
    replica_sets: Vec<DynamicObject>,
}

fn lab_objs(scenario: Scenario) -> Lab {
    Lab {
        rollouts: lab_objects(scenario, "Rollout", now()),
        runs: lab_objects(scenario, "AnalysisRun", now()),
        replica_sets: lab_objects(scenario, "ReplicaSet", now())
            .into_iter()
            .filter(|rs| label(rs, HASH_LABEL).is_some())
            .collect(),
    }
}

fn lab(scenario: Scenario) -> RolloutsView {
    let l = lab_objs(scenario);
    derive_with(
        &RolloutSources {
            rollouts: &l.rollouts,
            analysis_runs: &l.runs,
            replica_sets: &l.replica_sets,
            error_rates: &[],
        },
        now(),
    )
}

fn object(v: serde_json::Value) -> DynamicObject {
    serde_json::from_value(v).expect("a DynamicObject")
}

#[test]
fn healthy_lab_is_paused_mid_canary_with_its_background_analysis() {
    let v = lab(Scenario::Healthy);
    assert_eq!(v.health(), Health::Ok, "{:?}", v.findings);
    let r = &v.rollouts[0];
    assert_eq!(
        (r.namespace.as_str(), r.name.as_str()),
        ("shop", "checkout")
    );
    assert_eq!(r.phase, "Paused");
    assert_eq!(r.pause_reasons, ["CanaryPauseStep"]);
    assert_eq!(r.strategy, "Canary");
    assert_eq!(r.step_text().as_deref(), Some("3/7"));
    assert_eq!(r.steps[0], "setWeight 10");
    assert_eq!(r.steps[3], "pause (until promoted)");
    assert_eq!(r.set_weight, Some(25));
    assert_eq!(r.weight_source, WeightSource::ReplicaSets);
    let w = r.actual_weight.expect("weight from the ReplicaSets");
    assert!((1..=50).contains(&w), "{w}");
    let run = r.current_runs().next().expect("a current run");
    assert_eq!(run.run_type.as_deref(), Some("Background"));
    assert_eq!(run.phase.as_deref(), Some("Running"));
    let m = &run.metrics[0];
    assert_eq!(
        (m.name.as_str(), m.failed, m.failure_limit),
        ("success-rate", 0, 3)
    );
    assert!(m.count >= 1 && m.last_value.is_some());
    assert!(
        v.summary()
            .starts_with("1 rollout · checkout Paused 3/7 · canary"),
        "{}",
        v.summary()
    );
}

#[test]
fn without_replica_sets_the_basic_canary_weight_is_unknown() {
    let l = lab_objs(Scenario::Healthy);
    let v = derive(&l.rollouts, &l.runs, now());
    let r = &v.rollouts[0];
    assert_eq!(
        (r.actual_weight, r.weight_source),
        (None, WeightSource::Unknown)
    );
    assert_eq!(r.set_weight, Some(25));
}

#[test]
fn bad_canary_warns_with_the_failing_metric() {
    let v = lab(Scenario::CanaryBad);
    assert_eq!(v.health(), Health::Warn);
    let msgs: Vec<&str> = v.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m
                .contains("metric success-rate: 3 of 5 measurements failed (limit 3), last [0.9")),
        "{msgs:?}"
    );
}

#[test]
fn lost_zone_loses_pods_but_keeps_minimum_availability() {
    let v = lab(Scenario::AzFailure);
    let r = &v.rollouts[0];
    assert!(
        r.available < r.desired,
        "{:?} of {:?}",
        r.available,
        r.desired
    );
    assert!(
        r.conditions
            .iter()
            .any(|c| c.kind == "Available" && c.is_true())
    );
    assert!(v.findings.is_empty(), "{:?}", v.findings);
}

#[test]
fn unavailable_rollout_warns() {
    let r = rollout(
        json!({"phase": "Progressing", "currentStepIndex": 0, "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "False",
            "message": "Rollout does not have minimum availability"}]}),
        false,
    );
    let v = derive(&[r], &[], now());
    let msgs: Vec<&str> = v.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        msgs,
        ["Rollout prod/web: Rollout does not have minimum availability (1/4 available)"]
    );
}

fn rollout(status: serde_json::Value, traffic: bool) -> DynamicObject {
    let mut canary = json!({"steps": [{"setWeight": 20}, {"pause": {"duration": 30}}, {"analysis": {"templates": [{"templateName": "success-rate"}]}}, {"setWeight": 60}]});
    if traffic {
        canary["trafficRouting"] = json!({"nginx": {"stableIngress": "x"}});
    }
    object(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"replicas": 4, "strategy": {"canary": canary}}, "status": status}),
    )
}

#[test]
fn aborted_rollout_is_critical_with_weight_zero_and_its_failed_analysis() {
    let r = rollout(
        json!({"phase": "Degraded", "abort": true, "currentStepIndex": 2,
        "message": "RolloutAborted: Rollout aborted update to revision 8",
        "availableReplicas": 4,
        "canary": {"currentStepAnalysisRunStatus": {"name": "web-abc-8-2", "status": "Failed"}}}),
        true,
    );
    let run = object(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "web-abc-8-2", "namespace": "prod",
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "web", "uid": "u"}]},
        "spec": {"metrics": [{"name": "success-rate", "failureLimit": 1}]},
        "status": {"phase": "Failed", "message": "Metric \"success-rate\" assessed Failed due to failed (2) > failureLimit (1)",
            "metricResults": [{"name": "success-rate", "phase": "Failed", "count": 3, "failed": 2,
                "measurements": [{"phase": "Failed", "value": "[0.81]"}]}]}}),
    );
    let v = derive(&[r], &[run], now());
    assert_eq!(v.health(), Health::Crit);
    let row = &v.rollouts[0];
    assert_eq!(row.set_weight, Some(0), "aborted");
    assert_eq!(
        (row.actual_weight, row.weight_source),
        (Some(0), WeightSource::SetWeight)
    );
    assert_eq!(row.step_text().as_deref(), Some("2/4"));
    assert_eq!(row.steps[1], "pause 30s");
    assert_eq!(row.steps[2], "analysis success-rate");
    let msgs: Vec<&str> = v.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        msgs.contains(
            &"Rollout prod/web Degraded: RolloutAborted: Rollout aborted update to revision 8"
        ),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Analysis web-abc-8-2 Failed: Metric")),
        "{msgs:?}"
    );
    assert_eq!(row.analysis_runs[0].metrics[0].health(), Health::Crit);
}

#[test]
fn weights_from_traffic_routing_and_after_promotion() {
    let routed = rollout(
        json!({"phase": "Progressing", "currentStepIndex": 1, "availableReplicas": 4,
        "canary": {"weights": {"canary": {"weight": 20}, "stable": {"weight": 80}}}}),
        true,
    );
    let done = rollout(
        json!({"phase": "Healthy", "currentStepIndex": 4, "availableReplicas": 4,
        "stableRS": "h", "currentPodHash": "h"}),
        false,
    );
    let v = derive(&[routed], &[], now());
    assert_eq!(
        (v.rollouts[0].actual_weight, v.rollouts[0].weight_source),
        (Some(20), WeightSource::TrafficRouting)
    );
    let v = derive(&[done], &[], now());
    let r = &v.rollouts[0];
    assert_eq!(
        (r.set_weight, r.actual_weight, r.weight_source),
        (Some(100), Some(100), WeightSource::Promoted)
    );
    assert_eq!(v.health(), Health::Ok);
}

#[test]
fn phase_is_computed_when_status_has_none() {
    let paused = rollout(
        json!({"pauseConditions": [{"reason": "InconclusiveAnalysisRun"}], "currentStepIndex": 0}),
        false,
    );
    let v = derive(&[paused], &[], now());
    assert_eq!(v.rollouts[0].phase, "Paused");
    assert_eq!(
        v.health(),
        Health::Warn,
        "inconclusive analysis pauses need a person"
    );
    let timed_out = rollout(
        json!({"conditions": [{"type": "Progressing", "status": "False",
        "reason": "ProgressDeadlineExceeded", "message": "timed out"}]}),
        false,
    );
    assert_eq!(
        derive(&[timed_out], &[], now()).rollouts[0].phase,
        "Degraded"
    );
}

#[test]
fn error_rate_hook_lands_on_the_row() {
    let l = lab_objs(Scenario::CanaryBad);
    let rates = [CanaryErrorRate {
        namespace: "shop".into(),
        rollout: "checkout".into(),
        error_rate: 0.08,
        measured_at: now(),
    }];
    let v = derive_with(
        &RolloutSources {
            rollouts: &l.rollouts,
            analysis_runs: &l.runs,
            replica_sets: &[],
            error_rates: &rates,
        },
        now(),
    );
    assert_eq!(v.rollouts[0].canary_error_rate, Some(0.08));
}

#[test]
fn malformed_and_empty_objects_never_panic() {
    let odd = [
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "a"}}),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "b"},
               "spec": {"strategy": {"canary": {"steps": "many"}}}, "status": []}),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "c"},
               "spec": {"replicas": "x", "strategy": {"canary": {"steps": [7, {}, {"setWeight": "ten"}]}}},
               "status": {"currentStepIndex": 99, "phase": 5, "availableReplicas": 3, "pauseConditions": {}}}),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "d"},
               "spec": {"strategy": {"canary": {"steps": [{"setWeight": 10}]}}},
               "status": {"currentStepIndex": 0, "availableReplicas": 2, "currentPodHash": "z"}}),
    ];
    let runs = [
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun", "metadata": {"name": "r"},
               "status": {"metricResults": [{"count": 1}, {"name": "m", "measurements": "none", "failed": "2"}]}}),
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun", "metadata": {"name": "s"}, "status": 1}),
    ];
    let rs = [object(
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "d-z", "labels": {"rollouts-pod-template-hash": "z"}}, "status": "?"}),
    )];
    let rollouts: Vec<DynamicObject> = odd.into_iter().map(object).collect();
    let runs: Vec<DynamicObject> = runs.into_iter().map(object).collect();
    let v = derive_with(
        &RolloutSources {
            rollouts: &rollouts,
            analysis_runs: &runs,
            replica_sets: &rs,
            error_rates: &[],
        },
        now(),
    );
    assert_eq!(v.rollouts.len(), 4);
    assert_eq!(v.orphan_runs.len(), 2);
    assert_eq!(
        v.orphan_runs.iter().map(|r| r.metrics.len()).sum::<usize>(),
        1
    );
    let d = &v.rollouts[3];
    assert_eq!(
        (d.actual_weight, d.weight_source),
        (Some(0), WeightSource::ReplicaSets),
        "RS with no status"
    );
    let _ = v.summary();
    let _ = serde_json::to_value(RolloutsReport::from_view(&v)).expect("json");
    let empty = derive(&[], &[], now());
    assert_eq!(
        (empty.health(), empty.summary().as_str()),
        (Health::Unknown, "no Rollouts")
    );
}

#[test]
fn report_serialises_with_status_findings_and_rows() {
    let json =
        serde_json::to_value(RolloutsReport::from_view(&lab(Scenario::CanaryBad))).expect("json");
    assert_eq!(json["status"], "warn");
    assert_eq!(json["rollouts"][0]["phase"], "Paused");
    assert_eq!(json["rollouts"][0]["set_weight"], 25);
    assert_eq!(json["rollouts"][0]["weight_source"], "replica_sets");
    assert_eq!(
        json["rollouts"][0]["analysis_runs"][0]["metrics"][0]["failed"],
        3
    );
    assert!(json["findings"].as_array().is_some_and(|f| !f.is_empty()));
}
