//! What the kube source watches, as small domain records, and each watch's availability:
//! live, down since when (stale past a threshold), not installed (with the install hint)
//! or forbidden (with the missing permission). Pure: the source sends [`KubeMsg`]s,
//! [`KubeState::apply`] folds them in, the panes derive from the result.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use kube::api::DynamicObject;
use serde::Serialize;

use super::PaneId;

pub const PANE: &str = "kube";

/// The custom resources (and the one ConfigMap) other panes read as raw objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CustomKind {
    CephCluster,
    CephMonEndpoints,
    VeleroBackup,
    VeleroSchedule,
    VeleroStorageLocation,
    VeleroRestore,
    Rollout,
    AnalysisRun,
    /// The ReplicaSets Argo Rollouts manages (the canary's actual weight).
    RolloutReplicaSet,
}

impl CustomKind {
    pub const ALL: [CustomKind; 9] = [
        CustomKind::CephCluster,
        CustomKind::CephMonEndpoints,
        CustomKind::VeleroBackup,
        CustomKind::VeleroSchedule,
        CustomKind::VeleroStorageLocation,
        CustomKind::VeleroRestore,
        CustomKind::Rollout,
        CustomKind::AnalysisRun,
        CustomKind::RolloutReplicaSet,
    ];

    /// `(group, version, kind, plural)`.
    pub fn gvk(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            CustomKind::CephCluster => ("ceph.rook.io", "v1", "CephCluster", "cephclusters"),
            CustomKind::CephMonEndpoints => ("", "v1", "ConfigMap", "configmaps"),
            CustomKind::VeleroBackup => ("velero.io", "v1", "Backup", "backups"),
            CustomKind::VeleroSchedule => ("velero.io", "v1", "Schedule", "schedules"),
            CustomKind::VeleroStorageLocation => (
                "velero.io",
                "v1",
                "BackupStorageLocation",
                "backupstoragelocations",
            ),
            CustomKind::VeleroRestore => ("velero.io", "v1", "Restore", "restores"),
            CustomKind::Rollout => ("argoproj.io", "v1alpha1", "Rollout", "rollouts"),
            CustomKind::AnalysisRun => ("argoproj.io", "v1alpha1", "AnalysisRun", "analysisruns"),
            CustomKind::RolloutReplicaSet => ("apps", "v1", "ReplicaSet", "replicasets"),
        }
    }

    /// Watched by label only: the ReplicaSets a Rollout owns carry its pod template
    /// hash label, so no other ReplicaSet of the cluster is listed.
    pub fn label_selector(self) -> Option<&'static str> {
        match self {
            CustomKind::RolloutReplicaSet => Some("rollouts-pod-template-hash"),
            _ => None,
        }
    }

    /// `rollouts.argoproj.io`, `configmaps`: how RBAC names the resource.
    pub fn resource(self) -> String {
        let (group, _, _, plural) = self.gvk();
        if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        }
    }

    /// Watched in one namespace only (the mon endpoints); `None`: all namespaces.
    pub fn namespace(self) -> Option<&'static str> {
        match self {
            CustomKind::CephMonEndpoints => Some("rook-ceph"),
            _ => None,
        }
    }

    /// Watched by name only (`metadata.name=...`).
    pub fn object_name(self) -> Option<&'static str> {
        match self {
            CustomKind::CephMonEndpoints => Some("rook-ceph-mon-endpoints"),
            _ => None,
        }
    }

    pub fn pane(self) -> PaneId {
        match self {
            CustomKind::CephCluster | CustomKind::CephMonEndpoints => PaneId::Ceph,
            CustomKind::VeleroBackup
            | CustomKind::VeleroSchedule
            | CustomKind::VeleroStorageLocation
            | CustomKind::VeleroRestore => PaneId::Velero,
            CustomKind::Rollout | CustomKind::AnalysisRun | CustomKind::RolloutReplicaSet => {
                PaneId::Rollouts
            }
        }
    }

    /// What to install when the CRD is missing.
    pub fn install_hint(self) -> &'static str {
        match self.pane() {
            PaneId::Ceph => {
                "helm install rook-ceph rook-release/rook-ceph -n rook-ceph --create-namespace \
                 (repo https://charts.rook.io/release), then rook-ceph-cluster"
            }
            PaneId::Velero => {
                "helm install velero vmware-tanzu/velero -n velero --create-namespace \
                 (repo https://vmware-tanzu.github.io/helm-charts)"
            }
            _ => {
                "helm install argo-rollouts argo/argo-rollouts -n argo-rollouts --create-namespace \
                 (repo https://argoproj.github.io/argo-helm)"
            }
        }
    }

    /// The permission a watch of this resource needs, said as RBAC would.
    pub fn permission(self) -> String {
        let scope = match self.namespace() {
            Some(ns) => format!("in ns {ns}"),
            None => "in all namespaces".to_string(),
        };
        format!("list/watch {} {scope}", self.resource())
    }

    /// A feed a pane depends on for its headline (the others add detail).
    pub fn is_primary(self) -> bool {
        matches!(
            self,
            CustomKind::CephCluster | CustomKind::VeleroBackup | CustomKind::Rollout
        )
    }
}

