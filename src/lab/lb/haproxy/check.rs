//! One `option httpchk GET /readyz` health check, done the way HAProxy 2.6 does it: a
//! fresh TCP connection, an HTTP/1.0 request, and the status line of the answer
//! (`http-check expect status 200`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The outcome of one health check, as HAProxy classifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// HTTP answered with the expected status (L7OK).
    Passed { code: u16, duration_ms: u64 },
    /// HTTP answered with another status (L7STS); `reason` is the reason phrase.
    WrongStatus {
        code: u16,
        reason: String,
        duration_ms: u64,
    },
    /// Not an HTTP response (L7RSP).
    InvalidResponse { duration_ms: u64 },
    /// No response in time (L7TOUT).
    ResponseTimeout { duration_ms: u64 },
    /// Could not connect (L4CON), e.g. `Connection refused`.
    ConnectFailed { error: String, duration_ms: u64 },
    /// Connect timed out (L4TOUT).
    ConnectTimeout { duration_ms: u64 },
}

/// HAProxy's `HCHK_STATUS_*` for the last check (numbers as in `show servers state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Ini = 1,
    L4Tout = 7,
    L4Con = 8,
    L7Tout = 12,
    L7Rsp = 13,
    L7Ok = 15,
    L7Sts = 17,
}

impl CheckStatus {
    /// The `check_status` column.
    pub fn code(self) -> &'static str {
        match self {
            CheckStatus::Ini => "INI",
            CheckStatus::L4Tout => "L4TOUT",
            CheckStatus::L4Con => "L4CON",
            CheckStatus::L7Tout => "L7TOUT",
            CheckStatus::L7Rsp => "L7RSP",
            CheckStatus::L7Ok => "L7OK",
            CheckStatus::L7Sts => "L7STS",
        }
    }

    /// The `check_desc` column.
    pub fn description(self) -> &'static str {
        match self {
            CheckStatus::Ini => "Initializing",
            CheckStatus::L4Tout => "Layer4 timeout",
            CheckStatus::L4Con => "Layer4 connection problem",
            CheckStatus::L7Tout => "Layer7 timeout",
            CheckStatus::L7Rsp => "Layer7 invalid response",
            CheckStatus::L7Ok => "Layer7 check passed",
            CheckStatus::L7Sts => "Layer7 wrong status",
        }
    }
}

/// The last check as the stats report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCheck {
    pub status: CheckStatus,
    /// HTTP status, when one was received.
    pub code: Option<u16>,
    pub duration_ms: Option<u64>,
    /// The `last_chk` column: reason phrase or socket error.
    pub info: String,
    /// `CHK_RES_*`: 0 unknown, 2 failed, 3 passed.
    pub result: u8,
}

impl CheckOutcome {
    /// How the stats report this outcome.
    pub fn to_last_check(&self) -> LastCheck {
        let (status, code, duration_ms, info, result) = match self {
            CheckOutcome::Passed { code, duration_ms } => (
                CheckStatus::L7Ok,
                Some(*code),
                *duration_ms,
                String::new(),
                3,
            ),
            CheckOutcome::WrongStatus {
                code,
                reason,
                duration_ms,
            } => (
                CheckStatus::L7Sts,
                Some(*code),
                *duration_ms,
                reason.clone(),
                2,
            ),
            CheckOutcome::InvalidResponse { duration_ms } => (
                CheckStatus::L7Rsp,
                None,
                *duration_ms,
                "Not an HTTP response".to_string(),
                2,
            ),
            CheckOutcome::ResponseTimeout { duration_ms } => {
                (CheckStatus::L7Tout, None, *duration_ms, String::new(), 2)
            }
            CheckOutcome::ConnectFailed { error, duration_ms } => {
                (CheckStatus::L4Con, None, *duration_ms, error.clone(), 2)
            }
            CheckOutcome::ConnectTimeout { duration_ms } => {
                (CheckStatus::L4Tout, None, *duration_ms, String::new(), 2)
            }
        };
        LastCheck {
            status,
            code,
            duration_ms: Some(duration_ms),
            info,
            result,
        }
    }
}

