//! Argo Rollouts (`argoproj.io/v1alpha1`): per Rollout its phase and message, step
//! `i/N`, set and actual canary weight as `kubectl argo rollouts get` computes them, and
//! its AnalysisRuns with their metric results. Pure: [`derive`] reads the objects.
//!
//! Weights (pkg/kubectl-argo-rollouts/info/rollout_info.go): the set weight is the last
//! `setWeight` at or before the current step (0 when aborted, 100 when all steps are
//! done). The actual weight is 100 when all steps are done; with traffic routing it is
//! `status.canary.weights.canary.weight` (else the set weight); without, it is the canary
//! ReplicaSet's available replicas × 100 / the rollout's available replicas, which needs
//! the ReplicaSets ([`RolloutSources::replica_sets`]); without them it is unknown.

pub mod analysis;
mod report;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::ceph::fields::{
    self, Condition, annotation, array_at, bool_at, conditions, label, name, namespace, string_at,
    u64_at,
};
use super::finding::{Finding, Health, worst};
pub use analysis::{AnalysisRunRow, MetricRow, analysis_phase_health};
pub use report::RolloutsReport;

pub const PANE: &str = "rollouts";

/// The label Argo puts on a Rollout's ReplicaSets and pods.
pub const HASH_LABEL: &str = "rollouts-pod-template-hash";

/// The canary's error rate measured outside Argo (e.g. the KPI pane's PromQL); the
/// abort advisory ([`super::canary`]) sets [`RolloutRow::abort_advisory`] from it.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryErrorRate {
    pub namespace: String,
    pub rollout: String,
    /// 0.0..=1.0
    pub error_rate: f64,
    pub measured_at: SystemTime,
}

/// Everything [`derive_with`] reads. `replica_sets` (only those labelled
/// `rollouts-pod-template-hash` are needed) give the actual weight of a basic canary;
/// `error_rates` feed the future abort advisory.
#[derive(Debug, Clone, Copy, Default)]
pub struct RolloutSources<'a> {
    pub rollouts: &'a [DynamicObject],
    pub analysis_runs: &'a [DynamicObject],
    pub replica_sets: &'a [DynamicObject],
    pub error_rates: &'a [CanaryErrorRate],
}

/// Where [`RolloutRow::actual_weight`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightSource {
    /// `status.canary.weights` (traffic routing).
    TrafficRouting,
    /// Traffic routing configured but no weights in status: the set weight, as the CLI.
    SetWeight,
    /// Canary ReplicaSet availability over the rollout's.
    ReplicaSets,
    /// All steps done: 100.
    Promoted,
    /// Not a canary, no ReplicaSets given, or nothing available.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutRow {
    pub namespace: String,
    pub name: String,
    /// `Canary`, `BlueGreen`, or `-`.
    pub strategy: String,
    /// `status.phase` (`Healthy|Degraded|Progressing|Paused`), or computed when absent.
    pub phase: String,
    pub message: Option<String>,
    pub aborted: bool,
    pub pause_reasons: Vec<String>,
    /// `status.currentStepIndex`.
    pub step: Option<u64>,
    /// Number of canary steps.
    pub steps_total: usize,
    /// Each step in words (`setWeight 25`, `pause 5m`, `pause (until promoted)`).
    pub steps: Vec<String>,
    pub set_weight: Option<u64>,
    pub actual_weight: Option<u64>,
    pub weight_source: WeightSource,
    pub revision: Option<String>,
    pub desired: Option<u64>,
    pub current: Option<u64>,
    pub updated: Option<u64>,
    pub ready: Option<u64>,
    pub available: Option<u64>,
    pub conditions: Vec<Condition>,
    /// The rollout's AnalysisRuns, current first, then newest first.
    pub analysis_runs: Vec<AnalysisRunRow>,
    /// From [`CanaryErrorRate`], when given.
    pub canary_error_rate: Option<f64>,
    /// Set by [`super::canary::advise`] when the canary's error rate is above the threshold.
    pub abort_advisory: Option<super::canary::AbortAdvisory>,
}

impl RolloutRow {
    pub fn phase_health(&self) -> Health {
        match self.phase.as_str() {
            "Healthy" | "Progressing" => Health::Ok,
            "Paused"
                if self
                    .pause_reasons
                    .iter()
                    .any(|r| r.starts_with("Inconclusive")) =>
            {
                Health::Warn
            }
            "Paused" => Health::Ok,
            "Degraded" | "InvalidSpec" => Health::Crit,
            _ => Health::Unknown,
        }
    }

    /// `3/7`, as the CLI prints the step.
    pub fn step_text(&self) -> Option<String> {
        Some(format!("{}/{}", self.step?, self.steps_total)).filter(|_| self.steps_total > 0)
    }

