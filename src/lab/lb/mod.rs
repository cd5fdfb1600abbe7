//! The lab's kube-apiserver load-balancing layer: [`ApiServerBackends`] serves one
//! simulated apiserver health endpoint per control-plane node (the real v1.31 text of
//! `/readyz`, `/livez`, `/healthz` and `/version`), following the lab's faults; and
//! [`HaproxyRuntime`] answers HAProxy 2.6's runtime API over a unix socket for a
//! `kube-apiserver` backend that health-checks them, so kha's LB pane sees what it would
//! see in front of a real control plane.

mod backends;
mod haproxy;
mod health;

pub use backends::ApiServerBackends;
pub use haproxy::HaproxyRuntime;
pub use health::KUBERNETES_VERSION;
