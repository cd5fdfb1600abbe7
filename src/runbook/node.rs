//! Node runbooks: cordon (mark unschedulable), drain (cordon, then a `policy/v1`
//! Eviction per pod, PDB-aware, mirror and DaemonSet pods skipped, pods without a
//! controller or with `emptyDir` volumes refused unless `--force` /
//! `--delete-emptydir-data`, as kubectl drain does) and uncordon. Pure: planned from
//! [`ClusterFacts`] read beforehand; the drain itself lists the node's pods again when
//! it runs and re-checks them.

use std::fmt::Write;
use std::time::Duration;

use super::facts::{self, ClusterFacts, Disposition, DrainFlags, PodFacts};
use super::{Operation, Precondition, Risk, Runbook, Step, Verification};

/// How a drain behaves (`kha node drain --timeout/--grace-period/--retry/--force/
/// --delete-emptydir-data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOptions {
    /// `deleteOptions.gracePeriodSeconds`; `None`: each pod's own.
    pub grace_seconds: Option<i64>,
    /// How long evictions a budget blocks are retried, in total.
    pub timeout_secs: u64,
    /// Pause between retries of blocked evictions (kubectl: 5 s).
    pub retry_secs: u64,
    /// Evict pods no controller manages too (kubectl's `--force`): gone for good.
    pub force: bool,
    /// Evict pods with `emptyDir` volumes too (`--delete-emptydir-data`): data lost.
    pub delete_emptydir_data: bool,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            grace_seconds: None,
            timeout_secs: 300,
            retry_secs: 5,
            force: false,
            delete_emptydir_data: false,
        }
    }
}

impl DrainOptions {
    pub fn flags(&self) -> DrainFlags {
        DrainFlags {
            force: self.force,
            delete_emptydir_data: self.delete_emptydir_data,
        }
    }
}

/// Pods listed by name in a plan, at most.
const LISTED: usize = 25;

fn node_resource() -> (String, String, String, String) {
    ("".into(), "v1".into(), "Node".into(), "nodes".into())
}

fn node_exists(facts: &ClusterFacts, node: &str) -> Precondition {
    match facts.node(node) {
        Some(n) => Precondition {
            description: format!("node {node} exists"),
            met: true,
            evidence: format!(
                "zone {}, {}, {}",
                n.zone.as_deref().unwrap_or("unknown"),
                if n.ready { "Ready" } else { "NotReady" },
                if n.unschedulable {
                    "already cordoned"
                } else {
                    "schedulable"
                }
            ),
        },
        None => Precondition {
            description: format!("node {node} exists"),
            met: false,
            evidence: format!("no node {node} among {} nodes", facts.nodes.len()),
        },
    }
}

/// The merge patch that marks a node unschedulable, verified on the node.
pub(crate) fn cordon_step(node: &str) -> Step {
    Step {
        title: format!("Cordon {node}"),
        explanation: format!(
            "Marks {node} unschedulable so the scheduler puts no new pod there; running \
             pods stay."
        ),
        risk: Risk::Disruptive,
        operation: Operation::KubeMergePatch {
            resource: node_resource(),
            namespace: None,
            name: node.into(),
            patch: r#"{"spec":{"unschedulable":true}}"#.into(),
        },
        verification: Verification::NodeSchedulable {
            node: node.into(),
            schedulable: false,
        },
        timeout: Duration::from_secs(10),
        on_failure: format!(
            "check that {node} exists and that you may patch nodes (kubectl auth can-i patch nodes)"
        ),
        skippable: false,
    }
}

/// The evictions of one node, with what the plan knows about its pods (`pods`: the
/// node's, when `facts.pods_listed`).
pub(crate) fn drain_step(
    facts: &ClusterFacts,
    node: &str,
    pods: &[&PodFacts],
    opts: DrainOptions,
    risk: Risk,
) -> Step {
    Step {
        title: format!("Drain {node}"),
        explanation: drain_explanation(facts, node, pods, opts),
        risk,
        operation: Operation::KubeDrainNode {
            node: node.into(),
            grace_seconds: opts.grace_seconds,
            timeout_secs: opts.timeout_secs,
            retry_secs: opts.retry_secs,
            force: opts.force,
            delete_emptydir_data: opts.delete_emptydir_data,
        },
        verification: Verification::NodeDrained { node: node.into() },
        timeout: Duration::from_secs(60),
        on_failure: format!(
            "the summary names the PodDisruptionBudget that blocks: let its workload get \
             Ready elsewhere (or scale it up) and retry; when it names pods that need \
             --force or --delete-emptydir-data, move them yourself or plan again with the \
             flag; {node} stays cordoned meanwhile (uncordon it with `kha node uncordon \
             {node}` to give up)"
        ),
        skippable: false,
    }
}

