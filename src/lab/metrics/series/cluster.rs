//! Cluster-level series: API-server latency and availability, kubelet pod start-up, etcd
//! database size, cross-AZ probes, Karpenter scale-up and the canary's mesh error ratio.
//! A lost zone takes its own series away and slows what is left.

use super::{At, Sample, plain_labels, series_labels};
use crate::lab::metrics::clock::DAY;

/// etcd's default backend quota (2 GiB).
pub const ETCD_QUOTA_BYTES: f64 = 2_147_483_648.0;

/// Seconds an ICMP probe to an unreachable target runs before giving up.
const PROBE_TIMEOUT: f64 = 9.5;

fn any_zone_down(at: &At) -> bool {
    at.topology().zones.iter().any(|z| at.zone_down(z))
}

/// P99 per API server, `{instance}`; the lost zone's server has no series.
pub fn apiserver_p99(at: &At) -> Vec<Sample> {
    let degraded = any_zone_down(at);
    at.topology()
        .control_plane
        .iter()
        .filter(|cp| !at.zone_down(&cp.zone))
        .map(|cp| {
            let key = format!("apiserver-p99/{}", cp.name);
            let mut value = if degraded {
                at.between(&key, 0.55, 0.65)
            } else {
                0.12 + 0.10 * at.stable(&key) + at.between(&key, 0.0, 0.03)
            };
            if at.faults.etcd_nospace {
                value += 0.04;
            }
            Sample {
                labels: plain_labels(&[("instance", &format!("{}:6443", cp.ip))]),
                value,
            }
        })
        .collect()
}

/// 30-day availability for `verb` (`all`, `read`, `write`): a lost zone costs 15 % of
/// requests while it lasts, a NOSPACE alarm every write. The dent stays for 30 days.
fn availability(at: &At, verb: &str) -> f64 {
    let window = 30 * DAY;
    let share = |ms: i64| ms as f64 / window as f64;
    let zone_loss = 0.15
        * share(
            at.timeline
                .duration_within(at.t, window, |f| f.zone_down.is_some()),
        );
    let write_loss = share(
        at.timeline
            .duration_within(at.t, window, |f| f.etcd_nospace),
    );
    let read = 0.99996 - zone_loss;
    let write = 0.99993 - zone_loss - write_loss;
    let jitter = at.between(&format!("availability/{verb}"), -2e-6, 2e-6);
    jitter
        + match verb {
            "read" => read,
            "write" => write,
            _ => 0.8 * read + 0.2 * write,
        }
}

/// kubernetes-mixin's `apiserver_request:availability30d{verb}` recording rule.
pub fn availability_rule(at: &At) -> Vec<Sample> {
    ["all", "read", "write"]
        .iter()
        .map(|verb| Sample {
            labels: series_labels("apiserver_request:availability30d", &[("verb", verb)]),
            value: availability(at, verb),
        })
        .collect()
}

/// The availability KPI: the rule's `verb="all"` series, or the raw fallback's `{}`.
pub fn availability_ratio(at: &At, fallback: bool) -> Vec<Sample> {
    let labels = if fallback {
        plain_labels(&[])
    } else {
        series_labels("apiserver_request:availability30d", &[("verb", "all")])
    };
    vec![Sample {
        labels,
        value: availability(at, "all"),
    }]
}

/// Pod start-up P99 over all kubelets, `{}`; rescheduling after a zone loss slows it.
pub fn pod_startup_p99(at: &At) -> Vec<Sample> {
    let value = if any_zone_down(at) {
        at.between("pod-start", 3.6, 4.4)
    } else {
        at.between("pod-start", 2.3, 2.8)
    };
    vec![Sample {
        labels: plain_labels(&[]),
        value,
    }]
}

/// Round trip between two zones when both are up (1.5-3 ms, fixed per pair plus noise).
fn pair_latency(at: &At, source: &str, target: &str) -> f64 {
    let (a, b) = if source < target {
        (source, target)
    } else {
        (target, source)
    };
    let pair = format!("cross-az/{a}/{b}");
    0.0015 + 0.0013 * at.stable(&pair) + at.between(&format!("{pair}/{source}"), 0.0, 0.0002)
}

/// Ordered pairs of distinct zones.
fn zone_pairs<'a>(at: &At<'a>) -> Vec<(&'a str, &'a str)> {
    let zones = &at.topology().zones;
    zones
        .iter()
        .flat_map(|s| {
            zones
                .iter()
                .filter(move |t| *t != s)
                .map(move |t| (s.as_str(), t.as_str()))
        })
        .collect()
}

