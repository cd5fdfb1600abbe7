//! Golden tests of the LB, node and zone runbooks' plans (the Markdown `--plan`
//! prints), from fixed facts: a three-zone cluster, an HAProxy with three apiserver
//! backends, an nginx upstream. `KHA_UPDATE_GOLDEN=1 cargo test --test
//! runbook_failover_plans` rewrites the files after an intended change; review the diff.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use common::{Scenario, observation};
use kha::model::lb::{
    BackendProbe, HealthCheck, LbKind, LbObservation, LbServer, LbStatus, LbView,
};
use kha::runbook::facts::{ClusterFacts, NodeFacts, PdbFacts, PodFacts, Resources};
use kha::runbook::lb::{self, BackendAction, NginxTarget};
use kha::runbook::node::{self, DrainOptions};
use kha::runbook::{Risk, plan, zone};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/runbooks")
        .join(name);
    if std::env::var_os("KHA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with KHA_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert_eq!(actual, expected, "plan differs from {}", path.display());
}

const GIB: u64 = 1 << 30;

fn node(name: &str, zone: &str, cpu: u64, mem_gib: u64, gpus: u64) -> NodeFacts {
    let control_plane = name.starts_with("cp-");
    let mut blocking_taints = Vec::new();
    if control_plane {
        blocking_taints.push("node-role.kubernetes.io/control-plane:NoSchedule".into());
    }
    if gpus > 0 {
        blocking_taints.push("nvidia.com/gpu=present:NoSchedule".into());
    }
    NodeFacts {
        name: name.into(),
        zone: Some(zone.into()),
        ready: true,
        unschedulable: false,
        control_plane,
        blocking_taints,
        allocatable: Resources {
            cpu_millis: cpu * 1000,
            memory_bytes: mem_gib * GIB,
            gpus,
        },
    }
}

fn pod(
    ns: &str,
    name: &str,
    node: &str,
    owner: Option<(&str, &str)>,
    cpu_m: u64,
    mem_mib: u64,
    gpus: u64,
) -> PodFacts {
    let app = name.split('-').next().unwrap_or(name);
    PodFacts {
        namespace: ns.into(),
        name: name.into(),
        uid: Some(format!("uid-{name}")),
        node: Some(node.into()),
        phase: "Running".into(),
        labels: BTreeMap::from([("app".to_string(), app.to_string())]),
        mirror: owner.is_some_and(|(k, _)| k == "Node"),
        controller: owner.map(|(k, n)| (k.to_string(), n.to_string())),
        component: None,
        etcd_name: None,
        ready: true,
        requests: Resources {
            cpu_millis: cpu_m,
            memory_bytes: mem_mib << 20,
            gpus,
        },
        empty_dir: false,
    }
}

fn static_pod(component: &str, node: &str, etcd: Option<&str>) -> PodFacts {
    let mut p = pod(
        "kube-system",
        &format!("{component}-{node}"),
        node,
        Some(("Node", node)),
        250,
        256,
        0,
    );
    p.component = Some(component.into());
    p.etcd_name = etcd.map(str::to_string);
    p
}

