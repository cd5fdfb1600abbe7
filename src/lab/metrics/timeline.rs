//! When each fault was in force. Series are a pure function of (seed, time, faults at
//! that time), so a range query shows the healthy past, the moment a fault began and,
//! for 30-day windows, its lasting dent.

use crate::lab::topology::Faults;

/// Fault sets and the instant (Unix ms) each took effect, oldest first. The first entry
/// is always "healthy since forever".
#[derive(Debug, Clone)]
pub struct Timeline {
    changes: Vec<(i64, Faults)>,
}

/// Older changes are folded away past this many, so a long demo cannot grow memory.
const MAX_CHANGES: usize = 256;

impl Timeline {
    /// Healthy since forever.
    pub fn healthy() -> Timeline {
        Timeline {
            changes: vec![(i64::MIN, Faults::default())],
        }
    }

    /// `faults` in force from `at` on (a change at or before the last one replaces it).
    pub fn record(&mut self, at: i64, faults: Faults) {
        while self.changes.len() > 1 && self.changes.last().is_some_and(|(t, _)| *t >= at) {
            self.changes.pop();
        }
        if self.changes.last().is_some_and(|(_, f)| *f == faults) {
            return;
        }
        self.changes.push((at, faults));
        if self.changes.len() > MAX_CHANGES {
            self.changes.remove(1);
        }
    }

    /// The faults in force at `t`.
    pub fn at(&self, t: i64) -> &Faults {
        let i = self.changes.partition_point(|(since, _)| *since <= t);
        &self.changes[i.saturating_sub(1)].1
    }

    /// When `holds` last became true, if it holds at `t`.
    pub fn since(&self, t: i64, holds: impl Fn(&Faults) -> bool) -> Option<i64> {
        let current = self.changes.partition_point(|(since, _)| *since <= t);
        let mut onset = None;
        for (since, faults) in self.changes[..current].iter().rev() {
            if !holds(faults) {
                break;
            }
            onset = Some(*since);
        }
        onset
    }

    /// Milliseconds within `(t - window, t]` during which `holds` was true.
    pub fn duration_within(&self, t: i64, window: i64, holds: impl Fn(&Faults) -> bool) -> i64 {
        let from = t.saturating_sub(window);
        let mut total = 0;
        for (i, (since, faults)) in self.changes.iter().enumerate() {
            let until = self
                .changes
                .get(i + 1)
                .map_or(t, |(next, _)| (*next).min(t));
            let start = (*since).max(from);
            if holds(faults) && until > start {
                total += until - start;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canary() -> Faults {
        Faults {
            canary_bad: true,
            ..Faults::default()
        }
    }

    #[test]
    fn faults_apply_from_their_instant_and_durations_add_up() {
        let mut t = Timeline::healthy();
        t.record(1_000, canary());
        t.record(5_000, Faults::default());
        assert!(!t.at(999).canary_bad);
        assert!(t.at(1_000).canary_bad);
        assert!(!t.at(5_000).canary_bad);
        assert_eq!(t.since(3_000, |f| f.canary_bad), Some(1_000));
        assert_eq!(t.since(6_000, |f| f.canary_bad), None);
        assert_eq!(t.duration_within(10_000, 100_000, |f| f.canary_bad), 4_000);
        assert_eq!(t.duration_within(10_000, 7_000, |f| f.canary_bad), 2_000);
    }
}
