//! Golden plans of the built-in stack (`kha install --plan`) for a fresh cluster, a
//! partly installed one and an up-to-date one, plus `--only`. `KHA_UPDATE_GOLDEN=1
//! cargo test --test install_plans` rewrites the files after an intended change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use kha::install::plan::{self, Change, ClusterFacts, HelmTarget, NodeFact, Observed, Release};
use kha::install::stack::{self, Source, Stack};
use kha::install::state::{InstallState, Installed};
use kha::runbook::{Operation, Verification};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/install")
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

fn stack() -> Stack {
    let mut set = BTreeMap::new();
    set.insert(
        "api_server_host".to_string(),
        "k8s-api.prod.example".to_string(),
    );
    stack::parse(Source::embedded(), &set).unwrap()
}

fn helm() -> HelmTarget {
    HelmTarget {
        kubeconfig: Some(PathBuf::from("/home/oncall/.kube/prod")),
        context: Some("prod-eu".into()),
    }
}

fn nodes() -> Vec<NodeFact> {
    let mut out = Vec::new();
    for (i, zone) in ["eu-1a", "eu-1b", "eu-1c"].iter().enumerate() {
        out.push(NodeFact {
            name: format!("storage-node-{}", i + 1),
            zone: Some(zone.to_string()),
            ready: true,
            gpus: 0,
        });
        out.push(NodeFact {
            name: format!("gpu-{}", i + 1),
            zone: Some(zone.to_string()),
            ready: true,
            gpus: 8,
        });
    }
    out
}

fn fresh() -> Observed {
    Observed {
        helm_version: Ok("v3.16.2".into()),
        releases: Vec::new(),
        state: InstallState::default(),
        present: BTreeSet::new(),
        cluster: ClusterFacts {
            server_version: Ok("v1.34.1".into()),
            denied: Vec::new(),
            nodes: nodes(),
            devices: Default::default(),
        },
    }
}

fn release(s: &Stack, name: &str, version: &str, status: &str) -> Release {
    let c = s.component(name).unwrap();
    let chart = c.chart.as_ref().unwrap();
    Release {
        name: chart.release.clone(),
        namespace: c.namespace.clone(),
        chart: format!("{}-{version}", chart.chart),
        status: status.into(),
    }
}

fn record(s: &Stack, name: &str) -> (String, Installed) {
    let c = s.component(name).unwrap();
    (
        name.to_string(),
        Installed {
            version: c.version().unwrap_or("-").to_string(),
            digest: c.digest.clone(),
        },
    )
}

fn up_to_date(s: &Stack) -> Observed {
    let mut o = fresh();
    for c in &s.components {
        if let Some(chart) = &c.chart {
            o.releases
                .push(release(s, &c.name, &chart.version, "deployed"));
        }
        o.state.components.extend([record(s, &c.name)]);
        for m in &c.manifests {
            o.present.insert(m.describe());
        }
    }
    o
}

#[test]
fn fresh_cluster_plan_installs_everything_in_order() {
    let s = stack();
    let p = plan::plan("prod-eu", &s, &fresh(), &[], &helm()).unwrap();
    assert!(p.rows.iter().all(|r| r.change == Change::Install));
    assert!(p.runbook.unmet().is_empty(), "{:?}", p.runbook.unmet());
    // Cilium's helm command, exactly, as argv.
    let Operation::Argv { host: None, argv } = &p.runbook.steps[0].operation else {
        panic!("the first step runs helm");
    };
    assert_eq!(
        argv,
        &[
            "helm",
            "--kubeconfig",
            "/home/oncall/.kube/prod",
            "--kube-context",
            "prod-eu",
            "upgrade",
            "--install",
            "cilium",
            "cilium",
            "--repo",
            "https://helm.cilium.io/",
            "--version",
            "1.18.4",
            "--namespace",
            "kube-system",
            "--create-namespace",
            "--wait",
            "--timeout",
            "8m",
            "--set-json",
            "k8sServiceHost=\"k8s-api.prod.example\"",
            "--set-json",
            "k8sServicePort=6443",
            "--set-json",
            "kubeProxyReplacement=true",
            "--set-json",
            "operator={\"replicas\":2}",
        ]
    );
    // The ConstraintTemplate's CRD is waited for before the constraint is applied.
    let titles: Vec<&str> = p.runbook.steps.iter().map(|s| s.title.as_str()).collect();
    let template = titles
        .iter()
        .position(|t| *t == "gatekeeper: apply ConstraintTemplate k8spspprivilegedcontainer")
        .unwrap();
    assert!(matches!(
        p.runbook.steps[template].verification,
        Verification::KubeReady { .. }
    ));
    assert_eq!(
        titles[template + 1],
        "gatekeeper: apply K8sPSPPrivilegedContainer psp-privileged-container"
    );
    golden("fresh.md", &plan::markdown(&p));
}

