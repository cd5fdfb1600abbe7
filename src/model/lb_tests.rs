use super::*;
use crate::model::finding::worst;

const T: SystemTime = SystemTime::UNIX_EPOCH;

fn check(status: u16, failing: &[&str]) -> HealthCheck {
    HealthCheck {
        status: Some(status),
        failing: failing.iter().map(|s| s.to_string()).collect(),
        latency: Duration::from_millis(4),
        error: None,
    }
}

pub(crate) fn probe(i: usize, ready: bool) -> BackendProbe {
    BackendProbe {
        name: format!("10.0.0.{i}"),
        url: format!("https://10.0.0.{i}:6443"),
        address: format!("10.0.0.{i}:6443"),
        zone: Some(format!("eu-west-1{}", ['a', 'b', 'c'][i % 3])),
        readyz: Some(if ready {
            check(200, &[])
        } else {
            check(500, &["etcd"])
        }),
        livez: Some(check(200, &[])),
        cert_not_after: Some(T + Duration::from_secs(300 * 86_400)),
    }
}

pub(crate) fn server(i: usize, status: &str) -> LbServer {
    LbServer {
        proxy: "kube-apiserver".into(),
        name: format!("cp-{i}"),
        address: Some(format!("10.0.0.{i}:6443")),
        status: LbStatus::parse(status),
        check: Some("L7OK 200".into()),
        check_passed: Some(true),
        last_change_secs: Some(30),
        sessions: Some(2),
        weight: Some(1),
        admin: None,
    }
}

fn obs(probes: Vec<BackendProbe>, servers: Option<Vec<LbServer>>) -> LbObservation {
    LbObservation {
        observed_at: T,
        backends: probes,
        lb: servers.map(|servers| LbView {
            kind: LbKind::Haproxy,
            source: "unix:///run/haproxy.sock".into(),
            read_at: Some(T),
            servers,
            error: None,
        }),
    }
}

fn healthy() -> LbObservation {
    obs(
        (1..=3).map(|i| probe(i, true)).collect(),
        Some((1..=3).map(|i| server(i, "UP")).collect()),
    )
}

#[test]
fn statuses_parse_with_transitions() {
    let s = LbStatus::parse("UP 1/3");
    assert_eq!((s.state, s.transition), (LbState::Up, Some((1, 3))));
    assert!(s.takes_traffic());
    assert_eq!(s.health(), Health::Warn);
    let s = LbStatus::parse("DOWN 1/2");
    assert_eq!((s.state, s.transition), (LbState::Down, Some((1, 2))));
    assert!(!s.takes_traffic());
    assert_eq!(
        LbStatus::parse("MAINT (via kube/cp-a)").state,
        LbState::Maint
    );
    assert_eq!(LbStatus::parse("DRAIN").state, LbState::Drain);
    assert_eq!(LbStatus::parse("no check").state, LbState::NoCheck);
    assert_eq!(LbStatus::parse("NOLB").state, LbState::Nolb);
    assert_eq!(LbStatus::parse("").state, LbState::Unknown);
    assert_eq!(LbStatus::parse("UP x/").transition, None);
}

#[test]
fn addresses_get_default_ports() {
    assert_eq!(url_address("https://10.0.0.1:6443/readyz"), "10.0.0.1:6443");
    assert_eq!(url_address("https://api.example"), "api.example:443");
    assert_eq!(url_address("http://127.0.0.1"), "127.0.0.1:80");
    assert_eq!(url_address("https://[fd00::1]:6443"), "[fd00::1]:6443");
    assert_eq!(url_address("https://[fd00::1]"), "[fd00::1]:443");
}

#[test]
fn rows_join_by_address_then_name_and_keep_lb_only_servers_of_the_same_backend() {
    let mut o = healthy();
    // The third probe is configured by name only; the LB knows it under another address.
    o.backends[2].address = "cp-3.internal:6443".into();
    o.backends[2].name = "cp-3".into();
    if let Some(v) = o.lb.as_mut() {
        v.servers.push(server(4, "UP"));
        let mut other = server(9, "UP");
        other.proxy = "ingress".into();
        v.servers.push(other);
    }
    let rows = o.rows();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["cp-1", "cp-2", "cp-3", "cp-4"]);
    assert!(rows[2].lb.is_some(), "matched by name");
    assert!(
        rows[3].probe.is_none(),
        "LB-only server of the same backend"
    );
}

#[test]
fn healthy_has_no_findings() {
    let o = healthy();
    assert_eq!(o.findings(&LbSettings::default()), vec![]);
    assert_eq!(o.serving(), (3, 3));
}

