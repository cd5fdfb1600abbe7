//! The nginx side of the API-server LB runbooks: nginx has no runtime API for stream
//! upstreams, so a backend is taken out by marking its `server` line `down` in the
//! config file, checked with `nginx -t` and made live with a graceful reload.

use std::fmt::Write;
use std::time::Duration;

use super::BackendAction;
use crate::runbook::{Operation, Precondition, Risk, Runbook, Step, Verification};

/// One `server` line of an nginx `upstream` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamServer {
    pub upstream: String,
    pub address: String,
    pub down: bool,
    /// 0-based line in the config.
    pub line: usize,
}

/// The `server` lines of every `upstream` block (comments and other blocks ignored).
pub fn upstream_servers(config: &str) -> Vec<UpstreamServer> {
    let mut out = Vec::new();
    let mut upstream: Option<String> = None;
    let mut depth = 0usize;
    for (i, raw) in config.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("upstream") if upstream.is_none() => {
                upstream = words.next().map(|w| w.trim_end_matches('{').to_string());
                depth = 0;
            }
            Some("server") if upstream.is_some() && depth == 1 => {
                if let Some(address) = words.next() {
                    let address = address.trim_end_matches(';').to_string();
                    let down = line
                        .trim_end_matches(';')
                        .split_whitespace()
                        .any(|w| w == "down");
                    out.push(UpstreamServer {
                        upstream: upstream.clone().unwrap_or_default(),
                        address,
                        down,
                        line: i,
                    });
                }
            }
            _ => {}
        }
        if upstream.is_some() {
            depth += line.matches('{').count();
            depth = depth.saturating_sub(line.matches('}').count());
            if depth == 0 && line.contains('}') {
                upstream = None;
            }
        }
    }
    out
}

/// The config with `address` marked `down` (or unmarked); an error when it is not
/// exactly one upstream server or already in that state.
pub fn mark_down(config: &str, address: &str, down: bool) -> Result<String, String> {
    let servers = upstream_servers(config);
    let found: Vec<&UpstreamServer> = servers.iter().filter(|s| s.address == address).collect();
    let server = match found.as_slice() {
        [one] => *one,
        [] => {
            let all: Vec<&str> = servers.iter().map(|s| s.address.as_str()).collect();
            return Err(format!(
                "no upstream server {address} in the nginx config (servers: {})",
                all.join(", ")
            ));
        }
        _ => {
            return Err(format!(
                "{address} is in several upstream blocks: edit by hand"
            ));
        }
    };
    if server.down == down {
        return Err(format!(
            "{address} is already {}",
            if down {
                "marked down"
            } else {
                "not marked down"
            }
        ));
    }
    let mut out = String::with_capacity(config.len() + 8);
    for (i, line) in config.split_inclusive('\n').enumerate() {
        if i != server.line {
            out.push_str(line);
            continue;
        }
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let (code, comment) = match body.find('#') {
            Some(at) => body.split_at(at),
            None => (body, ""),
        };
        let edited = if down {
            match code.rfind(';') {
                Some(semi) => format!("{} down{}", &code[..semi], &code[semi..]),
                None => format!("{code} down"),
            }
        } else {
            code.replace(" down;", ";").replace(" down ", " ")
        };
        out.push_str(&edited);
        out.push_str(comment);
        out.push_str(newline);
    }
    Ok(out)
}

/// The changed lines of two versions with the same line count, as a unified-style diff.
pub fn line_diff(path: &str, old: &str, new: &str) -> String {
    let mut out = format!("--- {path}\n+++ {path} (kha)\n");
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x != y {
            let _ = writeln!(out, "@@ line {} @@", i + 1);
            if let Some(x) = x {
                let _ = writeln!(out, "-{x}");
            }
            if let Some(y) = y {
                let _ = writeln!(out, "+{y}");
            }
        }
    }
    out
}

/// The files of an `nginx -T` dump, in order: each `# configuration file PATH:` header's
/// path and the text after it, up to the next header.
pub fn dumped_files(dump: &str) -> Vec<(&str, &str)> {
    let mut files = Vec::new();
    let mut current: Option<(&str, usize)> = None;
    let mut at = 0;
    for line in dump.split_inclusive('\n') {
        let header = line
            .trim_end()
            .strip_prefix("# configuration file ")
            .and_then(|rest| rest.strip_suffix(':'));
        if let Some(path) = header {
            if let Some((file, start)) = current.take() {
                files.push((file, &dump[start..at]));
            }
            current = Some((path, at + line.len()));
        }
        at += line.len();
    }
    if let Some((file, start)) = current {
        files.push((file, &dump[start..]));
    }
    files
}

