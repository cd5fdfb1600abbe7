//! [`Lab`]: every lab component started from one topology, and faults applied to all of
//! them at once so each view (etcd, backends, LB, metrics) tells the same story.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use color_eyre::eyre::{Result, WrapErr, eyre};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::etcd::{EtcdMode, LabEtcd};
use super::kube::{DenyRule, KubeApiConfig, KubeApiServer, Store};
use super::lb::{ApiServerBackends, HaproxyRuntime};
use super::metrics::MetricsServer;
use super::topology::{Faults, LabSpec, Rng, Topology};
use super::world;
use crate::model::LabCommand;

#[derive(Debug, Clone, PartialEq)]
pub struct LabOptions {
    pub etcd: EtcdMode,
    pub spec: LabSpec,
    /// Requests the lab's Kubernetes API forbids (RBAC tests and demos).
    pub deny: Vec<DenyRule>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            etcd: EtcdMode::Auto,
            spec: LabSpec::default(),
            deny: Vec::new(),
        }
    }
}

pub struct Lab {
    topology: Topology,
    spec: LabSpec,
    store: Store,
    kube: KubeApiServer,
    kubeconfig: PathBuf,
    churn: Option<JoinHandle<()>>,
    controllers: JoinHandle<()>,
    etcd: LabEtcd,
    faults: watch::Sender<Faults>,
    backends: ApiServerBackends,
    haproxy: HaproxyRuntime,
    metrics: MetricsServer,
    socket: PathBuf,
}

impl Lab {
    /// Start every component under `dir` (data, logs, sockets) in the scenario's state.
    pub async fn start(dir: &Path, options: &LabOptions) -> Result<Lab> {
        let topology = Topology::generate(&options.spec);
        let initial = Faults::for_scenario(options.spec.scenario, &topology);
        // The scenario's faults are there from the start (metrics backdate them).
        let (faults, receiver) = watch::channel(initial.clone());
        let mut etcd = LabEtcd::start(options.etcd, dir)
            .await
            .wrap_err("cannot start the lab's etcd")?;
        let backends = ApiServerBackends::start(topology.clone(), receiver.clone()).await?;
        let servers = topology
            .control_plane
            .iter()
            .map(|c| c.name.clone())
            .zip(backends.urls())
            .collect();
        let socket = dir.join("haproxy.sock");
        let haproxy = HaproxyRuntime::start(&socket, servers).await?;
        let metrics =
            MetricsServer::start(topology.clone(), receiver.clone(), options.spec.seed).await?;
        apply_etcd_faults(&topology, &mut etcd, &Faults::default(), &initial).await?;

        let spec = options.spec.clone();
        let store = Store::new();
        // Generating and encoding 150,000 pods is most of a big lab's start: one part
        // per core.
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get());
        let now = SystemTime::now();
        store
            .load(parts, |part, emit| {
                world::for_each_object_part(&topology, &spec, &initial, now, part, parts, emit)
            })
            .map_err(|e| eyre!("cannot load the lab's objects: {e}"))?;
        let config = KubeApiConfig {
            token: random_token(),
            deny: options.deny.clone(),
            ..KubeApiConfig::default()
        };
        let kube = KubeApiServer::start(store.clone(), config).await?;
        let kubeconfig = dir.join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig)?;
        let controllers = super::controllers::spawn(store.clone());
        let churn = (spec.churn > 0.0).then(|| {
            tokio::spawn(churn(
                topology.clone(),
                spec.clone(),
                store.clone(),
                receiver,
            ))
        });
        Ok(Lab {
            topology,
            spec,
            store,
            kube,
            kubeconfig,
            churn,
            controllers,
            etcd,
            faults,
            backends,
            haproxy,
            metrics,
            socket,
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn etcd_urls(&self) -> Vec<String> {
        self.etcd.client_urls()
    }

    /// One line on what runs.
    pub fn describe(&self) -> String {
        format!(
            "{}, Kubernetes API at {}, {} apiserver backends behind an HAProxy runtime API, metrics API",
            self.etcd.kind(),
            self.kube.https_url(),
            self.backends.urls().len()
        )
    }

    /// The variables of `lab.env`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let etcd = self.etcd.client_urls().join(",");
        vec![
            ("KHA_ETCD_ENDPOINTS", etcd.clone()),
            ("ETCDCTL_ENDPOINTS", etcd),
            ("ETCDCTL_API", "3".into()),
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("KHA_PROMETHEUS_URL", self.metrics.url()),
            ("KHA_LB_STATS", format!("unix://{}", self.socket.display())),
            ("KHA_APISERVER_BACKENDS", self.backends.urls().join(",")),
        ]
    }

    pub fn faults(&self) -> Faults {
        self.faults.borrow().clone()
    }

    /// Move every component to `next`.
    pub async fn set_faults(&mut self, next: Faults) -> Result<()> {
        if let Some(zone) = &next.zone_down
            && !self.topology.zones.contains(zone)
        {
            return Err(color_eyre::eyre::eyre!(
                "no zone {zone:?} (zones: {})",
                self.topology.zones.join(", ")
            ));
        }
        let before = self.faults();
        apply_etcd_faults(&self.topology, &mut self.etcd, &before, &next).await?;
        let (upserts, removals) = world::fault_changes(
            &self.topology,
            &self.spec,
            &before,
            &next,
            SystemTime::now(),
        );
        for object in upserts {
            self.store
                .put(object)
                .map_err(|e| eyre!("cannot apply the fault to the objects: {e}"))?;
        }
        for r in removals {
            self.store
                .remove(&r.api_version, &r.kind, r.namespace.as_deref(), &r.name);
        }
        self.faults.send_replace(next);
        Ok(())
    }

    /// A demo key or control request; returns what happened, for a notice.
    pub async fn command(&mut self, cmd: LabCommand) -> String {
        let mut next = self.faults();
        let what = match cmd {
            LabCommand::StopMember => return self.stop_a_member().await,
            LabCommand::StartMember => return self.start_a_member().await,
            LabCommand::ToggleNospace => {
                toggle(&mut next.etcd_nospace, "NOSPACE alarm", "raised", "cleared")
            }
            LabCommand::ToggleZone => {
                next.zone_down = match next.zone_down {
                    Some(_) => None,
                    None => self.topology.zones.last().cloned(),
                };
                match &next.zone_down {
                    Some(z) => format!("zone {z} lost"),
                    None => "all zones back".to_string(),
                }
            }
            LabCommand::ToggleCanary => toggle(
                &mut next.canary_bad,
                "canary error rate",
                "at 8 %",
                "back to normal",
            ),
            LabCommand::ToggleBackupStale => toggle(
                &mut next.backup_stale,
                "last good backup",
                "3 days old",
                "recent",
            ),
            LabCommand::ToggleCeph => toggle(
                &mut next.ceph_degraded,
                "Ceph",
                "degraded: an OSD down",
                "healthy",
            ),
            LabCommand::ToggleGpuHot => toggle(
                &mut next.gpu_hot,
                "GPUs",
                "at 95 °C, one per node held idle",
                "cooled down and busy",
            ),
        };
        match self.set_faults(next).await {
            Ok(()) => format!("lab: {what}"),
            Err(e) => format!("lab: could not apply the fault: {e:#}"),
        }
    }

    async fn stop_a_member(&mut self) -> String {
        let names = self.etcd.names();
        let running: Vec<usize> = (0..names.len())
            .filter(|&i| self.etcd.is_running(i))
            .collect();
        let target = match self.etcd.leader().await {
            Some(l) => Some(l),
            None => running.first().copied(),
        };
        match target {
            None => "lab: every etcd member is already stopped".to_string(),
            Some(i) => match self.etcd.stop(i).await {
                Ok(()) => format!("lab: stopped etcd member {}", names[i]),
                Err(e) => format!("lab: could not stop {}: {e}", names[i]),
            },
        }
    }

    async fn start_a_member(&mut self) -> String {
        let names = self.etcd.names();
        // A member of a lost zone stays down until the zone comes back.
        let down_zone = self.faults().zone_down;
        let lost = |i: usize| {
            self.topology
                .control_plane
                .get(i)
                .is_some_and(|c| Some(&c.zone) == down_zone.as_ref())
        };
        match (0..names.len()).find(|&i| !self.etcd.is_running(i) && !lost(i)) {
            None => "lab: every etcd member that can run is running".to_string(),
            Some(i) => match self.etcd.restart(i).await {
                Ok(()) => format!("lab: started etcd member {}", names[i]),
                Err(e) => format!("lab: could not start {}: {e}", names[i]),
            },
        }
    }

    pub async fn shutdown(self) {
        if let Some(churn) = self.churn {
            churn.abort();
        }
        self.controllers.abort();
        self.kube.shutdown().await;
        self.metrics.shutdown().await;
        self.haproxy.shutdown().await;
        self.backends.shutdown().await;
        self.etcd.shutdown().await;
    }
}

