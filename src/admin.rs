//! `kha info` (every path kha uses and what the chosen profile points at) and
//! `kha config check` (every profile, theme and keymap validated, every file a profile
//! names checked for existence), for jump-host setup and for CI of a shared config.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, eyre};

use crate::cli::{GlobalOpts, Settings};
use crate::config::keymap::Keymap;
use crate::config::theme::Theme;
use crate::config::{ClusterProfile, ConfigFile, Paths};

/// What `kha config check` found: one line per thing checked that is fine, and the
/// problems.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub ok: Vec<String>,
    pub problems: Vec<String>,
}

/// Checks the config file, every profile in it, and every user theme and keymap.
pub fn check(g: &GlobalOpts) -> CheckReport {
    let paths = Paths::discover();
    let config_path = g.config.clone().unwrap_or_else(|| paths.config_file());
    let mut report = CheckReport::default();
    let (file, problem) = ConfigFile::load(&config_path);
    match problem {
        Some(p) => report.problems.push(p.to_string()),
        None if config_path.exists() => report.ok.push(format!("{}: valid", config_path.display())),
        None => report.ok.push(format!(
            "{}: absent (flags and environment only)",
            config_path.display()
        )),
    }
    if let Some(name) = &file.default_cluster
        && !file.clusters.contains_key(name)
    {
        report.problems.push(format!(
            "{}: default_cluster {name:?} is not a [clusters.{name}] profile",
            config_path.display()
        ));
    }
    for (name, profile) in &file.clusters {
        let before = report.problems.len();
        check_profile(g, name, profile, &mut report.problems);
        if report.problems.len() == before {
            report.ok.push(format!("profile {name}: valid"));
        }
    }
    check_user_files(&paths.config_dir, &mut report);
    report
}

fn check_profile(g: &GlobalOpts, name: &str, profile: &ClusterProfile, problems: &mut Vec<String>) {
    let mut one = g.clone();
    one.cluster = Some(name.to_string());
    match Settings::resolve(&one) {
        Ok(settings) => {
            // Theme/keymap files are checked once, below, not per profile.
            if let Some(p) = settings.lb_problem {
                problems.push(format!("profile {name}: API-server LB: {p}"));
            }
            if let Some(p) = settings.prometheus_problem {
                problems.push(format!("profile {name}: metrics: {p}"));
            }
        }
        Err(e) => problems.push(format!("profile {name}: {e:#}")),
    }
    let files: [(&str, &Option<PathBuf>); 7] = [
        ("etcd_cacert", &profile.etcd_cacert),
        ("etcd_cert", &profile.etcd_cert),
        ("etcd_key", &profile.etcd_key),
        ("kubeconfig", &profile.kubeconfig),
        ("prometheus_ca", &profile.prometheus_ca),
        ("prometheus_token_file", &profile.prometheus_token_file),
        ("apiserver_ca", &profile.apiserver_ca),
    ];
    for (key, path) in files {
        if let Some(path) = path
            && let Err(why) = readable(path)
        {
            problems.push(format!("profile {name}: {key} {}: {why}", path.display()));
        }
    }
    if profile.etcd_cert.is_some() != profile.etcd_key.is_some() {
        problems.push(format!(
            "profile {name}: etcd_cert and etcd_key go together (client certificate and its key)"
        ));
    }
    for endpoint in profile.etcd_endpoints.iter().flatten() {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            problems.push(format!(
                "profile {name}: etcd endpoint {endpoint:?} needs a scheme (https://host:2379)"
            ));
        }
    }
    if let Some(command) = &profile.ssh_command {
        match command.first() {
            None => problems.push(format!(
                "profile {name}: ssh_command is empty (leave it out for plain ssh)"
            )),
            Some(program)
                if crate::runbook::exec::find_in_path(program).is_none()
                    && !Path::new(program).is_file() =>
            {
                problems.push(format!(
                    "profile {name}: ssh_command program {program:?} is not on PATH"
                ))
            }
            Some(_) => {}
        }
    }
}

fn readable(path: &Path) -> Result<(), String> {
    match std::fs::File::open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no such file".into()),
        Err(e) => Err(format!("cannot be read ({e})")),
    }
}

