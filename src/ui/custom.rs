//! The Ceph, Velero and Rollouts panes as the cockpit shows them: the pane itself once
//! its watch has listed, or what stands in the way (not configured, not installed with
//! the install hint, forbidden with the missing permission, waiting for the first list).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::ceph::parts::{Freshness, PaneCursor};
use super::{ceph, rollouts, velero};
use crate::config::theme::Theme;
use crate::model::kube::Availability;
use crate::model::table_view::TableView;
use crate::model::{PaneId, State};

pub struct CustomPane<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
    pub pane: PaneId,
}

fn cursor(v: &TableView) -> PaneCursor {
    PaneCursor {
        selected: v.selected,
        offset: v.offset,
        filter: (!v.filter.is_empty()).then(|| v.filter.clone()),
        sort: v.sort,
        descending: v.descending,
    }
}

/// Why the pane cannot show its objects, if something stands in the way.
pub fn obstacle(state: &State, pane: PaneId) -> Option<Vec<String>> {
    if !state.kube.configured {
        return Some(vec!["not configured".into(), pane.setup_hint().to_string()]);
    }
    let feeds = state.kube.pane_feeds(pane);
    let (kind, feed) = feeds.iter().find(|(k, _)| k.is_primary())?;
    match &feed.availability {
        Availability::NotInstalled { hint } => Some(vec![
            format!("{} is not installed in this cluster.", kind.resource()),
            format!("Install it: {hint}"),
        ]),
        Availability::Forbidden { permission } => Some(vec![
            "kha may not read this resource.".into(),
            format!("Missing permission: {permission}"),
        ]),
        Availability::Connecting => Some(vec!["waiting for the first list…".into()]),
        _ if feed.updated_at.is_none() => Some(vec![feed.availability.word().to_string()]),
        _ => None,
    }
}

impl Widget for CustomPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (state, theme, pane) = (self.state, self.theme, self.pane);
        if let Some(lines) = obstacle(state, pane) {
            let block = Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border)
                .title(Span::styled(format!(" {} ", pane.title()), theme.title));
            let text: Vec<Line> = lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    Line::from(Span::styled(
                        l,
                        if i == 0 { theme.warn } else { theme.text },
                    ))
                })
                .collect();
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(block)
                .render(area, buf);
            return;
        }
        let (age, stale) = state.custom_freshness(pane);
        let freshness = Freshness { age, stale };
        // The selected row's full detail, for the popup (Enter).
        let (detail, popup): (Vec<Line<'static>>, bool) = match pane {
            PaneId::Ceph => {
                let mut view = state.ceph();
                view.findings.extend(state.metric_findings(pane));
                let c = cursor(&state.ceph_view);
                ceph::CephPane {
                    view: &view,
                    theme,
                    cursor: &c,
                    freshness,
                }
                .render(area, buf);
                super::exporter_line::ceph(&state.exporters.ceph(), area, buf, theme);
                let rows = ceph::visible_checks(&view, &c);
                let detail = selected(&rows, c.selected)
                    .map(|(cl, k)| ceph::detail_lines(cl, k, theme))
                    .unwrap_or_default();
                (detail, state.ceph_view.detail_open)
            }
            PaneId::Velero => {
                let mut view = state.velero();
                view.findings.extend(state.metric_findings(pane));
                let c = cursor(&state.velero_view);
                velero::VeleroPane {
                    view: &view,
                    theme,
                    cursor: &c,
                    freshness,
                }
                .render(area, buf);
                super::exporter_line::velero(&state.exporters.velero(), area, buf, theme);
                let rows = velero::visible_backups(&view, &c);
                let detail = selected(&rows, c.selected)
                    .map(|b| velero::detail_lines(b, theme))
                    .unwrap_or_default();
                (detail, state.velero_view.detail_open)
            }
            _ => {
                let view = state.rollouts();
                let c = cursor(&state.rollouts_view);
                rollouts::RolloutsPane {
                    view: &view,
                    theme,
                    cursor: &c,
                    freshness,
                }
                .render(area, buf);
                let rows = rollouts::visible_rollouts(&view, &c);
                let detail = selected(&rows, c.selected)
                    .map(|r| rollouts::detail_lines(r, theme))
                    .unwrap_or_default();
                (detail, state.rollouts_view.detail_open)
            }
        };
        if popup && !detail.is_empty() {
            let w = area.width.saturating_sub(6).max(20);
            let h = (detail.len() as u16 + 4)
                .min(area.height.saturating_sub(2))
                .max(5);
            let popup_area = super::centered(area, w, h);
            Clear.render(popup_area, buf);
            Paragraph::new(detail)
                .wrap(Wrap { trim: false })
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .border_style(theme.focus)
                        .title(Span::styled(" detail · Esc closes ", theme.title)),
                )
                .render(popup_area, buf);
        }
    }
}

/// The selected row (the selection clamped to what the filter leaves).
fn selected<T>(rows: &[T], index: usize) -> Option<&T> {
    rows.get(index.min(rows.len().saturating_sub(1)))
}

/// The tile body of a pane whose watch has listed.
pub fn tile_lines(state: &State, pane: PaneId, theme: &Theme) -> Vec<Line<'static>> {
    match pane {
        PaneId::Ceph => ceph::tile_lines(&state.ceph(), theme),
        PaneId::Velero => velero::tile_lines(&state.velero(), theme),
        _ => rollouts::tile_lines(&state.rollouts(), theme),
    }
}
