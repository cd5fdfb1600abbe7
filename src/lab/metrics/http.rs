//! The HTTP API, shaped like Prometheus' `/api/v1` (and Thanos Query's `/api/v1/stores`):
//! `{"status":"success","data":...}`, or `{"status":"error","errorType":...,"error":...}`
//! with 400 for bad parameters. Parameters come from the URL and, for POST, from a
//! form-encoded body (the body wins), as Go's `Request.FormValue` reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::clock;
use super::json::{self, AlertJson, QueryData, TargetJson, TargetsJson};
use super::promql::{self, Labels};
use super::query::{self, Outcome, Plan};
use super::series::scrape::targets;
use super::series::{At, Model, RAW_FAMILIES, Sample, raw_family};
use super::status;
use super::timeline::Timeline;

/// Prometheus refuses range queries with more points per series than this.
const MAX_POINTS: i64 = 11_000;
/// Stand-in for `--query.max-samples`.
const MAX_SAMPLES: usize = 5_000_000;

#[derive(Clone)]
pub struct ApiState {
    pub model: Arc<Model>,
    pub timeline: Arc<RwLock<Timeline>>,
}

impl ApiState {
    /// Runs `f` on the lab at `t` under the timeline's read lock.
    fn at<R>(&self, t: i64, f: impl FnOnce(&At) -> R) -> R {
        let timeline = self.timeline.read().unwrap_or_else(|e| e.into_inner());
        f(&At::new(&self.model, &timeline, t))
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/query", get(instant_query).post(instant_query))
        .route("/api/v1/query_range", get(range_query).post(range_query))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(label_names).post(label_names))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/targets", get(scrape_targets))
        .route("/api/v1/stores", get(stores))
        .route("/api/v1/status/buildinfo", get(build_info))
        .route("/-/healthy", get(|| async { "Thanos Query is Healthy.\n" }))
        .route("/-/ready", get(|| async { "Thanos Query is Ready.\n" }))
        .with_state(state)
}