/// Where one watch stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// No list has completed yet.
    Connecting,
    /// Listed and watching.
    Live,
    /// The watch broke at `since`; the objects are what it had then.
    Down { since: SystemTime, error: String },
    /// Discovery does not know the resource (its CRD is not installed).
    NotInstalled { hint: String },
    /// The API server answered 403.
    Forbidden { permission: String },
}

impl Availability {
    /// `live`, `down`, `not-installed`, ... for `kha status --json`.
    pub fn word(&self) -> &'static str {
        match self {
            Availability::Connecting => "connecting",
            Availability::Live => "live",
            Availability::Down { .. } => "down",
            Availability::NotInstalled { .. } => "not-installed",
            Availability::Forbidden { .. } => "forbidden",
        }
    }
}

/// What a record is identified by inside its feed (`namespace/name`, or `name`).
pub trait Keyed {
    fn key(&self) -> String;
}

impl Keyed for DynamicObject {
    fn key(&self) -> String {
        match &self.metadata.namespace {
            Some(ns) => format!("{ns}/{}", self.metadata.name.as_deref().unwrap_or("")),
            None => self.metadata.name.clone().unwrap_or_default(),
        }
    }
}

/// One watch's records (sorted by key) and its availability.
#[derive(Debug, Clone, PartialEq)]
pub struct Feed<T> {
    pub availability: Availability,
    pub objects: Vec<T>,
    /// When the records were last known current (a list, an event, or a reconnect).
    pub updated_at: Option<SystemTime>,
}

impl<T> Default for Feed<T> {
    fn default() -> Self {
        Feed {
            availability: Availability::Connecting,
            objects: Vec::new(),
            updated_at: None,
        }
    }
}

/// The generic per-resource feed other panes derive from (`ceph::derive(&feed.objects)`).
pub type ResourceFeed = Feed<DynamicObject>;

/// One change a watch reports.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedChange<T> {
    /// A complete (re)list: replaces everything.
    Reset(Vec<T>),
    Upsert(T),
    /// By key.
    Delete(String),
    /// The watch broke, or cannot run (not installed, forbidden).
    Status(Availability),
}

impl<T: Keyed> Feed<T> {
    pub fn apply(&mut self, at: SystemTime, change: FeedChange<T>) {
        match change {
            FeedChange::Reset(mut objects) => {
                objects.sort_by_key(Keyed::key);
                self.objects = objects;
                self.availability = Availability::Live;
                self.updated_at = Some(at);
            }
            FeedChange::Upsert(object) => {
                let key = object.key();
                match self.objects.binary_search_by(|o| o.key().cmp(&key)) {
                    Ok(i) => self.objects[i] = object,
                    Err(i) => self.objects.insert(i, object),
                }
                self.mark_live(at);
            }
            FeedChange::Delete(key) => {
                if let Ok(i) = self.objects.binary_search_by(|o| o.key().cmp(&key)) {
                    self.objects.remove(i);
                }
                self.mark_live(at);
            }
            FeedChange::Status(Availability::Down { since, error }) => {
                // The first failure dates the outage; later ones only update the reason.
                let since = match &self.availability {
                    Availability::Down { since, .. } => *since,
                    _ => since,
                };
                self.availability = Availability::Down { since, error };
            }
            FeedChange::Status(Availability::Live) => self.mark_live(at),
            FeedChange::Status(other) => {
                if matches!(
                    other,
                    Availability::NotInstalled { .. } | Availability::Forbidden { .. }
                ) {
                    self.objects.clear();
                }
                self.availability = other;
                self.updated_at = Some(at);
            }
        }
    }
}

impl<T> Feed<T> {
    fn mark_live(&mut self, at: SystemTime) {
        self.availability = Availability::Live;
        self.updated_at = Some(at);
    }

    /// Listed at least once (its records are worth showing, maybe stale).
    pub fn has_data(&self) -> bool {
        self.updated_at.is_some()
            && matches!(
                self.availability,
                Availability::Live | Availability::Down { .. }
            )
    }

