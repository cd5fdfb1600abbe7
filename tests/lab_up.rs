//! `kha lab up` end to end: one fault changes every view consistently (etcd, the
//! HAProxy runtime API, metrics), the control endpoint injects and clears faults, and
//! SIGTERM cleans up.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab_process::LabProcess;
use common::require_binary;

fn curl(args: &[&str]) -> String {
    require_binary("curl", "curl");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl(vars: &HashMap<String, String>, args: &[&str]) -> String {
    require_binary("kubectl", "kubectl");
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &vars["KUBECONFIG"])
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn haproxy(socket: &str, command: &str) -> String {
    let path = socket.strip_prefix("unix://").expect("unix:// socket");
    let mut s = UnixStream::connect(path).expect("connect to the HAProxy runtime API");
    s.write_all(format!("{command}\n").as_bytes())
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// `status` of the row of `server` in `show stat`, found by header name.
fn server_status(stat: &str, server: &str) -> Option<String> {
    let mut lines = stat.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let (sv, st) = (
        header.iter().position(|h| *h == "svname")?,
        header.iter().position(|h| *h == "status")?,
    );
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r.get(sv) == Some(&server))
        .map(|r| r[st].to_string())
}

fn kha_status(vars: &HashMap<String, String>) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["status", "--json"])
        .env("KHA_ETCD_ENDPOINTS", &vars["KHA_ETCD_ENDPOINTS"])
        .env("KHA_CONFIG_DIR", "/nonexistent-kha-test")
        .output()
        .expect("kha status");
    serde_json::from_slice(&out.stdout).expect("json")
}

fn eventually(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn az_failure_is_consistent_and_faults_clear_through_the_control_endpoint() {
    let mut lab = LabProcess::start(&[
        "--etcd",
        "sim",
        "--scenario",
        "az-failure",
        "--deny",
        "list,watch:rollouts.argoproj.io:shop",
    ]);
    let vars = lab.vars.clone();
    for key in [
        "KHA_ETCD_ENDPOINTS",
        "ETCDCTL_ENDPOINTS",
        "KHA_PROMETHEUS_URL",
        "KHA_LB_STATS",
        "KHA_APISERVER_BACKENDS",
        "KHA_LAB_CONTROL",
    ] {
        assert!(vars.contains_key(key), "lab.env lacks {key}: {vars:?}");
    }
    let control = &vars["KHA_LAB_CONTROL"];
    let faults: serde_json::Value =
        serde_json::from_str(&curl(&[&format!("{control}/faults")])).expect("faults json");
    assert_eq!(faults["zone_down"], "eu-west-1c");

    // etcd: the lost zone's member is down.
    let report = kha_status(&vars);
    assert_eq!(report["etcd"]["quorum"]["healthy"], 2, "{report:#}");
    assert_eq!(report["etcd"]["members"][2]["healthy"], false, "{report:#}");
    // The LB: the lost zone's apiserver goes DOWN.
    eventually("cp-eu-west-1c DOWN in show stat", || {
        server_status(
            &haproxy(&vars["KHA_LB_STATS"], "show stat"),
            "cp-eu-west-1c",
        )
        .as_deref()
            == Some("DOWN")
    });
    // Its backend refuses connections outright.
    let backends: Vec<&str> = vars["KHA_APISERVER_BACKENDS"].split(',').collect();
    assert_eq!(backends.len(), 3);
    let refused = Command::new("curl")
        .args(["-sS", "--max-time", "2", &format!("{}/readyz", backends[2])])
        .output()
        .expect("curl");
    assert!(
        !refused.status.success(),
        "a lost zone's apiserver must not answer"
    );
    assert!(curl(&[&format!("{}/readyz?verbose", backends[0])]).contains("readyz check passed"));
    // Kubernetes: kubectl (a real client) sees the lost zone's nodes NotReady and its GPU node gone.
    let nodes = kubectl(&vars, &["get", "nodes", "--no-headers"]);
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("cp-eu-west-1c ") && l.contains("NotReady")),
        "{nodes}"
    );
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("cp-eu-west-1a ") && l.contains(" Ready")),
        "{nodes}"
    );
    assert!(
        !nodes.contains("gpu-eu-west-1c"),
        "the lost zone's GPU node is gone:\n{nodes}"
    );
    // RBAC from --deny: kubectl says no, and the request gets kubectl's Forbidden message.
    assert_eq!(
        kubectl(
            &vars,
            &[
                "auth",
                "can-i",
                "list",
                "rollouts.argoproj.io",
                "-n",
                "default"
            ]
        )
        .trim(),
        "yes"
    );
    let out = Command::new("kubectl")
        .args([
            "auth",
            "can-i",
            "list",
            "rollouts.argoproj.io",
            "-n",
            "shop",
        ])
        .env("KUBECONFIG", &vars["KUBECONFIG"])
        .output()
        .expect("kubectl");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    let out = Command::new("kubectl")
        .args(["get", "rollouts.argoproj.io", "-n", "shop"])
        .env("KUBECONFIG", &vars["KUBECONFIG"])
        .output()
        .expect("kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error from server (Forbidden)")
            && stderr.contains("cannot list resource \"rollouts\""),
        "{stderr}"
    );
    // Metrics: the zone's node is reported NotReady by an alert.
    let alerts = curl(&[&format!("{}/api/v1/alerts", vars["KHA_PROMETHEUS_URL"])]);
    assert!(alerts.contains("KubeNodeNotReady"), "{alerts}");

    // Clear every fault through the control endpoint: every view recovers.
    let cleared = curl(&["-X", "PUT", "-d", "{}", &format!("{control}/faults")]);
    assert!(cleared.contains("\"zone_down\":null"), "{cleared}");
    eventually("3/3 etcd members healthy", || {
        kha_status(&vars)["etcd"]["quorum"]["healthy"] == 3
    });
    eventually("cp-eu-west-1c UP", || {
        server_status(
            &haproxy(&vars["KHA_LB_STATS"], "show stat"),
            "cp-eu-west-1c",
        )
        .as_deref()
            == Some("UP")
    });
    let alerts = curl(&[&format!("{}/api/v1/alerts", vars["KHA_PROMETHEUS_URL"])]);
    assert!(!alerts.contains("KubeNodeNotReady"), "{alerts}");
    let nodes = kubectl(&vars, &["get", "nodes", "--no-headers"]);
    assert!(
        !nodes.contains("NotReady") && nodes.contains("gpu-eu-west-1c"),
        "{nodes}"
    );

    // A command by name, and a bad request gets a clear error.
    let message = curl(&["-X", "POST", &format!("{control}/commands/toggle-nospace")]);
    assert!(message.contains("NOSPACE alarm raised"), "{message}");
    eventually("the NOSPACE alarm in kha status", || {
        kha_status(&vars)["etcd"]["alarms"]
            .to_string()
            .contains("NOSPACE")
    });
    let bad = curl(&[
        "-X",
        "PUT",
        "-d",
        "{\"zone_down\": \"mars-1a\"}",
        &format!("{control}/faults"),
    ]);
    assert!(bad.contains("no zone \\\"mars-1a\\\""), "{bad}");

    // SIGTERM: the lab stops and removes lab.env.
    let pid = lab.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = lab.try_wait() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "kha lab up ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        !lab.dir.path().join("lab.env").exists(),
        "lab.env removed on shutdown"
    );
}

