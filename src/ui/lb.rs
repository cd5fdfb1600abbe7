//! The API-server LB pane: per backend, what the LB believes next to what the apiserver
//! itself says; the selected backend in detail; the findings.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget};

use super::{health_style, short_age};
use crate::config::theme::Theme;
use crate::model::State;
use crate::model::finding::Health;
use crate::model::lb::{HealthCheck, LbBackendRow, LbObservation, LbSettings};

pub struct LbPane<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
}

/// "ok", the HTTP status, or "ERR" when nothing answered; with its health.
pub fn probe_word(check: Option<&HealthCheck>) -> (String, Health) {
    match check {
        None => ("-".into(), Health::Unknown),
        Some(c) if c.passed() => ("ok".into(), Health::Ok),
        Some(c) => match c.status {
            Some(s) => (s.to_string(), Health::Crit),
            None => ("ERR".into(), Health::Crit),
        },
    }
}

/// Time left on a certificate: "297d", "36h", "EXP"; with its health.
pub fn cert_word(left: Option<Duration>, settings: &LbSettings) -> (String, Health) {
    match left {
        None => ("-".into(), Health::Unknown),
        Some(l) if l.is_zero() => ("EXP".into(), Health::Crit),
        Some(l) if l < settings.cert_crit => (format!("{}h", l.as_secs() / 3600), Health::Crit),
        Some(l) if l < settings.cert_warn => (format!("{}d", l.as_secs() / 86_400), Health::Warn),
        Some(l) => (format!("{}d", l.as_secs() / 86_400), Health::Ok),
    }
}

impl Widget for LbPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let lb = &self.state.lb;
        let now = self.state.now;
        let theme = self.theme;
        let health = lb.health(now);
        let block = super::pane_frame(
            "API-server LB",
            health,
            (lb.age(now), lb.is_stale(now), " · connecting… "),
            Vec::new(),
            theme,
        );
        let inner = block.inner(area);
        block.render(area, buf);

        let Some(obs) = &lb.last else {
            let text = if lb.configured && lb.targets.is_empty() {
                "Starting the lab…".to_string()
            } else if lb.configured {
                format!(
                    "Probing {} backends{}…",
                    lb.targets.backends.len(),
                    lb.targets
                        .stats
                        .as_ref()
                        .map(|s| format!(", reading {s}"))
                        .unwrap_or_default()
                )
            } else {
                "API-server LB not configured: set --apiserver-backends (KHA_APISERVER_BACKENDS) \
                 and/or --lb-stats (KHA_LB_STATS)"
                    .to_string()
            };
            Paragraph::new(Span::styled(text, theme.muted))
                .wrap(ratatui::widgets::Wrap { trim: true })
                .render(inner, buf);
            return;
        };

        let rows = obs.rows();
        let findings: Vec<_> = obs
            .findings(&lb.settings)
            .into_iter()
            .filter(|f| f.severity > Health::Ok)
            .collect();
        let head = head_lines(obs, &rows, theme);
        let findings_height = u16::try_from(findings.len().min(4)).unwrap_or(4);
        let detail_height = if rows.is_empty() { 0 } else { 3 };
        let [head_area, table_area, detail_area, findings_area] = Layout::vertical([
            Constraint::Length(u16::try_from(head.len()).unwrap_or(1)),
            Constraint::Min(3),
            Constraint::Length(detail_height),
            Constraint::Length(findings_height),
        ])
        .areas(inner);
        Paragraph::new(head).render(head_area, buf);
        self.table(obs, &rows, table_area, buf);
        if let Some(row) = rows.get(lb.selected) {
            Paragraph::new(detail_lines(obs, row, &lb.settings, theme)).render(detail_area, buf);
        }
        let lines: Vec<Line> = findings
            .iter()
            .take(4)
            .map(|f| {
                Line::from(vec![
                    Span::styled(
                        format!("{:<5} ", f.severity.label()),
                        health_style(theme, f.severity),
                    ),
                    Span::styled(f.message.clone(), theme.text),
                ])
            })
            .collect();
        Paragraph::new(lines).render(findings_area, buf);
    }
}

fn head_lines<'a>(obs: &LbObservation, rows: &[LbBackendRow], theme: &Theme) -> Vec<Line<'a>> {
    let known = obs.lb.as_ref().is_some_and(|v| v.known());
    let serving = rows.iter().filter(|r| r.serving(known)).count();
    let serving_health = match serving {
        0 | 1 => Health::Crit,
        n if n < rows.len() => Health::Warn,
        _ => Health::Ok,
    };
    let view = match &obs.lb {
        None => Span::styled(
            "  LB view not configured (--lb-stats): direct probes only",
            theme.muted,
        ),
        Some(v) => {
            let age = v
                .age(obs.observed_at)
                .map(|a| format!(", read {} ago", short_age(a)))
                .unwrap_or_default();
            Span::styled(
                format!("  LB {} {}{age}", v.kind.label(), v.source),
                theme.muted,
            )
        }
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("{serving}/{} serving", rows.len()),
            health_style(theme, serving_health),
        ),
        view,
    ])];
    if let Some(err) = obs.lb.as_ref().and_then(|v| v.error.as_ref()) {
        lines.push(Line::from(Span::styled(
            format!("LB view: {err}"),
            theme.warn,
        )));
    }
    if obs.backends.is_empty() {
        lines.push(Line::from(Span::styled(
            "no direct probes: set --apiserver-backends to check each apiserver",
            theme.muted,
        )));
    }
    lines
}

