//! Drawing. Every function here is pure: `&State` + `&Theme` (+ `&Keymap` for hints)
//! in, cells out. No I/O, no channels, no clocks (the time is `State::now`).

pub mod ceph;
pub mod control_plane;
pub mod custom;
pub mod etcd;
pub mod gpu;
pub mod help;
pub mod home;
pub mod kpi;
pub mod lb;
pub mod rollouts;
pub mod runbook;
pub mod table_pane;
pub mod velero;

// The Thanos / metrics pane and exporter metrics on other panes (issue 5).
pub mod exporter_line;
pub mod thanos;

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::config::keymap::Keymap;
use crate::config::theme::Theme;
use crate::model::finding::Health;
use crate::model::{Action, PaneId, Screen, State};

/// The whole screen.
pub fn view(frame: &mut Frame, state: &State, theme: &Theme, keymap: &Keymap) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(header_line(state, theme), header);
    match state.screen {
        Screen::Home => frame.render_widget(home::Cockpit { state, theme }, body),
        Screen::Pane(PaneId::Etcd) => frame.render_widget(etcd::EtcdPane { state, theme }, body),
        Screen::Pane(PaneId::ApiServerLb) => frame.render_widget(lb::LbPane { state, theme }, body),
        Screen::Pane(PaneId::ControlPlane) => {
            frame.render_widget(control_plane::ControlPlanePane { state, theme }, body)
        }
        Screen::Pane(PaneId::GpuNodes) => frame.render_widget(gpu::GpuPane { state, theme }, body),
        Screen::Pane(PaneId::Kpis) => frame.render_widget(kpi::KpiPane { state, theme }, body),
        Screen::Pane(pane @ (PaneId::Ceph | PaneId::Velero | PaneId::Rollouts)) => {
            frame.render_widget(custom::CustomPane { state, theme, pane }, body)
        }
        Screen::Pane(PaneId::Metrics) => {
            frame.render_widget(thanos::ThanosPane { state, theme }, body)
        }
    }
    frame.render_widget(footer_line(state, theme, keymap), footer);
    if let Some(screen) = &state.runbook {
        let area = frame.area();
        frame.render_widget(
            runbook::RunbookOverlay {
                state,
                screen,
                theme,
                copy_key: keymap.key_for(Action::Copy).map(str::to_string),
            },
            centered(
                area,
                area.width.saturating_sub(4).max(40),
                area.height.saturating_sub(2),
            ),
        );
    }
    if state.help_open {
        frame.render_widget(
            help::Help {
                keymap,
                theme,
                notices: &state.notices,
                scroll: state.help_scroll,
            },
            centered(frame.area(), 76, 26),
        );
    }
}

pub fn health_style(theme: &Theme, health: Health) -> Style {
    match health {
        Health::Ok => theme.ok,
        Health::Warn => theme.warn,
        Health::Crit => theme.crit,
        Health::Unknown => theme.unknown,
    }
}

/// A pane's frame: its title, health label and how fresh its data is (`none` when
/// there is none yet), then `extra`; the border in the health colour.
pub fn pane_frame<'a>(
    title: &str,
    health: Health,
    (age, stale, none): (Option<Duration>, bool, &str),
    extra: Vec<Span<'a>>,
    theme: &Theme,
) -> Block<'a> {
    let age = match age {
        Some(a) if stale => format!(" · STALE: updated {} ago ", short_age(a)),
        Some(a) => format!(" · updated {} ago ", short_age(a)),
        None => none.to_string(),
    };
    let mut spans = vec![
        Span::styled(format!(" {title} "), theme.title),
        Span::styled(format!(" {} ", health.label()), health_style(theme, health)),
        Span::styled(age, if stale { theme.warn } else { theme.muted }),
    ];
    spans.extend(extra);
    Block::default()
        .borders(Borders::ALL)
        .border_style(health_style(theme, health))
        .title(Line::from(spans))
}

