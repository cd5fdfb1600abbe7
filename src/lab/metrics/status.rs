//! What the lab's Thanos Query says about itself: alerts (mixin rule names, states and
//! `for` durations), Thanos stores, build information.
//!
//! Alerts from upstream mixins: `KubeNodeNotReady`, `TargetDown` (kubernetes-mixin /
//! kube-prometheus), `etcdMembersDown`, `etcdDatabaseQuotaLowSpace` (etcd mixin),
//! `CephHealthWarning`, `CephOSDDownHigh`, `CephOSDDown`, `CephMonDown` (ceph mixin), and kube-prometheus'
//! always-firing `Watchdog`. Custom, because no upstream rule exists: `VeleroBackupStale`,
//! `CanaryErrorRateHigh`, `GPUTemperatureHigh`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::clock::{DAY, HOUR, MINUTE, SECOND, rfc3339};
use super::promql::Labels;
use super::series::cluster::{ETCD_QUOTA_BYTES, canary_error_rate, etcd_db_size};
use super::series::storage::{backup_age, osds_down};
use super::series::{At, gpu, plain_labels, pod_ip, scrape};

/// One alert as `/api/v1/alerts` lists it.
#[derive(Debug, Clone)]
pub struct ActiveAlert {
    pub labels: Labels,
    pub annotations: Labels,
    pub firing: bool,
    /// Unix ms when the alert became active (pending).
    pub active_at: i64,
    pub value: f64,
}

struct Rule<'a> {
    name: &'a str,
    severity: &'a str,
    hold: i64,
    summary: &'a str,
}

impl Rule<'_> {
    fn alert(
        &self,
        at: &At,
        onset: i64,
        labels: &[(&str, &str)],
        description: String,
        value: f64,
    ) -> ActiveAlert {
        let mut all = plain_labels(labels);
        all.insert("alertname".into(), self.name.into());
        all.insert("severity".into(), self.severity.into());
        ActiveAlert {
            labels: all,
            annotations: plain_labels(&[("description", &description), ("summary", self.summary)]),
            firing: at.t - onset >= self.hold,
            active_at: onset,
            value,
        }
    }
}

/// Every alert pending or firing at `at`.
pub fn alerts(at: &At) -> Vec<ActiveAlert> {
    let topology = at.topology();
    let mut out = vec![
        Rule {
            name: "Watchdog",
            severity: "none",
            hold: 0,
            summary: "An alert that should always be firing to certify that Alertmanager is working properly.",
        }
        .alert(
            at,
            at.model.started - 7 * DAY,
            &[],
            "This is an alert meant to ensure that the entire alerting pipeline is functional.".into(),
            1.0,
        ),
    ];
    if let Some(zone) = topology.zones.iter().find(|z| at.zone_down(z))
        && let Some(onset) = at.timeline.since(at.t, |f| f.zone_is_down(zone))
    {
        zone_alerts(at, zone, onset, &mut out);
    }
    let down = osds_down(topology, at.faults);
    if let Some(onset) = at
        .timeline
        .since(at.t, |f| !osds_down(topology, f).is_empty())
    {
        ceph_alerts(at, &down, onset, &mut out);
    }
    if let Some(onset) = at.timeline.since(at.t, |f| f.etcd_nospace) {
        let rule = Rule {
            name: "etcdDatabaseQuotaLowSpace",
            severity: "critical",
            hold: 10 * MINUTE,
            summary: "etcd cluster database is running full.",
        };
        for cp in topology
            .control_plane
            .iter()
            .filter(|cp| !at.zone_down(&cp.zone))
        {
            let instance = format!("{}:2381", cp.ip);
            let percent = etcd_db_size(at, &cp.etcd_member) / ETCD_QUOTA_BYTES * 100.0;
            out.push(rule.alert(
                at,
                onset,
                &[("instance", &instance), ("job", "kube-etcd")],
                format!("etcd cluster \"kube-etcd\": database size exceeds the defined quota on etcd instance {instance}, please defrag or increase the quota as the writes to etcd will be disabled when it is full."),
                percent,
            ));
        }
    }
    if let Some(onset) = at.timeline.since(at.t, |f| f.canary_bad) {
        let rollout = &topology.rollout;
        let canary_service = format!("{}-canary", rollout.service);
        let rate = canary_error_rate(at)
            .iter()
            .find(|s| s.labels.get("destination_service_name") == Some(&canary_service))
            .map_or(0.0, |s| s.value);
        out.push(
            Rule {
                name: "CanaryErrorRateHigh",
                severity: "warning",
                hold: 2 * MINUTE,
                summary: "A canary's 5xx ratio is above 5 %.",
            }
            .alert(
                at,
                onset,
                &[
                    ("namespace", &rollout.namespace),
                    ("rollout", &rollout.name),
                    ("service", &canary_service),
                ],
                format!(
                    "{:.1}% of requests to {}/{canary_service} fail; the rollout's analysis will abort it.",
                    rate * 100.0,
                    rollout.namespace,
                ),
                rate,
            ),
        );
    }
    if let Some(onset) = at.timeline.since(at.t, |f| f.backup_stale) {
        let rule = Rule {
            name: "VeleroBackupStale",
            severity: "warning",
            hold: 15 * MINUTE,
            summary: "The last successful backup is older than 26 hours.",
        };
        for sample in backup_age(at) {
            let schedule = sample.labels.get("schedule").cloned().unwrap_or_default();
            out.push(rule.alert(
                at,
                onset,
                &[
                    ("namespace", &topology.velero.namespace),
                    ("schedule", &schedule),
                ],
                format!(
                    "Schedule {schedule} last succeeded {:.1} hours ago.",
                    sample.value / 3600.0
                ),
                sample.value,
            ));
        }
    }
    if let Some(onset) = at.timeline.since(at.t, |f| f.gpu_hot) {
        gpu_alerts(at, onset, &mut out);
    }
    out
}

