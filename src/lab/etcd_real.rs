//! A real etcd cluster on loopback, from the `etcd` binary (Debian's etcd-server):
//! used by `kha demo`/`kha lab up` when etcd is installed, and by the tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, eyre};
use tokio::process::{Child, Command};

struct RealMember {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl RealMember {
    /// The process was started and has since ended (e.g. its port was taken).
    fn exited(&self) -> bool {
        // `try_wait` needs `&mut self`; the process state in /proc does not. An exited,
        // not yet reaped child is a zombie ('Z'); a reaped one has no /proc entry.
        let Some(pid) = self.child.as_ref().and_then(|c| c.id()) else {
            return false;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => {
                stat.rsplit(')')
                    .next()
                    .and_then(|rest| rest.split_whitespace().next())
                    == Some("Z")
            }
            Err(_) => true,
        }
    }
}

pub struct RealEtcdCluster {
    members: Vec<RealMember>,
    initial_cluster: String,
    binary: PathBuf,
    /// Flags every member gets besides the cluster wiring.
    extra_args: Vec<String>,
}

/// A free loopback TCP port (the OS picks it; it is released before use).
pub fn free_port() -> Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").wrap_err("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// The `etcd` binary on PATH, if any.
pub fn find_etcd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

impl RealEtcdCluster {
    /// Start `n` members with data and logs under `dir`, and wait until every member
    /// answers (at most 30 s).
    /// Start `n` members with data and logs under `dir`, and wait until they form one
    /// cluster (at most 30 s). Ports are picked free just before etcd binds them, so a
    /// busy machine can take one in between: then the cluster is started again on fresh
    /// ports (three attempts).
    pub async fn start(dir: &Path, n: usize) -> Result<Self> {
        Self::start_with(dir, n, &[]).await
    }

    /// As [`RealEtcdCluster::start`], with `extra` flags for every member (tests use
    /// e.g. `--quota-backend-bytes`).
    pub async fn start_with(dir: &Path, n: usize, extra: &[&str]) -> Result<Self> {
        let mut last = None;
        for attempt in 1..=3 {
            let attempt_dir = dir.join(format!("etcd-{attempt}"));
            std::fs::create_dir_all(&attempt_dir)
                .wrap_err_with(|| format!("cannot create {}", attempt_dir.display()))?;
            let cluster = Self::start_once(&attempt_dir, n, extra).await?;
            match cluster.wait_ready(Duration::from_secs(20)).await {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    cluster.shutdown().await;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| eyre!("etcd cluster did not start")))
    }

    async fn start_once(dir: &Path, n: usize, extra: &[&str]) -> Result<Self> {
        let binary = find_etcd()
            .ok_or_else(|| eyre!("`etcd` not found on PATH: apt-get install etcd-server"))?;
        let mut members = Vec::new();
        for i in 0..n {
            let name = format!("etcd-{}", (b'a' + i as u8) as char);
            members.push(RealMember {
                data_dir: dir.join(format!("{name}.data")),
                log: dir.join(format!("{name}.log")),
                name,
                client_port: free_port()?,
                peer_port: free_port()?,
                child: None,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = RealEtcdCluster {
            members,
            initial_cluster,
            binary,
            extra_args: extra.iter().map(|a| a.to_string()).collect(),
        };
        for i in 0..n {
            cluster.start_member(i).await?;
        }
        Ok(cluster)
    }

    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    pub fn member_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    pub fn is_running(&self, idx: usize) -> bool {
        self.members.get(idx).is_some_and(|m| m.child.is_some())
    }

    /// The process id of a running member (tests kill and SIGSTOP members by PID).
    pub fn pid(&self, idx: usize) -> Option<u32> {
        self.members.get(idx)?.child.as_ref()?.id()
    }

    /// Start (or restart, keeping its data) member `idx`.
    pub async fn start_member(&mut self, idx: usize) -> Result<()> {
        let binary = self.binary.clone();
        let initial_cluster = self.initial_cluster.clone();
        let extra = self.extra_args.clone();
        let m = self
            .members
            .get_mut(idx)
            .ok_or_else(|| eyre!("no member {idx}"))?;
        if m.child.is_some() {
            return Ok(());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .wrap_err_with(|| format!("cannot open {}", m.log.display()))?;
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new(&binary)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &initial_cluster,
                "--initial-cluster-state",
                "new",
            ])
            .args(["--initial-cluster-token", "kha-lab"])
            // Fast elections so a stopped leader is replaced within a second.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(&extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .wrap_err_with(|| format!("cannot start {}", binary.display()))?;
        m.child = Some(child);
        Ok(())
    }

    /// Kill member `idx` (SIGKILL) and reap it.
    pub async fn stop_member(&mut self, idx: usize) -> Result<()> {
        let m = self
            .members
            .get_mut(idx)
            .ok_or_else(|| eyre!("no member {idx}"))?;
        if let Some(mut child) = m.child.take() {
            let _ = child.kill().await;
        }
        Ok(())
    }

    /// Wait until every running member is alive, answers for the same cluster, sees a
    /// leader, and lists all members as started.
    pub async fn wait_ready(&self, limit: Duration) -> Result<()> {
        let started = Instant::now();
        let logs = || {
            self.members
                .iter()
                .map(|m| m.log.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        loop {
            if let Some(m) = self.members.iter().find(|m| m.exited()) {
                return Err(eyre!(
                    "etcd member {} exited during start-up; see {}",
                    m.name,
                    logs()
                ));
            }
            if self.forms_one_cluster().await {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(eyre!(
                    "etcd cluster not ready after {limit:?}; see {}",
                    logs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn forms_one_cluster(&self) -> bool {
        let mut cluster_id = None;
        for (i, url) in self.client_urls().iter().enumerate() {
            if !self.is_running(i) {
                continue;
            }
            let Ok(mut c) = etcd_client::Client::connect([url], None).await else {
                return false;
            };
            let wait = Duration::from_millis(500);
            let (Ok(Ok(status)), Ok(Ok(list))) = (
                tokio::time::timeout(wait, c.status()).await,
                tokio::time::timeout(wait, c.member_list()).await,
            ) else {
                return false;
            };
            let id = status.header().map(|h| h.cluster_id());
            let names: Vec<&str> = list.members().iter().map(|m| m.name()).collect();
            let ours = self
                .members
                .iter()
                .all(|m| names.contains(&m.name.as_str()))
                && names.len() == self.members.len();
            if status.leader() == 0 || !ours || cluster_id.get_or_insert(id) != &id {
                return false;
            }
        }
        true
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.members.len() {
            let _ = self.stop_member(i).await;
        }
    }
}
