//! What the node, drain and zone runbooks know about the cluster: nodes with their zone
//! and allocatable resources, pods with their requests and owner, PodDisruptionBudgets.
//! Read from the API once, when a plan is made, and again by the drain itself. The
//! conversions are pure and never panic on odd objects.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use color_eyre::eyre::{Result, eyre};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams};
use serde::Serialize;

pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// CPU, memory and GPUs: a node's allocatable or a pod's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub gpus: u64,
}

impl Resources {
    pub fn add(&mut self, other: Resources) {
        self.cpu_millis = self.cpu_millis.saturating_add(other.cpu_millis);
        self.memory_bytes = self.memory_bytes.saturating_add(other.memory_bytes);
        self.gpus = self.gpus.saturating_add(other.gpus);
    }

    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            gpus: self.gpus.saturating_sub(other.gpus),
        }
    }

    /// Each resource at least as large as the other's.
    pub fn covers(&self, need: &Resources) -> bool {
        self.cpu_millis >= need.cpu_millis
            && self.memory_bytes >= need.memory_bytes
            && self.gpus >= need.gpus
    }

    /// Each resource the larger of the two.
    pub fn max(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.max(other.cpu_millis),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
            gpus: self.gpus.max(other.gpus),
        }
    }
}

impl fmt::Display for Resources {
    /// `CPU 2.5, memory 3.0 GiB, GPUs 8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CPU {}, memory {:.1} GiB, GPUs {}",
            cores(self.cpu_millis),
            self.memory_bytes as f64 / (1u64 << 30) as f64,
            self.gpus
        )
    }
}

/// `2500` -> `2.5`, `3000` -> `3`.
pub(crate) fn cores(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{:.3}", millis as f64 / 1000.0)
            .trim_end_matches('0')
            .to_string()
    }
}

/// A Kubernetes quantity (`500m`, `2`, `512Mi`, `1G`, `1e3`) in units of 1/`scale`
/// (1000 for CPU millicores, 1 for bytes and counts); `None` when it does not parse.
pub fn quantity(text: &str, scale: u64) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let v = (value * factor * scale as f64).ceil();
    (v.is_finite() && v >= 0.0).then_some(v as u64)
}

fn resources_of(map: Option<&BTreeMap<String, Quantity>>) -> Resources {
    let get = |k: &str, scale| {
        map.and_then(|m| m.get(k))
            .and_then(|q| quantity(&q.0, scale))
            .unwrap_or(0)
    };
    Resources {
        cpu_millis: get("cpu", 1000),
        memory_bytes: get("memory", 1),
        gpus: get(GPU_RESOURCE, 1),
    }
}

/// A node as the runbooks see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeFacts {
    pub name: String,
    pub zone: Option<String>,
    pub ready: bool,
    pub unschedulable: bool,
    pub control_plane: bool,
    /// Taints that keep ordinary pods away (`NoSchedule`, `NoExecute`), as `key=value:effect`.
    pub blocking_taints: Vec<String>,
    pub allocatable: Resources,
}

impl NodeFacts {
    pub fn from_node(node: &Node) -> Option<NodeFacts> {
        let name = node.metadata.name.clone()?;
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.clone().unwrap_or_default();
        let status = node.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let blocking_taints = spec
            .taints
            .iter()
            .flatten()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .map(|t| match &t.value {
                Some(v) => format!("{}={v}:{}", t.key, t.effect),
                None => format!("{}:{}", t.key, t.effect),
            })
            .collect();
        Some(NodeFacts {
            zone: labels.get(ZONE_LABEL).cloned(),
            control_plane: labels.contains_key(CONTROL_PLANE_LABEL),
            name,
            ready,
            unschedulable: spec.unschedulable.unwrap_or(false),
            blocking_taints,
            allocatable: resources_of(status.allocatable.as_ref()),
        })
    }

    /// Whether ordinary workload pods can land here (schedulable, Ready, untainted).
    pub fn takes_workloads(&self) -> bool {
        self.ready && !self.unschedulable && self.blocking_taints.is_empty()
    }
}

/// What a drain may evict beyond pods a controller recreates: kubectl drain's `--force`
/// and `--delete-emptydir-data`. DaemonSet pods are always skipped (kubectl's
/// `--ignore-daemonsets`, always on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DrainFlags {
    /// Evict pods no controller manages too; nothing recreates them.
    pub force: bool,
    /// Evict pods with `emptyDir` volumes too; their local data is lost.
    pub delete_emptydir_data: bool,
}

