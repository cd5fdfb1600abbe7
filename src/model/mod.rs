//! Pure domain state. Only [`update`] mutates [`State`]; sources send [`Msg`]s, the UI
//! reads `&State`. No I/O here.

pub mod action;
pub mod canary;
pub mod catalogue;
pub mod ceph;
pub mod command;
pub mod control_plane;
pub mod copy;
pub mod custom;
pub mod etcd;
pub mod failover_menu;
pub mod finding;
pub mod fleet;
pub mod gpu;
pub mod kpi;
pub mod kube;
pub mod lb;
pub mod rollouts;
pub mod runbook_cr_ui;
pub mod runbook_ui;
pub mod status;
pub mod status_kpi;
pub mod status_kube;
pub mod table_view;
pub mod velero;

// The Thanos / metrics pane and the exporter metrics of other panes (issue 5).
pub mod exporters;
pub mod status_thanos;
pub mod thanos;

use std::time::{Duration, SystemTime};

pub use action::Action;
use etcd::{EtcdObservation, EtcdSettings};
use finding::{Finding, Health};
use kpi::{KpiObservation, KpiPaneState};
use kube::{KubeMsg, KubeState};
use lb::{LbObservation, LbSettings};
use table_view::{FilterKey, TableView};

/// "3s", "4m", "2h": compact durations for narrow terminals.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        _ => format!("{}h", s / 3600),
    }
}

/// The panes of the cockpit, in tile order (DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneId {
    Etcd,
    ApiServerLb,
    ControlPlane,
    GpuNodes,
    Ceph,
    Velero,
    Metrics,
    Kpis,
    Rollouts,
}

impl PaneId {
    pub const ALL: [PaneId; 9] = [
        PaneId::Etcd,
        PaneId::ApiServerLb,
        PaneId::ControlPlane,
        PaneId::GpuNodes,
        PaneId::Ceph,
        PaneId::Velero,
        PaneId::Metrics,
        PaneId::Kpis,
        PaneId::Rollouts,
    ];

    pub fn title(self) -> &'static str {
        match self {
            PaneId::Etcd => "etcd quorum",
            PaneId::ApiServerLb => "API-server LB",
            PaneId::ControlPlane => "Control plane",
            PaneId::GpuNodes => "GPU nodes",
            PaneId::Ceph => "Ceph",
            PaneId::Velero => "Velero",
            PaneId::Metrics => "Thanos / metrics",
            PaneId::Kpis => "KPIs",
            PaneId::Rollouts => "Rollouts",
        }
    }

    /// What must be configured for the pane's source, said plainly on its tile.
    pub fn setup_hint(self) -> &'static str {
        match self {
            PaneId::Etcd => "set --etcd-endpoints or KHA_ETCD_ENDPOINTS",
            PaneId::ApiServerLb => "set KHA_APISERVER_BACKENDS or KHA_LB_STATS",
            PaneId::ControlPlane
            | PaneId::GpuNodes
            | PaneId::Ceph
            | PaneId::Velero
            | PaneId::Rollouts => "set KUBECONFIG or --kubeconfig",
            PaneId::Metrics | PaneId::Kpis => "set KHA_PROMETHEUS_URL",
        }
    }
}

/// Which endpoints the user configured for sources this build does not read yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherSources {
    pub kubeconfig: bool,
    pub prometheus: bool,
}

impl OtherSources {
    pub fn configured(&self, pane: PaneId) -> bool {
        match pane {
            PaneId::Etcd | PaneId::ApiServerLb | PaneId::ControlPlane | PaneId::GpuNodes => false,
            PaneId::Metrics => self.prometheus,
            PaneId::Kpis => false,
            _ => self.kubeconfig,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Home,
    Pane(PaneId),
}

/// The etcd pane's state: the latest observation and what makes it stale.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdPaneState {
    pub configured: bool,
    pub endpoints: Vec<String>,
    pub last: Option<EtcdObservation>,
    pub settings: EtcdSettings,
    /// Data older than this is shown as stale.
    pub stale_after: Duration,
    pub selected: usize,
}

impl EtcdPaneState {
    pub fn new(endpoints: Vec<String>, settings: EtcdSettings, stale_after: Duration) -> Self {
        EtcdPaneState {
            configured: !endpoints.is_empty(),
            endpoints,
            last: None,
            settings,
            stale_after,
            selected: 0,
        }
    }

