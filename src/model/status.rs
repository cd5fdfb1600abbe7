//! The headless report of `kha status`: one JSON object, stable keys, one sibling key
//! per pane (`etcd` now; later panes add theirs in the same form).

use serde::Serialize;

use super::etcd::{EtcdObservation, EtcdSettings, QuorumState};
use super::finding::{Finding, Health, worst};

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub overall: Health,
    pub cluster: String,
    pub etcd: EtcdReport,
}

#[derive(Debug, Serialize)]
pub struct EtcdReport {
    pub status: Health,
    pub leader: Option<String>,
    pub quorum: QuorumState,
    pub members: Vec<MemberReport>,
    pub alarms: Vec<AlarmReport>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct MemberReport {
    pub name: String,
    pub id: String,
    pub endpoint: String,
    pub healthy: bool,
    pub is_leader: bool,
    pub is_learner: bool,
    pub raft_term: Option<u64>,
    pub raft_index: Option<u64>,
    pub raft_applied_index: Option<u64>,
    pub db_size_bytes: Option<i64>,
    pub db_size_in_use_bytes: Option<i64>,
    pub version: Option<String>,
    pub latency_ms: Option<f64>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AlarmReport {
    pub member: String,
    pub alarm: String,
}

impl EtcdReport {
    /// The report when no etcd endpoint is configured.
    pub fn not_configured() -> Self {
        EtcdReport {
            status: Health::Unknown,
            leader: None,
            quorum: QuorumState::from_counts(0, 0),
            members: Vec::new(),
            alarms: Vec::new(),
            findings: vec![Finding {
                severity: Health::Unknown,
                pane: super::etcd::PANE,
                message: "etcd not configured: set --etcd-endpoints or KHA_ETCD_ENDPOINTS".into(),
            }],
        }
    }

    pub fn from_observation(obs: &EtcdObservation, settings: &EtcdSettings) -> Self {
        let findings = obs.findings(settings);
        let leader = obs.leader();
        let leader_id = leader.map(|m| m.id);
        EtcdReport {
            status: worst(&findings),
            leader: leader.map(|m| m.name.clone()),
            quorum: obs.quorum(),
            members: obs
                .members
                .iter()
                .map(|m| MemberReport {
                    name: m.name.clone(),
                    // Hex, as etcdctl prints it; JSON numbers lose precision above 2^53.
                    id: format!("{:x}", m.id),
                    endpoint: m.endpoint.clone(),
                    healthy: m.is_healthy(),
                    is_leader: Some(m.id) == leader_id,
                    is_learner: m.is_learner,
                    raft_term: m.status.as_ref().map(|s| s.raft_term),
                    raft_index: m.status.as_ref().map(|s| s.raft_index),
                    raft_applied_index: m.status.as_ref().map(|s| s.raft_applied_index),
                    db_size_bytes: m.status.as_ref().map(|s| s.db_size_bytes),
                    db_size_in_use_bytes: m.status.as_ref().map(|s| s.db_size_in_use_bytes),
                    version: m.status.as_ref().map(|s| s.version.clone()),
                    latency_ms: m
                        .health
                        .map(|h| (h.latency.as_secs_f64() * 1e4).round() / 10.0),
                    errors: m.errors.clone(),
                })
                .collect(),
            alarms: obs
                .alarms
                .iter()
                .map(|a| AlarmReport {
                    member: a.member.clone(),
                    alarm: a.alarm.clone(),
                })
                .collect(),
            findings,
        }
    }
}

impl StatusReport {
    pub fn new(cluster: String, etcd: EtcdReport) -> Self {
        StatusReport {
            overall: etcd.status,
            cluster,
            etcd,
        }
    }

    /// A short human summary for `kha status` without `--json`.
    pub fn human(&self) -> String {
        let mut out = format!(
            "kha status · cluster {} · overall {}\n",
            self.cluster,
            self.overall.label()
        );
        let e = &self.etcd;
        if e.members.is_empty() && e.status == Health::Unknown {
            out.push_str(
                "etcd      UNKNOWN  not configured (--etcd-endpoints / KHA_ETCD_ENDPOINTS)\n",
            );
        } else {
            let leader = e.leader.as_deref().unwrap_or("none");
            out.push_str(&format!(
                "etcd      {:<8} {} · leader {leader}\n",
                e.status.label(),
                e.quorum.summary()
            ));
            for m in &e.members {
                let state = if m.healthy { "healthy" } else { "UNHEALTHY" };
                let mark = if m.is_leader { "*" } else { " " };
                let why = m
                    .errors
                    .first()
                    .map(|e| format!("  ({e})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  {mark} {:<12} {:<28} {state}{why}\n",
                    m.name, m.endpoint
                ));
            }
        }
        for f in e.findings.iter().filter(|f| f.severity > Health::Ok) {
            out.push_str(&format!("  {:<7} {}\n", f.severity.label(), f.message));
        }
        out
    }
}
