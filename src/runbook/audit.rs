//! The audit log: one JSON line per runbook event, appended and fsynced to
//! `<state dir>/audit.jsonl`, so the record survives kha being killed mid-step. Records
//! hold what ran and what came of it, never credentials: operations are described by
//! endpoints, paths and argv, and argv values that look like secrets are masked.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use color_eyre::eyre::{Result, WrapErr};
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// A finding kha showed when the runbook was chosen (what the engineer saw).
    FindingSeen,
    /// The plan was shown and confirmed (or needed no confirmation).
    Confirmed,
    /// The engine refused to run (read-only, unmet preconditions, wrong confirmation).
    Refused,
    StepStarted,
    StepSucceeded,
    StepFailed,
    StepSkipped,
    Finished,
    Aborted,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC.
    pub at: String,
    /// Random id of one execution of a runbook.
    pub run: String,
    pub os_user: String,
    /// The Kubernetes identity, when the runbook talks to the API.
    pub kube_user: Option<String>,
    pub cluster: String,
    pub runbook: String,
    pub event: AuditEvent,
    /// 1-based step number.
    pub step: Option<usize>,
    /// The step's title (a resumed run checks its plan still has the same steps).
    #[serde(default)]
    pub title: Option<String>,
    pub operation: Option<String>,
    pub result: Option<String>,
    pub duration_ms: Option<u64>,
}

/// The append-only log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The log in `state_dir` (created when missing).
    pub fn in_dir(state_dir: &Path) -> AuditLog {
        AuditLog {
            path: state_dir.join("audit.jsonl"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and fsyncs it.
    pub fn append(&self, record: &AuditRecord) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .wrap_err_with(|| format!("cannot create the state dir {}", dir.display()))?;
        }
        let mut line = serde_json::to_vec(record).wrap_err("cannot encode an audit record")?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .wrap_err_with(|| format!("cannot open the audit log {}", self.path.display()))?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .wrap_err_with(|| format!("cannot write the audit log {}", self.path.display()))
    }

    /// Every record, oldest first; lines that do not parse (a torn last line after a
    /// crash, a hand edit) are skipped and counted.
    pub fn read(&self) -> Result<(Vec<AuditRecord>, usize)> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => {
                return Err(e).wrap_err_with(|| {
                    format!("cannot read the audit log {}", self.path.display())
                });
            }
        };
        let mut records = Vec::new();
        let mut bad = 0;
        for line in BufReader::new(file).lines() {
            let line = line.wrap_err("cannot read the audit log")?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(&line) {
                Ok(r) => records.push(r),
                Err(_) => bad += 1,
            }
        }
        Ok((records, bad))
    }
}

/// The OS user running kha.
pub fn os_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `at` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(at: SystemTime) -> String {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, day) = crate::lab::civil::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        d.subsec_millis()
    )
}

/// A fresh run id: 16 hex digits from the clock and the process id.
pub fn new_run_id() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mix = (d.as_nanos() as u64) ^ (u64::from(std::process::id()) << 40);
    format!("{:016x}", mix.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// `text` with values that look like credentials masked: `--token X`, `--password=X`,
/// `Authorization: Bearer X`, and anything after `token=`/`password=`/`secret=`.
pub fn redact(text: &str) -> String {
    const KEYS: [&str; 5] = ["token", "password", "secret", "bearer", "authorization"];
    let mut out: Vec<String> = Vec::new();
    let mut mask_next = false;
    for word in text.split(' ') {
        if mask_next {
            out.push("***".into());
            mask_next = false;
            continue;
        }
        let lower = word.to_ascii_lowercase();
        if let Some((k, _)) = lower.split_once('=')
            && KEYS.iter().any(|key| k.contains(key))
        {
            let keep = word.len() - word.split_once('=').map_or(0, |(_, v)| v.len());
            out.push(format!("{}***", &word[..keep]));
            continue;
        }
        if KEYS
            .iter()
            .any(|key| lower.trim_start_matches('-').trim_end_matches(':') == *key)
        {
            mask_next = true;
        }
        out.push(word.to_string());
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_but_keeps_the_command() {
        assert_eq!(
            redact("curl -H Authorization: Bearer abc https://x --token s3cr3t --password=hunter2"),
            "curl -H Authorization: *** abc https://x --token *** --password=***"
        );
        assert_eq!(
            redact("etcdutl snapshot status /tmp/a.db"),
            "etcdutl snapshot status /tmp/a.db"
        );
    }

    #[test]
    fn appends_and_reads_back_skipping_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::in_dir(&dir.path().join("state"));
        let record = AuditRecord {
            at: now_rfc3339(),
            run: new_run_id(),
            os_user: os_user(),
            kube_user: None,
            cluster: "prod".into(),
            runbook: "etcd.defrag".into(),
            event: AuditEvent::StepStarted,
            step: Some(1),
            title: Some("Defragment etcd-a".into()),
            operation: Some("x".into()),
            result: None,
            duration_ms: None,
        };
        log.append(&record).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"{\"at\": \"torn")
            .unwrap();
        let (records, bad) = log.read().unwrap();
        assert_eq!((records, bad), (vec![record], 1));
        assert_eq!(now_rfc3339().len(), "2026-11-30T04:59:01.123Z".len());
    }
}
