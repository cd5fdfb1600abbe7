//! GPU pods without listing every pod: one watch per GPU node (`spec.nodeName=<node>`,
//! all its pods, so the pane can say which tolerate the GPU taint) started and stopped
//! as GPU nodes come and go, plus one `status.phase=Pending` watch of which only the
//! pods asking for `nvidia.com/gpu` are kept.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::convert;
use super::feed::{self, FeedSpec, send};
use crate::model::Msg;
use crate::model::kube::{FeedChange, GpuPodScope, KubeMsg};

/// A task aborted when its handle is dropped.
struct Watch(JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn pods_on(client: Client, base: watcher::Config, node: String, tx: mpsc::Sender<Msg>) -> Watch {
    Watch(tokio::spawn(async move {
        let scope = GpuPodScope::Node(node.clone());
        let spec = FeedSpec {
            api: Api::<Pod>::all(client),
            config: base.fields(&format!("spec.nodeName={node}")),
            convert: convert::pod,
            wrap: move |c| KubeMsg::GpuPods(scope.clone(), c),
            observe: |_: &FeedChange<_>| {},
            permission: "list/watch pods in all namespaces".into(),
        };
        feed::run(spec, tx).await;
    }))
}

fn pending(client: Client, base: watcher::Config, tx: mpsc::Sender<Msg>) -> Watch {
    Watch(tokio::spawn(async move {
        let spec = FeedSpec {
            api: Api::<Pod>::all(client),
            config: base.fields("status.phase=Pending"),
            convert: |p: Pod| convert::pod(p).filter(|p| p.gpu_request > 0),
            wrap: |c| KubeMsg::GpuPods(GpuPodScope::Pending, c),
            observe: |_: &FeedChange<_>| {},
            permission: "list/watch pods in all namespaces".into(),
        };
        feed::run(spec, tx).await;
    }))
}

/// Keeps one pod watch per GPU node in `gpu_nodes`, until the node feed goes away.
pub async fn run(
    client: Client,
    base: watcher::Config,
    mut gpu_nodes: watch::Receiver<BTreeSet<String>>,
    tx: mpsc::Sender<Msg>,
) {
    let _pending = pending(client.clone(), base.clone(), tx.clone());
    let mut watches: BTreeMap<String, Watch> = BTreeMap::new();
    loop {
        let wanted = gpu_nodes.borrow_and_update().clone();
        let gone: Vec<String> = watches
            .keys()
            .filter(|n| !wanted.contains(*n))
            .cloned()
            .collect();
        for node in gone {
            watches.remove(&node);
            if !send(&tx, KubeMsg::GpuScopeGone(GpuPodScope::Node(node))).await {
                return;
            }
        }
        for node in wanted {
            if let std::collections::btree_map::Entry::Vacant(slot) = watches.entry(node) {
                let node = slot.key().clone();
                slot.insert(pods_on(client.clone(), base.clone(), node, tx.clone()));
            }
        }
        if gpu_nodes.changed().await.is_err() {
            return;
        }
    }
}
