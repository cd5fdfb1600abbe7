//! Runs a runbook confirmed in the cockpit: the same engine, executor and audit log as
//! the CLI, with the engineer's typed confirmation as the answer and the progress sent
//! back to the cockpit as messages. A failed step stops the run (retry from the CLI with
//! `--resume`, or start the runbook again from the pane).

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Runbook;
use super::audit::AuditLog;
use super::engine::{Decision, Engine, Operator, Progress};
use super::exec::LiveExecutor;
use crate::model::Msg;
use crate::sources::etcd::EtcdTlsFiles;

/// What the cockpit needs to run runbooks.
#[derive(Debug, Clone)]
pub struct RunbookRunner {
    pub etcd_tls: EtcdTlsFiles,
    pub state_dir: PathBuf,
    pub read_only: bool,
    pub tx: mpsc::Sender<Msg>,
}

struct Cockpit {
    answer: String,
    tx: mpsc::Sender<Msg>,
}

impl Cockpit {
    fn say(&self, line: String) {
        // The run loop drains quickly; a full queue only loses a progress line, and the
        // audit log has every event anyway.
        let _ = self.tx.try_send(Msg::RunbookProgress(line));
    }
}

impl Operator for Cockpit {
    fn ask(&mut self, prompt: &str) -> String {
        self.say(format!("{prompt} {}", self.answer));
        self.answer.clone()
    }

    fn decide(&mut self, step: usize, _error: &str, _skippable: bool) -> Decision {
        self.say(format!(
            "step {step} failed: stopping here (kha etcd ... --resume continues later)"
        ));
        Decision::Abort
    }

    fn progress(&mut self, event: Progress) {
        match event {
            Progress::StepStarted {
                step,
                title,
                operation,
            } => {
                self.say(format!("[{step}] {title}"));
                self.say(format!("    runs: {operation}"));
            }
            Progress::StepOutput { output, .. } => {
                self.say(format!("    {}", output.summary));
                for l in output.lines {
                    self.say(format!("    | {l}"));
                }
            }
            Progress::Verifying { what, .. } => self.say(format!("    verifying: {what}")),
            Progress::StepDone { .. } => self.say("    ok".into()),
            Progress::StepFailed {
                error, guidance, ..
            } => {
                self.say(format!("    FAILED: {error}"));
                self.say(format!("    what to do: {guidance}"));
            }
            Progress::StepSkipped { step } => self.say(format!("[{step}] skipped")),
        }
    }
}

impl RunbookRunner {
    /// Starts `runbook` in the background, on its own thread and runtime (the cockpit's
    /// loop never waits on it); its end arrives as `Msg::RunbookFinished`.
    pub fn spawn(&self, runbook: Runbook, answer: String) {
        let runner = self.clone();
        let started = std::thread::Builder::new()
            .name("kha-runbook".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = runner
                            .tx
                            .try_send(Msg::RunbookFinished(Err(format!("cannot start: {e}"))));
                        return;
                    }
                };
                runtime.block_on(run(runner, runbook, answer));
            });
        if let Err(e) = started {
            let _ = self
                .tx
                .try_send(Msg::RunbookFinished(Err(format!("cannot start: {e}"))));
        }
    }
}

async fn run(runner: RunbookRunner, runbook: Runbook, answer: String) {
    {
        {
            let tx = runner.tx.clone();
            let result = async {
                let executor = LiveExecutor::new(&runner.etcd_tls, runner.state_dir.clone())
                    .map_err(|e| format!("{e:#}"))?;
                let mut engine = Engine {
                    executor,
                    audit: AuditLog::in_dir(&runner.state_dir),
                    read_only: runner.read_only,
                    poll: Duration::from_millis(500),
                    kube_user: None,
                };
                let mut op = Cockpit {
                    answer,
                    tx: tx.clone(),
                };
                engine
                    .run(&runbook, &mut op, None)
                    .await
                    .map(|r| format!("{} step(s) done in run {}", r.completed, r.run))
                    .map_err(|e| format!("{e:#}"))
            }
            .await;
            let _ = tx.send(Msg::RunbookFinished(result)).await;
        }
    }
}
