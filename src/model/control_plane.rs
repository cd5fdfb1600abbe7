//! Control plane & zones: per zone its control-plane node(s), their kubeadm static pods
//! (apiserver, etcd, scheduler, controller-manager) with readiness and restarts, and the
//! etcd member each etcd pod is (joined with the etcd pane by advertise address, then
//! by member name). Findings: two etcd members or two apiservers in one zone, a zone
//! with no ready control plane, a NotReady control-plane node, a static pod not ready.

use std::collections::BTreeMap;

use serde::Serialize;

use super::etcd::{EtcdObservation, MemberObservation};
use super::finding::{Finding, Health};
use super::kube::{Availability, KubeState, NodeInfo, PodInfo, Readiness};

pub const PANE: &str = "control-plane";

/// The static pods kubeadm runs on each control-plane node, in column order.
pub const COMPONENTS: [(&str, &str); 4] = [
    ("kube-apiserver", "API"),
    ("etcd", "ETCD"),
    ("kube-scheduler", "SCHED"),
    ("kube-controller-manager", "CTRL"),
];

/// One static pod on a control-plane node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticPod {
    pub component: String,
    pub pod: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: u32,
    pub reason: Option<String>,
}

/// The etcd member an etcd static pod is, as the etcd pane sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdJoin {
    pub member: String,
    pub endpoint: String,
    pub healthy: bool,
    pub leader: bool,
    /// `advertise-address` or `name`: how the pod and the member were matched.
    pub matched_by: &'static str,
}

/// One control-plane node (or a zone without one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlPlaneRow {
    pub zone: String,
    pub node: Option<String>,
    pub node_ready: Option<Readiness>,
    pub ready_reason: Option<String>,
    pub internal_ip: Option<String>,
    pub cordoned: bool,
    /// In [`COMPONENTS`] order; a component without a pod is absent.
    pub pods: Vec<StaticPod>,
    pub restarts: u32,
    /// kube-apiserver's advertise endpoint (`10.0.1.10:6443`).
    pub apiserver_endpoint: Option<String>,
    /// etcd's advertise client URL.
    pub etcd_advertise: Option<String>,
    pub etcd: Option<EtcdJoin>,
}

impl ControlPlaneRow {
    pub fn pod(&self, component: &str) -> Option<&StaticPod> {
        self.pods.iter().find(|p| p.component == component)
    }

    pub fn is_ready(&self) -> bool {
        self.node_ready == Some(Readiness::Ready)
    }

    pub fn health(&self) -> Health {
        match self.node_ready {
            None => Health::Warn,
            Some(Readiness::Ready) if self.pods.iter().all(|p| p.ready) => Health::Ok,
            Some(_) => Health::Warn,
        }
    }

    /// What `/` searches.
    pub fn search_text(&self) -> String {
        format!(
            "{} {} {} {}",
            self.zone,
            self.node.as_deref().unwrap_or(""),
            self.node_ready.map_or("", Readiness::word),
            self.etcd.as_ref().map_or("", |e| e.member.as_str())
        )
    }
}

/// Per zone: its control-plane nodes and how many are Ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneSummary {
    pub zone: String,
    pub nodes: usize,
    pub ready: usize,
    pub etcd_members: usize,
    pub apiservers: usize,
}

/// Everything the pane, its tile and `kha status` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlPlaneView {
    pub zones: Vec<ZoneSummary>,
    pub rows: Vec<ControlPlaneRow>,
    pub findings: Vec<Finding>,
}

impl ControlPlaneView {
    pub fn ready_zones(&self) -> usize {
        self.zones.iter().filter(|z| z.ready > 0).count()
    }
}

const NO_ZONE: &str = "(no zone)";

/// The columns `sort` cycles through.
pub const SORTS: [&str; 4] = ["zone", "node", "restarts", "ready"];

/// The rows the pane shows: filtered by `/`, sorted by the chosen column.
pub fn visible<'a>(
    rows: &'a [ControlPlaneRow],
    view: &crate::model::table_view::TableView,
) -> Vec<&'a ControlPlaneRow> {
    let mut out: Vec<&ControlPlaneRow> = rows
        .iter()
        .filter(|r| view.matches(&r.search_text()))
        .collect();
    match SORTS.get(view.sort).copied().unwrap_or("zone") {
        "node" => out.sort_by(|a, b| a.node.cmp(&b.node)),
        // Most restarts first, as an engineer looks for them.
        "restarts" => out.sort_by_key(|r| std::cmp::Reverse(r.restarts)),
        "ready" => out.sort_by_key(|r| (r.is_ready(), r.pods.iter().all(|p| p.ready))),
        _ => {}
    }
    if view.descending {
        out.reverse();
    }
    out
}

/// `https://10.0.1.10:2379/` -> `10.0.1.10:2379`.
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

