//! Executors: what carries a step's operation out. [`LiveExecutor`] talks to etcd
//! (etcd-client) and runs argv locally or on a host over OpenSSH; [`PrintOnly`] only
//! says what it would do. Programs always run as argv arrays; for ssh, whose remote side
//! hands the command to a shell, every argument is single-quoted for that shell.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, eyre};
use etcd_client::{
    AlarmAction, AlarmOptions, AlarmType, Client, CompactionOptions, ConnectOptions, TlsOptions,
};
use sha2::{Digest, Sha256};

use super::{Operation, Verification};
use crate::sources::etcd::{EtcdTlsFiles, describe, load_tls};
use crate::sources::kube::KubeSourceConfig;

#[path = "exec_failover.rs"]
mod failover;
pub use failover::eviction_body;

/// What a step produced: one summary line and any output worth showing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutput {
    pub summary: String,
    pub lines: Vec<String>,
}

impl StepOutput {
    fn said(summary: impl Into<String>) -> Self {
        StepOutput {
            summary: summary.into(),
            lines: Vec::new(),
        }
    }
}

/// Carries out operations and checks verifications (one attempt each; the engine
/// retries verifications until their timeout).
pub trait Executor {
    fn execute(&mut self, op: &Operation) -> impl Future<Output = Result<StepOutput>>;
    fn verify(&mut self, check: &Verification) -> impl Future<Output = Result<String>>;
}

/// Says what it would do; changes nothing.
#[derive(Debug, Default)]
pub struct PrintOnly;

impl Executor for PrintOnly {
    async fn execute(&mut self, op: &Operation) -> Result<StepOutput> {
        Ok(StepOutput::said(format!("would run: {}", op.describe())))
    }

    async fn verify(&mut self, check: &Verification) -> Result<String> {
        Ok(format!("would verify: {}", check.describe()))
    }
}

/// Where a long step reports what it does while it runs (a drain: each eviction, each
/// retry of a blocked one, the pods it still waits for), one line at a time. Called on
/// the executor's task: it must not block (print, or `try_send`).
pub type ProgressSink = Arc<dyn Fn(String) + Send + Sync>;

/// The real thing: etcd RPCs, Kubernetes requests, local and ssh argv.
pub struct LiveExecutor {
    tls: Option<TlsOptions>,
    timeout: Duration,
    /// Where ssh keeps its shared connections (ControlPath).
    ssh_control_dir: PathBuf,
    /// The Kubernetes API, when a kubeconfig is configured.
    kube: Option<KubeSourceConfig>,
    /// The ssh program and options put before kha's own (the profile's `ssh_command`).
    ssh: Vec<String>,
    /// How apiserver backends are probed directly (LB runbooks).
    lb_auth: crate::sources::lb::ApiServerAuth,
    /// Live lines of long steps; the step's output (and so the audit log) is the same
    /// with or without it.
    progress: Option<ProgressSink>,
}

impl LiveExecutor {
    pub fn new(tls: &EtcdTlsFiles, ssh_control_dir: PathBuf) -> Result<Self> {
        Ok(LiveExecutor {
            tls: load_tls(tls)?,
            timeout: Duration::from_secs(10),
            ssh_control_dir,
            kube: None,
            ssh: vec!["ssh".into()],
            lb_auth: Default::default(),
            progress: None,
        })
    }

    /// Long steps (a drain) report each thing they do to `sink` as it happens.
    pub fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    /// One live line, when someone listens.
    fn report(&self, line: impl Into<String>) {
        if let Some(sink) = &self.progress {
            sink(line.into());
        }
    }

    /// Direct apiserver probes (LB runbooks) use this CA and kubeconfig.
    pub fn with_lb_auth(mut self, auth: crate::sources::lb::ApiServerAuth) -> Self {
        self.lb_auth = auth;
        self
    }

    /// Runs remote commands with this ssh command (program first, then options, e.g.
    /// `["ssh", "-F", "/etc/kha/ssh_config"]`) instead of plain `ssh`; empty keeps it.
    pub fn with_ssh_command(mut self, command: Vec<String>) -> Self {
        if !command.is_empty() {
            self.ssh = command;
        }
        self
    }

    /// Kubernetes operations go through this kubeconfig (TLS verified).
    pub fn with_kube(mut self, kube: KubeSourceConfig) -> Self {
        self.kube = kube.is_configured().then_some(kube);
        self
    }

