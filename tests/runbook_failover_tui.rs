//! The LB and control-plane panes' runbook menus: the selected backend's drain is
//! previewed and started after `y`; draining the last serving backend shows the refusal
//! in the preview and starts nothing; the control-plane pane offers node runbooks and
//! the zone evacuation (its read of every pod is tested in runbook_cr_tui.rs).

mod common;

use std::time::{Duration, SystemTime};

use common::{Scenario, observation, state_with, text};
use kha::config::keymap::Keymap;
use kha::config::theme::Theme;
use kha::model::lb::{
    BackendProbe, HealthCheck, LbKind, LbObservation, LbServer, LbStatus, LbView,
};
use kha::model::runbook_ui::RunbookScreen;
use kha::model::{Action, Effect, Msg, PaneId, State, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn key(state: &mut State, k: &str) -> Vec<Effect> {
    let keymap = Keymap::shipped("default").expect("keymap");
    update(
        state,
        Msg::Key {
            key: k.into(),
            action: keymap.action_for(k),
        },
    )
}

fn screen(state: &State) -> String {
    let theme = Theme::shipped("default").expect("theme");
    let keymap = Keymap::shipped("default").expect("keymap");
    let mut t = Terminal::new(TestBackend::new(100, 40)).expect("terminal");
    t.draw(|f| kha::ui::view(f, state, &theme, &keymap))
        .expect("draw");
    text(t.backend().buffer())
}

fn check(status: u16) -> HealthCheck {
    HealthCheck {
        status: Some(status),
        failing: Vec::new(),
        latency: Duration::from_millis(2),
        error: None,
    }
}

fn lb(states: [&str; 3]) -> LbObservation {
    let names = ["cp-a", "cp-b", "cp-c"];
    LbObservation {
        observed_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1),
        backends: (0..3)
            .map(|i| BackendProbe {
                name: names[i].into(),
                url: format!("http://10.0.0.{}:6443", i + 1),
                address: format!("10.0.0.{}:6443", i + 1),
                zone: None,
                readyz: Some(check(200)),
                livez: Some(check(200)),
                cert_not_after: None,
            })
            .collect(),
        lb: Some(LbView {
            kind: LbKind::Haproxy,
            source: "unix:///run/haproxy/admin.sock".into(),
            read_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1)),
            servers: (0..3)
                .map(|i| LbServer {
                    proxy: "kube-apiserver".into(),
                    name: names[i].into(),
                    address: Some(format!("10.0.0.{}:6443", i + 1)),
                    status: LbStatus::parse(states[i]),
                    check: Some("L7OK 200".into()),
                    check_passed: Some(true),
                    last_change_secs: Some(5),
                    sessions: Some(1),
                    weight: Some(1),
                    admin: None,
                })
                .collect(),
            error: None,
        }),
    }
}

fn lb_state(states: [&str; 3]) -> State {
    let mut s = state_with(Some(observation(Scenario::Healthy)));
    s.lb.targets.stats = Some("unix:///run/haproxy/admin.sock".into());
    update(&mut s, Msg::Lb(lb(states)));
    update(&mut s, Msg::Action(Action::PaneLb));
    s.lb.selected = 1;
    s
}

#[test]
fn the_lb_pane_drains_the_selected_backend_after_y() {
    let mut s = lb_state(["UP", "UP", "UP"]);
    key(&mut s, "r");
    assert!(matches!(
        s.runbook,
        Some(RunbookScreen::Menu {
            pane: PaneId::ApiServerLb,
            selected: 0
        })
    ));
    assert!(screen(&s).contains("Drain the selected backend (HAProxy)"));
    assert!(key(&mut s, "enter").is_empty());
    let view = screen(&s);
    assert!(
        view.contains("set server kube-apiserver/cp-b state drain"),
        "{view}"
    );
    match key(&mut s, "y").as_slice() {
        [
            Effect::StartRunbook {
                runbook, answer, ..
            },
        ] => {
            assert_eq!(runbook.id, "lb.drain");
            assert_eq!(answer, "y");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_lb_pane_will_not_drain_the_last_serving_backend() {
    let mut s = lb_state(["MAINT", "UP", "DRAIN"]);
    key(&mut s, "r");
    key(&mut s, "enter");
    let view = screen(&s);
    assert!(view.contains("none: cp-b is the last backend"), "{view}");
    // The preview says the engine will refuse it (the engine enforces it and audits
    // the refusal, whatever the overlay does).
    assert!(
        view.contains("preconditions not met: kha will refuse"),
        "{view}"
    );
}

#[test]
fn the_control_plane_pane_offers_node_and_zone_runbooks() {
    let mut s = state_with(Some(observation(Scenario::Healthy)));
    s.kube.configured = true;
    update(&mut s, Msg::Action(Action::PaneControlPlane));
    key(&mut s, "r");
    assert!(
        matches!(
            s.runbook,
            Some(RunbookScreen::Menu {
                pane: PaneId::ControlPlane,
                ..
            })
        ),
        "{:?} {:?}",
        s.screen,
        s.runbook
    );
    let view = screen(&s);
    for entry in [
        "Cordon the selected node",
        "Drain the selected node",
        "Drain it, bare and emptyDir pods too",
        "Uncordon the selected node",
        "Evacuate the selected node's zone",
    ] {
        assert!(view.contains(entry), "{entry}: {view}");
    }
    // No node watched yet: nothing to plan for, said plainly.
    key(&mut s, "down");
    assert!(key(&mut s, "enter").is_empty());
    assert!(screen(&s).contains("select a node first"), "{}", screen(&s));
}

#[test]
fn the_gpu_pane_offers_node_runbooks() {
    let mut s = state_with(Some(observation(Scenario::Healthy)));
    s.kube.configured = true;
    update(&mut s, Msg::Action(Action::PaneGpu));
    key(&mut s, "r");
    let view = screen(&s);
    assert!(view.contains("Drain the selected GPU node"), "{view}");
    key(&mut s, "enter");
    assert!(
        screen(&s).contains("select a GPU node first"),
        "{}",
        screen(&s)
    );
}
