//! The Rollouts pane: one row per Argo Rollout (phase, step i/N, set/actual canary
//! weight, replicas, analysis), the selected rollout's steps with the current one
//! marked and its analysis metrics, then the findings. Plus the body of its home tile.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget, Wrap};

use super::ceph::parts::{
    Freshness, PaneCursor, ago, finding_lines, is_wide, lines_height, mark, or_dash, pane_block,
};
use super::health_style;
use crate::config::theme::Theme;
use crate::model::finding::Health;
use crate::model::rollouts::{AnalysisRunRow, RolloutRow, RolloutsView, analysis_phase_health};

pub struct RolloutsPane<'a> {
    pub view: &'a RolloutsView,
    pub theme: &'a Theme,
    /// Selection and filter over the rollouts.
    pub cursor: &'a PaneCursor,
    pub freshness: Freshness,
}

/// The rollouts that pass the cursor's filter (namespace/name, phase).
pub fn visible_rollouts<'v>(view: &'v RolloutsView, cursor: &PaneCursor) -> Vec<&'v RolloutRow> {
    let mut rows: Vec<&RolloutRow> = view
        .rollouts
        .iter()
        .filter(|r| cursor.matches(&crate::model::custom::rollout_search_text(r)))
        .collect();
    super::ceph::parts::sort_rows(
        &mut rows,
        cursor,
        &[
            |r: &&RolloutRow| r.phase.clone(),
            |r: &&RolloutRow| r.name.clone(),
        ],
    );
    rows
}

/// `25/20` (set/actual), `25/?` when the actual weight is unknown, `-` for blue-green.
pub fn weight_text(r: &RolloutRow) -> String {
    match (r.set_weight, r.actual_weight) {
        (None, _) => "-".into(),
        (Some(s), Some(a)) => format!("{s}/{a}"),
        (Some(s), None) => format!("{s}/?"),
    }
}

fn analysis_word(r: &RolloutRow) -> (String, Health) {
    match r.current_runs().next() {
        Some(run) => (
            run.phase.clone().unwrap_or_else(|| "Pending".into()),
            run.health(),
        ),
        None => ("-".into(), Health::Ok),
    }
}

impl Widget for RolloutsPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let view = self.view;
        let health = view.health();
        let title = super::ceph::parts::titled(
            "Rollouts",
            self.cursor,
            &crate::model::custom::ROLLOUT_SORTS,
        );
        let block = pane_block(
            &title,
            health,
            self.freshness,
            self.cursor.filter.as_deref(),
            theme,
        );
        let inner = block.inner(area);
        block.render(area, buf);
        if view.rollouts.is_empty() {
            Paragraph::new(Span::styled(
                "No Argo Rollouts found in the watched namespaces.",
                theme.muted,
            ))
            .wrap(Wrap { trim: true })
            .render(inner, buf);
            return;
        }
        let rollouts = visible_rollouts(view, self.cursor);
        let findings: Vec<_> = view.findings.iter().collect();
        let findings = finding_lines(&findings, 3, theme);
        let selected = self.cursor.selected_in(rollouts.len());
        let detail = selected
            .and_then(|i| rollouts.get(i))
            .map(|r| detail_lines(r, theme))
            .unwrap_or_default();
        let table_h = 1 + lines_height(rollouts.len().max(1), 8);
        let advisory = advisory_lines(&rollouts, theme);
        let [table_area, advisory_area, detail_area, findings_area] = Layout::vertical([
            Constraint::Length(table_h),
            Constraint::Length(wrapped_height(&advisory, inner.width, 8)),
            Constraint::Min(3),
            Constraint::Length(lines_height(findings.len(), 3)),
        ])
        .areas(inner);
        self.table(&rollouts, table_area, buf);
        Paragraph::new(advisory)
            .wrap(Wrap { trim: true })
            .render(advisory_area, buf);
        Paragraph::new(detail)
            .wrap(Wrap { trim: true })
            .render(detail_area, buf);
        Paragraph::new(findings).render(findings_area, buf);
    }
}

