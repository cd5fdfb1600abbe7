//! The custom-resource runbooks against the lab's API server and controllers: the exact
//! requests each sends (method, path, subresource, patch content type, body, in order,
//! as the lab recorded them) and the state they leave (an aborted rollout Degraded, a
//! promoted one moved on or Healthy, a Backup and a Restore Completed, an HTTPRoute's
//! weights at every stage).

use std::time::{Duration, SystemTime};

use kha::lab::kube::{KubeApiConfig, KubeApiServer, RecordedRequest, Recorder, Store};
use kha::lab::topology::{Faults, LabSpec, Topology};
use kha::runbook::audit::AuditLog;
use kha::runbook::engine::{Decision, Engine, Operator, Progress};
use kha::runbook::exec::LiveExecutor;
use kha::runbook::{Runbook, rollouts, traffic, velero};
use kha::sources::kube::{KubeSourceConfig, KubeconfigSource};
use serde_json::{Value, json};

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const ROLLOUT: &str = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout";

/// Answers the confirmation, aborts on failure, and notes the route's weights after
/// every step that completes.
struct Confirm {
    answer: &'static str,
    store: Store,
    weights_after_steps: Vec<Vec<u64>>,
}

impl Operator for Confirm {
    fn ask(&mut self, _: &str) -> String {
        self.answer.into()
    }
    fn decide(&mut self, _: usize, _: &str, _: bool) -> Decision {
        Decision::Abort
    }
    fn progress(&mut self, p: Progress) {
        if let Progress::StepDone { .. } = p {
            self.weights_after_steps.push(route_weights(&self.store));
        }
    }
}

struct Lab {
    store: Store,
    server: KubeApiServer,
    recorder: Recorder,
    engine: Engine<LiveExecutor>,
    _dir: tempfile::TempDir,
    _controllers: tokio::task::JoinHandle<()>,
}

async fn lab() -> Lab {
    let spec = LabSpec::default();
    let topology = Topology::generate(&spec);
    let store = Store::new();
    store
        .put_many(kha::lab::world::objects(
            &topology,
            &spec,
            &Faults {
                canary_bad: true,
                ..Faults::default()
            },
            SystemTime::now(),
        ))
        .expect("lab objects");
    let controllers = kha::lab::controllers::spawn(store.clone());
    let server = KubeApiServer::start(store.clone(), KubeApiConfig::default())
        .await
        .expect("API server");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kube = KubeSourceConfig::new(Some(KubeconfigSource::File(kubeconfig)), None);
    let engine = Engine {
        executor: LiveExecutor::new(&Default::default(), dir.path().to_path_buf())
            .unwrap()
            .with_kube(kube),
        audit: AuditLog::in_dir(dir.path()),
        read_only: false,
        poll: Duration::from_millis(50),
        kube_user: None,
        seen: Vec::new(),
    };
    Lab {
        recorder: server.recorder(),
        store,
        server,
        engine,
        _dir: dir,
        _controllers: controllers,
    }
}

impl Lab {
    fn rollout(&self) -> Value {
        self.store
            .get("argoproj.io/v1alpha1", "Rollout", Some("shop"), "checkout")
            .expect("the lab's rollout")
    }

    /// Runs `rb` with `answer` as the confirmation; the recorder starts empty.
    async fn run(&mut self, rb: &Runbook, answer: &'static str) -> Result<Confirm, String> {
        self.recorder.clear();
        let mut op = Confirm {
            answer,
            store: self.store.clone(),
            weights_after_steps: Vec::new(),
        };
        match self.engine.run(rb, &mut op, None).await {
            Ok(_) => Ok(op),
            Err(e) => Err(format!("{e:#}")),
        }
    }

    fn writes(&self) -> Vec<RecordedRequest> {
        self.recorder.writes()
    }
}

fn request(method: &str, path: &str, content_type: &str, body: Value) -> RecordedRequest {
    RecordedRequest {
        method: method.into(),
        path: path.into(),
        query: None,
        content_type: Some(content_type.into()),
        body,
    }
}

