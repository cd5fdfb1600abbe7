//! The install plan: the stack in dependency order, diffed against what is installed
//! (Helm releases, kha's record in the cluster, the objects present), as a runbook.
//! Pure: everything it looks at comes in [`Observed`], so golden tests pin it.
//!
//! Per component that changes: `helm upgrade --install` (argv, with `--timeout`), each
//! manifest by server-side apply (CRDs and ConstraintTemplates waited for before the
//! next object), the readiness checks, then the record in ConfigMap `kha-install`. A
//! component already recorded with the same digest, its release deployed at the
//! wanted version and its objects present, is left alone: a second run changes nothing,
//! and a rerun after a failure starts at the component that failed.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::ready::{self, ReadyCheck};
use super::stack::{Component, Need, Stack};
use super::state::{self, InstallState, Installed};
use crate::runbook::{Operation, Precondition, Risk, Runbook, Step, Verification};

/// A Helm release as `helm list -A -o json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    /// `<chart>-<version>`, e.g. `cilium-1.18.4`.
    pub chart: String,
    pub status: String,
}

/// A node, as the preflight needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFact {
    pub name: String,
    pub zone: Option<String>,
    pub ready: bool,
    /// Allocatable `nvidia.com/gpu`.
    pub gpus: i64,
}

/// What the cluster looked like when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    /// The API server's version, or why it could not be reached.
    pub server_version: Result<String, String>,
    /// Permissions the install needs that the identity lacks ("create namespaces").
    pub denied: Vec<String>,
    pub nodes: Vec<NodeFact>,
    /// Raw devices Rook's discovery reported, per node (empty before Rook runs).
    pub devices: std::collections::BTreeMap<String, Vec<String>>,
}

/// Everything the plan is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `helm version` (e.g. `v3.16.2`), or why helm could not run.
    pub helm_version: Result<String, String>,
    pub releases: Vec<Release>,
    pub state: InstallState,
    /// [`super::stack::Manifest::describe`] of the manifests' objects that exist.
    pub present: BTreeSet<String>,
    pub cluster: ClusterFacts,
}

/// How helm reaches the cluster: the same kubeconfig and context as kha.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HelmTarget {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl HelmTarget {
    /// `helm` with the global flags that pin the cluster.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec!["helm".to_string()];
        if let Some(k) = &self.kubeconfig {
            argv.push("--kubeconfig".into());
            argv.push(k.display().to_string());
        }
        if let Some(c) = &self.context {
            argv.push("--kube-context".into());
            argv.push(c.clone());
        }
        argv
    }
}

/// What happens to a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Install,
    Upgrade {
        from: String,
    },
    /// The release is in a state other than deployed (failed, pending-*).
    Repair {
        status: String,
    },
    /// Same version, but what kha applied last differs (or kha has no record).
    Reconfigure {
        why: String,
    },
    /// Only the manifests: some objects are missing.
    ApplyManifests {
        missing: usize,
    },
    UpToDate,
}

impl Change {
    pub fn describe(&self) -> String {
        match self {
            Change::Install => "install".into(),
            Change::Upgrade { from } => format!("upgrade from {from}"),
            Change::Repair { status } => format!("repair (release {status})"),
            Change::Reconfigure { why } => format!("reconfigure ({why})"),
            Change::ApplyManifests { missing } => format!("apply {missing} missing object(s)"),
            Change::UpToDate => "up to date".into(),
        }
    }

    fn runs_helm(&self) -> bool {
        !matches!(self, Change::ApplyManifests { .. } | Change::UpToDate)
    }
}

/// One line of the plan's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub component: String,
    pub installed: String,
    pub wanted: String,
    pub change: Change,
}

/// The plan: the summary and the runbook that carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallPlan {
    pub rows: Vec<Row>,
    pub runbook: Runbook,
    /// The component of each step (parallel to `runbook.steps`), for progress.
    pub step_component: Vec<String>,
}

impl InstallPlan {
    pub fn changes_nothing(&self) -> bool {
        self.runbook.steps.is_empty()
    }
}

