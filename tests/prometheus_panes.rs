//! The Thanos / metrics pane's source against a real Prometheus 2.42 (rules firing over
//! backfilled data, a scrape target on a dead loopback port, "not Thanos"), against the
//! lab posing as Thanos Query, and against fixture JSON (a Thanos whose 5m data fall
//! short of the retention); Prometheus down, hanging and answering errors; the cockpit
//! loop staying responsive while the source hangs.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::haproxy::free_port;
use common::prometheus::{self as prom, exporter_fixtures, unix_now};
use kha::lab::metrics::MetricsServer;
use kha::lab::topology::{Faults, LabSpec, Scenario, Topology};
use kha::model::finding::Health;
use kha::model::status::{AlertsReport, ThanosReport};
use kha::model::thanos::{
    Fetched, MetricsObservation, Reach, Resolution, RetentionSettings, StoresReading,
};
use kha::sources::prometheus::PrometheusSourceConfig;
use kha::sources::prometheus_status::MetricsStatusProber;

const RULES: &str = r#"groups:
  - name: kha-test
    rules:
      - alert: Watchdog
        expr: vector(1)
        labels:
          severity: none
      - alert: GPUTemperatureHigh
        expr: max by (Hostname) (DCGM_FI_DEV_GPU_TEMP) >= 90
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: A GPU is hotter than 90 °C.
      - alert: CephHealthWarning
        expr: ceph_health_status == 1
        for: 1h
        labels:
          severity: warning
"#;

fn config(url: &str) -> PrometheusSourceConfig {
    let mut c = PrometheusSourceConfig::new(url.to_string(), Vec::new());
    c.timeout = Duration::from_millis(800);
    c
}

fn prober(url: &str) -> MetricsStatusProber {
    MetricsStatusProber::new(&config(url), RetentionSettings::default()).unwrap()
}

