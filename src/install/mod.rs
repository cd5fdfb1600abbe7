//! Full-stack install and upgrade: the HA toolchain (Cilium, Prometheus with Thanos,
//! Rook-Ceph, Velero, Falco, Chaos Mesh, Argo Rollouts, Kubecost, Gatekeeper, Kyverno)
//! as an ordered, resumable, verified plan.
//!
//! - [`stack`]: the stack file (`stack.toml`, a default built in) with line-precise errors.
//! - [`graph`]: the dependency order.
//! - [`plan`]: the diff against what is installed, as a runbook (pure, golden-tested).
//! - [`observe`]: helm and the API server, read once for the plan.
//! - [`kube`]: server-side apply and readiness checks for the executor.
//! - [`state`]: kha's record in ConfigMap `kube-system/kha-install`.
//! - [`tui`]: the install of one pane's system, from its runbook menu.
//! - [`cli`]: `kha install --plan|--apply [--only ...]`.

pub mod cli;
pub mod graph;
pub mod kube;
pub mod observe;
pub mod plan;
pub mod ready;
pub mod stack;
pub mod state;
pub mod tui;