/// The etcd side of a fault change: a lost zone's member stops (and starts again when
/// the zone returns); NOSPACE is a real alarm on the cluster.
async fn apply_etcd_faults(
    topology: &Topology,
    etcd: &mut LabEtcd,
    before: &Faults,
    after: &Faults,
) -> Result<()> {
    let member_of = |zone: &Option<String>| {
        zone.as_ref()
            .and_then(|z| topology.control_plane.iter().position(|c| &c.zone == z))
    };
    if before.zone_down != after.zone_down {
        if let Some(i) = member_of(&before.zone_down) {
            etcd.restart(i).await?;
        }
        if let Some(i) = member_of(&after.zone_down) {
            etcd.stop(i).await?;
        }
    }
    if before.etcd_nospace != after.etcd_nospace {
        etcd.set_nospace(after.etcd_nospace).await?;
    }
    Ok(())
}

/// Delivers `spec.churn` small object changes per second to watchers.
async fn churn(topology: Topology, spec: LabSpec, store: Store, faults: watch::Receiver<Faults>) {
    let mut rng = Rng::new(spec.seed ^ 0xC0FFEE);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(
        1.0 / spec.churn.clamp(0.001, 10_000.0),
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let current = faults.borrow().clone();
        let change = world::churn_change(&topology, &spec, &current, &mut rng, SystemTime::now());
        if !change.is_null() {
            let _ = store.put(change);
        }
    }
}

/// A bearer token nobody can guess from outside this process (the lab is loopback-only,
/// but other local users should not be able to drive it).
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut token = String::from("kha-lab-");
    for _ in 0..4 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        token.push_str(&format!("{:016x}", h.finish()));
    }
    token
}

/// Flip a fault and say what it is now: `toggle(&mut f.gpu_hot, "GPUs", "at 95 °C, one per node held idle", "cooled down and busy")`.
fn toggle(flag: &mut bool, what: &str, on: &str, off: &str) -> String {
    *flag = !*flag;
    format!("{what} {}", if *flag { on } else { off })
}
