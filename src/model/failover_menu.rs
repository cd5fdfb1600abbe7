//! The LB, control-plane and GPU-nodes panes' runbook menus: drain, enable or put in
//! maintenance the selected apiserver backend; cordon, drain or uncordon the selected
//! control-plane or GPU node, or evacuate a control-plane node's zone. Planned from
//! what the cockpit watches: the LB observation, nodes and control-plane pods. It lists
//! no other pods, so a drain lists them when it runs, and a zone evacuation is planned
//! after a one-off read of every pod (its capacity check needs them).

use super::State;
use crate::model::kube::{NodeInfo, PodInfo, Readiness};
use crate::runbook::Runbook;
use crate::runbook::facts::{ClusterFacts, NodeFacts, PodFacts, Resources};
use crate::runbook::lb::{self, BackendAction};
use crate::runbook::node::{self, DrainOptions};
use crate::runbook::tui_plan::PlanRequest;

/// The API-server LB pane's runbooks, in menu order.
pub const LB_MENU: [&str; 3] = [
    "Drain the selected backend (HAProxy)",
    "Enable the selected backend (HAProxy ready)",
    "Put the selected backend in maintenance (HAProxy)",
];

/// The control-plane pane's runbooks, in menu order.
pub const CONTROL_PLANE_MENU: [&str; 5] = [
    "Cordon the selected node",
    "Drain the selected node",
    "Drain it, bare and emptyDir pods too (--force --delete-emptydir-data)",
    "Uncordon the selected node",
    "Evacuate the selected node's zone",
];

/// The control-plane menu's zone evacuation entry.
pub const EVACUATE_ZONE: usize = 4;

/// The GPU-nodes pane's runbooks, in menu order.
pub const GPU_MENU: [&str; 4] = [
    "Cordon the selected GPU node",
    "Drain the selected GPU node",
    "Drain it, bare and emptyDir pods too (--force --delete-emptydir-data)",
    "Uncordon the selected GPU node",
];

/// The GPU-nodes pane's entry `i`, for the selected node.
pub fn plan_gpu_entry(state: &State, i: usize) -> Result<Runbook, String> {
    let view = state.gpu();
    let rows = super::gpu::visible(&view.rows, &state.gpu_view);
    let name = rows
        .get(state.gpu_view.selected)
        .map(|r| r.name.clone())
        .ok_or("select a GPU node first")?;
    node_entry(state, &name, i)
}

fn node_entry(state: &State, name: &str, i: usize) -> Result<Runbook, String> {
    let facts = watched_facts(state);
    let cluster = state.cluster.as_str();
    Ok(match i {
        0 => node::cordon(cluster, &facts, name),
        1 => node::drain(cluster, &facts, name, DrainOptions::default()),
        // A plain drain refuses pods nothing recreates and pods with local data, as
        // kubectl does; this one evicts them, and its plan says they are gone for good.
        2 => node::drain(
            cluster,
            &facts,
            name,
            DrainOptions {
                force: true,
                delete_emptydir_data: true,
                ..DrainOptions::default()
            },
        ),
        _ => node::uncordon(cluster, &facts, name),
    })
}

/// The LB pane's entry `i`, for the selected backend.
pub fn plan_lb_entry(state: &State, i: usize) -> Result<Runbook, String> {
    let obs = state
        .lb
        .last
        .as_ref()
        .ok_or("no LB observation yet: wait for the first probe")?;
    let endpoint = state
        .lb
        .targets
        .stats
        .clone()
        .filter(|s| s.starts_with("unix://") || s.starts_with("tcp://"))
        .ok_or("no HAProxy runtime API (--lb-stats unix:///… or tcp://…); for nginx use kha lb drain --nginx-config")?;
    let rows = obs.rows();
    let row = rows
        .get(state.lb.selected)
        .ok_or("select a backend first")?;
    let action = match i {
        0 => BackendAction::Drain,
        1 => BackendAction::Ready,
        _ => BackendAction::Maint,
    };
    lb::haproxy(&state.cluster, obs, &endpoint, &row.name, action)
}

fn node_facts(n: &NodeInfo) -> NodeFacts {
    NodeFacts {
        name: n.name.clone(),
        zone: n.zone.clone(),
        ready: n.ready == Readiness::Ready,
        unschedulable: n.unschedulable,
        control_plane: n.roles.iter().any(|r| r == "control-plane"),
        blocking_taints: n
            .taints
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .map(|t| match &t.value {
                Some(v) => format!("{}={v}:{}", t.key, t.effect),
                None => format!("{}:{}", t.key, t.effect),
            })
            .collect(),
        allocatable: Resources {
            gpus: u64::from(n.gpu_allocatable),
            ..Resources::default()
        },
    }
}

fn pod_facts(p: &PodInfo) -> PodFacts {
    PodFacts {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        uid: None,
        node: p.node.clone(),
        phase: p.phase.clone(),
        labels: Default::default(),
        // Control-plane pods are kubeadm's static pods.
        mirror: p.component.is_some(),
        controller: None,
        component: p.component.clone(),
        etcd_name: p.etcd_name.clone(),
        ready: p.ready,
        requests: Resources::default(),
        empty_dir: false,
    }
}

/// What the cockpit knows: every node, the control-plane pods, no other pod.
fn watched_facts(state: &State) -> ClusterFacts {
    ClusterFacts {
        nodes: state.kube.nodes.objects.iter().map(node_facts).collect(),
        pods: state
            .kube
            .control_plane_pods
            .objects
            .iter()
            .map(pod_facts)
            .collect(),
        pdbs: Vec::new(),
        pods_listed: false,
    }
}

/// The control-plane pane's selected row.
fn selected_control_plane_row(
    state: &State,
) -> Result<super::control_plane::ControlPlaneRow, String> {
    let view = state.control_plane();
    let rows = super::control_plane::visible(&view.rows, &state.control_plane_view);
    rows.get(state.control_plane_view.selected)
        .map(|r| (*r).clone())
        .ok_or_else(|| "select a node first".to_string())
}

/// The read behind evacuating the selected node's zone: every pod, weighed against the
/// other zones with the etcd observation on screen.
pub fn zone_request(state: &State) -> Result<PlanRequest, String> {
    let row = selected_control_plane_row(state)?;
    Ok(PlanRequest::ZoneEvacuation {
        cluster: state.cluster.clone(),
        zone: row.zone,
        etcd: state.etcd.last.clone().map(Box::new),
    })
}

/// The control-plane pane's node entry `i` (cordon, drain, uncordon), for the selected node.
pub fn plan_control_plane_entry(state: &State, i: usize) -> Result<Runbook, String> {
    let row = selected_control_plane_row(state)?;
    let name = row
        .node
        .as_deref()
        .ok_or_else(|| format!("zone {} has no control-plane node", row.zone))?;
    node_entry(state, name, i)
}
