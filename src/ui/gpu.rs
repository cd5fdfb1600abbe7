//! The GPU nodes pane: per GPU node its readiness or cordon, requested / allocatable
//! `nvidia.com/gpu`, whether it carries a GPU taint and whether its pods tolerate it; the
//! GPU pods no node took; a `/` filter, sortable columns, a detail popup, the findings.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::health_style;
use super::table_pane::{self, Freshness, fact};
use crate::config::theme::Theme;
use crate::model::State;
use crate::model::finding::Health;
use crate::model::gpu::metrics::{GpuDevice, GpuThresholds};
use crate::model::gpu::{GpuNodeRow, GpuView, SORTS, visible};
use crate::model::kube::{Availability, Readiness};

pub struct GpuPane<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
}

/// How fresh the GPU data is (nodes and every GPU pod watch).
pub fn freshness(state: &State) -> Freshness {
    Freshness::of_watches(state, &[state.kube.gpu_pods_down_for(state.now)])
}

impl Widget for GpuPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let state = self.state;
        let theme = self.theme;
        let health = state.gpu_health();
        let fresh = freshness(state);
        let block = table_pane::block("GPU nodes", health, &fresh, theme);
        let inner = block.inner(area);
        block.render(area, buf);

        let kube = &state.kube;
        if !kube.nodes.has_data() {
            let text = match (&kube.nodes.availability, kube.configured) {
                (_, false) => "Kubernetes not configured: set KUBECONFIG or --kubeconfig".into(),
                (Availability::Forbidden { permission }, _) => {
                    format!("forbidden: kha needs {permission}")
                }
                (Availability::Down { error, .. }, _) => format!("cannot reach the API: {error}"),
                _ => "Listing nodes and GPU pods…".to_string(),
            };
            Paragraph::new(Span::styled(text, theme.muted))
                .wrap(Wrap { trim: true })
                .render(inner, buf);
            return;
        }
        let view = state.gpu();
        let tv = &state.gpu_view;
        let rows = visible(&view.rows, tv);
        let findings = table_pane::finding_lines(&view.findings, 4, theme);
        let pending = pending_lines(&view, theme);
        let [head, filter, table, pend, found] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(u16::try_from(pending.len()).unwrap_or(2)),
            Constraint::Length(u16::try_from(findings.len()).unwrap_or(4)),
        ])
        .areas(inner);
        let mut head_spans = head_line(&view, theme).spans;
        head_spans.extend(dcgm_summary(state, &view, theme));
        Paragraph::new(Line::from(head_spans)).render(head, buf);
        Paragraph::new(table_pane::filter_line(
            tv,
            &SORTS,
            rows.len(),
            view.rows.len(),
            theme,
        ))
        .render(filter, buf);
        if view.rows.is_empty() {
            Paragraph::new(Span::styled(
                "No GPU nodes (none with nvidia.com/gpu capacity or nvidia.com/gpu.present=true).",
                theme.muted,
            ))
            .wrap(Wrap { trim: true })
            .render(table, buf);
        } else {
            self.table(&rows, table, buf);
        }
        Paragraph::new(pending).render(pend, buf);
        Paragraph::new(findings).render(found, buf);
        if tv.detail_open
            && let Some(row) = rows.get(tv.selected)
        {
            table_pane::popup(
                inner,
                buf,
                row.name.clone(),
                detail_lines(row, &state.exporters.gpu_thresholds, theme),
                theme,
            );
        }
    }
}

fn head_line(view: &GpuView, theme: &Theme) -> Line<'static> {
    let zones: std::collections::BTreeSet<&str> =
        view.rows.iter().filter_map(|r| r.zone.as_deref()).collect();
    let free: u32 = view.rows.iter().map(GpuNodeRow::free).sum();
    Line::from(vec![
        Span::styled(
            format!("{} GPU nodes in {} zone(s)", view.rows.len(), zones.len()),
            if zones.len() > 1 {
                theme.ok
            } else {
                theme.warn
            },
        ),
        Span::styled(
            format!(
                " · {}/{} GPUs requested · {free} free",
                view.requested(),
                view.allocatable()
            ),
            theme.muted,
        ),
    ])
}

fn pending_lines(view: &GpuView, theme: &Theme) -> Vec<Line<'static>> {
    view.pending
        .iter()
        .take(2)
        .map(|p| {
            Line::from(vec![
                Span::styled("PENDING ", theme.warn),
                Span::styled(
                    format!("{}/{} wants {} GPU(s)", p.namespace, p.name, p.gpus),
                    theme.text,
                ),
            ])
        })
        .collect()
}