    async fn kube_patch(
        &self,
        (group, version, kind, plural): &(String, String, String, String),
        namespace: Option<&str>,
        name: &str,
        patch: &str,
    ) -> Result<StepOutput> {
        let config = self
            .kube
            .as_ref()
            .ok_or_else(|| eyre!("no kubeconfig: set KUBECONFIG or --kubeconfig"))?;
        let source = config
            .kubeconfig
            .as_ref()
            .ok_or_else(|| eyre!("no kubeconfig: set KUBECONFIG or --kubeconfig"))?;
        let conn = crate::sources::kube::client::connect(source, config.context.as_deref()).await?;
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: kube::Api<kube::api::DynamicObject> = match namespace {
            Some(ns) => kube::Api::namespaced_with(conn.client, ns, &resource),
            None => kube::Api::all_with(conn.client, &resource),
        };
        let body: serde_json::Value =
            serde_json::from_str(patch).wrap_err("the patch is not JSON")?;
        let patched = tokio::time::timeout(
            self.timeout,
            api.patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&body),
            ),
        )
        .await
        .map_err(|_| eyre!("the API server did not answer within {:?}", self.timeout))?
        .map_err(|e| eyre!("PATCH {plural} {name}: {e}"))?;
        Ok(StepOutput::said(format!(
            "{kind} {name} patched (resourceVersion {})",
            patched.metadata.resource_version.unwrap_or_default()
        )))
    }

    async fn etcd(&self, endpoint: &str) -> Result<Client> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.timeout)
            .with_timeout(self.timeout);
        if endpoint.starts_with("https://") {
            let tls = self
                .tls
                .clone()
                .ok_or_else(|| eyre!("{endpoint} uses https but no etcd CA is configured"))?;
            options = options.with_tls(tls);
        }
        Client::connect([endpoint], Some(options))
            .await
            .map_err(|e| eyre!("cannot connect to {endpoint}: {}", describe(&e)))
    }

    async fn snapshot(&self, endpoint: &str, path: &Path) -> Result<StepOutput> {
        let mut client = self.etcd(endpoint).await?;
        let revision = client
            .status()
            .await
            .map_err(|e| eyre!("status of {endpoint}: {}", describe(&e)))?
            .header()
            .map_or(0, |h| h.revision());
        let part = partial_path(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
        }
        let mut file = std::fs::File::create(&part)
            .wrap_err_with(|| format!("cannot create {}", part.display()))?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut stream = client
            .snapshot()
            .await
            .map_err(|e| eyre!("snapshot from {endpoint}: {}", describe(&e)))?;
        let streamed = async {
            while let Some(chunk) = stream
                .message()
                .await
                .map_err(|e| eyre!("snapshot stream from {endpoint}: {}", describe(&e)))?
            {
                file.write_all(chunk.blob())
                    .wrap_err_with(|| format!("cannot write {}", part.display()))?;
                hash.update(chunk.blob());
                size += chunk.blob().len() as u64;
            }
            file.sync_all()
                .wrap_err_with(|| format!("cannot sync {}", part.display()))
        }
        .await;
        if let Err(e) = streamed {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        if size == 0 {
            let _ = std::fs::remove_file(&part);
            return Err(eyre!("{endpoint} sent an empty snapshot"));
        }
        std::fs::rename(&part, path)
            .wrap_err_with(|| format!("cannot move the snapshot to {}", path.display()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        let sha = hex(&hash.finalize());
        Ok(StepOutput {
            summary: format!(
                "wrote {} ({size} bytes) at revision {revision}",
                path.display()
            ),
            lines: vec![
                format!("size: {size} bytes"),
                format!("revision: {revision}"),
                format!("sha256: {sha}"),
            ],
        })
    }

    /// Runs `argv` here or on `host` over ssh, to its end within `limit`: its program
    /// (for messages) and whole output, whatever its exit status.
    async fn run_to_end(
        &self,
        host: Option<&str>,
        argv: &[String],
        limit: Duration,
    ) -> Result<(String, std::process::Output)> {
        let full = match host {
            None => argv.to_vec(),
            Some(h) => ssh_argv(&self.ssh, h, &self.ssh_control_dir, argv),
        };
        let (program, args) = full.split_first().ok_or_else(|| eyre!("empty command"))?;
        let out = tokio::time::timeout(
            limit,
            tokio::process::Command::new(program)
                .args(args)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| eyre!("{program} did not finish within {} s", limit.as_secs()))?
        .wrap_err_with(|| format!("cannot run {program}"))?;
        Ok((program.clone(), out))
    }

    async fn run_argv(&self, host: Option<&str>, argv: &[String]) -> Result<StepOutput> {
        let (program, out) = self
            .run_to_end(host, argv, Duration::from_secs(600))
            .await?;
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&out.stderr).lines())
            .map(str::to_string)
            .collect();
        lines.truncate(200);
        if out.status.success() {
            Ok(StepOutput {
                summary: format!("{program} exited 0"),
                lines,
            })
        } else {
            Err(eyre!(
                "{program} failed ({}): {}",
                out.status,
                why_it_failed(&out)
            ))
        }
    }

    async fn members(&self, endpoint: &str) -> Result<Vec<(u64, String)>> {
        let mut c = self.etcd(endpoint).await?;
        let list = c
            .member_list()
            .await
            .map_err(|e| eyre!("member list from {endpoint}: {}", describe(&e)))?;
        Ok(list
            .members()
            .iter()
            .map(|m| (m.id(), m.name().to_string()))
            .collect())
    }
}

