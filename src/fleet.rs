//! The fleet strip's source: every [`FLEET_PERIOD`] each other cluster profile of the
//! config file is read the way `kha status --cluster NAME` reads it (each source bounded
//! by the status deadline), all at once, and summed up as its overall health and worst
//! finding. A profile that does not resolve or answer is UNKNOWN with the reason.
//! Nothing is printed: the cockpit owns the terminal.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::cli::{GlobalOpts, Settings, status_report};
use crate::model::Msg;
use crate::model::finding::Health;
use crate::model::fleet::{FLEET_PERIOD, FleetEntry};

/// The most one cluster's read may take (the status deadline, and some).
const READ_LIMIT: Duration = Duration::from_secs(8);

/// Reads `clusters` from `config` now and every [`FLEET_PERIOD`], until the cockpit goes.
pub async fn run(config: PathBuf, clusters: Vec<String>, tx: mpsc::Sender<Msg>) {
    let mut tick = tokio::time::interval(FLEET_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let reads = clusters
            .iter()
            .map(|name| read(config.clone(), name.clone()));
        for entry in futures::future::join_all(reads).await {
            if tx.send(Msg::Fleet(entry)).await.is_err() {
                return;
            }
        }
    }
}

/// One cluster, as `kha status --config CONFIG --cluster NAME` sees it (its own
/// profile only: no flags or environment of the cockpit's cluster apply).
pub async fn read(config: PathBuf, cluster: String) -> FleetEntry {
    let opts = GlobalOpts {
        config: Some(config),
        cluster: Some(cluster.clone()),
        ..GlobalOpts::default()
    };
    let (health, worst) = match Settings::resolve(&opts) {
        Err(e) => (Health::Unknown, Some(format!("profile: {e:#}"))),
        Ok(settings) => match tokio::time::timeout(READ_LIMIT, status_report(&settings)).await {
            Err(_) => (
                Health::Unknown,
                Some(format!("no answer within {} s", READ_LIMIT.as_secs())),
            ),
            Ok(Err(e)) => (Health::Unknown, Some(format!("{e:#}"))),
            Ok(Ok(report)) => (
                report.overall,
                report
                    .findings()
                    .first()
                    .filter(|f| f.severity >= Health::Warn)
                    .map(|f| format!("{}: {}", f.pane, f.message)),
            ),
        },
    };
    FleetEntry {
        cluster,
        health,
        worst,
        at: SystemTime::now(),
    }
}
