//! The metrics source: the KPI queries against Prometheus or Thanos Query through
//! `prometheus-http-query`, each under its own timeout and all at once, so one slow query
//! stalls nothing; a short `query_range` per KPI for its sparkline. TLS is verified (the
//! given CA, else the system's roots, over rustls with ring); the bearer token is a
//! [`SecretString`] and never reaches a log, a notice or `Debug`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use color_eyre::eyre::{Result, WrapErr, eyre};
use futures::future::join_all;
use prometheus_http_query::response::Data;
use prometheus_http_query::{Client, Error as PromError};
use reqwest::header::HeaderValue;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use crate::model::Msg;
use crate::model::kpi::{KpiDef, KpiObservation, KpiReading, KpiResult};

/// HTTP basic auth for Prometheus / Thanos Query behind a proxy. The password is a
/// [`SecretString`]: it never shows in `Debug`, a log or a notice.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub user: String,
    pub password: SecretString,
}

#[derive(Debug, Clone)]
pub struct PrometheusSourceConfig {
    /// `http(s)://host:9090` (Prometheus) or Thanos Query's URL.
    pub url: String,
    pub bearer: Option<SecretString>,
    /// Used when no bearer token is set.
    pub basic: Option<BasicAuth>,
    pub ca_file: Option<PathBuf>,
    pub kpis: Vec<KpiDef>,
    /// Time between rounds.
    pub interval: Duration,
    /// Deadline of each HTTP request (connect included).
    pub timeout: Duration,
    /// How far back the sparkline reaches, and its step.
    pub history: Duration,
    pub step: Duration,
}

impl PrometheusSourceConfig {
    pub fn new(url: String, kpis: Vec<KpiDef>) -> Self {
        PrometheusSourceConfig {
            url: url.trim_end_matches('/').to_string(),
            bearer: None,
            basic: None,
            ca_file: None,
            kpis,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(3),
            history: Duration::from_secs(30 * 60),
            step: Duration::from_secs(60),
        }
    }
}

/// Runs the KPI queries, round after round.
pub struct KpiProber {
    config: PrometheusSourceConfig,
    client: Client,
    /// Rounds in a row in which Prometheus could not be reached.
    failures: u32,
}

const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl KpiProber {
    /// Fails only on local problems: a bad URL, an unreadable or empty CA.
    pub fn new(config: PrometheusSourceConfig) -> Result<Self> {
        let http = http_client(&config)?;
        let client = Client::from(http, &config.url)
            .map_err(|e| eyre!("Prometheus URL {:?} is not usable: {e}", config.url))?;
        Ok(KpiProber {
            config,
            client,
            failures: 0,
        })
    }

    /// One round: every KPI's instant query (and fallback) and history, concurrently.
    pub async fn probe(&mut self) -> KpiObservation {
        let end = unix_now();
        let start = end - i64::try_from(self.config.history.as_secs()).unwrap_or(1800);
        let step = self.config.step.as_secs_f64().max(1.0);
        let client = &self.client;
        let outcomes = join_all(
            self.config
                .kpis
                .iter()
                .map(|def| read_kpi(client, def, (start, end, step))),
        )
        .await;
        let unreachable = if !outcomes.is_empty() && outcomes.iter().all(|o| o.transport_failed) {
            outcomes.iter().find_map(|o| match &o.result.reading {
                KpiReading::Failed { error } => Some(error.clone()),
                _ => None,
            })
        } else {
            None
        };
        self.failures = if unreachable.is_some() {
            self.failures + 1
        } else {
            0
        };
        KpiObservation {
            observed_at: SystemTime::now(),
            unreachable,
            results: outcomes.into_iter().map(|o| o.result).collect(),
        }
    }

    /// The pause before the next round: the interval, longer while Prometheus is down
    /// (2, 4, 8 ... up to 60 s after the second failure in a row).
    pub fn next_delay(&self) -> Duration {
        match self.failures {
            0 | 1 => self.config.interval,
            n => self
                .config
                .interval
                .max(MAX_BACKOFF.min(Duration::from_secs(1 << (n - 1).min(6)))),
        }
    }
}

struct Outcome {
    result: KpiResult,
    /// The request never got an answer from Prometheus (refused, timed out, not HTTP).
    transport_failed: bool,
}