/// Three zones; worker-a-1 runs two web pods (their budget allows none), a DaemonSet
/// pod, a pod nobody owns and a cache pod with an emptyDir volume; worker-c-1 two api
/// pods; the GPU nodes run one training pod each.
fn cluster() -> ClusterFacts {
    let nodes = vec![
        node("cp-a", "eu-west-1a", 4, 16, 0),
        node("cp-b", "eu-west-1b", 4, 16, 0),
        node("cp-c", "eu-west-1c", 4, 16, 0),
        node("worker-a-1", "eu-west-1a", 8, 32, 0),
        node("worker-b-1", "eu-west-1b", 8, 32, 0),
        node("worker-c-1", "eu-west-1c", 8, 32, 0),
        node("gpu-a-1", "eu-west-1a", 64, 512, 8),
        node("gpu-b-1", "eu-west-1b", 64, 512, 8),
    ];
    let mut pods = Vec::new();
    for (cp, member) in [("cp-a", "etcd-a"), ("cp-b", "etcd-b"), ("cp-c", "etcd-c")] {
        pods.push(static_pod("kube-apiserver", cp, None));
        pods.push(static_pod("etcd", cp, Some(member)));
    }
    for n in [
        "worker-a-1",
        "worker-b-1",
        "worker-c-1",
        "gpu-a-1",
        "gpu-b-1",
        "cp-a",
        "cp-b",
        "cp-c",
    ] {
        pods.push(pod(
            "kube-system",
            &format!("cilium-{n}"),
            n,
            Some(("DaemonSet", "cilium")),
            100,
            128,
            0,
        ));
    }
    let rs = Some(("ReplicaSet", "web-7d4b9c"));
    pods.push(pod(
        "shop",
        "web-7d4b9c-abcde",
        "worker-a-1",
        rs,
        500,
        512,
        0,
    ));
    pods.push(pod(
        "shop",
        "web-7d4b9c-fghij",
        "worker-a-1",
        rs,
        500,
        512,
        0,
    ));
    pods.push(pod(
        "shop",
        "web-7d4b9c-klmno",
        "worker-b-1",
        rs,
        500,
        512,
        0,
    ));
    pods.push(pod("shop", "debug-shell", "worker-a-1", None, 100, 64, 0));
    let mut cache = pod(
        "shop",
        "cache-0",
        "worker-a-1",
        Some(("StatefulSet", "cache")),
        250,
        1024,
        0,
    );
    cache.empty_dir = true;
    pods.push(cache);
    let api = Some(("ReplicaSet", "api-5f6c9"));
    pods.push(pod(
        "shop",
        "api-5f6c9-pqrst",
        "worker-c-1",
        api,
        1000,
        2048,
        0,
    ));
    pods.push(pod(
        "shop",
        "api-5f6c9-uvwxy",
        "worker-c-1",
        api,
        1000,
        2048,
        0,
    ));
    pods.push(pod(
        "ml",
        "train-6f5d-a1b2c",
        "gpu-a-1",
        Some(("ReplicaSet", "train-6f5d")),
        16000,
        64 * 1024,
        4,
    ));
    pods.push(pod(
        "ml",
        "train-6f5d-d3e4f",
        "gpu-b-1",
        Some(("ReplicaSet", "train-6f5d")),
        16000,
        64 * 1024,
        4,
    ));
    ClusterFacts {
        nodes,
        pods,
        pdbs: vec![PdbFacts {
            namespace: "shop".into(),
            name: "web".into(),
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            disruptions_allowed: 0,
            current_healthy: 3,
            desired_healthy: 3,
        }],
        pods_listed: true,
    }
}

fn opts() -> DrainOptions {
    DrainOptions::default()
}

#[test]
fn node_drain_plan_lists_the_pods_and_the_predicted_blocker() {
    let facts = cluster();
    // As kubectl drain: the bare pod needs --force, the emptyDir one
    // --delete-emptydir-data; without them the plan is refused, naming both.
    let refused = node::drain("prod-eu", &facts, "worker-a-1", opts());
    let unmet = refused.unmet();
    assert_eq!(unmet.len(), 1);
    assert_eq!(
        unmet[0].evidence,
        "2 pod(s) need a flag: shop/debug-shell: no controller, nothing would recreate it (--force); \
         shop/cache-0: emptyDir volume, its data would be lost (--delete-emptydir-data)"
    );
    assert_eq!(refused.risk(), Risk::Disruptive);
    golden("node-drain-refused.md", &plan::markdown(&refused));

    let flagged = DrainOptions {
        force: true,
        delete_emptydir_data: true,
        ..opts()
    };
    let rb = node::drain("prod-eu", &facts, "worker-a-1", flagged);
    assert!(rb.unmet().is_empty());
    assert_eq!(rb.risk(), Risk::Destructive);
    let md = plan::markdown(&rb);
    assert!(md.contains("- shop/web-7d4b9c-abcde (ReplicaSet web-7d4b9c): evict — PodDisruptionBudget shop/web allows 0 disruptions now: will wait"), "{md}");
    assert!(
        md.contains(
            "- shop/debug-shell (no controller): evict for good (--force; nothing recreates it)"
        ),
        "{md}"
    );
    assert!(
        md.contains("- shop/cache-0 (StatefulSet cache): evict, its emptyDir data is lost (--delete-emptydir-data)"),
        "{md}"
    );
    assert!(md.contains("(--force --delete-emptydir-data)"), "{md}");
    golden("node-drain.md", &md);
    golden(
        "node-uncordon.md",
        &plan::markdown(&node::uncordon("prod-eu", &facts, "worker-a-1")),
    );
    let missing = node::drain("prod-eu", &facts, "worker-z-9", opts());
    assert_eq!(missing.unmet().len(), 1);
}

