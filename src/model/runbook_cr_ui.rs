//! The Rollouts and Velero panes' runbook menus: each entry planned from the selected
//! row's object as the kube watch last saw it, and the abort advisory's one-key abort.
//! Two entries need more first: a restore asks which namespaces, and a traffic shift
//! reads the HTTPRoutes (no pane watches them) and offers one shift per backend.

use kube::api::DynamicObject;
use serde_json::Value;

use super::custom::{backup_search_text, filter_matches, rollout_search_text};
use super::kube::CustomKind;
use super::runbook_ui::{InputPurpose, Next, RunbookScreen};
use super::table_view::TableView;
use super::{PaneId, Screen, State};
use crate::runbook::{Runbook, rollouts, velero};

/// The Rollouts pane's runbooks, in menu order.
pub const ROLLOUTS_MENU: [&str; 6] = [
    "Abort the selected rollout's update (traffic back to stable)",
    "Retry the selected rollout's aborted update",
    "Promote the selected rollout to its next step",
    "Promote the selected rollout fully (skips every step)",
    "Undo: the selected rollout back to its previous revision",
    "Shift traffic between clusters (an HTTPRoute's backend weights)",
];

/// The Rollouts menu's traffic shift entry.
pub const SHIFT_TRAFFIC: usize = 5;

/// The Velero pane's runbooks, in menu order.
pub const VELERO_MENU: [&str; 2] = [
    "Back up now from the selected backup's schedule",
    "Restore the selected backup (asks which namespaces)",
];

/// The Velero menu's restore entry.
pub const RESTORE: usize = 1;

fn objects(state: &State, kind: CustomKind) -> &[DynamicObject] {
    state
        .kube
        .feeds
        .get(&kind)
        .map_or(&[], |f| f.objects.as_slice())
}

fn json_of(obj: &DynamicObject) -> Option<Value> {
    serde_json::to_value(obj).ok()
}

fn find<'a>(objs: &'a [DynamicObject], ns: &str, name: &str) -> Option<&'a DynamicObject> {
    objs.iter().find(|o| {
        o.metadata.namespace.as_deref() == Some(ns) && o.metadata.name.as_deref() == Some(name)
    })
}

/// The selected row of a pane's list, as the pane shows it (filtered, sorted).
fn selected<T: Clone>(
    rows: Vec<T>,
    view: &TableView,
    text: fn(&T) -> String,
    keys: &[fn(&T) -> String],
) -> Option<T> {
    let mut rows: Vec<T> = rows
        .into_iter()
        .filter(|r| filter_matches(&view.filter, &text(r)))
        .collect();
    if let Some(key) = view.sort.checked_sub(1).and_then(|i| keys.get(i)) {
        rows.sort_by_cached_key(key);
    }
    if view.descending {
        rows.reverse();
    }
    rows.get(view.selected).cloned()
}

/// `(namespace, name)` of the rollout selected in the Rollouts pane.
pub fn selected_rollout(state: &State) -> Option<(String, String)> {
    let rows = state.rollouts().rollouts;
    selected(
        rows,
        &state.rollouts_view,
        rollout_search_text,
        &[|r| r.phase.clone(), |r| r.name.clone()],
    )
    .map(|r| (r.namespace, r.name))
}

fn rollout_entry(state: &State, i: usize) -> Result<Runbook, String> {
    let (ns, name) = selected_rollout(state).ok_or("no rollout selected")?;
    let ro = find(objects(state, CustomKind::Rollout), &ns, &name)
        .and_then(json_of)
        .ok_or_else(|| format!("Rollout {ns}/{name} is not in the watch any more"))?;
    let cluster = state.cluster.as_str();
    Ok(match i {
        0 => rollouts::abort(cluster, &ro),
        1 => rollouts::retry(cluster, &ro),
        2 => rollouts::promote(cluster, &ro, false),
        3 => rollouts::promote(cluster, &ro, true),
        _ => {
            let sets: Vec<Value> = objects(state, CustomKind::RolloutReplicaSet)
                .iter()
                .filter(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str()))
                .filter_map(json_of)
                .collect();
            rollouts::undo(cluster, &ro, &sets, None)
        }
    })
}

fn selected_backup(state: &State) -> Result<super::velero::BackupRow, String> {
    let rows = state.velero().backups;
    selected(
        rows,
        &state.velero_view,
        backup_search_text,
        &[
            |b| b.phase_word().to_string(),
            |b| b.schedule.clone().unwrap_or_default(),
            |b| b.name.clone(),
        ],
    )
    .ok_or_else(|| "no backup selected".to_string())
}