impl LbPane<'_> {
    fn table(&self, obs: &LbObservation, rows: &[LbBackendRow], area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let settings = &self.state.lb.settings;
        let wide = area.width >= 120;
        let mut header = vec!["", "NAME"];
        if wide {
            header.extend(["ADDRESS", "ZONE"]);
        }
        header.extend([
            "LB", "LB CHECK", "READYZ", "LIVEZ", "LAT", "CERT", "FAILING",
        ]);
        let selected = self.state.lb.selected;
        let table_rows = rows.iter().enumerate().map(|(i, r)| {
            let row_health = obs.row_health(r, settings);
            let mark = match row_health {
                Health::Crit | Health::Warn => "!",
                _ => "",
            };
            let (lb_word, lb_health) = match &r.lb {
                Some(s) => (s.status.text.clone(), s.status.health()),
                None if obs.lb.is_none() => ("n/a".into(), Health::Unknown),
                None => ("-".into(), Health::Unknown),
            };
            let check =
                r.lb.as_ref()
                    .and_then(|s| s.check.clone())
                    .unwrap_or("-".into());
            let check_style = match r.lb.as_ref().and_then(|s| s.check_passed) {
                Some(false) => theme.crit,
                _ => theme.text,
            };
            let (ready, ready_health) = probe_word(r.readyz());
            let (live, live_health) = probe_word(r.livez());
            let latency = r
                .readyz()
                .filter(|c| c.status.is_some())
                .map_or("-".into(), |c| format!("{}ms", c.latency.as_millis()));
            let (cert, cert_health) = cert_word(r.cert_left(obs.observed_at), settings);
            let failing = match r.readyz() {
                Some(c) if !c.passed() => c.why(),
                _ => r.failing_checks().join(", "),
            };
            let mut cells = vec![
                Cell::from(Span::styled(mark, health_style(theme, row_health))),
                Cell::from(r.name.clone()).style(if i == selected {
                    theme.focus
                } else {
                    Style::default()
                }),
            ];
            if wide {
                cells.push(Cell::from(r.address.clone().unwrap_or("-".into())));
                cells.push(Cell::from(r.zone.clone().unwrap_or("-".into())));
            }
            cells.extend([
                Cell::from(Span::styled(lb_word, health_style(theme, lb_health))),
                Cell::from(Span::styled(check, check_style)),
                Cell::from(Span::styled(ready, health_style(theme, ready_health))),
                Cell::from(Span::styled(live, health_style(theme, live_health))),
                Cell::from(latency),
                Cell::from(Span::styled(cert, cert_style(theme, cert_health))),
                Cell::from(Span::styled(failing, theme.muted)),
            ]);
            Row::new(cells)
        });
        let mut widths = vec![Constraint::Length(1), Constraint::Length(14)];
        if wide {
            widths.extend([Constraint::Length(21), Constraint::Length(11)]);
        }
        widths.extend([
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Min(8),
        ]);
        let table = Table::new(table_rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1);
        // Selecting scrolls the table so the selected row stays visible; its name cell
        // carries the focus style, so the health colours of the other cells stay.
        let mut selection = TableState::default().with_selected(Some(self.state.lb.selected));
        StatefulWidget::render(table, area, buf, &mut selection);
    }
}

/// Healthy certificates stay plain text; only expiring ones are coloured.
fn cert_style(theme: &Theme, health: Health) -> Style {
    match health {
        Health::Warn | Health::Crit => health_style(theme, health),
        _ => theme.text,
    }
}

fn detail_lines<'a>(
    obs: &LbObservation,
    row: &LbBackendRow,
    settings: &LbSettings,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let mut first = vec![Span::styled(format!("{} ", row.name), theme.accent)];
    if let Some(a) = &row.address {
        first.push(Span::styled(format!("{a} "), theme.text));
    }
    if let Some(z) = &row.zone {
        first.push(Span::styled(format!("zone {z} "), theme.muted));
    }
    let mut lb_line = Vec::new();
    if let Some(s) = &row.lb {
        let mut facts = vec![format!("LB {}: {}", s.proxy, s.status.text)];
        if let Some(admin) = &s.admin {
            facts.push(admin.clone());
        }
        if let Some(t) = s.last_change_secs {
            facts.push(format!("changed {} ago", short_age(Duration::from_secs(t))));
        }
        if let Some(n) = s.sessions {
            facts.push(format!("{n} sessions"));
        }
        if let Some(w) = s.weight {
            facts.push(format!("weight {w}"));
        }
        lb_line.push(Span::styled(facts.join(" · "), theme.muted));
    } else {
        lb_line.push(Span::styled("not among the LB's servers", theme.muted));
    }
    let mut second = Vec::new();
    let separate = |spans: &mut Vec<Span<'a>>| {
        if !spans.is_empty() {
            spans.push(Span::styled(" · ", theme.muted));
        }
    };
    for (what, check) in [("readyz", row.readyz()), ("livez", row.livez())] {
        if let Some(c) = check {
            let (word, health) = probe_word(Some(c));
            separate(&mut second);
            second.push(Span::styled(format!("{what} "), theme.muted));
            second.push(Span::styled(word, health_style(theme, health)));
            if !c.passed() {
                second.push(Span::styled(format!(" ({})", c.why()), theme.text));
            }
            second.push(Span::styled(
                format!(" in {}ms", c.latency.as_millis()),
                theme.muted,
            ));
        }
    }
    if let Some(left) = row.cert_left(obs.observed_at) {
        let (word, health) = cert_word(Some(left), settings);
        separate(&mut second);
        second.push(Span::styled("cert expires in ", theme.muted));
        second.push(Span::styled(word, cert_style(theme, health)));
    } else if row.probe.is_none() {
        second.push(Span::styled(
            "not probed directly (not in --apiserver-backends)",
            theme.muted,
        ));
    }
    vec![Line::from(first), Line::from(lb_line), Line::from(second)]
}