fn zone_alerts(at: &At, zone: &str, onset: i64, out: &mut Vec<ActiveAlert>) {
    let topology = at.topology();
    let not_ready = Rule {
        name: "KubeNodeNotReady",
        severity: "warning",
        hold: 15 * MINUTE,
        summary: "Node is not ready.",
    };
    let nodes = topology
        .control_plane
        .iter()
        .map(|n| (&n.name, &n.zone))
        .chain(topology.workers.iter().map(|n| (&n.name, &n.zone)))
        .chain(topology.gpu_nodes.iter().map(|n| (&n.name, &n.zone)));
    for (node, _) in nodes.filter(|(_, z)| z.as_str() == zone) {
        out.push(not_ready.alert(
            at,
            onset,
            &[
                ("condition", "Ready"),
                ("job", "kube-state-metrics"),
                ("node", node),
                ("status", "true"),
            ],
            format!("{node} has been unready for more than 15 minutes."),
            0.0,
        ));
    }
    let members_down = topology
        .control_plane
        .iter()
        .filter(|cp| cp.zone == zone)
        .count();
    if members_down > 0 {
        out.push(
            Rule {
                name: "etcdMembersDown",
                severity: "warning",
                hold: 20 * MINUTE,
                summary: "etcd cluster members are down.",
            }
            .alert(
                at,
                onset,
                &[("job", "kube-etcd")],
                format!("etcd cluster \"kube-etcd\": members are down ({members_down})."),
                members_down as f64,
            ),
        );
    }
    let mons_lost = topology
        .ceph
        .mons
        .iter()
        .enumerate()
        .filter(|(i, _)| topology.zones.get(*i).is_some_and(|z| z == zone))
        .map(|(_, mon)| format!(" - mon.{mon}"))
        .collect::<Vec<_>>();
    if !mons_lost.is_empty() {
        out.push(
            Rule {
                name: "CephMonDown",
                severity: "warning",
                hold: 30 * SECOND,
                summary: "One or more monitors down",
            }
            .alert(
                at,
                onset,
                &[("type", "ceph_default")],
                format!(
                    "You have {} monitor down. Quorum is still intact, but the loss of an additional monitor will make your cluster inoperable. The following monitors are down:{}",
                    mons_lost.len(),
                    mons_lost.concat()
                ),
                mons_lost.len() as f64,
            ),
        );
    }
    // kube-prometheus' TargetDown: more than 10 % of a job's targets down.
    let mut jobs: BTreeMap<(String, String, String), (usize, usize)> = BTreeMap::new();
    for target in scrape::targets(at) {
        let get = |k: &str| target.labels.get(k).cloned().unwrap_or_default();
        let entry = jobs
            .entry((get("job"), get("namespace"), get("service")))
            .or_default();
        entry.0 += usize::from(!target.up);
        entry.1 += 1;
    }
    let target_down = Rule {
        name: "TargetDown",
        severity: "warning",
        hold: 10 * MINUTE,
        summary: "One or more targets are unreachable.",
    };
    for ((job, namespace, service), (down, total)) in jobs {
        let percent = 100.0 * down as f64 / total as f64;
        if percent > 10.0 {
            let mut labels = vec![("job", job.as_str())];
            if !namespace.is_empty() {
                labels.push(("namespace", &namespace));
            }
            if !service.is_empty() {
                labels.push(("service", &service));
            }
            out.push(target_down.alert(
                at,
                onset,
                &labels,
                format!(
                    "{}% of the {job}/{service} targets in {namespace} namespace are down.",
                    significant(percent, 4)
                ),
                percent,
            ));
        }
    }
}

