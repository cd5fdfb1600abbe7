//! The etcd source: member list, then every member probed in parallel (status, alarms,
//! and the `etcdctl endpoint health` read), each under its own timeout, so a dead or hung
//! member never stalls the others, the UI, or `kha status`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::{Result, WrapErr, eyre};
use etcd_client::{
    AlarmAction, AlarmType, Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions,
};
use futures::future::join_all;
use tokio::sync::mpsc;

use crate::model::Msg;
use crate::model::etcd::{
    EtcdAlarm, EtcdObservation, HealthProbe, MemberObservation, MemberStatus,
};

/// Client certificates, as kubeadm lays them out under `/etc/kubernetes/pki/etcd/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdTlsFiles {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSourceConfig {
    pub endpoints: Vec<String>,
    pub tls: EtcdTlsFiles,
    /// Time between probe rounds.
    pub interval: Duration,
    /// Per-endpoint deadline for each RPC.
    pub timeout: Duration,
}

impl EtcdSourceConfig {
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdSourceConfig {
            endpoints,
            tls: EtcdTlsFiles::default(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(1500),
        }
    }
}

/// A member kha knows about: from the member list, or only from its options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KnownMember {
    name: String,
    id: u64,
    endpoint: String,
    /// From the member list; empty for a member known only from the options.
    peer_urls: Vec<String>,
    is_learner: bool,
}

impl KnownMember {
    fn anonymous(endpoint: &str) -> Self {
        let name = endpoint.rsplit("//").next().unwrap_or(endpoint).to_string();
        KnownMember {
            name,
            id: 0,
            endpoint: endpoint.to_string(),
            peer_urls: Vec::new(),
            is_learner: false,
        }
    }
}

/// Reconnect backoff of one endpoint.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    retry_at: Instant,
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Probes an etcd cluster round after round, remembering members and connections.
pub struct EtcdProber {
    config: EtcdSourceConfig,
    tls: Option<TlsOptions>,
    known: Vec<KnownMember>,
    clients: HashMap<String, Client>,
    backoff: HashMap<String, (Backoff, String)>,
    /// The cluster the first member list came from. An endpoint that answers for
    /// another cluster (an address reused after a member died) is not trusted.
    cluster_id: Option<u64>,
}

