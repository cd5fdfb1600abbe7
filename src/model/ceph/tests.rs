use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::fields::lab_objects;
use super::*;
use crate::lab::topology::Scenario;

/// 2026-03-10T09:30:00Z
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_773_135_000)
}

fn lab(scenario: Scenario) -> CephView {
    let clusters = lab_objects(scenario, "CephCluster", now());
    let cm: Option<ConfigMap> = lab_objects(scenario, "ConfigMap", now())
        .into_iter()
        .find(|o| o.metadata.name.as_deref() == Some("rook-ceph-mon-endpoints"))
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|v| serde_json::from_value(v).ok());
    assert!(cm.is_some(), "the lab has the mon-endpoints ConfigMap");
    derive(&clusters, cm.as_ref(), now())
}

fn object(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("a DynamicObject")
}

#[test]
fn healthy_lab_is_ok_with_three_mons_in_quorum() {
    let v = lab(Scenario::Healthy);
    assert_eq!(v.health(), Health::Ok, "{:?}", v.findings);
    let c = &v.clusters[0];
    assert_eq!(c.ceph_health.as_deref(), Some("HEALTH_OK"));
    assert_eq!(c.phase.as_deref(), Some("Ready"));
    assert!(c.checks.is_empty());
    assert_eq!(c.quorum(), Some((3, 3)));
    assert!(
        c.mons
            .iter()
            .all(|m| m.endpoint.ends_with(":6789") && m.node.is_some())
    );
    let cap = c.capacity.expect("capacity");
    assert!((cap.used_ratio() - 0.38).abs() < 0.01);
    assert!(c.last_checked_secs.is_some_and(|s| s < 60));
    assert_eq!(c.conditions[0].kind, "Ready");
    assert!(
        v.summary().starts_with("HEALTH_OK · 38% used · mons 3/3"),
        "{}",
        v.summary()
    );
}

#[test]
fn degraded_lab_reports_each_check_as_a_warning() {
    let v = lab(Scenario::CephDegraded);
    assert_eq!(v.health(), Health::Warn);
    let names: Vec<&str> = v.clusters[0]
        .checks
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        names.contains(&"OSD_DOWN") && names.contains(&"PG_DEGRADED"),
        "{names:?}"
    );
    assert!(
        v.findings
            .iter()
            .any(|f| f.message == "Ceph OSD_DOWN: 1 osds down")
    );
    assert_eq!(v.clusters[0].quorum(), Some((3, 3)));
}

#[test]
fn lost_zone_takes_a_mon_out_of_quorum() {
    let v = lab(Scenario::AzFailure);
    let c = &v.clusters[0];
    assert_eq!(c.quorum(), Some((2, 3)));
    let out: Vec<&CephMon> = c.mons.iter().filter(|m| !m.in_quorum).collect();
    assert_eq!(out.len(), 1);
    assert!(c.checks.iter().any(|c| c.name == "MON_DOWN"));
    // MON_DOWN already says it; no second finding for the same mon.
    assert!(
        !v.findings
            .iter()
            .any(|f| f.message.contains("out of quorum"))
    );
    assert_eq!(v.health(), Health::Warn);
}

#[test]
fn health_err_checks_are_critical_and_quorum_loss_is_named() {
    let cluster = object(json!({
        "apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
        "metadata": {"name": "rook-ceph", "namespace": "rook-ceph"},
        "status": {"phase": "Ready", "ceph": {
            "health": "HEALTH_ERR",
            "details": {"MON_DOWN": {"severity": "HEALTH_WARN", "message": "2/3 mons down"},
                        "OSD_FULL": {"severity": "HEALTH_ERR", "message": "1 full osd(s)"}},
            "capacity": {"bytesTotal": 100, "bytesUsed": 96},
            "lastChecked": "2026-03-10T09:00:00Z",
        }},
    }));
    let mut cm = ConfigMap::default();
    cm.metadata.namespace = Some("rook-ceph".into());
    cm.data = Some(
        [
            (
                "data".to_string(),
                "a=10.0.0.1:6789,b=10.0.0.2:6789,c=10.0.0.3:6789".to_string(),
            ),
            ("outOfQuorum".to_string(), "b,c".to_string()),
            ("mapping".to_string(), "not json".to_string()),
        ]
        .into(),
    );
    let v = derive(&[cluster], Some(&cm), now());
    assert_eq!(v.health(), Health::Crit);
    let c = &v.clusters[0];
    assert_eq!(c.checks[0].name, "OSD_FULL", "worst check first");
    assert_eq!(c.quorum(), Some((1, 3)));
    assert!(c.mons.iter().all(|m| m.node.is_none()));
    let msgs: Vec<&str> = v.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        msgs.contains(&"Ceph mon quorum lost: 1/3 mons in quorum (out: b, c)"),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Ceph health last checked 30m ago")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("is 96% full")), "{msgs:?}");
    assert_eq!(v.findings[0].severity, Health::Crit, "sorted worst first");
}

#[test]
fn malformed_and_empty_objects_never_panic() {
    let odd = [
        json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster", "metadata": {"name": "a"}}),
        json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster", "metadata": {"name": "b"},
               "status": "Ready"}),
        json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster", "metadata": {"name": "c"},
               "status": {"phase": 3, "ceph": {"health": ["HEALTH_OK"], "details": [1, 2],
               "capacity": {"bytesTotal": "lots", "bytesUsed": -1}, "lastChecked": "yesterday"},
               "conditions": {"type": "Ready"}}}),
        json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster", "metadata": {"name": "d"},
               "status": {"ceph": {"health": "HEALTH_WARN", "details": {"X": "just a string"},
               "capacity": {"bytesTotal": 0, "bytesUsed": 0}}}}),
    ];
    let clusters: Vec<DynamicObject> = odd.into_iter().map(object).collect();
    let cm = ConfigMap {
        data: Some([("data".to_string(), ",=,a,b=".to_string())].into()),
        ..ConfigMap::default()
    };
    let v = derive(&clusters, Some(&cm), now());
    assert_eq!(v.clusters.len(), 4);
    assert!(v.clusters.iter().all(|c| c.capacity.is_none()));
    let d = &v.clusters[3];
    assert_eq!(d.checks[0].severity, "?");
    assert!(v.findings.iter().any(|f| f.severity == Health::Unknown));
    let _ = v.summary();
    let _ = CephReport::from_view(&v);
    assert_eq!(derive(&[], None, now()).health(), Health::Unknown);
    assert_eq!(derive(&[], None, now()).summary(), "no CephCluster");
}

#[test]
fn report_serialises_with_status_findings_and_rows() {
    let v = lab(Scenario::CephDegraded);
    let json = serde_json::to_value(CephReport::from_view(&v)).expect("json");
    assert_eq!(json["status"], "warn");
    assert_eq!(json["present"], true);
    assert_eq!(json["clusters"][0]["health"], "HEALTH_WARN");
    assert_eq!(json["clusters"][0]["mons_in_quorum"], 3);
    assert!(json["findings"].as_array().is_some_and(|f| !f.is_empty()));
    assert!(json["clusters"][0]["checks"][0]["severity"].is_string());
}
