//! The commands of HAProxy's runtime API that the lab answers, with HAProxy 2.6's words
//! for success and for every error: `show stat`, `show servers state`, `show info`,
//! `show version`, `show backend`, `show cli level`, `set server`, `enable`/`disable
//! server`, `enable`/`disable health`, `get weight`, `help`, `prompt`, `quit`. Anything
//! else gets HAProxy's usage message.

use std::time::Instant;

use super::proxy::{AdminState, Backend, HealthForce};
use super::stats::{self, BACKEND_IID, ProcessInfo, StatFilter};
use super::usage::usage_message;

/// At most this many words per command (`MAX_CLI_ARGS`).
const MAX_ARGS: usize = 64;

const REQUIRE_SERVER: &str = "Require 'backend/server'.\n";
const SET_SERVER_USAGE: &str = "usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | check-addr | check-port | fqdn | health | ssl | state | weight\n";

/// Everything the runtime API shows and changes.
#[derive(Debug)]
pub struct RuntimeState {
    pub backend: Backend,
    pub started: Instant,
    pub start_unix: u64,
    pub node: String,
    /// Connections accepted on the stats socket.
    pub cli_connections: u64,
}

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    TogglePrompt,
    Quit,
}

/// Splits one input line into commands at unescaped `;`, and each command into words
/// at spaces and tabs; a backslash escapes the next character (`\;`, `\ `, `\\`).
pub fn parse_line(line: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                    in_word = true;
                }
            }
            ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
                commands.push(std::mem::take(&mut words));
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    commands.push(words);
    for command in &mut commands {
        command.truncate(MAX_ARGS);
    }
    commands
}

/// Runs one command; returns its output (without the CLI's closing blank line).
pub fn execute(state: &mut RuntimeState, args: &[String], now: Instant) -> (String, Flow) {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let reply = |text: String| (text, Flow::Continue);
    match words.as_slice() {
        ["prompt", ..] => (String::new(), Flow::TogglePrompt),
        ["quit", ..] => (String::new(), Flow::Quit),
        ["help", ..] => reply(usage_message(args)),
        ["show", "stat", rest @ ..] => reply(show_stat(state, rest, now)),
        ["show", "servers", "state", rest @ ..] => reply(show_servers_state(state, rest, now)),
        ["show", "info", ..] => reply(stats::show_info(&process_info(state, now))),
        ["show", "version", ..] => reply(format!("{}\n", stats::HAPROXY_VERSION)),
        ["show", "backend", ..] => reply(format!("# name\n{}\n", state.backend.name)),
        ["show", "cli", "level", ..] => reply("admin\n".into()),
        ["set", "server", rest @ ..] => reply(set_server(state, rest, now)),
        ["disable", "server", rest @ ..] => reply(with_server(state, rest, |b, i| {
            b.set_admin(i, AdminState::Maint, now)
        })),
        ["enable", "server", rest @ ..] => reply(with_server(state, rest, |b, i| {
            b.set_admin(i, AdminState::Ready, now)
        })),
        ["disable", "health", rest @ ..] => reply(with_server(state, rest, |b, i| {
            b.set_checks_enabled(i, false)
        })),
        ["enable", "health", rest @ ..] => reply(with_server(state, rest, |b, i| {
            b.set_checks_enabled(i, true)
        })),
        ["get", "weight", rest @ ..] => reply(match find_server(state, rest.first().copied()) {
            Ok(i) => {
                let s = &state.backend.servers[i];
                format!("{} (initial {})\n", s.uweight, s.iweight)
            }
            Err(e) => e.into(),
        }),
        _ => reply(usage_message(args)),
    }
}

fn process_info(state: &RuntimeState, now: Instant) -> ProcessInfo {
    ProcessInfo {
        pid: std::process::id(),
        uptime_secs: now.saturating_duration_since(state.started).as_secs(),
        start_unix: state.start_unix,
        node: state.node.clone(),
        cum_conns: state.cli_connections + state.backend.check_connections,
    }
}