/// `/status/<field>` of the rollout.
fn st<'a>(ro: &'a Value, field: &str) -> &'a Value {
    ro.pointer(&format!("/status/{field}"))
        .unwrap_or(&Value::Null)
}

/// `kubectl argo rollouts pause shop/checkout`: `spec.paused`, as the plugin sets it.
fn pause_by_hand(lab: &Lab) {
    lab.store
        .modify(
            "argoproj.io/v1alpha1",
            "Rollout",
            Some("shop"),
            "checkout",
            |ro| ro["spec"]["paused"] = json!(true),
        )
        .unwrap();
}

#[tokio::test]
async fn abort_retry_promote_and_full_promotion_send_what_the_argo_cli_sends() {
    let mut lab = lab().await;
    let before = lab.rollout();
    assert_eq!(st(&before, "phase"), "Paused");
    assert_eq!(st(&before, "currentStepIndex"), 3);

    // abort: one merge patch of the status subresource.
    lab.run(&rollouts::abort("lab", &before), "y")
        .await
        .expect("abort");
    assert_eq!(
        lab.writes(),
        vec![request(
            "PATCH",
            &format!("{ROLLOUT}/status"),
            MERGE,
            json!({"status": {"abort": true}})
        )]
    );
    let aborted = lab.rollout();
    assert_eq!(st(&aborted, "abort"), true);
    assert_eq!(st(&aborted, "phase"), "Degraded");
    assert_eq!(
        st(&aborted, "message"),
        "RolloutAborted: Rollout aborted update to revision 7"
    );
    let conditions = st(&aborted, "conditions").as_array().expect("conditions");
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "RolloutAborted"),
        "{conditions:?}"
    );
    // The canary ReplicaSet was scaled to nothing.
    let canary_hash = st(&aborted, "currentPodHash").as_str().unwrap().to_string();
    let canary_rs = lab
        .store
        .list("apps/v1", "ReplicaSet")
        .into_iter()
        .find(|rs| rs["metadata"]["labels"]["rollouts-pod-template-hash"] == canary_hash.as_str())
        .expect("canary ReplicaSet");
    assert_eq!(canary_rs["spec"]["replicas"], 0);

    // A second abort is refused by its precondition, before any request.
    let again = lab.run(&rollouts::abort("lab", &aborted), "y").await;
    assert!(again.is_err());
    assert!(lab.writes().is_empty(), "{:?}", lab.writes());

    // retry: abort=false on the status subresource; the steps start again.
    lab.run(&rollouts::retry("lab", &aborted), "y")
        .await
        .expect("retry");
    assert_eq!(
        lab.writes(),
        vec![request(
            "PATCH",
            &format!("{ROLLOUT}/status"),
            MERGE,
            json!({"status": {"abort": false}})
        )]
    );
    let retried = lab.rollout();
    assert_eq!(st(&retried, "abort"), false);
    assert_eq!(st(&retried, "phase"), "Paused");
    assert_eq!(st(&retried, "currentStepIndex"), 1);

    // promote of a rollout also paused in spec: the status patch first, then the spec.
    pause_by_hand(&lab);
    lab.run(&rollouts::promote("lab", &lab.rollout(), false), "y")
        .await
        .expect("promote");
    assert_eq!(
        lab.writes(),
        vec![
            request(
                "PATCH",
                &format!("{ROLLOUT}/status"),
                MERGE,
                json!({"status": {"pauseConditions": null}})
            ),
            request("PATCH", ROLLOUT, MERGE, json!({"spec": {"paused": false}})),
        ]
    );
    let promoted = lab.rollout();
    assert_eq!(st(&promoted, "currentStepIndex"), 3, "on to the next pause");
    assert_eq!(promoted["spec"]["paused"], false);

    // promote --full of a rollout paused by hand (`kubectl argo rollouts pause`):
    // promoteFull on the status subresource, then the unpause (argo-rollouts#4412);
    // the canary becomes stable.
    pause_by_hand(&lab);
    lab.run(&rollouts::promote("lab", &lab.rollout(), true), "lab")
        .await
        .expect("promote --full");
    assert_eq!(
        lab.writes(),
        vec![
            request(
                "PATCH",
                &format!("{ROLLOUT}/status"),
                MERGE,
                json!({"status": {"promoteFull": true}})
            ),
            request("PATCH", ROLLOUT, MERGE, json!({"spec": {"paused": false}})),
        ]
    );
    let healthy = lab.rollout();
    assert_eq!(st(&healthy, "phase"), "Healthy");
    assert_eq!(st(&healthy, "stableRS"), st(&healthy, "currentPodHash"));
    assert_eq!(healthy["spec"]["paused"], false);
    lab.server.shutdown().await;
}

