//! The Thanos / metrics pane: build info, Thanos stores (type, health, time range, labels)
//! or "not Thanos", whether each resolution reaches back as far as the retention promises,
//! scrape targets down and firing alerts by severity. Its cockpit tile too.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{health_style, pane_frame, short_age};
use crate::config::theme::Theme;
use crate::model::State;
use crate::model::finding::Health;
use crate::model::thanos::{
    Fetched, MetricsObservation, Reach, StoresReading, ThanosStore, duration_text,
};

pub struct ThanosPane<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        format!("{text:<width$}")
    } else {
        let head: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

/// `3h ago`, `now` (a sidecar's head), `-` (unknown): a store's time bound.
fn bound(ms: i64, now: SystemTime) -> String {
    if ms == i64::MAX {
        return "now".into();
    }
    if ms == i64::MIN {
        return "-".into();
    }
    let Ok(ms) = u64::try_from(ms) else {
        return "-".into();
    };
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    match now.duration_since(at) {
        Ok(d) if d.as_secs() >= 2 * 86_400 => format!("{}d ago", d.as_secs() / 86_400),
        Ok(d) => format!("{} ago", short_age(d)),
        Err(_) => "now".into(),
    }
}

impl Widget for ThanosPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let m = &self.state.metrics;
        let now = self.state.now;
        let theme = self.theme;
        let health = m.health(now);
        let block = pane_frame(
            "Thanos / metrics",
            health,
            (m.age(now), m.is_stale(now), " · connecting… "),
            Vec::new(),
            theme,
        );
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(obs) = &m.last else {
            let text = match &m.url {
                None if !m.configured => {
                    "Not configured: set --prometheus-url (KHA_PROMETHEUS_URL) or the \
                     profile's prometheus_url."
                        .to_string()
                }
                None => "Starting the lab…".to_string(),
                Some(url) => format!("Asking {url} for stores, targets and alerts…"),
            };
            Paragraph::new(Span::styled(text, theme.muted))
                .wrap(Wrap { trim: true })
                .render(inner, buf);
            return;
        };
        if let Some(e) = &obs.unreachable {
            let lines = vec![
                Line::from(Span::styled(
                    format!(
                        "Cannot reach {}",
                        m.url.as_deref().unwrap_or("the metrics API")
                    ),
                    theme.unknown,
                )),
                Line::from(Span::styled(e.clone(), theme.muted)),
            ];
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .render(inner, buf);
            return;
        }
        let width = usize::from(inner.width);
        let mut lines = vec![head_line(obs, m.url.as_deref(), theme)];
        lines.extend(store_lines(obs, now, width, theme));
        lines.push(retention_line(obs, theme));
        lines.extend(target_lines(obs, width, theme));
        let [top, bottom] = Layout::vertical([
            Constraint::Length(u16::try_from(lines.len()).unwrap_or(u16::MAX)),
            Constraint::Min(0),
        ])
        .areas(inner);
        Paragraph::new(lines).render(top, buf);
        Paragraph::new(alert_lines(obs, width, theme)).render(bottom, buf);
    }
}

fn head_line(obs: &MetricsObservation, url: Option<&str>, theme: &Theme) -> Line<'static> {
    let what = match (&obs.build, obs.is_thanos()) {
        (Fetched::Read { value }, true) => format!("Thanos Query {}", value.version),
        (Fetched::Read { value }, false) => format!("Prometheus {}", value.version),
        (Fetched::Failed { .. }, true) => "Thanos Query".to_string(),
        (Fetched::Failed { .. }, false) => "metrics API".to_string(),
    };
    let go = obs
        .build
        .value()
        .and_then(|b| b.go_version.clone())
        .map(|g| format!(" ({g})"))
        .unwrap_or_default();
    let mut spans = vec![Span::styled(format!("{what}{go}"), theme.accent)];
    if let Some(url) = url {
        spans.push(Span::styled(format!(" · {url}"), theme.muted));
    }
    if let Some(e) = obs.build.error() {
        spans.push(Span::styled(format!(" · build info: {e}"), theme.unknown));
    }
    Line::from(spans)
}

