//! kha: a terminal cockpit for highly available Kubernetes clusters.
//!
//! Data flows one way: `sources` send observations, `model::update` is the only
//! writer of state, `ui` draws `&State`. See DESIGN.md.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod fleet;
pub mod install;
pub mod lab;
pub mod model;
pub mod runbook;
pub mod sources;
pub mod ui;