impl Executor for LiveExecutor {
    async fn execute(&mut self, op: &Operation) -> Result<StepOutput> {
        match op {
            Operation::Nothing { reason } => {
                Ok(StepOutput::said(format!("nothing to do: {reason}")))
            }
            Operation::KubeMergePatch {
                resource,
                namespace,
                name,
                patch,
            } => {
                self.kube_patch(resource, namespace.as_deref(), name, patch)
                    .await
            }
            Operation::KubeStatusMergePatch {
                resource,
                namespace,
                name,
                status_patch,
                spec_patch,
                fallback_patch,
            } => {
                super::exec_cr::status_merge_patch(
                    self.kube.as_ref(),
                    self.timeout,
                    (resource, namespace.as_deref(), name),
                    status_patch,
                    spec_patch.as_deref(),
                    fallback_patch.as_deref(),
                )
                .await
            }
            Operation::KubeJsonPatch {
                resource,
                namespace,
                name,
                patch,
            } => {
                super::exec_cr::json_patch(
                    self.kube.as_ref(),
                    self.timeout,
                    resource,
                    namespace.as_deref(),
                    name,
                    patch,
                )
                .await
            }
            Operation::KubeCreate {
                resource,
                namespace,
                body,
            } => {
                super::exec_cr::create(
                    self.kube.as_ref(),
                    self.timeout,
                    resource,
                    namespace.as_deref(),
                    body,
                )
                .await
            }
            Operation::Soak { seconds } => {
                tokio::time::sleep(Duration::from_secs(*seconds)).await;
                Ok(StepOutput::said(format!("waited {seconds} s")))
            }
            Operation::EtcdSnapshotSave { endpoint, path } => self.snapshot(endpoint, path).await,
            Operation::EtcdMoveLeader {
                endpoint,
                to_name,
                to_id,
            } => {
                let mut c = self.etcd(endpoint).await?;
                c.move_leader(*to_id)
                    .await
                    .map_err(|e| eyre!("move leader to {to_name}: {}", describe(&e)))?;
                Ok(StepOutput::said(format!("leadership handed to {to_name}")))
            }
            Operation::EtcdDefragment { endpoint, member } => {
                let started = Instant::now();
                let mut c = self.etcd(endpoint).await?;
                c.defragment()
                    .await
                    .map_err(|e| eyre!("defragment {member}: {}", describe(&e)))?;
                let size = c.status().await.map(|s| s.db_size()).unwrap_or(-1);
                Ok(StepOutput::said(format!(
                    "{member} defragmented in {} ms; db size now {size} bytes",
                    started.elapsed().as_millis()
                )))
            }
            Operation::EtcdCompact { endpoint } => {
                let mut c = self.etcd(endpoint).await?;
                let revision = c
                    .status()
                    .await
                    .map_err(|e| eyre!("status of {endpoint}: {}", describe(&e)))?
                    .header()
                    .map_or(0, |h| h.revision());
                c.compact(revision, Some(CompactionOptions::new().with_physical()))
                    .await
                    .map_err(|e| eyre!("compact to {revision}: {}", describe(&e)))?;
                Ok(StepOutput::said(format!(
                    "compacted to revision {revision}"
                )))
            }
            Operation::EtcdDisarmNospace { endpoint } => {
                let mut c = self.etcd(endpoint).await?;
                let alarms = c
                    .alarm(AlarmAction::Get, AlarmType::None, None)
                    .await
                    .map_err(|e| eyre!("alarm list: {}", describe(&e)))?;
                let mut disarmed = 0;
                for a in alarms.alarms() {
                    if a.alarm() != AlarmType::Nospace {
                        continue;
                    }
                    let mut options = AlarmOptions::new();
                    options.with_member(a.member_id());
                    c.alarm(AlarmAction::Deactivate, AlarmType::Nospace, Some(options))
                        .await
                        .map_err(|e| eyre!("disarm NOSPACE: {}", describe(&e)))?;
                    disarmed += 1;
                }
                Ok(StepOutput::said(format!(
                    "disarmed {disarmed} NOSPACE alarm(s)"
                )))
            }
            Operation::Argv { host, argv } => self.run_argv(host.as_deref(), argv).await,
            Operation::KubeApply { .. } => {
                crate::install::kube::apply(self.kube.as_ref(), op, self.timeout).await
            }
            Operation::HaproxyCommand { .. }
            | Operation::KubeDrainNode { .. }
            | Operation::ArgvWithInput { .. } => self.execute_failover(op).await,
        }
    }