/// Probes until `done` holds (rules need a few evaluations, targets a scrape), at most 60 s;
/// returns the last observation either way, for the assertions to explain.
async fn probe_until(url: &str, done: impl Fn(&MetricsObservation) -> bool) -> MetricsObservation {
    let p = prober(url);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let obs = p.probe().await;
        if done(&obs) || Instant::now() > deadline {
            return obs;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn firing_names(obs: &MetricsObservation) -> Vec<String> {
    obs.firing().iter().map(|a| a.name.clone()).collect()
}

/// A real Prometheus: `/api/v1/stores` is 404, so "not Thanos", and no retention check;
/// build info, the dead target and the firing/pending alerts are all read.
#[tokio::test]
async fn real_prometheus_is_not_thanos_and_the_rest_works() {
    let dead = free_port();
    let scrape = format!(
        "scrape_configs:\n  - job_name: dead-exporter\n    static_configs:\n      - targets: ['127.0.0.1:{dead}']\n"
    );
    let p = prom::start(
        &format!("{}# EOF\n", exporter_fixtures(unix_now() - 5)),
        RULES,
        &scrape,
    )
    .await;
    let obs = probe_until(&p.url, |o| {
        firing_names(o).contains(&"GPUTemperatureHigh".to_string())
            && o.targets.value().is_some_and(|t| t.down.len() == 1)
    })
    .await;
    let log = p.log();
    assert!(obs.unreachable.is_none(), "{obs:?}\n{log}");
    assert_eq!(obs.stores, StoresReading::NotThanos, "{obs:?}");
    assert!(
        obs.retention.is_empty(),
        "no retention check without Thanos"
    );
    let build = obs.build.value().expect("build info");
    assert!(build.version.starts_with("2.42"), "{build:?}");

    let targets = obs.targets.value().expect("targets");
    assert_eq!(targets.total, 1, "{targets:?}");
    let down = &targets.down[0];
    assert_eq!(down.job, "dead-exporter");
    assert_eq!(down.instance, format!("127.0.0.1:{dead}"));
    assert!(
        down.last_error.contains("refused"),
        "the scrape error is kept: {down:?}"
    );

    let alerts = obs.alerts.value().expect("alerts");
    let hot = alerts
        .iter()
        .find(|a| a.name == "GPUTemperatureHigh")
        .unwrap_or_else(|| panic!("{alerts:?}\n{log}"));
    assert!(hot.firing);
    assert_eq!(hot.severity, "critical");
    assert_eq!(
        hot.labels.get("Hostname").map(String::as_str),
        Some("gpu-a")
    );
    let ceph = alerts
        .iter()
        .find(|a| a.name == "CephHealthWarning")
        .expect("pending alert listed");
    assert!(!ceph.firing, "for: 1h keeps it pending");

    let findings = obs.findings();
    let messages: Vec<(Health, &str)> = findings
        .iter()
        .map(|f| (f.severity, f.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        [
            (
                Health::Crit,
                "alert GPUTemperatureHigh firing (critical): A GPU is hotter than 90 °C."
            ),
            (
                Health::Warn,
                &*format!("1 of 1 scrape targets down: dead-exporter/127.0.0.1:{dead}")
            ),
        ],
        "Watchdog (severity none) and pending alerts are no findings"
    );

    let report = ThanosReport::from_observation(&obs);
    assert_eq!(report.status, Health::Crit);
    assert!(!report.is_thanos);
    assert!(
        report
            .stores_note
            .as_deref()
            .unwrap()
            .contains("not Thanos")
    );
    let alerts = AlertsReport::from_observation(&obs);
    assert_eq!(alerts.pending, 1);
    assert_eq!(
        alerts
            .firing
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["GPUTemperatureHigh", "Watchdog"],
        "worst first"
    );

    // `kha status --json` carries the same under `thanos` and `alerts`.
    let (json, code) = kha_status(&p.url);
    assert_eq!(json["thanos"]["configured"], true, "{json}");
    assert_eq!(json["thanos"]["is_thanos"], false);
    assert_eq!(json["thanos"]["status"], "crit");
    assert!(
        json["thanos"]["build"]["version"]
            .as_str()
            .unwrap()
            .starts_with("2.42")
    );
    assert_eq!(json["thanos"]["targets_down"][0]["job"], "dead-exporter");
    assert_eq!(json["alerts"]["firing"][0]["name"], "GPUTemperatureHigh");
    assert_eq!(json["alerts"]["firing"][0]["severity"], "critical");
    assert_eq!(json["overall"], "crit");
    assert_eq!(code, Some(2));
}

/// `kha status --json` with only the Prometheus URL set (an empty config dir).
fn kha_status(url: &str) -> (serde_json::Value, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["status", "--json"])
        .env("KHA_CONFIG_DIR", dir.path())
        .env("KHA_PROMETHEUS_URL", url)
        .env_remove("KUBECONFIG")
        .env_remove("KHA_ETCD_ENDPOINTS")
        .env_remove("KHA_APISERVER_BACKENDS")
        .env_remove("KHA_LB_STATS")
        .env_remove("KHA_PROMETHEUS_USER")
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

/// The lab poses as Thanos Query: four stores, every resolution reaching back as far as
/// the default retention promises; a lost zone fails its sidecar and fires alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_thanos_stores_retention_and_a_lost_zone() {
    let topology = Topology::generate(&LabSpec::default());
    let (faults, rx) =
        tokio::sync::watch::channel(Faults::for_scenario(Scenario::Healthy, &topology));
    let server = MetricsServer::start(topology, rx, 42).await.unwrap();
    let obs = prober(&server.url()).probe().await;
    let StoresReading::Stores { stores } = &obs.stores else {
        panic!("the lab serves /api/v1/stores: {obs:?}");
    };
    let kinds: Vec<&str> = stores.iter().map(|s| s.component.as_str()).collect();
    assert_eq!(kinds, ["rule", "sidecar", "sidecar", "store"]);
    assert!(stores.iter().all(|s| s.healthy()));
    let reach: Vec<(Resolution, &Reach)> = obs
        .retention
        .iter()
        .map(|c| (c.resolution, &c.reach))
        .collect();
    assert_eq!(
        reach,
        [
            (Resolution::Raw, &Reach::Reaches),
            (Resolution::FiveMinutes, &Reach::Reaches),
            (Resolution::OneHour, &Reach::Reaches),
        ]
    );
    assert_eq!(obs.build.value().unwrap().version, "0.37.2");
    assert_eq!(obs.findings(), vec![], "healthy lab: only Watchdog fires");
    assert_eq!(firing_names(&obs), ["Watchdog"]);

    // Numbers, not assertions: a round (4 status requests + 3 retention queries, and the
    // 10 exporter queries) against the lab, 20 times.
    let p = prober(&server.url());
    let mut took: Vec<Duration> = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let _ = tokio::join!(p.probe(), p.probe_exporters());
        took.push(started.elapsed());
    }
    took.sort();
    eprintln!(
        "metrics round against the lab: min {:?} median {:?} max {:?}",
        took[0], took[10], took[19]
    );

    // A raw retention longer than the lab keeps (15 d) falls short, and says so.
    let long = RetentionSettings {
        raw: Duration::from_secs(60 * 86_400),
        ..Default::default()
    };
    let obs = MetricsStatusProber::new(&config(&server.url()), long)
        .unwrap()
        .probe()
        .await;
    assert_eq!(obs.retention[0].reach, Reach::FallsShort);
    assert!(
        obs.findings()
            .iter()
            .any(|f| f.message == "raw data do not reach back 60d as the retention promises"),
        "{:?}",
        obs.findings()
    );

    faults.send_modify(|f| f.zone_down = Some("eu-west-1c".into()));
    let obs = prober(&server.url()).probe().await;
    let findings = obs.findings();
    assert!(
        findings.iter().any(|f| f.severity == Health::Warn
            && f.message.starts_with("Thanos sidecar ")
            && f.message.contains("DeadlineExceeded")),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.message.contains("scrape targets down")),
        "{findings:?}"
    );
    // CephOSDDownHigh fires at once; KubeNodeNotReady waits out its `for: 15m`.
    assert_eq!(firing_names(&obs), ["CephOSDDownHigh", "Watchdog"]);
    assert!(
        obs.alerts
            .value()
            .unwrap()
            .iter()
            .any(|a| a.name == "KubeNodeNotReady" && !a.firing)
    );
    assert_eq!(findings[0].severity, Health::Crit, "{findings:?}");
    assert!(
        findings[0]
            .message
            .starts_with("alert CephOSDDownHigh firing (critical)")
    );
    server.shutdown().await;
}

