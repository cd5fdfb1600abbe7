//! The API-server LB pane and its cockpit tile on a TestBackend, at 80x24 and 160x48, in
//! the healthy, one-down, disagreement, probes-only and not-configured states. Health
//! colours are asserted on cells.

mod common;

use std::time::Duration;

use common::*;
use kha::config::keymap::Keymap;
use kha::config::theme::Theme;
use kha::model::lb::{
    BackendProbe, HealthCheck, LbKind, LbObservation, LbServer, LbStatus, LbView,
};
use kha::model::{Action, LbTargets, Msg, PaneId, Screen, State, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];
const DAY: u64 = 86_400;

fn theme(name: &str) -> Theme {
    Theme::shipped(name).expect("shipped theme")
}

fn draw(state: &State, theme: &Theme, w: u16, h: u16) -> Buffer {
    let keymap = Keymap::shipped("default").expect("default keymap");
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    terminal
        .draw(|f| kha::ui::view(f, state, theme, &keymap))
        .expect("draw");
    terminal.backend().buffer().clone()
}

fn check(status: Option<u16>, failing: &[&str], error: Option<&str>) -> HealthCheck {
    HealthCheck {
        status,
        failing: failing.iter().map(|s| s.to_string()).collect(),
        latency: Duration::from_millis(7),
        error: error.map(String::from),
    }
}

fn ok() -> HealthCheck {
    check(Some(200), &[], None)
}

fn probe(name: &str, i: u8, readyz: HealthCheck, cert_days: u64) -> BackendProbe {
    BackendProbe {
        name: name.into(),
        url: format!("https://10.0.0.{i}:6443"),
        address: format!("10.0.0.{i}:6443"),
        zone: Some(format!("eu-west-1{}", (b'a' + i - 1) as char)),
        readyz: Some(readyz),
        livez: Some(ok()),
        cert_not_after: Some(T0 + Duration::from_secs(cert_days * DAY)),
    }
}

fn server(name: &str, i: u8, status: &str, check: &str, passed: bool) -> LbServer {
    LbServer {
        proxy: "kube-apiserver".into(),
        name: name.into(),
        address: Some(format!("10.0.0.{i}:6443")),
        status: LbStatus::parse(status),
        check: Some(check.into()),
        check_passed: Some(passed),
        last_change_secs: Some(120),
        sessions: Some(4),
        weight: Some(1),
        admin: None,
    }
}

enum Lb {
    Healthy,
    OneDown,
    Disagreement,
    ProbesOnly,
}

fn observation(s: Lb) -> LbObservation {
    let refused = check(
        None,
        &[],
        Some("connect: Connection refused (os error 111)"),
    );
    let etcd_failing = check(Some(500), &["etcd"], None);
    let (probes, servers) = match s {
        Lb::Healthy | Lb::ProbesOnly => (
            vec![
                probe("cp-a", 1, ok(), 300),
                probe("cp-b", 2, ok(), 300),
                probe("cp-c", 3, ok(), 300),
            ],
            vec![
                server("cp-a", 1, "UP", "L7OK 200", true),
                server("cp-b", 2, "UP", "L7OK 200", true),
                server("cp-c", 3, "UP", "L7OK 200", true),
            ],
        ),
        Lb::OneDown => (
            vec![
                probe("cp-a", 1, ok(), 300),
                probe("cp-b", 2, ok(), 300),
                probe("cp-c", 3, refused, 300),
            ],
            vec![
                server("cp-a", 1, "UP", "L7OK 200", true),
                server("cp-b", 2, "UP", "L7OK 200", true),
                server("cp-c", 3, "DOWN", "L4CON", false),
            ],
        ),
        Lb::Disagreement => (
            vec![
                probe("cp-a", 1, ok(), 300),
                probe("cp-b", 2, etcd_failing, 300),
                probe("cp-c", 3, ok(), 5),
            ],
            vec![
                server("cp-a", 1, "MAINT", "L7OK 200", true),
                server("cp-b", 2, "UP 1/3", "L7STS 500", false),
                server("cp-c", 3, "UP", "L7OK 200", true),
            ],
        ),
    };
    let lb = (!matches!(s, Lb::ProbesOnly)).then(|| LbView {
        kind: LbKind::Haproxy,
        source: "unix:///run/haproxy/admin.sock".into(),
        read_at: Some(T0),
        servers,
        error: None,
    });
    LbObservation {
        observed_at: T0,
        backends: probes,
        lb,
    }
}

