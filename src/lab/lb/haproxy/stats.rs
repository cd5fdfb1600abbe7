//! The CSV of `show stat` and the text of `show servers state` and `show info`, exactly
//! as HAProxy 2.6 (Debian bookworm's 2.6.12) prints them. Rows start from templates
//! captured from a real HAProxy with the same frontend/backend layout, and the columns
//! that carry state are filled in by name.

use std::sync::LazyLock;
use std::time::Instant;

use super::proxy::{AdminState, Backend, OpState, Server};

/// HAProxy's version string, as Debian bookworm ships it.
pub const HAPROXY_VERSION: &str = "2.6.12-1+deb12u4";
/// Its release date, as `show info` reports it.
pub const HAPROXY_RELEASE_DATE: &str = "2026/10/17";

/// The header line of `show stat` in HAProxy 2.6 (standard columns, then the ssl, h2
/// and h1 module columns after `-`).
pub const STAT_HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

/// A `mode tcp` frontend row.
const FRONTEND_ROW: &str = "kube-apiserver-frontend,FRONTEND,,,0,0,9984,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,0,0,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,";
/// A checked server row of a `mode tcp` backend.
const SERVER_ROW: &str = "kube-apiserver,cp-a,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,4,0,,1,3,1,,0,,2,0,,0,L7OK,200,0,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,3,4,,,,127.0.0.1:18081,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,";
/// The BACKEND aggregate row of a `mode tcp`, `balance roundrobin` backend.
const BACKEND_ROW: &str = "kube-apiserver,BACKEND,0,0,0,0,999,0,0,0,0,0,,0,0,0,0,UP,3,3,0,,0,109,0,,1,3,0,,0,,1,0,,0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,roundrobin,,,,,,,0,0,0,,,,,0,0,0,0,0,,,,,3,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,";

/// The proxy ids HAProxy assigns to this layout (`defaults` takes 1).
pub const FRONTEND_IID: u32 = 2;
pub const BACKEND_IID: u32 = 3;
pub const FRONTEND_NAME: &str = "kube-apiserver-frontend";

/// Column names of the header, without the leading `# `.
static COLUMNS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    STAT_HEADER
        .trim_start_matches("# ")
        .trim_end_matches(',')
        .split(',')
        .collect()
});

/// A CSV row being filled by column name.
struct Row(Vec<String>);

impl Row {
    fn from_template(template: &str) -> Row {
        Row(template.split(',').map(str::to_string).collect())
    }

    fn set(&mut self, column: &str, value: impl ToString) {
        if let Some(cell) = COLUMNS
            .iter()
            .position(|c| *c == column)
            .and_then(|i| self.0.get_mut(i))
        {
            *cell = value.to_string();
        }
    }

    fn render(self) -> String {
        self.0.join(",")
    }
}

/// Which rows `show stat` prints (its `{<iid>|<proxy>} <type> <sid>` and flags).
#[derive(Debug, Clone, Default)]
pub struct StatFilter {
    /// `Some(iid)` restricts to one proxy; -1 or `None` means all.
    pub iid: Option<i64>,
    /// Bit mask: 1 frontends, 2 backends, 4 servers.
    pub types: Option<i64>,
    /// `Some(sid)` restricts servers to one id; -1 means all.
    pub sid: Option<i64>,
    /// `up`: hide servers that are DOWN or in maintenance.
    pub hide_down: bool,
    /// `no-maint`: hide servers in maintenance.
    pub hide_maint: bool,
}

impl StatFilter {
    fn proxy_selected(&self, iid: u32) -> bool {
        matches!(self.iid, None | Some(-1)) || self.iid == Some(i64::from(iid))
    }

    fn type_selected(&self, bit: i64) -> bool {
        self.types.is_none_or(|t| t & bit != 0)
    }
}

/// The whole `show stat` answer (header, rows, no trailing blank line).
pub fn show_stat(backend: &Backend, filter: &StatFilter, now: Instant) -> String {
    let mut out = String::new();
    out.push_str(STAT_HEADER);
    out.push('\n');
    if filter.proxy_selected(FRONTEND_IID) && filter.type_selected(1) {
        let mut row = Row::from_template(FRONTEND_ROW);
        row.set("pxname", FRONTEND_NAME);
        row.set("iid", FRONTEND_IID);
        out.push_str(&row.render());
        out.push('\n');
    }
    if !filter.proxy_selected(BACKEND_IID) {
        return out;
    }
    if filter.type_selected(4) {
        for server in &backend.servers {
            if matches!(filter.sid, Some(sid) if sid != -1 && sid != i64::from(server.id)) {
                continue;
            }
            let maint = server.admin == AdminState::Maint;
            if (filter.hide_maint || filter.hide_down) && maint {
                continue;
            }
            if filter.hide_down
                && server.op == OpState::Stopped
                && (!server.checks_enabled || server.health == 0)
            {
                continue;
            }
            out.push_str(&server_row(&backend.name, server, now));
            out.push('\n');
        }
    }
    if filter.type_selected(2) {
        out.push_str(&backend_row(backend, filter, now));
        out.push('\n');
    }
    out
}

