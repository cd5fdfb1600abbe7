//! The Rollouts and Velero panes' runbook menus in the cockpit, fed by the real kube
//! source from the lab: `r` lists the pane's runbooks, Enter plans the entry for the
//! selected row; the advisory's key opens the abort of the advised rollout; `y` hands
//! the confirmed plan to the runner with what was on screen. A restore asks which
//! namespaces first; a traffic shift and a zone evacuation read what the cockpit does
//! not watch (HTTPRoutes, every pod) through the runner, then preview the answer.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use kha::lab::kube::{KubeApiConfig, KubeApiServer, Store};
use kha::lab::topology::{Faults, LabSpec, Scenario, Topology};
use kha::model::canary::{CanaryObservation, SeriesValue};
use kha::model::kube::CustomKind;
use kha::model::runbook_ui::RunbookScreen;
use kha::model::{Action, Effect, EtcdPaneState, Msg, PaneId, Screen, State, update};
use kha::runbook::Operation;
use kha::sources::kube::{KubeSourceConfig, KubeconfigSource};
use tokio::sync::mpsc;

struct Fed {
    state: State,
    rx: mpsc::Receiver<Msg>,
    config: KubeSourceConfig,
    _server: KubeApiServer,
    _dir: tempfile::TempDir,
    _source: tokio::task::JoinHandle<()>,
}

