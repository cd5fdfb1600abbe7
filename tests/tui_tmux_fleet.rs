//! End to end: the fleet strip. A config file with three profiles: `lab` (a running
//! `kha lab up`), `lab-copy` (the same lab under another name) and `gone` (etcd on a
//! port nothing listens on). The cockpit on `lab` (tmux) reads the other two in the
//! background and shows them on its header line, worst first: `gone` CRIT with its
//! worst finding, then `lab-copy` OK.

mod common;

use common::lab_process::LabProcess;
use common::tmux::{KhaDirs, Tmux};

#[test]
fn the_header_shows_the_other_clusters_worst_first() {
    let lab = LabProcess::start(&["--etcd", "sim"]);
    let dirs = KhaDirs::new();
    let list = |var: &str| {
        lab.vars[var]
            .split(',')
            .map(|e| format!("{e:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Everything `kha lab up` serves, as a profile names it.
    let profile = |name: &str| {
        format!(
            "[clusters.{name}]\netcd_endpoints = [{}]\nkubeconfig = {:?}\n\
             apiserver_backends = [{}]\nlb_stats = {:?}\nprometheus_url = {:?}\n",
            list("KHA_ETCD_ENDPOINTS"),
            lab.vars["KUBECONFIG"],
            list("KHA_APISERVER_BACKENDS"),
            lab.vars["KHA_LB_STATS"],
            lab.vars["KHA_PROMETHEUS_URL"],
        )
    };
    std::fs::write(
        dirs.config.join("config.toml"),
        format!(
            "default_cluster = \"lab\"\n{}{}[clusters.gone]\netcd_endpoints = [\"http://127.0.0.1:1\"]\n",
            profile("lab"),
            profile("lab-copy"),
        ),
    )
    .unwrap();
    let kha = env!("CARGO_BIN_EXE_kha");
    let t = Tmux::start_kha("fleet", &[kha], &dirs);
    let header = |s: &str| s.lines().next().unwrap_or("").to_string();
    let screen = t.wait_for("the fleet strip with both reads", |s| {
        let h = header(s);
        h.contains("gone CRIT") && !h.contains("reading")
    });
    let top = header(&screen);
    assert!(top.contains("cluster lab "), "{top}");
    assert!(
        top.contains("fleet gone CRIT (etcd:"),
        "the worst first, with its worst finding: {top}"
    );
    // The rest of the strip is past 80 columns: widen the window to read it.
    let resized = t.cmd(&["resize-window", "-x", "220"]);
    assert!(resized.status.success(), "tmux resize-window");
    let wide = t.wait_for("lab-copy on the strip", |s| {
        header(s).contains("lab-copy OK")
    });
    let top = header(&wide);
    assert!(
        top.find("gone CRIT") < top.find("lab-copy OK"),
        "worst first: {top}"
    );
    t.keys("q");
}
