//! The KPI source against a real Prometheus (Debian package `prometheus`, which ships
//! `promtool`): OpenMetrics fixtures ending near now are backfilled with
//! `promtool tsdb create-blocks-from openmetrics`, Prometheus is started on loopback over
//! those blocks, and every default KPI's value and status is checked in a healthy and a
//! breached variant, so the default PromQL is checked by real PromQL. Also: Prometheus
//! down, Prometheus hanging (a listener that never answers) and a rejected query.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::haproxy::free_port;
use common::prometheus::{self as prom, RealPrometheus, labels, unix_now};
use kha::model::finding::Health;
use kha::model::kpi::{KpiDef, KpiObservation, KpiOverride, KpiReading, KpiResult, kpi_defs};
use kha::model::status::KpiReport;
use kha::sources::prometheus::{KpiProber, PrometheusSourceConfig};

/// Fixture samples every 15 s over the last 40 minutes.
const STEP: i64 = 15;
const SPAN: i64 = 40 * 60;

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Healthy,
    Breached,
}

/// A series' value at step k.
type ValueAt = Box<dyn Fn(i64) -> f64>;

/// One metric family: `series` are (labels, value at step k); all samples of the family
/// together, timestamps ascending per series.
fn family(out: &mut String, name: &str, series: &[(String, ValueAt)], end: i64) {
    let start = end - SPAN;
    for (labels, value) in series {
        let mut t = start;
        let mut k = 0;
        while t <= end {
            writeln!(out, "{name}{labels} {} {t}", value(k)).unwrap();
            t += STEP;
            k += 1;
        }
    }
}

/// Cumulative histogram buckets, each `(le, growth per step)`.
fn histogram(
    out: &mut String,
    name: &str,
    base: &[(&str, &str)],
    buckets: &[(&str, f64)],
    end: i64,
) {
    let series: Vec<(String, ValueAt)> = buckets
        .iter()
        .map(|(le, per_step)| {
            let mut pairs = base.to_vec();
            pairs.push(("le", le));
            (labels(&pairs), counter(*per_step))
        })
        .collect();
    family(out, name, &series, end);
}

fn constant(value: f64) -> ValueAt {
    Box::new(move |_| value)
}

fn counter(per_step: f64) -> ValueAt {
    Box::new(move |k| per_step * k as f64)
}

/// The OpenMetrics text of a variant, ending at `end` (Unix seconds).
///
/// Buckets are chosen so `histogram_quantile(0.99, ...)` interpolates to a round value:
/// 400 observations per step, P99 rank 396; e.g. 395 at or below 0.25 s and 400 at or
/// below 0.5 s puts it at 0.25 + 0.25 * 1/5 = 0.3 s.
fn openmetrics(variant: Variant, end: i64) -> String {
    let mut out = String::new();
    let healthy = variant == Variant::Healthy;
    let get = [
        ("job", "apiserver"),
        ("instance", "10.0.1.10:6443"),
        ("verb", "GET"),
    ];
    let get_buckets: [(&str, f64); 6] = if healthy {
        // P99 0.3 s
        [
            ("0.1", 0.0),
            ("0.25", 395.0),
            ("0.5", 400.0),
            ("1", 400.0),
            ("2.5", 400.0),
            ("+Inf", 400.0),
        ]
    } else {
        // P99 0.5 + 0.5 * 6/10 = 0.8 s
        [
            ("0.1", 0.0),
            ("0.25", 0.0),
            ("0.5", 390.0),
            ("1", 400.0),
            ("2.5", 400.0),
            ("+Inf", 400.0),
        ]
    };
    let watch = [
        ("job", "apiserver"),
        ("instance", "10.0.1.10:6443"),
        ("verb", "WATCH"),
    ];
    // Long-running WATCHes would drag P99 to 2.5 s if they were not excluded.
    let watch_buckets = [
        ("0.1", 0.0),
        ("0.25", 0.0),
        ("0.5", 0.0),
        ("1", 0.0),
        ("2.5", 0.0),
        ("+Inf", 400.0),
    ];
    let name = "apiserver_request_duration_seconds_bucket";
    let mut both = String::new();
    histogram(&mut both, name, &get, &get_buckets, end);
    histogram(&mut both, name, &watch, &watch_buckets, end);
    out.push_str(&both);

    family(
        &mut out,
        "apiserver_request:availability30d",
        &[(
            labels(&[("verb", "all")]),
            constant(if healthy { 0.99995 } else { 0.999 }),
        )],
        end,
    );

    let kubelet = [("job", "kubelet"), ("instance", "10.0.3.10:10250")];
    if healthy {
        // The SLI histogram: P99 2.5 + 2.5 * 1/5 = 3 s.
        histogram(
            &mut out,
            "kubelet_pod_start_sli_duration_seconds_bucket",
            &kubelet,
            &[
                ("1", 0.0),
                ("2.5", 395.0),
                ("5", 400.0),
                ("10", 400.0),
                ("+Inf", 400.0),
            ],
            end,
        );
    } else {
        // Only the older metric (kubelet < 1.27): P99 5 + 5 * 16/20 = 9 s, via the fallback.
        histogram(
            &mut out,
            "kubelet_pod_start_duration_seconds_bucket",
            &kubelet,
            &[
                ("1", 0.0),
                ("2.5", 0.0),
                ("5", 380.0),
                ("10", 400.0),
                ("+Inf", 400.0),
            ],
            end,
        );
    }

    let probe = |src: &str, dst: &str| {
        labels(&[
            ("job", "blackbox-cross-az"),
            ("instance", &format!("cp-{dst}")),
            ("source_zone", src),
            ("target_zone", dst),
        ])
    };
    let (ab, ac, ac_ok) = if healthy {
        (0.004, 0.006, 1.0)
    } else {
        // a->c fails (its duration is the probe timeout, left out); a->b is slow.
        (0.030, 5.0, 0.0)
    };
    family(
        &mut out,
        "probe_duration_seconds",
        &[
            (probe("a", "b"), constant(ab)),
            (probe("a", "c"), constant(ac)),
        ],
        end,
    );
    family(
        &mut out,
        "probe_success",
        &[
            (probe("a", "b"), constant(1.0)),
            (probe("a", "c"), constant(ac_ok)),
        ],
        end,
    );

    let istio = |code: &str| {
        labels(&[
            ("reporter", "destination"),
            ("destination_service_namespace", "shop"),
            ("destination_service_name", "checkout-canary"),
            ("response_code", code),
        ])
    };
    let (ok, errors) = if healthy { (99.0, 1.0) } else { (90.0, 10.0) };
    family(
        &mut out,
        "istio_requests_total",
        &[(istio("200"), counter(ok)), (istio("503"), counter(errors))],
        end,
    );
    out.push_str("# EOF\n");
    out
}

