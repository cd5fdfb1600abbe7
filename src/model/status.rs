//! The headless report of `kha status`: one JSON object, stable keys, one sibling key
//! per pane (`etcd`, `lb`; later panes add theirs in the same form).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::PaneId;
pub use super::ceph::CephReport;
use super::etcd::{EtcdObservation, EtcdSettings, QuorumState};
use super::finding::{Finding, Health, worst};
use super::kube::KubeState;
use super::lb::{HealthCheck, LbKind, LbObservation, LbSettings, LbState};
pub use super::rollouts::RolloutsReport;
pub use super::status_kpi::KpiReport;
pub use super::status_kube::{ControlPlaneReport, GpuReport, KubeReport};
pub use super::status_thanos::{AlertsReport, ThanosReport};
pub use super::velero::VeleroReport;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub overall: Health,
    pub cluster: String,
    pub etcd: EtcdReport,
    pub lb: LbReport,
    pub control_plane: ControlPlaneReport,
    pub gpu: GpuReport,
    pub ceph: CephReport,
    pub velero: VeleroReport,
    pub rollouts: RolloutsReport,
    pub kpis: KpiReport,
    pub kube: KubeReport,
    pub thanos: ThanosReport,
    pub alerts: AlertsReport,
    /// What the sources said while reading (printed to stderr, not in the JSON).
    #[serde(skip)]
    pub notices: Vec<String>,
}

/// The API-server LB: one row per backend, the LB's view beside the direct probe.
#[derive(Debug, Serialize)]
pub struct LbReport {
    pub status: Health,
    /// Whether any backend or LB view is configured; an unconfigured LB does not count
    /// towards `overall`.
    pub configured: bool,
    pub lb_kind: Option<LbKind>,
    pub lb_source: Option<String>,
    pub lb_error: Option<String>,
    pub lb_view_age_secs: Option<u64>,
    pub serving: usize,
    pub backends: usize,
    pub rows: Vec<LbRowReport>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct LbRowReport {
    pub name: String,
    pub address: Option<String>,
    pub zone: Option<String>,
    pub serving: bool,
    pub lb_state: Option<LbState>,
    /// The LB's own words, e.g. `UP 1/3`.
    pub lb_status: Option<String>,
    pub lb_check: Option<String>,
    pub lb_check_passed: Option<bool>,
    pub lb_admin: Option<String>,
    pub lb_last_change_secs: Option<u64>,
    pub lb_sessions: Option<u64>,
    pub lb_weight: Option<u32>,
    pub readyz: Option<HealthCheck>,
    pub livez: Option<HealthCheck>,
    pub failing_checks: Vec<String>,
    pub cert_not_after_unix: Option<u64>,
    pub cert_days_left: Option<u64>,
}

impl LbReport {
    pub fn not_configured() -> Self {
        LbReport {
            status: Health::Unknown,
            configured: false,
            lb_kind: None,
            lb_source: None,
            lb_error: None,
            lb_view_age_secs: None,
            serving: 0,
            backends: 0,
            rows: Vec::new(),
            findings: vec![Finding {
                severity: Health::Unknown,
                pane: super::lb::PANE,
                message: "API-server LB not configured: set --apiserver-backends \
                          (KHA_APISERVER_BACKENDS) and/or --lb-stats (KHA_LB_STATS)"
                    .into(),
            }],
        }
    }

    /// Configured, but no observation (deadline passed, or the source could not start).
    pub fn failed(message: String) -> Self {
        LbReport {
            configured: true,
            findings: vec![Finding {
                severity: Health::Unknown,
                pane: super::lb::PANE,
                message,
            }],
            ..Self::not_configured()
        }
    }