/// Plans `stack` (or only the components in `only`) against `observed`.
pub fn plan(
    cluster: &str,
    stack: &Stack,
    observed: &Observed,
    only: &[String],
    helm: &HelmTarget,
) -> Result<InstallPlan, String> {
    for name in only {
        if stack.component(name).is_none() {
            let names: Vec<&str> = stack.components.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "--only {name}: no such component in {} (components: {})",
                stack.source.name,
                names.join(", ")
            ));
        }
    }
    let order = super::graph::order(stack).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut steps = Vec::new();
    let mut step_component = Vec::new();
    let mut record = observed.state.clone();
    let mut planned: Vec<&Component> = Vec::new();
    for i in order {
        let c = &stack.components[i];
        if !only.is_empty() && !only.contains(&c.name) {
            continue;
        }
        let (change, installed) = diff(c, observed);
        rows.push(Row {
            component: c.name.clone(),
            installed,
            wanted: c.version().unwrap_or("-").to_string(),
            change: change.clone(),
        });
        if change == Change::UpToDate {
            continue;
        }
        planned.push(c);
        record.components.insert(
            c.name.clone(),
            Installed {
                version: c.version().unwrap_or("-").to_string(),
                digest: c.digest.clone(),
            },
        );
        for s in component_steps(c, &change, helm, &record) {
            steps.push(s);
            step_component.push(c.name.clone());
        }
    }
    let preconditions = if steps.is_empty() {
        Vec::new()
    } else {
        preflight(stack, observed, &planned, only)
    };
    let scope = if only.is_empty() {
        "the whole stack".to_string()
    } else {
        only.join(", ")
    };
    let runbook = Runbook {
        id: "stack.install".into(),
        title: format!("Install or upgrade {scope}"),
        cluster: cluster.into(),
        summary: format!(
            "Brings {scope} of {} to what it declares, in dependency order: helm upgrade --install \
             per chart, manifests by server-side apply (field manager kha), readiness checks, \
             and a record in ConfigMap {}/{} after each component, so a rerun (from any jump \
             host) starts where this one stopped.",
            stack.source.name,
            state::CONFIGMAP_NAMESPACE,
            state::CONFIGMAP_NAME
        ),
        preconditions,
        steps,
    };
    Ok(InstallPlan {
        rows,
        runbook,
        step_component,
    })
}

/// `version` of `release`'s chart field (`cilium-1.18.4` -> `1.18.4`).
fn release_version(chart_ref: &str, release: &Release) -> String {
    let base = chart_ref.rsplit('/').next().unwrap_or(chart_ref);
    release
        .chart
        .strip_prefix(&format!("{base}-"))
        .unwrap_or(&release.chart)
        .to_string()
}

fn missing_objects(c: &Component, observed: &Observed) -> usize {
    c.manifests
        .iter()
        .filter(|m| !observed.present.contains(&m.describe()))
        .count()
}

/// What changes for `c`, and what is installed now (for the summary).
fn diff(c: &Component, observed: &Observed) -> (Change, String) {
    let recorded = observed.state.components.get(&c.name);
    let same_digest = recorded.is_some_and(|r| r.digest == c.digest);
    let missing = missing_objects(c, observed);
    let Some(chart) = &c.chart else {
        let installed = match (recorded, missing) {
            (Some(_), 0) => "applied".to_string(),
            (_, n) if n == c.manifests.len() => "not installed".to_string(),
            (_, n) => format!("{n} object(s) missing"),
        };
        let change = if missing == c.manifests.len() && recorded.is_none() {
            Change::Install
        } else if !same_digest {
            Change::Reconfigure {
                why: reconfigure_why(recorded.is_some()),
            }
        } else if missing > 0 {
            Change::ApplyManifests { missing }
        } else {
            Change::UpToDate
        };
        return (change, installed);
    };
    let release = observed
        .releases
        .iter()
        .find(|r| r.name == chart.release && r.namespace == c.namespace);
    let Some(release) = release else {
        return (Change::Install, "not installed".into());
    };
    let version = release_version(&chart.chart, release);
    let installed = format!("{version} ({})", release.status);
    let change = if release.status != "deployed" {
        Change::Repair {
            status: release.status.clone(),
        }
    } else if version != chart.version {
        Change::Upgrade { from: version }
    } else if !same_digest {
        Change::Reconfigure {
            why: reconfigure_why(recorded.is_some()),
        }
    } else if missing > 0 {
        Change::ApplyManifests { missing }
    } else {
        Change::UpToDate
    };
    (change, installed)
}

fn reconfigure_why(recorded: bool) -> String {
    if recorded {
        "values or manifests changed".into()
    } else {
        "not recorded by kha: values unknown".into()
    }
}