/// Backfills the variant's fixtures and starts Prometheus on them; waits for `/-/ready`.
async fn start_prometheus(variant: Variant) -> RealPrometheus {
    let prom = spawn_prometheus(variant, None);
    prom::wait_ready(&prom).await;
    prom
}

/// A serving certificate for 127.0.0.1 and its CA, as PEM: (cert, key, ca).
fn tls_files() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem(), ca_pem)
}

/// Prometheus started (not yet ready) over the variant's backfilled blocks; with `tls`
/// (cert, key PEM) it serves HTTPS.
fn spawn_prometheus(variant: Variant, tls: Option<(&str, &str)>) -> RealPrometheus {
    // End a few seconds ago so the last sample is inside every query's lookback.
    prom::spawn(&openmetrics(variant, unix_now() - 5), "", "", tls)
}

fn config(url: &str, kpis: Vec<KpiDef>) -> PrometheusSourceConfig {
    let mut c = PrometheusSourceConfig::new(url.to_string(), kpis);
    c.timeout = Duration::from_millis(800);
    c
}

async fn observe(url: &str, kpis: Vec<KpiDef>) -> (KpiObservation, Duration) {
    let mut prober = KpiProber::new(config(url, kpis)).unwrap();
    let started = Instant::now();
    let obs = tokio::time::timeout(Duration::from_secs(10), prober.probe())
        .await
        .expect("a round never hangs");
    (obs, started.elapsed())
}

fn result<'a>(obs: &'a KpiObservation, id: &str) -> &'a KpiResult {
    obs.results
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no result for {id}: {obs:?}"))
}

fn value(obs: &KpiObservation, id: &str) -> (f64, bool) {
    match &result(obs, id).reading {
        KpiReading::Value {
            value,
            used_fallback,
            ..
        } => (*value, *used_fallback),
        other => panic!("{id}: expected a value, got {other:?}"),
    }
}

fn assert_close(id: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() < 1e-6 * want.abs().max(1.0),
        "{id}: got {got}, want {want}"
    );
}

fn defaults() -> Vec<KpiDef> {
    kpi_defs(&BTreeMap::new()).unwrap()
}

fn status_of(report: &KpiReport, id: &str) -> Health {
    report
        .rows
        .iter()
        .find(|r| r.id == id)
        .map(|r| r.status)
        .unwrap_or_else(|| panic!("no row {id}"))
}