fn drain_explanation(
    facts: &ClusterFacts,
    node: &str,
    pods: &[&PodFacts],
    opts: DrainOptions,
) -> String {
    let mut out = format!(
        "Evicts every pod on {node} through the policy/v1 Eviction API (a hand-built \
         Eviction with deleteOptions), so PodDisruptionBudgets are honoured: a 429 is \
         retried every {} s for up to {} s, naming the budget. Mirror (static) pods and \
         DaemonSet pods are always skipped (kubectl's --ignore-daemonsets); finished pods \
         are evicted whatever the flags. ",
        opts.retry_secs, opts.timeout_secs
    );
    out.push_str(if opts.force {
        "--force: pods no controller manages are evicted too, and nothing recreates them. "
    } else {
        "A pod no controller manages makes the drain refuse, evicting nothing (--force \
         evicts it for good). "
    });
    out.push_str(if opts.delete_emptydir_data {
        "--delete-emptydir-data: pods with emptyDir volumes are evicted too, and the data \
         in those volumes is lost. "
    } else {
        "So does a pod with emptyDir volumes (--delete-emptydir-data evicts it, losing \
         that data). "
    });
    out.push_str(
        "The drain lists the pods again and re-checks them when it runs. Then it waits for \
         the evicted pods to be gone.",
    );
    if !facts.pods_listed {
        out.push_str(" The pods are listed when the drain runs.");
        return out;
    }
    let flags = opts.flags();
    let evict = pods
        .iter()
        .filter(|p| p.disposition(flags).evicts())
        .count();
    let refused = pods
        .iter()
        .filter(|p| matches!(p.disposition(flags), Disposition::Refuse(_)))
        .count();
    let _ = write!(
        out,
        "\n\nWhen planned: {} pod(s) on {node}, {evict} to evict",
        pods.len(),
    );
    if refused > 0 {
        let _ = write!(out, ", {refused} refused");
    }
    out.push('.');
    for p in pods.iter().take(LISTED) {
        let owner = p
            .controller
            .as_ref()
            .map_or("no controller".to_string(), |(k, n)| format!("{k} {n}"));
        let disposition = p.disposition(flags);
        let mut what = match disposition {
            Disposition::Evict => "evict".to_string(),
            Disposition::EvictUnmanaged => "evict for good (--force; nothing recreates it)".into(),
            Disposition::Refuse(r) => format!("refused: {}", r.describe()),
            other => format!("skip ({})", other.label()),
        };
        if disposition.evicts() {
            if p.empty_dir && !p.finished() {
                what.push_str(", its emptyDir data is lost (--delete-emptydir-data)");
            }
            if let Some(b) = facts.blocking_pdb(p) {
                let _ = write!(
                    what,
                    " — PodDisruptionBudget {}/{} allows 0 disruptions now: will wait",
                    b.namespace, b.name
                );
            }
        }
        let _ = write!(out, "\n- {} ({owner}): {what}", p.key());
    }
    if pods.len() > LISTED {
        let _ = write!(out, "\n- … and {} more", pods.len() - LISTED);
    }
    out
}

/// Pods named in the evidence of what the flags allow, at most.
const NAMED: usize = 5;

fn named(keys: &[String]) -> String {
    let mut out = keys
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > NAMED {
        let _ = write!(out, " and {} more", keys.len() - NAMED);
    }
    out
}

/// kubectl drain's refusals, checked on the pods `place` (`on NODE`, `in zone Z`) when
/// planned: none needs `--force` or `--delete-emptydir-data` that was not given. The
/// evidence names the pods those flags let go (or the refused ones, in the words the
/// drain itself refuses with).
pub(crate) fn flags_allow<'a>(
    facts: &ClusterFacts,
    place: &str,
    pods: impl IntoIterator<Item = &'a PodFacts> + Clone,
    opts: DrainOptions,
) -> Precondition {
    let description = format!(
        "the drain may evict every pod {place} (a pod with no controller needs --force, \
         one with emptyDir volumes --delete-emptydir-data)"
    );
    if !facts.pods_listed {
        return Precondition {
            description,
            met: true,
            evidence: "not checked when planned (the cockpit does not list every pod): the \
                       drain checks when it runs and refuses, evicting nothing, if a pod \
                       needs a flag"
                .into(),
        };
    }
    let flags = opts.flags();
    if let Some(why) = facts::refusal(pods.clone(), flags) {
        return Precondition {
            description,
            met: false,
            evidence: why,
        };
    }
    let mut unmanaged = Vec::new();
    let mut data_lost = Vec::new();
    for p in pods {
        let d = p.disposition(flags);
        if d == Disposition::EvictUnmanaged {
            unmanaged.push(p.key());
        }
        if d.evicts() && p.empty_dir && !p.finished() {
            data_lost.push(p.key());
        }
    }
    let mut said = Vec::new();
    if !unmanaged.is_empty() {
        said.push(format!(
            "--force evicts {} pod(s) no controller recreates: {}",
            unmanaged.len(),
            named(&unmanaged)
        ));
    }
    if !data_lost.is_empty() {
        said.push(format!(
            "--delete-emptydir-data loses the emptyDir data of {} pod(s): {}",
            data_lost.len(),
            named(&data_lost)
        ));
    }
    Precondition {
        description,
        met: true,
        evidence: if said.is_empty() {
            "no pod without a controller or with emptyDir volumes".into()
        } else {
            said.join("; ")
        },
    }
}

