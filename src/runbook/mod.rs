//! Guided actions. A runbook is data: what it is for, how risky it is, the preconditions
//! it was checked against, and steps, each with the exact operation it performs (an etcd
//! RPC, an argv run locally or over ssh), how the result is verified, and what to do when
//! it fails. Plans are pure ([`plan`]); the [`engine`] previews, confirms, executes
//! through an [`exec::Executor`] and appends every event to the [`audit`] log.

pub mod audit;
pub mod cli;
pub mod cli_cr;
pub mod cli_failover;
pub mod engine;
pub mod etcd;
pub mod exec;
pub mod exec_cr;
pub mod facts;
pub mod fit;
pub mod lb;
pub mod node;
pub mod plan;
pub mod restore;
pub mod rollouts;
pub mod traffic;
pub mod tui;
pub mod tui_plan;
pub mod velero;
pub mod zone;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// How much a runbook or step can hurt; decides the confirmation it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Reads or copies; changes nothing.
    Safe,
    /// Changes the cluster in a way it recovers from (a leader election, a defrag pause).
    Disruptive,
    /// Can lose data or availability if wrong (a restore, a compaction).
    Destructive,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Safe => "safe",
            Risk::Disruptive => "disruptive",
            Risk::Destructive => "destructive",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A precondition and whether live state met it when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Precondition {
    pub description: String,
    pub met: bool,
    /// What was seen (e.g. "3/3 members healthy").
    pub evidence: String,
}

/// The exact thing a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Operation {
    /// Maintenance.Snapshot from `endpoint`, streamed to `path` (written atomically).
    EtcdSnapshotSave { endpoint: String, path: PathBuf },
    /// Maintenance.MoveLeader sent to the current leader at `endpoint`.
    EtcdMoveLeader {
        endpoint: String,
        to_name: String,
        to_id: u64,
    },
    /// Maintenance.Defragment of the member at `endpoint`.
    EtcdDefragment { endpoint: String, member: String },
    /// KV.Compact to the current revision, physical.
    EtcdCompact { endpoint: String },
    /// Maintenance.Alarm DEACTIVATE for every NOSPACE alarm.
    EtcdDisarmNospace { endpoint: String },
    /// Nothing to do (the plan keeps the step so step numbers stay stable).
    Nothing { reason: String },
    /// A JSON merge patch of one Kubernetes object (e.g. `spec.unschedulable`).
    KubeMergePatch {
        /// `(group, version, kind, plural)`; the group is empty for the core API.
        resource: (String, String, String, String),
        namespace: Option<String>,
        name: String,
        /// The patch, as JSON text.
        patch: String,
    },
    /// A JSON merge patch of the `status` subresource, then (when given) one of the main
    /// resource, as `kubectl argo rollouts` sends them; when the status subresource
    /// answers 404 (a CRD without it), `fallback_patch` on the main resource instead.
    KubeStatusMergePatch {
        resource: (String, String, String, String),
        namespace: Option<String>,
        name: String,
        /// `{"status":{...}}`, as JSON text.
        status_patch: String,
        /// `{"spec":{...}}`, as JSON text, sent after the status patch.
        spec_patch: Option<String>,
        /// Sent to the main resource when `/status` answers 404 (spec and status in one).
        fallback_patch: Option<String>,
    },
    /// An RFC 6902 JSON patch of one object (`application/json-patch+json`); its `test`
    /// operations make it fail rather than apply to an object that changed.
    KubeJsonPatch {
        resource: (String, String, String, String),
        namespace: Option<String>,
        name: String,
        /// The operations, as JSON text.
        patch: String,
    },
    /// A POST that creates one object (a Velero Backup or Restore).
    KubeCreate {
        resource: (String, String, String, String),
        namespace: Option<String>,
        /// The object, as JSON text.
        body: String,
    },
    /// Waits, changing nothing, so the last change soaks before the next one.
    Soak { seconds: u64 },
    /// A program, run with these exact arguments (never through a shell), on this
    /// machine or on `host` over ssh.
    Argv {
        host: Option<String>,
        argv: Vec<String>,
    },
    /// Server-side apply of one object (`application/apply-patch+yaml`) with this
    /// field manager, forcing conflicts (the object is kha's to declare). The manifest
    /// is never printed (it may hold secrets); `describe` names the object only.
    KubeApply {
        api_version: String,
        #[serde(rename = "object_kind")]
        kind: String,
        namespace: Option<String>,
        name: String,
        /// The object, as JSON text.
        manifest: String,
        field_manager: String,
    },
    // LB backends, nodes and zones (issue 8, items 1-3).
    /// One command on HAProxy's runtime API at `endpoint` (`unix:///path` or
    /// `tcp://host:port`), e.g. `set server kube-apiserver/cp-b state drain`.
    HaproxyCommand { endpoint: String, command: String },
    /// Every pod on `node` evicted through the `policy/v1` Eviction API (mirror and
    /// DaemonSet pods skipped), retrying evictions a PodDisruptionBudget blocks (429)
    /// every `retry_secs` until `timeout_secs`, then waiting for the pods to go. Refused,
    /// evicting nothing, while a pod without a controller is there and `force` is not
    /// set, or one with `emptyDir` volumes and `delete_emptydir_data` is not set.
    KubeDrainNode {
        node: String,
        /// `deleteOptions.gracePeriodSeconds`; `None`: each pod's own.
        grace_seconds: Option<i64>,
        timeout_secs: u64,
        retry_secs: u64,
        /// kubectl's `--force`: pods no controller manages are evicted too.
        force: bool,
        /// kubectl's `--delete-emptydir-data`: pods with `emptyDir` volumes too.
        delete_emptydir_data: bool,
    },
    /// A program run with `input` on its standard input (argv, never a shell), on this
    /// machine or on `host` over ssh, e.g. `tee FILE` to write a file.
    ArgvWithInput {
        host: Option<String>,
        argv: Vec<String>,
        input: String,
    },
}