/// An API failure: HTTP status, Prometheus `errorType`, message.
struct ApiError(StatusCode, &'static str, String);

impl ApiError {
    fn bad_data(message: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, "bad_data", message.into())
    }

    fn param(name: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError::bad_data(format!("invalid parameter {name:?}: {message}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json::error(self.0, self.1, &self.2)
    }
}

type ApiResult = Result<Response, ApiError>;

/// Request parameters, body first.
struct Params(Vec<(String, String)>);

impl Params {
    fn read(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Params, ApiError> {
        let mut pairs = Vec::new();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if *method == Method::POST && is_form {
            pairs.extend(parse_form(&String::from_utf8_lossy(body)).map_err(ApiError::bad_data)?);
        }
        pairs.extend(parse_form(uri.query().unwrap_or("")).map_err(ApiError::bad_data)?);
        Ok(Params(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter, or `default` when absent or empty.
    fn time(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key) {
            Some(v) if !v.is_empty() => clock::parse_time(v).map_err(|e| ApiError::param(key, e)),
            _ => Ok(default),
        }
    }

    /// `timeout` is checked, then ignored: the lab answers at once.
    fn check_timeout(&self) -> Result<(), ApiError> {
        match self.get("timeout") {
            Some(v) if !v.is_empty() => clock::parse_duration(v)
                .map(drop)
                .map_err(|e| ApiError::param("timeout", e)),
            _ => Ok(()),
        }
    }

    fn plan(&self) -> Result<Plan, ApiError> {
        Plan::of(self.get("query").unwrap_or("")).map_err(|e| ApiError::param("query", e))
    }
}

/// `a=1&b=x+y%21` as Go's `url.ParseQuery` reads it: `+` is a space, `%XX` a byte, and a
/// bad escape or a `;` separator is an error.
fn parse_form(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for part in text.split('&').filter(|p| !p.is_empty()) {
        if part.contains(';') {
            return Err("invalid semicolon separator in query".into());
        }
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((unescape(key)?, unescape(value)?));
    }
    Ok(pairs)
}

fn unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3).unwrap_or("");
                let byte = u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2 && hex.bytes().all(|c| c.is_ascii_hexdigit()))
                    .ok_or_else(|| {
                        let bad: String = text[i..].chars().take(3).collect();
                        format!("invalid URL escape {bad:?}")
                    })?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn instant_query(
    State(state): State<ApiState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let params = Params::read(&method, &uri, &headers, &body)?;
    let t = params.time("time", clock::now_ms())?;
    params.check_timeout()?;
    let plan = params.plan()?;
    if let Some(resolution) = params.get("max_source_resolution")
        && t < status::oldest_at_resolution(state.model.started, resolution)
    {
        // Thanos Query with `max_source_resolution`: no block that old at that resolution.
        return Ok(json::success(QueryData::vector(t, &[])));
    }
    let data = state.at(t, |at| match query::instant(&plan, at) {
        Outcome::Vector(samples) => QueryData::vector(t, &samples),
        Outcome::Matrix(series) => QueryData::matrix(&series),
        Outcome::Scalar(v) => QueryData::scalar(t, v),
    });
    Ok(json::success(data))
}

async fn range_query(
    State(state): State<ApiState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let params = Params::read(&method, &uri, &headers, &body)?;
    let time = |key: &str| {
        clock::parse_time(params.get(key).unwrap_or("")).map_err(|e| ApiError::param(key, e))
    };
    let (start, end) = (time("start")?, time("end")?);
    if end < start {
        return Err(ApiError::param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = clock::parse_duration(params.get("step").unwrap_or(""))
        .map_err(|e| ApiError::param("step", e))?;
    if step <= 0 {
        return Err(ApiError::param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    params.check_timeout()?;
    let plan = params.plan()?;
    if plan.is_range_vector() {
        return Err(ApiError::param(
            "query",
            "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector",
        ));
    }
    let points = ((end - start) / step + 1) as usize;
    // Long ranges take a while; keep them off the async workers.
    let evaluate = move || {
        state.at(end, |at| {
            if query::vector(&plan, at).len().saturating_mul(points) > MAX_SAMPLES {
                return Err(ApiError(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "execution",
                    "query processing would load too many samples into memory in query execution"
                        .into(),
                ));
            }
            let series = query::range(&plan, at, start, end, step);
            Ok(json::success(QueryData::matrix(&series)))
        })
    };
    tokio::task::spawn_blocking(evaluate)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
}

/// Every raw series now, for the metadata endpoints.
fn all_series(at: &At) -> Vec<Sample> {
    RAW_FAMILIES
        .iter()
        .filter_map(|f| raw_family(at, f))
        .flatten()
        .collect()
}

async fn series(
    State(state): State<ApiState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let params = Params::read(&method, &uri, &headers, &body)?;
    let matches = params.all("match[]");
    if matches.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let selectors = matches
        .iter()
        .map(|m| match promql::parse_selector(m) {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(ApiError::param("match[]", e)),
            None => Err(ApiError::param(
                "match[]",
                format!("1:1: parse error: {m:?} is not a series selector"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let end = params.time("end", clock::now_ms())?;
    params.time("start", end)?;
    let found: BTreeSet<Labels> = state.at(end, |at| {
        selectors
            .iter()
            .flat_map(|s| query::select(at, s))
            .map(|s| s.labels)
            .collect()
    });
    Ok(json::success(found))
}

async fn label_names(State(state): State<ApiState>) -> ApiResult {
    let names: BTreeSet<String> = state.at(clock::now_ms(), |at| {
        all_series(at)
            .into_iter()
            .flat_map(|s| s.labels.into_keys())
            .collect()
    });
    Ok(json::success(names))
}

async fn label_values(State(state): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    let valid = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !valid {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let values: BTreeSet<String> = state.at(clock::now_ms(), |at| {
        all_series(at)
            .into_iter()
            .filter_map(|mut s| s.labels.remove(&name))
            .collect()
    });
    Ok(json::success(values))
}

async fn alerts(State(state): State<ApiState>) -> ApiResult {
    let alerts = state.at(clock::now_ms(), status::alerts);
    let list: Vec<AlertJson> = alerts.iter().map(AlertJson::from).collect();
    Ok(json::success(BTreeMap::from([("alerts", list)])))
}

async fn scrape_targets(State(state): State<ApiState>, uri: Uri) -> ApiResult {
    let params = Params::read(&Method::GET, &uri, &HeaderMap::new(), &Bytes::new())?;
    let wanted = params.get("state").unwrap_or("any").to_ascii_lowercase();
    let pool = params.get("scrapePool").filter(|p| !p.is_empty());
    let all = state.at(clock::now_ms(), targets);
    // The lab drops no targets, so `state=dropped` lists none.
    let active_targets = all
        .iter()
        .filter(|t| wanted != "dropped" && pool.is_none_or(|p| p == t.scrape_pool))
        .map(TargetJson::from)
        .collect();
    Ok(json::success(TargetsJson {
        active_targets,
        dropped_targets: Vec::new(),
        dropped_target_counts: all.iter().map(|t| (t.scrape_pool.as_str(), 0)).collect(),
    }))
}

async fn stores(State(state): State<ApiState>) -> ApiResult {
    Ok(json::success(state.at(clock::now_ms(), status::stores)))
}

async fn build_info() -> ApiResult {
    Ok(json::success(status::build_info()))
}

#[cfg(test)]
mod tests {
    use super::parse_form;

    #[test]
    fn forms_decode_like_go() {
        let pairs = parse_form("query=up%7Bjob%3D%22a%22%7D+%3D%3D+0&time=&match[]=x").unwrap();
        assert_eq!(pairs[0], ("query".into(), r#"up{job="a"} == 0"#.into()));
        assert_eq!(pairs[1], ("time".into(), String::new()));
        assert_eq!(pairs[2], ("match[]".into(), "x".into()));
        assert!(parse_form("query=%zz").is_err());
        assert!(parse_form("query=%4").is_err());
        assert!(parse_form("a=1;b=2").is_err());
        assert_eq!(parse_form("q=%C3%A9").unwrap()[0].1, "é");
    }
}
