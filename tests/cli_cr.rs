//! The custom-resource runbooks and the abort advisory from the command line, against
//! `kha lab up --scenario canary-bad`: `kha status --json` carries the advisory and its
//! evidence on the rollout's row; `kha rollout abort --plan` prints the exact patch;
//! `kha rollout abort --confirm y` aborts (the advisory goes, the rollout is Degraded);
//! `kha traffic shift` moves the route's weights.

mod common;

use std::process::{Command, Output};

use common::lab_process::LabProcess;
use serde_json::Value;

impl LabProcess {
    fn kha(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kha"))
            .args(args)
            .env("KUBECONFIG", &self.vars["KUBECONFIG"])
            .env("KHA_PROMETHEUS_URL", &self.vars["KHA_PROMETHEUS_URL"])
            .env("KHA_CONFIG_DIR", "/nonexistent-kha-test")
            .env("KHA_STATE_DIR", self.dir.path().join("state"))
            .env_remove("KHA_ETCD_ENDPOINTS")
            .output()
            .expect("run kha")
    }

    fn rollout_row(&self) -> Value {
        let out = self.kha(&["status", "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "kha status --json: {e}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        report["rollouts"]["rollouts"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == "checkout").cloned())
            .unwrap_or_else(|| panic!("no checkout rollout in {}", report["rollouts"]))
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn advisory_in_status_then_abort_and_shift_from_the_command_line() {
    let lab = LabProcess::start(&["--scenario", "canary-bad", "--etcd", "sim"]);

    let row = lab.rollout_row();
    let advisory = &row["abort_advisory"];
    let rate = advisory["error_rate"].as_f64().expect("an advisory");
    assert!(rate > 0.05, "{advisory}");
    assert_eq!(advisory["threshold"], 0.05);
    assert!(
        advisory["query"]
            .as_str()
            .is_some_and(|q| q.contains("istio_requests_total")),
        "{advisory}"
    );
    assert!(
        advisory["measured_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(
        advisory["series"]["destination_service_name"],
        "checkout-canary"
    );
    assert_eq!(row["canary_error_rate"].as_f64(), Some(rate));

    let plan = lab.kha(&["rollout", "abort", "shop/checkout", "--plan"]);
    assert!(plan.status.success(), "{}", text(&plan));
    assert!(
        text(&plan).contains(
            r#"kube PATCH (merge) rollouts.argoproj.io shop/checkout/status: {"status":{"abort":true}}"#
        ),
        "{}",
        text(&plan)
    );

    let run = lab.kha(&["rollout", "abort", "shop/checkout", "--confirm", "y"]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("done: 1 step(s)"), "{}", text(&run));
    let row = lab.rollout_row();
    assert_eq!(row["phase"], "Degraded", "{row}");
    assert_eq!(row["aborted"], true);
    assert!(row["abort_advisory"].is_null(), "{row}");

    // undo reads the ReplicaSets by the rollout's selector and puts revision 6 back.
    let undo = lab.kha(&["rollout", "undo", "shop/checkout", "--confirm", "y"]);
    assert!(undo.status.success(), "{}", text(&undo));
    let out = text(&undo);
    assert!(out.contains("back to revision 6"), "{out}");
    assert!(
        out.contains(r#"[{"op":"replace","path":"/spec/template""#),
        "{out}"
    );
    assert!(out.contains("checkout:1.41.3"), "{out}");
    assert!(out.contains("done: 1 step(s)"), "{out}");

    let shift = lab.kha(&[
        "traffic",
        "shift",
        "shop/checkout-global",
        "--to",
        "0/100",
        "--step",
        "50",
        "--pause",
        "0s",
        "--confirm",
        "y",
    ]);
    assert!(shift.status.success(), "{}", text(&shift));
    let out = text(&shift);
    assert!(out.contains("Set weights checkout-eu-west-1 20"), "{out}");
    assert!(
        out.contains("Set weights checkout-eu-west-1 0 · checkout-eu-central-1 100"),
        "{out}"
    );
    assert!(out.contains("done: 2 step(s)"), "{out}");

    // Velero: a backup now from the schedule, then a restore of one namespace from it.
    let backup = lab.kha(&[
        "velero",
        "backup",
        "--from-schedule",
        "daily-backup",
        "--confirm",
        "y",
    ]);
    let out = text(&backup);
    assert!(backup.status.success(), "{out}");
    assert!(out.contains("done: 1 step(s)"), "{out}");
    let name = out
        .split("Create Backup velero/")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the backup's name in:\n{out}"))
        .to_string();
    assert!(
        name.starts_with("daily-backup-") && name.len() == "daily-backup-".len() + 14,
        "{name}"
    );

    let plan = lab.kha(&[
        "velero",
        "restore",
        "--from-backup",
        &name,
        "--namespaces",
        "shop",
        "--plan",
    ]);
    let plan_text = text(&plan);
    assert!(plan.status.success(), "{plan_text}");
    let cluster = plan_text
        .split("needs the cluster name `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("a destructive plan names the cluster:\n{plan_text}"))
        .to_string();
    assert!(
        plan_text.contains(r#""includedNamespaces":["shop"]"#),
        "{plan_text}"
    );
    let restore = lab.kha(&[
        "velero",
        "restore",
        "--from-backup",
        &name,
        "--namespaces",
        "shop",
        "--confirm",
        &cluster,
    ]);
    let out = text(&restore);
    assert!(restore.status.success(), "{out}");
    assert!(out.contains(r#"/status/phase = "Completed""#), "{out}");
    assert!(out.contains("done: 1 step(s)"), "{out}");
}

/// peers.md: read-only must not be bypassable by any action. Every guided action of the
/// command line, with its confirmation given, is refused under `--read-only` by the
/// engine: a non-zero exit, the reason said, one `refused` audit record each, and
/// nothing written to the cluster (its resourceVersion does not move), no snapshot file.
#[test]
fn read_only_refuses_every_action_and_changes_nothing() {
    let lab = LabProcess::start(&["--etcd", "sim"]);
    let resource_version = || {
        let out = Command::new("kubectl")
            .args(["get", "nodes", "-o", "jsonpath={.metadata.resourceVersion}"])
            .env("KUBECONFIG", &lab.vars["KUBECONFIG"])
            .output()
            .expect("kubectl runs (scripts/deps.sh installs it)");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = resource_version();
    // The lab's backups are named after the last week's dates: take one it has today.
    let backup = {
        let out = Command::new("kubectl")
            .args([
                "get",
                "backups.velero.io",
                "-n",
                "velero",
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ])
            .env("KUBECONFIG", &lab.vars["KUBECONFIG"])
            .output()
            .expect("kubectl runs (scripts/deps.sh installs it)");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(backup.starts_with("daily-backup-"), "{backup}");
    let snapshot = lab.dir.path().join("read-only.db");
    let snapshot_arg = snapshot.display().to_string();
    let nginx_upstream = lab.dir.path().join("apiserver.conf");
    std::fs::write(
        &nginx_upstream,
        "stream {\n    upstream kube_apiserver {\n        server 127.0.0.1:6443;\n        \
         server 127.0.0.2:6443;\n    }\n}\n",
    )
    .unwrap();
    let nginx_upstream_arg = nginx_upstream.display().to_string();
    let actions: Vec<Vec<&str>> = vec![
        vec!["etcd", "snapshot", "save", &snapshot_arg],
        vec!["etcd", "move-leader", "--to", "etcd-b"],
        vec!["etcd", "defrag"],
        vec!["etcd", "recover-nospace"],
        vec!["rollout", "abort", "shop/checkout"],
        vec!["rollout", "retry", "shop/checkout"],
        vec!["rollout", "promote", "shop/checkout"],
        vec!["rollout", "promote", "--full", "shop/checkout"],
        vec!["rollout", "undo", "shop/checkout"],
        vec!["velero", "backup", "--from-schedule", "daily-backup"],
        vec!["velero", "restore", "--from-backup", &backup],
        vec!["traffic", "shift", "shop/checkout-global", "--to", "0/100"],
        vec!["lb", "drain", "127.0.0.1"],
        vec![
            "lb",
            "drain",
            "127.0.0.2:6443",
            "--nginx-config",
            &nginx_upstream_arg,
            "--nginx-main-config",
            "/etc/nginx/nginx.conf",
            "--nginx-bin",
            "/usr/sbin/nginx",
        ],
        vec!["node", "cordon", "worker-a-00000"],
        vec!["node", "drain", "worker-a-00000"],
        vec!["node", "uncordon", "worker-a-00000"],
        vec!["zone", "evacuate", "eu-west-1a"],
        vec!["install", "--apply"],
    ];
    let mut refused = 0;
    for action in &actions {
        let mut args = vec!["--read-only"];
        args.extend(action.iter().copied());
        args.extend(["--confirm", "default"]);
        let out = Command::new(env!("CARGO_BIN_EXE_kha"))
            .args(&args)
            .envs(lab.vars.iter().filter(|(k, _)| k.starts_with("KHA_")))
            .env("KUBECONFIG", &lab.vars["KUBECONFIG"])
            .env("KHA_CONFIG_DIR", "/nonexistent-kha-test")
            .env("KHA_STATE_DIR", lab.dir.path().join("state"))
            .output()
            .expect("run kha");
        let said = text(&out);
        assert!(
            !out.status.success(),
            "{action:?} ran under --read-only:\n{said}"
        );
        if said.contains("read-only: kha refuses every runbook") {
            refused += 1;
        } else {
            eprintln!("{action:?} was refused before the engine:\n{said}");
        }
    }
    assert!(
        !snapshot.exists(),
        "a snapshot was written under --read-only"
    );
    assert_eq!(
        resource_version(),
        before,
        "the cluster changed under --read-only"
    );
    let audit = std::fs::read_to_string(lab.dir.path().join("state/audit.jsonl"))
        .expect("refusals are audited");
    let records = audit
        .lines()
        .filter(|l| l.contains("\"event\":\"refused\""))
        .count();
    assert_eq!(records, refused, "one refused record per refused action");
    // Each names who the API server says ran it (`kubectl auth whoami`'s
    // SelfSubjectReview), not only the kubeconfig's entry.
    let confirmed = "\"kube_user\":\"kha-lab-admin [kubeadm:cluster-admins, system:authenticated] via kha-lab-admin@kha-lab\"";
    for line in audit
        .lines()
        .filter(|l| l.contains("\"event\":\"refused\""))
    {
        assert!(line.contains(confirmed), "{line}");
    }
    assert_eq!(
        refused,
        actions.len(),
        "every action reaches the engine's read-only refusal"
    );
}
