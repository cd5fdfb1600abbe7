//! End to end: `ctrl-y` in the real `kha demo` (tmux 80x24, `set-clipboard on`, so tmux
//! takes the OSC 52 sequence into a paste buffer as a terminal would into the
//! clipboard). On the cockpit it copies the findings; in a runbook preview, the plan
//! exactly as `--plan` prints it; on the KPI pane, the selected KPI's PromQL.

mod common;

use common::tmux::{KhaDirs, Tmux};

fn clipboard(t: &Tmux) -> String {
    let out = t.cmd(&["show-buffer"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Presses ctrl-y and waits for the copy to land in tmux's buffer.
fn copy(t: &Tmux, what: &str, done: impl Fn(&str) -> bool) -> String {
    t.keys("C-y");
    let started = std::time::Instant::now();
    loop {
        let got = clipboard(t);
        if done(&got) {
            return got;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what} was not copied; buffer:\n{got}\nscreen:\n{}",
            t.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn ctrl_y_copies_the_findings_the_plan_and_the_promql() {
    let dirs = KhaDirs::new();
    let kha = env!("CARGO_BIN_EXE_kha");
    let t = Tmux::start_kha("copy", &[kha, "demo", "--etcd", "sim"], &dirs);
    let set = t.cmd(&["set-option", "-g", "set-clipboard", "on"]);
    assert!(set.status.success(), "tmux set-clipboard on");
    t.wait_for("the cockpit with data", |s| s.contains("leader etcd-"));

    let findings = copy(&t, "the findings", |b| b.contains("cluster kha-demo"));
    assert!(
        findings.starts_with("kha · cluster kha-demo · 20"),
        "{findings}"
    );
    assert!(findings.contains("no findings"), "{findings}");
    t.wait_for("the notice", |s| s.contains("copied the findings (none)"));

    // The snapshot plan, as `kha etcd snapshot save --plan` prints it.
    t.keys("e");
    t.keys("r");
    t.keys("Enter");
    t.wait_for("the snapshot plan", |s| s.contains("ctrl-y: copy"));
    let plan = copy(&t, "the plan", |b| b.starts_with("# Save an etcd snapshot"));
    assert!(plan.contains("## Preconditions"), "{plan}");
    assert!(plan.contains("## Steps"), "{plan}");
    assert!(plan.contains("Runbook `etcd.snapshot-save`"), "{plan}");
    // The sequence goes out before the next frame: the notice follows.
    t.wait_for("the notice saying what went", |s| {
        s.contains("copied the plan")
    });
    t.keys("Escape");

    // The KPI pane: the first KPI's PromQL.
    t.keys("H");
    for _ in 0..2 {
        t.keys("BTab");
    }
    t.keys("Enter");
    t.wait_for("the KPI pane", |s| s.contains("API server P99 latency"));
    let promql = copy(&t, "the PromQL", |b| b.contains("histogram_quantile"));
    assert!(
        promql.contains("apiserver_request_duration_seconds"),
        "{promql}"
    );
    t.keys("q");
}
