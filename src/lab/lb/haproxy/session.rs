//! One connection to the stats socket, with HAProxy's line protocol: commands end with a
//! newline, several may share a line separated by `;`, and each answer ends with a blank
//! line. Without `prompt` the connection closes once the commands sent so far are
//! answered; with `prompt` it stays open and every answer is followed by `> `.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::cli::{self, Flow, RuntimeState};

/// HAProxy's default `stats timeout`: an idle session is closed after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A line longer than HAProxy's buffer ends the session.
const MAX_LINE: usize = 16 * 1024;

/// Serves one client until it quits, goes idle, or (outside prompt mode) has its
/// commands answered.
pub async fn serve(mut stream: UnixStream, state: Arc<Mutex<RuntimeState>>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut prompt = false;
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let (answer, quit) = run_line(&line[..line.len() - 1], &state, &mut prompt);
            if stream.write_all(answer.as_bytes()).await.is_err() || quit {
                return;
            }
            if !prompt && !pending.contains(&b'\n') {
                return;
            }
        }
        if pending.len() > MAX_LINE {
            return;
        }
        let read = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(0)) => {
                // The client closed its side: answer a last unterminated line, if any.
                if !pending.is_empty() {
                    let (answer, _) = run_line(&pending, &state, &mut prompt);
                    let _ = stream.write_all(answer.as_bytes()).await;
                }
                return;
            }
            Ok(Ok(n)) => pending.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// Runs every command of one line; returns the text to send and whether to hang up.
fn run_line(line: &[u8], state: &Mutex<RuntimeState>, prompt: &mut bool) -> (String, bool) {
    let text = String::from_utf8_lossy(line);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let mut answer = String::new();
    let mut state = state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for command in cli::parse_line(text) {
        let (output, flow) = cli::execute(&mut state, &command, Instant::now());
        answer.push_str(&output);
        match flow {
            Flow::Quit => return (answer, true),
            Flow::TogglePrompt => *prompt = !*prompt,
            Flow::Continue => {}
        }
        answer.push_str(if *prompt { "\n> " } else { "\n" });
    }
    (answer, false)
}