fn server_row(backend: &str, s: &Server, now: Instant) -> String {
    let mut row = Row::from_template(SERVER_ROW);
    row.set("pxname", backend);
    row.set("svname", &s.name);
    row.set("status", s.status());
    row.set("weight", s.uweight);
    row.set("uweight", s.uweight);
    row.set("lastchg", s.seconds_since_change(now));
    row.set("iid", BACKEND_IID);
    row.set("sid", s.id);
    row.set("addr", s.addr);
    row.set("last_chk", &s.last_check.info);
    let checks_shown = s.checks_enabled && s.admin != AdminState::Maint;
    if s.checks_enabled {
        row.set("chkfail", s.failed_checks);
        row.set("chkdown", s.down_transitions);
        row.set("downtime", s.downtime(now));
    } else {
        for column in ["chkfail", "chkdown", "downtime"] {
            row.set(column, "");
        }
    }
    if checks_shown {
        let check = &s.last_check;
        row.set("check_status", check.status.code());
        row.set(
            "check_code",
            check.code.map(|c| c.to_string()).unwrap_or_default(),
        );
        row.set(
            "check_duration",
            check.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        );
        row.set("check_desc", check.status.description());
        row.set("check_health", s.health);
    } else {
        for column in [
            "check_status",
            "check_code",
            "check_duration",
            "check_desc",
            "check_rise",
            "check_fall",
            "check_health",
        ] {
            row.set(column, "");
        }
    }
    row.render()
}

fn backend_row(b: &Backend, filter: &StatFilter, now: Instant) -> String {
    let mut row = Row::from_template(BACKEND_ROW);
    row.set("pxname", &b.name);
    let mut status = if b.is_up() { "UP" } else { "DOWN" }.to_string();
    if filter.hide_down || filter.hide_maint {
        let up = b
            .servers
            .iter()
            .filter(|s| s.op != OpState::Stopped)
            .count();
        status.push_str(&format!(" ({up}/{})", b.servers.len()));
    }
    row.set("status", status);
    row.set("weight", b.total_weight());
    row.set("uweight", b.total_weight());
    row.set("act", b.active_servers());
    row.set("chkdown", b.down_transitions);
    row.set("lastchg", b.seconds_since_change(now));
    row.set("downtime", b.downtime(now));
    row.set("iid", BACKEND_IID);
    row.set("h1_total_connections", b.check_connections);
    row.set("h1_total_streams", b.check_connections);
    row.set("h1_bytes_in", b.check_bytes_in);
    row.set("h1_bytes_out", b.check_bytes_out);
    row.render()
}

/// The header of the server-state file format (version line, then column names).
pub const SERVERS_STATE_HEADER: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n";

/// `show servers state`: the header and one line per server.
pub fn show_servers_state(b: &Backend, now: Instant) -> String {
    let mut out = SERVERS_STATE_HEADER.to_string();
    for s in &b.servers {
        out.push_str(&format!(
            "{BACKEND_IID} {} {} {} {} {} {} {} {} {} {} {} {} {} 0 0 0 - {} - 0 0 - - 0\n",
            b.name,
            s.id,
            s.name,
            s.addr.ip(),
            s.op as u32,
            s.admin.flags(),
            s.uweight,
            s.iweight,
            s.seconds_since_change(now),
            s.last_check.status as u32,
            s.last_check.result,
            s.health,
            s.check_state_flags(),
            s.addr.port(),
        ));
    }
    out
}

/// Process-level facts `show info` reports.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub pid: u32,
    pub uptime_secs: u64,
    pub start_unix: u64,
    pub node: String,
    pub cum_conns: u64,
}

