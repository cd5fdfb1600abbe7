//! The Velero pane: schedules (cron, last good backup, next run, RPO), storage
//! locations, recent backups (the selectable list), the selected backup in detail, and
//! the findings. Plus the body of its home tile.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget, Wrap};

use super::ceph::parts::{
    Freshness, PaneCursor, ago, alarm_style, finding_lines, is_wide, lines_height, mark, or_dash,
    pane_block,
};
use super::health_style;
use crate::config::theme::Theme;
use crate::model::finding::Health;
use crate::model::velero::{BackupRow, VeleroView};

pub struct VeleroPane<'a> {
    pub view: &'a VeleroView,
    pub theme: &'a Theme,
    /// Selection and filter over the backups.
    pub cursor: &'a PaneCursor,
    pub freshness: Freshness,
}

/// The backups that pass the cursor's filter (name, phase, schedule), newest first.
pub fn visible_backups<'v>(view: &'v VeleroView, cursor: &PaneCursor) -> Vec<&'v BackupRow> {
    let mut rows = view
        .backups
        .iter()
        .filter(|b| cursor.matches(&crate::model::custom::backup_search_text(b)))
        .collect::<Vec<_>>();
    super::ceph::parts::sort_rows(
        &mut rows,
        cursor,
        &[
            |b: &&BackupRow| b.phase_word().to_string(),
            |b: &&BackupRow| b.schedule.clone().unwrap_or_default(),
            |b: &&BackupRow| b.name.clone(),
        ],
    );
    rows
}

/// `in 16h`, `DUE 5m`, `paused`, `-`.
fn next_due(secs: Option<i64>, paused: bool) -> (String, Health) {
    match secs {
        _ if paused => ("paused".into(), Health::Warn),
        None => ("-".into(), Health::Unknown),
        Some(s) if s >= 0 => (format!("in {}", ago(Some(s.unsigned_abs()))), Health::Ok),
        // A minute late is the controller's tick; more is a schedule not firing.
        Some(s) if s > -120 => ("now".into(), Health::Ok),
        Some(s) => (format!("DUE {}", ago(Some(s.unsigned_abs()))), Health::Warn),
    }
}

/// `29d`, `EXPIRED`, `-`.
fn expires(secs: Option<i64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s <= 0 => "expired".into(),
        Some(s) => ago(Some(s.unsigned_abs())),
    }
}

fn count(n: Option<u64>, health: Health, theme: &Theme) -> Span<'static> {
    match n {
        None | Some(0) => Span::styled("-", theme.muted),
        Some(n) => Span::styled(n.to_string(), health_style(theme, health)),
    }
}

impl Widget for VeleroPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let view = self.view;
        let health = view.health();
        let title =
            super::ceph::parts::titled("Velero", self.cursor, &crate::model::custom::VELERO_SORTS);
        let block = pane_block(
            &title,
            health,
            self.freshness,
            self.cursor.filter.as_deref(),
            theme,
        );
        let inner = block.inner(area);
        block.render(area, buf);
        if view.schedules.is_empty() && view.backups.is_empty() && view.locations.is_empty() {
            Paragraph::new(Span::styled(
                "No Velero schedules, backups or storage locations found.",
                theme.muted,
            ))
            .wrap(Wrap { trim: true })
            .render(inner, buf);
            return;
        }
        let backups = visible_backups(view, self.cursor);
        let findings: Vec<_> = view.findings.iter().collect();
        let findings = finding_lines(&findings, 3, theme);
        let selected = self.cursor.selected_in(backups.len());
        let detail = selected
            .and_then(|i| backups.get(i))
            .map(|b| detail_lines(b, theme))
            .unwrap_or_default();
        let schedules_h = if view.schedules.is_empty() {
            0
        } else {
            1 + lines_height(view.schedules.len(), 3)
        };
        let locations_h = if view.locations.is_empty() {
            0
        } else {
            1 + lines_height(view.locations.len(), 3)
        };
        let [
            summary_area,
            sched_area,
            loc_area,
            backup_area,
            detail_area,
            findings_area,
        ] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(schedules_h),
            Constraint::Length(locations_h),
            Constraint::Min(3),
            // The first line may wrap at 80 columns; three lines keep the reason in view.
            Constraint::Length(if detail.is_empty() { 0 } else { 3 }),
            Constraint::Length(lines_height(findings.len(), 3)),
        ])
        .areas(inner);
        Paragraph::new(Line::from(Span::styled(
            view.summary(),
            health_style(theme, health),
        )))
        .render(summary_area, buf);
        self.schedules(sched_area, buf);
        self.locations(loc_area, buf);
        self.backups(&backups, backup_area, buf);
        Paragraph::new(detail)
            .wrap(Wrap { trim: true })
            .render(detail_area, buf);
        Paragraph::new(findings).render(findings_area, buf);
    }
}