impl RolloutsPane<'_> {
    fn table(&self, rollouts: &[&RolloutRow], area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        if rollouts.is_empty() {
            Paragraph::new(Span::styled("no rollout matches the filter", theme.muted))
                .render(area, buf);
            return;
        }
        let wide = is_wide(area);
        let height = usize::from(area.height.saturating_sub(1));
        let start = self.cursor.window_start(rollouts.len(), height);
        let selected = self.cursor.selected_in(rollouts.len());
        let rows = rollouts
            .iter()
            .enumerate()
            .skip(start)
            .take(height)
            .map(|(i, r)| {
                let name_style = if Some(i) == selected {
                    theme.focus
                } else {
                    theme.text
                };
                let (analysis, analysis_h) = analysis_word(r);
                let ready = format!("{}/{}", r.available.unwrap_or(0), r.desired.unwrap_or(0));
                let ready_h = if r.available < r.desired {
                    Health::Warn
                } else {
                    Health::Ok
                };
                let mut cells = vec![
                    Cell::from(mark(theme, r.health())),
                    Cell::from(Span::styled(
                        format!("{}/{}", r.namespace, r.name),
                        name_style,
                    )),
                    Cell::from(Span::styled(
                        r.phase.clone(),
                        health_style(theme, r.phase_health()),
                    )),
                    Cell::from(or_dash(r.step_text())),
                    Cell::from(weight_text(r)),
                    Cell::from(Span::styled(ready, health_style(theme, ready_h))),
                    Cell::from(Span::styled(analysis, health_style(theme, analysis_h))),
                ];
                if wide {
                    cells.push(Cell::from(r.strategy.clone()));
                    cells.push(Cell::from(or_dash(r.revision.clone())));
                    cells.push(Cell::from(Span::styled(
                        r.message.clone().unwrap_or_default(),
                        theme.muted,
                    )));
                }
                Row::new(cells)
            });
        let mut header = vec![
            "", "ROLLOUT", "PHASE", "STEP", "WEIGHT", "AVAIL", "ANALYSIS",
        ];
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Min(16),
            Constraint::Length(11),
            Constraint::Length(5),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(12),
        ];
        if wide {
            header.extend(["STRATEGY", "REV", "MESSAGE"]);
            widths.extend([
                Constraint::Length(9),
                Constraint::Length(4),
                Constraint::Min(20),
            ]);
        }
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1)
            .render(area, buf);
    }
}

/// Rows `lines` take wrapped at `width`, at most `max`.
fn wrapped_height(lines: &[Line<'_>], width: u16, max: u16) -> u16 {
    let width = usize::from(width.max(1));
    // Word wrapping leaves ragged ends: a long line gets a row of slack.
    let rows: usize = lines
        .iter()
        .map(|l| match l.width().div_ceil(width).max(1) {
            1 => 1,
            n => n + 1,
        })
        .sum();
    u16::try_from(rows).unwrap_or(max).min(max)
}

/// The abort advisories of the listed rollouts: the call, then the evidence (value,
/// threshold, when, and the query that measured it).
pub fn advisory_lines(rollouts: &[&RolloutRow], theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for r in rollouts {
        let Some(a) = &r.abort_advisory else {
            continue;
        };
        lines.push(Line::from(vec![
            Span::styled("ABORT ADVISED ", theme.crit),
            Span::styled(format!("{}/{}: ", r.namespace, r.name), theme.accent),
            Span::styled(a.headline(), theme.crit),
            Span::styled(" · abort key in the footer", theme.text),
        ]));
        lines.push(Line::from(Span::styled(
            format!("measured {} by: {}", a.measured_at, a.query),
            theme.muted,
        )));
    }
    lines
}

pub fn detail_lines(r: &RolloutRow, theme: &Theme) -> Vec<Line<'static>> {
    let mut head = vec![
        Span::styled(format!("{}/{} ", r.namespace, r.name), theme.accent),
        Span::styled(r.phase.clone(), health_style(theme, r.phase_health())),
    ];
    if let Some(m) = &r.message {
        head.push(Span::styled(format!(": {m}"), theme.text));
    }
    head.push(Span::styled(
        format!(
            " · weight set {} actual {}",
            r.set_weight.map_or("-".into(), |w| format!("{w}%")),
            r.actual_weight.map_or("?".into(), |w| format!("{w}%"))
        ),
        theme.muted,
    ));
    if let Some(rate) = r.canary_error_rate {
        head.push(Span::styled(
            format!(" · canary errors {:.1}%", rate * 100.0),
            theme.muted,
        ));
    }
    let mut lines = vec![Line::from(head)];
    if !r.steps.is_empty() {
        let current = r.step.and_then(|s| usize::try_from(s).ok());
        let mut spans = vec![Span::styled("steps ", theme.muted)];
        for (i, s) in r.steps.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" › ", theme.muted));
            }
            let style = match current {
                Some(c) if i == c => theme.focus,
                Some(c) if i < c => theme.muted,
                _ => theme.text,
            };
            spans.push(Span::styled(s.clone(), style));
        }
        lines.push(Line::from(spans));
    }
    for run in r.analysis_runs.iter().take(2) {
        lines.extend(run_lines(run, theme));
    }
    lines
}

