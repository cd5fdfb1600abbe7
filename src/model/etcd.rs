//! etcd domain state: what one probe round saw, and the quorum maths derived from it.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::finding::{Finding, Health};

pub const PANE: &str = "etcd";

/// What the etcd source saw in one probe round of every known member.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdObservation {
    pub observed_at: SystemTime,
    pub members: Vec<MemberObservation>,
    pub alarms: Vec<EtcdAlarm>,
    /// Set when no endpoint answered the member list (typically: quorum lost). The
    /// members are then the ones kha knew from earlier rounds or from its options.
    pub member_list_error: Option<String>,
}

/// One member as seen by a direct probe of its client URL.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberObservation {
    pub name: String,
    /// Member id; 0 when the member never answered and the member list was unavailable.
    pub id: u64,
    pub endpoint: String,
    /// The member's peer URLs, from the member list (empty when it was unavailable).
    pub peer_urls: Vec<String>,
    pub is_learner: bool,
    pub status: Option<MemberStatus>,
    /// The `etcdctl endpoint health` check: a linearizable read, which needs a leader.
    pub health: Option<HealthProbe>,
    pub errors: Vec<String>,
}

/// The answer of the Maintenance.Status RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub leader: u64,
    pub raft_term: u64,
    pub raft_index: u64,
    pub raft_applied_index: u64,
    pub db_size_bytes: i64,
    pub db_size_in_use_bytes: i64,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthProbe {
    pub healthy: bool,
    pub latency: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdAlarm {
    pub member_id: u64,
    pub member: String,
    pub alarm: String,
}

impl MemberObservation {
    pub fn is_healthy(&self) -> bool {
        self.health.is_some_and(|h| h.healthy)
    }
}

/// Tunables of the etcd findings; from the config profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtcdSettings {
    /// The backend quota (`--quota-backend-bytes`); etcd's default is 2 GiB.
    pub quota_bytes: u64,
    /// A member whose raft index trails the highest by more than this is "lagging".
    pub lag_warn_entries: u64,
}

impl Default for EtcdSettings {
    fn default() -> Self {
        EtcdSettings {
            quota_bytes: 2 * 1024 * 1024 * 1024,
            lag_warn_entries: 1000,
        }
    }
}

/// Raft quorum over the voting members (learners do not vote).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuorumState {
    pub members: usize,
    pub healthy: usize,
    pub needed: usize,
    pub tolerates: usize,
    pub has_quorum: bool,
}

impl QuorumState {
    pub fn from_counts(voters: usize, healthy: usize) -> Self {
        let needed = voters / 2 + 1;
        QuorumState {
            members: voters,
            healthy,
            needed,
            tolerates: healthy.saturating_sub(needed),
            has_quorum: healthy >= needed,
        }
    }

    pub fn of(members: &[MemberObservation]) -> Self {
        let voters = members.iter().filter(|m| !m.is_learner);
        let (n, healthy) =
            voters.fold((0, 0), |(n, h), m| (n + 1, h + usize::from(m.is_healthy())));
        Self::from_counts(n, healthy)
    }

    /// "2/3 healthy · quorum 2 · tolerates 0 more failures"
    pub fn summary(&self) -> String {
        let more = if self.has_quorum {
            format!(
                "tolerates {} more failure{}",
                self.tolerates,
                if self.tolerates == 1 { "" } else { "s" }
            )
        } else {
            "QUORUM LOST".to_string()
        };
        format!(
            "{}/{} healthy · quorum {} · {more}",
            self.healthy, self.members, self.needed
        )
    }
}

impl EtcdObservation {
    pub fn quorum(&self) -> QuorumState {
        QuorumState::of(&self.members)
    }

    /// The leader as reported by healthy members (a majority vote, so one confused
    /// member cannot name a different leader).
    pub fn leader(&self) -> Option<&MemberObservation> {
        let mut votes: Vec<(u64, usize)> = Vec::new();
        for m in self.members.iter().filter(|m| m.is_healthy()) {
            let Some(id) = m.status.as_ref().map(|s| s.leader).filter(|&id| id != 0) else {
                continue;
            };
            match votes.iter_mut().find(|(v, _)| *v == id) {
                Some((_, count)) => *count += 1,
                None => votes.push((id, 1)),
            }
        }
        let (id, _) = votes.into_iter().max_by_key(|&(_, count)| count)?;
        self.members.iter().find(|m| m.id == id)
    }

