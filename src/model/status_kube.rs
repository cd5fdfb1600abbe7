//! The Kubernetes-backed parts of `kha status --json`: `control_plane` and `gpu` (status,
//! findings, rows, like `etcd`) and `kube` (each watch's availability).

use std::time::SystemTime;

use serde::Serialize;

use super::control_plane::{self, ControlPlaneRow, ZoneSummary};
use super::etcd::EtcdObservation;
use super::finding::{Finding, Health, worst};
use super::gpu::{self, GpuNodeRow, GpuPodRow};
use super::kube::{Availability, Feed, KubeState};

#[derive(Debug, Serialize)]
pub struct ControlPlaneReport {
    pub status: Health,
    pub configured: bool,
    pub zones: Vec<ZoneSummary>,
    pub rows: Vec<ControlPlaneRow>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct GpuReport {
    pub status: Health,
    pub configured: bool,
    pub gpus_allocatable: u32,
    pub gpus_requested: u32,
    pub rows: Vec<GpuNodeRow>,
    pub pending: Vec<GpuPodRow>,
    pub findings: Vec<Finding>,
}

/// One watch: `{"resource": "rollouts.argoproj.io", "availability": "forbidden", ...}`.
#[derive(Debug, Serialize)]
pub struct FeedReport {
    pub resource: String,
    pub availability: &'static str,
    /// The engineer's next step or the reason ("forbidden: kha needs list/watch ...").
    pub message: String,
    pub objects: usize,
    pub down_secs: Option<u64>,
    pub stale: bool,
}

#[derive(Debug, Serialize)]
pub struct KubeReport {
    pub configured: bool,
    pub target: Option<String>,
    pub feeds: Vec<FeedReport>,
}

const NOT_CONFIGURED: &str = "Kubernetes not configured: set KUBECONFIG or --kubeconfig";

fn feed_report<T>(
    resource: String,
    noun: &str,
    feed: &Feed<T>,
    kube: &KubeState,
    now: SystemTime,
) -> FeedReport {
    FeedReport {
        resource,
        availability: feed.availability.word(),
        message: feed.describe(now, kube.stale_after, noun),
        objects: feed.objects.len(),
        down_secs: feed.down_for(now).map(|d| d.as_secs()),
        stale: feed.is_stale(now, kube.stale_after),
    }
}

/// Without data, a pane is unknown; stale data cannot be called good.
fn pane_status(kube: &KubeState, findings: &[Finding], stale: bool) -> Health {
    let w = worst(findings);
    if !kube.nodes.has_data() || stale {
        w.max(Health::Unknown)
    } else {
        w
    }
}

fn unknown(pane: &'static str, message: String) -> Vec<Finding> {
    vec![Finding {
        severity: Health::Unknown,
        pane,
        message,
    }]
}

/// Why there is no data yet (only when there is none).
fn no_data(kube: &KubeState) -> Option<String> {
    if !kube.configured {
        return Some(NOT_CONFIGURED.into());
    }
    match &kube.nodes.availability {
        Availability::Connecting => Some("no answer from the Kubernetes API in time".into()),
        Availability::Down { error, .. } if !kube.nodes.has_data() => {
            Some(format!("Kubernetes API: {error}"))
        }
        _ => None,
    }
}

impl ControlPlaneReport {
    pub fn new(kube: &KubeState, etcd: Option<&EtcdObservation>, now: SystemTime) -> Self {
        let view = control_plane::derive(kube, etcd);
        let mut findings = view.findings;
        if let Some(why) = no_data(kube) {
            findings = unknown(control_plane::PANE, why);
        }
        let stale = kube.nodes.is_stale(now, kube.stale_after)
            || kube.control_plane_pods.is_stale(now, kube.stale_after);
        ControlPlaneReport {
            status: pane_status(kube, &findings, stale),
            configured: kube.configured,
            zones: view.zones,
            rows: view.rows,
            findings,
        }
    }
}

impl GpuReport {
    pub fn new(kube: &KubeState, now: SystemTime) -> Self {
        let view = gpu::derive(kube);
        let mut findings = view.findings.clone();
        if let Some(why) = no_data(kube) {
            findings = unknown(gpu::PANE, why);
        }
        let stale = kube.nodes.is_stale(now, kube.stale_after)
            || kube
                .gpu_pods_down_for(now)
                .is_some_and(|d| d > kube.stale_after);
        GpuReport {
            status: pane_status(kube, &findings, stale),
            configured: kube.configured,
            gpus_allocatable: view.allocatable(),
            gpus_requested: view.requested(),
            rows: view.rows,
            pending: view.pending,
            findings,
        }
    }
}

impl KubeReport {
    pub fn new(kube: &KubeState, now: SystemTime) -> Self {
        let mut feeds = vec![
            feed_report("nodes".into(), "node", &kube.nodes, kube, now),
            feed_report(
                "pods (kube-system, tier=control-plane)".into(),
                "pod",
                &kube.control_plane_pods,
                kube,
                now,
            ),
        ];
        for (scope, feed) in &kube.gpu_pods {
            let what = match scope {
                super::kube::GpuPodScope::Node(n) => format!("pods (spec.nodeName={n})"),
                super::kube::GpuPodScope::Pending => "pods (status.phase=Pending, GPU)".into(),
            };
            feeds.push(feed_report(what, "pod", feed, kube, now));
        }
        for (kind, feed) in &kube.feeds {
            feeds.push(feed_report(kind.resource(), "object", feed, kube, now));
        }
        KubeReport {
            configured: kube.configured,
            target: kube.target.clone(),
            feeds: if kube.configured { feeds } else { Vec::new() },
        }
    }
}
