//! Runs a runbook confirmed in the cockpit: the same engine, executor and audit log as
//! the CLI, with the engineer's typed confirmation as the answer and the progress sent
//! back to the cockpit as messages. A failed step stops the run (retry from the CLI with
//! `--resume`, or start the runbook again from the pane).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// The run in progress: its cancel flag and where the engineer's decisions go.
    pub active: Arc<Mutex<Option<ActiveRun>>>,
    /// The kubeconfig identity, for the audit records.
    pub kube_user: Option<String>,
    /// The Kubernetes API for runbooks that patch objects.
    pub kube: Option<crate::sources::kube::KubeSourceConfig>,
    /// The profile's `ssh_command` (empty: plain `ssh`).
    pub ssh_command: Vec<String>,
    /// How LB runbooks probe apiserver backends directly.
    pub lb_auth: Option<crate::sources::lb::ApiServerAuth>,
}

/// Handles on a running runbook.
#[derive(Debug, Clone)]
pub struct ActiveRun {
    cancel: Arc<AtomicBool>,
    decisions: std::sync::mpsc::Sender<Decision>,
}

impl RunbookRunner {
    pub fn new(
        etcd_tls: EtcdTlsFiles,
        state_dir: PathBuf,
        read_only: bool,
        tx: mpsc::Sender<Msg>,
    ) -> Self {
        RunbookRunner {
            etcd_tls,
            state_dir,
            read_only,
            tx,
            active: Arc::new(Mutex::new(None)),
            kube_user: None,
            kube: None,
            ssh_command: Vec::new(),
            lb_auth: None,
        }
    }

    fn active(&self) -> Option<ActiveRun> {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stop before the next step.
    pub fn cancel(&self) {
        if let Some(run) = self.active() {
            run.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// The engineer's answer to a failed step.
    pub fn decide(&self, decision: Decision) {
        if let Some(run) = self.active() {
            let _ = run.decisions.send(decision);
        }
    }
}

struct Cockpit {
    answer: String,
    tx: mpsc::Sender<Msg>,
    cancel: Arc<AtomicBool>,
    decisions: std::sync::mpsc::Receiver<Decision>,
    /// Set when the running step sent live lines (a drain): its output's lines, the
    /// same ones, are not shown again when it ends.
    live: Arc<AtomicBool>,
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

    fn decide(&mut self, step: usize, error: &str, skippable: bool) -> Decision {
        let _ = self.tx.try_send(Msg::RunbookAsk {
            step,
            error: error.to_string(),
            skippable,
        });
        // This thread runs only the runbook: waiting here holds nothing else up. A
        // cockpit that went away aborts.
        self.decisions.recv().unwrap_or(Decision::Abort)
    }

    fn cancelled(&mut self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    fn progress(&mut self, event: Progress) {
        match event {
            Progress::StepStarted {
                step,
                title,
                operation,
            } => {
                self.live.store(false, Ordering::SeqCst);
                self.say(format!("[{step}] {title}"));
                self.say(format!("    runs: {operation}"));
            }
            Progress::StepOutput { output, .. } => {
                self.say(format!("    {}", output.summary));
                if !self.live.load(Ordering::SeqCst) {
                    for l in output.lines {
                        self.say(format!("    | {l}"));
                    }
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
    pub fn spawn(&self, runbook: Runbook, answer: String, seen: Vec<String>) {
        let cancel = Arc::new(AtomicBool::new(false));
        let (decisions_tx, decisions) = std::sync::mpsc::channel();
        *self.active.lock().unwrap_or_else(PoisonError::into_inner) = Some(ActiveRun {
            cancel: cancel.clone(),
            decisions: decisions_tx,
        });
        let control = (cancel, decisions);
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
                runtime.block_on(run(runner, runbook, answer, seen, control));
            });
        if let Err(e) = started {
            let _ = self
                .tx
                .try_send(Msg::RunbookFinished(Err(format!("cannot start: {e}"))));
        }
    }
}

impl RunbookRunner {
    /// Reads what a plan needs on its own thread and runtime, like a run; the plans
    /// arrive as `Msg::RunbookOptions` carrying `ticket`.
    pub fn read_for_plan(&self, ticket: u64, request: super::tui_plan::PlanRequest) {
        let tx = self.tx.clone();
        let kube = self.kube.clone();
        let answer = move |result| {
            let _ = tx.try_send(Msg::RunbookOptions { ticket, result });
        };
        let started = std::thread::Builder::new()
            .name("kha-plan-read".into())
            .spawn(move || {
                let result = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(super::tui_plan::options(kube.as_ref(), &request)),
                    Err(e) => Err(format!("cannot read: {e}")),
                };
                answer(result);
            });
        if let Err(e) = started {
            let _ = self.tx.try_send(Msg::RunbookOptions {
                ticket,
                result: Err(format!("cannot read: {e}")),
            });
        }
    }
}

async fn run(
    runner: RunbookRunner,
    runbook: Runbook,
    answer: String,
    seen: Vec<String>,
    (cancel, decisions): (Arc<AtomicBool>, std::sync::mpsc::Receiver<Decision>),
) {
    let tx = runner.tx.clone();
    let live = Arc::new(AtomicBool::new(false));
    let result = async {
        let (sink, said_live) = (tx.clone(), live.clone());
        let mut executor = LiveExecutor::new(&runner.etcd_tls, runner.state_dir.clone())
            .map_err(|e| format!("{e:#}"))?
            .with_ssh_command(runner.ssh_command.clone())
            // A drain's evictions and retries as they happen; like `Cockpit::say`,
            // a full queue only loses a line (the step's output has them all).
            .with_progress(Arc::new(move |line: String| {
                said_live.store(true, Ordering::SeqCst);
                let _ = sink.try_send(Msg::RunbookProgress(format!("    | {line}")));
            }));
        if let Some(kube) = runner.kube.clone() {
            executor = executor.with_kube(kube);
        }
        if let Some(auth) = runner.lb_auth.clone() {
            executor = executor.with_lb_auth(auth);
        }
        let mut engine = Engine {
            executor,
            audit: AuditLog::in_dir(&runner.state_dir),
            read_only: runner.read_only,
            poll: Duration::from_millis(500),
            kube_user: match &runner.kube {
                Some(kube) => super::cli::audit_identity(kube).await,
                None => None,
            }
            .or_else(|| runner.kube_user.clone()),
            seen,
        };
        let mut op = Cockpit {
            answer,
            tx: tx.clone(),
            cancel,
            decisions,
            live,
        };
        engine
            .run(&runbook, &mut op, None)
            .await
            .map(|r| format!("{} step(s) done in run {}", r.completed, r.run))
            .map_err(|e| format!("{e:#}"))
    }
    .await;
    *runner.active.lock().unwrap_or_else(PoisonError::into_inner) = None;
    let _ = tx.send(Msg::RunbookFinished(result)).await;
}
