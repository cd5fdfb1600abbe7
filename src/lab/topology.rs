//! The lab's simulated HA cluster as plain data: zones, control-plane nodes, workers, the
//! GPU pool, and the names of the Ceph, Velero and Argo objects. Generated from a
//! [`LabSpec`] (seeded, so runs are reproducible); every lab view (Kubernetes objects,
//! metrics, API-server backends, load balancer) is derived from it plus the [`Faults`].

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Seconds before the lab's start that a scenario's lost zone stopped answering: the
/// same instant in the Kubernetes objects (node conditions, pod readiness) and in the
/// metrics (alert onsets), and long enough ago for the alerting rules' `for` durations
/// (`KubeNodeNotReady` 15 m, `etcdMembersDown` 20 m) to have passed.
pub const ZONE_LOST_AGO_SECS: i64 = 30 * 60;

/// What `kha lab up` / `kha demo` simulate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabSpec {
    pub scenario: Scenario,
    /// Worker nodes (not counting control plane and GPU pool).
    pub nodes: usize,
    pub pods_per_node: usize,
    /// Object changes per second delivered to watchers.
    pub churn: f64,
    pub seed: u64,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            scenario: Scenario::Healthy,
            nodes: 6,
            pods_per_node: 4,
            churn: 0.0,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Healthy,
    /// Zone `eu-west-1c` lost: its control-plane node NotReady, its etcd member and
    /// apiserver backend down, its GPU node gone.
    AzFailure,
    EtcdNospace,
    /// The canary's error rate at 8 %.
    CanaryBad,
    /// The last good backup is 3 days old.
    BackupStale,
    /// An OSD down and PGs degraded.
    CephDegraded,
    /// GPUs at 95 °C.
    GpuHot,
}

/// The faults in force; a scenario is a starting set, and faults can be toggled live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub zone_down: Option<String>,
    pub etcd_nospace: bool,
    pub canary_bad: bool,
    pub backup_stale: bool,
    pub ceph_degraded: bool,
    pub gpu_hot: bool,
}

impl Faults {
    pub fn for_scenario(scenario: Scenario, topology: &Topology) -> Faults {
        let mut f = Faults::default();
        match scenario {
            Scenario::Healthy => {}
            Scenario::AzFailure => f.zone_down = topology.zones.last().cloned(),
            Scenario::EtcdNospace => f.etcd_nospace = true,
            Scenario::CanaryBad => f.canary_bad = true,
            Scenario::BackupStale => f.backup_stale = true,
            Scenario::CephDegraded => f.ceph_degraded = true,
            Scenario::GpuHot => f.gpu_hot = true,
        }
        f
    }

    pub fn zone_is_down(&self, zone: &str) -> bool {
        self.zone_down.as_deref() == Some(zone)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlPlaneNode {
    /// e.g. `cp-eu-west-1a`
    pub name: String,
    pub zone: String,
    /// The node's (simulated) internal IP, as kubeadm would advertise it.
    pub ip: String,
    /// Name of the etcd member on this node (`etcd-a`, ... as the lab's etcd names them).
    pub etcd_member: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerNode {
    pub name: String,
    pub zone: String,
    pub ip: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuNode {
    pub name: String,
    pub zone: String,
    pub ip: String,
    pub gpus: u32,
    /// e.g. `NVIDIA-A100-SXM4-80GB`
    pub product: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    pub region: String,
    pub zones: Vec<String>,
    pub control_plane: Vec<ControlPlaneNode>,
    pub workers: Vec<WorkerNode>,
    pub gpu_nodes: Vec<GpuNode>,
    pub ceph: CephTopology,
    pub velero: VeleroTopology,
    pub rollout: RolloutTopology,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CephTopology {
    pub namespace: String,
    pub cluster_name: String,
    pub mons: Vec<String>,
    pub osds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VeleroTopology {
    pub namespace: String,
    /// (name, cron): daily, like the reference guide.
    pub schedules: Vec<(String, String)>,
    /// (name, region): primary and DR.
    pub locations: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutTopology {
    pub namespace: String,
    pub name: String,
    pub service: String,
    /// Canary step weights; the lab's rollout pauses at the second step.
    pub steps: Vec<u32>,
}

/// A small deterministic generator (splitmix64), so no RNG dependency is needed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Topology {
    pub fn generate(spec: &LabSpec) -> Topology {
        let region = "eu-west-1".to_string();
        let zones: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|z| format!("{region}{z}"))
            .collect();
        let control_plane = zones
            .iter()
            .enumerate()
            .map(|(i, z)| ControlPlaneNode {
                name: format!("cp-{z}"),
                zone: z.clone(),
                ip: format!("10.0.{}.10", i + 1),
                etcd_member: format!("etcd-{}", (b'a' + i as u8) as char),
            })
            .collect();
        let workers = (0..spec.nodes)
            .map(|i| {
                let zi = i % zones.len();
                // Unique per zone: the k-th worker of the zone.
                let k = i / zones.len();
                WorkerNode {
                    name: format!("worker-{}-{:05}", &zones[zi][zones[zi].len() - 1..], i),
                    zone: zones[zi].clone(),
                    ip: format!("10.{}.{}.{}", 1 + zi, 16 + k / 240, 10 + k % 240),
                }
            })
            .collect();
        // Two GPU nodes in different zones: losing a zone leaves GPU capacity.
        let gpu_nodes = [0usize, 2]
            .iter()
            .enumerate()
            .map(|(n, &zi)| GpuNode {
                name: format!("gpu-{}-{n}", zones[zi]),
                zone: zones[zi].clone(),
                ip: format!("10.0.{}.{}", zi + 1, 50 + n),
                gpus: 8,
                product: "NVIDIA-A100-SXM4-80GB".into(),
            })
            .collect();
        Topology {
            region,
            zones,
            control_plane,
            workers,
            gpu_nodes,
            ceph: CephTopology {
                namespace: "rook-ceph".into(),
                cluster_name: "rook-ceph".into(),
                mons: vec!["a".into(), "b".into(), "c".into()],
                osds: 6,
            },
            velero: VeleroTopology {
                namespace: "velero".into(),
                schedules: vec![("daily-backup".into(), "0 2 * * *".into())],
                locations: vec![
                    ("default".into(), "eu-west-1".into()),
                    ("dr-region".into(), "eu-central-1".into()),
                ],
            },
            rollout: RolloutTopology {
                namespace: "shop".into(),
                name: "checkout".into(),
                service: "checkout".into(),
                steps: vec![10, 25, 50, 100],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_spreads_across_three_zones_and_is_reproducible() {
        let spec = LabSpec {
            nodes: 9,
            ..LabSpec::default()
        };
        let t = Topology::generate(&spec);
        assert_eq!(t.zones.len(), 3);
        assert_eq!(
            t.control_plane
                .iter()
                .map(|c| c.zone.as_str())
                .collect::<Vec<_>>(),
            t.zones
        );
        for z in &t.zones {
            assert_eq!(t.workers.iter().filter(|w| &w.zone == z).count(), 3);
        }
        assert_eq!(t, Topology::generate(&spec));
        let big = Topology::generate(&LabSpec {
            nodes: 10_000,
            ..LabSpec::default()
        });
        let ips: std::collections::HashSet<&str> =
            big.workers.iter().map(|w| w.ip.as_str()).collect();
        assert_eq!(ips.len(), 10_000, "worker IPs are unique");
        let f = Faults::for_scenario(Scenario::AzFailure, &t);
        assert_eq!(f.zone_down.as_deref(), Some("eu-west-1c"));
    }
}
