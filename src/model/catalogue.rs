//! The PromQL queries kha runs by default, as data: the KPI panes, the GPU, Ceph and Velero
//! panes and the lab all read this one list. Metric names and recording rules follow the
//! upstream exporters and mixins (kubernetes-mixin, etcd and ceph mixins, dcgm-exporter,
//! the ceph-mgr prometheus module, Velero, blackbox-exporter, Istio, Karpenter).
//!
//! Left out on purpose: `node_recovery_time`. No exporter records how long a node took to
//! come back; kube-state-metrics only has the current `kube_node_status_condition`, so kha
//! measures recovery from the Node `Ready` condition's `lastTransitionTime` (kube watch).

use serde::{Deserialize, Serialize};

/// Which way a KPI should move.
///
/// Thresholds read the way the targets are written (API P99 `< 0.5 s`, availability
/// `>= 99.99 %`): with `LowerIsBetter` a value at or above `warn` (`crit`) is a warning
/// (critical); with `HigherIsBetter` a value below them is. A KPI's `crit` is its target:
/// missing the objective is critical, `warn` says it is getting close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all(deserialize = "snake_case"))]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

/// One KPI/metric query kha runs by default.
#[derive(Debug, Clone, Serialize)]
pub struct CatalogueQuery {
    /// Stable name other code refers to (`apiserver_p99_latency`).
    pub id: &'static str,
    pub title: &'static str,
    pub promql: &'static str,
    /// `seconds`, `ratio`, `percent`, `MiB`, `celsius`, `watts`, `bool`, `count`,
    /// `timestamp` (Unix seconds) or `state` (Ceph: 0 OK, 1 WARN, 2 ERR).
    pub unit: &'static str,
    /// The objective from the design (API P99 < 500 ms ...), when there is one.
    pub target: Option<f64>,
    pub direction: Direction,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
}

/// A catalogue query plus its fallback and what the lab needs to recognise it.
pub(crate) struct Entry {
    pub query: CatalogueQuery,
    /// A query over raw metrics for clusters without the recording rule the main query uses.
    pub fallback: Option<&'static str>,
    /// Metric names whose mention in an unknown query makes the lab answer with this entry.
    pub metrics: &'static [&'static str],
}

use Direction::{HigherIsBetter, LowerIsBetter};

#[allow(clippy::too_many_arguments)]
const fn query(
    id: &'static str,
    title: &'static str,
    promql: &'static str,
    unit: &'static str,
    target: Option<f64>,
    direction: Direction,
    warn: Option<f64>,
    crit: Option<f64>,
) -> CatalogueQuery {
    CatalogueQuery {
        id,
        title,
        promql,
        unit,
        target,
        direction,
        warn,
        crit,
    }
}