#[tokio::test]
async fn without_the_status_subresource_abort_falls_back_to_the_main_resource() {
    let mut lab = lab().await;
    lab.store
        .modify(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "rollouts.argoproj.io",
            |crd| crd["spec"]["versions"][0]["subresources"] = json!({}),
        )
        .expect("the Rollout CRD");
    let before = lab.rollout();
    lab.run(&rollouts::abort("lab", &before), "y")
        .await
        .expect("abort");
    assert_eq!(
        lab.writes(),
        vec![
            request(
                "PATCH",
                &format!("{ROLLOUT}/status"),
                MERGE,
                json!({"status": {"abort": true}})
            ),
            request("PATCH", ROLLOUT, MERGE, json!({"status": {"abort": true}})),
        ]
    );
    let after = lab.rollout();
    assert_eq!(st(&after, "abort"), true);
    assert_eq!(st(&after, "phase"), "Degraded");
    lab.server.shutdown().await;
}

#[tokio::test]
async fn undo_puts_the_previous_revisions_template_back_with_a_json_patch() {
    let mut lab = lab().await;
    let ro = lab.rollout();
    let sets: Vec<Value> = lab
        .store
        .list("apps/v1", "ReplicaSet")
        .into_iter()
        .filter(|rs| {
            rs["metadata"]["namespace"] == "shop" && rs["metadata"]["labels"]["app"] == "checkout"
        })
        .collect();
    let stable = sets
        .iter()
        .find(|rs| rs["metadata"]["annotations"][rollouts::REVISION] == "6")
        .expect("revision 6");
    let mut template = stable["spec"]["template"].clone();
    template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove(rollouts::HASH_LABEL);
    let rb = rollouts::undo("lab", &ro, &sets, None);
    assert!(rb.unmet().is_empty(), "{:?}", rb.unmet());
    lab.run(&rb, "y").await.expect("undo");
    assert_eq!(
        lab.writes(),
        vec![request(
            "PATCH",
            ROLLOUT,
            JSON_PATCH,
            json!([{"op": "replace", "path": "/spec/template", "value": template}])
        )]
    );
    let after = lab.rollout();
    assert_eq!(after["spec"]["template"], template);
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/acme-shop/checkout:1.41.3"
    );
    lab.server.shutdown().await;
}

