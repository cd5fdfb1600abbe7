//! kube-rs (client + runtime) against the lab's Kubernetes API server: the watcher's
//! list+watch, a cordon through `Api::cordon`, reconnecting after the server drops
//! every watch, relisting after 410 Gone once the history is compacted, paginated
//! lists, the status subresource of an Argo Rollout, and metadata-only watches with
//! label selectors.

use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kha::lab::kube::{KubeApiConfig, KubeApiServer, Store};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher as watch_resource;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};

fn node(name: &str, zone: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone, "kubernetes.io/hostname": name}},
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.4"}}})
}

fn pod(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
        "spec": {"nodeName": "cp-eu-west-1a", "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
        "status": {"phase": "Running"}})
}

fn rollout() -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "checkout"}},
                 "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}]}}},
        "status": {"phase": "Paused", "currentStepIndex": 1, "replicas": 4, "availableReplicas": 4}})
}

/// A store with three nodes, five pods and a rollout, served, plus a kube-rs client
/// built from the kubeconfig the server writes.
async fn lab() -> (Store, KubeApiServer, Client, tempfile::TempDir) {
    let store = Store::new();
    let mut objects = vec![
        node("cp-eu-west-1a", "eu-west-1a"),
        node("cp-eu-west-1b", "eu-west-1b"),
        node("cp-eu-west-1c", "eu-west-1c"),
        rollout(),
    ];
    for component in ["etcd", "kube-apiserver", "kube-scheduler"] {
        objects.push(pod(
            &format!("{component}-cp-eu-west-1a"),
            json!({"component": component, "tier": "control-plane"}),
        ));
    }
    objects.push(pod(
        "coredns-5d78c9869d-4kq2x",
        json!({"k8s-app": "kube-dns"}),
    ));
    objects.push(pod(
        "coredns-5d78c9869d-8ztxm",
        json!({"k8s-app": "kube-dns"}),
    ));
    store.put_many(objects).unwrap();
    let server = KubeApiServer::start(
        store.clone(),
        KubeApiConfig {
            token: "watch-test-token".into(),
            ..KubeApiConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    (store, server, client, dir)
}

async fn next<S, T>(stream: &mut S) -> T
where
    S: Stream<Item = T> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("no watch event within 10 s")
        .expect("the watch stream ended")
}

/// Reads an Init..InitDone cycle; returns the names listed.
async fn initial_list<S, K>(stream: &mut S) -> Vec<String>
where
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Unpin,
    K: ResourceExt,
{
    let mut names = Vec::new();
    loop {
        match next(stream).await.unwrap() {
            Event::Init => names.clear(),
            Event::InitApply(obj) => names.push(obj.name_any()),
            Event::InitDone => return names,
            other => panic!(
                "unexpected event during the initial list: {:?}",
                kind_of(&other)
            ),
        }
    }
}

fn kind_of<K>(e: &Event<K>) -> &'static str {
    match e {
        Event::Init => "Init",
        Event::InitApply(_) => "InitApply",
        Event::InitDone => "InitDone",
        Event::Apply(_) => "Apply",
        Event::Delete(_) => "Delete",
    }
}

