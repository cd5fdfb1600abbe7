//! nginx with the third-party upstream check module (`check_status` location, as in the
//! reference guide): its JSON status page, `/status?format=json`:
//! `{"servers": {"total": N, "generation": G, "server": [{"index", "upstream", "name",
//! "status": "up"|"down", "rise", "fall", "type", "port"}]}}`.
//! The module prints names unescaped, so broken JSON is expected and reported, not fatal.

use serde_json::Value;

use crate::model::lb::{LbServer, LbStatus};

/// One server of the check module's status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxUpstreamServer {
    pub upstream: String,
    /// `host:port` as nginx resolved it.
    pub name: String,
    /// `up` or `down`.
    pub status: String,
    /// Consecutive successful checks.
    pub rise: u64,
    /// Consecutive failed checks.
    pub fall: u64,
    /// `http`, `tcp`, `ssl_hello`, ...
    pub check_type: String,
}

/// Parses the JSON status page.
pub fn parse_check_status(json: &str) -> Result<Vec<NginxUpstreamServer>, String> {
    let doc: Value =
        serde_json::from_str(json).map_err(|e| format!("nginx check status: not JSON: {e}"))?;
    let list = doc
        .get("servers")
        .and_then(|s| s.get("server"))
        .and_then(Value::as_array)
        .ok_or("nginx check status: no servers.server list (is `check_status` on this URL?)")?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let number = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    Ok(list
        .iter()
        .filter_map(|s| {
            Some(NginxUpstreamServer {
                upstream: text(s, "upstream")?,
                name: text(s, "name")?,
                status: text(s, "status").unwrap_or_default(),
                rise: number(s, "rise"),
                fall: number(s, "fall"),
                check_type: text(s, "type").unwrap_or_default(),
            })
        })
        .collect())
}

pub fn servers(list: &[NginxUpstreamServer]) -> Vec<LbServer> {
    list.iter()
        .map(|s| {
            let status = LbStatus::parse(&s.status.to_ascii_uppercase());
            let (check, passed) = match (s.rise, s.fall) {
                (_, f) if f > 0 => (format!("{} fall {f}", s.check_type), Some(false)),
                (r, _) if r > 0 => (format!("{} rise {r}", s.check_type), Some(true)),
                _ => (s.check_type.clone(), None),
            };
            LbServer {
                proxy: s.upstream.clone(),
                name: s.name.clone(),
                address: Some(s.name.clone()),
                status,
                check: Some(check.trim().to_string()).filter(|c| !c.is_empty()),
                check_passed: passed,
                last_change_secs: None,
                sessions: None,
                weight: None,
                admin: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::lb::LbState;

    #[test]
    fn up_and_down_servers() {
        let json = r#"{"servers": {"total": 2, "generation": 1, "server": [
            {"index": 0, "upstream": "kube-apiserver", "name": "10.0.0.1:6443", "status": "up", "rise": 12, "fall": 0, "type": "http", "port": 0},
            {"index": 1, "upstream": "kube-apiserver", "name": "10.0.0.2:6443", "status": "down", "rise": 0, "fall": 4, "type": "http", "port": 0}
        ]}}"#;
        let list = parse_check_status(json).unwrap();
        let s = servers(&list);
        assert_eq!(s[0].status.state, LbState::Up);
        assert_eq!(s[0].check.as_deref(), Some("http rise 12"));
        assert_eq!(s[1].status.state, LbState::Down);
        assert_eq!(s[1].check_passed, Some(false));
        assert_eq!(s[1].address.as_deref(), Some("10.0.0.2:6443"));
    }

    #[test]
    fn wrong_shapes_are_errors() {
        assert!(parse_check_status("").is_err());
        assert!(parse_check_status("{\"servers\": 3}").is_err());
        assert!(parse_check_status("[1,2]").is_err());
        assert_eq!(
            parse_check_status(r#"{"servers":{"server":[{"name":1},7]}}"#),
            Ok(vec![])
        );
    }
}
