//! API-server load-balancer domain state: what the LB believes about each kube-apiserver
//! backend, next to what a direct probe of that backend says, and the findings from the
//! two disagreeing. Pure: the LB source fills [`LbObservation`], the rest is derived.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::finding::{Finding, Health};

pub const PANE: &str = "apiserver-lb";

/// Which load balancer the LB view came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LbKind {
    Haproxy,
    Nginx,
}

impl LbKind {
    pub fn label(self) -> &'static str {
        match self {
            LbKind::Haproxy => "HAProxy",
            LbKind::Nginx => "nginx",
        }
    }
}

/// The LB's word for a server (HAProxy's `status` column; nginx's up/down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LbState {
    Up,
    Down,
    Drain,
    Maint,
    Nolb,
    NoCheck,
    Unknown,
}

/// A server's LB status, e.g. `UP`, `UP 1/3` (up, one failed check of three towards
/// DOWN), `DOWN 1/2` (down, one good check of two towards UP), `MAINT (via x/y)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LbStatus {
    pub state: LbState,
    /// `(done, needed)` checks of a transition in progress.
    pub transition: Option<(u32, u32)>,
    /// The LB's own text.
    pub text: String,
}

impl LbStatus {
    /// Reads HAProxy's status words; never fails (unknown words are `Unknown`).
    pub fn parse(text: &str) -> LbStatus {
        let text = text.trim();
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or("");
        let state = match first.to_ascii_uppercase().as_str() {
            "UP" | "OPEN" => LbState::Up,
            "DOWN" => LbState::Down,
            "DRAIN" => LbState::Drain,
            "NOLB" => LbState::Nolb,
            "NO" if text.eq_ignore_ascii_case("no check") => LbState::NoCheck,
            s if s.starts_with("MAINT") => LbState::Maint,
            _ => LbState::Unknown,
        };
        let transition = words.find_map(|w| {
            let (a, b) = w.split_once('/')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        });
        LbStatus {
            state,
            transition,
            text: text.to_string(),
        }
    }

    /// Whether the LB gives this server new connections (UP, even while failing checks).
    pub fn takes_traffic(&self) -> bool {
        matches!(self.state, LbState::Up | LbState::NoCheck)
    }

    pub fn health(&self) -> Health {
        match self.state {
            LbState::Up | LbState::NoCheck if self.transition.is_none() => Health::Ok,
            LbState::Up | LbState::NoCheck => Health::Warn,
            LbState::Drain | LbState::Maint | LbState::Nolb => Health::Warn,
            LbState::Down => Health::Crit,
            LbState::Unknown => Health::Unknown,
        }
    }
}

/// One server as the LB sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LbServer {
    /// HAProxy backend (`pxname`) or nginx upstream.
    pub proxy: String,
    pub name: String,
    /// `host:port`, when the LB says.
    pub address: Option<String>,
    pub status: LbStatus,
    /// The last health check as the LB reports it, e.g. `L7STS 500` or `http`.
    pub check: Option<String>,
    /// Whether that check passed, when the LB says.
    pub check_passed: Option<bool>,
    /// Seconds since the last status change.
    pub last_change_secs: Option<u64>,
    /// Current sessions.
    pub sessions: Option<u64>,
    pub weight: Option<u32>,
    /// Administrative state forced from the runtime API (`show servers state`).
    pub admin: Option<String>,
}

/// The LB's view: its servers as last read, and whether this round's read failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbView {
    pub kind: LbKind,
    /// Where it was read from (`unix:///run/haproxy/admin.sock`).
    pub source: String,
    /// When `servers` was read; `None` when no read ever succeeded.
    pub read_at: Option<SystemTime>,
    pub servers: Vec<LbServer>,
    /// Why this round's read failed.
    pub error: Option<String>,
}

/// One direct probe of `/readyz?verbose` or `/livez`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    /// HTTP status; `None` when no answer came.
    pub status: Option<u16>,
    /// Checks reported `[-]` in the verbose output.
    pub failing: Vec<String>,
    #[serde(serialize_with = "millis")]
    pub latency: Duration,
    pub error: Option<String>,
}

impl HealthCheck {
    pub fn passed(&self) -> bool {
        self.status == Some(200)
    }

    /// "etcd, informer-sync", "HTTP 500", or the connection error.
    pub fn why(&self) -> String {
        if !self.failing.is_empty() {
            return self.failing.join(", ");
        }
        match (&self.error, self.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => "no answer".into(),
        }
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e4).round() / 10.0)
}

