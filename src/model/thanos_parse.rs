//! Parsing of the `data` objects of `/api/v1/stores`, `/api/v1/status/buildinfo`,
//! `/api/v1/targets` and `/api/v1/alerts`: lenient, a field of the wrong type is left out,
//! a missing list is an error message, never a panic.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Alert, BuildInfo, DownTarget, TargetsSummary, ThanosStore};

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `/api/v1/stores` data: `{"sidecar": [{name, lastCheck, lastError, labelSets, minTime,
/// maxTime}], "store": [...]}`, sorted by component then name.
pub fn parse_stores(data: &Value) -> Result<Vec<ThanosStore>, String> {
    let map = data
        .as_object()
        .ok_or("stores: `data` is not an object keyed by store type")?;
    let mut out = Vec::new();
    for (component, list) in map {
        for s in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            let Some(name) = text(s, "name") else {
                continue;
            };
            out.push(ThanosStore {
                component: component.clone(),
                name,
                last_check: text(s, "lastCheck"),
                last_error: text(s, "lastError"),
                label_sets: s
                    .get("labelSets")
                    .and_then(Value::as_array)
                    .map(|sets| sets.iter().map(|l| string_map(Some(l))).collect())
                    .unwrap_or_default(),
                min_time_ms: s.get("minTime").and_then(Value::as_i64).unwrap_or(i64::MIN),
                max_time_ms: s.get("maxTime").and_then(Value::as_i64).unwrap_or(i64::MAX),
            });
        }
    }
    out.sort_by(|a, b| (&a.component, &a.name).cmp(&(&b.component, &b.name)));
    Ok(out)
}

/// `/api/v1/status/buildinfo` data.
pub fn parse_build_info(data: &Value) -> Result<BuildInfo, String> {
    Ok(BuildInfo {
        version: text(data, "version").ok_or("buildinfo: no version")?,
        revision: text(data, "revision"),
        branch: text(data, "branch"),
        go_version: text(data, "goVersion"),
    })
}

/// `/api/v1/targets` data: all active targets, the ones whose health is `down` listed.
pub fn parse_targets(data: &Value) -> Result<TargetsSummary, String> {
    let active = data
        .get("activeTargets")
        .and_then(Value::as_array)
        .ok_or("targets: no activeTargets list")?;
    let down = active
        .iter()
        .filter(|t| t.get("health").and_then(Value::as_str) == Some("down"))
        .map(|t| {
            let labels = string_map(t.get("labels"));
            DownTarget {
                job: labels
                    .get("job")
                    .cloned()
                    .or_else(|| text(t, "scrapePool"))
                    .unwrap_or_default(),
                instance: labels.get("instance").cloned().unwrap_or_default(),
                scrape_url: text(t, "scrapeUrl").unwrap_or_default(),
                last_error: text(t, "lastError").unwrap_or_default(),
            }
        })
        .collect();
    Ok(TargetsSummary {
        total: active.len(),
        down,
    })
}

/// `/api/v1/alerts` data: `{"alerts": [{labels, annotations, state, activeAt, value}]}`.
pub fn parse_alerts(data: &Value) -> Result<Vec<Alert>, String> {
    let list = data
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or("alerts: no alerts list")?;
    Ok(list
        .iter()
        .filter_map(|a| {
            let labels = string_map(a.get("labels"));
            let annotations = string_map(a.get("annotations"));
            Some(Alert {
                name: labels.get("alertname")?.clone(),
                severity: labels.get("severity").cloned().unwrap_or_default(),
                firing: a.get("state").and_then(Value::as_str) == Some("firing"),
                active_at: text(a, "activeAt"),
                summary: annotations
                    .get("summary")
                    .or_else(|| annotations.get("description"))
                    .cloned(),
                labels,
            })
        })
        .collect())
}