#[test]
fn zone_evacuation_plans_show_the_numbers_and_refuse_losing_quorum() {
    let facts = cluster();
    let etcd = observation(Scenario::Healthy);
    let rb = zone::evacuate("prod-eu", &facts, Some(&etcd), "eu-west-1c", opts());
    assert!(rb.unmet().is_empty(), "{}", plan::markdown(&rb));
    assert_eq!(rb.risk(), Risk::Destructive);
    let md = plan::markdown(&rb);
    assert!(md.contains("needed by 2 pod(s): CPU 2.0 cores, memory 4.0 GiB; free on 2 schedulable node(s) elsewhere: CPU 13.9 cores"), "{md}");
    golden("zone-evacuate.md", &md);

    // A batch pod of 7.5 cores in eu-west-1c: the other zones have 13.9 cores free in
    // total, but no single node has 7.5, so the pod would stay Pending.
    let mut big = facts.clone();
    big.pods.push(pod(
        "shop",
        "batch-6c8f-zz9yx",
        "worker-c-1",
        Some(("ReplicaSet", "batch-6c8f")),
        7500,
        1024,
        0,
    ));
    let no_fit = zone::evacuate("prod-eu", &big, Some(&etcd), "eu-west-1c", opts());
    let unmet = no_fit.unmet();
    assert_eq!(unmet.len(), 1, "{}", plan::markdown(&no_fit));
    assert!(
        unmet[0].evidence.ends_with(
            "the totals would do, but 1 pod(s) fit on no single node: shop/batch-6c8f-zz9yx (CPU 7.5, memory 1.0 GiB); they would stay Pending"
        ),
        "{}",
        unmet[0].evidence
    );
    golden("zone-evacuate-no-fit.md", &plan::markdown(&no_fit));

    // etcd-b already down: without eu-west-1c only etcd-a is left.
    let one_down = {
        let mut o = observation(Scenario::Healthy);
        o.members[1] = common::member("etcd-b", 2, false, 0);
        o
    };
    let refused = zone::evacuate("prod-eu", &facts, Some(&one_down), "eu-west-1c", opts());
    assert_eq!(refused.unmet().len(), 1);
    assert!(
        refused.unmet()[0]
            .evidence
            .contains("would lose etcd quorum")
    );
    golden("zone-evacuate-quorum-lost.md", &plan::markdown(&refused));

    // Zone a holds a GPU node whose training pod needs 4 GPUs; gpu-b-1 has 4 free.
    let gpu = zone::evacuate("prod-eu", &facts, Some(&etcd), "eu-west-1a", opts());
    let md = plan::markdown(&gpu);
    assert!(md.contains("- [x] the other zones have GPUs (nvidia.com/gpu) for the GPU pods of eu-west-1a — needed by 1 GPU pod(s): GPUs 4"), "{md}");
    assert!(
        md.contains("free on 1 GPU node(s) elsewhere: GPUs 4"),
        "{md}"
    );
}

fn check(status: u16) -> HealthCheck {
    HealthCheck {
        status: Some(status),
        failing: if status == 200 {
            vec![]
        } else {
            vec!["etcd".into()]
        },
        latency: Duration::from_millis(3),
        error: None,
    }
}