/// `show stat [{<iid>|<proxy>} <type> <sid>] [typed|json|desc|up|no-maint]*`.
fn show_stat(state: &RuntimeState, rest: &[&str], now: Instant) -> String {
    let mut filter = StatFilter::default();
    let mut flags = rest;
    if let [proxy, kind, sid, more @ ..] = rest {
        let iid = if *proxy == state.backend.name {
            i64::from(BACKEND_IID)
        } else if *proxy == stats::FRONTEND_NAME {
            i64::from(stats::FRONTEND_IID)
        } else {
            atoi(proxy)
        };
        if iid == 0 {
            return "No such proxy.\n".into();
        }
        filter.iid = Some(iid);
        filter.types = Some(atoi(kind));
        filter.sid = Some(atoi(sid));
        flags = more;
    }
    for flag in flags {
        match *flag {
            "up" => filter.hide_down = true,
            "no-maint" => filter.hide_maint = true,
            _ => {}
        }
    }
    stats::show_stat(&state.backend, &filter, now)
}

/// C's `atoi`: the leading integer, 0 when there is none.
fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(d) => (-1, d),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse::<i64>().map_or(0, |n| sign * n)
}

fn show_servers_state(state: &RuntimeState, rest: &[&str], now: Instant) -> String {
    match rest.first() {
        Some(name) if *name != state.backend.name && *name != BACKEND_IID.to_string() => {
            "Can't find backend.\n".into()
        }
        _ => stats::show_servers_state(&state.backend, now),
    }
}

/// Resolves `<backend>/<server>`, or gives HAProxy's error.
fn find_server(state: &RuntimeState, arg: Option<&str>) -> Result<usize, &'static str> {
    let (backend, server) = arg.and_then(|a| a.split_once('/')).ok_or(REQUIRE_SERVER)?;
    if backend != state.backend.name {
        return Err("No such backend.\n");
    }
    state.backend.find(server).ok_or("No such server.\n")
}

fn with_server(
    state: &mut RuntimeState,
    rest: &[&str],
    change: impl FnOnce(&mut Backend, usize),
) -> String {
    match find_server(state, rest.first().copied()) {
        Ok(i) => {
            change(&mut state.backend, i);
            String::new()
        }
        Err(e) => e.into(),
    }
}

/// `set server <backend>/<server> state|weight|health|agent ...`.
fn set_server(state: &mut RuntimeState, rest: &[&str], now: Instant) -> String {
    let idx = match find_server(state, rest.first().copied()) {
        Ok(i) => i,
        Err(e) => return e.into(),
    };
    let value = rest.get(2).copied().unwrap_or("");
    match rest.get(1).copied() {
        Some("state") => {
            let admin = match value {
                "ready" => AdminState::Ready,
                "drain" => AdminState::Drain,
                "maint" => AdminState::Maint,
                _ => {
                    return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
                        .into();
                }
            };
            state.backend.set_admin(idx, admin, now);
            String::new()
        }
        Some("weight") => {
            let iweight = state.backend.servers[idx].iweight;
            match parse_weight(value, iweight) {
                Ok(w) => {
                    state.backend.set_weight(idx, w, now);
                    String::new()
                }
                Err(e) => e.into(),
            }
        }
        Some("health") => {
            let force = match value {
                "up" => HealthForce::Up,
                "stopping" => HealthForce::Stopping,
                "down" => HealthForce::Down,
                _ => {
                    return "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n"
                        .into();
                }
            };
            state.backend.force_health(idx, force, now);
            String::new()
        }
        Some("agent") => "agent checks are not enabled on this server.\n".into(),
        _ => SET_SERVER_USAGE.into(),
    }
}

