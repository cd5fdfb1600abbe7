//! `kha etcd ...` and `kha audit`: the runbooks from the command line. `--plan` prints
//! the plan as Markdown and runs nothing; otherwise the plan is shown, confirmed at a
//! prompt (or by `--confirm`), run with live output, and recorded in the audit log.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, eyre};

use super::audit::{AuditEvent, AuditLog};
use super::engine::{Decision, Engine, Operator, Progress, resume_point};
use super::exec::{Executor, LiveExecutor, PrintOnly, ProgressSink};
use super::restore::{self, RestoreMember, RestoreSpec, RestoreTool};
use super::{Runbook, etcd, plan};
use crate::cli::Settings;
use crate::config::Paths;
use crate::sources::etcd::EtcdProber;

#[derive(Debug, Subcommand)]
pub enum EtcdCommand {
    /// Snapshots: `kha etcd snapshot save FILE`.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Hand raft leadership to a named member.
    MoveLeader {
        /// The member that should lead (its etcd --name).
        #[arg(long)]
        to: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Defragment every member, followers first, the leader last.
    Defrag {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Compact, defragment, disarm the NOSPACE alarm, check writes.
    RecoverNospace {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Restore every member of a kubeadm control plane from a snapshot, into new data
    /// dirs (the old ones are kept).
    Restore {
        /// The snapshot file (from `kha etcd snapshot save`).
        #[arg(long)]
        snapshot: PathBuf,
        /// One per member: NAME,PEER_URL,CLIENT_URL,DATA_DIR,MANIFESTS_DIR[,SSH_HOST]
        /// (e.g. cp-a,https://10.0.0.11:2380,https://10.0.0.11:2379,/var/lib/etcd,/etc/kubernetes/manifests,cp-a).
        /// Default: the live member list, with --data-dir and --manifests on every
        /// node, reached over ssh by member name.
        #[arg(long = "member")]
        members: Vec<String>,
        /// The members' current data dir, when they come from the member list.
        #[arg(long, default_value = "/var/lib/etcd")]
        data_dir: PathBuf,
        /// The static-pod manifests dir, when the members come from the member list.
        #[arg(long, default_value = "/etc/kubernetes/manifests")]
        manifests: PathBuf,
        /// Run every step on this machine instead of over ssh (members from the list).
        #[arg(long)]
        local: bool,
        /// The restored cluster's --initial-cluster-token.
        #[arg(long, default_value = "kha-restored")]
        token: String,
        /// Appended to each data dir to name the new one.
        #[arg(long, default_value = "kha-restore")]
        suffix: String,
        /// etcdutl (etcd >= 3.5) or etcdctl (3.4); default from the members' version.
        #[arg(long, value_parser = ["etcdutl", "etcdctl"])]
        tool: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
}

/// `--member NAME,PEER_URL,CLIENT_URL,DATA_DIR,MANIFESTS_DIR[,SSH_HOST]`.
fn parse_member(text: &str) -> Result<RestoreMember> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [name, peer, client, data, manifests, rest @ ..] if rest.len() <= 1 => Ok(RestoreMember {
            name: name.to_string(),
            host: rest
                .first()
                .filter(|h| !h.is_empty())
                .map(|h| h.to_string()),
            peer_url: peer.to_string(),
            client_url: client.to_string(),
            data_dir: PathBuf::from(data),
            manifests: PathBuf::from(manifests),
        }),
        _ => Err(eyre!(
            "--member {text:?}: expected NAME,PEER_URL,CLIENT_URL,DATA_DIR,MANIFESTS_DIR[,SSH_HOST]"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stream a snapshot to FILE (atomically), with size, revision and SHA-256.
    Save {
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
}

/// How a runbook is run from the command line.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Print the plan as Markdown and run nothing.
    #[arg(long)]
    pub plan: bool,
    /// Answer the confirmation without a prompt: `y` for disruptive plans, the cluster
    /// name for destructive ones.
    #[arg(long, value_name = "ANSWER")]
    pub confirm: Option<String>,
    /// Say what each step would do; change nothing.
    #[arg(long)]
    pub print_only: bool,
    /// Continue the last interrupted run of this runbook from its next step.
    #[arg(long)]
    pub resume: bool,
}

/// `kha audit`: the audit log, raw or as an incident timeline.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// A Markdown timeline of the actions taken, for the incident report.
    #[arg(long)]
    pub incident: bool,
}

pub async fn etcd(settings: &Settings, command: EtcdCommand) -> Result<i32> {
    let mut prober = EtcdProber::new(settings.etcd.clone())?;
    let obs = tokio::time::timeout(Duration::from_secs(10), prober.probe())
        .await
        .map_err(|_| eyre!("the etcd cluster did not answer within 10 s"))?;
    let cluster = settings.cluster.as_str();
    let seen = seen(&obs.findings(&settings.etcd_settings));
    let (rb, run) = match command {
        EtcdCommand::Snapshot {
            command: SnapshotCommand::Save { file, run },
        } => (etcd::snapshot_save(cluster, &obs, &file), run),
        EtcdCommand::MoveLeader { to, run } => (etcd::move_leader(cluster, &obs, &to), run),
        EtcdCommand::Defrag { run } => (etcd::defrag(cluster, &obs), run),
        EtcdCommand::RecoverNospace { run } => (etcd::recover_nospace(cluster, &obs), run),
        EtcdCommand::Restore {
            snapshot,
            members,
            data_dir,
            manifests,
            local,
            token,
            suffix,
            tool,
            run,
        } => {
            let members = if members.is_empty() {
                restore::members_from_observation(&obs, &data_dir, &manifests, local)
                    .map_err(|e| eyre!(e))?
            } else {
                members
                    .iter()
                    .map(|m| parse_member(m))
                    .collect::<Result<Vec<_>>>()?
            };
            let version = obs
                .members
                .iter()
                .find_map(|m| m.status.as_ref().map(|s| s.version.clone()));
            let tool = match tool.as_deref() {
                Some("etcdctl") => RestoreTool::Etcdctl,
                Some(_) => RestoreTool::Etcdutl,
                None => RestoreTool::for_version(version.as_deref()),
            };
            let mut safety = snapshot.clone().into_os_string();
            safety.push(".pre-restore");
            let spec = RestoreSpec {
                snapshot,
                members,
                token,
                suffix,
                tool,
                safety_snapshot: PathBuf::from(safety),
            };
            (restore::restore(cluster, &obs, &spec), run)
        }
    };
    execute(settings, &rb, &run, seen).await
}

/// Findings worth recording before a run ("WARN etcd: ...").
pub fn seen(findings: &[crate::model::finding::Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| f.severity > crate::model::finding::Health::Ok)
        .map(|f| format!("{} {}: {}", f.severity.label(), f.pane, f.message))
        .collect()
}

/// The kubeconfig identity, for audit records.
pub async fn kube_user(settings: &Settings) -> Option<String> {
    audit_identity(&settings.kube).await
}

/// Who the audit records as running a runbook, asked of the API server when it answers
/// (see [`crate::sources::kube::client::audit_identity`]).
pub async fn audit_identity(kube: &crate::sources::kube::KubeSourceConfig) -> Option<String> {
    let source = kube.kubeconfig.as_ref()?;
    crate::sources::kube::client::audit_identity(source, kube.context.as_deref()).await
}

pub(crate) async fn execute(
    settings: &Settings,
    rb: &Runbook,
    args: &RunArgs,
    seen: Vec<String>,
) -> Result<i32> {
    let markdown = plan::markdown(rb);
    if args.plan {
        print!("{markdown}");
        return Ok(if rb.unmet().is_empty() { 0 } else { 1 });
    }
    println!("{markdown}");
    let state_dir = Paths::discover().state_dir;
    let audit = AuditLog::in_dir(&state_dir);
    let resume = if args.resume {
        let point = resume_point(&audit, &rb.id, &rb.cluster)?;
        match &point {
            Some((run, step)) => println!("resuming run {run} at step {step}"),
            None => return Err(eyre!("no interrupted run of {} to resume", rb.id)),
        }
        point
    } else {
        None
    };
    let mut operator = Terminal {
        preset: args.confirm.clone(),
        live: Arc::new(AtomicBool::new(false)),
    };
    let run = Run {
        settings,
        audit: audit.clone(),
        seen,
        resume,
    };
    let report = if args.print_only {
        run.with(PrintOnly, rb, &mut operator).await
    } else {
        let live = LiveExecutor::new(&settings.etcd.tls, state_dir)?
            .with_kube(settings.kube.clone())
            .with_ssh_command(settings.ssh_command.clone())
            .with_lb_auth(settings.lb.auth.clone())
            .with_progress(operator.live_lines());
        run.with(live, rb, &mut operator).await
    };
    match report {
        Ok(r) => {
            println!(
                "done: {} step(s) in run {}{}; audit log {}",
                r.completed,
                r.run,
                if r.skipped.is_empty() {
                    String::new()
                } else {
                    format!(", skipped {:?}", r.skipped)
                },
                audit.path().display()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("kha: {e:#}");
            Ok(2)
        }
    }
}

/// One run from the command line, whatever executes it.
struct Run<'a> {
    settings: &'a Settings,
    audit: AuditLog,
    seen: Vec<String>,
    resume: Option<(String, usize)>,
}

impl Run<'_> {
    async fn with<E: Executor>(
        self,
        executor: E,
        rb: &Runbook,
        operator: &mut Terminal,
    ) -> Result<super::engine::RunReport> {
        let mut engine = Engine {
            executor,
            audit: self.audit,
            read_only: self.settings.read_only,
            poll: Duration::from_millis(500),
            kube_user: kube_user(self.settings).await,
            seen: self.seen,
        };
        engine.run(rb, operator, self.resume).await
    }
}

/// Prompts on the terminal; with `--confirm` (or no terminal) answers are preset and a
/// failed step aborts.
struct Terminal {
    preset: Option<String>,
    /// Set when the running step printed live lines (a drain), so its output's lines,
    /// already seen, are not printed again at its end.
    live: Arc<AtomicBool>,
}

impl Terminal {
    /// Prints a step's live lines as they come, like its output's lines.
    fn live_lines(&self) -> ProgressSink {
        let live = self.live.clone();
        Arc::new(move |line: String| {
            live.store(true, Ordering::SeqCst);
            println!("    | {line}");
        })
    }
}

/// The answer to a confirmation prompt: `preset` (`--confirm`), else a line typed on
/// the terminal; with no terminal to ask, an empty answer (which confirms nothing).
pub(crate) fn ask_on_terminal(preset: Option<&str>, prompt: &str) -> String {
    if let Some(answer) = preset {
        println!("{prompt} {answer} (--confirm)");
        return answer.to_string();
    }
    if !std::io::stdin().is_terminal() {
        println!("{prompt} (no terminal to ask: pass --confirm)");
        return String::new();
    }
    print!("{prompt} ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim().to_string()
}

impl Operator for Terminal {
    fn ask(&mut self, prompt: &str) -> String {
        ask_on_terminal(self.preset.as_deref(), prompt)
    }

    fn decide(&mut self, _step: usize, _error: &str, skippable: bool) -> Decision {
        if self.preset.is_some() || !std::io::stdin().is_terminal() {
            return Decision::Abort;
        }
        let options = if skippable {
            "[r]etry, [s]kip, [a]bort"
        } else {
            "[r]etry, [a]bort"
        };
        print!("{options}? ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        match line.trim() {
            "r" | "retry" => Decision::Retry,
            "s" | "skip" if skippable => Decision::Skip,
            _ => Decision::Abort,
        }
    }

    fn progress(&mut self, event: Progress) {
        match event {
            Progress::StepStarted {
                step,
                title,
                operation,
            } => {
                self.live.store(false, Ordering::SeqCst);
                println!("[{step}] {title}\n    runs: {operation}")
            }
            Progress::StepOutput { output, .. } => {
                println!("    {}", output.summary);
                if !self.live.load(Ordering::SeqCst) {
                    for l in output.lines {
                        println!("    | {l}");
                    }
                }
            }
            Progress::Verifying { what, .. } => println!("    verifying: {what}"),
            Progress::StepDone { .. } => println!("    ok"),
            Progress::StepFailed {
                error, guidance, ..
            } => {
                println!("    FAILED: {error}\n    what to do: {guidance}")
            }
            Progress::StepSkipped { step } => println!("[{step}] skipped"),
        }
    }
}

fn event_word(e: AuditEvent) -> &'static str {
    match e {
        AuditEvent::FindingSeen => "seen",
        AuditEvent::Confirmed => "confirmed",
        AuditEvent::Refused => "refused",
        AuditEvent::StepStarted => "started",
        AuditEvent::StepSucceeded => "done",
        AuditEvent::StepFailed => "failed",
        AuditEvent::StepSkipped => "skipped",
        AuditEvent::Finished => "finished",
        AuditEvent::Aborted => "aborted",
    }
}

/// `kha audit`.
pub fn audit(args: &AuditArgs) -> Result<i32> {
    let log = AuditLog::in_dir(&Paths::discover().state_dir);
    let (records, bad) = log.read()?;
    if args.incident {
        println!(
            "# Findings seen and actions taken ({})",
            log.path().display()
        );
        println!();
        println!("| time (UTC) | who | cluster | runbook | step | event | what |");
        println!("|---|---|---|---|---|---|---|");
        for r in &records {
            if r.event == AuditEvent::StepStarted {
                continue;
            }
            let who = match &r.kube_user {
                Some(k) => format!("{} ({k})", r.os_user),
                None => r.os_user.clone(),
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.at,
                who,
                r.cluster,
                r.runbook,
                r.step.map_or(String::new(), |s| s.to_string()),
                event_word(r.event),
                r.result
                    .as_deref()
                    .or(r.operation.as_deref())
                    .unwrap_or("")
                    .replace('|', "\\|")
            );
        }
    } else {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    }
    if bad > 0 {
        eprintln!("kha: {bad} line(s) of the audit log could not be read");
    }
    Ok(0)
}