fn store_lines(
    obs: &MetricsObservation,
    now: SystemTime,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let stores = match &obs.stores {
        StoresReading::NotThanos => {
            return vec![Line::from(Span::styled(
                "Stores: not Thanos — /api/v1/stores is not served (a plain Prometheus); \
                 stores and retention need Thanos Query.",
                theme.muted,
            ))];
        }
        StoresReading::Failed { error } => {
            return vec![Line::from(Span::styled(
                format!("Stores: cannot read: {error}"),
                theme.unknown,
            ))];
        }
        StoresReading::Stores { stores } => stores,
    };
    let healthy = stores.iter().filter(|s| s.healthy()).count();
    let summary_health = if stores.is_empty() || healthy == 0 {
        Health::Crit
    } else if healthy < stores.len() {
        Health::Warn
    } else {
        Health::Ok
    };
    let mut out = vec![Line::from(vec![
        Span::styled("Stores ", theme.title),
        Span::styled(
            format!("{healthy}/{} healthy", stores.len()),
            health_style(theme, summary_health),
        ),
        Span::styled(
            format!(
                "   {:<8} {:<22} {:<7} {:<9} {:<7} labels",
                "type", "endpoint", "health", "from", "to"
            ),
            theme.muted,
        ),
    ])];
    for s in stores {
        out.push(store_line(s, now, width, theme));
    }
    out
}

fn store_line(s: &ThanosStore, now: SystemTime, width: usize, theme: &Theme) -> Line<'static> {
    let (word, style) = if s.healthy() {
        ("up", theme.ok)
    } else {
        ("DOWN", theme.crit)
    };
    let fixed = format!("  {} {} ", cut(&s.component, 8), cut(&s.name, 22));
    let times = format!(
        " {} {} ",
        cut(&bound(s.min_time_ms, now), 9),
        cut(&bound(s.max_time_ms, now), 7)
    );
    let rest = width.saturating_sub(fixed.chars().count() + 7 + times.chars().count());
    let tail = match &s.last_error {
        Some(e) => Span::styled(cut(e, rest), theme.crit),
        None => Span::styled(cut(&s.labels_text(), rest), theme.muted),
    };
    Line::from(vec![
        Span::styled(fixed, theme.text),
        Span::styled(format!("{word:<7}"), style),
        Span::styled(times, theme.text),
        tail,
    ])
}

fn retention_line(obs: &MetricsObservation, theme: &Theme) -> Line<'static> {
    let mut spans = vec![Span::styled("Retention ", theme.title)];
    if obs.retention.is_empty() {
        spans.push(Span::styled(
            if obs.is_thanos() {
                "not checked"
            } else {
                "needs Thanos (downsampled data)"
            },
            theme.muted,
        ));
        return Line::from(spans);
    }
    for c in &obs.retention {
        let expected = duration_text(Duration::from_secs(c.expected_secs));
        let (text, style) = match &c.reach {
            Reach::Reaches => (format!("{} {expected} ok", c.resolution.label()), theme.ok),
            Reach::FallsShort => (
                format!("{} {expected} FALLS SHORT", c.resolution.label()),
                theme.warn,
            ),
            Reach::NotChecked => (
                format!("{} not promised", c.resolution.label()),
                theme.muted,
            ),
            Reach::Failed { .. } => (format!("{} unknown", c.resolution.label()), theme.unknown),
        };
        spans.push(Span::styled(text, style));
        spans.push(Span::styled(" · ", theme.muted));
    }
    spans.pop();
    Line::from(spans)
}

