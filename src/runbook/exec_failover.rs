//! The live executor's side of the LB, node and zone runbooks: HAProxy runtime-API
//! commands and `show stat` checks with a direct `/readyz` probe, node drains through
//! the `policy/v1` Eviction API (PDB-aware, with a summary), argv with standard input
//! (writing a file over ssh without a shell) and the `nginx -T` check of an upstream.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, eyre};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::{LiveExecutor, StepOutput, ssh_argv};
use crate::model::lb::LbStatus;
use crate::runbook::exec_cr::Settled;
use crate::runbook::facts::{self, DrainFlags, PdbFacts, PodFacts};
use crate::runbook::node::DrainOptions;
use crate::runbook::{Operation, Verification, lb};
use crate::sources::lb::{BackendTarget, LbProber, LbSourceConfig, LbStatsEndpoint, haproxy};

/// What the API server said to one eviction.
enum Evicted {
    /// 200/201: the pod is being deleted.
    Yes,
    /// 404: already gone.
    Gone,
    /// 429: a PodDisruptionBudget allows no disruption now (why, naming it).
    Blocked(String),
    /// Anything else (500: several budgets select the pod; 403: RBAC).
    Failed(String),
}

/// The tally a drain reports.
#[derive(Default)]
struct DrainTally {
    evicted: Vec<String>,
    skipped: BTreeMap<&'static str, Vec<String>>,
    /// pod -> why (the blocking PDB).
    blocked: BTreeMap<String, String>,
    failed: BTreeMap<String, String>,
}

impl DrainTally {
    fn summary(&self, node: &str) -> String {
        let skipped: usize = self.skipped.values().map(Vec::len).sum();
        let kinds: Vec<String> = self
            .skipped
            .iter()
            .map(|(k, v)| format!("{} {k}", v.len()))
            .collect();
        let kinds = if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        };
        format!(
            "{node}: evicted {}, skipped {skipped}{kinds}, blocked {}, failed {}",
            self.evicted.len(),
            self.blocked.len(),
            self.failed.len()
        )
    }
}

impl LiveExecutor {
    pub(super) async fn kube_client(&self) -> Result<kube::Client> {
        let config = self
            .kube
            .as_ref()
            .ok_or_else(|| eyre!("no kubeconfig: set KUBECONFIG or --kubeconfig"))?;
        let source = config
            .kubeconfig
            .as_ref()
            .ok_or_else(|| eyre!("no kubeconfig: set KUBECONFIG or --kubeconfig"))?;
        // kube-rs would retry a 429 itself (up to 15 times, backing off to minutes):
        // the drain must see it to name the budget and keep to its own schedule.
        let conn =
            crate::sources::kube::client::connect_without_retry(source, config.context.as_deref())
                .await?;
        Ok(conn.client)
    }

    /// The operations of the LB, node and zone runbooks.
    pub(super) async fn execute_failover(&self, op: &Operation) -> Result<StepOutput> {
        match op {
            Operation::HaproxyCommand { endpoint, command } => {
                self.haproxy_command(endpoint, command).await
            }
            Operation::KubeDrainNode {
                node,
                grace_seconds,
                timeout_secs,
                retry_secs,
                force,
                delete_emptydir_data,
            } => {
                let opts = DrainOptions {
                    grace_seconds: *grace_seconds,
                    timeout_secs: *timeout_secs,
                    retry_secs: (*retry_secs).max(1),
                    force: *force,
                    delete_emptydir_data: *delete_emptydir_data,
                };
                self.drain_node(node, opts).await
            }
            Operation::ArgvWithInput { host, argv, input } => {
                self.run_argv_with_input(host.as_deref(), argv, input).await
            }
            other => Err(eyre!("not an LB/node operation: {}", other.describe())),
        }
    }

