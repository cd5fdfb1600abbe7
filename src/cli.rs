//! Command line: `kha` (TUI), `kha status [--json]`, `kha demo`, `kha lab up`.
//! Settings resolve flag > environment > config profile.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Parser, Subcommand};
use color_eyre::eyre::{Result, WrapErr, eyre};
use tokio::sync::mpsc;

use crate::app::{Cockpit, Timings, forward_terminal_events};
use crate::config::keymap::Keymap;
use crate::config::theme::Theme;
use crate::config::{ConfigFile, ConfigProblem, Paths, pick, split_list};
use crate::lab::control::LabRequest;
use crate::lab::kube::DenyRule;
use crate::lab::topology::{LabSpec, Scenario};
use crate::lab::{EtcdMode, Lab, LabOptions};
use crate::model::etcd::EtcdSettings;
use crate::model::kpi::{KpiDef, KpiPaneState, kpi_defs};
use crate::model::kube::KubeState;
use crate::model::lb::LbSettings;
use crate::model::status::{
    ControlPlaneReport, EtcdReport, GpuReport, KpiReport, KubeReport, LbReport, StatusReport,
};
use crate::model::{EtcdPaneState, LabCommand, LbPaneState, LbTargets, Msg, OtherSources, State};
use crate::sources::canary::{CanaryProber, CanarySourceConfig};
use crate::sources::etcd::{EtcdProber, EtcdSourceConfig, EtcdTlsFiles};
use crate::sources::kube::{KubeSourceConfig, KubeconfigSource};
use crate::sources::lb::discover;
use crate::sources::lb::{ApiServerAuth, BackendTarget, LbProber, LbSourceConfig, LbStatsEndpoint};
use crate::sources::prometheus::{KpiProber, PrometheusSourceConfig};
use secrecy::SecretString;

#[derive(Debug, Parser)]
#[command(
    name = "kha",
    version,
    about = "A terminal cockpit for highly available Kubernetes clusters"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct GlobalOpts {
    /// Config file (default: <config dir>/config.toml; see `KHA_CONFIG_DIR`).
    #[arg(long, global = true, env = "KHA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Cluster profile from the config file.
    #[arg(long, global = true, env = "KHA_CLUSTER")]
    pub cluster: Option<String>,
    /// etcd client URLs, comma-separated (e.g. https://10.0.0.1:2379,https://10.0.0.2:2379).
    #[arg(long, global = true, env = "KHA_ETCD_ENDPOINTS")]
    pub etcd_endpoints: Option<String>,
    /// etcd CA certificate (kubeadm: /etc/kubernetes/pki/etcd/ca.crt).
    #[arg(long, global = true, env = "KHA_ETCD_CACERT")]
    pub etcd_cacert: Option<PathBuf>,
    /// etcd client certificate (kubeadm: /etc/kubernetes/pki/etcd/healthcheck-client.crt).
    #[arg(long, global = true, env = "KHA_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,
    /// etcd client key (kubeadm: /etc/kubernetes/pki/etcd/healthcheck-client.key).
    #[arg(long, global = true, env = "KHA_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,
    /// kube-apiserver backends to probe directly, comma-separated: URL or NAME=URL
    /// (e.g. cp-a=https://10.0.0.1:6443,cp-b=https://10.0.0.2:6443).
    #[arg(long, global = true, env = "KHA_APISERVER_BACKENDS")]
    pub apiserver_backends: Option<String>,
    /// The LB's view: unix:///run/haproxy/admin.sock or tcp://host:port (HAProxy runtime
    /// API), or nginx+http://host/status (nginx upstream check module).
    #[arg(long, global = true, env = "KHA_LB_STATS")]
    pub lb_stats: Option<String>,
    /// CA of the apiserver serving certificates (default: the kubeconfig's cluster CA).
    #[arg(long, global = true, env = "KHA_APISERVER_CA")]
    pub apiserver_ca: Option<PathBuf>,
    /// Name the apiserver certificates are verified against (and sent as SNI) when the
    /// backends are given by IP (default: the kubeconfig server's host name).
    #[arg(long, global = true, env = "KHA_APISERVER_TLS_SERVER_NAME")]
    pub apiserver_tls_server_name: Option<String>,
    /// Prometheus or Thanos Query URL for the KPI pane (e.g. http://prometheus:9090).
    /// A bearer token is read from KHA_PROMETHEUS_TOKEN or the profile's
    /// `prometheus_token_file`, never from the command line.
    #[arg(long, global = true, env = "KHA_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// CA of Prometheus' serving certificate (default: the system's roots).
    #[arg(long, global = true, env = "KHA_PROMETHEUS_CA")]
    pub prometheus_ca: Option<PathBuf>,
    /// User for HTTP basic auth to Prometheus / Thanos Query. The password is read from
    /// KHA_PROMETHEUS_PASSWORD or the profile's `prometheus_password_file`, never from
    /// the command line.
    #[arg(long, global = true, env = "KHA_PROMETHEUS_USER")]
    pub prometheus_user: Option<String>,
    /// Kubeconfig file (default: KUBECONFIG, then the profile's `kubeconfig`).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the profile's `context`, then the current one).
    #[arg(long, global = true, env = "KHA_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// Refuse every action; only observe.
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Theme: default, light, high-contrast, mono, or a file in <config dir>/themes/.
    #[arg(long, global = true, env = "KHA_THEME")]
    pub theme: Option<String>,
    /// Keymap: default, vim, or a file in <config dir>/keymaps/.
    #[arg(long, global = true, env = "KHA_KEYMAP")]
    pub keymap: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the cluster's HA state once and exit 0 ok, 1 warn, 2 crit, 3 unknown.
    Status {
        /// One JSON object instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// Run the cockpit against the embedded lab (no setup needed).
    Demo {
        #[arg(long, value_enum, default_value = "auto")]
        etcd: EtcdMode,
        #[command(flatten)]
        lab: LabArgs,
    },
    /// The embedded lab on its own, for other clients (etcdctl, scripts).
    Lab {
        #[command(subcommand)]
        command: LabCommandLine,
    },
    /// etcd runbooks: snapshot save, move-leader, defrag, recover-nospace (`--plan`
    /// prints the plan and runs nothing).
    Etcd {
        #[command(subcommand)]
        command: crate::runbook::cli::EtcdCommand,
    },
    /// The audit log of runbooks run from this machine.
    Audit(crate::runbook::cli::AuditArgs),
    /// Every path kha uses (config, themes, keymaps, state, audit log, snapshots) and
    /// what the chosen profile points at.
    Info,
    /// Check the config file, every profile and every user theme and keymap; exit 1 on
    /// any problem.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Argo Rollouts runbooks: abort, retry, promote [--full], undo (NAMESPACE/NAME).
    Rollout {
        #[command(subcommand)]
        command: crate::runbook::cli_cr::RolloutCommand,
    },
    /// Velero runbooks: backup --from-schedule S, restore --from-backup B.
    Velero {
        #[command(subcommand)]
        command: crate::runbook::cli_cr::VeleroCommand,
    },
    /// Traffic shift between clusters through a Gateway API HTTPRoute's weights.
    Traffic {
        #[command(subcommand)]
        command: crate::runbook::cli_cr::TrafficCommand,
    },
    /// Install or upgrade the HA stack (`--plan`, the default, prints the ordered plan;
    /// `--apply` runs it; `--only velero` for one component).
    Install(crate::install::cli::InstallArgs),
    /// API-server LB runbooks: drain, ready, maint a backend (HAProxy runtime API, or
    /// nginx with --nginx-config).
    Lb {
        #[command(subcommand)]
        command: crate::runbook::cli_failover::LbCommand,
    },
    /// Node runbooks: cordon, drain (Eviction API, PDB-aware), uncordon.
    Node {
        #[command(subcommand)]
        command: crate::runbook::cli_failover::NodeCommand,
    },
    /// Zone runbooks: evacuate (cordon and drain every node of a zone).
    Zone {
        #[command(subcommand)]
        command: crate::runbook::cli_failover::ZoneCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabCommandLine {
    /// Start the lab, write DIR/lab.env, run until SIGINT/SIGTERM.
    Up {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_enum, default_value = "auto")]
        etcd: EtcdMode,
        #[command(flatten)]
        lab: LabArgs,
    },
}

/// What the lab simulates.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// The starting state; faults can still be toggled live.
    #[arg(long, value_enum, default_value = "healthy")]
    pub scenario: Scenario,
    /// Worker nodes (besides 3 control-plane and 2 GPU nodes), up to 10,000.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub nodes: u32,
    /// Pods per worker node.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=110))]
    pub pods_per_node: u32,
    /// Object changes per second delivered to watchers.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Seed of the simulation (same seed, same cluster).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Forbid requests on the lab's Kubernetes API: VERBS:RESOURCE[.GROUP][:NAMESPACE],
    /// e.g. `list,watch:rollouts.argoproj.io:shop` (repeatable).
    #[arg(long)]
    pub deny: Vec<DenyRule>,
}