    pub fn findings(&self) -> Vec<Finding> {
        match &self.last {
            Some(obs) => obs.findings(&self.settings),
            None => Vec::new(),
        }
    }

    pub fn health(&self, now: SystemTime) -> Health {
        pane_health(self.last.is_some(), self.is_stale(now), &self.findings())
    }

    /// Age of the latest observation.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        age_of(self.last.as_ref().map(|o| o.observed_at), now)
    }

    pub fn is_stale(&self, now: SystemTime) -> bool {
        self.age(now).is_some_and(|a| a > self.stale_after)
    }
}

/// A pane's health from its findings: unknown without data; stale "all good" is not
/// good, stale bad news stays bad.
pub fn pane_health(has_data: bool, stale: bool, findings: &[Finding]) -> Health {
    if !has_data {
        return Health::Unknown;
    }
    let worst = finding::worst(findings);
    if stale {
        worst.max(Health::Unknown)
    } else {
        worst
    }
}

/// How old an observation made at `observed_at` is at `now`.
pub fn age_of(observed_at: Option<SystemTime>, now: SystemTime) -> Option<Duration> {
    observed_at.map(|t| now.duration_since(t).unwrap_or_default())
}

/// What the LB pane is set up to read, known before the first observation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbTargets {
    /// Backend URLs probed directly.
    pub backends: Vec<String>,
    /// Where the LB view is read (`unix:///...`, `nginx+http://...`), if anywhere.
    pub stats: Option<String>,
}

impl LbTargets {
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty() && self.stats.is_none()
    }
}

/// The API-server LB pane's state: the latest observation and what makes it stale.
#[derive(Debug, Clone, PartialEq)]
pub struct LbPaneState {
    pub configured: bool,
    pub targets: LbTargets,
    pub last: Option<LbObservation>,
    pub settings: LbSettings,
    pub stale_after: Duration,
    pub selected: usize,
}

impl LbPaneState {
    pub fn new(targets: LbTargets, settings: LbSettings, stale_after: Duration) -> Self {
        LbPaneState {
            configured: !targets.is_empty(),
            targets,
            last: None,
            settings,
            stale_after,
            selected: 0,
        }
    }

    pub fn findings(&self) -> Vec<Finding> {
        match &self.last {
            Some(obs) => obs.findings(&self.settings),
            None => Vec::new(),
        }
    }

    pub fn health(&self, now: SystemTime) -> Health {
        pane_health(self.last.is_some(), self.is_stale(now), &self.findings())
    }

    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        age_of(self.last.as_ref().map(|o| o.observed_at), now)
    }

    pub fn is_stale(&self, now: SystemTime) -> bool {
        self.age(now).is_some_and(|a| a > self.stale_after)
    }
}

/// Demo-lab controls (fault injection); executed by the lab, outside the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabCommand {
    StopMember,
    StartMember,
    ToggleNospace,
    ToggleZone,
    ToggleCanary,
    ToggleBackupStale,
    ToggleCeph,
    ToggleGpuHot,
}

