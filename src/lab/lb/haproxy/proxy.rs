//! The state HAProxy 2.6 keeps for the `kube-apiserver` backend and how it changes: the
//! health-check state machine (`rise`/`fall` on a health counter), the admin states
//! (ready/drain/maint), and the counters the stats show. Pure: callers pass the time.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::check::{CheckOutcome, CheckStatus, LastCheck};

/// `inter 1s fall 3 rise 2`, like a typical HA apiserver config.
pub const RISE: u32 = 2;
pub const FALL: u32 = 3;

/// Turns instants into wall-clock seconds: HAProxy's ages (`lastchg`, `downtime`) are
/// differences of whole seconds of the clock, not rounded durations.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    epoch: Instant,
    epoch_unix_nanos: u128,
}

impl WallClock {
    pub fn starting_at(epoch: Instant) -> WallClock {
        let epoch_unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        WallClock {
            epoch,
            epoch_unix_nanos,
        }
    }

    /// The Unix second `t` falls in.
    pub fn second(&self, t: Instant) -> u64 {
        let nanos = self.epoch_unix_nanos + t.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX)
    }

    /// Whole clock seconds from `from` to `to`.
    pub fn seconds_between(&self, from: Instant, to: Instant) -> u64 {
        self.second(to).saturating_sub(self.second(from))
    }
}

/// What the operator set with `set server ... state` (HAProxy's forced admin flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    Ready,
    Drain,
    Maint,
}

impl AdminState {
    /// `srv_admin_state` in `show servers state` (`SRV_ADMF_FMAINT`, `SRV_ADMF_FDRAIN`).
    pub fn flags(self) -> u32 {
        match self {
            AdminState::Ready => 0,
            AdminState::Maint => 0x01,
            AdminState::Drain => 0x08,
        }
    }
}

/// `SRV_ST_*`: the operational state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpState {
    Stopped = 0,
    Running = 2,
    Stopping = 3,
}

/// One `server` line of the backend.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    /// `sid`/`srv_id`, from 1.
    pub id: u32,
    pub addr: SocketAddr,
    pub op: OpState,
    pub admin: AdminState,
    /// Whether health checks run (`disable health` turns them off).
    pub checks_enabled: bool,
    /// 0..=RISE+FALL-1; UP needs at least RISE.
    pub health: u32,
    pub uweight: u32,
    pub iweight: u32,
    pub last_change: Instant,
    pub last_check: LastCheck,
    pub failed_checks: u64,
    pub down_transitions: u64,
    /// Seconds spent DOWN before the current state.
    pub down_time: u64,
    pub clock: WallClock,
}

impl Server {
    /// Whether the load balancer sends it traffic (`srv_currently_usable`).
    pub fn usable(&self) -> bool {
        self.op == OpState::Running && self.admin == AdminState::Ready && self.uweight > 0
    }

    /// The `status` column (`srv_hlt_st` in stats.c).
    pub fn status(&self) -> String {
        if self.admin == AdminState::Maint {
            return "MAINT".into();
        }
        let full = RISE + FALL - 1;
        match self.op {
            OpState::Running => {
                let going_down = self.checks_enabled && self.health < full;
                let word = if self.admin == AdminState::Drain {
                    "DRAIN"
                } else if !self.checks_enabled {
                    return "no check".into();
                } else {
                    "UP"
                };
                if going_down {
                    format!("{word} {}/{FALL}", (self.health + 1).saturating_sub(RISE))
                } else {
                    word.into()
                }
            }
            OpState::Stopping => {
                if !self.checks_enabled || self.health == full {
                    "NOLB".into()
                } else {
                    format!("NOLB {}/{FALL}", (self.health + 1).saturating_sub(RISE))
                }
            }
            OpState::Stopped => {
                if self.checks_enabled && self.health > 0 {
                    format!("DOWN {}/{}", self.health, RISE)
                } else {
                    "DOWN".into()
                }
            }
        }
    }

    /// Seconds since the last state change (`lastchg`).
    pub fn seconds_since_change(&self, now: Instant) -> u64 {
        self.clock.seconds_between(self.last_change, now)
    }

    /// Total seconds DOWN (`downtime`), counting the current DOWN period.
    pub fn downtime(&self, now: Instant) -> u64 {
        if self.op == OpState::Stopped {
            self.down_time + self.seconds_since_change(now)
        } else {
            self.down_time
        }
    }

    /// `srv_check_state`: CONFIGURED | ENABLED (| PAUSED in maintenance).
    pub fn check_state_flags(&self) -> u32 {
        let mut flags = 0x02;
        if self.checks_enabled {
            flags |= 0x04;
        }
        if self.admin == AdminState::Maint {
            flags |= 0x08;
        }
        flags
    }
}