impl LabArgs {
    fn options(&self, etcd: EtcdMode) -> LabOptions {
        LabOptions {
            etcd,
            spec: LabSpec {
                scenario: self.scenario,
                nodes: self.nodes as usize,
                pods_per_node: self.pods_per_node as usize,
                churn: self.churn.max(0.0),
                seed: self.seed,
            },
            deny: self.deny.clone(),
        }
    }
}

/// Everything the commands need, resolved from flags, environment and profile.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cluster: String,
    pub etcd: EtcdSourceConfig,
    pub etcd_settings: EtcdSettings,
    pub lb: LbSourceConfig,
    pub lb_settings: LbSettings,
    pub kube: KubeSourceConfig,
    /// A bad LB option (said in the TUI and by `kha status`; other panes still run).
    pub lb_problem: Option<String>,
    /// The KPI pane's source, when a Prometheus URL is configured.
    pub prometheus: Option<PrometheusSourceConfig>,
    /// The KPIs (defaults with the profile's overrides), shown even before data.
    pub kpis: Vec<KpiDef>,
    /// A bad KPI override or token file (the KPI pane says so; others still run).
    pub prometheus_problem: Option<String>,
    /// The Thanos retention the metrics pane checks data against.
    pub metrics_retention: crate::model::thanos::RetentionSettings,
    /// A bad retention, availability window or basic-auth setting.
    pub metrics_problem: Option<String>,
    /// When a GPU counts as hot.
    pub gpu_thresholds: crate::model::gpu::metrics::GpuThresholds,
    pub read_only: bool,
    /// The profile's `ssh_command` for runbook steps on hosts (empty: `ssh`).
    pub ssh_command: Vec<String>,
    pub theme: Theme,
    pub keymap: Keymap,
    pub other_sources: OtherSources,
    pub problems: Vec<ConfigProblem>,
    /// The config file, and its other cluster profiles (the cockpit's fleet strip).
    pub config_path: PathBuf,
    pub other_clusters: Vec<String>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Settings {
    /// Resolve settings. Broken user files become `problems`; an unknown `--cluster`
    /// is an error (running against the wrong cluster is worse than not running).
    pub fn resolve(g: &GlobalOpts) -> Result<Settings> {
        let paths = Paths::discover();
        let config_path = g.config.clone().unwrap_or_else(|| paths.config_file());
        let (file, problem) = ConfigFile::load(&config_path);
        let mut problems: Vec<ConfigProblem> = problem.into_iter().collect();
        let (cluster, profile) = file.profile(g.cluster.as_deref()).map_err(|e| eyre!(e))?;
        let other_clusters: Vec<String> = file
            .clusters
            .keys()
            .filter(|name| **name != cluster)
            .cloned()
            .collect();

        // clap already applied flag > env for the etcd options; the profile comes last.
        let endpoints = pick(
            g.etcd_endpoints.as_deref().map(split_list),
            None,
            profile.etcd_endpoints.clone(),
        )
        .unwrap_or_default();
        let tls = EtcdTlsFiles {
            cacert: pick(g.etcd_cacert.clone(), None, profile.etcd_cacert.clone()),
            cert: pick(g.etcd_cert.clone(), None, profile.etcd_cert.clone()),
            key: pick(g.etcd_key.clone(), None, profile.etcd_key.clone()),
        };
        let mut etcd = EtcdSourceConfig::new(endpoints);
        etcd.tls = tls;
        let mut etcd_settings = EtcdSettings::default();
        if let Some(q) = profile.etcd_quota_bytes {
            etcd_settings.quota_bytes = q;
        }

        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let theme_name = pick(
            g.theme.clone(),
            None,
            profile.theme.clone().or(file.theme.clone()),
        )
        .unwrap_or_else(|| "default".into());
        let (theme, mut p) = Theme::load(&theme_name, no_color, &paths.config_dir);
        problems.append(&mut p);
        let keymap_name = pick(
            g.keymap.clone(),
            None,
            profile.keymap.clone().or(file.keymap.clone()),
        )
        .unwrap_or_else(|| "default".into());
        let (keymap, mut p) = Keymap::load(&keymap_name, &paths.config_dir);
        problems.append(&mut p);

        let other_sources = OtherSources {
            kubeconfig: env_var("KUBECONFIG").is_some() || profile.kubeconfig.is_some(),
            prometheus: g.prometheus_url.is_some() || profile.prometheus_url.is_some(),
        };
        let kubeconfig = match (&g.kubeconfig, env_var("KUBECONFIG"), &profile.kubeconfig) {
            (Some(path), _, _) => Some(KubeconfigSource::File(path.clone())),
            (None, Some(_), _) => Some(KubeconfigSource::Env),
            (None, None, Some(path)) => Some(KubeconfigSource::File(path.clone())),
            (None, None, None) => None,
        };
        let kube = KubeSourceConfig::new(
            kubeconfig,
            pick(g.context.clone(), None, profile.context.clone()),
        );
        let (lb, lb_problem) = match lb_config(g, &profile) {
            Ok(lb) => (lb, None),
            Err(e) => (LbSourceConfig::new(Vec::new(), None), Some(e)),
        };
        let (kpis, kpi_problem) = match kpi_defs(&profile.kpis) {
            Ok(defs) => (defs, None),
            Err(e) => (
                kpi_defs(&Default::default()).unwrap_or_default(),
                Some(format!("{}: {e}", config_path.display())),
            ),
        };
        let (kpis, window_problem) = {
            let mut kpis = kpis;
            let p = crate::sources::prometheus_config::apply_availability_window(
                &mut kpis,
                &profile,
                &profile.kpis,
            );
            (kpis, p)
        };
        let (prometheus, token_problem) = prometheus_config(g, &profile, &kpis);
        let (prometheus, auth_problem) = {
            let mut prometheus = prometheus;
            let p = prometheus.as_mut().and_then(|c| {
                crate::sources::prometheus_config::apply_basic_auth(
                    c,
                    g.prometheus_user.clone(),
                    &profile,
                )
            });
            (prometheus, p)
        };
        let (metrics_retention, retention_problem) =
            crate::sources::prometheus_config::retention_settings(&profile);
        let (gpu_thresholds, gpu_problem) =
            crate::sources::prometheus_config::gpu_thresholds(&profile);
        Ok(Settings {
            gpu_thresholds,
            metrics_retention,
            metrics_problem: auth_problem
                .or(window_problem)
                .or(retention_problem)
                .or(gpu_problem),
            prometheus,
            kpis,
            prometheus_problem: kpi_problem.or(token_problem),
            cluster,
            etcd,
            etcd_settings,
            lb,
            lb_settings: LbSettings::default(),
            kube,
            lb_problem,
            read_only: g.read_only || profile.read_only,
            ssh_command: profile.ssh_command.clone().unwrap_or_default(),
            theme,
            keymap,
            other_sources,
            problems,
            config_path,
            other_clusters,
        })
    }

    fn initial_state(&self) -> State {
        let stale_after = self.etcd.interval * 3 + self.etcd.timeout * 2;
        let pane = EtcdPaneState::new(self.etcd.endpoints.clone(), self.etcd_settings, stale_after);
        let mut state = State::new(self.cluster.clone(), pane, SystemTime::now());
        state.lb = LbPaneState::new(
            lb_targets(&self.lb),
            self.lb_settings,
            self.lb.interval * 3 + self.lb.timeout * 2,
        );
        state.kpis = KpiPaneState::new(
            self.prometheus.as_ref().map(|p| p.url.clone()),
            self.kpis.clone(),
            self.prometheus
                .as_ref()
                .map_or(Duration::from_secs(60), |p| p.interval * 3 + p.timeout * 2),
        );
        if let Some(p) = &self.prometheus_problem {
            state.notice(format!("KPIs: {p}"));
        }
        state.metrics = crate::model::thanos::MetricsPaneState::new(
            self.prometheus.as_ref().map(|p| p.url.clone()),
            self.metrics_retention,
            self.prometheus
                .as_ref()
                .map_or(Duration::from_secs(60), |p| p.interval * 3 + p.timeout * 4),
        );
        if let Some(p) = &self.metrics_problem {
            state.notice(format!("metrics: {p}"));
        }
        state.exporters.configured = self.prometheus.is_some();
        state.exporters.gpu_thresholds = self.gpu_thresholds;
        state.kube = KubeState::new(self.kube.is_configured(), self.kube.stale_after);
        state.fleet = crate::model::fleet::FleetState::new(self.other_clusters.clone());
        state.read_only = self.read_only;
        if let Some(p) = &self.lb_problem {
            state.notice(format!("API-server LB: {p}"));
        }
        state.other_sources = self.other_sources.clone();
        for p in &self.problems {
            state.notice(p.to_string());
        }
        state
    }
}

