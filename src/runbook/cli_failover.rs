//! `kha lb drain|ready|maint BACKEND`, `kha node cordon|drain|uncordon NODE` and
//! `kha zone evacuate ZONE`: the LB, node and zone runbooks from the command line,
//! with `--plan`, `--confirm`, `--print-only` and `--resume` like `kha etcd`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, WrapErr, eyre};

use super::cli::{RunArgs, execute, seen};
use super::lb::{self, BackendAction, NginxTarget};
use super::node::{self, DrainOptions};
use super::{facts, zone};
use crate::cli::Settings;
use crate::sources::etcd::EtcdProber;
use crate::sources::lb::{LbProber, LbStatsEndpoint};

#[derive(Debug, Subcommand)]
pub enum LbCommand {
    /// Take a backend out gently: no new connections, established ones finish.
    Drain(LbArgs),
    /// Put a backend back in rotation.
    Ready(LbArgs),
    /// Take a backend out at once and stop its health checks (maintenance).
    Maint(LbArgs),
}

#[derive(Debug, Args)]
pub struct LbArgs {
    /// The backend: its HAProxy server name, its --apiserver-backends name, or
    /// host:port (with --nginx-config: the upstream server's address).
    pub backend: String,
    /// nginx instead of HAProxy: the config file with the apiserver upstream.
    #[arg(long)]
    pub nginx_config: Option<PathBuf>,
    /// The nginx host, reached over ssh (default: this machine).
    #[arg(long, requires = "nginx_config")]
    pub nginx_host: Option<String>,
    /// The main config nginx runs with, passed as `-c` to `nginx -t`, `nginx -s reload`
    /// and the `nginx -T` check after it (default: nginx's compiled-in one). Needed when --nginx-config is an
    /// included file and nginx was started with `-c`.
    #[arg(long, requires = "nginx_config")]
    pub nginx_main_config: Option<PathBuf>,
    /// nginx's prefix, passed as `-p`, when nginx was started with one.
    #[arg(long, requires = "nginx_config")]
    pub nginx_prefix: Option<PathBuf>,
    /// The nginx program (default: `nginx` on the host's PATH, e.g. /usr/sbin/nginx
    /// when that is not on the ssh user's PATH).
    #[arg(long, requires = "nginx_config")]
    pub nginx_bin: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Mark a node unschedulable.
    Cordon {
        node: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Cordon, then evict every pod through the Eviction API (PDB-aware).
    Drain {
        node: String,
        #[command(flatten)]
        drain: DrainArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Mark a node schedulable again.
    Uncordon {
        node: String,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Cordon every node of a zone (topology.kubernetes.io/zone), then drain each.
    Evacuate {
        zone: String,
        #[command(flatten)]
        drain: DrainArgs,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// Give up on evictions a PodDisruptionBudget still blocks after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// deleteOptions.gracePeriodSeconds of each eviction (default: each pod's own).
    #[arg(long)]
    pub grace_period: Option<i64>,
    /// Seconds between retries of a blocked eviction.
    #[arg(long, default_value_t = 5)]
    pub retry: u64,
    /// Evict pods no controller manages too (as kubectl drain --force); nothing
    /// recreates them. Without it the drain refuses, evicting nothing, while one is there.
    #[arg(long)]
    pub force: bool,
    /// Evict pods with emptyDir volumes too (as kubectl drain --delete-emptydir-data);
    /// their emptyDir data is lost. Without it the drain refuses while one is there.
    #[arg(long)]
    pub delete_emptydir_data: bool,
}

impl DrainArgs {
    fn options(&self) -> DrainOptions {
        DrainOptions {
            grace_seconds: self.grace_period,
            timeout_secs: self.timeout,
            retry_secs: self.retry.max(1),
            force: self.force,
            delete_emptydir_data: self.delete_emptydir_data,
        }
    }
}

pub async fn lb(settings: &Settings, command: LbCommand) -> Result<i32> {
    let (action, args) = match command {
        LbCommand::Drain(a) => (BackendAction::Drain, a),
        LbCommand::Ready(a) => (BackendAction::Ready, a),
        LbCommand::Maint(a) => (BackendAction::Maint, a),
    };
    let cluster = settings.cluster.as_str();
    if let Some(config) = &args.nginx_config {
        let target = NginxTarget {
            host: args.nginx_host.clone(),
            config: config.display().to_string(),
            main_config: args
                .nginx_main_config
                .as_ref()
                .map(|p| p.display().to_string()),
            prefix: args.nginx_prefix.as_ref().map(|p| p.display().to_string()),
            bin: args.nginx_bin.clone(),
        };
        let text = read_config(&target, &settings.ssh_command).await?;
        let rb = lb::nginx(cluster, &target, &text, &args.backend, action).map_err(|e| eyre!(e))?;
        return execute(settings, &rb, &args.run, Vec::new()).await;
    }
    if let Some(p) = &settings.lb_problem {
        return Err(eyre!("API-server LB: {p}"));
    }
    let endpoint = match &settings.lb.stats {
        Some(e @ (LbStatsEndpoint::HaproxyUnix(_) | LbStatsEndpoint::HaproxyTcp(_))) => {
            e.describe()
        }
        Some(LbStatsEndpoint::NginxHttp(_)) => {
            return Err(eyre!(
                "the LB is nginx: pass --nginx-config FILE (and --nginx-host HOST) to edit its upstream"
            ));
        }
        None => {
            return Err(eyre!(
                "no HAProxy runtime API: set --lb-stats unix:///run/haproxy/admin.sock (or tcp://host:port)"
            ));
        }
    };
    let mut prober = LbProber::new(settings.lb.clone())?;
    let obs = tokio::time::timeout(Duration::from_secs(10), prober.probe())
        .await
        .map_err(|_| eyre!("the LB and backends did not answer within 10 s"))?;
    let seen = seen(&obs.findings(&settings.lb_settings));
    let rb = lb::haproxy(cluster, &obs, &endpoint, &args.backend, action).map_err(|e| eyre!(e))?;
    execute(settings, &rb, &args.run, seen).await
}

/// The nginx config as it is now (read over ssh when it lives on another host).
async fn read_config(target: &NginxTarget, ssh_command: &[String]) -> Result<String> {
    let ssh_command: Vec<String> = if ssh_command.is_empty() {
        vec!["ssh".into()]
    } else {
        ssh_command.to_vec()
    };
    let argv = vec!["cat".to_string(), target.config.clone()];
    let full = match &target.host {
        Some(h) => super::exec::ssh_argv(
            &ssh_command,
            h,
            &crate::config::Paths::discover().state_dir,
            &argv,
        ),
        None => argv,
    };
    let (program, rest) = full.split_first().ok_or_else(|| eyre!("empty command"))?;
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(program)
            .args(rest)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| eyre!("reading {} did not finish within 30 s", target.config))?
    .wrap_err_with(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        return Err(eyre!(
            "cannot read {}: {}",
            target.config,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).wrap_err_with(|| format!("{} is not UTF-8", target.config))
}

async fn kube_client(settings: &Settings) -> Result<kube::Client> {
    let source = settings
        .kube
        .kubeconfig
        .as_ref()
        .ok_or_else(|| eyre!("no kubeconfig: set KUBECONFIG or --kubeconfig"))?;
    Ok(
        crate::sources::kube::client::connect(source, settings.kube.context.as_deref())
            .await?
            .client,
    )
}

pub async fn node(settings: &Settings, command: NodeCommand) -> Result<i32> {
    let client = kube_client(settings).await?;
    let cluster = settings.cluster.as_str();
    let name = match &command {
        NodeCommand::Cordon { node, .. }
        | NodeCommand::Drain { node, .. }
        | NodeCommand::Uncordon { node, .. } => node.clone(),
    };
    let facts = tokio::time::timeout(Duration::from_secs(30), facts::gather(&client, &[name]))
        .await
        .map_err(|_| eyre!("the API server did not answer within 30 s"))??;
    let (rb, run) = match command {
        NodeCommand::Cordon { node, run } => (node::cordon(cluster, &facts, &node), run),
        NodeCommand::Drain { node, drain, run } => {
            (node::drain(cluster, &facts, &node, drain.options()), run)
        }
        NodeCommand::Uncordon { node, run } => (node::uncordon(cluster, &facts, &node), run),
    };
    execute(settings, &rb, &run, Vec::new()).await
}

pub async fn zone(settings: &Settings, command: ZoneCommand) -> Result<i32> {
    let ZoneCommand::Evacuate { zone, drain, run } = command;
    let client = kube_client(settings).await?;
    let facts = tokio::time::timeout(Duration::from_secs(60), facts::gather_all(&client))
        .await
        .map_err(|_| eyre!("the API server did not answer within 60 s"))??;
    let etcd = if settings.etcd.endpoints.is_empty() {
        None
    } else {
        let mut prober = EtcdProber::new(settings.etcd.clone())?;
        tokio::time::timeout(Duration::from_secs(10), prober.probe())
            .await
            .ok()
    };
    let seen = etcd
        .as_ref()
        .map(|o| seen(&o.findings(&settings.etcd_settings)))
        .unwrap_or_default();
    let rb = zone::evacuate(
        &settings.cluster,
        &facts,
        etcd.as_ref(),
        &zone,
        drain.options(),
    );
    execute(settings, &rb, &run, seen).await
}