    pub fn from_observation(obs: &LbObservation, settings: &LbSettings) -> Self {
        let findings = obs.findings(settings);
        let rows = obs.rows();
        let known = obs.lb.as_ref().is_some_and(|v| v.known());
        let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs());
        LbReport {
            status: worst(&findings),
            configured: true,
            lb_kind: obs.lb.as_ref().map(|v| v.kind),
            lb_source: obs.lb.as_ref().map(|v| v.source.clone()),
            lb_error: obs.lb.as_ref().and_then(|v| v.error.clone()),
            lb_view_age_secs: obs
                .lb
                .as_ref()
                .and_then(|v| v.age(obs.observed_at))
                .map(|a| a.as_secs()),
            serving: rows.iter().filter(|r| r.serving(known)).count(),
            backends: rows.len(),
            rows: rows
                .iter()
                .map(|r| LbRowReport {
                    name: r.name.clone(),
                    address: r.address.clone(),
                    zone: r.zone.clone(),
                    serving: r.serving(known),
                    lb_state: r.lb.as_ref().map(|s| s.status.state),
                    lb_status: r.lb.as_ref().map(|s| s.status.text.clone()),
                    lb_check: r.lb.as_ref().and_then(|s| s.check.clone()),
                    lb_check_passed: r.lb.as_ref().and_then(|s| s.check_passed),
                    lb_admin: r.lb.as_ref().and_then(|s| s.admin.clone()),
                    lb_last_change_secs: r.lb.as_ref().and_then(|s| s.last_change_secs),
                    lb_sessions: r.lb.as_ref().and_then(|s| s.sessions),
                    lb_weight: r.lb.as_ref().and_then(|s| s.weight),
                    readyz: r.readyz().cloned(),
                    livez: r.livez().cloned(),
                    failing_checks: r.failing_checks(),
                    cert_not_after_unix: r
                        .probe
                        .as_ref()
                        .and_then(|p| p.cert_not_after)
                        .and_then(unix),
                    cert_days_left: r.cert_left(obs.observed_at).map(|d| d.as_secs() / 86_400),
                })
                .collect(),
            findings,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EtcdReport {
    pub status: Health,
    pub leader: Option<String>,
    pub quorum: QuorumState,
    pub members: Vec<MemberReport>,
    pub alarms: Vec<AlarmReport>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct MemberReport {
    pub name: String,
    pub id: String,
    pub endpoint: String,
    pub healthy: bool,
    pub is_leader: bool,
    pub is_learner: bool,
    pub raft_term: Option<u64>,
    pub raft_index: Option<u64>,
    pub raft_applied_index: Option<u64>,
    pub db_size_bytes: Option<i64>,
    pub db_size_in_use_bytes: Option<i64>,
    pub version: Option<String>,
    pub latency_ms: Option<f64>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AlarmReport {
    pub member: String,
    pub alarm: String,
}

impl EtcdReport {
    /// The report when no etcd endpoint is configured.
    pub fn not_configured() -> Self {
        EtcdReport {
            status: Health::Unknown,
            leader: None,
            quorum: QuorumState::from_counts(0, 0),
            members: Vec::new(),
            alarms: Vec::new(),
            findings: vec![Finding {
                severity: Health::Unknown,
                pane: super::etcd::PANE,
                message: "etcd not configured: set --etcd-endpoints or KHA_ETCD_ENDPOINTS".into(),
            }],
        }
    }

    pub fn from_observation(obs: &EtcdObservation, settings: &EtcdSettings) -> Self {
        let findings = obs.findings(settings);
        let leader = obs.leader();
        let leader_id = leader.map(|m| m.id);
        EtcdReport {
            status: worst(&findings),
            leader: leader.map(|m| m.name.clone()),
            quorum: obs.quorum(),
            members: obs
                .members
                .iter()
                .map(|m| MemberReport {
                    name: m.name.clone(),
                    // Hex, as etcdctl prints it; JSON numbers lose precision above 2^53.
                    id: format!("{:x}", m.id),
                    endpoint: m.endpoint.clone(),
                    healthy: m.is_healthy(),
                    is_leader: Some(m.id) == leader_id,
                    is_learner: m.is_learner,
                    raft_term: m.status.as_ref().map(|s| s.raft_term),
                    raft_index: m.status.as_ref().map(|s| s.raft_index),
                    raft_applied_index: m.status.as_ref().map(|s| s.raft_applied_index),
                    db_size_bytes: m.status.as_ref().map(|s| s.db_size_bytes),
                    db_size_in_use_bytes: m.status.as_ref().map(|s| s.db_size_in_use_bytes),
                    version: m.status.as_ref().map(|s| s.version.clone()),
                    latency_ms: m
                        .health
                        .map(|h| (h.latency.as_secs_f64() * 1e4).round() / 10.0),
                    errors: m.errors.clone(),
                })
                .collect(),
            alarms: obs
                .alarms
                .iter()
                .map(|a| AlarmReport {
                    member: a.member.clone(),
                    alarm: a.alarm.clone(),
                })
                .collect(),
            findings,
        }
    }
}

impl StatusReport {
    pub fn new(
        cluster: String,
        etcd: EtcdReport,
        lb: LbReport,
        control_plane: ControlPlaneReport,
        gpu: GpuReport,
        kube: KubeReport,
    ) -> Self {
        let mut overall = etcd.status;
        if lb.configured {
            overall = overall.max(lb.status);
        }
        if kube.configured {
            overall = overall.max(control_plane.status).max(gpu.status);
        }
        StatusReport {
            overall,
            cluster,
            etcd,
            lb,
            control_plane,
            gpu,
            ceph: CephReport::from_view(&Default::default()),
            velero: VeleroReport::from_view(&Default::default()),
            rollouts: RolloutsReport::from_view(&Default::default()),
            kpis: KpiReport::not_configured(),
            kube,
            thanos: ThanosReport::not_configured(),
            alerts: AlertsReport::not_configured(),
            notices: Vec::new(),
        }
    }

    /// Adds the Ceph, Velero and Rollouts panes; a pane whose resource has not listed
    /// (not installed, forbidden, not configured) does not count towards `overall`.
    pub fn with_custom(mut self, kube: &KubeState, now: SystemTime) -> Self {
        use super::custom::{self, ceph_view, rollouts_view, velero_view};
        self.ceph = CephReport::from_view(&ceph_view(kube, now));
        self.velero = VeleroReport::from_view(&velero_view(kube, now));
        self.rollouts = RolloutsReport::from_view(&rollouts_view(kube, now));
        let present = |p| custom::present(kube, p);
        self.ceph.present &= present(PaneId::Ceph);
        self.velero.present &= present(PaneId::Velero);
        self.rollouts.present &= present(PaneId::Rollouts);
        for (on, status) in [
            (self.ceph.present, self.ceph.status),
            (self.velero.present, self.velero.status),
            (self.rollouts.present, self.rollouts.status),
        ] {
            if on {
                self.overall = self.overall.max(status);
            }
        }
        self
    }

    /// Adds the KPIs; they count towards `overall` only when Prometheus is configured.
    pub fn with_kpis(mut self, kpis: KpiReport) -> Self {
        if kpis.configured {
            self.overall = self.overall.max(kpis.status);
        }
        self.kpis = kpis;
        self
    }

    /// Adds the Thanos / metrics pane and the firing alerts; they count towards `overall`
    /// only when a Prometheus/Thanos URL is configured.
    pub fn with_metrics(mut self, thanos: ThanosReport, alerts: AlertsReport) -> Self {
        if thanos.configured {
            self.overall = self.overall.max(thanos.status);
        }
        self.thanos = thanos;
        self.alerts = alerts;
        self
    }

    /// A short human summary for `kha status` without `--json`.
    /// Every finding of the report, worst first.
    pub fn findings(&self) -> Vec<&Finding> {
        let mut all: Vec<&Finding> = [
            &self.etcd.findings,
            &self.lb.findings,
            &self.control_plane.findings,
            &self.gpu.findings,
            &self.ceph.findings,
            &self.velero.findings,
            &self.rollouts.findings,
            &self.kpis.findings,
            &self.thanos.findings,
        ]
        .into_iter()
        .flatten()
        .collect();
        all.sort_by_key(|f| std::cmp::Reverse(f.severity));
        all
    }

    pub fn human(&self) -> String {
        let mut out = format!(
            "kha status · cluster {} · overall {}\n",
            self.cluster,
            self.overall.label()
        );
        let e = &self.etcd;
        if e.members.is_empty() && e.status == Health::Unknown {
            out.push_str(
                "etcd      UNKNOWN  not configured (--etcd-endpoints / KHA_ETCD_ENDPOINTS)\n",
            );
        } else {
            let leader = e.leader.as_deref().unwrap_or("none");
            out.push_str(&format!(
                "etcd      {:<8} {} · leader {leader}\n",
                e.status.label(),
                e.quorum.summary()
            ));
            for m in &e.members {
                let state = if m.healthy { "healthy" } else { "UNHEALTHY" };
                let mark = if m.is_leader { "*" } else { " " };
                let why = m
                    .errors
                    .first()
                    .map(|e| format!("  ({e})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  {mark} {:<12} {:<28} {state}{why}\n",
                    m.name, m.endpoint
                ));
            }
        }
        for f in e.findings.iter().filter(|f| f.severity > Health::Ok) {
            out.push_str(&format!("  {:<7} {}\n", f.severity.label(), f.message));
        }
        out.push_str(&self.lb_human());
        out.push_str(&self.kube_human());
        out.push_str(&self.kpis.human());
        out.push_str(&self.thanos.human());
        out
    }

    fn kube_human(&self) -> String {
        if !self.kube.configured {
            return "kube      UNKNOWN  not configured (KUBECONFIG / --kubeconfig)\n".into();
        }
        let cp = &self.control_plane;
        let ready = cp.zones.iter().filter(|z| z.ready > 0).count();
        let mut out = format!(
            "control   {:<8} {ready}/{} zones with a ready control plane\n",
            cp.status.label(),
            cp.zones.len()
        );
        for f in cp.findings.iter().filter(|f| f.severity > Health::Ok) {
            out.push_str(&format!("  {:<7} {}\n", f.severity.label(), f.message));
        }
        let g = &self.gpu;
        out.push_str(&format!(
            "gpu       {:<8} {} GPU nodes · {}/{} GPUs requested · {} pending\n",
            g.status.label(),
            g.rows.len(),
            g.gpus_requested,
            g.gpus_allocatable,
            g.pending.len()
        ));
        for f in g.findings.iter().filter(|f| f.severity > Health::Ok) {
            out.push_str(&format!("  {:<7} {}\n", f.severity.label(), f.message));
        }
        for (name, present, status, summary, findings) in [
            (
                "ceph",
                self.ceph.present,
                self.ceph.status,
                &self.ceph.summary,
                &self.ceph.findings,
            ),
            (
                "velero",
                self.velero.present,
                self.velero.status,
                &self.velero.summary,
                &self.velero.findings,
            ),
            (
                "rollouts",
                self.rollouts.present,
                self.rollouts.status,
                &self.rollouts.summary,
                &self.rollouts.findings,
            ),
        ] {
            if !present {
                continue;
            }
            out.push_str(&format!("{name:<9} {:<8} {summary}\n", status.label()));
            for f in findings.iter().filter(|f| f.severity > Health::Ok) {
                out.push_str(&format!("  {:<7} {}\n", f.severity.label(), f.message));
            }
        }
        for feed in self.kube.feeds.iter().filter(|f| f.availability != "live") {
            out.push_str(&format!("  {:<40} {}\n", feed.resource, feed.message));
        }
        out
    }

    fn lb_human(&self) -> String {
        let lb = &self.lb;
        if !lb.configured {
            return "lb        UNKNOWN  not configured (--apiserver-backends / --lb-stats)\n"
                .into();
        }
        let view = match (&lb.lb_source, &lb.lb_error) {
            (None, _) => "no LB view configured".to_string(),
            (Some(src), None) => format!("LB view {src}"),
            (Some(src), Some(e)) => format!("LB view {src} FAILED: {e}"),
        };
        let mut out = format!(
            "lb        {:<8} {}/{} serving · {view}\n",
            lb.status.label(),
            lb.serving,
            lb.backends
        );
        for r in &lb.rows {
            let ready = match &r.readyz {
                Some(c) if c.passed() => "readyz ok".to_string(),
                Some(c) => format!("readyz FAILED ({})", c.why()),
                None => "not probed".to_string(),
            };
            out.push_str(&format!(
                "    {:<16} {:<22} LB {:<10} {ready}\n",
                r.name,
                r.address.as_deref().unwrap_or("-"),
                r.lb_status.as_deref().unwrap_or("-"),
            ));
        }
        for f in lb.findings.iter().filter(|f| f.severity > Health::Ok) {
            out.push_str(&format!("  {:<7} {}\n", f.severity.label(), f.message));
        }
        out
    }
}
