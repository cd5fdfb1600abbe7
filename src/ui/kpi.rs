//! The KPIs pane: one gauge line per KPI (status, value against its target, a sparkline of
//! the last half hour), and the selected KPI's PromQL on demand, to paste into Grafana.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::{centered, health_style, short_age};
use crate::config::theme::Theme;
use crate::model::State;
use crate::model::finding::Health;
use crate::model::kpi::{KpiReading, KpiRow, format_value};

pub struct KpiPane<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` values as block characters scaled between their min and max.
pub fn sparkline(values: &[f64], width: usize) -> String {
    let shown = &values[values.len().saturating_sub(width)..];
    let (lo, hi) = shown
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    shown
        .iter()
        .map(|v| {
            let level = if hi > lo {
                ((v - lo) / (hi - lo) * 7.0).round() as usize
            } else {
                3
            };
            BARS[level.min(7)]
        })
        .collect()
}

/// The value cell: the number, or why there is none.
fn value_text(row: &KpiRow) -> String {
    match row.result.map(|r| &r.reading) {
        Some(KpiReading::Value { value, .. }) => format_value(*value, &row.def.unit),
        Some(KpiReading::NotAvailable) => "not available".into(),
        Some(KpiReading::Failed { .. }) => "query failed".into(),
        None => "…".into(),
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        format!("{text:<width$}")
    } else {
        let cut: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

impl Widget for KpiPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let kpis = &self.state.kpis;
        let now = self.state.now;
        let theme = self.theme;
        let health = kpis.health(now);
        let age = match kpis.age(now) {
            Some(a) if kpis.is_stale(now) => format!(" · STALE: updated {} ago ", short_age(a)),
            Some(a) => format!(" · updated {} ago ", short_age(a)),
            None => " · connecting… ".to_string(),
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(health_style(theme, health))
            .title(Line::from(vec![
                Span::styled(" KPIs ", theme.title),
                Span::styled(format!(" {} ", health.label()), health_style(theme, health)),
                Span::styled(age, theme.muted),
            ]));
        let inner = block.inner(area);
        block.render(area, buf);

        let [head, table, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(2),
        ])
        .areas(inner);
        let source = match (
            &kpis.url,
            kpis.last.as_ref().and_then(|o| o.unreachable.as_ref()),
        ) {
            (None, _) => Line::from(Span::styled(
                "Not configured: set --prometheus-url or KHA_PROMETHEUS_URL",
                theme.muted,
            )),
            (Some(url), Some(e)) => Line::from(vec![
                Span::styled(format!(" {url} "), theme.muted),
                Span::styled(format!("UNREACHABLE: {e}"), theme.unknown),
            ]),
            (Some(url), None) => Line::from(Span::styled(format!(" {url}"), theme.muted)),
        };
        Paragraph::new(source).render(head, buf);

        let value_w = 15;
        let target_w = 12;
        // Titles take what a 16-cell sparkline leaves, up to their full length.
        let title_w = usize::from(inner.width)
            .saturating_sub(1 + 5 + value_w + target_w + 2 + 16)
            .clamp(20, 48);
        let fixed = 6 + title_w + value_w + target_w + 2;
        let spark_w = usize::from(inner.width).saturating_sub(fixed).min(60);
        let lines: Vec<Line> = kpis
            .rows()
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let not_available = matches!(
                    row.result.map(|r| &r.reading),
                    Some(KpiReading::NotAvailable)
                );
                // Series that do not exist are no alarm: muted, not "unknown".
                let style = if not_available {
                    theme.muted
                } else {
                    health_style(theme, row.health)
                };
                let history = row.result.map_or(&[][..], |r| r.history.as_slice());
                let marker = if i == kpis.selected { "▶" } else { " " };
                let title_style = if i == kpis.selected {
                    theme.focus
                } else {
                    theme.text
                };
                let status = if not_available {
                    "n/a"
                } else {
                    row.health.label()
                };
                Line::from(vec![
                    Span::styled(marker, theme.focus),
                    Span::styled(format!("{status:<5}"), style),
                    Span::styled(truncate(&row.def.title, title_w), title_style),
                    Span::styled(format!("{:>w$} ", value_text(row), w = value_w - 1), style),
                    Span::styled(format!("{:<target_w$}", row.def.target_text()), theme.muted),
                    Span::styled(sparkline(history, spark_w), style),
                ])
            })
            .collect();
        Paragraph::new(lines).render(table, buf);

        let hint = Line::from(Span::styled(
            " ↑/↓ select · Enter or ? shows the PromQL (paste it into Grafana) · Esc back",
            theme.muted,
        ));
        let worst = kpis
            .findings()
            .into_iter()
            .find(|f| f.severity > Health::Ok);
        let mut foot_lines = Vec::new();
        if let Some(f) = worst {
            foot_lines.push(Line::from(Span::styled(
                format!(" {} {}", f.severity.label(), f.message),
                health_style(theme, f.severity),
            )));
        }
        foot_lines.push(hint);
        Paragraph::new(foot_lines).render(foot, buf);

        if kpis.query_open {
            self.query_popup(area, buf);
        }
    }
}

impl KpiPane<'_> {
    fn query_popup(&self, area: Rect, buf: &mut Buffer) {
        let kpis = &self.state.kpis;
        let rows = kpis.rows();
        let Some(row) = rows.get(kpis.selected) else {
            return;
        };
        let theme = self.theme;
        let popup = centered(area, area.width.saturating_sub(4).min(110), 14);
        Clear.render(popup, buf);
        let mut lines = vec![
            Line::from(Span::styled(row.query().to_string(), theme.text)),
            Line::from(""),
        ];
        if let Some(fallback) = &row.def.fallback
            && fallback != row.query()
        {
            lines.push(Line::from(Span::styled("fallback:", theme.muted)));
            lines.push(Line::from(Span::styled(fallback.clone(), theme.muted)));
        }
        if let Some(KpiReading::Failed { error }) = row.result.map(|r| &r.reading) {
            lines.push(Line::from(Span::styled(
                format!("error: {error}"),
                theme.warn,
            )));
        }
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme.focus)
                    .title(Span::styled(
                        format!(" PromQL · {} ", row.def.title),
                        theme.title,
                    )),
            )
            .render(popup, buf);
    }
}
