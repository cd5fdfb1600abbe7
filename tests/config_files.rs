//! Every shipped theme and keymap parses; broken user files give the promised message
//! (file and line) and kha carries on with the defaults.

mod common;

use std::path::Path;
use std::process::Command;

use kha::config::keymap::{self, Keymap};
use kha::config::theme::{self, Theme};
use kha::model::Action;

#[test]
fn every_shipped_theme_parses_and_sets_every_role() {
    assert!(theme::SHIPPED.len() >= 4);
    for (name, text) in theme::SHIPPED {
        let table: toml::Table =
            toml::from_str(text).unwrap_or_else(|e| panic!("themes/{name}.toml: {e}"));
        for role in theme::ROLES {
            assert!(
                table.contains_key(*role),
                "themes/{name}.toml lacks role {role}"
            );
        }
        assert!(
            Theme::shipped(name).is_some(),
            "themes/{name}.toml does not load"
        );
    }
    for required in ["default", "light", "high-contrast", "mono"] {
        assert!(Theme::shipped(required).is_some(), "{required} must ship");
    }
}

#[test]
fn every_shipped_keymap_parses_and_binds_every_action() {
    for (name, _) in keymap::SHIPPED {
        let km =
            Keymap::shipped(name).unwrap_or_else(|| panic!("keymaps/{name}.toml does not load"));
        for action in Action::ALL {
            assert!(
                km.key_for(*action).is_some(),
                "keymap {name}: no key for {}",
                action.name()
            );
        }
    }
    let vim = Keymap::shipped("vim").expect("vim");
    assert_eq!(vim.action_for("j"), Some(Action::Down));
    assert_eq!(
        vim.action_for("q"),
        Some(Action::Quit),
        "vim inherits the default keys"
    );
}

fn user_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

#[test]
fn user_theme_overrides_partially() {
    let dir = user_dir(&[("themes/default.toml", "ok = \"blue\"\n")]);
    let (t, problems) = Theme::load("default", false, dir.path());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(t.ok.fg, Some(ratatui::style::Color::Blue));
    assert_eq!(
        t.warn,
        Theme::shipped("default").expect("default").warn,
        "other roles keep the shipped style"
    );
}

#[test]
fn broken_user_theme_names_file_and_line_and_falls_back() {
    let dir = user_dir(&[(
        "themes/default.toml",
        "ok = \"green\"\n\nwarn = \"yelow\"\n",
    )]);
    let (t, problems) = Theme::load("default", false, dir.path());
    assert_eq!(problems.len(), 1);
    let msg = problems[0].to_string();
    assert!(msg.contains("themes/default.toml line 3"), "{msg}");
    assert!(msg.contains("yelow"), "{msg}");
    assert!(msg.contains("using the built-in defaults"), "{msg}");
    assert_eq!(t, Theme::shipped("default").expect("default"));

    let dir = user_dir(&[("themes/default.toml", "ok = \"green\"\nborderz = \"red\"\n")]);
    let (_, problems) = Theme::load("default", false, dir.path());
    assert!(
        problems[0]
            .to_string()
            .contains("line 2: unknown role \"borderz\""),
        "{}",
        problems[0]
    );

    let dir = user_dir(&[("themes/default.toml", "ok = [\n")]);
    let (_, problems) = Theme::load("default", false, dir.path());
    assert!(
        problems[0].line.is_some(),
        "syntax errors have a line: {}",
        problems[0]
    );
}

#[test]
fn no_color_selects_mono() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (t, _) = Theme::load("default", true, dir.path());
    assert_eq!(t.name, "mono");
}

#[test]
fn unknown_theme_or_keymap_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (t, problems) = Theme::load("solarized", false, dir.path());
    assert_eq!(t.name, "default");
    assert!(
        problems[0].message.contains("no theme \"solarized\""),
        "{}",
        problems[0]
    );
    let (k, problems) = Keymap::load("emacs", dir.path());
    assert_eq!(k.name, "default");
    assert!(problems[0].message.contains("no keymap"), "{}", problems[0]);
}

#[test]
fn broken_user_keymap_names_file_and_line_and_falls_back() {
    let cases = [
        (
            "[quit]\nkeys = [\"q\"]\n[fly]\nkeys = [\"f\"]\n",
            3,
            "unknown action \"fly\"",
        ),
        (
            "[quit]\nkeys = [\"q\"]\n\n[help]\nkeys = [\"hyper-x\"]\n",
            5,
            "unknown key \"hyper-x\"",
        ),
        (
            "[quit]\nkeys = [\"z\"]\n[help]\nkeys = [\"z\"]\n",
            4,
            "bound to both",
        ),
        ("[quit]\nkeyz = [\"z\"]\n", 2, "keyz"),
    ];
    for (text, line, needle) in cases {
        let dir = user_dir(&[("keymaps/default.toml", text)]);
        let (km, problems) = Keymap::load("default", dir.path());
        assert_eq!(problems.len(), 1, "{text}");
        let msg = problems[0].to_string();
        assert!(
            msg.contains(&format!("keymaps/default.toml line {line}")),
            "{msg}"
        );
        assert!(msg.contains(needle), "{msg}");
        assert_eq!(
            km,
            Keymap::shipped("default").expect("default"),
            "falls back to the shipped keymap"
        );
    }
}

