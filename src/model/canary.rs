//! The canary abort advisory: the canary's error rate per Rollout, from a PromQL query
//! (by default the KPI catalogue's `canary_error_rate`, Istio's 5xx ratio per destination
//! service; both query and threshold follow the profile's
//! `[clusters.X.kpis.canary_error_rate]` `promql` and `crit`, default 5 %), matched to
//! each Rollout's `canaryService`. Above the threshold, a Rollout that is mid-update and
//! not aborted gets an [`AbortAdvisory`] with the evidence: value, query, time. Pure.

use std::collections::BTreeMap;
use std::time::SystemTime;

use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;

use super::finding::Finding;
use super::rollouts::{CanaryErrorRate, PANE, RolloutsView};

/// The default threshold: the design's "canary error rate < 5 %".
pub const DEFAULT_THRESHOLD: f64 = 0.05;

/// One series of the error-rate query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesValue {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One round of the canary source.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryObservation {
    pub observed_at: SystemTime,
    pub query: String,
    pub threshold: f64,
    /// The series, or why the query failed.
    pub result: Result<Vec<SeriesValue>, String>,
}

/// The advisory's state in the cockpit: the latest observation, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CanaryState {
    pub last: Option<CanaryObservation>,
}

/// "Abort this canary": the evidence an engineer needs to decide.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbortAdvisory {
    /// 0.0..=1.0
    pub error_rate: f64,
    pub threshold: f64,
    /// The PromQL that measured it.
    pub query: String,
    /// When it was measured (RFC 3339, UTC).
    pub measured_at: String,
    /// The series it came from (`destination_service_name`, ...).
    pub series: BTreeMap<String, String>,
}

impl AbortAdvisory {
    /// `canary 5xx 8.1 % > 5 %`.
    pub fn headline(&self) -> String {
        format!(
            "canary 5xx {:.1} % > {} %",
            self.error_rate * 100.0,
            trim(self.threshold * 100.0)
        )
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn label<'a>(l: &'a BTreeMap<String, String>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| l.get(*k)).map(String::as_str)
}

/// The series of `rollout` in `series`: one labelled with its namespace and either its
/// name (`rollout`) or its canary Service (`destination_service_name`, `service`).
fn series_of<'a>(rollout: &DynamicObject, series: &'a [SeriesValue]) -> Option<&'a SeriesValue> {
    let ns = rollout.metadata.namespace.as_deref()?;
    let name = rollout.metadata.name.as_deref()?;
    let canary_service = rollout
        .data
        .pointer("/spec/strategy/canary/canaryService")
        .and_then(Value::as_str);
    series.iter().find(|s| {
        let in_ns = label(
            &s.labels,
            &[
                "destination_service_namespace",
                "namespace",
                "exported_namespace",
            ],
        ) == Some(ns);
        let by_name = label(&s.labels, &["rollout"]) == Some(name);
        let by_service = canary_service.is_some()
            && label(&s.labels, &["destination_service_name", "service"]) == canary_service;
        in_ns && (by_name || by_service)
    })
}

/// Each Rollout's canary error rate from the observation.
pub fn error_rates(rollouts: &[DynamicObject], obs: &CanaryObservation) -> Vec<CanaryErrorRate> {
    let Ok(series) = &obs.result else {
        return Vec::new();
    };
    rollouts
        .iter()
        .filter_map(|ro| {
            let s = series_of(ro, series)?;
            Some(CanaryErrorRate {
                namespace: ro.metadata.namespace.clone()?,
                rollout: ro.metadata.name.clone()?,
                error_rate: s.value,
                measured_at: obs.observed_at,
            })
        })
        .collect()
}

