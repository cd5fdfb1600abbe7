//! The runbook engine's Kubernetes executor against the lab's API server: a merge patch
//! that cordons a node, verified on the stored object, and a clear error without a
//! kubeconfig or for an object that does not exist.

use std::time::{Duration, SystemTime};

use kha::lab::kube::{KubeApiConfig, KubeApiServer, Store};
use kha::lab::topology::{Faults, LabSpec, Topology};
use kha::runbook::audit::AuditLog;
use kha::runbook::engine::{Decision, Engine, Operator, Progress};
use kha::runbook::exec::LiveExecutor;
use kha::runbook::{Operation, Risk, Runbook, Step, Verification};
use kha::sources::kube::{KubeSourceConfig, KubeconfigSource};

struct Yes;

impl Operator for Yes {
    fn ask(&mut self, _: &str) -> String {
        "y".into()
    }
    fn decide(&mut self, _: usize, _: &str, _: bool) -> Decision {
        Decision::Abort
    }
    fn progress(&mut self, _: Progress) {}
}

fn cordon(node: &str) -> Runbook {
    Runbook {
        id: "node.cordon".into(),
        title: format!("Cordon {node}"),
        cluster: "lab".into(),
        summary: String::new(),
        preconditions: Vec::new(),
        steps: vec![Step {
            title: format!("Mark {node} unschedulable"),
            explanation: String::new(),
            risk: Risk::Disruptive,
            operation: Operation::KubeMergePatch {
                resource: ("".into(), "v1".into(), "Node".into(), "nodes".into()),
                namespace: None,
                name: node.into(),
                patch: r#"{"spec":{"unschedulable":true}}"#.into(),
            },
            verification: Verification::None,
            timeout: Duration::from_secs(5),
            on_failure: "check the node name".into(),
            skippable: false,
        }],
    }
}

#[tokio::test]
async fn a_merge_patch_cordons_a_node_through_the_api() {
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
    let server = KubeApiServer::start(store.clone(), KubeApiConfig::default())
        .await
        .expect("API server");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kube = KubeSourceConfig::new(Some(KubeconfigSource::File(kubeconfig)), None);
    let node = topology.control_plane[0].name.clone();

    let mut engine = Engine {
        executor: LiveExecutor::new(&Default::default(), dir.path().to_path_buf())
            .unwrap()
            .with_kube(kube.clone()),
        audit: AuditLog::in_dir(dir.path()),
        read_only: false,
        poll: Duration::from_millis(50),
        kube_user: None,
        seen: Vec::new(),
    };
    let report = engine
        .run(&cordon(&node), &mut Yes, None)
        .await
        .expect("ran");
    assert_eq!(report.completed, 1);
    let stored = store.get("v1", "Node", None, &node).expect("node");
    assert_eq!(stored["spec"]["unschedulable"], true, "{}", stored["spec"]);

    let err = engine
        .run(&cordon("no-such-node"), &mut Yes, None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("no-such-node"), "{err:#}");

    let mut without = Engine {
        executor: LiveExecutor::new(&Default::default(), dir.path().to_path_buf()).unwrap(),
        audit: AuditLog::in_dir(dir.path()),
        read_only: false,
        poll: Duration::from_millis(50),
        kube_user: None,
        seen: Vec::new(),
    };
    let err = without
        .run(&cordon(&node), &mut Yes, None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("no kubeconfig"), "{err:#}");
}
