//! The Thanos / metrics pane and its cockpit tile on a TestBackend, at 80x24 and 160x48:
//! healthy Thanos, a failing sidecar with a warning alert and a short retention, a
//! critical alert, a plain Prometheus ("not Thanos"), unreachable, waiting and not
//! configured. Health colours are asserted on cells.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use kha::config::keymap::Keymap;
use kha::config::theme::Theme;
use kha::model::finding::Health;
use kha::model::thanos::{
    Alert, BuildInfo, DownTarget, Fetched, MetricsObservation, MetricsPaneState, Reach, Resolution,
    RetentionCheck, RetentionSettings, StoresReading, TargetsSummary, parse_stores,
};
use kha::model::{Action, Msg, PaneId, Screen, State, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];
/// 2025-11-30 06:40 UTC, when the fixture was recorded.
const NOW: u64 = 1_764_484_800;

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

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn stores(all_healthy: bool) -> StoresReading {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/thanos_stores.json")).unwrap();
    let mut stores = parse_stores(&doc["data"]).unwrap();
    if all_healthy {
        for s in &mut stores {
            s.last_error = None;
        }
    }
    StoresReading::Stores { stores }
}

fn alert(name: &str, severity: &str) -> Alert {
    Alert {
        name: name.into(),
        severity: severity.into(),
        firing: true,
        active_at: None,
        summary: Some(format!("{name} is firing.")),
        labels: Default::default(),
    }
}

fn check(resolution: Resolution, days: u64, reach: Reach) -> RetentionCheck {
    RetentionCheck {
        resolution,
        expected_secs: days * 86_400,
        reach,
    }
}

enum Case {
    Healthy,
    Degraded,
    Failed,
    NotThanos,
}

fn observation(case: Case) -> MetricsObservation {
    let short = matches!(case, Case::Degraded);
    let mut alerts = vec![alert("Watchdog", "none")];
    let mut down = Vec::new();
    match case {
        Case::Degraded => {
            alerts.push(alert("KubeNodeNotReady", "warning"));
            down.push(DownTarget {
                job: "kubelet".into(),
                instance: "10.0.3.12:10250".into(),
                scrape_url: "https://10.0.3.12:10250/metrics".into(),
                last_error: "context deadline exceeded".into(),
            });
        }
        Case::Failed | Case::NotThanos => alerts.push(alert("etcdMembersDown", "critical")),
        Case::Healthy => {}
    }
    let thanos = !matches!(case, Case::NotThanos);
    MetricsObservation {
        observed_at: now(),
        unreachable: None,
        stores: if thanos {
            stores(!matches!(case, Case::Degraded))
        } else {
            StoresReading::NotThanos
        },
        retention: if thanos {
            vec![
                check(Resolution::Raw, 14, Reach::Reaches),
                check(
                    Resolution::FiveMinutes,
                    180,
                    if short {
                        Reach::FallsShort
                    } else {
                        Reach::Reaches
                    },
                ),
                check(Resolution::OneHour, 365, Reach::Reaches),
            ]
        } else {
            Vec::new()
        },
        build: Fetched::Read {
            value: BuildInfo {
                version: if thanos { "0.37.2" } else { "2.42.0" }.into(),
                revision: None,
                branch: None,
                go_version: Some("go1.23.4".into()),
            },
        },
        targets: Fetched::Read {
            value: TargetsSummary { total: 40, down },
        },
        alerts: Fetched::Read { value: alerts },
    }
}

fn state(obs: Option<MetricsObservation>, configured: bool) -> State {
    let mut s = state_with(Some(common::observation(Scenario::Healthy)));
    s.now = now();
    s.metrics = MetricsPaneState::new(
        configured.then(|| "http://thanos-query:9090".to_string()),
        RetentionSettings::default(),
        Duration::from_secs(60),
    );
    if let Some(o) = obs {
        update(&mut s, Msg::Metrics(o));
    }
    s
}

fn on_pane(mut s: State) -> State {
    s.home_selected = PaneId::ALL
        .iter()
        .position(|p| *p == PaneId::Metrics)
        .unwrap();
    update(&mut s, Msg::Action(Action::Open));
    assert_eq!(s.screen, Screen::Pane(PaneId::Metrics));
    s
}

/// Foreground of the cell at the start of `needle` in the row that also holds `row`.
fn fg_in_row(buf: &Buffer, row: &str, needle: &str) -> ratatui::style::Color {
    let (_, y) = find(buf, row).unwrap_or_else(|| panic!("{row:?} not on screen:\n{}", text(buf)));
    let line = &rows(buf)[usize::from(y)];
    let byte = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"));
    let x = line[..byte].chars().count() as u16;
    buf[(x, y)].fg
}

