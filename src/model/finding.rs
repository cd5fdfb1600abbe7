//! Findings: what is wrong, how badly, in words an on-call engineer can act on.

use serde::Serialize;

/// Health of a pane or of the whole cluster. Ordered from best to worst so `max` gives
/// the worst; `Unknown` sits between `Ok` and `Warn`: not knowing is worse than knowing
/// all is well, but it is not evidence of a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Unknown,
    Warn,
    Crit,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Ok => "OK",
            Health::Unknown => "UNKNOWN",
            Health::Warn => "WARN",
            Health::Crit => "CRIT",
        }
    }

    /// Exit code of `kha status`: 0 ok, 1 warn, 2 crit, 3 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Health::Ok => 0,
            Health::Warn => 1,
            Health::Crit => 2,
            Health::Unknown => 3,
        }
    }
}

/// One thing kha noticed, with its severity and the pane it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Health,
    pub pane: &'static str,
    pub message: String,
}

impl Finding {
    pub fn crit(pane: &'static str, message: impl Into<String>) -> Self {
        Finding {
            severity: Health::Crit,
            pane,
            message: message.into(),
        }
    }
    pub fn warn(pane: &'static str, message: impl Into<String>) -> Self {
        Finding {
            severity: Health::Warn,
            pane,
            message: message.into(),
        }
    }
}

/// Worst health among findings (Ok when there are none).
pub fn worst(findings: &[Finding]) -> Health {
    findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Health::Ok)
}
