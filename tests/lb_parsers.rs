//! The three LB-pane parsers on fixtures (`tests/fixtures/lb/`: HAProxy 2.6 answers
//! captured from Debian's haproxy, nginx upstream-check JSON, apiserver readyz text), and
//! on thousands of mutated inputs: they may refuse, never panic.

use kha::model::lb::{LbObservation, LbSettings, LbState, LbView};
use kha::sources::lb::{cert, haproxy, nginx, readyz};

const STAT: &str = include_str!("fixtures/lb/haproxy_show_stat.csv");
const STATE: &str = include_str!("fixtures/lb/haproxy_servers_state.txt");
const NGINX: &str = include_str!("fixtures/lb/nginx_check_status.json");
const NGINX_TWO: &str = include_str!("fixtures/lb/nginx_check_status_two_upstreams.json");
const READYZ: &str = include_str!("fixtures/lb/readyz_failing.txt");

#[test]
fn real_haproxy_answers_parse_by_column_name() {
    let stats = haproxy::parse_show_stat(STAT).expect("show stat");
    let names: Vec<&str> = stats.iter().map(|s| s.svname.as_str()).collect();
    assert_eq!(
        names,
        ["cp-a", "cp-b", "cp-c"],
        "FRONTEND/BACKEND rows left out"
    );
    let states = haproxy::parse_servers_state(STATE).expect("servers state");
    assert_eq!(states.len(), 3);
    assert_eq!(states[2].admin_flags, Some(8));
    let servers = haproxy::servers(&stats, &states);
    assert_eq!(servers[0].status.state, LbState::Down);
    assert_eq!(servers[0].check.as_deref(), Some("L7STS 404"));
    assert_eq!(servers[1].check.as_deref(), Some("L4CON"));
    assert_eq!(servers[1].check_passed, Some(false));
    assert_eq!(servers[0].address.as_deref(), Some("127.0.0.1:18631"));
    assert_eq!(servers[2].admin.as_deref(), Some("drain (forced)"));
    assert_eq!(servers[0].weight, Some(1));
}

#[test]
fn nginx_check_status_fixtures() {
    let list = nginx::parse_check_status(NGINX).expect("nginx json");
    let servers = nginx::servers(&list);
    let states: Vec<LbState> = servers.iter().map(|s| s.status.state).collect();
    assert_eq!(states, [LbState::Up, LbState::Down, LbState::Up]);
    assert_eq!(servers[1].check.as_deref(), Some("http fall 17"));
    assert_eq!(servers[0].address.as_deref(), Some("10.0.0.11:6443"));

    // Two upstreams: the pane keeps the apiserver's, matched by address.
    let list = nginx::parse_check_status(NGINX_TWO).expect("nginx json");
    assert_eq!(list.len(), 3);
    let obs = LbObservation {
        observed_at: std::time::SystemTime::UNIX_EPOCH,
        backends: Vec::new(),
        lb: Some(LbView {
            kind: kha::model::lb::LbKind::Nginx,
            source: "nginx+http://lb/status?format=json".into(),
            read_at: Some(std::time::SystemTime::UNIX_EPOCH),
            servers: nginx::servers(&list),
            error: None,
        }),
    };
    assert_eq!(obs.rows().len(), 3, "no probes: every LB server is a row");
    assert_eq!(obs.serving(), (2, 3));
    assert!(
        obs.findings(&LbSettings::default()).is_empty(),
        "2 serving is enough"
    );
}

#[test]
fn readyz_fixture_names_the_failing_checks() {
    assert_eq!(
        readyz::failing_checks(READYZ),
        ["etcd", "poststarthook/start-apiextensions-controllers"]
    );
}

/// A small deterministic generator (no new dependency for property tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

const NASTY: &[&str] = &[
    "",
    ",",
    "\"",
    "\"\"",
    "#",
    "# ",
    "\n",
    "\r\n",
    "{",
    "}",
    "[",
    "]",
    ":",
    "null",
    "-1",
    "99999999999999999999999",
    "UP 1/",
    "/3",
    "[-]",
    "[+]",
    "é",
    "\u{0}",
    "1",
];

/// `base` mutated: cut, bytes flipped, slices repeated or removed, nasty tokens inserted.
fn mutate(base: &str, rng: &mut Lcg) -> String {
    let mut bytes = base.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let len = bytes.len();
        match rng.below(6) {
            0 => bytes.truncate(rng.below(len + 1)),
            1 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let (a, b) = (rng.below(len), rng.below(len));
                let (a, b) = (a.min(b), a.max(b));
                let slice = bytes[a..b].to_vec();
                bytes.splice(b..b, slice);
            }
            3 if len > 0 => {
                let (a, b) = (rng.below(len), rng.below(len));
                bytes.drain(a.min(b)..a.max(b));
            }
            _ => {
                let i = rng.below(len + 1);
                let token = NASTY[rng.below(NASTY.len())].as_bytes();
                bytes.splice(i..i, token.iter().copied());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mutated_inputs_never_panic() {
    let mut rng = Lcg(0x6b68_615f_6c62);
    let mut accepted = [0usize; 4];
    for round in 0..3000 {
        let stat = mutate(STAT, &mut rng);
        if let Ok(rows) = haproxy::parse_show_stat(&stat) {
            accepted[0] += 1;
            assert!(rows.len() <= stat.lines().count(), "round {round}");
            let state = mutate(STATE, &mut rng);
            let states = haproxy::parse_servers_state(&state).unwrap_or_default();
            if !states.is_empty() {
                accepted[1] += 1;
            }
            for s in haproxy::servers(&rows, &states) {
                let _ = (s.status.takes_traffic(), s.status.health());
            }
        }
        let json = mutate(if round % 2 == 0 { NGINX } else { NGINX_TWO }, &mut rng);
        if let Ok(list) = nginx::parse_check_status(&json) {
            accepted[2] += 1;
            let _ = nginx::servers(&list);
        }
        let text = mutate(READYZ, &mut rng);
        let failing = readyz::failing_checks(&text);
        assert!(failing.len() <= 32 && failing.iter().all(|f| !f.is_empty()));
        accepted[3] += usize::from(!failing.is_empty());
        let mut der = mutate(STAT, &mut rng).into_bytes();
        der.insert(0, 0x30);
        let _ = cert::not_after(&der);
    }
    // The mutations must not all be rejected up front, or the loop proves little.
    assert!(accepted.iter().all(|&n| n > 100), "accepted {accepted:?}");
}
