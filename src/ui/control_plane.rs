//! The control plane & zones pane: per zone its control-plane node(s), their static pods
//! (ok / down), restarts and the etcd member each runs (from the etcd pane); a `/`
//! filter, sortable columns, a detail popup for the selected node, the findings.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::health_style;
use super::table_pane::{self, Freshness, fact};
use crate::config::theme::Theme;
use crate::model::State;
use crate::model::control_plane::{COMPONENTS, ControlPlaneRow, ControlPlaneView, SORTS, visible};
use crate::model::finding::Health;
use crate::model::kube::{Availability, Readiness};

pub struct ControlPlanePane<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
}

/// How fresh the control-plane data is (nodes and static pods together).
pub fn freshness(state: &State) -> Freshness {
    Freshness::of_watches(state, &[state.kube.control_plane_pods.down_for(state.now)])
}

/// "ok" / "down" / "-" for a static pod, with its health.
fn pod_word(row: &ControlPlaneRow, component: &str) -> (&'static str, Health) {
    match row.pod(component) {
        None => ("-", Health::Unknown),
        Some(p) if p.ready => ("ok", Health::Ok),
        Some(_) => ("down", Health::Crit),
    }
}

fn node_style(theme: &Theme, r: &ControlPlaneRow) -> Style {
    match r.node_ready {
        Some(Readiness::Ready) => theme.ok,
        Some(_) => theme.crit,
        None => theme.unknown,
    }
}

impl Widget for ControlPlanePane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let state = self.state;
        let theme = self.theme;
        let health = state.control_plane_health();
        let fresh = freshness(state);
        let block = table_pane::block("Control plane & zones", health, &fresh, theme);
        let inner = block.inner(area);
        block.render(area, buf);

        let kube = &state.kube;
        if !kube.nodes.has_data() {
            let text = match (&kube.nodes.availability, kube.configured) {
                (_, false) => "Kubernetes not configured: set KUBECONFIG or --kubeconfig".into(),
                (Availability::Forbidden { permission }, _) => {
                    format!("forbidden: kha needs {permission}")
                }
                (Availability::Down { error, .. }, _) => format!("cannot reach the API: {error}"),
                _ => format!(
                    "Listing nodes and control-plane pods{}…",
                    kube.target
                        .as_ref()
                        .map(|t| format!(" ({t})"))
                        .unwrap_or_default()
                ),
            };
            Paragraph::new(Span::styled(text, theme.muted))
                .wrap(Wrap { trim: true })
                .render(inner, buf);
            return;
        }

        let view = state.control_plane();
        let tv = &state.control_plane_view;
        let rows = visible(&view.rows, tv);
        let findings = table_pane::finding_lines(&view.findings, 4, theme);
        let [head, filter, table, found] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(u16::try_from(findings.len()).unwrap_or(4)),
        ])
        .areas(inner);
        Paragraph::new(head_line(&view, state, theme)).render(head, buf);
        Paragraph::new(table_pane::filter_line(
            tv,
            &SORTS,
            rows.len(),
            view.rows.len(),
            theme,
        ))
        .render(filter, buf);
        self.table(&rows, table, buf);
        Paragraph::new(findings).render(found, buf);
        if tv.detail_open
            && let Some(row) = rows.get(tv.selected)
        {
            let title = row.node.clone().unwrap_or_else(|| row.zone.clone());
            table_pane::popup(inner, buf, title, detail_lines(row, theme), theme);
        }
    }
}

fn head_line(view: &ControlPlaneView, state: &State, theme: &Theme) -> Line<'static> {
    let ready = view.ready_zones();
    let zones = view.zones.len();
    let zone_health = match ready {
        0 => Health::Crit,
        n if n < zones => Health::Warn,
        _ => Health::Ok,
    };
    let members: usize = view.zones.iter().map(|z| z.etcd_members).sum();
    let apis: usize = view.zones.iter().map(|z| z.apiservers).sum();
    let mut spans = vec![
        Span::styled(
            format!("{ready}/{zones} zones with a ready control plane"),
            health_style(theme, zone_health),
        ),
        Span::styled(
            format!(" · {apis} apiservers · {members} etcd pods"),
            theme.muted,
        ),
    ];
    if state.etcd.last.is_none() {
        spans.push(Span::styled(" · etcd pane not connected", theme.muted));
    }
    Line::from(spans)
}

