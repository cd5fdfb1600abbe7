//! The canary error-rate source behind the abort advisory: one instant PromQL query per
//! round (the KPI `canary_error_rate`'s, one series per destination service) against
//! Prometheus or Thanos Query through `prometheus-http-query`, every series kept with its
//! labels so the model can match each Rollout's canary Service. It shares the KPI
//! source's HTTP client set-up: TLS verified (the given CA, else the system's roots),
//! the bearer token or basic auth on every request, never in a log or `Debug`.

use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, eyre};
use prometheus_http_query::Client;
use prometheus_http_query::response::Data;
use tokio::sync::mpsc;

use crate::model::Msg;
use crate::model::canary::{CanaryObservation, DEFAULT_THRESHOLD, SeriesValue};
use crate::model::kpi::KpiDef;
use crate::sources::prometheus::PrometheusSourceConfig;

/// The KPI whose query and critical threshold the advisory uses.
pub const KPI_ID: &str = "canary_error_rate";

#[derive(Debug, Clone)]
pub struct CanarySourceConfig {
    /// Where and how to ask (URL, CA, credentials), as the KPI source does.
    pub prometheus: PrometheusSourceConfig,
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
            prometheus: prometheus.clone(),
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
        let http = crate::sources::prometheus::http_client(&config.prometheus)?;
        let url = &config.prometheus.url;
        let client = Client::from(http, url)
            .map_err(|e| eyre!("Prometheus URL {url:?} is not usable: {e}"))?;
        Ok(CanaryProber { config, client })
    }

    /// One round: the query, every series with its labels.
    pub async fn probe(&self) -> CanaryObservation {
        let q = self.client.query(&self.config.promql);
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
