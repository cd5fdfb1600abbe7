//! Zone evacuation: cordon every node of a zone (`topology.kubernetes.io/zone`), then
//! drain them one by one, before zone maintenance or when a zone degrades. Refused
//! unless the other zones keep etcd quorum, at least one ready kube-apiserver runs
//! outside the zone, and the other zones have the allocatable CPU, memory and GPUs for
//! what will be evicted; the preview shows the numbers. Pure: planned from
//! [`ClusterFacts`] (every node and pod, read once) and the etcd observation.

use std::collections::HashMap;
use std::fmt::Write;

use super::facts::{ClusterFacts, NodeFacts, PodFacts, Resources};
use super::node::{DrainOptions, cordon_step, drain_step, flags_allow};
use super::{Precondition, Risk, Runbook};
use crate::model::etcd::EtcdObservation;

const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

/// The zone of the node an etcd member runs on: the node named like the member
/// (kubeadm), or the node of the etcd static pod whose `--name` is the member's.
fn member_zone<'a>(facts: &'a ClusterFacts, member: &str) -> Option<&'a str> {
    let node = facts.node(member).map(|n| n.name.as_str()).or_else(|| {
        facts
            .pods
            .iter()
            .find(|p| p.etcd_name.as_deref() == Some(member))
            .and_then(|p| p.node.as_deref())
    })?;
    facts.node(node)?.zone.as_deref()
}

fn etcd_quorum(facts: &ClusterFacts, etcd: Option<&EtcdObservation>, zone: &str) -> Precondition {
    let description = format!("etcd keeps quorum without zone {zone}");
    let Some(obs) = etcd else {
        return Precondition {
            description,
            met: false,
            evidence: "etcd not observed: configure --etcd-endpoints so kha can check quorum"
                .into(),
        };
    };
    let voters: Vec<_> = obs.members.iter().filter(|m| !m.is_learner).collect();
    let needed = voters.len() / 2 + 1;
    let mut outside = Vec::new();
    let mut inside = Vec::new();
    let mut unknown = Vec::new();
    for m in &voters {
        match member_zone(facts, &m.name) {
            Some(z) if z == zone => inside.push(m.name.clone()),
            Some(z) if m.is_healthy() => outside.push(format!("{} ({z})", m.name)),
            Some(z) => unknown.push(format!("{} ({z}, unhealthy)", m.name)),
            None => unknown.push(format!("{} (zone unknown)", m.name)),
        }
    }
    let met = !voters.is_empty() && outside.len() >= needed;
    let mut evidence = format!(
        "{} healthy member(s) outside {zone} of {} needed for quorum of {}: {}",
        outside.len(),
        needed,
        voters.len(),
        if outside.is_empty() {
            "none".to_string()
        } else {
            outside.join(", ")
        }
    );
    if !inside.is_empty() {
        let _ = write!(evidence, "; in {zone}: {}", inside.join(", "));
    }
    if !unknown.is_empty() {
        let _ = write!(evidence, "; not counted: {}", unknown.join(", "));
    }
    if !met {
        evidence.push_str(" — evacuating this zone would lose etcd quorum");
    }
    Precondition {
        description,
        met,
        evidence,
    }
}

fn apiserver_outside(facts: &ClusterFacts, zone: &str) -> Precondition {
    let zone_of = |p: &PodFacts| {
        p.node
            .as_deref()
            .and_then(|n| facts.node(n))
            .and_then(|n| n.zone.as_deref())
    };
    let apiservers: Vec<&PodFacts> = facts
        .pods
        .iter()
        .filter(|p| p.component.as_deref() == Some("kube-apiserver"))
        .collect();
    let ready: Vec<String> = apiservers
        .iter()
        .filter(|p| p.ready && zone_of(p).is_some_and(|z| z != zone))
        .map(|p| format!("{} ({})", p.name, zone_of(p).unwrap_or("?")))
        .collect();
    Precondition {
        description: format!("a ready kube-apiserver runs outside zone {zone}"),
        met: !ready.is_empty(),
        evidence: if ready.is_empty() {
            format!(
                "none of {} kube-apiserver pod(s) is ready outside {zone}: the API would go down",
                apiservers.len()
            )
        } else {
            ready.join(", ")
        },
    }
}

/// Free allocatable (allocatable minus requests of the pods there) on `nodes`.
fn free_on(nodes: &[&NodeFacts], by_node: &HashMap<&str, Vec<&PodFacts>>) -> Resources {
    let mut free = Resources::default();
    for n in nodes {
        let mut used = Resources::default();
        for p in by_node.get(n.name.as_str()).into_iter().flatten() {
            if !p.finished() {
                used.add(p.requests);
            }
        }
        free.add(n.allocatable.saturating_sub(used));
    }
    free
}