impl ControlPlanePane<'_> {
    fn table(&self, rows: &[&ControlPlaneRow], area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let wide = area.width >= 120;
        let mut header = vec!["", "ZONE", "NODE", "STATE"];
        header.extend(COMPONENTS.iter().map(|(_, short)| *short));
        header.extend(["RST", "ETCD MEMBER"]);
        if wide {
            header.extend(["IP", "APISERVER ADVERTISE"]);
        }
        let selected = self.state.control_plane_view.selected;
        let table_rows = rows.iter().enumerate().map(|(i, r)| {
            let health = r.health();
            let mark = if health >= Health::Warn { "!" } else { "" };
            let mut cells = vec![
                Cell::from(Span::styled(mark, health_style(theme, health))),
                Cell::from(r.zone.clone()),
                Cell::from(r.node.clone().unwrap_or("-".into())).style(if i == selected {
                    theme.focus
                } else {
                    Style::default()
                }),
                Cell::from(Span::styled(
                    if r.cordoned && r.is_ready() {
                        "cordoned".to_string()
                    } else {
                        r.node_ready.map_or("-", Readiness::word).to_string()
                    },
                    node_style(theme, r),
                )),
            ];
            for (component, _) in COMPONENTS {
                let (word, h) = pod_word(r, component);
                cells.push(Cell::from(Span::styled(word, health_style(theme, h))));
            }
            cells.push(Cell::from(r.restarts.to_string()));
            cells.push(match &r.etcd {
                Some(j) => Cell::from(Span::styled(
                    format!("{}{}", j.member, if j.leader { "*" } else { "" }),
                    if j.healthy { theme.ok } else { theme.crit },
                )),
                None => Cell::from(Span::styled("-", theme.muted)),
            });
            if wide {
                cells.push(Cell::from(r.internal_ip.clone().unwrap_or("-".into())));
                cells.push(Cell::from(
                    r.apiserver_endpoint.clone().unwrap_or("-".into()),
                ));
            }
            Row::new(cells)
        });
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Length(11),
            Constraint::Length(14),
            Constraint::Length(8),
        ];
        widths.extend([Constraint::Length(5); 4]);
        widths.extend([Constraint::Length(3), Constraint::Min(8)]);
        if wide {
            widths.extend([Constraint::Length(13), Constraint::Length(22)]);
        }
        let table = Table::new(table_rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1);
        let mut selection = TableState::default().with_selected(Some(selected));
        StatefulWidget::render(table, area, buf, &mut selection);
    }
}

fn detail_lines(r: &ControlPlaneRow, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![
        fact("zone", r.zone.clone(), theme),
        Line::from(vec![
            Span::styled(format!("{:<14}", "node"), theme.muted),
            Span::styled(
                format!(
                    "{} {}{}",
                    r.node_ready.map_or("-", Readiness::word),
                    r.ready_reason.clone().unwrap_or_default(),
                    if r.cordoned { " (cordoned)" } else { "" }
                ),
                node_style(theme, r),
            ),
        ]),
        fact(
            "internal IP",
            r.internal_ip.clone().unwrap_or("-".into()),
            theme,
        ),
        fact(
            "apiserver",
            r.apiserver_endpoint.clone().unwrap_or("-".into()),
            theme,
        ),
        fact(
            "etcd advertise",
            r.etcd_advertise.clone().unwrap_or("-".into()),
            theme,
        ),
    ];
    lines.push(match &r.etcd {
        Some(j) => Line::from(vec![
            Span::styled(format!("{:<14}", "etcd member"), theme.muted),
            Span::styled(
                format!(
                    "{} at {} {}{} (matched by {})",
                    j.member,
                    j.endpoint,
                    if j.healthy { "healthy" } else { "UNHEALTHY" },
                    if j.leader { ", leader" } else { "" },
                    j.matched_by
                ),
                if j.healthy { theme.ok } else { theme.crit },
            ),
        ]),
        None => fact("etcd member", "not matched with the etcd pane", theme),
    });
    lines.push(Line::from(Span::styled("static pods", theme.title)));
    for p in &r.pods {
        let state = if p.ready { "ready" } else { "NOT READY" };
        let why = p
            .reason
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<26}", p.pod), theme.text),
            Span::styled(
                format!("{} {state}{why}", p.phase),
                if p.ready { theme.ok } else { theme.crit },
            ),
            Span::styled(format!(" · {} restarts", p.restarts), theme.muted),
        ]));
    }
    lines
}
