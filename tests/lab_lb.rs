//! The lab's apiserver backends and HAProxy runtime API against the real thing: a real
//! HAProxy (Debian's `haproxy`) health-checks the same backends as the lab's runtime,
//! and both must print the same `show stat` / `show servers state` shapes and follow the
//! same faults. `curl` (Debian's `curl`) checks the backends' health text.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::haproxy::{HAPROXY, ask, start_real_haproxy};

use kha::lab::lb::{ApiServerBackends, HaproxyRuntime};
use kha::lab::topology::{Faults, LabSpec, Topology};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;

/// The columns kha reads from `show stat`.
const KHA_COLUMNS: &[&str] = &[
    "pxname",
    "svname",
    "status",
    "weight",
    "check_status",
    "check_code",
    "lastchg",
    "scur",
    "act",
    "bck",
    "chkfail",
];

fn require(binary: &str, package: &str) {
    let found = if binary.contains('/') {
        Path::new(binary).exists()
    } else {
        Command::new("sh")
            .args(["-c", &format!("command -v {binary}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(
        found,
        "{binary} is missing: this test needs the real thing. Install it with `apt-get install {package}` (or run scripts/deps.sh)."
    );
}

/// An interactive session: `prompt`, then each line; returns what came back after each
/// (up to the `> ` prompt, or to the end when the server hangs up).
async fn interactive(socket: &Path, lines: &[&str]) -> Vec<String> {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    let mut answers = Vec::new();
    for line in std::iter::once("prompt").chain(lines.iter().copied()) {
        stream
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await;
            let n = read.expect("no prompt came back").unwrap();
            answer.extend_from_slice(&buf[..n]);
            let prompts = answer.windows(3).filter(|w| w == b"\n> ").count();
            if n == 0 || prompts == line.split(';').count() {
                break;
            }
        }
        answers.push(String::from_utf8_lossy(&answer).into_owned());
    }
    answers
}

/// `show stat` as rows of column → value.
async fn stat_rows(socket: &Path) -> Vec<HashMap<String, String>> {
    let csv = ask(socket, "show stat").await;
    let mut lines = csv.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .map(str::to_string)
        .collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_string))
                .collect()
        })
        .collect()
}

async fn server_row(socket: &Path, server: &str) -> HashMap<String, String> {
    stat_rows(socket)
        .await
        .into_iter()
        .find(|r| r["pxname"] == "kube-apiserver" && r["svname"] == server)
        .unwrap_or_else(|| panic!("no row for {server} on {}", socket.display()))
}

