//! The Ceph pane: the cluster's health line, capacity and mons, one row per Ceph health
//! check, the selected check in full, conditions, and the findings the checks do not
//! already say. Plus the body of its home tile.

pub mod parts;

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget, Wrap};

use self::parts::{
    Freshness, PaneCursor, ago, alarm_style, finding_lines, is_wide, lines_height, mark, pane_block,
};
use super::health_style;
use crate::config::theme::Theme;
use crate::model::ceph::{CephCheck, CephClusterRow, CephView, ceph_health, fields::short};
use crate::model::etcd::human_bytes;
use crate::model::finding::Health;

pub struct CephPane<'a> {
    pub view: &'a CephView,
    pub theme: &'a Theme,
    /// Selection and filter over the health checks (of all clusters, in order).
    pub cursor: &'a PaneCursor,
    pub freshness: Freshness,
}

/// The checks that pass the cursor's filter, with their cluster.
pub fn visible_checks<'v>(
    view: &'v CephView,
    cursor: &PaneCursor,
) -> Vec<(&'v CephClusterRow, &'v CephCheck)> {
    let mut rows: Vec<(&CephClusterRow, &CephCheck)> = view
        .clusters
        .iter()
        .flat_map(|c| c.checks.iter().map(move |k| (c, k)))
        .filter(|(_, k)| cursor.matches(&crate::model::custom::ceph_search_text(k)))
        .collect();
    parts::sort_rows(
        &mut rows,
        cursor,
        &[
            |(_, k): &(&CephClusterRow, &CephCheck)| k.name.clone(),
            |(_, k): &(&CephClusterRow, &CephCheck)| k.severity.clone(),
        ],
    );
    rows
}

impl Widget for CephPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let health = self.view.health();
        let title = parts::titled("Ceph", self.cursor, &crate::model::custom::CEPH_SORTS);
        let block = pane_block(
            &title,
            health,
            self.freshness,
            self.cursor.filter.as_deref(),
            theme,
        );
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(cluster) = self.view.clusters.first() else {
            Paragraph::new(Span::styled(
                "No CephCluster found: Rook-Ceph is not installed, or no cluster exists \
                 in the watched namespaces.",
                theme.muted,
            ))
            .wrap(Wrap { trim: true })
            .render(inner, buf);
            return;
        };
        let checks = visible_checks(self.view, self.cursor);
        let check_messages: Vec<String> = self
            .view
            .clusters
            .iter()
            .flat_map(|c| c.checks.iter())
            .map(|k| format!("Ceph {}: {}", k.name, k.message))
            .collect();
        let others: Vec<_> = self
            .view
            .findings
            .iter()
            .filter(|f| !check_messages.contains(&f.message))
            .collect();
        let head = head_lines(cluster, self.view.clusters.len(), theme);
        let findings = finding_lines(&others, 3, theme);
        let detail = checks
            .get(self.cursor.selected_in(checks.len()).unwrap_or(0))
            .map(|(c, k)| detail_lines(c, k, theme))
            .unwrap_or_else(|| conditions_lines(cluster, theme));
        let [head_area, table_area, detail_area, findings_area] = Layout::vertical([
            Constraint::Length(lines_height(head.len(), 3)),
            Constraint::Min(2),
            Constraint::Length(lines_height(detail.len(), 3)),
            Constraint::Length(lines_height(findings.len(), 3)),
        ])
        .areas(inner);
        Paragraph::new(head).render(head_area, buf);
        self.table(&checks, table_area, buf);
        Paragraph::new(detail)
            .wrap(Wrap { trim: true })
            .render(detail_area, buf);
        Paragraph::new(findings).render(findings_area, buf);
    }
}

impl CephPane<'_> {
    fn table(&self, checks: &[(&CephClusterRow, &CephCheck)], area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        if checks.is_empty() {
            let text = if self.cursor.filter.is_some() {
                "no check matches the filter"
            } else {
                "no health checks raised"
            };
            Paragraph::new(Span::styled(text, theme.muted)).render(area, buf);
            return;
        }
        let wide = is_wide(area);
        let many = self.view.clusters.len() > 1;
        let height = usize::from(area.height.saturating_sub(1));
        let start = self.cursor.window_start(checks.len(), height);
        let selected = self.cursor.selected_in(checks.len());
        let rows = checks
            .iter()
            .enumerate()
            .skip(start)
            .take(height)
            .map(|(i, (c, k))| {
                let h = k.health();
                let name_style = if Some(i) == selected {
                    theme.focus
                } else {
                    theme.text
                };
                let mut cells = vec![
                    Cell::from(mark(theme, h)),
                    Cell::from(Span::styled(k.name.clone(), name_style)),
                    Cell::from(Span::styled(k.severity.clone(), health_style(theme, h))),
                ];
                if many && wide {
                    cells.push(Cell::from(c.name.clone()));
                }
                cells.push(Cell::from(k.message.clone()));
                Row::new(cells)
            });
        let mut header = vec!["", "CHECK", "SEVERITY"];
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Length(if wide { 24 } else { 16 }),
            Constraint::Length(11),
        ];
        if many && wide {
            header.push("CLUSTER");
            widths.push(Constraint::Length(14));
        }
        header.push("MESSAGE");
        widths.push(Constraint::Min(10));
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1)
            .render(area, buf);
    }
}

