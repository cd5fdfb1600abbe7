//! Golden tests of the etcd runbooks' plans (the Markdown `--plan` prints) for a
//! 3-member cluster, healthy and degraded. `KHA_UPDATE_GOLDEN=1 cargo test --test
//! runbook_plans` rewrites the files after an intended change; review the diff.

mod common;

use std::path::{Path, PathBuf};

use common::{Scenario, observation};
use kha::runbook::{Risk, etcd, plan, restore};

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

fn kubeadm_spec(tool: restore::RestoreTool) -> restore::RestoreSpec {
    let members = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, n)| restore::RestoreMember {
            name: format!("cp-{n}"),
            host: Some(format!("cp-{n}.prod.internal")),
            peer_url: format!("https://10.0.0.1{}:2380", i + 1),
            client_url: format!("https://10.0.0.1{}:2379", i + 1),
            data_dir: "/var/lib/etcd".into(),
            manifests: "/etc/kubernetes/manifests".into(),
        })
        .collect();
    restore::RestoreSpec {
        snapshot: "/var/backups/etcd/snap.db".into(),
        members,
        token: "kha-restored".into(),
        suffix: "kha-restore".into(),
        tool,
        safety_snapshot: "/var/backups/etcd/snap.db.pre-restore".into(),
    }
}

#[test]
fn restore_plans_for_etcd_3_5_and_3_4() {
    use restore::RestoreTool;
    assert_eq!(
        RestoreTool::for_version(Some("3.4.23")),
        RestoreTool::Etcdctl
    );
    assert_eq!(
        RestoreTool::for_version(Some("3.5.16")),
        RestoreTool::Etcdutl
    );
    assert_eq!(
        RestoreTool::for_version(Some("3.6.0")),
        RestoreTool::Etcdutl
    );
    assert_eq!(RestoreTool::for_version(None), RestoreTool::Etcdutl);
    let healthy = observation(Scenario::Healthy);
    let v35 = restore::restore("prod-eu", &healthy, &kubeadm_spec(RestoreTool::Etcdutl));
    assert_eq!(v35.risk(), Risk::Destructive);
    golden("restore-kubeadm-3.5.md", &plan::markdown(&v35));
    let lost = observation(Scenario::QuorumLost);
    let v34 = restore::restore("prod-eu", &lost, &kubeadm_spec(RestoreTool::Etcdctl));
    // Without quorum the safety snapshot is a no-op, but still step 1.
    assert_eq!(v34.steps[0].title, v35.steps[0].title);
    assert_eq!(v34.steps.len(), v35.steps.len());
    golden("restore-kubeadm-3.4-quorum-lost.md", &plan::markdown(&v34));
    let md = plan::markdown(&v34);
    assert!(md.contains(
        "env ETCDCTL_API=3 etcdctl snapshot restore /var/tmp/kha-restore.db --name=cp-a"
    ));
    assert!(md.contains("--initial-cluster=cp-a=https://10.0.0.11:2380,cp-b=https://10.0.0.12:2380,cp-c=https://10.0.0.13:2380"));
    assert!(md.contains("--data-dir=/var/lib/etcd-kha-restore"));
}

#[test]
fn restore_members_come_from_the_live_member_list() {
    let obs = observation(Scenario::Healthy);
    let members = restore::members_from_observation(
        &obs,
        Path::new("/var/lib/etcd"),
        Path::new("/etc/kubernetes/manifests"),
        false,
    )
    .expect("members");
    let got: Vec<(&str, Option<&str>, &str)> = members
        .iter()
        .map(|m| (m.name.as_str(), m.host.as_deref(), m.peer_url.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("etcd-a", Some("etcd-a"), "http://127.0.0.1:2479"),
            ("etcd-b", Some("etcd-b"), "http://127.0.0.1:2480"),
            ("etcd-c", Some("etcd-c"), "http://127.0.0.1:2481"),
        ]
    );
    let mut lost = observation(Scenario::QuorumLost);
    lost.member_list_error = Some("context deadline exceeded".into());
    let err = restore::members_from_observation(&lost, Path::new("/x"), Path::new("/y"), true)
        .unwrap_err();
    assert!(err.contains("give every member with --member"), "{err}");
}
