//! The runbook overlay of the cockpit: a menu of the pane's guided actions, the plan's
//! preview with the confirmation its risk needs (Enter, `y`, or the cluster name typed),
//! then the run's live output. The engine itself runs outside (an [`Effect`]); only its
//! progress comes back here as messages.

use std::path::PathBuf;

use super::{Effect, PaneId, State};
use crate::runbook::engine::Decision;
use crate::runbook::tui_plan::{PlanOption, PlanRequest};
use crate::runbook::{Risk, Runbook, etcd, plan, restore};

/// The etcd pane's runbooks, in menu order.
pub const ETCD_MENU: [&str; 5] = [
    "Save a snapshot",
    "Move the leader to the selected member",
    "Defragment every member (leader last)",
    "Recover from a NOSPACE alarm",
    "Restore every member from the newest snapshot (kubeadm)",
];

/// The runbooks of a pane, in menu order (empty: the pane has none).
pub fn menu_for(pane: PaneId) -> &'static [&'static str] {
    match pane {
        PaneId::Etcd => &ETCD_MENU,
        PaneId::Rollouts => &crate::install::tui::ROLLOUTS_MENU,
        PaneId::Velero => &crate::install::tui::VELERO_MENU,
        PaneId::Ceph => &crate::install::tui::CEPH_MENU,
        PaneId::ApiServerLb => &super::failover_menu::LB_MENU,
        PaneId::ControlPlane => &super::failover_menu::CONTROL_PLANE_MENU,
        PaneId::GpuNodes => &super::failover_menu::GPU_MENU,
        _ => &[],
    }
}

/// What Enter on a menu entry leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The plan, from what the cockpit watches.
    Preview(Runbook),
    /// The plan needs a read the cockpit does not keep: made in the background.
    Read(PlanRequest),
    /// The plan needs something from the engineer first: the screen that asks
    /// (a [`RunbookScreen::Input`]).
    Ask(RunbookScreen),
}

/// What a typed line is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPurpose {
    /// The namespaces to restore from Velero backup `namespace/name`.
    VeleroRestore { namespace: String, name: String },
}

/// What entry `i` of `pane`'s menu leads to, from the latest state.
fn next_for_entry(state: &State, pane: PaneId, i: usize) -> Result<Next, String> {
    match pane {
        PaneId::ControlPlane if i == super::failover_menu::EVACUATE_ZONE => {
            super::failover_menu::zone_request(state).map(Next::Read)
        }
        PaneId::Rollouts if i == super::runbook_cr_ui::SHIFT_TRAFFIC => {
            Ok(Next::Read(PlanRequest::TrafficShifts {
                cluster: state.cluster.clone(),
            }))
        }
        PaneId::Velero if i == super::runbook_cr_ui::RESTORE => {
            super::runbook_cr_ui::restore_input(state)
        }
        _ => plan_entry(state, pane, i).map(Next::Preview),
    }
}

/// The runbook behind entry `i` of `pane`'s menu, planned from the latest state.
fn plan_entry(state: &State, pane: PaneId, i: usize) -> Result<Runbook, String> {
    match pane {
        PaneId::Etcd => plan_etcd_entry(state, i),
        PaneId::Rollouts | PaneId::Velero | PaneId::Ceph
            if crate::install::tui::is_install_entry(pane, i) =>
        {
            crate::install::tui::plan_for_pane(
                &state.cluster,
                pane,
                &state.kube,
                &crate::install::tui::helm_from_env(),
                crate::runbook::exec::find_in_path("helm").is_some(),
            )
        }
        PaneId::Rollouts | PaneId::Velero => super::runbook_cr_ui::plan_entry(state, pane, i),
        PaneId::ApiServerLb => super::failover_menu::plan_lb_entry(state, i),
        PaneId::ControlPlane => super::failover_menu::plan_control_plane_entry(state, i),
        PaneId::GpuNodes => super::failover_menu::plan_gpu_entry(state, i),
        _ => Err("this pane has no runbooks".into()),
    }
}