fn state_word(r: &GpuNodeRow) -> (String, Health) {
    match r.ready {
        Readiness::Ready if r.cordoned => ("cordoned".into(), Health::Warn),
        Readiness::Ready => ("Ready".into(), Health::Ok),
        other => (other.word().into(), Health::Crit),
    }
}

impl GpuPane<'_> {
    fn table(&self, rows: &[&GpuNodeRow], area: Rect, buf: &mut Buffer) {
        let theme = self.theme;
        let wide = area.width >= 120;
        let mut header = vec![
            "", "NODE", "ZONE", "STATE", "GPUS", "FREE", "TAINT", "PODS", "TOL",
        ];
        let dcgm = rows.iter().any(|r| !r.gpus.is_empty());
        if dcgm {
            header.extend(["UTIL", "TEMP"]);
        }
        if wide {
            header.extend(["PRODUCT", "GPU TAINT"]);
        }
        let selected = self.state.gpu_view.selected;
        let table_rows = rows.iter().enumerate().map(|(i, r)| {
            let health = r.health();
            let (state, state_health) = state_word(r);
            let (taint, taint_style) = if r.gpu_taints.is_empty() {
                ("NONE", theme.warn)
            } else {
                ("yes", theme.ok)
            };
            let intolerant = r.intolerant_pods();
            let (tol, tol_style) = match (r.gpu_taints.is_empty(), intolerant) {
                (true, _) => ("-".to_string(), theme.muted),
                (false, 0) => ("all".to_string(), theme.ok),
                (false, n) => (format!("{n} no"), theme.warn),
            };
            let mut cells = vec![
                Cell::from(Span::styled(
                    if health >= Health::Warn { "!" } else { "" },
                    health_style(theme, health),
                )),
                Cell::from(r.name.clone()).style(if i == selected {
                    theme.focus
                } else {
                    Style::default()
                }),
                Cell::from(r.zone.clone().unwrap_or("-".into())),
                Cell::from(Span::styled(state, health_style(theme, state_health))),
                Cell::from(format!("{}/{}", r.requested, r.allocatable)),
                Cell::from(Span::styled(
                    r.free().to_string(),
                    if r.free() == 0 {
                        theme.warn
                    } else {
                        theme.text
                    },
                )),
                Cell::from(Span::styled(taint, taint_style)),
                Cell::from(r.pods.len().to_string()),
                Cell::from(Span::styled(tol, tol_style)),
            ];
            if dcgm {
                let (util, temp, temp_health) = node_dcgm(r, &self.state.exporters.gpu_thresholds);
                cells.push(Cell::from(util));
                cells.push(Cell::from(Span::styled(
                    temp,
                    health_style(theme, temp_health),
                )));
            }
            if wide {
                cells.push(Cell::from(r.product.clone().unwrap_or("-".into())));
                cells.push(Cell::from(r.gpu_taints.join(", ")));
            }
            Row::new(cells)
        });
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Length(18),
            Constraint::Length(11),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Min(4),
        ];
        if dcgm {
            widths.extend([Constraint::Length(5), Constraint::Length(5)]);
        }
        if wide {
            widths.extend([Constraint::Length(24), Constraint::Min(20)]);
        }
        let table = Table::new(table_rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1);
        let mut selection = TableState::default().with_selected(Some(selected));
        StatefulWidget::render(table, area, buf, &mut selection);
    }
}

fn detail_lines(r: &GpuNodeRow, thresholds: &GpuThresholds, theme: &Theme) -> Vec<Line<'static>> {
    let (state, health) = state_word(r);
    let mut lines = vec![
        fact("zone", r.zone.clone().unwrap_or("-".into()), theme),
        Line::from(vec![
            Span::styled(format!("{:<14}", "state"), theme.muted),
            Span::styled(
                format!(
                    "{state}{}",
                    if r.cordoned {
                        " (cordoned: no new pods)"
                    } else {
                        ""
                    }
                ),
                health_style(theme, health),
            ),
        ]),
        fact(
            "GPUs",
            format!(
                "capacity {} · allocatable {} · requested {} · free {}",
                r.capacity,
                r.allocatable,
                r.requested,
                r.free()
            ),
            theme,
        ),
        fact(
            "GPU taints",
            if r.gpu_taints.is_empty() {
                "NONE: non-GPU pods can land here".to_string()
            } else {
                r.gpu_taints.join(", ")
            },
            theme,
        ),
    ];
    if !r.other_taints.is_empty() {
        lines.push(fact("other taints", r.other_taints.join(", "), theme));
    }
    for (k, v) in &r.labels {
        lines.push(fact("label", format!("{k}={v}"), theme));
    }
    if !r.gpus.is_empty() {
        lines.push(Line::from(Span::styled("GPUs (DCGM)", theme.title)));
        for g in &r.gpus {
            lines.push(gpu_line(g, thresholds, theme));
        }
    }
    lines.push(Line::from(Span::styled("pods", theme.title)));
    for p in &r.pods {
        let tol = match p.tolerates_taint {
            Some(true) => Span::styled(" tolerates the taint", theme.ok),
            Some(false) => Span::styled(" does NOT tolerate the taint", theme.warn),
            None => Span::styled("", theme.muted),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {}/{}", p.namespace, p.name), theme.text),
            Span::styled(format!(" {} · {} GPU(s)", p.phase, p.gpus), theme.muted),
            tol,
        ]));
    }
    lines
}