/// `show info`: HAProxy 2.6's keys in its order; counters the lab does not model are 0.
pub fn show_info(p: &ProcessInfo) -> String {
    let up = p.uptime_secs;
    let uptime = format!(
        "{}d {}h{:02}m{:02}s",
        up / 86_400,
        (up / 3_600) % 24,
        (up / 60) % 60,
        up % 60
    );
    let fields: Vec<(&str, String)> = vec![
        ("Name", "HAProxy".into()),
        ("Version", HAPROXY_VERSION.into()),
        ("Release_date", HAPROXY_RELEASE_DATE.into()),
        ("Nbthread", "2".into()),
        ("Nbproc", "1".into()),
        ("Process_num", "1".into()),
        ("Pid", p.pid.to_string()),
        ("Uptime", uptime),
        ("Uptime_sec", up.to_string()),
        ("Memmax_MB", "0".into()),
        ("PoolAlloc_MB", "0".into()),
        ("PoolUsed_MB", "0".into()),
        ("PoolFailed", "0".into()),
        ("Ulimit-n", "19999".into()),
        ("Maxsock", "19999".into()),
        ("Maxconn", "9984".into()),
        ("Hard_maxconn", "9984".into()),
        ("CurrConns", "0".into()),
        ("CumConns", p.cum_conns.to_string()),
        ("CumReq", p.cum_conns.to_string()),
    ];
    let zeros = [
        "MaxSslConns",
        "CurrSslConns",
        "CumSslConns",
        "Maxpipes",
        "PipesUsed",
        "PipesFree",
        "ConnRate",
        "ConnRateLimit",
        "MaxConnRate",
        "SessRate",
        "SessRateLimit",
        "MaxSessRate",
        "SslRate",
        "SslRateLimit",
        "MaxSslRate",
        "SslFrontendKeyRate",
        "SslFrontendMaxKeyRate",
        "SslFrontendSessionReuse_pct",
        "SslBackendKeyRate",
        "SslBackendMaxKeyRate",
        "SslCacheLookups",
        "SslCacheMisses",
        "CompressBpsIn",
        "CompressBpsOut",
        "CompressBpsRateLim",
    ];
    let mut out = String::new();
    for (k, v) in fields {
        out.push_str(&format!("{k}: {v}\n"));
    }
    for k in zeros {
        out.push_str(&format!("{k}: 0\n"));
    }
    let tail: Vec<(&str, String)> = vec![
        ("Tasks", "16".into()),
        ("Run_queue", "0".into()),
        ("Idle_pct", "100".into()),
        ("node", p.node.clone()),
        ("Stopping", "0".into()),
        ("Jobs", "3".into()),
        ("Unstoppable Jobs", "0".into()),
        ("Listeners", "2".into()),
        ("ActivePeers", "0".into()),
        ("ConnectedPeers", "0".into()),
        ("DroppedLogs", "0".into()),
        ("BusyPolling", "0".into()),
        ("FailedResolutions", "0".into()),
        ("TotalBytesOut", "0".into()),
        ("TotalSplicdedBytesOut", "0".into()),
        ("BytesOutRate", "0".into()),
        ("DebugCommandsIssued", "0".into()),
        ("CumRecvLogs", "0".into()),
        ("Build info", HAPROXY_VERSION.into()),
        ("Memmax_bytes", "0".into()),
        ("PoolAlloc_bytes", "0".into()),
        ("PoolUsed_bytes", "0".into()),
        ("Start_time_sec", p.start_unix.to_string()),
        ("Tainted", "0".into()),
    ];
    for (k, v) in tail {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::lb::haproxy::check::CheckOutcome;

    #[test]
    fn templates_have_one_field_per_column_plus_the_trailing_comma() {
        let n = COLUMNS.len() + 1;
        for template in [FRONTEND_ROW, SERVER_ROW, BACKEND_ROW] {
            assert_eq!(template.split(',').count(), n);
        }
    }

    #[test]
    fn rows_carry_the_state_in_the_named_columns() {
        let now = Instant::now();
        let addr = "127.0.0.1:6443".parse().unwrap();
        let mut b = Backend::new("kube-apiserver", vec![("cp-a".into(), addr)], now);
        b.record_check(
            0,
            &CheckOutcome::ConnectFailed {
                error: "Connection refused".into(),
                duration_ms: 0,
            },
            now,
        );
        let csv = show_stat(&b, &StatFilter::default(), now);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        let cols: Vec<&str> = lines[2].split(',').collect();
        let at = |name: &str| cols[COLUMNS.iter().position(|c| *c == name).unwrap()];
        assert_eq!(at("svname"), "cp-a");
        assert_eq!(at("status"), "DOWN");
        assert_eq!(at("check_status"), "L4CON");
        assert_eq!(at("check_code"), "");
        assert_eq!(at("last_chk"), "Connection refused");
        assert_eq!(at("addr"), "127.0.0.1:6443");
        assert!(lines[3].starts_with("kube-apiserver,BACKEND,"));
        assert!(lines[3].contains(",DOWN,0,0,0,,1,"));
    }

    #[test]
    fn filters_select_proxies_types_and_servers() {
        let now = Instant::now();
        let addr = "127.0.0.1:6443".parse().unwrap();
        let b = Backend::new(
            "kube-apiserver",
            vec![("cp-a".into(), addr), ("cp-b".into(), addr)],
            now,
        );
        let only_b = StatFilter {
            iid: Some(-1),
            types: Some(4),
            sid: Some(2),
            ..Default::default()
        };
        let csv = show_stat(&b, &only_b, now);
        assert_eq!(csv.lines().count(), 2);
        assert!(
            csv.lines()
                .nth(1)
                .unwrap()
                .starts_with("kube-apiserver,cp-b,")
        );
        let up = StatFilter {
            hide_down: true,
            ..Default::default()
        };
        assert!(show_stat(&b, &up, now).contains(",UP (2/2),"));
    }
}
