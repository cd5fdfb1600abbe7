//! Node runbooks: cordon (mark unschedulable), drain (cordon, then a `policy/v1`
//! Eviction per pod, PDB-aware, mirror and DaemonSet pods skipped) and uncordon. Pure:
//! planned from [`ClusterFacts`] read beforehand; the drain itself lists the node's pods
//! again when it runs.

use std::fmt::Write;
use std::time::Duration;

use super::facts::{ClusterFacts, Disposition};
use super::{Operation, Precondition, Risk, Runbook, Step, Verification};

/// How a drain behaves (`kha node drain --timeout/--grace-period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainOptions {
    /// `deleteOptions.gracePeriodSeconds`; `None`: each pod's own.
    pub grace_seconds: Option<i64>,
    /// How long evictions a budget blocks are retried, in total.
    pub timeout_secs: u64,
    /// Pause between retries of blocked evictions (kubectl: 5 s).
    pub retry_secs: u64,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            grace_seconds: None,
            timeout_secs: 300,
            retry_secs: 5,
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

/// The evictions of one node, with what the plan knows about its pods.
pub(crate) fn drain_step(facts: &ClusterFacts, node: &str, opts: DrainOptions, risk: Risk) -> Step {
    Step {
        title: format!("Drain {node}"),
        explanation: drain_explanation(facts, node, opts),
        risk,
        operation: Operation::KubeDrainNode {
            node: node.into(),
            grace_seconds: opts.grace_seconds,
            timeout_secs: opts.timeout_secs,
            retry_secs: opts.retry_secs,
        },
        verification: Verification::NodeDrained { node: node.into() },
        timeout: Duration::from_secs(60),
        on_failure: format!(
            "the summary names the PodDisruptionBudget that blocks: let its workload get \
             Ready elsewhere (or scale it up) and retry; {node} stays cordoned meanwhile \
             (uncordon it with `kha node uncordon {node}` to give up)"
        ),
        skippable: false,
    }
}

fn drain_explanation(facts: &ClusterFacts, node: &str, opts: DrainOptions) -> String {
    let mut out = format!(
        "Evicts every pod on {node} through the policy/v1 Eviction API (a hand-built \
         Eviction with deleteOptions), so PodDisruptionBudgets are honoured: a 429 is \
         retried every {} s for up to {} s, naming the budget. Mirror (static) pods and \
         DaemonSet pods are skipped; pods with no controller are left (nothing would \
         recreate them). Then waits for the evicted pods to be gone.",
        opts.retry_secs, opts.timeout_secs
    );
    if !facts.pods_listed {
        out.push_str(" The pods are listed when the drain runs.");
        return out;
    }
    let pods: Vec<_> = facts.pods_on(node).collect();
    let evict: Vec<_> = pods
        .iter()
        .filter(|p| p.disposition() == Disposition::Evict)
        .collect();
    let _ = write!(
        out,
        "\n\nWhen planned: {} pod(s) on {node}, {} to evict.",
        pods.len(),
        evict.len()
    );
    for p in pods.iter().take(LISTED) {
        let owner = p
            .controller
            .as_ref()
            .map_or("no controller".to_string(), |(k, n)| format!("{k} {n}"));
        let what = match p.disposition() {
            Disposition::Evict => match facts.blocking_pdb(p) {
                Some(b) => format!(
                    "evict — PodDisruptionBudget {}/{} allows 0 disruptions now: will wait",
                    b.namespace, b.name
                ),
                None => "evict".into(),
            },
            other => format!("skip ({})", other.label()),
        };
        let _ = write!(out, "\n- {} ({owner}): {what}", p.key());
    }
    if pods.len() > LISTED {
        let _ = write!(out, "\n- … and {} more", pods.len() - LISTED);
    }
    out
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

pub fn drain(cluster: &str, facts: &ClusterFacts, node: &str, opts: DrainOptions) -> Runbook {
    Runbook {
        id: "node.drain".into(),
        title: format!("Drain node {node}"),
        cluster: cluster.into(),
        summary: format!(
            "Cordons {node} and moves its pods elsewhere through the Eviction API, \
             honouring PodDisruptionBudgets, before maintenance or when the node is \
             failing. Ends with a summary: evicted, skipped, blocked."
        ),
        preconditions: vec![node_exists(facts, node), somewhere_else(facts, node)],
        steps: vec![
            cordon_step(node),
            drain_step(facts, node, opts, Risk::Disruptive),
        ],
    }
}
