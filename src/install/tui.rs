//! The install from a pane whose system is not installed (Ceph, Velero, Rollouts): the
//! built-in stack planned for just that pane's components, one key away in the pane's
//! runbook menu. Planned from what the cockpit knows (the pane's watches say "not
//! installed"); helm is not asked here, so every chart is installed with
//! `helm upgrade --install`, which is idempotent. `kha install --only ... --plan`
//! gives the full diff and preflight.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{self, ClusterFacts, HelmTarget, Observed};
use super::stack::{self, Source};
use super::state::InstallState;
use crate::model::PaneId;
use crate::model::kube::{Availability, KubeState};
use crate::runbook::{Precondition, Runbook};

/// The pane's other runbooks with the install entry last.
const fn with_install<const N: usize, const M: usize>(
    runbooks: [&'static str; N],
    install: &'static str,
) -> [&'static str; M] {
    let mut out = [install; M];
    let mut i = 0;
    while i < N {
        out[i] = runbooks[i];
        i += 1;
    }
    out
}

use crate::model::runbook_cr_ui;

const INSTALL_CEPH: &str = "Install Rook-Ceph and the CephCluster (built-in stack)";
const INSTALL_VELERO: &str = "Install Velero with the DR location (built-in stack)";
const INSTALL_ROLLOUTS: &str =
    "Install Argo Rollouts and the success-rate analysis (built-in stack)";

/// The panes' menus: their runbooks, then the install of their system.
pub const CEPH_MENU: [&str; 1] = [INSTALL_CEPH];
pub const VELERO_MENU: [&str; runbook_cr_ui::VELERO_MENU.len() + 1] =
    with_install(runbook_cr_ui::VELERO_MENU, INSTALL_VELERO);
pub const ROLLOUTS_MENU: [&str; runbook_cr_ui::ROLLOUTS_MENU.len() + 1] =
    with_install(runbook_cr_ui::ROLLOUTS_MENU, INSTALL_ROLLOUTS);

/// Whether entry `i` of `pane`'s menu is the install (the last entry).
pub fn is_install_entry(pane: PaneId, i: usize) -> bool {
    let menu: &[&str] = match pane {
        PaneId::Ceph => &CEPH_MENU,
        PaneId::Velero => &VELERO_MENU,
        PaneId::Rollouts => &ROLLOUTS_MENU,
        _ => return false,
    };
    i + 1 == menu.len()
}

/// The built-in stack's components behind a pane.
pub fn components_for(pane: PaneId) -> &'static [&'static str] {
    match pane {
        PaneId::Ceph => &["rook-ceph", "ceph-cluster"],
        PaneId::Velero => &["velero"],
        PaneId::Rollouts => &["argo-rollouts"],
        _ => &[],
    }
}

/// Helm pinned the way kha finds its kubeconfig by default (`KUBECONFIG`, first file;
/// `KHA_KUBE_CONTEXT`).
pub fn helm_from_env() -> HelmTarget {
    let kubeconfig = std::env::var_os("KUBECONFIG")
        .and_then(|v| std::env::split_paths(&v).next())
        .filter(|p| !p.as_os_str().is_empty());
    HelmTarget {
        kubeconfig,
        context: std::env::var("KHA_KUBE_CONTEXT")
            .ok()
            .filter(|c| !c.is_empty()),
    }
}