/// Whether the configuration nginx loads (an `nginx -T` dump) has `file` with `address`
/// of `upstream` marked `down` (or not): what it found, or what is wrong and what to do.
pub fn check_dump(
    dump: &str,
    file: &str,
    upstream: &str,
    address: &str,
    down: bool,
) -> Result<String, String> {
    let state = |down: bool| if down { "marked down" } else { "in rotation" };
    let files = dumped_files(dump);
    let Some((_, text)) = files.iter().find(|(path, _)| *path == file) else {
        let loaded: Vec<&str> = files.iter().map(|(path, _)| *path).collect();
        return Err(format!(
            "`nginx -T` does not list {file}: the configuration nginx loads does not include \
             it (it loads {}). Give the main config nginx runs with (--nginx-main-config), \
             and --nginx-config as that config includes it",
            if loaded.is_empty() {
                "no file".to_string()
            } else {
                loaded.join(", ")
            }
        ));
    };
    let server = upstream_servers(text)
        .into_iter()
        .find(|s| s.upstream == upstream && s.address == address)
        .ok_or_else(|| {
            format!("{file}, as nginx loads it, has no server {address} in upstream {upstream}")
        })?;
    if server.down == down {
        Ok(format!(
            "nginx loads {file} with {address} of upstream {upstream} {}",
            state(down)
        ))
    } else {
        Err(format!(
            "nginx loads {file} with {address} of upstream {upstream} {}, not {}",
            state(server.down),
            state(down)
        ))
    }
}

/// Where nginx runs, the file with the apiserver upstream, and how nginx is invoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NginxTarget {
    /// ssh host of the LB (`None`: this machine).
    pub host: Option<String>,
    /// The file with the upstream, the one edited.
    pub config: String,
    /// The main config nginx runs with (`-c`). Needed whenever nginx was started with
    /// `-c`, or the compiled-in default is not the file that includes `config`: without
    /// it `nginx -t` checks, and `nginx -s reload` finds the pid file of, another config.
    pub main_config: Option<String>,
    /// nginx's prefix (`-p`), when it was started with one (relative paths resolve
    /// against it).
    pub prefix: Option<String>,
    /// The nginx program (`None`: `nginx`, found on the PATH of the host).
    pub bin: Option<String>,
}

