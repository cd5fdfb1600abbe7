//! A runbook's plan as Markdown: what `--plan` prints and an engineer pastes into the
//! incident channel. Pure, so golden tests pin it.

use std::fmt::Write;

use super::{Risk, Runbook};

/// The whole plan: title, risk, the confirmation it needs, preconditions with what was
/// seen, and every step with its exact operation, verification and failure guidance.
pub fn markdown(rb: &Runbook) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {} — cluster `{}`", rb.title, rb.cluster);
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", rb.summary);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Runbook `{}` · risk **{}** · {}",
        rb.id,
        rb.risk(),
        confirmation(rb)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "## Preconditions");
    let _ = writeln!(out);
    if rb.preconditions.is_empty() {
        let _ = writeln!(out, "- none");
    }
    for p in &rb.preconditions {
        let mark = if p.met { "x" } else { " " };
        let _ = writeln!(out, "- [{mark}] {} — {}", p.description, p.evidence);
    }
    let unmet = rb.unmet().len();
    if unmet > 0 {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "**{unmet} precondition(s) not met: kha will not run this plan.**"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "## Steps");
    for (i, s) in rb.steps.iter().enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(out, "### {}. {} ({})", i + 1, s.title, s.risk);
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", s.explanation);
        let _ = writeln!(out);
        let _ = writeln!(out, "- runs: `{}`", s.operation.describe());
        let _ = writeln!(
            out,
            "- verifies: {} (within {} s)",
            s.verification.describe(),
            s.timeout.as_secs()
        );
        let _ = writeln!(out, "- if it fails: {}", s.on_failure);
        if s.skippable {
            let _ = writeln!(out, "- may be skipped after a failure");
        }
    }
    out
}

/// What the engineer must do before the plan runs.
pub fn confirmation(rb: &Runbook) -> String {
    match rb.risk() {
        Risk::Safe => "runs without confirmation".into(),
        Risk::Disruptive => "needs `y` to run".into(),
        Risk::Destructive => format!("needs the cluster name `{}` typed to run", rb.cluster),
    }
}
