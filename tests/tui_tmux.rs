//! End to end: the real `kha demo` binary in a real terminal (tmux, 80x24). The screen
//! must show three members and a leader, and stopping a member from the keyboard must
//! change the quorum line. The `:` command line opens a pane by name.

mod common;

use std::time::{Duration, Instant};

use common::require_binary;
use common::tmux::Tmux;

fn demo_round_trip(mode: &str) {
    let config = tempfile::tempdir().expect("tempdir");
    let config_dir = config.path().to_string_lossy().into_owned();
    let kha = env!("CARGO_BIN_EXE_kha");
    // The wrapper records kha's exit status in a file: tmux is not always quick to mark
    // a pane dead, and the file is what we assert on.
    let exit_file = config.path().join("exit-status");
    let exit_path = exit_file.to_string_lossy().into_owned();
    let script = "\"$0\" demo --etcd \"$1\"; echo $? > \"$2\"";
    let t = Tmux::start(
        mode,
        &["sh", "-c", script, kha, mode, &exit_path],
        &[("KHA_CONFIG_DIR", &config_dir)],
    );

    let home = t.wait_for("three healthy members on the cockpit", |s| {
        s.contains("3/3 · tolerates 1")
    });
    assert!(
        home.contains("etcd quorum") && home.contains("Rollouts"),
        "{home}"
    );

    t.keys("e");
    let pane = t.wait_for("the etcd pane", |s| {
        s.contains("3/3 healthy · quorum 2 · tolerates 1 more failure")
    });
    for name in ["etcd-a", "etcd-b", "etcd-c"] {
        assert!(pane.contains(name), "{name} missing:\n{pane}");
    }
    let leader_rows: Vec<&str> = pane
        .lines()
        .filter(|l| l.starts_with("│*") && l.contains("etcd-"))
        .collect();
    assert_eq!(leader_rows.len(), 1, "exactly one leader marked:\n{pane}");
    assert!(pane.contains("leader etcd-"), "{pane}");

    t.keys("x");
    let degraded = t.wait_for("the quorum line after stopping a member", |s| {
        s.contains("2/3 healthy · quorum 2 · tolerates 0 more failures")
            && s.contains("leader etcd-")
    });
    assert!(degraded.contains("DOWN"), "{degraded}");

    t.keys("s");
    t.wait_for("the member back", |s| {
        s.contains("3/3 healthy · quorum 2 · tolerates 1 more failure")
    });

    t.keys("q");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = std::fs::read_to_string(&exit_file)
            .ok()
            .filter(|s| s.ends_with('\n'))
        {
            break s.trim().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "kha did not quit on q:\n{}\n{}",
            t.screen(),
            t.process_report()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, "0", "kha demo exit status");
}

#[test]
fn demo_in_tmux_with_real_etcd() {
    require_binary("etcd", "etcd-server");
    demo_round_trip("real");
}

#[test]
fn demo_in_tmux_with_simulated_etcd() {
    demo_round_trip("sim");
}

/// The `:` command line in the real terminal: `:vel`, Tab, Enter opens the Velero pane.
#[test]
fn colon_command_line_opens_a_pane_by_name() {
    let dirs = common::tmux::KhaDirs::new();
    let kha = env!("CARGO_BIN_EXE_kha");
    let t = common::tmux::Tmux::start_kha("colon", &[kha, "demo", "--etcd", "sim"], &dirs);
    t.wait_for("the cockpit with data", |s| s.contains("leader etcd-"));
    t.keys(":");
    t.keys("vel");
    t.wait_for("the command line", |s| s.contains(":vel_  → velero"));
    t.keys("Tab");
    t.keys("Enter");
    t.wait_for("the Velero pane", |s| {
        s.lines().nth(1).is_some_and(|l| l.contains("Velero"))
    });
    t.keys("q");
}
