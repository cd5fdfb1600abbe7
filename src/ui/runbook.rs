//! The runbook overlay: the pane's menu of guided actions, the plan's preview with the
//! confirmation its risk needs, and the run's live output.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::config::theme::Theme;
use crate::model::State;
use crate::model::runbook_ui::{RunbookScreen, menu_for, preview_lines};
use crate::runbook::{Risk, plan};

pub struct RunbookOverlay<'a> {
    pub state: &'a State,
    pub screen: &'a RunbookScreen,
    pub theme: &'a Theme,
    /// The key that copies the plan or the run's output, as the keymap binds it.
    pub copy_key: Option<String>,
}

fn risk_style(theme: &Theme, risk: Risk) -> Style {
    match risk {
        Risk::Safe => theme.ok,
        Risk::Disruptive => theme.warn,
        Risk::Destructive => theme.crit,
    }
}

/// A list with the selected entry marked, scrolled so that it stays on screen.
fn list_lines<'a>(
    theme: &Theme,
    entries: impl Iterator<Item = &'a str>,
    selected: usize,
) -> Vec<Line<'static>> {
    entries
        .enumerate()
        .skip(selected.saturating_sub(LIST_ROWS_ABOVE))
        .map(|(i, entry)| {
            let (mark, style) = if i == selected {
                (">", theme.focus)
            } else {
                (" ", theme.text)
            };
            Line::from(Span::styled(format!("{mark} {entry}"), style))
        })
        .collect()
}

/// The prompt, then where the copy key is (the plan or the output to paste elsewhere).
fn with_copy_hint<'a>(mut prompt: Line<'a>, key: Option<&str>, theme: &Theme) -> Line<'a> {
    if let Some(k) = key {
        prompt
            .spans
            .push(Span::styled(format!(" · {k}: copy"), theme.muted));
    }
    prompt
}

/// How many entries above the selected one a long list keeps in view.
const LIST_ROWS_ABOVE: usize = 6;

impl Widget for RunbookOverlay<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        Clear.render(area, buf);
        let theme = self.theme;
        let (title, body, prompt): (String, Vec<Line>, Line) = match self.screen {
            RunbookScreen::Menu { pane, selected } => (
                format!(" {} runbooks ", pane.title()),
                list_lines(theme, menu_for(*pane).iter().copied(), *selected),
                Line::from(Span::styled(
                    "Enter: preview the plan · Esc: close",
                    theme.muted,
                )),
            ),
            RunbookScreen::Loading { what, .. } => (
                " reading ".into(),
                vec![Line::from(Span::styled(what.clone(), theme.text))],
                Line::from(Span::styled(
                    "the plan opens when the read is done · Esc: give up",
                    theme.warn,
                )),
            ),
            RunbookScreen::Choose {
                title,
                options,
                selected,
            } => (
                format!(" {title} "),
                list_lines(theme, options.iter().map(|(l, _)| l.as_str()), *selected),
                Line::from(Span::styled(
                    "Enter: preview the plan · Esc: close",
                    theme.muted,
                )),
            ),
            RunbookScreen::Input {
                prompt, hint, text, ..
            } => (
                format!(" {prompt} "),
                vec![
                    Line::from(Span::styled(format!("> {text}_"), theme.accent)),
                    Line::default(),
                    Line::from(Span::styled(hint.clone(), theme.muted)),
                ],
                Line::from(Span::styled(
                    "Enter: preview the plan · Backspace: erase · Esc: close",
                    theme.muted,
                )),
            ),
            RunbookScreen::Preview {
                runbook,
                scroll,
                typed,
            } => {
                let lines = preview_lines(runbook)
                    .into_iter()
                    .skip(*scroll)
                    .map(|l| {
                        let style = if l.starts_with('#') {
                            theme.title
                        } else if l.starts_with("- [ ]") || l.starts_with("**") {
                            theme.crit
                        } else {
                            theme.text
                        };
                        Line::from(Span::styled(l, style))
                    })
                    .collect();
                let risk = runbook.risk();
                let prompt = if !runbook.unmet().is_empty() {
                    Line::from(Span::styled(
                        "preconditions not met: kha will refuse · Esc: close",
                        theme.crit,
                    ))
                } else {
                    let ask = match risk {
                        Risk::Safe => "Enter: run · Esc: cancel".to_string(),
                        Risk::Disruptive => "y: run · n/Esc: cancel".to_string(),
                        Risk::Destructive => format!(
                            "type the cluster name ({}) and Enter to run: {typed}_",
                            runbook.cluster
                        ),
                    };
                    Line::from(vec![
                        Span::styled(format!(" {} ", risk.as_str()), risk_style(theme, risk)),
                        Span::styled(format!(" {ask}"), theme.accent),
                    ])
                };
                let prompt = with_copy_hint(prompt, self.copy_key.as_deref(), theme);
                let read_only = if self.state.read_only {
                    " · read-only: the engine will refuse"
                } else {
                    ""
                };
                (
                    format!(
                        " {} · {}{read_only} ",
                        runbook.title,
                        plan::confirmation(runbook)
                    ),
                    lines,
                    prompt,
                )
            }
            RunbookScreen::Running {
                title,
                lines,
                finished,
                scroll,
                asking,
                cancelling,
            } => {
                let body = lines
                    .iter()
                    .skip(*scroll)
                    .map(|l| {
                        let style = if l.contains("FAILED") {
                            theme.crit
                        } else if l.trim() == "ok" {
                            theme.ok
                        } else {
                            theme.text
                        };
                        Line::from(Span::styled(l.clone(), style))
                    })
                    .collect();
                let prompt = match (finished, asking) {
                    (None, Some((step, skippable))) => Line::from(Span::styled(
                        format!(
                            "step {step} failed: r retry{} · a abort",
                            if *skippable { " · s skip" } else { "" }
                        ),
                        theme.crit,
                    )),
                    (None, None) if *cancelling => Line::from(Span::styled(
                        "cancelling: stops before the next step…",
                        theme.warn,
                    )),
                    (None, None) => Line::from(Span::styled(
                        "running… · c: cancel before the next step",
                        theme.warn,
                    )),
                    (Some(Ok(s)), _) => {
                        Line::from(Span::styled(format!("done: {s} · Esc: close"), theme.ok))
                    }
                    (Some(Err(e)), _) => Line::from(Span::styled(
                        format!("stopped: {e} · Esc: close"),
                        theme.crit,
                    )),
                };
                (
                    format!(" {title} "),
                    body,
                    with_copy_hint(prompt, self.copy_key.as_deref(), theme),
                )
            }
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.focus)
            .title(Span::styled(title, theme.title));
        let inner = block.inner(area);
        block.render(area, buf);
        let [text, footer] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(2)]).areas(inner);
        Paragraph::new(body)
            .wrap(Wrap { trim: false })
            .render(text, buf);
        Paragraph::new(prompt)
            .wrap(Wrap { trim: true })
            .render(footer, buf);
    }
}