impl DrainFlags {
    /// Both flags: what a drain that ran to its end evicted.
    pub const ALL: DrainFlags = DrainFlags {
        force: true,
        delete_emptydir_data: true,
    };
}

/// Why a drain refuses to start while a pod is on the node: the flags it lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// No controller would recreate the pod (`--force` allows it).
    pub no_controller: bool,
    /// The pod has `emptyDir` volumes whose data would be lost (`--delete-emptydir-data`
    /// allows it).
    pub empty_dir: bool,
}

impl Refusal {
    /// `no controller, nothing would recreate it (--force)`, and/or the emptyDir reason.
    pub fn describe(&self) -> String {
        let mut why = Vec::new();
        if self.no_controller {
            why.push("no controller, nothing would recreate it (--force)");
        }
        if self.empty_dir {
            why.push("emptyDir volume, its data would be lost (--delete-emptydir-data)");
        }
        why.join(" and ")
    }
}

/// Pods named in a refusal, at most.
const REFUSED_LISTED: usize = 10;

/// Why a drain with `flags` evicts nothing, when some of `pods` need a flag it lacks:
/// `2 pod(s) need a flag: ns/a: no controller, … (--force); ns/b: …`. The plan's
/// precondition and the drain itself (re-checking when it runs) say the same.
pub fn refusal<'a>(
    pods: impl IntoIterator<Item = &'a PodFacts>,
    flags: DrainFlags,
) -> Option<String> {
    let refused: Vec<String> = pods
        .into_iter()
        .filter_map(|p| match p.disposition(flags) {
            Disposition::Refuse(r) => Some(format!("{}: {}", p.key(), r.describe())),
            _ => None,
        })
        .collect();
    if refused.is_empty() {
        return None;
    }
    let mut out = format!(
        "{} pod(s) need a flag: {}",
        refused.len(),
        refused
            .iter()
            .take(REFUSED_LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    if refused.len() > REFUSED_LISTED {
        out.push_str(&format!("; and {} more", refused.len() - REFUSED_LISTED));
    }
    Some(out)
}

/// What a drain does with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// Evicted; its controller makes a new one elsewhere (or it had finished, and
    /// evicting it disrupts nothing).
    Evict,
    /// Evicted under `--force` although no controller manages it: gone for good.
    EvictUnmanaged,
    /// A static pod's mirror: the kubelet owns it; eviction cannot remove it.
    SkipMirror,
    /// The DaemonSet controller ignores unschedulable and would put it right back.
    SkipDaemonSet,
    /// The drain refuses to start (evicting nothing) while the pod is there.
    Refuse(Refusal),
}

impl Disposition {
    pub fn label(self) -> &'static str {
        match self {
            Disposition::Evict => "evict",
            Disposition::EvictUnmanaged => "evict, no controller: nothing recreates it",
            Disposition::SkipMirror => "mirror pod",
            Disposition::SkipDaemonSet => "DaemonSet pod",
            Disposition::Refuse(_) => "refused",
        }
    }

    /// Whether the drain evicts the pod.
    pub fn evicts(self) -> bool {
        matches!(self, Disposition::Evict | Disposition::EvictUnmanaged)
    }
}

/// A running pod of ReplicaSet `rs` in namespace `shop`, for unit tests.
#[cfg(test)]
impl PodFacts {
    pub(crate) fn test_pod(name: &str, node: Option<&str>, requests: Resources) -> PodFacts {
        PodFacts {
            namespace: "shop".into(),
            name: name.into(),
            uid: None,
            node: node.map(str::to_string),
            phase: "Running".into(),
            labels: BTreeMap::new(),
            mirror: false,
            controller: Some(("ReplicaSet".into(), "rs".into())),
            component: None,
            etcd_name: None,
            ready: true,
            requests,
            empty_dir: false,
        }
    }
}