fn now_unix(state: &State) -> i64 {
    state
        .now
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// The restore entry: asks which namespaces to restore from the selected backup,
/// offering the ones the backup names (empty: every namespace in it).
pub fn restore_input(state: &State) -> Result<Next, String> {
    let b = selected_backup(state)?;
    let backup = find(
        objects(state, CustomKind::VeleroBackup),
        &b.namespace,
        &b.name,
    )
    .and_then(json_of)
    .ok_or_else(|| format!("Backup {}/{} is not in the watch", b.namespace, b.name))?;
    let named: Vec<&str> = backup
        .pointer("/spec/includedNamespaces")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let hint = if named.is_empty() || named.contains(&"*") {
        format!(
            "backup {} holds every namespace; Enter with nothing typed restores them all",
            b.name
        )
    } else {
        format!(
            "backup {} holds: {}; Enter with nothing typed restores them all",
            b.name,
            named.join(", ")
        )
    };
    Ok(Next::Ask(RunbookScreen::Input {
        prompt: format!("Namespaces to restore from {} (comma-separated)", b.name),
        hint,
        text: String::new(),
        purpose: InputPurpose::VeleroRestore {
            namespace: b.namespace,
            name: b.name,
        },
    }))
}

/// The restore of backup `namespace/name`, of the namespaces typed (`text`).
pub fn plan_restore(
    state: &State,
    namespace: &str,
    name: &str,
    text: &str,
) -> Result<Runbook, String> {
    let namespaces = velero::parse_namespaces(text)?;
    let backup = find(objects(state, CustomKind::VeleroBackup), namespace, name)
        .and_then(json_of)
        .ok_or_else(|| format!("Backup {namespace}/{name} is not in the watch any more"))?;
    Ok(velero::restore(
        &state.cluster,
        &backup,
        &namespaces,
        now_unix(state),
    ))
}

fn velero_entry(state: &State, i: usize) -> Result<Runbook, String> {
    let b = selected_backup(state)?;
    let now = now_unix(state);
    let cluster = state.cluster.as_str();
    match i {
        0 => {
            let schedule = b
                .schedule
                .as_deref()
                .ok_or_else(|| format!("backup {} was not made by a schedule", b.name))?;
            let s = find(
                objects(state, CustomKind::VeleroSchedule),
                &b.namespace,
                schedule,
            )
            .and_then(json_of)
            .ok_or_else(|| format!("Schedule {}/{schedule} is not in the watch", b.namespace))?;
            Ok(velero::backup_now(cluster, &s, now))
        }
        _ => plan_restore(state, &b.namespace, &b.name, ""),
    }
}

/// Entry `i` of the Rollouts or Velero menu, planned from the latest watch data.
pub fn plan_entry(state: &State, pane: PaneId, i: usize) -> Result<Runbook, String> {
    match pane {
        PaneId::Rollouts => rollout_entry(state, i),
        PaneId::Velero => velero_entry(state, i),
        _ => Err("this pane has no runbooks".into()),
    }
}

/// `A` on the Rollouts pane: the abort preview of the rollout the advisory names (the
/// selected one when it has an advisory, else the first that has).
pub fn open_advised_abort(state: &mut State) {
    if state.screen != Screen::Pane(PaneId::Rollouts) {
        state.notice("A aborts an advised canary: open the Rollouts pane".into());
        return;
    }
    let view = state.rollouts();
    let chosen = selected_rollout(state)
        .filter(|(ns, name)| {
            view.rollouts
                .iter()
                .any(|r| &r.namespace == ns && &r.name == name && r.abort_advisory.is_some())
        })
        .or_else(|| {
            view.rollouts
                .iter()
                .find(|r| r.abort_advisory.is_some())
                .map(|r| (r.namespace.clone(), r.name.clone()))
        });
    let Some((ns, name)) = chosen else {
        state.notice("no abort advisory: every canary's error rate is under its threshold".into());
        return;
    };
    let Some(ro) = find(objects(state, CustomKind::Rollout), &ns, &name).and_then(json_of) else {
        state.notice(format!("Rollout {ns}/{name} is not in the watch any more"));
        return;
    };
    state.runbook = Some(RunbookScreen::Preview {
        runbook: Box::new(rollouts::abort(&state.cluster, &ro)),
        scroll: 0,
        typed: String::new(),
    });
}