impl EtcdProber {
    /// Fails only on local problems (unreadable certificate files, bad URLs).
    pub fn new(config: EtcdSourceConfig) -> Result<Self> {
        if config.endpoints.is_empty() {
            return Err(eyre!(
                "no etcd endpoints: set --etcd-endpoints or KHA_ETCD_ENDPOINTS"
            ));
        }
        for e in &config.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(eyre!(
                    "etcd endpoint {e:?} must start with http:// or https://"
                ));
            }
        }
        let tls = load_tls(&config.tls)?;
        if tls.is_none() && config.endpoints.iter().any(|e| e.starts_with("https://")) {
            return Err(eyre!(
                "etcd endpoints use https but no CA is given: set --etcd-cacert \
                 (kubeadm: /etc/kubernetes/pki/etcd/ca.crt) and --etcd-cert/--etcd-key"
            ));
        }
        let known = config
            .endpoints
            .iter()
            .map(|e| KnownMember::anonymous(e))
            .collect();
        Ok(EtcdProber {
            config,
            tls,
            known,
            clients: HashMap::new(),
            backoff: HashMap::new(),
            cluster_id: None,
        })
    }

    async fn client(&mut self, endpoint: &str) -> Result<Client, String> {
        if let Some(c) = self.clients.get(endpoint) {
            return Ok(c.clone());
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.config.timeout)
            .with_timeout(self.config.timeout)
            .with_keep_alive(Duration::from_secs(10), self.config.timeout);
        if endpoint.starts_with("https://")
            && let Some(tls) = &self.tls
        {
            options = options.with_tls(tls.clone());
        }
        // Connecting is lazy: this never touches the network.
        let client = Client::connect([endpoint], Some(options))
            .await
            .map_err(|e| describe(&e))?;
        self.clients.insert(endpoint.to_string(), client.clone());
        Ok(client)
    }

    /// One round: refresh the member list, then probe every member concurrently.
    pub async fn probe(&mut self) -> EtcdObservation {
        let member_list_error = self.refresh_members().await.err();
        let now = Instant::now();
        let timeout = self.config.timeout;
        let expected = self.cluster_id;
        let mut jobs = Vec::new();
        for member in self.known.clone() {
            let waiting = self
                .backoff
                .get(&member.endpoint)
                .filter(|(b, _)| b.retry_at > now)
                .cloned();
            let client = if waiting.is_some() {
                Err(String::new())
            } else {
                self.client(&member.endpoint).await
            };
            jobs.push(async move {
                let result = match (waiting, client) {
                    (Some((b, last)), _) => {
                        let wait = b.retry_at.saturating_duration_since(now).as_secs_f32();
                        Err(vec![last, format!("next attempt in {wait:.0}s")])
                    }
                    (None, Err(e)) => Err(vec![e]),
                    (None, Ok(client)) => {
                        Ok(probe_member(client, &member.endpoint, timeout, expected).await)
                    }
                };
                (member, result)
            });
        }
        let results = join_all(jobs).await;

        let mut members = Vec::with_capacity(results.len());
        let mut alarms: Vec<EtcdAlarm> = Vec::new();
        for (mut member, result) in results {
            match result {
                Ok(probe) => {
                    let reachable =
                        probe.status.is_some() || probe.health.is_some_and(|h| h.healthy);
                    self.note_result(&member.endpoint, reachable, probe.errors.first());
                    if member.id == 0
                        && let Some(id) = probe.member_id
                    {
                        member.id = id;
                        if let Some(k) = self
                            .known
                            .iter_mut()
                            .find(|k| k.endpoint == member.endpoint)
                        {
                            k.id = id;
                        }
                    }
                    for (id, alarm) in probe.alarms {
                        if !alarms.iter().any(|a| a.member_id == id && a.alarm == alarm) {
                            alarms.push(EtcdAlarm {
                                member_id: id,
                                member: format!("{id:x}"),
                                alarm,
                            });
                        }
                    }
                    members.push(MemberObservation {
                        name: member.name,
                        id: member.id,
                        endpoint: member.endpoint,
                        peer_urls: member.peer_urls,
                        is_learner: member.is_learner,
                        status: probe.status,
                        health: probe.health,
                        errors: probe.errors,
                    });
                }
                Err(errors) => members.push(MemberObservation {
                    name: member.name,
                    id: member.id,
                    endpoint: member.endpoint,
                    peer_urls: member.peer_urls,
                    is_learner: member.is_learner,
                    status: None,
                    health: None,
                    errors,
                }),
            }
        }
        for alarm in &mut alarms {
            if let Some(m) = members.iter().find(|m| m.id == alarm.member_id) {
                alarm.member = m.name.clone();
            }
        }
        EtcdObservation {
            observed_at: SystemTime::now(),
            members,
            alarms,
            member_list_error,
        }
    }

    fn note_result(&mut self, endpoint: &str, reachable: bool, error: Option<&String>) {
        if reachable {
            self.backoff.remove(endpoint);
            return;
        }
        let failures = self.backoff.get(endpoint).map_or(0, |(b, _)| b.failures) + 1;
        // The first failure retries on the next round; then 2s, 4s, capped at 5s.
        let delay = if failures <= 1 {
            Duration::ZERO
        } else {
            MAX_BACKOFF.min(Duration::from_secs(1 << (failures - 1).min(6)))
        };
        let error = error.cloned().unwrap_or_else(|| "no answer".into());
        self.backoff.insert(
            endpoint.to_string(),
            (
                Backoff {
                    failures,
                    retry_at: Instant::now() + delay,
                },
                error,
            ),
        );
        // Drop the cached channel so the next attempt dials afresh.
        self.clients.remove(endpoint);
    }

    /// Ask every known endpoint for the member list at once; the first answer wins.
    async fn refresh_members(&mut self) -> Result<(), String> {
        let mut endpoints: Vec<String> = self.known.iter().map(|k| k.endpoint.clone()).collect();
        for e in &self.config.endpoints {
            if !endpoints.contains(e) {
                endpoints.push(e.clone());
            }
        }
        let timeout = self.config.timeout;
        let expected = self.cluster_id;
        let mut attempts = Vec::new();
        for e in &endpoints {
            if let Ok(client) = self.client(e).await {
                attempts.push(Box::pin(async move {
                    let mut client = client;
                    match tokio::time::timeout(timeout, client.member_list()).await {
                        Ok(Ok(list)) => {
                            let id = list.header().map(|h| h.cluster_id());
                            match (expected, id) {
                                (Some(want), Some(got)) if want != got => {
                                    Err(format!("answers for another etcd cluster ({got:x})"))
                                }
                                _ => Ok(list),
                            }
                        }
                        Ok(Err(err)) => Err(describe(&err)),
                        Err(_) => Err(format!("no answer within {timeout:?}")),
                    }
                }));
            }
        }
        if attempts.is_empty() {
            return Err("no usable endpoint".into());
        }
        let list = match futures::future::select_ok(attempts).await {
            Ok((list, _)) => list,
            Err(last) => return Err(format!("member list unavailable: {last}")),
        };
        if self.cluster_id.is_none() {
            self.cluster_id = list.header().map(|h| h.cluster_id());
        }
        let mut known = Vec::new();
        for m in list.members() {
            let Some(endpoint) = m.client_urls().first() else {
                continue; // not started yet: it has no client URL to probe
            };
            let name = if m.name().is_empty() {
                format!("{:x}", m.id())
            } else {
                m.name().to_string()
            };
            known.push(KnownMember {
                name,
                id: m.id(),
                endpoint: endpoint.clone(),
                peer_urls: m.peer_urls().to_vec(),
                is_learner: m.is_learner(),
            });
        }
        if known.is_empty() {
            return Err("member list was empty".into());
        }
        known.sort_by(|a, b| a.name.cmp(&b.name));
        self.known = known;
        Ok(())
    }
}