/// A loopback HTTP server answering each request with `answer(path_and_query)`.
fn fixture_server(answer: fn(&str) -> (u16, String)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
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
            let text = String::from_utf8_lossy(&request);
            let target = text.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, body) = answer(&target);
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

const STORES: &str = include_str!("fixtures/thanos_stores.json");

/// Thanos Query as fixture JSON (recorded shapes): one sidecar failing, and 5m data that
/// do not reach back 180 days.
fn short_thanos(target: &str) -> (u16, String) {
    let ok = |data: &str| (200, format!(r#"{{"status":"success","data":{data}}}"#));
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/api/v1/stores" => (200, STORES.to_string()),
        "/api/v1/status/buildinfo" => ok(
            r#"{"version":"0.37.2","revision":"x","branch":"HEAD","buildUser":"r","buildDate":"d","goVersion":"go1.23.4"}"#,
        ),
        "/api/v1/targets" => ok(
            r#"{"activeTargets":[{"labels":{"job":"kubelet","instance":"10.0.1.1:10250"},"scrapePool":"kubelet","scrapeUrl":"https://10.0.1.1:10250/metrics","lastError":"","health":"up"}],"droppedTargets":[]}"#,
        ),
        "/api/v1/alerts" => ok(r#"{"alerts":[]}"#),
        "/api/v1/query" if target.contains("max_source_resolution=5m") => {
            ok(r#"{"resultType":"vector","result":[]}"#)
        }
        "/api/v1/query" => {
            ok(r#"{"resultType":"vector","result":[{"metric":{},"value":[1764484800,"42"]}]}"#)
        }
        _ => (404, "404 page not found".into()),
    }
}

#[tokio::test]
async fn fixture_thanos_says_which_resolution_falls_short() {
    let url = fixture_server(short_thanos);
    let obs = prober(&url).probe().await;
    assert!(obs.is_thanos(), "{obs:?}");
    let reach: Vec<&Reach> = obs.retention.iter().map(|c| &c.reach).collect();
    assert_eq!(
        reach,
        [&Reach::Reaches, &Reach::FallsShort, &Reach::Reaches]
    );
    let messages: Vec<String> = obs.findings().into_iter().map(|f| f.message).collect();
    assert_eq!(
        messages,
        [
            "Thanos sidecar 10.42.2.31:10901 unhealthy: fallback fetching info from \
             10.42.2.31:10901: rpc error: code = DeadlineExceeded desc = context deadline \
             exceeded",
            "5m data do not reach back 180d as the retention promises",
        ]
    );
    let report = ThanosReport::from_observation(&obs);
    assert_eq!(report.status, Health::Warn);
    assert_eq!(report.stores.len(), 4);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["retention"][1]["resolution"], "five_minutes");
    assert_eq!(json["retention"][1]["reach"]["kind"], "falls_short");
    assert_eq!(json["stores"][1]["max_time_ms"], i64::MAX);
}

/// Errors from the API: a 500 with Prometheus' error JSON, HTML from a proxy, malformed
/// JSON. Each part says what went wrong; nothing panics; not knowing is unknown.
fn broken(target: &str) -> (u16, String) {
    match target.split('?').next().unwrap_or("") {
        "/api/v1/stores" => (502, "<html>Bad Gateway</html>".into()),
        "/api/v1/status/buildinfo" => (200, r#"{"status":"success","data":{"version":"#.into()),
        "/api/v1/targets" => (
            500,
            r#"{"status":"error","errorType":"internal","error":"targets exploded"}"#.into(),
        ),
        "/api/v1/alerts" => (200, r#"{"status":"success","data":{"alerts":7}}"#.into()),
        _ => (404, String::new()),
    }
}

#[tokio::test]
async fn api_errors_are_said_per_part_and_unknown() {
    let url = fixture_server(broken);
    let obs = prober(&url).probe().await;
    assert!(obs.unreachable.is_none(), "it answered, badly");
    let StoresReading::Failed { error } = &obs.stores else {
        panic!("{obs:?}");
    };
    assert!(error.contains("502"), "{error}");
    assert!(obs.build.error().unwrap().contains("not Prometheus JSON"));
    assert!(obs.targets.error().unwrap().contains("targets exploded"));
    assert!(obs.alerts.error().unwrap().contains("no alerts list"));
    let findings = obs.findings();
    assert_eq!(findings.len(), 4, "{findings:?}");
    assert!(findings.iter().all(|f| f.severity == Health::Unknown));
    assert_eq!(ThanosReport::from_observation(&obs).status, Health::Unknown);
}

#[tokio::test]
async fn prometheus_down_is_unreachable_and_unknown() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let obs = prober(&url).probe().await;
    let why = obs.unreachable.clone().expect("unreachable");
    assert!(why.to_lowercase().contains("refused"), "{why}");
    assert_eq!(obs.findings()[0].severity, Health::Unknown);
    let report = ThanosReport::from_observation(&obs);
    assert_eq!(report.status, Health::Unknown);
    assert_eq!(report.error.as_deref(), Some(why.as_str()));
    assert_eq!(
        AlertsReport::from_observation(&obs).error.as_deref(),
        Some(why.as_str())
    );
}

/// A listener that accepts and never answers: longer than any timeout.
fn hanging_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    url
}

#[tokio::test]
async fn prometheus_that_never_answers_times_out_as_unreachable() {
    let url = hanging_listener();
    let obs = prober(&url).probe().await;
    let why = obs.unreachable.clone().expect("unreachable");
    assert!(why.contains("timed out"), "{why}");
    assert!(matches!(obs.alerts, Fetched::Failed { .. }));
    assert_eq!(ThanosReport::from_observation(&obs).status, Health::Unknown);
}

/// The real run loop with the metrics source stuck on a listener that never answers (and
/// a 30 s timeout): keys still move the cockpit to the Thanos pane and quit it.
#[tokio::test]
async fn cockpit_stays_responsive_while_the_metrics_source_hangs() {
    use kha::config::keymap::Keymap;
    use kha::config::theme::Theme;
    use kha::model::{Action, Msg, PaneId, Screen};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    let url = hanging_listener();
    let mut c = config(&url);
    c.timeout = Duration::from_secs(30);
    let source_prober = MetricsStatusProber::new(&c, RetentionSettings::default()).unwrap();
    let keymap = Keymap::shipped("default").unwrap();
    let theme = Theme::shipped("default").unwrap();
    let cockpit = kha::app::Cockpit {
        theme: &theme,
        keymap: &keymap,
        lab: None,
        runbooks: None,
        timings: None,
        clipboard: None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let source = tokio::spawn(kha::sources::prometheus_status::run(
        source_prober,
        tx.clone(),
    ));
    tx.send(Msg::MetricsSource(url.clone())).await.unwrap();
    for _ in 0..6 {
        tx.send(Msg::Action(Action::Right)).await.unwrap();
    }
    tx.send(Msg::Action(Action::Open)).await.unwrap();
    let quit = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(Msg::Action(Action::Quit)).await;
    });
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let state = tokio::time::timeout(
        Duration::from_secs(20),
        cockpit.run(&mut terminal, common::state_with(None), rx),
    )
    .await
    .expect("the loop never waits on a query")
    .unwrap();
    source.abort();
    quit.await.unwrap();
    assert_eq!(state.screen, Screen::Pane(PaneId::Metrics));
    assert!(state.metrics.last.is_none(), "the query is still hanging");
    let screen = common::text(terminal.backend().buffer());
    assert!(screen.contains("Thanos / metrics"), "{screen}");
}

fn gpu<'a>(
    gpus: &'a [kha::model::gpu::metrics::GpuDevice],
    host: &str,
    index: &str,
) -> &'a kha::model::gpu::metrics::GpuDevice {
    gpus.iter()
        .find(|g| g.hostname == host && g.gpu == index)
        .unwrap_or_else(|| panic!("no GPU {host}#{index}: {gpus:?}"))
}