fn join_etcd(pod: &PodInfo, node: &str, etcd: &EtcdObservation) -> Option<EtcdJoin> {
    let leader = etcd.leader().map(|m| m.id);
    let join = |m: &MemberObservation, how: &'static str| EtcdJoin {
        member: m.name.clone(),
        endpoint: m.endpoint.clone(),
        healthy: m.is_healthy(),
        leader: leader.is_some_and(|l| l == m.id && l != 0),
        matched_by: how,
    };
    let by_address = pod.advertise.as_deref().and_then(|adv| {
        let adv = host_port(adv);
        etcd.members
            .iter()
            .find(|m| host_port(&m.endpoint) == adv)
            .map(|m| join(m, "advertise-address"))
    });
    by_address.or_else(|| {
        let names = [pod.etcd_name.as_deref(), Some(node)];
        etcd.members
            .iter()
            .find(|m| names.contains(&Some(m.name.as_str())))
            .map(|m| join(m, "name"))
    })
}

fn static_pod(p: &PodInfo) -> StaticPod {
    StaticPod {
        component: p.component.clone().unwrap_or_default(),
        pod: p.name.clone(),
        phase: p.phase.clone(),
        ready: p.ready,
        restarts: p.restarts,
        reason: p.reason.clone(),
    }
}

fn row_for(node: &NodeInfo, pods: &[&PodInfo], etcd: Option<&EtcdObservation>) -> ControlPlaneRow {
    let mut mine: Vec<&PodInfo> = pods
        .iter()
        .copied()
        .filter(|p| p.node.as_deref() == Some(node.name.as_str()))
        .collect();
    let order = |p: &PodInfo| {
        COMPONENTS
            .iter()
            .position(|(c, _)| Some(*c) == p.component.as_deref())
            .unwrap_or(COMPONENTS.len())
    };
    mine.sort_by_key(|p| order(p));
    let advertise = |component: &str| {
        mine.iter()
            .find(|p| p.component.as_deref() == Some(component))
            .and_then(|p| p.advertise.clone())
    };
    let etcd_join = etcd.and_then(|obs| {
        mine.iter()
            .find(|p| p.component.as_deref() == Some("etcd"))
            .and_then(|p| join_etcd(p, &node.name, obs))
    });
    ControlPlaneRow {
        zone: node.zone.clone().unwrap_or_else(|| NO_ZONE.into()),
        node: Some(node.name.clone()),
        node_ready: Some(node.ready),
        ready_reason: node.ready_reason.clone(),
        internal_ip: node.internal_ip.clone(),
        cordoned: node.unschedulable,
        restarts: mine.iter().map(|p| p.restarts).sum(),
        apiserver_endpoint: advertise("kube-apiserver"),
        etcd_advertise: advertise("etcd"),
        pods: mine
            .iter()
            .filter(|p| order(p) < COMPONENTS.len())
            .map(|p| static_pod(p))
            .collect(),
        etcd: etcd_join,
    }
}

/// Rows (by zone, then node), zone summaries and findings.
pub fn derive(kube: &KubeState, etcd: Option<&EtcdObservation>) -> ControlPlaneView {
    let pods: Vec<&PodInfo> = kube.control_plane_pods.objects.iter().collect();
    let mut rows: Vec<ControlPlaneRow> = kube
        .nodes
        .objects
        .iter()
        .filter(|n| n.is_control_plane())
        .map(|n| row_for(n, &pods, etcd))
        .collect();
    // Static pods on nodes without the control-plane role (a kubeadm join gone wrong,
    // or labels removed) still belong here.
    let mut stray: BTreeMap<&str, ()> = BTreeMap::new();
    for p in &pods {
        if let Some(n) = p.node.as_deref()
            && !rows.iter().any(|r| r.node.as_deref() == Some(n))
        {
            stray.insert(n, ());
        }
    }
    for name in stray.keys() {
        if let Some(node) = kube.nodes.objects.iter().find(|n| n.name == *name) {
            rows.push(row_for(node, &pods, etcd));
        }
    }
    rows.sort_by(|a, b| (&a.zone, &a.node).cmp(&(&b.zone, &b.node)));

    let mut zones: BTreeMap<String, ZoneSummary> = BTreeMap::new();
    for r in &rows {
        let z = zones.entry(r.zone.clone()).or_insert_with(|| ZoneSummary {
            zone: r.zone.clone(),
            nodes: 0,
            ready: 0,
            etcd_members: 0,
            apiservers: 0,
        });
        z.nodes += 1;
        z.ready += usize::from(r.is_ready());
        z.etcd_members += usize::from(r.pod("etcd").is_some());
        z.apiservers += usize::from(r.pod("kube-apiserver").is_some());
    }
    let zones: Vec<ZoneSummary> = zones.into_values().collect();
    let findings = findings(kube, &rows, &zones);
    ControlPlaneView {
        zones,
        rows,
        findings,
    }
}

