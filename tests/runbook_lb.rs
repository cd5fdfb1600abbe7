//! The LB runbooks against a real HAProxy (Debian's `haproxy`) in front of three lab
//! apiserver backends: drain sets the server DRAIN through the runtime API (verified
//! with `show stat` and a direct /readyz probe), ready puts it back UP, maint MAINT;
//! draining the last backend that serves is refused before anything is sent.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::haproxy::{ask, require_haproxy, start_real_haproxy};
use kha::lab::lb::ApiServerBackends;
use kha::lab::topology::{Faults, LabSpec, Topology};
use kha::model::lb::{LbObservation, LbState};
use kha::runbook::audit::{AuditEvent, AuditLog};
use kha::runbook::engine::{Decision, Engine, Operator, Progress};
use kha::runbook::exec::LiveExecutor;
use kha::runbook::lb::{self, BackendAction};
use kha::sources::lb::haproxy::parse_show_stat;
use kha::sources::lb::{BackendTarget, LbProber, LbSourceConfig, LbStatsEndpoint};
use tokio::sync::watch;

#[derive(Clone, Default)]
struct Yes {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Operator for Yes {
    fn ask(&mut self, _: &str) -> String {
        "y".into()
    }
    fn decide(&mut self, _: usize, _: &str, _: bool) -> Decision {
        Decision::Abort
    }
    fn progress(&mut self, event: Progress) {
        let mut lines = self.lines.lock().unwrap();
        match event {
            Progress::StepDone { result, .. } => lines.push(result),
            Progress::StepFailed { error, .. } => lines.push(format!("FAILED: {error}")),
            _ => {}
        }
    }
}

/// Probes until every server in `want` has its state; fails with the last observation.
async fn until(prober: &mut LbProber, want: &[(&str, LbState)]) -> LbObservation {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let obs = prober.probe().await;
        let state = |name: &str| {
            obs.rows()
                .into_iter()
                .find(|r| r.name == name)
                .and_then(|r| r.lb.map(|s| s.status.state))
        };
        let ready = obs
            .rows()
            .iter()
            .all(|r| r.readyz().is_some_and(|c| c.status.is_some()));
        if ready && want.iter().all(|(n, s)| state(n) == Some(*s)) {
            return obs;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy did not reach {want:?}: {obs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// HAProxy's own word for `server`, from `show stat` on the socket.
async fn status_of(socket: &std::path::Path, server: &str) -> String {
    let stat = ask(socket, "show stat").await;
    parse_show_stat(&stat)
        .unwrap()
        .into_iter()
        .find(|s| s.svname == server)
        .map(|s| s.status)
        .unwrap_or_else(|| panic!("no {server} in {stat}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_ready_and_maint_a_backend_of_a_real_haproxy_and_never_the_last() {
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
    let targets = names
        .iter()
        .zip(&urls)
        .map(|(n, u)| BackendTarget {
            name: n.clone(),
            url: u.clone(),
            zone: None,
        })
        .collect();
    let mut config = LbSourceConfig::new(targets, Some(LbStatsEndpoint::parse(&stats).unwrap()));
    config.timeout = Duration::from_secs(2);
    let mut prober = LbProber::new(config).unwrap();
    let (a, b, c) = (names[0].as_str(), names[1].as_str(), names[2].as_str());
    let mut engine = Engine {
        executor: LiveExecutor::new(&Default::default(), dir.path().to_path_buf()).unwrap(),
        audit: AuditLog::in_dir(dir.path()),
        read_only: false,
        poll: Duration::from_millis(200),
        kube_user: None,
        seen: Vec::new(),
    };

    // Drain b: HAProxy says DRAIN; the direct probe says b itself is still ready.
    let obs = until(
        &mut prober,
        &[(a, LbState::Up), (b, LbState::Up), (c, LbState::Up)],
    )
    .await;
    let rb = lb::haproxy("lab", &obs, &stats, b, BackendAction::Drain).unwrap();
    assert!(rb.unmet().is_empty(), "{:?}", rb.unmet());
    assert!(
        rb.preconditions[1].evidence.starts_with("2 serving:"),
        "{:?}",
        rb.preconditions
    );
    let yes = Yes::default();
    engine.run(&rb, &mut yes.clone(), None).await.unwrap();
    assert_eq!(status_of(&haproxy.socket, b).await, "DRAIN");
    let done = yes.lines.lock().unwrap().join("\n");
    assert!(
        done.contains(&format!(
            "HAProxy accepted `set server kube-apiserver/{b} state drain`; verified: `show stat`: kube-apiserver/{b} DRAIN; direct {}/readyz: 200",
            urls[1]
        )),
        "{done}"
    );

    // Ready: back to UP, verified with the direct probe passing.
    let obs = until(&mut prober, &[(b, LbState::Drain)]).await;
    let rb = lb::haproxy("lab", &obs, &stats, b, BackendAction::Ready).unwrap();
    assert!(rb.unmet().is_empty(), "{:?}", rb.unmet());
    engine.run(&rb, &mut Yes::default(), None).await.unwrap();
    assert_eq!(status_of(&haproxy.socket, b).await, "UP");

    // Maint, then ready again (from MAINT HAProxy checks before it is UP again).
    let obs = until(&mut prober, &[(b, LbState::Up)]).await;
    let rb = lb::haproxy("lab", &obs, &stats, b, BackendAction::Maint).unwrap();
    engine.run(&rb, &mut Yes::default(), None).await.unwrap();
    assert!(status_of(&haproxy.socket, b).await.starts_with("MAINT"));
    let obs = until(&mut prober, &[(b, LbState::Maint)]).await;
    let rb = lb::haproxy("lab", &obs, &stats, b, BackendAction::Ready).unwrap();
    engine.run(&rb, &mut Yes::default(), None).await.unwrap();
    assert_eq!(status_of(&haproxy.socket, b).await, "UP");

    // a drained and c in maintenance: b is the last serving backend. Draining it is
    // refused with the reason, and HAProxy is not touched.
    for (server, state) in [(a, "drain"), (c, "maint")] {
        let answer = ask(
            &haproxy.socket,
            &format!("set server kube-apiserver/{server} state {state}"),
        )
        .await;
        assert_eq!(answer, "\n");
    }
    let obs = until(
        &mut prober,
        &[(a, LbState::Drain), (b, LbState::Up), (c, LbState::Maint)],
    )
    .await;
    for action in [BackendAction::Drain, BackendAction::Maint] {
        let rb = lb::haproxy("lab", &obs, &stats, b, action).unwrap();
        let unmet = rb.unmet();
        assert_eq!(unmet.len(), 1, "{unmet:?}");
        assert_eq!(
            unmet[0].description,
            "at least one other backend is serving and ready"
        );
        assert!(
            unmet[0].evidence.starts_with(&format!(
                "none: {b} is the last backend serving, taking it out takes the API down"
            )),
            "{unmet:?}"
        );
        let err = engine
            .run(&rb, &mut Yes::default(), None)
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "preconditions not met: at least one other backend is serving and ready (none:"
            ),
            "{err}"
        );
    }
    assert_eq!(status_of(&haproxy.socket, b).await, "UP");
    let (records, _) = engine.audit.read().unwrap();
    assert_eq!(
        records
            .iter()
            .filter(|r| r.event == AuditEvent::Refused)
            .count(),
        2
    );

    // An unknown backend is an error that lists the known ones.
    let err = lb::haproxy("lab", &obs, &stats, "cp-nope", BackendAction::Drain).unwrap_err();
    assert!(err.contains(a) && err.contains(c), "{err}");
}
