use super::*;

fn defs() -> Vec<KpiDef> {
    kpi_defs(&BTreeMap::new()).unwrap()
}

fn def(id: &str) -> KpiDef {
    defs().into_iter().find(|d| d.id == id).unwrap()
}

#[test]
fn defaults_follow_the_design_targets() {
    let ids: Vec<String> = defs().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, KPI_IDS.map(String::from).to_vec());
    let p99 = def("apiserver_p99_latency");
    assert!(p99.promql.contains(r#"verb!~"WATCH|CONNECT""#));
    assert_eq!(p99.judge(0.3), Health::Ok);
    assert_eq!(p99.judge(0.45), Health::Warn);
    assert_eq!(p99.judge(0.5), Health::Crit, "the target is < 500 ms");
    assert_eq!(p99.target_text(), "< 500 ms");
    let avail = def("apiserver_availability");
    assert_eq!(avail.judge(0.99995), Health::Ok);
    assert_eq!(
        avail.judge(0.9999),
        Health::Warn,
        "the target is >= 99.99 %: met, barely"
    );
    assert_eq!(avail.judge(0.9998), Health::Crit);
    assert_eq!(avail.target_text(), ">= 99.990 %");
    assert!(def("pod_startup_p99").fallback.is_some());
    assert_eq!(def("pod_startup_p99").judge(9.0), Health::Crit);
    assert_eq!(def("canary_error_rate").judge(0.06), Health::Crit);
}

#[test]
fn overrides_replace_fields_add_and_hide_kpis() {
    let mut o = BTreeMap::new();
    o.insert(
        "apiserver_p99_latency".to_string(),
        KpiOverride {
            crit: Some(0.8),
            ..Default::default()
        },
    );
    o.insert(
        "canary_error_rate".to_string(),
        KpiOverride {
            enabled: Some(false),
            ..Default::default()
        },
    );
    o.insert(
        "etcd_fsync_p99".to_string(),
        KpiOverride {
            promql: Some("histogram_quantile(0.99, x)".into()),
            unit: Some("seconds".into()),
            crit: Some(0.01),
            ..Default::default()
        },
    );
    let defs = kpi_defs(&o).unwrap();
    assert!(defs.iter().all(|d| d.id != "canary_error_rate"));
    let p99 = defs
        .iter()
        .find(|d| d.id == "apiserver_p99_latency")
        .unwrap();
    assert_eq!(p99.judge(0.6), Health::Warn);
    assert!(defs.iter().any(|d| d.id == "etcd_fsync_p99"));

    let mut bad = BTreeMap::new();
    bad.insert("nope".to_string(), KpiOverride::default());
    assert!(kpi_defs(&bad).unwrap_err().contains("kpis.nope"));
}

#[test]
fn unreachable_is_unknown_and_breaches_are_findings() {
    let defs = defs();
    let obs = KpiObservation {
        observed_at: SystemTime::UNIX_EPOCH,
        unreachable: Some("connection refused".into()),
        results: vec![],
    };
    let f = findings(&defs, &obs);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Health::Unknown);

    let value = |id: &str, value: f64| KpiResult {
        id: id.into(),
        reading: KpiReading::Value {
            value,
            series: 1,
            used_fallback: false,
        },
        history: vec![],
    };
    let obs = KpiObservation {
        observed_at: SystemTime::UNIX_EPOCH,
        unreachable: None,
        results: vec![
            value("apiserver_p99_latency", 0.8),
            value("pod_startup_p99", 3.0),
            KpiResult {
                id: "cross_az_latency".into(),
                reading: KpiReading::NotAvailable,
                history: vec![],
            },
        ],
    };
    let f = findings(&defs, &obs);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].severity, Health::Crit);
    assert!(f[0].message.contains("800 ms"), "{}", f[0].message);
    let rows = rows(&defs, Some(&obs));
    assert_eq!(rows[2].health, Health::Ok);
    assert_eq!(
        rows[3].health,
        Health::Unknown,
        "not available is not a breach"
    );
}

#[test]
fn worst_follows_the_direction() {
    assert_eq!(def("apiserver_p99_latency").worst([0.1, 0.3]), Some(0.3));
    assert_eq!(def("apiserver_availability").worst([0.9, 0.99]), Some(0.9));
    assert_eq!(def("apiserver_p99_latency").worst([f64::NAN]), None);
}

#[test]
fn availability_window_rewrites_the_raw_query_unless_overridden() {
    use std::time::Duration;
    let mut defs = kpi_defs(&BTreeMap::new()).unwrap();
    let before = defs.clone();
    with_availability_window(
        &mut defs,
        Duration::from_secs(30 * 86_400),
        &BTreeMap::new(),
    );
    assert_eq!(defs, before, "30 d is the mixin's recording rule");
    with_availability_window(&mut defs, Duration::from_secs(7 * 86_400), &BTreeMap::new());
    let a = defs
        .iter()
        .find(|d| d.id == "apiserver_availability")
        .unwrap();
    assert!(
        a.promql.contains("[7d]") && !a.promql.contains("[30d]"),
        "{}",
        a.promql
    );
    assert_eq!(a.fallback, None);
    assert_eq!(a.title, "API server availability (7d)");
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "apiserver_availability".to_string(),
        KpiOverride {
            promql: Some("my_rule".into()),
            ..Default::default()
        },
    );
    let mut defs = kpi_defs(&overrides).unwrap();
    with_availability_window(&mut defs, Duration::from_secs(7 * 86_400), &overrides);
    let a = defs
        .iter()
        .find(|d| d.id == "apiserver_availability")
        .unwrap();
    assert_eq!(a.promql, "my_rule", "an overridden query is the engineer's");
}
