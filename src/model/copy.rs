//! `ctrl-y` copies what the engineer is looking at to their own clipboard, over SSH
//! with no X11: the cockpit writes an OSC 52 sequence and the terminal (or tmux with
//! `set-clipboard`) takes it. What is copied: the plan in a runbook preview, the run's
//! output, the selected KPI's PromQL on the KPI pane, otherwise the findings, so that
//! "what is broken" and "exactly what will run" can be pasted into the incident channel.

use std::fmt::Write as _;

use super::runbook_ui::RunbookScreen;
use super::{Effect, PaneId, Screen, State};
use crate::runbook::plan;

/// Terminals cap OSC 52 payloads (xterm at about 100 kB of base64); beyond this the
/// copy is refused rather than cut.
pub const MAX_COPY_BYTES: usize = 64 * 1024;

/// What `ctrl-y` copies here, named for the notice.
pub fn what_to_copy(state: &State) -> Option<(String, String)> {
    match &state.runbook {
        Some(RunbookScreen::Preview { runbook, .. }) => {
            return Some(("the plan".into(), plan::markdown(runbook)));
        }
        Some(RunbookScreen::Running {
            title,
            lines,
            finished,
            ..
        }) => {
            let mut text = format!("{title}\n");
            for l in lines {
                let _ = writeln!(text, "{l}");
            }
            match finished {
                Some(Ok(s)) => {
                    let _ = writeln!(text, "done: {s}");
                }
                Some(Err(e)) => {
                    let _ = writeln!(text, "stopped: {e}");
                }
                None => text.push_str("(still running)\n"),
            }
            return Some(("the run's output".into(), text));
        }
        Some(_) => return None,
        None => {}
    }
    if state.screen == Screen::Pane(PaneId::Kpis) {
        let rows = state.kpis.rows();
        if let Some(row) = rows.get(state.kpis.selected) {
            return Some((
                format!("the PromQL of {}", row.def.title),
                row.query().to_string(),
            ));
        }
    }
    let findings = state.findings();
    let stamp = crate::runbook::audit::rfc3339(state.now);
    let mut text = format!("kha · cluster {} · {stamp}\n", state.cluster);
    if findings.is_empty() {
        text.push_str("no findings\n");
    }
    for f in &findings {
        let _ = writeln!(text, "{} {}: {}", f.severity.label(), f.pane, f.message);
    }
    let what = match findings.len() {
        0 => "the findings (none)".to_string(),
        n => format!("{n} finding(s)"),
    };
    Some((what, text))
}

/// `ctrl-y`: the copy as an effect, and a notice saying what went.
pub fn copy(state: &mut State) -> Vec<Effect> {
    let Some((what, text)) = what_to_copy(state) else {
        state.notice("nothing to copy here: ctrl-y copies a plan, a run's output, a KPI's PromQL or the findings".into());
        return Vec::new();
    };
    if text.len() > MAX_COPY_BYTES {
        state.notice(format!(
            "not copied: {what} is {} kB, more than terminals take over OSC 52 ({} kB)",
            text.len() / 1024,
            MAX_COPY_BYTES / 1024
        ));
        return Vec::new();
    }
    state.notice(format!(
        "copied {what}, {} line(s), to your clipboard (OSC 52)",
        text.lines().count()
    ));
    vec![Effect::Copy(text)]
}

/// The OSC 52 sequence that puts `text` on the clipboard (`c`), base64 as the
/// protocol wants, ended by BEL (understood by xterm, tmux, iTerm2, kitty, WezTerm).
pub fn osc52(text: &str) -> String {
    use base64::Engine as _;
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_is_base64_between_the_markers() {
        assert_eq!(osc52("kha"), "\x1b]52;c;a2hh\x07");
        // Control characters in the text cannot end the sequence early.
        let seq = osc52("a\x07b\x1b]c");
        assert_eq!(seq.matches('\x07').count(), 1);
        assert!(seq.ends_with('\x07'));
    }
}