fn capacity(
    facts: &ClusterFacts,
    zone: &str,
    by_node: &HashMap<&str, Vec<&PodFacts>>,
) -> Vec<Precondition> {
    if !facts.pods_listed {
        return vec![Precondition {
            description: format!(
                "the other zones have CPU, memory and GPUs for the pods evicted from {zone}"
            ),
            met: false,
            evidence: format!(
                "not checked: the cockpit does not list every pod; run `kha zone evacuate {zone} --plan`, which reads them once"
            ),
        }];
    }
    let in_zone = |n: &NodeFacts| n.zone.as_deref() == Some(zone);
    // What must land elsewhere: pods whose controller makes them again (not mirror,
    // DaemonSet, finished pods, nor unmanaged ones --force lets go for good).
    let evicted: Vec<&PodFacts> = facts
        .nodes
        .iter()
        .filter(|n| in_zone(n))
        .flat_map(|n| by_node.get(n.name.as_str()).into_iter().flatten().copied())
        .filter(|p| p.recreated_elsewhere())
        .collect();
    let (gpu_pods, plain_pods): (Vec<&PodFacts>, Vec<&PodFacts>) =
        evicted.iter().partition(|p| p.requests.gpus > 0);
    let sum = |pods: &[&PodFacts]| {
        let mut r = Resources::default();
        for p in pods {
            r.add(p.requests);
        }
        r
    };
    let usable = |n: &&NodeFacts| !in_zone(n) && n.ready && !n.unschedulable;
    // Ordinary pods go to untainted nodes; GPU pods to GPU nodes (whose dedicated
    // taint they tolerate), never to control-plane nodes.
    let plain_nodes: Vec<&NodeFacts> = facts
        .nodes
        .iter()
        .filter(usable)
        .filter(|n| n.blocking_taints.is_empty())
        .collect();
    let gpu_nodes: Vec<&NodeFacts> = facts
        .nodes
        .iter()
        .filter(usable)
        .filter(|n| n.allocatable.gpus > 0)
        .filter(|n| {
            !n.blocking_taints
                .iter()
                .any(|t| t.starts_with(CONTROL_PLANE_TAINT))
        })
        .collect();
    let (need_plain, need_gpu) = (sum(&plain_pods), sum(&gpu_pods));
    let (free_plain, free_gpu) = (free_on(&plain_nodes, by_node), free_on(&gpu_nodes, by_node));
    let plain_ok = free_plain.cpu_millis >= need_plain.cpu_millis
        && free_plain.memory_bytes >= need_plain.memory_bytes;
    let gpu_ok = free_gpu.covers(&need_gpu);
    let mut out = vec![Precondition {
        description: format!(
            "the other zones have CPU and memory for the pods evicted from {zone}"
        ),
        met: plain_ok,
        evidence: format!(
            "needed by {} pod(s): CPU {}, memory {}; free on {} schedulable node(s) elsewhere: CPU {}, memory {}{}",
            plain_pods.len(),
            cpu(need_plain.cpu_millis),
            gib(need_plain.memory_bytes),
            plain_nodes.len(),
            cpu(free_plain.cpu_millis),
            gib(free_plain.memory_bytes),
            if plain_ok {
                ""
            } else {
                " — not enough: the evicted pods would stay Pending"
            }
        ),
    }];
    if !gpu_pods.is_empty() || gpu_nodes.iter().any(|n| n.allocatable.gpus > 0) {
        out.push(Precondition {
            description: format!("the other zones have GPUs (nvidia.com/gpu) for the GPU pods of {zone}"),
            met: gpu_ok,
            evidence: format!(
                "needed by {} GPU pod(s): GPUs {}, CPU {}, memory {}; free on {} GPU node(s) elsewhere: GPUs {}, CPU {}, memory {}{}",
                gpu_pods.len(),
                need_gpu.gpus,
                cpu(need_gpu.cpu_millis),
                gib(need_gpu.memory_bytes),
                gpu_nodes.len(),
                free_gpu.gpus,
                cpu(free_gpu.cpu_millis),
                gib(free_gpu.memory_bytes),
                if gpu_ok { "" } else { " — not enough: the GPU pods would stay Pending" }
            ),
        });
    }
    out
}

fn cpu(millis: u64) -> String {
    format!("{:.1} cores", millis as f64 / 1000.0)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Cordon every node of `zone`, then drain each.
pub fn evacuate(
    cluster: &str,
    facts: &ClusterFacts,
    etcd: Option<&EtcdObservation>,
    zone: &str,
    opts: DrainOptions,
) -> Runbook {
    let nodes: Vec<&NodeFacts> = facts
        .nodes
        .iter()
        .filter(|n| n.zone.as_deref() == Some(zone))
        .collect();
    let mut zones: Vec<&str> = facts
        .nodes
        .iter()
        .filter_map(|n| n.zone.as_deref())
        .collect();
    zones.sort_unstable();
    zones.dedup();
    let mut preconditions = vec![Precondition {
        description: format!("zone {zone} has nodes"),
        met: !nodes.is_empty(),
        evidence: if nodes.is_empty() {
            format!(
                "no node has {}={zone} (zones: {})",
                super::facts::ZONE_LABEL,
                zones.join(", ")
            )
        } else {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            format!("{} node(s): {}", nodes.len(), names.join(", "))
        },
    }];
    let by_node = facts.pods_by_node();
    let pods_of = |n: &NodeFacts| by_node.get(n.name.as_str()).map_or(&[][..], Vec::as_slice);
    preconditions.push(etcd_quorum(facts, etcd, zone));
    preconditions.push(apiserver_outside(facts, zone));
    preconditions.push(flags_allow(
        facts,
        &format!("in zone {zone}"),
        nodes.iter().flat_map(|n| pods_of(n).iter().copied()),
        opts,
    ));
    preconditions.extend(capacity(facts, zone, &by_node));
    let mut steps: Vec<_> = nodes.iter().map(|n| cordon_step(&n.name)).collect();
    steps.extend(
        nodes
            .iter()
            .map(|n| drain_step(facts, &n.name, pods_of(n), opts, Risk::Destructive)),
    );
    Runbook {
        id: "zone.evacuate".into(),
        title: format!("Evacuate zone {zone}"),
        cluster: cluster.into(),
        summary: format!(
            "Moves every workload out of zone {zone} (before zone maintenance, or when the \
             zone degrades): cordons all its nodes first, so nothing evicted lands in the \
             zone again, then drains them one at a time through the Eviction API. \
             Control-plane static pods and DaemonSet pods stay; etcd and the apiservers \
             of the zone keep running until the zone itself goes."
        ),
        preconditions,
        steps,
    }
}
