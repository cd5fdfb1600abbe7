//! The `rollouts` object of `kha status --json`.

use serde::Serialize;

use super::{AnalysisRunRow, RolloutRow, RolloutsView};
use crate::model::finding::{Finding, Health};

#[derive(Debug, Serialize)]
pub struct RolloutsReport {
    pub status: Health,
    /// `false` when no Rollout exists.
    pub present: bool,
    pub summary: String,
    /// One per Rollout, its AnalysisRuns (current first) inside.
    pub rollouts: Vec<RolloutRow>,
    pub orphan_analysis_runs: Vec<AnalysisRunRow>,
    pub findings: Vec<Finding>,
}

impl RolloutsReport {
    pub fn from_view(view: &RolloutsView) -> Self {
        RolloutsReport {
            status: view.health(),
            present: !view.rollouts.is_empty(),
            summary: view.summary(),
            rollouts: view.rollouts.clone(),
            orphan_analysis_runs: view.orphan_runs.clone(),
            findings: view.findings.clone(),
        }
    }
}
