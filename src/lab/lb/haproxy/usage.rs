//! HAProxy's CLI usage messages: `help [<command>]`, and the answer to a command it does
//! not know ("Unknown command, but maybe one of the following ones is a better match:"),
//! built like `cli_gen_usage_msg()` in HAProxy's cli.c: commands matching the typed words
//! exactly, or else the closest ones by a fingerprint of letter transitions.

/// Every command usage line `help` prints at the admin level (HAProxy 2.6.12 as built by
/// Debian), sorted as HAProxy sorts them; `help`, `prompt` and `quit` come last, always.
const USAGE: &[&str] = &[
    "abort ssl ca-file <cafile>              : abort a transaction for a CA file",
    "abort ssl cert <certfile>               : abort a transaction for a certificate file",
    "abort ssl crl-file <crlfile>            : abort a transaction for a CRL file",
    "add acl [@<ver>] <acl> <pattern>        : add an acl entry",
    "add map [@<ver>] <map> <key> <val>      : add a map entry (payload supported instead of key/val)",
    "add server <bk>/<srv>                   : create a new server",
    "add ssl crt-list <list> <cert> [opts]*  : add to crt-list file <list> a line <cert> or a payload",
    "clear acl [@<ver>] <acl>                : clear the contents of this acl",
    "clear counters [all]                    : clear max statistics counters (or all counters)",
    "clear map [@<ver>] <map>                : clear the contents of this map",
    "clear table <table> [<filter>]*         : remove an entry from a table (filter: data/key)",
    "commit acl @<ver> <acl>                 : commit the ACL at this version",
    "commit map @<ver> <map>                 : commit the map at this version",
    "commit ssl ca-file <cafile>             : commit a CA file",
    "commit ssl cert <certfile>              : commit a certificate file",
    "commit ssl crl-file <crlfile>           : commit a CRL file",
    "del acl <acl> [<key>|#<ref>]            : delete acl entries matching <key>",
    "del map <map> [<key>|#<ref>]            : delete map entries matching <key>",
    "del server <bk>/<srv>                   : remove a dynamically added server",
    "del ssl ca-file <cafile>                : delete an unused CA file",
    "del ssl cert <certfile>                 : delete an unused certificate file",
    "del ssl crl-file <crlfile>              : delete an unused CRL file",
    "del ssl crt-list <list> <cert[:line]>   : delete a line <cert> from crt-list file <list>",
    "disable agent                           : disable agent checks",
    "disable dynamic-cookie backend <bk>     : disable dynamic cookies on a specific backend",
    "disable frontend <frontend>             : temporarily disable specific frontend",
    "disable health                          : disable health checks",
    "disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)",
    "enable agent                            : enable agent checks",
    "enable dynamic-cookie backend <bk>      : enable dynamic cookies on a specific backend",
    "enable frontend <frontend>              : re-enable specific frontend",
    "enable health                           : enable health checks",
    "enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)",
    "get acl <acl> <value>                   : report the patterns matching a sample for an ACL",
    "get map <acl> <value>                   : report the keys and values matching a sample for a map",
    "get var <name>                          : retrieve contents of a process-wide variable",
    "get weight <bk>/<srv>                   : report a server's current weight",
    "new ssl ca-file <cafile>                : create a new CA file to be used in a crt-list",
    "new ssl cert <certfile>                 : create a new certificate file to be used in a crt-list or a directory",
    "new ssl crlfile <crlfile>               : create a new CRL file to be used in a crt-list",
    "operator                                : lower the level of the current CLI session to operator",
    "prepare acl <acl>                       : prepare a new version for atomic ACL replacement",
    "prepare map <acl>                       : prepare a new version for atomic map replacement",
    "set dynamic-cookie-key backend <bk> <k> : change a backend secret key for dynamic cookies",
    "set map <map> [<key>|#<ref>] <value>    : modify a map entry",
    "set maxconn frontend <frontend> <value> : change a frontend's maxconn setting",
    "set maxconn global <value>              : change the per-process maxconn setting",
    "set maxconn server <bk>/<srv>           : change a server's maxconn setting",
    "set profiling <what> {auto|on|off}      : enable/disable resource profiling (tasks,memory)",
    "set rate-limit <setting> <value>        : change a rate limiting value",
    "set server <bk>/<srv> [opts]            : change a server's state, weight, address or ssl",
    "set severity-output [none|number|string]: set presence of severity level in feedback information",
    "set ssl ca-file <cafile> <payload>      : replace a CA file",
    "set ssl cert <certfile> <payload>       : replace a certificate file",
    "set ssl crl-file <crlfile> <payload>    : replace a CRL file",
    "set ssl ocsp-response <resp|payload>    : update a certificate's OCSP Response from a base64-encode DER",
    "set ssl tls-key [id|file] <key>         : set the next TLS key for the <id> or <file> listener to <key>",
    "set table <table> key <k> [data.* <v>]* : update or create a table entry's data",
    "set timeout [cli] <delay>               : change a timeout setting",
    "set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)",
    "show acl [@<ver>] <acl>]                : report available acls or dump an acl's contents",
    "show activity                           : show per-thread activity stats (for support/developers)",
    "show backend                            : list backends in the current running config",
    "show cache                              : show cache status",
    "show cli level                          : display the level of the current CLI session",
    "show cli sockets                        : dump list of cli sockets",
    "show env [var]                          : dump environment variables known to the process",
    "show errors [<px>] [request|response]   : report last request and/or response errors for each proxy",
    "show events [<sink>] [-w] [-n]          : show event sink state",
    "show fd [num]                           : dump list of file descriptors in use or a specific one",
    "show info [desc|json|typed|float]*      : report information about the running process",
    "show libs                               : show loaded object files and libraries",
    "show map [@ver] [map]                   : report available maps or dump a map's contents",
    "show peers [dict|-] [section]           : dump some information about all the peers or this peers section",
    "show pools                              : report information about the memory pools usage",
    "show profiling [<what>|<#lines>|byaddr]*: show profiling state (all,status,tasks,memory)",
    "show resolvers [id]                     : dumps counters from all resolvers section and associated name servers",
    "show schema json                        : report schema used for stats",
    "show servers conn [<backend>]           : dump server connections status (all or for a single backend)",
    "show servers state [<backend>]          : dump volatile server information (all or for a single backend)",
    "show sess [id]                          : report the list of current sessions or dump this exact session",
    "show ssl ca-file [<cafile>[:<index>]]   : display the SSL CA files used in memory, or the details of a <cafile>, or a single certificate of index <index> of a CA file <cafile>",
    "show ssl cert [<certfile>]              : display the SSL certificates used in memory, or the details of a file",
    "show ssl crl-file [<crlfile[:<index>>]] : display the SSL CRL files used in memory, or the details of a <crlfile>, or a single CRL of index <index> of CRL file <crlfile>",
    "show ssl crt-list [-n] [<list>]         : show the list of crt-lists or the content of a crt-list file <list>",
    "show ssl ocsp-response [id]             : display the IDs of the OCSP responses used in memory, or the details of a single OCSP response",
    "show ssl providers                      : show loaded SSL providers",
    "show startup-logs                       : report logs emitted during HAProxy startup",
    "show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server",
    "show table <table> [<filter>]*          : report table usage stats or dump this table's contents (filter: data/key)",
    "show tasks                              : show running tasks",
    "show threads                            : show some threads debugging information",
    "show tls-keys [id|*]                    : show tls keys references or dump tls ticket keys when id specified",
    "show trace [<module>]                   : show live tracing state",
    "show version                            : show version of the current process",
    "shutdown frontend <frontend>            : stop a specific frontend",
    "shutdown session [id]                   : kill a specific session",
    "shutdown sessions server <bk>/<srv>     : kill sessions on a server",
    "trace [<module>|0] [cmd [args...]]      : manage live tracing (empty to list, 0 to stop all)",
    "user                                    : lower the level of the current CLI session to user",
];

