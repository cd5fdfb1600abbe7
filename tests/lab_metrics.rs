//! The lab's metrics API, queried with the real `curl` (Debian package `curl`) in every
//! scenario: every endpoint answers in Prometheus' / Thanos Query's JSON shapes, every
//! catalogue query has data, faults move the series the right way (and live), bad
//! parameters get `400 bad_data`. Also checks that `prometheus-http-query`, the client
//! kha uses, parses the answers.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use clap::ValueEnum;
use serde_json::Value;
use tokio::sync::watch;

use kha::lab::metrics::{MetricsServer, default_catalogue, fallback_promql};
use kha::lab::topology::{Faults, LabSpec, Scenario, Topology};

const SEED: u64 = 42;
const LOST_ZONE: &str = "eu-west-1c";
const LOST_GPU_NODE: &str = "gpu-eu-west-1c-1";
/// The inference pod keeps GPUs 0-4 busy; GPU 5 is held but idle, 6-7 are free.
const BUSY_UTIL: &str = r#"DCGM_FI_DEV_GPU_UTIL{pod!="", gpu=~"[0-4]"}"#;
const BUSY_TEMP: &str = r#"DCGM_FI_DEV_GPU_TEMP{pod!="", gpu=~"[0-4]"}"#;

struct Lab {
    server: MetricsServer,
    faults: watch::Sender<Faults>,
    api: Api,
}

async fn start(scenario: Scenario) -> Lab {
    let topology = Topology::generate(&LabSpec::default());
    let (faults, rx) = watch::channel(Faults::for_scenario(scenario, &topology));
    let server = MetricsServer::start(topology, rx, SEED).await.unwrap();
    let api = Api(server.url());
    Lab {
        server,
        faults,
        api,
    }
}

struct Api(String);

struct Reply {
    status: u16,
    body: Value,
}

impl Api {
    fn get(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        self.curl(path, params, true)
    }

    fn post(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        self.curl(path, params, false)
    }