pub(crate) fn entries() -> Vec<Entry> {
    vec![
        Entry {
            // Per API server, so a lost or slow one shows; the KPI is the worst of them.
            query: query(
                "apiserver_p99_latency",
                "API server P99 latency (excl. WATCH, CONNECT)",
                r#"histogram_quantile(0.99, sum by (instance, le) (rate(apiserver_request_duration_seconds_bucket{job="apiserver", verb!~"WATCH|CONNECT"}[5m])))"#,
                "seconds",
                Some(0.5),
                LowerIsBetter,
                Some(0.4),
                Some(0.5),
            ),
            fallback: None,
            metrics: &[
                "apiserver_request_duration_seconds_bucket",
                "apiserver_request_sli_duration_seconds_bucket",
                "cluster_quantile:apiserver_request_sli_duration_seconds:histogram_quantile",
            ],
        },
        Entry {
            // kubernetes-mixin's 30-day error-budget rule (errors and too-slow requests).
            query: query(
                "apiserver_availability",
                "API server availability (30 d)",
                r#"apiserver_request:availability30d{verb="all"}"#,
                "ratio",
                Some(0.9999),
                HigherIsBetter,
                Some(0.99993),
                Some(0.9999),
            ),
            // Without the mixin's rules: the share of non-5xx answers over 30 days
            // (errors only; slow requests are not counted against the budget).
            fallback: Some(
                r#"1 - sum(increase(apiserver_request_total{job="apiserver", verb=~"LIST|GET|POST|PUT|PATCH|DELETE", code=~"5.."}[30d])) / sum(increase(apiserver_request_total{job="apiserver", verb=~"LIST|GET|POST|PUT|PATCH|DELETE"}[30d]))"#,
            ),
            metrics: &[
                "apiserver_request:availability30d",
                "apiserver_request_total",
            ],
        },
        Entry {
            // The kubelet's pod-start SLI (excludes image pulls); Kubernetes >= 1.27.
            query: query(
                "pod_startup_p99",
                "Pod start-up P99 (kubelet SLI)",
                r#"histogram_quantile(0.99, sum by (le) (rate(kubelet_pod_start_sli_duration_seconds_bucket{job="kubelet"}[5m])))"#,
                "seconds",
                Some(5.0),
                LowerIsBetter,
                Some(4.0),
                Some(5.0),
            ),
            fallback: Some(
                r#"histogram_quantile(0.99, sum by (le) (rate(kubelet_pod_start_duration_seconds_bucket{job="kubelet"}[5m])))"#,
            ),
            metrics: &[
                "kubelet_pod_start_sli_duration_seconds_bucket",
                "kubelet_pod_start_duration_seconds_bucket",
            ],
        },
        Entry {
            // blackbox-exporter ICMP probes from a prober in each zone to the control-plane
            // node of every other zone; `source_zone`/`target_zone` come from the Probe's
            // relabelling. Failed probes are left out (they last the whole timeout).
            query: query(
                "cross_az_latency",
                "Cross-AZ round trip (ICMP probe)",
                r#"max by (source_zone, target_zone) (probe_duration_seconds{job="blackbox-cross-az"} and on (instance, source_zone, target_zone) probe_success{job="blackbox-cross-az"} == 1)"#,
                "seconds",
                Some(0.010),
                LowerIsBetter,
                Some(0.008),
                Some(0.010),
            ),
            fallback: None,
            metrics: &["probe_duration_seconds"],
        },
        Entry {
            // Karpenter (alpha histogram): from "this pod can schedule" to Running, which
            // includes launching a node. Cluster Autoscaler has no equivalent series.
            query: query(
                "scaling_speed",
                "Scale-up: schedulable to Running P99 (Karpenter)",
                r#"histogram_quantile(0.99, sum by (le) (rate(karpenter_pods_provisioning_startup_duration_seconds_bucket[30m])))"#,
                "seconds",
                None,
                LowerIsBetter,
                Some(180.0),
                Some(300.0),
            ),
            fallback: None,
            metrics: &["karpenter_pods_provisioning_startup_duration_seconds_bucket"],
        },
        Entry {
            // Istio's standard metric, as Argo Rollouts' analysis templates use it; one
            // series per destination service, so per rollout's canary service.
            query: query(
                "canary_error_rate",
                "Canary 5xx ratio",
                r#"sum by (destination_service_namespace, destination_service_name) (rate(istio_requests_total{reporter="destination", response_code=~"5.."}[5m])) / sum by (destination_service_namespace, destination_service_name) (rate(istio_requests_total{reporter="destination"}[5m]))"#,
                "ratio",
                Some(0.05),
                LowerIsBetter,
                Some(0.02),
                Some(0.05),
            ),
            fallback: None,
            metrics: &["istio_requests_total"],
        },
        raw(
            "gpu_util",
            "GPU utilisation",
            "DCGM_FI_DEV_GPU_UTIL",
            "percent",
            HigherIsBetter,
            None,
            None,
        ),
        raw(
            "gpu_fb_used",
            "GPU memory used",
            "DCGM_FI_DEV_FB_USED",
            "MiB",
            LowerIsBetter,
            None,
            None,
        ),
        raw(
            "gpu_fb_free",
            "GPU memory free",
            "DCGM_FI_DEV_FB_FREE",
            "MiB",
            HigherIsBetter,
            None,
            None,
        ),
        raw(
            "gpu_temp",
            "GPU temperature",
            "DCGM_FI_DEV_GPU_TEMP",
            "celsius",
            LowerIsBetter,
            Some(83.0),
            Some(90.0),
        ),
        raw(
            "gpu_power",
            "GPU power draw",
            "DCGM_FI_DEV_POWER_USAGE",
            "watts",
            LowerIsBetter,
            None,
            None,
        ),
        Entry {
            // GPUs handed to a pod that used less than 5 % of them for the last hour; the
            // `offset 1h` term keeps only GPUs the same pod already held an hour ago (a job
            // that started ten minutes ago is not idle for an hour).
            query: query(
                "gpu_idle_allocated",
                "Allocated GPUs idle for 1 h",
                r#"max_over_time(DCGM_FI_DEV_GPU_UTIL{pod!=""}[1h]) < 5 and DCGM_FI_DEV_GPU_UTIL{pod!=""} offset 1h"#,
                "percent",
                None,
                HigherIsBetter,
                Some(5.0),
                None,
            ),
            fallback: None,
            metrics: &["DCGM_FI_DEV_GPU_UTIL"],
        },
        raw(
            "ceph_health_status",
            "Ceph health (0 OK, 1 WARN, 2 ERR)",
            "ceph_health_status",
            "state",
            LowerIsBetter,
            Some(1.0),
            Some(2.0),
        ),
        raw(
            "ceph_osd_up",
            "Ceph OSD up",
            "ceph_osd_up",
            "bool",
            HigherIsBetter,
            None,
            Some(0.0),
        ),
        raw(
            "ceph_osd_in",
            "Ceph OSD in",
            "ceph_osd_in",
            "bool",
            HigherIsBetter,
            Some(0.0),
            None,
        ),
        raw(
            "velero_last_successful_backup",
            "Last successful backup per schedule",
            r#"velero_backup_last_successful_timestamp{schedule!=""}"#,
            "timestamp",
            HigherIsBetter,
            None,
            None,
        ),
        Entry {
            // Age of the last good backup against a daily RPO.
            query: query(
                "velero_backup_age",
                "Age of last successful backup",
                r#"time() - velero_backup_last_successful_timestamp{schedule!=""}"#,
                "seconds",
                Some(86_400.0),
                LowerIsBetter,
                Some(93_600.0),
                Some(172_800.0),
            ),
            fallback: None,
            metrics: &["velero_backup_last_successful_timestamp"],
        },
        raw(
            "velero_backup_success_total",
            "Successful backups per schedule",
            r#"velero_backup_success_total{schedule!=""}"#,
            "count",
            HigherIsBetter,
            None,
            None,
        ),
        raw(
            "velero_backup_failure_total",
            "Failed backups per schedule",
            r#"velero_backup_failure_total{schedule!=""}"#,
            "count",
            LowerIsBetter,
            None,
            None,
        ),
    ]
}

