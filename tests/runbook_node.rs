//! Node cordon, drain and uncordon against the lab's API server, with its ReplicaSet
//! controller re-creating evicted pods elsewhere: the exact requests the lab received
//! (a merge patch of the node, then one policy/v1 Eviction per evictable pod with
//! `deleteOptions`), the node unschedulable and drained, DaemonSet and mirror pods left
//! alone; a PodDisruptionBudget that allows no disruption answers 429, the runbook names
//! it and retries until the budget allows, or gives up at its timeout with a summary.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use kha::lab::kube::{KubeApiConfig, KubeApiServer, RecordedAnswer, RecordedRequest, Store};
use kha::lab::topology::{Faults, LabSpec, Topology};
use kha::runbook::audit::AuditLog;
use kha::runbook::engine::{Decision, Engine, Operator, Progress};
use kha::runbook::exec::{LiveExecutor, eviction_body};
use kha::runbook::facts::{self, ClusterFacts, Disposition, DrainFlags, PodFacts};
use kha::runbook::node::{self, DrainOptions};
use kha::sources::kube::{KubeSourceConfig, KubeconfigSource};
use serde_json::{Value, json};

/// Says yes and keeps every line of progress.
#[derive(Clone, Default)]
struct Watcher {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Operator for Watcher {
    /// `y`, or the cluster name when a destructive plan asks for it.
    fn ask(&mut self, prompt: &str) -> String {
        if prompt.contains("Type the cluster name") {
            "lab".into()
        } else {
            "y".into()
        }
    }
    fn decide(&mut self, _: usize, _: &str, _: bool) -> Decision {
        Decision::Abort
    }
    fn progress(&mut self, event: Progress) {
        let mut lines = self.lines.lock().unwrap();
        match event {
            Progress::StepOutput { output, .. } => {
                lines.push(output.summary);
                lines.extend(output.lines);
            }
            Progress::StepFailed { error, .. } => lines.push(format!("FAILED: {error}")),
            _ => {}
        }
    }
}

struct LabApi {
    store: Store,
    server: KubeApiServer,
    kube: KubeSourceConfig,
    kubeconfig: std::path::PathBuf,
    topology: Topology,
    dir: tempfile::TempDir,
    _controllers: tokio::task::JoinHandle<()>,
}

async fn lab() -> LabApi {
    let spec = LabSpec::default();
    let topology = Topology::generate(&spec);
    let store = Store::new();
    store
        .put_many(kha::lab::world::objects(
            &topology,
            &spec,
            &Faults::default(),
            SystemTime::now(),
        ))
        .expect("lab objects");
    let server = KubeApiServer::start(store.clone(), KubeApiConfig::default())
        .await
        .expect("API server");
    let controllers = kha::lab::controllers::spawn(store.clone());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kube = KubeSourceConfig::new(Some(KubeconfigSource::File(kubeconfig.clone())), None);
    LabApi {
        store,
        server,
        kube,
        kubeconfig,
        topology,
        dir,
        _controllers: controllers,
    }
}

impl LabApi {
    fn engine(&self) -> Engine<LiveExecutor> {
        Engine {
            executor: LiveExecutor::new(&Default::default(), self.dir.path().to_path_buf())
                .unwrap()
                .with_kube(self.kube.clone()),
            audit: AuditLog::in_dir(self.dir.path()),
            read_only: false,
            poll: Duration::from_millis(100),
            kube_user: None,
            seen: Vec::new(),
        }
    }

    async fn facts(&self, node: &str) -> ClusterFacts {
        let conn = kha::sources::kube::client::connect(
            &KubeconfigSource::File(self.kubeconfig.clone()),
            None,
        )
        .await
        .unwrap();
        facts::gather(&conn.client, &[node.to_string()])
            .await
            .unwrap()
    }

