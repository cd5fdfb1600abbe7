//! The lab's metrics API: a Thanos Query / Prometheus HTTP API on loopback that answers
//! kha's default queries ([`default_catalogue`]) and raw selectors of the exporter metrics
//! they use, from series simulated from the [`Topology`] and the live [`Faults`].
//!
//! Endpoints: `/api/v1/query`, `/api/v1/query_range` (GET and form POST), `/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/<name>/values`, `/api/v1/alerts`, `/api/v1/targets`,
//! `/api/v1/status/buildinfo`, Thanos' `/api/v1/stores`, `/-/healthy`, `/-/ready`.
//!
//! The lab does not evaluate PromQL. It recognises the catalogue's queries (and their
//! fallbacks) by text, plain selectors, `selector <op> number` comparisons (`up == 0`),
//! number literals and `time()`; any other query that
//! mentions a catalogue metric gets that entry's answer (filtered by the matchers written
//! after the metric, `__name__` dropped); the rest get an empty vector.
//! The catalogue itself is kha's own ([`crate::model::catalogue`]): one list for both.

mod clock;
mod http;
mod json;
mod promql;
mod query;
mod series;
mod status;
mod timeline;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use crate::model::catalogue::{CatalogueQuery, Direction, default_catalogue, fallback_promql};

use crate::lab::topology::{Faults, Topology, ZONE_LOST_AGO_SECS};
use clock::{MINUTE, SECOND};
use series::Model;
use timeline::Timeline;

/// Copies one fault from the scenario's set into a history step.
type CopyFault = fn(&Faults, &mut Faults);

/// How long before the lab's start each of the scenario's faults is taken to have begun,
/// so graphs show a step and alerts have their state. The lost zone and the down OSD go
/// back far enough for the mixins' `for` durations to have passed (`KubeNodeNotReady`
/// 15 m, `etcdMembersDown` 20 m); the OSD matches the kube view's CephCluster (12 m ago);
/// the canary went bad two analysis intervals after the rollout paused (11 m ago).
fn scenario_fault_ages() -> [(i64, CopyFault); 6] {
    [
        (ZONE_LOST_AGO_SECS * SECOND, |from, to| {
            to.zone_down = from.zone_down.clone()
        }),
        (30 * MINUTE, |from, to| to.etcd_nospace = from.etcd_nospace),
        (30 * MINUTE, |from, to| to.backup_stale = from.backup_stale),
        (30 * MINUTE, |from, to| to.gpu_hot = from.gpu_hot),
        (12 * MINUTE, |from, to| {
            to.ceph_degraded = from.ceph_degraded
        }),
        (11 * MINUTE, |from, to| to.canary_bad = from.canary_bad),
    ]
}

/// The history a lab starting at `started` with `initial` faults has behind it.
fn scenario_history(started: i64, initial: &Faults) -> Timeline {
    let mut timeline = Timeline::healthy();
    let mut faults = Faults::default();
    let mut ages = scenario_fault_ages();
    ages.sort_by_key(|(age, _)| std::cmp::Reverse(*age));
    for (age, apply) in ages {
        apply(initial, &mut faults);
        timeline.record(started - age, faults.clone());
    }
    timeline
}

/// A running metrics API. Dropping it stops it too, without waiting.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    follower: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds 127.0.0.1:0; series follow `faults` live.
    pub async fn start(
        topology: Topology,
        faults: watch::Receiver<Faults>,
        seed: u64,
    ) -> Result<MetricsServer> {
        let started = clock::now_ms();
        let initial = faults.borrow().clone();
        let timeline = Arc::new(RwLock::new(scenario_history(started, &initial)));
        let model = Arc::new(Model {
            topology,
            seed,
            started,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .wrap_err("cannot bind the lab metrics API on 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .wrap_err("cannot read the lab metrics API's address")?;
        let app = http::router(http::ApiState {
            model,
            timeline: timeline.clone(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            // Serving ends only on shutdown or a listener failure; neither needs reporting.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        let follower = tokio::spawn(follow_faults(faults, timeline));
        Ok(MetricsServer {
            addr,
            stop: Some(stop),
            server: Some(server),
            follower,
        })
    }

    /// `http://127.0.0.1:PORT`, the value for `KHA_PROMETHEUS_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets in-flight ones finish (at most 2 s), and stops
    /// following the faults.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
        self.follower.abort();
    }
}

/// Records each change of the faults with the time it happened.
async fn follow_faults(mut faults: watch::Receiver<Faults>, timeline: Arc<RwLock<Timeline>>) {
    while faults.changed().await.is_ok() {
        let now = faults.borrow_and_update().clone();
        let mut timeline = timeline.write().unwrap_or_else(|e| e.into_inner());
        timeline.record(clock::now_ms(), now);
    }
}
