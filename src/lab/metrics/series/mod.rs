//! The simulated series. Every value is a pure function of the seed, the evaluation time
//! and the faults in force then (see [`Timeline`]); noise changes once per 30 s scrape.
//! Split by domain: the cluster (API servers, kubelets, etcd, probes, mesh), GPUs, storage
//! (Ceph, Velero), and the scrape targets behind `up`.

pub mod cluster;
pub mod gpu;
pub mod scrape;
pub mod storage;

use super::clock::SECOND;
use super::promql::Labels;
use super::timeline::Timeline;
use crate::lab::topology::{Faults, Rng, Topology};

/// Thanos Query adds the sidecars' external labels (minus the replica label) to every
/// series it returns.
pub const EXTERNAL_LABELS: [(&str, &str); 1] = [("prometheus", "monitoring/k8s")];

/// How often the simulated Prometheus scrapes, and so how often noise changes.
pub const SCRAPE_INTERVAL: i64 = 30 * SECOND;

/// One series' labels and its value at the evaluation time.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub value: f64,
}

/// What the series are made of.
#[derive(Debug, Clone)]
pub struct Model {
    pub topology: Topology,
    pub seed: u64,
    /// When the lab started (Unix ms); fixes counters' origins and the Watchdog alert.
    pub started: i64,
}

/// The lab evaluated at one instant.
pub struct At<'a> {
    pub model: &'a Model,
    pub timeline: &'a Timeline,
    pub t: i64,
    pub faults: &'a Faults,
}

impl<'a> At<'a> {
    pub fn new(model: &'a Model, timeline: &'a Timeline, t: i64) -> At<'a> {
        At {
            model,
            timeline,
            t,
            faults: timeline.at(t),
        }
    }

    /// The same lab at another instant.
    pub fn shifted(&self, t: i64) -> At<'a> {
        At::new(self.model, self.timeline, t)
    }

    pub fn topology(&self) -> &'a Topology {
        &self.model.topology
    }

    /// Uniform in [0, 1), fixed for `key` and the seed.
    pub fn stable(&self, key: &str) -> f64 {
        Rng::new(self.model.seed ^ fnv1a(key)).unit()
    }

    /// Uniform in [0, 1), fixed for `key` within one scrape interval.
    pub fn noise(&self, key: &str) -> f64 {
        let bucket = self.t.div_euclid(SCRAPE_INTERVAL) as u64;
        Rng::new(self.model.seed ^ fnv1a(key) ^ bucket.wrapping_mul(0x9E37_79B9_7F4A_7C15)).unit()
    }

    /// Noise scaled to `[low, high)`.
    pub fn between(&self, key: &str, low: f64, high: f64) -> f64 {
        low + (high - low) * self.noise(key)
    }

    /// A slow daily swing in [-1, 1], phase-shifted per `key`.
    pub fn daily_wave(&self, key: &str) -> f64 {
        let day = self.t as f64 / (86_400.0 * 1000.0);
        (std::f64::consts::TAU * (day + self.stable(key))).sin()
    }

    pub fn zone_down(&self, zone: &str) -> bool {
        self.faults.zone_is_down(zone)
    }

    /// Milliseconds since `holds` last became true, if it holds now.
    pub fn elapsed(&self, holds: impl Fn(&Faults) -> bool) -> Option<i64> {
        self.timeline
            .since(self.t, holds)
            .map(|since| self.t - since)
    }

    pub fn seconds(&self) -> f64 {
        self.t as f64 / 1000.0
    }

    /// Index of `zone` in the topology (0 when unknown).
    pub fn zone_index(&self, zone: &str) -> usize {
        self.topology()
            .zones
            .iter()
            .position(|z| z == zone)
            .unwrap_or(0)
    }

    /// The first zone in `preference` (indexes) that is up: where a rescheduled
    /// singleton (ceph-mgr, Velero) runs now.
    pub fn first_up_zone(&self, preference: &[usize]) -> usize {
        let zones = &self.topology().zones;
        preference
            .iter()
            .copied()
            .filter(|&i| i < zones.len())
            .find(|&i| !self.zone_down(&zones[i]))
            .unwrap_or(0)
    }
}

/// A pod IP in zone `zone_index`'s pod CIDR.
pub fn pod_ip(zone_index: usize, host: u32) -> String {
    format!("10.244.{}.{}", zone_index + 1, host)
}

/// Labels of a raw series: its name, `pairs`, and the external labels.
pub fn series_labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut labels = plain_labels(pairs);
    labels.insert("__name__".into(), name.into());
    for (k, v) in EXTERNAL_LABELS {
        labels.insert(k.into(), v.into());
    }
    labels
}

/// Labels from pairs, nothing added.
pub fn plain_labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Metric names served as raw series (selectors of them work, `__name__` included).
pub const RAW_FAMILIES: &[&str] = &[
    "up",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_FB_FREE",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_POWER_USAGE",
    "ceph_health_status",
    "ceph_osd_up",
    "ceph_osd_in",
    "velero_backup_last_successful_timestamp",
    "velero_backup_success_total",
    "velero_backup_failure_total",
    "probe_duration_seconds",
    "probe_success",
    "apiserver_request:availability30d",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_server_quota_backend_bytes",
];

/// Every series of raw family `name` at `at`; `None` for a name the lab does not serve.
pub fn raw_family(at: &At, name: &str) -> Option<Vec<Sample>> {
    Some(match name {
        "up" => scrape::up(at),
        n if n.starts_with("DCGM_FI_") => gpu::family(at, n)?,
        "ceph_health_status" | "ceph_osd_up" | "ceph_osd_in" => storage::ceph(at, name),
        n if n.starts_with("velero_backup_") => storage::velero(at, n)?,
        "probe_duration_seconds" | "probe_success" => cluster::probes(at, name),
        "apiserver_request:availability30d" => cluster::availability_rule(at),
        "etcd_mvcc_db_total_size_in_bytes" | "etcd_server_quota_backend_bytes" => {
            cluster::etcd_db(at, name)
        }
        _ => return None,
    })
}

/// The answer to a computed catalogue query (one that is not a plain selector), by id;
/// `fallback` answers the entry's raw-metric fallback query instead.
pub fn computed(at: &At, id: &str, fallback: bool) -> Vec<Sample> {
    match id {
        "apiserver_p99_latency" => cluster::apiserver_p99(at),
        "apiserver_availability" => cluster::availability_ratio(at, fallback),
        "pod_startup_p99" => cluster::pod_startup_p99(at),
        "cross_az_latency" => cluster::cross_az(at),
        "scaling_speed" => cluster::scaling_speed(at),
        "canary_error_rate" => cluster::canary_error_rate(at),
        "gpu_idle_allocated" => gpu::idle_allocated(at),
        "velero_backup_age" => storage::backup_age(at),
        _ => Vec::new(),
    }
}

/// 64-bit FNV-1a, to turn series keys into seeds.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