impl VeleroPane<'_> {
    fn schedules(&self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let wide = is_wide(area);
        let rows = self.view.schedules.iter().map(|s| {
            let h = s.health();
            let (next, next_h) = next_due(s.next_due_in_secs, s.paused);
            let good_h = if s.rpo_breach().is_some() {
                Health::Crit
            } else {
                Health::Ok
            };
            let mut cells = vec![
                Cell::from(mark(theme, h)),
                Cell::from(s.name.clone()),
                Cell::from(or_dash(s.cron.clone())),
                Cell::from(Span::styled(
                    s.last_good_secs
                        .map(|a| format!("{} ago", ago(Some(a))))
                        .unwrap_or_else(|| "never".into()),
                    health_style(theme, good_h),
                )),
                Cell::from(Span::styled(next, alarm_style(theme, next_h))),
                Cell::from(ago(s.rpo_secs)),
            ];
            if wide {
                cells.push(Cell::from(or_dash(s.phase.clone())));
                cells.push(Cell::from(Span::styled(
                    or_dash(s.cron_error.clone()),
                    theme.muted,
                )));
            }
            Row::new(cells)
        });
        let mut header = vec!["", "SCHEDULE", "CRON", "LAST GOOD", "NEXT", "RPO"];
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Length(if wide { 24 } else { 16 }),
            Constraint::Length(if wide { 20 } else { 13 }),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(4),
        ];
        if wide {
            header.extend(["PHASE", "NOTE"]);
            widths.extend([Constraint::Length(16), Constraint::Min(10)]);
        }
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1)
            .render(area, buf);
    }

    fn locations(&self, area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let wide = is_wide(area);
        let rows = self.view.locations.iter().map(|l| {
            let h = l.health();
            let mut cells = vec![
                Cell::from(mark(theme, h)),
                Cell::from(l.name.clone()),
                Cell::from(Span::styled(
                    l.phase.clone().unwrap_or_else(|| "Unknown".into()),
                    health_style(theme, h),
                )),
                Cell::from(if l.default { "default" } else { "" }),
                Cell::from(format!("{} ago", ago(l.last_validated_secs))),
            ];
            if wide {
                cells.push(Cell::from(or_dash(l.provider.clone())));
                cells.push(Cell::from(or_dash(l.bucket.clone())));
                cells.push(Cell::from(or_dash(l.region.clone())));
            }
            cells.push(Cell::from(Span::styled(
                l.message.clone().unwrap_or_default(),
                theme.muted,
            )));
            Row::new(cells)
        });
        let mut header = vec!["", "LOCATION", "PHASE", "", "VALIDATED"];
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Length(if wide { 24 } else { 16 }),
            Constraint::Length(11),
            Constraint::Length(7),
            Constraint::Length(9),
        ];
        if wide {
            header.extend(["PROVIDER", "BUCKET", "REGION"]);
            widths.extend([
                Constraint::Length(8),
                Constraint::Length(24),
                Constraint::Length(14),
            ]);
        }
        header.push("MESSAGE");
        widths.push(Constraint::Min(5));
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1)
            .render(area, buf);
    }

    fn backups(&self, backups: &[&BackupRow], area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        if backups.is_empty() {
            let text = if self.cursor.filter.is_some() {
                "no backup matches the filter"
            } else {
                "no backups"
            };
            Paragraph::new(Span::styled(text, theme.muted)).render(area, buf);
            return;
        }
        let wide = is_wide(area);
        let height = usize::from(area.height.saturating_sub(1));
        let start = self.cursor.window_start(backups.len(), height);
        let selected = self.cursor.selected_in(backups.len());
        let rows = backups
            .iter()
            .enumerate()
            .skip(start)
            .take(height)
            .map(|(i, b)| {
                let h = b.health();
                let name_style = if Some(i) == selected {
                    theme.focus
                } else {
                    theme.text
                };
                let mut cells = vec![
                    Cell::from(mark(theme, h)),
                    Cell::from(Span::styled(b.name.clone(), name_style)),
                    Cell::from(Span::styled(
                        b.phase_word().to_string(),
                        health_style(theme, h),
                    )),
                    Cell::from(ago(b.age_secs)),
                    Cell::from(ago(b.duration_secs)),
                    Cell::from(count(b.errors, Health::Crit, theme)),
                    Cell::from(count(b.warnings, Health::Warn, theme)),
                    Cell::from(expires(b.expires_in_secs)),
                ];
                if wide {
                    cells.push(Cell::from(or_dash(b.schedule.clone())));
                    cells.push(Cell::from(or_dash(b.storage_location.clone())));
                    cells.push(Cell::from(match (b.items_backed_up, b.items_total) {
                        (Some(done), Some(all)) => format!("{done}/{all}"),
                        _ => "-".into(),
                    }));
                }
                Row::new(cells)
            });
        let mut header = vec![
            "", "BACKUP", "PHASE", "AGE", "TOOK", "ERR", "WARN", "EXPIRES",
        ];
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Min(20),
            Constraint::Length(15),
            Constraint::Length(4),
            Constraint::Length(4),
            Constraint::Length(3),
            Constraint::Length(4),
            Constraint::Length(7),
        ];
        if wide {
            header.extend(["SCHEDULE", "LOCATION", "ITEMS"]);
            widths.extend([
                Constraint::Length(16),
                Constraint::Length(12),
                Constraint::Length(13),
            ]);
        }
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1)
            .render(area, buf);
    }
}