/// The node's mean GPU utilisation and hottest GPU, for the table.
fn node_dcgm(r: &GpuNodeRow, t: &GpuThresholds) -> (String, String, Health) {
    let utils: Vec<f64> = r.gpus.iter().filter_map(|g| g.util_percent).collect();
    let util = if utils.is_empty() {
        "-".to_string()
    } else {
        format!("{:.0}%", utils.iter().sum::<f64>() / utils.len() as f64)
    };
    let hottest = r
        .gpus
        .iter()
        .filter(|g| g.temp_celsius.is_some())
        .max_by(|a, b| {
            a.temp_celsius
                .partial_cmp(&b.temp_celsius)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    match hottest {
        Some(g) => (
            util,
            format!("{:.0}C", g.temp_celsius.unwrap_or_default()),
            g.temp_health(t),
        ),
        None => (util, "-".into(), Health::Ok),
    }
}

/// `DCGM 7 GPUs · 46 % busy · hottest 95 °C`, or why there is no DCGM data.
fn dcgm_summary(state: &State, view: &GpuView, theme: &Theme) -> Vec<Span<'static>> {
    let e = &state.exporters;
    if !e.configured {
        return vec![Span::styled(
            " · DCGM: no Prometheus configured",
            theme.muted,
        )];
    }
    let Some(obs) = &e.last else {
        return vec![Span::styled(" · DCGM: querying…", theme.muted)];
    };
    if let Some(err) = obs.unreachable.as_deref().or(obs.gpu.error()) {
        return vec![Span::styled(format!(" · DCGM: {err}"), theme.unknown)];
    }
    let gpus = e.gpus();
    if gpus.is_empty() {
        return vec![Span::styled(" · DCGM: no metrics", theme.muted)];
    }
    let utils: Vec<f64> = gpus.iter().filter_map(|g| g.util_percent).collect();
    let mean = utils.iter().sum::<f64>() / utils.len().max(1) as f64;
    let hottest = gpus.iter().max_by(|a, b| {
        a.temp_celsius
            .partial_cmp(&b.temp_celsius)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let idle = gpus.iter().filter(|g| g.idle_for_an_hour.is_some()).count();
    let joined: usize = view.rows.iter().map(|r| r.gpus.len()).sum();
    let mut out = vec![Span::styled(
        format!(
            " · DCGM {} GPUs ({joined} on listed nodes) · {mean:.0} % busy",
            gpus.len()
        ),
        theme.muted,
    )];
    if let Some(h) = hottest.filter(|h| h.temp_celsius.is_some()) {
        let health = h.temp_health(&e.gpu_thresholds);
        out.push(Span::styled(
            format!(" · hottest {:.0} °C", h.temp_celsius.unwrap_or_default()),
            if health == Health::Ok {
                theme.muted
            } else {
                health_style(theme, health)
            },
        ));
    }
    if idle > 0 {
        out.push(Span::styled(
            format!(" · {idle} idle but allocated"),
            theme.warn,
        ));
    }
    out
}

/// One GPU in the detail popup.
fn gpu_line(g: &GpuDevice, t: &GpuThresholds, theme: &Theme) -> Line<'static> {
    let num = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.0}{unit}"));
    let mut spans = vec![
        Span::styled(format!("  #{:<3}", g.gpu), theme.text),
        Span::styled(
            format!("{:>5} busy ", num(g.util_percent, " %")),
            theme.text,
        ),
        Span::styled(
            format!("{:>7} ", num(g.temp_celsius, " °C")),
            health_style(theme, g.temp_health(t)),
        ),
        Span::styled(
            format!(
                "mem {}/{} MiB · {} ",
                num(g.fb_used_mib, ""),
                num(g.fb_used_mib.zip(g.fb_free_mib).map(|(u, f)| u + f), ""),
                num(g.power_watts, " W")
            ),
            theme.muted,
        ),
        Span::styled(g.pod.clone().unwrap_or_else(|| "free".into()), theme.text),
    ];
    if let Some(max) = g.idle_for_an_hour {
        spans.push(Span::styled(
            format!(" IDLE 1h (max {max:.0} %)"),
            theme.warn,
        ));
    }
    Line::from(spans)
}