    /// How long the watch has been down (`None` while it runs).
    pub fn down_for(&self, now: SystemTime) -> Option<Duration> {
        match &self.availability {
            Availability::Down { since, .. } => {
                Some(now.duration_since(*since).unwrap_or_default())
            }
            _ => None,
        }
    }

    /// Down longer than `stale_after`: its records are no longer current.
    pub fn is_stale(&self, now: SystemTime, stale_after: Duration) -> bool {
        self.down_for(now).is_some_and(|d| d > stale_after)
    }

    /// Age of the records: zero while the watch runs.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        match self.availability {
            Availability::Live => Some(Duration::ZERO),
            Availability::Down { .. } => self
                .updated_at
                .map(|t| now.duration_since(t).unwrap_or_default()),
            _ => None,
        }
    }

    /// One line on the feed: "live, 12 objects", "STALE: watch down 45s", "not installed".
    pub fn describe(&self, now: SystemTime, stale_after: Duration, noun: &str) -> String {
        let count = |n: usize| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
        match &self.availability {
            Availability::Connecting => "waiting for the first list…".to_string(),
            Availability::Live => format!("live, {}", count(self.objects.len())),
            Availability::Down { error, .. } => {
                let down = self.down_for(now).unwrap_or_default();
                let word = if self.is_stale(now, stale_after) {
                    "STALE"
                } else {
                    "reconnecting"
                };
                format!(
                    "{word}: watch down {} ({error}); {}",
                    super::short_duration(down),
                    count(self.objects.len())
                )
            }
            Availability::NotInstalled { hint } => format!("not installed: {hint}"),
            Availability::Forbidden { permission } => format!("forbidden: kha needs {permission}"),
        }
    }
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

impl Taint {
    /// `dedicated=gpu:NoSchedule`, `node-role.kubernetes.io/control-plane:NoSchedule`.
    pub fn spec(&self) -> String {
        match &self.value {
            Some(v) if !v.is_empty() => format!("{}={v}:{}", self.key, self.effect),
            _ => format!("{}:{}", self.key, self.effect),
        }
    }

    /// Keeps pods off the node (`NoSchedule`/`NoExecute`).
    pub fn repels(&self) -> bool {
        self.effect == "NoSchedule" || self.effect == "NoExecute"
    }
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Toleration {
    pub key: Option<String>,
    /// `Exists` or `Equal` (the default).
    pub operator: Option<String>,
    pub value: Option<String>,
    pub effect: Option<String>,
}

impl Toleration {
    /// Kubernetes' `ToleratesTaint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if let Some(effect) = self.effect.as_deref().filter(|e| !e.is_empty())
            && effect != taint.effect
        {
            return false;
        }
        let key = self.key.as_deref().unwrap_or("");
        let exists = self.operator.as_deref() == Some("Exists");
        if key.is_empty() {
            return exists;
        }
        if key != taint.key {
            return false;
        }
        exists || self.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
    }
}

/// The node's `Ready` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    Ready,
    NotReady,
    /// `Unknown` (the kubelet stopped reporting) or no condition at all.
    Unknown,
}

impl Readiness {
    pub fn word(self) -> &'static str {
        match self {
            Readiness::Ready => "Ready",
            Readiness::NotReady => "NotReady",
            Readiness::Unknown => "Unknown",
        }
    }
}

/// A Node, trimmed to what the panes show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    pub name: String,
    pub zone: Option<String>,
    /// From `node-role.kubernetes.io/<role>` labels.
    pub roles: Vec<String>,
    /// Labels of interest only: accelerators, NVIDIA GPU feature discovery, instance
    /// type, node group.
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub ready: Readiness,
    /// Reason and message of the Ready condition when not Ready.
    pub ready_reason: Option<String>,
    /// Other conditions that are True (MemoryPressure, DiskPressure, ...).
    pub pressures: Vec<String>,
    pub unschedulable: bool,
    pub internal_ip: Option<String>,
    pub gpu_capacity: u32,
    pub gpu_allocatable: u32,
    pub kubelet_version: Option<String>,
}

impl Keyed for NodeInfo {
    fn key(&self) -> String {
        self.name.clone()
    }
}

pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

impl NodeInfo {
    pub fn is_control_plane(&self) -> bool {
        self.roles
            .iter()
            .any(|r| r == "control-plane" || r == "master")
    }

    /// Has GPUs (device plugin) or says so (GPU feature discovery, a GPU taint).
    pub fn is_gpu(&self) -> bool {
        self.gpu_capacity > 0
            || self.gpu_allocatable > 0
            || self
                .labels
                .get("nvidia.com/gpu.present")
                .map(String::as_str)
                == Some("true")
    }
}

