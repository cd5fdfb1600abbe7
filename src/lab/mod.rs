//! The lab: a simulated HA cluster on loopback for `kha demo`, `kha lab up` and tests.
//! This part serves a 3-member etcd cluster: real `etcd` processes when the binary is
//! installed, otherwise in-process members that speak the etcd v3 gRPC API.

pub mod etcd_real;
pub mod etcd_sim;
pub mod lb;
pub mod metrics;
pub mod topology;

use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use color_eyre::eyre::{Result, WrapErr, eyre};
use etcd_client::{AlarmAction, AlarmType, Client};
use tokio::sync::mpsc;

use crate::model::{LabCommand, Msg};
use etcd_real::RealEtcdCluster;
use etcd_sim::SimEtcdCluster;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EtcdMode {
    /// Real `etcd` processes (needs Debian's etcd-server).
    Real,
    /// Simulated members inside kha.
    Sim,
    /// Real when `etcd` is on PATH, simulated otherwise.
    Auto,
}

pub enum LabEtcd {
    Real(RealEtcdCluster),
    Sim(SimEtcdCluster),
}

impl LabEtcd {
    pub async fn start(mode: EtcdMode, dir: &Path) -> Result<LabEtcd> {
        let real = match mode {
            EtcdMode::Real => true,
            EtcdMode::Sim => false,
            EtcdMode::Auto => etcd_real::find_etcd().is_some(),
        };
        if real {
            Ok(LabEtcd::Real(RealEtcdCluster::start(dir, 3).await?))
        } else {
            Ok(LabEtcd::Sim(SimEtcdCluster::start(3).await?))
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            LabEtcd::Real(_) => "real etcd processes",
            LabEtcd::Sim(_) => "simulated etcd members",
        }
    }

    pub fn client_urls(&self) -> Vec<String> {
        match self {
            LabEtcd::Real(c) => c.client_urls(),
            LabEtcd::Sim(c) => c.client_urls(),
        }
    }

    fn names(&self) -> Vec<String> {
        match self {
            LabEtcd::Real(c) => c.member_names(),
            LabEtcd::Sim(c) => c.member_names(),
        }
    }

    fn is_running(&self, idx: usize) -> bool {
        match self {
            LabEtcd::Real(c) => c.is_running(idx),
            LabEtcd::Sim(c) => c.is_running(idx),
        }
    }

    /// Index of the current leader, asked the way any client would.
    async fn leader(&self) -> Option<usize> {
        if let LabEtcd::Sim(c) = self {
            return c.leader();
        }
        let urls = self.client_urls();
        for (i, url) in urls.iter().enumerate().filter(|(i, _)| self.is_running(*i)) {
            let Ok(mut client) = Client::connect([url], None).await else {
                continue;
            };
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_millis(500), client.status()).await
            {
                let leader = s.leader();
                let me = s.header().map(|h| h.member_id());
                if Some(leader) == me {
                    return Some(i);
                }
            }
        }
        None
    }

    async fn stop(&mut self, idx: usize) -> Result<()> {
        match self {
            LabEtcd::Real(c) => c.stop_member(idx).await,
            LabEtcd::Sim(c) => c.stop_member(idx).await,
        }
    }

    async fn restart(&mut self, idx: usize) -> Result<()> {
        match self {
            LabEtcd::Real(c) => c.start_member(idx).await,
            LabEtcd::Sim(c) => c.start_member(idx).await,
        }
    }

    async fn set_nospace(&mut self, raised: bool) -> Result<()> {
        match self {
            LabEtcd::Sim(c) => {
                c.set_nospace_alarm(raised);
                Ok(())
            }
            LabEtcd::Real(_) => {
                let urls: Vec<String> = self
                    .client_urls()
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| self.is_running(*i))
                    .map(|(_, u)| u)
                    .collect();
                let mut client = Client::connect(&urls, None)
                    .await
                    .wrap_err("cannot reach the lab etcd")?;
                let status = client
                    .status()
                    .await
                    .wrap_err("cannot reach the lab etcd")?;
                let member = status.header().map(|h| h.member_id()).unwrap_or_default();
                let action = if raised {
                    AlarmAction::Activate
                } else {
                    AlarmAction::Deactivate
                };
                let mut options = etcd_client::AlarmOptions::new();
                options.with_member(member);
                tokio::time::timeout(
                    Duration::from_secs(3),
                    client.alarm(action, AlarmType::Nospace, Some(options)),
                )
                .await
                .map_err(|_| eyre!("alarm request timed out"))?
                .wrap_err("alarm request failed")?;
                Ok(())
            }
        }
    }

    pub async fn shutdown(self) {
        match self {
            LabEtcd::Real(c) => c.shutdown().await,
            LabEtcd::Sim(c) => c.shutdown().await,
        }
    }
}

