//! Storage series: the ceph-mgr prometheus module (`ceph_health_status`, `ceph_osd_up`,
//! `ceph_osd_in` per `ceph_daemon="osd.N"`) and Velero's backup metrics per schedule.
//!
//! OSD `i` runs in zone `i mod zones`. `ceph_degraded` takes one OSD down; Ceph marks it
//! out after `mon_osd_down_out_interval` (600 s). A lost zone takes its OSDs down but
//! leaves them in: `mon_osd_down_out_subtree_limit` keeps Ceph from marking a whole
//! failure domain out.

use super::{At, Sample, pod_ip, series_labels};
use crate::lab::metrics::clock::{DAY, MINUTE, SECOND};
use crate::lab::topology::{Faults, Topology};

const DOWN_OUT_INTERVAL: i64 = 600 * SECOND;
/// How long the lab's daily backup takes, from the cron time to completion (as the
/// kube view's Backup objects say).
const BACKUP_DURATION: i64 = 11 * MINUTE;
/// Days of failed backups under `backup_stale`.
const STALE_DAYS: i64 = 3;

/// The OSD `ceph_degraded` takes down: osd.1, in the second zone (as the kube view's
/// CephCluster status says).
fn failing_osd(topology: &Topology) -> u32 {
    1.min(topology.ceph.osds.saturating_sub(1))
}

fn osd_zone(topology: &Topology, osd: u32) -> Option<&str> {
    let zones = &topology.zones;
    (!zones.is_empty()).then(|| zones[osd as usize % zones.len()].as_str())
}

/// OSDs that are down under `faults`.
pub fn osds_down(topology: &Topology, faults: &Faults) -> Vec<u32> {
    (0..topology.ceph.osds)
        .filter(|&osd| {
            (faults.ceph_degraded && osd == failing_osd(topology))
                || osd_zone(topology, osd).is_some_and(|z| faults.zone_is_down(z))
        })
        .collect()
}

fn osd_in(at: &At, osd: u32) -> bool {
    let topology = at.topology();
    if osd_zone(topology, osd).is_some_and(|z| at.zone_down(z)) {
        return true;
    }
    let failing = osd == failing_osd(topology);
    let down_for = at.elapsed(|f| f.ceph_degraded).unwrap_or(0);
    !(failing && at.faults.ceph_degraded && down_for >= DOWN_OUT_INTERVAL)
}

/// Where the active ceph-mgr runs (a standby takes over when its zone is lost).
pub fn mgr_instance(at: &At) -> String {
    format!("{}:9283", pod_ip(at.first_up_zone(&[0, 1, 2]), 60))
}

/// `ceph_health_status` (0 OK, 1 WARN) and per-OSD `ceph_osd_up` / `ceph_osd_in`.
pub fn ceph(at: &At, name: &str) -> Vec<Sample> {
    let topology = at.topology();
    let instance = mgr_instance(at);
    let base = [("instance", instance.as_str()), ("job", "rook-ceph-mgr")];
    let down = osds_down(topology, at.faults);
    if name == "ceph_health_status" {
        return vec![Sample {
            labels: series_labels(name, &base),
            value: if down.is_empty() { 0.0 } else { 1.0 },
        }];
    }
    (0..topology.ceph.osds)
        .map(|osd| {
            let daemon = format!("osd.{osd}");
            let mut pairs = base.to_vec();
            pairs.push(("ceph_daemon", &daemon));
            let value = if name == "ceph_osd_up" {
                !down.contains(&osd)
            } else {
                osd_in(at, osd)
            };
            Sample {
                labels: series_labels(name, &pairs),
                value: f64::from(u8::from(value)),
            }
        })
        .collect()
}

/// Hour and minute of a daily cron line (`0 2 * * *`); 02:00 when it is anything else.
fn daily_time(cron: &str) -> (i64, i64) {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    match fields.as_slice() {
        [m, h, ..] => match (m.parse(), h.parse()) {
            (Ok(m), Ok(h)) if (0..60).contains(&m) && (0..24).contains(&h) => (h, m),
            _ => (2, 0),
        },
        _ => (2, 0),
    }
}

/// Unix ms of the last backup of `cron` that completed at or before `t`.
fn last_completion(t: i64, cron: &str) -> i64 {
    let (hour, minute) = daily_time(cron);
    let offset = hour * 60 * MINUTE + minute * MINUTE + BACKUP_DURATION;
    (t - offset).div_euclid(DAY) * DAY + offset
}

/// Unix ms of the last successful backup of `cron` at `at`.
fn last_success(at: &At, cron: &str) -> i64 {
    let stale = if at.faults.backup_stale {
        STALE_DAYS * DAY
    } else {
        0
    };
    last_completion(at.t, cron) - stale
}

fn velero_instance(at: &At) -> String {
    format!("{}:8085", pod_ip(at.first_up_zone(&[1, 0, 2]), 70))
}

/// Velero's per-schedule backup metrics. Counters start 30 days before the lab did.
pub fn velero(at: &At, name: &str) -> Option<Vec<Sample>> {
    let instance = velero_instance(at);
    let origin = at.model.started.div_euclid(DAY) * DAY - 30 * DAY;
    let samples = at
        .topology()
        .velero
        .schedules
        .iter()
        .map(|(schedule, cron)| {
            let completed = (last_completion(at.t, cron) - origin).div_euclid(DAY) + 1;
            let failed = if at.faults.backup_stale {
                STALE_DAYS
            } else {
                0
            };
            let value = match name {
                "velero_backup_last_successful_timestamp" => {
                    (last_success(at, cron) / SECOND) as f64
                }
                "velero_backup_success_total" => (completed - failed).max(0) as f64,
                _ => (1 + failed) as f64,
            };
            Sample {
                labels: series_labels(
                    name,
                    &[
                        ("instance", &instance),
                        ("job", "velero"),
                        ("schedule", schedule),
                    ],
                ),
                value,
            }
        });
    match name {
        "velero_backup_last_successful_timestamp"
        | "velero_backup_success_total"
        | "velero_backup_failure_total" => Some(samples.collect()),
        _ => None,
    }
}

/// `time() - velero_backup_last_successful_timestamp{schedule!=""}`.
pub fn backup_age(at: &At) -> Vec<Sample> {
    velero(at, "velero_backup_last_successful_timestamp")
        .unwrap_or_default()
        .into_iter()
        .map(|mut s| {
            s.labels.remove("__name__");
            s.value = at.seconds() - s.value;
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_complete_daily_after_the_cron_time() {
        // 2024-05-01T01:00:00Z: the last completion is the day before, 02:04:12.
        let t = 1_714_525_200_000;
        let last = last_completion(t, "0 2 * * *");
        assert_eq!(last, 1_714_525_200_000 - 23 * 60 * MINUTE + BACKUP_DURATION);
        assert_eq!(daily_time("30 3 * * *"), (3, 30));
        assert_eq!(daily_time("@daily"), (2, 0));
    }
}
