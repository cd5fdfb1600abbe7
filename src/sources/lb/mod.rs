//! The API-server LB source: every kube-apiserver backend probed directly
//! (`/readyz?verbose`, `/livez`, TLS verified) and the LB's own view read (HAProxy
//! runtime API over a unix socket or TCP, or nginx's upstream-check JSON), all at once,
//! each under its own timeout, so one dead backend or a hung LB stalls nothing.

pub mod auth;
pub mod cert;
pub mod discover;
pub mod haproxy;
mod http;
pub mod nginx;
pub mod readyz;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, eyre};
use futures::future::join_all;
use tokio::sync::mpsc;

use crate::model::Msg;
use crate::model::lb::{
    BackendProbe, HealthCheck, LbKind, LbObservation, LbServer, LbView, url_address,
};
pub use auth::{ApiServerAuth, ProbeTls};

/// One kube-apiserver to probe: `https://10.0.0.1:6443`, optionally named and zoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendTarget {
    pub name: String,
    pub url: String,
    pub zone: Option<String>,
}

impl BackendTarget {
    /// `url` or `name=url`.
    pub fn parse(spec: &str) -> Result<BackendTarget, String> {
        let (name, url) = match spec.split_once('=') {
            Some((n, u)) if !n.contains("://") => (Some(n.trim()), u.trim()),
            _ => (None, spec.trim()),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "apiserver backend {url:?} must start with https:// (or http://)"
            ));
        }
        let url = url.trim_end_matches('/').to_string();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => auth::url_host(&url).unwrap_or_else(|| url.clone()),
        };
        Ok(BackendTarget {
            name,
            url,
            zone: None,
        })
    }
}

/// Where the LB's view comes from (`--lb-stats` / `KHA_LB_STATS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LbStatsEndpoint {
    /// `unix:///run/haproxy/admin.sock`
    HaproxyUnix(PathBuf),
    /// `tcp://10.0.0.10:9999`
    HaproxyTcp(String),
    /// `nginx+http://10.0.0.10/status` (the check module's page, asked for JSON)
    NginxHttp(String),
}