/// "3s", "4m", "2h": compact ages for narrow terminals.
pub fn short_age(d: Duration) -> String {
    crate::model::short_duration(d)
}

fn header_line<'a>(state: &'a State, theme: &Theme) -> Paragraph<'a> {
    let overall = state.overall();
    let mut spans = vec![
        Span::styled(" kha ", theme.title),
        Span::styled(format!("cluster {} ", state.cluster), theme.accent),
        Span::styled(
            format!(" {} ", overall.label()),
            health_style(theme, overall),
        ),
    ];
    if state.read_only {
        spans.push(Span::styled(" read-only ", theme.warn));
    }
    if state.lab_controls {
        spans.push(Span::styled(" demo lab ", theme.muted));
    }
    // The fleet strip: the config's other clusters, worst first; the worst one's
    // finding when it has one (the line is cut at the terminal's edge).
    let fleet = state.fleet.rows(state.now);
    if !fleet.is_empty() {
        spans.push(Span::styled(" · fleet", theme.muted));
    }
    for (i, (name, health, worst)) in fleet.into_iter().enumerate() {
        spans.push(Span::styled(format!(" {name} "), theme.text));
        spans.push(Span::styled(health.label(), health_style(theme, health)));
        if i == 0
            && health >= crate::model::finding::Health::Warn
            && let Some(w) = worst
        {
            spans.push(Span::styled(format!(" ({w})"), theme.muted));
        }
    }
    Paragraph::new(Line::from(spans))
}

fn footer_line<'a>(state: &'a State, theme: &Theme, keymap: &Keymap) -> Paragraph<'a> {
    if let Some(text) = &state.command {
        return Paragraph::new(Line::from(vec![
            Span::styled(format!(":{text}_"), theme.accent),
            Span::styled(
                format!("  {}", crate::model::command::hint(text)),
                theme.muted,
            ),
        ]));
    }
    if let Some(notice) = state.current_notice() {
        return Paragraph::new(Line::from(Span::styled(
            format!(" {}", notice.text),
            theme.warn,
        )));
    }
    let mut hints = Vec::new();
    if state.screen == Screen::Pane(PaneId::Rollouts)
        && state
            .rollouts()
            .rollouts
            .iter()
            .any(|r| r.abort_advisory.is_some())
        && let Some(k) = keymap.key_for(Action::AbortAdvised)
    {
        hints.push(Span::styled(format!(" {k}"), theme.crit));
        hints.push(Span::styled(" abort canary ", theme.crit));
    }
    let mut hint = |action: Action, label: &str| {
        if let Some(k) = keymap.key_for(action) {
            hints.push(Span::styled(format!(" {k}"), theme.accent));
            hints.push(Span::styled(format!(" {label} "), theme.muted));
        }
    };
    hint(Action::Help, "help");
    hint(Action::Quit, "quit");
    hint(Action::Open, "open");
    hint(Action::PaneEtcd, "etcd");
    if let Screen::Pane(pane) = state.screen
        && !crate::model::runbook_ui::menu_for(pane).is_empty()
    {
        hint(Action::Runbooks, "runbooks");
    }
    hint(Action::PaneLb, "LB");
    if matches!(
        state.screen,
        Screen::Pane(
            PaneId::ControlPlane
                | PaneId::GpuNodes
                | PaneId::Ceph
                | PaneId::Velero
                | PaneId::Rollouts
        )
    ) {
        hint(Action::Filter, "filter");
        hint(Action::Sort, "sort");
    } else {
        hint(Action::PaneControlPlane, "ctl plane");
        hint(Action::PaneGpu, "GPU");
    }
    hint(Action::Back, "back");
    if state.lab_controls {
        hint(Action::LabStopMember, "stop member");
        hint(Action::LabStartMember, "start");
        hint(Action::LabToggleNospace, "NOSPACE");
    }
    Paragraph::new(Line::from(hints))
}

/// A rectangle of at most `w`x`h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
