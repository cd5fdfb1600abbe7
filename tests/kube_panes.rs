//! The kube source against the lab's Kubernetes API (the lab's world in each scenario):
//! the control-plane and GPU panes rendered at 80x24 and 160x48 with colours asserted on
//! cells, `kha status --json` findings per scenario, a missing CRD and an RBAC 403 said
//! plainly, and the API server stopped and restarted: the panes go stale, then recover
//! by themselves; so do they when the connection goes silent (a frozen server, a dropped
//! NAT entry), which no error announces.

mod common;

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use common::{fg_of, text};
use kha::config::keymap::Keymap;
use kha::config::theme::Theme;
use kha::lab::kube::{DenyRule, KubeApiConfig, KubeApiServer, Store};
use kha::lab::topology::{Faults, LabSpec, Scenario, Topology};
use kha::model::kube::{Availability, CustomKind};
use kha::model::{Action, EtcdPaneState, Msg, PaneId, Screen, State, update};
use kha::sources::kube::{KubeSourceConfig, KubeconfigSource};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use tokio::sync::mpsc;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

/// The lab's Kubernetes API alone (no etcd, no LB), serving the scenario's objects.
struct KubeLab {
    store: Store,
    server: KubeApiServer,
    dir: tempfile::TempDir,
}

impl KubeLab {
    async fn start(scenario: Scenario, deny: &[&str]) -> KubeLab {
        let spec = LabSpec {
            scenario,
            ..LabSpec::default()
        };
        let topology = Topology::generate(&spec);
        let faults = Faults::for_scenario(scenario, &topology);
        let store = Store::new();
        store
            .put_many(kha::lab::world::objects(
                &topology,
                &spec,
                &faults,
                SystemTime::now(),
            ))
            .expect("lab objects load");
        let config = KubeApiConfig {
            deny: deny
                .iter()
                .map(|d| DenyRule::from_str(d).expect("deny rule"))
                .collect(),
            ..KubeApiConfig::default()
        };
        let server = KubeApiServer::start(store.clone(), config)
            .await
            .expect("lab API server starts");
        let dir = tempfile::tempdir().expect("tempdir");
        server
            .write_kubeconfig(&dir.path().join("kubeconfig"))
            .expect("kubeconfig written");
        KubeLab { store, server, dir }
    }

    fn source(&self) -> KubeSourceConfig {
        let mut c = KubeSourceConfig::new(
            Some(KubeconfigSource::File(self.dir.path().join("kubeconfig"))),
            None,
        );
        c.stale_after = Duration::from_secs(2);
        c
    }
}

/// A cockpit state fed by the real kube source.
struct Fed {
    state: State,
    rx: mpsc::Receiver<Msg>,
    _source: tokio::task::JoinHandle<()>,
}

impl Fed {
    fn start(config: KubeSourceConfig) -> Fed {
        let pane = EtcdPaneState::new(
            Vec::new(),
            kha::model::etcd::EtcdSettings::default(),
            Duration::from_secs(5),
        );
        let mut state = State::new("lab", pane, SystemTime::now());
        state.kube = kha::model::kube::KubeState::new(true, config.stale_after);
        let (tx, rx) = mpsc::channel(256);
        let source = tokio::spawn(kha::sources::kube::run(config, tx));
        Fed {
            state,
            rx,
            _source: source,
        }
    }

    /// Feeds messages (and the clock) until `done` holds; panics after 15 s.
    async fn until(&mut self, what: &str, done: impl Fn(&State) -> bool) {
        self.until_within(what, Duration::from_secs(15), done).await;
    }

    async fn until_within(&mut self, what: &str, limit: Duration, done: impl Fn(&State) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(&self.state) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(msg)) => {
                    update(&mut self.state, msg);
                }
                Ok(None) => panic!("the kube source stopped before: {what}"),
                Err(_) => panic!(
                    "not within {limit:?}: {what}; kube state: {:?}",
                    self.state
                        .kube
                        .feeds
                        .iter()
                        .map(|(k, f)| (k, &f.availability))
                        .collect::<Vec<_>>()
                ),
            }
            update(&mut self.state, Msg::Tick(SystemTime::now()));
        }
    }

    async fn complete(&mut self) {
        self.until("first complete data", |s| s.kube.first_data_complete())
            .await;
    }
}