#[tokio::test]
async fn a_backup_from_a_schedule_and_a_restore_of_one_namespace_complete() {
    let mut lab = lab().await;
    let schedule = lab
        .store
        .list("velero.io/v1", "Schedule")
        .into_iter()
        .next()
        .expect("a Schedule");
    let s_name = schedule["metadata"]["name"].as_str().unwrap().to_string();
    let rb = velero::backup_now("lab", &schedule, 1_796_000_000);
    let name = format!("{s_name}-{}", velero::stamp(1_796_000_000));
    lab.run(&rb, "").await.expect("backup now");
    let writes = lab.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let post = &writes[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/apis/velero.io/v1/namespaces/velero/backups")
    );
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    assert_eq!(post.body["metadata"]["name"], name.as_str());
    assert_eq!(
        post.body["metadata"]["labels"][velero::SCHEDULE_LABEL],
        s_name.as_str()
    );
    let mut template = schedule["spec"]["template"].clone();
    template.as_object_mut().unwrap().remove("metadata");
    assert_eq!(post.body["spec"], template);
    let backup = lab
        .store
        .get("velero.io/v1", "Backup", Some("velero"), &name)
        .expect("the new Backup");
    assert_eq!(backup["status"]["phase"], "Completed");

    let rb = velero::restore("lab", &backup, &["shop".to_string()], 1_796_000_100);
    let restore_name = format!("{name}-{}", velero::stamp(1_796_000_100));
    lab.run(&rb, "lab").await.expect("restore");
    let writes = lab.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].method.as_str(), writes[0].path.as_str()),
        ("POST", "/apis/velero.io/v1/namespaces/velero/restores")
    );
    assert_eq!(writes[0].body["spec"]["backupName"], name.as_str());
    assert_eq!(
        writes[0].body["spec"]["includedNamespaces"],
        json!(["shop"])
    );
    let restore = lab
        .store
        .get("velero.io/v1", "Restore", Some("velero"), &restore_name)
        .expect("the new Restore");
    assert_eq!(restore["status"]["phase"], "Completed");
    assert!(restore["status"]["completionTimestamp"].is_string());

    // A restore of a backup the server does not have ends FailedValidation, at once.
    let mut ghost = backup.clone();
    ghost["metadata"]["name"] = json!("no-such-backup");
    let err = lab
        .run(&velero::restore("lab", &ghost, &[], 1_796_000_200), "lab")
        .await
        .err()
        .expect("a failed restore");
    assert!(err.contains("FailedValidation"), "{err}");
    assert!(err.contains("no-such-backup"), "{err}");
    lab.server.shutdown().await;
}

fn route_weights(store: &Store) -> Vec<u64> {
    store
        .get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            Some("shop"),
            "checkout-global",
        )
        .and_then(|r| {
            r.pointer("/spec/rules/0/backendRefs")?
                .as_array()
                .map(|refs| refs.iter().filter_map(|b| b["weight"].as_u64()).collect())
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_traffic_shift_moves_the_route_weights_stage_by_stage() {
    let mut lab = lab().await;
    assert_eq!(route_weights(&lab.store), vec![70, 30]);
    let route = lab
        .store
        .get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            Some("shop"),
            "checkout-global",
        )
        .expect("the lab's HTTPRoute");
    let spec = traffic::ShiftSpec {
        to: vec![0, 100],
        step: 25,
        pause: Duration::from_secs(1),
        rule: 0,
    };
    let rb = traffic::shift("lab", &route, &spec);
    let op = lab.run(&rb, "y").await.expect("shift");
    assert_eq!(
        op.weights_after_steps,
        vec![
            vec![45, 55],
            vec![45, 55],
            vec![20, 80],
            vec![20, 80],
            vec![0, 100]
        ],
        "after each patch and each hold"
    );
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/checkout-global";
    let w = |i: usize| format!("/spec/rules/0/backendRefs/{i}/weight");
    let stage = |from: [u64; 2], to: [u64; 2]| {
        request(
            "PATCH",
            path,
            JSON_PATCH,
            json!([
                {"op": "test", "path": w(0), "value": from[0]},
                {"op": "replace", "path": w(0), "value": to[0]},
                {"op": "test", "path": w(1), "value": from[1]},
                {"op": "replace", "path": w(1), "value": to[1]},
            ]),
        )
    };
    assert_eq!(
        lab.writes(),
        vec![
            stage([70, 30], [45, 55]),
            stage([45, 55], [20, 80]),
            stage([20, 80], [0, 100]),
        ]
    );
    assert_eq!(route_weights(&lab.store), vec![0, 100]);

    // Someone changed the route since the plan: the test operation refuses the patch.
    let stale = traffic::shift("lab", &route, &spec);
    let err = lab.run(&stale, "y").await.err().expect("refused");
    assert!(err.contains("test"), "{err}");
    assert_eq!(route_weights(&lab.store), vec![0, 100]);
    lab.server.shutdown().await;
}
