//! Golden tests of the etcd runbooks' plans (the Markdown `--plan` prints) for a
//! 3-member cluster, healthy and degraded. `KHA_UPDATE_GOLDEN=1 cargo test --test
//! runbook_plans` rewrites the files after an intended change; review the diff.

mod common;

use std::path::{Path, PathBuf};

use common::{Scenario, observation};
use kha::runbook::{Risk, etcd, plan};

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

#[test]
fn snapshot_save_plan() {
    let rb = etcd::snapshot_save(
        "prod-eu",
        &observation(Scenario::Healthy),
        Path::new("/var/backups/etcd/snap.db"),
    );
    assert_eq!(rb.risk(), Risk::Safe);
    // Streams from a follower (etcd-a), not the leader (etcd-b).
    assert!(plan::markdown(&rb).contains("from http://127.0.0.1:2379 ->"));
    golden("snapshot-save.md", &plan::markdown(&rb));
}

#[test]
fn move_leader_plan() {
    let rb = etcd::move_leader("prod-eu", &observation(Scenario::Healthy), "etcd-c");
    assert!(rb.unmet().is_empty());
    golden("move-leader.md", &plan::markdown(&rb));
    let down = etcd::move_leader("prod-eu", &observation(Scenario::OneDown), "etcd-a");
    assert_eq!(down.unmet().len(), 1);
    golden("move-leader-to-a-down-member.md", &plan::markdown(&down));
}

#[test]
fn defrag_plan_visits_the_leader_last() {
    let rb = etcd::defrag("prod-eu", &observation(Scenario::Healthy));
    let titles: Vec<&str> = rb.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Defragment etcd-a",
            "Defragment etcd-c",
            "Defragment etcd-b (the leader, last)"
        ]
    );
    golden("defrag.md", &plan::markdown(&rb));
    let degraded = etcd::defrag("prod-eu", &observation(Scenario::OneDown));
    assert_eq!(degraded.unmet().len(), 1, "every member must be healthy");
}

#[test]
fn nospace_plan_is_destructive_and_needs_the_alarm() {
    let rb = etcd::recover_nospace("prod-eu", &observation(Scenario::Alarm));
    assert_eq!(rb.risk(), Risk::Destructive);
    assert!(rb.unmet().is_empty());
    assert_eq!(rb.steps.len(), 5);
    golden("recover-nospace.md", &plan::markdown(&rb));
    let no_alarm = etcd::recover_nospace("prod-eu", &observation(Scenario::Healthy));
    assert_eq!(no_alarm.unmet().len(), 1);
    let lost = etcd::recover_nospace("prod-eu", &observation(Scenario::QuorumLost));
    assert!(
        lost.unmet()
            .iter()
            .any(|p| p.description == "etcd has quorum")
    );
}