/// What one member answered.
struct MemberProbe {
    member_id: Option<u64>,
    status: Option<MemberStatus>,
    health: Option<HealthProbe>,
    alarms: Vec<(u64, String)>,
    errors: Vec<String>,
}

async fn probe_member(
    client: Client,
    endpoint: &str,
    timeout: Duration,
    cluster: Option<u64>,
) -> MemberProbe {
    let mut errors = Vec::new();
    // A refused connection is reported at once and precisely; the gRPC channel would
    // only say "timed out" after the full deadline.
    if let Some(addr) = endpoint.split("//").nth(1).map(|a| a.trim_end_matches('/')) {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return MemberProbe {
                    member_id: None,
                    status: None,
                    health: None,
                    alarms: vec![],
                    errors: vec![format!("connect: {e}")],
                };
            }
            Err(_) => errors.push(format!("connect: no answer within {timeout:?}")),
        }
    }
    let (mut c1, mut c2, mut c3) = (client.clone(), client.clone(), client);
    let started = Instant::now();
    let (status, health, alarms) = tokio::join!(
        tokio::time::timeout(timeout, c1.status()),
        async {
            // What `etcdctl endpoint health` does: a linearizable read of "health".
            let r = tokio::time::timeout(timeout, c2.get("health", Some(GetOptions::new()))).await;
            (r, started.elapsed())
        },
        tokio::time::timeout(timeout, c3.alarm(AlarmAction::Get, AlarmType::None, None)),
    );
    let mut member_id = None;
    let status = match status {
        Ok(Ok(s))
            if cluster.is_some_and(|want| s.header().is_some_and(|h| h.cluster_id() != want)) =>
        {
            let got = s.header().map(|h| h.cluster_id()).unwrap_or_default();
            errors.push(format!(
                "status: answers for another etcd cluster ({got:x})"
            ));
            return MemberProbe {
                member_id: None,
                status: None,
                health: None,
                alarms: vec![],
                errors,
            };
        }
        Ok(Ok(s)) => {
            member_id = s.header().map(|h| h.member_id());
            errors.extend(s.errors().iter().map(|e| e.trim().to_string()));
            Some(MemberStatus {
                leader: s.leader(),
                raft_term: s.raft_term(),
                raft_index: s.raft_index(),
                raft_applied_index: s.raft_applied_index(),
                db_size_bytes: s.db_size(),
                db_size_in_use_bytes: s.raft_used_db_size(),
                version: s.version().to_string(),
            })
        }
        Ok(Err(e)) => {
            errors.push(format!("status: {}", rpc_error(&e, timeout)));
            None
        }
        Err(_) => {
            errors.push(format!("status: no answer within {timeout:?}"));
            None
        }
    };
    let (health_result, latency) = health;
    let health = match health_result {
        Ok(Ok(_)) => Some(HealthProbe {
            healthy: true,
            latency,
        }),
        Ok(Err(e)) => {
            let text = rpc_error(&e, timeout);
            // Like etcdctl: permission denied still proves the member serves reads.
            let healthy = text.contains("permission denied");
            if !healthy {
                errors.push(format!("health: {text}"));
            }
            Some(HealthProbe { healthy, latency })
        }
        Err(_) => {
            errors.push(format!(
                "health: no linearizable read within {timeout:?} (no leader?)"
            ));
            Some(HealthProbe {
                healthy: false,
                latency,
            })
        }
    };
    let alarms = match alarms {
        Ok(Ok(a)) => a
            .alarms()
            .iter()
            .map(|m| (m.member_id(), alarm_name(m.alarm())))
            .collect(),
        _ => Vec::new(),
    };
    errors.dedup();
    MemberProbe {
        member_id,
        status,
        health,
        alarms,
        errors,
    }
}