fn component_steps(
    c: &Component,
    change: &Change,
    helm: &HelmTarget,
    record: &InstallState,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let timeout = c.timeout;
    let workload_checks: Vec<ReadyCheck> = c
        .ready
        .iter()
        .filter(|r| {
            matches!(
                r,
                ReadyCheck::Deployment { .. }
                    | ReadyCheck::DaemonSet { .. }
                    | ReadyCheck::Crd { .. }
            )
        })
        .cloned()
        .collect();
    let object_checks: Vec<ReadyCheck> = c
        .ready
        .iter()
        .filter(|r| !workload_checks.contains(r))
        .cloned()
        .collect();
    if let Some(chart) = c.chart.as_ref().filter(|_| change.runs_helm()) {
        let mut argv = helm.argv();
        argv.extend(
            ["upgrade", "--install", &chart.release, &chart.chart]
                .iter()
                .map(|s| s.to_string()),
        );
        if let Some(repo) = &chart.repo {
            argv.push("--repo".into());
            argv.push(repo.clone());
        }
        for (flag, value) in [
            ("--version", chart.version.as_str()),
            ("--namespace", c.namespace.as_str()),
        ] {
            argv.push(flag.into());
            argv.push(value.into());
        }
        argv.push("--create-namespace".into());
        argv.push("--wait".into());
        argv.push("--timeout".into());
        argv.push(chart.timeout.clone());
        for f in &chart.values_files {
            argv.push("--values".into());
            argv.push(f.display().to_string());
        }
        for (k, v) in &chart.values {
            argv.push("--set-json".into());
            argv.push(format!(
                "{k}={}",
                serde_json::to_string(v).unwrap_or_default()
            ));
        }
        steps.push(Step {
            title: format!(
                "{}: helm upgrade --install {} {}",
                c.name, chart.chart, chart.version
            ),
            explanation: format!(
                "{} ({}): {}. Helm installs the release, or upgrades it in place; the same \
                 command on an installed release at this version changes nothing.",
                c.name,
                c.description,
                change.describe()
            ),
            risk: Risk::Disruptive,
            operation: Operation::Argv { host: None, argv },
            verification: if workload_checks.is_empty() {
                Verification::None
            } else {
                Verification::KubeReady {
                    checks: workload_checks.clone(),
                }
            },
            timeout,
            on_failure: format!(
                "`helm status {} -n {}` and the pods in {} say why; fix it and rerun \
                 `kha install --apply` (it resumes at {}).",
                chart.release, c.namespace, c.namespace, c.name
            ),
            skippable: false,
        });
    }
    for m in &c.manifests {
        let check = ready::for_manifest(&m.kind, m.namespace.as_deref(), &m.name);
        steps.push(Step {
            title: format!("{}: apply {} {}", c.name, m.kind, m.name),
            explanation: format!(
                "Server-side apply of {} (field manager kha): creates it, or updates the \
                 fields kha owns; applying the same object again changes nothing.",
                m.describe()
            ),
            risk: Risk::Disruptive,
            operation: Operation::KubeApply {
                api_version: m.api_version.clone(),
                kind: m.kind.clone(),
                namespace: m.namespace.clone(),
                name: m.name.clone(),
                manifest: serde_json::to_string(&m.object).unwrap_or_default(),
                field_manager: "kha".into(),
            },
            verification: match check {
                Some(check) => Verification::KubeReady {
                    checks: vec![check],
                },
                None => Verification::None,
            },
            timeout: Duration::from_secs(120),
            on_failure: format!(
                "the API server's answer says what is wrong with {}; its CRD must be \
                 installed (by the chart or an earlier component). Rerun to resume.",
                m.describe()
            ),
            skippable: false,
        });
    }
    let checks = if c.chart.as_ref().is_some_and(|_| change.runs_helm()) {
        object_checks
    } else {
        c.ready.clone()
    };
    if !checks.is_empty() {
        steps.push(Step {
            title: format!("{}: ready", c.name),
            explanation: format!(
                "Waits until {} really works, as its controllers report it.",
                c.name
            ),
            risk: Risk::Safe,
            operation: Operation::Nothing {
                reason: format!("wait for {} to be ready", c.name),
            },
            verification: Verification::KubeReady { checks },
            timeout: if c.chart.is_none() {
                timeout.max(Duration::from_secs(1800))
            } else {
                timeout
            },
            on_failure: format!(
                "{} is installed but not ready: look at its objects' status and events; \
                 rerun `kha install --apply` to check again.",
                c.name
            ),
            skippable: false,
        });
    }
    let cm = record.to_configmap();
    steps.push(Step {
        title: format!("{}: record in {}", c.name, state::CONFIGMAP_NAME),
        explanation: format!(
            "Records {} {} (digest {}) in ConfigMap {}/{}: a rerun skips it from now on.",
            c.name,
            c.version().unwrap_or("(manifests)"),
            c.digest,
            state::CONFIGMAP_NAMESPACE,
            state::CONFIGMAP_NAME
        ),
        risk: Risk::Safe,
        operation: Operation::KubeApply {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(state::CONFIGMAP_NAMESPACE.into()),
            name: state::CONFIGMAP_NAME.into(),
            manifest: serde_json::to_string(&cm).unwrap_or_default(),
            field_manager: "kha".into(),
        },
        verification: Verification::None,
        timeout: Duration::from_secs(30),
        on_failure: "kha could not write its record: check RBAC on configmaps in kube-system; \
                     the component itself is installed."
            .into(),
        skippable: true,
    });
    steps
}