/// Every `themes/*.toml` and `keymaps/*.toml` in the config dir.
fn check_user_files(config_dir: &Path, report: &mut CheckReport) {
    for (dir, is_theme) in [("themes", true), ("keymaps", false)] {
        let Ok(entries) = std::fs::read_dir(config_dir.join(dir)) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        for name in names {
            let problems = if is_theme {
                Theme::load(&name, false, config_dir).1
            } else {
                Keymap::load(&name, config_dir).1
            };
            let path = config_dir.join(dir).join(format!("{name}.toml"));
            if problems.is_empty() {
                report.ok.push(format!("{}: valid", path.display()));
            }
            report
                .problems
                .extend(problems.iter().map(ToString::to_string));
        }
    }
}

/// `kha config check`: prints what was checked and the problems; exit 1 on any problem.
pub fn config_check(g: &GlobalOpts) -> i32 {
    let report = check(g);
    for line in &report.ok {
        println!("ok       {line}");
    }
    for line in &report.problems {
        println!("PROBLEM  {line}");
    }
    if report.problems.is_empty() {
        println!("config ok");
        0
    } else {
        println!("{} problem(s)", report.problems.len());
        1
    }
}

/// `user:password@` taken out of a URL, for display.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// `kha info`: the text (no secrets: token files are named, never read).
pub fn info_text(g: &GlobalOpts) -> Result<String> {
    let paths = Paths::discover();
    let config_path = g.config.clone().unwrap_or_else(|| paths.config_file());
    let (file, problem) = ConfigFile::load(&config_path);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "kha {}", env!("CARGO_PKG_VERSION"));
    let exists = |p: &Path| if p.exists() { "" } else { " (absent)" };
    let _ = writeln!(
        w,
        "config file     {}{}",
        config_path.display(),
        exists(&config_path)
    );
    if let Some(p) = problem {
        let _ = writeln!(w, "                {p}");
    }
    for (label, dir) in [("themes", "themes"), ("keymaps", "keymaps")] {
        let d = paths.config_dir.join(dir);
        let _ = writeln!(w, "{label:<16}{}{}", d.display(), exists(&d));
    }
    let state = &paths.state_dir;
    let _ = writeln!(w, "state dir       {}{}", state.display(), exists(state));
    let audit = state.join("audit.jsonl");
    let _ = writeln!(w, "audit log       {}{}", audit.display(), exists(&audit));
    let snapshots = crate::model::runbook_ui::default_snapshot_dir(state);
    let _ = writeln!(
        w,
        "etcd snapshots  {}{}",
        snapshots.display(),
        exists(&snapshots)
    );
    let _ = writeln!(w, "ssh sockets     {}/ssh-%C", state.display());
    let names: Vec<&str> = file.clusters.keys().map(String::as_str).collect();
    let _ = writeln!(
        w,
        "profiles        {}{}",
        if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        },
        file.default_cluster
            .as_deref()
            .map(|d| format!(" (default {d})"))
            .unwrap_or_default()
    );
    let settings = Settings::resolve(g).map_err(|e| eyre!("{e:#}"))?;
    let _ = writeln!(w, "cluster         {}", settings.cluster);
    let endpoints = &settings.etcd.endpoints;
    let _ = writeln!(
        w,
        "  etcd          {}",
        if endpoints.is_empty() {
            "not configured".into()
        } else {
            endpoints.join(", ")
        }
    );
    let kube = match &settings.kube.kubeconfig {
        Some(crate::sources::kube::KubeconfigSource::File(p)) => p.display().to_string(),
        Some(crate::sources::kube::KubeconfigSource::Env) => "KUBECONFIG".into(),
        None => "not configured".into(),
    };
    let context = settings
        .kube
        .context
        .as_deref()
        .unwrap_or("current context");
    let _ = writeln!(w, "  kubeconfig    {kube} ({context})");
    let metrics = settings
        .prometheus
        .as_ref()
        .map_or_else(|| "not configured".into(), |p| without_userinfo(&p.url));
    let _ = writeln!(w, "  metrics       {metrics}");
    let ssh = if settings.ssh_command.is_empty() {
        "ssh".to_string()
    } else {
        settings.ssh_command.join(" ")
    };
    let _ = writeln!(w, "  ssh           {ssh}");
    let _ = writeln!(
        w,
        "  actions       {}",
        if settings.read_only {
            "refused (read-only)"
        } else {
            "allowed after preview and confirmation"
        }
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_not_shown() {
        assert_eq!(
            without_userinfo("https://bob:s3cret@thanos.example:9090/x@y"),
            "https://…@thanos.example:9090/x@y"
        );
        assert_eq!(
            without_userinfo("https://thanos.example:9090/a@b"),
            "https://thanos.example:9090/a@b"
        );
        assert_eq!(without_userinfo("not a url"), "not a url");
    }
}