fn gpu_node(name: &str) -> kha::model::kube::NodeInfo {
    kha::model::kube::NodeInfo {
        name: name.into(),
        zone: Some("eu-west-1a".into()),
        roles: vec![],
        labels: [("nvidia.com/gpu.present".to_string(), "true".to_string())].into(),
        taints: vec![kha::model::kube::Taint {
            key: "nvidia.com/gpu".into(),
            value: Some("present".into()),
            effect: "NoSchedule".into(),
        }],
        ready: kha::model::kube::Readiness::Ready,
        ready_reason: None,
        pressures: vec![],
        unschedulable: false,
        internal_ip: None,
        gpu_capacity: 3,
        gpu_allocatable: 3,
        kubelet_version: None,
    }
}

/// DCGM, ceph-mgr and Velero series backfilled into a real Prometheus: a 95 °C GPU is a
/// critical finding, 86 °C a warning, a GPU held for two hours at 1 % is idle but
/// allocated while one held for 20 minutes is not; OSD and backup values read back; the
/// GPUs join the kube pane's nodes by `Hostname`; `kha status --json` carries them.
#[tokio::test]
async fn real_prometheus_dcgm_ceph_and_velero_series() {
    use kha::model::exporters::MetricsStatus;
    use kha::model::kube::{FeedChange, KubeMsg};
    use kha::model::{Msg, update};

    let end = unix_now() - 5;
    let p = prom::start(&format!("{}# EOF\n", exporter_fixtures(end)), "", "").await;
    let obs = prober(&p.url).probe_exporters().await;
    assert!(obs.unreachable.is_none(), "{obs:?}\n{}", p.log());
    let gpus = obs.gpu.value().expect("DCGM read");
    assert_eq!(gpus.len(), 5, "{gpus:?}");
    let hot = gpu(gpus, "gpu-a", "0");
    assert_eq!(hot.temp_celsius, Some(95.0));
    assert_eq!(hot.util_percent, Some(80.0));
    assert_eq!(hot.fb_used_mib, Some(60_000.0));
    assert_eq!(hot.fb_free_mib, Some(81_920.0 - 512.0 - 60_000.0));
    assert_eq!(hot.power_watts, Some(350.0));
    assert_eq!(hot.pod.as_deref(), Some("ml/infer-1"));
    assert_eq!(hot.model.as_deref(), Some("NVIDIA A100-SXM4-80GB"));
    assert_eq!(gpu(gpus, "gpu-a", "1").idle_for_an_hour, Some(1.0));
    assert_eq!(
        gpu(gpus, "gpu-b", "1").idle_for_an_hour,
        None,
        "held for 20 minutes only"
    );
    assert_eq!(gpu(gpus, "gpu-a", "2").idle_for_an_hour, None, "not held");

    let ceph = match &obs.ceph {
        Fetched::Read { value: Some(c) } => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(ceph.health_status, Some(1.0));
    assert_eq!(ceph.health_word(), Some("HEALTH_WARN"));
    assert_eq!((ceph.osds_total, ceph.osds_up, ceph.osds_in), (3, 2, 3));
    assert_eq!(ceph.osds_down, ["osd.2"]);
    let velero = match &obs.velero {
        Fetched::Read { value: Some(v) } => v,
        other => panic!("{other:?}"),
    };
    let schedules: Vec<(&str, f64)> = velero
        .schedules
        .iter()
        .map(|s| (s.schedule.as_str(), s.last_success_unix))
        .collect();
    assert_eq!(
        schedules,
        [
            ("daily", (end - 3 * 3600) as f64),
            ("hourly-db", (end - 30 * 3600) as f64)
        ]
    );
    assert_eq!(velero.schedules[0].health(), Health::Ok);
    assert_eq!(velero.schedules[1].health(), Health::Warn, "30 h > 26 h");

    // Joined to the kube pane's GPU nodes by Hostname.
    let mut state = common::state_with(None);
    state.kube.configured = true;
    state.kube.apply(
        common::T0,
        KubeMsg::Nodes(FeedChange::Reset(vec![gpu_node("gpu-a")])),
    );
    update(&mut state, Msg::Exporters(obs.clone()));
    let view = state.gpu();
    assert_eq!(view.rows[0].gpus.len(), 3, "gpu-a's three GPUs");
    let messages: Vec<(Health, &str)> = view
        .findings
        .iter()
        .map(|f| (f.severity, f.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        [
            (Health::Crit, "GPU gpu-a #0 is hot: 95 °C (>= 90 °C)"),
            (
                Health::Warn,
                "GPU gpu-a #1 held by ml/infer-1 for over an hour at 1 % utilisation (< 5 %)"
            ),
            (Health::Warn, "GPU gpu-b #0 is hot: 86 °C (>= 83 °C)"),
        ]
    );
    assert_eq!(state.gpu_health(), Health::Crit);
    // On the GPU pane: the node's hottest GPU in the critical colour, at both sizes.
    update(&mut state, Msg::Action(kha::model::Action::PaneGpu));
    let theme = kha::config::theme::Theme::shipped("default").unwrap();
    let keymap = kha::config::keymap::Keymap::shipped("default").unwrap();
    for (w, h) in [(80, 24), (160, 48)] {
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).unwrap();
        terminal
            .draw(|f| kha::ui::view(f, &state, &theme, &keymap))
            .unwrap();
        let buf = terminal.backend().buffer().clone();
        assert_eq!(
            common::fg_of(&buf, "95C"),
            theme.crit.fg.unwrap(),
            "{}",
            common::text(&buf)
        );
    }
    assert!(matches!(state.exporters.ceph(), MetricsStatus::Read { .. }));
    assert!(
        state
            .findings()
            .iter()
            .any(|f| f.message == "1 of 3 OSDs down (ceph_osd_up): osd.2"),
        "{:?}",
        state.findings()
    );

    // With a CephCluster listed that still says HEALTH_OK, the OSD ceph-mgr reports
    // down is the pane's own finding: its border, its tile and the banner warn, and
    // the finding is counted once.
    let cluster = kha::lab::world::objects(
        &Topology::generate(&LabSpec::default()),
        &LabSpec::default(),
        &Faults::default(),
        std::time::SystemTime::now(),
    )
    .into_iter()
    .find(|o| o["kind"] == "CephCluster")
    .expect("the lab's CephCluster");
    assert_eq!(cluster["status"]["ceph"]["health"], "HEALTH_OK");
    state.kube.apply(
        common::T0,
        KubeMsg::Custom(
            kha::model::kube::CustomKind::CephCluster,
            FeedChange::Reset(vec![serde_json::from_value(cluster).unwrap()]),
        ),
    );
    assert!(state.custom_present(kha::model::PaneId::Ceph));
    assert_eq!(state.ceph().health(), Health::Ok, "the CR alone");
    assert_eq!(
        state.custom_health(kha::model::PaneId::Ceph),
        Health::Warn,
        "with the metrics"
    );
    let osd_down = |f: &kha::model::finding::Finding| f.message.starts_with("1 of 3 OSDs down");
    assert_eq!(
        state.findings().iter().filter(|f| osd_down(f)).count(),
        1,
        "{:?}",
        state.findings()
    );
    update(&mut state, Msg::Action(kha::model::Action::PaneHome));
    state.screen = kha::model::Screen::Pane(kha::model::PaneId::Ceph);
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|f| kha::ui::view(f, &state, &theme, &keymap))
        .unwrap();
    let buf = terminal.backend().buffer().clone();
    assert_eq!(
        common::fg_of(&buf, "WARN"),
        theme.warn.fg.unwrap(),
        "the Ceph pane's border says WARN:\n{}",
        common::text(&buf)
    );
    assert!(
        common::text(&buf).contains("OSDs down"),
        "{}",
        common::text(&buf)
    );

    let (json, _) = kha_status(&p.url);
    assert_eq!(json["ceph"]["metrics"]["kind"], "read", "{json}");
    assert_eq!(json["ceph"]["metrics"]["value"]["osds_up"], 2);
    assert_eq!(json["ceph"]["metrics"]["value"]["health_status"], 1.0);
    assert_eq!(
        json["velero"]["metrics"]["value"]["schedules"][1]["schedule"],
        "hourly-db"
    );
    let gpu_findings = json["gpu"]["findings"].to_string();
    assert!(
        gpu_findings.contains("GPU gpu-a #0 is hot: 95 °C"),
        "{gpu_findings}"
    );
}

fn empty_prometheus(target: &str) -> (u16, String) {
    match target.split('?').next().unwrap_or("") {
        "/api/v1/query" => (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#.into(),
        ),
        _ => (404, "404 page not found".into()),
    }
}

/// A Prometheus without DCGM, ceph-mgr or Velero series: "no metrics", no finding.
#[tokio::test]
async fn absent_exporter_series_are_no_metrics_not_failures() {
    use kha::model::exporters::{ExporterState, MetricsStatus};
    let url = fixture_server(empty_prometheus);
    let obs = prober(&url).probe_exporters().await;
    assert!(obs.unreachable.is_none());
    assert_eq!(obs.gpu, Fetched::Read { value: vec![] });
    let state = ExporterState {
        configured: true,
        last: Some(obs),
        gpu_thresholds: Default::default(),
    };
    assert_eq!(state.ceph(), MetricsStatus::NoMetrics);
    assert_eq!(state.velero(), MetricsStatus::NoMetrics);
    assert!(state.storage_findings(false, false).is_empty());
}
