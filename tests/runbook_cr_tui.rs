//! The Rollouts and Velero panes' runbook menus in the cockpit, fed by the real kube
//! source from the lab: `r` lists the pane's runbooks, Enter plans the entry for the
//! selected row; the advisory's key opens the abort of the advised rollout; `y` hands
//! the confirmed plan to the runner with what was on screen.

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
    let source = tokio::spawn(kha::sources::kube::run(config, tx));
    let mut f = Fed {
        state,
        rx,
        _server: server,
        _dir: dir,
        _source: source,
    };
    let listed = |s: &State| {
        [
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

fn pick(state: &mut State, entry: usize) {
    update(state, Msg::Action(Action::Runbooks));
    for _ in 0..entry {
        update(state, Msg::Action(Action::Down));
    }
    update(state, Msg::Action(Action::Open));
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

    pick(s, 1);
    let restore = preview(s).clone();
    assert_eq!(restore.id, "velero.restore");
    let Operation::KubeCreate { body, .. } = &restore.steps[0].operation else {
        panic!("a create");
    };
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["spec"]["includedNamespaces"], serde_json::json!(["*"]));
    assert!(body["spec"]["backupName"].is_string());
}