async fn read_kpi(client: &Client, def: &KpiDef, (start, end, step): (i64, i64, f64)) -> Outcome {
    let failed = |e: PromError| Outcome {
        transport_failed: matches!(e, PromError::Client(_)),
        result: KpiResult {
            id: def.id.clone(),
            reading: KpiReading::Failed {
                error: describe(&e),
            },
            history: Vec::new(),
        },
    };
    let mut used_fallback = false;
    let mut values = match instant(client, &def.promql).await {
        Ok(v) => v,
        Err(e) => return failed(e),
    };
    if values.is_empty()
        && let Some(fallback) = &def.fallback
    {
        values = match instant(client, fallback).await {
            Ok(v) => v,
            Err(e) => return failed(e),
        };
        used_fallback = !values.is_empty();
    }
    let Some(value) = def.worst(values.iter().copied()) else {
        return Outcome {
            transport_failed: false,
            result: KpiResult {
                id: def.id.clone(),
                reading: KpiReading::NotAvailable,
                history: Vec::new(),
            },
        };
    };
    let query = match (&def.fallback, used_fallback) {
        (Some(f), true) => f,
        _ => &def.promql,
    };
    // The sparkline is a nicety: without it the KPI still shows.
    let history = range(client, query, start, end, step)
        .await
        .map(|series| worst_per_step(def, &series))
        .unwrap_or_default();
    Outcome {
        transport_failed: false,
        result: KpiResult {
            id: def.id.clone(),
            reading: KpiReading::Value {
                value,
                series: values.len(),
                used_fallback,
            },
            history,
        },
    }
}

/// The `Authorization` header every request carries: the bearer token, else basic auth.
/// Marked sensitive so reqwest never prints it.
fn authorization(config: &PrometheusSourceConfig) -> Result<Option<HeaderValue>> {
    use base64::Engine as _;
    let text = match (&config.bearer, &config.basic) {
        (Some(token), _) => format!("Bearer {}", token.expose_secret().trim()),
        (None, Some(b)) => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                b.user,
                b.password.expose_secret()
            ))
        ),
        (None, None) => return Ok(None),
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        eyre!("the Prometheus credentials hold characters an HTTP header cannot carry")
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

async fn instant(client: &Client, promql: &str) -> Result<Vec<f64>, PromError> {
    let answer = client.query(promql).get().await?;
    Ok(match answer.data() {
        Data::Vector(v) => v.iter().map(|s| s.sample().value()).collect(),
        Data::Scalar(s) => vec![s.value()],
        Data::Matrix(m) => m
            .iter()
            .filter_map(|s| s.samples().last().map(|x| x.value()))
            .collect(),
    })
}

/// Each series' samples as (timestamp, value).
type Series = Vec<(f64, f64)>;

async fn range(
    client: &Client,
    promql: &str,
    start: i64,
    end: i64,
    step: f64,
) -> Result<Vec<Series>, PromError> {
    let answer = client.query_range(promql, start, end, step).get().await?;
    Ok(match answer.data() {
        Data::Matrix(m) => m
            .iter()
            .map(|s| {
                s.samples()
                    .iter()
                    .map(|x| (x.timestamp(), x.value()))
                    .collect()
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// The worst series' value at each step, oldest first.
fn worst_per_step(def: &KpiDef, series: &[Series]) -> Vec<f64> {
    let mut steps: Vec<f64> = series.iter().flatten().map(|(t, _)| *t).collect();
    steps.sort_by(f64::total_cmp);
    steps.dedup();
    steps
        .iter()
        .filter_map(|t| {
            def.worst(
                series
                    .iter()
                    .flat_map(|s| s.iter().filter(|(u, _)| u == t).map(|(_, v)| *v)),
            )
        })
        .collect()
}

/// The error and its causes, so "timed out" or "connection refused" shows.
pub(crate) fn describe(e: &PromError) -> String {
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
    text
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// reqwest over rustls with ring: the given CA, else the system's roots; the credentials
/// as a default (sensitive) header of every request.
pub(crate) fn http_client(config: &PrometheusSourceConfig) -> Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .wrap_err_with(|| format!("cannot read the Prometheus CA {}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    eyre!("the Prometheus CA {} is not valid PEM: {e}", path.display())
                })?;
                roots.add(cert).map_err(|e| {
                    eyre!(
                        "the Prometheus CA {} holds an unusable certificate: {e}",
                        path.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(eyre!(
                    "the Prometheus CA {} holds no certificate",
                    path.display()
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .wrap_err("no TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(auth) = authorization(config)? {
        headers.insert(reqwest::header::AUTHORIZATION, auth);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .tls_backend_preconfigured(tls)
        .connect_timeout(config.timeout)
        .timeout(config.timeout)
        .build()
        .wrap_err("cannot build the HTTP client for Prometheus")
}

/// The source task: probe, send, wait (longer while Prometheus is down), until the
/// receiver goes away.
pub async fn run(mut prober: KpiProber, tx: mpsc::Sender<Msg>) {
    loop {
        let started = Instant::now();
        let observation = prober.probe().await;
        if tx.send(Msg::Kpis(observation)).await.is_err() {
            return;
        }
        tokio::time::sleep(prober.next_delay().saturating_sub(started.elapsed())).await;
    }
}
