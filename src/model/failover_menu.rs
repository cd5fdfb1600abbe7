//! The LB, control-plane and GPU-nodes panes' runbook menus: drain, enable or put in
//! maintenance the selected apiserver backend; cordon, drain or uncordon the selected
//! control-plane or GPU node, or evacuate a control-plane node's zone. Planned from what the cockpit watches: the LB
//! observation, nodes and control-plane pods (it lists no other pods, so a drain lists
//! them when it runs and a zone evacuation's capacity check sends to the CLI).

use super::State;
use crate::model::kube::{NodeInfo, PodInfo, Readiness};
use crate::runbook::Runbook;
use crate::runbook::facts::{ClusterFacts, NodeFacts, PodFacts, Resources};
use crate::runbook::lb::{self, BackendAction};
use crate::runbook::node::{self, DrainOptions};
use crate::runbook::zone;

/// The API-server LB pane's runbooks, in menu order.
pub const LB_MENU: [&str; 3] = [
    "Drain the selected backend (HAProxy)",
    "Enable the selected backend (HAProxy ready)",
    "Put the selected backend in maintenance (HAProxy)",
];

/// The control-plane pane's runbooks, in menu order.
pub const CONTROL_PLANE_MENU: [&str; 4] = [
    "Cordon the selected node",
    "Drain the selected node",
    "Uncordon the selected node",
    "Evacuate the selected node's zone",
];

/// The GPU-nodes pane's runbooks, in menu order.
pub const GPU_MENU: [&str; 3] = [
    "Cordon the selected GPU node",
    "Drain the selected GPU node",
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

/// The control-plane pane's entry `i`, for the selected node.
pub fn plan_control_plane_entry(state: &State, i: usize) -> Result<Runbook, String> {
    let view = state.control_plane();
    let rows = super::control_plane::visible(&view.rows, &state.control_plane_view);
    let row = rows
        .get(state.control_plane_view.selected)
        .ok_or("select a node first")?;
    if i == 3 {
        return Ok(zone::evacuate(
            &state.cluster,
            &watched_facts(state),
            state.etcd.last.as_ref(),
            &row.zone,
            DrainOptions::default(),
        ));
    }
    let name = row
        .node
        .as_deref()
        .ok_or_else(|| format!("zone {} has no control-plane node", row.zone))?;
    node_entry(state, name, i)
}