/// The LB pane's options: flag > env (clap) > profile. The kubeconfig (for the CA and
/// credentials) is the profile's, else `KUBECONFIG`'s first file.
fn lb_config(
    g: &GlobalOpts,
    profile: &crate::config::ClusterProfile,
) -> Result<LbSourceConfig, String> {
    let backends = pick(
        g.apiserver_backends.as_deref().map(split_list),
        None,
        profile.apiserver_backends.clone(),
    )
    .unwrap_or_default()
    .iter()
    .map(|b| BackendTarget::parse(b))
    .collect::<Result<Vec<_>, _>>()?;
    let stats = pick(g.lb_stats.clone(), None, profile.lb_stats.clone())
        .map(|s| LbStatsEndpoint::parse(&s))
        .transpose()?;
    let kubeconfig = profile.kubeconfig.clone().or_else(|| {
        let paths = std::env::var_os("KUBECONFIG")?;
        std::env::split_paths(&paths).find(|p| !p.as_os_str().is_empty())
    });
    let mut config = LbSourceConfig::new(backends, stats);
    config.auth = ApiServerAuth {
        ca_file: pick(g.apiserver_ca.clone(), None, profile.apiserver_ca.clone()),
        kubeconfig,
        context: profile.context.clone(),
        server_name: pick(
            g.apiserver_tls_server_name.clone(),
            None,
            profile.apiserver_tls_server_name.clone(),
        ),
    };
    Ok(config)
}