fn alarm_name(alarm: AlarmType) -> String {
    match alarm {
        AlarmType::None => "NONE".into(),
        AlarmType::Nospace => "NOSPACE".into(),
        AlarmType::Corrupt => "CORRUPT".into(),
    }
}

/// Like [`describe`], but tonic's own deadline says what it means.
fn rpc_error(e: &etcd_client::Error, timeout: Duration) -> String {
    let text = describe(e);
    if text.contains("Timeout expired") {
        format!("no answer within {timeout:?}")
    } else {
        text
    }
}

/// A short, human error: the gRPC message rather than tonic's debug dump.
pub(crate) fn describe(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) if !s.message().is_empty() => s.message().to_string(),
        other => other.to_string(),
    }
}

pub(crate) fn load_tls(files: &EtcdTlsFiles) -> Result<Option<TlsOptions>> {
    let read = |what: &str, path: &PathBuf| {
        std::fs::read(path).wrap_err_with(|| format!("cannot read etcd {what} {}", path.display()))
    };
    let mut tls = match &files.cacert {
        Some(ca) => {
            TlsOptions::new().ca_certificate(Certificate::from_pem(read("CA certificate", ca)?))
        }
        None if files.cert.is_none() && files.key.is_none() => return Ok(None),
        None => return Err(eyre!("--etcd-cert/--etcd-key need --etcd-cacert too")),
    };
    match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read("client certificate", cert)?,
                read("client key", key)?,
            ));
        }
        (None, None) => {}
        _ => return Err(eyre!("give both --etcd-cert and --etcd-key, or neither")),
    }
    Ok(Some(tls))
}

/// The source task: probe, send, wait, forever (until the receiver goes away).
pub async fn run(mut prober: EtcdProber, interval: Duration, tx: mpsc::Sender<Msg>) {
    loop {
        let started = Instant::now();
        let observation = prober.probe().await;
        if tx.send(Msg::Etcd(observation)).await.is_err() {
            return;
        }
        tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::etcd_sim::SimEtcdCluster;

    #[tokio::test(flavor = "multi_thread")]
    async fn an_endpoint_of_another_cluster_is_not_trusted() {
        let cluster = SimEtcdCluster::start(3).await.expect("sim cluster");
        let mut prober =
            EtcdProber::new(EtcdSourceConfig::new(cluster.client_urls())).expect("prober");
        let first = prober.probe().await;
        assert_eq!(first.quorum().healthy, 3);
        assert!(
            prober.cluster_id.is_some(),
            "the first member list pins the cluster"
        );

        // As if every address now belonged to a different etcd cluster.
        prober.cluster_id = prober.cluster_id.map(|id| id ^ 1);
        let obs = prober.probe().await;
        let error = obs.member_list_error.clone().unwrap_or_default();
        assert!(error.contains("another etcd cluster"), "{error}");
        assert_eq!(obs.quorum().healthy, 0, "{obs:#?}");
        for m in &obs.members {
            assert!(
                m.errors.iter().any(|e| e.contains("another etcd cluster")),
                "{m:?}"
            );
        }
        cluster.shutdown().await;
    }
}
