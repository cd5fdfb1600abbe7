//! Runbooks from the cockpit: the etcd pane's menu, the plan's preview with the
//! confirmation its risk needs (y, or the cluster name typed), the effect that starts
//! the run, its live output — and the cockpit's runner against a real 3-member etcd.

mod common;

use std::time::Duration;

use common::{Scenario, observation, require_binary, state_with, text};
use kha::config::keymap::Keymap;
use kha::config::theme::Theme;
use kha::lab::etcd_real::RealEtcdCluster;
use kha::model::runbook_ui::RunbookScreen;
use kha::model::{Action, Effect, Msg, PaneId, State, update};
use kha::runbook::Risk;
use kha::runbook::tui::RunbookRunner;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

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

fn screen(state: &State, w: u16, h: u16) -> String {
    let theme = Theme::shipped("default").expect("theme");
    let keymap = Keymap::shipped("default").expect("keymap");
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| kha::ui::view(f, state, &theme, &keymap))
        .expect("draw");
    text(t.backend().buffer())
}

#[test]
fn defrag_from_the_etcd_pane_needs_y_and_shows_its_progress() {
    let mut s = state_with(Some(observation(Scenario::Healthy)));
    update(&mut s, Msg::Action(Action::PaneEtcd));
    assert!(screen(&s, 80, 24).contains("r runbooks"), "footer hint");
    key(&mut s, "r");
    assert!(matches!(
        s.runbook,
        Some(RunbookScreen::Menu {
            pane: PaneId::Etcd,
            selected: 0
        })
    ));
    assert!(screen(&s, 80, 24).contains("Defragment every member"));
    key(&mut s, "down");
    key(&mut s, "down");
    assert!(key(&mut s, "enter").is_empty());
    let view = screen(&s, 80, 24);
    assert!(view.contains("y: run"), "{view}");
    assert!(view.contains("Defragment etcd-a"), "{view}");
    // Enter does not run a disruptive plan; y does.
    assert!(key(&mut s, "enter").is_empty());
    let effects = key(&mut s, "y");
    match effects.as_slice() {
        [
            Effect::StartRunbook {
                runbook, answer, ..
            },
        ] => {
            assert_eq!(runbook.id, "etcd.defrag");
            assert_eq!(runbook.risk(), Risk::Disruptive);
            assert_eq!(answer, "y");
        }
        other => panic!("{other:?}"),
    }
    update(&mut s, Msg::RunbookProgress("[1] Defragment etcd-a".into()));
    update(&mut s, Msg::RunbookProgress("    ok".into()));
    let view = screen(&s, 80, 24);
    assert!(
        view.contains("[1] Defragment etcd-a") && view.contains("running"),
        "{view}"
    );
    // Esc while running keeps the output on screen.
    key(&mut s, "esc");
    assert!(s.runbook.is_some());
    update(&mut s, Msg::RunbookFinished(Ok("3 step(s) done".into())));
    assert!(screen(&s, 80, 24).contains("done: 3 step(s) done"));
    key(&mut s, "esc");
    assert!(s.runbook.is_none());
}

