//! End to end: the real `kha demo` in tmux (80x24), the runbooks whose plan needs more
//! than the cockpit watches. A zone evacuation from the control-plane pane reads every
//! pod and previews the capacity check with numbers; a traffic shift from the Rollouts
//! pane reads the HTTPRoutes and offers one shift per backend; a Velero restore asks
//! which namespaces, then runs against the lab after the cluster name is typed.

mod common;

use common::tmux::{KhaDirs, Tmux};

#[test]
fn zone_evacuation_traffic_shift_and_restore_are_planned_from_the_cockpit() {
    let dirs = KhaDirs::new();
    let kha = env!("CARGO_BIN_EXE_kha");
    let t = Tmux::start_kha("plan-reads", &[kha, "demo", "--etcd", "sim"], &dirs);
    t.wait_for("the cockpit", |s| s.contains("Rollouts"));

    // Zone evacuation: the first zone's row, the menu's last entry before any install.
    t.keys("p");
    t.wait_for("the control-plane rows", |s| {
        s.contains("Control plane & zones") && s.contains("cp-eu-west-1a")
    });
    t.keys("r");
    t.wait_for("the control-plane runbooks", |s| {
        s.contains("Evacuate the selected node's zone")
    });
    for _ in 0..4 {
        t.keys("Down");
    }
    t.keys("Enter");
    t.wait_for("the evacuation plan", |s| {
        s.contains("Evacuate zone eu-west-1a") && s.contains("Preconditions")
    });
    for _ in 0..6 {
        t.keys("Down");
    }
    let capacity = t.wait_for("the capacity check's numbers", |s| s.contains("free on"));
    assert!(capacity.contains("needed by"), "{capacity}");
    assert!(!capacity.contains("not checked"), "{capacity}");
    t.keys("Escape");

    // Traffic shift: the Rollouts pane is one step back from the first tile.
    t.keys("H");
    t.keys("BTab");
    t.keys("Enter");
    t.wait_for("the Rollouts pane", |s| s.contains("ROLLOUT"));
    t.keys("r");
    t.wait_for("the Rollouts runbooks", |s| {
        s.contains("Shift traffic between")
    });
    for _ in 0..5 {
        t.keys("Down");
    }
    t.keys("Enter");
    let choices = t.wait_for("the shifts to choose from", |s| {
        s.matches("all traffic to").count() == 2
    });
    assert!(choices.contains("shop/checkout-global"), "{choices}");
    t.keys("Down");
    t.keys("Enter");
    let shift = t.wait_for("the shift plan", |s| {
        s.contains("Shift traffic of HTTPRoute shop/checkout-global") && s.contains("y: run")
    });
    assert!(shift.contains("to 0/100"), "{shift}");
    t.keys("Escape");

    // Velero restore: three panes before Rollouts (Velero, Thanos, KPIs, Rollouts).
    for _ in 0..3 {
        t.keys("BTab");
    }
    t.wait_for("the Velero pane", |s| {
        s.lines().nth(1).is_some_and(|l| l.contains("Velero"))
    });
    t.keys("r");
    t.wait_for("the Velero runbooks", |s| {
        s.contains("Restore the selected")
    });
    t.keys("Down");
    t.keys("Enter");
    let asked = t.wait_for("the namespace question", |s| {
        s.contains("Namespaces to restore")
    });
    assert!(asked.contains("holds: shop"), "{asked}");
    t.keys("shop");
    t.keys("Enter");
    t.wait_for("the restore plan", |s| {
        s.contains("Restore shop from Velero backup") && s.contains("type the cluster name")
    });
    t.keys("kha-demo");
    t.keys("Enter");
    let done = t.wait_for("the restore to finish", |s| {
        s.contains("done:") || s.contains("stopped:")
    });
    assert!(done.contains("done:"), "the restore failed:\n{done}");

    let audit = dirs.audit();
    assert!(audit.contains("velero.restore"), "{audit}");
    assert!(audit.contains("\"finished\""), "{audit}");
    assert!(
        audit.contains("\"kube_user\":\"kha-lab-admin [kubeadm:cluster-admins"),
        "the API server's word for who ran it:\n{audit}"
    );
    t.keys("Escape");
    t.keys("q");
}