fn draw(state: &State, w: u16, h: u16) -> Buffer {
    let theme = Theme::shipped("default").expect("theme");
    let keymap = Keymap::shipped("default").expect("keymap");
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    terminal
        .draw(|f| kha::ui::view(f, state, &theme, &keymap))
        .expect("draw");
    terminal.backend().buffer().clone()
}

fn open(state: &mut State, action: Action, pane: PaneId) {
    update(state, Msg::Action(action));
    assert_eq!(state.screen, Screen::Pane(pane));
}

#[tokio::test]
async fn control_plane_pane_healthy_and_after_losing_a_zone() {
    let lab = KubeLab::start(Scenario::Healthy, &[]).await;
    let mut fed = Fed::start(lab.source());
    fed.complete().await;
    open(
        &mut fed.state,
        Action::PaneControlPlane,
        PaneId::ControlPlane,
    );
    for (w, h) in SIZES {
        let buf = draw(&fed.state, w, h);
        let screen = text(&buf);
        assert!(
            screen.contains("3/3 zones with a ready control plane"),
            "{screen}"
        );
        assert!(screen.contains("cp-eu-west-1c"), "{screen}");
        assert!(screen.contains("live (watching)"), "{screen}");
        assert_eq!(fg_of(&buf, "3/3 zones"), Color::Green);
        assert_eq!(
            fg_of(&buf, " OK "),
            Color::Green,
            "pane health in the title"
        );
        if w >= 120 {
            assert!(
                screen.contains("10.0.3.10:6443"),
                "advertise endpoint:\n{screen}"
            );
        }
    }
    drop(fed);

    let lab = KubeLab::start(Scenario::AzFailure, &[]).await;
    let mut fed = Fed::start(lab.source());
    fed.complete().await;
    open(
        &mut fed.state,
        Action::PaneControlPlane,
        PaneId::ControlPlane,
    );
    for (w, h) in SIZES {
        let buf = draw(&fed.state, w, h);
        let screen = text(&buf);
        assert!(
            screen.contains("2/3 zones with a ready control plane"),
            "{screen}"
        );
        assert_eq!(fg_of(&buf, "2/3 zones"), Color::Yellow);
        assert_eq!(fg_of(&buf, "Unknown"), Color::Red, "the lost node");
        assert!(
            screen.contains("zone eu-west-1c has no ready control plane"),
            "{screen}"
        );
        assert_eq!(fg_of(&buf, "down"), Color::Red, "its static pods");
    }
    // The detail popup of the lost node says why, and filtering narrows the rows.
    update(&mut fed.state, Msg::Action(Action::Down));
    update(&mut fed.state, Msg::Action(Action::Down));
    update(&mut fed.state, Msg::Action(Action::Open));
    let screen = text(&draw(&fed.state, 80, 24));
    assert!(screen.contains("NodeStatusUnknown"), "{screen}");
    update(&mut fed.state, Msg::Action(Action::Back));
    update(&mut fed.state, Msg::Action(Action::Filter));
    for k in ["1", "b"] {
        update(
            &mut fed.state,
            Msg::Key {
                key: k.into(),
                action: None,
            },
        );
    }
    let screen = text(&draw(&fed.state, 80, 24));
    assert!(screen.contains("1 of 3"), "{screen}");
    assert!(screen.contains("eu-west-1b  cp-eu-west-1b"), "{screen}");
    assert!(!screen.contains("eu-west-1c  cp-eu-west-1c"), "{screen}");
}

