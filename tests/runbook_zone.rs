//! Zone evacuation against the lab's API server: the preconditions refuse an
//! evacuation that would lose etcd quorum (and say so, with the members counted), and
//! a safe one cordons every node of the zone first, then drains each, leaving only
//! mirror and DaemonSet pods in the zone. The preview shows the capacity numbers.

mod common;

use std::time::{Duration, SystemTime};

use kha::lab::kube::{KubeApiConfig, KubeApiServer, Store};
use kha::lab::topology::{Faults, LabSpec, Topology};
use kha::model::etcd::EtcdObservation;
use kha::runbook::audit::AuditLog;
use kha::runbook::engine::{Decision, Engine, Operator, Progress};
use kha::runbook::exec::LiveExecutor;
use kha::runbook::facts::{self, ClusterFacts, DrainFlags, PodFacts};
use kha::runbook::node::DrainOptions;
use kha::runbook::{Risk, plan, zone};
use kha::sources::kube::{KubeSourceConfig, KubeconfigSource};
use serde_json::json;

/// Types the cluster name; aborts on failure.
struct Typist;

impl Operator for Typist {
    fn ask(&mut self, _: &str) -> String {
        "lab".into()
    }
    fn decide(&mut self, _: usize, _: &str, _: bool) -> Decision {
        Decision::Abort
    }
    fn progress(&mut self, _: Progress) {}
}

/// The lab's three etcd members, `down` ones unhealthy.
fn etcd(topology: &Topology, down: &[usize]) -> EtcdObservation {
    let mut obs = common::observation(common::Scenario::Healthy);
    for (i, m) in obs.members.iter_mut().enumerate() {
        m.name = topology.control_plane[i].etcd_member.clone();
        if down.contains(&i) {
            *m = common::member(&m.name, m.id, false, 0);
        }
    }
    obs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evacuation_that_loses_etcd_quorum_is_refused_and_a_safe_one_drains_the_zone() {
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
        .unwrap();
    // Budgets that allow the evacuation (the lab's own may allow no disruption).
    for pdb in store.list("policy/v1", "PodDisruptionBudget") {
        let (ns, name) = (
            pdb["metadata"]["namespace"].as_str().unwrap().to_string(),
            pdb["metadata"]["name"].as_str().unwrap().to_string(),
        );
        store
            .modify("policy/v1", "PodDisruptionBudget", Some(&ns), &name, |p| {
                p["status"]["disruptionsAllowed"] = json!(100)
            })
            .unwrap();
    }
    let server = KubeApiServer::start(store.clone(), KubeApiConfig::default())
        .await
        .unwrap();
    let _controllers = kha::lab::controllers::spawn(store.clone());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let conn =
        kha::sources::kube::client::connect(&KubeconfigSource::File(kubeconfig.clone()), None)
            .await
            .unwrap();
    let facts: ClusterFacts = facts::gather_all(&conn.client).await.unwrap();
    let mut engine = Engine {
        executor: LiveExecutor::new(&Default::default(), dir.path().to_path_buf())
            .unwrap()
            .with_kube(KubeSourceConfig::new(
                Some(KubeconfigSource::File(kubeconfig)),
                None,
            )),
        audit: AuditLog::in_dir(dir.path()),
        read_only: false,
        poll: Duration::from_millis(100),
        kube_user: None,
        seen: Vec::new(),
    };
    let opts = DrainOptions {
        grace_seconds: None,
        timeout_secs: 30,
        retry_secs: 1,
        ..DrainOptions::default()
    };
    // A zone without a GPU node, so the other zones' GPUs are not in question.
    let zone = topology
        .zones
        .iter()
        .find(|z| topology.gpu_nodes.iter().all(|g| &g.zone != *z))
        .cloned()
        .unwrap_or_else(|| topology.zones[0].clone());
    let member_of = |z: &str| {
        topology
            .control_plane
            .iter()
            .position(|c| c.zone == z)
            .unwrap()
    };
    let other = topology.zones.iter().find(|z| **z != zone).unwrap().clone();

    // Another zone's member already down: without this zone's member, 1 of 3 left.
    let rb = zone::evacuate(
        "lab",
        &facts,
        Some(&etcd(&topology, &[member_of(&other)])),
        &zone,
        opts,
    );
    let unmet = rb.unmet();
    assert_eq!(unmet.len(), 1, "{}", plan::markdown(&rb));
    assert_eq!(
        unmet[0].description,
        format!("etcd keeps quorum without zone {zone}")
    );
    assert!(
        unmet[0].evidence.starts_with(&format!(
            "1 healthy member(s) outside {zone} of 2 needed for quorum of 3"
        )) && unmet[0]
            .evidence
            .ends_with("— evacuating this zone would lose etcd quorum"),
        "{}",
        unmet[0].evidence
    );
    let err = engine.run(&rb, &mut Typist, None).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "preconditions not met: etcd keeps quorum without zone {zone}"
        )),
        "{err}"
    );
    assert!(
        server.recorder().writes().is_empty(),
        "{:#?}",
        server.recorder().writes()
    );
    // No etcd observation at all: refused too (quorum cannot be checked).
    let rb_blind = zone::evacuate("lab", &facts, None, &zone, opts);
    assert!(
        rb_blind.unmet()[0]
            .evidence
            .starts_with("etcd not observed")
    );

    // All members healthy: safe. The preview shows the numbers.
    let rb = zone::evacuate("lab", &facts, Some(&etcd(&topology, &[])), &zone, opts);
    let markdown = plan::markdown(&rb);
    assert!(rb.unmet().is_empty(), "{markdown}");
    assert_eq!(rb.risk(), Risk::Destructive);
    assert!(
        markdown.contains(&format!(
            "- [x] etcd keeps quorum without zone {zone} — 2 healthy member(s) outside {zone} of 2 needed for quorum of 3"
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains("- [x] the other zones have CPU and memory for the pods evicted from"),
        "{markdown}"
    );
    assert!(markdown.contains("; free on "), "{markdown}");
    let nodes: Vec<String> = facts
        .nodes
        .iter()
        .filter(|n| n.zone.as_deref() == Some(zone.as_str()))
        .map(|n| n.name.clone())
        .collect();
    assert!(nodes.len() >= 2, "{nodes:?}");
    assert_eq!(rb.steps.len(), 2 * nodes.len());

    let report = engine.run(&rb, &mut Typist, None).await.unwrap();
    assert_eq!(report.completed, 2 * nodes.len());
    // Every node cordoned before the first eviction.
    let requests = server.recorder().writes();
    let first_eviction = requests
        .iter()
        .position(|r| r.path.ends_with("/eviction"))
        .unwrap();
    let patched: Vec<String> = requests[..first_eviction]
        .iter()
        .map(|r| r.path.trim_start_matches("/api/v1/nodes/").to_string())
        .collect();
    assert_eq!(patched, nodes, "{requests:#?}");
    for node in &nodes {
        let stored = store.get("v1", "Node", None, node).unwrap();
        assert_eq!(stored["spec"]["unschedulable"], true);
        let left: Vec<PodFacts> = store
            .list("v1", "Pod")
            .iter()
            .filter(|p| p["spec"]["nodeName"] == node.as_str())
            .map(|p| PodFacts::from_pod(&serde_json::from_value(p.clone()).unwrap()).unwrap())
            .collect();
        assert!(
            left.iter()
                .all(|p| !p.disposition(DrainFlags::ALL).evicts()),
            "{node}: {left:#?}"
        );
    }
}
