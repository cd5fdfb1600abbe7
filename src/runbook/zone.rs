//! Zone evacuation: cordon every node of a zone (`topology.kubernetes.io/zone`), then
//! drain them one by one, before zone maintenance or when a zone degrades. Refused
//! unless the other zones keep etcd quorum, at least one ready kube-apiserver runs
//! outside the zone, and the other zones have the allocatable CPU, memory and GPUs for
//! what will be evicted; the preview shows the numbers. Pure: planned from
//! [`ClusterFacts`] (every node and pod, read once) and the etcd observation.

use std::collections::HashMap;
use std::fmt::Write;

use super::facts::{ClusterFacts, NodeFacts, PodFacts, Resources, cores};
use super::fit;
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

/// Free allocatable (allocatable minus requests of the pods there) of `node`.
fn free_of(node: &NodeFacts, by_node: &HashMap<&str, Vec<&PodFacts>>) -> Resources {
    let mut used = Resources::default();
    for p in by_node.get(node.name.as_str()).into_iter().flatten() {
        if !p.finished() {
            used.add(p.requests);
        }
    }
    node.allocatable.saturating_sub(used)
}

fn total(of: impl IntoIterator<Item = Resources>) -> Resources {
    let mut r = Resources::default();
    for x in of {
        r.add(x);
    }
    r
}

/// Nodes of the zone named in the plan, at most (a big zone has thousands).
const NODES_LISTED: usize = 25;

/// Pods named among those that fit nowhere, at most.
const UNPLACED_LISTED: usize = 5;

/// ` — 2 pod(s) fit on no single node: ns/a (CPU 4, memory 1.0 GiB), …` after the
/// totals of `pods`; `totals_ok` says whether the totals alone would have done.
fn placement_verdict(pods: usize, unplaced: &[&PodFacts], totals_ok: bool, gpus: bool) -> String {
    if pods == 0 {
        return String::new();
    }
    if unplaced.is_empty() {
        return "; placed one by one, largest first, every pod fits on a node".into();
    }
    let mut named: Vec<String> = unplaced
        .iter()
        .take(UNPLACED_LISTED)
        .map(|p| {
            let r = p.requests;
            let gpu = if gpus {
                format!(", GPUs {}", r.gpus)
            } else {
                String::new()
            };
            format!(
                "{} (CPU {}, memory {}{gpu})",
                p.key(),
                cores(r.cpu_millis),
                gib(r.memory_bytes)
            )
        })
        .collect();
    if unplaced.len() > UNPLACED_LISTED {
        named.push(format!("and {} more", unplaced.len() - UNPLACED_LISTED));
    }
    format!(
        " — {}{} pod(s) fit on no single node: {}; they would stay Pending",
        if totals_ok {
            "the totals would do, but "
        } else {
            "not enough in total, and "
        },
        unplaced.len(),
        named.join(", ")
    )
}

