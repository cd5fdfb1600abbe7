//! The metrics-status source: what Thanos Query (or Prometheus) says about itself, for the
//! Thanos / metrics pane. `/api/v1/stores` (404 on a plain Prometheus: "not Thanos"),
//! `/api/v1/status/buildinfo`, `/api/v1/targets`, `/api/v1/alerts`, all at once, each
//! under the HTTP client's timeout; then, on Thanos, one query per resolution asking
//! whether data reach back as far as the retention promises. Same client, TLS and
//! credentials as the KPI source.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, eyre};
use futures::future::join_all;
use prometheus_http_query::Client;
use prometheus_http_query::response::Data;
use serde_json::Value;
use tokio::sync::mpsc;

use super::prometheus::{PrometheusSourceConfig, describe, http_client, unix_now};
use crate::model::Msg;
use crate::model::catalogue::default_catalogue;
use crate::model::ceph::metrics as ceph_metrics;
use crate::model::exporters::ExporterObservation;
use crate::model::gpu::metrics::{DcgmSeries, Sample, devices};
use crate::model::thanos::{
    self, Fetched, MetricsObservation, Reach, Resolution, RetentionCheck, RetentionSettings,
    StoresReading,
};
use crate::model::velero::metrics as velero_metrics;

/// The query whose answer at `now - retention + 1 day`, at one resolution, says whether
/// data reach back that far. `up` exists wherever anything is scraped; the 3 h window
/// holds several samples even at 1 h resolution (an instant selector's 5 m lookback would
/// miss downsampled data).
pub const REACH_QUERY: &str = "count(count_over_time(up[3h]))";
/// How far inside the promised window the check looks.
const REACH_MARGIN: i64 = 86_400;