    /// The analysis runs the rollout is waiting on now.
    pub fn current_runs(&self) -> impl Iterator<Item = &AnalysisRunRow> {
        self.analysis_runs.iter().filter(|r| r.current)
    }

    pub fn health(&self) -> Health {
        self.current_runs()
            .map(AnalysisRunRow::health)
            .chain([self.phase_health()])
            .max()
            .unwrap_or(Health::Unknown)
    }

    fn findings(&self, out: &mut Vec<Finding>) {
        let who = format!("{}/{}", self.namespace, self.name);
        let msg = self.message.as_deref().unwrap_or("no message");
        match self.phase.as_str() {
            "Degraded" | "InvalidSpec" => out.push(Finding::crit(
                PANE,
                format!("Rollout {who} {}: {msg}", self.phase),
            )),
            _ if self.aborted => {
                out.push(Finding::crit(PANE, format!("Rollout {who} aborted: {msg}")))
            }
            _ if self.phase_health() == Health::Warn => out.push(Finding::warn(
                PANE,
                format!("Rollout {who} paused: {}", self.pause_reasons.join(", ")),
            )),
            _ => {}
        }
        if let Some(c) = self
            .conditions
            .iter()
            .find(|c| c.kind == "Available" && c.status == "False")
        {
            out.push(Finding::warn(
                PANE,
                format!(
                    "Rollout {who}: {} ({}/{} available)",
                    c.message.as_deref().unwrap_or("not available"),
                    self.available.unwrap_or(0),
                    self.desired.unwrap_or(0)
                ),
            ));
        }
        for run in self.current_runs() {
            run_findings(run, out);
        }
    }
}

fn run_findings(run: &AnalysisRunRow, out: &mut Vec<Finding>) {
    let phase = run.phase.as_deref().unwrap_or("Pending");
    let phase_health = analysis_phase_health(run.phase.as_deref());
    if phase_health >= Health::Warn {
        let why = run.message.as_deref().unwrap_or("no message");
        out.push(Finding {
            severity: phase_health,
            pane: PANE,
            message: format!("Analysis {} {phase}: {why}", run.name),
        });
        return;
    }
    for m in run.metrics.iter().filter(|m| m.health() >= Health::Warn) {
        let last = m
            .last_value
            .as_deref()
            .map(|v| format!(", last {v}"))
            .unwrap_or_default();
        out.push(Finding {
            severity: m.health(),
            pane: PANE,
            message: format!(
                "Analysis {} metric {}: {} of {} measurements failed (limit {}){last}",
                run.name, m.name, m.failed, m.count, m.failure_limit
            ),
        });
    }
}

/// Everything the Rollouts pane shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutsView {
    pub rollouts: Vec<RolloutRow>,
    /// AnalysisRuns with no Rollout among `rollouts` (shown, never findings).
    pub orphan_runs: Vec<AnalysisRunRow>,
    pub findings: Vec<Finding>,
}

impl RolloutsView {
    /// Worst finding; `Unknown` when there is no Rollout.
    pub fn health(&self) -> Health {
        if self.rollouts.is_empty() {
            return Health::Unknown;
        }
        worst(&self.findings).max(
            self.rollouts
                .iter()
                .map(RolloutRow::health)
                .filter(|h| *h != Health::Unknown)
                .max()
                .unwrap_or(Health::Ok),
        )
    }

    /// One line for the home tile: `1 rollout · checkout Paused 3/7 · weight 25%`.
    pub fn summary(&self) -> String {
        let n = self.rollouts.len();
        if n == 0 {
            return "no Rollouts".into();
        }
        // The rollout most worth a look: worst health, then one that is mid-update.
        let Some(r) = self
            .rollouts
            .iter()
            .max_by_key(|r| (r.health(), r.phase != "Healthy"))
        else {
            return "no Rollouts".into();
        };
        let mut parts = vec![format!("{n} rollout{}", if n == 1 { "" } else { "s" })];
        let mut lead = format!("{} {}", r.name, r.phase);
        if let Some(step) = r.step_text() {
            lead.push_str(&format!(" {step}"));
        }
        parts.push(lead);
        if let Some(w) = r
            .actual_weight
            .or(r.set_weight)
            .filter(|_| r.phase != "Healthy")
        {
            parts.push(format!("canary {w}%"));
        }
        parts.join(" · ")
    }
}

/// Derives the view from Rollouts and AnalysisRuns only (actual weight of a basic canary
/// unknown). See [`derive_with`] for ReplicaSets and error rates.
pub fn derive(
    rollouts: &[DynamicObject],
    analysis_runs: &[DynamicObject],
    now: SystemTime,
) -> RolloutsView {
    derive_with(
        &RolloutSources {
            rollouts,
            analysis_runs,
            ..RolloutSources::default()
        },
        now,
    )
}