impl Operation {
    /// One line saying exactly what will run (plans, audit records).
    pub fn describe(&self) -> String {
        match self {
            Operation::EtcdSnapshotSave { endpoint, path } => {
                format!(
                    "etcd Maintenance.Snapshot from {endpoint} -> {}",
                    path.display()
                )
            }
            Operation::EtcdMoveLeader {
                endpoint,
                to_name,
                to_id,
            } => format!("etcd Maintenance.MoveLeader at {endpoint} to {to_name} ({to_id:016x})"),
            Operation::EtcdDefragment { endpoint, member } => {
                format!("etcd Maintenance.Defragment of {member} at {endpoint}")
            }
            Operation::EtcdCompact { endpoint } => {
                format!("etcd KV.Compact at {endpoint} to the current revision (physical)")
            }
            Operation::EtcdDisarmNospace { endpoint } => {
                format!("etcd Maintenance.Alarm DEACTIVATE NOSPACE at {endpoint}")
            }
            Operation::Nothing { reason } => format!("nothing: {reason}"),
            Operation::KubeMergePatch {
                resource,
                namespace,
                name,
                patch,
            } => {
                let (group, _, _, plural) = resource;
                let qualified = if group.is_empty() {
                    plural.clone()
                } else {
                    format!("{plural}.{group}")
                };
                let target = match namespace {
                    Some(ns) => format!("{qualified} {ns}/{name}"),
                    None => format!("{qualified} {name}"),
                };
                format!("kube PATCH (merge) {target}: {patch}")
            }
            Operation::KubeStatusMergePatch {
                resource,
                namespace,
                name,
                status_patch,
                spec_patch,
                fallback_patch,
            } => exec_cr::describe_status_patch(
                &exec_cr::target(resource, namespace.as_deref(), name),
                status_patch,
                spec_patch.as_deref(),
                fallback_patch.as_deref(),
            ),
            Operation::KubeJsonPatch {
                resource,
                namespace,
                name,
                patch,
            } => format!(
                "kube PATCH (json) {}: {patch}",
                exec_cr::target(resource, namespace.as_deref(), name)
            ),
            Operation::KubeCreate {
                resource,
                namespace,
                body,
            } => format!(
                "kube POST {}: {body}",
                exec_cr::collection(resource, namespace.as_deref())
            ),
            Operation::Soak { seconds } => {
                format!("wait {seconds} s, changing nothing, before the next step")
            }
            Operation::Argv { host, argv } => {
                let cmd = argv
                    .iter()
                    .map(|a| exec::quote_for_display(a))
                    .collect::<Vec<_>>()
                    .join(" ");
                match host {
                    Some(h) => format!("on {h} over ssh: {cmd}"),
                    None => format!("locally: {cmd}"),
                }
            }
            Operation::KubeApply {
                api_version,
                kind,
                namespace,
                name,
                field_manager,
                ..
            } => {
                let target = match namespace {
                    Some(ns) => format!("{ns}/{name}"),
                    None => name.clone(),
                };
                format!(
                    "kube APPLY (server-side, field manager {field_manager}) {api_version} {kind} {target}"
                )
            }
            Operation::HaproxyCommand { endpoint, command } => {
                format!("HAProxy runtime API {endpoint}: {command}")
            }
            Operation::KubeDrainNode {
                node,
                grace_seconds,
                timeout_secs,
                retry_secs,
                force,
                delete_emptydir_data,
            } => {
                let grace = match grace_seconds {
                    Some(g) => format!("gracePeriodSeconds {g}"),
                    None => "each pod's grace period".into(),
                };
                let flags: Vec<&str> = [
                    (*force, "--force"),
                    (*delete_emptydir_data, "--delete-emptydir-data"),
                ]
                .into_iter()
                .filter_map(|(on, flag)| on.then_some(flag))
                .collect();
                let flags = if flags.is_empty() {
                    "no --force, no --delete-emptydir-data".to_string()
                } else {
                    flags.join(" ")
                };
                format!(
                    "kube POST pods/<pod>/eviction (policy/v1 Eviction, {grace}) for every pod on {node} \
                     but mirror and DaemonSet pods ({flags}); 429 retried every {retry_secs} s for up to {timeout_secs} s"
                )
            }
            Operation::ArgvWithInput { host, argv, input } => {
                let cmd = argv
                    .iter()
                    .map(|a| exec::quote_for_display(a))
                    .collect::<Vec<_>>()
                    .join(" ");
                let lines = input.lines().count();
                match host {
                    Some(h) => format!("on {h} over ssh: {cmd} < ({lines} lines shown above)"),
                    None => format!("locally: {cmd} < ({lines} lines shown above)"),
                }
            }
        }
    }

