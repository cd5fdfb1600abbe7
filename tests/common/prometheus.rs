//! A real Prometheus (Debian's `prometheus`, with `promtool`) on loopback over backfilled
//! OpenMetrics fixtures, with optional rule files and scrape jobs; and the exporter
//! fixtures (DCGM, ceph-mgr, Velero) the metrics panes read.

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::haproxy::free_port;
use super::require_binary;

pub struct RealPrometheus {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealPrometheus {
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Backfills `openmetrics` (must end with `# EOF`), writes `rules` (YAML, may be empty)
/// and starts Prometheus with `extra_config` appended to its config (scrape jobs); waits
/// for `/-/ready`. Rules are evaluated and targets scraped every second.
pub async fn start(openmetrics: &str, rules: &str, extra_config: &str) -> RealPrometheus {
    let prom = spawn(openmetrics, rules, extra_config, None);
    wait_ready(&prom).await;
    prom
}

/// As [`start`], without waiting for readiness; with `tls` (cert, key PEM) it serves
/// HTTPS through `--web.config.file`.
pub fn spawn(
    openmetrics: &str,
    rules: &str,
    extra_config: &str,
    tls: Option<(&str, &str)>,
) -> RealPrometheus {
    let prometheus = require_binary("prometheus", "prometheus");
    let promtool = require_binary("promtool", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fixtures = dir.path().join("fixtures.om");
    std::fs::write(&fixtures, openmetrics).unwrap();
    run(
        Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&fixtures)
            .arg(&data),
        "promtool tsdb create-blocks-from openmetrics",
    );
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\n  evaluation_interval: 1s\n",
    );
    if !rules.is_empty() {
        let path = dir.path().join("rules.yml");
        std::fs::write(&path, rules).unwrap();
        run(
            Command::new(&promtool).arg("check").arg("rules").arg(&path),
            "promtool check rules",
        );
        writeln!(config, "rule_files:\n  - {}", path.display()).unwrap();
    }
    config.push_str(extra_config);
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let mut cmd = Command::new(&prometheus);
    let scheme = match tls {
        Some((cert, key)) => {
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert).unwrap();
            std::fs::write(&key_path, key).unwrap();
            let web = dir.path().join("web.yml");
            std::fs::write(
                &web,
                format!(
                    "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                    cert_path.display(),
                    key_path.display()
                ),
            )
            .unwrap();
            cmd.arg(format!("--web.config.file={}", web.display()));
            "https"
        }
        None => "http",
    };
    let child = cmd
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg("--storage.tsdb.retention.time=30d")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    RealPrometheus {
        child,
        url: format!("{scheme}://127.0.0.1:{port}"),
        dir,
    }
}

/// Waits for `/-/ready` (plain HTTP only; an HTTPS one is waited for by its client).
pub async fn wait_ready(prom: &RealPrometheus) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ready(&prom.url) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("prometheus did not become ready:\n{}", prom.log());
}

/// `GET /-/ready` answered 200.
fn ready(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(addr) = url.strip_prefix("http://") else {
        return false;
    };
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    if conn.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

/// `{a="b",c="d"}`
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

/// One series sampled every 15 s from `end - span` to `end` (Unix seconds).
pub fn series(out: &mut String, name: &str, labels: &str, span: i64, end: i64, value: f64) {
    let mut t = end - span;
    while t <= end {
        writeln!(out, "{name}{labels} {value} {t}").unwrap();
        t += 15;
    }
}

pub const HOUR: i64 = 3600;

/// dcgm-exporter, ceph-mgr and Velero series ending at `end`:
/// - `gpu-a` GPU 0: 95 °C (hot), busy, held by ml/infer-1; GPU 1: held by ml/infer-1 for
///   two hours at 1 % (idle but allocated); GPU 2: free, 0 %.
/// - `gpu-b` GPU 0: 86 °C (warm), busy, held by ml/train-1; GPU 1: held by ml/new-job for
///   20 minutes at 2 % (not an hour yet: no finding).
/// - Ceph: HEALTH_WARN, osd.0 and osd.1 up, osd.2 down; all three in.
/// - Velero: schedule `daily` last succeeded 3 h ago, `hourly-db` 30 h ago.
pub fn exporter_fixtures(end: i64) -> String {
    let mut out = String::new();
    let gpu = |host: &str, gpu: &str, pod: Option<&str>| {
        let mut pairs = vec![
            ("Hostname", host),
            ("UUID", "GPU-0000"),
            ("device", "nvidia0"),
            ("gpu", gpu),
            ("modelName", "NVIDIA A100-SXM4-80GB"),
            ("job", "nvidia-dcgm-exporter"),
        ];
        if let Some(p) = pod {
            pairs.extend([("namespace", "ml"), ("pod", p), ("container", "main")]);
        }
        labels(&pairs)
    };
    // (labels, span, util, temp, fb_used, power)
    let devices = [
        (
            gpu("gpu-a", "0", Some("infer-1")),
            2 * HOUR,
            80.0,
            95.0,
            60_000.0,
            350.0,
        ),
        (
            gpu("gpu-a", "1", Some("infer-1")),
            2 * HOUR,
            1.0,
            40.0,
            1_000.0,
            60.0,
        ),
        (gpu("gpu-a", "2", None), 2 * HOUR, 0.0, 35.0, 0.0, 55.0),
        (
            gpu("gpu-b", "0", Some("train-1")),
            2 * HOUR,
            50.0,
            86.0,
            40_000.0,
            300.0,
        ),
        (
            gpu("gpu-b", "1", Some("new-job")),
            20 * 60,
            2.0,
            38.0,
            500.0,
            58.0,
        ),
    ];
    for (name, pick) in [
        ("DCGM_FI_DEV_GPU_UTIL", 0),
        ("DCGM_FI_DEV_GPU_TEMP", 1),
        ("DCGM_FI_DEV_FB_USED", 2),
        ("DCGM_FI_DEV_FB_FREE", 3),
        ("DCGM_FI_DEV_POWER_USAGE", 4),
    ] {
        for (labels, span, util, temp, used, power) in &devices {
            let value = match pick {
                0 => *util,
                1 => *temp,
                2 => *used,
                3 => 81_920.0 - 512.0 - used,
                _ => *power,
            };
            series(&mut out, name, labels, *span, end, value);
        }
    }
    let mgr = [("job", "rook-ceph-mgr"), ("instance", "10.0.2.20:9283")];
    series(
        &mut out,
        "ceph_health_status",
        &labels(&mgr),
        HOUR,
        end,
        1.0,
    );
    for (osd, up) in [("osd.0", 1.0), ("osd.1", 1.0), ("osd.2", 0.0)] {
        let l = labels(&[mgr[0], mgr[1], ("ceph_daemon", osd)]);
        series(&mut out, "ceph_osd_up", &l, HOUR, end, up);
        series(&mut out, "ceph_osd_in", &l, HOUR, end, 1.0);
    }
    let velero = |schedule: &str| {
        labels(&[
            ("job", "velero"),
            ("instance", "10.0.2.30:8085"),
            ("schedule", schedule),
        ])
    };
    for (schedule, age) in [("daily", 3 * HOUR), ("hourly-db", 30 * HOUR)] {
        series(
            &mut out,
            "velero_backup_last_successful_timestamp",
            &velero(schedule),
            HOUR,
            end,
            (end - age) as f64,
        );
    }
    out
}
