//! The lab's server-side apply, through kube-rs as `kha install` uses it: an apply
//! creates the object and records the field manager, the same apply again changes
//! nothing (same resourceVersion), a changed apply merges into the object, status stays
//! the controller's, and a mismatched body is refused.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::ConfigMap;
use kha::lab::kube::{KubeApiConfig, KubeApiServer, Store};
use kha::lab::topology::{Faults, LabSpec, Topology};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, Config};
use serde_json::json;

async fn lab() -> (Store, KubeApiServer, Client, tempfile::TempDir) {
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
    let server = KubeApiServer::start(store.clone(), KubeApiConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    (store, server, client, dir)
}

#[tokio::test]
async fn apply_creates_then_changes_nothing_then_merges() {
    let (_store, _server, client, _dir) = lab().await;
    let api: Api<ConfigMap> = Api::namespaced(client, "kube-system");
    let params = PatchParams::apply("kha").force();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kha-install", "namespace": "kube-system"},
        "data": {"cilium": "1"}});
    let created = api
        .patch("kha-install", &params, &Patch::Apply(&cm))
        .await
        .unwrap();
    let managers = created.metadata.managed_fields.clone().unwrap_or_default();
    assert_eq!(managers.len(), 1);
    assert_eq!(managers[0].manager.as_deref(), Some("kha"));
    assert_eq!(managers[0].operation.as_deref(), Some("Apply"));
    let again = api
        .patch("kha-install", &params, &Patch::Apply(&cm))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );
    let more = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kha-install", "namespace": "kube-system"},
        "data": {"velero": "2"}});
    let merged = api
        .patch("kha-install", &params, &Patch::Apply(&more))
        .await
        .unwrap();
    let data = merged.data.unwrap_or_default();
    assert_eq!(
        (
            data.get("cilium").map(String::as_str),
            data.get("velero").map(String::as_str)
        ),
        (Some("1"), Some("2"))
    );
    assert_ne!(
        merged.metadata.resource_version,
        created.metadata.resource_version
    );

    let wrong = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "other", "namespace": "kube-system"}});
    let err = api
        .patch("kha-install", &params, &Patch::Apply(&wrong))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the name of the object (other) does not match the name on the URL"),
        "{err}"
    );
}

#[tokio::test]
async fn apply_to_a_custom_resource_keeps_its_status() {
    let (store, _server, client, _dir) = lab().await;
    let gvk = GroupVersionKind::gvk("ceph.rook.io", "v1", "CephCluster");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "cephclusters");
    let api: Api<DynamicObject> = Api::namespaced_with(client, "rook-ceph", &resource);
    let before = store
        .get(
            "ceph.rook.io/v1",
            "CephCluster",
            Some("rook-ceph"),
            "rook-ceph",
        )
        .expect("the lab's CephCluster");
    let body = json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
        "metadata": {"name": "rook-ceph", "namespace": "rook-ceph"},
        "spec": {"mon": {"count": 5}},
        "status": {"phase": "Failure"}});
    api.patch(
        "rook-ceph",
        &PatchParams::apply("kha").force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
    let after = store
        .get(
            "ceph.rook.io/v1",
            "CephCluster",
            Some("rook-ceph"),
            "rook-ceph",
        )
        .unwrap();
    assert_eq!(after["spec"]["mon"]["count"], 5);
    assert_eq!(
        after["spec"]["dataDirHostPath"],
        before["spec"]["dataDirHostPath"]
    );
    assert_eq!(after["status"], before["status"]);
}

struct Yes;

impl kha::runbook::engine::Operator for Yes {
    fn ask(&mut self, _: &str) -> String {
        "y".into()
    }
    fn decide(&mut self, _: usize, _: &str, _: bool) -> kha::runbook::engine::Decision {
        kha::runbook::engine::Decision::Abort
    }
    fn progress(&mut self, _: kha::runbook::engine::Progress) {}
}

/// The built-in stack's Gatekeeper manifests, run by the engine against the lab: the
/// ConstraintTemplate is applied and waited for (the lab's Gatekeeper stand-in makes
/// the constraint CRD), then the privileged-container constraint is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeeper_constraint_follows_its_template() {
    use kha::install::plan::{self, ClusterFacts, HelmTarget, Observed};
    use kha::install::stack::{self, Source};
    use kha::runbook::{Operation, Runbook};

    let (store, _server, _client, dir) = lab().await;
    let controllers = kha::lab::controllers::spawn(store.clone());
    // What the Gatekeeper chart installs: the ConstraintTemplate CRD.
    store
        .put(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "constrainttemplates.templates.gatekeeper.sh"},
            "spec": {
                "group": "templates.gatekeeper.sh",
                "names": {"kind": "ConstraintTemplate", "listKind": "ConstraintTemplateList",
                    "plural": "constrainttemplates", "singular": "constrainttemplate"},
                "scope": "Cluster",
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                    "subresources": {"status": {}}}],
            },
        }))
        .unwrap();
    let mut set = std::collections::BTreeMap::new();
    set.insert("api_server_host".to_string(), "10.0.0.100".to_string());
    let stack = stack::parse(Source::embedded(), &set).unwrap();
    let observed = Observed {
        helm_version: Ok("v3.16.2".into()),
        releases: Vec::new(),
        state: Default::default(),
        present: Default::default(),
        cluster: ClusterFacts {
            server_version: Ok("v1.34.1".into()),
            denied: Vec::new(),
            nodes: Vec::new(),
            devices: Default::default(),
        },
    };
    let p = plan::plan(
        "lab",
        &stack,
        &observed,
        &["gatekeeper".to_string()],
        &HelmTarget::default(),
    )
    .unwrap();
    let steps: Vec<_> = p
        .runbook
        .steps
        .into_iter()
        .filter(
            |s| matches!(&s.operation, Operation::KubeApply { kind, .. } if kind != "ConfigMap"),
        )
        .collect();
    assert_eq!(steps.len(), 2);
    let rb = Runbook {
        preconditions: Vec::new(),
        steps,
        ..p.runbook
    };
    let kube = kha::sources::kube::KubeSourceConfig::new(
        Some(kha::sources::kube::KubeconfigSource::File(
            dir.path().join("kubeconfig"),
        )),
        None,
    );
    let mut engine = kha::runbook::engine::Engine {
        executor: kha::runbook::exec::LiveExecutor::new(&Default::default(), dir.path().into())
            .unwrap()
            .with_kube(kube),
        audit: kha::runbook::audit::AuditLog::in_dir(dir.path()),
        read_only: false,
        poll: std::time::Duration::from_millis(50),
        kube_user: None,
        seen: Vec::new(),
    };
    let report = engine.run(&rb, &mut Yes, None).await.unwrap();
    assert_eq!(report.completed, 2);
    let template = store
        .get(
            "templates.gatekeeper.sh/v1",
            "ConstraintTemplate",
            None,
            "k8spspprivilegedcontainer",
        )
        .unwrap();
    assert_eq!(template["status"]["created"], true);
    let constraint = store
        .get(
            "constraints.gatekeeper.sh/v1beta1",
            "K8sPSPPrivilegedContainer",
            None,
            "psp-privileged-container",
        )
        .expect("the constraint applied after its CRD appeared");
    assert_eq!(constraint["spec"]["match"]["kinds"][0]["kinds"][0], "Pod");
    controllers.abort();
}
