//! `kha rollout ...`, `kha velero ...` and `kha traffic shift ...`: the custom-resource
//! runbooks from the command line. Each reads what its plan needs from the API (the
//! rollout and its ReplicaSets, the schedule or backup, the route), then runs like
//! `kha etcd ...`: `--plan`, `--confirm`, `--print-only`, `--resume`.

use std::time::Duration;

use clap::Subcommand;
use color_eyre::eyre::{Result, eyre};
use serde_json::Value;

use super::cli::{RunArgs, execute};
use super::exec_cr::{get, list};
use super::{rollouts, traffic, velero};
use crate::cli::Settings;

const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Abort the update: traffic back to stable, the rollout Degraded until retry/undo.
    Abort {
        /// NAMESPACE/NAME of the Rollout.
        rollout: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Retry an aborted update from its first step.
    Retry {
        rollout: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// End the current pause or analysis step; `--full` skips every remaining step.
    Promote {
        rollout: String,
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Put the previous revision's (or `--to-revision N`'s) template back.
    Undo {
        rollout: String,
        #[arg(long)]
        to_revision: Option<u64>,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum VeleroCommand {
    /// A Backup now from a Schedule's template (`velero backup create --from-schedule`).
    Backup {
        /// The Schedule's name.
        #[arg(long)]
        from_schedule: String,
        /// Velero's namespace.
        #[arg(long, default_value = "velero")]
        namespace: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// A Restore from a Backup, of some namespaces or all.
    Restore {
        #[arg(long)]
        from_backup: String,
        /// Namespaces to restore, comma-separated (default: all in the backup).
        #[arg(long, value_delimiter = ',')]
        namespaces: Vec<String>,
        #[arg(long, default_value = "velero")]
        namespace: String,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrafficCommand {
    /// Move an HTTPRoute rule's backend weights step by step (e.g. 70/30 to 0/100).
    Shift {
        /// NAMESPACE/NAME of the HTTPRoute.
        route: String,
        /// Target weights, one per backendRef in order, e.g. 0/100.
        #[arg(long)]
        to: String,
        /// The most a weight moves per stage.
        #[arg(long, default_value_t = 25)]
        step: u32,
        /// How long each stage holds before the next (30s, 2m).
        #[arg(long, default_value = "30s")]
        pause: String,
        /// Which rule of the route.
        #[arg(long, default_value_t = 0)]
        rule: usize,
        #[command(flatten)]
        run: RunArgs,
    },
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

async fn read(
    settings: &Settings,
    what: &str,
    res: &super::exec_cr::Resource,
    ns: &str,
    name: &str,
) -> Result<Value> {
    get(Some(&settings.kube), READ_TIMEOUT, res, Some(ns), name)
        .await
        .map_err(|e| eyre!("cannot read {what} {ns}/{name}: {e:#}"))
}

pub async fn rollout(settings: &Settings, command: RolloutCommand) -> Result<i32> {
    let cluster = settings.cluster.as_str();
    let target = match &command {
        RolloutCommand::Abort { rollout, .. }
        | RolloutCommand::Retry { rollout, .. }
        | RolloutCommand::Promote { rollout, .. }
        | RolloutCommand::Undo { rollout, .. } => rollout.clone(),
    };
    let (ns, name) = rollouts::split_target(&target).map_err(|e| eyre!(e))?;
    let ro = read(
        settings,
        "Rollout",
        &rollouts::rollout_resource(),
        &ns,
        &name,
    )
    .await?;
    let (rb, run) = match command {
        RolloutCommand::Abort { run, .. } => (rollouts::abort(cluster, &ro), run),
        RolloutCommand::Retry { run, .. } => (rollouts::retry(cluster, &ro), run),
        RolloutCommand::Promote { full, run, .. } => (rollouts::promote(cluster, &ro, full), run),
        RolloutCommand::Undo {
            to_revision, run, ..
        } => {
            let selector = selector(&ro)?;
            let sets = list(
                Some(&settings.kube),
                READ_TIMEOUT,
                &rollouts::replica_set_resource(),
                Some(&ns),
                Some(&selector),
            )
            .await?;
            (rollouts::undo(cluster, &ro, &sets, to_revision), run)
        }
    };
    execute(settings, &rb, &run, Vec::new()).await
}

/// The rollout's `spec.selector.matchLabels` as a label selector.
fn selector(ro: &Value) -> Result<String> {
    let labels = ro
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| eyre!("the rollout has no spec.selector.matchLabels"))?;
    Ok(labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(","))
}

pub async fn velero(settings: &Settings, command: VeleroCommand) -> Result<i32> {
    let cluster = settings.cluster.as_str();
    let (rb, run) = match command {
        VeleroCommand::Backup {
            from_schedule,
            namespace,
            run,
        } => {
            let s = read(
                settings,
                "Schedule",
                &velero::schedule_resource(),
                &namespace,
                &from_schedule,
            )
            .await?;
            (velero::backup_now(cluster, &s, now_unix()), run)
        }
        VeleroCommand::Restore {
            from_backup,
            namespaces,
            namespace,
            run,
        } => {
            let namespaces =
                velero::parse_namespaces(&namespaces.join(",")).map_err(|e| eyre!(e))?;
            let b = read(
                settings,
                "Backup",
                &velero::backup_resource(),
                &namespace,
                &from_backup,
            )
            .await?;
            (velero::restore(cluster, &b, &namespaces, now_unix()), run)
        }
    };
    execute(settings, &rb, &run, Vec::new()).await
}

pub async fn traffic(settings: &Settings, command: TrafficCommand) -> Result<i32> {
    let TrafficCommand::Shift {
        route,
        to,
        step,
        pause,
        rule,
        run,
    } = command;
    let (ns, name) = rollouts::split_target(&route).map_err(|e| eyre!(e))?;
    let spec = traffic::ShiftSpec {
        to: traffic::parse_weights(&to).map_err(|e| eyre!(e))?,
        step,
        pause: traffic::parse_pause(&pause).map_err(|e| eyre!(e))?,
        rule,
    };
    let r = read(
        settings,
        "HTTPRoute",
        &traffic::route_resource(),
        &ns,
        &name,
    )
    .await?;
    let rb = traffic::shift(&settings.cluster, &r, &spec);
    execute(settings, &rb, &run, Vec::new()).await
}