impl LbStatsEndpoint {
    pub fn parse(spec: &str) -> Result<LbStatsEndpoint, String> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("unix://") {
            if path.is_empty() {
                return Err("--lb-stats unix:// needs a socket path".into());
            }
            return Ok(LbStatsEndpoint::HaproxyUnix(PathBuf::from(path)));
        }
        if let Some(addr) = spec.strip_prefix("tcp://") {
            if !addr.contains(':') {
                return Err(format!("--lb-stats {spec}: give host:port"));
            }
            return Ok(LbStatsEndpoint::HaproxyTcp(
                addr.trim_end_matches('/').into(),
            ));
        }
        if let Some(url) = spec.strip_prefix("nginx+") {
            if !url.starts_with("http://") {
                return Err(format!(
                    "--lb-stats {spec}: only nginx+http:// is supported for the nginx status page"
                ));
            }
            let url = if url.contains("format=json") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&format=json")
            } else {
                format!("{url}?format=json")
            };
            return Ok(LbStatsEndpoint::NginxHttp(url));
        }
        Err(format!(
            "--lb-stats {spec:?}: use unix:///path (HAProxy socket), tcp://host:port \
             (HAProxy stats over TCP) or nginx+http://host/status (nginx upstream check)"
        ))
    }

    pub fn kind(&self) -> LbKind {
        match self {
            LbStatsEndpoint::NginxHttp(_) => LbKind::Nginx,
            _ => LbKind::Haproxy,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            LbStatsEndpoint::HaproxyUnix(p) => format!("unix://{}", p.display()),
            LbStatsEndpoint::HaproxyTcp(a) => format!("tcp://{a}"),
            LbStatsEndpoint::NginxHttp(u) => format!("nginx+{u}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbSourceConfig {
    pub backends: Vec<BackendTarget>,
    pub stats: Option<LbStatsEndpoint>,
    pub auth: ApiServerAuth,
    /// Time between rounds.
    pub interval: Duration,
    /// Deadline of each probe and of the LB read.
    pub timeout: Duration,
}

impl LbSourceConfig {
    pub fn new(backends: Vec<BackendTarget>, stats: Option<LbStatsEndpoint>) -> Self {
        LbSourceConfig {
            backends,
            stats,
            auth: ApiServerAuth::default(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(1500),
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.backends.is_empty() || self.stats.is_some()
    }
}

/// After a backend fails to answer twice in a row, it is retried less often.
#[derive(Debug, Clone)]
struct Backoff {
    failures: u32,
    retry_at: Instant,
    last: BackendProbe,
}

const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// Probes the backends and reads the LB, round after round.
pub struct LbProber {
    config: LbSourceConfig,
    tls: ProbeTls,
    backoff: HashMap<String, Backoff>,
    /// The LB's servers from the last good read.
    last_view: Option<(SystemTime, Vec<LbServer>)>,
}

impl LbProber {
    /// Fails only on local problems (unreadable CA or kubeconfig, https without a CA).
    pub fn new(config: LbSourceConfig) -> Result<Self> {
        if !config.is_configured() {
            return Err(eyre!(
                "nothing to watch: set --apiserver-backends / KHA_APISERVER_BACKENDS \
                 and/or --lb-stats / KHA_LB_STATS"
            ));
        }
        let needs_tls = config
            .backends
            .iter()
            .any(|b| b.url.starts_with("https://"));
        let tls = ProbeTls::load(&config.auth, needs_tls)?;
        Ok(LbProber {
            config,
            tls,
            backoff: HashMap::new(),
            last_view: None,
        })
    }

    /// One round: every backend probed and the LB read, concurrently.
    pub async fn probe(&mut self) -> LbObservation {
        let now = Instant::now();
        let timeout = self.config.timeout;
        let tls = &self.tls;
        let backoff = &self.backoff;
        let probes = join_all(self.config.backends.iter().map(|target| async move {
            match backoff.get(&target.url).filter(|b| b.retry_at > now) {
                Some(b) => waiting(&b.last, b.retry_at.saturating_duration_since(now)),
                None => probe_backend(target, tls, timeout).await,
            }
        }));
        let stats = self.config.stats.clone();
        let view = async move {
            match stats {
                Some(endpoint) => {
                    let result = read_lb(&endpoint, tls, timeout).await;
                    Some((endpoint, result))
                }
                None => None,
            }
        };
        let (backends, view) = tokio::join!(probes, view);
        for probe in &backends {
            self.note_result(&probe.url, probe);
        }
        let observed_at = SystemTime::now();
        let lb = view.map(|(endpoint, result)| {
            let error = match result {
                Ok(servers) => {
                    self.last_view = Some((observed_at, servers));
                    None
                }
                Err(e) => Some(e),
            };
            let (read_at, servers) = match &self.last_view {
                Some((at, servers)) => (Some(*at), servers.clone()),
                None => (None, Vec::new()),
            };
            LbView {
                kind: endpoint.kind(),
                source: endpoint.describe(),
                read_at,
                servers,
                error,
            }
        });
        LbObservation {
            observed_at,
            backends,
            lb,
        }
    }

    fn note_result(&mut self, url: &str, probe: &BackendProbe) {
        let answered = [&probe.readyz, &probe.livez]
            .iter()
            .any(|c| c.as_ref().is_some_and(|c| c.status.is_some()));
        if answered {
            self.backoff.remove(url);
            return;
        }
        if self
            .backoff
            .get(url)
            .is_some_and(|b| b.retry_at > Instant::now())
        {
            return; // this round was skipped; keep the schedule
        }
        let failures = self.backoff.get(url).map_or(0, |b| b.failures) + 1;
        // The first failure retries on the next round; then 2s, 4s, 8s.
        let delay = if failures <= 1 {
            Duration::ZERO
        } else {
            MAX_BACKOFF.min(Duration::from_secs(1 << (failures - 1).min(4)))
        };
        self.backoff.insert(
            url.to_string(),
            Backoff {
                failures,
                retry_at: Instant::now() + delay,
                last: probe.clone(),
            },
        );
    }
}

/// The last failed probe, said to be waiting for its retry.
fn waiting(last: &BackendProbe, wait: Duration) -> BackendProbe {
    let mut probe = last.clone();
    for check in [&mut probe.readyz, &mut probe.livez].into_iter().flatten() {
        let why = check.error.clone().unwrap_or_else(|| "no answer".into());
        check.error = Some(format!("{why}; next attempt in {}s", wait.as_secs().max(1)));
    }
    probe
}

async fn health_check(
    url: String,
    tls: &ProbeTls,
    timeout: Duration,
) -> (HealthCheck, Option<SystemTime>) {
    let started = Instant::now();
    match http::get(&url, tls, timeout).await {
        Ok(answer) => (
            HealthCheck {
                status: Some(answer.status),
                failing: readyz::failing_checks(&answer.body),
                latency: answer.latency,
                error: None,
            },
            answer.cert_not_after,
        ),
        Err(e) => (
            HealthCheck {
                status: None,
                failing: Vec::new(),
                latency: started.elapsed(),
                error: Some(e),
            },
            None,
        ),
    }
}

async fn probe_backend(target: &BackendTarget, tls: &ProbeTls, timeout: Duration) -> BackendProbe {
    let ((readyz, cert), (livez, cert2)) = tokio::join!(
        health_check(format!("{}/readyz?verbose", target.url), tls, timeout),
        health_check(format!("{}/livez", target.url), tls, timeout),
    );
    BackendProbe {
        name: target.name.clone(),
        url: target.url.clone(),
        address: url_address(&target.url),
        zone: target.zone.clone(),
        readyz: Some(readyz),
        livez: Some(livez),
        cert_not_after: cert.or(cert2),
    }
}

async fn read_lb(
    endpoint: &LbStatsEndpoint,
    tls: &ProbeTls,
    timeout: Duration,
) -> Result<Vec<LbServer>, String> {
    match endpoint {
        LbStatsEndpoint::NginxHttp(url) => {
            let answer = http::get(url, tls, timeout).await?;
            if answer.status != 200 {
                return Err(format!("nginx status page answered HTTP {}", answer.status));
            }
            nginx::parse_check_status(&answer.body).map(|list| nginx::servers(&list))
        }
        _ => haproxy::read(endpoint, timeout).await,
    }
}

/// The source task: probe, send, wait, forever (until the receiver goes away).
pub async fn run(mut prober: LbProber, interval: Duration, tx: mpsc::Sender<Msg>) {
    loop {
        let started = Instant::now();
        let observation = prober.probe().await;
        if tx.send(Msg::Lb(observation)).await.is_err() {
            return;
        }
        tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_specs() {
        let b = BackendTarget::parse("cp-a=https://10.0.0.1:6443/").unwrap();
        assert_eq!(
            (b.name.as_str(), b.url.as_str()),
            ("cp-a", "https://10.0.0.1:6443")
        );
        let b = BackendTarget::parse("https://10.0.0.2:6443").unwrap();
        assert_eq!(b.name, "10.0.0.2");
        assert!(BackendTarget::parse("10.0.0.3:6443").is_err());
    }

    #[test]
    fn stats_endpoints() {
        assert_eq!(
            LbStatsEndpoint::parse("unix:///run/haproxy.sock"),
            Ok(LbStatsEndpoint::HaproxyUnix("/run/haproxy.sock".into()))
        );
        assert_eq!(
            LbStatsEndpoint::parse("tcp://10.0.0.9:9999"),
            Ok(LbStatsEndpoint::HaproxyTcp("10.0.0.9:9999".into()))
        );
        assert_eq!(
            LbStatsEndpoint::parse("nginx+http://lb/status"),
            Ok(LbStatsEndpoint::NginxHttp(
                "http://lb/status?format=json".into()
            ))
        );
        assert!(LbStatsEndpoint::parse("http://lb/status").is_err());
        assert!(LbStatsEndpoint::parse("unix://").is_err());
        assert!(LbStatsEndpoint::parse("nginx+https://lb/status").is_err());
    }
}
