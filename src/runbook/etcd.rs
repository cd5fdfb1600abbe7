//! The etcd runbooks, planned from a live observation of the cluster: snapshot save,
//! leader move, rolling defrag (followers first, leader last) and NOSPACE recovery.

use std::path::Path;
use std::time::Duration;

use super::{Operation, Precondition, Risk, Runbook, Step, Verification};
use crate::model::etcd::{EtcdObservation, MemberObservation};

/// The leader's member id, as the healthy members report it.
fn leader_id(obs: &EtcdObservation) -> Option<u64> {
    obs.members
        .iter()
        .filter(|m| m.is_healthy())
        .find_map(|m| m.status.as_ref().map(|s| s.leader))
        .filter(|id| *id != 0)
}

fn healthy(obs: &EtcdObservation) -> Vec<&MemberObservation> {
    obs.members.iter().filter(|m| m.is_healthy()).collect()
}

fn quorum(obs: &EtcdObservation) -> Precondition {
    let voters = obs.members.iter().filter(|m| !m.is_learner).count();
    let up = obs
        .members
        .iter()
        .filter(|m| !m.is_learner && m.is_healthy())
        .count();
    let needed = voters / 2 + 1;
    Precondition {
        description: "etcd has quorum".into(),
        met: voters > 0 && up >= needed,
        evidence: format!("{up}/{voters} voting members healthy, quorum {needed}"),
    }
}

fn all_healthy(obs: &EtcdObservation) -> Precondition {
    let down: Vec<&str> = obs
        .members
        .iter()
        .filter(|m| !m.is_healthy())
        .map(|m| m.name.as_str())
        .collect();
    Precondition {
        description: "every member is healthy (a defrag blocks its member while it runs)".into(),
        met: down.is_empty() && !obs.members.is_empty(),
        evidence: if down.is_empty() {
            format!("{}/{} healthy", obs.members.len(), obs.members.len())
        } else {
            format!("unhealthy: {}", down.join(", "))
        },
    }
}

fn endpoints(obs: &EtcdObservation) -> Vec<String> {
    obs.members.iter().map(|m| m.endpoint.clone()).collect()
}

/// Members in the order a rolling operation visits them: followers, then the leader.
fn leader_last(obs: &EtcdObservation) -> Vec<&MemberObservation> {
    let leader = leader_id(obs);
    let mut members: Vec<&MemberObservation> = obs.members.iter().collect();
    members.sort_by_key(|m| Some(m.id) == leader);
    members
}

/// Streams a snapshot from a healthy follower (sparing the leader) to `path`.
pub fn snapshot_save(cluster: &str, obs: &EtcdObservation, path: &Path) -> Runbook {
    let up = healthy(obs);
    let leader = leader_id(obs);
    let source = up
        .iter()
        .find(|m| Some(m.id) != leader)
        .or(up.first())
        .map(|m| m.endpoint.clone())
        .unwrap_or_else(|| "(no healthy member)".into());
    Runbook {
        id: "etcd.snapshot-save".into(),
        title: "Save an etcd snapshot".into(),
        cluster: cluster.into(),
        summary: "Streams a point-in-time snapshot of the whole keyspace to a local file, \
                  written atomically, and records its size, revision and SHA-256. Take one \
                  before any risky change; it is what a restore starts from."
            .into(),
        preconditions: vec![Precondition {
            description: "a healthy member to stream from".into(),
            met: !up.is_empty(),
            evidence: format!("{}/{} members healthy", up.len(), obs.members.len()),
        }],
        steps: vec![Step {
            title: format!("Stream the snapshot to {}", path.display()),
            explanation: format!(
                "Maintenance.Snapshot from {source} (a follower when one is healthy, to \
                 spare the leader). The data goes to {} first and is renamed into place \
                 only when complete and synced.",
                super::exec::partial_path(path).display()
            ),
            risk: Risk::Safe,
            operation: Operation::EtcdSnapshotSave {
                endpoint: source,
                path: path.to_path_buf(),
            },
            verification: Verification::SnapshotFile {
                path: path.to_path_buf(),
            },
            timeout: Duration::from_secs(300),
            on_failure: "Check free space where the file goes and that the member is \
                         healthy, then retry; another member works as well."
                .into(),
            skippable: false,
        }],
    }
}

