//! The exporter metrics of the Ceph and Velero panes, on the pane's bottom border so the
//! CR-driven layout above stays as it is: `ceph-mgr: HEALTH_WARN · OSDs 2/3 up, 3/3 in`,
//! `velero metrics: daily 3h ago · hourly-db 30h ago`, or "no metrics".

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::health_style;
use crate::config::theme::Theme;
use crate::model::ceph::metrics::CephMetrics;
use crate::model::exporters::MetricsStatus;
use crate::model::finding::Health;
use crate::model::velero::metrics::VeleroMetrics;

fn draw(spans: Vec<Span<'static>>, area: Rect, buf: &mut Buffer) {
    if area.height < 2 || area.width < 6 {
        return;
    }
    let row = Rect {
        x: area.x + 2,
        y: area.y + area.height - 1,
        width: area.width - 4,
        height: 1,
    };
    let mut all = vec![Span::raw(" ")];
    all.extend(spans);
    all.push(Span::raw(" "));
    Line::from(all).render(row, buf);
}

fn absent<T>(label: &str, m: &MetricsStatus<T>, theme: &Theme) -> Option<Vec<Span<'static>>> {
    let (text, style): (String, Style) = match m {
        MetricsStatus::NotConfigured => return Some(Vec::new()),
        MetricsStatus::NoMetrics => (format!("{label}: no metrics"), theme.muted),
        MetricsStatus::Failed { error } => (format!("{label}: {error}"), theme.unknown),
        MetricsStatus::Read { .. } => return None,
    };
    Some(vec![Span::styled(text, style)])
}

pub fn ceph(m: &MetricsStatus<CephMetrics>, area: Rect, buf: &mut Buffer, theme: &Theme) {
    if let Some(spans) = absent("ceph-mgr", m, theme) {
        if !spans.is_empty() {
            draw(spans, area, buf);
        }
        return;
    }
    let Some(c) = m.value() else {
        return;
    };
    let mut spans = vec![Span::styled("ceph-mgr: ", theme.muted)];
    if let Some(word) = c.health_word() {
        spans.push(Span::styled(word, health_style(theme, c.health())));
        spans.push(Span::styled(" · ", theme.muted));
    }
    let osd = |n: usize, what: &str| {
        Span::styled(
            format!("{n}/{} {what}", c.osds_total),
            if n < c.osds_total {
                theme.warn
            } else {
                theme.ok
            },
        )
    };
    spans.push(Span::styled("OSDs ", theme.muted));
    spans.push(osd(c.osds_up, "up"));
    spans.push(Span::styled(", ", theme.muted));
    spans.push(osd(c.osds_in, "in"));
    draw(spans, area, buf);
}

pub fn velero(m: &MetricsStatus<VeleroMetrics>, area: Rect, buf: &mut Buffer, theme: &Theme) {
    if let Some(spans) = absent("velero metrics", m, theme) {
        if !spans.is_empty() {
            draw(spans, area, buf);
        }
        return;
    }
    let Some(v) = m.value() else {
        return;
    };
    let mut spans = vec![Span::styled("velero metrics: last success ", theme.muted)];
    for (i, s) in v.schedules.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.muted));
        }
        let health = s.health();
        spans.push(Span::styled(
            format!(
                "{} {}h ago",
                s.schedule,
                (s.age_secs / 3600.0).round() as u64
            ),
            if health == Health::Ok {
                theme.ok
            } else {
                health_style(theme, health)
            },
        ));
    }
    draw(spans, area, buf);
}