/// The next Apply (skipping nothing else: a relist here would be a failure).
async fn next_apply<S>(stream: &mut S) -> Node
where
    S: Stream<Item = Result<Event<Node>, watcher::Error>> + Unpin,
{
    match next(stream).await.unwrap() {
        Event::Apply(node) => node,
        other => panic!("expected Apply, got {}", kind_of(&other)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_follows_cordons_reconnects_and_relists() {
    let (store, server, client, _dir) = lab().await;
    let nodes: Api<Node> = Api::all(client);
    let mut events = watch_resource(nodes.clone(), watcher::Config::default()).boxed();

    // (a) the initial list, then a cordon through kube-rs (a strategic merge patch).
    let mut listed = initial_list(&mut events).await;
    listed.sort();
    assert_eq!(listed, ["cp-eu-west-1a", "cp-eu-west-1b", "cp-eu-west-1c"]);
    nodes.cordon("cp-eu-west-1b").await.unwrap();
    let cordoned = next_apply(&mut events).await;
    assert_eq!(cordoned.name_any(), "cp-eu-west-1b");
    assert_eq!(cordoned.spec.unwrap().unschedulable, Some(true));

    // (b) the server drops every watch; the watcher re-watches from its
    // resourceVersion without relisting and sees later changes.
    server.drop_watches();
    tokio::time::sleep(Duration::from_millis(200)).await;
    store
        .modify("v1", "Node", None, "cp-eu-west-1c", |n| {
            n["metadata"]["labels"]["kha.dev/drill"] = json!("zone-c");
        })
        .unwrap();
    let relabelled = next_apply(&mut events).await;
    assert_eq!(relabelled.name_any(), "cp-eu-west-1c");
    assert_eq!(relabelled.labels()["kha.dev/drill"], "zone-c");

    // (c) after compaction the resume gets 410 Gone, the watcher relists and goes on.
    store.compact();
    server.drop_watches();
    match next(&mut events).await {
        Err(watcher::Error::WatchError(status)) => assert_eq!(status.code, 410, "{status:?}"),
        Err(other) => panic!("expected a 410 watch error, got {other:?}"),
        Ok(event) => panic!("expected a 410 watch error, got {}", kind_of(&event)),
    }
    let relisted = initial_list(&mut events).await;
    assert_eq!(relisted.len(), 3);
    nodes.uncordon("cp-eu-west-1b").await.unwrap();
    let uncordoned = next_apply(&mut events).await;
    assert_eq!(uncordoned.name_any(), "cp-eu-west-1b");
    assert_ne!(uncordoned.spec.unwrap().unschedulable, Some(true));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_through_continue_tokens() {
    let (store, server, client, _dir) = lab().await;
    let pods: Api<Pod> = Api::all(client.clone());
    let mut params = ListParams::default().limit(2);
    let mut names = Vec::new();
    let mut pages = 0;
    let mut first_rv = None;
    loop {
        let page = pods.list(&params).await.unwrap();
        pages += 1;
        assert!(
            page.items.len() <= 2,
            "page {pages} has {} items",
            page.items.len()
        );
        let rv = page.metadata.resource_version.clone().unwrap();
        assert_eq!(
            first_rv.get_or_insert(rv.clone()),
            &rv,
            "pages of one list share a resourceVersion"
        );
        names.extend(page.items.iter().map(|p| p.name_any()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    let expected: Vec<String> = store
        .list("v1", "Pod")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pages, 3);
    assert_eq!(names, expected);

    // A continue token from before a compaction is too old: 410.
    let first = pods.list(&ListParams::default().limit(2)).await.unwrap();
    store.compact();
    let token = first.metadata.continue_.unwrap();
    let err = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => assert_eq!(status.code, 410, "{status:?}"),
        other => panic!("expected 410, got {other:?}"),
    }

    // Label selectors on lists.
    let control_plane = Api::<Pod>::namespaced(client, "kube-system")
        .list(&ListParams::default().labels("tier=control-plane,component!=etcd"))
        .await
        .unwrap();
    let mut selected: Vec<String> = control_plane.items.iter().map(|p| p.name_any()).collect();
    selected.sort();
    assert_eq!(
        selected,
        [
            "kube-apiserver-cp-eu-west-1a",
            "kube-scheduler-cp-eu-west-1a"
        ]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_patches_touch_only_status() {
    let (store, server, client, _dir) = lab().await;
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout");
    let rollouts: Api<DynamicObject> =
        Api::namespaced_with(client, "shop", &ApiResource::from_gvk(&gvk));
    let before = store
        .get("argoproj.io/v1alpha1", "Rollout", Some("shop"), "checkout")
        .unwrap();

    // (e) what `kubectl argo rollouts abort` sends: a merge patch on the status subresource.
    let aborted = rollouts
        .patch_status(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"abort": true}})),
        )
        .await
        .unwrap();
    assert_eq!(aborted.data["status"]["abort"], json!(true));
    assert_eq!(aborted.data["status"]["phase"], json!("Paused"));
    let stored = store
        .get("argoproj.io/v1alpha1", "Rollout", Some("shop"), "checkout")
        .unwrap();
    assert_eq!(stored["spec"], before["spec"]);
    assert_eq!(stored["status"]["abort"], json!(true));
    assert_eq!(
        stored["metadata"]["generation"],
        before["metadata"]["generation"]
    );

    // Spec changes sent to /status are ignored; status changes sent to the main
    // resource are ignored (the CRD has a status subresource).
    rollouts
        .patch_status(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    let paused = rollouts
        .patch(
            "checkout",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}, "status": {"abort": false}})),
        )
        .await
        .unwrap();
    assert_eq!(paused.data["spec"]["replicas"], json!(4));
    assert_eq!(paused.data["spec"]["paused"], json!(true));
    assert_eq!(paused.data["status"]["abort"], json!(true));
    assert_eq!(paused.metadata.generation, Some(2));

    // A stale resourceVersion in a replace is a conflict.
    let mut stale: DynamicObject = serde_json::from_value(before).unwrap();
    stale.data["spec"]["replicas"] = json!(5);
    let err = rollouts
        .replace("checkout", &Default::default(), &stale)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"))
        }
        other => panic!("expected 409, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_watches_follow_label_selectors() {
    let (store, server, client, _dir) = lab().await;
    // Api<PartialObjectMeta<_>> asks for PartialObjectMetadata(List) representations.
    let pods: Api<PartialObjectMeta<Pod>> = Api::namespaced(client, "kube-system");
    let config = watcher::Config::default().labels("tier=control-plane");
    let mut events = watch_resource(pods, config).boxed();
    let mut names = Vec::new();
    loop {
        match next(&mut events).await.unwrap() {
            Event::Init => {}
            Event::InitApply(meta) => names.push(meta.name_any()),
            Event::InitDone => break,
            other => panic!("unexpected {}", kind_of(&other)),
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "etcd-cp-eu-west-1a",
            "kube-apiserver-cp-eu-west-1a",
            "kube-scheduler-cp-eu-west-1a"
        ]
    );
    // A pod that stops matching the selector is reported deleted; one that starts
    // matching is reported added.
    store
        .modify(
            "v1",
            "Pod",
            Some("kube-system"),
            "etcd-cp-eu-west-1a",
            |p| {
                p["metadata"]["labels"]["tier"] = json!("moved");
            },
        )
        .unwrap();
    match next(&mut events).await.unwrap() {
        Event::Delete(meta) => assert_eq!(meta.name_any(), "etcd-cp-eu-west-1a"),
        other => panic!("expected Delete, got {}", kind_of(&other)),
    }
    store
        .modify(
            "v1",
            "Pod",
            Some("kube-system"),
            "coredns-5d78c9869d-4kq2x",
            |p| {
                p["metadata"]["labels"]["tier"] = json!("control-plane");
            },
        )
        .unwrap();
    match next(&mut events).await.unwrap() {
        Event::Apply(meta) => assert_eq!(meta.name_any(), "coredns-5d78c9869d-4kq2x"),
        other => panic!("expected Apply, got {}", kind_of(&other)),
    }
    server.shutdown().await;
}
