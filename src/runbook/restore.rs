//! Snapshot restore for a kubeadm control plane (etcd and kube-apiserver as static pods):
//! take a safety snapshot while quorum lasts, stop every apiserver and etcd by moving
//! their manifests aside, restore the snapshot on every member into a NEW data dir with
//! that member's flags, point the etcd manifest at it, start etcd everywhere, wait for
//! quorum, then start the apiservers. The old data dirs are never touched, so going back
//! is moving the manifests' data dir back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Operation, Precondition, Risk, Runbook, Step, Verification};
use crate::model::etcd::EtcdObservation;

/// One member as the restore sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreMember {
    /// The member's `--name`.
    pub name: String,
    /// Where its commands run: an ssh destination, or `None` for this machine.
    pub host: Option<String>,
    /// `--initial-advertise-peer-urls`.
    pub peer_url: String,
    /// Its client URL once restored (for the quorum check).
    pub client_url: String,
    /// The data dir in use now (left untouched).
    pub data_dir: PathBuf,
    /// The kubelet's static-pod manifests dir (`/etc/kubernetes/manifests`).
    pub manifests: PathBuf,
}

/// Which tool restores: `etcdutl` from etcd 3.5 on, `etcdctl` (API v3) on 3.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTool {
    Etcdutl,
    Etcdctl,
}

impl RestoreTool {
    /// From the members' version (`3.4.23` → etcdctl); etcdutl when unknown.
    pub fn for_version(version: Option<&str>) -> RestoreTool {
        let minor = version
            .and_then(|v| v.split('.').nth(1))
            .and_then(|m| m.parse::<u32>().ok());
        match (version.and_then(|v| v.split('.').next()), minor) {
            (Some("3"), Some(m)) if m < 5 => RestoreTool::Etcdctl,
            _ => RestoreTool::Etcdutl,
        }
    }
}

/// The members as the live member list gives them (kubeadm layout: the same data dir
/// and manifests dir on every node, reached over ssh by member name, which kubeadm sets
/// to the node's name; `local` runs everything here instead). Learners are left out: a
/// restored cluster starts with the voting members only.
pub fn members_from_observation(
    obs: &EtcdObservation,
    data_dir: &Path,
    manifests: &Path,
    local: bool,
) -> Result<Vec<RestoreMember>, String> {
    if let Some(e) = &obs.member_list_error {
        return Err(format!(
            "the member list is unavailable ({e}): give every member with --member"
        ));
    }
    let mut out = Vec::new();
    for m in obs.members.iter().filter(|m| !m.is_learner) {
        let peer = m.peer_urls.first().ok_or_else(|| {
            format!(
                "member {} has no peer URL in the member list: give --member",
                m.name
            )
        })?;
        out.push(RestoreMember {
            name: m.name.clone(),
            host: (!local).then(|| m.name.clone()),
            peer_url: peer.clone(),
            client_url: m.endpoint.clone(),
            data_dir: data_dir.to_path_buf(),
            manifests: manifests.to_path_buf(),
        });
    }
    if out.is_empty() {
        return Err("no voting member is known: give --member".into());
    }
    Ok(out)
}

/// Everything the restore plan is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSpec {
    pub snapshot: PathBuf,
    pub members: Vec<RestoreMember>,
    /// `--initial-cluster-token` of the restored cluster (a new one, so members of the
    /// old cluster cannot join it by mistake).
    pub token: String,
    /// Appended to each data dir to name the new one.
    pub suffix: String,
    pub tool: RestoreTool,
    /// Where the safety snapshot goes (when quorum still exists).
    pub safety_snapshot: PathBuf,
}

impl RestoreSpec {
    pub fn new_data_dir(&self, m: &RestoreMember) -> PathBuf {
        let mut name = m.data_dir.as_os_str().to_os_string();
        name.push(format!("-{}", self.suffix));
        PathBuf::from(name)
    }
}