/// A pod as the runbooks see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub node: Option<String>,
    pub phase: String,
    pub labels: BTreeMap<String, String>,
    pub mirror: bool,
    /// `(kind, name)` of the controlling owner.
    pub controller: Option<(String, String)>,
    /// `component=` label of kubeadm static pods.
    pub component: Option<String>,
    /// The etcd member name (`--name=`) of an etcd static pod.
    pub etcd_name: Option<String>,
    pub ready: bool,
    pub requests: Resources,
    /// Has `emptyDir` volumes (node-local data that goes with the pod).
    pub empty_dir: bool,
}

impl PodFacts {
    pub fn from_pod(pod: &Pod) -> Option<PodFacts> {
        let meta = &pod.metadata;
        let name = meta.name.clone()?;
        let labels = meta.labels.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let mut requests = Resources::default();
        for c in &spec.containers {
            requests.add(resources_of(
                c.resources.as_ref().and_then(|r| r.requests.as_ref()),
            ));
        }
        let init = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| resources_of(c.resources.as_ref().and_then(|r| r.requests.as_ref())))
            .fold(Resources::default(), Resources::max);
        Some(PodFacts {
            namespace: meta.namespace.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            node: spec.node_name.clone(),
            phase: status.phase.clone().unwrap_or_default(),
            mirror: meta
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION)),
            controller: meta
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| (o.kind.clone(), o.name.clone())),
            component: labels.get("component").cloned(),
            etcd_name: (labels.get("component").map(String::as_str) == Some("etcd"))
                .then(|| {
                    spec.containers.iter().find_map(|c| {
                        c.command
                            .iter()
                            .flatten()
                            .chain(c.args.iter().flatten())
                            .find_map(|a| a.strip_prefix("--name=").map(str::to_string))
                    })
                })
                .flatten(),
            ready: status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True"),
            labels,
            name,
            requests: requests.max(init),
            empty_dir: spec.volumes.iter().flatten().any(|v| v.empty_dir.is_some()),
        })
    }

    /// What a drain does with it: kubectl drain's filters. Mirror pods stay; finished
    /// pods go whatever the flags (DaemonSet ones too); running DaemonSet pods stay;
    /// pods without a controller need `--force` and pods with `emptyDir` volumes
    /// `--delete-emptydir-data`, else the whole drain is refused.
    pub fn disposition(&self, flags: DrainFlags) -> Disposition {
        if self.mirror {
            return Disposition::SkipMirror;
        }
        if self.finished() {
            return Disposition::Evict;
        }
        if self.owned_by_daemonset() {
            return Disposition::SkipDaemonSet;
        }
        let missing = Refusal {
            no_controller: self.controller.is_none() && !flags.force,
            empty_dir: self.empty_dir && !flags.delete_emptydir_data,
        };
        if missing.no_controller || missing.empty_dir {
            Disposition::Refuse(missing)
        } else if self.controller.is_none() {
            Disposition::EvictUnmanaged
        } else {
            Disposition::Evict
        }
    }

    fn owned_by_daemonset(&self) -> bool {
        self.controller
            .as_ref()
            .is_some_and(|(kind, _)| kind == "DaemonSet")
    }

    /// Evicted by a drain and made again elsewhere by its controller: what needs room on
    /// other nodes (not mirror, DaemonSet, finished or unmanaged pods).
    pub fn recreated_elsewhere(&self) -> bool {
        !self.mirror && !self.finished() && !self.owned_by_daemonset() && self.controller.is_some()
    }

    /// Succeeded or Failed: evicting it disrupts nothing.
    pub fn finished(&self) -> bool {
        matches!(self.phase.as_str(), "Succeeded" | "Failed")
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A PodDisruptionBudget, enough to predict and explain a blocked eviction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PdbFacts {
    pub namespace: String,
    pub name: String,
    /// `matchLabels` of the selector (`None`: a selector this summary cannot evaluate).
    pub match_labels: Option<BTreeMap<String, String>>,
    pub disruptions_allowed: i64,
    pub current_healthy: i64,
    pub desired_healthy: i64,
}

impl PdbFacts {
    pub fn from_pdb(pdb: &PodDisruptionBudget) -> Option<PdbFacts> {
        let spec = pdb.spec.clone().unwrap_or_default();
        let status = pdb.status.clone().unwrap_or_default();
        let match_labels = spec.selector.as_ref().and_then(|s| {
            s.match_expressions
                .as_ref()
                .is_none_or(|e| e.is_empty())
                .then(|| s.match_labels.clone().unwrap_or_default())
        });
        Some(PdbFacts {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            name: pdb.metadata.name.clone()?,
            match_labels,
            disruptions_allowed: i64::from(status.disruptions_allowed.unwrap_or(0)),
            current_healthy: i64::from(status.current_healthy.unwrap_or(0)),
            desired_healthy: i64::from(status.desired_healthy.unwrap_or(0)),
        })
    }

    pub fn selects(&self, pod: &PodFacts) -> bool {
        self.namespace == pod.namespace
            && self.match_labels.as_ref().is_some_and(|m| {
                !m.is_empty() && m.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
            })
    }
}

/// Nodes, the pods that matter and the budgets, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterFacts {
    pub nodes: Vec<NodeFacts>,
    pub pods: Vec<PodFacts>,
    pub pdbs: Vec<PdbFacts>,
    /// `true` when `pods` holds every pod of the nodes it was read for; `false` when
    /// pods were not read (the TUI plans from its watches; the drain lists them).
    pub pods_listed: bool,
}