#[test]
fn nospace_recovery_needs_the_cluster_name_typed() {
    let mut s = state_with(Some(observation(Scenario::Alarm)));
    update(&mut s, Msg::Action(Action::PaneEtcd));
    key(&mut s, "r");
    for _ in 0..3 {
        key(&mut s, "down");
    }
    key(&mut s, "enter");
    let view = screen(&s, 100, 30);
    assert!(view.contains("type the cluster name (prod-eu)"), "{view}");
    // y is just a letter of the name here, not a confirmation.
    assert!(key(&mut s, "y").is_empty());
    key(&mut s, "backspace");
    for c in "prod-eu".chars() {
        assert!(key(&mut s, &c.to_string()).is_empty());
    }
    match key(&mut s, "enter").as_slice() {
        [
            Effect::StartRunbook {
                runbook, answer, ..
            },
        ] => {
            assert_eq!(runbook.id, "etcd.recover-nospace");
            assert_eq!(answer, "prod-eu");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_panes_say_where_the_runbooks_are() {
    let mut s = state_with(Some(observation(Scenario::Healthy)));
    key(&mut s, "r");
    assert!(s.runbook.is_none());
    assert!(screen(&s, 120, 30).contains("open a pane that has them"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cockpit_runner_saves_a_snapshot_from_a_real_cluster() {
    require_binary("etcd", "etcd-server");
    let dir = tempfile::tempdir().unwrap();
    let etcd = RealEtcdCluster::start(dir.path(), 3).await.expect("etcd");
    let mut prober = kha::sources::etcd::EtcdProber::new(
        kha::sources::etcd::EtcdSourceConfig::new(etcd.client_urls()),
    )
    .unwrap();
    let obs = prober.probe().await;
    // The cockpit's snapshot dir does not exist before the first snapshot.
    let file = dir.path().join("snapshots").join("from-the-cockpit.db");
    let runbook = kha::runbook::etcd::snapshot_save("lab", &obs, &file);
    let (tx, mut rx) = mpsc::channel(256);
    let runner = RunbookRunner::new(Default::default(), dir.path().join("state"), false, tx);
    runner.spawn(
        runbook.clone(),
        String::new(),
        vec!["WARN etcd: test finding".into()],
    );
    let mut lines = Vec::new();
    let result = loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Msg::RunbookProgress(l))) => lines.push(l),
            Ok(Some(Msg::RunbookFinished(r))) => break r,
            other => panic!("{other:?}"),
        }
    };
    assert!(result.is_ok(), "{result:?} {lines:?}");
    assert!(file.is_file());
    assert!(lines.iter().any(|l| l.contains("sha256:")), "{lines:?}");
    let log = std::fs::read_to_string(dir.path().join("state").join("audit.jsonl")).unwrap();
    let first = log.lines().next().unwrap_or_default();
    assert!(
        first.contains("finding_seen") && first.contains("WARN etcd: test finding"),
        "what was on screen is recorded first: {log}"
    );
    // Read-only is refused by the engine, whatever the cockpit asked.
    let (tx, mut rx) = mpsc::channel(256);
    let read_only = RunbookRunner::new(Default::default(), dir.path().join("state"), true, tx);
    read_only.spawn(runbook, String::new(), Vec::new());
    let result = loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Msg::RunbookFinished(r))) => break r,
            Ok(Some(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert!(result.unwrap_err().contains("read-only"));
    etcd.shutdown().await;
}

fn argv_runbook(steps: &[&[&str]]) -> kha::runbook::Runbook {
    use kha::runbook::{Operation, Runbook, Step, Verification};
    Runbook {
        id: "test.argv".into(),
        title: "argv steps".into(),
        cluster: "lab".into(),
        summary: String::new(),
        preconditions: Vec::new(),
        steps: steps
            .iter()
            .map(|argv| Step {
                title: argv.join(" "),
                explanation: String::new(),
                risk: Risk::Safe,
                operation: Operation::Argv {
                    host: None,
                    argv: argv.iter().map(|a| a.to_string()).collect(),
                },
                verification: Verification::None,
                timeout: Duration::from_secs(5),
                on_failure: "look".into(),
                skippable: true,
            })
            .collect(),
    }
}

async fn next(rx: &mut mpsc::Receiver<Msg>) -> Msg {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a message within 20 s")
        .expect("the runner is alive")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_step_waits_for_retry_skip_or_abort_and_cancel_stops_between_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let runner = RunbookRunner::new(Default::default(), dir.path().join("state"), false, tx);
    runner.spawn(
        argv_runbook(&[&["false"], &["true"]]),
        String::new(),
        Vec::new(),
    );
    let mut asked = 0;
    let result = loop {
        match next(&mut rx).await {
            Msg::RunbookAsk {
                step, skippable, ..
            } => {
                assert_eq!((step, skippable), (1, true));
                asked += 1;
                // Retry once (it fails again), then skip.
                runner.decide(if asked == 1 {
                    kha::runbook::engine::Decision::Retry
                } else {
                    kha::runbook::engine::Decision::Skip
                });
            }
            Msg::RunbookFinished(r) => break r,
            _ => {}
        }
    };
    assert_eq!(asked, 2);
    let done = result.expect("finished after the skip");
    assert!(done.starts_with("2 step(s) done"), "{done}");

    // Cancel: the sleeping first step finishes, the second never starts.
    let (tx, mut rx) = mpsc::channel(256);
    let runner = RunbookRunner::new(Default::default(), dir.path().join("state"), false, tx);
    runner.spawn(
        argv_runbook(&[&["sleep", "1"], &["touch", "/nonexistent-dir/x"]]),
        String::new(),
        Vec::new(),
    );
    loop {
        if let Msg::RunbookProgress(l) = next(&mut rx).await
            && l.contains("[1]")
        {
            break;
        }
    }
    runner.cancel();
    let result = loop {
        if let Msg::RunbookFinished(r) = next(&mut rx).await {
            break r;
        }
    };
    let err = result.unwrap_err();
    assert!(
        err.contains("cancelled by the engineer before step 2"),
        "{err}"
    );
}

#[test]
fn the_overlay_asks_after_a_failed_step() {
    let mut s = state_with(Some(observation(Scenario::Healthy)));
    update(&mut s, Msg::Action(Action::PaneEtcd));
    key(&mut s, "r");
    key(&mut s, "down");
    key(&mut s, "down");
    key(&mut s, "enter");
    key(&mut s, "y");
    update(
        &mut s,
        Msg::RunbookAsk {
            step: 2,
            error: "timed out".into(),
            skippable: true,
        },
    );
    let view = screen(&s, 100, 30);
    assert!(
        view.contains("step 2 failed: r retry · s skip · a abort"),
        "{view}"
    );
    assert_eq!(
        key(&mut s, "s"),
        vec![Effect::RunbookDecision(
            kha::runbook::engine::Decision::Skip
        )]
    );
    assert!(screen(&s, 100, 30).contains("c: cancel"));
    assert_eq!(key(&mut s, "c"), vec![Effect::CancelRunbook]);
    assert!(screen(&s, 100, 30).contains("cancelling"));
}

#[test]
fn restore_from_the_pane_uses_the_newest_snapshot_and_the_member_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = state_with(Some(observation(Scenario::Healthy)));
    s.snapshot_dir = dir.path().to_path_buf();
    update(&mut s, Msg::Action(Action::PaneEtcd));
    key(&mut s, "r");
    for _ in 0..4 {
        key(&mut s, "down");
    }
    // No snapshot yet: said, and the menu stays.
    key(&mut s, "enter");
    assert!(matches!(
        s.runbook,
        Some(RunbookScreen::Menu {
            pane: PaneId::Etcd,
            selected: 4
        })
    ));
    assert!(screen(&s, 120, 30).contains("no snapshot in"));
    std::fs::write(dir.path().join("older.db"), b"x").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.path().join("newest.db"), b"x").unwrap();
    key(&mut s, "enter");
    match &s.runbook {
        Some(RunbookScreen::Preview { runbook, .. }) => {
            assert_eq!(runbook.id, "etcd.restore");
            assert_eq!(runbook.risk(), Risk::Destructive);
            let plan = kha::runbook::plan::markdown(runbook);
            assert!(plan.contains("newest.db"), "{plan}");
            assert!(
                plan.contains("--initial-cluster=etcd-a=http://127.0.0.1:2479,"),
                "{plan}"
            );
            assert!(plan.contains("on etcd-b over ssh"), "{plan}");
        }
        other => panic!("{other:?}"),
    }
    assert!(screen(&s, 120, 30).contains("type the cluster name (prod-eu)"));
}
