//! API-server LB runbooks: take one kube-apiserver backend out of the load balancer
//! (drain: no new connections, existing ones finish; maint: out at once) and put it
//! back (ready). HAProxy through its runtime API (`set server B/S state …`), verified
//! with `show stat` and a direct `/readyz` probe; nginx by marking the upstream server
//! `down` in its config over ssh, `nginx -t`, then a reload, with the diff in the plan.
//! Never takes out the last backend that serves. Pure: planned from an
//! [`LbObservation`] or the config text read beforehand.

use std::time::Duration;

use super::{Operation, Precondition, Risk, Runbook, Step, Verification};
use crate::model::lb::{LbBackendRow, LbObservation};

#[path = "lb_nginx.rs"]
mod nginx_upstream;
pub use nginx_upstream::{
    NginxTarget, UpstreamServer, check_dump, dumped_files, line_diff, mark_down, nginx,
    upstream_servers,
};

/// What to do with a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendAction {
    /// New connections go elsewhere; established ones (watches) finish.
    Drain,
    /// Back in rotation.
    Ready,
    /// Out at once, health checks stopped (maintenance).
    Maint,
}

impl BackendAction {
    /// The runtime API's word (`set server B/S state <word>`).
    pub fn word(self) -> &'static str {
        match self {
            BackendAction::Drain => "drain",
            BackendAction::Ready => "ready",
            BackendAction::Maint => "maint",
        }
    }

    /// The `show stat` status that proves it.
    fn status(self) -> &'static str {
        match self {
            BackendAction::Drain => "DRAIN",
            BackendAction::Ready => "UP",
            BackendAction::Maint => "MAINT",
        }
    }

    fn takes_out(self) -> bool {
        !matches!(self, BackendAction::Ready)
    }
}

/// The row of `backend` (its LB server name, probe name or `host:port`).
fn find_row<'a>(rows: &'a [LbBackendRow], backend: &str) -> Option<&'a LbBackendRow> {
    rows.iter()
        .find(|r| r.name == backend)
        .or_else(|| {
            rows.iter()
                .find(|r| r.probe.as_ref().is_some_and(|p| p.name == backend))
        })
        .or_else(|| rows.iter().find(|r| r.address.as_deref() == Some(backend)))
}

/// "cp-a (UP, readyz 200)".
fn describe_row(r: &LbBackendRow) -> String {
    let lb =
        r.lb.as_ref()
            .map_or("not in the LB".to_string(), |s| s.status.text.clone());
    let ready = match r.readyz() {
        Some(c) if c.passed() => "readyz 200".to_string(),
        Some(c) => format!("readyz fails: {}", c.why()),
        None => "not probed".to_string(),
    };
    format!("{} ({lb}, {ready})", r.name)
}

/// The other backends that serve (LB sends traffic and /readyz passes).
fn others_serving(obs: &LbObservation, rows: &[LbBackendRow], name: &str) -> Precondition {
    let known = obs.lb.as_ref().is_some_and(|v| v.known());
    let others: Vec<&LbBackendRow> = rows.iter().filter(|r| r.name != name).collect();
    let serving: Vec<String> = others
        .iter()
        .filter(|r| r.serving(known) && r.readyz().is_some_and(|c| c.passed()))
        .map(|r| describe_row(r))
        .collect();
    let evidence = if serving.is_empty() {
        let seen: Vec<String> = others.iter().map(|r| describe_row(r)).collect();
        format!(
            "none: {name} is the last backend serving, taking it out takes the API down \
             (others: {})",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        )
    } else {
        format!("{} serving: {}", serving.len(), serving.join(", "))
    };
    Precondition {
        description: "at least one other backend is serving and ready".into(),
        met: !serving.is_empty(),
        evidence,
    }
}

