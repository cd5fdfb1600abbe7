//! Sources: one module per external system. Each runs as its own task, owns its
//! reconnect/backoff and sends typed observations; none touches the terminal or UI state.

pub mod canary;
pub mod etcd;
pub mod kube;
pub mod lb;
pub mod prometheus;

// The Thanos / metrics pane's source (issue 5).
pub mod prometheus_config;
pub mod prometheus_status;
