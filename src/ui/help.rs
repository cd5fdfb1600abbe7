//! The help overlay, generated from the active keymap.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use crate::config::keymap::Keymap;
use crate::config::theme::Theme;
use crate::model::Notice;

pub struct Help<'a> {
    pub keymap: &'a Keymap,
    pub theme: &'a Theme,
    pub notices: &'a [Notice],
    /// Lines scrolled past (↑/↓, PgUp/PgDn).
    pub scroll: u16,
}

impl Widget for Help<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        Clear.render(area, buf);
        let title = format!(
            " help · keymap {} · ↑/↓ PgUp/PgDn scroll · any other key closes ",
            self.keymap.name
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(self.theme.focus)
            .title(Span::styled(title, self.theme.title));
        let mut lines: Vec<Line> = self
            .keymap
            .bindings
            .iter()
            .filter(|b| !b.keys.is_empty())
            .map(|b| {
                Line::from(vec![
                    Span::styled(format!("{:<16}", b.keys.join(" ")), self.theme.accent),
                    Span::styled(b.desc.clone(), self.theme.text),
                ])
            })
            .collect();
        if !self.notices.is_empty() {
            lines.push(Line::from(Span::styled(
                "recent messages:",
                self.theme.title,
            )));
            for n in self.notices.iter().rev().take(5) {
                lines.push(Line::from(Span::styled(n.text.clone(), self.theme.warn)));
            }
        }
        // No further than the last line at the bottom (wrapped lines counted as the
        // paragraph will wrap them, near enough for a scroll limit).
        let inner = block.inner(area);
        let width = usize::from(inner.width.max(1));
        let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
        let last = rows.saturating_sub(usize::from(inner.height));
        let scroll = self.scroll.min(u16::try_from(last).unwrap_or(u16::MAX));
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: true })
            .scroll((scroll, 0))
            .render(area, buf);
    }
}