    /// The checks of the LB, node and zone runbooks.
    pub(super) async fn verify_failover(&self, check: &Verification) -> Result<String> {
        match check {
            Verification::HaproxyServerIs {
                endpoint,
                backend,
                server,
                state,
                readyz,
                require_ready,
            } => {
                self.verify_haproxy(
                    endpoint,
                    backend,
                    server,
                    state,
                    readyz.as_deref(),
                    *require_ready,
                )
                .await
            }
            Verification::NodeSchedulable { node, schedulable } => {
                let client = self.kube_client().await?;
                let n = Api::<Node>::all(client)
                    .get(node)
                    .await
                    .map_err(|e| eyre!("get node {node}: {e}"))?;
                let unschedulable = n.spec.and_then(|s| s.unschedulable).unwrap_or(false);
                if unschedulable != *schedulable {
                    Ok(format!(
                        "{node} is {}",
                        if unschedulable {
                            "unschedulable"
                        } else {
                            "schedulable"
                        }
                    ))
                } else {
                    Err(eyre!(
                        "{node} is still {}",
                        if unschedulable {
                            "unschedulable"
                        } else {
                            "schedulable"
                        }
                    ))
                }
            }
            Verification::NodeDrained { node } => {
                let client = self.kube_client().await?;
                let n = Api::<Node>::all(client.clone())
                    .get(node)
                    .await
                    .map_err(|e| eyre!("get node {node}: {e}"))?;
                if !n.spec.and_then(|s| s.unschedulable).unwrap_or(false) {
                    return Err(eyre!("{node} is schedulable again: cordon it first"));
                }
                let pods = facts::pods_on_node(&client, node).await?;
                // Whatever the flags were: a drain that ended well evicted every pod
                // but mirror and DaemonSet ones (it refuses rather than leave one).
                let left: Vec<String> = pods
                    .iter()
                    .filter(|p| p.disposition(DrainFlags::ALL).evicts())
                    .map(PodFacts::key)
                    .collect();
                if left.is_empty() {
                    Ok(format!(
                        "{node} unschedulable; no pod left but {} mirror/DaemonSet pod(s)",
                        pods.len()
                    ))
                } else {
                    Err(eyre!(
                        "{} pod(s) still on {node} besides mirror and DaemonSet pods: {}",
                        left.len(),
                        left.join(", ")
                    ))
                }
            }
            Verification::NginxUpstreamIs {
                host,
                argv,
                file,
                upstream,
                address,
                down,
            } => {
                let (program, out) = self
                    .run_to_end(host.as_deref(), argv, Duration::from_secs(30))
                    .await?;
                if !out.status.success() {
                    return Err(eyre!(
                        "{program} failed ({}): {}",
                        out.status,
                        super::why_it_failed(&out)
                    ));
                }
                let dump = String::from_utf8_lossy(&out.stdout);
                lb::check_dump(&dump, file, upstream, address, *down)
                    .map_err(|why| Settled(why).into())
            }
            other => Err(eyre!("not an LB/node check: {}", other.describe())),
        }
    }

    async fn haproxy_command(&self, endpoint: &str, command: &str) -> Result<StepOutput> {
        let parsed = LbStatsEndpoint::parse(endpoint).map_err(|e| eyre!(e))?;
        let answer = tokio::time::timeout(self.timeout, haproxy::command(&parsed, command))
            .await
            .map_err(|_| {
                eyre!(
                    "the HAProxy runtime API did not answer within {:?}",
                    self.timeout
                )
            })?
            .map_err(|e| eyre!("HAProxy runtime API {endpoint}: {e}"))?;
        let answer = answer.trim();
        // `set server` answers nothing on success and says why otherwise.
        if answer.is_empty() {
            Ok(StepOutput {
                summary: format!("HAProxy accepted `{command}`"),
                lines: Vec::new(),
            })
        } else {
            Err(eyre!("HAProxy refused `{command}`: {answer}"))
        }
    }