fn run_lines(run: &AnalysisRunRow, theme: &Theme) -> Vec<Line<'static>> {
    let phase = run.phase.clone().unwrap_or_else(|| "Pending".into());
    let mut head = vec![
        Span::styled("analysis ", theme.muted),
        Span::styled(format!("{} ", run.name), theme.text),
        Span::styled(
            phase,
            health_style(theme, analysis_phase_health(run.phase.as_deref())),
        ),
    ];
    if let Some(t) = &run.run_type {
        head.push(Span::styled(format!(" · {t}"), theme.muted));
    }
    if !run.current {
        head.push(Span::styled(" · earlier", theme.muted));
    }
    if let Some(m) = &run.message {
        head.push(Span::styled(format!(" · {m}"), theme.text));
    }
    let mut lines = vec![Line::from(head)];
    for m in &run.metrics {
        let h = m.health();
        let mut spans = vec![
            Span::styled(format!("  {} ", m.name), theme.text),
            Span::styled(
                m.phase.clone().unwrap_or_else(|| "-".into()),
                health_style(theme, analysis_phase_health(m.phase.as_deref())),
            ),
            Span::styled(
                format!(" · {} measured, {} ok, ", m.count, m.successful),
                theme.muted,
            ),
            Span::styled(
                format!("{} failed", m.failed),
                if m.failed > 0 {
                    health_style(theme, h)
                } else {
                    theme.muted
                },
            ),
            Span::styled(format!(" (limit {})", m.failure_limit), theme.muted),
        ];
        if let Some(v) = &m.last_value {
            spans.push(Span::styled(
                format!(" · last {v} {} ago", ago(m.last_measured_secs)),
                theme.muted,
            ));
        }
        lines.push(Line::from(spans));
    }
    lines
}

/// The home tile's body: the rollout most worth a look, its weight and analysis.
pub fn tile_lines(view: &RolloutsView, theme: &Theme) -> Vec<Line<'static>> {
    let Some(r) = view
        .rollouts
        .iter()
        .max_by_key(|r| (r.health(), r.phase != "Healthy"))
    else {
        return vec![Line::from(Span::styled("no Rollouts", theme.muted))];
    };
    let mut lead = format!("{} {}", r.name, r.phase);
    if let Some(step) = r.step_text() {
        lead.push_str(&format!(" {step}"));
    }
    let mut lines = vec![Line::from(Span::styled(
        lead,
        health_style(theme, r.phase_health()),
    ))];
    if r.set_weight.is_some() {
        lines.push(Line::from(format!("canary {}", weight_text(r))));
    }
    if let Some(a) = &r.abort_advisory {
        lines.push(Line::from(Span::styled(
            format!("ABORT ADVISED: {}", a.headline()),
            theme.crit,
        )));
    }
    let (analysis, h) = analysis_word(r);
    if analysis != "-" {
        lines.push(Line::from(Span::styled(
            format!("analysis {analysis}"),
            health_style(theme, h),
        )));
    }
    if view.rollouts.len() > 1 {
        lines.push(Line::from(Span::styled(
            format!("{} rollouts", view.rollouts.len()),
            theme.muted,
        )));
    }
    lines
}
