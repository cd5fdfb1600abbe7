//! GPU nodes: per node its GPU taint(s), accelerator and NVIDIA labels, allocatable vs
//! requested `nvidia.com/gpu`, the pods on it and whether each tolerates the GPU taint,
//! zone and cordon state. Findings: GPU pods pending for lack of GPUs, a GPU node
//! without its taint, all GPU nodes in one zone, a GPU node not Ready.

// DCGM exporter metrics joined by hostname (issue 5).
#[path = "gpu_metrics.rs"]
pub mod metrics;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::finding::{Finding, Health};
use super::kube::{Availability, GpuPodScope, KubeState, NodeInfo, PodInfo, Readiness, Taint};

pub const PANE: &str = "gpu";

/// A pod on a GPU node (or a Pending GPU pod).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuPodRow {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub ready: bool,
    pub gpus: u32,
    /// Whether it tolerates the node's GPU taint(s); `None` when the node has none.
    pub tolerates_taint: Option<bool>,
    /// The scheduler's message for a Pending pod.
    pub unschedulable: Option<String>,
}

/// One GPU node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuNodeRow {
    pub name: String,
    pub zone: Option<String>,
    pub ready: Readiness,
    pub cordoned: bool,
    /// The taints that keep non-GPU pods off (`nvidia.com/gpu=present:NoSchedule`).
    pub gpu_taints: Vec<String>,
    pub other_taints: Vec<String>,
    /// Accelerator / NVIDIA / node-group labels.
    pub labels: BTreeMap<String, String>,
    pub product: Option<String>,
    pub capacity: u32,
    pub allocatable: u32,
    pub requested: u32,
    pub pods: Vec<GpuPodRow>,
    /// Its GPUs as dcgm-exporter reports them (empty without Prometheus or DCGM).
    pub gpus: Vec<metrics::GpuDevice>,
}

impl GpuNodeRow {
    pub fn free(&self) -> u32 {
        self.allocatable.saturating_sub(self.requested)
    }

    /// Pods that do not tolerate the GPU taint (they were there before it, or ignore it).
    pub fn intolerant_pods(&self) -> usize {
        self.pods
            .iter()
            .filter(|p| p.tolerates_taint == Some(false))
            .count()
    }

    pub fn health(&self) -> Health {
        if self.ready != Readiness::Ready || self.gpu_taints.is_empty() {
            Health::Warn
        } else {
            Health::Ok
        }
    }

    pub fn search_text(&self) -> String {
        format!(
            "{} {} {} {}",
            self.name,
            self.zone.as_deref().unwrap_or(""),
            self.product.as_deref().unwrap_or(""),
            self.ready.word()
        )
    }
}

/// Everything the pane, its tile and `kha status` show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuView {
    pub rows: Vec<GpuNodeRow>,
    /// GPU pods no node took.
    pub pending: Vec<GpuPodRow>,
    pub findings: Vec<Finding>,
}

impl GpuView {
    pub fn allocatable(&self) -> u32 {
        self.rows.iter().map(|r| r.allocatable).sum()
    }
    pub fn requested(&self) -> u32 {
        self.rows.iter().map(|r| r.requested).sum()
    }
}

/// The columns `sort` cycles through.
pub const SORTS: [&str; 4] = ["node", "zone", "free GPUs", "pods"];

/// The rows the pane shows: filtered by `/`, sorted by the chosen column.
pub fn visible<'a>(
    rows: &'a [GpuNodeRow],
    view: &crate::model::table_view::TableView,
) -> Vec<&'a GpuNodeRow> {
    let mut out: Vec<&GpuNodeRow> = rows
        .iter()
        .filter(|r| view.matches(&r.search_text()))
        .collect();
    match SORTS.get(view.sort).copied().unwrap_or("node") {
        "zone" => out.sort_by(|a, b| (&a.zone, &a.name).cmp(&(&b.zone, &b.name))),
        // Fullest first.
        "free GPUs" => out.sort_by_key(|r| r.free()),
        "pods" => out.sort_by_key(|r| std::cmp::Reverse(r.pods.len())),
        _ => {}
    }
    if view.descending {
        out.reverse();
    }
    out
}