fn head_lines(c: &CephClusterRow, clusters: usize, theme: &Theme) -> Vec<Line<'static>> {
    let health = c.health();
    let mut first = vec![Span::styled(
        c.ceph_health
            .clone()
            .unwrap_or_else(|| "no health yet".into()),
        health_style(theme, health),
    )];
    if let (Some(prev), Some(secs)) = (&c.previous_health, c.last_changed_secs)
        && Some(prev) != c.ceph_health.as_ref()
    {
        first.push(Span::styled(
            format!(" (was {prev}, changed {} ago)", ago(Some(secs))),
            theme.muted,
        ));
    }
    first.push(Span::styled(" · phase ", theme.muted));
    first.push(Span::styled(
        c.phase.clone().unwrap_or_else(|| "-".into()),
        alarm_style(theme, c.phase_health()),
    ));
    if let Some(secs) = c.last_checked_secs {
        let stale = Duration::from_secs(secs) > crate::model::ceph::CHECK_STALE_AFTER;
        first.push(Span::styled(
            format!(" · checked {} ago", short(Duration::from_secs(secs))),
            if stale { theme.warn } else { theme.muted },
        ));
    }
    let mut second = Vec::new();
    if let Some(cap) = &c.capacity {
        second.push(Span::styled(
            format!("{:.0}% used", cap.used_ratio() * 100.0),
            alarm_style(theme, cap.health()),
        ));
        second.push(Span::styled(
            format!(
                " {} of {}",
                human_bytes(cap.bytes_used),
                human_bytes(cap.bytes_total)
            ),
            theme.muted,
        ));
    } else {
        second.push(Span::styled("capacity not reported", theme.muted));
    }
    match c.quorum() {
        Some((up, all)) => {
            let h = if up * 2 <= all {
                Health::Crit
            } else if up < all {
                Health::Warn
            } else {
                Health::Ok
            };
            second.push(Span::styled(" · mons ", theme.muted));
            second.push(Span::styled(format!("{up}/{all}"), health_style(theme, h)));
            for m in &c.mons {
                if m.in_quorum {
                    second.push(Span::styled(format!(" {}", m.id), theme.text));
                } else {
                    second.push(Span::styled(format!(" {} OUT", m.id), theme.crit));
                }
            }
        }
        None => second.push(Span::styled(
            " · mons: rook-ceph-mon-endpoints not read",
            theme.muted,
        )),
    }
    let mut lines = vec![Line::from(first), Line::from(second)];
    if clusters > 1 {
        lines.push(Line::from(Span::styled(
            format!(
                "{}/{} and {} more cluster(s)",
                c.namespace,
                c.name,
                clusters - 1
            ),
            theme.muted,
        )));
    }
    lines
}

pub fn detail_lines(c: &CephClusterRow, k: &CephCheck, theme: &Theme) -> Vec<Line<'static>> {
    vec![
        Line::from(vec![
            Span::styled(format!("{} ", k.name), theme.accent),
            Span::styled(
                format!("{} ", k.severity),
                health_style(theme, ceph_health(Some(&k.severity))),
            ),
            Span::styled(format!("{}/{}", c.namespace, c.name), theme.muted),
        ]),
        Line::from(Span::styled(k.message.clone(), theme.text)),
    ]
}

fn conditions_lines(c: &CephClusterRow, theme: &Theme) -> Vec<Line<'static>> {
    let mut spans = vec![Span::styled("conditions: ", theme.muted)];
    if c.conditions.is_empty() {
        spans.push(Span::styled("none", theme.muted));
    }
    for (i, cond) in c.conditions.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.muted));
        }
        spans.push(Span::styled(
            format!(
                "{} {} {}",
                cond.kind,
                cond.status,
                cond.reason.as_deref().unwrap_or("")
            )
            .trim_end()
            .to_string(),
            theme.text,
        ));
    }
    vec![Line::from(spans)]
}

/// The home tile's body (after its status line): health, capacity, mons.
pub fn tile_lines(view: &CephView, theme: &Theme) -> Vec<Line<'static>> {
    let health = view.health();
    let Some(c) = view.clusters.first() else {
        return vec![Line::from(Span::styled("no CephCluster", theme.muted))];
    };
    let mut lines = vec![Line::from(Span::styled(
        c.ceph_health
            .clone()
            .unwrap_or_else(|| "no health yet".into()),
        health_style(theme, c.health()),
    ))];
    if let Some(k) = c.checks.first() {
        let more = c.checks.len() - 1;
        let suffix = if more > 0 {
            format!(" +{more}")
        } else {
            String::new()
        };
        lines.push(Line::from(Span::styled(
            format!("{}{suffix}", k.name),
            health_style(theme, k.health()),
        )));
    }
    let mut facts = Vec::new();
    if let Some(cap) = &c.capacity {
        facts.push(format!("{:.0}% used", cap.used_ratio() * 100.0));
    }
    if let Some((up, all)) = c.quorum() {
        facts.push(format!("mons {up}/{all}"));
    }
    if !facts.is_empty() {
        lines.push(Line::from(Span::styled(
            facts.join(" · "),
            if health > Health::Ok && c.checks.is_empty() {
                health_style(theme, health)
            } else {
                theme.text
            },
        )));
    }
    lines
}
