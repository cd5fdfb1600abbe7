//! The `:` command line (k9s habit): type a pane or action by name, Tab completes, Enter
//! goes. `:velero`, `:gpu`, `:cp`, `:home`, `:runbooks`, `:copy`, `:help`, `:quit`; a
//! unique prefix is enough (`:vel`).

use super::{Action, Effect, PaneId, State};

/// What a name leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Pane(PaneId),
    Home,
    Action(Action),
}

/// Every name, the first of each target its canonical one.
const NAMES: &[(&str, Target)] = &[
    ("etcd", Target::Pane(PaneId::Etcd)),
    ("lb", Target::Pane(PaneId::ApiServerLb)),
    ("apiserver", Target::Pane(PaneId::ApiServerLb)),
    ("cp", Target::Pane(PaneId::ControlPlane)),
    ("control-plane", Target::Pane(PaneId::ControlPlane)),
    ("zones", Target::Pane(PaneId::ControlPlane)),
    ("nodes", Target::Pane(PaneId::ControlPlane)),
    ("gpu", Target::Pane(PaneId::GpuNodes)),
    ("ceph", Target::Pane(PaneId::Ceph)),
    ("rook", Target::Pane(PaneId::Ceph)),
    ("velero", Target::Pane(PaneId::Velero)),
    ("backups", Target::Pane(PaneId::Velero)),
    ("thanos", Target::Pane(PaneId::Metrics)),
    ("metrics", Target::Pane(PaneId::Metrics)),
    ("prometheus", Target::Pane(PaneId::Metrics)),
    ("alerts", Target::Pane(PaneId::Metrics)),
    ("kpis", Target::Pane(PaneId::Kpis)),
    ("rollouts", Target::Pane(PaneId::Rollouts)),
    ("argo", Target::Pane(PaneId::Rollouts)),
    ("canary", Target::Pane(PaneId::Rollouts)),
    ("home", Target::Home),
    ("cockpit", Target::Home),
    ("runbooks", Target::Action(Action::Runbooks)),
    ("copy", Target::Action(Action::Copy)),
    ("help", Target::Action(Action::Help)),
    ("quit", Target::Action(Action::Quit)),
];

/// The names `text` may mean: itself when it is a name, else every name it begins.
fn matches(text: &str) -> Vec<(&'static str, Target)> {
    let t = text.trim().to_ascii_lowercase();
    if let Some(exact) = NAMES.iter().find(|(n, _)| *n == t) {
        return vec![*exact];
    }
    let mut found: Vec<(&'static str, Target)> = NAMES
        .iter()
        .filter(|(n, _)| n.starts_with(&t))
        .copied()
        .collect();
    // Several names of one target are one answer.
    found.dedup_by_key(|(_, target)| *target);
    found
}

/// What the command line shows after the typed text: the one match, or the choices.
pub fn hint(text: &str) -> String {
    if text.trim().is_empty() {
        return "etcd lb cp gpu ceph velero thanos kpis rollouts home runbooks copy help quit"
            .into();
    }
    match matches(text).as_slice() {
        [] => "no such name".into(),
        [(name, _)] => format!("→ {name}"),
        several => several
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// `:` opens the command line.
pub fn open(state: &mut State) {
    state.command = Some(String::new());
}

/// A key while the command line is open (it takes every key).
pub fn on_key(state: &mut State, key: &str) -> Vec<Effect> {
    let Some(mut text) = state.command.take() else {
        return Vec::new();
    };
    match key {
        "esc" => return Vec::new(),
        "enter" => return run(state, &text),
        "backspace" if text.is_empty() => return Vec::new(),
        "backspace" => {
            text.pop();
        }
        "tab" => {
            if let [(name, _)] = matches(&text).as_slice() {
                text = name.to_string();
            }
        }
        k if k.chars().count() == 1 => text.push_str(k),
        _ => {}
    }
    state.command = Some(text);
    Vec::new()
}

fn run(state: &mut State, text: &str) -> Vec<Effect> {
    match matches(text).as_slice() {
        [(_, Target::Pane(pane))] => {
            super::open_pane(state, *pane);
            Vec::new()
        }
        [(_, Target::Home)] => {
            state.screen = super::Screen::Home;
            Vec::new()
        }
        [(_, Target::Action(action))] => super::update(state, super::Msg::Action(*action)),
        [] => {
            state.notice(format!(
                ":{text}: no such pane or action (Tab completes; try :etcd, :gpu, :velero, :home)"
            ));
            Vec::new()
        }
        several => {
            let names: Vec<&str> = several.iter().map(|(n, _)| *n).collect();
            state.notice(format!(":{text} could be {}", names.join(", ")));
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_prefixes_and_ambiguity() {
        assert_eq!(hint("vel"), "→ velero");
        assert_eq!(hint("backups"), "→ backups");
        assert_eq!(hint("c"), "cp ceph canary cockpit copy");
        assert_eq!(hint("co"), "control-plane cockpit copy");
        assert_eq!(hint("zz"), "no such name");
        // Two names of one target are one answer.
        assert_eq!(matches("c").len(), 5);
        assert!(matches("control").len() == 1);
    }
}
