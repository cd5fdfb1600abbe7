//! The JSON shapes of the Prometheus HTTP API, field order included:
//! `{"status":"success","data":...}` / `{"status":"error","errorType":...,"error":...}`,
//! samples as `[unix seconds, "value"]`, alerts and targets as Prometheus lists them.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::clock::{duration_text, rfc3339};
use super::promql::Labels;
use super::query::Points;
use super::series::SCRAPE_INTERVAL;
use super::series::Sample;
use super::series::scrape::{SCRAPE_TIMEOUT, ScrapeTarget};
use super::status::ActiveAlert;

#[derive(Serialize)]
struct Success<T> {
    status: &'static str,
    data: T,
}

#[derive(Serialize)]
struct Failure<'a> {
    status: &'static str,
    #[serde(rename = "errorType")]
    error_type: &'a str,
    error: &'a str,
}

fn json_response(status: StatusCode, body: serde_json::Result<String>) -> Response {
    match body {
        Ok(text) => (status, [(header::CONTENT_TYPE, "application/json")], text).into_response(),
        // Only non-string map keys fail to serialise, and the API has none.
        Err(_) => status.into_response(),
    }
}

/// `200 {"status":"success","data":data}`.
pub fn success<T: Serialize>(data: T) -> Response {
    let body = serde_json::to_string(&Success {
        status: "success",
        data,
    });
    json_response(StatusCode::OK, body)
}

/// `{"status":"error","errorType":error_type,"error":message}` with `status`.
pub fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::to_string(&Failure {
        status: "error",
        error_type,
        error: message,
    });
    json_response(status, body)
}

/// An instant or range query's `data`.
#[derive(Serialize)]
pub struct QueryData {
    #[serde(rename = "resultType")]
    result_type: &'static str,
    result: Value,
}

impl QueryData {
    pub fn vector(t: i64, samples: &[Sample]) -> QueryData {
        let result = samples
            .iter()
            .map(|s| serde_json::json!({"metric": s.labels, "value": point(t, s.value)}))
            .collect();
        QueryData {
            result_type: "vector",
            result: Value::Array(result),
        }
    }

    pub fn matrix(series: &[(Labels, Points)]) -> QueryData {
        let result = series
            .iter()
            .map(|(labels, points)| {
                let values: Vec<Value> = points.iter().map(|(t, v)| point(*t, *v)).collect();
                serde_json::json!({"metric": labels, "values": values})
            })
            .collect();
        QueryData {
            result_type: "matrix",
            result: Value::Array(result),
        }
    }

    pub fn scalar(t: i64, value: f64) -> QueryData {
        QueryData {
            result_type: "scalar",
            result: point(t, value),
        }
    }
}

/// `[1700000000.5, "0.25"]`: seconds as a JSON number with millisecond precision.
pub fn point(t: i64, value: f64) -> Value {
    let time = if t % 1000 == 0 {
        Value::from(t / 1000)
    } else {
        Value::from(t as f64 / 1000.0)
    };
    Value::Array(vec![time, Value::from(format_value(value))])
}

/// A sample value as Prometheus prints it (Go's `FormatFloat(v, 'f', -1, 64)`).
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{value}")
    }
}

/// An alert value as Prometheus prints it (Go's `FormatFloat(v, 'e', -1, 64)`).
pub fn format_alert_value(value: f64) -> String {
    if !value.is_finite() {
        return format_value(value);
    }
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// One entry of `/api/v1/alerts`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertJson<'a> {
    labels: &'a Labels,
    annotations: &'a Labels,
    state: &'static str,
    active_at: String,
    value: String,
}

impl<'a> From<&'a ActiveAlert> for AlertJson<'a> {
    fn from(a: &'a ActiveAlert) -> Self {
        AlertJson {
            labels: &a.labels,
            annotations: &a.annotations,
            state: if a.firing { "firing" } else { "pending" },
            active_at: rfc3339(a.active_at),
            value: format_alert_value(a.value),
        }
    }
}

/// One entry of `/api/v1/targets`' `activeTargets`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetJson<'a> {
    discovered_labels: &'a Labels,
    labels: &'a Labels,
    scrape_pool: &'a str,
    scrape_url: &'a str,
    global_url: &'a str,
    last_error: &'a str,
    last_scrape: String,
    last_scrape_duration: f64,
    health: &'static str,
    scrape_interval: String,
    scrape_timeout: String,
}

impl<'a> From<&'a ScrapeTarget> for TargetJson<'a> {
    fn from(t: &'a ScrapeTarget) -> Self {
        TargetJson {
            discovered_labels: &t.discovered_labels,
            labels: &t.labels,
            scrape_pool: &t.scrape_pool,
            scrape_url: &t.scrape_url,
            global_url: &t.scrape_url,
            last_error: &t.last_error,
            last_scrape: rfc3339(t.last_scrape),
            last_scrape_duration: t.last_scrape_duration,
            health: if t.up { "up" } else { "down" },
            scrape_interval: duration_text(SCRAPE_INTERVAL),
            scrape_timeout: duration_text(SCRAPE_TIMEOUT),
        }
    }
}

/// `/api/v1/targets` data.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetsJson<'a> {
    pub active_targets: Vec<TargetJson<'a>>,
    pub dropped_targets: Vec<Value>,
    pub dropped_target_counts: std::collections::BTreeMap<&'a str, u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_like_go() {
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(5.0), "5");
        assert_eq!(format_value(1e-7), "0.0000001");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_alert_value(1.0), "1e+00");
        assert_eq!(format_alert_value(33.5), "3.35e+01");
        assert_eq!(format_alert_value(0.08), "8e-02");
        assert_eq!(format_alert_value(0.0), "0e+00");
    }

    #[test]
    fn timestamps_keep_millisecond_precision() {
        assert_eq!(
            point(1_700_000_000_000, 1.0).to_string(),
            r#"[1700000000,"1"]"#
        );
        assert_eq!(
            point(1_700_000_000_781, 1.0).to_string(),
            r#"[1700000000.781,"1"]"#
        );
    }

    #[test]
    fn envelopes_keep_prometheus_field_order() {
        let data = QueryData::scalar(1_000, 2.0);
        let text = serde_json::to_string(&Success {
            status: "success",
            data,
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#
        );
    }
}