/// The KPI pane's source: URL flag > env (clap) > profile; the token from
/// `KHA_PROMETHEUS_TOKEN` or the profile's token file.
fn prometheus_config(
    g: &GlobalOpts,
    profile: &crate::config::ClusterProfile,
    kpis: &[KpiDef],
) -> (Option<PrometheusSourceConfig>, Option<String>) {
    let Some(url) = pick(
        g.prometheus_url.clone(),
        None,
        profile.prometheus_url.clone(),
    ) else {
        return (None, None);
    };
    let mut config = PrometheusSourceConfig::new(url, kpis.to_vec());
    config.ca_file = pick(g.prometheus_ca.clone(), None, profile.prometheus_ca.clone());
    let mut problem = None;
    config.bearer = match (
        env_var("KHA_PROMETHEUS_TOKEN"),
        &profile.prometheus_token_file,
    ) {
        (Some(token), _) => Some(SecretString::from(token)),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(token) => Some(SecretString::from(token.trim().to_string())),
            Err(e) => {
                problem = Some(format!(
                    "cannot read the Prometheus token file {}: {e}",
                    path.display()
                ));
                None
            }
        },
        (None, None) => None,
    };
    (Some(config), problem)
}

fn lb_targets(config: &LbSourceConfig) -> LbTargets {
    LbTargets {
        backends: config.backends.iter().map(|b| b.url.clone()).collect(),
        stats: config.stats.as_ref().map(LbStatsEndpoint::describe),
    }
}