/// `3.16.2` from `v3.16.2+g1234`.
fn semver(text: &str) -> Option<(u64, u64, u64)> {
    let t = text.trim().trim_start_matches('v');
    let t = t.split(['+', '-']).next()?;
    let mut parts = t.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
        parts.next().flatten().unwrap_or(0),
    ))
}

fn preflight(
    stack: &Stack,
    observed: &Observed,
    planned: &[&Component],
    only: &[String],
) -> Vec<Precondition> {
    let p = &stack.preflight;
    let mut out = Vec::new();
    if planned.iter().any(|c| c.chart.is_some()) {
        let (met, evidence) = match &observed.helm_version {
            Ok(v) => match (semver(v), semver(&p.helm_min_version)) {
                (Some(have), Some(want)) => (have >= want, format!("helm {v}")),
                _ => (false, format!("cannot read the helm version {v:?}")),
            },
            Err(e) => (false, e.clone()),
        };
        out.push(Precondition {
            description: format!("helm >= {} is installed", p.helm_min_version),
            met,
            evidence,
        });
    }
    let cluster = &observed.cluster;
    out.push(Precondition {
        description: "the cluster is reachable".into(),
        met: cluster.server_version.is_ok(),
        evidence: match &cluster.server_version {
            Ok(v) => format!("API server {v}"),
            Err(e) => e.clone(),
        },
    });
    out.push(Precondition {
        description: "the identity may install (namespaces, CRDs, workloads, RBAC, configmaps)"
            .into(),
        met: cluster.server_version.is_ok() && cluster.denied.is_empty(),
        evidence: if cluster.server_version.is_err() {
            "not checked: the cluster is not reachable".into()
        } else if cluster.denied.is_empty() {
            "all access reviews allowed".into()
        } else {
            format!("denied: {}", cluster.denied.join(", "))
        },
    });
    let ready: Vec<&NodeFact> = cluster.nodes.iter().filter(|n| n.ready).collect();
    let zones: BTreeSet<&str> = ready.iter().filter_map(|n| n.zone.as_deref()).collect();
    out.push(Precondition {
        description: format!(
            "at least {} Ready nodes in at least {} zones",
            p.min_nodes, p.min_zones
        ),
        met: ready.len() >= p.min_nodes && zones.len() >= p.min_zones,
        evidence: format!(
            "{} of {} nodes Ready in {} zone(s){}",
            ready.len(),
            cluster.nodes.len(),
            zones.len(),
            if zones.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    zones.iter().copied().collect::<Vec<_>>().join(", ")
                )
            }
        ),
    });
    let gpu_pool = p.min_gpu_nodes > 0 && only.is_empty()
        || planned.iter().any(|c| c.needs.contains(&Need::GpuNodes));
    if gpu_pool {
        let gpus = ready.iter().filter(|n| n.gpus > 0).count();
        out.push(Precondition {
            description: format!(
                "at least {} Ready GPU node(s) for the GPU pool",
                p.min_gpu_nodes.max(1)
            ),
            met: gpus >= p.min_gpu_nodes.max(1),
            evidence: format!("{gpus} Ready node(s) with allocatable nvidia.com/gpu"),
        });
    }
    for c in planned
        .iter()
        .filter(|c| c.needs.contains(&Need::StorageDevices))
    {
        out.push(storage_precondition(c, cluster));
    }
    if !only.is_empty() {
        for c in planned {
            let missing: Vec<&str> = c
                .depends_on
                .iter()
                .filter(|d| !installed(stack, observed, d))
                .map(String::as_str)
                .collect();
            out.push(Precondition {
                description: format!("what {} depends on is installed", c.name),
                met: missing.is_empty(),
                evidence: if missing.is_empty() {
                    if c.depends_on.is_empty() {
                        "no dependencies".into()
                    } else {
                        format!("installed: {}", c.depends_on.join(", "))
                    }
                } else {
                    format!(
                        "not installed: {} (install them first, or drop --only)",
                        missing.join(", ")
                    )
                },
            });
        }
    }
    out
}