    /// How many raft entries each member trails the most advanced member by.
    pub fn raft_lag(&self, member: &MemberObservation) -> Option<u64> {
        let top = self
            .members
            .iter()
            .filter_map(|m| m.status.as_ref())
            .map(|s| s.raft_index)
            .max()?;
        member
            .status
            .as_ref()
            .map(|s| top.saturating_sub(s.raft_index))
    }

    pub fn findings(&self, settings: &EtcdSettings) -> Vec<Finding> {
        let mut out = Vec::new();
        let q = self.quorum();
        if q.members == 0 {
            out.push(Finding::crit(
                PANE,
                "no etcd member answered and none is known",
            ));
            return out;
        }
        if !q.has_quorum {
            out.push(Finding::crit(
                PANE,
                format!(
                    "etcd quorum lost: {}/{} healthy, {} needed; the API server cannot write",
                    q.healthy, q.members, q.needed
                ),
            ));
        } else if q.tolerates == 0 && q.members > 1 {
            out.push(Finding::warn(
                PANE,
                format!(
                    "etcd tolerates 0 more failures ({}/{} healthy)",
                    q.healthy, q.members
                ),
            ));
        }
        for alarm in &self.alarms {
            let severity = match alarm.alarm.as_str() {
                "NOSPACE" | "CORRUPT" => Health::Crit,
                _ => Health::Warn,
            };
            let hint = match alarm.alarm.as_str() {
                "NOSPACE" => ": writes refused; compact, defrag, then disarm",
                "CORRUPT" => ": data inconsistency; do not restart blindly",
                _ => "",
            };
            out.push(Finding {
                severity,
                pane: PANE,
                message: format!("{} alarm on {}{hint}", alarm.alarm, alarm.member),
            });
        }
        for m in &self.members {
            if !m.is_healthy() {
                let why = m.errors.first().map(String::as_str).unwrap_or("no answer");
                out.push(Finding::warn(
                    PANE,
                    format!("member {} unhealthy: {why}", m.name),
                ));
            }
            if let Some(lag) = self.raft_lag(m).filter(|&l| l > settings.lag_warn_entries) {
                out.push(Finding::warn(
                    PANE,
                    format!("member {} lags {lag} raft entries", m.name),
                ));
            }
            if let Some(s) = &m.status {
                let used = s.db_size_bytes.max(0) as u64;
                if settings.quota_bytes > 0 && used * 10 > settings.quota_bytes * 8 {
                    out.push(Finding::warn(
                        PANE,
                        format!(
                            "member {} db {} is {}% of the {} quota",
                            m.name,
                            human_bytes(used),
                            used * 100 / settings.quota_bytes,
                            human_bytes(settings.quota_bytes)
                        ),
                    ));
                }
            }
        }
        if q.has_quorum && self.leader().is_none() {
            out.push(Finding::warn(PANE, "no leader seen by any healthy member"));
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }
}

/// 1536 -> "1.5 KiB"
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn member(name: &str, id: u64, healthy: bool, leader: u64) -> MemberObservation {
        MemberObservation {
            name: name.into(),
            id,
            endpoint: format!("http://127.0.0.1:{}", 2379 + id),
            peer_urls: Vec::new(),
            is_learner: false,
            status: healthy.then(|| MemberStatus {
                leader,
                raft_term: 2,
                raft_index: 100,
                raft_applied_index: 100,
                db_size_bytes: 20 << 20,
                db_size_in_use_bytes: 10 << 20,
                version: "3.5.16".into(),
            }),
            health: Some(HealthProbe {
                healthy,
                latency: Duration::from_millis(3),
            }),
            errors: if healthy {
                vec![]
            } else {
                vec!["connection refused".into()]
            },
        }
    }

    fn obs(members: Vec<MemberObservation>) -> EtcdObservation {
        EtcdObservation {
            observed_at: SystemTime::now(),
            members,
            alarms: vec![],
            member_list_error: None,
        }
    }

    #[test]
    fn quorum_maths_for_one_three_five_members() {
        // (voters, healthy) -> (needed, tolerates, has_quorum)
        let cases = [
            (1, 0, 1, 0, false),
            (1, 1, 1, 0, true),
            (3, 0, 2, 0, false),
            (3, 1, 2, 0, false),
            (3, 2, 2, 0, true),
            (3, 3, 2, 1, true),
            (5, 2, 3, 0, false),
            (5, 3, 3, 0, true),
            (5, 4, 3, 1, true),
            (5, 5, 3, 2, true),
            (0, 0, 1, 0, false),
        ];
        for (n, h, needed, tolerates, has_quorum) in cases {
            let q = QuorumState::from_counts(n, h);
            assert_eq!(
                (q.needed, q.tolerates, q.has_quorum),
                (needed, tolerates, has_quorum),
                "n={n} h={h}"
            );
        }
    }

