//! The lab: a simulated HA cluster on loopback for `kha demo`, `kha lab up` and tests.
//! It serves a 3-member etcd cluster (real `etcd` processes when installed, simulated
//! members otherwise), kube-apiserver health backends behind an HAProxy-compatible
//! runtime API, and a Prometheus/Thanos-compatible metrics API, all derived from one
//! seeded [`topology::Topology`] and the [`topology::Faults`] in force.

pub mod civil;
pub mod cluster;
pub mod control;
pub mod controllers;
pub mod etcd;
pub mod etcd_real;
pub mod etcd_sim;
pub mod kube;
pub mod lb;
pub mod metrics;
pub mod skeleton;
pub mod topology;
pub mod world;

use std::path::Path;

use color_eyre::eyre::{Result, WrapErr};

pub use cluster::{Lab, LabOptions};
pub use etcd::{EtcdMode, LabEtcd};

/// `lab.env`: `export` lines for every endpoint, for `source`-ing in a shell.
pub fn write_env(dir: &Path, vars: &[(&'static str, String)]) -> Result<()> {
    let mut text = format!(
        "# written by `kha lab up`; source it: . {}/lab.env\n",
        dir.display()
    );
    for (name, value) in vars {
        text.push_str(&format!("export {name}={value}\n"));
    }
    let tmp = dir.join("lab.env.tmp");
    std::fs::write(&tmp, text).wrap_err_with(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("lab.env")).wrap_err("cannot move lab.env into place")?;
    Ok(())
}

/// `kha lab up --dir DIR`: start the lab, write `DIR/lab.env`, run until SIGINT/SIGTERM.
pub async fn up(dir: &Path, options: LabOptions) -> Result<()> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let lab = Lab::start(dir, &options).await?;
    let (requests, inbox) = tokio::sync::mpsc::channel(16);
    let control = control::ControlServer::start(requests).await?;
    let mut vars = lab.env();
    vars.push(("KHA_LAB_CONTROL", control.url()));
    write_env(dir, &vars)?;
    println!(
        "kha lab: {} ({:?} scenario)",
        lab.describe(),
        options.spec.scenario
    );
    for (name, value) in &vars {
        println!("  {name}={value}");
    }
    println!(
        "kha lab: wrote {}/lab.env; Ctrl-C stops the lab",
        dir.display()
    );
    let serving = tokio::spawn(control::serve(lab, inbox));
    wait_for_shutdown_signal().await?;
    control.shutdown().await;
    // The control server held the only sender: the lab task now shuts the lab down.
    let _ = serving.await;
    let _ = std::fs::remove_file(dir.join("lab.env"));
    println!("kha lab: stopped");
    Ok(())
}

/// Resolves on SIGINT, SIGTERM or SIGHUP.
pub async fn wait_for_shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).wrap_err("cannot watch SIGTERM")?;
    let mut hup = signal(SignalKind::hangup()).wrap_err("cannot watch SIGHUP")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.wrap_err("cannot watch SIGINT")?,
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
    Ok(())
}