    fn curl(&self, path: &str, params: &[(&str, &str)], get: bool) -> Reply {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"]);
        if get {
            cmd.arg("-G");
        } else if params.is_empty() {
            cmd.args(["--data", ""]);
        }
        for (k, v) in params {
            cmd.args(["--data-urlencode", &format!("{k}={v}")]);
        }
        cmd.arg(format!("{}{path}", self.0));
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) => panic!("cannot run curl ({e}): install the Debian package `curl`"),
        };
        assert!(
            out.status.success(),
            "curl {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        let body =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
        Reply {
            status: code.parse().unwrap(),
            body,
        }
    }

    /// `data` of a successful answer.
    fn data(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let reply = self.get(path, params);
        assert_eq!(reply.status, 200, "{path} {params:?}: {}", reply.body);
        assert_eq!(reply.body["status"], "success", "{path}: {}", reply.body);
        reply.body["data"].clone()
    }

    /// An instant query's series, checked for the vector shape.
    fn instant(&self, promql: &str) -> Vec<Series> {
        vector(&self.data("/api/v1/query", &[("query", promql)]))
    }

    /// The single value of `promql`.
    fn scalar(&self, promql: &str) -> f64 {
        let series = self.instant(promql);
        assert_eq!(series.len(), 1, "{promql}: {series:?}");
        series[0].value
    }

    fn alerts(&self) -> Vec<Alert> {
        let data = self.data("/api/v1/alerts", &[]);
        data["alerts"]
            .as_array()
            .expect("data.alerts is a list")
            .iter()
            .map(|a| {
                let state = a["state"].as_str().unwrap().to_string();
                assert!(state == "firing" || state == "pending", "{a}");
                assert!(a["annotations"]["summary"].is_string(), "{a}");
                let active_at = a["activeAt"].as_str().unwrap();
                assert!(active_at.ends_with('Z') && active_at.contains('T'), "{a}");
                a["value"].as_str().unwrap().parse::<f64>().unwrap();
                Alert {
                    name: a["labels"]["alertname"].as_str().unwrap().to_string(),
                    state,
                    labels: a["labels"].clone(),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
struct Series {
    metric: BTreeMap<String, String>,
    value: f64,
}

impl Series {
    fn label(&self, name: &str) -> &str {
        self.metric.get(name).map_or("", String::as_str)
    }
}

#[derive(Debug)]
struct Alert {
    name: String,
    state: String,
    labels: Value,
}

fn sample(pair: &Value) -> f64 {
    let pair = pair.as_array().expect("a sample is [time, value]");
    assert_eq!(pair.len(), 2);
    assert!(
        pair[0].as_f64().unwrap() > 1.0e9,
        "time in Unix seconds: {pair:?}"
    );
    pair[1]
        .as_str()
        .expect("values are strings")
        .parse()
        .unwrap()
}

fn metric(item: &Value) -> BTreeMap<String, String> {
    item["metric"]
        .as_object()
        .expect("metric is an object")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().expect("label values are strings").to_string(),
            )
        })
        .collect()
}

fn vector(data: &Value) -> Vec<Series> {
    assert_eq!(data["resultType"], "vector", "{data}");
    data["result"]
        .as_array()
        .expect("result is a list")
        .iter()
        .map(|item| Series {
            metric: metric(item),
            value: sample(&item["value"]),
        })
        .collect()
}

fn matrix(data: &Value) -> Vec<(BTreeMap<String, String>, Vec<f64>)> {
    assert_eq!(data["resultType"], "matrix", "{data}");
    data["result"]
        .as_array()
        .expect("result is a list")
        .iter()
        .map(|item| {
            let values = item["values"].as_array().expect("values is a list");
            (metric(item), values.iter().map(sample).collect())
        })
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The canary service's error ratio (the stable service has its own series).
fn canary_error_rate(api: &Api) -> f64 {
    let series = api.instant(promql("canary_error_rate"));
    assert_eq!(series.len(), 2, "canary and stable services: {series:?}");
    series
        .iter()
        .find(|s| s.label("destination_service_name") == "checkout-canary")
        .expect("a series for the canary service")
        .value
}

fn promql(id: &str) -> &'static str {
    default_catalogue()
        .into_iter()
        .find(|q| q.id == id)
        .unwrap_or_else(|| panic!("no catalogue query {id}"))
        .promql
}

/// Every endpoint, in the shape the Prometheus / Thanos docs give.
fn check_endpoint_shapes(api: &Api, scenario: Scenario) {
    let end = now().to_string();
    let start = (now() - 3600).to_string();
    for q in default_catalogue() {
        let get = api.get("/api/v1/query", &[("query", q.promql)]);
        let post = api.post("/api/v1/query", &[("query", q.promql), ("time", &end)]);
        for reply in [&get, &post] {
            assert_eq!(reply.status, 200, "{scenario:?} {}: {}", q.id, reply.body);
            vector(&reply.body["data"]);
        }
        let params = [
            ("query", q.promql),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", "5m"),
        ];
        for reply in [
            api.get("/api/v1/query_range", &params),
            api.post("/api/v1/query_range", &params),
        ] {
            assert_eq!(reply.status, 200, "{scenario:?} {}: {}", q.id, reply.body);
            for (_, values) in matrix(&reply.body["data"]) {
                assert!(
                    !values.is_empty() && values.len() <= 13,
                    "{}: {values:?}",
                    q.id
                );
            }
        }
    }
    let scalar = api.data("/api/v1/query", &[("query", "time()")]);
    assert_eq!(scalar["resultType"], "scalar");
    sample(&scalar["result"]);
    let range_selector = api.data("/api/v1/query", &[("query", "ceph_osd_up[2m]")]);
    for (_, values) in matrix(&range_selector) {
        assert_eq!(values.len(), 4, "a 2m window holds four 30s scrapes");
    }

    api.alerts();
    let targets = api.data("/api/v1/targets", &[]);
    let active = targets["activeTargets"].as_array().unwrap();
    assert!(active.len() > 10);
    for t in active {
        for field in [
            "scrapePool",
            "scrapeUrl",
            "globalUrl",
            "lastError",
            "lastScrape",
            "health",
            "scrapeInterval",
            "scrapeTimeout",
        ] {
            assert!(t[field].is_string(), "target.{field}: {t}");
        }
        assert!(
            t["labels"]["instance"].is_string() && t["labels"]["job"].is_string(),
            "{t}"
        );
        assert!(t["discoveredLabels"]["__address__"].is_string(), "{t}");
        assert!(t["lastScrapeDuration"].is_f64(), "{t}");
    }
    assert!(targets["droppedTargets"].as_array().unwrap().is_empty());

    let build = api.data("/api/v1/status/buildinfo", &[]);
    for field in [
        "version",
        "revision",
        "branch",
        "buildUser",
        "buildDate",
        "goVersion",
    ] {
        assert!(build[field].is_string(), "buildinfo.{field}: {build}");
    }
    let labels = api.data("/api/v1/labels", &[]);
    assert!(labels.as_array().unwrap().iter().any(|l| l == "__name__"));
    let names = api.data("/api/v1/label/__name__/values", &[]);
    assert!(
        names
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "DCGM_FI_DEV_GPU_UTIL")
    );
    let series = api.data(
        "/api/v1/series",
        &[
            ("match[]", "ceph_osd_in"),
            ("match[]", "ceph_health_status"),
        ],
    );
    assert_eq!(series.as_array().unwrap().len(), 7, "{series}");
    assert!(series[0]["__name__"].is_string());

    let stores = api.data("/api/v1/stores", &[]);
    for (kind, count) in [("sidecar", 2), ("store", 1), ("rule", 1)] {
        let list = stores[kind]
            .as_array()
            .unwrap_or_else(|| panic!("stores.{kind}: {stores}"));
        assert_eq!(list.len(), count, "{kind}");
        for s in list {
            assert!(s["name"].is_string() && s["lastCheck"].is_string(), "{s}");
            assert!(
                s["lastError"].is_null() || s["lastError"].is_string(),
                "{s}"
            );
            assert!(s["labelSets"].is_array(), "{s}");
            assert!(
                s["minTime"].as_i64().unwrap() < s["maxTime"].as_i64().unwrap(),
                "{s}"
            );
        }
    }
    let store = &stores["store"][0];
    assert!(
        store["minTime"].as_i64().unwrap() < (now() - 90 * 86_400) * 1000,
        "months of blocks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_in_the_documented_shape_in_every_scenario() {
    for &scenario in Scenario::value_variants() {
        let lab = start(scenario).await;
        check_endpoint_shapes(&lab.api, scenario);
        // A GPU held idle is part of the GPU pool's trouble only.
        let idle = lab.api.instant(promql("gpu_idle_allocated"));
        if scenario == Scenario::GpuHot {
            assert!(!idle.is_empty(), "{scenario:?}: no idle allocated GPU");
            assert!(
                idle.iter()
                    .all(|s| s.value < 5.0 && !s.label("pod").is_empty())
            );
        } else {
            assert!(idle.is_empty(), "{scenario:?}: {} idle GPUs", idle.len());
        }
        lab.server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_answers_every_catalogue_query_within_its_targets() {
    let lab = start(Scenario::Healthy).await;
    let api = &lab.api;
    for q in default_catalogue() {
        if q.id == "gpu_idle_allocated" {
            // A problem query: a healthy pool has nothing to report.
            assert!(api.instant(q.promql).is_empty(), "a healthy GPU idles");
            continue;
        }
        assert!(!api.instant(q.promql).is_empty(), "{} has no data", q.id);
        if let Some(fallback) = fallback_promql(q.id) {
            assert!(
                !api.instant(fallback).is_empty(),
                "{}'s fallback has no data",
                q.id
            );
        }
    }
    let p99 = api.instant(promql("apiserver_p99_latency"));
    assert_eq!(p99.len(), 3, "one series per API server");
    assert!(
        p99.iter().all(|s| (0.12..=0.25).contains(&s.value)),
        "{p99:?}"
    );
    let availability = api.scalar(promql("apiserver_availability"));
    assert!((0.9999..1.0).contains(&availability), "{availability}");
    assert!((2.0..3.0).contains(&api.scalar(promql("pod_startup_p99"))));
    let cross_az = api.instant(promql("cross_az_latency"));
    assert_eq!(cross_az.len(), 6, "every ordered pair of three zones");
    assert!(
        cross_az.iter().all(|s| (0.0015..=0.003).contains(&s.value)),
        "{cross_az:?}"
    );
    assert!(canary_error_rate(api) < 0.01);
    for s in api.instant(BUSY_UTIL) {
        assert!((30.0..=70.0).contains(&s.value), "busy GPU util {s:?}");
    }
    for s in api.instant(BUSY_TEMP) {
        assert!(
            (55.0..=70.0).contains(&s.value),
            "busy GPU temperature {s:?}"
        );
    }
    let gpu = &api.instant("DCGM_FI_DEV_FB_FREE")[0];
    for label in ["gpu", "UUID", "device", "modelName", "Hostname"] {
        assert!(!gpu.label(label).is_empty(), "dcgm label {label}: {gpu:?}");
    }
    assert_eq!(api.scalar("ceph_health_status"), 0.0);
    assert!(api.instant("ceph_osd_up").iter().all(|s| s.value == 1.0));
    assert!(api.instant("ceph_osd_in").iter().all(|s| s.value == 1.0));
    let age = api.scalar(promql("velero_backup_age"));
    assert!(
        (0.0..26.0 * 3600.0).contains(&age),
        "last backup {age} s ago"
    );
    let names: Vec<String> = api.alerts().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["Watchdog"]);
    lab.server.shutdown().await;
}

fn firing(alerts: &[Alert], name: &str) -> usize {
    alerts
        .iter()
        .filter(|a| a.name == name && a.state == "firing")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_moves_its_series_the_right_way() {
    let healthy = start(Scenario::Healthy).await;
    let ok = &healthy.api;

    let lab = start(Scenario::AzFailure).await;
    let api = &lab.api;
    let p99 = api.instant(promql("apiserver_p99_latency"));
    assert_eq!(
        p99.len(),
        2,
        "the lost zone's API server has no series: {p99:?}"
    );
    assert!(p99.iter().all(|s| s.value > 0.5), "{p99:?}");
    assert!(
        !p99.iter()
            .any(|s| s.label("instance").starts_with("10.0.3."))
    );
    let availability = api.scalar(promql("apiserver_availability"));
    assert!(availability < ok.scalar(promql("apiserver_availability")) && availability < 0.9999);
    assert!(api.scalar(promql("pod_startup_p99")) > ok.scalar(promql("pod_startup_p99")));
    let cross_az = api.instant(promql("cross_az_latency"));
    assert_eq!(cross_az.len(), 2, "{cross_az:?}");
    assert!(
        cross_az
            .iter()
            .all(|s| s.label("source_zone") != LOST_ZONE && s.label("target_zone") != LOST_ZONE)
    );
    let probes = api.instant(&format!(r#"probe_success{{target_zone="{LOST_ZONE}"}}"#));
    assert!(
        !probes.is_empty() && probes.iter().all(|s| s.value == 0.0),
        "{probes:?}"
    );
    assert!(
        api.instant(&format!(
            r#"DCGM_FI_DEV_GPU_UTIL{{Hostname="{LOST_GPU_NODE}"}}"#
        ))
        .is_empty()
    );
    assert!(
        !ok.instant(&format!(
            r#"DCGM_FI_DEV_GPU_UTIL{{Hostname="{LOST_GPU_NODE}"}}"#
        ))
        .is_empty()
    );
    assert_eq!(
        api.scalar(r#"up{job="kubelet", node="cp-eu-west-1c"}"#),
        0.0
    );
    let down = api.instant(r#"up{job="kubelet"} == 0"#);
    assert_eq!(
        down.len(),
        4,
        "cp, two workers and the GPU node of the lost zone: {down:?}"
    );
    assert!(
        down.iter()
            .all(|s| s.label("__name__") == "up" && s.value == 0.0)
    );
    let flags = api.instant(r#"up{job="kubelet"} == bool 0"#);
    assert_eq!(flags.iter().filter(|s| s.value == 1.0).count(), 4);
    assert_eq!(flags.len(), 11, "every kubelet, flagged");
    let alerts = api.alerts();
    for name in [
        "KubeNodeNotReady",
        "etcdMembersDown",
        "TargetDown",
        "CephMonDown",
        "CephOSDDownHigh",
    ] {
        assert!(firing(&alerts, name) > 0, "{name} not firing: {alerts:?}");
    }
    let stores = api.data("/api/v1/stores", &[]);
    let failing: Vec<&Value> = stores["sidecar"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["lastError"].is_string())
        .collect();
    assert_eq!(failing.len(), 1, "{stores}");
    let targets = api.data("/api/v1/targets", &[("state", "active")]);
    let down = targets["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["health"] == "down")
        .count();
    assert!(down > 0);
    lab.server.shutdown().await;

    let lab = start(Scenario::EtcdNospace).await;
    assert_eq!(firing(&lab.api.alerts(), "etcdDatabaseQuotaLowSpace"), 3);
    for s in lab.api.instant("etcd_mvcc_db_total_size_in_bytes") {
        assert!(s.value > 2_147_483_648.0, "{s:?}");
    }
    assert!(
        lab.api.scalar(promql("apiserver_availability"))
            < ok.scalar(promql("apiserver_availability"))
    );
    lab.server.shutdown().await;

    let lab = start(Scenario::CanaryBad).await;
    let rate = canary_error_rate(&lab.api);
    assert!((0.07..0.09).contains(&rate), "canary error rate {rate}");
    assert_eq!(firing(&lab.api.alerts(), "CanaryErrorRateHigh"), 1);
    lab.server.shutdown().await;

    let lab = start(Scenario::BackupStale).await;
    let last = "velero_backup_last_successful_timestamp";
    let behind = ok.scalar(last) - lab.api.scalar(last);
    assert!(
        (3.0 * 86_400.0 - 60.0..3.0 * 86_400.0 + 60.0).contains(&behind),
        "{behind}"
    );
    assert!(lab.api.scalar(promql("velero_backup_age")) > 3.0 * 86_400.0);
    assert!(
        lab.api.scalar("velero_backup_failure_total") > ok.scalar("velero_backup_failure_total")
    );
    assert_eq!(firing(&lab.api.alerts(), "VeleroBackupStale"), 1);
    lab.server.shutdown().await;

    let lab = start(Scenario::CephDegraded).await;
    assert_eq!(lab.api.scalar("ceph_health_status"), 1.0);
    let down: Vec<Series> = lab
        .api
        .instant("ceph_osd_up")
        .into_iter()
        .filter(|s| s.value == 0.0)
        .collect();
    assert_eq!(down.len(), 1, "{down:?}");
    let osd = down[0].label("ceph_daemon");
    assert_eq!(
        osd, "osd.1",
        "the OSD the kube view's CephCluster reports down"
    );
    assert_eq!(
        lab.api
            .scalar(&format!(r#"ceph_osd_in{{ceph_daemon="{osd}"}}"#)),
        0.0,
        "out after 10 minutes"
    );
    let alerts = lab.api.alerts();
    assert_eq!(firing(&alerts, "CephOSDDownHigh"), 1);
    assert_eq!(
        firing(&alerts, "CephOSDDown"),
        1,
        "down for 12 minutes, `for: 5m`"
    );
    let warning = alerts
        .iter()
        .find(|a| a.name == "CephHealthWarning")
        .expect("CephHealthWarning");
    assert_eq!(warning.state, "pending", "`for: 15m` has not passed yet");
    lab.server.shutdown().await;

    let lab = start(Scenario::GpuHot).await;
    let temps = lab.api.instant(BUSY_TEMP);
    assert!(
        !temps.is_empty() && temps.iter().all(|s| (94.0..=96.0).contains(&s.value)),
        "{temps:?}"
    );
    let utils = lab.api.instant(BUSY_UTIL);
    assert!(utils.iter().all(|s| s.value >= 98.0), "{utils:?}");
    assert!(ok.instant(BUSY_TEMP).iter().all(|s| s.value <= 70.0));
    assert_eq!(firing(&lab.api.alerts(), "GPUTemperatureHigh"), 2);
    lab.server.shutdown().await;
    healthy.server.shutdown().await;
}

/// Polls `check` for up to 2 s: the server applies a fault change asynchronously.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..40 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within 2 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_follow_faults_changed_live() {
    let lab = start(Scenario::Healthy).await;
    let api = &lab.api;
    let gpu_a = r#"DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-eu-west-1a-0"}"#;
    assert_eq!(api.instant(gpu_a).len(), 8);
    lab.faults
        .send_modify(|f| f.zone_down = Some("eu-west-1a".into()));
    eventually("the lost zone's GPU series vanishing", || {
        api.instant(gpu_a).is_empty()
    });
    let alerts = api.alerts();
    let not_ready = alerts
        .iter()
        .find(|a| a.name == "KubeNodeNotReady")
        .expect("KubeNodeNotReady");
    assert_eq!(not_ready.state, "pending", "just lost, not yet 15 minutes");
    assert_eq!(not_ready.labels["node"], "cp-eu-west-1a");
    assert_eq!(
        firing(&alerts, "CephOSDDownHigh"),
        1,
        "no `for`, fires at once"
    );
    assert_eq!(api.instant(promql("apiserver_p99_latency")).len(), 2);

    // A range query shows the healthy past and the lost present.
    let end = now() + 1;
    let range = api.data(
        "/api/v1/query_range",
        &[
            ("query", r#"up{job="kubelet", node="cp-eu-west-1a"}"#),
            ("start", &(end - 600).to_string()),
            ("end", &end.to_string()),
            ("step", "60"),
        ],
    );
    let series = matrix(&range);
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].1.len(), 11);
    assert_eq!(series[0].1.first(), Some(&1.0));
    assert_eq!(series[0].1.last(), Some(&0.0));

    lab.faults.send_modify(|f| f.zone_down = None);
    eventually("the GPU series returning", || api.instant(gpu_a).len() == 8);
    assert_eq!(api.alerts().len(), 1, "only Watchdog");
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_get_400_bad_data() {
    let lab = start(Scenario::Healthy).await;
    let now = now().to_string();
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("/api/v1/query", &[]),
        ("/api/v1/query", &[("query", "sum(rate(up[5m])")]),
        ("/api/v1/query", &[("query", "up"), ("time", "yesterday")]),
        ("/api/v1/query", &[("query", "up"), ("timeout", "soon")]),
        ("/api/v1/query", &[("query", r#"up{job=~"("}"#)]),
        (
            "/api/v1/query_range",
            &[("query", "up"), ("start", &now), ("end", &now)],
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "abc"),
                ("end", &now),
                ("step", "15s"),
            ],
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", &now),
                ("end", "1"),
                ("step", "15s"),
            ],
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", &now),
                ("end", &now),
                ("step", "0"),
            ],
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", &now),
                ("step", "1"),
            ],
        ),
        (
            "/api/v1/query_range",
            &[
                ("query", "up[5m]"),
                ("start", &now),
                ("end", &now),
                ("step", "15"),
            ],
        ),
        ("/api/v1/series", &[]),
    ];
    for (path, params) in cases {
        for reply in [lab.api.get(path, params), lab.api.post(path, params)] {
            assert_eq!(reply.status, 400, "{path} {params:?}: {}", reply.body);
            assert_eq!(reply.body["status"], "error");
            assert_eq!(reply.body["errorType"], "bad_data");
            assert!(!reply.body["error"].as_str().unwrap().is_empty());
        }
    }
    // Unknown metrics are not an error, just no data.
    assert!(lab.api.instant("no_such_metric").is_empty());
    assert!(lab.api.instant("sum(rate(no_such_metric[5m]))").is_empty());
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_http_query_client_parses_the_answers() {
    use prometheus_http_query::{Client, Error, Selector};

    let lab = start(Scenario::AzFailure).await;
    // kha builds reqwest without a default TLS provider (rustls-no-provider, so no
    // aws-lc); a client built the default way needs ring installed as the default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_from(lab.server.url().as_str()).unwrap();
    for q in default_catalogue() {
        if q.id == "gpu_idle_allocated" {
            // Answers only in gpu-hot (checked in the endpoint-shape test).
            continue;
        }
        let got = client.query(q.promql).get().await.unwrap();
        assert!(!got.data().as_vector().unwrap().is_empty(), "{}", q.id);
        let posted = client.query(q.promql).timeout(1000).post().await.unwrap();
        assert!(posted.data().as_vector().is_some());
        let range = client
            .query_range(q.promql, now() - 3600, now(), 60.0)
            .get()
            .await
            .unwrap();
        let series = range.data().as_matrix().unwrap();
        assert!(
            !series.is_empty() && series[0].samples().len() > 50,
            "{}",
            q.id
        );
    }
    let scalar = client.query("time()").get().await.unwrap();
    assert!(scalar.data().as_scalar().is_some());
    let alerts = client.alerts().await.unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.labels()["alertname"] == "etcdMembersDown")
    );
    let targets = client.targets(None).await.unwrap();
    assert!(
        targets
            .active()
            .iter()
            .any(|t| t.last_error().contains("deadline"))
    );
    assert_eq!(
        client.build_information().await.unwrap().version(),
        "0.37.2"
    );
    let found = client
        .series(&[Selector::new().metric("ceph_osd_up")])
        .unwrap()
        .get()
        .await
        .unwrap();
    assert_eq!(found.len(), 6);
    let names = client.label_names().get().await.unwrap();
    assert!(names.iter().any(|n| n == "ceph_daemon"));
    match client
        .query_range("up", now(), now() - 60, 15.0)
        .get()
        .await
    {
        Err(Error::Prometheus(e)) => assert!(e.is_bad_data(), "{e}"),
        other => panic!("expected bad_data, got {other:?}"),
    }
    lab.server.shutdown().await;
}

/// The KPI source (what `kha demo` runs) against the lab: every default KPI has a value;
/// the healthy lab meets them all, a lost zone misses the API P99 and a bad canary the
/// 5 % error rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpi_source_reads_every_kpi_from_the_lab() {
    use kha::model::finding::Health;
    use kha::model::kpi::{KpiReading, kpi_defs};
    use kha::model::status::KpiReport;
    use kha::sources::prometheus::{KpiProber, PrometheusSourceConfig};

    let defs = kpi_defs(&Default::default()).unwrap();
    for (scenario, breached) in [
        (Scenario::Healthy, None),
        (Scenario::AzFailure, Some("apiserver_p99_latency")),
        (Scenario::CanaryBad, Some("canary_error_rate")),
    ] {
        let lab = start(scenario).await;
        let config = PrometheusSourceConfig::new(lab.server.url(), defs.clone());
        let mut prober = KpiProber::new(config).unwrap();
        let obs = prober.probe().await;
        assert!(obs.unreachable.is_none(), "{scenario:?}: {obs:?}");
        for r in &obs.results {
            assert!(
                matches!(r.reading, KpiReading::Value { .. }),
                "{scenario:?}: {} has no value: {:?}",
                r.id,
                r.reading
            );
        }
        let report = KpiReport::from_observation(&defs, &obs);
        match breached {
            None => assert_eq!(report.status, Health::Ok, "{:?}", report.findings),
            Some(id) => {
                let row = report.rows.iter().find(|r| r.id == id).unwrap();
                assert_eq!(
                    row.status,
                    Health::Crit,
                    "{scenario:?}: {id} {:?}",
                    row.value
                );
            }
        }
    }
}