fn state(obs: Option<LbObservation>) -> State {
    let mut s = state_with(Some(common::observation(Scenario::Healthy)));
    update(
        &mut s,
        Msg::LbTargets(LbTargets {
            backends: vec!["https://10.0.0.1:6443".into()],
            stats: Some("unix:///run/haproxy/admin.sock".into()),
        }),
    );
    if let Some(o) = obs {
        update(&mut s, Msg::Lb(o));
    }
    s
}

fn lb_screen(mut s: State) -> State {
    update(&mut s, Msg::Action(Action::PaneLb));
    assert_eq!(s.screen, Screen::Pane(PaneId::ApiServerLb));
    s
}

fn row_of<'a>(rows: &'a [String], name: &str) -> &'a String {
    rows.iter()
        .find(|r| r.starts_with('│') && r.contains(&format!(" {name} ")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{}", rows.join("\n")))
}

/// Foreground colour of `needle` within the table row of `name`.
fn fg_in_row(buf: &Buffer, name: &str, needle: &str) -> Color {
    let rows = rows(buf);
    let y = rows
        .iter()
        .position(|r| r.starts_with('│') && r.contains(&format!(" {name} ")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{}", rows.join("\n")));
    let line: Vec<String> = (0..buf.area.width)
        .map(|x| buf[(x, y as u16)].symbol().to_string())
        .collect();
    let x = (0..line.len())
        .find(|&x| line[x..].concat().starts_with(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the row of {name}: {}", rows[y]));
    buf[(x as u16, y as u16)].fg
}

#[test]
fn healthy_pane_is_green_and_lists_every_backend() {
    for (w, h) in SIZES {
        let buf = draw(
            &lb_screen(state(Some(observation(Lb::Healthy)))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(screen.contains("API-server LB"), "{screen}");
        assert!(screen.contains("3/3 serving"), "{screen}");
        assert!(
            screen.contains("LB HAProxy unix:///run/haproxy/admin.sock"),
            "{screen}"
        );
        assert_eq!(fg_of(&buf, "3/3 serving"), Color::Green);
        let rows = rows(&buf);
        for name in ["cp-a", "cp-b", "cp-c"] {
            let row = row_of(&rows, name);
            assert!(row.contains("UP") && row.contains("L7OK 200"), "{row}");
            assert!(row.contains("300d"), "cert days shown: {row}");
            assert_eq!(fg_in_row(&buf, name, "UP"), Color::Green);
            assert_eq!(fg_in_row(&buf, name, "ok"), Color::Green, "readyz ok");
        }
        assert!(
            !screen.contains("CRIT") && !screen.contains("WARN"),
            "{screen}"
        );
        // The selected row's detail: address and zone even at 80 columns.
        assert!(screen.contains("10.0.0.1:6443 zone eu-west-1a"), "{screen}");
        if w >= 120 {
            assert!(row_of(&rows, "cp-b").contains("eu-west-1b"), "zone column");
        }
    }
}

#[test]
fn one_down_shows_lb_down_and_readyz_unreachable_in_red() {
    for (w, h) in SIZES {
        let buf = draw(
            &lb_screen(state(Some(observation(Lb::OneDown)))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(screen.contains("2/3 serving"), "{screen}");
        assert_eq!(fg_of(&buf, "2/3 serving"), Color::Yellow);
        assert_eq!(fg_in_row(&buf, "cp-c", "DOWN"), Color::Red);
        assert_eq!(
            fg_in_row(&buf, "cp-c", "L4CON"),
            Color::Red,
            "failed LB check"
        );
        assert_eq!(
            fg_in_row(&buf, "cp-c", "ERR"),
            Color::Red,
            "readyz unreachable"
        );
        assert_eq!(fg_in_row(&buf, "cp-c", "!"), Color::Yellow, "row marked");
        assert!(
            screen.contains("cp-c /readyz fails: connect: Connection refused"),
            "{screen}"
        );
        assert_eq!(fg_of(&buf, "WARN "), Color::Yellow);
    }
}

#[test]
fn disagreement_is_critical_and_names_the_backend() {
    for (w, h) in SIZES {
        let buf = draw(
            &lb_screen(state(Some(observation(Lb::Disagreement)))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(screen.contains("1/3 serving"), "{screen}");
        assert_eq!(fg_of(&buf, "1/3 serving"), Color::Red);
        assert!(
            screen.contains("LB sends traffic to cp-b (UP 1/3) but its /readyz fails: etcd"),
            "{screen}"
        );
        assert_eq!(fg_of(&buf, "CRIT "), Color::Red);
        assert_eq!(
            fg_in_row(&buf, "cp-b", "UP 1/3"),
            Color::Yellow,
            "transition"
        );
        assert_eq!(fg_in_row(&buf, "cp-b", "500"), Color::Red, "readyz 500");
        assert_eq!(fg_in_row(&buf, "cp-b", "!"), Color::Red);
        assert_eq!(fg_in_row(&buf, "cp-a", "MAINT"), Color::Yellow);
        assert_eq!(
            fg_in_row(&buf, "cp-c", "5d"),
            Color::Yellow,
            "cert expiring"
        );
        assert!(
            row_of(&rows(&buf), "cp-b").contains("etcd"),
            "failing check shown"
        );
        assert!(
            screen.contains("LB has cp-a MAINT but its /readyz is ok"),
            "{screen}"
        );
    }
}

#[test]
fn selection_moves_and_the_detail_follows() {
    let mut s = lb_screen(state(Some(observation(Lb::Disagreement))));
    update(&mut s, Msg::Action(Action::Down));
    update(&mut s, Msg::Action(Action::Down));
    update(&mut s, Msg::Action(Action::Down));
    assert_eq!(s.lb.selected, 2, "stops at the last row");
    let buf = draw(&s, &theme("default"), 80, 24);
    let screen = text(&buf);
    assert!(
        screen.contains("cp-c 10.0.0.3:6443 zone eu-west-1c"),
        "{screen}"
    );
    assert!(screen.contains("cert expires in 5d"), "{screen}");
    let y = rows(&buf)
        .iter()
        .position(|r| r.contains(" cp-c ") && r.contains("UP"))
        .expect("cp-c row");
    assert_eq!(
        buf[(3, y as u16)].bg,
        theme("default").focus.bg.unwrap_or(Color::Reset),
        "the selected row is highlighted"
    );
}

#[test]
fn probes_only_says_the_lb_view_is_not_configured() {
    let buf = draw(
        &lb_screen(state(Some(observation(Lb::ProbesOnly)))),
        &theme("default"),
        80,
        24,
    );
    let screen = text(&buf);
    assert!(
        screen.contains("LB view not configured (--lb-stats)"),
        "{screen}"
    );
    assert!(screen.contains("3/3 serving"), "{screen}");
    assert!(row_of(&rows(&buf), "cp-a").contains("n/a"), "{screen}");
}

#[test]
fn home_tile_follows_the_pane() {
    for (w, h) in SIZES {
        let buf = draw(
            &state(Some(observation(Lb::Healthy))),
            &theme("default"),
            w,
            h,
        );
        assert_eq!(fg_of(&buf, "3/3 serving"), Color::Green, "{}", text(&buf));
        assert!(text(&buf).contains("HAProxy: 3/3 UP"), "{}", text(&buf));
        let buf = draw(
            &state(Some(observation(Lb::Disagreement))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert_eq!(fg_of(&buf, "1/3 serving"), Color::Red, "{screen}");
        assert!(
            screen.contains("LB sends traffic to cp-b"),
            "banner: {screen}"
        );
        assert_eq!(fg_of(&buf, " CRIT"), Color::Red, "header overall: {screen}");
    }
}

#[test]
fn not_configured_says_what_to_set() {
    let s = state_with(Some(common::observation(Scenario::Healthy)));
    let screen = text(&draw(&s, &theme("default"), 160, 48));
    assert!(screen.contains("set KHA_APISERVER_BACKENDS or"), "{screen}");
    let screen = text(&draw(&lb_screen(s), &theme("default"), 80, 24));
    assert!(screen.contains("API-server LB not configured"), "{screen}");
    let waiting = text(&draw(&lb_screen(state(None)), &theme("default"), 80, 24));
    assert!(
        waiting.contains("Probing 1 backends, reading unix:///run/haproxy/admin.sock"),
        "{waiting}"
    );
}

#[test]
fn mono_theme_keeps_the_words() {
    for s in [Lb::Healthy, Lb::OneDown, Lb::Disagreement] {
        let buf = draw(
            &lb_screen(state(Some(observation(s)))),
            &theme("mono"),
            80,
            24,
        );
        for cell in buf.content() {
            assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset));
        }
    }
    let screen = text(&draw(
        &lb_screen(state(Some(observation(Lb::OneDown)))),
        &theme("mono"),
        80,
        24,
    ));
    assert!(
        screen.contains("DOWN") && screen.contains("ERR"),
        "{screen}"
    );
}

#[test]
fn tiny_terminals_do_not_panic() {
    for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10)] {
        draw(
            &lb_screen(state(Some(observation(Lb::Disagreement)))),
            &theme("default"),
            w,
            h,
        );
        draw(
            &state(Some(observation(Lb::OneDown))),
            &theme("default"),
            w,
            h,
        );
    }
}
