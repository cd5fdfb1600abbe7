//! `kha install --apply` against the lab: the manifests and the readiness checks go
//! through the lab's API server (its controllers report new objects ready), `helm` is a
//! recording stand-in on PATH (tests/fixtures/install/helm) whose argv sequence is
//! asserted exactly. A failing component stops the plan; the rerun resumes at it from
//! the record in ConfigMap kube-system/kha-install; a third run changes nothing; a
//! changed setting upgrades only the component using it (`--only velero`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kha::lab::kube::{KubeApiConfig, KubeApiServer, Store};
use kha::lab::topology::{Faults, LabSpec, Topology};
use serde_json::{Value, json};

struct Lab {
    store: Store,
    _server: KubeApiServer,
    _controllers: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    storage_nodes: String,
}

impl Lab {
    async fn start() -> Lab {
        let spec = LabSpec::default();
        let topology = Topology::generate(&spec);
        let store = Store::new();
        store
            .put_many(kha::lab::world::objects(
                &topology,
                &spec,
                &Faults::default(),
                SystemTime::now(),
            ))
            .expect("lab objects");
        // Ceph and Velero are not installed yet in this cluster.
        store.remove(
            "ceph.rook.io/v1",
            "CephCluster",
            Some("rook-ceph"),
            "rook-ceph",
        );
        for (name, _) in &topology.velero.locations {
            store.remove(
                "velero.io/v1",
                "BackupStorageLocation",
                Some(&topology.velero.namespace),
                name,
            );
        }
        store.remove(
            "velero.io/v1",
            "BackupStorageLocation",
            Some("velero"),
            "dr",
        );
        let controllers = kha::lab::controllers::spawn(store.clone());
        // What the charts create; the lab's controllers roll them out.
        for (kind, ns, name) in [
            ("DaemonSet", "kube-system", "cilium"),
            ("Deployment", "kube-system", "cilium-operator"),
            ("Deployment", "rook-ceph", "rook-ceph-operator"),
            ("Deployment", "velero", "velero"),
        ] {
            store.remove("apps/v1", kind, Some(ns), name);
            store
                .put(json!({
                    "apiVersion": "apps/v1",
                    "kind": kind,
                    "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": "x"}]}}},
                }))
                .expect("workload");
        }
        let server = KubeApiServer::start(store.clone(), KubeApiConfig::default())
            .await
            .expect("API server");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(fixture("helm"), bin.join("helm")).unwrap();
        std::fs::set_permissions(bin.join("helm"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let nodes: Vec<Value> = topology.workers[..3]
            .iter()
            .map(|w| json!({"name": w.name, "devices": [{"name": "nvme0n1"}]}))
            .collect();
        Lab {
            store,
            _server: server,
            _controllers: controllers,
            dir,
            kubeconfig,
            storage_nodes: serde_json::to_string(&nodes).unwrap(),
        }
    }

    /// Runs `kha install ARGS` with the stand-in helm first on PATH.
    async fn kha(&self, args: &[&str]) -> (i32, String) {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kha"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("install")
            .arg("--stack")
            .arg(fixture("stack.toml"))
            .arg("--set")
            .arg(format!("ceph_storage_nodes={}", self.storage_nodes))
            .args(args)
            .env("PATH", path)
            .env("HELM_STUB_DIR", self.dir.path())
            .env("KHA_STATE_DIR", self.dir.path().join("state"))
            .env("KHA_CONFIG_DIR", self.dir.path().join("config"))
            .env_remove("KUBECONFIG")
            .env_remove("KHA_CLUSTER")
            .env_remove("KHA_CONFIG")
            .output()
            .await
            .expect("kha runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// The helm calls so far, each as its argv (without the program name).
    fn helm_calls(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default();
        text.lines()
            .map(|l| {
                l.split('\u{1f}')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }

    fn helm_argv(&self, rest: &[&str]) -> Vec<String> {
        let mut argv = vec![
            "--kubeconfig".to_string(),
            self.kubeconfig.display().to_string(),
        ];
        argv.extend(rest.iter().map(|s| s.to_string()));
        argv
    }

    /// `helm upgrade --install` of `[release, chart, repo, version, namespace, timeout]`.
    fn upgrade(&self, chart: [&str; 6], values: &[&str]) -> Vec<String> {
        let [release, chart, repo, version, ns, timeout] = chart;
        let mut rest = vec![
            "upgrade",
            "--install",
            release,
            chart,
            "--repo",
            repo,
            "--version",
            version,
            "--namespace",
            ns,
            "--create-namespace",
            "--wait",
            "--timeout",
            timeout,
        ];
        for v in values {
            rest.push("--set-json");
            rest.push(v);
        }
        self.helm_argv(&rest)
    }

    fn record(&self) -> Value {
        self.store
            .get("v1", "ConfigMap", Some("kube-system"), "kha-install")
            .map(|cm| cm["data"].clone())
            .unwrap_or(Value::Null)
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/install")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_stops_at_a_failing_component_resumes_there_and_then_changes_nothing() {
    let lab = Lab::start().await;
    let version = lab.helm_argv(&["version", "--template", "{{.Version}}"]);
    let list = lab.helm_argv(&["list", "-A", "-o", "json"]);
    let cilium = lab.upgrade(
        [
            "cilium",
            "cilium",
            "https://helm.cilium.io/",
            "1.18.4",
            "kube-system",
            "5m",
        ],
        &[
            "k8sServiceHost=\"10.0.0.100\"",
            "k8sServicePort=6443",
            "kubeProxyReplacement=true",
        ],
    );
    let rook = lab.upgrade(
        [
            "rook-ceph",
            "rook-ceph",
            "https://charts.rook.io/release",
            "v1.18.7",
            "rook-ceph",
            "5m",
        ],
        &["crds={\"enabled\":true}"],
    );
    let velero = lab.upgrade(["velero", "velero", "https://vmware-tanzu.github.io/helm-charts", "12.1.0", "velero", "3m"],
        &["configuration={\"backupStorageLocation\":[{\"bucket\":\"velero-backup\",\"name\":\"default\",\"provider\":\"aws\"}]}"],
    );

    // 1. Velero's chart fails: the plan stops there, after what came before it.
    std::fs::write(lab.dir.path().join("fail-velero"), "").unwrap();
    let (code, out) = lab.kha(&["--apply", "--confirm", "y"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("FAILED: component velero stopped the plan"),
        "{out}"
    );
    assert!(
        out.contains("UPGRADE FAILED: release velero failed"),
        "{out}"
    );
    assert!(
        out.contains("it resumes at the first component not recorded"),
        "{out}"
    );
    assert_eq!(
        lab.helm_calls(),
        vec![
            version.clone(),
            list.clone(),
            cilium.clone(),
            rook.clone(),
            velero.clone()
        ]
    );
    let record = lab.record();
    for done in ["cilium", "rook-ceph", "ceph-cluster"] {
        assert!(record[done].is_string(), "{done} not recorded: {record}");
    }
    assert!(record["velero"].is_null(), "{record}");
    // The CephCluster went through the API by server-side apply, and Rook (the lab's
    // controller) reported it.
    let ceph = lab
        .store
        .get(
            "ceph.rook.io/v1",
            "CephCluster",
            Some("rook-ceph"),
            "rook-ceph",
        )
        .expect("CephCluster applied");
    assert_eq!(ceph["metadata"]["managedFields"][0]["manager"], "kha");
    assert_eq!(ceph["metadata"]["managedFields"][0]["operation"], "Apply");
    assert_eq!(ceph["status"]["ceph"]["health"], "HEALTH_OK");
    assert_eq!(
        ceph["spec"]["storage"]["nodes"].as_array().map(Vec::len),
        Some(3)
    );

    // 2. Fixed: the rerun resumes at velero (nothing before it runs again).
    std::fs::remove_file(lab.dir.path().join("fail-velero")).unwrap();
    let (code, out) = lab.kha(&["--apply", "--confirm", "y"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        lab.helm_calls()[5..].to_vec(),
        vec![version.clone(), list.clone(), velero.clone()]
    );
    assert!(out.contains("[overall ####################"), "{out}");
    let dr = lab
        .store
        .get(
            "velero.io/v1",
            "BackupStorageLocation",
            Some("velero"),
            "dr",
        )
        .expect("the DR location applied");
    assert_eq!(dr["spec"]["config"]["region"], "eu-west-1");
    assert_eq!(dr["status"]["phase"], "Available");
    assert!(lab.record()["velero"].is_string());

    // 3. Everything is up to date: only helm's version and list run.
    let rv = lab.store.resource_version();
    let (code, out) = lab.kha(&["--apply", "--confirm", "y"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Nothing to change: every component is up to date."),
        "{out}"
    );
    assert_eq!(
        lab.helm_calls()[8..].to_vec(),
        vec![version.clone(), list.clone()]
    );
    assert_eq!(
        lab.store.resource_version(),
        rv,
        "a second run changed the cluster"
    );

    // 4. A changed setting upgrades only Velero (`--only velero`).
    let (code, out) = lab
        .kha(&[
            "--apply",
            "--confirm",
            "y",
            "--only",
            "velero",
            "--set",
            "velero_dr_region=eu-north-1",
        ])
        .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "| velero | 12.1.0 (deployed) | 12.1.0 | reconfigure (values or manifests changed) |"
        ),
        "{out}"
    );
    assert_eq!(
        lab.helm_calls()[10..].to_vec(),
        vec![version.clone(), list.clone(), velero.clone()]
    );
    let dr = lab
        .store
        .get(
            "velero.io/v1",
            "BackupStorageLocation",
            Some("velero"),
            "dr",
        )
        .unwrap();
    assert_eq!(dr["spec"]["config"]["region"], "eu-north-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_against_the_lab_lists_what_would_change_and_runs_nothing() {
    let lab = Lab::start().await;
    let (code, out) = lab.kha(&["--plan"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("| cilium | not installed | 1.18.4 | install |"),
        "{out}"
    );
    assert!(
        out.contains("- [x] at least 3 Ready nodes in at least 3 zones"),
        "{out}"
    );
    assert!(
        out.contains("- [x] ceph-cluster: the Ceph storage nodes exist"),
        "{out}"
    );
    assert!(
        out.contains("- [x] at least 1 Ready GPU node(s) for the GPU pool"),
        "{out}"
    );
    // Only helm's version and list ran; the lab is untouched.
    assert_eq!(lab.helm_calls().len(), 2);
    assert!(lab.record().is_null());
}