/// A kube-apiserver probed directly (bypassing the LB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendProbe {
    pub name: String,
    pub url: String,
    /// `host:port` of the URL, to match the LB's server address.
    pub address: String,
    pub zone: Option<String>,
    /// `None` while the backend is skipped (backoff) and never probed.
    pub readyz: Option<HealthCheck>,
    pub livez: Option<HealthCheck>,
    /// `notAfter` of the serving certificate (https only).
    pub cert_not_after: Option<SystemTime>,
}

/// What the LB source saw in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbObservation {
    pub observed_at: SystemTime,
    pub backends: Vec<BackendProbe>,
    /// `None` when no LB view is configured.
    pub lb: Option<LbView>,
}

/// Tunables of the LB findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbSettings {
    pub cert_warn: Duration,
    pub cert_crit: Duration,
    /// An LB view older than this is stale.
    pub view_stale_after: Duration,
}

impl Default for LbSettings {
    fn default() -> Self {
        LbSettings {
            cert_warn: Duration::from_secs(14 * 86_400),
            cert_crit: Duration::from_secs(2 * 86_400),
            view_stale_after: Duration::from_secs(10),
        }
    }
}

/// One backend as the pane shows it: the LB's server and the direct probe, joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbBackendRow {
    pub name: String,
    pub address: Option<String>,
    pub zone: Option<String>,
    pub lb: Option<LbServer>,
    pub probe: Option<BackendProbe>,
}

impl LbBackendRow {
    pub fn readyz(&self) -> Option<&HealthCheck> {
        self.probe.as_ref().and_then(|p| p.readyz.as_ref())
    }

    pub fn livez(&self) -> Option<&HealthCheck> {
        self.probe.as_ref().and_then(|p| p.livez.as_ref())
    }

    /// Takes traffic from the LB (when it has a view) and is ready (when probed).
    pub fn serving(&self, lb_known: bool) -> bool {
        let lb_ok = match &self.lb {
            Some(s) => s.status.takes_traffic(),
            None => !lb_known,
        };
        let ready = match self.readyz() {
            Some(r) => r.passed(),
            None => self.probe.is_none() && self.lb.is_some(),
        };
        lb_ok && ready
    }

    /// Time left on the serving certificate, negative-free (0 once expired).
    pub fn cert_left(&self, now: SystemTime) -> Option<Duration> {
        let not_after = self.probe.as_ref()?.cert_not_after?;
        Some(not_after.duration_since(now).unwrap_or_default())
    }

    /// The failing checks of readyz and livez, without repeats.
    pub fn failing_checks(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for check in [self.readyz(), self.livez()].into_iter().flatten() {
            for f in &check.failing {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
        out
    }
}

impl LbView {
    /// Servers were read at least once.
    pub fn known(&self) -> bool {
        self.read_at.is_some()
    }

    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.read_at
            .map(|t| now.duration_since(t).unwrap_or_default())
    }
}

/// `https://10.0.0.1:6443/x` -> `10.0.0.1:6443` (default ports filled in).
pub fn url_address(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_string()
    } else {
        let port = if scheme == "http" { 80 } else { 443 };
        format!("{authority}:{port}")
    }
}

impl LbObservation {
    fn lb_known(&self) -> bool {
        self.lb.as_ref().is_some_and(LbView::known)
    }

    /// Probes joined with the LB's servers, by address, then by name. LB servers no probe
    /// matched are shown when they sit in the same LB backend as a matched one, or when
    /// no backend is probed at all.
    pub fn rows(&self) -> Vec<LbBackendRow> {
        let servers: &[LbServer] = self.lb.as_ref().map_or(&[], |v| &v.servers);
        let mut used = vec![false; servers.len()];
        let mut rows = Vec::new();
        for probe in &self.backends {
            let found = servers
                .iter()
                .enumerate()
                .find(|(i, s)| !used[*i] && s.address.as_deref() == Some(probe.address.as_str()))
                .or_else(|| {
                    servers
                        .iter()
                        .enumerate()
                        .find(|(i, s)| !used[*i] && s.name == probe.name)
                });
            if let Some((i, _)) = found {
                used[i] = true;
            }
            let lb = found.map(|(_, s)| s.clone());
            rows.push(LbBackendRow {
                name: lb.as_ref().map_or(probe.name.clone(), |s| s.name.clone()),
                address: Some(probe.address.clone()),
                zone: probe.zone.clone(),
                lb,
                probe: Some(probe.clone()),
            });
        }
        let matched_proxies: Vec<&str> = servers
            .iter()
            .zip(&used)
            .filter(|(_, u)| **u)
            .map(|(s, _)| s.proxy.as_str())
            .collect();
        for (server, _) in servers.iter().zip(&used).filter(|(_, u)| !**u) {
            if self.backends.is_empty() || matched_proxies.contains(&server.proxy.as_str()) {
                rows.push(LbBackendRow {
                    name: server.name.clone(),
                    address: server.address.clone(),
                    zone: None,
                    lb: Some(server.clone()),
                    probe: None,
                });
            }
        }
        rows
    }

