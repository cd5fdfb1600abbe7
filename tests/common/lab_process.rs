//! `kha lab up` as its own process (killed on drop), with the variables of the
//! `lab.env` it writes.

use std::collections::HashMap;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct LabProcess {
    child: Child,
    pub dir: tempfile::TempDir,
    pub vars: HashMap<String, String>,
}

impl LabProcess {
    /// `kha lab up --dir TMP ARGS`, once its `lab.env` is written.
    pub fn start(args: &[&str]) -> LabProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(env!("CARGO_BIN_EXE_kha"))
            .args(["lab", "up", "--dir"])
            .arg(dir.path())
            .args(args)
            .env("KHA_CONFIG_DIR", "/nonexistent-kha-test")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kha lab up");
        let mut lab = LabProcess {
            child,
            dir,
            vars: HashMap::new(),
        };
        let env_file = lab.dir.path().join("lab.env");
        let started = Instant::now();
        while !env_file.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "lab.env never appeared"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&env_file).expect("read lab.env");
        lab.vars = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        lab
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once the lab has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for kha lab up")
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