fn lb_observation(states: [&str; 3], ready: [u16; 3]) -> LbObservation {
    let names = ["cp-a", "cp-b", "cp-c"];
    let backends = (0..3)
        .map(|i| BackendProbe {
            name: names[i].into(),
            url: format!("https://10.0.0.{}:6443", i + 1),
            address: format!("10.0.0.{}:6443", i + 1),
            zone: None,
            readyz: Some(check(ready[i])),
            livez: Some(check(200)),
            cert_not_after: None,
        })
        .collect();
    let servers = (0..3)
        .map(|i| LbServer {
            proxy: "kube-apiserver".into(),
            name: names[i].into(),
            address: Some(format!("10.0.0.{}:6443", i + 1)),
            status: LbStatus::parse(states[i]),
            check: Some("L7OK 200".into()),
            check_passed: Some(true),
            last_change_secs: Some(60),
            sessions: Some(3),
            weight: Some(1),
            admin: None,
        })
        .collect();
    LbObservation {
        observed_at: SystemTime::UNIX_EPOCH,
        backends,
        lb: Some(LbView {
            kind: LbKind::Haproxy,
            source: "unix:///run/haproxy/admin.sock".into(),
            read_at: Some(SystemTime::UNIX_EPOCH),
            servers,
            error: None,
        }),
    }
}

#[test]
fn lb_plans_for_haproxy_and_nginx() {
    let sock = "unix:///run/haproxy/admin.sock";
    let healthy = lb_observation(["UP", "UP", "UP"], [200, 200, 200]);
    let rb = lb::haproxy("prod-eu", &healthy, sock, "cp-b", BackendAction::Drain).unwrap();
    assert!(rb.unmet().is_empty());
    golden("lb-drain.md", &plan::markdown(&rb));
    let drained = lb_observation(["UP", "DRAIN", "UP"], [200, 200, 200]);
    let rb = lb::haproxy("prod-eu", &drained, sock, "cp-b", BackendAction::Ready).unwrap();
    golden("lb-ready.md", &plan::markdown(&rb));
    // cp-a in maintenance, cp-c unready: cp-b is the last one serving.
    let last = lb_observation(["MAINT", "UP", "UP"], [200, 200, 500]);
    let rb = lb::haproxy("prod-eu", &last, sock, "cp-b", BackendAction::Maint).unwrap();
    assert_eq!(rb.unmet().len(), 1);
    golden("lb-maint-last-backend.md", &plan::markdown(&rb));

    let conf = "stream {\n    upstream kube_apiserver {\n        least_conn;\n        server 10.0.0.1:6443 max_fails=3 fail_timeout=30s;\n        server 10.0.0.2:6443 max_fails=3 fail_timeout=30s;\n        server 10.0.0.3:6443 max_fails=3 fail_timeout=30s;\n    }\n    server {\n        listen 6443;\n        proxy_pass kube_apiserver;\n    }\n}\n";
    let target = NginxTarget {
        host: Some("lb-1.example.net".into()),
        config: "/etc/nginx/nginx.conf".into(),
        ..Default::default()
    };
    let rb = lb::nginx(
        "prod-eu",
        &target,
        conf,
        "10.0.0.2:6443",
        BackendAction::Drain,
    )
    .unwrap();
    assert!(rb.unmet().is_empty());
    let md = plan::markdown(&rb);
    assert!(md.contains("-        server 10.0.0.2:6443 max_fails=3 fail_timeout=30s;\n+        server 10.0.0.2:6443 max_fails=3 fail_timeout=30s down;"), "{md}");
    assert!(
        md.contains("`on lb-1.example.net over ssh: nginx -t`"),
        "{md}"
    );
    golden("lb-nginx-drain.md", &md);

    // The usual layout: the upstream in a file the main config includes, nginx started
    // with `-c`; every nginx command carries the same `-c`.
    let included = NginxTarget {
        host: Some("lb-1.example.net".into()),
        config: "/etc/nginx/stream.d/apiserver.conf".into(),
        main_config: Some("/etc/nginx/nginx.conf".into()),
        prefix: None,
        bin: Some("/usr/sbin/nginx".into()),
    };
    let drained = lb::mark_down(conf, "10.0.0.2:6443", true).unwrap();
    let rb = lb::nginx(
        "prod-eu",
        &included,
        &drained,
        "10.0.0.2:6443",
        BackendAction::Ready,
    )
    .unwrap();
    let md = plan::markdown(&rb);
    assert!(
        md.contains(
            "`on lb-1.example.net over ssh: /usr/sbin/nginx -c /etc/nginx/nginx.conf -s reload`"
        ),
        "{md}"
    );
    golden("lb-nginx-ready-included.md", &md);
}