/// The cross-AZ KPI: `{source_zone, target_zone}` for pairs whose probes succeed.
pub fn cross_az(at: &At) -> Vec<Sample> {
    zone_pairs(at)
        .into_iter()
        .filter(|(s, t)| !at.zone_down(s) && !at.zone_down(t))
        .map(|(s, t)| Sample {
            labels: plain_labels(&[("source_zone", s), ("target_zone", t)]),
            value: pair_latency(at, s, t),
        })
        .collect()
}

/// blackbox-exporter's `probe_duration_seconds` / `probe_success` from each zone's prober
/// to the other zones' control-plane nodes. A lost zone's prober is gone; probes into the
/// lost zone fail after the timeout.
pub fn probes(at: &At, name: &str) -> Vec<Sample> {
    let topology = at.topology();
    zone_pairs(at)
        .into_iter()
        .filter(|(s, _)| !at.zone_down(s))
        .filter_map(|(s, t)| {
            let target = topology.control_plane.iter().find(|cp| cp.zone == t)?;
            let reachable = !at.zone_down(t);
            let value = match (name, reachable) {
                ("probe_success", ok) => f64::from(u8::from(ok)),
                (_, true) => pair_latency(at, s, t),
                (_, false) => PROBE_TIMEOUT + at.between(&format!("probe/{s}/{t}"), 0.0, 0.002),
            };
            Some(Sample {
                labels: series_labels(
                    name,
                    &[
                        ("instance", &target.ip),
                        ("job", "blackbox-cross-az"),
                        ("source_zone", s),
                        ("target_zone", t),
                    ],
                ),
                value,
            })
        })
        .collect()
}

/// Karpenter's provisioning start-up P99, `{}`; replacing a zone's capacity is slower.
pub fn scaling_speed(at: &At) -> Vec<Sample> {
    let value = if any_zone_down(at) {
        at.between("scale-up", 140.0, 170.0)
    } else {
        at.between("scale-up", 70.0, 95.0)
    };
    vec![Sample {
        labels: plain_labels(&[]),
        value,
    }]
}

/// 5xx ratio per destination service: the rollout's canary service (`<service>-canary`,
/// Argo's `canaryService`) at ~0.5 %, 8 % when the canary is bad; the stable service
/// (`<service>`) at ~0.3 % throughout.
pub fn canary_error_rate(at: &At) -> Vec<Sample> {
    let rollout = &at.topology().rollout;
    let canary = if at.faults.canary_bad {
        at.between("canary", 0.075, 0.085)
    } else {
        at.between("canary", 0.004, 0.006)
    };
    let stable = at.between("stable", 0.002, 0.004);
    [
        (format!("{}-canary", rollout.service), canary),
        (rollout.service.clone(), stable),
    ]
    .into_iter()
    .map(|(service, value)| Sample {
        labels: plain_labels(&[
            ("destination_service_name", &service),
            ("destination_service_namespace", &rollout.namespace),
        ]),
        value,
    })
    .collect()
}

/// Bytes in member `name`'s backend database: 70-95 MB, over the quota under NOSPACE.
pub fn etcd_db_size(at: &At, member: &str) -> f64 {
    let key = format!("etcd-db/{member}");
    if at.faults.etcd_nospace {
        (ETCD_QUOTA_BYTES + 1_310_720.0 + 4096.0 * (at.stable(&key) * 64.0).floor()).round()
    } else {
        (70.0e6 + 25.0e6 * at.stable(&key) + 4096.0 * (at.noise(&key) * 16.0).floor()).round()
    }
}

/// `etcd_mvcc_db_total_size_in_bytes` and `etcd_server_quota_backend_bytes` per member.
pub fn etcd_db(at: &At, name: &str) -> Vec<Sample> {
    at.topology()
        .control_plane
        .iter()
        .filter(|cp| !at.zone_down(&cp.zone))
        .map(|cp| Sample {
            labels: series_labels(
                name,
                &[
                    ("instance", &format!("{}:2381", cp.ip)),
                    ("job", "kube-etcd"),
                ],
            ),
            value: if name == "etcd_server_quota_backend_bytes" {
                ETCD_QUOTA_BYTES
            } else {
                etcd_db_size(at, &cp.etcd_member)
            },
        })
        .collect()
}