/// A taint that reserves the node for GPU work: it repels, and names a GPU
/// (`nvidia.com/gpu`, `dedicated=gpu`, `accelerator=...`).
pub fn is_gpu_taint(t: &Taint) -> bool {
    let says_gpu = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("gpu") || s.contains("accelerator")
    };
    t.repels()
        && !t.key.starts_with("node.kubernetes.io/")
        && (says_gpu(&t.key) || t.value.as_deref().is_some_and(says_gpu))
}

fn pod_row(p: &PodInfo, gpu_taints: &[&Taint]) -> GpuPodRow {
    GpuPodRow {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        phase: p.phase.clone(),
        ready: p.ready,
        gpus: p.gpu_request,
        tolerates_taint: (!gpu_taints.is_empty())
            .then(|| gpu_taints.iter().all(|t| p.tolerates(t))),
        unschedulable: p.unschedulable.clone(),
    }
}

fn node_row(node: &NodeInfo, pods: &[&PodInfo]) -> GpuNodeRow {
    let gpu_taints: Vec<&Taint> = node.taints.iter().filter(|t| is_gpu_taint(t)).collect();
    let mut on_node: Vec<&PodInfo> = pods
        .iter()
        .copied()
        .filter(|p| p.node.as_deref() == Some(node.name.as_str()) && p.is_active())
        .collect();
    // GPU pods first, then by name.
    on_node.sort_by(|a, b| (b.gpu_request, &a.name).cmp(&(a.gpu_request, &b.name)));
    GpuNodeRow {
        name: node.name.clone(),
        zone: node.zone.clone(),
        ready: node.ready,
        cordoned: node.unschedulable,
        gpu_taints: gpu_taints.iter().map(|t| t.spec()).collect(),
        other_taints: node
            .taints
            .iter()
            .filter(|t| !is_gpu_taint(t))
            .map(Taint::spec)
            .collect(),
        labels: node.labels.clone(),
        product: node.labels.get("nvidia.com/gpu.product").cloned(),
        capacity: node.gpu_capacity,
        allocatable: node.gpu_allocatable,
        requested: on_node.iter().map(|p| p.gpu_request).sum(),
        pods: on_node.iter().map(|p| pod_row(p, &gpu_taints)).collect(),
        gpus: Vec::new(),
    }
}

/// Rows (by name), pending GPU pods and findings.
pub fn derive(kube: &KubeState) -> GpuView {
    let pods = kube.gpu_pods();
    let rows: Vec<GpuNodeRow> = kube
        .nodes
        .objects
        .iter()
        .filter(|n| n.is_gpu())
        .map(|n| node_row(n, &pods))
        .collect();
    let pending: Vec<GpuPodRow> = kube
        .gpu_pods
        .get(&GpuPodScope::Pending)
        .map(|f| {
            f.objects
                .iter()
                .filter(|p| p.gpu_request > 0 && p.node.is_none())
                .map(|p| pod_row(p, &[]))
                .collect()
        })
        .unwrap_or_default();
    let findings = findings(kube, &rows, &pending);
    GpuView {
        rows,
        pending,
        findings,
    }
}

/// Joins dcgm-exporter's GPUs to the nodes by hostname and adds the hot and
/// idle-but-allocated findings (also for GPUs whose host is not a known GPU node).
pub fn join_metrics(
    view: &mut GpuView,
    devices: &[metrics::GpuDevice],
    thresholds: &metrics::GpuThresholds,
) {
    for row in &mut view.rows {
        row.gpus = devices
            .iter()
            .filter(|d| d.hostname == row.name)
            .cloned()
            .collect();
    }
    view.findings.extend(metrics::findings(devices, thresholds));
    view.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
}

