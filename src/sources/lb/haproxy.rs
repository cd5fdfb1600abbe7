//! HAProxy's runtime API (the stats socket): `show stat` (CSV, read by header names,
//! never by position) and `show servers state` (the server-state file format), turned
//! into [`LbServer`]s. The parsers are pure and never panic on malformed input.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::LbStatsEndpoint;
use crate::model::lb::{LbServer, LbStatus};

/// An answer larger than this is cut (thousands of servers still fit).
const MAX_ANSWER: u64 = 8 << 20;

/// One server row of `show stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaproxyStat {
    pub pxname: String,
    pub svname: String,
    pub status: String,
    pub weight: Option<u32>,
    pub check_status: Option<String>,
    pub check_code: Option<String>,
    pub lastchg: Option<u64>,
    pub scur: Option<u64>,
    pub addr: Option<String>,
}

/// One line of `show servers state`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HaproxyServerState {
    pub be_name: String,
    pub srv_name: String,
    pub srv_addr: Option<String>,
    pub srv_port: Option<u16>,
    /// 0 stopped, 1 starting, 2 running, 3 stopping.
    pub op_state: Option<u8>,
    /// `SRV_ADMF_*` bits.
    pub admin_flags: Option<u32>,
}

/// Splits one CSV line; HAProxy quotes fields holding commas or quotes (`""` inside).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The server rows of `show stat` (FRONTEND and BACKEND aggregate rows are left out).
pub fn parse_show_stat(text: &str) -> Result<Vec<HaproxyStat>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix('#'))
        .ok_or("show stat: no `# pxname,...` header line")?;
    let columns: HashMap<String, usize> = split_csv(header.trim())
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name.trim().to_string(), i))
        .collect();
    for needed in ["pxname", "svname", "status"] {
        if !columns.contains_key(needed) {
            return Err(format!("show stat: no `{needed}` column"));
        }
    }
    let mut rows = Vec::new();
    for line in lines {
        let fields = split_csv(line);
        let get = |name: &str| -> Option<String> {
            let v = fields.get(*columns.get(name)?)?.trim();
            (!v.is_empty()).then(|| v.to_string())
        };
        let (Some(pxname), Some(svname)) = (get("pxname"), get("svname")) else {
            continue;
        };
        if svname == "FRONTEND" || svname == "BACKEND" {
            continue;
        }
        rows.push(HaproxyStat {
            pxname,
            svname,
            status: get("status").unwrap_or_default(),
            weight: get("weight").and_then(|v| v.parse().ok()),
            check_status: get("check_status"),
            check_code: get("check_code"),
            lastchg: get("lastchg").and_then(|v| v.parse().ok()),
            scur: get("scur").and_then(|v| v.parse().ok()),
            addr: get("addr"),
        });
    }
    Ok(rows)
}

/// `show servers state`: a version line, `# be_id be_name srv_id ...`, rows.
pub fn parse_servers_state(text: &str) -> Result<Vec<HaproxyServerState>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let version = lines.next().unwrap_or("").trim();
    if version != "1" {
        return Err(format!(
            "show servers state: unknown format version {:?}",
            version.chars().take(20).collect::<String>()
        ));
    }
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix('#'))
        .ok_or("show servers state: no `# be_id ...` header line")?;
    let columns: HashMap<&str, usize> = header
        .split_whitespace()
        .enumerate()
        .map(|(i, n)| (n, i))
        .collect();
    for needed in ["be_name", "srv_name"] {
        if !columns.contains_key(needed) {
            return Err(format!("show servers state: no `{needed}` column"));
        }
    }
    let mut rows = Vec::new();
    for line in lines {
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let get = |name: &str| {
            columns
                .get(name)
                .and_then(|&i| fields.get(i))
                .copied()
                .filter(|v| *v != "-")
        };
        let (Some(be), Some(srv)) = (get("be_name"), get("srv_name")) else {
            continue;
        };
        rows.push(HaproxyServerState {
            be_name: be.to_string(),
            srv_name: srv.to_string(),
            srv_addr: get("srv_addr").map(str::to_string),
            srv_port: get("srv_port").and_then(|p| p.parse().ok()),
            op_state: get("srv_op_state").and_then(|v| v.parse().ok()),
            admin_flags: get("srv_admin_state").and_then(|v| v.parse().ok()),
        });
    }
    Ok(rows)
}

/// The administrative state behind `SRV_ADMF_*` bits, or `None` when there is none.
pub fn admin_state(flags: u32) -> Option<String> {
    const NAMES: [(u32, &str); 7] = [
        (0x01, "maint (forced)"),
        (0x02, "maint (inherited)"),
        (0x04, "maint (config)"),
        (0x08, "drain (forced)"),
        (0x10, "drain (inherited)"),
        (0x20, "maint (dns)"),
        (0x40, "maint (hostname)"),
    ];
    let words: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, w)| *w)
        .collect();
    (!words.is_empty()).then(|| words.join(", "))
}

/// Whether a `check_status` code means the check passed (`None`: no verdict yet).
fn check_passed(code: &str) -> Option<bool> {
    match code {
        "L4OK" | "L6OK" | "L7OK" | "L7OKC" => Some(true),
        "" | "INI" | "UNK" => None,
        _ => Some(false),
    }
}

