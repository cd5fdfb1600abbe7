//! The cockpit and the etcd pane on a TestBackend, at 80x24 and 160x48, in the healthy,
//! one-down, quorum-lost and alarm states. Health colours are asserted on cells.

mod common;

use common::*;
use kha::config::keymap::Keymap;
use kha::config::theme::Theme;
use kha::model::{Action, Msg, PaneId, Screen, State, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

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

fn etcd_screen(mut state: State) -> State {
    update(&mut state, Msg::Action(Action::PaneEtcd));
    assert_eq!(state.screen, Screen::Pane(PaneId::Etcd));
    state
}

#[test]
fn home_healthy_shows_every_pane_and_a_green_etcd_tile() {
    for (w, h) in SIZES {
        let buf = draw(
            &state_with(Some(observation(Scenario::Healthy))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        for title in [
            "etcd quorum",
            "API-server LB",
            "Control plane",
            "GPU nodes",
            "Ceph",
            "Velero",
            "Thanos / metrics",
            "KPIs",
            "Rollouts",
        ] {
            assert!(
                screen.contains(title),
                "{w}x{h}: {title} missing:\n{screen}"
            );
        }
        assert!(screen.contains("No findings."), "{screen}");
        assert!(screen.contains("3/3 · tolerates 1"), "{screen}");
        assert!(screen.contains("leader etcd-b"), "{screen}");
        assert!(
            screen.contains("set KUBECONFIG"),
            "unconfigured panes say so:\n{screen}"
        );
        assert_eq!(fg_of(&buf, "3/3 · tolerates 1"), Color::Green);
    }
}

#[test]
fn home_one_down_warns_in_the_banner() {
    for (w, h) in SIZES {
        let buf = draw(
            &state_with(Some(observation(Scenario::OneDown))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(
            screen.contains("etcd tolerates 0 more failures"),
            "{screen}"
        );
        assert_eq!(
            fg_of(&buf, "WARN "),
            Color::Yellow,
            "banner severity colour"
        );
        assert_eq!(fg_of(&buf, "2/3 · tolerates 0"), Color::Yellow);
    }
}

#[test]
fn home_quorum_lost_is_red() {
    for (w, h) in SIZES {
        let buf = draw(
            &state_with(Some(observation(Scenario::QuorumLost))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(screen.contains("etcd quorum lost"), "{screen}");
        assert!(screen.contains("1/3 · NO QUORUM"), "{screen}");
        assert_eq!(fg_of(&buf, "1/3 · NO QUORUM"), Color::Red);
        assert_eq!(fg_of(&buf, "CRIT "), Color::Red);
    }
}

#[test]
fn etcd_pane_healthy_marks_the_leader() {
    for (w, h) in SIZES {
        let buf = draw(
            &etcd_screen(state_with(Some(observation(Scenario::Healthy)))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(
            screen.contains("3/3 healthy · quorum 2 · tolerates 1 more failure"),
            "{screen}"
        );
        let leader_row = rows(&buf)
            .into_iter()
            .find(|r| r.contains("etcd-b") && r.contains("127.0.0.1"))
            .expect("etcd-b row");
        assert!(
            leader_row.starts_with("│*"),
            "leader marked: {leader_row:?}"
        );
        let other = rows(&buf)
            .into_iter()
            .find(|r| r.contains("etcd-a") && r.contains("127.0.0.1"))
            .expect("etcd-a row");
        assert!(!other.contains('*'), "only the leader is marked: {other:?}");
        for name in ["etcd-a", "etcd-b", "etcd-c"] {
            assert!(screen.contains(name), "{screen}");
        }
        assert_eq!(fg_of(&buf, "3/3 healthy"), Color::Green);
    }
}

#[test]
fn etcd_pane_one_down_says_tolerates_zero() {
    for (w, h) in SIZES {
        let buf = draw(
            &etcd_screen(state_with(Some(observation(Scenario::OneDown)))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(
            screen.contains("2/3 healthy · quorum 2 · tolerates 0 more failures"),
            "{screen}"
        );
        assert_eq!(fg_of(&buf, "2/3 healthy"), Color::Yellow);
        assert_eq!(fg_of(&buf, "DOWN"), Color::Red);
    }
}

#[test]
fn etcd_pane_quorum_lost() {
    for (w, h) in SIZES {
        let buf = draw(
            &etcd_screen(state_with(Some(observation(Scenario::QuorumLost)))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(
            screen.contains("1/3 healthy · quorum 2 · QUORUM LOST"),
            "{screen}"
        );
        assert!(screen.contains("leader none"), "{screen}");
        assert_eq!(fg_of(&buf, "1/3 healthy"), Color::Red);
    }
}

#[test]
fn etcd_pane_alarm() {
    for (w, h) in SIZES {
        let buf = draw(
            &etcd_screen(state_with(Some(observation(Scenario::Alarm)))),
            &theme("default"),
            w,
            h,
        );
        let screen = text(&buf);
        assert!(screen.contains("ALARM NOSPACE on etcd-b"), "{screen}");
        assert_eq!(fg_of(&buf, "ALARM NOSPACE"), Color::Red);
        assert!(
            buf[find(&buf, "ALARM NOSPACE").unwrap_or_default()]
                .modifier
                .contains(Modifier::BOLD)
        );
    }
}

#[test]
fn stale_data_is_marked() {
    let mut state = etcd_screen(state_with(Some(observation(Scenario::Healthy))));
    update(
        &mut state,
        Msg::Tick(T0 + std::time::Duration::from_secs(90)),
    );
    let screen = text(&draw(&state, &theme("default"), 80, 24));
    assert!(screen.contains("STALE: updated 1m ago"), "{screen}");
}

#[test]
fn before_first_data_it_says_connecting() {
    let buf = draw(&state_with(None), &theme("default"), 80, 24);
    assert!(
        text(&buf).contains("connecting… 3 endpoints"),
        "{}",
        text(&buf)
    );
}

#[test]
fn mono_theme_uses_no_colour_but_keeps_status_words() {
    for scenario in [
        Scenario::Healthy,
        Scenario::OneDown,
        Scenario::QuorumLost,
        Scenario::Alarm,
    ] {
        let state = etcd_screen(state_with(Some(observation(scenario))));
        let buf = draw(&state, &theme("mono"), 80, 24);
        for cell in buf.content() {
            assert_eq!(
                (cell.fg, cell.bg),
                (Color::Reset, Color::Reset),
                "mono must not colour anything"
            );
        }
    }
    let buf = draw(
        &etcd_screen(state_with(Some(observation(Scenario::QuorumLost)))),
        &theme("mono"),
        80,
        24,
    );
    assert!(text(&buf).contains("QUORUM LOST"));
    assert!(
        buf[find(&buf, "CRIT").unwrap_or_default()]
            .modifier
            .contains(Modifier::REVERSED)
    );
}

#[test]
fn help_overlay_lists_the_active_keymap() {
    let mut state = state_with(Some(observation(Scenario::Healthy)));
    update(&mut state, Msg::Action(Action::Help));
    let km = Keymap::shipped("vim").expect("vim");
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    terminal
        .draw(|f| kha::ui::view(f, &state, &theme("default"), &km))
        .expect("draw");
    let screen = text(terminal.backend().buffer());
    assert!(screen.contains("keymap vim"), "{screen}");
    assert!(screen.contains("Go to the etcd quorum pane"), "{screen}");
    assert!(screen.contains("k up"), "vim keys listed:\n{screen}");
}

/// At 80x24 the help is longer than the screen: the last bindings are reached by
/// scrolling, and scrolling keeps it open.
#[test]
fn help_scrolls_to_its_last_binding_at_80x24() {
    let mut state = state_with(Some(observation(Scenario::Healthy)));
    let km = Keymap::shipped("default").expect("default");
    let screen = |state: &State| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal
            .draw(|f| kha::ui::view(f, state, &theme("default"), &km))
            .expect("draw");
        text(terminal.backend().buffer())
    };
    update(&mut state, Msg::Action(Action::Help));
    let top = screen(&state);
    assert!(top.contains("Quit kha"), "{top}");
    assert!(
        !top.contains("GPUs at 95"),
        "the last binding is below:\n{top}"
    );
    for _ in 0..4 {
        update(&mut state, Msg::Action(Action::PageDown));
    }
    assert!(state.help_open);
    let bottom = screen(&state);
    assert!(bottom.contains("GPUs at 95"), "{bottom}");
    assert!(!bottom.contains("Quit kha"), "{bottom}");
}

#[test]
fn tiny_terminal_does_not_panic() {
    let state = etcd_screen(state_with(Some(observation(Scenario::Alarm))));
    for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10)] {
        draw(&state, &theme("default"), w, h);
        draw(
            &state_with(Some(observation(Scenario::QuorumLost))),
            &theme("default"),
            w,
            h,
        );
    }
}

/// The real run loop on a TestBackend: messages in, frames out, quit on `q`.
#[tokio::test]
async fn run_loop_draws_observations_and_quits() {
    let keymap = Keymap::shipped("default").expect("keymap");
    let theme = theme("default");
    let cockpit = kha::app::Cockpit {
        theme: &theme,
        keymap: &keymap,
        lab: None,
        runbooks: None,
        timings: None,
        clipboard: None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    tx.send(Msg::Etcd(observation(Scenario::OneDown)))
        .await
        .expect("send");
    tx.send(Msg::Action(Action::PaneEtcd)).await.expect("send");
    let sender = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let _ = tx.send(Msg::Action(Action::Quit)).await;
    });
    let state = cockpit
        .run(&mut terminal, state_with(None), rx)
        .await
        .expect("run");
    sender.await.expect("sender");
    assert_eq!(state.screen, Screen::Pane(PaneId::Etcd));
    let screen = text(terminal.backend().buffer());
    assert!(
        screen.contains("2/3 healthy · quorum 2 · tolerates 0 more failures"),
        "{screen}"
    );
}

#[test]
fn demo_before_the_lab_is_up_says_starting() {
    let mut state = state_with(None);
    state.etcd.endpoints.clear();
    let screen = text(&draw(&state, &theme("default"), 80, 24));
    assert!(screen.contains("starting the lab…"), "{screen}");
    update(
        &mut state,
        Msg::EtcdEndpoints(vec!["http://127.0.0.1:1".into()]),
    );
    let screen = text(&draw(&state, &theme("default"), 80, 24));
    assert!(screen.contains("connecting… 1 endpoints"), "{screen}");
}

#[test]
fn configured_sources_without_a_pane_say_so_instead_of_asking_for_setup() {
    let mut state = state_with(Some(observation(Scenario::Healthy)));
    update(
        &mut state,
        Msg::OtherSources(kha::model::OtherSources {
            kubeconfig: true,
            prometheus: true,
        }),
    );
    // The kube source is set up: its panes wait for it instead of asking for setup.
    update(&mut state, Msg::KubeConfigured);
    let screen = text(&draw(&state, &theme("default"), 80, 24));
    assert!(screen.contains("not in this build yet"), "{screen}");
    assert!(screen.contains("starting…"), "{screen}");
    assert!(!screen.contains("set KUBECONFIG"), "{screen}");
}

/// The `:` command line: the footer shows what was typed and what it means; Enter goes
/// to a unique match; an unknown or ambiguous name is said and nothing moves.
#[test]
fn the_command_line_jumps_by_name() {
    let mut state = state_with(Some(observation(Scenario::Healthy)));
    let km = Keymap::shipped("default").expect("default");
    let key = |state: &mut State, k: &str| {
        update(
            state,
            Msg::Key {
                key: k.into(),
                action: km.action_for(k),
            },
        )
    };
    let footer = |state: &State| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal
            .draw(|f| kha::ui::view(f, state, &theme("default"), &km))
            .expect("draw");
        text(terminal.backend().buffer())
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    };
    for k in [":", "e", "t"] {
        key(&mut state, k);
    }
    assert!(
        footer(&state).starts_with(":et_  → etcd"),
        "{}",
        footer(&state)
    );
    key(&mut state, "tab");
    assert!(footer(&state).starts_with(":etcd_"), "{}", footer(&state));
    key(&mut state, "enter");
    assert_eq!(state.screen, Screen::Pane(PaneId::Etcd));
    assert!(state.command.is_none());

    for k in [":", "c"] {
        key(&mut state, k);
    }
    assert!(
        footer(&state).contains("cp ceph canary cockpit copy"),
        "{}",
        footer(&state)
    );
    key(&mut state, "enter");
    assert_eq!(state.screen, Screen::Pane(PaneId::Etcd), "ambiguous: stays");
    assert!(
        footer(&state).contains(":c could be cp, ceph"),
        "{}",
        footer(&state)
    );

    for k in [":", "h", "o", "enter"] {
        key(&mut state, k);
    }
    assert_eq!(state.screen, Screen::Home);
    // Esc leaves it without going anywhere; q typed there is text, not quit.
    for k in [":", "q", "x"] {
        assert!(key(&mut state, k).is_empty());
    }
    key(&mut state, "esc");
    assert!(state.command.is_none());
    assert_eq!(state.screen, Screen::Home);
}