    #[test]
    fn learners_do_not_vote() {
        let mut learner = member("d", 4, true, 1);
        learner.is_learner = true;
        let q = QuorumState::of(&[
            member("a", 1, true, 1),
            member("b", 2, true, 1),
            member("c", 3, false, 0),
            learner,
        ]);
        assert_eq!((q.members, q.healthy, q.needed, q.tolerates), (3, 2, 2, 0));
        // A healthy learner does not rescue a lost quorum.
        let mut learner = member("d", 4, true, 1);
        learner.is_learner = true;
        let q = QuorumState::of(&[
            member("a", 1, true, 1),
            member("b", 2, false, 0),
            member("c", 3, false, 0),
            learner,
        ]);
        assert!(!q.has_quorum);
    }

    #[test]
    fn summary_line_reads_like_the_pane() {
        assert_eq!(
            QuorumState::from_counts(3, 2).summary(),
            "2/3 healthy · quorum 2 · tolerates 0 more failures"
        );
        assert_eq!(
            QuorumState::from_counts(3, 3).summary(),
            "3/3 healthy · quorum 2 · tolerates 1 more failure"
        );
        assert_eq!(
            QuorumState::from_counts(3, 1).summary(),
            "1/3 healthy · quorum 2 · QUORUM LOST"
        );
    }

    #[test]
    fn leader_is_the_majority_view_of_healthy_members() {
        let o = obs(vec![
            member("a", 1, true, 2),
            member("b", 2, true, 2),
            member("c", 3, true, 1),
        ]);
        assert_eq!(o.leader().map(|m| m.name.as_str()), Some("b"));
        let o = obs(vec![
            member("a", 1, false, 0),
            member("b", 2, false, 0),
            member("c", 3, true, 0),
        ]);
        assert!(o.leader().is_none());
    }

    #[test]
    fn findings_follow_severity_rules() {
        let s = EtcdSettings::default();
        let healthy = obs(vec![
            member("a", 1, true, 1),
            member("b", 2, true, 1),
            member("c", 3, true, 1),
        ]);
        assert!(healthy.findings(&s).is_empty());

        let one_down = obs(vec![
            member("a", 1, true, 1),
            member("b", 2, true, 1),
            member("c", 3, false, 0),
        ]);
        let f = one_down.findings(&s);
        assert_eq!(super::super::finding::worst(&f), Health::Warn);
        assert!(
            f.iter()
                .any(|f| f.message.contains("tolerates 0 more failures"))
        );

        let lost = obs(vec![
            member("a", 1, true, 0),
            member("b", 2, false, 0),
            member("c", 3, false, 0),
        ]);
        let f = lost.findings(&s);
        assert_eq!(f[0].severity, Health::Crit);
        assert!(f[0].message.contains("quorum lost"));

        let mut alarm = healthy.clone();
        alarm.alarms.push(EtcdAlarm {
            member_id: 1,
            member: "a".into(),
            alarm: "NOSPACE".into(),
        });
        assert_eq!(alarm.findings(&s)[0].severity, Health::Crit);
    }

    #[test]
    fn lag_and_db_size_warn() {
        let s = EtcdSettings {
            quota_bytes: 100 << 20,
            lag_warn_entries: 50,
        };
        let mut o = obs(vec![
            member("a", 1, true, 1),
            member("b", 2, true, 1),
            member("c", 3, true, 1),
        ]);
        if let Some(st) = o.members[2].status.as_mut() {
            st.raft_index = 10;
        }
        if let Some(st) = o.members[0].status.as_mut() {
            st.db_size_bytes = 90 << 20;
        }
        let f = o.findings(&s);
        assert!(
            f.iter()
                .any(|f| f.message == "member c lags 90 raft entries"),
            "{f:?}"
        );
        assert!(
            f.iter().any(|f| f
                .message
                .starts_with("member a db 90.0 MiB is 90% of the 100.0 MiB quota")),
            "{f:?}"
        );
    }

    #[test]
    fn no_leader_with_quorum_warns() {
        let o = obs(vec![
            member("a", 1, true, 0),
            member("b", 2, true, 0),
            member("c", 3, true, 0),
        ]);
        assert!(
            o.findings(&EtcdSettings::default())
                .iter()
                .any(|f| f.message.contains("no leader"))
        );
    }
}
