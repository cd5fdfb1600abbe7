//! The kube source: watches (never polls) what the Kubernetes-backed panes read, through
//! kube-runtime watchers that reconnect by themselves through API-server failover.
//!
//! Bounded at any cluster size: nodes are kept as small records; pods are never listed
//! cluster-wide. Control-plane pods are `kube-system` with `tier=control-plane`; GPU
//! pods come from one watch per GPU node (`spec.nodeName=<node>`, at most the node's
//! pod limit) plus one `status.phase=Pending` watch filtered to pods asking for
//! `nvidia.com/gpu` (only those are kept). Custom resources are asked of discovery
//! first: a missing CRD is reported "not installed" and asked about again later.

pub mod client;
pub mod convert;
pub mod feed;
mod gpu_pods;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use kube::{Client, discovery};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

pub use client::KubeconfigSource;
use feed::{FeedEnd, FeedSpec, RECHECK, send};

use crate::model::Msg;
use crate::model::kube::{Availability, CustomKind, FeedChange, KubeMsg, NodeInfo};

/// Where the kube source reads its kubeconfig, and which context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSourceConfig {
    pub kubeconfig: Option<KubeconfigSource>,
    pub context: Option<String>,
    /// A watch down longer than this makes its pane stale.
    pub stale_after: Duration,
    /// How long one watch request lasts before it is made again (from where it left
    /// off, no relist). Bounds how long a silently dead connection goes unnoticed:
    /// about this plus [`client::READ_MARGIN`].
    pub watch_timeout: Duration,
}

/// kube-apiserver's own watches last 30-60 minutes and kube-rs asks for 290 s; kha asks
/// for less, so that a connection that dies without a word (a dropped NAT entry, a
/// frozen API server) is noticed in well under a minute rather than in five.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(30);

impl KubeSourceConfig {
    pub fn new(kubeconfig: Option<KubeconfigSource>, context: Option<String>) -> Self {
        KubeSourceConfig {
            kubeconfig,
            context,
            stale_after: Duration::from_secs(15),
            watch_timeout: DEFAULT_WATCH_TIMEOUT,
        }
    }

    pub fn is_configured(&self) -> bool {
        self.kubeconfig.is_some()
    }
}