#[test]
fn partly_installed_plan_repairs_upgrades_and_skips() {
    let s = stack();
    let mut o = fresh();
    o.releases = vec![
        release(&s, "cilium", "1.18.4", "deployed"),
        release(&s, "kube-prometheus-stack", "79.5.0", "deployed"),
        release(&s, "rook-ceph", "v1.18.7", "failed"),
        release(&s, "velero", "11.0.0", "deployed"),
    ];
    o.state
        .components
        .extend([record(&s, "cilium"), record(&s, "kube-prometheus-stack")]);
    let p = plan::plan("prod-eu", &s, &o, &[], &helm()).unwrap();
    let change = |n: &str| {
        p.rows
            .iter()
            .find(|r| r.component == n)
            .map(|r| r.change.clone())
            .unwrap()
    };
    assert_eq!(change("cilium"), Change::UpToDate);
    assert_eq!(
        change("rook-ceph"),
        Change::Repair {
            status: "failed".into()
        }
    );
    assert_eq!(
        change("velero"),
        Change::Upgrade {
            from: "11.0.0".into()
        }
    );
    assert!(p.runbook.steps[0].title.starts_with("rook-ceph: helm"));
    golden("partly-installed.md", &plan::markdown(&p));
}

#[test]
fn up_to_date_plan_changes_nothing() {
    let s = stack();
    let p = plan::plan("prod-eu", &s, &up_to_date(&s), &[], &helm()).unwrap();
    assert!(p.changes_nothing());
    assert!(p.rows.iter().all(|r| r.change == Change::UpToDate));
    golden("up-to-date.md", &plan::markdown(&p));
}

#[test]
fn only_velero_needs_its_dependencies_installed() {
    let s = stack();
    let only = vec!["velero".to_string()];
    let p = plan::plan("prod-eu", &s, &fresh(), &only, &helm()).unwrap();
    assert_eq!(p.rows.len(), 1);
    let unmet: Vec<String> = p
        .runbook
        .unmet()
        .iter()
        .map(|u| u.evidence.clone())
        .collect();
    assert_eq!(
        unmet,
        ["not installed: cilium, ceph-cluster (install them first, or drop --only)"]
    );
    let mut o = up_to_date(&s);
    o.releases.retain(|r| r.name != "velero");
    o.state.components.remove("velero");
    let p = plan::plan("prod-eu", &s, &o, &only, &helm()).unwrap();
    assert!(p.runbook.unmet().is_empty());
    golden("only-velero.md", &plan::markdown(&p));

    let err = plan::plan("prod-eu", &s, &o, &["velro".to_string()], &helm()).unwrap_err();
    assert!(
        err.starts_with("--only velro: no such component in stack.toml (built in)"),
        "{err}"
    );
}

#[test]
fn preflight_failures_are_unmet_preconditions() {
    let s = stack();
    let mut o = fresh();
    o.helm_version = Ok("v3.8.0".into());
    o.cluster.denied = vec!["create customresourcedefinitions.apiextensions.k8s.io".into()];
    o.cluster
        .nodes
        .retain(|n| n.zone.as_deref() != Some("eu-1c"));
    let p = plan::plan("prod-eu", &s, &o, &[], &helm()).unwrap();
    let unmet: Vec<String> = p
        .runbook
        .unmet()
        .iter()
        .map(|u| format!("{}: {}", u.description, u.evidence))
        .collect();
    assert_eq!(
        unmet,
        [
            "helm >= 3.10.0 is installed: helm v3.8.0",
            "the identity may install (namespaces, CRDs, workloads, RBAC, configmaps): denied: create customresourcedefinitions.apiextensions.k8s.io",
            "at least 3 Ready nodes in at least 3 zones: 4 of 4 nodes Ready in 2 zone(s) (eu-1a, eu-1b)",
            "ceph-cluster: the Ceph storage nodes exist, are Ready and list their devices: storage-node-3 is not a node",
        ]
    );

    // Rook's discovery (once the operator runs) confirms or refutes the devices.
    let mut o = fresh();
    for (node, devices) in [
        ("storage-node-1", vec!["nvme0n1", "sda"]),
        ("storage-node-2", vec!["sda"]),
    ] {
        o.cluster.devices.insert(
            node.to_string(),
            devices.into_iter().map(String::from).collect(),
        );
    }
    let p = plan::plan("prod-eu", &s, &o, &[], &helm()).unwrap();
    let unmet: Vec<&str> = p
        .runbook
        .unmet()
        .iter()
        .map(|u| u.evidence.as_str())
        .collect();
    assert_eq!(
        unmet,
        ["storage-node-2: nvme0n1 is not an available device (Rook's discovery saw: sda)"]
    );

    // Unreachable: nothing about the cluster is taken as met.
    let mut o = fresh();
    o.cluster = ClusterFacts {
        server_version: Err("no kubeconfig: set KUBECONFIG or --kubeconfig".into()),
        denied: Vec::new(),
        nodes: Vec::new(),
        devices: Default::default(),
    };
    let p = plan::plan("prod-eu", &s, &o, &[], &helm()).unwrap();
    let unmet: Vec<&str> = p
        .runbook
        .unmet()
        .iter()
        .map(|u| u.evidence.as_str())
        .collect();
    assert_eq!(
        unmet[..3],
        [
            "no kubeconfig: set KUBECONFIG or --kubeconfig",
            "not checked: the cluster is not reachable",
            "0 of 0 nodes Ready in 0 zone(s)",
        ]
    );
}
