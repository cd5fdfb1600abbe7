//! Themes: styles per role, never per widget. Shipped themes are embedded; a user file
//! `<config dir>/themes/<name>.toml` overrides roles of the shipped theme of that name
//! (or of `default` for a new name).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

use super::ConfigProblem;

pub const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

pub const ROLES: &[&str] = &[
    "text", "muted", "ok", "warn", "crit", "unknown", "focus", "accent", "title", "border",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub ok: Style,
    pub warn: Style,
    pub crit: Style,
    pub unknown: Style,
    pub focus: Style,
    pub accent: Style,
    pub title: Style,
    pub border: Style,
}

impl Theme {
    fn role_mut(&mut self, role: &str) -> Option<&mut Style> {
        Some(match role {
            "text" => &mut self.text,
            "muted" => &mut self.muted,
            "ok" => &mut self.ok,
            "warn" => &mut self.warn,
            "crit" => &mut self.crit,
            "unknown" => &mut self.unknown,
            "focus" => &mut self.focus,
            "accent" => &mut self.accent,
            "title" => &mut self.title,
            "border" => &mut self.border,
            _ => return None,
        })
    }

    fn blank(name: &str) -> Self {
        let s = Style::default();
        Theme {
            name: name.into(),
            text: s,
            muted: s,
            ok: s,
            warn: s,
            crit: s,
            unknown: s,
            focus: s,
            accent: s,
            title: s,
            border: s,
        }
    }

    /// Apply a theme file's roles over `self`. Errors name the line.
    pub fn apply(&mut self, path: &Path, text: &str) -> Result<(), ConfigProblem> {
        let table: BTreeMap<String, toml::Spanned<String>> =
            toml::from_str(text).map_err(|e| ConfigProblem::from_toml(path, text, &e))?;
        let mut next = self.clone();
        for (role, spec) in &table {
            let offset = Some(spec.span().start);
            let style = parse_style(spec.get_ref())
                .map_err(|m| ConfigProblem::at(path, text, offset, m))?;
            match next.role_mut(role) {
                Some(slot) => *slot = style,
                None => {
                    return Err(ConfigProblem::at(
                        path,
                        text,
                        offset,
                        format!("unknown role {role:?} (roles: {})", ROLES.join(", ")),
                    ));
                }
            }
        }
        *self = next;
        Ok(())
    }

    /// A shipped theme by name.
    pub fn shipped(name: &str) -> Option<Theme> {
        let (_, text) = SHIPPED.iter().find(|(n, _)| *n == name)?;
        let mut theme = Theme::blank(name);
        theme
            .apply(Path::new(&format!("themes/{name}.toml")), text)
            .ok()?;
        Some(theme)
    }

    /// The theme to use: `name` (mono when `no_color`), with the user's file over it.
    pub fn load(name: &str, no_color: bool, config_dir: &Path) -> (Theme, Vec<ConfigProblem>) {
        let name = if no_color { "mono" } else { name };
        let mut problems = Vec::new();
        let fallback = || Theme::shipped("default").unwrap_or_else(|| Theme::blank("default"));
        let mut theme = Theme::shipped(name).unwrap_or_else(fallback);
        let user = config_dir.join("themes").join(format!("{name}.toml"));
        match std::fs::read_to_string(&user) {
            Ok(text) => {
                theme.name = name.to_string();
                if let Err(p) = theme.apply(&user, &text) {
                    problems.push(p);
                }
            }
            Err(_) if Theme::shipped(name).is_none() => problems.push(ConfigProblem {
                path: user,
                line: None,
                message: format!(
                    "no theme {name:?} (shipped: {})",
                    SHIPPED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            Err(_) => {}
        }
        (theme, problems)
    }
}

/// "black on cyan bold" -> Style.
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let mut style = Style::default();
    let mut words = spec.split_whitespace();
    while let Some(word) = words.next() {
        let lower = word.to_ascii_lowercase();
        let modifier = match lower.as_str() {
            "bold" => Some(Modifier::BOLD),
            "dim" => Some(Modifier::DIM),
            "italic" => Some(Modifier::ITALIC),
            "underlined" => Some(Modifier::UNDERLINED),
            "reversed" => Some(Modifier::REVERSED),
            _ => None,
        };
        if let Some(m) = modifier {
            style = style.add_modifier(m);
        } else if lower == "on" {
            let bg = words
                .next()
                .ok_or_else(|| format!("{spec:?}: 'on' needs a colour after it"))?;
            style = style.bg(parse_color(bg)?);
        } else {
            style = style.fg(parse_color(word)?);
        }
    }
    Ok(style)
}

fn parse_color(word: &str) -> Result<Color, String> {
    Color::from_str(word).map_err(|_| format!("unknown colour {word:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_parse() {
        assert_eq!(
            parse_style("black on cyan bold"),
            Ok(Style::default().fg(Color::Black).bg(Color::Cyan).bold())
        );
        assert_eq!(
            parse_style("#ff8800"),
            Ok(Style::default().fg(Color::Rgb(255, 136, 0)))
        );
        assert!(parse_style("blu").unwrap_err().contains("blu"));
        assert!(parse_style("red on").is_err());
    }
}