pub fn derive_with(src: &RolloutSources<'_>, now: SystemTime) -> RolloutsView {
    let mut runs: Vec<AnalysisRunRow> = src
        .analysis_runs
        .iter()
        .filter(|o| fields::is_kind(o, "argoproj.io", "AnalysisRun"))
        .map(|o| AnalysisRunRow::from_object(o, now))
        .collect();
    runs.sort_by(|a, b| {
        a.started_secs
            .cmp(&b.started_secs)
            .then(a.name.cmp(&b.name))
    });
    let mut rows: Vec<RolloutRow> = src
        .rollouts
        .iter()
        .filter(|o| fields::is_kind(o, "argoproj.io", "Rollout"))
        .map(|o| rollout_row(o, src, now))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut orphan_runs = Vec::new();
    for run in runs {
        let owner = rows.iter_mut().find(|r| {
            r.namespace == run.namespace && run.rollout.as_deref() == Some(r.name.as_str())
        });
        match owner {
            Some(r) => r.analysis_runs.push(run),
            None => orphan_runs.push(run),
        }
    }
    for (row, obj) in rows.iter_mut().zip(sorted(src.rollouts)) {
        let status = obj.data.get("status").unwrap_or(&Value::Null);
        let current: Vec<&str> = [
            &["canary", "currentStepAnalysisRunStatus", "name"][..],
            &["canary", "currentBackgroundAnalysisRunStatus", "name"],
            &["blueGreen", "prePromotionAnalysisRunStatus", "name"],
            &["blueGreen", "postPromotionAnalysisRunStatus", "name"],
        ]
        .iter()
        .filter_map(|path| fields::str_at(status, path))
        .collect();
        for run in &mut row.analysis_runs {
            run.current = current.contains(&run.name.as_str());
        }
        row.analysis_runs.sort_by_key(|r| !r.current);
    }
    let mut findings = Vec::new();
    for r in &rows {
        r.findings(&mut findings);
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    RolloutsView {
        rollouts: rows,
        orphan_runs,
        findings,
    }
}

/// The Rollout objects in the order of the rows.
fn sorted(objs: &[DynamicObject]) -> Vec<&DynamicObject> {
    let mut v: Vec<&DynamicObject> = objs
        .iter()
        .filter(|o| fields::is_kind(o, "argoproj.io", "Rollout"))
        .collect();
    v.sort_by_key(|o| (namespace(o), name(o)));
    v
}

fn step_words(step: &Value) -> String {
    let Some((kind, body)) = step.as_object().and_then(|m| m.iter().next()) else {
        return "?".into();
    };
    match kind.as_str() {
        "setWeight" => format!("setWeight {}", u64_at(step, &["setWeight"]).unwrap_or(0)),
        "pause" => match fields::at(body, &["duration"]) {
            Some(Value::String(d)) => format!("pause {d}"),
            Some(Value::Number(n)) => format!("pause {n}s"),
            _ => "pause (until promoted)".into(),
        },
        "analysis" => {
            let names: Vec<&str> = array_at(body, &["templates"])
                .iter()
                .filter_map(|t| fields::str_at(t, &["templateName"]))
                .collect();
            format!("analysis {}", names.join(","))
        }
        other => other.to_string(),
    }
}

fn rollout_row(obj: &DynamicObject, src: &RolloutSources<'_>, now: SystemTime) -> RolloutRow {
    let data = &obj.data;
    let status = data.get("status").unwrap_or(&Value::Null);
    let canary = fields::at(data, &["spec", "strategy", "canary"]);
    let strategy = if canary.is_some() {
        "Canary"
    } else if fields::at(data, &["spec", "strategy", "blueGreen"]).is_some() {
        "BlueGreen"
    } else {
        "-"
    };
    let steps = canary.map(|c| array_at(c, &["steps"])).unwrap_or(&[]);
    let step = u64_at(status, &["currentStepIndex"]);
    let aborted = bool_at(status, &["abort"]).unwrap_or(false);
    let pause_reasons: Vec<String> = array_at(status, &["pauseConditions"])
        .iter()
        .filter_map(|p| string_at(p, &["reason"]))
        .collect();
    let desired = u64_at(data, &["spec", "replicas"]).or(Some(1));
    let available = u64_at(status, &["availableReplicas"]);
    let conds = conditions(status, now);
    // The current step, as GetCurrentCanaryStep: none when all are done.
    let current_step = match (canary, step) {
        (None, _) => None,
        (Some(_), _) if steps.is_empty() => None,
        (Some(_), None) => Some(0),
        (Some(_), Some(i)) => usize::try_from(i).ok().filter(|i| *i < steps.len()),
    };
    let set_weight = canary.map(|_| {
        if aborted {
            0
        } else if let Some(i) = current_step {
            steps[..=i]
                .iter()
                .rev()
                .find_map(|s| u64_at(s, &["setWeight"]))
                .unwrap_or(0)
        } else {
            100
        }
    });
    let routed = fields::at(data, &["spec", "strategy", "canary", "trafficRouting"]).is_some();
    let status_weight = u64_at(status, &["canary", "weights", "canary", "weight"]);
    let current_hash = fields::str_at(status, &["currentPodHash"]);
    let (actual_weight, weight_source) = if canary.is_none() {
        (None, WeightSource::Unknown)
    } else if let Some(w) = status_weight {
        (Some(w), WeightSource::TrafficRouting)
    } else if current_step.is_none() {
        (Some(100), WeightSource::Promoted)
    } else if available.unwrap_or(0) == 0 {
        (Some(0), WeightSource::ReplicaSets)
    } else if routed {
        (set_weight, WeightSource::SetWeight)
    } else {
        match canary_available(obj, src.replica_sets, current_hash) {
            Some(c) => (
                Some(c * 100 / available.unwrap_or(1).max(1)),
                WeightSource::ReplicaSets,
            ),
            None => (None, WeightSource::Unknown),
        }
    };
    let phase = string_at(status, &["phase"]).unwrap_or_else(|| {
        computed_phase(data, status, &conds, &pause_reasons, desired.unwrap_or(1))
    });
    let ns = namespace(obj);
    let nm = name(obj);
    let canary_error_rate = src
        .error_rates
        .iter()
        .find(|e| e.namespace == ns && e.rollout == nm)
        .map(|e| e.error_rate);
    RolloutRow {
        strategy: strategy.into(),
        phase,
        message: string_at(status, &["message"]),
        aborted,
        pause_reasons,
        step,
        steps_total: steps.len(),
        steps: steps.iter().map(step_words).collect(),
        set_weight,
        actual_weight,
        weight_source,
        revision: annotation(obj, "rollout.argoproj.io/revision").map(String::from),
        desired,
        current: u64_at(status, &["replicas"]),
        updated: u64_at(status, &["updatedReplicas"]),
        ready: u64_at(status, &["readyReplicas"]),
        available,
        conditions: conds,
        analysis_runs: Vec::new(),
        canary_error_rate,
        abort_advisory: None,
        namespace: ns,
        name: nm,
    }
}

/// Available replicas of the canary ReplicaSet: the one of this rollout (same namespace,
/// owned by it when owner references are present) whose hash is `currentPodHash`.
fn canary_available(
    rollout: &DynamicObject,
    replica_sets: &[DynamicObject],
    current_hash: Option<&str>,
) -> Option<u64> {
    let hash = current_hash?;
    let rs = replica_sets.iter().find(|rs| {
        rs.metadata.namespace == rollout.metadata.namespace
            && label(rs, HASH_LABEL) == Some(hash)
            && rs.metadata.owner_references.as_ref().is_none_or(|refs| {
                refs.iter()
                    .any(|r| r.kind == "Rollout" && Some(&r.name) == rollout.metadata.name.as_ref())
            })
    })?;
    Some(u64_at(&rs.data, &["status", "availableReplicas"]).unwrap_or(0))
}

/// The phase when `status.phase` is missing (old controllers), after the CLI's
/// `RolloutStatusString`, reduced to the phase words.
fn computed_phase(
    data: &Value,
    status: &Value,
    conds: &[Condition],
    pause_reasons: &[String],
    desired: u64,
) -> String {
    let degraded = conds.iter().any(|c| {
        c.kind == "InvalidSpec"
            || matches!(
                c.reason.as_deref(),
                Some("RolloutAborted" | "ProgressDeadlineExceeded")
            )
    });
    if degraded {
        return "Degraded".into();
    }
    if bool_at(data, &["spec", "paused"]).unwrap_or(false) || !pause_reasons.is_empty() {
        return "Paused".into();
    }
    let n = |k: &str| u64_at(status, &[k]).unwrap_or(0);
    if n("updatedReplicas") < desired
        || n("updatedReplicas") < n("replicas")
        || n("availableReplicas") < n("updatedReplicas")
    {
        return "Progressing".into();
    }
    let stable = fields::str_at(status, &["stableRS"]);
    if stable.is_some() && stable == fields::str_at(status, &["currentPodHash"]) {
        "Healthy".into()
    } else if status.is_null() {
        "Unknown".into()
    } else {
        "Progressing".into()
    }
}
