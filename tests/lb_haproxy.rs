//! kha's LB source against a real HAProxy (Debian's `haproxy`) on loopback with
//! `option httpchk GET /readyz` in front of three lab apiserver backends: a backend made
//! unready goes DOWN in HAProxy and kha shows LB DOWN with its readyz failing (and, on
//! the way, the LB still sending traffic to it); a drain set through the runtime socket
//! shows as DRAIN; `kha status --json` reports the same.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::haproxy::{ask, require_haproxy, start_real_haproxy};
use kha::lab::lb::ApiServerBackends;
use kha::lab::topology::{Faults, LabSpec, Topology};
use kha::model::finding::Health;
use kha::model::lb::{LbObservation, LbSettings, LbState};
use kha::sources::lb::{BackendTarget, LbProber, LbSourceConfig, LbStatsEndpoint};
use tokio::sync::watch;

/// Probes until `done` holds; fails with every LB status seen for `server` after `within`.
async fn until(
    prober: &mut LbProber,
    server: &str,
    within: Duration,
    what: &str,
    mut done: impl FnMut(&LbObservation) -> bool,
) -> (LbObservation, Vec<String>) {
    let deadline = Instant::now() + within;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let obs = prober.probe().await;
        let row = obs.rows().into_iter().find(|r| r.name == server);
        let word = row
            .and_then(|r| r.lb.map(|s| s.status.text))
            .unwrap_or_else(|| "-".into());
        if seen.last() != Some(&word) {
            seen.push(word);
        }
        if done(&obs) {
            return (obs, seen);
        }
        assert!(
            Instant::now() < deadline,
            "{server} did not become {what} within {within:?}; LB said {seen:?}; last: {obs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn lb_state(obs: &LbObservation, server: &str) -> Option<LbState> {
    obs.rows()
        .into_iter()
        .find(|r| r.name == server)
        .and_then(|r| r.lb.map(|s| s.status.state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kha_sees_real_haproxy_take_an_unready_apiserver_out_and_a_drain() {
    require_haproxy();
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::generate(&LabSpec::default());
    let (_faults, faults_rx) = watch::channel(Faults::default());
    let backends = ApiServerBackends::start(topology.clone(), faults_rx)
        .await
        .unwrap();
    let urls = backends.urls();
    let names: Vec<String> = topology
        .control_plane
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let servers: Vec<(String, String)> = names.iter().cloned().zip(urls.clone()).collect();
    let haproxy = start_real_haproxy(dir.path(), &servers);
    let stats = format!("unix://{}", haproxy.socket.display());

    let targets = topology
        .control_plane
        .iter()
        .zip(&urls)
        .map(|(cp, url)| BackendTarget {
            name: cp.name.clone(),
            url: url.clone(),
            zone: Some(cp.zone.clone()),
        })
        .collect();
    let mut config = LbSourceConfig::new(targets, Some(LbStatsEndpoint::parse(&stats).unwrap()));
    config.timeout = Duration::from_secs(2);
    let mut prober = LbProber::new(config).expect("prober");
    let settings = LbSettings::default();
    let (a, b) = (&names[0], &names[1]);

    // Healthy: every backend UP in HAProxy and ready, nothing to report.
    let (obs, _) = until(&mut prober, b, Duration::from_secs(8), "all UP", |o| {
        names.iter().all(|n| lb_state(o, n) == Some(LbState::Up))
            && o.rows()
                .iter()
                .all(|r| r.readyz().is_some_and(|c| c.passed()))
    })
    .await;
    assert_eq!(obs.findings(&settings), vec![], "{obs:#?}");
    assert_eq!(obs.serving(), (3, 3));
    let row = obs.rows().into_iter().find(|r| &r.name == a).unwrap();
    let server = row.lb.clone().unwrap();
    assert_eq!(server.check.as_deref(), Some("L7OK 200"), "{server:?}");
    assert_eq!(row.zone, Some(topology.control_plane[0].zone.clone()));
    assert!(row.readyz().unwrap().latency < Duration::from_secs(1));

    // cp-b alive but unready: HAProxy's check fails three times, then DOWN. Meanwhile
    // kha must call out the LB sending traffic to a backend whose readyz fails.
    backends.set_unready(1, Some("etcd"));
    let mut saw_disagreement = false;
    let (obs, seen) = until(&mut prober, b, Duration::from_secs(8), "DOWN", |o| {
        if o.findings(&settings).iter().any(|f| {
            f.severity == Health::Crit && f.message.starts_with(&format!("LB sends traffic to {b}"))
        }) {
            saw_disagreement = true;
        }
        lb_state(o, b) == Some(LbState::Down)
    })
    .await;
    eprintln!("HAProxy went {seen:?}");
    assert!(
        seen.iter()
            .any(|s| s.starts_with("UP ") && s.ends_with("/3")),
        "HAProxy's transition seen: {seen:?}"
    );
    assert!(
        saw_disagreement,
        "LB UP while readyz fails must be CRIT; LB said {seen:?}"
    );
    let row = obs.rows().into_iter().find(|r| &r.name == b).unwrap();
    let ready = row.readyz().unwrap();
    assert_eq!(ready.status, Some(500));
    assert_eq!(ready.failing, ["etcd"]);
    assert_eq!(
        row.lb.as_ref().and_then(|s| s.check.as_deref()),
        Some("L7STS 500")
    );
    let findings = obs.findings(&settings);
    assert!(
        findings.iter().any(|f| f.severity == Health::Warn
            && f.message == format!("{b} /readyz fails: etcd (the LB has taken it out)")),
        "{findings:#?}"
    );
    assert_eq!(obs.serving(), (2, 3));

    // A drain from the runtime socket: DRAIN, forced; only one backend left serving.
    assert_eq!(
        ask(
            &haproxy.socket,
            &format!("set server kube-apiserver/{a} state drain")
        )
        .await,
        "\n"
    );
    let (obs, _) = until(&mut prober, a, Duration::from_secs(4), "DRAIN", |o| {
        lb_state(o, a) == Some(LbState::Drain)
    })
    .await;
    let row = obs.rows().into_iter().find(|r| &r.name == a).unwrap();
    assert_eq!(
        row.lb.as_ref().and_then(|s| s.admin.as_deref()),
        Some("drain (forced)")
    );
    assert!(row.readyz().unwrap().passed());
    let findings = obs.findings(&settings);
    assert_eq!(findings[0].severity, Health::Crit, "{findings:#?}");
    assert!(
        findings[0]
            .message
            .starts_with("only 1/3 apiserver backends serving"),
        "{findings:#?}"
    );

    // The same through the binary: kha status --json with the environment lab.env sets.
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["status", "--json"])
        .env("KHA_CONFIG_DIR", "/nonexistent-kha-test")
        .env_remove("KHA_ETCD_ENDPOINTS")
        .env_remove("KUBECONFIG")
        .env("KHA_LB_STATS", &stats)
        .env("KHA_APISERVER_BACKENDS", urls.join(","))
        .output()
        .expect("run kha");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "crit: {json:#}");
    let lb = &json["lb"];
    assert_eq!(lb["status"], "crit", "{lb:#}");
    assert_eq!(lb["serving"], 1, "{lb:#}");
    assert_eq!(lb["lb_source"], stats.as_str());
    let rows = lb["rows"].as_array().expect("rows");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name}: {lb:#}"))
    };
    assert_eq!(row(a)["lb_state"], "drain");
    assert_eq!(row(b)["lb_state"], "down");
    assert_eq!(row(b)["readyz"]["status"], 500);
    assert_eq!(row(b)["failing_checks"], serde_json::json!(["etcd"]));
    assert!(row(b)["readyz"]["latency"].as_f64().is_some());

    drop(haproxy);
    backends.shutdown().await;
}