    /// The pods bound to `node` in the store.
    fn pods_on(&self, node: &str) -> Vec<Value> {
        self.store
            .list("v1", "Pod")
            .into_iter()
            .filter(|p| p["spec"]["nodeName"] == node)
            .collect()
    }
}

fn pod_facts(v: &Value) -> PodFacts {
    PodFacts::from_pod(&serde_json::from_value(v.clone()).unwrap()).unwrap()
}

fn evictions(requests: &[RecordedRequest]) -> Vec<&RecordedRequest> {
    requests
        .iter()
        .filter(|r| r.path.ends_with("/eviction"))
        .collect()
}

/// The write requests the lab received, and the statuses it answered them with.
fn writes(lab: &LabApi) -> (Vec<RecordedRequest>, Vec<RecordedAnswer>) {
    let recorder = lab.server.recorder();
    (recorder.writes(), recorder.answers())
}

fn fast() -> DrainOptions {
    DrainOptions {
        grace_seconds: Some(30),
        timeout_secs: 20,
        retry_secs: 1,
        ..DrainOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_cordons_then_evicts_every_pod_but_mirror_and_daemonset_pods() {
    let lab = lab().await;
    let node = lab.topology.workers[0].name.clone();
    let before = lab.pods_on(&node);
    let to_evict: Vec<PodFacts> = before
        .iter()
        .map(pod_facts)
        .filter(|p| p.disposition(DrainFlags::default()) == Disposition::Evict)
        .collect();
    let daemons: Vec<PodFacts> = before
        .iter()
        .map(pod_facts)
        .filter(|p| p.disposition(DrainFlags::default()) == Disposition::SkipDaemonSet)
        .collect();
    assert!(!to_evict.is_empty() && !daemons.is_empty(), "{before:#?}");
    // Every pod the ReplicaSet controller must replace, by owner.
    let total_pods = lab.store.list("v1", "Pod").len();

    let facts = lab.facts(&node).await;
    let rb = node::drain("lab", &facts, &node, fast());
    assert!(rb.unmet().is_empty(), "{:?}", rb.unmet());
    lab.server.recorder().clear();

    // --read-only: the engine refuses before sending anything.
    let mut read_only = lab.engine();
    read_only.read_only = true;
    let err = read_only
        .run(&rb, &mut Watcher::default(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("read-only"), "{err}");
    assert!(writes(&lab).0.is_empty());

    let mut watcher = Watcher::default();
    let report = lab
        .engine()
        .run(&rb, &mut watcher, None)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{:#?}", watcher.lines.lock().unwrap()));
    assert_eq!(report.completed, 2);

    // Exactly: the cordon patch, then one Eviction per evictable pod, nothing else.
    let (requests, answers) = writes(&lab);
    let cordon = &requests[0];
    assert_eq!(
        (cordon.method.as_str(), cordon.path.as_str()),
        ("PATCH", format!("/api/v1/nodes/{node}").as_str())
    );
    assert_eq!(
        cordon.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(cordon.body, json!({"spec": {"unschedulable": true}}));
    assert_eq!(answers[0].code, 200);
    let evicted = evictions(&requests);
    assert_eq!(requests.len(), 1 + evicted.len(), "{requests:#?}");
    let mut asked: Vec<String> = evicted.iter().map(|r| r.path.clone()).collect();
    asked.sort();
    let mut expected: Vec<String> = to_evict
        .iter()
        .map(|p| {
            format!(
                "/api/v1/namespaces/{}/pods/{}/eviction",
                p.namespace, p.name
            )
        })
        .collect();
    expected.sort();
    assert_eq!(asked, expected);
    for r in &evicted {
        assert_eq!(r.method, "POST");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let body = r.body.clone();
        let (ns, name) = (
            body["metadata"]["namespace"].as_str().unwrap(),
            body["metadata"]["name"].as_str().unwrap(),
        );
        assert_eq!(body, eviction_body(ns, name, Some(30)));
        assert_eq!(body["deleteOptions"], json!({"gracePeriodSeconds": 30}));
    }
    assert_eq!(answers.len(), requests.len());
    assert!(answers[1..].iter().all(|a| a.code == 201), "{answers:#?}");

    // The node: unschedulable, only DaemonSet pods left; the evicted pods were
    // re-created on other nodes by their ReplicaSets.
    let stored = lab.store.get("v1", "Node", None, &node).unwrap();
    assert_eq!(stored["spec"]["unschedulable"], true);
    let after: Vec<PodFacts> = lab.pods_on(&node).iter().map(pod_facts).collect();
    assert!(
        after
            .iter()
            .all(|p| !p.disposition(DrainFlags::ALL).evicts()),
        "{after:#?}"
    );
    assert_eq!(after.len(), daemons.len());
    let settled = Instant::now() + Duration::from_secs(10);
    while lab.store.list("v1", "Pod").len() < total_pods && Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pods = lab.store.list("v1", "Pod");
    assert_eq!(pods.len(), total_pods, "every evicted pod was replaced");
    for p in &to_evict {
        let (_, rs) = p.controller.clone().unwrap();
        let replacement = pods.iter().map(pod_facts).find(|q| {
            q.controller.as_ref().is_some_and(|(_, n)| n == &rs)
                && q.name != p.name
                && q.node.as_deref() != Some(node.as_str())
                && !before
                    .iter()
                    .any(|b| b["metadata"]["name"] == q.name.as_str())
        });
        assert!(replacement.is_some(), "no replacement for {}", p.key());
    }
    let lines = watcher.lines.lock().unwrap().join("\n");
    assert!(
        lines.contains(&format!(
            "drained {node}: evicted {}, skipped {}",
            to_evict.len(),
            daemons.len()
        )),
        "{lines}"
    );

    // Uncordon: the merge patch kubectl uncordon sends, and the node schedulable.
    lab.server.recorder().clear();
    let facts = lab.facts(&node).await;
    lab.engine()
        .run(
            &node::uncordon("lab", &facts, &node),
            &mut Watcher::default(),
            None,
        )
        .await
        .unwrap();
    let (requests, _) = writes(&lab);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body, json!({"spec": {"unschedulable": null}}));
    let stored = lab.store.get("v1", "Node", None, &node).unwrap();
    assert_ne!(stored["spec"]["unschedulable"], true, "{}", stored["spec"]);
}

/// The budget that selects `pod` (the lab's app budgets select by `app`).
fn budget_of(lab: &LabApi, pod: &PodFacts) -> String {
    let pdbs = lab.store.list("policy/v1", "PodDisruptionBudget");
    let pdb = pdbs
        .iter()
        .find(|b| {
            b["metadata"]["namespace"] == pod.namespace.as_str()
                && b["spec"]["selector"]["matchLabels"]
                    .as_object()
                    .is_some_and(|m| {
                        !m.is_empty()
                            && m.iter()
                                .all(|(k, v)| pod.labels.get(k).map(String::as_str) == v.as_str())
                    })
        })
        .unwrap_or_else(|| panic!("no budget selects {}", pod.key()));
    pdb["metadata"]["name"].as_str().unwrap().to_string()
}

fn set_allowed(lab: &LabApi, namespace: &str, pdb: &str, allowed: i64) {
    lab.store
        .modify(
            "policy/v1",
            "PodDisruptionBudget",
            Some(namespace),
            pdb,
            |p| p["status"]["disruptionsAllowed"] = json!(allowed),
        )
        .unwrap();
}

/// Every budget of the pods on `node` but `except` allows plenty (the lab's own may
/// allow none), so only the budget under test blocks.
/// The second worker, with one evictable pod whose budget allows no disruption now
/// and every other budget of the node allowing one: `(node, that pod, its budget)`.
fn one_pod_blocked(lab: &LabApi) -> (String, PodFacts, String) {
    let node = lab.topology.workers[1].name.clone();
    let victim = lab
        .pods_on(&node)
        .iter()
        .map(pod_facts)
        .find(|p| p.disposition(DrainFlags::default()) == Disposition::Evict)
        .expect("an evictable pod");
    let pdb = budget_of(lab, &victim);
    allow_others(lab, &node, &pdb);
    set_allowed(lab, &victim.namespace, &pdb, 0);
    (node, victim, pdb)
}

fn allow_others(lab: &LabApi, node: &str, except: &str) {
    for pod in lab.pods_on(node).iter().map(pod_facts) {
        if pod.disposition(DrainFlags::default()) != Disposition::Evict {
            continue;
        }
        let pdb = budget_of(lab, &pod);
        if pdb != except {
            set_allowed(lab, &pod.namespace, &pdb, 10);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_budget_is_named_and_retried_until_it_allows_or_the_drain_times_out() {
    let lab = lab().await;
    let (node, victim, pdb) = one_pod_blocked(&lab);

    // The plan predicts the blocker.
    let facts = lab.facts(&node).await;
    let rb = node::drain("lab", &facts, &node, fast());
    let explanation = &rb.steps[1].explanation;
    assert!(
        explanation.contains(&format!(
            "PodDisruptionBudget {}/{pdb} allows 0 disruptions now",
            victim.namespace
        )),
        "{explanation}"
    );

    // The drain runs; the lab answers 429 for the victim until the budget allows.
    lab.server.recorder().clear();
    let watcher = Watcher::default();
    let mut engine = lab.engine();
    let finished = std::sync::atomic::AtomicBool::new(false);
    let victim_path = format!(
        "/api/v1/namespaces/{}/pods/{}/eviction",
        victim.namespace, victim.name
    );
    let refused_twice = |answers: &[RecordedAnswer]| {
        answers
            .iter()
            .filter(|r| r.path == victim_path && r.code == 429)
            .count()
            >= 2
    };
    let drive = async {
        let mut w = watcher.clone();
        let result = engine.run(&rb, &mut w, None).await;
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        result
    };
    let unblock = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !refused_twice(&lab.server.recorder().answers()) {
            if finished.load(std::sync::atomic::Ordering::SeqCst) || Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        set_allowed(&lab, &victim.namespace, &pdb, 1);
        true
    };
    let (result, unblocked) = tokio::join!(drive, unblock);
    assert!(
        unblocked,
        "no retried 429 for {}: {:#?}\n{:#?}",
        victim.key(),
        lab.server.recorder().answers(),
        watcher.lines.lock().unwrap()
    );
    let report = result.unwrap_or_else(|e| {
        let seen: Vec<String> = lab
            .server
            .recorder()
            .answers()
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.code))
            .collect();
        panic!("{e:#}\n{:#?}\n{seen:#?}", watcher.lines.lock().unwrap());
    });
    assert_eq!(report.completed, 2);
    let answers = lab.server.recorder().answers();
    let last = answers.iter().rfind(|r| r.path == victim_path).unwrap();
    assert_eq!(last.code, 201, "the victim was evicted once allowed");
    let lines = watcher.lines.lock().unwrap().join("\n");
    assert!(
        lines.contains(&format!(
            "{} blocked: PodDisruptionBudget {}/{pdb} allows no disruption (429: The disruption budget {pdb} needs",
            victim.key(),
            victim.namespace
        )),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("evicted {}", victim.key())),
        "{lines}"
    );

    // A budget that never allows: the drain gives up at its timeout, says what it did
    // and what still blocks, and the node stays cordoned.
    let node = lab.topology.workers[2].name.clone();
    let victim = lab
        .pods_on(&node)
        .iter()
        .map(pod_facts)
        .find(|p| p.disposition(DrainFlags::default()) == Disposition::Evict)
        .expect("an evictable pod");
    let pdb = budget_of(&lab, &victim);
    allow_others(&lab, &node, &pdb);
    set_allowed(&lab, &victim.namespace, &pdb, 0);
    let facts = lab.facts(&node).await;
    let opts = DrainOptions {
        grace_seconds: None,
        timeout_secs: 3,
        retry_secs: 1,
        ..DrainOptions::default()
    };
    let watcher = Watcher::default();
    let err = lab
        .engine()
        .run(
            &node::drain("lab", &facts, &node, opts),
            &mut watcher.clone(),
            None,
        )
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(err.contains("aborted at step 2"), "{err}");
    assert!(
        err.contains(&format!("drain of {node} incomplete after 3 s")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{} still blocked: PodDisruptionBudget {}/{pdb} allows no disruption",
            victim.key(),
            victim.namespace
        )),
        "{err}"
    );
    assert!(err.contains("blocked 1"), "{err}");
    let stored = lab.store.get("v1", "Node", None, &node).unwrap();
    assert_eq!(stored["spec"]["unschedulable"], true);
    assert!(
        lab.pods_on(&node)
            .iter()
            .any(|p| p["metadata"]["name"] == victim.name.as_str()),
        "the blocked pod stays"
    );
}

impl LabApi {
    async fn client(&self) -> kube::Client {
        kha::sources::kube::client::connect(&KubeconfigSource::File(self.kubeconfig.clone()), None)
            .await
            .unwrap()
            .client
    }

    /// Creates a pod on `node` through the API, as `kubectl run` or a StatefulSet would.
    async fn create_pod(&self, pod: Value) {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
        let ns = pod.metadata.namespace.clone().unwrap();
        kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(self.client().await, &ns)
            .create(&kube::api::PostParams::default(), &pod)
            .await
            .unwrap_or_else(|e| panic!("create {ns}/{:?}: {e}", pod.metadata.name));
    }
}

/// A running pod on `node`; `owner`: its controlling ReplicaSet; `empty_dir`: a scratch
/// volume.
fn running_pod(
    namespace: &str,
    name: &str,
    node: &str,
    owner: Option<&str>,
    empty_dir: bool,
) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"run": name}},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    });
    if let Some(rs) = owner {
        pod["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
            "uid": format!("uid-{rs}"), "controller": true,
        }]);
    }
    if empty_dir {
        pod["spec"]["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
        pod["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "scratch", "mountPath": "/scratch"}]);
    }
    pod
}

/// kubectl drain's refusals: a pod no controller manages needs --force, one with an
/// emptyDir volume --delete-emptydir-data. Without them the plan is refused, naming the
/// pods and the flag; a plan made before they appeared fails at the drain step with the
/// same words, evicting nothing; with both flags both are evicted (and stay gone: the
/// bare pod has nothing to recreate it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_without_a_controller_or_with_emptydir_refuse_the_drain_unless_flagged() {
    let lab = lab().await;
    let node = lab.topology.workers[1].name.clone();
    allow_others(&lab, &node, "");
    let namespace = lab
        .pods_on(&node)
        .iter()
        .map(pod_facts)
        .find(|p| p.disposition(DrainFlags::default()) == Disposition::Evict)
        .expect("an evictable pod")
        .namespace;
    // Planned before the pods appear: nothing to refuse yet.
    let before = lab.facts(&node).await;
    let stale = node::drain("lab", &before, &node, fast());
    assert!(stale.unmet().is_empty(), "{:?}", stale.unmet());

    lab.create_pod(running_pod(&namespace, "debug-shell", &node, None, false))
        .await;
    lab.create_pod(running_pod(
        &namespace,
        "cache-0",
        &node,
        Some("cache-5f7d9"),
        true,
    ))
    .await;
    let bare = format!("{namespace}/debug-shell");
    let scratch = format!("{namespace}/cache-0");
    let facts = lab.facts(&node).await;

    // Planned now: refused, naming each pod (in the API's order, by name) and the flag
    // that lets it go.
    let rb = node::drain("lab", &facts, &node, fast());
    let unmet = rb.unmet();
    assert_eq!(unmet.len(), 1, "{unmet:?}");
    let refusal = unmet[0].evidence.clone();
    assert_eq!(
        refusal,
        format!(
            "2 pod(s) need a flag: {scratch}: emptyDir volume, its data would be lost \
             (--delete-emptydir-data); {bare}: no controller, nothing would recreate it (--force)"
        )
    );
    // --force alone: the emptyDir pod still refuses.
    let forced = node::drain(
        "lab",
        &facts,
        &node,
        DrainOptions {
            force: true,
            ..fast()
        },
    );
    assert_eq!(
        forced.unmet()[0].evidence,
        format!(
            "1 pod(s) need a flag: {scratch}: emptyDir volume, its data would be lost (--delete-emptydir-data)"
        )
    );
    lab.server.recorder().clear();
    let err = lab
        .engine()
        .run(&rb, &mut Watcher::default(), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("preconditions not met: the drain may evict every pod"),
        "{err}"
    );
    assert!(writes(&lab).0.is_empty());

    // The stale plan runs: the cordon, then the drain re-checks and refuses with the
    // precondition's words, evicting nothing.
    let err = lab
        .engine()
        .run(&stale, &mut Watcher::default(), None)
        .await
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains(&format!(
            "drain of {node} refused, nothing evicted: {refusal}. {node} stays cordoned"
        )),
        "{err}"
    );
    let (requests, _) = writes(&lab);
    assert_eq!(requests.len(), 1, "only the cordon: {requests:#?}");
    assert!(evictions(&requests).is_empty());
    assert_eq!(lab.pods_on(&node).len(), facts.pods.len());

    // Both flags: destructive, and both pods evicted through the Eviction API.
    let opts = DrainOptions {
        force: true,
        delete_emptydir_data: true,
        ..fast()
    };
    let facts = lab.facts(&node).await;
    let rb = node::drain("lab", &facts, &node, opts);
    assert!(rb.unmet().is_empty(), "{:?}", rb.unmet());
    assert_eq!(rb.risk(), kha::runbook::Risk::Destructive);
    let flags = &rb.preconditions[2].evidence;
    assert!(
        flags.contains(&format!(
            "--force evicts 1 pod(s) no controller recreates: {bare}"
        )) && flags.contains(&format!(
            "--delete-emptydir-data loses the emptyDir data of 1 pod(s): {scratch}"
        )),
        "{flags}"
    );
    lab.server.recorder().clear();
    let mut watcher = Watcher::default();
    lab.engine()
        .run(&rb, &mut watcher, None)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{:#?}", watcher.lines.lock().unwrap()));
    let (requests, answers) = writes(&lab);
    for key in [&bare, &scratch] {
        let (ns, name) = key.split_once('/').unwrap();
        let path = format!("/api/v1/namespaces/{ns}/pods/{name}/eviction");
        let i = requests
            .iter()
            .position(|r| r.path == path)
            .unwrap_or_else(|| panic!("no eviction of {key}: {requests:#?}"));
        assert_eq!(requests[i].body, eviction_body(ns, name, Some(30)));
        assert_eq!(answers[i].code, 201);
    }
    let left: Vec<String> = lab
        .pods_on(&node)
        .iter()
        .map(|p| pod_facts(p).key())
        .collect();
    assert!(
        !left.contains(&bare) && !left.contains(&scratch),
        "{left:?}"
    );
    assert!(
        lab.store
            .get("v1", "Pod", Some(&namespace), "debug-shell")
            .is_none(),
        "nothing recreates a bare pod"
    );
}