fn argv(host: &Option<String>, parts: &[&str]) -> Operation {
    Operation::Argv {
        host: host.clone(),
        argv: parts.iter().map(|s| s.to_string()).collect(),
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A manifest's parked place beside the manifests dir: the kubelet ignores it there.
fn parked(m: &RestoreMember, file: &str) -> String {
    let parent = m.manifests.parent().unwrap_or(Path::new("/"));
    path_str(&parent.join(format!("{file}.kha-stopped")))
}

fn manifest(m: &RestoreMember, file: &str) -> String {
    path_str(&m.manifests.join(file))
}

/// Paths go into a `sed` expression and argv; keep them plain.
fn plain_path(p: &Path) -> bool {
    let s = path_str(p);
    p.is_absolute()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
}

fn step(title: String, explanation: String, risk: Risk, operation: Operation) -> Step {
    Step {
        title,
        explanation,
        risk,
        operation,
        verification: Verification::None,
        timeout: Duration::from_secs(60),
        on_failure: "Fix what the error says and retry; nothing after this step has run.".into(),
        skippable: false,
    }
}

/// The restore plan. Preconditions: the snapshot exists, the member set is complete
/// (names and peer URLs), paths are plain, and the new data dirs do not exist yet.
pub fn restore(cluster: &str, obs: &EtcdObservation, spec: &RestoreSpec) -> Runbook {
    let healthy = obs.members.iter().filter(|m| m.is_healthy()).count();
    let voters = obs.members.iter().filter(|m| !m.is_learner).count();
    let has_quorum = voters > 0 && healthy > voters / 2;
    let initial_cluster = spec
        .members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url))
        .collect::<Vec<_>>()
        .join(",");
    let snapshot_ok = spec.snapshot.is_file();
    let local_new_dirs: Vec<String> = spec
        .members
        .iter()
        .filter(|m| m.host.is_none() && spec.new_data_dir(m).exists())
        .map(|m| path_str(&spec.new_data_dir(m)))
        .collect();
    let unplain: Vec<String> = spec
        .members
        .iter()
        .flat_map(|m| [&m.data_dir, &m.manifests])
        .chain([&spec.snapshot])
        .filter(|p| !plain_path(p))
        .map(|p| path_str(p))
        .collect();
    let preconditions = vec![
        Precondition {
            description: "the snapshot file is here".into(),
            met: snapshot_ok,
            evidence: if snapshot_ok {
                format!("{} exists", spec.snapshot.display())
            } else {
                format!("no file at {}", spec.snapshot.display())
            },
        },
        Precondition {
            description: "every member is named, with its peer URL".into(),
            met: !spec.members.is_empty()
                && spec
                    .members
                    .iter()
                    .all(|m| !m.name.is_empty() && !m.peer_url.is_empty()),
            evidence: format!("--initial-cluster {initial_cluster}"),
        },
        Precondition {
            description: "paths are absolute and plain (letters, digits, / - _ .)".into(),
            met: unplain.is_empty(),
            evidence: if unplain.is_empty() {
                "all plain".into()
            } else {
                format!("not plain: {}", unplain.join(", "))
            },
        },
        Precondition {
            description: "the new data dirs do not exist yet (a restore never writes over data)"
                .into(),
            met: local_new_dirs.is_empty(),
            evidence: if local_new_dirs.is_empty() {
                "none exists here (remote hosts are checked by the restore itself)".into()
            } else {
                format!("already there: {}", local_new_dirs.join(", "))
            },
        },
    ];

    let mut steps = Vec::new();
    // Always step 1, so a resumed run numbers its steps as the interrupted one did.
    let source = obs
        .members
        .iter()
        .find(|m| m.is_healthy())
        .filter(|_| has_quorum);
    if let Some(source) = source {
        steps.push(Step {
            title: "Take a safety snapshot of the current data".into(),
            explanation: format!(
                "Quorum still exists ({healthy}/{voters} healthy), so today's data is saved \
                 to {} before anything stops. Restoring it undoes this restore.",
                spec.safety_snapshot.display()
            ),
            risk: Risk::Safe,
            operation: Operation::EtcdSnapshotSave {
                endpoint: source.endpoint.clone(),
                path: spec.safety_snapshot.clone(),
            },
            verification: Verification::SnapshotFile {
                path: spec.safety_snapshot.clone(),
            },
            timeout: Duration::from_secs(300),
            on_failure: "Do not go on without a safety copy unless the data is already lost; \
                         check disk space and retry."
                .into(),
            skippable: true,
        });
    } else {
        let mut s = step(
            "Take a safety snapshot of the current data".into(),
            format!(
                "Not possible: without quorum ({healthy}/{voters} healthy) no member serves \
                 a consistent snapshot. The old data dirs stay on disk untouched."
            ),
            Risk::Safe,
            Operation::Nothing {
                reason: "quorum is lost, no consistent snapshot can be taken".into(),
            },
        );
        s.skippable = true;
        steps.push(s);
    }
    for m in &spec.members {
        steps.push(step(
            format!("Stop kube-apiserver on {}", m.name),
            "Moving the static-pod manifest out of the manifests dir makes the kubelet stop \
             the pod; nothing writes to etcd while it is restored."
                .into(),
            Risk::Disruptive,
            argv(
                &m.host,
                &[
                    "mv",
                    &manifest(m, "kube-apiserver.yaml"),
                    &parked(m, "kube-apiserver.yaml"),
                ],
            ),
        ));
    }
    for m in &spec.members {
        steps.push(step(
            format!("Stop etcd on {}", m.name),
            format!(
                "The etcd manifest is parked the same way. Its data dir {} stays as it is.",
                m.data_dir.display()
            ),
            Risk::Destructive,
            argv(
                &m.host,
                &["mv", &manifest(m, "etcd.yaml"), &parked(m, "etcd.yaml")],
            ),
        ));
    }
    for m in &spec.members {
        let new_dir = path_str(&spec.new_data_dir(m));
        let snapshot = match &m.host {
            None => path_str(&spec.snapshot),
            Some(_) => "/var/tmp/kha-restore.db".to_string(),
        };
        if let Some(host) = &m.host {
            steps.push(step(
                format!("Copy the snapshot to {}", m.name),
                format!("scp in batch mode to {host}:{snapshot}."),
                Risk::Safe,
                argv(
                    &None,
                    &[
                        "scp",
                        "-o",
                        "BatchMode=yes",
                        &path_str(&spec.snapshot),
                        &format!("{host}:{snapshot}"),
                    ],
                ),
            ));
        }
        let mut cmd: Vec<&str> = match spec.tool {
            RestoreTool::Etcdutl => vec!["etcdutl", "snapshot", "restore"],
            RestoreTool::Etcdctl => vec!["env", "ETCDCTL_API=3", "etcdctl", "snapshot", "restore"],
        };
        let name = format!("--name={}", m.name);
        let cluster_flag = format!("--initial-cluster={initial_cluster}");
        let token = format!("--initial-cluster-token={}", spec.token);
        let peer = format!("--initial-advertise-peer-urls={}", m.peer_url);
        let dir = format!("--data-dir={new_dir}");
        cmd.extend([snapshot.as_str(), &name, &cluster_flag, &token, &peer, &dir]);
        let mut s = step(
            format!("Restore the snapshot on {} into {new_dir}", m.name),
            format!(
                "{} writes a fresh member from the snapshot, with this member's name and \
                 peer URL and a new cluster token, into a new data dir; it refuses if the dir \
                 exists.",
                match spec.tool {
                    RestoreTool::Etcdutl => "etcdutl (etcd 3.5 and later)",
                    RestoreTool::Etcdctl => "etcdctl snapshot restore (etcd 3.4)",
                }
            ),
            Risk::Destructive,
            argv(&m.host, &cmd),
        );
        s.on_failure = format!(
            "If {new_dir} exists from an earlier attempt, move it away (never over the old \
             data dir) and retry."
        );
        steps.push(s);
        let old = path_str(&m.data_dir);
        steps.push(step(
            format!("Point {}'s etcd manifest at {new_dir}", m.name),
            format!(
                "Replaces {old} with {new_dir} in the parked manifest (the --data-dir flag \
                 and the hostPath volume)."
            ),
            Risk::Disruptive,
            argv(
                &m.host,
                &[
                    "sed",
                    "-i",
                    "-e",
                    &format!("s|{old}|{new_dir}|g"),
                    &parked(m, "etcd.yaml"),
                ],
            ),
        ));
    }
    let all_clients: Vec<String> = spec.members.iter().map(|m| m.client_url.clone()).collect();
    let last = spec.members.len().saturating_sub(1);
    for (i, m) in spec.members.iter().enumerate() {
        let mut s = step(
            format!("Start etcd on {}", m.name),
            "The manifest goes back; the kubelet starts etcd on the restored data.".into(),
            Risk::Disruptive,
            argv(
                &m.host,
                &["mv", &parked(m, "etcd.yaml"), &manifest(m, "etcd.yaml")],
            ),
        );
        if i == last {
            s.verification = Verification::EtcdHealthy {
                endpoints: all_clients.clone(),
            };
            s.timeout = Duration::from_secs(180);
            s.on_failure = "Read the etcd logs on each node (crictl logs, or the kubelet's \
                            journal): a member with a wrong --initial-cluster or an old \
                            data dir will not join."
                .into();
            s.title = format!("Start etcd on {} and wait for quorum", m.name);
        }
        steps.push(s);
    }
    for m in &spec.members {
        steps.push(step(
            format!("Start kube-apiserver on {}", m.name),
            "The apiserver manifest goes back. Check /readyz of each apiserver (the LB pane) \
             before sending traffic."
                .into(),
            Risk::Disruptive,
            argv(
                &m.host,
                &[
                    "mv",
                    &parked(m, "kube-apiserver.yaml"),
                    &manifest(m, "kube-apiserver.yaml"),
                ],
            ),
        ));
    }
    Runbook {
        id: "etcd.restore".into(),
        title: "Restore etcd from a snapshot".into(),
        cluster: cluster.into(),
        summary: format!(
            "Replaces the whole cluster's etcd data with {} on every member \
             ({}). Everything written since the snapshot is lost; the old data dirs are \
             kept.",
            spec.snapshot.display(),
            spec.members
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        preconditions,
        steps,
    }
}