/// Work `update` asks the run loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Quit,
    Lab(LabCommand),
    /// Run a confirmed runbook; `answer` is what the engineer typed to confirm it.
    StartRunbook {
        runbook: Box<crate::runbook::Runbook>,
        answer: String,
        /// The findings on screen when it was confirmed, for the audit log.
        seen: Vec<String>,
    },
    /// Stop the running runbook before its next step.
    CancelRunbook,
    /// The engineer's answer to a failed step.
    RunbookDecision(crate::runbook::engine::Decision),
    /// Put this text on the engineer's clipboard (OSC 52 to their terminal).
    Copy(String),
    /// Read what a plan needs and the cockpit does not watch (every pod, the
    /// HTTPRoutes); the plans come back as `Msg::RunbookOptions` with `ticket`.
    ReadForPlan {
        ticket: u64,
        request: Box<crate::runbook::tui_plan::PlanRequest>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Etcd(EtcdObservation),
    Lb(LbObservation),
    /// One round of the Prometheus source's KPI queries.
    Kpis(KpiObservation),
    /// The KPI pane's Prometheus became known later (the demo lab's metrics API).
    KpiSource(String),
    /// One round of the metrics-status source (Thanos stores, alerts, targets).
    Metrics(thanos::MetricsObservation),
    /// The Thanos / metrics pane's URL became known later (the demo lab).
    MetricsSource(String),
    /// One round of exporter series (DCGM, ceph-mgr, Velero) for the GPU/Ceph/Velero panes.
    Exporters(exporters::ExporterObservation),
    /// The LB pane's targets became known later (the demo lab started after the first frame).
    LbTargets(LbTargets),
    /// The endpoints became known later (the demo lab started after the first frame).
    EtcdEndpoints(Vec<String>),
    /// Other sources became configured later (the demo lab serves all of them).
    OtherSources(OtherSources),
    /// What the kube source saw, stamped with when (boxed: a full relist is large).
    Kube(SystemTime, Box<KubeMsg>),
    /// The kube source was set up later (the demo lab's kubeconfig).
    KubeConfigured,
    Action(Action),
    /// A key as the keymap names it, with its action if it has one: a filter being
    /// typed takes the key itself, otherwise the action runs.
    Key {
        key: String,
        action: Option<Action>,
    },
    /// The clock moved (ages and staleness are derived from `State::now`).
    Tick(SystemTime),
    /// Something the engineer should read (config problems, lab results).
    Notice(String),
    /// A line of the running runbook's output.
    RunbookProgress(String),
    /// The runbook ended: a summary, or why it stopped.
    RunbookFinished(Result<String, String>),
    /// The runbooks planned from a `ReadForPlan`'s read, or why the read failed.
    RunbookOptions {
        ticket: u64,
        result: Result<Vec<crate::runbook::tui_plan::PlanOption>, String>,
    },
    /// One read of another configured cluster, for the fleet strip.
    Fleet(fleet::FleetEntry),
    /// A step failed: the run waits for retry, skip (when safe) or abort.
    RunbookAsk {
        step: usize,
        error: String,
        skippable: bool,
    },
    /// One round of the canary error-rate query (the abort advisory).
    Canary(canary::CanaryObservation),
}

/// A message for the engineer (config problems, lab results, hints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub at: SystemTime,
    pub text: String,
}

/// How long a notice stays in the footer (the help screen keeps listing it).
pub const NOTICE_SHOWN_FOR: Duration = Duration::from_secs(15);

impl State {
    /// The notice the footer shows now, if a recent one exists.
    pub fn current_notice(&self) -> Option<&Notice> {
        self.notices
            .last()
            .filter(|n| self.now.duration_since(n.at).unwrap_or_default() < NOTICE_SHOWN_FOR)
    }
}

/// The whole cockpit state.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub cluster: String,
    pub now: SystemTime,
    pub screen: Screen,
    pub help_open: bool,
    /// The `:` command line, while it is open: what has been typed.
    pub command: Option<String>,
    /// How far the help is scrolled (it is longer than 80x24 holds).
    pub help_scroll: u16,
    /// The runbook overlay (menu, preview, run), when open.
    pub runbook: Option<runbook_ui::RunbookScreen>,
    /// The last read started for a plan (answers to older ones are dropped).
    pub runbook_ticket: u64,
    /// Where snapshots taken from the cockpit go.
    pub snapshot_dir: std::path::PathBuf,
    pub home_selected: usize,
    pub etcd: EtcdPaneState,
    pub lb: LbPaneState,
    pub kpis: KpiPaneState,
    pub metrics: thanos::MetricsPaneState,
    pub exporters: exporters::ExporterState,
    pub kube: KubeState,
    /// The config's other clusters, read in the background (the header's fleet strip).
    pub fleet: fleet::FleetState,
    pub control_plane_view: TableView,
    pub gpu_view: TableView,
    pub ceph_view: TableView,
    pub velero_view: TableView,
    pub rollouts_view: TableView,
    pub other_sources: OtherSources,
    /// Messages for the engineer, newest last, with when they were raised.
    pub notices: Vec<Notice>,
    pub read_only: bool,
    /// Lab fault keys work (only in `kha demo`).
    pub lab_controls: bool,
    /// The canary error rate behind the Rollouts pane's abort advisory.
    pub canary: canary::CanaryState,
}

const MAX_NOTICES: usize = 20;