#[test]
fn user_keymap_overrides_partially() {
    let dir = user_dir(&[(
        "keymaps/default.toml",
        "[pane_etcd]\nkeys = [\"E\"]\ndesc = \"etcd!\"\n",
    )]);
    let (km, problems) = Keymap::load("default", dir.path());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(km.action_for("E"), Some(Action::PaneEtcd));
    assert_eq!(km.action_for("e"), None);
    assert_eq!(km.action_for("q"), Some(Action::Quit));
}

/// The binary with a broken config file: a message naming file and line, then it runs.
#[test]
fn kha_status_with_a_broken_config_says_so_and_carries_on() {
    let dir = user_dir(&[("config.toml", "[clusters.prod]\netcd_endpoints = \"oops\n")]);
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["status", "--json"])
        .env("KHA_CONFIG_DIR", dir.path())
        .env_remove("KHA_ETCD_ENDPOINTS")
        .output()
        .expect("run kha");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = Path::new(dir.path())
        .join("config.toml")
        .display()
        .to_string();
    assert!(
        stderr.contains(&format!("{shown} line 2")),
        "stderr: {stderr}"
    );
    assert_eq!(out.status.code(), Some(3), "unknown: nothing configured");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(json["etcd"]["status"], "unknown");
}

#[test]
fn unknown_cluster_profile_is_an_error_naming_the_known_ones() {
    let dir = user_dir(&[(
        "config.toml",
        "[clusters.prod]\netcd_endpoints = [\"http://127.0.0.1:1\"]\n",
    )]);
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["--cluster", "prdo", "status"])
        .env("KHA_CONFIG_DIR", dir.path())
        .output()
        .expect("run kha");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no cluster profile \"prdo\"") && stderr.contains("prod"),
        "{stderr}"
    );
}

fn kha_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(args)
        .env("KHA_CONFIG_DIR", dir)
        .env("KHA_STATE_DIR", dir.join("state"))
        .env_remove("KUBECONFIG")
        .env_remove("KHA_ETCD_ENDPOINTS")
        .env_remove("KHA_PROMETHEUS_URL")
        .output()
        .expect("run kha");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn config_check_passes_a_good_config_and_names_every_problem_of_a_bad_one() {
    let good = user_dir(&[
        (
            "config.toml",
            "default_cluster = \"prod\"\n[clusters.prod]\netcd_endpoints = [\"https://10.0.0.11:2379\"]\nlb_stats = \"unix:///run/haproxy/admin.sock\"\n",
        ),
        ("themes/mine.toml", "ok = \"green\"\n"),
    ]);
    let (code, text) = kha_in(good.path(), &["config", "check"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("profile prod: valid"), "{text}");
    assert!(text.contains("mine.toml: valid"), "{text}");
    assert!(text.contains("config ok"), "{text}");

    let bad = user_dir(&[
        (
            "config.toml",
            "default_cluster = \"stage\"\n\
             [clusters.prod]\n\
             etcd_endpoints = [\"10.0.0.11:2379\"]\n\
             etcd_cacert = \"/nonexistent/ca.crt\"\n\
             etcd_cert = \"/nonexistent/client.crt\"\n\
             lb_stats = \"ftp://lb\"\n\
             ssh_command = [\"no-such-ssh-kha\"]\n",
        ),
        ("keymaps/broken.toml", "[keys]\nquit = \n"),
    ]);
    let (code, text) = kha_in(bad.path(), &["config", "check"]);
    assert_eq!(code, 1, "{text}");
    for expected in [
        "default_cluster \"stage\" is not a [clusters.stage] profile",
        "profile prod: etcd endpoint \"10.0.0.11:2379\" needs a scheme",
        "profile prod: etcd_cacert /nonexistent/ca.crt: no such file",
        "etcd_cert and etcd_key go together",
        "profile prod: API-server LB:",
        "ssh_command program \"no-such-ssh-kha\" is not on PATH",
        "broken.toml line 2",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    // A file that is not TOML at all is one problem with its line, not a crash.
    let broken = user_dir(&[("config.toml", "[clusters.prod\n")]);
    let (code, text) = kha_in(broken.path(), &["config", "check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("config.toml line 1"), "{text}");
}

#[test]
fn info_names_every_path_and_hides_credentials() {
    let dir = user_dir(&[(
        "config.toml",
        "[clusters.prod]\netcd_endpoints = [\"https://10.0.0.11:2379\"]\nprometheus_url = \"https://bob:s3cret@thanos.example:9090\"\nssh_command = [\"ssh\", \"-J\", \"bastion\"]\nread_only = true\n",
    )]);
    let (code, text) = kha_in(dir.path(), &["info"]);
    assert_eq!(code, 0, "{text}");
    let d = dir.path().display().to_string();
    for expected in [
        format!("config file     {d}/config.toml"),
        format!("themes          {d}/themes (absent)"),
        format!("audit log       {d}/state/audit.jsonl (absent)"),
        format!("etcd snapshots  {d}/state/snapshots"),
        "profiles        prod".to_string(),
        "cluster         prod".to_string(),
        "etcd          https://10.0.0.11:2379".to_string(),
        "metrics       https://…@thanos.example:9090".to_string(),
        "ssh           ssh -J bastion".to_string(),
        "refused (read-only)".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("s3cret"), "{text}");
}
