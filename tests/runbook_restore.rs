//! `kha etcd restore` against a real 3-member etcd laid out like kubeadm: each member
//! has a static-pod manifests dir with `etcd.yaml` and `kube-apiserver.yaml`, and a
//! stand-in kubelet (in this test) runs the real `etcd` binary with the flags of each
//! `etcd.yaml` present and stops it when the manifest goes away — so the runbook's real
//! steps (park manifests, `etcdctl snapshot restore` into new data dirs, `sed` the data
//! dir, put manifests back) drive real etcd processes. The run is interrupted once (a
//! manifest is missing), then resumed from the audit log and finished.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::require_binary;
use etcd_client::Client;
use kha::lab::etcd_real::free_port;

struct Member {
    name: String,
    client: String,
    peer: String,
    data_dir: PathBuf,
    manifests: PathBuf,
}

/// The flags a kubeadm etcd manifest gives, one `- --flag=value` line each.
fn etcd_manifest(m: &Member, initial_cluster: &str) -> String {
    let flags = [
        format!("--name={}", m.name),
        format!("--data-dir={}", m.data_dir.display()),
        format!("--listen-client-urls={}", m.client),
        format!("--advertise-client-urls={}", m.client),
        format!("--listen-peer-urls={}", m.peer),
        format!("--initial-advertise-peer-urls={}", m.peer),
        format!("--initial-cluster={initial_cluster}"),
        "--initial-cluster-state=new".into(),
        "--initial-cluster-token=kha-test".into(),
        "--heartbeat-interval=50".into(),
        "--election-timeout=500".into(),
    ];
    let mut y = String::from(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n    - etcd\n",
    );
    for f in flags {
        y.push_str(&format!("    - {f}\n"));
    }
    y.push_str(&format!(
        "  volumes:\n  - hostPath:\n      path: {}\n    name: etcd-data\n",
        m.data_dir.display()
    ));
    y
}