/// Where the overlay is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunbookScreen {
    Menu {
        pane: PaneId,
        selected: usize,
    },
    /// A read the plan needs is under way; its answer carries `ticket` (a late answer
    /// to a read given up with Esc carries an older one and is dropped).
    Loading {
        what: String,
        ticket: u64,
        /// The title of the list, when the read gives several runbooks.
        choose: String,
    },
    /// The read gave several runbooks: pick one to preview.
    Choose {
        title: String,
        options: Vec<PlanOption>,
        selected: usize,
    },
    /// A line the plan needs (e.g. which namespaces to restore).
    Input {
        prompt: String,
        hint: String,
        text: String,
        purpose: InputPurpose,
    },
    Preview {
        runbook: Box<Runbook>,
        scroll: usize,
        /// What has been typed for a destructive plan's confirmation.
        typed: String,
    },
    Running {
        title: String,
        lines: Vec<String>,
        /// `Ok(summary)` or `Err(why)` once the engine is done.
        finished: Option<Result<String, String>>,
        scroll: usize,
        /// A failed step waits for the engineer: (step, whether skipping is safe).
        asking: Option<(usize, bool)>,
        /// Cancel was asked; the run stops before its next step.
        cancelling: bool,
    },
}

/// Opens the menu of the pane on screen, when it has runbooks.
pub fn open_menu(state: &mut State) {
    match state.screen {
        super::Screen::Pane(pane) if !menu_for(pane).is_empty() => {
            state.runbook = Some(RunbookScreen::Menu { pane, selected: 0 })
        }
        _ => state.notice(
            "runbooks: open a pane that has them (etcd e, LB a, control plane p, GPU u, Ceph, Velero, Rollouts) and press r"
                .into(),
        ),
    }
}

pub use super::runbook_cr_ui::open_advised_abort;

/// The etcd pane's entry `i`, planned from the latest observation.
fn plan_etcd_entry(state: &State, i: usize) -> Result<Runbook, String> {
    let obs = state
        .etcd
        .last
        .as_ref()
        .ok_or("no etcd observation yet: wait for the first probe")?;
    let cluster = state.cluster.as_str();
    Ok(match i {
        0 => {
            let name = format!(
                "{cluster}-{}.db",
                crate::runbook::audit::now_rfc3339()
                    .replace([':', '.'], "-")
                    .trim_end_matches('Z')
            );
            etcd::snapshot_save(cluster, obs, &state.snapshot_dir.join(name))
        }
        1 => {
            let to = obs
                .members
                .get(state.etcd.selected)
                .map(|m| m.name.clone())
                .ok_or("select a member first")?;
            etcd::move_leader(cluster, obs, &to)
        }
        2 => etcd::defrag(cluster, obs),
        3 => etcd::recover_nospace(cluster, obs),
        _ => restore_newest(state, obs)?,
    })
}

/// The kubeadm restore from the newest snapshot in the snapshot dir, members from the
/// live member list (data dir `/var/lib/etcd`, manifests `/etc/kubernetes/manifests`,
/// reached over ssh by member name; the CLI takes other layouts).
fn restore_newest(
    state: &State,
    obs: &crate::model::etcd::EtcdObservation,
) -> Result<Runbook, String> {
    let newest = std::fs::read_dir(&state.snapshot_dir)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "db"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p)
        .ok_or_else(|| {
            format!(
                "no snapshot in {}: save one first (or use kha etcd restore --snapshot FILE)",
                state.snapshot_dir.display()
            )
        })?;
    let members = restore::members_from_observation(
        obs,
        std::path::Path::new("/var/lib/etcd"),
        std::path::Path::new("/etc/kubernetes/manifests"),
        false,
    )?;
    let version = obs
        .members
        .iter()
        .find_map(|m| m.status.as_ref().map(|s| s.version.clone()));
    let mut safety = newest.clone().into_os_string();
    safety.push(".pre-restore");
    let spec = restore::RestoreSpec {
        snapshot: newest,
        members,
        token: "kha-restored".into(),
        suffix: "kha-restore".into(),
        tool: restore::RestoreTool::for_version(version.as_deref()),
        safety_snapshot: PathBuf::from(safety),
    };
    Ok(restore::restore(&state.cluster, obs, &spec))
}

/// A key while the overlay is open (it takes every key).
pub fn on_key(state: &mut State, key: &str) -> Vec<Effect> {
    let Some(screen) = state.runbook.take() else {
        return Vec::new();
    };
    let (next, effects) = step(state, screen, key);
    state.runbook = next;
    effects
}

