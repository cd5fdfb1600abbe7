//! Exporter series the kube-backed panes add when Prometheus is configured: DCGM for the
//! GPU pane, ceph-mgr for Ceph, Velero's own metrics for Velero. One round of the
//! metrics source reads them all; absent series are "no metrics", never a failure. Pure.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::ceph::metrics::CephMetrics;
use super::finding::Finding;
use super::gpu::metrics::{GpuDevice, GpuThresholds};
use super::gpu::{GpuView, join_metrics};
use super::thanos::Fetched;
use super::velero::metrics::VeleroMetrics;

/// One round of exporter queries.
#[derive(Debug, Clone, PartialEq)]
pub struct ExporterObservation {
    pub observed_at: SystemTime,
    /// No query got an answer.
    pub unreachable: Option<String>,
    pub gpu: Fetched<Vec<GpuDevice>>,
    /// `None` inside: no ceph-mgr series.
    pub ceph: Fetched<Option<CephMetrics>>,
    /// `None` inside: no Velero series.
    pub velero: Fetched<Option<VeleroMetrics>>,
}

/// What a pane says about its metrics, in the status JSON and on screen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetricsStatus<T> {
    /// No Prometheus URL configured.
    NotConfigured,
    /// Prometheus answered, but the exporter's series do not exist.
    NoMetrics,
    Read {
        value: T,
    },
    Failed {
        error: String,
    },
}

impl<T: Clone> MetricsStatus<T> {
    pub fn of(
        obs: Option<&ExporterObservation>,
        part: impl Fn(&ExporterObservation) -> &Fetched<Option<T>>,
    ) -> Self {
        let Some(obs) = obs else {
            return MetricsStatus::NotConfigured;
        };
        if let Some(e) = &obs.unreachable {
            return MetricsStatus::Failed { error: e.clone() };
        }
        match part(obs) {
            Fetched::Read { value: Some(v) } => MetricsStatus::Read { value: v.clone() },
            Fetched::Read { value: None } => MetricsStatus::NoMetrics,
            Fetched::Failed { error } => MetricsStatus::Failed {
                error: error.clone(),
            },
        }
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            MetricsStatus::Read { value } => Some(value),
            _ => None,
        }
    }
}

/// The exporter metrics in the cockpit state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExporterState {
    pub configured: bool,
    pub last: Option<ExporterObservation>,
    pub gpu_thresholds: GpuThresholds,
}

impl ExporterState {
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        super::age_of(self.last.as_ref().map(|o| o.observed_at), now)
    }

    /// The GPUs dcgm-exporter reported in the last round.
    pub fn gpus(&self) -> &[GpuDevice] {
        self.last
            .as_ref()
            .and_then(|o| o.gpu.value())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Joins the GPUs to the GPU pane's view (with their findings).
    pub fn join_gpu(&self, view: &mut GpuView) {
        if self.last.is_some() {
            join_metrics(view, self.gpus(), &self.gpu_thresholds);
        }
    }

    pub fn ceph(&self) -> MetricsStatus<CephMetrics> {
        MetricsStatus::of(self.last.as_ref(), |o| &o.ceph)
    }

    pub fn velero(&self) -> MetricsStatus<VeleroMetrics> {
        MetricsStatus::of(self.last.as_ref(), |o| &o.velero)
    }

    /// Ceph and Velero findings from metrics; the health words only where no CR
    /// (`*_present`) says them already.
    pub fn storage_findings(&self, ceph_present: bool, velero_present: bool) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(c) = self.ceph().value() {
            out.extend(c.findings(!ceph_present));
        }
        if let (Some(v), false) = (self.velero().value(), velero_present) {
            out.extend(v.findings());
        }
        out
    }
}

impl super::status::StatusReport {
    /// Adds the exporter metrics to the `gpu`, `ceph` and `velero` keys: per GPU node its
    /// DCGM GPUs (utilisation, memory, temperature, power, idle), with the hot and idle
    /// findings; ceph-mgr and Velero values where the series exist ("no_metrics"
    /// otherwise). `None`: Prometheus not configured.
    pub fn with_exporters(
        mut self,
        obs: Option<&ExporterObservation>,
        thresholds: GpuThresholds,
    ) -> Self {
        let state = ExporterState {
            configured: obs.is_some(),
            last: obs.cloned(),
            gpu_thresholds: thresholds,
        };
        if obs.is_some() {
            let mut view = GpuView {
                rows: std::mem::take(&mut self.gpu.rows),
                pending: Vec::new(),
                findings: Vec::new(),
            };
            state.join_gpu(&mut view);
            self.gpu.rows = view.rows;
            self.gpu.findings.extend(view.findings);
            self.gpu
                .findings
                .sort_by_key(|f| std::cmp::Reverse(f.severity));
            let worst = super::finding::worst(&self.gpu.findings);
            self.gpu.status = self.gpu.status.max(worst);
            if self.gpu.configured {
                self.overall = self.overall.max(self.gpu.status);
            }
        }
        self.ceph.metrics = state.ceph();
        self.velero.metrics = state.velero();
        let storage = state.storage_findings(self.ceph.present, self.velero.present);
        for f in storage {
            self.overall = self.overall.max(f.severity);
            match f.pane {
                super::ceph::PANE => self.ceph.findings.push(f),
                _ => self.velero.findings.push(f),
            }
        }
        self
    }
}
