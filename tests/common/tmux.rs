//! A private tmux server running the real binary at 80x24, for the end-to-end tests.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::require_binary;

/// A private tmux server (its own socket), killed on drop even when the test fails.
pub struct Tmux {
    socket: String,
    session: String,
}

/// Private config and state dirs for the `kha` under test, removed on drop.
pub struct KhaDirs {
    _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub state: PathBuf,
}

impl KhaDirs {
    pub fn new() -> KhaDirs {
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, state) = (dir.path().join("config"), dir.path().join("state"));
        std::fs::create_dir_all(&config).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        KhaDirs {
            _dir: dir,
            config,
            state,
        }
    }

    /// The audit log kha writes in the state dir.
    pub fn audit(&self) -> String {
        std::fs::read_to_string(self.state.join("audit.jsonl")).expect("audit log")
    }
}

impl Tmux {
    /// `command` with kha's config and state dirs pointed at `dirs`.
    pub fn start_kha(tag: &str, command: &[&str], dirs: &KhaDirs) -> Tmux {
        Tmux::start(
            tag,
            command,
            &[
                ("KHA_CONFIG_DIR", &dirs.config.to_string_lossy()),
                ("KHA_STATE_DIR", &dirs.state.to_string_lossy()),
            ],
        )
    }

    pub fn start(tag: &str, command: &[&str], env: &[(&str, &str)]) -> Tmux {
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

    pub fn cmd(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = vec!["-L".into(), self.socket.clone()];
        all.extend(args.iter().map(|s| s.to_string()));
        self.raw(&all)
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    pub fn keys(&self, keys: &str) {
        let out = self.cmd(&["send-keys", "-t", &self.session, keys]);
        assert!(out.status.success(), "send-keys {keys}");
    }

    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
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
    pub fn process_report(&self) -> String {
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