/// Without --apiserver-backends: finds the apiservers through the kube API (kubeadm's
/// advertise-address annotation), then probes them as if they had been given.
async fn discover_then_probe(
    mut lb: LbSourceConfig,
    kube: KubeSourceConfig,
    tx: mpsc::Sender<Msg>,
) {
    match discover::discover(&kube, Duration::from_secs(10)).await {
        Ok(found) => {
            let names: Vec<String> = found.iter().map(|b| b.name.clone()).collect();
            lb.backends = found;
            let _ = tx.send(Msg::LbTargets(lb_targets(&lb))).await;
            let _ = tx
                .send(Msg::Notice(format!(
                    "API-server LB: found apiservers {} in kube-system",
                    names.join(", ")
                )))
                .await;
            match LbProber::new(lb.clone()) {
                Ok(prober) => crate::sources::lb::run(prober, lb.interval, tx).await,
                Err(e) => {
                    let _ = tx.send(Msg::Notice(format!("API-server LB: {e}"))).await;
                }
            }
        }
        Err(e) => {
            let _ = tx.send(Msg::LbTargets(LbTargets::default())).await;
            let _ = tx.send(Msg::Notice(format!("API-server LB: {e:#}"))).await;
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate everything and name each problem's file and line.
    Check,
}

/// Entry point after argument parsing. Returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    let started = Instant::now();
    // These look at the configuration itself, so a broken one must not stop them.
    match &cli.command {
        Some(Command::Config {
            command: ConfigCommand::Check,
        }) => return Ok(crate::admin::config_check(&cli.global)),
        Some(Command::Info) => {
            print!("{}", crate::admin::info_text(&cli.global)?);
            return Ok(0);
        }
        _ => {}
    }
    let settings = Settings::resolve(&cli.global)?;
    match cli.command {
        // Without endpoints the cockpit still starts and says what is not configured.
        None => run_tui(settings, None, started).await,
        Some(Command::Status { json }) => status(&settings, json).await,
        Some(Command::Demo { etcd, lab }) => demo(settings, lab.options(etcd), started).await,
        Some(Command::Lab {
            command: LabCommandLine::Up { dir, etcd, lab },
        }) => {
            crate::lab::up(&dir, lab.options(etcd)).await?;
            Ok(0)
        }
        Some(Command::Etcd { command }) => crate::runbook::cli::etcd(&settings, command).await,
        Some(Command::Audit(args)) => crate::runbook::cli::audit(&args),
        Some(Command::Info | Command::Config { .. }) => Ok(0),
        Some(Command::Rollout { command }) => {
            crate::runbook::cli_cr::rollout(&settings, command).await
        }
        Some(Command::Velero { command }) => {
            crate::runbook::cli_cr::velero(&settings, command).await
        }
        Some(Command::Traffic { command }) => {
            crate::runbook::cli_cr::traffic(&settings, command).await
        }
        Some(Command::Install(args)) => crate::install::cli::install(&settings, &args).await,
        Some(Command::Lb { command }) => crate::runbook::cli_failover::lb(&settings, command).await,
        Some(Command::Node { command }) => {
            crate::runbook::cli_failover::node(&settings, command).await
        }
        Some(Command::Zone { command }) => {
            crate::runbook::cli_failover::zone(&settings, command).await
        }
    }
}

/// The longest `kha status` may take, whatever the cluster does.
const STATUS_DEADLINE: Duration = Duration::from_millis(4500);

async fn status(settings: &Settings, json: bool) -> Result<i32> {
    for p in &settings.problems {
        eprintln!("kha: {p}");
    }
    let report = status_report(settings).await?;
    for text in &report.notices {
        eprintln!("kha: {text}");
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).wrap_err("cannot encode the report")?
        );
    } else {
        print!("{}", report.human());
    }
    Ok(report.overall.exit_code())
}

/// One read of every source of the profile, within [`STATUS_DEADLINE`]: what
/// `kha status` prints and the fleet strip summarises for the other profiles.
pub async fn status_report(settings: &Settings) -> Result<StatusReport> {
    let etcd = async {
        if settings.etcd.endpoints.is_empty() {
            return Ok((EtcdReport::not_configured(), None));
        }
        let mut prober = EtcdProber::new(settings.etcd.clone())?;
        Ok::<_, color_eyre::Report>(
            match tokio::time::timeout(STATUS_DEADLINE, prober.probe()).await {
                Ok(obs) => (
                    EtcdReport::from_observation(&obs, &settings.etcd_settings),
                    Some(obs),
                ),
                Err(_) => {
                    let mut r = EtcdReport::not_configured();
                    r.findings[0].message =
                        format!("etcd probe did not finish within {STATUS_DEADLINE:?}");
                    (r, None)
                }
            },
        )
    };
    let (etcd, lb, kube, kpis, canary, (thanos, alerts, exporters)) = tokio::join!(
        etcd,
        lb_status(settings),
        kube_status(&settings.kube),
        kpi_status(settings),
        canary_status(settings),
        metrics_status(settings)
    );
    let (etcd, etcd_obs) = etcd?;
    let (kube, notices) = kube;
    let now = SystemTime::now();
    let report = StatusReport::new(
        settings.cluster.clone(),
        etcd,
        lb,
        ControlPlaneReport::new(&kube, etcd_obs.as_ref(), now),
        GpuReport::new(&kube, now),
        KubeReport::new(&kube, now),
    )
    .with_custom(&kube, now)
    .with_canary(&kube, canary.as_ref(), now)
    .with_kpis(kpis)
    .with_metrics(thanos, alerts)
    .with_exporters(exporters.as_ref(), settings.gpu_thresholds);
    let mut report = report;
    report.notices = notices;
    Ok(report)
}

/// The kube source run until every watch has answered once (or the deadline), for
/// `kha status`; with what the source had to say.
pub async fn kube_status(config: &KubeSourceConfig) -> (KubeState, Vec<String>) {
    let mut kube = KubeState::new(config.is_configured(), config.stale_after);
    let mut notices = Vec::new();
    if !config.is_configured() {
        return (kube, notices);
    }
    let (tx, mut rx) = mpsc::channel(256);
    let source = tokio::spawn(crate::sources::kube::run(config.clone(), tx));
    let deadline = tokio::time::Instant::now() + STATUS_DEADLINE;
    while !kube.first_data_complete() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Msg::Kube(at, msg))) => kube.apply(at, *msg),
            Ok(Some(Msg::Notice(text))) => notices.push(text),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    source.abort();
    (kube, notices)
}

/// One round of the LB source for `kha status`.
async fn lb_status(settings: &Settings) -> LbReport {
    if let Some(p) = &settings.lb_problem {
        return LbReport::failed(format!("API-server LB: {p}"));
    }
    let mut lb = settings.lb.clone();
    if lb.backends.is_empty() && settings.kube.is_configured() {
        // No backends given: the kubeadm apiserver pods say where they are.
        if let Ok(found) = discover::discover(&settings.kube, STATUS_DEADLINE / 2).await {
            lb.backends = found;
        }
    }
    if !lb.is_configured() {
        return LbReport::not_configured();
    }
    let mut prober = match LbProber::new(lb) {
        Ok(p) => p,
        Err(e) => return LbReport::failed(format!("API-server LB: {e}")),
    };
    match tokio::time::timeout(STATUS_DEADLINE, prober.probe()).await {
        Ok(obs) => LbReport::from_observation(&obs, &settings.lb_settings),
        Err(_) => LbReport::failed(format!(
            "API-server LB probe did not finish within {STATUS_DEADLINE:?}"
        )),
    }
}