async fn fed() -> Fed {
    let spec = LabSpec {
        scenario: Scenario::CanaryBad,
        ..LabSpec::default()
    };
    let topology = Topology::generate(&spec);
    let store = Store::new();
    store
        .put_many(kha::lab::world::objects(
            &topology,
            &spec,
            &Faults::for_scenario(Scenario::CanaryBad, &topology),
            SystemTime::now(),
        ))
        .expect("lab objects");
    let server = KubeApiServer::start(store, KubeApiConfig::default())
        .await
        .expect("API server");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let config = KubeSourceConfig::new(Some(KubeconfigSource::File(kubeconfig)), None);
    let pane = EtcdPaneState::new(
        Vec::new(),
        kha::model::etcd::EtcdSettings::default(),
        Duration::from_secs(5),
    );
    let mut state = State::new("lab", pane, SystemTime::now());
    state.kube = kha::model::kube::KubeState::new(true, config.stale_after);
    let (tx, rx) = mpsc::channel(256);
    let source = tokio::spawn(kha::sources::kube::run(config.clone(), tx));
    let mut f = Fed {
        state,
        rx,
        config,
        _server: server,
        _dir: dir,
        _source: source,
    };
    let listed = |s: &State| {
        s.kube.nodes.updated_at.is_some()
            && s.kube.control_plane_pods.updated_at.is_some()
            && [
                CustomKind::Rollout,
                CustomKind::RolloutReplicaSet,
                CustomKind::VeleroBackup,
                CustomKind::VeleroSchedule,
            ]
            .iter()
            .all(|k| s.kube.feeds.get(k).is_some_and(|f| f.updated_at.is_some()))
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !listed(&f.state) {
        match tokio::time::timeout_at(deadline, f.rx.recv()).await {
            Ok(Some(msg)) => {
                update(&mut f.state, msg);
            }
            _ => panic!("the kube source did not list the rollouts and Velero kinds"),
        }
    }
    f
}

fn preview(state: &State) -> &kha::runbook::Runbook {
    match &state.runbook {
        Some(RunbookScreen::Preview { runbook, .. }) => runbook,
        other => panic!("expected a preview, got {other:?}"),
    }
}

/// Opens the pane's menu and Enter on `entry`; what Enter asked for.
fn pick(state: &mut State, entry: usize) -> Vec<Effect> {
    update(state, Msg::Action(Action::Runbooks));
    for _ in 0..entry {
        update(state, Msg::Action(Action::Down));
    }
    update(state, Msg::Action(Action::Open))
}

fn typed(state: &mut State, text: &str) {
    for c in text.chars() {
        let key = if c == ' ' {
            "space".into()
        } else {
            c.to_string()
        };
        update(state, Msg::Key { key, action: None });
    }
}

/// The read a menu entry asked for, done by a real runner on its own thread; its
/// answer is fed back as the cockpit's loop would.
async fn read_through_runner(f: &mut Fed, effects: Vec<Effect>) {
    let [Effect::ReadForPlan { ticket, request }] = effects.as_slice() else {
        panic!("expected one read, got {effects:?}");
    };
    assert!(
        matches!(f.state.runbook, Some(RunbookScreen::Loading { ticket: t, .. }) if t == *ticket),
        "{:?}",
        f.state.runbook
    );
    let (tx, mut rx) = mpsc::channel(8);
    let dir = tempfile::tempdir().unwrap();
    let mut runner = kha::runbook::tui::RunbookRunner::new(
        Default::default(),
        dir.path().to_path_buf(),
        false,
        tx,
    );
    runner.kube = Some(f.config.clone());
    runner.read_for_plan(*ticket, (**request).clone());
    let answer = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the read answers")
        .expect("a message");
    assert!(matches!(answer, Msg::RunbookOptions { .. }), "{answer:?}");
    update(&mut f.state, answer);
}

fn canary(rate: f64) -> Msg {
    Msg::Canary(CanaryObservation {
        observed_at: SystemTime::now(),
        query: "sum by (destination_service_name) (rate(istio_requests_total[5m]))".into(),
        threshold: 0.05,
        result: Ok(vec![SeriesValue {
            labels: BTreeMap::from([
                ("destination_service_namespace".into(), "shop".into()),
                ("destination_service_name".into(), "checkout-canary".into()),
            ]),
            value: rate,
        }]),
    })
}

#[tokio::test]
async fn the_rollouts_menu_plans_for_the_selected_rollout_and_a_opens_the_advised_abort() {
    let mut f = fed().await;
    let s = &mut f.state;
    s.screen = Screen::Pane(PaneId::Rollouts);

    update(s, Msg::Action(Action::Runbooks));
    match &s.runbook {
        Some(RunbookScreen::Menu { pane, .. }) => assert_eq!(*pane, PaneId::Rollouts),
        other => panic!("expected the menu, got {other:?}"),
    }
    update(s, Msg::Action(Action::Back));

    let titles: Vec<String> = (0..5)
        .map(|i| {
            pick(s, i);
            let t = preview(s).id.clone();
            update(s, Msg::Action(Action::Back));
            t
        })
        .collect();
    assert_eq!(
        titles,
        [
            "rollout.abort",
            "rollout.retry",
            "rollout.promote",
            "rollout.promote-full",
            "rollout.undo"
        ]
    );
    pick(s, 4);
    let undo = preview(s).clone();
    assert!(undo.unmet().is_empty(), "{:?}", undo.unmet());
    assert!(matches!(
        undo.steps[0].operation,
        Operation::KubeJsonPatch { .. }
    ));
    update(s, Msg::Action(Action::Back));

    // No advisory yet: A says so and opens nothing.
    update(s, Msg::Action(Action::AbortAdvised));
    assert!(s.runbook.is_none());
    assert!(
        s.current_notice()
            .is_some_and(|n| n.text.contains("no abort advisory"))
    );

    update(s, canary(0.081));
    let row = s.rollouts().rollouts[0].clone();
    assert!(row.abort_advisory.is_some(), "{row:?}");
    update(s, Msg::Action(Action::AbortAdvised));
    let abort = preview(s).clone();
    assert_eq!(abort.id, "rollout.abort");
    assert!(abort.title.contains("shop/checkout"));
    let effects = update(
        s,
        Msg::Key {
            key: "y".into(),
            action: None,
        },
    );
    match effects.as_slice() {
        [
            Effect::StartRunbook {
                runbook,
                answer,
                seen,
            },
        ] => {
            assert_eq!(runbook.id, "rollout.abort");
            assert_eq!(answer, "y");
            assert!(
                seen.iter().any(|f| f.contains("abort advised")),
                "the advisory goes to the audit log as seen: {seen:?}"
            );
        }
        other => panic!("expected the run to start, got {other:?}"),
    }
}

#[tokio::test]
async fn the_velero_menu_backs_up_from_the_selected_backups_schedule_and_restores_it() {
    let mut f = fed().await;
    let s = &mut f.state;
    s.screen = Screen::Pane(PaneId::Velero);
    pick(s, 0);
    let backup = preview(s).clone();
    assert_eq!(backup.id, "velero.backup-now");
    let Operation::KubeCreate { body, .. } = &backup.steps[0].operation else {
        panic!("a create");
    };
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    let schedule = body["metadata"]["labels"]["velero.io/schedule-name"]
        .as_str()
        .expect("labelled with its schedule");
    assert!(
        body["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(schedule)
    );
    update(s, Msg::Action(Action::Back));

    // The restore asks which namespaces, naming the ones the backup holds.
    assert!(pick(s, 1).is_empty());
    let Some(RunbookScreen::Input { hint, .. }) = &s.runbook else {
        panic!("the restore asks for namespaces: {:?}", s.runbook);
    };
    assert!(hint.contains("holds"), "{hint}");
    // Nothing typed: every namespace in the backup.
    update(s, Msg::Action(Action::Open));
    let restore = preview(s).clone();
    assert_eq!(restore.id, "velero.restore");
    let Operation::KubeCreate { body, .. } = &restore.steps[0].operation else {
        panic!("a create");
    };
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["spec"]["includedNamespaces"], serde_json::json!(["*"]));
    assert!(body["spec"]["backupName"].is_string());
    update(s, Msg::Action(Action::Back));

    // Not a namespace name: said, and the line stays to be mended.
    pick(s, 1);
    typed(s, "Shop_1");
    update(s, Msg::Action(Action::Open));
    assert!(
        matches!(&s.runbook, Some(RunbookScreen::Input { text, .. }) if text == "Shop_1"),
        "{:?}",
        s.runbook
    );
    assert!(
        s.notices
            .iter()
            .any(|n| n.text.contains("\"Shop_1\" is not a namespace name")),
        "{:?}",
        s.notices
    );
    for _ in 0..6 {
        update(
            s,
            Msg::Key {
                key: "backspace".into(),
                action: None,
            },
        );
    }
    typed(s, "shop, search");
    update(s, Msg::Action(Action::Open));
    let some = preview(s).clone();
    assert_eq!(
        some.title.split(" from ").next(),
        Some("Restore shop, search")
    );
    let Operation::KubeCreate { body, .. } = &some.steps[0].operation else {
        panic!("a create");
    };
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body["spec"]["includedNamespaces"],
        serde_json::json!(["shop", "search"])
    );
}