/// `server_parse_weight_change_request()`: absolute 0..=256 or `<n>%` of the initial
/// weight. Some of HAProxy's messages lack the final newline; they are kept as is.
fn parse_weight(text: &str, iweight: u32) -> Result<u32, &'static str> {
    if text.is_empty() {
        return Err("Require <weight> or <weight%>.\n");
    }
    let digits_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(text.len(), |(i, _)| i);
    let Ok(w) = text[..digits_end].parse::<i64>() else {
        return Err("Empty weight string empty or preceded by garbage");
    };
    let tail = &text[digits_end..];
    if tail == "%" {
        if w < 0 {
            return Err("Relative weight must be positive.\n");
        }
        let w = (i64::from(iweight) * w.min(25_600) / 100).min(256);
        return Ok(w as u32);
    }
    if !(0..=256).contains(&w) {
        return Err("Absolute weight can only be between 0 and 256 inclusive.\n");
    }
    if !tail.is_empty() {
        return Err("Trailing garbage in weight string");
    }
    Ok(w as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RuntimeState {
        let now = Instant::now();
        let addr = "127.0.0.1:6443".parse().unwrap();
        RuntimeState {
            backend: Backend::new("kube-apiserver", vec![("cp-a".into(), addr)], now),
            started: now,
            start_unix: 0,
            node: "lab".into(),
            cli_connections: 0,
        }
    }

    fn run(state: &mut RuntimeState, line: &str) -> String {
        parse_line(line)
            .iter()
            .map(|c| execute(state, c, Instant::now()).0)
            .collect()
    }

    #[test]
    fn lines_split_into_commands_and_words_with_escapes() {
        assert_eq!(
            parse_line("show stat;  show\\ info \\;x"),
            vec![vec!["show", "stat"], vec!["show info", ";x"]]
        );
        assert_eq!(parse_line(""), vec![Vec::<String>::new()]);
    }

    #[test]
    fn set_server_errors_use_haproxys_words() {
        let mut s = state();
        assert_eq!(run(&mut s, "set server"), REQUIRE_SERVER);
        assert_eq!(
            run(&mut s, "set server nope/cp-a state drain"),
            "No such backend.\n"
        );
        assert_eq!(
            run(&mut s, "set server kube-apiserver/x state drain"),
            "No such server.\n"
        );
        assert_eq!(
            run(&mut s, "set server kube-apiserver/cp-a stat ready"),
            SET_SERVER_USAGE
        );
        assert_eq!(
            run(&mut s, "set server kube-apiserver/cp-a state bogus"),
            "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
        );
        assert_eq!(
            run(&mut s, "set server kube-apiserver/cp-a state drain"),
            ""
        );
        assert_eq!(s.backend.servers[0].admin, AdminState::Drain);
        assert_eq!(run(&mut s, "disable server kube-apiserver/cp-a"), "");
        assert_eq!(s.backend.servers[0].admin, AdminState::Maint);
        assert_eq!(run(&mut s, "enable server kube-apiserver/cp-a"), "");
        assert_eq!(s.backend.servers[0].admin, AdminState::Ready);
    }

    #[test]
    fn weights_parse_like_haproxy() {
        let mut s = state();
        assert_eq!(run(&mut s, "set server kube-apiserver/cp-a weight 5"), "");
        assert_eq!(
            run(&mut s, "get weight kube-apiserver/cp-a"),
            "5 (initial 1)\n"
        );
        assert_eq!(run(&mut s, "set server kube-apiserver/cp-a weight 50%"), "");
        assert_eq!(
            run(&mut s, "get weight kube-apiserver/cp-a"),
            "0 (initial 1)\n"
        );
        assert_eq!(
            run(&mut s, "set server kube-apiserver/cp-a weight 300"),
            "Absolute weight can only be between 0 and 256 inclusive.\n"
        );
        assert_eq!(
            run(&mut s, "set server kube-apiserver/cp-a weight abc"),
            "Empty weight string empty or preceded by garbage"
        );
    }

    #[test]
    fn show_stat_proxy_filters_and_unknown_proxies() {
        let mut s = state();
        assert_eq!(run(&mut s, "show stat x y z"), "No such proxy.\n");
        assert_eq!(
            run(&mut s, "show stat kube-apiserver 2 -1").lines().count(),
            2
        );
        assert_eq!(run(&mut s, "show stat 5 4 -1").lines().count(), 1);
        assert_eq!(
            run(&mut s, "show servers state nope"),
            "Can't find backend.\n"
        );
    }

    #[test]
    fn prompt_and_quit_steer_the_session() {
        let mut s = state();
        assert_eq!(
            execute(&mut s, &["prompt".into()], Instant::now()).1,
            Flow::TogglePrompt
        );
        assert_eq!(
            execute(&mut s, &["quit".into()], Instant::now()).1,
            Flow::Quit
        );
        assert!(run(&mut s, "bogus").starts_with("Unknown command, but maybe"));
    }
}