/// Hands leadership to member `to` (before maintenance on the leader's node).
pub fn move_leader(cluster: &str, obs: &EtcdObservation, to: &str) -> Runbook {
    let leader = leader_id(obs);
    let current = obs.members.iter().find(|m| Some(m.id) == leader);
    let target = obs.members.iter().find(|m| m.name == to);
    let mut pre = vec![quorum(obs)];
    pre.push(Precondition {
        description: format!("{to} is a healthy voting member"),
        met: target.is_some_and(|t| t.is_healthy() && !t.is_learner),
        evidence: match target {
            None => format!(
                "no member named {to} (members: {})",
                obs.members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(t) if t.is_learner => format!("{to} is a learner"),
            Some(t) if !t.is_healthy() => format!("{to} is unhealthy"),
            Some(_) => format!("{to} is healthy"),
        },
    });
    pre.push(Precondition {
        description: format!("{to} is not already the leader"),
        met: current.is_some() && current.map(|c| c.name.as_str()) != Some(to),
        evidence: match current {
            Some(c) => format!("the leader is {}", c.name),
            None => "no leader is known".into(),
        },
    });
    Runbook {
        id: "etcd.move-leader".into(),
        title: format!("Move the etcd leader to {to}"),
        cluster: cluster.into(),
        summary: "Transfers raft leadership to a chosen member, e.g. before rebooting the \
                  leader's node, so the cluster sees one orderly election instead of a \
                  timeout-driven one."
            .into(),
        preconditions: pre,
        steps: vec![Step {
            title: format!("Transfer leadership to {to}"),
            explanation: format!(
                "Maintenance.MoveLeader sent to the current leader ({}). Writes pause for \
                 the length of one election (typically well under a second).",
                current.map_or("unknown", |c| c.name.as_str())
            ),
            risk: Risk::Disruptive,
            operation: Operation::EtcdMoveLeader {
                endpoint: current.map(|c| c.endpoint.clone()).unwrap_or_default(),
                to_name: to.into(),
                to_id: target.map_or(0, |t| t.id),
            },
            verification: Verification::EtcdLeaderIs {
                endpoints: endpoints(obs),
                name: to.into(),
            },
            timeout: Duration::from_secs(30),
            on_failure: "If another member won the election, leadership moved anyway: \
                         check `kha status` and retry the move if you need this member."
                .into(),
            skippable: false,
        }],
    }
}

fn defrag_step(m: &MemberObservation, is_leader: bool) -> Step {
    Step {
        title: format!(
            "Defragment {}{}",
            m.name,
            if is_leader { " (the leader, last)" } else { "" }
        ),
        explanation: format!(
            "Maintenance.Defragment of {} rewrites its backend file and returns free pages \
             to the filesystem. The member does not serve while it runs (seconds per GiB); \
             the others keep quorum.",
            m.name
        ),
        risk: Risk::Disruptive,
        operation: Operation::EtcdDefragment {
            endpoint: m.endpoint.clone(),
            member: m.name.clone(),
        },
        verification: Verification::EtcdHealthy {
            endpoints: vec![m.endpoint.clone()],
        },
        timeout: Duration::from_secs(120),
        on_failure: format!(
            "Wait for {} to report healthy before going on; a defrag that timed out \
             usually finishes on its own. Skipping leaves only this member unshrunk.",
            m.name
        ),
        skippable: true,
    }
}

fn defrag_steps(obs: &EtcdObservation) -> Vec<Step> {
    let leader = leader_id(obs);
    leader_last(obs)
        .into_iter()
        .map(|m| defrag_step(m, Some(m.id) == leader))
        .collect()
}

/// Defragments every member, one at a time, followers first and the leader last.
pub fn defrag(cluster: &str, obs: &EtcdObservation) -> Runbook {
    Runbook {
        id: "etcd.defrag".into(),
        title: "Defragment etcd, one member at a time".into(),
        cluster: cluster.into(),
        summary: "Reclaims the space compaction freed inside each member's database \
                  file. One member at a time, checking it is healthy before the next, \
                  and the leader last so only one election can happen."
            .into(),
        preconditions: vec![quorum(obs), all_healthy(obs)],
        steps: defrag_steps(obs),
    }
}

/// Clears a NOSPACE alarm: compact, defragment every member, disarm, write again.
pub fn recover_nospace(cluster: &str, obs: &EtcdObservation) -> Runbook {
    let nospace: Vec<&str> = obs
        .alarms
        .iter()
        .filter(|a| a.alarm == "NOSPACE")
        .map(|a| a.member.as_str())
        .collect();
    let any = healthy(obs)
        .first()
        .map(|m| m.endpoint.clone())
        .unwrap_or_default();
    let mut steps = vec![Step {
        title: "Compact the keyspace to the current revision".into(),
        explanation: "KV.Compact (physical) drops every older revision of every key. \
                      Watches that resume from an older revision get `compacted` and \
                      relist; kube-apiserver handles that. It cannot be undone."
            .into(),
        risk: Risk::Destructive,
        operation: Operation::EtcdCompact {
            endpoint: any.clone(),
        },
        verification: Verification::None,
        timeout: Duration::from_secs(60),
        on_failure: "A `required revision has been compacted` error means someone compacted \
                     first: retry."
            .into(),
        skippable: false,
    }];
    steps.extend(defrag_steps(obs));
    steps.push(Step {
        title: "Disarm the NOSPACE alarm and write again".into(),
        explanation: "Maintenance.Alarm DEACTIVATE for every NOSPACE alarm, then a write \
                      and read-back of /kha/probe proves the cluster takes writes."
            .into(),
        risk: Risk::Disruptive,
        operation: Operation::EtcdDisarmNospace {
            endpoint: any.clone(),
        },
        verification: Verification::EtcdWritable { endpoint: any },
        timeout: Duration::from_secs(30),
        on_failure: "If writes still fail with `database space exceeded`, the data itself \
                     is over the quota: raise --quota-backend-bytes on every member or \
                     delete data, then run this again."
            .into(),
        skippable: false,
    });
    Runbook {
        id: "etcd.recover-nospace".into(),
        title: "Recover etcd from a NOSPACE alarm".into(),
        cluster: cluster.into(),
        summary: "etcd raises NOSPACE when its database reaches the backend quota and then \
                  refuses every write (the cluster is read-only). Compaction frees old \
                  revisions, defragmentation returns the space, and the alarm must be \
                  disarmed by hand."
            .into(),
        preconditions: vec![
            quorum(obs),
            Precondition {
                description: "a NOSPACE alarm is raised".into(),
                met: !nospace.is_empty(),
                evidence: if nospace.is_empty() {
                    "no NOSPACE alarm".into()
                } else {
                    format!("NOSPACE on {}", nospace.join(", "))
                },
            },
        ],
        steps,
    }
}
