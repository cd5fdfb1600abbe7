//! Pure domain state. Only [`update`] mutates [`State`]; sources send [`Msg`]s, the UI
//! reads `&State`. No I/O here.

pub mod action;
pub mod ceph;
pub mod etcd;
pub mod finding;
pub mod lb;
pub mod rollouts;
pub mod status;
pub mod velero;

use std::time::{Duration, SystemTime};

pub use action::Action;
use etcd::{EtcdObservation, EtcdSettings};
use finding::{Finding, Health};
use lb::{LbObservation, LbSettings};

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
            | PaneId::Rollouts => "set KUBECONFIG",
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
            PaneId::Etcd | PaneId::ApiServerLb => false,
            PaneId::Metrics | PaneId::Kpis => self.prometheus,
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
        match &self.last {
            None => Health::Unknown,
            // Stale "all good" is not good; stale bad news stays bad.
            Some(_) if self.is_stale(now) => finding::worst(&self.findings()).max(Health::Unknown),
            Some(_) => finding::worst(&self.findings()),
        }
    }

    /// Age of the latest observation.
    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.last
            .as_ref()
            .map(|o| now.duration_since(o.observed_at).unwrap_or_default())
    }

    pub fn is_stale(&self, now: SystemTime) -> bool {
        self.age(now).is_some_and(|a| a > self.stale_after)
    }
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
        match &self.last {
            None => Health::Unknown,
            Some(_) if self.is_stale(now) => finding::worst(&self.findings()).max(Health::Unknown),
            Some(_) => finding::worst(&self.findings()),
        }
    }

    pub fn age(&self, now: SystemTime) -> Option<Duration> {
        self.last
            .as_ref()
            .map(|o| now.duration_since(o.observed_at).unwrap_or_default())
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    Lab(LabCommand),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Etcd(EtcdObservation),
    Lb(LbObservation),
    /// The LB pane's targets became known later (the demo lab started after the first frame).
    LbTargets(LbTargets),
    /// The endpoints became known later (the demo lab started after the first frame).
    EtcdEndpoints(Vec<String>),
    /// Other sources became configured later (the demo lab serves all of them).
    OtherSources(OtherSources),
    Action(Action),
    /// The clock moved (ages and staleness are derived from `State::now`).
    Tick(SystemTime),
    /// Something the engineer should read (config problems, lab results).
    Notice(String),
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
    pub home_selected: usize,
    pub etcd: EtcdPaneState,
    pub lb: LbPaneState,
    pub other_sources: OtherSources,
    /// Messages for the engineer, newest last, with when they were raised.
    pub notices: Vec<Notice>,
    pub read_only: bool,
    /// Lab fault keys work (only in `kha demo`).
    pub lab_controls: bool,
}

const MAX_NOTICES: usize = 20;

impl State {
    pub fn new(cluster: impl Into<String>, etcd: EtcdPaneState, now: SystemTime) -> Self {
        State {
            cluster: cluster.into(),
            now,
            screen: Screen::Home,
            help_open: false,
            home_selected: 0,
            etcd,
            lb: LbPaneState::new(
                LbTargets::default(),
                LbSettings::default(),
                Duration::from_secs(10),
            ),
            other_sources: OtherSources::default(),
            notices: Vec::new(),
            read_only: false,
            lab_controls: false,
        }
    }

    /// All findings, worst first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut all = self.etcd.findings();
        all.extend(self.lb.findings());
        all.sort_by_key(|f| std::cmp::Reverse(f.severity));
        all
    }

    /// The cluster's health: etcd's, and the LB's once the LB pane is configured.
    pub fn overall(&self) -> Health {
        let etcd = self.etcd.health(self.now);
        if self.lb.configured {
            etcd.max(self.lb.health(self.now))
        } else {
            etcd
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
        Msg::Tick(now) => {
            state.now = now;
            Vec::new()
        }
        Msg::Notice(text) => {
            state.notice(text);
            Vec::new()
        }
        Msg::Action(action) => on_action(state, action),
    }
}

const GRID_COLUMNS: usize = 3;

fn on_action(state: &mut State, action: Action) -> Vec<Effect> {
    if state.help_open && !matches!(action, Action::Quit) {
        // Any key closes help; it never falls through to the pane behind it.
        state.help_open = false;
        return Vec::new();
    }
    let tiles = PaneId::ALL.len();
    match action {
        Action::Quit => return vec![Effect::Quit],
        Action::Help => state.help_open = true,
        Action::Back | Action::PaneHome => state.screen = Screen::Home,
        Action::PaneEtcd => state.screen = Screen::Pane(PaneId::Etcd),
        Action::PaneLb => state.screen = Screen::Pane(PaneId::ApiServerLb),
        Action::Open => {
            if state.screen == Screen::Home {
                open_pane(state, PaneId::ALL[state.home_selected]);
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
    if matches!(pane, PaneId::Etcd | PaneId::ApiServerLb) {
        state.screen = Screen::Pane(pane);
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