fn installed(stack: &Stack, observed: &Observed, name: &str) -> bool {
    let Some(c) = stack.component(name) else {
        return false;
    };
    if observed.state.components.contains_key(name) {
        return true;
    }
    match &c.chart {
        Some(chart) => observed.releases.iter().any(|r| {
            r.name == chart.release && r.namespace == c.namespace && r.status == "deployed"
        }),
        None => missing_objects(c, observed) == 0,
    }
}

/// The CephCluster's `storage.nodes` exist, are Ready and list devices.
fn storage_precondition(c: &Component, cluster: &ClusterFacts) -> Precondition {
    let nodes = &cluster.nodes;
    let wanted: Vec<(String, Vec<String>)> = c
        .manifests
        .iter()
        .filter(|m| m.kind == "CephCluster")
        .flat_map(|m| {
            m.object["spec"]["storage"]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|n: Value| {
            (
                n["name"].as_str().unwrap_or_default().to_string(),
                n["devices"]
                    .as_array()
                    .map(|ds| {
                        ds.iter()
                            .filter_map(|d| d["name"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    let mut confirmed = 0;
    for (name, devices) in &wanted {
        match nodes.iter().find(|n| &n.name == name) {
            None => problems.push(format!("{name} is not a node")),
            Some(n) if !n.ready => problems.push(format!("{name} is not Ready")),
            Some(_) if devices.is_empty() => problems.push(format!("{name} lists no devices")),
            Some(_) => {
                if let Some(seen) = cluster.devices.get(name) {
                    for d in devices {
                        if seen.contains(d) {
                            confirmed += 1;
                        } else {
                            problems.push(format!(
                                "{name}: {d} is not an available device (Rook's discovery saw: {})",
                                if seen.is_empty() {
                                    "none".to_string()
                                } else {
                                    seen.join(", ")
                                }
                            ));
                        }
                    }
                }
            }
        }
    }
    let met = !wanted.is_empty() && problems.is_empty();
    Precondition {
        description: format!(
            "{}: the Ceph storage nodes exist, are Ready and list their devices",
            c.name
        ),
        met,
        evidence: if wanted.is_empty() {
            "the CephCluster lists no storage nodes".into()
        } else if problems.is_empty() {
            let devices: usize = wanted.iter().map(|(_, d)| d.len()).sum();
            let seen = if confirmed == devices {
                "all seen by Rook's discovery".to_string()
            } else if confirmed > 0 {
                format!("{confirmed} seen by Rook's discovery, the rest checked by its OSD prepare")
            } else {
                "Rook's OSD prepare checks the devices are empty".to_string()
            };
            format!("{} node(s), {devices} device(s) ({seen})", wanted.len())
        } else {
            problems.join("; ")
        },
    }
}

/// The summary table and the runbook, as `kha install --plan` prints them.
pub fn markdown(plan: &InstallPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Components (in install order)");
    let _ = writeln!(out);
    let _ = writeln!(out, "| component | installed | wanted | change |");
    let _ = writeln!(out, "|---|---|---|---|");
    for r in &plan.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            r.component,
            r.installed,
            r.wanted,
            r.change.describe()
        );
    }
    let _ = writeln!(out);
    if plan.changes_nothing() {
        let _ = writeln!(out, "Nothing to change: every component is up to date.");
        return out;
    }
    out.push_str(&crate::runbook::plan::markdown(&plan.runbook));
    out
}