pub fn detail_lines(b: &BackupRow, theme: &Theme) -> Vec<Line<'static>> {
    let mut first = vec![
        Span::styled(format!("{} ", b.name), theme.accent),
        Span::styled(b.phase_word().to_string(), health_style(theme, b.health())),
    ];
    let mut facts = Vec::new();
    if let (Some(done), Some(all)) = (b.items_backed_up, b.items_total) {
        facts.push(format!("{done}/{all} items"));
    }
    if let (Some(done), Some(all)) = (b.volume_snapshots_completed, b.volume_snapshots_attempted) {
        facts.push(format!("{done}/{all} snapshots"));
    }
    if let Some(l) = &b.storage_location {
        facts.push(format!("to {l}"));
    }
    if !facts.is_empty() {
        first.push(Span::styled(
            format!(" · {}", facts.join(" · ")),
            theme.muted,
        ));
    }
    let mut lines = vec![Line::from(first)];
    let why = b
        .failure_reason
        .clone()
        .or_else(|| (!b.validation_errors.is_empty()).then(|| b.validation_errors.join("; ")));
    match why {
        Some(w) => lines.push(Line::from(Span::styled(w, health_style(theme, b.health())))),
        None if b.errors.unwrap_or(0) > 0 || b.warnings.unwrap_or(0) > 0 => {
            lines.push(Line::from(Span::styled(
                format!(
                    "{} errors, {} warnings: velero backup logs {}",
                    b.errors.unwrap_or(0),
                    b.warnings.unwrap_or(0),
                    b.name
                ),
                theme.muted,
            )))
        }
        None => {}
    }
    lines
}

/// The home tile's body: last good backup, failures, locations.
pub fn tile_lines(view: &VeleroView, theme: &Theme) -> Vec<Line<'static>> {
    if view.health() == Health::Unknown && view.findings.is_empty() {
        return vec![Line::from(Span::styled("no Velero objects", theme.muted))];
    }
    let breach = view.schedules.iter().any(|s| s.rpo_breach().is_some());
    let last = match view.last_good().and_then(|b| b.age_secs) {
        Some(a) => format!("last good {} ago", ago(Some(a))),
        None => "no good backup".into(),
    };
    let mut lines = vec![Line::from(Span::styled(
        last,
        if breach { theme.crit } else { theme.ok },
    ))];
    let failed = view.unresolved_failures();
    if failed > 0 {
        lines.push(Line::from(Span::styled(
            format!("{failed} failed since"),
            theme.warn,
        )));
    }
    if !view.locations.is_empty() {
        let up = view
            .locations
            .iter()
            .filter(|l| l.phase.as_deref() == Some("Available"))
            .count();
        let h = if up == view.locations.len() {
            Health::Ok
        } else {
            Health::Crit
        };
        lines.push(Line::from(Span::styled(
            format!("{up}/{} locations available", view.locations.len()),
            alarm_style(theme, h),
        )));
    }
    lines
}