const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Bodies larger than this are refused (a 5,000-node cluster's targets fit easily).
const MAX_BODY: usize = 64 << 20;

pub struct MetricsStatusProber {
    url: String,
    http: reqwest::Client,
    client: Client,
    retention: RetentionSettings,
    interval: Duration,
    /// Rounds in a row in which nothing answered.
    failures: AtomicU32,
}

/// Why a request gave no data.
enum FetchError {
    /// No HTTP answer: refused, timed out, TLS.
    Transport(String),
    /// HTTP 404: the endpoint does not exist here.
    NotFound,
    Other(String),
}

impl FetchError {
    fn text(&self, path: &str) -> String {
        match self {
            FetchError::Transport(e) | FetchError::Other(e) => e.clone(),
            FetchError::NotFound => format!("{path}: 404 not found"),
        }
    }
}

impl MetricsStatusProber {
    /// Fails only on local problems (bad URL, unreadable CA, unusable credentials).
    pub fn new(config: &PrometheusSourceConfig, retention: RetentionSettings) -> Result<Self> {
        let http = http_client(config)?;
        let client = Client::from(http.clone(), &config.url)
            .map_err(|e| eyre!("Prometheus URL {:?} is not usable: {e}", config.url))?;
        Ok(MetricsStatusProber {
            url: config.url.trim_end_matches('/').to_string(),
            http,
            client,
            retention,
            interval: config.interval,
            failures: AtomicU32::new(0),
        })
    }

    /// GET `path` and unwrap Prometheus' `{"status":"success","data":...}` envelope.
    async fn data(&self, path: &str) -> Result<Value, FetchError> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .map_err(|e| FetchError::Transport(error_chain(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::NotFound);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchError::Transport(error_chain(&e)))?;
        if body.len() > MAX_BODY {
            return Err(FetchError::Other(format!(
                "{path}: answer of {} bytes is too large",
                body.len()
            )));
        }
        let json: Value = serde_json::from_slice(&body).map_err(|e| {
            FetchError::Other(format!("{path}: HTTP {status}, not Prometheus JSON: {e}"))
        })?;
        match json.get("status").and_then(Value::as_str) {
            Some("success") => Ok(json.get("data").cloned().unwrap_or(Value::Null)),
            _ => Err(FetchError::Other(format!(
                "{path}: HTTP {status}: {}",
                json.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no data in the answer")
            ))),
        }
    }

    async fn part<T>(&self, path: &str, parse: fn(&Value) -> Result<T, String>) -> Part<T> {
        match self.data(path).await {
            Ok(data) => Part {
                transport_failed: false,
                not_found: false,
                fetched: match parse(&data) {
                    Ok(value) => Fetched::Read { value },
                    Err(error) => Fetched::Failed { error },
                },
            },
            Err(e) => Part {
                transport_failed: matches!(e, FetchError::Transport(_)),
                not_found: matches!(e, FetchError::NotFound),
                fetched: Fetched::Failed {
                    error: e.text(path),
                },
            },
        }
    }

    /// Does data at `resolution` (or finer) exist `expected` ago (minus a day)?
    async fn reach(&self, resolution: Resolution, expected: Duration) -> RetentionCheck {
        let expected_secs = expected.as_secs();
        let reach = if expected_secs == 0 {
            Reach::NotChecked
        } else {
            let at =
                unix_now() - i64::try_from(expected_secs).unwrap_or(i64::MAX / 2) + REACH_MARGIN;
            match self
                .client
                .query(REACH_QUERY)
                .at(at)
                .query("max_source_resolution", resolution.max_source_resolution())
                .get()
                .await
            {
                Ok(answer) => {
                    let some = match answer.data() {
                        Data::Vector(v) => v.iter().any(|s| s.sample().value() > 0.0),
                        Data::Scalar(s) => s.value() > 0.0,
                        Data::Matrix(m) => !m.is_empty(),
                    };
                    if some {
                        Reach::Reaches
                    } else {
                        Reach::FallsShort
                    }
                }
                Err(e) => Reach::Failed {
                    error: describe(&e),
                },
            }
        };
        RetentionCheck {
            resolution,
            expected_secs,
            reach,
        }
    }

    /// One round: the four status endpoints at once, then (on Thanos) the retention checks.
    pub async fn probe(&self) -> MetricsObservation {
        let (stores, build, targets, alerts) = tokio::join!(
            self.part("/api/v1/stores", thanos::parse_stores),
            self.part("/api/v1/status/buildinfo", thanos::parse_build_info),
            self.part("/api/v1/targets", thanos::parse_targets),
            self.part("/api/v1/alerts", thanos::parse_alerts),
        );
        let all_down = stores.transport_failed
            && build.transport_failed
            && targets.transport_failed
            && alerts.transport_failed;
        let unreachable = all_down.then(|| stores.fetched.error().unwrap_or("").to_string());
        if all_down {
            self.failures.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failures.store(0, Ordering::Relaxed);
        }
        let stores = match (stores.not_found, stores.fetched) {
            (true, _) => StoresReading::NotThanos,
            (false, Fetched::Read { value }) => StoresReading::Stores { stores: value },
            (false, Fetched::Failed { error }) => StoresReading::Failed { error },
        };
        let retention = if matches!(stores, StoresReading::Stores { .. }) {
            join_all(
                Resolution::ALL
                    .iter()
                    .map(|&r| self.reach(r, self.retention.expected(r))),
            )
            .await
        } else {
            Vec::new()
        };
        MetricsObservation {
            observed_at: SystemTime::now(),
            unreachable,
            stores,
            retention,
            build: build.fetched,
            targets: targets.fetched,
            alerts: alerts.fetched,
        }
    }

    /// The catalogue's query `id`, as samples; `Err` says why (transport errors marked).
    async fn samples(&self, id: &str) -> Result<Vec<Sample>, (bool, String)> {
        let Some(q) = default_catalogue().into_iter().find(|q| q.id == id) else {
            return Ok(Vec::new());
        };
        let answer = self.client.query(q.promql).get().await.map_err(|e| {
            (
                matches!(e, prometheus_http_query::Error::Client(_)),
                describe(&e),
            )
        })?;
        Ok(match answer.data() {
            Data::Vector(v) => v
                .iter()
                .map(|s| {
                    (
                        s.metric()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        s.sample().value(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    /// One round of the exporter series the GPU, Ceph and Velero panes add: DCGM
    /// (utilisation, framebuffer, temperature, power, idle-but-allocated), ceph-mgr
    /// (health, OSDs up/in), Velero (last successful backup per schedule).
    pub async fn probe_exporters(&self) -> ExporterObservation {
        let ids = [
            "gpu_util",
            "gpu_fb_used",
            "gpu_fb_free",
            "gpu_temp",
            "gpu_power",
            "gpu_idle_allocated",
            "ceph_health_status",
            "ceph_osd_up",
            "ceph_osd_in",
            "velero_last_successful_backup",
        ];
        let results = join_all(ids.iter().map(|id| self.samples(id))).await;
        let unreachable = if results.iter().all(|r| matches!(r, Err((true, _)))) {
            results
                .iter()
                .find_map(|r| r.as_ref().err().map(|(_, e)| e.clone()))
        } else {
            None
        };
        let mut results = results.into_iter();
        let mut next = || results.next().unwrap_or(Ok(Vec::new())).map_err(|(_, e)| e);
        let gpu = (|| -> Result<_, String> {
            Ok(devices(&DcgmSeries {
                util: next()?,
                fb_used: next()?,
                fb_free: next()?,
                temp: next()?,
                power: next()?,
                idle: next()?,
            }))
        })();
        let ceph = (|| -> Result<_, String> {
            let (h, up, inn) = (next()?, next()?, next()?);
            Ok(ceph_metrics::from_series(&h, &up, &inn))
        })();
        let now = SystemTime::now();
        let now_unix = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let velero = next().map(|v| velero_metrics::from_series(&v, now_unix));
        ExporterObservation {
            observed_at: now,
            unreachable,
            gpu: fetched(gpu),
            ceph: fetched(ceph),
            velero: fetched(velero),
        }
    }

    /// The interval, longer while the API is down (2, 4, 8 ... up to 60 s).
    pub fn next_delay(&self) -> Duration {
        match self.failures.load(Ordering::Relaxed) {
            0 | 1 => self.interval,
            n => self
                .interval
                .max(MAX_BACKOFF.min(Duration::from_secs(1 << (n - 1).min(6)))),
        }
    }
}

struct Part<T> {
    transport_failed: bool,
    not_found: bool,
    fetched: Fetched<T>,
}

fn fetched<T>(r: Result<T, String>) -> Fetched<T> {
    match r {
        Ok(value) => Fetched::Read { value },
        Err(error) => Fetched::Failed { error },
    }
}

/// reqwest's error and its causes ("error sending request: ... Connection refused").
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    if e.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

/// The source task: probe, send, wait, until the receiver goes away.
pub async fn run(prober: MetricsStatusProber, tx: mpsc::Sender<Msg>) {
    loop {
        let started = Instant::now();
        let (observation, exporters) = tokio::join!(prober.probe(), prober.probe_exporters());
        if tx.send(Msg::Metrics(observation)).await.is_err()
            || tx.send(Msg::Exporters(exporters)).await.is_err()
        {
            return;
        }
        tokio::time::sleep(prober.next_delay().saturating_sub(started.elapsed())).await;
    }
}
