use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::*;

const STORES: &str = include_str!("../../tests/fixtures/thanos_stores.json");

fn stores() -> Vec<ThanosStore> {
    let doc: Value = serde_json::from_str(STORES).unwrap();
    parse_stores(&doc["data"]).unwrap()
}

fn obs(stores: StoresReading, alerts: Vec<Alert>) -> MetricsObservation {
    MetricsObservation {
        observed_at: SystemTime::UNIX_EPOCH,
        unreachable: None,
        stores,
        retention: Vec::new(),
        build: Fetched::Read {
            value: BuildInfo {
                version: "0.37.2".into(),
                revision: None,
                branch: None,
                go_version: None,
            },
        },
        targets: Fetched::Read {
            value: TargetsSummary {
                total: 10,
                down: Vec::new(),
            },
        },
        alerts: Fetched::Read { value: alerts },
    }
}

fn alert(name: &str, severity: &str, firing: bool) -> Alert {
    Alert {
        name: name.into(),
        severity: severity.into(),
        firing,
        active_at: None,
        summary: Some(format!("{name} summary")),
        labels: BTreeMap::new(),
    }
}

#[test]
fn thanos_stores_fixture_parses_with_types_errors_and_open_ended_max_time() {
    let s = stores();
    let kinds: Vec<(&str, bool)> = s
        .iter()
        .map(|s| (s.component.as_str(), s.healthy()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("rule", true),
            ("sidecar", true),
            ("sidecar", false),
            ("store", true)
        ]
    );
    assert_eq!(s[1].max_time_ms, i64::MAX, "a sidecar reaches up to now");
    assert_eq!(
        s[1].labels_text(),
        "prometheus=monitoring/k8s,prometheus_replica=prometheus-k8s-0"
    );
    assert_eq!(s[3].label_sets.len(), 2);
    assert!(
        s[2].last_error
            .as_deref()
            .unwrap()
            .contains("DeadlineExceeded")
    );
}

#[test]
fn malformed_answers_are_errors_or_skipped_never_panics() {
    assert!(parse_stores(&json!([1, 2])).is_err());
    assert_eq!(
        parse_stores(&json!({"sidecar": [{"lastError": 3}, "x", {"name": "a", "minTime": "no"}]}))
            .unwrap()
            .len(),
        1
    );
    assert!(parse_targets(&json!({})).is_err());
    assert!(parse_alerts(&json!({"alerts": "no"})).is_err());
    assert!(parse_build_info(&json!(null)).is_err());
    let alerts =
        parse_alerts(&json!({"alerts": [{"labels": {}}, {"labels": {"alertname": "X"}}]})).unwrap();
    assert_eq!(alerts.len(), 1, "an alert without a name is left out");
    assert!(!alerts[0].firing);
}

#[test]
fn one_failing_sidecar_is_a_warning_none_healthy_is_critical() {
    let o = obs(StoresReading::Stores { stores: stores() }, vec![]);
    let f = o.findings();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].severity, Health::Warn);
    assert!(f[0].message.contains("10.42.2.31:10901"), "{f:?}");

    let mut all_bad = stores();
    for s in &mut all_bad {
        s.last_error = Some("down".into());
    }
    let o = obs(StoresReading::Stores { stores: all_bad }, vec![]);
    assert_eq!(o.findings()[0].severity, Health::Crit);
}

#[test]
fn not_thanos_is_no_finding_and_the_rest_still_counts() {
    let o = obs(
        StoresReading::NotThanos,
        vec![
            alert("Watchdog", "none", true),
            alert("KubeNodeNotReady", "warning", true),
            alert("KubeNodeNotReady", "warning", true),
            alert("etcdMembersDown", "critical", false),
        ],
    );
    let f = o.findings();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].severity, Health::Warn);
    assert_eq!(
        f[0].message,
        "alert KubeNodeNotReady firing (warning) x2: KubeNodeNotReady summary"
    );
    let o = obs(
        StoresReading::NotThanos,
        vec![alert("etcdMembersDown", "critical", true)],
    );
    assert_eq!(o.findings()[0].severity, Health::Crit);
    assert_eq!(o.firing()[0].name, "etcdMembersDown");
}

#[test]
fn retention_that_falls_short_names_the_resolution() {
    let mut o = obs(StoresReading::Stores { stores: vec![] }, vec![]);
    o.stores = StoresReading::Stores {
        stores: stores().into_iter().filter(|s| s.healthy()).collect(),
    };
    o.retention = vec![
        RetentionCheck {
            resolution: Resolution::Raw,
            expected_secs: 14 * DAY,
            reach: Reach::Reaches,
        },
        RetentionCheck {
            resolution: Resolution::FiveMinutes,
            expected_secs: 180 * DAY,
            reach: Reach::FallsShort,
        },
        RetentionCheck {
            resolution: Resolution::OneHour,
            expected_secs: 0,
            reach: Reach::NotChecked,
        },
    ];
    let f = o.findings();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0].message,
        "5m data do not reach back 180d as the retention promises"
    );
}

#[test]
fn unreachable_is_unknown_and_stale_good_news_is_unknown() {
    let mut o = obs(StoresReading::NotThanos, vec![]);
    o.unreachable = Some("connection refused".into());
    assert_eq!(o.findings()[0].severity, Health::Unknown);
    let mut pane = MetricsPaneState::new(
        Some("http://p".into()),
        RetentionSettings::default(),
        Duration::from_secs(60),
    );
    assert_eq!(pane.health(SystemTime::UNIX_EPOCH), Health::Unknown);
    pane.last = Some(obs(StoresReading::NotThanos, vec![]));
    assert_eq!(pane.health(SystemTime::UNIX_EPOCH), Health::Ok);
    let later = SystemTime::UNIX_EPOCH + Duration::from_secs(600);
    assert_eq!(pane.health(later), Health::Unknown);
}

#[test]
fn durations_parse_like_the_flags() {
    assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * DAY)));
    assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * DAY)));
    assert_eq!(parse_duration("36h"), Ok(Duration::from_secs(36 * 3600)));
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert!(parse_duration("14").is_err());
    assert!(parse_duration("d").is_err());
    assert!(parse_duration("3x").is_err());
    assert!(parse_duration("99999999999999999999y").is_err());
    assert_eq!(duration_text(Duration::from_secs(180 * DAY)), "180d");
    assert_eq!(duration_text(Duration::from_secs(90 * 60)), "90m");
}