    async fn verify(&mut self, check: &Verification) -> Result<String> {
        match check {
            Verification::None => Ok("nothing to verify".into()),
            Verification::KubeFields {
                resource,
                namespace,
                name,
                want,
                fail_if,
            } => {
                super::exec_cr::verify_fields(
                    self.kube.as_ref(),
                    self.timeout,
                    resource,
                    namespace.as_deref(),
                    name,
                    want,
                    fail_if,
                )
                .await
            }
            Verification::EtcdHealthy { endpoints } => {
                for e in endpoints {
                    let mut c = self.etcd(e).await?;
                    c.get("health", None)
                        .await
                        .map_err(|err| eyre!("{e} unhealthy: {}", describe(&err)))?;
                }
                Ok(format!("{} member(s) healthy", endpoints.len()))
            }
            Verification::EtcdLeaderIs { endpoints, name } => {
                let first = endpoints
                    .first()
                    .ok_or_else(|| eyre!("no endpoints to ask"))?;
                let members = self.members(first).await?;
                for e in endpoints {
                    let Ok(mut c) = self.etcd(e).await else {
                        continue;
                    };
                    let Ok(status) = c.status().await else {
                        continue;
                    };
                    let leader = members
                        .iter()
                        .find(|(id, _)| *id == status.leader())
                        .map_or("none", |(_, n)| n.as_str());
                    return if leader == name {
                        Ok(format!("{name} is the leader"))
                    } else {
                        Err(eyre!("the leader is {leader}, not {name}"))
                    };
                }
                Err(eyre!("no member answered a status request"))
            }
            Verification::EtcdNoAlarms { endpoint } => {
                let mut c = self.etcd(endpoint).await?;
                let alarms = c
                    .alarm(AlarmAction::Get, AlarmType::None, None)
                    .await
                    .map_err(|e| eyre!("alarm list: {}", describe(&e)))?;
                match alarms.alarms().len() {
                    0 => Ok("no alarms".into()),
                    n => Err(eyre!("{n} alarm(s) still raised")),
                }
            }
            Verification::EtcdWritable { endpoint } => {
                let mut c = self.etcd(endpoint).await?;
                let value = super::audit::now_rfc3339();
                c.put("/kha/probe", value.as_str(), None)
                    .await
                    .map_err(|e| eyre!("write /kha/probe: {}", describe(&e)))?;
                let got = c
                    .get("/kha/probe", None)
                    .await
                    .map_err(|e| eyre!("read /kha/probe: {}", describe(&e)))?;
                match got.kvs().first().map(|kv| kv.value()) {
                    Some(v) if v == value.as_bytes() => Ok("write and read-back ok".into()),
                    _ => Err(eyre!("read-back of /kha/probe differs")),
                }
            }
            Verification::SnapshotFile { path } => verify_snapshot(self, path).await,
            Verification::KubeReady { checks } => {
                crate::install::kube::ready(self.kube.as_ref(), checks, self.timeout).await
            }
            Verification::HaproxyServerIs { .. }
            | Verification::NodeSchedulable { .. }
            | Verification::NodeDrained { .. }
            | Verification::NginxUpstreamIs { .. } => self.verify_failover(check).await,
        }
    }
}

