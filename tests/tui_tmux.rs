//! End to end: the real `kha demo` binary in a real terminal (tmux, 80x24). The screen
//! must show three members and a leader, and stopping a member from the keyboard must
//! change the quorum line.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::require_binary;

/// A private tmux server (its own socket), killed on drop even when the test fails.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(tag: &str, command: &[&str], env: &[(&str, &str)]) -> Tmux {
        require_binary("tmux", "tmux");
        let socket = format!("kha-test-{}-{tag}", std::process::id());
        let session = "kha".to_string();
        let mut args: Vec<String> =
            vec!["-L".into(), socket.clone(), "-f".into(), "/dev/null".into()];
        args.extend(
            ["new-session", "-d", "-s", &session, "-x", "80", "-y", "24"].map(String::from),
        );
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(command.iter().map(|s| s.to_string()));
        args.extend([";", "set-option", "-t", &session, "remain-on-exit", "on"].map(String::from));
        let t = Tmux { socket, session };
        let out = t.raw(&args);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn raw(&self, args: &[String]) -> Output {
        Command::new("tmux").args(args).output().expect("run tmux")
    }

    fn cmd(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = vec!["-L".into(), self.socket.clone()];
        all.extend(args.iter().map(|s| s.to_string()));
        self.raw(&all)
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    fn keys(&self, keys: &str) {
        let out = self.cmd(&["send-keys", "-t", &self.session, keys]);
        assert!(out.status.success(), "send-keys {keys}");
    }

    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Tmux {
    /// What the pane's process is doing (for a failure message).
    fn process_report(&self) -> String {
        let out = self.cmd(&["display-message", "-p", "-t", &self.session, "#{pane_pid}"]);
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let threads = Command::new("sh")
            .args(["-c", "for t in /proc/\"$1\"/task/*; do echo \"$(cat $t/comm) $(cat $t/wchan) $(awk '{print $3}' $t/stat)\"; done; ps -o pid,stat,cmd --ppid \"$1\"", "sh", &pid])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        format!("pane pid {pid}; threads:\n{threads}")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

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