/// A pod, trimmed to what the panes show.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub node: Option<String>,
    pub phase: String,
    pub ready: bool,
    pub restarts: u32,
    /// Why it is not ready or not running (a container's waiting reason, or the
    /// scheduler's message).
    pub reason: Option<String>,
    /// The `component` label (static pods).
    pub component: Option<String>,
    /// `nvidia.com/gpu` requested (containers summed, init containers' max).
    pub gpu_request: u32,
    pub tolerations: Vec<Toleration>,
    /// PodScheduled=False: the scheduler's message.
    pub unschedulable: Option<String>,
    /// kubeadm's advertise annotation (`10.0.1.10:6443`, `https://10.0.1.10:2379`).
    pub advertise: Option<String>,
    /// etcd's `--name` (static etcd pods).
    pub etcd_name: Option<String>,
}

impl Keyed for PodInfo {
    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl PodInfo {
    /// Still holds (or wants) its resources: not Succeeded or Failed.
    pub fn is_active(&self) -> bool {
        self.phase != "Succeeded" && self.phase != "Failed"
    }

    pub fn tolerates(&self, taint: &Taint) -> bool {
        self.tolerations.iter().any(|t| t.tolerates(taint))
    }
}

/// Which watch a GPU pod came from: one per GPU node, plus the Pending ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GpuPodScope {
    Node(String),
    Pending,
}

/// What the kube source sends.
#[derive(Debug, Clone, PartialEq)]
pub enum KubeMsg {
    /// Which cluster the source talks to (`context kha-lab at https://...`).
    Target(String),
    Nodes(FeedChange<NodeInfo>),
    ControlPlanePods(FeedChange<PodInfo>),
    GpuPods(GpuPodScope, FeedChange<PodInfo>),
    /// A node stopped being a GPU node (or went away): its pod watch ended.
    GpuScopeGone(GpuPodScope),
    Custom(CustomKind, FeedChange<DynamicObject>),
}

/// Everything kha knows from the Kubernetes API.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeState {
    pub configured: bool,
    pub target: Option<String>,
    pub nodes: Feed<NodeInfo>,
    pub control_plane_pods: Feed<PodInfo>,
    pub gpu_pods: BTreeMap<GpuPodScope, Feed<PodInfo>>,
    pub feeds: BTreeMap<CustomKind, ResourceFeed>,
    /// A watch down longer than this makes its data stale.
    pub stale_after: Duration,
}

impl KubeState {
    pub fn new(configured: bool, stale_after: Duration) -> Self {
        KubeState {
            configured,
            target: None,
            nodes: Feed::default(),
            control_plane_pods: Feed::default(),
            gpu_pods: BTreeMap::new(),
            feeds: CustomKind::ALL
                .iter()
                .map(|&k| (k, Feed::default()))
                .collect(),
            stale_after,
        }
    }

    pub fn apply(&mut self, at: SystemTime, msg: KubeMsg) {
        match msg {
            KubeMsg::Target(t) => self.target = Some(t),
            KubeMsg::Nodes(c) => self.nodes.apply(at, c),
            KubeMsg::ControlPlanePods(c) => self.control_plane_pods.apply(at, c),
            KubeMsg::GpuPods(scope, c) => self.gpu_pods.entry(scope).or_default().apply(at, c),
            KubeMsg::GpuScopeGone(scope) => {
                self.gpu_pods.remove(&scope);
            }
            KubeMsg::Custom(kind, c) => self.feeds.entry(kind).or_default().apply(at, c),
        }
    }

    /// Every watch has answered once (listed, or found not installed / forbidden): what
    /// `kha status` waits for.
    pub fn first_data_complete(&self) -> bool {
        let settled = |a: &Availability| !matches!(a, Availability::Connecting);
        let gpu_nodes: Vec<&NodeInfo> = self.nodes.objects.iter().filter(|n| n.is_gpu()).collect();
        settled(&self.nodes.availability)
            && settled(&self.control_plane_pods.availability)
            && self.feeds.values().all(|f| settled(&f.availability))
            && self
                .gpu_pods
                .get(&GpuPodScope::Pending)
                .is_some_and(|f| settled(&f.availability))
            && gpu_nodes.iter().all(|n| {
                self.gpu_pods
                    .get(&GpuPodScope::Node(n.name.clone()))
                    .is_some_and(|f| settled(&f.availability))
            })
    }