#[tokio::test]
async fn a_traffic_shift_reads_the_httproutes_and_offers_one_shift_per_backend() {
    let mut f = fed().await;
    f.state.screen = Screen::Pane(PaneId::Rollouts);
    let effects = pick(&mut f.state, kha::model::runbook_cr_ui::SHIFT_TRAFFIC);
    read_through_runner(&mut f, effects).await;
    let Some(RunbookScreen::Choose { options, .. }) = &f.state.runbook else {
        panic!("a list to choose from: {:?}", f.state.runbook);
    };
    let labels: Vec<&str> = options.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(
        labels[1].starts_with("shop/checkout-global: all traffic to "),
        "{labels:?}"
    );
    update(&mut f.state, Msg::Action(Action::Down));
    update(&mut f.state, Msg::Action(Action::Open));
    let shift = preview(&f.state).clone();
    assert_eq!(shift.id, "traffic.shift");
    assert!(shift.unmet().is_empty(), "{:?}", shift.unmet());
    assert!(
        shift.title.ends_with("from 70/30 to 0/100"),
        "{}",
        shift.title
    );
}

#[tokio::test]
async fn a_zone_evacuation_reads_every_pod_then_previews_the_capacity_check() {
    let mut f = fed().await;
    f.state.screen = Screen::Pane(PaneId::ControlPlane);
    let effects = pick(&mut f.state, kha::model::failover_menu::EVACUATE_ZONE);
    let Some(Effect::ReadForPlan { request, .. }) = effects.first() else {
        panic!("{effects:?}");
    };
    let kha::runbook::tui_plan::PlanRequest::ZoneEvacuation { zone, .. } = &**request else {
        panic!("{request:?}");
    };
    let zone = zone.clone();
    // While the read runs the overlay says so, and Esc gives up on it: a late answer
    // to a read given up is dropped.
    update(&mut f.state, Msg::Action(Action::Back));
    assert!(f.state.runbook.is_none());
    let Some(Effect::ReadForPlan { ticket, .. }) = effects.first() else {
        unreachable!()
    };
    update(
        &mut f.state,
        Msg::RunbookOptions {
            ticket: *ticket,
            result: Err("late".into()),
        },
    );
    assert!(f.state.runbook.is_none());
    assert!(!f.state.notices.iter().any(|n| n.text.contains("late")));

    let effects = pick(&mut f.state, kha::model::failover_menu::EVACUATE_ZONE);
    read_through_runner(&mut f, effects).await;
    let rb = preview(&f.state).clone();
    assert_eq!(rb.id, "zone.evacuate");
    assert_eq!(rb.title, format!("Evacuate zone {zone}"));
    let capacity = rb
        .preconditions
        .iter()
        .find(|p| p.description.contains("CPU and memory"))
        .expect("the capacity check");
    assert!(
        capacity.evidence.contains("needed by") && capacity.evidence.contains("free on"),
        "weighed from the pods read: {}",
        capacity.evidence
    );
    assert!(
        !capacity.evidence.contains("not checked"),
        "{}",
        capacity.evidence
    );
}
