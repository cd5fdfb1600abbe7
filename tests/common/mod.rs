//! Shared test helpers: fixtures for the etcd model, buffer inspection, real binaries.
#![allow(dead_code)]

pub mod haproxy;
pub mod lab_process;
pub mod nginx;
pub mod prometheus;
pub mod tmux;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kha::model::etcd::{
    EtcdAlarm, EtcdObservation, EtcdSettings, HealthProbe, MemberObservation, MemberStatus,
};
use kha::model::{EtcdPaneState, Msg, State, update};
use ratatui::buffer::Buffer;
use ratatui::style::Color;

pub const T0: SystemTime = SystemTime::UNIX_EPOCH;

pub fn member(name: &str, id: u64, healthy: bool, leader: u64) -> MemberObservation {
    MemberObservation {
        name: name.into(),
        id,
        endpoint: format!("http://127.0.0.1:{}", 2378 + id),
        peer_urls: vec![format!("http://127.0.0.1:{}", 2478 + id)],
        is_learner: false,
        status: healthy.then(|| MemberStatus {
            leader,
            raft_term: 4,
            raft_index: 1200 + id,
            raft_applied_index: 1200 + id,
            db_size_bytes: 24 << 20,
            db_size_in_use_bytes: 12 << 20,
            version: "3.5.16".into(),
        }),
        health: Some(HealthProbe {
            healthy,
            latency: Duration::from_millis(2),
        }),
        errors: if healthy {
            vec![]
        } else {
            vec!["connect: Connection refused (os error 111)".into()]
        },
    }
}

/// The four states the issue names.
pub enum Scenario {
    Healthy,
    OneDown,
    QuorumLost,
    Alarm,
}

pub fn observation(s: Scenario) -> EtcdObservation {
    let (a, b, c, alarms) = match s {
        Scenario::Healthy => (true, true, true, vec![]),
        Scenario::OneDown => (false, true, true, vec![]),
        Scenario::QuorumLost => (false, false, true, vec![]),
        Scenario::Alarm => (
            true,
            true,
            true,
            vec![EtcdAlarm {
                member_id: 2,
                member: "etcd-b".into(),
                alarm: "NOSPACE".into(),
            }],
        ),
    };
    let leader = if matches!((a, b, c), (false, false, _)) {
        0
    } else {
        2
    };
    EtcdObservation {
        observed_at: T0,
        members: vec![
            member("etcd-a", 1, a, leader),
            member("etcd-b", 2, b, leader),
            member("etcd-c", 3, c, leader),
        ],
        alarms,
        member_list_error: None,
    }
}

pub fn state_with(obs: Option<EtcdObservation>) -> State {
    let endpoints = vec![
        "http://127.0.0.1:2379".into(),
        "http://127.0.0.1:2380".into(),
        "http://127.0.0.1:2381".into(),
    ];
    let pane = EtcdPaneState::new(endpoints, EtcdSettings::default(), Duration::from_secs(5));
    let mut state = State::new("prod-eu", pane, T0 + Duration::from_secs(1));
    if let Some(o) = obs {
        update(&mut state, Msg::Etcd(o));
    }
    state
}

/// The buffer as text, one String per row.
pub fn rows(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

pub fn text(buf: &Buffer) -> String {
    rows(buf).join("\n")
}

/// Position of the first occurrence of `needle` on screen (column counted in cells).
pub fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let area = buf.area;
    for y in 0..area.height {
        let cells: Vec<String> = (0..area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        for x in 0..cells.len() {
            let mut s = String::new();
            for c in &cells[x..] {
                s.push_str(c);
                if s.len() >= needle.len() {
                    break;
                }
            }
            if s.starts_with(needle) {
                return Some((x as u16, y));
            }
        }
    }
    None
}

/// Foreground colour of the first cell of `needle`; panics with the screen when absent.
pub fn fg_of(buf: &Buffer, needle: &str) -> Color {
    let (x, y) =
        find(buf, needle).unwrap_or_else(|| panic!("{needle:?} not on screen:\n{}", text(buf)));
    buf[(x, y)].fg
}

/// A binary the test needs: fails loudly (never skips) when it is missing.
pub fn require_binary(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run scripts/deps.sh or `apt-get install {package}`")
        })
}
