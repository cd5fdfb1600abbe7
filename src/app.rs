//! The cockpit's run loop: messages in, `update`, redraw when dirty (capped frame rate).
//! Generic over the ratatui backend so tests drive the real loop on a `TestBackend`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use color_eyre::eyre::Result;
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{
    Event, EventStream, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use tokio::sync::mpsc;

use crate::config::keymap::Keymap;
use crate::config::theme::Theme;
use crate::model::{Effect, LabCommand, Msg, State, update};

/// At most this many frames per second, however fast messages arrive.
const FRAME: Duration = Duration::from_millis(50);
/// Ages on screen move once a second even when nothing else happens.
const CLOCK: Duration = Duration::from_secs(1);

/// Where start-up timings go (`KHA_TIMINGS=path`): one JSON line per milestone, for
/// `scripts/measure.sh`.
#[derive(Debug, Clone)]
pub struct Timings {
    path: PathBuf,
    started: Instant,
}

impl Timings {
    pub fn from_env(started: Instant) -> Option<Self> {
        std::env::var_os("KHA_TIMINGS").map(|p| Timings {
            path: PathBuf::from(p),
            started,
        })
    }

    fn record(&self, milestone: &str) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let line = format!(
            "{{\"milestone\":\"{milestone}\",\"ms\":{ms:.1},\"pid\":{}}}\n",
            std::process::id()
        );
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

pub struct Cockpit<'a> {
    pub theme: &'a Theme,
    pub keymap: &'a Keymap,
    pub lab: Option<mpsc::Sender<LabCommand>>,
    /// Runs confirmed runbooks (absent in tests that drive only the panes).
    pub runbooks: Option<crate::runbook::tui::RunbookRunner>,
    pub timings: Option<Timings>,
    /// Where copies go: the terminal (OSC 52) in the real cockpit, nowhere in tests.
    pub clipboard: Option<fn(&str) -> std::io::Result<()>>,
}

/// Sends `text` to the engineer's clipboard through their terminal (OSC 52), after the
/// frame: the sequence has no visible output.
pub fn osc52_to_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(crate::model::copy::osc52(text).as_bytes())?;
    out.flush()
}

impl Cockpit<'_> {
    /// Run until a Quit effect (or until every sender is gone). Returns the final state.
    pub async fn run<B: Backend>(
        &self,
        terminal: &mut Terminal<B>,
        mut state: State,
        mut rx: mpsc::Receiver<Msg>,
    ) -> Result<State>
    where
        B::Error: Send + Sync + 'static,
    {
        let mut dirty = true;
        let mut last_draw: Option<Instant> = None;
        let mut first_etcd = true;
        let mut clock = tokio::time::interval(CLOCK);
        clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME) {
                terminal.draw(|frame| crate::ui::view(frame, &state, self.theme, self.keymap))?;
                if last_draw.is_none()
                    && let Some(t) = &self.timings
                {
                    t.record("first_frame");
                }
                last_draw = Some(Instant::now());
                dirty = false;
            }
            let wait = match (dirty, last_draw) {
                (true, Some(t)) => FRAME.saturating_sub(t.elapsed()),
                _ => CLOCK,
            };
            let first = tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => Some(m),
                    None => return Ok(state),
                },
                _ = clock.tick() => Some(Msg::Tick(SystemTime::now())),
                _ = tokio::time::sleep(wait) => None,
            };
            // Drain everything queued, then draw once.
            let mut batch: Vec<Msg> = first.into_iter().collect();
            while let Ok(m) = rx.try_recv() {
                batch.push(m);
            }
            for msg in batch {
                if first_etcd && matches!(msg, Msg::Etcd(_)) {
                    first_etcd = false;
                    if let Some(t) = &self.timings {
                        t.record("first_etcd_data");
                    }
                }
                dirty = true;
                for effect in update(&mut state, msg) {
                    match effect {
                        Effect::Quit => return Ok(state),
                        Effect::Copy(text) => {
                            if let Some(copy) = self.clipboard
                                && let Err(e) = copy(&text)
                            {
                                state.notice(format!("copy failed: {e}"));
                            }
                        }
                        Effect::Lab(cmd) => {
                            if let Some(lab) = &self.lab {
                                let _ = lab.try_send(cmd);
                            }
                        }
                        Effect::CancelRunbook => {
                            if let Some(r) = &self.runbooks {
                                r.cancel();
                            }
                        }
                        Effect::RunbookDecision(d) => {
                            if let Some(r) = &self.runbooks {
                                r.decide(d);
                            }
                        }
                        Effect::ReadForPlan { ticket, request } => match &self.runbooks {
                            Some(runner) => runner.read_for_plan(ticket, *request),
                            None => {
                                update(
                                    &mut state,
                                    Msg::RunbookOptions {
                                        ticket,
                                        result: Err("runbooks cannot run here".into()),
                                    },
                                );
                            }
                        },
                        Effect::StartRunbook {
                            runbook,
                            answer,
                            seen,
                        } => match &self.runbooks {
                            Some(runner) => runner.spawn(*runbook, answer, seen),
                            None => {
                                update(
                                    &mut state,
                                    Msg::RunbookFinished(Err("runbooks cannot run here".into())),
                                );
                            }
                        },
                    }
                }
            }
        }
    }
}

/// Keyboard (and resize) events from the terminal, as messages. Never touches state.
pub async fn forward_terminal_events(keymap: Keymap, tx: mpsc::Sender<Msg>) {
    let mut events = EventStream::new();
    while let Some(event) = events.next().await {
        let msg = match event {
            Ok(Event::Key(key)) if key.kind != KeyEventKind::Release => match key_name(&key) {
                Some(name) => Msg::Key {
                    action: keymap.action_for(&name),
                    key: name,
                },
                None => continue,
            },
            Ok(Event::Resize(_, _)) => Msg::Tick(SystemTime::now()),
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

/// A key event in the keymap's notation ("q", "ctrl-c", "pagedown", "backtab").
pub fn key_name(key: &KeyEvent) -> Option<String> {
    let base = match key.code {
        KeyCode::Char(' ') => "space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        KeyCode::Delete => "delete".into(),
        KeyCode::Insert => "insert".into(),
        KeyCode::F(n) => format!("f{n}"),
        _ => return None,
    };
    let mut name = String::new();
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        name.push_str("ctrl-");
    }
    if key.modifiers.contains(KeyModifiers::ALT) {
        name.push_str("alt-");
    }
    name.push_str(&base);
    Some(name)
}