fn step(
    state: &mut State,
    screen: RunbookScreen,
    key: &str,
) -> (Option<RunbookScreen>, Vec<Effect>) {
    match screen {
        RunbookScreen::Menu { pane, selected } => match key {
            "esc" | "q" => (None, Vec::new()),
            "up" | "k" => (
                Some(RunbookScreen::Menu {
                    pane,
                    selected: selected.saturating_sub(1),
                }),
                Vec::new(),
            ),
            "down" | "j" => (
                Some(RunbookScreen::Menu {
                    pane,
                    selected: (selected + 1).min(menu_for(pane).len().saturating_sub(1)),
                }),
                Vec::new(),
            ),
            "enter" => match next_for_entry(state, pane, selected) {
                Ok(Next::Preview(runbook)) => preview(Box::new(runbook), 0, String::new()),
                Ok(Next::Read(request)) => read(state, request),
                Ok(Next::Ask(screen)) => (Some(screen), Vec::new()),
                Err(why) => {
                    state.notice(format!("runbook: {why}"));
                    (Some(RunbookScreen::Menu { pane, selected }), Vec::new())
                }
            },
            _ => (Some(RunbookScreen::Menu { pane, selected }), Vec::new()),
        },
        RunbookScreen::Loading {
            what,
            ticket,
            choose,
        } => match key {
            "esc" | "q" => {
                state.notice("gave up waiting for the read; nothing was changed".into());
                (None, Vec::new())
            }
            _ => (
                Some(RunbookScreen::Loading {
                    what,
                    ticket,
                    choose,
                }),
                Vec::new(),
            ),
        },
        RunbookScreen::Choose {
            title,
            mut options,
            selected,
        } => match key {
            "esc" | "q" => (None, Vec::new()),
            "up" | "k" => (
                Some(RunbookScreen::Choose {
                    title,
                    options,
                    selected: selected.saturating_sub(1),
                }),
                Vec::new(),
            ),
            "down" | "j" => {
                let selected = (selected + 1).min(options.len().saturating_sub(1));
                (
                    Some(RunbookScreen::Choose {
                        title,
                        options,
                        selected,
                    }),
                    Vec::new(),
                )
            }
            "enter" if selected < options.len() => {
                let (_, runbook) = options.swap_remove(selected);
                preview(runbook, 0, String::new())
            }
            _ => (
                Some(RunbookScreen::Choose {
                    title,
                    options,
                    selected,
                }),
                Vec::new(),
            ),
        },
        RunbookScreen::Input {
            prompt,
            hint,
            mut text,
            purpose,
        } => {
            match key {
                "esc" => return (None, Vec::new()),
                "enter" => match planned_from_input(state, &purpose, &text) {
                    Ok(runbook) => return preview(Box::new(runbook), 0, String::new()),
                    Err(why) => state.notice(format!("runbook: {why}")),
                },
                "backspace" => {
                    text.pop();
                }
                "space" => text.push(' '),
                k if k.chars().count() == 1 => text.push_str(k),
                _ => {}
            }
            (
                Some(RunbookScreen::Input {
                    prompt,
                    hint,
                    text,
                    purpose,
                }),
                Vec::new(),
            )
        }
        RunbookScreen::Preview {
            runbook,
            scroll,
            mut typed,
        } => {
            let destructive = runbook.risk() == Risk::Destructive;
            let seen = crate::runbook::cli::seen(&state.findings());
            let start = |answer: String, runbook: Box<Runbook>| {
                let title = runbook.title.clone();
                (
                    Some(RunbookScreen::Running {
                        title,
                        lines: Vec::new(),
                        finished: None,
                        scroll: 0,
                        asking: None,
                        cancelling: false,
                    }),
                    vec![Effect::StartRunbook {
                        runbook,
                        answer,
                        seen,
                    }],
                )
            };
            match key {
                "esc" => (None, Vec::new()),
                "up" => preview(runbook, scroll.saturating_sub(1), typed),
                "down" => preview(runbook, scroll + 1, typed),
                "pageup" => preview(runbook, scroll.saturating_sub(10), typed),
                "pagedown" => preview(runbook, scroll + 10, typed),
                "backspace" if destructive => {
                    typed.pop();
                    preview(runbook, scroll, typed)
                }
                "enter" if destructive => start(typed, runbook),
                k if destructive && k.chars().count() == 1 => {
                    typed.push_str(k);
                    preview(runbook, scroll, typed)
                }
                "enter" if runbook.risk() == Risk::Safe => start(String::new(), runbook),
                "y" if runbook.risk() == Risk::Disruptive => start("y".into(), runbook),
                "n" => (None, Vec::new()),
                _ => preview(runbook, scroll, typed),
            }
        }
        RunbookScreen::Running {
            title,
            lines,
            finished,
            scroll,
            mut asking,
            mut cancelling,
        } => {
            let done = finished.is_some();
            let scroll = match key {
                "up" => scroll.saturating_sub(1),
                "down" => scroll + 1,
                _ => scroll,
            };
            if done && matches!(key, "esc" | "enter" | "q") {
                return (None, Vec::new());
            }
            let mut effects = Vec::new();
            match (asking, key) {
                (Some(_), "r") => {
                    effects.push(Effect::RunbookDecision(Decision::Retry));
                    asking = None;
                }
                (Some((_, true)), "s") => {
                    effects.push(Effect::RunbookDecision(Decision::Skip));
                    asking = None;
                }
                (Some(_), "a") => {
                    effects.push(Effect::RunbookDecision(Decision::Abort));
                    asking = None;
                }
                (None, "c" | "esc") if !done && !cancelling => {
                    effects.push(Effect::CancelRunbook);
                    cancelling = true;
                    state.notice("cancelling: the runbook stops before its next step".into());
                }
                _ => {}
            }
            (
                Some(RunbookScreen::Running {
                    title,
                    lines,
                    finished,
                    scroll,
                    asking,
                    cancelling,
                }),
                effects,
            )
        }
    }
}