/// One round of the canary error-rate query (the abort advisory) for `kha status`.
async fn canary_status(settings: &Settings) -> Option<crate::model::canary::CanaryObservation> {
    let config = CanarySourceConfig::from_kpis(settings.prometheus.as_ref()?, &settings.kpis)?;
    let prober = CanaryProber::new(config).ok()?;
    tokio::time::timeout(STATUS_DEADLINE, prober.probe())
        .await
        .ok()
}

/// One round of the KPI queries for `kha status`.
async fn kpi_status(settings: &Settings) -> KpiReport {
    let Some(config) = &settings.prometheus else {
        return KpiReport::not_configured();
    };
    if let Some(p) = &settings.prometheus_problem {
        return KpiReport::failed(format!("KPIs: {p}"));
    }
    let mut prober = match KpiProber::new(config.clone()) {
        Ok(p) => p,
        Err(e) => return KpiReport::failed(format!("KPIs: {e}")),
    };
    match tokio::time::timeout(STATUS_DEADLINE, prober.probe()).await {
        Ok(obs) => KpiReport::from_observation(&settings.kpis, &obs),
        Err(_) => KpiReport::failed(format!(
            "Prometheus queries did not finish within {STATUS_DEADLINE:?}"
        )),
    }
}

/// One round of the metrics-status source for `kha status`: the `thanos` and `alerts` keys.
async fn metrics_status(
    settings: &Settings,
) -> (
    crate::model::status::ThanosReport,
    crate::model::status::AlertsReport,
    Option<crate::model::exporters::ExporterObservation>,
) {
    use crate::model::status::{AlertsReport, ThanosReport};
    let failed = |m: String| {
        (
            ThanosReport::failed(m.clone()),
            AlertsReport::failed(m),
            None,
        )
    };
    let Some(config) = &settings.prometheus else {
        return (
            ThanosReport::not_configured(),
            AlertsReport::not_configured(),
            None,
        );
    };
    if let Some(p) = &settings.metrics_problem {
        return failed(format!("metrics: {p}"));
    }
    let prober = match crate::sources::prometheus_status::MetricsStatusProber::new(
        config,
        settings.metrics_retention,
    ) {
        Ok(p) => p,
        Err(e) => return failed(format!("metrics: {e}")),
    };
    let both = async { tokio::join!(prober.probe(), prober.probe_exporters()) };
    match tokio::time::timeout(STATUS_DEADLINE, both).await {
        Ok((obs, exporters)) => (
            ThanosReport::from_observation(&obs),
            AlertsReport::from_observation(&obs),
            Some(exporters),
        ),
        Err(_) => failed(format!(
            "metrics status did not finish within {STATUS_DEADLINE:?}"
        )),
    }
}

