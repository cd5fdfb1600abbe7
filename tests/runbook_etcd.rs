//! The etcd runbooks run by the real `kha` binary against a real 3-member etcd
//! (Debian's etcd-server) on loopback: snapshot save checked with the real `etcdctl`,
//! leader move checked by status, NOSPACE recovery on a member set with a tiny quota,
//! and the engine's refusals (read-only, a wrong typed cluster name), each leaving its
//! trace in the audit log.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::require_binary;
use etcd_client::{AlarmAction, AlarmType, Client};
use kha::lab::etcd_real::RealEtcdCluster;
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn cluster(dir: &Path, extra: &[&str]) -> RealEtcdCluster {
    require_binary("etcd", "etcd-server");
    RealEtcdCluster::start_with(dir, 3, extra)
        .await
        .expect("start a real etcd cluster")
}

/// `kha <args>` against `endpoints`, with its state (audit log) in `state`.
fn kha(endpoints: &[String], state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(args)
        .env("KHA_ETCD_ENDPOINTS", endpoints.join(","))
        .env("KHA_CONFIG_DIR", state.join("no-config"))
        .env("KHA_STATE_DIR", state)
        .env("USER", "oncall-test")
        .output()
        .expect("run kha")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn audit(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect()
}

fn events(state: &Path) -> Vec<String> {
    audit(state)
        .iter()
        .map(|r| r["event"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn leader_name(endpoints: &[String]) -> String {
    let mut c = Client::connect([endpoints[0].as_str()], None)
        .await
        .unwrap();
    let members = c.member_list().await.unwrap();
    let leader = c.status().await.unwrap().leader();
    members
        .members()
        .iter()
        .find(|m| m.id() == leader)
        .map(|m| m.name().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_save_writes_a_snapshot_etcdctl_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = cluster(dir.path(), &[]).await;
    let endpoints = etcd.client_urls();
    let mut c = Client::connect([endpoints[0].as_str()], None)
        .await
        .unwrap();
    for i in 0..50 {
        c.put(format!("/registry/test/{i}"), format!("value-{i}"), None)
            .await
            .unwrap();
    }
    let state = dir.path().join("state");
    let file = dir.path().join("snap.db");
    let file_arg = file.to_string_lossy().to_string();

    let plan = kha(
        &endpoints,
        &state,
        &["etcd", "snapshot", "save", &file_arg, "--plan"],
    );
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    let text = stdout(&plan);
    assert!(
        text.starts_with("# Save an etcd snapshot — cluster `default`"),
        "{text}"
    );
    assert!(text.contains("- [x] a healthy member to stream from — 3/3 members healthy"));
    assert!(!file.exists(), "--plan ran nothing");
    assert!(audit(&state).is_empty(), "--plan records nothing");

    let run = kha(&endpoints, &state, &["etcd", "snapshot", "save", &file_arg]);
    let out = stdout(&run);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(&file).expect("the snapshot exists");
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(out.contains(&format!("sha256: {sha}")), "{out}");
    assert!(
        out.contains(&format!("size: {} bytes", bytes.len())),
        "{out}"
    );
    assert!(!kha::runbook::exec::partial_path(&file).exists());

    // The real etcdctl reads it, and it holds our keys.
    let status = Command::new(require_binary("etcdctl", "etcd-client"))
        .args(["snapshot", "status", &file_arg, "-w", "json"])
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).expect("etcdctl status JSON");
    assert!(status["totalKey"].as_u64().unwrap_or(0) >= 50, "{status}");
    assert_eq!(
        events(&state),
        ["confirmed", "step_started", "step_succeeded", "finished"]
    );

    // A restore plan from the live member list: real names and peer URLs.
    let plan = kha(
        &endpoints,
        &state,
        &["etcd", "restore", "--snapshot", &file_arg, "--plan"],
    );
    let text = stdout(&plan);
    assert_eq!(plan.status.code(), Some(0), "{text}");
    let mut client = Client::connect([endpoints[0].as_str()], None)
        .await
        .unwrap();
    let list = client.member_list().await.unwrap();
    let initial: Vec<String> = {
        let mut m: Vec<(String, String)> = list
            .members()
            .iter()
            .map(|m| (m.name().to_string(), m.peer_urls()[0].clone()))
            .collect();
        m.sort();
        m.into_iter().map(|(n, p)| format!("{n}={p}")).collect()
    };
    assert!(
        text.contains(&format!("--initial-cluster={}", initial.join(","))),
        "{text}"
    );
    assert!(
        text.contains("on etcd-a over ssh: mv /etc/kubernetes/manifests/kube-apiserver.yaml"),
        "{text}"
    );
    let done = &audit(&state)[2];
    assert_eq!(done["os_user"], "oncall-test");
    assert_eq!(done["cluster"], "default");
    assert_eq!(done["runbook"], "etcd.snapshot-save");
    assert!(done["duration_ms"].is_u64());
    etcd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn move_leader_hands_over_and_read_only_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = cluster(dir.path(), &[]).await;
    let endpoints = etcd.client_urls();
    let state = dir.path().join("state");
    let before = leader_name(&endpoints).await;
    let target = etcd
        .member_names()
        .into_iter()
        .find(|n| *n != before)
        .unwrap();

    // --read-only: refused by the engine, recorded, nothing moves.
    let refused = kha(
        &endpoints,
        &state,
        &[
            "--read-only",
            "etcd",
            "move-leader",
            "--to",
            &target,
            "--confirm",
            "y",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("read-only"));
    assert_eq!(events(&state), ["refused"]);
    assert_eq!(leader_name(&endpoints).await, before);

    // Not confirmed: refused.
    let no = kha(
        &endpoints,
        &state,
        &["etcd", "move-leader", "--to", &target, "--confirm", "n"],
    );
    assert_eq!(no.status.code(), Some(2));
    assert_eq!(leader_name(&endpoints).await, before);

    let moved = kha(
        &endpoints,
        &state,
        &["etcd", "move-leader", "--to", &target, "--confirm", "y"],
    );
    let out = stdout(&moved);
    assert_eq!(
        moved.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    assert!(
        out.contains(&format!("leadership handed to {target}")),
        "{out}"
    );
    assert_eq!(leader_name(&endpoints).await, target);

    // Moving to the leader itself is an unmet precondition.
    let again = kha(
        &endpoints,
        &state,
        &["etcd", "move-leader", "--to", &target, "--plan"],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(stdout(&again).contains(&format!("- [ ] {target} is not already the leader")));
    etcd.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nospace_recovery_compacts_defrags_disarms_and_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    // A 4 MiB quota fills after a few dozen 128 KiB revisions of one key.
    let etcd = cluster(dir.path(), &["--quota-backend-bytes", "4194304"]).await;
    let endpoints = etcd.client_urls();
    let state = dir.path().join("state");
    let mut c = Client::connect([endpoints[0].as_str()], None)
        .await
        .unwrap();
    let blob = "x".repeat(128 * 1024);
    let started = Instant::now();
    let mut full = false;
    while started.elapsed() < Duration::from_secs(60) {
        if let Err(e) = c.put("/registry/big", blob.as_str(), None).await {
            assert!(e.to_string().contains("space exceeded"), "{e}");
            full = true;
            break;
        }
    }
    assert!(full, "the quota never filled");
    let alarms = c
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .unwrap();
    assert!(
        alarms
            .alarms()
            .iter()
            .any(|a| a.alarm() == AlarmType::Nospace)
    );

    let plan = kha(&endpoints, &state, &["etcd", "recover-nospace", "--plan"]);
    let text = stdout(&plan);
    assert_eq!(plan.status.code(), Some(0), "{text}");
    assert!(
        text.contains("- [x] a NOSPACE alarm is raised — NOSPACE on"),
        "{text}"
    );
    assert!(
        text.contains("needs the cluster name `default` typed to run"),
        "{text}"
    );

    // A wrong cluster name refuses a destructive plan.
    let wrong = kha(
        &endpoints,
        &state,
        &["etcd", "recover-nospace", "--confirm", "prod"],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("did not match the cluster name"));
    assert!(
        c.put("/registry/after", "v", None).await.is_err(),
        "still read-only"
    );

    let run = kha(
        &endpoints,
        &state,
        &["etcd", "recover-nospace", "--confirm", "default"],
    );
    let out = stdout(&run);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("disarmed"), "{out}");
    c.put("/registry/after", "v", None)
        .await
        .expect("writes work again");
    let alarms = c
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .unwrap();
    assert!(alarms.alarms().is_empty());
    // compact + 3 defrags + disarm, each started and succeeded.
    let ev = events(&state);
    assert_eq!(
        ev.iter().filter(|e| *e == "step_succeeded").count(),
        5,
        "{ev:?}"
    );
    // What was on screen comes first: the NOSPACE alarm, then the refusal.
    assert_eq!(
        ev.first().map(String::as_str),
        Some("finding_seen"),
        "{ev:?}"
    );
    assert!(ev.contains(&"refused".to_string()));
    let incident = kha(&endpoints, &state, &["audit", "--incident"]);
    let timeline = stdout(&incident);
    assert!(
        timeline.contains("| seen |") && timeline.contains("NOSPACE"),
        "{timeline}"
    );
    assert!(
        timeline.contains("| refused |") && timeline.contains("| finished |"),
        "{timeline}"
    );
    assert_eq!(ev.last().map(String::as_str), Some("finished"));
    etcd.shutdown().await;
}

#[test]
fn the_audit_log_holds_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let pem = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        path.display().to_string()
    };
    let (ca, cert, key) = (
        pem("ca.crt"),
        pem("client.crt"),
        pem("very-secret-client.key"),
    );
    std::fs::write(
        config.join("config.toml"),
        format!(
            "default_cluster = \"prod\"\n[clusters.prod]\netcd_endpoints = [\"http://127.0.0.1:1\"]\n\
             etcd_cacert = \"{ca}\"\netcd_cert = \"{cert}\"\netcd_key = \"{key}\"\n"
        ),
    )
    .unwrap();
    // A kubeconfig with a bearer token: the audit names the identity, not the token.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\ncurrent-context: prod-ctx\n\
         clusters: [{name: prod, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: oncall, user: {token: s3cr3t-token}}]\n\
         contexts: [{name: prod-ctx, context: {cluster: prod, user: oncall}}]\n",
    )
    .unwrap();
    // print-only never touches the cluster; the plan still needs an observation, which
    // a dead endpoint gives (no healthy member: the precondition is unmet and refused).
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["etcd", "snapshot", "save", "/tmp/x.db", "--print-only"])
        .env("KHA_CONFIG_DIR", &config)
        .env("KHA_STATE_DIR", &state)
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KHA_ETCD_ENDPOINTS")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(state.join("audit.jsonl")).unwrap();
    assert!(log.contains("\"refused\""), "{log}");
    assert!(log.contains("\"prod\""), "{log}");
    assert!(!log.contains("very-secret-client.key"), "{log}");
    assert!(!log.contains("c2VjcmV0"), "{log}");
    // The API server (a dead endpoint here) could not say who: the kubeconfig's name,
    // marked unconfirmed.
    assert!(
        log.contains("\"kube_user\":\"oncall@prod-ctx (unconfirmed: "),
        "{log}"
    );
    assert!(!log.contains("s3cr3t-token"), "{log}");
}