    /// The GPU pods of every watch, each once (a bound pod wins over its Pending copy).
    pub fn gpu_pods(&self) -> Vec<&PodInfo> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for feed in self.gpu_pods.values() {
            for pod in &feed.objects {
                if seen.insert((pod.namespace.as_str(), pod.name.as_str())) {
                    out.push(pod);
                }
            }
        }
        out
    }

    /// The availability of a pane's custom feeds, worst first: what its tile says.
    pub fn pane_feeds(&self, pane: PaneId) -> Vec<(CustomKind, &ResourceFeed)> {
        self.feeds
            .iter()
            .filter(|(k, _)| k.pane() == pane)
            .map(|(k, f)| (*k, f))
            .collect()
    }

    /// Any GPU pod watch is down (then the GPU pane is as stale as its worst watch).
    pub fn gpu_pods_down_for(&self, now: SystemTime) -> Option<Duration> {
        self.gpu_pods.values().filter_map(|f| f.down_for(now)).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            zone: None,
            roles: vec![],
            labels: BTreeMap::new(),
            taints: vec![],
            ready: Readiness::Ready,
            ready_reason: None,
            pressures: vec![],
            unschedulable: false,
            internal_ip: None,
            gpu_capacity: 0,
            gpu_allocatable: 0,
            kubelet_version: None,
        }
    }

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    #[test]
    fn feed_changes_keep_sorted_records_and_date_the_outage() {
        let mut feed: Feed<NodeInfo> = Feed::default();
        assert!(!feed.has_data());
        feed.apply(T0, FeedChange::Reset(vec![node("b"), node("a")]));
        assert_eq!(feed.objects[0].name, "a");
        feed.apply(T0, FeedChange::Upsert(node("c")));
        feed.apply(T0, FeedChange::Delete("a".into()));
        let names: Vec<_> = feed.objects.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        let later = T0 + Duration::from_secs(10);
        feed.apply(
            later,
            FeedChange::Status(Availability::Down {
                since: later,
                error: "connection refused".into(),
            }),
        );
        let much_later = later + Duration::from_secs(30);
        feed.apply(
            much_later,
            FeedChange::Status(Availability::Down {
                since: much_later,
                error: "still refused".into(),
            }),
        );
        let now = later + Duration::from_secs(40);
        assert_eq!(feed.down_for(now), Some(Duration::from_secs(40)));
        assert!(feed.is_stale(now, Duration::from_secs(15)));
        assert!(feed.has_data(), "stale data is still shown");
        assert!(
            feed.describe(now, Duration::from_secs(15), "node")
                .starts_with("STALE: watch down 40s (still refused); 2 nodes")
        );
        feed.apply(now, FeedChange::Status(Availability::Live));
        assert!(!feed.is_stale(now, Duration::from_secs(15)));
    }

    #[test]
    fn forbidden_and_not_installed_say_what_to_do() {
        let k = CustomKind::Rollout;
        assert_eq!(
            k.permission(),
            "list/watch rollouts.argoproj.io in all namespaces"
        );
        assert_eq!(
            CustomKind::CephMonEndpoints.permission(),
            "list/watch configmaps in ns rook-ceph"
        );
        let mut feed = ResourceFeed::default();
        feed.apply(
            T0,
            FeedChange::Status(Availability::Forbidden {
                permission: k.permission(),
            }),
        );
        assert_eq!(
            feed.describe(T0, Duration::from_secs(1), "rollout"),
            "forbidden: kha needs list/watch rollouts.argoproj.io in all namespaces"
        );
        assert!(k.install_hint().contains("helm install argo-rollouts"));
    }

    #[test]
    fn tolerations_match_as_kubernetes_does() {
        let taint = Taint {
            key: "nvidia.com/gpu".into(),
            value: Some("present".into()),
            effect: "NoSchedule".into(),
        };
        let t = |key: Option<&str>, op: Option<&str>, value: Option<&str>, effect: Option<&str>| {
            Toleration {
                key: key.map(String::from),
                operator: op.map(String::from),
                value: value.map(String::from),
                effect: effect.map(String::from),
            }
        };
        assert!(
            t(
                Some("nvidia.com/gpu"),
                Some("Exists"),
                None,
                Some("NoSchedule")
            )
            .tolerates(&taint)
        );
        assert!(t(Some("nvidia.com/gpu"), None, Some("present"), None).tolerates(&taint));
        assert!(!t(Some("nvidia.com/gpu"), None, Some("absent"), None).tolerates(&taint));
        assert!(
            !t(
                Some("nvidia.com/gpu"),
                Some("Exists"),
                None,
                Some("NoExecute")
            )
            .tolerates(&taint)
        );
        assert!(t(None, Some("Exists"), None, None).tolerates(&taint));
        assert!(!t(None, None, None, None).tolerates(&taint));
    }
}
