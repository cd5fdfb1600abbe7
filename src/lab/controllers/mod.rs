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

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use super::kube::{Store, WatchEvent};

/// One simulated controller.
pub struct Controller {
    pub name: &'static str,
    /// Qualified resource names whose changes it reacts to.
    pub resources: &'static [&'static str],
    pub react: fn(&Store, &WatchEvent),
}

/// Every controller the lab runs.
pub fn all() -> Vec<Controller> {
    vec![replicaset::controller()]
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
