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