impl State {
    pub fn new(cluster: impl Into<String>, etcd: EtcdPaneState, now: SystemTime) -> Self {
        State {
            cluster: cluster.into(),
            now,
            screen: Screen::Home,
            help_open: false,
            command: None,
            help_scroll: 0,
            runbook: None,
            runbook_ticket: 0,
            snapshot_dir: std::path::PathBuf::from("snapshots"),
            home_selected: 0,
            etcd,
            lb: LbPaneState::new(
                LbTargets::default(),
                LbSettings::default(),
                Duration::from_secs(10),
            ),
            kpis: KpiPaneState::new(None, Vec::new(), Duration::from_secs(60)),
            metrics: thanos::MetricsPaneState::new(
                None,
                thanos::RetentionSettings::default(),
                Duration::from_secs(60),
            ),
            exporters: exporters::ExporterState::default(),
            kube: KubeState::new(false, Duration::from_secs(15)),
            control_plane_view: TableView::default(),
            gpu_view: TableView::default(),
            ceph_view: TableView::default(),
            velero_view: TableView::default(),
            rollouts_view: TableView::default(),
            other_sources: OtherSources::default(),
            notices: Vec::new(),
            read_only: false,
            lab_controls: false,
            canary: canary::CanaryState::default(),
            fleet: fleet::FleetState::default(),
        }
    }

    /// All findings, worst first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut all = self.etcd.findings();
        all.extend(self.lb.findings());
        if self.kpis.configured {
            all.extend(self.kpis.findings());
        }
        if self.metrics.configured {
            all.extend(self.metrics.findings());
        }
        all.extend(self.metric_findings_without_pane());
        if self.kube.configured {
            all.extend(self.control_plane().findings);
            all.extend(self.gpu().findings);
            for pane in custom::PANES {
                all.extend(self.custom_findings(pane));
            }
        }
        all.sort_by_key(|f| std::cmp::Reverse(f.severity));
        all
    }

    /// The cluster's health: etcd's, and the LB's once the LB pane is configured.
    pub fn overall(&self) -> Health {
        let mut health = self.etcd.health(self.now);
        if self.lb.configured {
            health = health.max(self.lb.health(self.now));
        }
        if self.kpis.configured {
            health = health.max(self.kpis.health(self.now));
        }
        if self.metrics.configured {
            health = health.max(self.metrics.health(self.now));
        }
        health = health.max(finding::worst(&self.metric_findings_without_pane()));
        if self.kube.configured {
            health = health
                .max(self.control_plane_health())
                .max(self.gpu_health());
            for pane in custom::PANES {
                if self.custom_present(pane) {
                    health = health.max(self.custom_health(pane));
                }
            }
        }
        health
    }

    /// The control-plane pane's rows and findings (joined with the etcd pane).
    pub fn control_plane(&self) -> control_plane::ControlPlaneView {
        control_plane::derive(&self.kube, self.etcd.last.as_ref())
    }

    pub fn gpu(&self) -> gpu::GpuView {
        let mut view = gpu::derive(&self.kube);
        self.exporters.join_gpu(&mut view);
        view
    }

    /// Unknown without data; stale good news is unknown, stale bad news stays bad.
    fn kube_health(&self, findings: &[Finding], stale: bool) -> Health {
        // Without node data yet, whatever is known is at best unknown.
        pane_health(true, stale || !self.kube.nodes.has_data(), findings)
    }

    /// Data of the control-plane pane is stale: a watch it reads has been down too long.
    pub fn control_plane_stale(&self) -> bool {
        let k = &self.kube;
        k.nodes.is_stale(self.now, k.stale_after)
            || k.control_plane_pods.is_stale(self.now, k.stale_after)
    }

    pub fn gpu_stale(&self) -> bool {
        let k = &self.kube;
        k.nodes.is_stale(self.now, k.stale_after)
            || k.gpu_pods_down_for(self.now)
                .is_some_and(|d| d > k.stale_after)
    }

    pub fn control_plane_health(&self) -> Health {
        self.kube_health(&self.control_plane().findings, self.control_plane_stale())
    }

    pub fn gpu_health(&self) -> Health {
        self.kube_health(&self.gpu().findings, self.gpu_stale())
    }

    /// The table view of the pane on screen, if it is a table pane.
    fn table_view_mut(&mut self) -> Option<&mut TableView> {
        match self.screen {
            Screen::Pane(PaneId::ControlPlane) => Some(&mut self.control_plane_view),
            Screen::Pane(PaneId::GpuNodes) => Some(&mut self.gpu_view),
            Screen::Pane(PaneId::Ceph) => Some(&mut self.ceph_view),
            Screen::Pane(PaneId::Velero) => Some(&mut self.velero_view),
            Screen::Pane(PaneId::Rollouts) => Some(&mut self.rollouts_view),
            _ => None,
        }
    }

    /// Rows the table pane on screen shows now (after its filter).
    fn table_rows(&self) -> usize {
        match self.screen {
            Screen::Pane(PaneId::ControlPlane) => {
                control_plane::visible(&self.control_plane().rows, &self.control_plane_view).len()
            }
            Screen::Pane(PaneId::GpuNodes) => gpu::visible(&self.gpu().rows, &self.gpu_view).len(),
            Screen::Pane(p) => self.custom_rows(p),
            _ => 0,
        }
    }

    pub fn notice(&mut self, text: String) {
        self.notices.push(Notice { at: self.now, text });
        if self.notices.len() > MAX_NOTICES {
            self.notices.remove(0);
        }
    }
}