/// The lines HAProxy appends to every usage message.
const ALWAYS: &str = "  help [<command>]                        : list matching or all commands\n  prompt                                  : toggle interactive mode with prompt\n  quit                                    : disconnect\n";

/// How many fuzzy suggestions HAProxy keeps (`CLI_MAX_MATCHES`).
const MAX_MATCHES: usize = 5;
/// How many words of a command are compared (`CLI_PREFIX_KW_NB`).
const PREFIX_WORDS: usize = 5;

/// The keyword words of a usage line: its leading plain words (`show servers state`).
fn keywords(usage: &str) -> Vec<&str> {
    usage
        .split(' ')
        .take_while(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .take(PREFIX_WORDS)
        .collect()
}

/// The text HAProxy prints for `help ...` (when `args[0]` is `help`) or for a command it
/// does not know, without the CLI's closing blank line.
pub fn usage_message(args: &[String]) -> String {
    let (is_help, args) = match args.first() {
        Some(first) if first == "help" => (true, &args[1..]),
        _ => (false, args),
    };
    let entries: Vec<(Vec<&str>, &str)> = USAGE.iter().map(|u| (keywords(u), *u)).collect();
    // How many leading words some command matches exactly.
    let mut length = 0;
    for (kw, _) in &entries {
        let matched = kw
            .iter()
            .zip(args.iter())
            .take_while(|(k, a)| **k == a.as_str())
            .count();
        length = length.max(matched);
    }
    let mut out = String::from(if is_help {
        "The following commands are valid at this level:\n"
    } else if length == 0 && args.first().is_none_or(|a| a.is_empty()) {
        "Unknown command. Please enter one of the following commands only:\n"
    } else {
        "Unknown command, but maybe one of the following ones is a better match:\n"
    });
    let prefix_matches = |kw: &[&str]| {
        kw.len() >= length
            && kw
                .iter()
                .zip(args.iter())
                .take(length)
                .all(|(k, a)| *k == a.as_str())
    };
    let mut matches: Vec<(usize, &str)> = Vec::new();
    if args.get(length).is_some_and(|a| !a.is_empty()) {
        let typed: Vec<&str> = args
            .iter()
            .skip(length)
            .take(PREFIX_WORDS.saturating_sub(length))
            .map(String::as_str)
            .collect();
        for (kw, usage) in &entries {
            if !prefix_matches(kw) {
                continue;
            }
            let rest: Vec<&str> = kw.iter().skip(length).copied().collect();
            let total_len: usize = typed.iter().chain(rest.iter()).map(|w| w.len()).sum();
            let dist = fingerprint_distance(&fingerprint(&typed), &fingerprint(&rest));
            let worst = matches.get(MAX_MATCHES - 1).map_or(usize::MAX, |m| m.0);
            if dist < 5 * total_len / 2 && dist < worst {
                let at = matches.partition_point(|m| m.0 <= dist);
                matches.insert(at, (dist, usage));
                matches.truncate(MAX_MATCHES);
            }
        }
    }
    let mut shown: Vec<&str> = match matches.first() {
        Some(&(best, _)) => matches
            .iter()
            .take_while(|(d, _)| *d <= 5 * best / 2)
            .map(|(_, u)| *u)
            .collect(),
        None => entries
            .iter()
            .filter(|(kw, _)| prefix_matches(kw))
            .map(|(_, u)| *u)
            .collect(),
    };
    shown.sort_unstable();
    for usage in shown {
        out.push_str("  ");
        out.push_str(usage);
        out.push('\n');
    }
    out.push_str(ALWAYS);
    out
}

/// Counts of transitions between character classes (letters, digit, other, begin, end).
fn fingerprint(words: &[&str]) -> Vec<u8> {
    const BEGIN: usize = 28;
    const END: usize = 29;
    let mut fp = vec![0u8; 32 * 32];
    for word in words {
        let mut from = BEGIN;
        for c in word.bytes().map(|b| b.to_ascii_lowercase()) {
            let to = match c {
                b'a'..=b'z' => usize::from(c - b'a'),
                b'0'..=b'9' => 26,
                _ => 27,
            };
            fp[32 * from + to] = fp[32 * from + to].saturating_add(1);
            from = to;
        }
        fp[32 * from + END] = fp[32 * from + END].saturating_add(1);
    }
    fp
}

fn fingerprint_distance(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .map(|(x, y)| usize::from(x.abs_diff(*y)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn help_lists_every_command_then_help_prompt_quit() {
        let text = usage_message(&words("help"));
        assert!(
            text.starts_with(
                "The following commands are valid at this level:\n  abort ssl ca-file"
            )
        );
        assert_eq!(text.lines().count(), 1 + USAGE.len() + 3);
        assert!(text.ends_with("  quit                                    : disconnect\n"));
    }

    #[test]
    fn a_known_prefix_lists_its_commands() {
        let text = usage_message(&words("show servers"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "Unknown command, but maybe one of the following ones is a better match:"
        );
        assert!(lines[1].starts_with("  show servers conn"));
        assert!(lines[2].starts_with("  show servers state"));
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn a_typo_suggests_the_closest_command() {
        let text = usage_message(&words("set servr"));
        assert!(text.contains("\n  set server <bk>/<srv> [opts]"));
        assert_eq!(text.lines().count(), 5);
    }

    #[test]
    fn an_empty_line_gets_the_whole_list() {
        let text = usage_message(&[]);
        assert!(
            text.starts_with("Unknown command. Please enter one of the following commands only:\n")
        );
    }
}
