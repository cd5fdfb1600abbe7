//! Pieces shared by the Kubernetes-backed panes (Ceph, Velero, Rollouts): the cursor
//! state, the titled block with health and data age, findings lines, and small text
//! helpers. Lives under `ceph` only because `ui/mod.rs` registers pane modules.

use std::time::Duration;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;

use crate::config::theme::Theme;
use crate::model::finding::{Finding, Health};
use crate::ui::health_style;

/// Selection, scroll and filter of a pane's main list. The pane owner keeps it (it is
/// UI state, not domain state) and hands it to the widget by reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaneCursor {
    /// Index into the *filtered* rows.
    pub selected: usize,
    /// First row shown; render keeps the selection visible whatever this says.
    pub offset: usize,
    /// Case-insensitive substring; `None` or empty shows every row.
    pub filter: Option<String>,
    /// Sort column: 0 keeps the pane's own order, others index its sort names.
    pub sort: usize,
    pub descending: bool,
}

impl PaneCursor {
    pub fn down(&mut self, rows: usize) {
        if self.selected + 1 < rows {
            self.selected += 1;
        }
    }

    pub fn up(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    /// Keeps the selection inside `rows` (after the list shrank or the filter changed).
    pub fn clamp(&mut self, rows: usize) {
        self.selected = self.selected.min(rows.saturating_sub(1));
    }

    pub fn set_filter(&mut self, filter: Option<String>) {
        self.filter = filter.filter(|f| !f.is_empty());
        self.selected = 0;
        self.offset = 0;
    }

    /// Whether a row whose searchable text is `haystack` passes the filter.
    pub fn matches(&self, haystack: &str) -> bool {
        crate::model::custom::filter_matches(self.filter.as_deref().unwrap_or(""), haystack)
    }

    /// The selection clamped to `rows`.
    pub fn selected_in(&self, rows: usize) -> Option<usize> {
        (rows > 0).then(|| self.selected.min(rows - 1))
    }

    /// The first visible row of a list of `rows` in `height` lines with the selection
    /// in view.
    pub fn window_start(&self, rows: usize, height: usize) -> usize {
        let Some(sel) = self.selected_in(rows) else {
            return 0;
        };
        let height = height.max(1);
        let start = self.offset.min(rows.saturating_sub(height));
        if sel < start {
            sel
        } else if sel >= start + height {
            sel + 1 - height
        } else {
            start
        }
    }
}

/// How fresh the pane's data is, filled by whoever owns the watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Time since the watch last delivered; `None` before the first data.
    pub age: Option<Duration>,
    /// Whether the watch has been down longer than the stale threshold.
    pub stale: bool,
}

/// Orders `rows` by the cursor's sort column (`keys[sort - 1]`; 0 keeps them as they
/// are), reversed when descending.
pub fn sort_rows<T>(rows: &mut [T], cursor: &PaneCursor, keys: &[fn(&T) -> String]) {
    if let Some(key) = cursor.sort.checked_sub(1).and_then(|i| keys.get(i)) {
        rows.sort_by_cached_key(key);
    }
    if cursor.descending {
        rows.reverse();
    }
}

/// The title with the sort named: `Velero · by phase ↓`.
pub fn titled(title: &str, cursor: &PaneCursor, names: &[&str]) -> String {
    match cursor.sort.checked_sub(1).and_then(|i| names.get(i)) {
        Some(n) => format!(
            "{title} · by {n}{}",
            if cursor.descending { " ↓" } else { "" }
        ),
        None if cursor.descending => format!("{title} · reversed"),
        None => title.to_string(),
    }
}

/// The pane's frame: ` Ceph  WARN  · updated 3s ago `, border in the health colour.
pub fn pane_block<'a>(
    title: &'a str,
    health: Health,
    freshness: Freshness,
    filter: Option<&str>,
    theme: &Theme,
) -> Block<'a> {
    let extra = filter
        .filter(|f| !f.is_empty())
        .map(|f| Span::styled(format!("/{f} "), theme.accent))
        .into_iter()
        .collect();
    crate::ui::pane_frame(
        title,
        health,
        (freshness.age, freshness.stale, " "),
        extra,
        theme,
    )
}

/// `WARN  message` lines for the findings worse than OK, at most `max`.
pub fn finding_lines<'a>(findings: &[&Finding], max: usize, theme: &Theme) -> Vec<Line<'a>> {
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

/// Height for `n` lines, capped.
pub fn lines_height(n: usize, max: usize) -> u16 {
    u16::try_from(n.min(max)).unwrap_or(0)
}

/// `-` for a missing value.
pub fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

/// A duration in seconds as a compact age (`42s`, `7h`, `3d`).
pub fn ago(secs: Option<u64>) -> String {
    secs.map(|s| crate::model::ceph::fields::short(Duration::from_secs(s)))
        .unwrap_or_else(|| "-".into())
}

/// Only warn/crit/unknown get their colour; OK values stay plain text so the eye goes
/// to what is wrong.
pub fn alarm_style(theme: &Theme, health: Health) -> Style {
    match health {
        Health::Ok => theme.text,
        h => health_style(theme, h),
    }
}

/// `!` for rows that need a look, in their colour.
pub fn mark(theme: &Theme, health: Health) -> Span<'static> {
    match health {
        Health::Warn | Health::Crit => Span::styled("!", health_style(theme, health)),
        Health::Unknown => Span::styled("?", theme.unknown),
        Health::Ok => Span::raw(" "),
    }
}

/// Area minus nothing when wide enough; used to pick optional columns.
pub fn is_wide(area: Rect) -> bool {
    area.width >= 120
}