/// An entry whose query is a plain selector of one exporter metric.
fn raw(
    id: &'static str,
    title: &'static str,
    promql: &'static str,
    unit: &'static str,
    direction: Direction,
    warn: Option<f64>,
    crit: Option<f64>,
) -> Entry {
    let metric_end = promql.find('{').unwrap_or(promql.len());
    Entry {
        query: query(id, title, promql, unit, None, direction, warn, crit),
        fallback: None,
        metrics: match &promql[..metric_end] {
            "DCGM_FI_DEV_GPU_UTIL" => &["DCGM_FI_DEV_GPU_UTIL"],
            "DCGM_FI_DEV_FB_USED" => &["DCGM_FI_DEV_FB_USED"],
            "DCGM_FI_DEV_FB_FREE" => &["DCGM_FI_DEV_FB_FREE"],
            "DCGM_FI_DEV_GPU_TEMP" => &["DCGM_FI_DEV_GPU_TEMP"],
            "DCGM_FI_DEV_POWER_USAGE" => &["DCGM_FI_DEV_POWER_USAGE"],
            "ceph_health_status" => &["ceph_health_status"],
            "ceph_osd_up" => &["ceph_osd_up"],
            "ceph_osd_in" => &["ceph_osd_in"],
            "velero_backup_last_successful_timestamp" => {
                &["velero_backup_last_successful_timestamp"]
            }
            "velero_backup_success_total" => &["velero_backup_success_total"],
            "velero_backup_failure_total" => &["velero_backup_failure_total"],
            _ => &[],
        },
    }
}

/// The queries kha runs by default, in display order.
pub fn default_catalogue() -> Vec<CatalogueQuery> {
    entries().into_iter().map(|e| e.query).collect()
}

/// The raw-metric query to try when the catalogue query `id` returns nothing because the
/// cluster lacks the recording rule (or the newer SLI metric) it relies on.
pub fn fallback_promql(id: &str) -> Option<&'static str> {
    entries()
        .into_iter()
        .find(|e| e.query.id == id)
        .and_then(|e| e.fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_entry_is_recognisable() {
        let entries = entries();
        let mut ids: Vec<_> = entries.iter().map(|e| e.query.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), entries.len());
        for e in &entries {
            assert!(!e.metrics.is_empty(), "{} names no metric", e.query.id);
            assert!(
                e.metrics.iter().any(|m| e.query.promql.contains(m)),
                "{} does not mention its metric",
                e.query.id
            );
        }
        assert!(fallback_promql("apiserver_availability").is_some());
        assert!(fallback_promql("gpu_temp").is_none());
    }
}