/// The only place state changes. Returns the effects the run loop must carry out.
pub fn update(state: &mut State, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Etcd(obs) => {
            let members = obs.members.len();
            state.etcd.last = Some(obs);
            state.etcd.selected = state.etcd.selected.min(members.saturating_sub(1));
            Vec::new()
        }
        Msg::Lb(obs) => {
            state.lb.last = Some(obs);
            let rows = state.lb.last.as_ref().map_or(0, |o| o.rows().len());
            state.lb.selected = state.lb.selected.min(rows.saturating_sub(1));
            Vec::new()
        }
        Msg::Kpis(obs) => {
            state.kpis.last = Some(obs);
            let rows = state.kpis.defs.len();
            state.kpis.selected = state.kpis.selected.min(rows.saturating_sub(1));
            Vec::new()
        }
        Msg::KpiSource(url) => {
            state.kpis.configured = true;
            state.kpis.url = Some(url);
            Vec::new()
        }
        Msg::Metrics(obs) => {
            state.metrics.last = Some(obs);
            Vec::new()
        }
        Msg::Exporters(obs) => {
            state.exporters.configured = true;
            state.exporters.last = Some(obs);
            Vec::new()
        }
        Msg::MetricsSource(url) => {
            state.metrics.configured = true;
            state.metrics.url = Some(url);
            Vec::new()
        }
        Msg::LbTargets(targets) => {
            state.lb.configured = !targets.is_empty();
            state.lb.targets = targets;
            Vec::new()
        }
        Msg::EtcdEndpoints(endpoints) => {
            state.etcd.configured = true;
            state.etcd.endpoints = endpoints;
            Vec::new()
        }
        Msg::OtherSources(sources) => {
            state.other_sources = sources;
            Vec::new()
        }
        Msg::Kube(at, msg) => {
            state.kube.apply(at, *msg);
            let rows = state.table_rows();
            if let Some(view) = state.table_view_mut() {
                view.clamp(rows);
            }
            Vec::new()
        }
        Msg::KubeConfigured => {
            state.kube.configured = true;
            Vec::new()
        }
        Msg::Key { key, .. } if state.command.is_some() && !state.help_open => {
            if key == "ctrl-c" {
                return vec![Effect::Quit];
            }
            command::on_key(state, &key)
        }
        Msg::Key { key, action } if state.runbook.is_some() && !state.help_open => {
            if key == "ctrl-c" {
                return vec![Effect::Quit];
            }
            if action == Some(Action::Copy) {
                return copy::copy(state);
            }
            runbook_ui::on_key(state, &key)
        }
        Msg::RunbookProgress(line) => {
            runbook_ui::progress(state, line);
            Vec::new()
        }
        Msg::RunbookFinished(result) => {
            runbook_ui::finished(state, result);
            Vec::new()
        }
        Msg::RunbookAsk {
            step,
            error,
            skippable,
        } => {
            runbook_ui::ask(state, step, error, skippable);
            Vec::new()
        }
        Msg::RunbookOptions { ticket, result } => {
            runbook_ui::options(state, ticket, result);
            Vec::new()
        }
        Msg::Key { key, action } => {
            let typing = state.table_view_mut().is_some_and(|v| v.editing_filter);
            if typing && !state.help_open {
                if let Some(view) = state.table_view_mut() {
                    view.type_filter(FilterKey::from_key(&key));
                }
                return Vec::new();
            }
            match action {
                Some(action) => on_action(state, action),
                None => Vec::new(),
            }
        }
        Msg::Tick(now) => {
            state.now = now;
            Vec::new()
        }
        Msg::Notice(text) => {
            state.notice(text);
            Vec::new()
        }
        Msg::Action(action) => on_action(state, action),
        Msg::Canary(obs) => {
            state.canary.last = Some(obs);
            Vec::new()
        }
        Msg::Fleet(entry) => {
            state.fleet.last.insert(entry.cluster.clone(), entry);
            Vec::new()
        }
    }
}