/// The install runbook of `pane`'s components, planned from the cockpit's state.
pub fn plan_for_pane(
    cluster: &str,
    pane: PaneId,
    kube: &KubeState,
    helm: &HelmTarget,
    helm_on_path: bool,
) -> Result<Runbook, String> {
    let only: Vec<String> = components_for(pane).iter().map(|s| s.to_string()).collect();
    if only.is_empty() {
        return Err("this pane has no install".into());
    }
    // Only the pane's components are planned; the CNI's API server setting is unused.
    let mut set = BTreeMap::new();
    set.insert(
        "api_server_host".to_string(),
        "unused-by-this-plan".to_string(),
    );
    let stack = stack::parse(Source::embedded(), &set).map_err(|e| e.to_string())?;
    let observed = Observed {
        helm_version: Ok("unknown".into()),
        releases: Vec::new(),
        state: InstallState::default(),
        present: BTreeSet::new(),
        cluster: ClusterFacts {
            server_version: Ok("watched by the cockpit".into()),
            denied: Vec::new(),
            nodes: Vec::new(),
            devices: Default::default(),
        },
    };
    let planned = plan::plan(cluster, &stack, &observed, &only, helm)?;
    let mut rb = planned.runbook;
    let feeds = kube.pane_feeds(pane);
    let not_installed = feeds
        .iter()
        .filter(|(_, f)| matches!(f.availability, Availability::NotInstalled { .. }))
        .count();
    rb.preconditions = vec![
        Precondition {
            description: "helm is on PATH".into(),
            met: helm_on_path,
            evidence: if helm_on_path {
                "found".into()
            } else {
                "not found: install helm >= 3.10".into()
            },
        },
        Precondition {
            description: "the pane reports its system not installed".into(),
            met: not_installed > 0,
            evidence: format!(
                "{not_installed} of {} watched resource(s) not installed",
                feeds.len()
            ),
        },
        Precondition {
            description: format!(
                "helm uses the same kubeconfig as kha ({})",
                helm.kubeconfig
                    .as_ref()
                    .map_or("helm's default".into(), |p| p.display().to_string())
            ),
            met: true,
            evidence: "with --kubeconfig or a profile kubeconfig, use `kha install --only ... --apply` instead".into(),
        },
    ];
    rb.summary = format!(
        "{} Planned from the cockpit without asking helm: `kha install --only {} --plan` shows \
         the full diff and preflight (nodes, zones, storage devices, dependencies).",
        rb.summary,
        only.join(",")
    );
    Ok(rb)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::kube::{CustomKind, FeedChange, KubeMsg};
    use crate::runbook::{Operation, Verification};

    #[test]
    fn the_velero_pane_installs_velero_when_its_crds_are_missing() {
        let mut kube = KubeState::new(true, Duration::from_secs(30));
        let helm = HelmTarget {
            kubeconfig: Some(PathBuf::from("/etc/kha/kubeconfig")),
            context: None,
        };
        let rb = plan_for_pane("prod", PaneId::Velero, &kube, &helm, true).unwrap();
        // Still connecting: the pane does not say "not installed" yet.
        assert_eq!(rb.unmet().len(), 1);
        for kind in [
            CustomKind::VeleroBackup,
            CustomKind::VeleroSchedule,
            CustomKind::VeleroStorageLocation,
            CustomKind::VeleroRestore,
        ] {
            kube.apply(
                SystemTime::UNIX_EPOCH,
                KubeMsg::Custom(
                    kind,
                    FeedChange::Status(Availability::NotInstalled {
                        hint: String::new(),
                    }),
                ),
            );
        }
        let rb = plan_for_pane("prod", PaneId::Velero, &kube, &helm, true).unwrap();
        assert!(rb.unmet().is_empty(), "{:?}", rb.unmet());
        let Operation::Argv { argv, .. } = &rb.steps[0].operation else {
            panic!("helm first");
        };
        assert_eq!(
            argv[..7],
            [
                "helm",
                "--kubeconfig",
                "/etc/kha/kubeconfig",
                "upgrade",
                "--install",
                "velero",
                "velero"
            ]
        );
        let last_ready = rb.steps.iter().rev().find_map(|s| match &s.verification {
            Verification::KubeReady { checks } => Some(checks.len()),
            _ => None,
        });
        assert_eq!(last_ready, Some(2), "both backup locations Available");
        assert!(is_install_entry(PaneId::Velero, VELERO_MENU.len() - 1));
        assert!(!is_install_entry(PaneId::Velero, 0));
        assert_eq!(VELERO_MENU[..2], runbook_cr_ui::VELERO_MENU);
        let ceph = plan_for_pane("prod", PaneId::Ceph, &kube, &helm, false).unwrap();
        assert!(ceph.steps[0].title.starts_with("rook-ceph: helm"));
        assert!(
            ceph.unmet()
                .iter()
                .any(|p| p.description == "helm is on PATH")
        );
    }
}