/// Polls both runtime APIs until `done` holds for `server` on each, recording every
/// status seen; fails after `within`.
async fn wait_both(
    sockets: [&Path; 2],
    server: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&HashMap<String, String>) -> bool,
) -> [Vec<String>; 2] {
    let deadline = Instant::now() + within;
    let mut seen: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut finished = [false, false];
    while !(finished[0] && finished[1]) {
        for (i, socket) in sockets.iter().enumerate() {
            if finished[i] {
                continue;
            }
            let row = server_row(socket, server).await;
            if seen[i].last() != Some(&row["status"]) {
                seen[i].push(row["status"].clone());
            }
            finished[i] = done(&row);
        }
        assert!(
            Instant::now() < deadline,
            "{server} did not become {what} within {within:?}: real saw {:?}, lab saw {:?}",
            seen[0],
            seen[1]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

fn curl(url: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "3", "-w", "\n%{http_code}", url])
        .output()
        .expect("cannot run curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_lb_matches_real_haproxy_and_follows_faults() {
    require(HAPROXY, "haproxy");
    require("curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    let topology = Topology::generate(&LabSpec::default());
    let names: Vec<String> = topology
        .control_plane
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let (faults_tx, faults_rx) = watch::channel(Faults::default());
    let backends = ApiServerBackends::start(topology.clone(), faults_rx)
        .await
        .unwrap();
    let urls = backends.urls();
    assert_eq!(urls.len(), 3);
    let servers: Vec<(String, String)> = names.iter().cloned().zip(urls.iter().cloned()).collect();

    // The backends speak the apiserver's health text.
    let (rc, body) = curl(&format!("{}/readyz?verbose", urls[0]));
    assert_eq!(rc, 0, "curl failed: {body}");
    assert!(
        body.starts_with("[+]ping ok\n[+]log ok\n[+]etcd ok\n"),
        "{body}"
    );
    assert!(body.contains("[+]poststarthook/start-apiextensions-informers ok\n"));
    assert!(
        body.ends_with("[+]shutdown ok\nreadyz check passed\n\n200"),
        "{body}"
    );
    let (_, version) = curl(&format!("{}/version", urls[0]));
    assert!(version.contains("\"gitVersion\": \"v1.31.4\""), "{version}");

    let real = start_real_haproxy(dir.path(), &servers);
    let lab = HaproxyRuntime::start(&dir.path().join("lab.sock"), servers.clone())
        .await
        .unwrap();
    let sockets = [real.socket.as_path(), lab.socket_path()];

    for name in &names {
        wait_both(sockets, name, Duration::from_secs(5), "UP", |r| {
            r["status"] == "UP"
        })
        .await;
    }

    // Same CSV layout: identical header, kha's columns where kha expects them, same rows.
    let real_csv = ask(sockets[0], "show stat").await;
    let lab_csv = ask(sockets[1], "show stat").await;
    let (real_header, lab_header) = (real_csv.lines().next(), lab_csv.lines().next());
    assert_eq!(real_header, lab_header, "show stat headers differ");
    let columns: Vec<&str> = real_header
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    for column in KHA_COLUMNS {
        assert!(
            columns.contains(column),
            "real HAProxy has no {column} column"
        );
    }
    let shape = |csv: &str| -> Vec<(String, usize)> {
        csv.lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (format!("{}/{}", f[0], f[1]), f.len())
            })
            .collect()
    };
    assert_eq!(shape(&real_csv), shape(&lab_csv));
    assert!(real_csv.ends_with(",\n\n") && lab_csv.ends_with(",\n\n"));
    let same_columns = [
        "status",
        "weight",
        "act",
        "bck",
        "check_status",
        "check_code",
        "chkfail",
    ];
    for name in &names {
        let (r, l) = (
            server_row(sockets[0], name).await,
            server_row(sockets[1], name).await,
        );
        for c in same_columns {
            assert_eq!(r[c], l[c], "{name} {c}: real {} lab {}", r[c], l[c]);
        }
    }

    // show servers state: same version and column lines, same row shape.
    let real_state = ask(sockets[0], "show servers state").await;
    let lab_state = ask(sockets[1], "show servers state kube-apiserver").await;
    let head = |s: &str| s.lines().take(2).collect::<Vec<_>>().join("\n");
    assert_eq!(head(&real_state), head(&lab_state));
    let widths = |s: &str| {
        s.lines()
            .skip(2)
            .filter(|l| !l.is_empty())
            .map(|l| l.split(' ').count())
            .collect::<Vec<_>>()
    };
    assert_eq!(widths(&real_state), widths(&lab_state));

    // The same words for help and for mistakes.
    for command in [
        "help",
        "help set server",
        "show servers state nope",
        "set server kube-apiserver/nope state drain",
        "set server nope/cp-eu-west-1a state drain",
        "set server kube-apiserver/cp-eu-west-1a stat ready",
        "set server kube-apiserver/cp-eu-west-1a state bogus",
        "set server kube-apiserver/cp-eu-west-1a weight 300",
        "get weight kube-apiserver/cp-eu-west-1a",
        "show stat nope 4 -1",
        "set servr",
    ] {
        assert_eq!(
            ask(sockets[0], command).await,
            ask(sockets[1], command).await,
            "answers to `{command}` differ"
        );
    }
    let session = [
        "show version",
        "show backend;show cli level",
        "get weight nope/x",
        "prompt",
    ];
    assert_eq!(
        interactive(sockets[0], &session).await,
        interactive(sockets[1], &session).await
    );
    let unknown = ask(sockets[1], "foo bar").await;
    assert!(
        unknown.starts_with(
            "Unknown command, but maybe one of the following ones is a better match:\n"
        )
    );
    assert!(unknown.ends_with("  quit                                    : disconnect\n\n"));

    // Faults, all at once: cp-b alive but unready (etcd), cp-c's zone lost, cp-a drained.
    let (a, b, c) = (&names[0], &names[1], &names[2]);
    backends.set_unready(1, Some("etcd"));
    let (rc, body) = curl(&format!("{}/readyz", urls[1]));
    assert_eq!(rc, 0);
    assert!(body.contains("[-]etcd failed: reason withheld\n"), "{body}");
    assert!(body.ends_with("readyz check failed\n\n500"), "{body}");
    faults_tx.send_modify(|f| f.zone_down = Some(topology.control_plane[2].zone.clone()));
    for socket in sockets {
        assert_eq!(
            ask(
                socket,
                &format!("set server kube-apiserver/{a} state drain")
            )
            .await,
            "\n"
        );
    }
    let (rc, _) = curl(&format!("{}/readyz", urls[2]));
    assert_eq!(rc, 7, "a backend in the lost zone must refuse connections");

    let seen = wait_both(sockets, b, Duration::from_secs(6), "DOWN", |r| {
        r["status"] == "DOWN"
    })
    .await;
    assert!(
        seen[1].contains(&"UP 1/3".to_string()),
        "lab went {:?}",
        seen[1]
    );
    for socket in sockets {
        let row = server_row(socket, b).await;
        assert_eq!(
            (row["check_status"].as_str(), row["check_code"].as_str()),
            ("L7STS", "500")
        );
    }
    wait_both(sockets, c, Duration::from_secs(6), "DOWN", |r| {
        r["status"] == "DOWN"
    })
    .await;
    for socket in sockets {
        assert_eq!(server_row(socket, c).await["check_status"], "L4CON");
        let drained = server_row(socket, a).await;
        assert_eq!(drained["status"], "DRAIN");
        // HAProxy 2.6 keeps a drained server's own weight; only the backend drops it.
        assert_eq!(drained["weight"], "1");
        let backend = stat_rows(socket)
            .await
            .into_iter()
            .find(|r| r["svname"] == "BACKEND")
            .unwrap();
        assert_eq!(
            backend["status"],
            "DOWN",
            "nothing takes traffic on {}",
            socket.display()
        );
        assert_eq!(
            (backend["weight"].as_str(), backend["act"].as_str()),
            ("0", "0")
        );
    }

    // Recovery: every server back UP on both.
    backends.set_unready(1, None);
    faults_tx.send_modify(|f| f.zone_down = None);
    for socket in sockets {
        assert_eq!(
            ask(
                socket,
                &format!("set server kube-apiserver/{a} state ready")
            )
            .await,
            "\n"
        );
    }
    let seen = wait_both(sockets, b, Duration::from_secs(5), "UP", |r| {
        r["status"] == "UP"
    })
    .await;
    assert!(
        seen[1].contains(&"DOWN 1/2".to_string()),
        "lab went {:?}",
        seen[1]
    );
    wait_both(sockets, c, Duration::from_secs(5), "UP", |r| {
        r["status"] == "UP"
    })
    .await;
    let (rc, body) = curl(&format!("{}/readyz", urls[2]));
    assert_eq!((rc, body.as_str()), (0, "ok\n200"));

    lab.shutdown().await;
    backends.shutdown().await;
    drop(real);
}
