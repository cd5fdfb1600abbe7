//! `kha install`: `--plan` (the default) prints the ordered plan with what changes;
//! `--apply` runs it as a runbook with progress per component and overall. A rerun
//! plans again from the cluster (kha's record in ConfigMap `kha-install`), so it
//! resumes at the component that did not finish, from any jump host.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use color_eyre::eyre::{Result, eyre};

use super::plan::{self, HelmTarget, InstallPlan};
use super::stack::{self, Source};
use crate::cli::Settings;
use crate::config::Paths;
use crate::runbook::audit::AuditLog;
use crate::runbook::engine::{Decision, Engine, Operator, Progress};
use crate::runbook::exec::{LiveExecutor, PrintOnly};
use crate::sources::kube::{KubeSourceConfig, KubeconfigSource};

#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    /// The stack file (default: the built-in stack; see --print-stack).
    #[arg(long, value_name = "FILE")]
    pub stack: Option<PathBuf>,
    /// Print the ordered plan and what changes; run nothing (the default).
    #[arg(long, conflicts_with = "apply")]
    pub plan: bool,
    /// Run the plan.
    #[arg(long)]
    pub apply: bool,
    /// Only these components (comma-separated), e.g. `--only velero`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// A stack setting, NAME=VALUE (JSON values keep their type), over [settings].
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Answer the confirmation without a prompt (`y`).
    #[arg(long, value_name = "ANSWER")]
    pub confirm: Option<String>,
    /// Say what each step would do; change nothing.
    #[arg(long)]
    pub print_only: bool,
    /// Print the built-in stack file and exit.
    #[arg(long)]
    pub print_stack: bool,
}

/// The host and port of the kubeconfig's server for the context in use.
fn kubeconfig_server(kube: &KubeSourceConfig) -> Option<(String, u16)> {
    let config = match kube.kubeconfig.as_ref()? {
        KubeconfigSource::File(p) => kube::config::Kubeconfig::read_from(p).ok()?,
        KubeconfigSource::Env => kube::config::Kubeconfig::from_env().ok()??,
    };
    let context_name = kube
        .context
        .clone()
        .or_else(|| config.current_context.clone())?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == context_name)?
        .context
        .as_ref()?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)?
        .cluster
        .as_ref()?;
    let uri: http::Uri = cluster.server.as_ref()?.parse().ok()?;
    Some((uri.host()?.to_string(), uri.port_u16().unwrap_or(443)))
}

/// Settings from `--set`, plus the API server from the kubeconfig when the stack
/// leaves `api_server_host` empty.
fn overrides(
    args: &InstallArgs,
    source: &Source,
    kube: &KubeSourceConfig,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in &args.set {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| eyre!("--set {s:?}: expected NAME=VALUE"))?;
        out.insert(k.trim().to_string(), v.to_string());
    }
    let declared = toml::from_str::<toml::Table>(&source.text)
        .ok()
        .and_then(|t| {
            t.get("settings")?
                .get("api_server_host")?
                .as_str()
                .map(String::from)
        });
    if declared.as_deref() == Some("")
        && !out.contains_key("api_server_host")
        && let Some((host, port)) = kubeconfig_server(kube)
    {
        eprintln!(
            "kha: api_server_host from the kubeconfig: {host}:{port} (set it in [settings] or \
             --set api_server_host=... when that is not the API load balancer)"
        );
        out.insert("api_server_host".into(), host);
        out.entry("api_server_port".into())
            .or_insert_with(|| port.to_string());
    }
    Ok(out)
}

/// `kha install`.
pub async fn install(settings: &Settings, args: &InstallArgs) -> Result<i32> {
    if args.print_stack {
        print!("{}", stack::DEFAULT_STACK);
        return Ok(0);
    }
    let source = match &args.stack {
        Some(path) => Source::read(path).map_err(|e| eyre!("{e}"))?,
        None => Source::embedded(),
    };
    let overrides = overrides(args, &source, &settings.kube)?;
    let stack = match stack::parse(source, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kha: {e}");
            return Ok(2);
        }
    };
    let helm = helm_target(&settings.kube);
    let observed = super::observe::observe(&stack, &settings.kube, &helm, &args.only).await?;
    let plan = match plan::plan(&settings.cluster, &stack, &observed, &args.only, &helm) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kha: {e}");
            return Ok(2);
        }
    };
    let markdown = plan::markdown(&plan);
    if !args.apply {
        print!("{markdown}");
        return Ok(if plan.runbook.unmet().is_empty() {
            0
        } else {
            1
        });
    }
    println!("{markdown}");
    if plan.changes_nothing() {
        return Ok(0);
    }
    apply(settings, args, &plan).await
}

