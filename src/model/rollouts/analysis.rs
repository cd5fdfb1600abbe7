//! AnalysisRuns (`argoproj.io/v1alpha1`): phase, and per metric the counts of
//! measurements and the newest one, beside the metric's failure limit from the spec.

use std::time::SystemTime;

use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use crate::model::ceph::fields::{
    age, array_at, created, label, name, namespace, string_at, time_at, u64_at,
};
use crate::model::finding::Health;

/// `Pending|Running|Successful|Failed|Error|Inconclusive`, and anything newer as unknown.
pub fn analysis_phase_health(phase: Option<&str>) -> Health {
    match phase {
        Some("Successful" | "Running" | "Pending") => Health::Ok,
        Some("Inconclusive") => Health::Warn,
        Some("Failed" | "Error") => Health::Crit,
        _ => Health::Unknown,
    }
}

/// One `status.metricResults[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetricRow {
    pub name: String,
    pub phase: Option<String>,
    pub count: u64,
    pub successful: u64,
    pub failed: u64,
    pub inconclusive: u64,
    pub error: u64,
    /// `spec.metrics[].failureLimit` (Argo's default is 0): more failures fail the run.
    pub failure_limit: u64,
    pub message: Option<String>,
    /// The newest measurement's value as the provider returned it (`[0.92]`).
    pub last_value: Option<String>,
    pub last_phase: Option<String>,
    pub last_measured_secs: Option<u64>,
}

impl MetricRow {
    pub fn health(&self) -> Health {
        if self.phase.as_deref() == Some("Successful") {
            return Health::Ok;
        }
        let phase = analysis_phase_health(self.phase.as_deref());
        if phase > Health::Ok {
            return phase;
        }
        if self.failed > self.failure_limit {
            Health::Crit
        } else if self.failed > 0 || self.error > 0 || self.inconclusive > 0 {
            Health::Warn
        } else {
            phase
        }
    }
}

/// An AnalysisRun, linked to its Rollout by owner reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnalysisRunRow {
    pub namespace: String,
    pub name: String,
    /// The owning Rollout's name.
    pub rollout: Option<String>,
    /// The `rollout-type` label: `Background`, `Step`, `PrePromotion`, `PostPromotion`.
    pub run_type: Option<String>,
    pub phase: Option<String>,
    pub message: Option<String>,
    pub started_secs: Option<u64>,
    pub metrics: Vec<MetricRow>,
    /// Named in its Rollout's status as the current step or background run.
    pub current: bool,
}

impl AnalysisRunRow {
    pub fn from_object(obj: &DynamicObject, now: SystemTime) -> AnalysisRunRow {
        let st = obj.data.get("status").unwrap_or(&Value::Null);
        let spec_metrics = array_at(&obj.data, &["spec", "metrics"]);
        let failure_limit = |metric: &str| {
            spec_metrics
                .iter()
                .find(|m| m.get("name").and_then(Value::as_str) == Some(metric))
                .and_then(|m| u64_at(m, &["failureLimit"]))
                .unwrap_or(0)
        };
        let metrics = array_at(st, &["metricResults"])
            .iter()
            .filter_map(|m| {
                let name = string_at(m, &["name"])?;
                let last = array_at(m, &["measurements"]).last();
                let count = |k: &str| u64_at(m, &[k]).unwrap_or(0);
                Some(MetricRow {
                    failure_limit: failure_limit(&name),
                    phase: string_at(m, &["phase"]),
                    count: count("count"),
                    successful: count("successful"),
                    failed: count("failed"),
                    inconclusive: count("inconclusive"),
                    error: count("error"),
                    message: string_at(m, &["message"]),
                    last_value: last.and_then(|l| string_at(l, &["value"])),
                    last_phase: last.and_then(|l| string_at(l, &["phase"])),
                    last_measured_secs: last
                        .and_then(|l| time_at(l, &["finishedAt"]).or(time_at(l, &["startedAt"])))
                        .map(|t| age(now, t).as_secs()),
                    name,
                })
            })
            .collect();
        let rollout = obj
            .metadata
            .owner_references
            .as_ref()
            .and_then(|refs| refs.iter().find(|r| r.kind == "Rollout"))
            .map(|r| r.name.clone());
        AnalysisRunRow {
            namespace: namespace(obj),
            name: name(obj),
            rollout,
            run_type: label(obj, "rollout-type").map(String::from),
            phase: string_at(st, &["phase"]),
            message: string_at(st, &["message"]),
            started_secs: time_at(st, &["startedAt"])
                .or_else(|| created(obj))
                .map(|t| age(now, t).as_secs()),
            metrics,
            current: false,
        }
    }

    pub fn health(&self) -> Health {
        self.metrics
            .iter()
            .map(MetricRow::health)
            .chain([analysis_phase_health(self.phase.as_deref())])
            .max()
            .unwrap_or(Health::Unknown)
    }
}