/// `--churn R` delivers about R object changes a second to a real watcher (kube-rs).
#[tokio::test(flavor = "multi_thread")]
async fn churn_reaches_watchers() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Pod;
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube::runtime::watcher::{self, Event};

    let lab = LabProcess::start(&["--etcd", "sim", "--churn", "40"]);
    let vars = &lab.vars;
    let kubeconfig = Kubeconfig::read_from(&vars["KUBECONFIG"]).expect("read the lab kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    let client = kube::Client::try_from(config).expect("client");
    let api: kube::Api<Pod> = kube::Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    // Skip the initial list, then count changes for two seconds.
    let mut changes = 0;
    let mut listed = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut window_end = None;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, stream.next()).await {
        match event.expect("watch event") {
            Event::InitDone => {
                listed = true;
                window_end = Some(tokio::time::Instant::now() + Duration::from_secs(2));
            }
            Event::Apply(_) | Event::Delete(_) if listed => changes += 1,
            _ => {}
        }
        if window_end.is_some_and(|end| tokio::time::Instant::now() >= end) {
            break;
        }
    }
    assert!(listed, "the watcher never finished its initial list");
    assert!(
        changes >= 20,
        "expected about 80 pod changes in 2 s at --churn 40 (some hit nodes), saw {changes}"
    );
}

/// The DCGM series' `pod` labels name GPU pods that the Kubernetes API lists.
#[test]
fn gpu_metrics_name_pods_that_kubectl_lists() {
    let lab = LabProcess::start(&["--etcd", "sim"]);
    let vars = &lab.vars;
    let body = curl(&[
        "--get",
        "--data-urlencode",
        "query=DCGM_FI_DEV_GPU_UTIL{pod!=\"\"}",
        &format!("{}/api/v1/query", vars["KHA_PROMETHEUS_URL"]),
    ]);
    let json: serde_json::Value = serde_json::from_str(&body).expect("query json");
    let mut named: Vec<String> = json["data"]["result"]
        .as_array()
        .expect("result")
        .iter()
        .filter_map(|s| s["metric"]["pod"].as_str().map(str::to_string))
        .collect();
    named.sort();
    named.dedup();
    assert!(!named.is_empty(), "{body}");
    let pods = kubectl(vars, &["get", "pods", "-n", "ml", "-o", "name"]);
    for pod in named {
        assert!(
            pods.lines().any(|l| l == format!("pod/{pod}")),
            "{pod} not in:\n{pods}"
        );
    }
}
