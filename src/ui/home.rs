//! The cockpit: a banner of the worst findings over one tile per pane.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::table_pane::Freshness;
use super::{control_plane, gpu, health_style, short_age};
use crate::config::theme::Theme;
use crate::model::finding::Health;
use crate::model::kube::Availability;
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
            let text = if self.state.etcd.last.is_some()
                || self.state.lb.last.is_some()
                || self.state.kube.nodes.has_data()
                || self.state.kpis.last.is_some()
            {
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
            PaneId::ControlPlane if self.state.kube.configured => self.control_plane_tile(),
            PaneId::GpuNodes if self.state.kube.configured => self.gpu_tile(),
            PaneId::Kpis if self.state.kpis.configured => self.kpi_tile(),
            PaneId::Metrics if self.state.metrics.configured => {
                super::thanos::tile(self.state, self.theme)
            }
            PaneId::Ceph | PaneId::Velero | PaneId::Rollouts if self.state.kube.configured => {
                self.feeds_tile(pane)
            }
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

    fn kpi_tile(&self) -> (Health, Vec<Line<'static>>) {
        let kpis = &self.state.kpis;
        let now = self.state.now;
        let Some(obs) = &kpis.last else {
            let text = match &kpis.url {
                None => "starting the lab…".to_string(),
                Some(_) => format!("querying… {} KPIs", kpis.defs.len()),
            };
            return (
                Health::Unknown,
                vec![
                    status_line(self.theme, Health::Unknown, ""),
                    Line::from(text),
                ],
            );
        };
        let health = kpis.health(now);
        let age = kpis.age(now).map(short_age).unwrap_or_default();
        let freshness = if kpis.is_stale(now) {
            format!("STALE {age}")
        } else {
            age
        };
        let mut lines = vec![status_line(self.theme, health, &freshness)];
        if let Some(e) = &obs.unreachable {
            lines.push(Line::from(Span::styled(
                format!("Prometheus unreachable: {e}"),
                self.theme.unknown,
            )));
            return (health, lines);
        }
        let rows = kpis.rows();
        let measured = rows.iter().filter(|r| r.value().is_some()).count();
        let met = rows.iter().filter(|r| r.health == Health::Ok).count();
        let met_health = if met == measured { Health::Ok } else { health };
        lines.push(Line::from(Span::styled(
            format!("{met}/{measured} KPIs on target"),
            health_style(self.theme, met_health),
        )));
        if let Some(worst) = rows
            .iter()
            .filter(|r| r.value().is_some())
            .max_by_key(|r| r.health)
            .filter(|r| r.health > Health::Ok)
        {
            let value = worst
                .value()
                .map(|v| crate::model::kpi::format_value(v, &worst.def.unit))
                .unwrap_or_default();
            lines.push(Line::from(Span::styled(
                format!("{} {value}", worst.def.title),
                health_style(self.theme, worst.health),
            )));
        }
        (health, lines)
    }

    /// Health and freshness, or why there is no data yet.
    fn kube_status(
        &self,
        health: Health,
        fresh: &Freshness,
    ) -> Result<Line<'static>, (Health, Vec<Line<'static>>)> {
        let kube = &self.state.kube;
        if kube.nodes.has_data() {
            let text = match fresh {
                Freshness::Live => "live".to_string(),
                other => other.text(),
            };
            return Ok(status_line(self.theme, health, &text));
        }
        let why = match &kube.nodes.availability {
            Availability::Forbidden { permission } => format!("forbidden: needs {permission}"),
            Availability::Down { error, .. } => error.clone(),
            _ if kube.target.is_none() => "starting…".to_string(),
            _ => "connecting…".to_string(),
        };
        Err((
            Health::Unknown,
            vec![
                status_line(self.theme, Health::Unknown, ""),
                Line::from(Span::styled(why, self.theme.muted)),
            ],
        ))
    }

    fn control_plane_tile(&self) -> (Health, Vec<Line<'static>>) {
        let health = self.state.control_plane_health();
        let first = match self.kube_status(health, &control_plane::freshness(self.state)) {
            Ok(line) => line,
            Err(nothing) => return nothing,
        };
        let view = self.state.control_plane();
        let ready = view.ready_zones();
        let zones = view.zones.len();
        let zone_health = match ready {
            0 => Health::Crit,
            n if n < zones => Health::Warn,
            _ => Health::Ok,
        };
        let nodes = view.rows.len();
        let ready_nodes = view.rows.iter().filter(|r| r.is_ready()).count();
        let mut lines = vec![
            first,
            Line::from(Span::styled(
                format!("{ready}/{zones} zones ready"),
                health_style(self.theme, zone_health),
            )),
            Line::from(format!("{ready_nodes}/{nodes} control-plane nodes")),
        ];
        if let Some(f) = view.findings.iter().find(|f| f.severity > Health::Ok) {
            lines.push(Line::from(Span::styled(
                f.message.clone(),
                health_style(self.theme, f.severity),
            )));
        }
        (health, lines)
    }

    fn gpu_tile(&self) -> (Health, Vec<Line<'static>>) {
        let health = self.state.gpu_health();
        let first = match self.kube_status(health, &gpu::freshness(self.state)) {
            Ok(line) => line,
            Err(nothing) => return nothing,
        };
        let view = self.state.gpu();
        let mut lines = vec![
            first,
            Line::from(format!(
                "{} nodes · {}/{} GPUs",
                view.rows.len(),
                view.requested(),
                view.allocatable()
            )),
        ];
        if !view.pending.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("{} GPU pod(s) pending", view.pending.len()),
                self.theme.warn,
            )));
        }
        if let Some(f) = view.findings.iter().find(|f| f.severity > Health::Ok) {
            lines.push(Line::from(Span::styled(
                f.message.clone(),
                health_style(self.theme, f.severity),
            )));
        }
        (health, lines)
    }

    /// Ceph, Velero, Rollouts: the pane's summary once listed, else its watch's state.
    fn feeds_tile(&self, pane: PaneId) -> (Health, Vec<Line<'static>>) {
        let kube = &self.state.kube;
        let now = self.state.now;
        let feeds = kube.pane_feeds(pane);
        let mut lines = Vec::new();
        let primary = feeds.iter().find(|(k, _)| k.is_primary());
        let mut health = Health::Unknown;
        if let Some((kind, feed)) = primary {
            let (style, text) = match &feed.availability {
                Availability::NotInstalled { .. } => {
                    let hint: Vec<&str> = kind.install_hint().split_whitespace().take(3).collect();
                    lines.push(Line::from(Span::styled("not installed", self.theme.muted)));
                    (self.theme.muted, hint.join(" "))
                }
                Availability::Forbidden { permission } => {
                    (self.theme.warn, format!("forbidden: needs {permission}"))
                }
                Availability::Connecting => {
                    (self.theme.muted, "waiting for the first list…".into())
                }
                Availability::Down { .. } => (
                    self.theme.warn,
                    feed.describe(now, kube.stale_after, "object"),
                ),
                Availability::Live => {
                    health = self.state.custom_health(pane);
                    lines.extend(super::custom::tile_lines(self.state, pane, self.theme));
                    (self.theme.text, String::new())
                }
            };
            if !text.is_empty() {
                lines.push(Line::from(Span::styled(text, style)));
            }
        }
        for (kind, feed) in feeds.iter().filter(|(k, _)| !k.is_primary()) {
            if let Availability::Forbidden { .. } | Availability::Down { .. } = feed.availability {
                lines.push(Line::from(Span::styled(
                    format!("{}: {}", kind.resource(), feed.availability.word()),
                    self.theme.warn,
                )));
            }
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