#[test]
fn lb_up_but_readyz_failing_is_critical() {
    let mut o = healthy();
    o.backends[1] = probe(2, false);
    if let Some(v) = o.lb.as_mut() {
        v.servers[1].status = LbStatus::parse("UP 1/3");
    }
    let f = o.findings(&LbSettings::default());
    assert_eq!(f[0].severity, Health::Crit, "{f:?}");
    assert_eq!(
        f[0].message,
        "LB sends traffic to cp-2 (UP 1/3) but its /readyz fails: etcd"
    );
    assert_eq!(o.serving(), (2, 3));
}

#[test]
fn lb_down_but_ready_warns_about_lost_capacity() {
    let mut o = healthy();
    if let Some(v) = o.lb.as_mut() {
        v.servers[0].status = LbStatus::parse("MAINT");
    }
    let f = o.findings(&LbSettings::default());
    assert_eq!(worst(&f), Health::Warn, "{f:?}");
    assert!(
        f.iter()
            .any(|f| f.message == "LB has cp-1 MAINT but its /readyz is ok: capacity lost"),
        "{f:?}"
    );
}

#[test]
fn lb_and_probe_agreeing_on_a_dead_backend_warns_once() {
    let mut o = healthy();
    o.backends[2] = probe(3, false);
    if let Some(v) = o.lb.as_mut() {
        v.servers[2].status = LbStatus::parse("DOWN");
    }
    let f = o.findings(&LbSettings::default());
    assert_eq!(worst(&f), Health::Warn, "{f:?}");
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].message.contains("the LB has taken it out"), "{f:?}");
}

#[test]
fn fewer_than_two_serving_is_critical() {
    let mut o = healthy();
    if let Some(v) = o.lb.as_mut() {
        v.servers[0].status = LbStatus::parse("DOWN");
        v.servers[1].status = LbStatus::parse("DRAIN");
    }
    let f = o.findings(&LbSettings::default());
    assert!(
        f.iter().any(|f| f.severity == Health::Crit
            && f.message.starts_with("only 1/3 apiserver backends serving")),
        "{f:?}"
    );
    // Without an LB view, the probes alone count.
    let mut o = obs((1..=3).map(|i| probe(i, i == 1)).collect(), None);
    assert!(
        o.findings(&LbSettings::default())
            .iter()
            .any(|f| f.message.starts_with("only 1/3")),
    );
    o.backends[0] = probe(1, false);
    assert!(
        o.findings(&LbSettings::default())
            .iter()
            .any(|f| f.message.starts_with("no apiserver backend serving (0/3)"))
    );
}

#[test]
fn certificate_expiry_warns_then_goes_critical() {
    let s = LbSettings::default();
    let mut o = healthy();
    o.backends[0].cert_not_after = Some(T + Duration::from_secs(10 * 86_400));
    let f = o.findings(&s);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Health::Warn);
    assert_eq!(
        f[0].message,
        "serving certificate of cp-1 expires in 10 days"
    );
    o.backends[0].cert_not_after = Some(T + Duration::from_secs(36 * 3600));
    let f = o.findings(&s);
    assert_eq!(f[0].severity, Health::Crit);
    assert!(f[0].message.contains("expires in 36h"), "{f:?}");
    o.backends[0].cert_not_after = Some(T);
    assert!(o.findings(&s)[0].message.contains("EXPIRED"));
}

#[test]
fn a_stale_or_unreadable_lb_view_is_reported() {
    let s = LbSettings::default();
    let mut o = healthy();
    o.observed_at = T + Duration::from_secs(60);
    if let Some(v) = o.lb.as_mut() {
        v.error = Some("connect: No such file or directory".into());
    }
    let f = o.findings(&s);
    assert!(
        f.iter()
            .any(|f| f.message
                == "LB view stale: last read 60s ago: connect: No such file or directory"),
        "{f:?}"
    );
    if let Some(v) = o.lb.as_mut() {
        v.read_at = None;
        v.servers.clear();
    }
    let f = o.findings(&s);
    assert!(
        f.iter().any(|f| f
            .message
            .starts_with("LB view unavailable (unix:///run/haproxy.sock)")),
        "{f:?}"
    );
    // The probes still count when the LB view is gone.
    assert!(!f.iter().any(|f| f.message.contains("serving")), "{f:?}");
}

#[test]
fn a_probed_backend_the_lb_does_not_know_gets_no_traffic() {
    let mut o = healthy();
    o.backends.push(probe(5, true));
    let f = o.findings(&LbSettings::default());
    assert!(
        f.iter()
            .any(|f| f.message == "10.0.0.5 is not among the LB's servers: it gets no traffic"),
        "{f:?}"
    );
}

#[test]
fn nothing_known_at_all_is_critical() {
    let o = obs(vec![], Some(vec![]));
    assert_eq!(worst(&o.findings(&LbSettings::default())), Health::Crit);
}
