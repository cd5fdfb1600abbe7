//! Against a real 3-member etcd cluster (Debian's etcd-server) on loopback: kill
//! members by PID, SIGSTOP them (hung, not dead), and check what kha reports.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::require_binary;
use kha::lab::etcd_real::RealEtcdCluster;
use kha::sources::etcd::{EtcdProber, EtcdSourceConfig};
use serde_json::Value;

async fn cluster(dir: &std::path::Path) -> RealEtcdCluster {
    require_binary("etcd", "etcd-server");
    RealEtcdCluster::start(dir, 3)
        .await
        .expect("start a real etcd cluster")
}

/// `kha status --json` against the cluster: (exit code, report, wall time).
fn kha_status(endpoints: &[String]) -> (i32, Value, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["status", "--json"])
        .env("KHA_ETCD_ENDPOINTS", endpoints.join(","))
        .env("KHA_CONFIG_DIR", "/nonexistent-kha-test")
        .output()
        .expect("run kha status");
    let elapsed = started.elapsed();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), json, elapsed)
}

fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid}");
}

fn quorum(report: &Value) -> (u64, u64, u64, bool) {
    let q = &report["etcd"]["quorum"];
    (
        q["members"].as_u64().unwrap_or(99),
        q["healthy"].as_u64().unwrap_or(99),
        q["tolerates"].as_u64().unwrap_or(99),
        q["has_quorum"].as_bool().unwrap_or(true),
    )
}

/// Poll `kha status` until `done` holds (elections take a moment), at most 10 s.
fn status_until(endpoints: &[String], done: impl Fn(&Value) -> bool) -> (i32, Value, Duration) {
    let started = Instant::now();
    loop {
        let r = kha_status(endpoints);
        if done(&r.1) || started.elapsed() > Duration::from_secs(10) {
            return r;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_members_by_pid_degrades_then_loses_quorum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = cluster(dir.path()).await;
    let urls = etcd.client_urls();

    let (code, report, _) = status_until(&urls, |r| r["etcd"]["leader"].is_string());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["overall"], "ok");
    assert_eq!(quorum(&report), (3, 3, 1, true));
    let members = report["etcd"]["members"].as_array().expect("members");
    assert_eq!(members.len(), 3);
    assert_eq!(
        members.iter().filter(|m| m["is_leader"] == true).count(),
        1,
        "{report:#}"
    );
    for m in members {
        assert!(
            m["version"].as_str().is_some_and(|v| v.starts_with("3.")),
            "{m}"
        );
        assert!(m["raft_index"].as_u64().unwrap_or(0) > 0, "{m}");
        assert!(m["db_size_bytes"].as_i64().unwrap_or(0) > 0, "{m}");
        assert!(m["latency_ms"].as_f64().is_some(), "{m}");
    }

    signal("-KILL", etcd.pid(0).expect("pid of etcd-a"));
    let (code, report, _) = status_until(&urls, |r| {
        quorum(r).1 == 2 && r["etcd"]["leader"].is_string()
    });
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["etcd"]["status"], "warn");
    assert_eq!(quorum(&report), (3, 2, 0, true));
    let dead = &report["etcd"]["members"].as_array().expect("members")[0];
    assert_eq!(dead["name"], "etcd-a");
    assert_eq!(dead["healthy"], false);
    assert!(
        dead["errors"][0].as_str().unwrap_or("").contains("refused"),
        "{dead}"
    );

    signal("-KILL", etcd.pid(1).expect("pid of etcd-b"));
    let (code, report, elapsed) = kha_status(&urls);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["etcd"]["status"], "crit");
    assert!(!quorum(&report).3, "{report:#}");
    assert!(
        report["etcd"]["findings"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("quorum lost"),
        "{report:#}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "kha status must answer within 5 s without quorum, took {elapsed:?}"
    );
    etcd.shutdown().await;

    // Every endpoint dead: still an answer, still in time.
    let (code, report, elapsed) = kha_status(&urls);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(quorum(&report).1, 0);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_member_counts_as_down_and_does_not_stall_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = cluster(dir.path()).await;
    let urls = etcd.client_urls();
    let (a, b) = (etcd.pid(0).expect("pid a"), etcd.pid(1).expect("pid b"));

    signal("-STOP", a);
    let (code, report, elapsed) = status_until(&urls, |r| {
        quorum(r).1 == 2 && r["etcd"]["leader"].is_string()
    });
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(quorum(&report), (3, 2, 0, true));
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let hung = &report["etcd"]["members"][0];
    assert!(hung["errors"].to_string().contains("no answer"), "{hung}");

    signal("-STOP", b);
    let (code, report, elapsed) = kha_status(&urls);
    assert_eq!(code, 2, "{report:#}");
    assert!(!quorum(&report).3);
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");

    signal("-CONT", a);
    signal("-CONT", b);
    // Resumed members answer before they agree on a leader again: wait for both.
    let (code, report, _) = status_until(&urls, |r| {
        quorum(r).1 == 3 && r["etcd"]["leader"].is_string()
    });
    assert_eq!(code, 0, "recovers after SIGCONT: {report:#}");
    etcd.shutdown().await;
}

/// The long-running prober (what the TUI uses) sees a member go and come back.
#[tokio::test(flavor = "multi_thread")]
async fn prober_follows_a_member_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut etcd = cluster(dir.path()).await;
    let mut prober = EtcdProber::new(EtcdSourceConfig::new(etcd.client_urls())).expect("prober");
    let obs = prober.probe().await;
    assert_eq!(obs.quorum().healthy, 3);
    assert_eq!(
        obs.members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["etcd-a", "etcd-b", "etcd-c"]
    );

    etcd.stop_member(2).await.expect("stop");
    // If the stopped member led, the survivors answer "leader changed" until they
    // have elected a new leader (about a second with the lab's election timeout).
    let started = Instant::now();
    let obs = loop {
        let obs = prober.probe().await;
        if obs.quorum().healthy == 2 || started.elapsed() > Duration::from_secs(10) {
            break obs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(obs.quorum().healthy, 2, "{obs:#?}");
    assert!(!obs.members[2].is_healthy(), "{obs:#?}");
    let _ = prober.probe().await; // second failure: the endpoint backs off

    etcd.start_member(2).await.expect("start");
    let started = Instant::now();
    loop {
        let obs = prober.probe().await;
        if obs.quorum().healthy == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "member never came back: {obs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    etcd.shutdown().await;
}
