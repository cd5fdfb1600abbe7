//! The canary error-rate source behind the abort advisory: one instant PromQL query per
//! round (the KPI `canary_error_rate`'s, one series per destination service) against
//! Prometheus or Thanos Query through `prometheus-http-query`, every series kept with its
//! labels so the model can match each Rollout's canary Service. TLS is verified (the
//! given CA, else the system's roots); the bearer token never reaches a log or `Debug`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, WrapErr, eyre};
use prometheus_http_query::Client;
use prometheus_http_query::response::Data;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

use crate::model::Msg;
use crate::model::canary::{CanaryObservation, DEFAULT_THRESHOLD, SeriesValue};
use crate::model::kpi::KpiDef;
use crate::sources::prometheus::PrometheusSourceConfig;

/// The KPI whose query and critical threshold the advisory uses.
pub const KPI_ID: &str = "canary_error_rate";

#[derive(Debug, Clone)]
pub struct CanarySourceConfig {
    pub url: String,
    pub bearer: Option<SecretString>,
    pub ca_file: Option<PathBuf>,
    pub promql: String,
    /// Above this ratio (0.05 = 5 %) a mid-update canary gets the advisory.
    pub threshold: f64,
    pub interval: Duration,
    pub timeout: Duration,
}

impl CanarySourceConfig {
    /// The advisory's source from the KPI source's Prometheus and the
    /// `canary_error_rate` KPI (its `promql`, its `crit` as the threshold); `None` when
    /// that KPI is disabled in the profile.
    pub fn from_kpis(prometheus: &PrometheusSourceConfig, kpis: &[KpiDef]) -> Option<Self> {
        let def = kpis.iter().find(|d| d.id == KPI_ID)?;
        Some(CanarySourceConfig {
            url: prometheus.url.clone(),
            bearer: prometheus.bearer.clone(),
            ca_file: prometheus.ca_file.clone(),
            promql: def.promql.clone(),
            threshold: def.crit.unwrap_or(DEFAULT_THRESHOLD),
            interval: prometheus.interval,
            timeout: prometheus.timeout,
        })
    }
}

/// Queries the canary error rate, round after round.
pub struct CanaryProber {
    config: CanarySourceConfig,
    client: Client,
}

impl CanaryProber {
    /// Fails only on local problems: a bad URL, an unreadable or empty CA.
    pub fn new(config: CanarySourceConfig) -> Result<Self> {
        let http = http_client(&config)?;
        let client = Client::from(http, &config.url)
            .map_err(|e| eyre!("Prometheus URL {:?} is not usable: {e}", config.url))?;
        Ok(CanaryProber { config, client })
    }

    /// One round: the query, every series with its labels.
    pub async fn probe(&self) -> CanaryObservation {
        let mut q = self.client.query(&self.config.promql);
        if let Some(h) = self.config.bearer.as_ref().and_then(|t| {
            format!("Bearer {}", t.expose_secret())
                .parse::<reqwest::header::HeaderValue>()
                .ok()
        }) {
            q = q.header(reqwest::header::AUTHORIZATION, h);
        }
        let result = match tokio::time::timeout(self.config.timeout, q.get()).await {
            Err(_) => Err(format!(
                "the canary error-rate query did not answer within {:?}",
                self.config.timeout
            )),
            Ok(Err(e)) => Err(format!("the canary error-rate query failed: {e}")),
            Ok(Ok(answer)) => Ok(match answer.data() {
                Data::Vector(v) => v
                    .iter()
                    .map(|s| SeriesValue {
                        labels: s
                            .metric()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        value: s.sample().value(),
                    })
                    .collect(),
                Data::Scalar(s) => vec![SeriesValue {
                    labels: Default::default(),
                    value: s.value(),
                }],
                Data::Matrix(m) => m
                    .iter()
                    .filter_map(|s| {
                        Some(SeriesValue {
                            labels: s
                                .metric()
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            value: s.samples().last()?.value(),
                        })
                    })
                    .collect(),
            }),
        };
        CanaryObservation {
            observed_at: SystemTime::now(),
            query: self.config.promql.clone(),
            threshold: self.config.threshold,
            result,
        }
    }
}

/// The source task: probe, send, wait, until the receiver goes away.
pub async fn run(prober: CanaryProber, tx: mpsc::Sender<Msg>) {
    loop {
        let started = Instant::now();
        let obs = prober.probe().await;
        if tx.send(Msg::Canary(obs)).await.is_err() {
            return;
        }
        tokio::time::sleep(prober.config.interval.saturating_sub(started.elapsed())).await;
    }
}

/// reqwest over rustls with ring: the given CA, else the system's roots.
fn http_client(config: &CanarySourceConfig) -> Result<reqwest::Client> {
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
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .wrap_err("no TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(config.timeout)
        .timeout(config.timeout)
        .build()
        .wrap_err("cannot build the HTTP client for Prometheus")
}
