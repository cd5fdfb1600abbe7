//! The KPIs pane and its cockpit tile on a TestBackend, at 80x24 and 160x48: on target,
//! breached, Prometheus unreachable, waiting for data and not configured; the PromQL
//! popup. Health colours are asserted on cells.

mod common;

use std::time::Duration;

use common::*;
use kha::config::keymap::Keymap;
use kha::config::theme::Theme;
use kha::model::finding::Health;
use kha::model::kpi::{KpiObservation, KpiPaneState, KpiReading, KpiResult, kpi_defs};
use kha::model::{Action, Msg, PaneId, Screen, State, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn theme() -> Theme {
    Theme::shipped("default").expect("shipped theme")
}

fn draw(state: &State, w: u16, h: u16) -> Buffer {
    let keymap = Keymap::shipped("default").expect("default keymap");
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    terminal
        .draw(|f| kha::ui::view(f, state, &theme(), &keymap))
        .expect("draw");
    terminal.backend().buffer().clone()
}

fn value(id: &str, value: f64) -> KpiResult {
    KpiResult {
        id: id.into(),
        reading: KpiReading::Value {
            value,
            series: 1,
            used_fallback: false,
        },
        history: (0..30)
            .map(|i| value * (0.8 + 0.01 * f64::from(i)))
            .collect(),
    }
}

fn observation(p99: f64, unreachable: Option<&str>) -> KpiObservation {
    let results = if unreachable.is_some() {
        Vec::new()
    } else {
        vec![
            value("apiserver_p99_latency", p99),
            value("apiserver_availability", 0.99995),
            value("pod_startup_p99", 3.0),
            value("cross_az_latency", 0.004),
            KpiResult {
                id: "scaling_speed".into(),
                reading: KpiReading::NotAvailable,
                history: Vec::new(),
            },
            value("canary_error_rate", 0.01),
        ]
    };
    KpiObservation {
        observed_at: T0,
        unreachable: unreachable.map(String::from),
        results,
    }
}

fn state(obs: Option<KpiObservation>, configured: bool) -> State {
    let mut s = state_with(Some(common::observation(Scenario::Healthy)));
    s.kpis = KpiPaneState::new(
        configured.then(|| "http://prometheus:9090".to_string()),
        kpi_defs(&Default::default()).unwrap(),
        Duration::from_secs(60),
    );
    if let Some(o) = obs {
        update(&mut s, Msg::Kpis(o));
    }
    s
}

fn on_pane(mut s: State) -> State {
    s.home_selected = PaneId::ALL.iter().position(|p| *p == PaneId::Kpis).unwrap();
    update(&mut s, Msg::Action(Action::Open));
    assert_eq!(s.screen, Screen::Pane(PaneId::Kpis));
    s
}

#[test]
fn on_target_every_kpi_is_green_and_not_available_is_muted() {
    let t = theme();
    for (w, h) in SIZES {
        let buf = draw(&on_pane(state(Some(observation(0.3, None)), true)), w, h);
        let screen = text(&buf);
        assert!(screen.contains(" KPIs "), "{screen}");
        assert_eq!(fg_of(&buf, "300 ms"), t.ok.fg.unwrap(), "{screen}");
        assert!(screen.contains("< 500 ms"), "{screen}");
        assert_eq!(fg_of(&buf, "3.0 s"), t.ok.fg.unwrap());
        assert_eq!(fg_of(&buf, "not available"), t.muted.fg.unwrap());
        assert_eq!(fg_of(&buf, "n/a"), t.muted.fg.unwrap());
        assert!(
            screen.contains('▁') || screen.contains('█'),
            "sparkline: {screen}"
        );
    }
}

#[test]
fn breached_kpi_is_red_on_the_pane_and_the_tile() {
    let t = theme();
    for (w, h) in SIZES {
        let s = state(Some(observation(0.8, None)), true);
        assert_eq!(s.kpis.health(s.now), Health::Crit);
        assert_eq!(
            s.overall(),
            Health::Crit,
            "configured KPIs count to overall"
        );
        let home = draw(&s, w, h);
        assert!(text(&home).contains("KPIs on target"), "{}", text(&home));
        let pane = draw(&on_pane(s), w, h);
        assert_eq!(
            fg_of(&pane, "800 ms"),
            t.crit.fg.unwrap(),
            "{}",
            text(&pane)
        );
        assert_eq!(fg_of(&pane, "CRIT"), t.crit.fg.unwrap());
    }
}

#[test]
fn unreachable_prometheus_is_unknown_not_crit() {
    let t = theme();
    for (w, h) in SIZES {
        let s = state(Some(observation(0.3, Some("connection refused"))), true);
        assert_eq!(s.kpis.health(s.now), Health::Unknown);
        let pane = draw(&on_pane(s), w, h);
        assert_eq!(
            fg_of(&pane, "UNREACHABLE"),
            t.unknown.fg.unwrap(),
            "{}",
            text(&pane)
        );
        assert!(!text(&pane).contains("CRIT"));
    }
}

#[test]
fn waiting_and_not_configured_tiles_say_so() {
    for (w, h) in SIZES {
        let waiting = draw(&state(None, true), w, h);
        assert!(text(&waiting).contains("querying"), "{}", text(&waiting));
        let mut s = state(None, false);
        let home = draw(&s, w, h);
        assert!(
            text(&home).contains("KHA_PROMETHEUS_URL"),
            "{}",
            text(&home)
        );
        s.home_selected = PaneId::ALL.iter().position(|p| *p == PaneId::Kpis).unwrap();
        update(&mut s, Msg::Action(Action::Open));
        assert_eq!(s.screen, Screen::Home, "an unconfigured pane does not open");
        assert_eq!(s.overall(), Health::Ok, "unconfigured KPIs do not count");
    }
}

#[test]
fn enter_or_question_mark_shows_the_promql() {
    for (w, h) in SIZES {
        let mut s = on_pane(state(Some(observation(0.3, None)), true));
        update(&mut s, Msg::Action(Action::Down));
        update(&mut s, Msg::Action(Action::Down));
        update(&mut s, Msg::Action(Action::Open));
        let buf = draw(&s, w, h);
        let screen = text(&buf);
        assert!(screen.contains("PromQL"), "{screen}");
        assert!(screen.contains("kubelet_pod_start_sli"), "{screen}");
        update(&mut s, Msg::Action(Action::Back));
        assert!(!s.kpis.query_open);
        assert_eq!(
            s.screen,
            Screen::Pane(PaneId::Kpis),
            "Esc closes the popup first"
        );
        update(&mut s, Msg::Action(Action::Help));
        assert!(
            s.kpis.query_open && !s.help_open,
            "? shows the PromQL first"
        );
        update(&mut s, Msg::Action(Action::Help));
        assert!(s.help_open && !s.kpis.query_open, "then the help");
    }
}
