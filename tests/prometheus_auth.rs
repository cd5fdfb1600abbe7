//! Basic auth to Prometheus / Thanos Query (user from flag, env or profile; password from
//! `KHA_PROMETHEUS_PASSWORD` or a file, never a flag, never in `Debug`), and the
//! availability KPI's window from the profile.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::haproxy::free_port;
use kha::model::kpi::kpi_defs;
use kha::model::thanos::RetentionSettings;
use kha::sources::prometheus::{BasicAuth, KpiProber, PrometheusSourceConfig};
use kha::sources::prometheus_status::MetricsStatusProber;

/// A loopback server that records each request's Authorization header and answers an
/// empty vector (or 404 for the status endpoints).
fn recording_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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
            let text = String::from_utf8_lossy(&request).to_string();
            let auth = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("authorization:")
                        .then(|| l["authorization:".len()..].trim().to_string())
                })
                .unwrap_or_else(|| "<none>".into());
            log.lock().unwrap().push(auth);
            let (status, body) = if text.starts_with("GET /api/v1/query")
                || text.starts_with("POST /api/v1/query")
            {
                (
                    200,
                    r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                )
            } else {
                (404, "404 page not found")
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

// "oncall:s3cret pass" in base64.
const BASIC: &str = "Basic b25jYWxsOnMzY3JldCBwYXNz";

#[tokio::test]
async fn basic_auth_goes_on_every_request_and_never_into_debug() {
    let (url, seen) = recording_server();
    let mut c = PrometheusSourceConfig::new(url.clone(), kpi_defs(&Default::default()).unwrap());
    c.basic = Some(BasicAuth {
        user: "oncall".into(),
        password: "s3cret pass".to_string().into(),
    });
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("oncall"), "the user may show: {debug}");
    let obs = KpiProber::new(c.clone()).unwrap().probe().await;
    assert!(obs.unreachable.is_none(), "{obs:?}");
    let status = MetricsStatusProber::new(&c, RetentionSettings::default()).unwrap();
    let _ = status.probe().await;
    let _ = status.probe_exporters().await;
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 10, "{seen:?}");
    assert!(seen.iter().all(|a| a == BASIC), "{seen:?}");
}

#[tokio::test]
async fn a_bearer_token_wins_over_basic_auth() {
    let (url, seen) = recording_server();
    let mut c = PrometheusSourceConfig::new(url, Vec::new());
    c.bearer = Some("tok".to_string().into());
    c.basic = Some(BasicAuth {
        user: "oncall".into(),
        password: "pw".to_string().into(),
    });
    let _ = MetricsStatusProber::new(&c, RetentionSettings::default())
        .unwrap()
        .probe()
        .await;
    assert!(seen.lock().unwrap().iter().all(|a| a == "Bearer tok"));
}

fn kha(dir: &std::path::Path, url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kha"));
    cmd.env("KHA_CONFIG_DIR", dir)
        .env("KHA_PROMETHEUS_URL", url)
        .env_remove("KUBECONFIG")
        .env_remove("KHA_ETCD_ENDPOINTS")
        .env_remove("KHA_APISERVER_BACKENDS")
        .env_remove("KHA_LB_STATS")
        .env_remove("KHA_PROMETHEUS_TOKEN")
        .env_remove("KHA_PROMETHEUS_USER")
        .env_remove("KHA_PROMETHEUS_PASSWORD");
    cmd
}

/// The CLI: user from the flag or env, password from the env or the profile's file; a
/// user without a password is said, and nothing of the password reaches stdout/stderr.
#[tokio::test]
async fn kha_status_sends_basic_auth_from_flag_env_and_password_file() {
    let (url, seen) = recording_server();
    let dir = tempfile::tempdir().unwrap();
    let out = kha(dir.path(), &url)
        .args(["status", "--json", "--prometheus-user", "oncall"])
        .env("KHA_PROMETHEUS_PASSWORD", "s3cret pass")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("s3cret"), "{all}");
    {
        let mut seen = seen.lock().unwrap();
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|a| a == BASIC), "{seen:?}");
        seen.clear();
    }

    let password = dir.path().join("prometheus.password");
    std::fs::write(&password, "s3cret pass\n").unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "default_cluster = \"prod\"\n[clusters.prod]\nprometheus_user = \"oncall\"\n\
             prometheus_password_file = \"{}\"\n",
            password.display()
        ),
    )
    .unwrap();
    let out = kha(dir.path(), &url)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(out.stdout.len() > 10);
    {
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|a| a == BASIC), "{seen:?}");
    }

    std::fs::write(
        dir.path().join("config.toml"),
        "default_cluster = \"prod\"\n[clusters.prod]\nprometheus_user = \"oncall\"\n",
    )
    .unwrap();
    let out = kha(dir.path(), &url)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = json["thanos"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("no password"), "{json}");
}

/// `availability_window = "7d"`: the availability KPI asks the raw counters over 7 days
/// (the mixin records only 30 d); the default stays the mixin's recording rule.
#[test]
fn availability_window_comes_from_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let row = |json: &serde_json::Value| {
        json["kpis"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "apiserver_availability")
            .cloned()
            .unwrap()
    };
    let out = kha(dir.path(), &url)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        row(&json)["query"],
        r#"apiserver_request:availability30d{verb="all"}"#
    );
    std::fs::write(
        dir.path().join("config.toml"),
        "default_cluster = \"prod\"\n[clusters.prod]\navailability_window = \"7d\"\n",
    )
    .unwrap();
    let out = kha(dir.path(), &url)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = row(&json);
    let query = r["query"].as_str().unwrap();
    assert!(query.contains("[7d]") && !query.contains("30d"), "{query}");
    assert_eq!(r["title"], "API server availability (7d)");

    std::fs::write(
        dir.path().join("config.toml"),
        "default_cluster = \"prod\"\n[clusters.prod]\navailability_window = \"a week\"\n",
    )
    .unwrap();
    let out = kha(dir.path(), &url)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["thanos"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("availability_window"),
        "{json}"
    );
}