#[tokio::test]
async fn healthy_cluster_meets_every_kpi() {
    let prom = start_prometheus(Variant::Healthy).await;
    // A KPI whose PromQL Prometheus rejects: that KPI fails, the others still read.
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "broken_query".to_string(),
        KpiOverride {
            promql: Some("sum(".into()),
            unit: Some("seconds".into()),
            ..Default::default()
        },
    );
    let defs = kpi_defs(&overrides).unwrap();
    let (obs, _) = observe(&prom.url, defs.clone()).await;
    assert!(obs.unreachable.is_none(), "{obs:?}\n{}", prom.log());

    let (p99, _) = value(&obs, "apiserver_p99_latency");
    assert_close("apiserver_p99_latency", p99, 0.3);
    let (avail, _) = value(&obs, "apiserver_availability");
    assert_close("apiserver_availability", avail, 0.99995);
    let (pod, fallback) = value(&obs, "pod_startup_p99");
    assert_close("pod_startup_p99", pod, 3.0);
    assert!(!fallback, "the SLI histogram exists; no fallback");
    let (az, _) = value(&obs, "cross_az_latency");
    assert_close("cross_az_latency", az, 0.006);
    let (canary, _) = value(&obs, "canary_error_rate");
    assert_close("canary_error_rate", canary, 0.01);
    assert_eq!(
        result(&obs, "scaling_speed").reading,
        KpiReading::NotAvailable,
        "no Karpenter series: not available"
    );
    match &result(&obs, "broken_query").reading {
        KpiReading::Failed { error } => assert!(error.contains("parse error"), "{error}"),
        other => panic!("broken_query: {other:?}"),
    }

    // The sparkline: half an hour at 1-minute steps, all at the steady value.
    let history = &result(&obs, "apiserver_p99_latency").history;
    assert!(history.len() >= 25, "{history:?}");
    assert!(
        history.iter().all(|v| (v - 0.3).abs() < 1e-6),
        "{history:?}"
    );

    let report = KpiReport::from_observation(&defs, &obs);
    for id in [
        "apiserver_p99_latency",
        "apiserver_availability",
        "pod_startup_p99",
        "cross_az_latency",
        "canary_error_rate",
    ] {
        assert_eq!(status_of(&report, id), Health::Ok, "{id}");
    }
    assert_eq!(status_of(&report, "scaling_speed"), Health::Unknown);
    // Only the rejected query keeps the pane from OK; it is unknown, not a breach.
    assert_eq!(report.status, Health::Unknown, "{:?}", report.findings);
    let json = serde_json::to_value(&report).unwrap();
    let row = &json["rows"][0];
    assert_eq!(row["id"], "apiserver_p99_latency");
    assert_eq!(row["status"], "ok");
    assert_eq!(row["target"], 0.5);
    assert!(row["query"].as_str().unwrap().contains("WATCH|CONNECT"));

    let (obs, _) = observe(&prom.url, defaults()).await;
    assert_eq!(
        KpiReport::from_observation(&defaults(), &obs).status,
        Health::Ok
    );
    let (json, _) = kha_status(&prom.url);
    assert_eq!(json["kpis"]["status"], "ok", "{json}");
    assert_eq!(json["kpis"]["configured"], true);
}

#[tokio::test]
async fn breached_cluster_is_critical_per_kpi() {
    let prom = start_prometheus(Variant::Breached).await;
    let defs = defaults();
    let (obs, _) = observe(&prom.url, defs.clone()).await;
    assert!(obs.unreachable.is_none(), "{obs:?}\n{}", prom.log());

    let (p99, _) = value(&obs, "apiserver_p99_latency");
    assert_close("apiserver_p99_latency", p99, 0.8);
    let (avail, _) = value(&obs, "apiserver_availability");
    assert_close("apiserver_availability", avail, 0.999);
    let (pod, fallback) = value(&obs, "pod_startup_p99");
    assert_close("pod_startup_p99", pod, 9.0);
    assert!(
        fallback,
        "only the older kubelet metric exists: the fallback is used"
    );
    let (az, _) = value(&obs, "cross_az_latency");
    assert_close("cross_az_latency (failed probes left out)", az, 0.030);
    let (canary, _) = value(&obs, "canary_error_rate");
    assert_close("canary_error_rate", canary, 0.10);

    let report = KpiReport::from_observation(&defs, &obs);
    for id in [
        "apiserver_p99_latency",
        "apiserver_availability",
        "pod_startup_p99",
        "cross_az_latency",
        "canary_error_rate",
    ] {
        assert_eq!(status_of(&report, id), Health::Crit, "{id}");
    }
    assert_eq!(report.status, Health::Crit);
    let pod_row = report
        .rows
        .iter()
        .find(|r| r.id == "pod_startup_p99")
        .unwrap();
    assert!(pod_row.used_fallback);
    assert!(
        pod_row
            .query
            .contains("kubelet_pod_start_duration_seconds_bucket"),
        "the report shows the query that produced the value: {}",
        pod_row.query
    );
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.severity == Health::Crit && f.message.contains("800 ms")),
        "{:?}",
        report.findings
    );

    // `kha status --json` reads the same and exits 2 (crit): configured KPIs count.
    let (json, code) = kha_status(&prom.url);
    assert_eq!(code, Some(2), "{json}");
    assert_eq!(json["overall"], "crit");
    assert_eq!(json["kpis"]["status"], "crit");
    let rows = json["kpis"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    let p99 = rows
        .iter()
        .find(|r| r["id"] == "apiserver_p99_latency")
        .unwrap();
    assert_eq!(p99["status"], "crit");
    assert_eq!(p99["unit"], "seconds");
    assert!((p99["value"].as_f64().unwrap() - 0.8).abs() < 1e-6, "{p99}");
}

