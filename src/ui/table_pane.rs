//! Pieces the table panes share: the bordered block with health and freshness, the
//! filter/sort line, findings lines and the detail popup.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::{health_style, short_age};
use crate::config::theme::Theme;
use crate::model::finding::{Finding, Health};
use crate::model::table_view::TableView;

/// How fresh a pane's data is: live, reconnecting, stale, or not there yet.
pub enum Freshness {
    Connecting,
    Live,
    Reconnecting(Duration),
    Stale(Duration),
}

impl Freshness {
    /// A pane fed by the nodes watch and the watches in `down`: connecting until the
    /// nodes arrive, then judged by the longest outage among them.
    pub fn of_watches(state: &crate::model::State, down: &[Option<Duration>]) -> Freshness {
        let k = &state.kube;
        if !k.nodes.has_data() {
            return Freshness::Connecting;
        }
        let longest = std::iter::once(k.nodes.down_for(state.now))
            .chain(down.iter().copied())
            .flatten()
            .max();
        match longest {
            Some(d) if d > k.stale_after => Freshness::Stale(d),
            Some(d) => Freshness::Reconnecting(d),
            None => Freshness::Live,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Freshness::Connecting => "connecting…".into(),
            Freshness::Live => "live (watching)".into(),
            Freshness::Reconnecting(d) => format!("reconnecting, watch down {}", short_age(*d)),
            Freshness::Stale(d) => format!("STALE: watch down {}", short_age(*d)),
        }
    }

    pub fn style(&self, theme: &Theme) -> Style {
        match self {
            Freshness::Stale(_) | Freshness::Reconnecting(_) => theme.warn,
            _ => theme.muted,
        }
    }
}

pub fn block<'a>(title: &'a str, health: Health, fresh: &Freshness, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(health_style(theme, health))
        .title(Line::from(vec![
            Span::styled(format!(" {title} "), theme.title),
            Span::styled(format!(" {} ", health.label()), health_style(theme, health)),
            Span::styled(format!(" · {} ", fresh.text()), fresh.style(theme)),
        ]))
}

/// `/gpu_ · sort zone ↓ · 2 of 3`, or the hint to filter when none is set.
pub fn filter_line(
    view: &TableView,
    sorts: &[&str],
    shown: usize,
    total: usize,
    theme: &Theme,
) -> Line<'static> {
    let sort = sorts.get(view.sort).copied().unwrap_or("");
    let arrow = if view.descending { "↑" } else { "↓" };
    let mut spans = Vec::new();
    if view.editing_filter {
        spans.push(Span::styled(format!("/{}▏", view.filter), theme.focus));
    } else if !view.filter.is_empty() {
        spans.push(Span::styled(
            format!("filter: {}", view.filter),
            theme.accent,
        ));
    } else {
        spans.push(Span::styled("/ filter", theme.muted));
    }
    spans.push(Span::styled(
        format!(" · sort {sort} {arrow} · {shown} of {total} · enter detail"),
        theme.muted,
    ));
    Line::from(spans)
}

pub fn finding_lines(findings: &[Finding], max: usize, theme: &Theme) -> Vec<Line<'static>> {
    findings
        .iter()
        .filter(|f| f.severity > Health::Ok)
        .take(max)
        .map(|f| {
            Line::from(vec![
                Span::styled(
                    format!("{:<5} ", f.severity.label()),
                    health_style(theme, f.severity),
                ),
                Span::styled(f.message.clone(), theme.text),
            ])
        })
        .collect()
}

/// A popup over `area` (inset by 2 cells), with `lines` wrapped.
pub fn popup(area: Rect, buf: &mut Buffer, title: String, lines: Vec<Line>, theme: &Theme) {
    let inset = Rect {
        x: area.x + 2.min(area.width / 8),
        y: area.y + 1.min(area.height / 8),
        width: area.width.saturating_sub(4.min(area.width / 4)),
        height: area.height.saturating_sub(2.min(area.height / 4)),
    };
    Clear.render(inset, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.focus)
        .title(Span::styled(format!(" {title} · esc closes "), theme.title));
    Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .render(inset, buf);
}

/// `label: value` for the popup.
pub fn fact(label: &str, value: impl Into<String>, theme: &Theme) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<14}"), theme.muted),
        Span::styled(value.into(), theme.text),
    ])
}