/// Planning a zone evacuation of 5,000 nodes with 30 pods each (150,000 pods, every
/// one weighed for capacity and packed onto the other zones' nodes): prints the time
/// `zone::evacuate` takes, and the Markdown's. Run in release mode.
#[test]
#[ignore = "scale harness: prints numbers, run with --release -- --ignored --nocapture"]
fn zone_evacuation_planning_time_at_scale() {
    const NODES: usize = 5_000;
    const PODS_PER_NODE: usize = 30;
    let zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"];
    let mut nodes = Vec::with_capacity(NODES);
    let mut pods = Vec::with_capacity(NODES * PODS_PER_NODE);
    for (i, (cp, member)) in [("cp-a", "etcd-a"), ("cp-b", "etcd-b"), ("cp-c", "etcd-c")]
        .into_iter()
        .enumerate()
    {
        nodes.push(node(cp, zones[i], 8, 32, 0));
        pods.push(static_pod("kube-apiserver", cp, None));
        pods.push(static_pod("etcd", cp, Some(member)));
    }
    for i in 0..NODES - 3 {
        let zone = zones[i % 3];
        let gpu = i % 50 == 0;
        let name = if gpu {
            format!("gpu-{i:05}")
        } else {
            format!("worker-{i:05}")
        };
        nodes.push(node(&name, zone, 64, 256, if gpu { 8 } else { 0 }));
        pods.push(pod(
            "kube-system",
            &format!("cilium-{i:05}"),
            &name,
            Some(("DaemonSet", "cilium")),
            100,
            128,
            0,
        ));
        for j in 1..PODS_PER_NODE {
            let rs = format!("app-{:03}-5d9c7b", (i * PODS_PER_NODE + j) % 500);
            let gpus = if gpu && j <= 2 { 2 } else { 0 };
            pods.push(pod(
                "shop",
                &format!("{rs}-{i:05}{j:02}"),
                &name,
                Some(("ReplicaSet", &rs)),
                100 + ((i * 7 + j * 13) % 20) as u64 * 100,
                128 + ((i * 11 + j * 3) % 32) as u64 * 128,
                gpus,
            ));
        }
    }
    let facts = ClusterFacts {
        nodes,
        pods,
        pdbs: cluster().pdbs,
        pods_listed: true,
    };
    let etcd = observation(Scenario::Healthy);
    let mut plan_ms = Vec::new();
    let mut markdown_ms = Vec::new();
    let mut rb = None;
    for _ in 0..5 {
        let t = Instant::now();
        let planned = zone::evacuate("prod-eu", &facts, Some(&etcd), "eu-west-1c", opts());
        plan_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let md = plan::markdown(&planned);
        markdown_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(!md.is_empty());
        rb = Some(planned);
    }
    let rb = rb.unwrap();
    plan_ms.sort_by(f64::total_cmp);
    markdown_ms.sort_by(f64::total_cmp);
    println!(
        "zone::evacuate, {} nodes x {PODS_PER_NODE} pods ({} pods), {} steps: median {:.1} ms (min {:.1}); plan::markdown median {:.1} ms",
        facts.nodes.len(),
        facts.pods.len(),
        rb.steps.len(),
        plan_ms[2],
        plan_ms[0],
        markdown_ms[2]
    );
    for p in &rb.preconditions {
        println!(
            "  [{}] {} — {}",
            if p.met { "x" } else { " " },
            p.description,
            p.evidence
        );
    }
}