/// Another node can take the evicted pods.
fn somewhere_else(facts: &ClusterFacts, node: &str) -> Precondition {
    let others: Vec<&str> = facts
        .nodes
        .iter()
        .filter(|n| n.name != node && n.takes_workloads())
        .map(|n| n.name.as_str())
        .collect();
    Precondition {
        description: "another Ready, schedulable, untainted node takes the evicted pods".into(),
        met: !others.is_empty(),
        evidence: if others.is_empty() {
            "none: every other node is cordoned, NotReady or tainted".into()
        } else {
            format!("{} node(s), e.g. {}", others.len(), others[0])
        },
    }
}

pub fn cordon(cluster: &str, facts: &ClusterFacts, node: &str) -> Runbook {
    Runbook {
        id: "node.cordon".into(),
        title: format!("Cordon node {node}"),
        cluster: cluster.into(),
        summary: format!(
            "Stops new pods from landing on {node} (before maintenance or while it \
             misbehaves). Running pods stay; drain to move them."
        ),
        preconditions: vec![node_exists(facts, node)],
        steps: vec![cordon_step(node)],
    }
}

pub fn uncordon(cluster: &str, facts: &ClusterFacts, node: &str) -> Runbook {
    let mut ready = node_exists(facts, node);
    if let Some(n) = facts.node(node) {
        ready = Precondition {
            description: format!("node {node} exists and is Ready"),
            met: n.ready,
            evidence: ready.evidence,
        };
    }
    Runbook {
        id: "node.uncordon".into(),
        title: format!("Uncordon node {node}"),
        cluster: cluster.into(),
        summary: format!(
            "Lets the scheduler place pods on {node} again, after maintenance. Pods \
             evicted earlier do not move back by themselves."
        ),
        preconditions: vec![ready],
        steps: vec![Step {
            title: format!("Uncordon {node}"),
            explanation: "Clears spec.unschedulable (the merge patch kubectl uncordon sends)."
                .into(),
            risk: Risk::Disruptive,
            operation: Operation::KubeMergePatch {
                resource: node_resource(),
                namespace: None,
                name: node.into(),
                patch: r#"{"spec":{"unschedulable":null}}"#.into(),
            },
            verification: Verification::NodeSchedulable {
                node: node.into(),
                schedulable: true,
            },
            timeout: Duration::from_secs(10),
            on_failure: format!("check that you may patch nodes and that {node} exists"),
            skippable: false,
        }],
    }
}

/// A drain that may evict pods nothing recreates, or lose emptyDir data, is
/// destructive (the cluster name must be typed); otherwise disruptive.
fn drain_risk(opts: DrainOptions) -> Risk {
    if opts.force || opts.delete_emptydir_data {
        Risk::Destructive
    } else {
        Risk::Disruptive
    }
}

pub fn drain(cluster: &str, facts: &ClusterFacts, node: &str, opts: DrainOptions) -> Runbook {
    let pods: Vec<&PodFacts> = facts.pods_on(node).collect();
    Runbook {
        id: "node.drain".into(),
        title: format!("Drain node {node}"),
        cluster: cluster.into(),
        summary: format!(
            "Cordons {node} and moves its pods elsewhere through the Eviction API, \
             honouring PodDisruptionBudgets, before maintenance or when the node is \
             failing. Ends with a summary: evicted, skipped, blocked."
        ),
        preconditions: vec![
            node_exists(facts, node),
            somewhere_else(facts, node),
            flags_allow(facts, &format!("on {node}"), pods.iter().copied(), opts),
        ],
        steps: vec![
            cordon_step(node),
            drain_step(facts, node, &pods, opts, drain_risk(opts)),
        ],
    }
}
