//! Named actions: what a key means, independent of which key it is (see keymaps/*.toml).

use serde::{Deserialize, Serialize};

macro_rules! actions {
    ($($variant:ident = $name:literal : $desc:literal),+ $(,)?) => {
        /// Everything a key can ask kha to do. Keymap files refer to these by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Action {
            $(#[serde(rename = $name)] $variant,)+
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            /// The name used in keymap files.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name,)+ }
            }

            /// Built-in description for the help screen (a keymap may override it).
            pub fn default_description(self) -> &'static str {
                match self { $(Action::$variant => $desc,)+ }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                match name { $($name => Some(Action::$variant),)+ _ => None }
            }
        }
    };
}

actions! {
    Quit = "quit": "Quit kha",
    Help = "help": "Show or hide this help",
    Back = "back": "Back to the cockpit / close the overlay",
    Up = "up": "Move the selection up",
    Down = "down": "Move the selection down",
    Left = "left": "Move the selection left",
    Right = "right": "Move the selection right",
    Open = "open": "Open the selected pane / the selected row's detail",
    NextPane = "next_pane": "Next pane",
    PrevPane = "prev_pane": "Previous pane",
    PaneHome = "pane_home": "Go to the cockpit (home)",
    PaneEtcd = "pane_etcd": "Go to the etcd quorum pane",
    PaneLb = "pane_lb": "Go to the API-server load-balancer pane",
    PaneControlPlane = "pane_control_plane": "Go to the control plane & zones pane",
    PaneGpu = "pane_gpu": "Go to the GPU nodes pane",
    Runbooks = "runbooks": "Guided actions (runbooks) of this pane: preview, confirm, run",
    AbortAdvised = "abort_advised": "Rollouts: preview the abort of the canary the advisory names",
    Command = "command": "Command line: a pane or action by name (:velero, :gpu, :home, :runbooks), Tab completes",
    Copy = "copy": "Copy to your clipboard (OSC 52): the plan or run on screen, the KPI's PromQL, or the findings",
    Filter = "filter": "Filter the rows (type, Enter keeps it, Esc drops it)",
    Sort = "sort": "Sort by the next column (past the last, reverse)",
    PageUp = "page_up": "Move the selection a page up",
    PageDown = "page_down": "Move the selection a page down",
    LabStopMember = "lab_stop_member": "Demo lab: stop an etcd member (the leader first)",
    LabStartMember = "lab_start_member": "Demo lab: start a stopped etcd member",
    LabToggleNospace = "lab_toggle_nospace": "Demo lab: raise or clear a NOSPACE alarm",
    LabToggleZone = "lab_toggle_zone": "Demo lab: lose or restore zone eu-west-1c",
    LabToggleCanary = "lab_toggle_canary": "Demo lab: canary error rate 8 % or normal",
    LabToggleBackupStale = "lab_toggle_backup_stale": "Demo lab: last good backup 3 days old or recent",
    LabToggleCeph = "lab_toggle_ceph": "Demo lab: Ceph OSD down (degraded) or healthy",
    LabToggleGpuHot = "lab_toggle_gpu_hot": "Demo lab: GPUs at 95 °C or normal",
}