/// Sets each row's advisory: error rate above the threshold, the rollout mid-update
/// (a canary at a step, not Healthy) and not aborted yet. Adds a finding per advisory.
pub fn advise(
    view: &mut RolloutsView,
    rollouts: &[DynamicObject],
    obs: Option<&CanaryObservation>,
) {
    let Some(obs) = obs else {
        return;
    };
    let Ok(series) = &obs.result else {
        return;
    };
    let measured_at = crate::lab::civil::format_rfc3339(
        obs.observed_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0)),
    );
    for row in &mut view.rollouts {
        let Some(ro) = rollouts.iter().find(|o| {
            o.metadata.namespace.as_deref() == Some(row.namespace.as_str())
                && o.metadata.name.as_deref() == Some(row.name.as_str())
        }) else {
            continue;
        };
        let Some(s) = series_of(ro, series) else {
            continue;
        };
        row.canary_error_rate = Some(s.value);
        let mid_update = row.strategy == "Canary" && row.phase != "Healthy" && !row.aborted;
        if s.value.is_finite() && s.value > obs.threshold && mid_update {
            let advisory = AbortAdvisory {
                error_rate: s.value,
                threshold: obs.threshold,
                query: obs.query.clone(),
                measured_at: measured_at.clone(),
                series: s.labels.clone(),
            };
            view.findings.insert(
                0,
                Finding::crit(
                    PANE,
                    format!(
                        "Rollout {}/{}: {} — abort advised",
                        row.namespace,
                        row.name,
                        advisory.headline()
                    ),
                ),
            );
            row.abort_advisory = Some(advisory);
        }
    }
}

impl super::status::StatusReport {
    /// The rollouts of `kha status --json` with their canary error rates and advisories.
    pub fn with_canary(
        mut self,
        kube: &super::kube::KubeState,
        canary: Option<&CanaryObservation>,
        now: SystemTime,
    ) -> Self {
        if canary.is_none() {
            return self;
        }
        let view = super::custom::rollouts_view_with(kube, canary, now);
        let present = self.rollouts.present;
        self.rollouts = super::rollouts::RolloutsReport::from_view(&view);
        self.rollouts.present &= present;
        if self.rollouts.present {
            self.overall = self.overall.max(self.rollouts.status);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn rollout(phase: &str, abort: bool) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"namespace": "shop", "name": "checkout"},
            "spec": {"strategy": {"canary": {"canaryService": "checkout-canary", "steps": [{"setWeight": 10}, {"pause": {}}]}}},
            "status": {"phase": phase, "abort": abort, "currentStepIndex": 1,
                       "currentPodHash": "new", "stableRS": "old"}
        }))
        .unwrap()
    }

    fn obs(rate: f64) -> CanaryObservation {
        let series = |svc: &str, v: f64| SeriesValue {
            labels: [
                ("destination_service_namespace", "shop"),
                ("destination_service_name", svc),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            value: v,
        };
        CanaryObservation {
            observed_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000),
            query: "sum(rate(istio_requests_total[5m]))".into(),
            threshold: DEFAULT_THRESHOLD,
            result: Ok(vec![
                series("checkout", 0.003),
                series("checkout-canary", rate),
            ]),
        }
    }

    fn view_of(ro: &DynamicObject, o: &CanaryObservation) -> RolloutsView {
        let mut v =
            crate::model::rollouts::derive(std::slice::from_ref(ro), &[], SystemTime::UNIX_EPOCH);
        advise(&mut v, std::slice::from_ref(ro), Some(o));
        v
    }

    #[test]
    fn a_bad_canary_gets_an_advisory_with_its_evidence() {
        let ro = rollout("Paused", false);
        let v = view_of(&ro, &obs(0.081));
        let row = &v.rollouts[0];
        assert_eq!(row.canary_error_rate, Some(0.081));
        let a = row.abort_advisory.as_ref().expect("advised");
        assert_eq!(a.headline(), "canary 5xx 8.1 % > 5 %");
        assert_eq!(a.measured_at, "2026-11-30T00:53:20Z");
        assert!(a.query.contains("istio_requests_total"));
        assert_eq!(a.series["destination_service_name"], "checkout-canary");
        assert!(v.findings[0].message.contains("abort advised"));
        assert_eq!(error_rates(std::slice::from_ref(&ro), &obs(0.081)).len(), 1);
    }

    #[test]
    fn no_advisory_below_the_threshold_once_aborted_or_without_data() {
        let ro = rollout("Paused", false);
        assert!(
            view_of(&ro, &obs(0.004)).rollouts[0]
                .abort_advisory
                .is_none()
        );
        assert!(
            view_of(&ro, &obs(0.05)).rollouts[0]
                .abort_advisory
                .is_none()
        );
        let aborted = rollout("Degraded", true);
        assert!(
            view_of(&aborted, &obs(0.2)).rollouts[0]
                .abort_advisory
                .is_none()
        );
        let mut failed = obs(0.2);
        failed.result = Err("timeout".into());
        assert!(view_of(&ro, &failed).rollouts[0].abort_advisory.is_none());
        assert!(
            view_of(&ro, &obs(f64::NAN)).rollouts[0]
                .abort_advisory
                .is_none()
        );
    }
}