fn findings(kube: &KubeState, rows: &[GpuNodeRow], pending: &[GpuPodRow]) -> Vec<Finding> {
    let mut out = Vec::new();
    let forbidden = std::iter::once(&kube.nodes.availability)
        .chain(kube.gpu_pods.values().map(|f| &f.availability));
    for a in forbidden {
        if let Availability::Forbidden { permission } = a {
            out.push(Finding {
                severity: Health::Unknown,
                pane: PANE,
                message: format!("cannot read GPU nodes or pods: kha needs {permission}"),
            });
            break;
        }
    }
    if !kube.nodes.has_data() {
        return out;
    }
    let (short, other): (Vec<&GpuPodRow>, Vec<&GpuPodRow>) = pending.iter().partition(|p| {
        p.unschedulable
            .as_deref()
            .is_some_and(|m| m.contains("Insufficient nvidia.com/gpu"))
    });
    if !short.is_empty() {
        let free: u32 = rows
            .iter()
            .filter(|r| r.ready == Readiness::Ready && !r.cordoned)
            .map(GpuNodeRow::free)
            .sum();
        let names: Vec<String> = short
            .iter()
            .map(|p| format!("{}/{} wants {}", p.namespace, p.name, p.gpus))
            .collect();
        out.push(Finding::warn(
            PANE,
            format!(
                "{} GPU pod(s) pending for lack of GPUs ({} free): {}",
                short.len(),
                free,
                names.join(", ")
            ),
        ));
    }
    for p in other {
        let why = p.unschedulable.as_deref().unwrap_or("not scheduled yet");
        out.push(Finding::warn(
            PANE,
            format!("GPU pod {}/{} is pending: {why}", p.namespace, p.name),
        ));
    }
    for r in rows {
        if r.gpu_taints.is_empty() {
            out.push(Finding::warn(
                PANE,
                format!(
                    "GPU node {} has no GPU taint: non-GPU pods can land there \
                     (kubectl taint node {} nvidia.com/gpu=present:NoSchedule)",
                    r.name, r.name
                ),
            ));
        }
        if r.ready != Readiness::Ready {
            out.push(Finding::warn(
                PANE,
                format!("GPU node {} is {}", r.name, r.ready.word()),
            ));
        }
    }
    let zones: BTreeSet<&str> = rows.iter().filter_map(|r| r.zone.as_deref()).collect();
    let cluster_zones: BTreeSet<&str> = kube
        .nodes
        .objects
        .iter()
        .filter_map(|n| n.zone.as_deref())
        .collect();
    if let [zone] = zones.iter().collect::<Vec<_>>()[..]
        && cluster_zones.len() > 1
    {
        out.push(Finding::warn(
            PANE,
            format!(
                "all {} GPU node(s) are in zone {zone}: losing it leaves no GPUs",
                rows.len()
            ),
        ));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::kube::{FeedChange, KubeMsg, Toleration};

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn gpu_node(name: &str, zone: &str, tainted: bool) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            zone: Some(zone.into()),
            roles: vec![],
            labels: [
                ("nvidia.com/gpu.present".to_string(), "true".to_string()),
                (
                    "nvidia.com/gpu.product".to_string(),
                    "NVIDIA-A100-SXM4-80GB".to_string(),
                ),
            ]
            .into(),
            taints: if tainted {
                vec![Taint {
                    key: "nvidia.com/gpu".into(),
                    value: Some("present".into()),
                    effect: "NoSchedule".into(),
                }]
            } else {
                vec![]
            },
            ready: Readiness::Ready,
            ready_reason: None,
            pressures: vec![],
            unschedulable: false,
            internal_ip: None,
            gpu_capacity: 8,
            gpu_allocatable: 8,
            kubelet_version: None,
        }
    }

    fn worker(zone: &str) -> NodeInfo {
        let mut n = gpu_node(&format!("worker-{zone}"), zone, false);
        n.labels.clear();
        n.gpu_capacity = 0;
        n.gpu_allocatable = 0;
        n
    }

    fn pod(name: &str, node: Option<&str>, gpus: u32, tolerant: bool) -> PodInfo {
        PodInfo {
            namespace: "ml".into(),
            name: name.into(),
            node: node.map(String::from),
            phase: if node.is_some() { "Running" } else { "Pending" }.into(),
            ready: node.is_some(),
            restarts: 0,
            reason: None,
            component: None,
            gpu_request: gpus,
            tolerations: if tolerant {
                vec![Toleration {
                    key: Some("nvidia.com/gpu".into()),
                    operator: Some("Exists".into()),
                    value: None,
                    effect: Some("NoSchedule".into()),
                }]
            } else {
                vec![]
            },
            unschedulable: node.is_none().then(|| {
                "0/12 nodes are available: 1 Insufficient nvidia.com/gpu, 8 node(s) didn't match \
                 Pod's node affinity/selector."
                    .into()
            }),
            advertise: None,
            etcd_name: None,
        }
    }

    fn kube(nodes: Vec<NodeInfo>, pods: Vec<(GpuPodScope, Vec<PodInfo>)>) -> KubeState {
        let mut k = KubeState::new(true, Duration::from_secs(15));
        k.apply(T0, KubeMsg::Nodes(FeedChange::Reset(nodes)));
        for (scope, list) in pods {
            k.apply(T0, KubeMsg::GpuPods(scope, FeedChange::Reset(list)));
        }
        k
    }

    fn on(node: &str) -> GpuPodScope {
        GpuPodScope::Node(node.into())
    }

    #[test]
    fn healthy_pool_counts_gpus_and_tolerations() {
        let k = kube(
            vec![
                gpu_node("gpu-a", "eu-west-1a", true),
                gpu_node("gpu-c", "eu-west-1c", true),
                worker("eu-west-1b"),
            ],
            vec![
                (
                    on("gpu-a"),
                    vec![
                        pod("infer-1", Some("gpu-a"), 6, true),
                        pod("dcgm", Some("gpu-a"), 0, true),
                    ],
                ),
                (on("gpu-c"), vec![pod("infer-2", Some("gpu-c"), 6, true)]),
                (GpuPodScope::Pending, vec![]),
            ],
        );
        let view = derive(&k);
        assert_eq!(view.findings, vec![]);
        assert_eq!(view.rows.len(), 2);
        assert_eq!((view.requested(), view.allocatable()), (12, 16));
        let a = &view.rows[0];
        assert_eq!(a.gpu_taints, ["nvidia.com/gpu=present:NoSchedule"]);
        assert_eq!(a.pods[0].name, "infer-1", "GPU pods first");
        assert_eq!(a.intolerant_pods(), 0);
        assert_eq!(a.product.as_deref(), Some("NVIDIA-A100-SXM4-80GB"));
        assert!(!k.first_data_complete(), "custom feeds not listed yet");
    }

    #[test]
    fn a_lost_zone_leaves_a_pending_pod_and_one_zone() {
        let k = kube(
            vec![gpu_node("gpu-a", "eu-west-1a", true), worker("eu-west-1b")],
            vec![
                (on("gpu-a"), vec![pod("infer-1", Some("gpu-a"), 6, true)]),
                (GpuPodScope::Pending, vec![pod("infer-3", None, 6, true)]),
            ],
        );
        let view = derive(&k);
        let messages: Vec<&str> = view.findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "1 GPU pod(s) pending for lack of GPUs (2 free): ml/infer-3 wants 6",
                "all 1 GPU node(s) are in zone eu-west-1a: losing it leaves no GPUs",
            ]
        );
    }

    #[test]
    fn an_untainted_gpu_node_and_intolerant_pods() {
        let k = kube(
            vec![
                gpu_node("gpu-a", "eu-west-1a", false),
                gpu_node("gpu-b", "eu-west-1b", true),
            ],
            vec![
                (on("gpu-a"), vec![pod("web", Some("gpu-a"), 0, false)]),
                (on("gpu-b"), vec![pod("old", Some("gpu-b"), 0, false)]),
                (GpuPodScope::Pending, vec![]),
            ],
        );
        let view = derive(&k);
        assert!(
            view.findings[0]
                .message
                .starts_with("GPU node gpu-a has no GPU taint")
        );
        assert_eq!(view.rows[0].pods[0].tolerates_taint, None);
        assert_eq!(view.rows[1].intolerant_pods(), 1);
        assert_eq!(view.rows[0].health(), Health::Warn);
    }

    #[test]
    fn gpu_taints_are_told_from_condition_taints() {
        let t = |k: &str, v: Option<&str>, e: &str| Taint {
            key: k.into(),
            value: v.map(String::from),
            effect: e.into(),
        };
        assert!(is_gpu_taint(&t("dedicated", Some("gpu"), "NoSchedule")));
        assert!(is_gpu_taint(&t("nvidia.com/gpu", None, "NoExecute")));
        assert!(!is_gpu_taint(&t(
            "nvidia.com/gpu",
            None,
            "PreferNoSchedule"
        )));
        assert!(!is_gpu_taint(&t(
            "node.kubernetes.io/unreachable",
            None,
            "NoExecute"
        )));
    }
}