/// Joins the two answers into the LB's servers (`states` may be empty).
pub fn servers(stats: &[HaproxyStat], states: &[HaproxyServerState]) -> Vec<LbServer> {
    stats
        .iter()
        .map(|s| {
            let state = states
                .iter()
                .find(|st| st.be_name == s.pxname && st.srv_name == s.svname);
            // "* L7OK" while a check runs.
            let code = s
                .check_status
                .as_deref()
                .map(|c| c.trim_start_matches("* ").to_string());
            let check = code.as_ref().map(|c| match &s.check_code {
                Some(http) => format!("{c} {http}"),
                None => c.clone(),
            });
            let address = s.addr.clone().or_else(|| {
                let st = state?;
                Some(format!("{}:{}", st.srv_addr.as_deref()?, st.srv_port?))
            });
            LbServer {
                proxy: s.pxname.clone(),
                name: s.svname.clone(),
                address,
                status: LbStatus::parse(&s.status),
                check,
                check_passed: code.as_deref().and_then(check_passed),
                last_change_secs: s.lastchg,
                sessions: s.scur,
                weight: s.weight,
                admin: state.and_then(|st| st.admin_flags).and_then(admin_state),
            }
        })
        .collect()
}

/// One command on the runtime API, non-interactive: the whole answer.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    command: &str,
) -> std::io::Result<String> {
    stream.write_all(format!("{command}\n").as_bytes()).await?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// One command on the runtime API at `endpoint`: the whole answer.
pub async fn command(endpoint: &LbStatsEndpoint, cmd: &str) -> Result<String, String> {
    let answer = match endpoint {
        LbStatsEndpoint::HaproxyUnix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("connect {}: {e}", path.display()))?;
            ask(stream, cmd).await
        }
        LbStatsEndpoint::HaproxyTcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            ask(stream, cmd).await
        }
        LbStatsEndpoint::NginxHttp(_) => return Err("not an HAProxy endpoint".into()),
    };
    answer.map_err(|e| format!("{cmd}: {e}"))
}

/// Reads `show stat` and `show servers state` from the runtime API.
pub async fn read(endpoint: &LbStatsEndpoint, timeout: Duration) -> Result<Vec<LbServer>, String> {
    let both = async {
        tokio::join!(
            command(endpoint, "show stat"),
            command(endpoint, "show servers state")
        )
    };
    let (stat, state) = tokio::time::timeout(timeout, both)
        .await
        .map_err(|_| format!("runtime API: no answer within {timeout:?}"))?;
    let stat = stat?;
    if stat.starts_with("Permission denied") || stat.starts_with("Unknown command") {
        let first = stat.lines().next().unwrap_or("");
        return Err(format!("runtime API refused `show stat`: {first}"));
    }
    let stats = parse_show_stat(&stat)?;
    // The state answer only adds detail (forced admin states); a failure is not fatal.
    let states = state
        .ok()
        .and_then(|s| parse_servers_state(&s).ok())
        .unwrap_or_default();
    Ok(servers(&stats, &states))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lb::LbState;

    const STAT: &str = "# pxname,svname,qcur,scur,status,weight,check_status,check_code,lastchg,addr,check_desc\n\
        fe,FRONTEND,,0,OPEN,,,,,,\n\
        kube-apiserver,cp-a,0,3,UP,1,L7OK,200,40,10.0.0.1:6443,\"Layer7 check, passed\"\n\
        kube-apiserver,cp-b,0,1,UP 1/3,1,* L7STS,500,2,10.0.0.2:6443,Layer7 wrong status\n\
        kube-apiserver,cp-c,0,0,DRAIN,1,L7OK,200,5,10.0.0.3:6443,\n\
        kube-apiserver,BACKEND,0,4,UP,3,,,40,,\n\n";

    #[test]
    fn show_stat_is_read_by_column_names() {
        let rows = parse_show_stat(STAT).unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[0].svname, "cp-a");
        assert_eq!(rows[0].addr.as_deref(), Some("10.0.0.1:6443"));
        assert_eq!(rows[0].scur, Some(3));
        assert_eq!(rows[1].status, "UP 1/3");
        let servers = servers(&rows, &[]);
        assert_eq!(servers[1].check.as_deref(), Some("L7STS 500"));
        assert_eq!(servers[1].check_passed, Some(false));
        assert_eq!(servers[1].status.transition, Some((1, 3)));
        assert_eq!(servers[2].status.state, LbState::Drain);
    }

    #[test]
    fn quoted_csv_fields_keep_their_commas() {
        assert_eq!(split_csv("a,\"b,c\",\"d\"\"e\","), ["a", "b,c", "d\"e", ""]);
    }

    #[test]
    fn servers_state_adds_the_admin_state() {
        let state = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port\n\
            3 kube-apiserver 1 cp-a 10.0.0.1 2 0 1 1 40 6 3 4 6 0 0 0 - 6443\n\
            3 kube-apiserver 3 cp-c 10.0.0.3 2 8 1 1 5 6 3 4 6 0 0 0 - 6443\n";
        let states = parse_servers_state(state).unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!(states[1].srv_port, Some(6443));
        let servers = servers(&parse_show_stat(STAT).unwrap(), &states);
        assert_eq!(servers[2].admin.as_deref(), Some("drain (forced)"));
        assert_eq!(servers[0].admin, None);
        assert!(parse_servers_state("2\n# be_name\n").is_err());
    }

    #[test]
    fn missing_columns_are_errors_not_panics() {
        assert!(parse_show_stat("").is_err());
        assert!(parse_show_stat("pxname,svname\n").is_err());
        assert!(parse_show_stat("# pxname,svname\na,b\n").is_err());
        let rows = parse_show_stat("# pxname,svname,status\na\n,b,UP\n").unwrap();
        assert!(rows.is_empty());
    }
}