impl NginxTarget {
    /// `nginx [-p PREFIX] [-c MAIN] args…`: the same instance for every command.
    pub fn command(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec![self.bin.clone().unwrap_or_else(|| "nginx".into())];
        if let Some(prefix) = &self.prefix {
            argv.extend(["-p".into(), prefix.clone()]);
        }
        if let Some(main) = &self.main_config {
            argv.extend(["-c".into(), main.clone()]);
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    /// Where the upstream file is backed up: next to it, hidden (`.NAME.kha-bak`). A
    /// wildcard include (`include stream.d/*;`, Debian's `sites-enabled/*`) loads every
    /// file of the directory but hidden ones, and would load a visible backup as a
    /// second copy of the upstream: `duplicate upstream`, and `nginx -t` fails.
    pub fn backup(&self) -> String {
        match self.config.rsplit_once('/') {
            Some((dir, name)) => format!("{dir}/.{name}.kha-bak"),
            None => format!(".{}.kha-bak", self.config),
        }
    }
}

/// An argv as a reader would type it.
fn shown(argv: &[String]) -> String {
    argv.iter()
        .map(|a| crate::runbook::exec::quote_for_display(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Marks `address` down (drain/maint) or back (ready) in nginx's upstream, checks the
/// config with `nginx -t` and reloads, with the target's `-p`/`-c`, over ssh, argv only.
pub fn nginx(
    cluster: &str,
    target: &NginxTarget,
    config_text: &str,
    address: &str,
    action: BackendAction,
) -> Result<Runbook, String> {
    let down = action.takes_out();
    let edited = mark_down(config_text, address, down)?;
    let servers = upstream_servers(config_text);
    let mine = servers
        .iter()
        .find(|s| s.address == address)
        .map(|s| s.upstream.clone())
        .unwrap_or_default();
    let others: Vec<&UpstreamServer> = servers
        .iter()
        .filter(|s| s.upstream == mine && s.address != address && !s.down)
        .collect();
    let mut preconditions = Vec::new();
    if down {
        preconditions.push(Precondition {
            description: "at least one other server of the upstream is not marked down".into(),
            met: !others.is_empty(),
            evidence: if others.is_empty() {
                format!("none: {address} is the last server of upstream {mine}; marking it down takes the API down")
            } else {
                let list: Vec<&str> = others.iter().map(|s| s.address.as_str()).collect();
                format!("upstream {mine}: {}", list.join(", "))
            },
        });
    }
    let path = target.config.clone();
    let backup = target.backup();
    let host = target.host.clone();
    let where_ = host.as_deref().unwrap_or("this machine");
    let diff = line_diff(&path, config_text, &edited);
    let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let test = target.command(&["-t"]);
    let reload = target.command(&["-s", "reload"]);
    let restore = format!(
        "restore the old config: cp -p {backup} {path}, then {} and {}",
        shown(&test),
        shown(&reload)
    );
    let dump = target.command(&["-T"]);
    let loaded = Verification::NginxUpstreamIs {
        host: host.clone(),
        argv: dump.clone(),
        file: path.clone(),
        upstream: mine.clone(),
        address: address.into(),
        down,
    };
    let not_loaded = format!(
        "if `{}` does not list {path}, this nginx runs with another main config: give it \
         with --nginx-main-config (and --nginx-prefix) and run again; otherwise {restore}",
        shown(&dump)
    );
    let step =
        |title: String, explanation: String, operation: Operation, on_failure: String| Step {
            title,
            explanation,
            risk: Risk::Disruptive,
            operation,
            verification: Verification::None,
            timeout: Duration::from_secs(30),
            on_failure,
            skippable: false,
        };
    let verb = if down { "down" } else { "back up" };
    Ok(Runbook {
        id: format!("lb.nginx.{}", action.word()),
        title: format!("Mark API-server backend {address} {verb} in nginx"),
        cluster: cluster.into(),
        summary: format!(
            "Edits upstream {mine} in {path} on {where_} ({}), checks the whole \
             configuration ({}) and reloads nginx gracefully: workers finish their \
             connections.",
            if down {
                "server marked `down`"
            } else {
                "`down` removed"
            },
            match &target.main_config {
                Some(main) => format!("main config {main}"),
                None => "nginx's compiled-in main config".into(),
            }
        ),
        preconditions,
        steps: vec![
            step(
                format!("Back up {path}"),
                format!(
                    "Copies the file to {backup}, to undo the edit (hidden, so a wildcard \
                     include does not load it too)."
                ),
                Operation::Argv {
                    host: host.clone(),
                    argv: argv(&["cp", "-p", &path, &backup]),
                },
                "check the path and that the ssh user may write next to it".into(),
            ),
            step(
                format!("Write the edited upstream to {path}"),
                format!("The change:\n\n```diff\n{diff}```"),
                Operation::ArgvWithInput {
                    host: host.clone(),
                    argv: argv(&["tee", &path]),
                    input: edited.clone(),
                },
                restore.clone(),
            ),
            step(
                "Check the config (nginx -t)".into(),
                "nginx parses the whole configuration; nothing is reloaded if it fails.".into(),
                Operation::Argv {
                    host: host.clone(),
                    argv: test,
                },
                restore.clone(),
            ),
            Step {
                verification: loaded,
                ..step(
                    "Reload nginx".into(),
                    "A graceful reload: new workers take the new upstream, old ones finish \
                     their connections. Then `nginx -T`, with the same main config, must list \
                     the edited file among those this nginx loads, the server as intended."
                        .into(),
                    Operation::Argv { host, argv: reload },
                    not_loaded,
                )
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "stream {\n    upstream kube_apiserver {\n        least_conn;\n        server 10.0.0.1:6443 max_fails=3 fail_timeout=30s;\n        server 10.0.0.2:6443 max_fails=3 fail_timeout=30s; # cp-b\n    }\n    server {\n        listen 6443;\n        proxy_pass kube_apiserver;\n    }\n}\n";

    #[test]
    fn marking_a_server_down_edits_only_its_line() {
        let servers = upstream_servers(CONF);
        assert_eq!(servers.len(), 2, "{servers:?}");
        assert_eq!(servers[1].upstream, "kube_apiserver");
        let edited = mark_down(CONF, "10.0.0.2:6443", true).unwrap();
        assert!(
            edited.contains("server 10.0.0.2:6443 max_fails=3 fail_timeout=30s down; # cp-b\n"),
            "{edited}"
        );
        assert_eq!(edited.lines().count(), CONF.lines().count());
        assert!(upstream_servers(&edited)[1].down);
        assert_eq!(mark_down(&edited, "10.0.0.2:6443", false).unwrap(), CONF);
        assert!(mark_down(&edited, "10.0.0.2:6443", true).is_err());
        assert!(
            mark_down(CONF, "10.0.0.9:6443", true)
                .unwrap_err()
                .contains("10.0.0.1:6443")
        );
        let diff = line_diff("/etc/nginx/nginx.conf", CONF, &edited);
        assert!(
            diff.contains("@@ line 5 @@\n-        server 10.0.0.2:6443"),
            "{diff}"
        );
    }

    #[test]
    fn nginx_refuses_to_mark_the_last_server_down() {
        let target = NginxTarget {
            host: Some("lb-1".into()),
            config: "/etc/nginx/nginx.conf".into(),
            ..Default::default()
        };
        let edited = mark_down(CONF, "10.0.0.1:6443", true).unwrap();
        let rb = nginx(
            "prod",
            &target,
            &edited,
            "10.0.0.2:6443",
            BackendAction::Drain,
        )
        .unwrap();
        assert_eq!(rb.unmet().len(), 1);
        assert!(
            rb.unmet()[0].evidence.contains("last server"),
            "{:?}",
            rb.unmet()
        );
        let rb = nginx("prod", &target, CONF, "10.0.0.2:6443", BackendAction::Drain).unwrap();
        assert!(rb.unmet().is_empty());
    }

    #[test]
    fn nginx_runs_with_the_main_config_and_prefix_it_was_started_with() {
        let plain = NginxTarget {
            config: "/etc/nginx/nginx.conf".into(),
            ..Default::default()
        };
        assert_eq!(plain.command(&["-t"]), ["nginx", "-t"]);
        let rb = nginx("prod", &plain, CONF, "10.0.0.2:6443", BackendAction::Drain).unwrap();
        let argv = |n: usize| match &rb.steps[n].operation {
            Operation::Argv { argv, .. } => argv.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(argv(2), ["nginx", "-t"]);
        assert_eq!(argv(3), ["nginx", "-s", "reload"]);
        assert!(
            rb.summary.contains("nginx's compiled-in main config"),
            "{}",
            rb.summary
        );

        let included = NginxTarget {
            host: Some("lb-1".into()),
            config: "/etc/nginx/stream.d/apiserver.conf".into(),
            main_config: Some("/etc/nginx/nginx.conf".into()),
            prefix: Some("/srv/lb nginx/".into()),
            bin: Some("/usr/sbin/nginx".into()),
        };
        let rb = nginx(
            "prod",
            &included,
            CONF,
            "10.0.0.2:6443",
            BackendAction::Drain,
        )
        .unwrap();
        let argv = |n: usize| match &rb.steps[n].operation {
            Operation::Argv { argv, .. } => argv.clone(),
            other => panic!("{other:?}"),
        };
        let global = [
            "/usr/sbin/nginx",
            "-p",
            "/srv/lb nginx/",
            "-c",
            "/etc/nginx/nginx.conf",
        ];
        assert_eq!(argv(2), [&global[..], &["-t"]].concat());
        assert_eq!(argv(3), [&global[..], &["-s", "reload"]].concat());
        assert!(
            rb.summary.contains("main config /etc/nginx/nginx.conf"),
            "{}",
            rb.summary
        );
        assert!(
            rb.steps[3].on_failure.ends_with(
                "then /usr/sbin/nginx -p '/srv/lb nginx/' -c /etc/nginx/nginx.conf -t and \
                 /usr/sbin/nginx -p '/srv/lb nginx/' -c /etc/nginx/nginx.conf -s reload"
            ),
            "{}",
            rb.steps[3].on_failure
        );
    }

    #[test]
    fn the_backup_is_hidden_from_wildcard_includes() {
        let included = NginxTarget {
            config: "/etc/nginx/stream.d/apiserver.conf".into(),
            ..Default::default()
        };
        assert_eq!(
            included.backup(),
            "/etc/nginx/stream.d/.apiserver.conf.kha-bak"
        );
        let rb = nginx(
            "prod",
            &included,
            CONF,
            "10.0.0.2:6443",
            BackendAction::Drain,
        )
        .unwrap();
        assert_eq!(
            rb.steps[0].operation,
            Operation::Argv {
                host: None,
                argv: [
                    "cp",
                    "-p",
                    "/etc/nginx/stream.d/apiserver.conf",
                    "/etc/nginx/stream.d/.apiserver.conf.kha-bak"
                ]
                .map(String::from)
                .to_vec(),
            }
        );
        let relative = NginxTarget {
            config: "lb.conf".into(),
            ..Default::default()
        };
        assert_eq!(relative.backup(), ".lb.conf.kha-bak");
    }

    /// `nginx -T` of nginx 1.22 (Debian 12): a main config including stream.d/*.
    const DUMP: &str = "# configuration file /etc/nginx/nginx.conf:\n\
        load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n\
        events { worker_connections 64; }\n\
        include /etc/nginx/stream.d/*;\n\
        \n\
        # configuration file /etc/nginx/stream.d/apiserver.conf:\n\
        stream {\n    upstream kube_apiserver {\n        server 10.0.0.1:6443;\n        \
        server 10.0.0.2:6443 down; # cp-b\n    }\n    server {\n        listen 6443;\n        \
        proxy_pass kube_apiserver;\n    }\n}\n\n";

    #[test]
    fn the_dump_check_reads_the_upstream_as_nginx_loads_it() {
        let files = dumped_files(DUMP);
        let paths: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            paths,
            [
                "/etc/nginx/nginx.conf",
                "/etc/nginx/stream.d/apiserver.conf"
            ]
        );
        assert!(files[0].1.ends_with("include /etc/nginx/stream.d/*;\n\n"));
        assert!(files[1].1.starts_with("stream {\n"));
        let file = "/etc/nginx/stream.d/apiserver.conf";
        assert_eq!(
            check_dump(DUMP, file, "kube_apiserver", "10.0.0.2:6443", true),
            Ok(format!(
                "nginx loads {file} with 10.0.0.2:6443 of upstream kube_apiserver marked down"
            ))
        );
        assert_eq!(
            check_dump(DUMP, file, "kube_apiserver", "10.0.0.1:6443", true),
            Err(format!(
                "nginx loads {file} with 10.0.0.1:6443 of upstream kube_apiserver in rotation, \
                 not marked down"
            ))
        );
        let other = check_dump(
            DUMP,
            "/etc/nginx/conf.d/apiserver.conf",
            "kube_apiserver",
            "10.0.0.2:6443",
            true,
        )
        .unwrap_err();
        assert!(
            other.starts_with(
                "`nginx -T` does not list /etc/nginx/conf.d/apiserver.conf: the configuration \
                 nginx loads does not include it (it loads /etc/nginx/nginx.conf, \
                 /etc/nginx/stream.d/apiserver.conf)"
            ),
            "{other}"
        );
        assert!(
            check_dump(DUMP, file, "kube_apiserver", "10.0.0.3:6443", false)
                .unwrap_err()
                .contains("has no server 10.0.0.3:6443 in upstream kube_apiserver")
        );
        assert!(
            check_dump("", file, "kube_apiserver", "10.0.0.2:6443", true)
                .unwrap_err()
                .contains("(it loads no file)")
        );
    }

    #[test]
    fn the_reload_is_checked_with_the_same_main_config() {
        let included = NginxTarget {
            host: Some("lb-1".into()),
            config: "/etc/nginx/stream.d/apiserver.conf".into(),
            main_config: Some("/etc/nginx/nginx.conf".into()),
            ..Default::default()
        };
        let rb = nginx(
            "prod",
            &included,
            CONF,
            "10.0.0.2:6443",
            BackendAction::Maint,
        )
        .unwrap();
        assert_eq!(
            rb.steps[3].verification,
            Verification::NginxUpstreamIs {
                host: Some("lb-1".into()),
                argv: ["nginx", "-c", "/etc/nginx/nginx.conf", "-T"]
                    .map(String::from)
                    .to_vec(),
                file: "/etc/nginx/stream.d/apiserver.conf".into(),
                upstream: "kube_apiserver".into(),
                address: "10.0.0.2:6443".into(),
                down: true,
            }
        );
        let json = serde_json::to_value(&rb.steps[3].verification).unwrap();
        assert_eq!(json["kind"], "nginx_upstream_is");
        assert_eq!(json["down"], true);
        let drained = mark_down(CONF, "10.0.0.2:6443", true).unwrap();
        let rb = nginx(
            "prod",
            &included,
            &drained,
            "10.0.0.2:6443",
            BackendAction::Ready,
        )
        .unwrap();
        assert!(matches!(
            rb.steps[3].verification,
            Verification::NginxUpstreamIs { down: false, .. }
        ));
        assert!(
            rb.steps[3]
                .on_failure
                .starts_with("if `nginx -c /etc/nginx/nginx.conf -T` does not list"),
            "{}",
            rb.steps[3].on_failure
        );
    }
}
