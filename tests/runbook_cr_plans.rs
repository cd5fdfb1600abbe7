//! Golden tests of the custom-resource runbooks' plans (the Markdown `--plan` prints):
//! Argo Rollouts abort, retry, promote, promote --full and undo, Velero backup-now and
//! restore, and the HTTPRoute traffic shift, planned from the lab's objects at a fixed
//! time. `KHA_UPDATE_GOLDEN=1 cargo test --test runbook_cr_plans` rewrites the files
//! after an intended change; review the diff.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kha::lab::topology::{Faults, LabSpec, Topology};
use kha::runbook::{Risk, plan, rollouts, traffic, velero};
use serde_json::{Value, json};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/runbooks")
        .join(name);
    if std::env::var_os("KHA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with KHA_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert_eq!(actual, expected, "plan differs from {}", path.display());
}

/// 2026-12-01T06:40:00Z.
const NOW: u64 = 1_796_107_200;

fn world() -> Vec<Value> {
    let spec = LabSpec::default();
    let topology = Topology::generate(&spec);
    kha::lab::world::objects(
        &topology,
        &spec,
        &Faults {
            canary_bad: true,
            ..Faults::default()
        },
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
    )
}

fn one(objects: &[Value], kind: &str, name: &str) -> Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && (name.is_empty() || o["metadata"]["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} {name} in the lab"))
}

#[test]
fn rollout_plans() {
    let w = world();
    let ro = one(&w, "Rollout", "checkout");

    let abort = rollouts::abort("prod-eu", &ro);
    assert!(abort.unmet().is_empty());
    assert_eq!(abort.risk(), Risk::Disruptive);
    golden("rollout-abort.md", &plan::markdown(&abort));

    let mut aborted = ro.clone();
    aborted["status"]["abort"] = json!(true);
    let retry = rollouts::retry("prod-eu", &aborted);
    assert!(retry.unmet().is_empty());
    golden("rollout-retry.md", &plan::markdown(&retry));
    assert_eq!(
        rollouts::retry("prod-eu", &ro).unmet().len(),
        1,
        "not aborted"
    );

    let mut paused_too = ro.clone();
    paused_too["spec"]["paused"] = json!(true);
    let promote = rollouts::promote("prod-eu", &paused_too, false);
    assert!(promote.unmet().is_empty());
    golden("rollout-promote.md", &plan::markdown(&promote));

    let full = rollouts::promote("prod-eu", &ro, true);
    assert_eq!(full.risk(), Risk::Destructive);
    golden("rollout-promote-full.md", &plan::markdown(&full));

    let sets: Vec<Value> = w
        .iter()
        .filter(|o| o["kind"] == "ReplicaSet" && o["metadata"]["labels"]["app"] == "checkout")
        .cloned()
        .collect();
    let undo = rollouts::undo("prod-eu", &ro, &sets, None);
    assert!(undo.unmet().is_empty(), "{:?}", undo.unmet());
    golden("rollout-undo.md", &plan::markdown(&undo));
}

#[test]
fn velero_plans() {
    let w = world();
    let schedule = one(&w, "Schedule", "");
    let backup_now = velero::backup_now("prod-eu", &schedule, NOW as i64);
    assert_eq!(backup_now.risk(), Risk::Safe);
    golden("velero-backup-now.md", &plan::markdown(&backup_now));

    let backup = w
        .iter()
        .find(|o| o["kind"] == "Backup" && o["status"]["phase"] == "Completed")
        .cloned()
        .expect("a completed backup");
    let restore = velero::restore("prod-eu", &backup, &["shop".to_string()], NOW as i64);
    assert!(restore.unmet().is_empty());
    assert_eq!(restore.risk(), Risk::Destructive);
    golden("velero-restore.md", &plan::markdown(&restore));
}

#[test]
fn traffic_shift_plan() {
    let w = world();
    let route = one(&w, "HTTPRoute", "checkout-global");
    let rb = traffic::shift(
        "prod-eu",
        &route,
        &traffic::ShiftSpec {
            to: vec![0, 100],
            step: 25,
            pause: Duration::from_secs(30),
            rule: 0,
        },
    );
    assert!(rb.unmet().is_empty());
    assert_eq!(rb.steps.len(), 5, "three stages, two holds");
    golden("traffic-shift.md", &plan::markdown(&rb));
}