/// The drain says what it does while it runs: a blocked eviction's retry arrives on the
/// progress sink while the drain still waits for the budget (which this test opens only
/// once it has seen that line), well before the step's output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_reports_each_eviction_and_retry_live() {
    let lab = lab().await;
    let (node, victim, pdb) = one_pod_blocked(&lab);
    let facts = lab.facts(&node).await;
    let rb = node::drain("lab", &facts, &node, fast());

    let live: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let sink = live.clone();
    let mut engine = lab.engine();
    engine.executor = engine.executor.with_progress(Arc::new(move |line: String| {
        sink.lock().unwrap().push((Instant::now(), line))
    }));
    let watcher = Watcher::default();
    let step_ended: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut stamped = Stamped(watcher.clone(), step_ended.clone());
    let blocked = format!(
        "{} blocked by PodDisruptionBudget {}/{pdb}, retrying in 1 s (",
        victim.key(),
        victim.namespace
    );
    let drive = engine.run(&rb, &mut stamped, None);
    let open_when_seen = async {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let seen = live
                .lock()
                .unwrap()
                .iter()
                .any(|(_, l)| l.starts_with(&blocked));
            if seen {
                // Still running: the drain cannot end before the budget allows.
                let running = step_ended.lock().unwrap().is_none();
                set_allowed(&lab, &victim.namespace, &pdb, 1);
                return running;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (result, seen_while_running) = tokio::join!(drive, open_when_seen);
    let lines: Vec<String> = live
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| l.clone())
        .collect();
    result.unwrap_or_else(|e| panic!("{e:#}\n{lines:#?}"));
    assert!(
        seen_while_running,
        "no live retry line while the drain ran: {lines:#?}"
    );
    let ended = step_ended.lock().unwrap().expect("the step ended");
    let live = live.lock().unwrap();
    let (at, line) = live.iter().find(|(_, l)| l.starts_with(&blocked)).unwrap();
    assert!(*at < ended, "{line}");
    assert!(line.ends_with(" of 20 s)"), "{line}");
    let evicted = format!("evicted {}", victim.key());
    assert!(
        live.iter().any(|(at, l)| *l == evicted && *at < ended),
        "{lines:#?}"
    );
    // The step's output (what the audit log keeps) is as it was without the sink.
    let output = watcher.lines.lock().unwrap().join("\n");
    assert!(output.contains(&evicted), "{output}");
    assert!(!output.contains("retrying in 1 s ("), "{output}");
}