    async fn verify_haproxy(
        &self,
        endpoint: &str,
        backend: &str,
        server: &str,
        state: &str,
        readyz: Option<&str>,
        require_ready: bool,
    ) -> Result<String> {
        let parsed = LbStatsEndpoint::parse(endpoint).map_err(|e| eyre!(e))?;
        let servers = haproxy::read(&parsed, self.timeout)
            .await
            .map_err(|e| eyre!("show stat at {endpoint}: {e}"))?;
        let row = servers
            .iter()
            .find(|s| s.proxy == backend && s.name == server)
            .ok_or_else(|| eyre!("`show stat` has no server {backend}/{server}"))?;
        let want = LbStatus::parse(state).state;
        if row.status.state != want || row.status.transition.is_some() {
            return Err(eyre!(
                "`show stat` has {backend}/{server} {}, not {state}",
                row.status.text
            ));
        }
        let mut said = format!("`show stat`: {backend}/{server} {}", row.status.text);
        if let Some(url) = readyz {
            let ready = self.probe_readyz(server, url).await?;
            match (ready, require_ready) {
                (Ok(()), _) => said.push_str(&format!("; direct {url}/readyz: 200")),
                (Err(why), true) => {
                    return Err(eyre!("{said}, but the direct {url}/readyz fails: {why}"));
                }
                (Err(why), false) => said.push_str(&format!("; direct {url}/readyz fails: {why}")),
            }
        }
        Ok(said)
    }

    /// One direct `/readyz?verbose` probe: `Ok(Ok)` when it answers 200.
    async fn probe_readyz(&self, name: &str, url: &str) -> Result<Result<(), String>> {
        let mut config = LbSourceConfig::new(
            vec![BackendTarget {
                name: name.to_string(),
                url: url.to_string(),
                zone: None,
            }],
            None,
        );
        config.auth = self.lb_auth.clone();
        config.timeout = self.timeout;
        let mut prober = LbProber::new(config)?;
        let obs = prober.probe().await;
        let check = obs
            .backends
            .first()
            .and_then(|b| b.readyz.clone())
            .ok_or_else(|| eyre!("{url} was not probed"))?;
        Ok(if check.passed() {
            Ok(())
        } else {
            Err(check.why())
        })
    }