    pub fn changes_cluster(&self) -> bool {
        match self {
            Operation::EtcdSnapshotSave { .. }
            | Operation::Nothing { .. }
            | Operation::Soak { .. } => false,
            Operation::EtcdMoveLeader { .. }
            | Operation::EtcdDefragment { .. }
            | Operation::EtcdCompact { .. }
            | Operation::EtcdDisarmNospace { .. }
            | Operation::KubeMergePatch { .. }
            | Operation::KubeStatusMergePatch { .. }
            | Operation::KubeJsonPatch { .. }
            | Operation::KubeCreate { .. }
            | Operation::Argv { .. }
            | Operation::KubeApply { .. } => true,
            Operation::HaproxyCommand { command, .. } => !command.trim_start().starts_with("show "),
            Operation::KubeDrainNode { .. } | Operation::ArgvWithInput { .. } => true,
        }
    }
}

/// How a step's result is checked, polled until it holds or the timeout passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verification {
    /// Nothing beyond the operation's own success.
    None,
    /// A GET of one object whose fields (JSON pointers) hold one of the wanted values;
    /// any `fail_if` holding means the step failed and waiting will not help.
    KubeFields {
        resource: (String, String, String, String),
        namespace: Option<String>,
        name: String,
        want: Vec<exec_cr::FieldWant>,
        fail_if: Vec<exec_cr::FieldWant>,
    },
    /// Every listed member answers a linearizable read.
    EtcdHealthy { endpoints: Vec<String> },
    /// The named member is the leader.
    EtcdLeaderIs {
        endpoints: Vec<String>,
        name: String,
    },
    /// No alarm is raised.
    EtcdNoAlarms { endpoint: String },
    /// A write and read-back of a kha key succeeds.
    EtcdWritable { endpoint: String },
    /// The snapshot file exists, is non-empty and `etcdutl`/`etcdctl snapshot status`
    /// accepts it when either is installed.
    SnapshotFile { path: PathBuf },
    /// Every readiness check holds (rolled out, Established, Ready/HEALTH_OK, Available).
    KubeReady {
        checks: Vec<crate::install::ready::ReadyCheck>,
    },
    // LB backends, nodes and zones (issue 8, items 1-3).
    /// HAProxy's `show stat` gives `server` of `backend` the status `state` (`UP`,
    /// `DRAIN`, `MAINT`), and a direct probe of `readyz` (when given) answers 200
    /// (`require_ready`) or is reported as seen.
    HaproxyServerIs {
        endpoint: String,
        backend: String,
        server: String,
        state: String,
        readyz: Option<String>,
        require_ready: bool,
    },
    /// The node is (or is not) marked unschedulable.
    NodeSchedulable { node: String, schedulable: bool },
    /// The node is unschedulable and no pod a drain evicts is left on it.
    NodeDrained { node: String },
    /// `argv` (`nginx -T` with the `-p`/`-c` of the running nginx, on this machine or on
    /// `host` over ssh) dumps the configuration nginx loads, file by file: it lists
    /// `file`, and there `address` of upstream `upstream` is marked `down` or not, as
    /// `down` says. Fails for good when it does not: waiting will not change the files.
    NginxUpstreamIs {
        host: Option<String>,
        argv: Vec<String>,
        file: String,
        upstream: String,
        address: String,
        down: bool,
    },
}