/// Helm pinned to kha's kubeconfig and context.
pub fn helm_target(kube: &KubeSourceConfig) -> HelmTarget {
    HelmTarget {
        kubeconfig: match &kube.kubeconfig {
            Some(KubeconfigSource::File(p)) => Some(p.clone()),
            _ => None,
        },
        context: kube.context.clone(),
    }
}

async fn apply(settings: &Settings, args: &InstallArgs, plan: &InstallPlan) -> Result<i32> {
    let state_dir = Paths::discover().state_dir;
    let audit = AuditLog::in_dir(&state_dir);
    let mut operator = Progressing {
        preset: args.confirm.clone(),
        plan,
    };
    let kube_user = crate::runbook::cli::kube_user(settings).await;
    let result = if args.print_only {
        let mut engine = Engine {
            executor: PrintOnly,
            audit: audit.clone(),
            read_only: settings.read_only,
            poll: Duration::from_millis(500),
            kube_user,
            seen: Vec::new(),
        };
        engine.run(&plan.runbook, &mut operator, None).await
    } else {
        let executor =
            LiveExecutor::new(&settings.etcd.tls, state_dir)?.with_kube(settings.kube.clone());
        let mut engine = Engine {
            executor,
            audit: audit.clone(),
            read_only: settings.read_only,
            poll: Duration::from_millis(500),
            kube_user,
            seen: Vec::new(),
        };
        engine.run(&plan.runbook, &mut operator, None).await
    };
    match result {
        Ok(report) => {
            println!(
                "done: {} step(s) in run {}; audit log {}",
                report.completed,
                report.run,
                audit.path().display()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!(
                "kha: {e:#}\nkha: fix the cause and run `kha install --apply` again: it resumes at \
                 the first component not recorded in ConfigMap kube-system/kha-install."
            );
            Ok(2)
        }
    }
}

/// A bar of `width` cells, `done` of `total` filled.
pub fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(width);
    format!(
        "{}{}",
        "#".repeat(filled),
        "-".repeat(width - filled.min(width))
    )
}

/// Prints progress per component and overall; confirms with `--confirm` or a prompt.
struct Progressing<'a> {
    preset: Option<String>,
    plan: &'a InstallPlan,
}

impl Progressing<'_> {
    /// `[overall ####---- 3/12] [velero ##-- 1/4]` for step `n` (1-based) done.
    fn bars(&self, n: usize) -> String {
        let total = self.plan.step_component.len();
        let Some(component) = self.plan.step_component.get(n.saturating_sub(1)) else {
            return String::new();
        };
        let of: Vec<usize> = (0..total)
            .filter(|&i| &self.plan.step_component[i] == component)
            .collect();
        let mine = of.iter().filter(|&&i| i < n).count();
        format!(
            "[overall {} {n}/{total}] [{component} {} {mine}/{}]",
            bar(n, total, 20),
            bar(mine, of.len(), 8),
            of.len()
        )
    }
}

impl Operator for Progressing<'_> {
    fn ask(&mut self, prompt: &str) -> String {
        crate::runbook::cli::ask_on_terminal(self.preset.as_deref(), prompt)
    }

    fn decide(&mut self, _: usize, _: &str, _: bool) -> Decision {
        // A failed component stops the plan; the rerun resumes at it.
        Decision::Abort
    }

    fn progress(&mut self, event: Progress) {
        match event {
            Progress::StepStarted {
                step,
                title,
                operation,
            } => println!("[{step}] {title}\n    runs: {operation}"),
            Progress::StepOutput { output, .. } => {
                println!("    {}", output.summary);
                for l in output.lines.iter().rev().take(5).rev() {
                    println!("    | {l}");
                }
            }
            Progress::Verifying { what, .. } => println!("    verifying: {what}"),
            Progress::StepDone { step, .. } => println!("    ok {}", self.bars(step)),
            Progress::StepFailed {
                step,
                error,
                guidance,
            } => {
                let component = self
                    .plan
                    .step_component
                    .get(step.saturating_sub(1))
                    .map_or("?", String::as_str);
                println!(
                    "    FAILED: component {component} stopped the plan: {error}\n    what to do: {guidance}"
                )
            }
            Progress::StepSkipped { step } => println!("[{step}] skipped {}", self.bars(step)),
        }
    }
}