    async fn run_argv_with_input(
        &self,
        host: Option<&str>,
        argv: &[String],
        input: &str,
    ) -> Result<StepOutput> {
        let full = match host {
            None => argv.to_vec(),
            Some(h) => ssh_argv(&self.ssh, h, &self.ssh_control_dir, argv),
        };
        let (program, args) = full.split_first().ok_or_else(|| eyre!("empty command"))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .wrap_err_with(|| format!("cannot run {program}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .await
                .wrap_err_with(|| format!("cannot write to {program}"))?;
        }
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .map_err(|_| eyre!("{program} did not finish within 120 s"))?
            .wrap_err_with(|| format!("cannot run {program}"))?;
        let stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .take(50)
            .map(str::to_string)
            .collect();
        if out.status.success() {
            Ok(StepOutput {
                summary: format!("{program} exited 0 ({} bytes in)", input.len()),
                lines: stderr,
            })
        } else {
            Err(eyre!(
                "{program} failed ({}): {}",
                out.status,
                stderr.last().cloned().unwrap_or_default()
            ))
        }
    }

    /// Evicts every pod of `node` the drain's filters let go, retrying the ones a budget
    /// blocks, then waits for them to go; refuses, evicting nothing, when a pod needs a
    /// flag not given. Fails with the tally when anything is left at the timeout. Each
    /// thing it does is reported live ([`LiveExecutor::with_progress`]) as well as in
    /// the step's output.
    async fn drain_node(&self, node: &str, opts: DrainOptions) -> Result<StepOutput> {
        let timeout = Duration::from_secs(opts.timeout_secs);
        let retry = Duration::from_secs(opts.retry_secs.max(1));
        let started = Instant::now();
        let deadline = started + timeout;
        let client = self.kube_client().await?;
        let pods = facts::pods_on_node(&client, node).await?;
        // The pods may have changed since the plan: check again before evicting any.
        if let Some(why) = facts::refusal(&pods, opts.flags()) {
            self.report(format!("refused: {why}"));
            return Err(eyre!(
                "drain of {node} refused, nothing evicted: {why}. {node} stays cordoned"
            ));
        }
        let mut pdbs = facts::list_pdbs(&client).await.unwrap_or_default();
        let mut tally = DrainTally::default();
        let mut lines = Vec::new();
        let mut pending: Vec<PodFacts> = Vec::new();
        for p in pods {
            match p.disposition(opts.flags()) {
                d if d.evicts() => pending.push(p),
                other => {
                    self.say(&mut lines, format!("skip {} ({})", p.key(), other.label()));
                    tally
                        .skipped
                        .entry(other.label())
                        .or_default()
                        .push(p.key());
                }
            }
        }
        self.report(format!("{} pod(s) to evict from {node}", pending.len()));
        let mut evicted: Vec<PodFacts> = Vec::new();
        loop {
            let mut retry_later = Vec::new();
            for pod in pending {
                match evict(&client, &pod, opts.grace_seconds).await {
                    Evicted::Yes => {
                        self.say(&mut lines, format!("evicted {}", pod.key()));
                        tally.blocked.remove(&pod.key());
                        tally.evicted.push(pod.key());
                        evicted.push(pod);
                    }
                    Evicted::Gone => {
                        self.say(&mut lines, format!("{} already gone", pod.key()));
                        tally.blocked.remove(&pod.key());
                        tally.evicted.push(pod.key());
                    }
                    Evicted::Blocked(why) => {
                        let budget = budget_name(&why, &pod, &pdbs);
                        let why = name_the_budget(why, &pod, budget.as_deref());
                        let elapsed = started.elapsed().as_secs();
                        let blocker = match &budget {
                            Some(b) => format!("PodDisruptionBudget {}/{b}", pod.namespace),
                            None => "a PodDisruptionBudget".into(),
                        };
                        // Every refusal live; only a new reason in the output.
                        if Instant::now() + retry < deadline {
                            self.report(format!(
                                "{} blocked by {blocker}, retrying in {} s ({elapsed} s of {} s)",
                                pod.key(),
                                retry.as_secs(),
                                timeout.as_secs()
                            ));
                        } else {
                            self.report(format!(
                                "{} blocked by {blocker}, no time left to retry ({elapsed} s of {} s)",
                                pod.key(),
                                timeout.as_secs()
                            ));
                        }
                        if tally.blocked.get(&pod.key()) != Some(&why) {
                            lines.push(format!(
                                "{} blocked: {why}; retrying every {} s",
                                pod.key(),
                                retry.as_secs()
                            ));
                        }
                        tally.blocked.insert(pod.key(), why);
                        retry_later.push(pod);
                    }
                    Evicted::Failed(why) => {
                        self.say(
                            &mut lines,
                            format!("{} could not be evicted: {why}", pod.key()),
                        );
                        tally.failed.insert(pod.key(), why);
                    }
                }
            }
            pending = retry_later;
            if pending.is_empty() || Instant::now() + retry >= deadline {
                break;
            }
            tokio::time::sleep(retry).await;
            if let Ok(fresh) = facts::list_pdbs(&client).await {
                pdbs = fresh;
            }
        }
        let lingering = self.wait_for_gone(&client, evicted, deadline).await;
        let summary = tally.summary(node);
        if tally.blocked.is_empty() && tally.failed.is_empty() && lingering.is_empty() {
            return Ok(StepOutput {
                summary: format!("drained {summary}"),
                lines,
            });
        }
        let mut why = Vec::new();
        for (pod, reason) in &tally.blocked {
            why.push(format!("{pod} still blocked: {reason}"));
        }
        for (pod, reason) in &tally.failed {
            why.push(format!("{pod} failed: {reason}"));
        }
        if !lingering.is_empty() {
            why.push(format!(
                "evicted but still terminating: {}",
                lingering.join(", ")
            ));
        }
        Err(eyre!(
            "drain of {node} incomplete after {} s — {summary}. {}. The node stays cordoned; \
             retry once the budget allows a disruption (scale the workload up, or wait for its \
             pods to be Ready elsewhere)",
            timeout.as_secs(),
            why.join("; ")
        ))
    }

    /// A line for the step's output (and so the audit log), reported live too.
    fn say(&self, lines: &mut Vec<String>, line: String) {
        self.report(line.clone());
        lines.push(line);
    }

    /// Waits until the evicted pods are gone (or replaced under the same name), saying
    /// live which are still there; returns those left at `deadline`.
    async fn wait_for_gone(
        &self,
        client: &kube::Client,
        mut waiting: Vec<PodFacts>,
        deadline: Instant,
    ) -> Vec<String> {
        let mut said: Option<(usize, Instant)> = None;
        loop {
            let mut still = Vec::new();
            for pod in waiting {
                let api = Api::<Pod>::namespaced(client.clone(), &pod.namespace);
                let gone = match api.get_opt(&pod.name).await {
                    Ok(None) => true,
                    Ok(Some(p)) => p.metadata.uid != pod.uid,
                    Err(_) => false,
                };
                if !gone {
                    still.push(pod);
                }
            }
            waiting = still;
            if waiting.is_empty() {
                if said.is_some() {
                    self.report("every evicted pod is gone");
                }
                return Vec::new();
            }
            if Instant::now() >= deadline {
                return waiting.iter().map(PodFacts::key).collect();
            }
            // Say it when the count changes, else every 5 s.
            let due = said
                .is_none_or(|(n, at)| n != waiting.len() || at.elapsed() >= Duration::from_secs(5));
            if due {
                let keys: Vec<String> = waiting.iter().map(PodFacts::key).collect();
                self.report(format!(
                    "waiting for {} pod(s) to go: {}",
                    waiting.len(),
                    listed(&keys, 5)
                ));
                said = Some((waiting.len(), Instant::now()));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// `a, b, c` and `… and N more` past `max`.
fn listed(keys: &[String], max: usize) -> String {
    let mut out = keys
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > max {
        out.push_str(&format!(" and {} more", keys.len() - max));
    }
    out
}

/// The Eviction body kubectl sends (built by hand: kube-rs's `evict` names the options
/// `delete_options`, which the API server ignores).
pub fn eviction_body(namespace: &str, name: &str, grace: Option<i64>) -> serde_json::Value {
    let delete_options = match grace {
        Some(g) => json!({"gracePeriodSeconds": g}),
        None => json!({}),
    };
    json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
        "deleteOptions": delete_options,
    })
}

async fn evict(client: &kube::Client, pod: &PodFacts, grace: Option<i64>) -> Evicted {
    let path = format!(
        "/api/v1/namespaces/{}/pods/{}/eviction",
        pod.namespace, pod.name
    );
    let body = match serde_json::to_vec(&eviction_body(&pod.namespace, &pod.name, grace)) {
        Ok(b) => b,
        Err(e) => return Evicted::Failed(e.to_string()),
    };
    let request = match http::Request::post(&path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(body)
    {
        Ok(r) => r,
        Err(e) => return Evicted::Failed(e.to_string()),
    };
    match client.request_text(request).await {
        Ok(_) => Evicted::Yes,
        Err(kube::Error::Api(status)) if status.code == 404 => Evicted::Gone,
        Err(kube::Error::Api(status)) if status.code == 429 => {
            let causes: Vec<String> = status
                .details
                .iter()
                .flat_map(|d| d.causes.iter())
                .map(|c| c.message.clone())
                .filter(|m| !m.is_empty())
                .collect();
            Evicted::Blocked(if causes.is_empty() {
                status.message.clone()
            } else {
                causes.join("; ")
            })
        }
        Err(kube::Error::Api(status)) => {
            Evicted::Failed(format!("HTTP {}: {}", status.code, status.message))
        }
        Err(e) => Evicted::Failed(e.to_string()),
    }
}

/// The name of the budget that blocks: from the 429's causes (`The disruption budget
/// NAME needs …`), else the first budget that selects the pod.
fn budget_name(why: &str, pod: &PodFacts, pdbs: &[PdbFacts]) -> Option<String> {
    why.split("The disruption budget ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .or_else(|| pdbs.iter().find(|b| b.selects(pod)).map(|b| b.name.clone()))
}

/// "PodDisruptionBudget ns/name allows no disruption (429: …the API server's words…)".
fn name_the_budget(why: String, pod: &PodFacts, budget: Option<&str>) -> String {
    match budget {
        Some(n) => format!(
            "PodDisruptionBudget {}/{n} allows no disruption (429: {why})",
            pod.namespace
        ),
        None => format!("a PodDisruptionBudget allows no disruption (429: {why})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eviction_body_uses_delete_options_in_camel_case() {
        let body = eviction_body("shop", "web-1", Some(30));
        assert_eq!(body["deleteOptions"]["gracePeriodSeconds"], 30);
        assert!(body.get("delete_options").is_none());
        assert_eq!(body["metadata"]["namespace"], "shop");
        assert_eq!(eviction_body("a", "b", None)["deleteOptions"], json!({}));
    }
}