impl ClusterFacts {
    pub fn node(&self, name: &str) -> Option<&NodeFacts> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a PodFacts> + 'a {
        self.pods
            .iter()
            .filter(move |p| p.node.as_deref() == Some(node))
    }

    /// Every node's pods, indexed once: planning for thousands of nodes must not scan
    /// every pod once per node.
    pub fn pods_by_node(&self) -> HashMap<&str, Vec<&PodFacts>> {
        let mut index: HashMap<&str, Vec<&PodFacts>> = HashMap::new();
        for p in &self.pods {
            if let Some(n) = p.node.as_deref() {
                index.entry(n).or_default().push(p);
            }
        }
        index
    }

    /// The budget that would block evicting `pod` now, if any.
    pub fn blocking_pdb(&self, pod: &PodFacts) -> Option<&PdbFacts> {
        self.pdbs
            .iter()
            .find(|b| b.selects(pod) && b.disruptions_allowed <= 0)
    }
}

/// Every node.
pub async fn list_nodes(client: &kube::Client) -> Result<Vec<NodeFacts>> {
    let api: Api<Node> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| eyre!("list nodes: {e}"))?;
    Ok(list.items.iter().filter_map(NodeFacts::from_node).collect())
}

/// The pods bound to `node` (one field-selected list, never every pod).
pub async fn pods_on_node(client: &kube::Client, node: &str) -> Result<Vec<PodFacts>> {
    let api: Api<Pod> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map_err(|e| eyre!("list pods on {node}: {e}"))?;
    Ok(list.items.iter().filter_map(PodFacts::from_pod).collect())
}

/// Every PodDisruptionBudget.
pub async fn list_pdbs(client: &kube::Client) -> Result<Vec<PdbFacts>> {
    let api: Api<PodDisruptionBudget> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| eyre!("list PodDisruptionBudgets: {e}"))?;
    Ok(list.items.iter().filter_map(PdbFacts::from_pdb).collect())
}

/// Nodes, budgets, and the pods of `nodes` (each listed by field selector).
pub async fn gather(client: &kube::Client, pods_of: &[String]) -> Result<ClusterFacts> {
    let nodes = list_nodes(client).await?;
    let pdbs = list_pdbs(client).await?;
    let mut pods = Vec::new();
    for n in pods_of {
        pods.extend(pods_on_node(client, n).await?);
    }
    Ok(ClusterFacts {
        nodes,
        pods,
        pdbs,
        pods_listed: true,
    })
}