fn target_lines(obs: &MetricsObservation, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let t = match &obs.targets {
        Fetched::Failed { error } => {
            return vec![Line::from(Span::styled(
                format!("Targets: cannot read: {error}"),
                theme.unknown,
            ))];
        }
        Fetched::Read { value } => value,
    };
    let style = if t.down.is_empty() {
        theme.ok
    } else {
        theme.warn
    };
    let mut out = vec![Line::from(vec![
        Span::styled("Targets ", theme.title),
        Span::styled(format!("{} of {} down", t.down.len(), t.total), style),
    ])];
    for d in t.down.iter().take(3) {
        let text = format!("  {}/{}  {}", d.job, d.instance, d.last_error);
        out.push(Line::from(Span::styled(cut(&text, width), theme.warn)));
    }
    if t.down.len() > 3 {
        out.push(Line::from(Span::styled(
            format!("  … and {} more", t.down.len() - 3),
            theme.muted,
        )));
    }
    out
}

fn alert_lines(obs: &MetricsObservation, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let alerts = match &obs.alerts {
        Fetched::Failed { error } => {
            return vec![Line::from(Span::styled(
                format!("Alerts: cannot read: {error}"),
                theme.unknown,
            ))];
        }
        Fetched::Read { value } => value,
    };
    let firing = obs.firing();
    let pending = alerts.len() - firing.len();
    let mut out = vec![Line::from(vec![
        Span::styled("Alerts ", theme.title),
        Span::styled(
            format!("{} firing, {pending} pending", firing.len()),
            health_style(
                theme,
                firing
                    .iter()
                    .map(|a| a.health())
                    .max()
                    .unwrap_or(Health::Ok),
            ),
        ),
    ])];
    for a in firing {
        let health = a.health();
        let style = if health == Health::Ok {
            theme.muted
        } else {
            health_style(theme, health)
        };
        let severity = if a.severity.is_empty() {
            "-"
        } else {
            &a.severity
        };
        let summary = a.summary.as_deref().unwrap_or("");
        let fixed = format!("  {:<8} {} ", cut(severity, 8), cut(&a.name, 26));
        let rest = width.saturating_sub(fixed.chars().count());
        out.push(Line::from(vec![
            Span::styled(fixed, style),
            Span::styled(cut(summary, rest), theme.text),
        ]));
    }
    out
}

/// The cockpit tile: health, freshness, Thanos or not, stores, targets, alerts.
pub fn tile(state: &State, theme: &Theme) -> (Health, Vec<Line<'static>>) {
    let m = &state.metrics;
    let now = state.now;
    let health = m.health(now);
    let status = |suffix: String| {
        Line::from(vec![
            Span::styled(health.label(), health_style(theme, health)),
            Span::styled(
                if suffix.is_empty() {
                    String::new()
                } else {
                    format!("  {suffix}")
                },
                theme.muted,
            ),
        ])
    };
    let Some(obs) = &m.last else {
        let text = if m.url.is_some() {
            "querying…"
        } else {
            "starting the lab…"
        };
        return (health, vec![status(String::new()), Line::from(text)]);
    };
    let age = m.age(now).map(short_age).unwrap_or_default();
    let age = if m.is_stale(now) {
        format!("STALE {age}")
    } else {
        age
    };
    let mut lines = vec![status(age)];
    if let Some(e) = &obs.unreachable {
        lines.push(Line::from(Span::styled(
            format!("unreachable: {e}"),
            theme.unknown,
        )));
        return (health, lines);
    }
    lines.push(Line::from(match &obs.stores {
        StoresReading::Stores { stores } => {
            let ok = stores.iter().filter(|s| s.healthy()).count();
            Span::styled(
                format!("{ok}/{} stores healthy", stores.len()),
                if ok == stores.len() {
                    theme.ok
                } else {
                    theme.warn
                },
            )
        }
        StoresReading::NotThanos => Span::styled("not Thanos", theme.muted),
        StoresReading::Failed { .. } => Span::styled("stores unknown", theme.unknown),
    }));
    let firing = obs.firing();
    let worst = firing
        .iter()
        .map(|a| a.health())
        .max()
        .unwrap_or(Health::Ok);
    let down = obs.targets.value().map_or(0, |t| t.down.len());
    lines.push(Line::from(Span::styled(
        format!("{} alerts firing · {down} targets down", firing.len()),
        health_style(theme, worst),
    )));
    (health, lines)
}