#[tokio::test]
async fn gpu_pane_healthy_hot_and_after_losing_a_zone() {
    for scenario in [Scenario::Healthy, Scenario::GpuHot] {
        let lab = KubeLab::start(scenario, &[]).await;
        let mut fed = Fed::start(lab.source());
        fed.complete().await;
        open(&mut fed.state, Action::PaneGpu, PaneId::GpuNodes);
        for (w, h) in SIZES {
            let buf = draw(&fed.state, w, h);
            let screen = text(&buf);
            assert!(screen.contains("2 GPU nodes in 2 zone(s)"), "{screen}");
            assert!(screen.contains("12/16 GPUs requested"), "{screen}");
            assert!(screen.contains("gpu-eu-west-1a-0"), "{screen}");
            assert_eq!(fg_of(&buf, "2 GPU nodes"), Color::Green);
            assert_eq!(fg_of(&buf, "yes"), Color::Green, "GPU taint present");
            assert_eq!(fg_of(&buf, "all"), Color::Green, "its pods tolerate it");
        }
        // DCGM temperatures come from Prometheus, not from the Kubernetes API: gpu-hot
        // looks like healthy here.
        assert_eq!(fed.state.gpu_health(), kha::model::finding::Health::Ok);
    }

    let lab = KubeLab::start(Scenario::AzFailure, &[]).await;
    let mut fed = Fed::start(lab.source());
    fed.complete().await;
    open(&mut fed.state, Action::PaneGpu, PaneId::GpuNodes);
    for (w, h) in SIZES {
        let buf = draw(&fed.state, w, h);
        let screen = text(&buf);
        assert!(screen.contains("1 GPU nodes in 1 zone(s)"), "{screen}");
        assert_eq!(fg_of(&buf, "1 GPU nodes"), Color::Yellow);
        assert_eq!(fg_of(&buf, "PENDING"), Color::Yellow);
        assert!(
            screen.contains("GPU pod(s) pending for lack of GPUs"),
            "{screen}"
        );
        assert!(
            screen.contains("all 1 GPU node(s) are in zone eu-west-1a"),
            "{screen}"
        );
    }
}

