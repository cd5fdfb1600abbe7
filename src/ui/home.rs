//! The cockpit: a banner of the worst findings over one tile per pane.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::{health_style, short_age};
use crate::config::theme::Theme;
use crate::model::finding::Health;
use crate::model::{PaneId, State};

pub struct Cockpit<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
}

const COLUMNS: usize = 3;

impl Widget for Cockpit<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let findings = self.state.findings();
        let shown = findings
            .iter()
            .filter(|f| f.severity > Health::Ok)
            .take(3)
            .count();
        let banner_height = u16::try_from(shown.max(1)).unwrap_or(1);
        let [banner, grid] =
            Layout::vertical([Constraint::Length(banner_height), Constraint::Min(0)]).areas(area);

        let lines: Vec<Line> = if shown == 0 {
            let text = if self.state.etcd.last.is_some() || self.state.lb.last.is_some() {
                " No findings."
            } else {
                " Waiting for first data…"
            };
            vec![Line::from(Span::styled(text, self.theme.muted))]
        } else {
            findings
                .iter()
                .take(shown)
                .map(|f| {
                    Line::from(vec![
                        Span::styled(
                            format!(" {:<5}", f.severity.label()),
                            health_style(self.theme, f.severity),
                        ),
                        Span::styled(format!(" {}", f.message), self.theme.text),
                    ])
                })
                .collect()
        };
        Paragraph::new(lines).render(banner, buf);

        let rows = PaneId::ALL.len().div_ceil(COLUMNS);
        let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(grid);
        for (r, row_area) in row_areas.iter().enumerate() {
            let cells = Layout::horizontal(vec![Constraint::Ratio(1, COLUMNS as u32); COLUMNS])
                .split(*row_area);
            for (c, cell) in cells.iter().enumerate() {
                let i = r * COLUMNS + c;
                if let Some(&pane) = PaneId::ALL.get(i) {
                    self.tile(pane, i == self.state.home_selected, *cell, buf);
                }
            }
        }
    }
}

impl Cockpit<'_> {
    fn tile(&self, pane: PaneId, selected: bool, area: Rect, buf: &mut Buffer) {
        let (health, lines) = match pane {
            PaneId::Etcd => self.etcd_tile(),
            PaneId::ApiServerLb => self.lb_tile(),
            other => self.unconfigured_tile(other),
        };
        let border = if selected {
            self.theme.focus
        } else {
            health_style(self.theme, health)
        };
        let title_style = if selected {
            self.theme.focus
        } else {
            self.theme.title
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(border)
            .title(Span::styled(format!(" {} ", pane.title()), title_style));
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: true })
            .render(area, buf);
    }

    fn etcd_tile(&self) -> (Health, Vec<Line<'static>>) {
        let etcd = &self.state.etcd;
        let now = self.state.now;
        if !etcd.configured {
            return (Health::Unknown, self.lines_for_unconfigured(PaneId::Etcd));
        }
        let Some(obs) = &etcd.last else {
            let text = match etcd.endpoints.len() {
                0 => "starting the lab…".to_string(),
                n => format!("connecting… {n} endpoints"),
            };
            return (
                Health::Unknown,
                vec![
                    status_line(self.theme, Health::Unknown, ""),
                    Line::from(text),
                ],
            );
        };
        let health = etcd.health(now);
        let q = obs.quorum();
        let leader = obs.leader().map_or("none".to_string(), |m| m.name.clone());
        let age = etcd.age(now).map(short_age).unwrap_or_default();
        let freshness = if etcd.is_stale(now) {
            format!("STALE {age}")
        } else {
            age
        };
        let quorum = if q.has_quorum {
            format!("{}/{} · tolerates {}", q.healthy, q.members, q.tolerates)
        } else {
            format!("{}/{} · NO QUORUM", q.healthy, q.members)
        };
        let alarms: Vec<String> = obs.alarms.iter().map(|a| a.alarm.clone()).collect();
        let mut lines = vec![
            status_line(self.theme, health, &freshness),
            Line::from(Span::styled(quorum, health_style(self.theme, health))),
            Line::from(format!("leader {leader}")),
        ];
        if !alarms.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("alarm {}", alarms.join(",")),
                self.theme.crit,
            )));
        }
        (health, lines)
    }

    fn lb_tile(&self) -> (Health, Vec<Line<'static>>) {
        let lb = &self.state.lb;
        let now = self.state.now;
        if !lb.configured {
            return (
                Health::Unknown,
                self.lines_for_unconfigured(PaneId::ApiServerLb),
            );
        }
        let Some(obs) = &lb.last else {
            let text = if lb.targets.is_empty() {
                "starting the lab…".to_string()
            } else {
                format!("probing… {} backends", lb.targets.backends.len())
            };
            return (
                Health::Unknown,
                vec![
                    status_line(self.theme, Health::Unknown, ""),
                    Line::from(text),
                ],
            );
        };
        let health = lb.health(now);
        let age = lb.age(now).map(short_age).unwrap_or_default();
        let freshness = if lb.is_stale(now) {
            format!("STALE {age}")
        } else {
            age
        };
        let (serving, total) = obs.serving();
        let serving_health = match serving {
            0 | 1 => Health::Crit,
            n if n < total => Health::Warn,
            _ => Health::Ok,
        };
        let rows = obs.rows();
        let disagreements = rows
            .iter()
            .filter(|r| obs.row_health(r, &lb.settings) >= Health::Warn)
            .count();
        let view = match &obs.lb {
            None => Line::from(Span::styled("LB view not configured", self.theme.muted)),
            Some(v) if v.error.is_some() => Line::from(Span::styled(
                format!("{} view FAILED", v.kind.label()),
                self.theme.warn,
            )),
            Some(v) => {
                let up = v
                    .servers
                    .iter()
                    .filter(|s| s.status.takes_traffic())
                    .count();
                Line::from(format!("{}: {up}/{} UP", v.kind.label(), v.servers.len()))
            }
        };
        let mut lines = vec![
            status_line(self.theme, health, &freshness),
            Line::from(Span::styled(
                format!("{serving}/{total} serving"),
                health_style(self.theme, serving_health),
            )),
            view,
        ];
        if disagreements > 0 {
            lines.push(Line::from(Span::styled(
                format!("{disagreements} backend(s) need a look"),
                health_style(self.theme, health),
            )));
        }
        (health, lines)
    }

    fn lines_for_unconfigured(&self, pane: PaneId) -> Vec<Line<'static>> {
        vec![
            Line::from(Span::styled("not configured", self.theme.muted)),
            Line::from(Span::styled(
                pane.setup_hint().to_string(),
                self.theme.muted,
            )),
        ]
    }

    fn unconfigured_tile(&self, pane: PaneId) -> (Health, Vec<Line<'static>>) {
        if self.state.other_sources.configured(pane) {
            let lines = vec![
                Line::from(Span::styled("configured; this pane is", self.theme.muted)),
                Line::from(Span::styled("not in this build yet", self.theme.muted)),
            ];
            return (Health::Unknown, lines);
        }
        (Health::Unknown, self.lines_for_unconfigured(pane))
    }
}

fn status_line(theme: &Theme, health: Health, suffix: &str) -> Line<'static> {
    let mut spans = vec![Span::styled(health.label(), health_style(theme, health))];
    if !suffix.is_empty() {
        spans.push(Span::styled(format!("  {suffix}"), theme.muted));
    }
    Line::from(spans).style(Style::default())
}