async fn demo(mut settings: Settings, options: LabOptions, started: Instant) -> Result<i32> {
    if options.etcd == EtcdMode::Real && crate::lab::etcd_real::find_etcd().is_none() {
        return Err(eyre!(
            "--etcd real needs the etcd binary: apt-get install etcd-server"
        ));
    }
    let dir = std::env::temp_dir().join(format!("kha-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    settings.etcd.endpoints = Vec::new();
    settings.etcd.tls = EtcdTlsFiles::default();
    settings.lb = LbSourceConfig::new(Vec::new(), None);
    settings.lb_problem = None;
    settings.prometheus = None;
    settings.kube = KubeSourceConfig::new(None, None);
    settings.cluster = "kha-demo".into();
    let code = run_tui(
        settings,
        Some(DemoLab {
            options,
            dir: dir.clone(),
        }),
        started,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    code
}

/// What `kha demo` starts behind the cockpit.
struct DemoLab {
    options: LabOptions,
    dir: PathBuf,
}

/// Starts the demo's lab after the first frame (a real etcd cluster takes a couple of
/// seconds), then feeds the etcd source from it and carries out the lab keys.
async fn run_demo_lab(
    demo: DemoLab,
    mut etcd: EtcdSourceConfig,
    lb: LbSourceConfig,
    kpis: Vec<KpiDef>,
    mut commands: mpsc::Receiver<LabCommand>,
    tx: mpsc::Sender<Msg>,
) {
    let lab = match Lab::start(&demo.dir, &demo.options).await {
        Ok(lab) => lab,
        Err(e) => {
            let _ = tx
                .send(Msg::Notice(format!("lab: could not start: {e:#}")))
                .await;
            return;
        }
    };
    etcd.endpoints = lab.etcd_urls();
    let _ = tx.send(Msg::EtcdEndpoints(etcd.endpoints.clone())).await;
    // The lab serves a Kubernetes API and metrics too; their panes come later.
    let everything = OtherSources {
        kubeconfig: true,
        prometheus: true,
    };
    let _ = tx.send(Msg::OtherSources(everything)).await;
    let kube_config = demo_kube_config(&lab);
    let _ = tx.send(Msg::KubeConfigured).await;
    let kube_source = tokio::spawn(crate::sources::kube::run(kube_config, tx.clone()));
    let lb = demo_lb_config(&lab, lb);
    let _ = tx.send(Msg::LbTargets(lb_targets(&lb))).await;
    let lb_source = match LbProber::new(lb.clone()) {
        Ok(prober) => Some(tokio::spawn(crate::sources::lb::run(
            prober,
            lb.interval,
            tx.clone(),
        ))),
        Err(e) => {
            let _ = tx.send(Msg::Notice(format!("API-server LB: {e}"))).await;
            None
        }
    };
    let canary_source = demo_canary_source(&lab, &kpis, &tx).await;
    let kpi_source = demo_kpi_source(&lab, kpis, &tx).await;
    let metrics_source = demo_metrics_source(&lab, &tx).await;
    let _ = tx
        .send(Msg::Notice(format!("lab up: {}", lab.describe())))
        .await;
    let source = match EtcdProber::new(etcd.clone()) {
        Ok(prober) => Some(tokio::spawn(crate::sources::etcd::run(
            prober,
            etcd.interval,
            tx.clone(),
        ))),
        Err(e) => {
            let _ = tx.send(Msg::Notice(format!("etcd: {e}"))).await;
            None
        }
    };
    let (requests, inbox) = mpsc::channel(8);
    let serving = tokio::spawn(crate::lab::control::serve(lab, inbox));
    while let Some(cmd) = commands.recv().await {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if requests
            .send(LabRequest::Command(cmd, reply))
            .await
            .is_err()
        {
            break;
        }
        if let Ok(text) = answer.await
            && tx.send(Msg::Notice(text)).await.is_err()
        {
            break;
        }
    }
    drop(requests);
    for source in [
        source,
        lb_source,
        kpi_source,
        canary_source,
        metrics_source,
        Some(kube_source),
    ]
    .into_iter()
    .flatten()
    {
        source.abort();
    }
    let _ = serving.await;
}

/// The KPI source on the lab's metrics API.
async fn demo_kpi_source(
    lab: &Lab,
    kpis: Vec<KpiDef>,
    tx: &mpsc::Sender<Msg>,
) -> Option<tokio::task::JoinHandle<()>> {
    let url = lab
        .env()
        .into_iter()
        .find(|(name, _)| *name == "KHA_PROMETHEUS_URL")
        .map(|(_, url)| url)?;
    let _ = tx.send(Msg::KpiSource(url.clone())).await;
    match KpiProber::new(PrometheusSourceConfig::new(url, kpis)) {
        Ok(prober) => Some(tokio::spawn(crate::sources::prometheus::run(
            prober,
            tx.clone(),
        ))),
        Err(e) => {
            let _ = tx.send(Msg::Notice(format!("KPIs: {e}"))).await;
            None
        }
    }
}

/// The abort advisory's canary error-rate source on the lab's metrics API.
async fn demo_canary_source(
    lab: &Lab,
    kpis: &[KpiDef],
    tx: &mpsc::Sender<Msg>,
) -> Option<tokio::task::JoinHandle<()>> {
    let url = lab
        .env()
        .into_iter()
        .find(|(name, _)| *name == "KHA_PROMETHEUS_URL")
        .map(|(_, url)| url)?;
    let config =
        CanarySourceConfig::from_kpis(&PrometheusSourceConfig::new(url, kpis.to_vec()), kpis)?;
    match CanaryProber::new(config) {
        Ok(prober) => Some(tokio::spawn(crate::sources::canary::run(
            prober,
            tx.clone(),
        ))),
        Err(e) => {
            let _ = tx.send(Msg::Notice(format!("canary advisory: {e}"))).await;
            None
        }
    }
}

/// The Thanos / metrics source on the lab's metrics API (it poses as Thanos Query).
async fn demo_metrics_source(
    lab: &Lab,
    tx: &mpsc::Sender<Msg>,
) -> Option<tokio::task::JoinHandle<()>> {
    let url = lab
        .env()
        .into_iter()
        .find(|(name, _)| *name == "KHA_PROMETHEUS_URL")
        .map(|(_, url)| url)?;
    let _ = tx.send(Msg::MetricsSource(url.clone())).await;
    let config = PrometheusSourceConfig::new(url, Vec::new());
    match crate::sources::prometheus_status::MetricsStatusProber::new(
        &config,
        crate::model::thanos::RetentionSettings::default(),
    ) {
        Ok(prober) => Some(tokio::spawn(crate::sources::prometheus_status::run(
            prober,
            tx.clone(),
        ))),
        Err(e) => {
            let _ = tx.send(Msg::Notice(format!("metrics: {e}"))).await;
            None
        }
    }
}

/// The lab's kubeconfig (its own CA, a bearer token), for the kube source.
fn demo_kube_config(lab: &Lab) -> KubeSourceConfig {
    let kubeconfig = lab
        .env()
        .into_iter()
        .find(|(name, _)| *name == "KUBECONFIG")
        .map(|(_, path)| KubeconfigSource::File(PathBuf::from(path)));
    KubeSourceConfig::new(kubeconfig, None)
}

/// The lab's apiservers (named and zoned from its topology) behind its HAProxy socket.
fn demo_lb_config(lab: &Lab, mut config: LbSourceConfig) -> LbSourceConfig {
    let env: std::collections::HashMap<&str, String> = lab.env().into_iter().collect();
    let urls = env
        .get("KHA_APISERVER_BACKENDS")
        .cloned()
        .unwrap_or_default();
    config.backends = lab
        .topology()
        .control_plane
        .iter()
        .zip(split_list(&urls))
        .map(|(cp, url)| BackendTarget {
            name: cp.name.clone(),
            url,
            zone: Some(cp.zone.clone()),
        })
        .collect();
    config.stats = env
        .get("KHA_LB_STATS")
        .and_then(|s| LbStatsEndpoint::parse(s).ok());
    config
}

async fn run_tui(settings: Settings, lab: Option<DemoLab>, started: Instant) -> Result<i32> {
    let (tx, rx) = mpsc::channel::<Msg>(256);
    let mut state = settings.initial_state();
    state.snapshot_dir =
        crate::model::runbook_ui::default_snapshot_dir(&Paths::discover().state_dir);
    state.lab_controls = lab.is_some();
    if lab.is_some() {
        // endpoints arrive once the lab is up
        state.etcd.configured = true;
        state.lb.configured = true;
        state.kube.configured = true;
        state.kpis.configured = true;
        state.metrics.configured = true;
        state.exporters.configured = true;
    }

    let mut tasks = Vec::new();
    if !settings.other_clusters.is_empty() {
        tasks.push(tokio::spawn(crate::fleet::run(
            settings.config_path.clone(),
            settings.other_clusters.clone(),
            tx.clone(),
        )));
    }
    if !settings.etcd.endpoints.is_empty() {
        match EtcdProber::new(settings.etcd.clone()) {
            Ok(prober) => tasks.push(tokio::spawn(crate::sources::etcd::run(
                prober,
                settings.etcd.interval,
                tx.clone(),
            ))),
            Err(e) => state.notice(format!("etcd: {e}")),
        }
    }
    if settings.kube.is_configured() {
        tasks.push(tokio::spawn(crate::sources::kube::run(
            settings.kube.clone(),
            tx.clone(),
        )));
    }
    if settings.lb.is_configured() {
        match LbProber::new(settings.lb.clone()) {
            Ok(prober) => tasks.push(tokio::spawn(crate::sources::lb::run(
                prober,
                settings.lb.interval,
                tx.clone(),
            ))),
            Err(e) => state.notice(format!("API-server LB: {e}")),
        }
    } else if lab.is_none() && settings.kube.is_configured() {
        state.lb.configured = true;
        tasks.push(tokio::spawn(discover_then_probe(
            settings.lb.clone(),
            settings.kube.clone(),
            tx.clone(),
        )));
    }
    if let Some(config) = &settings.prometheus {
        match KpiProber::new(config.clone()) {
            Ok(prober) => tasks.push(tokio::spawn(crate::sources::prometheus::run(
                prober,
                tx.clone(),
            ))),
            Err(e) => state.notice(format!("KPIs: {e}")),
        }
        if let Some(canary) = CanarySourceConfig::from_kpis(config, &settings.kpis)
            && let Ok(prober) = CanaryProber::new(canary)
        {
            tasks.push(tokio::spawn(crate::sources::canary::run(
                prober,
                tx.clone(),
            )));
        }
        match crate::sources::prometheus_status::MetricsStatusProber::new(
            config,
            settings.metrics_retention,
        ) {
            Ok(prober) => tasks.push(tokio::spawn(crate::sources::prometheus_status::run(
                prober,
                tx.clone(),
            ))),
            Err(e) => state.notice(format!("metrics: {e}")),
        }
    }
    let demo_kubeconfig = lab.as_ref().map(|l| l.dir.join("kubeconfig"));
    let (lab_tx, lab_task) = match lab {
        Some(lab) => {
            let (lab_tx, lab_rx) = mpsc::channel(8);
            let task = tokio::spawn(run_demo_lab(
                lab,
                settings.etcd.clone(),
                settings.lb.clone(),
                settings.kpis.clone(),
                lab_rx,
                tx.clone(),
            ));
            (Some(lab_tx), Some(task))
        }
        None => (None, None),
    };
    let signal_tx = tx.clone();
    tasks.push(tokio::spawn(async move {
        if crate::lab::wait_for_shutdown_signal().await.is_ok() {
            let _ = signal_tx
                .send(Msg::Action(crate::model::Action::Quit))
                .await;
        }
    }));

    let state_dir = Paths::discover().state_dir;
    let mut runner = crate::runbook::tui::RunbookRunner::new(
        settings.etcd.tls.clone(),
        state_dir,
        settings.read_only,
        tx.clone(),
    );
    // The kubeconfig's name for now (no network before the first frame); each run asks
    // the API server who it is.
    runner.kube_user =
        settings.kube.kubeconfig.as_ref().and_then(|k| {
            crate::sources::kube::client::identity(k, settings.kube.context.as_deref())
        });
    runner.kube = Some(settings.kube.clone());
    runner.ssh_command = settings.ssh_command.clone();
    if let Some(path) = demo_kubeconfig {
        // The demo lab writes its kubeconfig there once it is up.
        runner.kube = Some(KubeSourceConfig::new(
            Some(KubeconfigSource::File(path)),
            None,
        ));
    }
    runner.lb_auth = Some(settings.lb.auth.clone());
    let mut terminal = ratatui::init();
    tasks.push(tokio::spawn(forward_terminal_events(
        settings.keymap.clone(),
        tx.clone(),
    )));
    drop(tx);
    let cockpit = Cockpit {
        theme: &settings.theme,
        keymap: &settings.keymap,
        lab: lab_tx,
        runbooks: Some(runner),
        timings: Timings::from_env(started),
        clipboard: Some(crate::app::osc52_to_stdout),
    };
    let result = cockpit.run(&mut terminal, state, rx).await;
    ratatui::restore();
    for t in &tasks {
        t.abort();
    }
    // Closing the command channel makes the lab task shut the lab down.
    drop(cockpit);
    if let Some(t) = lab_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    result.map(|_| 0)
}