/// Nodes, budgets and every pod (paginated): what a zone evacuation weighs capacity
/// with. One read when the plan is made, never a watch.
pub async fn gather_all(client: &kube::Client) -> Result<ClusterFacts> {
    let nodes = list_nodes(client).await?;
    let pdbs = list_pdbs(client).await?;
    let api: Api<Pod> = Api::all(client.clone());
    let mut pods = Vec::new();
    let mut params = ListParams::default()
        .fields("status.phase!=Succeeded,status.phase!=Failed")
        .limit(500);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| eyre!("list pods: {e}"))?;
        pods.extend(page.items.iter().filter_map(PodFacts::from_pod));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(ClusterFacts {
        nodes,
        pods,
        pdbs,
        pods_listed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("500m", 1000), Some(500));
        assert_eq!(quantity("2", 1000), Some(2000));
        assert_eq!(quantity("1.5", 1000), Some(1500));
        assert_eq!(quantity("512Mi", 1), Some(512 << 20));
        assert_eq!(quantity("1G", 1), Some(1_000_000_000));
        assert_eq!(quantity("1e3", 1), Some(1000));
        assert_eq!(quantity("8", 1), Some(8));
        assert_eq!(quantity("lots", 1), None);
        assert_eq!(quantity("", 1), None);
        assert_eq!(quantity("-1", 1), None);
    }

    fn pod(controller: Option<&str>, phase: &str) -> PodFacts {
        PodFacts {
            phase: phase.into(),
            controller: controller.map(|k| (k.to_string(), "owner".to_string())),
            ..PodFacts::test_pod("p", Some("worker-a-1"), Resources::default())
        }
    }

    #[test]
    fn dispositions_follow_kubectl_drain_filters() {
        let none = DrainFlags::default();
        let force = DrainFlags {
            force: true,
            ..none
        };
        let emptydir = DrainFlags {
            delete_emptydir_data: true,
            ..none
        };
        let managed = pod(Some("ReplicaSet"), "Running");
        assert_eq!(managed.disposition(none), Disposition::Evict);
        assert!(managed.recreated_elsewhere());
        let daemon = pod(Some("DaemonSet"), "Running");
        assert_eq!(
            daemon.disposition(DrainFlags::ALL),
            Disposition::SkipDaemonSet
        );
        assert!(!daemon.recreated_elsewhere());
        let mut mirror = pod(Some("Node"), "Succeeded");
        mirror.mirror = true;
        assert_eq!(mirror.disposition(DrainFlags::ALL), Disposition::SkipMirror);

        let bare = pod(None, "Running");
        assert_eq!(
            bare.disposition(none),
            Disposition::Refuse(Refusal {
                no_controller: true,
                empty_dir: false
            })
        );
        assert_eq!(bare.disposition(force), Disposition::EvictUnmanaged);
        assert!(!bare.recreated_elsewhere());
        let mut scratch = pod(Some("StatefulSet"), "Running");
        scratch.empty_dir = true;
        assert!(matches!(scratch.disposition(force), Disposition::Refuse(_)));
        assert_eq!(scratch.disposition(emptydir), Disposition::Evict);
        let mut both = pod(None, "Running");
        both.empty_dir = true;
        assert_eq!(
            both.disposition(force),
            Disposition::Refuse(Refusal {
                no_controller: false,
                empty_dir: true
            })
        );
        assert_eq!(
            both.disposition(DrainFlags::ALL),
            Disposition::EvictUnmanaged
        );

        // Finished pods go whatever the flags, DaemonSet ones too.
        let mut done = pod(None, "Succeeded");
        done.empty_dir = true;
        assert_eq!(done.disposition(none), Disposition::Evict);
        assert_eq!(
            pod(Some("DaemonSet"), "Failed").disposition(none),
            Disposition::Evict
        );
        assert!(!done.recreated_elsewhere());
    }

    #[test]
    fn a_refusal_names_each_pod_and_its_flag_and_counts_the_rest() {
        let mut pods: Vec<PodFacts> = (0..12)
            .map(|i| PodFacts {
                name: format!("bare-{i:02}"),
                ..pod(None, "Running")
            })
            .collect();
        pods[1].empty_dir = true;
        pods.push(pod(Some("ReplicaSet"), "Running"));
        let why = refusal(&pods, DrainFlags::default()).unwrap();
        assert!(
            why.starts_with(
                "12 pod(s) need a flag: shop/bare-00: no controller, nothing would recreate it (--force); \
                 shop/bare-01: no controller, nothing would recreate it (--force) and emptyDir volume, \
                 its data would be lost (--delete-emptydir-data); shop/bare-02"
            ),
            "{why}"
        );
        assert!(why.ends_with("; and 2 more"), "{why}");
        assert_eq!(refusal(&pods, DrainFlags::ALL), None);
    }

    #[test]
    fn resources_display_in_cores_and_gib() {
        let r = Resources {
            cpu_millis: 2500,
            memory_bytes: 3 << 30,
            gpus: 8,
        };
        assert_eq!(r.to_string(), "CPU 2.5, memory 3.0 GiB, GPUs 8");
    }
}
