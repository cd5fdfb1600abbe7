//! Keymaps: keys -> named [`Action`]s with descriptions. `default` is complete; other
//! shipped keymaps and user files (`<config dir>/keymaps/<name>.toml`) override it
//! action by action.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;

use super::ConfigProblem;
use crate::model::Action;

pub const SHIPPED: &[(&str, &str)] = &[
    ("default", include_str!("../../keymaps/default.toml")),
    ("vim", include_str!("../../keymaps/vim.toml")),
];

const NAMED_KEYS: &[&str] = &[
    "enter",
    "esc",
    "tab",
    "backtab",
    "backspace",
    "up",
    "down",
    "left",
    "right",
    "home",
    "end",
    "pageup",
    "pagedown",
    "delete",
    "insert",
    "space",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "f8",
    "f9",
    "f10",
    "f11",
    "f12",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingFile {
    keys: Option<Vec<toml::Spanned<String>>>,
    desc: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub action: Action,
    pub keys: Vec<String>,
    pub desc: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    pub name: String,
    /// In `Action::ALL` order, for the help screen.
    pub bindings: Vec<Binding>,
    lookup: HashMap<String, Action>,
}

/// Checks a key spec such as "q", "ctrl-c", "pagedown" and returns its canonical form.
pub fn normalize_key(spec: &str) -> Result<String, String> {
    let mut rest = spec;
    let mut prefix = String::new();
    loop {
        let lower = rest.to_ascii_lowercase();
        if lower.starts_with("ctrl-") && rest.len() > 5 {
            prefix.push_str("ctrl-");
            rest = &rest[5..];
        } else if lower.starts_with("alt-") && rest.len() > 4 {
            prefix.push_str("alt-");
            rest = &rest[4..];
        } else {
            break;
        }
    }
    if rest.chars().count() == 1 {
        return Ok(format!("{prefix}{rest}"));
    }
    let lower = rest.to_ascii_lowercase();
    if NAMED_KEYS.contains(&lower.as_str()) {
        return Ok(format!("{prefix}{lower}"));
    }
    Err(format!(
        "unknown key {spec:?} (a single character or one of: {})",
        NAMED_KEYS.join(" ")
    ))
}

impl Keymap {
    fn empty(name: &str) -> Self {
        let bindings = Action::ALL
            .iter()
            .map(|&action| Binding {
                action,
                keys: Vec::new(),
                desc: action.default_description().into(),
            })
            .collect();
        Keymap {
            name: name.into(),
            bindings,
            lookup: HashMap::new(),
        }
    }

    fn rebuild_lookup(&mut self) {
        self.lookup = self
            .bindings
            .iter()
            .flat_map(|b| b.keys.iter().map(move |k| (k.clone(), b.action)))
            .collect();
    }

    /// Apply a keymap file over `self`: each action in the file replaces its keys (and
    /// its description, if given); keys it takes are removed from other actions.
    pub fn apply(&mut self, path: &Path, text: &str) -> Result<(), ConfigProblem> {
        let doc: toml::Spanned<BTreeMap<toml::Spanned<String>, BindingFile>> =
            toml::from_str(text).map_err(|e| ConfigProblem::from_toml(path, text, &e))?;
        let mut next = self.clone();
        let mut claimed: HashMap<String, Action> = HashMap::new();
        // In file order, so a conflict is reported at its second occurrence.
        let mut entries: Vec<_> = doc.get_ref().iter().collect();
        entries.sort_by_key(|(name, _)| name.span().start);
        for (name, binding) in entries {
            let at = Some(name.span().start);
            let action = Action::from_name(name.get_ref()).ok_or_else(|| {
                let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
                ConfigProblem::at(
                    path,
                    text,
                    at,
                    format!(
                        "unknown action {:?} (actions: {})",
                        name.get_ref(),
                        names.join(", ")
                    ),
                )
            })?;
            let Some(slot) = next.bindings.iter_mut().find(|b| b.action == action) else {
                continue;
            };
            if let Some(desc) = &binding.desc {
                slot.desc = desc.clone();
            }
            if let Some(keys) = &binding.keys {
                let mut normalized = Vec::new();
                for key in keys {
                    let k = normalize_key(key.get_ref())
                        .map_err(|m| ConfigProblem::at(path, text, Some(key.span().start), m))?;
                    if let Some(other) = claimed.get(&k).filter(|&&o| o != action) {
                        return Err(ConfigProblem::at(
                            path,
                            text,
                            Some(key.span().start),
                            format!(
                                "key {k:?} is bound to both {} and {}",
                                other.name(),
                                action.name()
                            ),
                        ));
                    }
                    claimed.insert(k.clone(), action);
                    normalized.push(k);
                }
                slot.keys = normalized;
            }
        }
        for b in &mut next.bindings {
            b.keys
                .retain(|k| claimed.get(k).is_none_or(|&owner| owner == b.action));
        }
        next.rebuild_lookup();
        *self = next;
        Ok(())
    }

    pub fn shipped(name: &str) -> Option<Keymap> {
        let mut km = Keymap::empty(name);
        for layer in ["default", name] {
            let (_, text) = SHIPPED.iter().find(|(n, _)| *n == layer)?;
            km.apply(Path::new(&format!("keymaps/{layer}.toml")), text)
                .ok()?;
        }
        Some(km)
    }

    /// The keymap `name` with the user's file over it.
    pub fn load(name: &str, config_dir: &Path) -> (Keymap, Vec<ConfigProblem>) {
        let mut problems = Vec::new();
        let base = Keymap::shipped(name).or_else(|| Keymap::shipped("default"));
        let mut km = base.unwrap_or_else(|| Keymap::empty("default"));
        let user = config_dir.join("keymaps").join(format!("{name}.toml"));
        match std::fs::read_to_string(&user) {
            Ok(text) => {
                km.name = name.to_string();
                if let Err(p) = km.apply(&user, &text) {
                    problems.push(p);
                }
            }
            Err(_) if Keymap::shipped(name).is_none() => problems.push(ConfigProblem {
                path: user,
                line: None,
                message: format!("no keymap {name:?} (shipped: default, vim)"),
            }),
            Err(_) => {}
        }
        (km, problems)
    }

    /// The action bound to a canonical key string (see [`normalize_key`]).
    pub fn action_for(&self, key: &str) -> Option<Action> {
        self.lookup.get(key).copied()
    }

    /// The first key of an action, for hints ("? help").
    pub fn key_for(&self, action: Action) -> Option<&str> {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .and_then(|b| b.keys.first())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalize() {
        assert_eq!(normalize_key("Ctrl-c").as_deref(), Ok("ctrl-c"));
        assert_eq!(normalize_key("PageDown").as_deref(), Ok("pagedown"));
        assert_eq!(normalize_key("G").as_deref(), Ok("G"));
        assert!(normalize_key("hyper-x").is_err());
    }

    #[test]
    fn user_binding_takes_the_key_from_another_action() {
        let mut km = Keymap::shipped("default").unwrap();
        km.apply(Path::new("u.toml"), "[pane_etcd]\nkeys = [\"x\"]\n")
            .unwrap();
        assert_eq!(km.action_for("x"), Some(Action::PaneEtcd));
        assert_eq!(km.key_for(Action::LabStopMember), None);
        assert_eq!(
            km.action_for("q"),
            Some(Action::Quit),
            "untouched actions keep their keys"
        );
    }
}