fn nodes_in<'a>(rows: &'a [ControlPlaneRow], zone: &str, component: &str) -> Vec<&'a str> {
    rows.iter()
        .filter(|r| r.zone == zone && r.pod(component).is_some())
        .filter_map(|r| r.node.as_deref())
        .collect()
}

fn findings(kube: &KubeState, rows: &[ControlPlaneRow], zones: &[ZoneSummary]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (what, feed) in [
        ("nodes", &kube.nodes.availability),
        ("control-plane pods", &kube.control_plane_pods.availability),
    ] {
        if let Availability::Forbidden { permission } = feed {
            out.push(Finding {
                severity: Health::Unknown,
                pane: PANE,
                message: format!("cannot read {what}: kha needs {permission}"),
            });
        }
    }
    if !kube.nodes.has_data() {
        return out;
    }
    if rows.is_empty() {
        out.push(Finding {
            severity: Health::Unknown,
            pane: PANE,
            message: "no control-plane nodes visible (no node-role.kubernetes.io/control-plane \
                      label; a managed control plane?)"
                .into(),
        });
        return out;
    }
    for z in zones {
        for (component, what, consequence) in [
            ("etcd", "etcd members", "losing it loses etcd quorum"),
            (
                "kube-apiserver",
                "apiservers",
                "losing it takes most of the API with it",
            ),
        ] {
            let here = nodes_in(rows, &z.zone, component);
            if here.len() >= 2 {
                out.push(Finding::warn(
                    PANE,
                    format!(
                        "zone {} runs {} {what} ({}): {consequence}",
                        z.zone,
                        here.len(),
                        here.join(", ")
                    ),
                ));
            }
        }
    }
    let ready_zones = zones.iter().filter(|z| z.ready > 0).count();
    for z in zones.iter().filter(|z| z.ready == 0) {
        let message = format!(
            "zone {} has no ready control plane ({} of {} zones have one)",
            z.zone,
            ready_zones,
            zones.len()
        );
        // Losing most zones is an outage of the control plane, not a degradation.
        out.push(if ready_zones * 2 <= zones.len() {
            Finding::crit(PANE, message)
        } else {
            Finding::warn(PANE, message)
        });
    }
    for r in rows {
        let node = r.node.as_deref().unwrap_or("?");
        match r.node_ready {
            Some(Readiness::Ready) => {
                for p in r.pods.iter().filter(|p| !p.ready) {
                    let why = p.reason.as_deref().unwrap_or(p.phase.as_str());
                    out.push(Finding::warn(
                        PANE,
                        format!("{} on {node} is not ready ({why})", p.component),
                    ));
                }
                for (component, _) in COMPONENTS.iter().filter(|(c, _)| *c != "etcd") {
                    if r.pod(component).is_none() && kube.control_plane_pods.has_data() {
                        out.push(Finding::warn(
                            PANE,
                            format!("control-plane node {node} runs no {component} static pod"),
                        ));
                    }
                }
            }
            Some(state) => {
                let why = r
                    .ready_reason
                    .as_deref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default();
                out.push(Finding::warn(
                    PANE,
                    format!(
                        "control-plane node {node} ({}) is {}{why}",
                        r.zone,
                        state.word()
                    ),
                ));
            }
            None => {}
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::etcd::tests::member;
    use crate::model::kube::FeedChange;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn cp_node(name: &str, zone: &str, ready: Readiness) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            zone: Some(zone.into()),
            roles: vec!["control-plane".into()],
            labels: BTreeMap::new(),
            taints: vec![],
            ready,
            ready_reason: (ready != Readiness::Ready)
                .then(|| "NodeStatusUnknown: Kubelet stopped posting node status.".into()),
            pressures: vec![],
            unschedulable: false,
            internal_ip: None,
            gpu_capacity: 0,
            gpu_allocatable: 0,
            kubelet_version: None,
        }
    }

    pub fn static_pods(node: &str, ip: &str, etcd_name: &str, ready: bool) -> Vec<PodInfo> {
        COMPONENTS
            .iter()
            .map(|(c, _)| PodInfo {
                namespace: "kube-system".into(),
                name: format!("{c}-{node}"),
                node: Some(node.into()),
                phase: "Running".into(),
                ready,
                restarts: u32::from(*c == "kube-scheduler"),
                reason: None,
                component: Some((*c).into()),
                gpu_request: 0,
                tolerations: vec![],
                unschedulable: None,
                advertise: match *c {
                    "etcd" => Some(format!("https://{ip}:2379")),
                    "kube-apiserver" => Some(format!("{ip}:6443")),
                    _ => None,
                },
                etcd_name: (*c == "etcd").then(|| etcd_name.into()),
            })
            .collect()
    }

    fn kube(nodes: Vec<NodeInfo>, pods: Vec<PodInfo>) -> KubeState {
        let mut k = KubeState::new(true, Duration::from_secs(15));
        k.apply(
            T0,
            crate::model::kube::KubeMsg::Nodes(FeedChange::Reset(nodes)),
        );
        k.apply(
            T0,
            crate::model::kube::KubeMsg::ControlPlanePods(FeedChange::Reset(pods)),
        );
        k
    }

    fn healthy_cluster(zone_c: &str, c_ready: Readiness) -> KubeState {
        let mut pods = static_pods("cp-a", "10.0.1.10", "etcd-a", true);
        pods.extend(static_pods("cp-b", "10.0.2.10", "etcd-b", true));
        pods.extend(static_pods(
            "cp-c",
            "10.0.3.10",
            "etcd-c",
            c_ready == Readiness::Ready,
        ));
        kube(
            vec![
                cp_node("cp-a", "eu-west-1a", Readiness::Ready),
                cp_node("cp-b", "eu-west-1b", Readiness::Ready),
                cp_node("cp-c", zone_c, c_ready),
            ],
            pods,
        )
    }

    fn etcd() -> EtcdObservation {
        let mut b = member("etcd-b", 2, true, 2);
        b.endpoint = "https://10.0.2.10:2379".into();
        EtcdObservation {
            observed_at: T0,
            members: vec![
                member("etcd-a", 1, true, 2),
                b,
                member("etcd-c", 3, false, 2),
            ],
            alarms: vec![],
            member_list_error: None,
        }
    }

    #[test]
    fn healthy_three_zones_have_no_findings_and_join_etcd() {
        let view = derive(
            &healthy_cluster("eu-west-1c", Readiness::Ready),
            Some(&etcd()),
        );
        assert_eq!(view.findings, vec![]);
        assert_eq!(view.zones.len(), 3);
        assert_eq!(view.ready_zones(), 3);
        let b = &view.rows[1];
        let join = b.etcd.as_ref().expect("joined");
        assert_eq!(
            (join.member.as_str(), join.matched_by, join.leader),
            ("etcd-b", "advertise-address", true)
        );
        let a = view.rows[0].etcd.as_ref().expect("joined by name");
        assert_eq!((a.member.as_str(), a.matched_by), ("etcd-a", "name"));
        assert!(!view.rows[2].etcd.as_ref().is_some_and(|j| j.healthy));
        assert_eq!(view.rows[0].restarts, 1);
        assert_eq!(view.rows[0].pods.len(), 4);
    }

    #[test]
    fn a_lost_zone_is_a_notready_node_and_a_zone_without_control_plane() {
        let view = derive(&healthy_cluster("eu-west-1c", Readiness::Unknown), None);
        let messages: Vec<&str> = view.findings.iter().map(|f| f.message.as_str()).collect();
        assert!(
            messages
                .contains(&"zone eu-west-1c has no ready control plane (2 of 3 zones have one)"),
            "{messages:?}"
        );
        assert!(messages.iter().any(|m| {
            m.starts_with("control-plane node cp-c (eu-west-1c) is Unknown: NodeStatusUnknown")
        }));
        assert!(view.findings.iter().all(|f| f.severity == Health::Warn));
        assert_eq!(view.rows[2].health(), Health::Warn);
    }

    #[test]
    fn two_members_in_one_zone_are_called_out() {
        let view = derive(&healthy_cluster("eu-west-1b", Readiness::Ready), None);
        let messages: Vec<&str> = view.findings.iter().map(|f| f.message.as_str()).collect();
        assert!(messages.contains(
            &"zone eu-west-1b runs 2 etcd members (cp-b, cp-c): losing it loses etcd quorum"
        ));
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("zone eu-west-1b runs 2 apiservers"))
        );
    }

    #[test]
    fn most_zones_down_is_critical_and_a_crashing_pod_is_named() {
        let mut k = healthy_cluster("eu-west-1c", Readiness::NotReady);
        let mut nodes = k.nodes.objects.clone();
        nodes[1].ready = Readiness::NotReady;
        k.apply(
            T0,
            crate::model::kube::KubeMsg::Nodes(FeedChange::Reset(nodes)),
        );
        let mut pods = k.control_plane_pods.objects.clone();
        if let Some(p) = pods.iter_mut().find(|p| p.name == "kube-scheduler-cp-a") {
            p.ready = false;
            p.reason = Some("CrashLoopBackOff".into());
        }
        k.apply(
            T0,
            crate::model::kube::KubeMsg::ControlPlanePods(FeedChange::Reset(pods)),
        );
        let view = derive(&k, None);
        assert_eq!(view.findings[0].severity, Health::Crit);
        assert!(
            view.findings
                .iter()
                .any(|f| f.message == "kube-scheduler on cp-a is not ready (CrashLoopBackOff)")
        );
    }
}
