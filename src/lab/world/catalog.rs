//! What runs on the workers: the application catalogue and where each pod lands.
//! Placement is arithmetic, not stored, so one pod, or the counts of a whole zone, can be
//! derived without generating the other pods.

use super::ids;

/// A PodDisruptionBudget policy, as written in `spec`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Budget {
    MinAvailable(&'static str),
    MaxUnavailable(&'static str),
}

/// One Deployment running on the workers.
#[derive(Debug)]
pub(super) struct App {
    pub namespace: &'static str,
    pub name: &'static str,
    pub image: &'static str,
    pub port: u16,
    pub cpu: &'static str,
    pub memory: &'static str,
    pub memory_limit: &'static str,
    pub budget: Budget,
    /// Days since this version was deployed.
    pub deployed_days_ago: i64,
}

pub(super) const APPS: &[App] = &[
    App {
        namespace: "shop",
        name: "frontend",
        image: "ghcr.io/acme-shop/frontend:2.31.0",
        port: 8080,
        cpu: "200m",
        memory: "256Mi",
        memory_limit: "512Mi",
        budget: Budget::MinAvailable("80%"),
        deployed_days_ago: 2,
    },
    App {
        namespace: "shop",
        name: "cart",
        image: "ghcr.io/acme-shop/cart:1.18.4",
        port: 8080,
        cpu: "250m",
        memory: "384Mi",
        memory_limit: "768Mi",
        budget: Budget::MaxUnavailable("1"),
        deployed_days_ago: 5,
    },
    App {
        namespace: "shop",
        name: "catalog",
        image: "ghcr.io/acme-shop/catalog:3.2.1",
        port: 8080,
        cpu: "300m",
        memory: "512Mi",
        memory_limit: "1Gi",
        budget: Budget::MinAvailable("50%"),
        deployed_days_ago: 9,
    },
    App {
        namespace: "shop",
        name: "payments",
        image: "ghcr.io/acme-shop/payments:4.7.0",
        port: 8443,
        cpu: "500m",
        memory: "512Mi",
        memory_limit: "1Gi",
        // Every replica must stay up: drains of nodes running payments are blocked.
        budget: Budget::MaxUnavailable("0"),
        deployed_days_ago: 3,
    },
    App {
        namespace: "search",
        name: "search-api",
        image: "ghcr.io/acme-shop/search-api:0.42.3",
        port: 9200,
        cpu: "1",
        memory: "2Gi",
        memory_limit: "4Gi",
        budget: Budget::MaxUnavailable("10%"),
        deployed_days_ago: 12,
    },
    App {
        namespace: "identity",
        name: "auth",
        image: "ghcr.io/acme-shop/auth:5.0.2",
        port: 8080,
        cpu: "200m",
        memory: "256Mi",
        memory_limit: "512Mi",
        budget: Budget::MinAvailable("50%"),
        deployed_days_ago: 21,
    },
    App {
        namespace: "messaging",
        name: "notifications",
        image: "ghcr.io/acme-shop/notifications:1.9.12",
        port: 8080,
        cpu: "100m",
        memory: "128Mi",
        memory_limit: "256Mi",
        budget: Budget::MaxUnavailable("25%"),
        deployed_days_ago: 7,
    },
    App {
        namespace: "analytics",
        name: "events-ingest",
        image: "ghcr.io/acme-shop/events-ingest:2.4.0",
        port: 8080,
        cpu: "500m",
        memory: "1Gi",
        memory_limit: "2Gi",
        budget: Budget::MinAvailable("60%"),
        deployed_days_ago: 4,
    },
];

/// Pods of the Argo Rollout, at most (fewer only on tiny labs).
pub(super) const ROLLOUT_REPLICAS: usize = 8;

/// What one worker pod slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// The rollout's pod number `n`; the first `canary_replicas` are canary pods.
    Rollout(usize),
    /// Replica `replica` of `APPS[app]`.
    App { app: usize, replica: usize },
}

/// Where the worker pods go: slot `s` of worker `w` is global index `s * workers + w`
/// (so consecutive pods spread over nodes and zones); the first indices are the rollout's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placement {
    pub workers: usize,
    pub per_node: usize,
    pub rollout: usize,
    pub canary: usize,
}

impl Placement {
    pub fn new(workers: usize, per_node: usize, canary_weight: u32) -> Placement {
        let rollout = ROLLOUT_REPLICAS.min(workers * per_node);
        let weight = canary_weight as usize;
        Placement {
            workers,
            per_node,
            rollout,
            canary: (rollout * weight).div_ceil(100),
        }
    }

    pub fn slot(&self, worker: usize, slot: usize) -> Slot {
        let g = slot * self.workers + worker;
        if g < self.rollout {
            return Slot::Rollout(g);
        }
        let k = g - self.rollout;
        Slot::App {
            app: k % APPS.len(),
            replica: k / APPS.len(),
        }
    }

    /// Replicas of `APPS[app]` in the whole lab.
    pub fn app_replicas(&self, app: usize) -> usize {
        let rest = self.workers * self.per_node - self.rollout;
        rest / APPS.len() + usize::from(app < rest % APPS.len())
    }

    /// Pods per app (last entry: the rollout's stable, then canary) on the given workers.
    pub fn count_on(&self, workers: impl Iterator<Item = usize>) -> SlotCounts {
        let mut counts = SlotCounts::default();
        for w in workers {
            for s in 0..self.per_node {
                match self.slot(w, s) {
                    Slot::Rollout(n) if n < self.canary => counts.canary += 1,
                    Slot::Rollout(_) => counts.stable += 1,
                    Slot::App { app, .. } => counts.apps[app] += 1,
                }
            }
        }
        counts
    }
}

/// Pod counts by owner on some set of workers.
#[derive(Debug, Clone, Default)]
pub(super) struct SlotCounts {
    pub apps: [usize; APPS.len()],
    pub stable: usize,
    pub canary: usize,
}

/// The derived names of one app's Deployment and current ReplicaSet.
#[derive(Debug, Clone)]
pub(super) struct AppIds {
    pub hash: String,
    /// `<app>-<pod-template-hash>`
    pub replica_set: String,
    pub replica_set_uid: String,
    pub image_id: String,
    /// Salt of the generated-name suffixes of this app's pods.
    pub salt: u64,
}

impl AppIds {
    pub fn all(seed: u64) -> Vec<AppIds> {
        APPS.iter()
            .map(|app| {
                let h = ids::hash_parts(seed, &["ReplicaSet", app.namespace, app.name, app.image]);
                let hash = ids::template_hash(h);
                let replica_set = format!("{}-{hash}", app.name);
                AppIds {
                    replica_set_uid: ids::uid(ids::hash_parts(
                        seed,
                        &["ReplicaSet", app.namespace, &replica_set],
                    )),
                    image_id: super::versions::digest_ref(app.image),
                    salt: ids::mix(h, 5),
                    hash,
                    replica_set,
                }
            })
            .collect()
    }
}