/// (scenario, control_plane status, gpu status, control-plane findings, GPU findings)
type StatusCase = (
    Scenario,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

#[tokio::test]
async fn status_json_has_findings_per_scenario() {
    let cases: [StatusCase; 3] = [
        (Scenario::Healthy, "ok", "ok", &[], &[]),
        (
            Scenario::AzFailure,
            "warn",
            "warn",
            &[
                "zone eu-west-1c has no ready control plane",
                "control-plane node cp-eu-west-1c (eu-west-1c) is Unknown",
            ],
            &[
                "GPU pod(s) pending for lack of GPUs",
                "all 1 GPU node(s) are in zone eu-west-1a",
            ],
        ),
        (Scenario::GpuHot, "ok", "ok", &[], &[]),
    ];
    let bin = env!("CARGO_BIN_EXE_kha");
    for (scenario, cp_status, gpu_status, cp_findings, gpu_findings) in cases {
        let lab = KubeLab::start(scenario, &[]).await;
        let out = tokio::process::Command::new(bin)
            .args(["status", "--json"])
            .env("KUBECONFIG", lab.dir.path().join("kubeconfig"))
            .env("KHA_CONFIG_DIR", lab.dir.path())
            .env_remove("KHA_ETCD_ENDPOINTS")
            .env_remove("KHA_APISERVER_BACKENDS")
            .env_remove("KHA_LB_STATS")
            .output()
            .await
            .expect("kha runs");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("status prints JSON");
        let messages = |pane: &str| -> Vec<String> {
            report[pane]["findings"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["message"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(report["control_plane"]["status"], cp_status, "{scenario:?}");
        assert_eq!(report["gpu"]["status"], gpu_status, "{scenario:?}");
        for (pane, wanted) in [("control_plane", cp_findings), ("gpu", gpu_findings)] {
            let got = messages(pane);
            assert_eq!(got.len(), wanted.len(), "{scenario:?} {pane}: {got:?}");
            for w in wanted {
                assert!(
                    got.iter().any(|m| m.contains(w)),
                    "{scenario:?}: {w} in {got:?}"
                );
            }
        }
        assert_eq!(
            report["control_plane"]["rows"].as_array().map(Vec::len),
            Some(3)
        );
        let feeds = report["kube"]["feeds"].as_array().expect("feeds");
        assert!(
            feeds.iter().all(|f| f["availability"] == "live"),
            "{feeds:?}"
        );
    }
}

#[tokio::test]
async fn missing_crd_and_forbidden_watch_are_said_plainly() {
    let lab = KubeLab::start(Scenario::Healthy, &["list,watch:rollouts.argoproj.io"]).await;
    lab.store.remove(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "cephclusters.ceph.rook.io",
    );
    let mut fed = Fed::start(lab.source());
    fed.complete().await;
    let kube = &fed.state.kube;
    assert_eq!(
        kube.feeds[&CustomKind::Rollout].availability,
        Availability::Forbidden {
            permission: "list/watch rollouts.argoproj.io in all namespaces".into()
        }
    );
    assert!(matches!(
        kube.feeds[&CustomKind::CephCluster].availability,
        Availability::NotInstalled { .. }
    ));
    assert_eq!(
        kube.feeds[&CustomKind::VeleroBackup].availability,
        Availability::Live,
        "the other resources still work"
    );
    let buf = draw(&fed.state, 160, 48);
    let screen = text(&buf);
    assert!(screen.contains("not installed"), "{screen}");
    assert!(screen.contains("helm install rook-ceph"), "{screen}");
    assert!(
        screen.contains("forbidden: needs list/watch rollouts.argoproj.io in"),
        "{screen}"
    );
    assert_eq!(
        fg_of(&buf, "forbidden: needs list/watch"),
        Color::Yellow,
        "a missing permission is a warning colour, not an error state"
    );
    assert_ne!(
        fed.state.control_plane_health(),
        kha::model::finding::Health::Crit
    );
}

#[tokio::test]
async fn feeds_go_stale_when_the_api_server_stops_and_recover_by_themselves() {
    let mut lab = KubeLab::start(Scenario::Healthy, &[]).await;
    let mut fed = Fed::start(lab.source());
    fed.complete().await;
    open(
        &mut fed.state,
        Action::PaneControlPlane,
        PaneId::ControlPlane,
    );
    lab.server.stop().await;
    fed.until("nodes watch down and stale", |s| s.control_plane_stale())
        .await;
    let buf = draw(&fed.state, 80, 24);
    let screen = text(&buf);
    assert!(screen.contains("STALE: watch down"), "{screen}");
    assert_eq!(fg_of(&buf, "STALE: watch down"), Color::Yellow);
    assert!(
        screen.contains("cp-eu-west-1a"),
        "stale data is still shown:\n{screen}"
    );
    assert_eq!(
        fed.state.control_plane_health(),
        kha::model::finding::Health::Unknown,
        "stale good news is not good"
    );

    lab.server.resume().await.expect("server resumes");
    fed.until("every watch live again", |s| {
        !s.control_plane_stale()
            && !s.gpu_stale()
            && matches!(s.kube.nodes.availability, Availability::Live)
            && s.kube
                .feeds
                .values()
                .all(|f| f.availability == Availability::Live)
    })
    .await;
    let screen = text(&draw(&fed.state, 80, 24));
    assert!(screen.contains("live (watching)"), "{screen}");
    assert_eq!(fed.state.kube.nodes.objects.len(), 11);
}

/// A TCP relay in front of the lab's API server that can go silent: once frozen, every
/// connection it holds, and every new one, stays open and carries nothing (as after a
/// dropped NAT entry or with a frozen API server); thawed, new connections work again.
struct SilentRelay {
    port: u16,
    frozen: tokio::sync::watch::Sender<bool>,
    _task: tokio::task::JoinHandle<()>,
}

impl SilentRelay {
    async fn start(upstream: std::net::SocketAddr) -> SilentRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("relay binds");
        let port = listener.local_addr().expect("relay address").port();
        let (frozen, frozen_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let frozen = frozen_rx.clone();
                tokio::spawn(async move {
                    let frozen_now = *frozen.borrow();
                    if frozen_now {
                        // Accepted, never answered.
                        let _held = &client;
                        std::future::pending::<()>().await;
                    }
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = tokio::io::copy(&mut cr, &mut sw);
                    let down = tokio::io::copy(&mut sr, &mut cw);
                    let mut freeze = frozen.clone();
                    let froze = tokio::select! {
                        _ = async { tokio::join!(up, down) } => false,
                        thawed = freeze.wait_for(|f| *f) => thawed.is_ok(),
                    };
                    if froze {
                        // Keep both sockets open and silent for good.
                        let _held = (cr, cw, sr, sw);
                        std::future::pending::<()>().await;
                    }
                });
            }
        });
        SilentRelay {
            port,
            frozen,
            _task: task,
        }
    }

    fn set_frozen(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_go_stale_when_the_connection_goes_silent_and_recover() {
    let lab = KubeLab::start(Scenario::Healthy, &[]).await;
    let upstream: std::net::SocketAddr = lab
        .server
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("lab address");
    let relay = SilentRelay::start(upstream).await;
    let kubeconfig = std::fs::read_to_string(lab.dir.path().join("kubeconfig"))
        .expect("kubeconfig")
        .replace(
            &format!(":{}", upstream.port()),
            &format!(":{}", relay.port),
        );
    let relayed = lab.dir.path().join("kubeconfig-relayed");
    std::fs::write(&relayed, kubeconfig).expect("kubeconfig written");
    let mut config = KubeSourceConfig::new(Some(KubeconfigSource::File(relayed)), None);
    config.stale_after = Duration::from_secs(2);
    config.watch_timeout = Duration::from_secs(2);
    let mut fed = Fed::start(config);
    fed.complete().await;

    relay.set_frozen(true);
    let silent = std::time::Instant::now();
    // Nothing fails loudly: only the read timeout (watch timeout + margin) notices.
    fed.until_within(
        "the control plane goes stale over a silent connection",
        Duration::from_secs(45),
        |s| s.control_plane_stale(),
    )
    .await;
    eprintln!(
        "a silent connection was noticed (stale) after {:.1} s",
        silent.elapsed().as_secs_f64()
    );
    // Each watch times out on its own clock: the nodes' may notice a moment after the
    // control-plane pods' made the pane stale.
    fed.until_within("the nodes watch down too", Duration::from_secs(15), |s| {
        matches!(s.kube.nodes.availability, Availability::Down { .. })
    })
    .await;

    relay.set_frozen(false);
    fed.until_within(
        "every watch live again after the connection thaws",
        Duration::from_secs(45),
        |s| {
            !s.control_plane_stale()
                && matches!(s.kube.nodes.availability, Availability::Live)
                && s.kube
                    .feeds
                    .values()
                    .all(|f| f.availability == Availability::Live)
        },
    )
    .await;
    assert_eq!(fed.state.kube.nodes.objects.len(), 11);
}

/// Opens `pane` from the cockpit with the arrow keys' selection and Enter.
fn open_tile(state: &mut State, pane: PaneId) {
    update(state, Msg::Action(Action::PaneHome));
    state.home_selected = PaneId::ALL.iter().position(|&p| p == pane).unwrap_or(0);
    update(state, Msg::Action(Action::Open));
    assert_eq!(state.screen, Screen::Pane(pane));
}

#[tokio::test]
async fn ceph_velero_and_rollouts_panes_from_the_watched_lab() {
    use kha::model::finding::Health;
    // (scenario, pane, its health, text on the pane)
    let cases = [
        (
            Scenario::Healthy,
            PaneId::Ceph,
            Health::Ok,
            "no health checks raised",
        ),
        (
            Scenario::CephDegraded,
            PaneId::Ceph,
            Health::Warn,
            "PG_DEGRADED",
        ),
        (
            Scenario::Healthy,
            PaneId::Velero,
            Health::Ok,
            "daily-backup",
        ),
        (
            Scenario::BackupStale,
            PaneId::Velero,
            Health::Crit,
            "last good backup 3d ago",
        ),
        (
            Scenario::Healthy,
            PaneId::Rollouts,
            Health::Ok,
            "shop/checkout",
        ),
        (
            Scenario::CanaryBad,
            PaneId::Rollouts,
            Health::Warn,
            "success-rate",
        ),
    ];
    for (scenario, pane, health, needle) in cases {
        let lab = KubeLab::start(scenario, &[]).await;
        let mut fed = Fed::start(lab.source());
        fed.complete().await;
        let s = &mut fed.state;
        assert!(s.custom_present(pane), "{scenario:?} {pane:?}");
        if pane == PaneId::Rollouts {
            // The watched canary ReplicaSets give the actual weight, as the CLI computes it.
            let row = &s.rollouts().rollouts[0];
            assert!(row.actual_weight.is_some(), "{row:?}");
            assert!(!text(&draw(s, 160, 48)).contains("25/?"));
        }
        assert_eq!(s.custom_health(pane), health, "{scenario:?} {pane:?}");
        assert!(s.overall() >= health, "the pane counts towards overall");
        if health > Health::Ok {
            assert!(
                s.findings().iter().any(|f| f.severity == health),
                "{scenario:?}: {:?}",
                s.findings()
            );
        }
        let home = draw(s, 160, 48);
        assert!(
            !text(&home).contains("pane not in this build"),
            "{}",
            text(&home)
        );
        open_tile(s, pane);
        for (w, h) in SIZES {
            let buf = draw(s, w, h);
            let screen = text(&buf);
            if w == 160 || !matches!(pane, PaneId::Velero) {
                assert!(screen.contains(needle), "{scenario:?} {w}x{h}: {screen}");
            }
            assert!(screen.contains(pane.title()), "{screen}");
        }
        // Enter opens the selected row's detail in a popup (a healthy Ceph has no
        // checks to select); Esc closes it first.
        let has_rows = !(pane == PaneId::Ceph && scenario == Scenario::Healthy);
        update(s, Msg::Action(Action::Open));
        let popup = text(&draw(s, 160, 48));
        assert_eq!(
            popup.contains("detail · Esc closes"),
            has_rows,
            "{scenario:?} {pane:?}: {popup}"
        );
        if has_rows {
            update(s, Msg::Action(Action::Back));
        }
        assert_eq!(s.screen, Screen::Pane(pane));
        assert!(!text(&draw(s, 160, 48)).contains("detail · Esc closes"));
        // S sorts by the pane's columns, named in the title.
        update(s, Msg::Action(Action::Sort));
        assert!(
            text(&draw(s, 160, 48)).contains(" · by "),
            "{scenario:?} {pane:?}"
        );
        // A filter that matches nothing leaves nothing to move over.
        let view = match pane {
            PaneId::Ceph => &mut s.ceph_view,
            PaneId::Velero => &mut s.velero_view,
            _ => &mut s.rollouts_view,
        };
        view.filter = "no-such-row".into();
        update(s, Msg::Action(Action::Down));
        let view = match pane {
            PaneId::Ceph => &mut s.ceph_view,
            PaneId::Velero => &mut s.velero_view,
            _ => &mut s.rollouts_view,
        };
        assert_eq!(view.selected, 0);
        view.filter.clear();
        // The filter narrows the pane's rows and Esc clears it.
        update(s, Msg::Action(Action::Filter));
        let view = match pane {
            PaneId::Ceph => &s.ceph_view,
            PaneId::Velero => &s.velero_view,
            _ => &s.rollouts_view,
        };
        assert!(view.editing_filter, "/ starts the filter on {pane:?}");
        update(s, Msg::Action(Action::Back));
        update(s, Msg::Action(Action::Back));
        assert_eq!(s.screen, Screen::Home);
    }
}

#[tokio::test]
async fn status_json_has_ceph_velero_and_rollouts() {
    let bin = env!("CARGO_BIN_EXE_kha");
    for (scenario, ceph, velero, rollouts) in [
        (Scenario::Healthy, "ok", "ok", "ok"),
        (Scenario::CephDegraded, "warn", "ok", "ok"),
        (Scenario::BackupStale, "ok", "crit", "ok"),
        (Scenario::CanaryBad, "ok", "ok", "warn"),
    ] {
        let lab = KubeLab::start(scenario, &[]).await;
        let out = tokio::process::Command::new(bin)
            .args(["status", "--json"])
            .env("KUBECONFIG", lab.dir.path().join("kubeconfig"))
            .env("KHA_CONFIG_DIR", lab.dir.path())
            .env_remove("KHA_ETCD_ENDPOINTS")
            .env_remove("KHA_APISERVER_BACKENDS")
            .env_remove("KHA_LB_STATS")
            .output()
            .await
            .expect("kha runs");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("status prints JSON");
        for (pane, want) in [("ceph", ceph), ("velero", velero), ("rollouts", rollouts)] {
            assert_eq!(report[pane]["present"], true, "{scenario:?} {pane}");
            assert_eq!(
                report[pane]["status"], want,
                "{scenario:?} {pane}: {}",
                report[pane]
            );
        }
    }
    // A resource that is not installed is absent, and does not count.
    let lab = KubeLab::start(Scenario::CephDegraded, &[]).await;
    lab.store.remove(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "cephclusters.ceph.rook.io",
    );
    let out = tokio::process::Command::new(bin)
        .args(["status", "--json"])
        .env("KUBECONFIG", lab.dir.path().join("kubeconfig"))
        .env("KHA_CONFIG_DIR", lab.dir.path())
        .env_remove("KHA_ETCD_ENDPOINTS")
        .env_remove("KHA_APISERVER_BACKENDS")
        .env_remove("KHA_LB_STATS")
        .output()
        .await
        .expect("kha runs");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["ceph"]["present"], false, "{}", report["ceph"]);
}

#[tokio::test]
async fn a_pane_whose_crd_is_missing_says_how_to_install_it() {
    let lab = KubeLab::start(Scenario::Healthy, &[]).await;
    lab.store.remove(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "cephclusters.ceph.rook.io",
    );
    let mut fed = Fed::start(lab.source());
    fed.complete().await;
    open_tile(&mut fed.state, PaneId::Ceph);
    let screen = text(&draw(&fed.state, 80, 24));
    assert!(screen.contains("is not installed"), "{screen}");
    assert!(screen.contains("helm install rook-ceph"), "{screen}");
    assert!(!fed.state.custom_present(PaneId::Ceph));
}

#[tokio::test]
async fn the_apiservers_are_discovered_from_the_kubeadm_pods() {
    let lab = KubeLab::start(Scenario::Healthy, &[]).await;
    let found = kha::sources::lb::discover::discover(&lab.source(), Duration::from_secs(5))
        .await
        .expect("discovered");
    let got: Vec<(String, String, Option<String>)> =
        found.into_iter().map(|b| (b.name, b.url, b.zone)).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    for (i, zone) in ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
        .iter()
        .enumerate()
    {
        assert_eq!(got[i].0, format!("cp-{zone}"));
        assert!(
            got[i].1.starts_with("https://10.") && got[i].1.ends_with(":6443"),
            "{got:?}"
        );
        assert_eq!(got[i].2.as_deref(), Some(*zone));
    }
    // Without kubeadm's annotation there is nothing to find, and the error says what to do.
    for name in [
        "kube-apiserver-cp-eu-west-1a",
        "kube-apiserver-cp-eu-west-1b",
        "kube-apiserver-cp-eu-west-1c",
    ] {
        lab.store.remove("v1", "Pod", Some("kube-system"), name);
    }
    let err = kha::sources::lb::discover::discover(&lab.source(), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("--apiserver-backends"),
        "{err:#}"
    );
}