    /// How many backends serve (LB sends traffic and /readyz passes), of how many.
    pub fn serving(&self) -> (usize, usize) {
        let rows = self.rows();
        let known = self.lb_known();
        let serving = rows.iter().filter(|r| r.serving(known)).count();
        (serving, rows.len())
    }

    /// Health of one row, for its colour.
    pub fn row_health(&self, row: &LbBackendRow, settings: &LbSettings) -> Health {
        let mut findings = Vec::new();
        row_findings(
            row,
            self.lb_known(),
            self.observed_at,
            settings,
            &mut findings,
        );
        super::finding::worst(&findings)
    }

    pub fn findings(&self, settings: &LbSettings) -> Vec<Finding> {
        let mut out = Vec::new();
        let rows = self.rows();
        let known = self.lb_known();
        if let Some(view) = &self.lb {
            match (view.age(self.observed_at), &view.error) {
                (None, Some(e)) => out.push(Finding::warn(
                    PANE,
                    format!("LB view unavailable ({}): {e}", view.source),
                )),
                (Some(age), error) if age > settings.view_stale_after => {
                    let why = error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    out.push(Finding::warn(
                        PANE,
                        format!("LB view stale: last read {}s ago{why}", age.as_secs()),
                    ));
                }
                _ => {}
            }
        }
        if rows.is_empty() {
            if self.lb.is_none() || known {
                out.push(Finding::crit(
                    PANE,
                    "no apiserver backend known: set --apiserver-backends, or check the LB config",
                ));
            }
            return out;
        }
        let (serving, total) = (rows.iter().filter(|r| r.serving(known)).count(), rows.len());
        // Without a usable LB view and without probes nothing can be counted.
        let countable = known || rows.iter().any(|r| r.readyz().is_some());
        if countable && serving == 0 {
            out.push(Finding::crit(
                PANE,
                format!("no apiserver backend serving (0/{total}): the API is down behind the LB"),
            ));
        } else if countable && serving < 2 {
            out.push(Finding::crit(
                PANE,
                format!(
                    "only {serving}/{total} apiserver backends serving: one more failure takes the API down"
                ),
            ));
        }
        for row in &rows {
            row_findings(row, known, self.observed_at, settings, &mut out);
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }
}

fn row_findings(
    row: &LbBackendRow,
    lb_known: bool,
    now: SystemTime,
    settings: &LbSettings,
    out: &mut Vec<Finding>,
) {
    let name = &row.name;
    match (&row.lb, row.readyz()) {
        (Some(server), Some(ready)) if server.status.takes_traffic() && !ready.passed() => {
            out.push(Finding::crit(
                PANE,
                format!(
                    "LB sends traffic to {name} ({}) but its /readyz fails: {}",
                    server.status.text,
                    ready.why()
                ),
            ));
        }
        (Some(server), Some(ready))
            if matches!(server.status.state, LbState::Down | LbState::Maint) && ready.passed() =>
        {
            out.push(Finding::warn(
                PANE,
                format!(
                    "LB has {name} {} but its /readyz is ok: capacity lost",
                    server.status.text
                ),
            ));
        }
        (lb, Some(ready)) if !ready.passed() => {
            let taken_out = if lb.is_some() {
                " (the LB has taken it out)"
            } else {
                ""
            };
            out.push(Finding::warn(
                PANE,
                format!("{name} /readyz fails: {}{taken_out}", ready.why()),
            ));
        }
        (None, Some(_)) if lb_known => {
            out.push(Finding::warn(
                PANE,
                format!("{name} is not among the LB's servers: it gets no traffic"),
            ));
        }
        _ => {}
    }
    if let (Some(ready), Some(live)) = (row.readyz(), row.livez())
        && ready.passed()
        && !live.passed()
    {
        out.push(Finding::warn(
            PANE,
            format!("{name} /livez fails: {}", live.why()),
        ));
    }
    if let Some(left) = row.cert_left(now) {
        let days = left.as_secs() / 86_400;
        if left.is_zero() {
            out.push(Finding::crit(
                PANE,
                format!("serving certificate of {name} has EXPIRED"),
            ));
        } else if left < settings.cert_crit {
            out.push(Finding::crit(
                PANE,
                format!(
                    "serving certificate of {name} expires in {}h: renew it now",
                    left.as_secs() / 3600
                ),
            ));
        } else if left < settings.cert_warn {
            out.push(Finding::warn(
                PANE,
                format!("serving certificate of {name} expires in {days} days"),
            ));
        }
    }
}

#[cfg(test)]
#[path = "lb_tests.rs"]
pub(crate) mod tests;