const GRID_COLUMNS: usize = 3;

fn on_action(state: &mut State, action: Action) -> Vec<Effect> {
    if state.help_open && !matches!(action, Action::Quit) {
        // The arrows and pages scroll; any other key closes help, and never falls
        // through to the pane behind it.
        let most = u16::try_from(Action::ALL.len()).unwrap_or(u16::MAX);
        match action {
            Action::Up => state.help_scroll = state.help_scroll.saturating_sub(1),
            Action::Down => state.help_scroll = (state.help_scroll + 1).min(most),
            Action::PageUp => state.help_scroll = state.help_scroll.saturating_sub(10),
            Action::PageDown => state.help_scroll = (state.help_scroll + 10).min(most),
            _ => {
                state.help_open = false;
                state.help_scroll = 0;
            }
        }
        return Vec::new();
    }
    if state.command.is_some() {
        let key = match action {
            Action::Back => "esc",
            Action::Open => "enter",
            _ => return Vec::new(),
        };
        return command::on_key(state, key);
    }
    if state.runbook.is_some() {
        let key = match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Back => "esc",
            Action::Up => "up",
            Action::Down => "down",
            Action::Open => "enter",
            Action::Copy => return copy::copy(state),
            _ => return Vec::new(),
        };
        return runbook_ui::on_key(state, key);
    }
    let tiles = PaneId::ALL.len();
    match action {
        Action::Quit => return vec![Effect::Quit],
        Action::Runbooks => runbook_ui::open_menu(state),
        Action::AbortAdvised => runbook_ui::open_advised_abort(state),
        Action::Copy => return copy::copy(state),
        Action::Command => command::open(state),
        // On the KPI pane `?` first shows the selected KPI's PromQL, then the help.
        Action::Help
            if state.screen == Screen::Pane(PaneId::Kpis)
                && !state.kpis.query_open
                && !state.kpis.defs.is_empty() =>
        {
            state.kpis.query_open = true
        }
        Action::Help => {
            state.kpis.query_open = false;
            state.help_open = true
        }
        Action::Back => {
            // An open popup or a filter goes first; then back to the cockpit.
            if state.kpis.query_open && state.screen == Screen::Pane(PaneId::Kpis) {
                state.kpis.query_open = false;
                return Vec::new();
            }
            match state.table_view_mut() {
                Some(v) if v.detail_open => v.detail_open = false,
                Some(v) if !v.filter.is_empty() => v.type_filter(FilterKey::Cancel),
                _ => state.screen = Screen::Home,
            }
        }
        Action::PaneHome => state.screen = Screen::Home,
        Action::PaneEtcd => state.screen = Screen::Pane(PaneId::Etcd),
        Action::PaneLb => state.screen = Screen::Pane(PaneId::ApiServerLb),
        Action::PaneControlPlane => open_pane(state, PaneId::ControlPlane),
        Action::PaneGpu => open_pane(state, PaneId::GpuNodes),
        Action::Open => {
            if state.screen == Screen::Home {
                open_pane(state, PaneId::ALL[state.home_selected]);
            } else if state.screen == Screen::Pane(PaneId::Kpis) {
                state.kpis.query_open = !state.kpis.query_open && !state.kpis.defs.is_empty();
            } else {
                let rows = state.table_rows();
                if let Some(v) = state.table_view_mut() {
                    v.detail_open = !v.detail_open && rows > 0;
                }
            }
        }
        Action::Filter => match state.table_view_mut() {
            Some(v) => v.start_filter(),
            None => state.notice("/ filters the table panes".into()),
        },
        Action::Sort => {
            let columns = match state.screen {
                Screen::Pane(PaneId::ControlPlane) => control_plane::SORTS.len(),
                Screen::Pane(PaneId::GpuNodes) => gpu::SORTS.len(),
                Screen::Pane(p @ (PaneId::Ceph | PaneId::Velero | PaneId::Rollouts)) => {
                    custom::sort_orders(p)
                }
                _ => 0,
            };
            if let Some(v) = state.table_view_mut() {
                v.next_sort(columns);
                v.selected = 0;
            }
        }
        Action::PageUp | Action::PageDown => {
            let rows = state.table_rows();
            let delta = if action == Action::PageUp { -10 } else { 10 };
            if let Some(v) = state.table_view_mut() {
                v.move_by(delta, rows);
            }
        }
        Action::NextPane | Action::PrevPane => {
            let forward = action == Action::NextPane;
            let current = match state.screen {
                Screen::Home => state.home_selected,
                Screen::Pane(p) => PaneId::ALL.iter().position(|&q| q == p).unwrap_or(0),
            };
            let next = if forward {
                (current + 1) % tiles
            } else {
                (current + tiles - 1) % tiles
            };
            state.home_selected = next;
            if matches!(state.screen, Screen::Pane(_)) {
                open_pane(state, PaneId::ALL[next]);
            }
        }
        Action::Up | Action::Down | Action::Left | Action::Right => move_selection(state, action),
        Action::LabStopMember
        | Action::LabStartMember
        | Action::LabToggleNospace
        | Action::LabToggleZone
        | Action::LabToggleCanary
        | Action::LabToggleBackupStale
        | Action::LabToggleCeph
        | Action::LabToggleGpuHot => {
            if !state.lab_controls {
                state.notice("lab keys work only in `kha demo`".into());
                return Vec::new();
            }
            let cmd = match action {
                Action::LabStopMember => LabCommand::StopMember,
                Action::LabStartMember => LabCommand::StartMember,
                Action::LabToggleZone => LabCommand::ToggleZone,
                Action::LabToggleCanary => LabCommand::ToggleCanary,
                Action::LabToggleBackupStale => LabCommand::ToggleBackupStale,
                Action::LabToggleCeph => LabCommand::ToggleCeph,
                Action::LabToggleGpuHot => LabCommand::ToggleGpuHot,
                _ => LabCommand::ToggleNospace,
            };
            return vec![Effect::Lab(cmd)];
        }
    }
    Vec::new()
}