/// Owns the lab while the demo runs: carries out fault-injection commands and reports
/// each result as a notice. Ends (and shuts the lab down) when the command channel closes.
pub async fn control(
    mut lab: LabEtcd,
    mut commands: mpsc::Receiver<LabCommand>,
    notices: mpsc::Sender<Msg>,
) {
    let mut nospace = false;
    while let Some(cmd) = commands.recv().await {
        let names = lab.names();
        let text = match cmd {
            LabCommand::StopMember => {
                let running: Vec<usize> = (0..names.len()).filter(|&i| lab.is_running(i)).collect();
                let target = match lab.leader().await {
                    Some(l) => Some(l),
                    None => running.first().copied(),
                };
                match target {
                    None => "lab: every etcd member is already stopped".to_string(),
                    Some(i) => match lab.stop(i).await {
                        Ok(()) => format!("lab: stopped etcd member {}", names[i]),
                        Err(e) => format!("lab: could not stop {}: {e}", names[i]),
                    },
                }
            }
            LabCommand::StartMember => match (0..names.len()).find(|&i| !lab.is_running(i)) {
                None => "lab: every etcd member is running".to_string(),
                Some(i) => match lab.restart(i).await {
                    Ok(()) => format!("lab: started etcd member {}", names[i]),
                    Err(e) => format!("lab: could not start {}: {e}", names[i]),
                },
            },
            LabCommand::ToggleNospace => match lab.set_nospace(!nospace).await {
                Ok(()) => {
                    nospace = !nospace;
                    format!(
                        "lab: NOSPACE alarm {}",
                        if nospace { "raised" } else { "cleared" }
                    )
                }
                Err(e) => format!("lab: could not change the NOSPACE alarm: {e}"),
            },
        };
        if notices.send(Msg::Notice(text)).await.is_err() {
            break;
        }
    }
    lab.shutdown().await;
}

/// `lab.env`: `export` lines for the endpoints, for `source`-ing in a shell.
pub fn write_env(dir: &Path, etcd_urls: &[String]) -> Result<()> {
    let joined = etcd_urls.join(",");
    let text = format!(
        "# written by `kha lab up`; source it: . {}/lab.env\nexport KHA_ETCD_ENDPOINTS={joined}\nexport ETCDCTL_ENDPOINTS={joined}\nexport ETCDCTL_API=3\n",
        dir.display()
    );
    let tmp = dir.join("lab.env.tmp");
    std::fs::write(&tmp, text).wrap_err_with(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("lab.env")).wrap_err("cannot move lab.env into place")?;
    Ok(())
}

/// `kha lab up --dir DIR`: start the lab, write `DIR/lab.env`, run until SIGINT/SIGTERM.
pub async fn up(dir: &Path, mode: EtcdMode) -> Result<()> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let lab = LabEtcd::start(mode, dir).await?;
    write_env(dir, &lab.client_urls())?;
    println!("kha lab: {} at {}", lab.kind(), lab.client_urls().join(","));
    println!(
        "kha lab: wrote {}/lab.env; Ctrl-C stops the lab",
        dir.display()
    );
    wait_for_shutdown_signal().await?;
    lab.shutdown().await;
    let _ = std::fs::remove_file(dir.join("lab.env"));
    println!("kha lab: stopped");
    Ok(())
}

/// Resolves on SIGINT, SIGTERM or SIGHUP.
pub async fn wait_for_shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).wrap_err("cannot watch SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).wrap_err("cannot watch SIGHUP")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.wrap_err("cannot watch SIGINT")?,
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
    Ok(())
}