fn ceph_alerts(at: &At, down: &[u32], onset: i64, out: &mut Vec<ActiveAlert>) {
    let total = at.topology().ceph.osds.max(1);
    let list: String = down.iter().map(|osd| format!(" - osd.{osd}")).collect();
    let warn = [("type", "ceph_default")];
    out.push(
        Rule {
            name: "CephHealthWarning",
            severity: "warning",
            hold: 15 * MINUTE,
            summary: "Ceph is in the WARNING state",
        }
        .alert(
            at,
            onset,
            &warn,
            "The cluster state has been HEALTH_WARN for more than 15 minutes. Please check 'ceph health detail' for more information.".into(),
            1.0,
        ),
    );
    let percent = 100.0 * down.len() as f64 / f64::from(total);
    if percent >= 10.0 {
        out.push(
            Rule {
                name: "CephOSDDownHigh",
                severity: "critical",
                hold: 0,
                summary: "More than 10% of OSDs are down",
            }
            .alert(
                at,
                onset,
                &[("oid", "1.3.6.1.4.1.50495.1.2.1.4.1"), ("type", "ceph_default")],
                format!(
                    "{}% or {} of {total} OSDs are down (>= 10%). The following OSDs are down:{list}",
                    significant(percent, 4),
                    down.len()
                ),
                percent,
            ),
        );
    }
    out.push(
        Rule {
            name: "CephOSDDown",
            severity: "warning",
            hold: 5 * MINUTE,
            summary: "An OSD has been marked down",
        }
        .alert(
            at,
            onset,
            &[
                ("oid", "1.3.6.1.4.1.50495.1.2.1.4.2"),
                ("type", "ceph_default"),
            ],
            format!(
                "{} OSD(s) down for over 5mins. The following OSDs are down:{list}",
                down.len()
            ),
            1.0,
        ),
    );
}

fn gpu_alerts(at: &At, onset: i64, out: &mut Vec<ActiveAlert>) {
    let rule = Rule {
        name: "GPUTemperatureHigh",
        severity: "warning",
        hold: 5 * MINUTE,
        summary: "GPUs are running hotter than 90 °C.",
    };
    let mut hottest: BTreeMap<String, f64> = BTreeMap::new();
    for sample in gpu::family(at, "DCGM_FI_DEV_GPU_TEMP").unwrap_or_default() {
        if let Some(host) = sample.labels.get("Hostname") {
            let max = hottest.entry(host.clone()).or_insert(f64::MIN);
            *max = max.max(sample.value);
        }
    }
    for (host, temp) in hottest.into_iter().filter(|(_, t)| *t >= 90.0) {
        out.push(rule.alert(
            at,
            onset,
            &[("Hostname", &host)],
            format!("The hottest GPU on {host} is at {temp} °C."),
            temp,
        ));
    }
}