#[test]
fn healthy_thanos_shows_stores_retention_and_is_green() {
    let t = theme();
    for (w, h) in SIZES {
        let s = state(Some(observation(Case::Healthy)), true);
        assert_eq!(s.metrics.health(s.now), Health::Ok);
        let buf = draw(&on_pane(s), w, h);
        let screen = text(&buf);
        assert!(screen.contains("Thanos Query 0.37.2"), "{screen}");
        assert_eq!(fg_of(&buf, "4/4 healthy"), t.ok.fg.unwrap(), "{screen}");
        assert_eq!(fg_of(&buf, "raw 14d ok"), t.ok.fg.unwrap(), "{screen}");
        assert_eq!(fg_of(&buf, "0 of 40 down"), t.ok.fg.unwrap());
        assert_eq!(fg_of(&buf, " OK "), t.ok.fg.unwrap());
        assert!(screen.contains("sidecar"), "{screen}");
        assert!(
            screen.contains("364d ago"),
            "store gateway's oldest block: {screen}"
        );
        // Watchdog fires with severity none: listed, muted, no finding.
        assert_eq!(fg_of(&buf, "none"), t.muted.fg.unwrap(), "{screen}");
    }
}

#[test]
fn failing_sidecar_short_retention_and_warning_alert_are_yellow_and_red() {
    let t = theme();
    for (w, h) in SIZES {
        let s = state(Some(observation(Case::Degraded)), true);
        assert_eq!(s.metrics.health(s.now), Health::Warn);
        assert_eq!(s.overall(), Health::Warn, "the pane counts towards overall");
        let home = draw(&s, w, h);
        assert!(
            text(&home).contains("3/4 stores healthy"),
            "{}",
            text(&home)
        );
        let buf = draw(&on_pane(s), w, h);
        let screen = text(&buf);
        assert_eq!(fg_of(&buf, "DOWN"), t.crit.fg.unwrap(), "{screen}");
        assert_eq!(fg_in_row(&buf, "10.42.0.31", "up"), t.ok.fg.unwrap());
        assert_eq!(fg_of(&buf, "3/4 healthy"), t.warn.fg.unwrap());
        assert_eq!(fg_of(&buf, "5m 180d FALLS SHORT"), t.warn.fg.unwrap());
        assert_eq!(fg_of(&buf, "1 of 40 down"), t.warn.fg.unwrap());
        assert_eq!(fg_of(&buf, "  kubelet/10.0.3.12"), t.warn.fg.unwrap());
        assert_eq!(fg_of(&buf, "warning"), t.warn.fg.unwrap(), "{screen}");
        assert_eq!(fg_of(&buf, " WARN "), t.warn.fg.unwrap());
    }
}

#[test]
fn critical_alert_makes_the_pane_red() {
    let t = theme();
    for (w, h) in SIZES {
        let s = state(Some(observation(Case::Failed)), true);
        assert_eq!(s.metrics.health(s.now), Health::Crit);
        let buf = draw(&on_pane(s), w, h);
        assert_eq!(
            fg_of(&buf, "critical"),
            t.crit.fg.unwrap(),
            "{}",
            text(&buf)
        );
        assert_eq!(fg_of(&buf, "2 firing"), t.crit.fg.unwrap());
        assert_eq!(fg_of(&buf, " CRIT "), t.crit.fg.unwrap());
        // The border takes the pane's health colour.
        let area = buf.area;
        assert_eq!(buf[(0, area.height / 2)].fg, t.crit.fg.unwrap());
    }
}

#[test]
fn plain_prometheus_says_not_thanos_and_still_lists_alerts() {
    let t = theme();
    for (w, h) in SIZES {
        let s = state(Some(observation(Case::NotThanos)), true);
        let buf = draw(&on_pane(s), w, h);
        let screen = text(&buf);
        assert!(screen.contains("Prometheus 2.42.0"), "{screen}");
        assert_eq!(fg_of(&buf, "Stores: not Thanos"), t.muted.fg.unwrap());
        assert_eq!(
            fg_of(&buf, "etcdMembersDown"),
            t.crit.fg.unwrap(),
            "{screen}"
        );
        assert!(screen.contains("needs Thanos"), "{screen}");
    }
}

#[test]
fn unreachable_is_unknown_waiting_and_unconfigured_say_so() {
    let t = theme();
    for (w, h) in SIZES {
        let mut obs = observation(Case::Healthy);
        obs.unreachable = Some("error sending request: Connection refused".into());
        let s = state(Some(obs), true);
        assert_eq!(s.metrics.health(s.now), Health::Unknown);
        let buf = draw(&on_pane(s), w, h);
        assert_eq!(
            fg_of(&buf, "Cannot reach http://thanos-query:9090"),
            t.unknown.fg.unwrap(),
            "{}",
            text(&buf)
        );
        assert!(!text(&buf).contains("CRIT"));

        let waiting = draw(&on_pane(state(None, true)), w, h);
        assert!(
            text(&waiting).contains("Asking http://thanos-query:9090"),
            "{}",
            text(&waiting)
        );
        assert_eq!(fg_of(&waiting, "UNKNOWN"), t.unknown.fg.unwrap());

        let mut s = state(None, false);
        let home = draw(&s, w, h);
        assert!(
            text(&home).contains("KHA_PROMETHEUS_URL"),
            "{}",
            text(&home)
        );
        s.home_selected = PaneId::ALL
            .iter()
            .position(|p| *p == PaneId::Metrics)
            .unwrap();
        update(&mut s, Msg::Action(Action::Open));
        assert_eq!(s.screen, Screen::Home, "an unconfigured pane does not open");
        assert_eq!(
            s.overall(),
            s.etcd.health(s.now),
            "unconfigured metrics do not count"
        );
        assert!(s.findings().iter().all(|f| f.pane != "metrics"));
    }
}