/// The `kube-apiserver` backend and its aggregate counters.
#[derive(Debug, Clone)]
pub struct Backend {
    pub name: String,
    pub servers: Vec<Server>,
    pub last_change: Instant,
    pub down_transitions: u64,
    pub down_time: u64,
    /// HTTP/1 counters of the health checks (the `h1_*` columns of the BACKEND row).
    pub check_connections: u64,
    pub check_bytes_in: u64,
    pub check_bytes_out: u64,
    pub clock: WallClock,
}

/// A health state forced with `set server ... health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthForce {
    Up,
    Stopping,
    Down,
}

impl Backend {
    pub fn new(name: &str, servers: Vec<(String, SocketAddr)>, now: Instant) -> Backend {
        let clock = WallClock::starting_at(now);
        let servers = servers
            .into_iter()
            .enumerate()
            .map(|(i, (name, addr))| Server {
                name,
                id: i as u32 + 1,
                addr,
                op: OpState::Running,
                admin: AdminState::Ready,
                checks_enabled: true,
                // Servers start UP at the lowest healthy level: one failure takes them down.
                health: RISE,
                uweight: 1,
                iweight: 1,
                last_change: now,
                last_check: LastCheck {
                    status: CheckStatus::Ini,
                    code: None,
                    duration_ms: None,
                    info: String::new(),
                    result: 0,
                },
                failed_checks: 0,
                down_transitions: 0,
                down_time: 0,
                clock,
            })
            .collect();
        Backend {
            name: name.to_string(),
            servers,
            last_change: now,
            down_transitions: 0,
            down_time: 0,
            check_connections: 0,
            check_bytes_in: 0,
            check_bytes_out: 0,
            clock,
        }
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    /// The backend is UP while some server takes traffic.
    pub fn is_up(&self) -> bool {
        self.total_weight() > 0
    }

    /// Sum of the weights of the servers that take traffic.
    pub fn total_weight(&self) -> u32 {
        self.servers
            .iter()
            .filter(|s| s.usable())
            .map(|s| s.uweight)
            .sum()
    }

    /// Seconds since the backend last went UP or DOWN.
    pub fn seconds_since_change(&self, now: Instant) -> u64 {
        self.clock.seconds_between(self.last_change, now)
    }

    pub fn active_servers(&self) -> usize {
        self.servers.iter().filter(|s| s.usable()).count()
    }

    pub fn downtime(&self, now: Instant) -> u64 {
        if self.is_up() {
            self.down_time
        } else {
            self.down_time + self.seconds_since_change(now)
        }
    }

    /// Applies one check result to server `idx` (ignored in maintenance or with checks
    /// disabled, when HAProxy does not run them).
    pub fn record_check(&mut self, idx: usize, outcome: &CheckOutcome, now: Instant) {
        let was_up = self.is_up();
        let Some(s) = self.servers.get_mut(idx) else {
            return;
        };
        if s.admin == AdminState::Maint || !s.checks_enabled {
            return;
        }
        s.last_check = outcome.to_last_check();
        let full = RISE + FALL - 1;
        if s.last_check.result == 3 {
            if s.health < full {
                s.health += 1;
                if s.health >= RISE {
                    s.health = full;
                }
            }
            if s.health >= RISE && s.op != OpState::Running {
                if s.op == OpState::Stopped {
                    s.down_time += s.seconds_since_change(now);
                    s.last_change = now;
                }
                s.op = OpState::Running;
            }
        } else {
            if s.health > 0 {
                s.failed_checks += 1;
                s.health -= 1;
                if s.health < RISE {
                    s.health = 0;
                }
            }
            if s.health == 0 && s.op != OpState::Stopped {
                s.op = OpState::Stopped;
                s.down_transitions += 1;
                s.last_change = now;
            }
        }
        self.note_backend_transition(was_up, now);
    }

    /// `set server <b>/<s> state ready|drain|maint` (also `enable`/`disable server`).
    pub fn set_admin(&mut self, idx: usize, admin: AdminState, now: Instant) {
        let was_up = self.is_up();
        let Some(s) = self.servers.get_mut(idx) else {
            return;
        };
        if s.admin == admin {
            return;
        }
        let leaving_maint = s.admin == AdminState::Maint;
        s.admin = admin;
        s.last_change = now;
        if admin == AdminState::Maint {
            if s.op != OpState::Stopped {
                s.op = OpState::Stopped;
                s.down_transitions += 1;
            }
            s.health = 0;
        } else if leaving_maint {
            // Back from maintenance: up at the lowest healthy level, checked at once.
            if s.checks_enabled {
                s.health = RISE;
            }
            s.op = OpState::Running;
        }
        self.note_backend_transition(was_up, now);
    }

    /// `set server <b>/<s> weight <w>`.
    pub fn set_weight(&mut self, idx: usize, weight: u32, now: Instant) {
        let was_up = self.is_up();
        if let Some(s) = self.servers.get_mut(idx) {
            s.uweight = weight;
        }
        self.note_backend_transition(was_up, now);
    }

    /// `set server <b>/<s> health up|stopping|down`.
    pub fn force_health(&mut self, idx: usize, force: HealthForce, now: Instant) {
        let was_up = self.is_up();
        let Some(s) = self.servers.get_mut(idx) else {
            return;
        };
        let full = RISE + FALL - 1;
        match force {
            HealthForce::Up => {
                s.health = full;
                if s.op == OpState::Stopped {
                    s.down_time += s.seconds_since_change(now);
                    s.last_change = now;
                }
                s.op = OpState::Running;
            }
            HealthForce::Stopping => {
                s.health = full;
                if s.op != OpState::Stopping {
                    s.op = OpState::Stopping;
                    s.last_change = now;
                }
            }
            HealthForce::Down => {
                s.health = 0;
                if s.op != OpState::Stopped {
                    s.op = OpState::Stopped;
                    s.down_transitions += 1;
                    s.last_change = now;
                }
            }
        }
        self.note_backend_transition(was_up, now);
    }

    /// `enable health` / `disable health`.
    pub fn set_checks_enabled(&mut self, idx: usize, enabled: bool) {
        if let Some(s) = self.servers.get_mut(idx) {
            s.checks_enabled = enabled;
        }
    }

    /// Counts a health-check connection attempt and its bytes in the BACKEND row's
    /// HTTP/1 counters (HAProxy counts refused connections too).
    pub fn count_check_traffic(&mut self, bytes_out: u64, bytes_in: u64) {
        self.check_connections += 1;
        self.check_bytes_out += bytes_out;
        self.check_bytes_in += bytes_in;
    }

    fn note_backend_transition(&mut self, was_up: bool, now: Instant) {
        let up = self.is_up();
        if was_up && !up {
            self.down_transitions += 1;
            self.last_change = now;
        } else if !was_up && up {
            self.down_time += self.seconds_since_change(now);
            self.last_change = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn backend(now: Instant) -> Backend {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        Backend::new(
            "kube-apiserver",
            vec![("cp-a".into(), addr), ("cp-b".into(), addr)],
            now,
        )
    }

    fn ok() -> CheckOutcome {
        CheckOutcome::Passed {
            code: 200,
            duration_ms: 1,
        }
    }

    fn fail() -> CheckOutcome {
        CheckOutcome::WrongStatus {
            code: 500,
            reason: "Internal Server Error".into(),
            duration_ms: 1,
        }
    }

    #[test]
    fn a_failing_server_goes_down_after_fall_checks_and_up_after_rise() {
        let t0 = Instant::now();
        let mut b = backend(t0);
        b.record_check(0, &ok(), t0);
        assert_eq!(b.servers[0].status(), "UP");
        let mut seen = Vec::new();
        for i in 1..=3 {
            b.record_check(0, &fail(), t0 + Duration::from_secs(i));
            seen.push(b.servers[0].status());
        }
        assert_eq!(seen, ["UP 2/3", "UP 1/3", "DOWN"]);
        assert_eq!(b.servers[0].failed_checks, 3);
        assert_eq!(b.servers[0].down_transitions, 1);
        let mut back = Vec::new();
        for i in 4..=5 {
            b.record_check(0, &ok(), t0 + Duration::from_secs(i));
            back.push(b.servers[0].status());
        }
        assert_eq!(back, ["DOWN 1/2", "UP"]);
        assert_eq!(b.servers[0].down_time, 2);
    }

    #[test]
    fn a_fresh_server_goes_down_on_its_first_failure() {
        let t0 = Instant::now();
        let mut b = backend(t0);
        assert_eq!(b.servers[0].status(), "UP 1/3");
        b.record_check(0, &fail(), t0);
        assert_eq!(b.servers[0].status(), "DOWN");
    }

    #[test]
    fn drain_and_maint_take_servers_out_and_the_backend_follows() {
        let t0 = Instant::now();
        let mut b = backend(t0);
        b.record_check(0, &ok(), t0);
        b.record_check(1, &ok(), t0);
        b.set_admin(0, AdminState::Drain, t0);
        assert_eq!(b.servers[0].status(), "DRAIN");
        assert_eq!((b.total_weight(), b.active_servers()), (1, 1));
        b.set_admin(1, AdminState::Maint, t0);
        assert_eq!(b.servers[1].status(), "MAINT");
        assert!(!b.is_up());
        assert_eq!(b.down_transitions, 1);
        b.set_admin(1, AdminState::Ready, t0);
        assert_eq!(b.servers[1].status(), "UP 1/3");
        assert!(b.is_up());
    }

    #[test]
    fn checks_in_maintenance_are_ignored_and_disabled_checks_show_no_check() {
        let t0 = Instant::now();
        let mut b = backend(t0);
        b.set_admin(0, AdminState::Maint, t0);
        b.record_check(0, &ok(), t0);
        assert_eq!(b.servers[0].status(), "MAINT");
        b.record_check(1, &ok(), t0);
        b.set_checks_enabled(1, false);
        assert_eq!(b.servers[1].status(), "no check");
        b.force_health(1, HealthForce::Stopping, t0);
        assert_eq!(b.servers[1].status(), "NOLB");
    }
}