/// Places `pods` onto the nodes `idx` of `free`, taking the room they use; returns
/// those that fit nowhere.
fn place<'a>(pods: &[&'a PodFacts], idx: &[usize], free: &mut [Resources]) -> Vec<&'a PodFacts> {
    let mut bins: Vec<Resources> = idx.iter().map(|&i| free[i]).collect();
    let unplaced = fit::first_fit_decreasing(pods, &mut bins);
    for (&i, left) in idx.iter().zip(bins) {
        free[i] = left;
    }
    unplaced
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
    let usable = |n: &&NodeFacts| !in_zone(n) && n.ready && !n.unschedulable;
    // Ordinary pods go to untainted nodes; GPU pods to GPU nodes (whose dedicated
    // taint they tolerate), never to control-plane nodes. A node can be both (an
    // untainted GPU node): GPU pods are placed first, and plain pods get what is left.
    let targets: Vec<&NodeFacts> = facts.nodes.iter().filter(usable).collect();
    let takes_plain = |n: &NodeFacts| n.blocking_taints.is_empty();
    let takes_gpu = |n: &NodeFacts| {
        n.allocatable.gpus > 0
            && !n
                .blocking_taints
                .iter()
                .any(|t| t.starts_with(CONTROL_PLANE_TAINT))
    };
    let mut free: Vec<Resources> = targets.iter().map(|n| free_of(n, by_node)).collect();
    let plain_idx: Vec<usize> = (0..targets.len())
        .filter(|&i| takes_plain(targets[i]))
        .collect();
    let gpu_idx: Vec<usize> = (0..targets.len())
        .filter(|&i| takes_gpu(targets[i]))
        .collect();
    let free_plain = total(plain_idx.iter().map(|&i| free[i]));
    let free_gpu = total(gpu_idx.iter().map(|&i| free[i]));
    let need_plain = total(plain_pods.iter().map(|p| p.requests));
    let need_gpu = total(gpu_pods.iter().map(|p| p.requests));
    let unplaced_gpu = place(&gpu_pods, &gpu_idx, &mut free);
    let unplaced_plain = place(&plain_pods, &plain_idx, &mut free);
    let plain_totals_ok = free_plain.cpu_millis >= need_plain.cpu_millis
        && free_plain.memory_bytes >= need_plain.memory_bytes;
    let mut out = vec![Precondition {
        description: format!(
            "the other zones have CPU and memory for the pods evicted from {zone}"
        ),
        met: unplaced_plain.is_empty(),
        evidence: format!(
            "needed by {} pod(s): CPU {}, memory {}; free on {} schedulable node(s) elsewhere: CPU {}, memory {}{}",
            plain_pods.len(),
            cpu(need_plain.cpu_millis),
            gib(need_plain.memory_bytes),
            plain_idx.len(),
            cpu(free_plain.cpu_millis),
            gib(free_plain.memory_bytes),
            placement_verdict(plain_pods.len(), &unplaced_plain, plain_totals_ok, false)
        ),
    }];
    if !gpu_pods.is_empty() || !gpu_idx.is_empty() {
        out.push(Precondition {
            description: format!("the other zones have GPUs (nvidia.com/gpu) for the GPU pods of {zone}"),
            met: unplaced_gpu.is_empty(),
            evidence: format!(
                "needed by {} GPU pod(s): GPUs {}, CPU {}, memory {}; free on {} GPU node(s) elsewhere: GPUs {}, CPU {}, memory {}{}",
                gpu_pods.len(),
                need_gpu.gpus,
                cpu(need_gpu.cpu_millis),
                gib(need_gpu.memory_bytes),
                gpu_idx.len(),
                free_gpu.gpus,
                cpu(free_gpu.cpu_millis),
                gib(free_gpu.memory_bytes),
                placement_verdict(
                    gpu_pods.len(),
                    &unplaced_gpu,
                    free_gpu.covers(&need_gpu),
                    true
                )
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
            let names: Vec<&str> = nodes
                .iter()
                .take(NODES_LISTED)
                .map(|n| n.name.as_str())
                .collect();
            let more = nodes.len().saturating_sub(NODES_LISTED);
            format!(
                "{} node(s): {}{}",
                nodes.len(),
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
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

#[cfg(test)]
mod tests {

    use super::*;

    const GIB: u64 = 1 << 30;

    fn node(name: &str, zone: &str, cores: u64) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            zone: Some(zone.into()),
            ready: true,
            unschedulable: false,
            control_plane: false,
            blocking_taints: Vec::new(),
            allocatable: Resources {
                cpu_millis: cores * 1000,
                memory_bytes: 16 * GIB,
                gpus: 0,
            },
        }
    }

    fn pod(name: &str, node: &str, cpu_millis: u64) -> PodFacts {
        let requests = Resources {
            cpu_millis,
            memory_bytes: GIB,
            gpus: 0,
        };
        PodFacts::test_pod(name, Some(node), requests)
    }

    /// Zone a runs one pod of `cores`; zone b has four 4-core nodes, each running a
    /// pod that leaves `free` cores.
    fn facts(cores: u64, free: u64) -> ClusterFacts {
        let mut nodes = vec![node("a-1", "a", 8)];
        let mut pods = vec![pod("big", "a-1", cores * 1000)];
        for i in 0..4 {
            let name = format!("b-{i}");
            nodes.push(node(&name, "b", 4));
            pods.push(pod(&format!("filler-{i}"), &name, (4 - free) * 1000));
        }
        ClusterFacts {
            nodes,
            pods,
            pdbs: Vec::new(),
            pods_listed: true,
        }
    }

    #[test]
    fn a_pod_that_fits_in_the_totals_but_on_no_node_is_refused() {
        // Four nodes with 1 free core each: 4 cores in total, none for a 4-core pod.
        let facts = facts(4, 1);
        let by_node = facts.pods_by_node();
        let checks = capacity(&facts, "a", &by_node);
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].met, "{}", checks[0].evidence);
        assert_eq!(
            checks[0].evidence,
            "needed by 1 pod(s): CPU 4.0 cores, memory 1.0 GiB; free on 4 schedulable \
             node(s) elsewhere: CPU 4.0 cores, memory 60.0 GiB — the totals would do, but 1 \
             pod(s) fit on no single node: shop/big (CPU 4, memory 1.0 GiB); they would stay \
             Pending"
        );
    }

    #[test]
    fn a_pod_that_fits_on_one_node_is_met() {
        // One node has 4 free cores (the others 1): the pod goes there.
        let mut facts = facts(4, 1);
        facts.pods.retain(|p| p.name != "filler-2");
        let by_node = facts.pods_by_node();
        let checks = capacity(&facts, "a", &by_node);
        assert!(checks[0].met, "{}", checks[0].evidence);
        assert!(
            checks[0]
                .evidence
                .ends_with("; placed one by one, largest first, every pod fits on a node"),
            "{}",
            checks[0].evidence
        );
    }

    #[test]
    fn more_than_a_few_pods_that_fit_nowhere_are_counted() {
        let mut facts = facts(4, 1);
        for i in 0..7 {
            facts.pods.push(pod(&format!("big-{i}"), "a-1", 3000));
        }
        let by_node = facts.pods_by_node();
        let evidence = &capacity(&facts, "a", &by_node)[0].evidence;
        assert!(
            evidence.contains("— not enough in total, and 8 pod(s) fit on no single node: "),
            "{evidence}"
        );
        assert!(
            evidence.ends_with(", and 3 more; they would stay Pending"),
            "{evidence}"
        );
    }
}