/// `kha status --json` with only the Prometheus URL set (an empty config dir).
fn kha_status(url: &str) -> (serde_json::Value, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["status", "--json"])
        .env("KHA_CONFIG_DIR", dir.path())
        .env("KHA_PROMETHEUS_URL", url)
        .env_remove("KUBECONFIG")
        .env_remove("KHA_ETCD_ENDPOINTS")
        .env_remove("KHA_APISERVER_BACKENDS")
        .env_remove("KHA_LB_STATS")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kha status --json: {e}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (json, out.status.code())
}

#[tokio::test]
async fn prometheus_down_is_unknown_and_quick() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let (obs, took) = observe(&url, defaults()).await;
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let why = obs.unreachable.clone().expect("unreachable");
    let report = KpiReport::from_observation(&defaults(), &obs);
    assert_eq!(report.status, Health::Unknown, "unreachable is not crit");
    assert_eq!(report.error.as_deref(), Some(why.as_str()));
}

#[tokio::test]
async fn prometheus_that_never_answers_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accept and hold connections without ever answering.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let (obs, took) = observe(&url, defaults()).await;
    assert!(
        took < Duration::from_secs(4),
        "the per-request timeout bounds the round: {took:?}"
    );
    let why = obs.unreachable.clone().expect("unreachable");
    assert!(
        why.contains("timed out") || why.contains("timeout"),
        "{why}"
    );
    assert_eq!(
        KpiReport::from_observation(&defaults(), &obs).status,
        Health::Unknown
    );
}

/// Over HTTPS the certificate is verified: with the CA given the KPIs read; without it
/// (the system's roots do not know this CA) Prometheus is unreachable, never trusted.
#[tokio::test]
async fn https_prometheus_is_verified_against_the_given_ca() {
    let (cert, key, ca) = tls_files();
    let prom = spawn_prometheus(Variant::Healthy, Some((&cert, &key)));
    let ca_file = prom.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let mut with_ca = config(&prom.url, defaults());
    with_ca.ca_file = Some(ca_file);
    let mut prober = KpiProber::new(with_ca).unwrap();
    // Wait out start-up (503 until the TSDB is open).
    let deadline = Instant::now() + Duration::from_secs(30);
    let obs = loop {
        let obs = prober.probe().await;
        let answered = obs
            .results
            .iter()
            .any(|r| matches!(r.reading, KpiReading::Value { .. }));
        if answered || Instant::now() > deadline {
            break obs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (p99, _) = value(&obs, "apiserver_p99_latency");
    assert_close("apiserver_p99_latency over https", p99, 0.3);

    let (obs, _) = observe(&prom.url, defaults()).await;
    let why = obs.unreachable.expect("an unknown CA is refused");
    assert!(why.to_lowercase().contains("certificate"), "{why}");
}

/// The bearer token goes in the Authorization header of every query.
#[tokio::test]
async fn bearer_token_is_sent_and_not_in_debug() {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request).to_lowercase();
            if let Some(auth) = text.lines().find_map(|l| l.strip_prefix("authorization: ")) {
                log.lock().unwrap().push(auth.trim().to_string());
            }
            let body = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut c = config(&url, defaults());
    c.bearer = Some("s3cret-token".to_string().into());
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "the token stays out of Debug"
    );
    let mut prober = KpiProber::new(c).unwrap();
    let obs = prober.probe().await;
    assert!(obs.unreachable.is_none(), "{obs:?}");
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|a| a == "bearer s3cret-token"), "{seen:?}");
}
