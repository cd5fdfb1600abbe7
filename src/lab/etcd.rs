//! The lab's etcd: three real `etcd` processes when the binary is installed, otherwise
//! in-process simulated members that speak the etcd v3 gRPC API.

use std::path::Path;
use std::time::Duration;

use clap::ValueEnum;
use color_eyre::eyre::{Result, WrapErr, eyre};
use etcd_client::{AlarmAction, AlarmType, Client};

use super::etcd_real::{self, RealEtcdCluster};
use super::etcd_sim::SimEtcdCluster;

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

    pub fn names(&self) -> Vec<String> {
        match self {
            LabEtcd::Real(c) => c.member_names(),
            LabEtcd::Sim(c) => c.member_names(),
        }
    }

    pub fn is_running(&self, idx: usize) -> bool {
        match self {
            LabEtcd::Real(c) => c.is_running(idx),
            LabEtcd::Sim(c) => c.is_running(idx),
        }
    }

    /// Index of the current leader, asked the way any client would.
    pub async fn leader(&self) -> Option<usize> {
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

    pub async fn stop(&mut self, idx: usize) -> Result<()> {
        match self {
            LabEtcd::Real(c) => c.stop_member(idx).await,
            LabEtcd::Sim(c) => c.stop_member(idx).await,
        }
    }

    pub async fn restart(&mut self, idx: usize) -> Result<()> {
        match self {
            LabEtcd::Real(c) => c.start_member(idx).await,
            LabEtcd::Sim(c) => c.start_member(idx).await,
        }
    }

    pub async fn set_nospace(&mut self, raised: bool) -> Result<()> {
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
