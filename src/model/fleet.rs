//! The fleet strip: the other clusters of the config file, each with its overall health
//! and its worst finding, read in the background as `kha status` reads one (peers.md:
//! k9s and kdash users ask for a multi-cluster view). On the header line, worst first.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::finding::Health;

/// How often each other cluster is read.
pub const FLEET_PERIOD: Duration = Duration::from_secs(30);

/// One read of another cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetEntry {
    pub cluster: String,
    pub health: Health,
    /// `pane: message` of the worst finding when it is a warning or worse, or why the
    /// cluster could not be read.
    pub worst: Option<String>,
    pub at: SystemTime,
}

/// The other clusters: configured names, and their latest reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetState {
    pub others: Vec<String>,
    pub last: BTreeMap<String, FleetEntry>,
}

impl FleetState {
    pub fn new(others: Vec<String>) -> Self {
        FleetState {
            others,
            last: BTreeMap::new(),
        }
    }

    /// Each other cluster's health as shown (a read older than three periods is
    /// unknown: good news goes stale) and its worst finding, worst first.
    pub fn rows(&self, now: SystemTime) -> Vec<(String, Health, Option<String>)> {
        let mut rows: Vec<(String, Health, Option<String>)> = self
            .others
            .iter()
            .map(|name| match self.last.get(name) {
                None => (name.clone(), Health::Unknown, Some("reading…".into())),
                Some(e) => {
                    let age = now.duration_since(e.at).unwrap_or_default();
                    if age > FLEET_PERIOD * 3 && e.health < Health::Warn {
                        (
                            name.clone(),
                            Health::Unknown,
                            Some(format!("last read {} s ago", age.as_secs())),
                        )
                    } else {
                        (name.clone(), e.health, e.worst.clone())
                    }
                }
            })
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cluster: &str, health: Health, at: SystemTime) -> FleetEntry {
        FleetEntry {
            cluster: cluster.into(),
            health,
            worst: (health >= Health::Warn).then(|| "etcd: quorum lost".to_string()),
            at,
        }
    }

    #[test]
    fn worst_first_and_stale_good_news_is_unknown() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut f = FleetState::new(vec!["a".into(), "b".into(), "c".into(), "d".into()]);
        f.last.insert("a".into(), entry("a", Health::Ok, t0));
        f.last.insert("b".into(), entry("b", Health::Crit, t0));
        f.last
            .insert("c".into(), entry("c", Health::Ok, t0 - FLEET_PERIOD * 4));
        let rows = f.rows(t0);
        let names: Vec<(&str, Health)> = rows.iter().map(|r| (r.0.as_str(), r.1)).collect();
        assert_eq!(
            names,
            [
                ("b", Health::Crit),
                ("c", Health::Unknown),
                ("d", Health::Unknown),
                ("a", Health::Ok)
            ]
        );
        assert_eq!(rows[0].2.as_deref(), Some("etcd: quorum lost"));
        assert_eq!(rows[1].2.as_deref(), Some("last read 120 s ago"));
        assert_eq!(rows[2].2.as_deref(), Some("reading…"));
    }
}