/// A [`Watcher`] that also notes when the drain step (step 2) ended.
struct Stamped(Watcher, Arc<Mutex<Option<Instant>>>);

impl Operator for Stamped {
    fn ask(&mut self, prompt: &str) -> String {
        self.0.ask(prompt)
    }
    fn decide(&mut self, step: usize, error: &str, skippable: bool) -> Decision {
        self.0.decide(step, error, skippable)
    }
    fn progress(&mut self, event: Progress) {
        if let Progress::StepOutput { step: 2, .. } | Progress::StepFailed { step: 2, .. } = &event
        {
            self.1.lock().unwrap().get_or_insert_with(Instant::now);
        }
        self.0.progress(event);
    }
}

/// The same drain started from the cockpit (its runner, as `y` starts it): each
/// eviction is a progress line while the step runs, and appears once, not again when
/// the step's output arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cockpit_shows_a_drains_evictions_once_as_they_happen() {
    let lab = lab().await;
    let node = lab.topology.workers[2].name.clone();
    let evictable: Vec<PodFacts> = lab
        .pods_on(&node)
        .iter()
        .map(pod_facts)
        .filter(|p| p.disposition(DrainFlags::default()) == Disposition::Evict)
        .collect();
    assert!(!evictable.is_empty(), "the node has pods to evict");
    allow_others(&lab, &node, "");
    let facts = lab.facts(&node).await;
    let rb = node::drain("lab", &facts, &node, fast());

    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let mut runner = kha::runbook::tui::RunbookRunner::new(
        Default::default(),
        lab.dir.path().to_path_buf(),
        false,
        tx,
    );
    runner.kube = Some(lab.kube.clone());
    runner.spawn(rb, "y".into(), Vec::new());
    let mut lines = Vec::new();
    let finished = loop {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(kha::model::Msg::RunbookProgress(line))) => lines.push(line),
            Ok(Some(kha::model::Msg::RunbookFinished(result))) => break result,
            Ok(Some(_)) => {}
            other => panic!("the run did not finish: {other:?}\n{lines:#?}"),
        }
    };
    assert!(finished.is_ok(), "{finished:?}\n{lines:#?}");
    for p in &evictable {
        let evicted = format!("    | evicted {}", p.key());
        assert_eq!(
            lines.iter().filter(|l| **l == evicted).count(),
            1,
            "{evicted:?} once:\n{lines:#?}"
        );
    }
    // Before the step's summary, i.e. while it ran.
    let first_eviction = lines
        .iter()
        .position(|l| l.starts_with("    | evicted "))
        .unwrap();
    let step_output = lines
        .iter()
        .position(|l| l.starts_with("    ") && l.contains("evicted") && !l.starts_with("    | "))
        .unwrap_or(lines.len());
    assert!(first_eviction < step_output, "{lines:#?}");
}