/// Runs etcd for every member whose `etcd.yaml` is in its manifests dir; stops it when
/// the manifest is gone. Records which data dir each start used.
fn kubelet(
    members: Vec<(PathBuf, String)>,
    started: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    let etcd = require_binary("etcd", "etcd-server");
    tokio::spawn(async move {
        let mut children: Vec<Option<tokio::process::Child>> =
            members.iter().map(|_| None).collect();
        loop {
            for (i, (manifests, log)) in members.iter().enumerate() {
                let manifest = manifests.join("etcd.yaml");
                match (std::fs::read_to_string(&manifest), children[i].is_some()) {
                    (Ok(text), false) => {
                        let args: Vec<String> = text
                            .lines()
                            .filter_map(|l| l.trim().strip_prefix("- --"))
                            .map(|f| format!("--{f}"))
                            .collect();
                        if let Some(dir) = args.iter().find_map(|a| a.strip_prefix("--data-dir=")) {
                            started.lock().unwrap().push(dir.to_string());
                        }
                        let log = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(log)
                            .unwrap();
                        children[i] = Some(
                            tokio::process::Command::new(&etcd)
                                .args(&args)
                                .stdout(std::process::Stdio::null())
                                .stderr(log)
                                .kill_on_drop(true)
                                .spawn()
                                .expect("start etcd"),
                        );
                    }
                    (Err(_), true) => {
                        if let Some(mut c) = children[i].take() {
                            let _ = c.kill().await;
                        }
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn kha(endpoints: &str, state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(args)
        .env("KHA_ETCD_ENDPOINTS", endpoints)
        .env("KHA_CONFIG_DIR", state.join("no-config"))
        .env("KHA_STATE_DIR", state)
        .output()
        .expect("run kha")
}

async fn wait_healthy(clients: &[String]) {
    let started = Instant::now();
    loop {
        let mut ok = 0;
        for c in clients {
            if let Ok(Ok(mut client)) =
                tokio::time::timeout(Duration::from_secs(1), Client::connect([c.as_str()], None))
                    .await
                && let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(1), client.get("health", None)).await
            {
                ok += 1;
            }
        }
        if ok == clients.len() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "etcd did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_into_new_data_dirs_after_an_interruption() {
    require_binary("etcdctl", "etcd-client");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let members: Vec<Member> = ["etcd-a", "etcd-b", "etcd-c"]
        .iter()
        .map(|n| {
            let manifests = root.join(n).join("manifests");
            std::fs::create_dir_all(&manifests).unwrap();
            Member {
                name: n.to_string(),
                client: format!("http://127.0.0.1:{}", free_port().unwrap()),
                peer: format!("http://127.0.0.1:{}", free_port().unwrap()),
                data_dir: root.join(n).join("data"),
                manifests,
            }
        })
        .collect();
    let initial = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer))
        .collect::<Vec<_>>()
        .join(",");
    for m in &members {
        std::fs::write(m.manifests.join("etcd.yaml"), etcd_manifest(m, &initial)).unwrap();
        std::fs::write(m.manifests.join("kube-apiserver.yaml"), "kind: Pod\n").unwrap();
    }
    let started = Arc::new(Mutex::new(Vec::new()));
    let kubelet = kubelet(
        members
            .iter()
            .map(|m| {
                (
                    m.manifests.clone(),
                    root.join(format!("{}.log", m.name)).display().to_string(),
                )
            })
            .collect(),
        started.clone(),
    );
    let clients: Vec<String> = members.iter().map(|m| m.client.clone()).collect();
    let endpoints = clients.join(",");
    wait_healthy(&clients).await;

    let mut c = Client::connect([clients[0].as_str()], None).await.unwrap();
    for i in 0..20 {
        c.put(format!("/registry/before/{i}"), "kept", None)
            .await
            .unwrap();
    }
    let state = root.join("state");
    let snap = root.join("snap.db");
    let snap_arg = snap.display().to_string();
    let saved = kha(&endpoints, &state, &["etcd", "snapshot", "save", &snap_arg]);
    assert_eq!(
        saved.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    c.put("/registry/after", "lost by the restore", None)
        .await
        .unwrap();

    let member_args: Vec<String> = members
        .iter()
        .map(|m| {
            format!(
                "{},{},{},{},{}",
                m.name,
                m.peer,
                m.client,
                m.data_dir.display(),
                m.manifests.display()
            )
        })
        .collect();
    let mut args: Vec<&str> = vec![
        "etcd",
        "restore",
        "--snapshot",
        &snap_arg,
        "--tool",
        "etcdctl",
    ];
    for m in &member_args {
        args.extend(["--member", m.as_str()]);
    }

    let plan = kha(&endpoints, &state, &[args.as_slice(), &["--plan"]].concat());
    let text = String::from_utf8_lossy(&plan.stdout).to_string();
    assert_eq!(plan.status.code(), Some(0), "{text}");
    assert!(text.contains("risk **destructive**"), "{text}");
    assert!(
        text.contains("env ETCDCTL_API=3 etcdctl snapshot restore"),
        "{text}"
    );

    // Interrupted: the third apiserver manifest is missing, so step 4 (stop it) fails
    // and kha stops there, with the first apiservers already stopped.
    let third = members[2].manifests.join("kube-apiserver.yaml");
    std::fs::remove_file(&third).unwrap();
    let first = kha(
        &endpoints,
        &state,
        &[args.as_slice(), &["--confirm", "default"]].concat(),
    );
    assert_eq!(
        first.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("aborted at step 4"));
    assert!(!members[0].manifests.join("kube-apiserver.yaml").exists());
    assert!(
        members[0].manifests.join("etcd.yaml").exists(),
        "etcd not stopped yet"
    );

    std::fs::write(&third, "kind: Pod\n").unwrap();
    let resumed = kha(
        &endpoints,
        &state,
        &[args.as_slice(), &["--confirm", "default", "--resume"]].concat(),
    );
    let out = String::from_utf8_lossy(&resumed.stdout).to_string();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(out.contains("at step 4"), "{out}");
    assert!(
        !out.contains("[1] Take a safety snapshot"),
        "steps 1-3 are not run again"
    );

    wait_healthy(&clients).await;
    let mut c = Client::connect([clients[0].as_str()], None).await.unwrap();
    assert_eq!(
        c.get(
            "/registry/before/",
            Some(etcd_client::GetOptions::new().with_prefix())
        )
        .await
        .unwrap()
        .kvs()
        .len(),
        20
    );
    assert!(
        c.get("/registry/after", None)
            .await
            .unwrap()
            .kvs()
            .is_empty(),
        "the restore brought back the snapshot"
    );
    for m in &members {
        let new_dir = PathBuf::from(format!("{}-kha-restore", m.data_dir.display()));
        assert!(
            new_dir.join("member").is_dir(),
            "{} restored",
            new_dir.display()
        );
        assert!(
            m.data_dir.join("member").is_dir(),
            "old data dir {} kept",
            m.data_dir.display()
        );
        let manifest = std::fs::read_to_string(m.manifests.join("etcd.yaml")).unwrap();
        assert!(manifest.contains(&format!("--data-dir={}", new_dir.display())));
        assert!(manifest.contains(&format!("path: {}", new_dir.display())));
        assert!(
            m.manifests.join("kube-apiserver.yaml").exists(),
            "apiserver back"
        );
    }
    assert!(
        PathBuf::from(format!("{snap_arg}.pre-restore")).exists(),
        "safety snapshot"
    );
    let starts = started.lock().unwrap().clone();
    assert_eq!(
        starts
            .iter()
            .filter(|d| d.ends_with("-kha-restore"))
            .count(),
        3,
        "{starts:?}"
    );
    kubelet.abort();
}