/// Starts the read `request` needs; the overlay waits for its answer.
fn read(state: &mut State, request: PlanRequest) -> (Option<RunbookScreen>, Vec<Effect>) {
    state.runbook_ticket += 1;
    let ticket = state.runbook_ticket;
    (
        Some(RunbookScreen::Loading {
            what: request.describe(),
            ticket,
            choose: request.choose_title(),
        }),
        vec![Effect::ReadForPlan {
            ticket,
            request: Box::new(request),
        }],
    )
}

/// The runbook a typed line completes.
fn planned_from_input(
    state: &State,
    purpose: &InputPurpose,
    text: &str,
) -> Result<Runbook, String> {
    match purpose {
        InputPurpose::VeleroRestore { namespace, name } => {
            super::runbook_cr_ui::plan_restore(state, namespace, name, text)
        }
    }
}

/// The answer of a read started from the overlay: one runbook opens its preview,
/// several a list to choose from; an answer nobody waits for any more is dropped.
pub fn options(state: &mut State, ticket: u64, result: Result<Vec<PlanOption>, String>) {
    let title = match &state.runbook {
        Some(RunbookScreen::Loading {
            ticket: t, choose, ..
        }) if *t == ticket => choose.clone(),
        _ => return,
    };
    state.runbook = match result {
        Err(why) => {
            state.notice(format!("runbook: {why}"));
            None
        }
        Ok(mut options) if options.len() == 1 => {
            let (_, runbook) = options.remove(0);
            Some(RunbookScreen::Preview {
                runbook,
                scroll: 0,
                typed: String::new(),
            })
        }
        Ok(options) if options.is_empty() => {
            state.notice("runbook: nothing to plan".into());
            None
        }
        Ok(options) => Some(RunbookScreen::Choose {
            title,
            options,
            selected: 0,
        }),
    };
}

fn preview(
    runbook: Box<Runbook>,
    scroll: usize,
    typed: String,
) -> (Option<RunbookScreen>, Vec<Effect>) {
    (
        Some(RunbookScreen::Preview {
            runbook,
            scroll,
            typed,
        }),
        Vec::new(),
    )
}

/// A line of the running runbook's output.
pub fn progress(state: &mut State, line: String) {
    if let Some(RunbookScreen::Running { lines, .. }) = &mut state.runbook {
        lines.push(line);
        if lines.len() > 500 {
            lines.remove(0);
        }
    } else {
        state.notice(line);
    }
}

/// A step failed and the run waits for the engineer.
pub fn ask(state: &mut State, step: usize, error: String, skippable: bool) {
    if let Some(RunbookScreen::Running { asking, lines, .. }) = &mut state.runbook {
        lines.push(format!("step {step} failed: {error}"));
        *asking = Some((step, skippable));
    } else {
        state.notice(format!("runbook step {step} failed: {error}"));
    }
}

pub fn finished(state: &mut State, result: Result<String, String>) {
    let said = match &result {
        Ok(s) => format!("runbook done: {s}"),
        Err(e) => format!("runbook stopped: {e}"),
    };
    if let Some(RunbookScreen::Running { finished, .. }) = &mut state.runbook {
        *finished = Some(result);
    }
    state.notice(said);
}

/// The preview's text: the plan, as `--plan` prints it.
pub fn preview_lines(runbook: &Runbook) -> Vec<String> {
    plan::markdown(runbook)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Where the cockpit's snapshots go by default.
pub fn default_snapshot_dir(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("snapshots")
}
