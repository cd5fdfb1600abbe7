//! Reading fields of untyped Kubernetes objects (`DynamicObject::data`) without trusting
//! them: every accessor answers `None` for a missing field or one of the wrong type, so
//! a malformed CR degrades to "-" in a pane instead of a panic. Shared by the Ceph,
//! Velero and Rollouts models (it lives here only because `model/mod.rs` registers
//! pane modules; it has no Ceph knowledge).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::api::DynamicObject;
use serde_json::Value;

use crate::lab::civil::parse_rfc3339_millis;

/// The value at `path` (object keys).
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

/// A non-empty string at `path`, owned.
pub fn string_at(v: &Value, path: &[&str]) -> Option<String> {
    str_at(v, path).filter(|s| !s.is_empty()).map(String::from)
}

/// A non-negative integer; also accepts a numeric string (Argo writes
/// `observedGeneration` as a string) and a float with no fraction.
pub fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    match at(v, path)? {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn bool_at(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path)?.as_bool()
}

/// The array at `path`, or an empty slice.
pub fn array_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A `metav1.Time` (RFC 3339) at `path`.
pub fn time_at(v: &Value, path: &[&str]) -> Option<SystemTime> {
    parse_time(str_at(v, path)?)
}

pub fn parse_time(text: &str) -> Option<SystemTime> {
    let millis = parse_rfc3339_millis(text)?;
    let d = Duration::from_millis(millis.unsigned_abs());
    if millis >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

/// How long before `now` `then` was; zero for a time in the future (clock skew).
pub fn age(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

/// "42s", "12m", "5h", "3d": compact durations for messages and narrow columns.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Unix seconds of a time (negative before 1970).
pub fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

pub fn from_unix(secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

pub fn name(obj: &DynamicObject) -> String {
    obj.metadata.name.clone().unwrap_or_default()
}

pub fn namespace(obj: &DynamicObject) -> String {
    obj.metadata.namespace.clone().unwrap_or_default()
}

pub fn label<'a>(obj: &'a DynamicObject, key: &str) -> Option<&'a str> {
    obj.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

pub fn annotation<'a>(obj: &'a DynamicObject, key: &str) -> Option<&'a str> {
    obj.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

pub fn created(obj: &DynamicObject) -> Option<SystemTime> {
    let t = obj.metadata.creation_timestamp.as_ref()?;
    Some(from_unix(t.0.as_second()))
}

/// Whether `apiVersion`/`kind` say this is a `group/…` `kind`; objects without type
/// information (some watch payloads) are accepted.
pub fn is_kind(obj: &DynamicObject, group: &str, kind: &str) -> bool {
    match &obj.types {
        None => true,
        Some(t) => t.kind == kind && t.api_version.split('/').next() == Some(group),
    }
}

/// One `status.conditions[]` entry, as Kubernetes-style CRs write them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Condition {
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// Seconds since `lastTransitionTime`.
    pub since_secs: Option<u64>,
}

impl Condition {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

pub fn conditions(status: &Value, now: SystemTime) -> Vec<Condition> {
    array_at(status, &["conditions"])
        .iter()
        .filter_map(|c| {
            Some(Condition {
                kind: string_at(c, &["type"])?,
                status: string_at(c, &["status"]).unwrap_or_else(|| "Unknown".into()),
                reason: string_at(c, &["reason"]),
                message: string_at(c, &["message"]),
                since_secs: time_at(c, &["lastTransitionTime"]).map(|t| age(now, t).as_secs()),
            })
        })
        .collect()
}

/// The lab's objects of `kind` in `scenario`, as the kube source would hand them over.
#[cfg(test)]
pub fn lab_objects(
    scenario: crate::lab::topology::Scenario,
    kind: &str,
    now: SystemTime,
) -> Vec<DynamicObject> {
    use crate::lab::topology::{Faults, LabSpec, Topology};
    let spec = LabSpec {
        scenario,
        ..LabSpec::default()
    };
    let topo = Topology::generate(&spec);
    let faults = Faults::for_scenario(scenario, &topo);
    crate::lab::world::objects(&topo, &spec, &faults, now)
        .into_iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some(kind))
        .filter_map(|o| serde_json::from_value(o).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accessors_never_panic_on_wrong_types() {
        let v = json!({"a": {"b": "x", "n": "12", "f": 3.0, "neg": -1, "t": "2024-02-29T00:00:00Z"}, "arr": 5});
        assert_eq!(str_at(&v, &["a", "b"]), Some("x"));
        assert_eq!(u64_at(&v, &["a", "n"]), Some(12));
        assert_eq!(u64_at(&v, &["a", "f"]), Some(3));
        assert_eq!(u64_at(&v, &["a", "neg"]), None);
        assert_eq!(u64_at(&v, &["a", "b"]), None);
        assert_eq!(str_at(&v, &["a", "b", "c"]), None);
        assert!(array_at(&v, &["arr"]).is_empty());
        assert_eq!(
            time_at(&v, &["a", "t"]).map(unix),
            Some(1_709_164_800),
            "leap day"
        );
        assert_eq!(time_at(&v, &["a", "n"]), None);
        assert!(conditions(&json!({"conditions": [1, {"status": "True"}]}), UNIX_EPOCH).is_empty());
    }
}
