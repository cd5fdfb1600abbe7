//! End to end: the real `kha demo --scenario canary-bad` in tmux (80x24). The Rollouts
//! pane shows the abort advisory with its evidence; the advisory's key opens the abort
//! plan; `y` runs it against the lab; the pane then shows the rollout aborted and
//! Degraded, and the audit log has the run.

mod common;

use std::time::{Duration, Instant};

use common::tmux::{KhaDirs, Tmux};

#[test]
fn the_canary_advisory_leads_to_an_abort_the_rollouts_pane_shows() {
    let dirs = KhaDirs::new();
    let kha = env!("CARGO_BIN_EXE_kha");
    let exit_file = dirs.state.join("exit-status");
    let script = "\"$0\" demo --etcd sim --scenario canary-bad; echo $? > \"$1\"";
    let t = Tmux::start_kha(
        "canary",
        &["sh", "-c", script, kha, &exit_file.to_string_lossy()],
        &dirs,
    );
    t.wait_for("the cockpit", |s| s.contains("Rollouts"));

    // The Rollouts pane is the last tile: one step back from the first, then open it.
    t.keys("BTab");
    t.keys("Enter");
    // The footer names the advisory's key once the lab's notice has gone.
    let advised = t.wait_for("the abort advisory and its key", |s| {
        s.contains("ABORT ADVISED") && s.contains("A abort canary")
    });
    assert!(advised.contains("shop/checkout"), "{advised}");
    assert!(advised.contains("canary 5xx"), "{advised}");
    assert!(advised.contains("> 5 %"), "the threshold:\n{advised}");
    assert!(
        advised.contains("measured 20"),
        "when it was measured:\n{advised}"
    );
    assert!(
        advised.contains("istio_requests_total"),
        "the query:\n{advised}"
    );
    assert!(advised.contains("Paused"), "{advised}");

    t.keys("A");
    let preview = t.wait_for("the abort plan", |s| {
        s.contains("Abort the canary of Rollout shop/checkout") && s.contains("y: run")
    });
    assert!(preview.contains("disruptive"), "{preview}");

    t.keys("y");
    let done = t.wait_for("the abort to finish", |s| {
        s.contains("done:") || s.contains("stopped:")
    });
    assert!(done.contains("done:"), "the abort failed:\n{done}");

    t.keys("Escape");
    let aborted = t.wait_for("the rollout aborted in the pane", |s| {
        s.contains("RolloutAborted") && !s.contains("Esc: close")
    });
    assert!(!aborted.contains("ABORT ADVISED"), "{aborted}");
    let row = aborted
        .lines()
        .find(|l| l.contains("shop/checkout") && l.contains("Degraded"))
        .unwrap_or_else(|| panic!("the rollout's row is Degraded:\n{aborted}"));
    assert!(row.contains("0/7"), "back to step 0: {row}");

    let audit = dirs.audit();
    assert!(audit.contains("rollout.abort"), "{audit}");
    assert!(audit.contains("\"finished\""), "{audit}");
    assert!(
        audit.contains("abort advised"),
        "the advisory as seen:\n{audit}"
    );

    t.keys("q");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = std::fs::read_to_string(&exit_file)
            .ok()
            .filter(|s| s.ends_with('\n'))
        {
            break s.trim().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "kha did not quit on q:\n{}\n{}",
            t.screen(),
            t.process_report()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, "0", "kha demo exit status");
}