/// `printf "%.Ng"`-style rounding for annotation text.
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let decimals = (digits - 1 - value.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// One Thanos store endpoint as `/api/v1/stores` reports it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    pub name: String,
    pub last_check: String,
    pub last_error: Option<String>,
    pub label_sets: Vec<Labels>,
    pub min_time: i64,
    pub max_time: i64,
}

/// Thanos Query's `/api/v1/stores` data: endpoints keyed by component type. A sidecar per
/// Prometheus replica (in the first and last zone), a store gateway holding months of
/// blocks, a ruler. An endpoint in a lost zone keeps its last metadata and gets a
/// `lastError`.
pub fn stores(at: &At) -> BTreeMap<&'static str, Vec<StoreStatus>> {
    let zones = &at.topology().zones;
    let last = zones.len().saturating_sub(1);
    let block_floor = |t: i64| t.div_euclid(2 * HOUR) * 2 * HOUR;
    let endpoint = |zone_index: usize, host: u32, label_sets: Vec<Labels>, min_time, max_time| {
        let name = format!("{}:10901", pod_ip(zone_index, host));
        let lost = zones.get(zone_index).is_some_and(|z| at.zone_down(z));
        StoreStatus {
            last_check: rfc3339(at.t - (at.stable(&name) * 5000.0) as i64),
            last_error: lost.then(|| {
                format!("fallback fetching info from {name}: rpc error: code = DeadlineExceeded desc = context deadline exceeded")
            }),
            name,
            label_sets,
            min_time,
            max_time,
        }
    };
    let replica = |i: usize| {
        plain_labels(&[
            ("prometheus", "monitoring/k8s"),
            ("prometheus_replica", &format!("prometheus-k8s-{i}")),
        ])
    };
    let recent = block_floor(at.t - 2 * DAY);
    BTreeMap::from([
        (
            "sidecar",
            vec![
                endpoint(0, 30, vec![replica(0)], recent, i64::MAX),
                endpoint(last, 30, vec![replica(1)], recent, i64::MAX),
            ],
        ),
        (
            "store",
            vec![endpoint(
                1.min(last),
                40,
                vec![replica(0), replica(1)],
                block_floor(at.model.started - STORE_REACH),
                block_floor(at.t - 3 * HOUR),
            )],
        ),
        (
            "rule",
            vec![endpoint(
                0,
                50,
                vec![plain_labels(&[("rule_replica", "thanos-ruler-0")])],
                block_floor(at.t - DAY),
                i64::MAX,
            )],
        ),
    ])
}

/// How far back the store gateway's blocks go: past a year, so 1h data keep a year.
const STORE_REACH: i64 = 400 * DAY;
/// Raw blocks the lab's compactor keeps (`--retention.resolution-raw`).
const RAW_REACH: i64 = 15 * DAY;

/// The oldest time (Unix ms) a Thanos query with `max_source_resolution` finds data:
/// raw blocks go back 15 days, 5m and 1h blocks as far as the store gateway's.
pub fn oldest_at_resolution(started: i64, max_source_resolution: &str) -> i64 {
    match max_source_resolution {
        "0" | "0s" | "raw" => started - RAW_REACH,
        _ => (started - STORE_REACH).div_euclid(2 * HOUR) * 2 * HOUR,
    }
}

/// `/api/v1/status/buildinfo` data.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
    pub branch: &'static str,
    pub build_user: &'static str,
    pub build_date: &'static str,
    pub go_version: &'static str,
}

/// The lab poses as Thanos Query.
pub fn build_info() -> BuildInfo {
    BuildInfo {
        version: "0.37.2",
        revision: "ad5d6a1cea1d9e3a3c2f0e6e8b23b8d3f4f6c2d1",
        branch: "HEAD",
        build_user: "root@kha-lab",
        build_date: "20241219-11:06:54",
        go_version: "go1.23.4",
    }
}

#[cfg(test)]
mod tests {
    use super::significant;

    #[test]
    fn significant_digits_like_printf_g() {
        assert_eq!(significant(33.333_333, 4), "33.33");
        assert_eq!(significant(100.0, 4), "100");
        assert_eq!(significant(16.666_666, 4), "16.67");
    }
}