impl Verification {
    pub fn describe(&self) -> String {
        match self {
            Verification::None => "the operation reports success".into(),
            Verification::KubeFields {
                resource,
                namespace,
                name,
                want,
                fail_if,
            } => exec_cr::describe_fields(
                &exec_cr::target(resource, namespace.as_deref(), name),
                want,
                fail_if,
            ),
            Verification::EtcdHealthy { endpoints } => {
                format!("members healthy: {}", endpoints.join(", "))
            }
            Verification::EtcdLeaderIs { name, .. } => format!("{name} is the leader"),
            Verification::EtcdNoAlarms { .. } => "no etcd alarm is raised".into(),
            Verification::EtcdWritable { .. } => {
                "a write and read-back of /kha/probe succeeds".into()
            }
            Verification::SnapshotFile { path } => format!(
                "{} is a valid snapshot (size, SHA-256, `etcdutl snapshot status` when installed)",
                path.display()
            ),
            Verification::KubeReady { checks } => checks
                .iter()
                .map(|c| c.describe())
                .collect::<Vec<_>>()
                .join("; "),
            Verification::HaproxyServerIs {
                backend,
                server,
                state,
                readyz,
                require_ready,
                ..
            } => {
                let probe = match (readyz, require_ready) {
                    (Some(url), true) => format!(" and {url}/readyz answers 200"),
                    (Some(url), false) => format!("; {url}/readyz probed directly and reported"),
                    (None, _) => String::new(),
                };
                format!("`show stat` has {backend}/{server} {state}{probe}")
            }
            Verification::NodeSchedulable { node, schedulable } => {
                if *schedulable {
                    format!("{node} is schedulable")
                } else {
                    format!("{node} is unschedulable")
                }
            }
            Verification::NodeDrained { node } => format!(
                "{node} is unschedulable and no pod but mirror and DaemonSet pods is left on it"
            ),
            Verification::NginxUpstreamIs {
                host,
                argv,
                file,
                upstream,
                address,
                down,
            } => {
                let cmd = argv
                    .iter()
                    .map(|a| exec::quote_for_display(a))
                    .collect::<Vec<_>>()
                    .join(" ");
                let on = host.as_ref().map_or(String::new(), |h| format!(" on {h}"));
                format!(
                    "`{cmd}`{on} lists {file}, with {address} of upstream {upstream} {}",
                    if *down { "marked down" } else { "in rotation" }
                )
            }
        }
    }
}

/// One step of a runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub title: String,
    pub explanation: String,
    pub risk: Risk,
    pub operation: Operation,
    pub verification: Verification,
    #[serde(with = "duration_secs")]
    pub timeout: Duration,
    /// What to do when the step or its verification fails.
    pub on_failure: String,
    /// Whether skipping the step after a failure leaves the cluster safe.
    pub skippable: bool,
}

/// A whole guided action, ready to preview and run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runbook {
    /// Stable id, e.g. `etcd.snapshot-save`.
    pub id: String,
    pub title: String,
    pub cluster: String,
    /// Why and when to use it.
    pub summary: String,
    pub preconditions: Vec<Precondition>,
    pub steps: Vec<Step>,
}

impl Runbook {
    /// The highest risk of any step.
    pub fn risk(&self) -> Risk {
        self.steps
            .iter()
            .map(|s| s.risk)
            .max()
            .unwrap_or(Risk::Safe)
    }

    /// Preconditions that live state did not meet.
    pub fn unmet(&self) -> Vec<&Precondition> {
        self.preconditions.iter().filter(|p| !p.met).collect()
    }
}

mod duration_secs {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}