fn open_pane(state: &mut State, pane: PaneId) {
    let kube_pane = matches!(
        pane,
        PaneId::ControlPlane | PaneId::GpuNodes | PaneId::Ceph | PaneId::Velero | PaneId::Rollouts
    );
    if matches!(pane, PaneId::Etcd | PaneId::ApiServerLb)
        || (kube_pane && state.kube.configured)
        || (pane == PaneId::Kpis && state.kpis.configured)
        || (pane == PaneId::Metrics && state.metrics.configured)
    {
        state.screen = Screen::Pane(pane);
    } else if kube_pane {
        state.notice(format!(
            "{}: not configured: {}",
            pane.title(),
            pane.setup_hint()
        ));
    } else {
        let why = if state.other_sources.configured(pane) {
            "its source is not in this build yet".to_string()
        } else {
            format!("not configured: {}", pane.setup_hint())
        };
        state.notice(format!("{}: {why}", pane.title()));
    }
}

fn move_selection(state: &mut State, action: Action) {
    match state.screen {
        Screen::Home => {
            let tiles = PaneId::ALL.len();
            let i = state.home_selected;
            state.home_selected = match action {
                Action::Up => i.checked_sub(GRID_COLUMNS).unwrap_or(i),
                Action::Down => (i + GRID_COLUMNS).min(tiles - 1),
                Action::Left => i.saturating_sub(1),
                _ => (i + 1).min(tiles - 1),
            };
        }
        Screen::Pane(PaneId::Etcd) => {
            let rows = state.etcd.last.as_ref().map_or(0, |o| o.members.len());
            let i = state.etcd.selected;
            state.etcd.selected = match action {
                Action::Up => i.saturating_sub(1),
                Action::Down => (i + 1).min(rows.saturating_sub(1)),
                _ => i,
            };
        }
        Screen::Pane(PaneId::ApiServerLb) => {
            let rows = state.lb.last.as_ref().map_or(0, |o| o.rows().len());
            let i = state.lb.selected;
            state.lb.selected = match action {
                Action::Up => i.saturating_sub(1),
                Action::Down => (i + 1).min(rows.saturating_sub(1)),
                _ => i,
            };
        }
        Screen::Pane(PaneId::Kpis) => {
            let rows = state.kpis.defs.len();
            let i = state.kpis.selected;
            state.kpis.selected = match action {
                Action::Up => i.saturating_sub(1),
                Action::Down => (i + 1).min(rows.saturating_sub(1)),
                _ => i,
            };
        }
        Screen::Pane(PaneId::ControlPlane | PaneId::GpuNodes) => {
            let rows = state.table_rows();
            if let Some(v) = state.table_view_mut() {
                match action {
                    Action::Up => v.move_by(-1, rows),
                    Action::Down => v.move_by(1, rows),
                    _ => {}
                }
            }
        }
        Screen::Pane(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State::new(
            "lab",
            EtcdPaneState::new(
                vec!["http://127.0.0.1:2379".into()],
                EtcdSettings::default(),
                Duration::from_secs(5),
            ),
            SystemTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn navigation_moves_on_the_grid_and_opens_etcd() {
        let mut s = state();
        update(&mut s, Msg::Action(Action::Right));
        update(&mut s, Msg::Action(Action::Down));
        assert_eq!(s.home_selected, 4);
        update(&mut s, Msg::Action(Action::Up));
        update(&mut s, Msg::Action(Action::Left));
        update(&mut s, Msg::Action(Action::Open));
        assert_eq!(s.screen, Screen::Pane(PaneId::Etcd));
        update(&mut s, Msg::Action(Action::Back));
        assert_eq!(s.screen, Screen::Home);
    }

    #[test]
    fn help_swallows_the_next_key() {
        let mut s = state();
        update(&mut s, Msg::Action(Action::Help));
        assert!(s.help_open);
        // The arrows scroll it and keep it open.
        update(&mut s, Msg::Action(Action::PageDown));
        update(&mut s, Msg::Action(Action::Up));
        assert_eq!((s.help_open, s.help_scroll), (true, 9));
        assert!(update(&mut s, Msg::Action(Action::LabStopMember)).is_empty());
        assert!(!s.help_open);
        assert_eq!(
            update(&mut s, Msg::Action(Action::Quit)),
            vec![Effect::Quit]
        );
    }

    #[test]
    fn lab_keys_only_in_demo() {
        let mut s = state();
        assert!(update(&mut s, Msg::Action(Action::LabStopMember)).is_empty());
        assert!(
            s.current_notice()
                .is_some_and(|n| n.text.contains("kha demo"))
        );
        let later = s.now + NOTICE_SHOWN_FOR;
        update(&mut s, Msg::Tick(later));
        assert!(s.current_notice().is_none(), "notices leave the footer");
        s.lab_controls = true;
        assert_eq!(
            update(&mut s, Msg::Action(Action::LabStopMember)),
            vec![Effect::Lab(LabCommand::StopMember)]
        );
    }

    #[test]
    fn stale_good_news_is_unknown_but_stale_bad_news_stays_bad() {
        let mut s = state();
        assert_eq!(s.etcd.health(s.now), Health::Unknown, "no data yet");
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(60);

        let healthy = EtcdObservation {
            observed_at: SystemTime::UNIX_EPOCH,
            members: (1..=3)
                .map(|i| etcd::tests::member(&format!("m{i}"), i, true, 1))
                .collect(),
            alarms: vec![],
            member_list_error: None,
        };
        update(&mut s, Msg::Etcd(healthy));
        assert_eq!(s.etcd.health(s.now), Health::Ok);
        update(&mut s, Msg::Tick(later));
        assert!(s.etcd.is_stale(s.now));
        assert_eq!(s.etcd.health(s.now), Health::Unknown);

        let lost = EtcdObservation {
            observed_at: SystemTime::UNIX_EPOCH,
            members: vec![],
            alarms: vec![],
            member_list_error: None,
        };
        update(&mut s, Msg::Etcd(lost));
        assert_eq!(s.etcd.health(s.now), Health::Crit);
    }
}