/// `set server B/S state drain|ready|maint` on HAProxy's runtime API at `endpoint`.
pub fn haproxy(
    cluster: &str,
    obs: &LbObservation,
    endpoint: &str,
    backend: &str,
    action: BackendAction,
) -> Result<Runbook, String> {
    let rows = obs.rows();
    let row = find_row(&rows, backend).ok_or_else(|| {
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        format!(
            "no backend {backend:?} (backends: {})",
            if names.is_empty() {
                "none seen".to_string()
            } else {
                names.join(", ")
            }
        )
    })?;
    let server = row.lb.as_ref().ok_or_else(|| {
        format!(
            "{} is not among HAProxy's servers at {endpoint}: nothing to {}",
            row.name,
            action.word()
        )
    })?;
    let view = obs.lb.as_ref();
    let mut preconditions = vec![Precondition {
        description: "HAProxy's runtime API answered".into(),
        met: view.is_some_and(|v| v.known() && v.error.is_none()),
        evidence: match view {
            Some(v) => match &v.error {
                Some(e) => format!("{}: {e}", v.source),
                None => format!("{} read", v.source),
            },
            None => "no LB view configured (--lb-stats)".into(),
        },
    }];
    if action.takes_out() {
        preconditions.push(others_serving(obs, &rows, &row.name));
    } else {
        preconditions.push(match row.readyz() {
            Some(c) => Precondition {
                description: format!("{}'s own /readyz passes", row.name),
                met: c.passed(),
                evidence: if c.passed() {
                    "200".into()
                } else {
                    format!(
                        "fails: {} — fix the apiserver before sending it traffic",
                        c.why()
                    )
                },
            },
            None => Precondition {
                description: format!("{}'s own /readyz passes", row.name),
                met: true,
                evidence: "not probed directly (no --apiserver-backends); HAProxy's check decides"
                    .into(),
            },
        });
    }
    let target = format!("{}/{}", server.proxy, server.name);
    let probe = row.probe.as_ref().map(|p| p.url.clone());
    let (title, summary, explanation) = match action {
        BackendAction::Drain => (
            format!("Drain API-server backend {}", row.name),
            format!(
                "Takes {} out of the API-server LB gently, before maintenance of its node \
                 or when it misbehaves: HAProxy sends it no new connections and lets \
                 established ones (long watches) finish.",
                row.name
            ),
            format!(
                "HAProxy stops sending new connections to {target} (state DRAIN); its \
                 health checks keep running."
            ),
        ),
        BackendAction::Maint => (
            format!("Put API-server backend {} in maintenance", row.name),
            format!(
                "Takes {} out of the API-server LB at once and stops its health checks, \
                 for work on its node. Clients on it reconnect through the LB.",
                row.name
            ),
            format!("HAProxy puts {target} in MAINT: no traffic, no checks."),
        ),
        BackendAction::Ready => (
            format!("Enable API-server backend {}", row.name),
            format!(
                "Puts {} back in the API-server LB after a drain or maintenance.",
                row.name
            ),
            format!(
                "HAProxy puts {target} back in rotation (state READY); from MAINT it is UP \
                 once its health checks pass."
            ),
        ),
    };
    Ok(Runbook {
        id: format!("lb.{}", action.word()),
        title,
        cluster: cluster.into(),
        summary,
        preconditions,
        steps: vec![Step {
            title: format!("set server {target} state {}", action.word()),
            explanation,
            risk: Risk::Disruptive,
            operation: Operation::HaproxyCommand {
                endpoint: endpoint.into(),
                command: format!("set server {target} state {}", action.word()),
            },
            verification: Verification::HaproxyServerIs {
                endpoint: endpoint.into(),
                backend: server.proxy.clone(),
                server: server.name.clone(),
                state: action.status().into(),
                readyz: probe,
                require_ready: !action.takes_out(),
            },
            timeout: Duration::from_secs(if action.takes_out() { 10 } else { 30 }),
            on_failure: match action {
                BackendAction::Ready => format!(
                    "`show stat` says why {} is not UP (check status): fix the apiserver, \
                     then retry",
                    row.name
                ),
                _ => format!(
                    "check the runtime socket is at admin level (`stats socket … level \
                     admin`); to undo: kha lb ready {}",
                    row.name
                ),
            },
            skippable: false,
        }],
    })
}
