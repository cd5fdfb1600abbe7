//! The lab's controllers: what the real controllers (the ReplicaSet controller, Velero,
//! Argo Rollouts, Rook, Helm-installed operators) would do in answer to a write, so a
//! runbook's effect can be seen the way it would be on a real cluster (an evicted pod's
//! ReplicaSet makes a new one elsewhere, a Restore goes InProgress then Completed, an
//! aborted Rollout turns Degraded).
//!
//! Each controller names the resources it watches ([`WatchEvent::resource`], e.g.
//! `"pods"` or `"rollouts.argoproj.io"`) and a reaction. Reactions run on the one
//! controller task in commit order; they must be idempotent (their own writes come back
//! as events; [`Store::put`] emits nothing for an unchanged object) and must not block:
//! one that needs time (a phase that moves on after a second) spawns a tokio task.

pub mod replicaset;
pub mod rollouts;
pub mod velero;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::kube::{Store, WatchEvent};

pub mod rollout_status;

/// One simulated controller.
pub struct Controller {
    pub name: &'static str,
    /// Qualified resource names whose changes it reacts to.
    pub resources: &'static [&'static str],
    pub react: fn(&Store, &WatchEvent),
}

/// Every controller the lab runs.
pub fn all() -> Vec<Controller> {
    vec![
        rollouts::controller(),
        velero::controller(),
        rollout_status::controller(),
        replicaset::controller(),
    ]
}

/// `2024-05-01T12:00:00Z` for now, as controllers stamp status.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    crate::lab::civil::format_rfc3339(secs)
}

/// Starts the controller task: every committed change goes to the controllers that
/// watch its resource.
pub fn spawn(store: Store) -> JoinHandle<()> {
    let controllers = all();
    let mut changes = store.changes();
    tokio::spawn(async move {
        loop {
            let event: Arc<WatchEvent> = match changes.recv().await {
                Ok(event) => event,
                // Missed events are not replayed; the next change of an object is seen.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            for c in &controllers {
                if c.resources.contains(&&*event.resource) {
                    (c.react)(&store, &event);
                }
            }
        }
    })
}