/// The request HAProxy sends for `option httpchk GET /readyz`.
const REQUEST: &[u8] = b"GET /readyz HTTP/1.0\r\n\r\n";
/// The most of the answer read to find the status line.
const MAX_RESPONSE: usize = 16 * 1024;

/// What one check saw, and the bytes it exchanged (for the stats' HTTP/1 counters).
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub outcome: CheckOutcome,
    pub bytes_out: u64,
    pub bytes_in: u64,
}

/// Checks `addr`, giving up after `timeout` (HAProxy bounds a check by `inter`).
pub async fn http_check(addr: SocketAddr, timeout: Duration) -> CheckReport {
    let started = Instant::now();
    let elapsed = || started.elapsed().as_millis() as u64;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => {
            return report(
                CheckOutcome::ConnectTimeout {
                    duration_ms: elapsed(),
                },
                0,
                0,
            );
        }
        Ok(Err(e)) => {
            let outcome = CheckOutcome::ConnectFailed {
                error: socket_error_text(&e),
                duration_ms: elapsed(),
            };
            return report(outcome, 0, 0);
        }
        Ok(Ok(s)) => s,
    };
    let exchange = async {
        stream.write_all(REQUEST).await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.len() >= MAX_RESPONSE || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        Ok::<_, std::io::Error>(answer)
    };
    let bytes_out = REQUEST.len() as u64;
    match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => report(
            CheckOutcome::ResponseTimeout {
                duration_ms: elapsed(),
            },
            bytes_out,
            0,
        ),
        Ok(Err(e)) => {
            let outcome = CheckOutcome::ConnectFailed {
                error: socket_error_text(&e),
                duration_ms: elapsed(),
            };
            report(outcome, bytes_out, 0)
        }
        Ok(Ok(answer)) => {
            let bytes_in = answer.len() as u64;
            let outcome = match parse_status_line(&answer) {
                None => CheckOutcome::InvalidResponse {
                    duration_ms: elapsed(),
                },
                Some((200, _)) => CheckOutcome::Passed {
                    code: 200,
                    duration_ms: elapsed(),
                },
                Some((code, reason)) => CheckOutcome::WrongStatus {
                    code,
                    reason,
                    duration_ms: elapsed(),
                },
            };
            report(outcome, bytes_out, bytes_in)
        }
    }
}

fn report(outcome: CheckOutcome, bytes_out: u64, bytes_in: u64) -> CheckReport {
    CheckReport {
        outcome,
        bytes_out,
        bytes_in,
    }
}

/// `HTTP/1.1 500 Internal Server Error` → (500, "Internal Server Error").
fn parse_status_line(answer: &[u8]) -> Option<(u16, String)> {
    let end = answer.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&answer[..end]).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    Some((code, parts.next().unwrap_or("").to_string()))
}

/// The C library's text for a socket error, as HAProxy puts it in `last_chk`.
fn socket_error_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "Connection refused".into(),
        ErrorKind::ConnectionReset => "Connection reset by peer".into(),
        ErrorKind::TimedOut => "Connection timed out".into(),
        ErrorKind::HostUnreachable => "No route to host".into(),
        ErrorKind::NetworkUnreachable => "Network is unreachable".into(),
        _ => {
            // "Connection refused (os error 111)" → "Connection refused"
            let text = e.to_string();
            match text.find(" (os error") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_parsed_and_garbage_is_not() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 500 Internal Server Error\r\n\r\n"),
            Some((500, "Internal Server Error".into()))
        );
        assert_eq!(
            parse_status_line(b"HTTP/1.0 200 OK\r\nA: b\r\n"),
            Some((200, "OK".into()))
        );
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 20"), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_refused_layer4_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let r = http_check(addr, Duration::from_secs(1)).await;
        assert!(
            matches!(r.outcome, CheckOutcome::ConnectFailed { ref error, .. } if error == "Connection refused")
        );
    }
}
