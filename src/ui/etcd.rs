//! The etcd quorum pane: quorum line, members table (leader marked), alarms, findings.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget};

use super::health_style;
use crate::config::theme::Theme;
use crate::model::State;
use crate::model::etcd::human_bytes;
use crate::model::finding::Health;

pub struct EtcdPane<'a> {
    pub state: &'a State,
    pub theme: &'a Theme,
}

impl Widget for EtcdPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let etcd = &self.state.etcd;
        let now = self.state.now;
        let theme = self.theme;
        let health = etcd.health(now);
        let block = super::pane_frame(
            "etcd quorum",
            health,
            (etcd.age(now), etcd.is_stale(now), " · connecting… "),
            Vec::new(),
            theme,
        );
        let inner = block.inner(area);
        block.render(area, buf);

        let Some(obs) = &etcd.last else {
            let text = if etcd.configured && etcd.endpoints.is_empty() {
                "Starting the lab…".to_string()
            } else if etcd.configured {
                format!("Connecting to {}…", etcd.endpoints.join(", "))
            } else {
                "etcd not configured: set --etcd-endpoints or KHA_ETCD_ENDPOINTS".to_string()
            };
            Paragraph::new(Span::styled(text, theme.muted)).render(inner, buf);
            return;
        };

        let findings = obs.findings(&etcd.settings);
        let q = obs.quorum();
        let quorum_health = if !q.has_quorum {
            Health::Crit
        } else if q.tolerates == 0 && q.members > 1 {
            Health::Warn
        } else {
            Health::Ok
        };
        let leader = obs.leader();
        let mut head = vec![Line::from(vec![
            Span::styled(q.summary(), health_style(theme, quorum_health)),
            Span::styled(
                format!("  leader {}", leader.map_or("none", |m| m.name.as_str())),
                theme.text,
            ),
        ])];
        if let Some(err) = &obs.member_list_error {
            head.push(Line::from(Span::styled(
                format!("member list: {err}"),
                theme.warn,
            )));
        }
        for a in &obs.alarms {
            head.push(Line::from(Span::styled(
                format!("ALARM {} on {}", a.alarm, a.member),
                theme.crit,
            )));
        }
        let visible_findings: Vec<_> = findings
            .iter()
            .filter(|f| f.severity > Health::Ok)
            .collect();
        let findings_height = u16::try_from(visible_findings.len().min(4)).unwrap_or(4);
        let head_height = u16::try_from(head.len()).unwrap_or(1);
        let [head_area, table_area, findings_area] = Layout::vertical([
            Constraint::Length(head_height),
            Constraint::Min(3),
            Constraint::Length(findings_height),
        ])
        .areas(inner);
        Paragraph::new(head).render(head_area, buf);

        let wide = inner.width >= 120;
        let leader_id = leader.map(|m| m.id);
        let mut header = vec![
            "", "NAME", "ENDPOINT", "HEALTH", "TERM", "INDEX", "LAG", "DB",
        ];
        if wide {
            header.extend(["IN USE", "VERSION", "LATENCY", "ERRORS"]);
        } else {
            header.push("LAT");
        }
        let rows = obs.members.iter().enumerate().map(|(i, m)| {
            let member_health = if m.is_healthy() {
                Health::Ok
            } else {
                Health::Crit
            };
            let word = match (m.is_healthy(), m.is_learner) {
                (true, true) => "learner",
                (true, false) => "healthy",
                (false, _) if m.status.is_some() => "no-quorum",
                (false, _) => "DOWN",
            };
            let mark = if Some(m.id) == leader_id && m.id != 0 {
                "*"
            } else {
                ""
            };
            let s = m.status.as_ref();
            let lag = obs.raft_lag(m).map_or("-".into(), |l| l.to_string());
            let endpoint = m
                .endpoint
                .split("//")
                .nth(1)
                .unwrap_or(&m.endpoint)
                .to_string();
            let latency = m
                .health
                .filter(|h| h.healthy)
                .map_or("-".into(), |h| format!("{}ms", h.latency.as_millis()));
            let mut cells = vec![
                Cell::from(Span::styled(mark, theme.accent)),
                Cell::from(m.name.clone()),
                Cell::from(endpoint),
                Cell::from(Span::styled(word, health_style(theme, member_health))),
                Cell::from(s.map_or("-".into(), |s| s.raft_term.to_string())),
                Cell::from(s.map_or("-".into(), |s| s.raft_index.to_string())),
                Cell::from(lag),
                Cell::from(s.map_or("-".into(), |s| human_bytes(s.db_size_bytes.max(0) as u64))),
            ];
            if wide {
                cells.push(Cell::from(s.map_or("-".into(), |s| {
                    human_bytes(s.db_size_in_use_bytes.max(0) as u64)
                })));
                cells.push(Cell::from(s.map_or("-".into(), |s| s.version.clone())));
                cells.push(Cell::from(latency));
                cells.push(Cell::from(Span::styled(m.errors.join("; "), theme.muted)));
            } else {
                cells.push(Cell::from(latency));
            }
            let row = Row::new(cells);
            if i == etcd.selected {
                row.style(theme.focus)
            } else {
                row
            }
        });
        let mut widths = vec![
            Constraint::Length(1),
            Constraint::Length(10),
            Constraint::Length(16),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(9),
        ];
        if wide {
            widths.extend([
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Min(10),
            ]);
        } else {
            widths.push(Constraint::Length(6));
        }
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.title))
            .column_spacing(1)
            .render(table_area, buf);

        let lines: Vec<Line> = visible_findings
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