/// The source task: connect, then run every watch until the receiver goes away.
/// Dropping (aborting) it stops every watch.
pub async fn run(config: KubeSourceConfig, tx: mpsc::Sender<Msg>) {
    let Some(source) = &config.kubeconfig else {
        return;
    };
    let connection =
        match client::connect_with(source, config.context.as_deref(), config.watch_timeout).await {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Msg::Notice(format!("kube: {e:#}"))).await;
                let down = Availability::Down {
                    since: SystemTime::now(),
                    error: format!("{e:#}"),
                };
                let _ = send(&tx, KubeMsg::Nodes(FeedChange::Status(down))).await;
                return;
            }
        };
    for w in connection.warnings {
        let _ = tx.send(Msg::Notice(format!("kube: {w}"))).await;
    }
    if !send(&tx, KubeMsg::Target(connection.target)).await {
        return;
    }
    let client = connection.client;
    let base = watcher::Config::default().timeout(
        u32::try_from(config.watch_timeout.as_secs())
            .unwrap_or(u32::MAX)
            .max(1),
    );
    let (gpu_nodes_tx, gpu_nodes) = watch::channel(BTreeSet::new());
    let mut tasks = JoinSet::new();
    tasks.spawn(nodes(
        client.clone(),
        base.clone(),
        gpu_nodes_tx,
        tx.clone(),
    ));
    tasks.spawn(control_plane_pods(client.clone(), base.clone(), tx.clone()));
    tasks.spawn(gpu_pods::run(
        client.clone(),
        base.clone(),
        gpu_nodes,
        tx.clone(),
    ));
    for kind in CustomKind::ALL {
        tasks.spawn(custom(client.clone(), base.clone(), kind, tx.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// Every node, as a [`NodeInfo`]; tells the GPU pod watches which nodes have GPUs.
async fn nodes(
    client: Client,
    base: watcher::Config,
    gpu_nodes: watch::Sender<BTreeSet<String>>,
    tx: mpsc::Sender<Msg>,
) {
    let mut known: BTreeSet<String> = BTreeSet::new();
    let observe = move |change: &FeedChange<NodeInfo>| {
        match change {
            FeedChange::Reset(all) => {
                known = all
                    .iter()
                    .filter(|n| n.is_gpu())
                    .map(|n| n.name.clone())
                    .collect();
            }
            FeedChange::Upsert(n) if n.is_gpu() => {
                known.insert(n.name.clone());
            }
            FeedChange::Upsert(n) => {
                known.remove(&n.name);
            }
            FeedChange::Delete(name) => {
                known.remove(name);
            }
            FeedChange::Status(_) => return,
        }
        gpu_nodes.send_if_modified(|current| {
            let changed = *current != known;
            if changed {
                current.clone_from(&known);
            }
            changed
        });
    };
    let spec = FeedSpec {
        api: Api::<Node>::all(client),
        config: base,
        convert: convert::node,
        wrap: KubeMsg::Nodes,
        observe,
        permission: "list/watch nodes (cluster scope)".into(),
    };
    feed::run(spec, tx).await;
}

/// kubeadm's static pods: `kube-system`, `tier=control-plane`.
async fn control_plane_pods(client: Client, base: watcher::Config, tx: mpsc::Sender<Msg>) {
    let spec = FeedSpec {
        api: Api::<Pod>::namespaced(client, "kube-system"),
        config: base.labels("tier=control-plane"),
        convert: convert::pod,
        wrap: KubeMsg::ControlPlanePods,
        observe: |_: &FeedChange<_>| {},
        permission: "list/watch pods in ns kube-system".into(),
    };
    feed::run(spec, tx).await;
}

/// The API resource of a custom kind, if discovery knows it.
async fn discover(client: &Client, kind: CustomKind) -> Result<ApiResource, Availability> {
    let (group, version, kind_name, _) = kind.gvk();
    if group.is_empty() {
        return Ok(ApiResource::erase::<ConfigMap>(&()));
    }
    if kind == CustomKind::RolloutReplicaSet {
        // Built in: no discovery needed.
        return Ok(ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&()));
    }
    let gvk = GroupVersionKind::gvk(group, version, kind_name);
    match discovery::pinned_kind(client, &gvk).await {
        Ok((resource, _)) => Ok(resource),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(Availability::NotInstalled {
            hint: kind.install_hint().into(),
        }),
        Err(kube::Error::Discovery(_)) => Err(Availability::NotInstalled {
            hint: kind.install_hint().into(),
        }),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(Availability::Forbidden {
            permission: format!("get on the discovery of {group}/{version}"),
        }),
        Err(e) => Err(Availability::Down {
            since: SystemTime::now(),
            error: format!("discovery failed: {}", feed::short_error(&e)),
        }),
    }
}

/// One custom resource as raw objects, for the panes that derive from them.
async fn custom(client: Client, base: watcher::Config, kind: CustomKind, tx: mpsc::Sender<Msg>) {
    let mut failures = 0;
    loop {
        let resource = match discover(&client, kind).await {
            Ok(r) => r,
            Err(status) => {
                let wait = match status {
                    Availability::Down { .. } => {
                        failures += 1;
                        feed::backoff(failures)
                    }
                    _ => RECHECK,
                };
                if !send(&tx, KubeMsg::Custom(kind, FeedChange::Status(status))).await {
                    return;
                }
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        failures = 0;
        let api: Api<DynamicObject> = match kind.namespace() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let mut config = base.clone();
        if let Some(name) = kind.object_name() {
            config = config.fields(&format!("metadata.name={name}"));
        }
        if let Some(labels) = kind.label_selector() {
            config = config.labels(labels);
        }
        let spec = FeedSpec {
            api,
            config,
            convert: convert::custom,
            wrap: move |c| KubeMsg::Custom(kind, c),
            observe: |_: &FeedChange<_>| {},
            permission: kind.permission(),
        };
        match feed::run(spec, tx.clone()).await {
            FeedEnd::Closed => return,
            // The CRD went away: discovery says so on the next round.
            FeedEnd::NotFound => continue,
        }
    }
}