async fn verify_snapshot(exec: &LiveExecutor, path: &Path) -> Result<String> {
    let size = std::fs::metadata(path)
        .wrap_err_with(|| format!("no snapshot at {}", path.display()))?
        .len();
    if size == 0 {
        return Err(eyre!("{} is empty", path.display()));
    }
    let tool = ["etcdutl", "etcdctl"]
        .into_iter()
        .find(|t| find_in_path(t).is_some());
    let Some(tool) = tool else {
        return Ok(format!(
            "{size} bytes (neither etcdutl nor etcdctl is installed to check it further)"
        ));
    };
    let argv: Vec<String> = [
        tool,
        "snapshot",
        "status",
        &path.to_string_lossy(),
        "-w",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = exec.run_argv(None, &argv).await?;
    let status: serde_json::Value = serde_json::from_str(&out.lines.join("\n"))
        .wrap_err_with(|| format!("{tool} snapshot status gave no JSON"))?;
    Ok(format!(
        "{tool} snapshot status: revision {}, {} keys, hash {}",
        status["revision"], status["totalKey"], status["hash"]
    ))
}

/// The last lines a failed program wrote to stderr (stdout when stderr is empty): the
/// reason usually comes just before a summary line (`nginx: [emerg] …` before
/// `nginx: configuration file … test failed`), so the last line alone is not enough.
fn why_it_failed(out: &std::process::Output) -> String {
    const LINES: usize = 5;
    let text = if out.stderr.iter().all(u8::is_ascii_whitespace) {
        String::from_utf8_lossy(&out.stdout)
    } else {
        String::from_utf8_lossy(&out.stderr)
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LINES)..].join("; ")
}

/// `path` + `.part`: where a snapshot streams before it is renamed into place.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// The argv that runs `argv` on `host`: OpenSSH (`ssh`: the program and any options of
/// the profile's `ssh_command`) in batch mode (no password prompts), the user's config
/// and agent, a shared connection per host; each argument quoted for the remote shell.
pub fn ssh_argv(ssh: &[String], host: &str, control_dir: &Path, argv: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ssh.to_vec();
    out.extend(
        [
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=auto",
            "-o",
            "ControlPersist=60",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    out.push("-o".into());
    out.push(format!(
        "ControlPath={}",
        control_dir.join("ssh-%C").display()
    ));
    out.push("--".into());
    out.push(host.to_string());
    out.push(
        argv.iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
    );
    out
}

/// `s` single-quoted for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `s` as a reader would type it: bare when it is plainly safe, quoted otherwise.
pub fn quote_for_display(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain { s.to_string() } else { shell_quote(s) }
}

pub fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_quotes_every_argument_for_the_remote_shell() {
        let argv: Vec<String> = [
            "mv",
            "/etc/kubernetes/manifests/etcd.yaml",
            "/tmp/it's; rm -rf /",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = ssh_argv(&["ssh".into()], "cp-1", Path::new("/run/kha"), &argv);
        assert_eq!(out[..3], ["ssh", "-o", "BatchMode=yes"]);
        assert_eq!(out[out.len() - 2], "cp-1");
        assert_eq!(
            out[out.len() - 1],
            "'mv' '/etc/kubernetes/manifests/etcd.yaml' '/tmp/it'\\''s; rm -rf /'"
        );
        assert_eq!(quote_for_display("a b"), "'a b'");
        assert_eq!(quote_for_display("--name=etcd-a"), "--name=etcd-a");
    }

    #[test]
    fn a_failure_says_the_reason_before_the_summary_line() {
        use std::os::unix::process::ExitStatusExt;
        let out = |stdout: &str, stderr: &str| std::process::Output {
            status: std::process::ExitStatus::from_raw(1 << 8),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        };
        let nginx = out(
            "",
            "nginx: [emerg] duplicate upstream \"kube_apiserver\" in /etc/nginx/stream.d/x:2\n\
             nginx: configuration file /etc/nginx/nginx.conf test failed\n",
        );
        assert_eq!(
            why_it_failed(&nginx),
            "nginx: [emerg] duplicate upstream \"kube_apiserver\" in /etc/nginx/stream.d/x:2; \
             nginx: configuration file /etc/nginx/nginx.conf test failed"
        );
        assert_eq!(why_it_failed(&out("only stdout\n", "\n")), "only stdout");
        let many: String = (1..=8).map(|i| format!("line {i}\n")).collect();
        assert_eq!(
            why_it_failed(&out("", &many)),
            "line 4; line 5; line 6; line 7; line 8"
        );
    }
}
