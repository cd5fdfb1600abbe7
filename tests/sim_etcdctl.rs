//! kha's simulated etcd cluster (src/lab/etcd_sim.rs) as the real `etcdctl` (v3 API)
//! and the etcd-client crate see it: status, health, member list, leader loss, quorum
//! loss and recovery, the NOSPACE alarm, and stopped members dropping connections.
//! etcdctl is required: `apt-get install etcd-client` (scripts/deps.sh installs it).

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::process::Command;
use std::time::{Duration, Instant};

use etcd_client::{AlarmAction, AlarmType, Client, ConnectOptions};
use kha::lab::etcd_sim::SimEtcdCluster;
use serde_json::Value;

/// What one etcdctl run printed.
struct Ctl {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ctl {
    /// stdout and stderr together (etcdctl 3.4 prints health results to stderr).
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `etcdctl --endpoints=... --command-timeout=3s ARGS` (argv, no shell).
async fn etcdctl(endpoints: &[String], args: &[&str]) -> Ctl {
    let mut cmd = Command::new("etcdctl");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ETCDCTL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .arg("--command-timeout=3s")
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "etcdctl not found (expected /usr/bin/etcdctl): these tests need the real etcd \
             client, install it with `apt-get install etcd-client` (or run scripts/deps.sh)"
        ),
        Err(e) => panic!("running etcdctl: {e}"),
    };
    Ctl {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One entry of `etcdctl endpoint status -w json`.
#[derive(Debug)]
struct EpStatus {
    endpoint: String,
    cluster_id: u64,
    member_id: u64,
    leader: u64,
    raft_term: u64,
    raft_index: u64,
    db_size: u64,
    errors: Vec<String>,
}

async fn endpoint_status(endpoints: &[String], cluster: bool) -> Vec<EpStatus> {
    let mut args = vec!["endpoint", "status", "-w", "json"];
    if cluster {
        args.push("--cluster");
    }
    let out = etcdctl(endpoints, &args).await;
    assert!(out.ok, "endpoint status failed:\n{}", out.all());
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    let u64_at = |v: &Value, path: &[&str]| {
        // Go's encoding/json leaves zero fields out ("leader" without a leader).
        path.iter().fold(v, |v, k| &v[k]).as_u64().unwrap_or(0)
    };
    (json.as_array().unwrap().iter())
        .map(|e| EpStatus {
            endpoint: e["Endpoint"].as_str().unwrap().to_string(),
            cluster_id: u64_at(e, &["Status", "header", "cluster_id"]),
            member_id: u64_at(e, &["Status", "header", "member_id"]),
            leader: u64_at(e, &["Status", "leader"]),
            raft_term: u64_at(e, &["Status", "raftTerm"]),
            raft_index: u64_at(e, &["Status", "raftIndex"]),
            db_size: u64_at(e, &["Status", "dbSize"]),
            errors: (e["Status"]["errors"].as_array().into_iter().flatten())
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// Asserts the members agree on one leader among them and on the term; returns both.
fn agreed_leader(statuses: &[EpStatus]) -> (u64, u64) {
    let leader = statuses[0].leader;
    let term = statuses[0].raft_term;
    for s in statuses {
        assert_eq!((s.leader, s.raft_term), (leader, term), "{statuses:#?}");
        assert_eq!(s.cluster_id, statuses[0].cluster_id, "{statuses:#?}");
        assert!(s.raft_index > 0 && s.db_size > 0, "{statuses:#?}");
    }
    let leaders = statuses.iter().filter(|s| s.member_id == s.leader).count();
    assert_eq!(
        leaders, 1,
        "exactly one member must report itself leader: {statuses:#?}"
    );
    (leader, term)
}

fn assert_health(out: &Ctl, healthy: &[&String], unhealthy: &[&String]) {
    let all = out.all();
    for url in healthy {
        assert!(all.contains(&format!("{url} is healthy")), "{url}:\n{all}");
    }
    for url in unhealthy {
        assert!(
            all.contains(&format!("{url} is unhealthy")),
            "{url}:\n{all}"
        );
    }
    assert_eq!(out.ok, unhealthy.is_empty(), "exit status:\n{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn etcdctl_sees_a_healthy_three_member_cluster() {
    let sim = SimEtcdCluster::start(3).await.unwrap();
    let urls = sim.client_urls();
    let ids = sim.member_ids();

    let statuses = endpoint_status(&urls, true).await;
    assert_eq!(statuses.len(), 3, "{statuses:#?}");
    let (leader, _) = agreed_leader(&statuses);
    assert_eq!(Some(leader), sim.leader().map(|i| ids[i]));
    let seen: BTreeSet<_> = statuses
        .iter()
        .map(|s| (s.endpoint.clone(), s.member_id))
        .collect();
    let want: BTreeSet<_> = urls.iter().cloned().zip(ids.iter().copied()).collect();
    assert_eq!(seen, want);
    assert!(
        statuses.iter().all(|s| s.errors.is_empty()),
        "{statuses:#?}"
    );

    let health = etcdctl(&urls, &["endpoint", "health", "--cluster"]).await;
    assert_health(&health, &urls.iter().collect::<Vec<_>>(), &[]);

    let list = etcdctl(&urls, &["member", "list", "-w", "json"]).await;
    assert!(list.ok, "{}", list.all());
    let list: Value = serde_json::from_str(&list.stdout).unwrap();
    let members = list["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{list}");
    for (i, m) in members.iter().enumerate() {
        assert_eq!(m["name"], sim.member_names()[i].as_str(), "{list}");
        assert_eq!(m["ID"].as_u64(), Some(ids[i]), "{list}");
        assert_eq!(m["clientURLs"][0], urls[i].as_str(), "{list}");
        assert!(
            m["peerURLs"][0]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
    }
    assert_eq!(sim.member_names(), ["etcd-a", "etcd-b", "etcd-c"]);

    let put = etcdctl(&urls, &["put", "greeting", "hello"]).await;
    assert!(put.ok && put.stdout.trim() == "OK", "{}", put.all());
    let get = etcdctl(&urls, &["get", "greeting"]).await;
    assert_eq!(get.stdout, "greeting\nhello\n", "{}", get.all());
    let del = etcdctl(&urls, &["del", "greeting"]).await;
    assert_eq!(del.stdout.trim(), "1", "{}", del.all());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn etcdctl_follows_leader_loss_quorum_loss_and_recovery() {
    let sim = SimEtcdCluster::start(3).await.unwrap();
    let urls = sim.client_urls();
    let ids = sim.member_ids();
    let (old_leader, old_term) = agreed_leader(&endpoint_status(&urls, false).await);
    let old = ids.iter().position(|&id| id == old_leader).unwrap();

    sim.stop_member(old).await.unwrap();
    assert!(!sim.is_running(old));
    let survivors: Vec<String> = (0..3)
        .filter(|&i| i != old)
        .map(|i| urls[i].clone())
        .collect();
    let since = Instant::now();
    let (new_leader, new_term) = loop {
        let statuses = endpoint_status(&survivors, false).await;
        assert_eq!(statuses.len(), 2);
        if statuses
            .iter()
            .all(|s| s.leader != 0 && s.leader != old_leader)
        {
            break agreed_leader(&statuses);
        }
        assert!(
            since.elapsed() < Duration::from_secs(3),
            "no new leader: {statuses:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(new_term > old_term, "term {old_term} -> {new_term}");
    let health = etcdctl(&urls, &["endpoint", "health", "--cluster"]).await;
    assert_health(
        &health,
        &survivors.iter().collect::<Vec<_>>(),
        &[&urls[old]],
    );

    // Lose quorum: stop the new leader too.
    let second = ids.iter().position(|&id| id == new_leader).unwrap();
    sim.stop_member(second).await.unwrap();
    let last = (0..3).find(|&i| i != old && i != second).unwrap();
    let last_url = std::slice::from_ref(&urls[last]);
    let status = endpoint_status(last_url, false).await;
    assert_eq!(status[0].leader, 0, "{status:#?}");
    assert!(
        status[0]
            .errors
            .iter()
            .any(|e| e == "etcdserver: no leader"),
        "{status:#?}"
    );
    assert_eq!(sim.leader(), None);
    let health = etcdctl(last_url, &["endpoint", "health"]).await;
    assert_health(&health, &[], &[&urls[last]]);

    sim.start_member(old).await.unwrap();
    sim.start_member(second).await.unwrap();
    let since = Instant::now();
    loop {
        let health = etcdctl(&urls, &["endpoint", "health", "--cluster"]).await;
        if health.ok {
            assert_health(&health, &urls.iter().collect::<Vec<_>>(), &[]);
            break;
        }
        assert!(since.elapsed() < Duration::from_secs(3), "{}", health.all());
    }
    let (_, term) = agreed_leader(&endpoint_status(&urls, true).await);
    assert!(term > new_term);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn etcdctl_sees_the_nospace_alarm() {
    let sim = SimEtcdCluster::start(3).await.unwrap();
    let urls = sim.client_urls();
    let leader_id = sim.member_ids()[sim.leader().unwrap()];

    sim.set_nospace_alarm(true);
    let alarms = etcdctl(&urls, &["alarm", "list"]).await;
    assert!(alarms.ok, "{}", alarms.all());
    assert_eq!(
        alarms.stdout,
        format!("memberID:{leader_id} alarm:NOSPACE \n")
    );
    let put = etcdctl(&urls, &["put", "k", "v"]).await;
    assert!(!put.ok, "put must fail with NOSPACE:\n{}", put.all());
    assert!(
        put.stderr
            .contains("etcdserver: mvcc: database space exceeded"),
        "{}",
        put.all()
    );
    let status = endpoint_status(&urls, false).await;
    let alarm = format!("memberID:{leader_id} alarm:NOSPACE ");
    assert!(
        status.iter().all(|s| s.errors == [alarm.clone()]),
        "{status:#?}"
    );

    sim.set_nospace_alarm(false);
    let alarms = etcdctl(&urls, &["alarm", "list"]).await;
    assert!(
        alarms.ok && alarms.stdout.trim().is_empty(),
        "{}",
        alarms.all()
    );
    let put = etcdctl(&urls, &["put", "k", "v"]).await;
    assert!(put.ok, "{}", put.all());
    let get = etcdctl(&urls, &["get", "k"]).await;
    assert_eq!(get.stdout, "k\nv\n", "{}", get.all());
}

/// kha talks to etcd through the etcd-client crate: same view, plus MoveLeader, and a
/// stopped member must drop connections that are already open.
#[tokio::test(flavor = "multi_thread")]
async fn etcd_client_sees_the_same_cluster() {
    let sim = SimEtcdCluster::start(3).await.unwrap();
    let urls = sim.client_urls();
    let ids = sim.member_ids();
    let opts = || Some(ConnectOptions::new().with_timeout(Duration::from_secs(2)));
    let leader = sim.leader().unwrap();
    let mut to_leader = Client::connect([&urls[leader]], opts()).await.unwrap();

    let status = to_leader.status().await.unwrap();
    assert_eq!(status.leader(), ids[leader]);
    assert_eq!(status.header().unwrap().member_id(), ids[leader]);
    let members = to_leader.member_list().await.unwrap();
    let names: Vec<_> = members
        .members()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    assert_eq!(names, sim.member_names());
    let alarms = to_leader
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .unwrap();
    assert!(alarms.alarms().is_empty());

    let target = (leader + 1) % 3;
    to_leader.move_leader(ids[target]).await.unwrap();
    assert_eq!(sim.leader(), Some(target));
    let status = to_leader.status().await.unwrap();
    assert_eq!(status.leader(), ids[target]);
    assert!(status.raft_term() > 2);
    // Only the leader may hand leadership over, as in etcd.
    let err = to_leader.move_leader(ids[leader]).await.unwrap_err();
    assert!(err.to_string().contains("not leader"), "{err}");

    // `to_leader`'s open connection must drop when its member stops, as with a killed
    // process, rather than being served on.
    sim.stop_member(leader).await.unwrap();
    let started = Instant::now();
    assert!(
        to_leader.status().await.is_err(),
        "a stopped member answered"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(sim.leader(), Some(target));

    // After the restart the client reconnects. Its first call may still fail once: hyper
    // can hand it to the dying old connection when the restart is this quick.
    tokio::time::sleep(Duration::from_secs(1)).await; // the others move on meanwhile
    sim.start_member(leader).await.unwrap();
    let since = Instant::now();
    let status = loop {
        match to_leader.status().await {
            Ok(status) => break status,
            Err(e) => assert!(since.elapsed() < Duration::from_secs(2), "{e}"),
        }
    };
    assert_eq!(status.leader(), ids[target]);
    // It comes back behind the leader and catches up within about a second.
    let mut to_target = Client::connect([&urls[target]], opts()).await.unwrap();
    let ahead = to_target.status().await.unwrap().raft_index();
    assert!(
        status.raft_index() < ahead,
        "{} < {ahead}",
        status.raft_index()
    );
    let since = Instant::now();
    loop {
        let behind = to_leader.status().await.unwrap().raft_index();
        let ahead = to_target.status().await.unwrap().raft_index();
        if behind + 1 >= ahead {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "{behind} < {ahead}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Without quorum Status still answers; a client requiring a leader fails at once.
    for other in (0..3).filter(|&i| i != leader) {
        sim.stop_member(other).await.unwrap();
    }
    let status = to_leader.status().await.unwrap();
    assert_eq!(status.leader(), 0);
    assert_eq!(status.errors(), ["etcdserver: no leader"]);
    let strict = ConnectOptions::new().with_require_leader(true);
    let mut strict = Client::connect([&urls[leader]], Some(strict))
        .await
        .unwrap();
    let started = Instant::now();
    let err = strict.get("k", None).await.unwrap_err();
    assert!(err.to_string().contains("no leader"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    sim.shutdown().await;
}
