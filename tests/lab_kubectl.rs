//! The real kubectl (/usr/bin/kubectl, 1.3x) against the lab's Kubernetes API server
//! (src/lab/kube): get with server-side tables, selectors, CRDs, cordon/uncordon,
//! `get --watch`, label/annotate/delete, drain blocked by a PodDisruptionBudget, RBAC
//! via `auth can-i` and 403s, and a wrong token. kubectl is required (the `kubectl`
//! package of the Kubernetes/Google Cloud apt repository, or Debian's
//! `kubernetes-client`); a missing kubectl fails these tests.
//!
//! `cargo test --release --test lab_kubectl -- --ignored --nocapture scale_report`
//! prints load time, RSS and `kubectl get nodes` time for 5,000 nodes + 150,000 pods.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kha::lab::kube::{DenyRule, KubeApiConfig, KubeApiServer, Store};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const KUBECTL: &str = "/usr/bin/kubectl";
const TOKEN: &str = "lab-token-3f9c";
const CREATED: &str = "2025-01-06T09:00:00Z";

/// One kubectl run.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// A served fixture cluster plus a kubeconfig for it.
struct Lab {
    store: Store,
    server: KubeApiServer,
    kubeconfig: PathBuf,
    cache: PathBuf,
    _dir: tempfile::TempDir,
}

fn require_kubectl() {
    assert!(
        std::path::Path::new(KUBECTL).exists(),
        "kubectl not found at {KUBECTL}: these tests drive the real kubectl 1.3x; install the \
         `kubectl` package (Kubernetes or Google Cloud SDK apt repository) or Debian's \
         `kubernetes-client`"
    );
}

impl Lab {
    async fn start(deny: Vec<DenyRule>) -> Lab {
        require_kubectl();
        let store = Store::new();
        store.put_many(fixture()).unwrap();
        let config = KubeApiConfig {
            token: TOKEN.into(),
            user: "kha-lab-admin".into(),
            deny,
        };
        let server = KubeApiServer::start(store.clone(), config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).unwrap();
        Lab {
            store,
            server,
            cache: dir.path().join("cache"),
            kubeconfig,
            _dir: dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(KUBECTL);
        cmd.env_remove("KUBECONFIG")
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--cache-dir={}", self.cache.display()))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    async fn run(mut cmd: Command) -> Out {
        let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
            .await
            .expect("kubectl did not finish within 20 s")
            .expect("cannot run kubectl");
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn kubectl(&self, args: &[&str]) -> Out {
        Self::run(self.command(args)).await
    }

    /// kubectl that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed:\n{}\n{}",
            out.stdout, out.stderr
        );
        out.stdout
    }

    fn node(&self, name: &str) -> Value {
        self.store.get("v1", "Node", None, name).unwrap()
    }
}

/// Lines of a table whose first column is `name`.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_renders_tables_for_every_kind() {
    let lab = Lab::start(Vec::new()).await;

    let wide = lab.ok(&["get", "nodes", "-o", "wide"]).await;
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..7],
        [
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP"
        ],
        "{wide}"
    );
    let cp = row(&wide, "cp-eu-west-1a");
    assert!(
        cp.contains(" Ready ") && cp.contains("control-plane"),
        "{cp}"
    );
    assert!(cp.contains("v1.32.4") && cp.contains("10.0.1.10"), "{cp}");
    assert!(
        cp.contains("Ubuntu 24.04.2 LTS") && cp.contains("containerd://1.7.27"),
        "{cp}"
    );
    assert!(row(&wide, "worker-a-00000").contains("<none>"), "{wide}");
    assert_eq!(wide.lines().count(), 6, "{wide}");

    let plane = lab
        .ok(&[
            "get",
            "pods",
            "-n",
            "kube-system",
            "-l",
            "tier=control-plane",
        ])
        .await;
    assert_eq!(plane.lines().count(), 1 + 9, "{plane}");
    assert!(row(&plane, "etcd-cp-eu-west-1b").contains("1/1"), "{plane}");
    assert!(
        row(&plane, "etcd-cp-eu-west-1b").contains("Running"),
        "{plane}"
    );
    assert!(!plane.contains("kube-proxy"), "{plane}");
    let apiservers = lab
        .ok(&[
            "get",
            "pods",
            "-n",
            "kube-system",
            "-l",
            "component in (kube-apiserver),tier",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(apiservers.lines().count(), 3, "{apiservers}");

    let ceph = lab.ok(&["get", "cephclusters.ceph.rook.io", "-A"]).await;
    assert!(ceph.lines().next().unwrap().contains("HEALTH"), "{ceph}");
    assert!(
        ceph.contains("rook-ceph") && ceph.contains("HEALTH_OK"),
        "{ceph}"
    );
    let backups = lab.ok(&["get", "backups.velero.io", "-A"]).await;
    assert!(
        backups.contains("daily-20250106030000") && backups.contains("Completed"),
        "{backups}"
    );
    let rollouts = lab.ok(&["get", "rollouts.argoproj.io", "-A"]).await;
    assert!(
        rollouts.lines().next().unwrap().contains("DESIRED"),
        "{rollouts}"
    );
    assert!(row(&rollouts, "shop").contains("checkout"), "{rollouts}");
    let short = lab.ok(&["get", "ro", "-n", "shop"]).await;
    assert!(short.contains("checkout"), "{short}");
    let pdb = lab.ok(&["get", "pdb", "-n", "shop"]).await;
    assert!(
        row(&pdb, "web").split_whitespace().any(|c| c == "0"),
        "{pdb}"
    );
    let crds = lab.ok(&["get", "crds"]).await;
    assert!(
        crds.contains("rollouts.argoproj.io") && crds.contains("backups.velero.io"),
        "{crds}"
    );
    for kind in [
        "ns",
        "svc",
        "cm",
        "ev",
        "deploy",
        "rs",
        "ds",
        "bsl",
        "schedules.velero.io",
        "ar",
        "at",
    ] {
        lab.ok(&["get", kind, "-A"]).await;
    }

    let json_out = lab.ok(&["get", "nodes", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    assert_eq!(list["items"][0]["kind"], "Node");

    let missing = lab.kubectl(&["get", "node", "nope"]).await;
    assert!(!missing.ok);
    assert!(
        missing
            .stderr
            .contains("Error from server (NotFound): nodes \"nope\" not found"),
        "{}",
        missing.stderr
    );
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_shows_in_get_and_watch() {
    let lab = Lab::start(Vec::new()).await;
    let mut watch = lab.command(&["get", "nodes", "--watch"]);
    watch.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = watch.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = String::new();
    // The initial table first: one header and five nodes.
    while seen.lines().count() < 6 {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("kubectl get --watch printed no table")
            .unwrap()
            .expect("kubectl get --watch ended");
        seen.push_str(&line);
        seen.push('\n');
    }

    let out = lab.ok(&["cordon", "worker-b-00001"]).await;
    assert!(out.contains("node/worker-b-00001 cordoned"), "{out}");
    assert_eq!(
        lab.node("worker-b-00001")["spec"]["unschedulable"],
        json!(true)
    );
    let table = lab.ok(&["get", "nodes"]).await;
    assert!(
        row(&table, "worker-b-00001").contains("Ready,SchedulingDisabled"),
        "{table}"
    );

    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the watch never showed the cordon; it printed:\n{seen}"))
            .unwrap()
            .expect("kubectl get --watch ended");
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("worker-b-00001") && line.contains("SchedulingDisabled") {
            break;
        }
    }
    child.kill().await.unwrap();

    let out = lab.ok(&["uncordon", "worker-b-00001"]).await;
    assert!(out.contains("uncordoned"), "{out}");
    assert!(lab.node("worker-b-00001")["spec"]["unschedulable"].is_null());
    let table = lab.ok(&["get", "nodes"]).await;
    assert!(
        !row(&table, "worker-b-00001").contains("SchedulingDisabled"),
        "{table}"
    );
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_kubectl() {
    let lab = Lab::start(Vec::new()).await;
    lab.ok(&[
        "label",
        "node",
        "cp-eu-west-1c",
        "kha.dev/maintenance=planned",
    ])
    .await;
    let node = lab.node("cp-eu-west-1c");
    assert_eq!(node["metadata"]["labels"]["kha.dev/maintenance"], "planned");
    assert_eq!(
        node["metadata"]["labels"]["topology.kubernetes.io/zone"],
        "eu-west-1c"
    );
    let selected = lab
        .ok(&[
            "get",
            "nodes",
            "-l",
            "kha.dev/maintenance=planned",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(selected.trim(), "node/cp-eu-west-1c");
    lab.ok(&["label", "node", "cp-eu-west-1c", "kha.dev/maintenance-"])
        .await;
    assert!(lab.node("cp-eu-west-1c")["metadata"]["labels"]["kha.dev/maintenance"].is_null());

    lab.ok(&[
        "annotate",
        "-n",
        "shop",
        "rollout",
        "checkout",
        "kha.dev/owner=payments",
    ])
    .await;
    let ro = lab
        .store
        .get("argoproj.io/v1alpha1", "Rollout", Some("shop"), "checkout")
        .unwrap();
    assert_eq!(ro["metadata"]["annotations"]["kha.dev/owner"], "payments");

    let out = lab
        .ok(&["delete", "pod", "-n", "shop", "api-7c9d4b6f5-x2k8p"])
        .await;
    assert!(out.contains("pod \"api-7c9d4b6f5-x2k8p\" deleted"), "{out}");
    assert!(
        lab.store
            .get("v1", "Pod", Some("shop"), "api-7c9d4b6f5-x2k8p")
            .is_none()
    );
    let again = lab
        .kubectl(&["delete", "pod", "-n", "shop", "api-7c9d4b6f5-x2k8p"])
        .await;
    assert!(again.stderr.contains("(NotFound)"), "{}", again.stderr);

    // Typed-client creates (protobuf bodies), apply (create, then patch), scale.
    lab.ok(&["create", "namespace", "payments"]).await;
    assert!(lab.store.get("v1", "Namespace", None, "payments").is_some());
    lab.ok(&[
        "create",
        "configmap",
        "flags",
        "-n",
        "payments",
        "--from-literal=canary=on",
    ])
    .await;
    let cm = lab
        .store
        .get("v1", "ConfigMap", Some("payments"), "flags")
        .unwrap();
    assert_eq!(cm["data"], json!({"canary": "on"}));
    let manifest = lab.kubeconfig.with_file_name("template.yaml");
    for threshold in ["0.95", "0.99"] {
        std::fs::write(
            &manifest,
            format!(
                "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: success-rate\n  namespace: shop\nspec:\n  metrics:\n  - name: success-rate\n    successCondition: result[0] >= {threshold}\n"
            ),
        )
        .unwrap();
        lab.ok(&["apply", "-f", manifest.to_str().unwrap()]).await;
    }
    let template = lab
        .store
        .get(
            "argoproj.io/v1alpha1",
            "AnalysisTemplate",
            Some("shop"),
            "success-rate",
        )
        .unwrap();
    assert_eq!(
        template["spec"]["metrics"][0]["successCondition"],
        "result[0] >= 0.99"
    );
    let out = lab
        .ok(&["scale", "rollout", "checkout", "-n", "shop", "--replicas=6"])
        .await;
    assert!(out.contains("scaled"), "{out}");
    let ro = lab
        .store
        .get("argoproj.io/v1alpha1", "Rollout", Some("shop"), "checkout")
        .unwrap();
    assert_eq!(ro["spec"]["replicas"], json!(6));
    let bad = lab
        .kubectl(&[
            "patch",
            "node",
            "cp-eu-west-1a",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/nope","value":1}]"#,
        ])
        .await;
    assert!(!bad.ok);
    assert!(
        bad.stderr.contains("The request is invalid"),
        "{}",
        bad.stderr
    );

    // KUBECONFIG instead of --kubeconfig.
    let mut cmd = Command::new(KUBECTL);
    cmd.env("KUBECONFIG", &lab.kubeconfig)
        .arg(format!("--cache-dir={}", lab.cache.display()))
        .args(["get", "namespaces", "-o", "name"]);
    let out = Lab::run(cmd).await;
    assert!(
        out.ok && out.stdout.contains("namespace/kube-system"),
        "{}",
        out.stderr
    );
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_is_blocked_by_the_disruption_budget() {
    let lab = Lab::start(Vec::new()).await;
    let out = lab
        .kubectl(&[
            "drain",
            "worker-a-00000",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=5s",
        ])
        .await;
    let all = format!("{}\n{}", out.stdout, out.stderr);
    assert!(!out.ok, "drain should time out on the PDB:\n{all}");
    assert!(all.contains("node/worker-a-00000 cordoned"), "{all}");
    assert!(
        all.contains("ignoring DaemonSet-managed Pods: kube-system/kube-proxy-a7x2m"),
        "{all}"
    );
    assert!(all.contains("pod/api-7c9d4b6f5-x2k8p evicted"), "{all}");
    assert!(
        all.contains("error when evicting pods/\"web-6b8f9c7d4-q9z7w\" -n \"shop\"")
            && all.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{all}"
    );
    assert_eq!(
        lab.node("worker-a-00000")["spec"]["unschedulable"],
        json!(true)
    );
    assert!(
        lab.store
            .get("v1", "Pod", Some("shop"), "web-6b8f9c7d4-q9z7w")
            .is_some()
    );
    assert!(
        lab.store
            .get("v1", "Pod", Some("shop"), "api-7c9d4b6f5-x2k8p")
            .is_none()
    );

    // The 429 body names the budget the way kube-apiserver does (kubectl prints only
    // the message, so read the Status itself).
    let (code, body) = http(
        &lab.server.url(),
        "POST",
        "/api/v1/namespaces/shop/pods/web-6b8f9c7d4-q9z7w/eviction",
        Some(TOKEN),
        Some(
            r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web-6b8f9c7d4-q9z7w","namespace":"shop"},"deleteOptions":{}}"#,
        ),
    );
    assert_eq!(code, 429, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(status["details"]["causes"][0]["reason"], "DisruptionBudget");
    assert_eq!(
        status["details"]["causes"][0]["message"],
        "The disruption budget web needs 2 healthy pods and has 2 currently"
    );
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_denials_and_bad_tokens() {
    let deny = vec![DenyRule {
        verbs: vec!["list".into(), "watch".into(), "patch".into()],
        group: "argoproj.io".into(),
        resource: "rollouts".into(),
        namespace: Some("shop".into()),
    }];
    let lab = Lab::start(deny).await;
    let no = lab
        .kubectl(&[
            "auth",
            "can-i",
            "list",
            "rollouts.argoproj.io",
            "-n",
            "shop",
        ])
        .await;
    assert_eq!((no.ok, no.stdout.trim()), (false, "no"), "{}", no.stderr);
    let yes = lab
        .ok(&[
            "auth",
            "can-i",
            "list",
            "rollouts.argoproj.io",
            "-n",
            "default",
        ])
        .await;
    assert_eq!(yes.trim(), "yes");
    let get = lab
        .ok(&[
            "auth",
            "can-i",
            "get",
            "rollouts.argoproj.io/checkout",
            "-n",
            "shop",
        ])
        .await;
    assert_eq!(get.trim(), "yes");

    let denied = lab
        .kubectl(&["get", "rollouts.argoproj.io", "-n", "shop"])
        .await;
    assert!(!denied.ok);
    assert_eq!(
        denied.stderr.trim(),
        "Error from server (Forbidden): rollouts.argoproj.io is forbidden: User \"kha-lab-admin\" \
         cannot list resource \"rollouts\" in API group \"argoproj.io\" in the namespace \"shop\""
    );
    let patch = lab
        .kubectl(&[
            "patch",
            "rollout",
            "checkout",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"spec":{"paused":true}}"#,
        ])
        .await;
    assert!(
        patch.stderr.contains("rollouts.argoproj.io \"checkout\" is forbidden: User \"kha-lab-admin\" cannot patch resource \"rollouts\""),
        "{}",
        patch.stderr
    );
    // Other namespaces and the cluster-wide list stay allowed.
    lab.ok(&["get", "rollouts.argoproj.io", "-A"]).await;

    // A wrong token.
    let text = std::fs::read_to_string(&lab.kubeconfig).unwrap();
    let bad = lab.kubeconfig.with_file_name("bad-kubeconfig");
    std::fs::write(&bad, text.replace(TOKEN, "wrong-token")).unwrap();
    let mut cmd = Command::new(KUBECTL);
    cmd.env_remove("KUBECONFIG")
        .arg(format!("--kubeconfig={}", bad.display()))
        .arg(format!("--cache-dir={}", lab.cache.display()))
        .args(["get", "nodes"]);
    let out = Lab::run(cmd).await;
    assert!(!out.ok);
    assert!(out.stderr.contains("Unauthorized"), "{}", out.stderr);
    lab.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_http_errors_are_status_objects() {
    let lab = Lab::start(Vec::new()).await;
    let url = lab.server.url();
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"flags"},"data":{"a":"1"}}"#;
    let ro = "/apis/argoproj.io/v1alpha1/namespaces/shop";
    // (method, path, token, body, code, reason of the Status)
    type Case<'a> = (
        &'a str,
        String,
        Option<&'a str>,
        Option<&'a str>,
        u16,
        &'a str,
    );
    #[rustfmt::skip]
    let cases: &[Case<'_>] = &[
        ("GET", "/api/v1/nodes".into(), None, None, 401, "Unauthorized"),
        ("GET", "/api/v1/nodes".into(), Some("wrong"), None, 401, "Unauthorized"),
        ("GET", "/version".into(), None, None, 200, ""),
        ("POST", "/api/v1/namespaces/shop/configmaps".into(), Some(TOKEN), Some("{not json"), 400, "BadRequest"),
        ("POST", "/api/v1/namespaces/shop/configmaps".into(), Some(TOKEN), Some(cm), 201, ""),
        ("POST", "/api/v1/namespaces/shop/configmaps".into(), Some(TOKEN), Some(cm), 409, "AlreadyExists"),
        ("GET", "/api/v1/nodes?labelSelector=a%20b".into(), Some(TOKEN), None, 400, "BadRequest"),
        ("GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx".into(), Some(TOKEN), None, 400, "BadRequest"),
        ("GET", "/api/v1/pods?limit=x".into(), Some(TOKEN), None, 400, "BadRequest"),
        ("GET", "/api/v1/nodes?continue=garbage".into(), Some(TOKEN), None, 400, "BadRequest"),
        ("GET", format!("{ro}/analysisruns/checkout-7c9d4-2/status"), Some(TOKEN), None, 404, "NotFound"),
        ("GET", format!("{ro}/rollouts/checkout/status"), Some(TOKEN), None, 200, ""),
        ("GET", format!("{ro}/rollouts/nope"), Some(TOKEN), None, 404, "NotFound"),
        ("GET", "/api/v1/namespaces/shop/%ZZ/x/y/z".into(), Some(TOKEN), None, 404, "NotFound"),
        ("GET", "/apis/nope.example.com/v1/things".into(), Some(TOKEN), None, 404, "NotFound"),
        ("PUT", "/api/v1/nodes".into(), Some(TOKEN), Some("{}"), 405, "MethodNotAllowed"),
        ("PATCH", "/api/v1/nodes/cp-eu-west-1a".into(), Some(TOKEN), Some("{}"), 415, "UnsupportedMediaType"),
        ("POST", "/api/v1/namespaces/shop/pods/nope/eviction".into(), Some(TOKEN), Some("{}"), 404, "NotFound"),
        ("POST", "/api/v1/namespaces/shop/pods/web-6b8f9c7d4-m4n5b/eviction".into(), Some(TOKEN), Some("[1]"), 400, "BadRequest"),
    ];
    for (method, path, token, body, code, reason) in cases {
        let (got, text) = http(&url, method, path, *token, *body);
        assert_eq!(got, *code, "{method} {path}: {text}");
        if !reason.is_empty() {
            let status: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(status["kind"], "Status", "{method} {path}: {text}");
            assert_eq!(status["reason"], *reason, "{method} {path}: {text}");
            assert_eq!(status["code"], *code, "{method} {path}: {text}");
        }
    }
    let (_, text) = http(
        &url,
        "GET",
        "/api/v1/pods?fieldSelector=spec.bogus%3Dx",
        Some(TOKEN),
        None,
    );
    assert!(
        text.contains("field label not supported: spec.bogus"),
        "{text}"
    );

    // Raw watches: events after a resourceVersion until timeoutSeconds, and an ERROR
    // event carrying 410 once the history is compacted past that resourceVersion.
    let rv = lab.store.resource_version();
    lab.store
        .modify("v1", "Node", None, "cp-eu-west-1b", |n| {
            n["metadata"]["labels"]["kha.dev/drill"] = json!("1");
        })
        .unwrap();
    let since = format!("/api/v1/nodes?watch=true&resourceVersion={rv}&timeoutSeconds=1");
    let watched = tokio::task::spawn_blocking({
        let url = url.clone();
        move || http(&url, "GET", &since, Some(TOKEN), None)
    })
    .await
    .unwrap();
    let events: Vec<Value> = watched
        .1
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{}", watched.1);
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "cp-eu-west-1b");
    lab.store.compact();
    let gone = http(
        &url,
        "GET",
        &format!("/api/v1/nodes?watch=1&resourceVersion={rv}"),
        Some(TOKEN),
        None,
    );
    let event: Value = serde_json::from_str(gone.1.trim()).unwrap();
    assert_eq!((gone.0, event["type"].clone()), (200, json!("ERROR")));
    assert_eq!(
        (
            event["object"]["code"].clone(),
            event["object"]["reason"].clone()
        ),
        (json!(410), json!("Expired"))
    );
    lab.server.shutdown().await;
}

/// A plain HTTP/1.1 request (Connection: close); returns the code and body.
fn http(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (code, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, more)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || more.len() < n {
            break;
        }
        out.push_str(&more[..n]);
        rest = more[n..].trim_start_matches("\r\n");
    }
    out
}

// ---- fixture: a small HA cluster ----

fn zone(i: usize) -> String {
    format!("eu-west-1{}", ["a", "b", "c"][i])
}

fn node(name: &str, zone: &str, ip: &str, control_plane: bool) -> Value {
    let mut labels = json!({
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
        "topology.kubernetes.io/region": "eu-west-1", "topology.kubernetes.io/zone": zone,
    });
    let mut taints = json!([]);
    if control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = json!("");
        taints = json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]);
    }
    let condition = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({"type": ty, "status": status, "lastHeartbeatTime": "2025-01-08T10:00:00Z",
               "lastTransitionTime": CREATED, "reason": reason, "message": message})
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "creationTimestamp": CREATED,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"], "taints": taints},
        "status": {
            "capacity": {"cpu": "8", "ephemeral-storage": "101430960Ki", "memory": "32827428Ki", "pods": "110"},
            "allocatable": {"cpu": "7800m", "ephemeral-storage": "93478772582", "memory": "31676452Ki", "pods": "110"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "5e0b6f3c1d2a4b7c9e8f0a1b2c3d4e5f", "systemUUID": "ec2b1f4e-7a3c-4d2b-9f1e-0a1b2c3d4e5f",
                "bootID": "1f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b", "kernelVersion": "6.8.0-57-generic",
                "osImage": "Ubuntu 24.04.2 LTS", "containerRuntimeVersion": "containerd://1.7.27",
                "kubeletVersion": "v1.32.4", "kubeProxyVersion": "v1.32.4",
                "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    })
}

fn owner(kind: &str, name: &str, api_version: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name,
            "uid": format!("0b1c2d3e-{:04x}-4f5a-8b6c-7d8e9f0a1b2c", name.len()), "controller": true}])
}

fn pod(namespace: &str, name: &str, node: &str, labels: Value, owners: Value, ip: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "ownerReferences": owners, "creationTimestamp": CREATED},
        "spec": {
            "nodeName": node, "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}]}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.1.10", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": CREATED, "qosClass": "Burstable",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": CREATED}],
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "started": true,
                "image": "registry.k8s.io/pause:3.10", "imageID": "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
                "containerID": "containerd://4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d",
                "state": {"running": {"startedAt": CREATED}}}],
        },
    })
}

fn static_pod(component: &str, node: &str, ip: &str) -> Value {
    let mut p = pod(
        "kube-system",
        &format!("{component}-{node}"),
        node,
        json!({"component": component, "tier": "control-plane"}),
        owner("Node", node, "v1"),
        ip,
    );
    p["metadata"]["annotations"] = json!({
        "kubernetes.io/config.mirror": "4f6c9b1e2d3a5c7e8f9a0b1c2d3e4f5a",
        "kubernetes.io/config.source": "file",
    });
    p["spec"]["hostNetwork"] = json!(true);
    p["spec"]["priorityClassName"] = json!("system-node-critical");
    p
}

fn fixture() -> Vec<Value> {
    let mut objs = Vec::new();
    for ns in ["default", "kube-system", "shop", "rook-ceph", "velero"] {
        objs.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}, "creationTimestamp": CREATED},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}));
    }
    for i in 0..3 {
        let name = format!("cp-{}", zone(i));
        let ip = format!("10.0.{}.10", i + 1);
        objs.push(node(&name, &zone(i), &ip, true));
        for component in ["kube-apiserver", "kube-controller-manager", "etcd"] {
            objs.push(static_pod(component, &name, &ip));
        }
    }
    objs.push(node("worker-a-00000", &zone(0), "10.1.16.10", false));
    objs.push(node("worker-b-00001", &zone(1), "10.2.16.11", false));
    objs.push(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
        "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
                 "template": {"metadata": {"labels": {"k8s-app": "kube-proxy"}},
                              "spec": {"containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.32.4"}]}}},
        "status": {"desiredNumberScheduled": 5, "currentNumberScheduled": 5, "numberReady": 5,
                   "updatedNumberScheduled": 5, "numberAvailable": 5}}));
    objs.push(pod(
        "kube-system",
        "kube-proxy-a7x2m",
        "worker-a-00000",
        json!({"k8s-app": "kube-proxy"}),
        owner("DaemonSet", "kube-proxy", "apps/v1"),
        "10.1.16.10",
    ));
    objs.push(pod(
        "shop",
        "web-6b8f9c7d4-q9z7w",
        "worker-a-00000",
        json!({"app": "web"}),
        owner("ReplicaSet", "web-6b8f9c7d4", "apps/v1"),
        "10.244.1.12",
    ));
    objs.push(pod(
        "shop",
        "web-6b8f9c7d4-m4n5b",
        "worker-b-00001",
        json!({"app": "web"}),
        owner("ReplicaSet", "web-6b8f9c7d4", "apps/v1"),
        "10.244.2.12",
    ));
    objs.push(pod(
        "shop",
        "api-7c9d4b6f5-x2k8p",
        "worker-a-00000",
        json!({"app": "api"}),
        owner("ReplicaSet", "api-7c9d4b6f5", "apps/v1"),
        "10.244.1.13",
    ));
    objs.push(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop", "generation": 1},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 2,
                   "desiredHealthy": 2, "expectedPods": 2,
                   "conditions": [{"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods",
                                   "message": "", "lastTransitionTime": CREATED, "observedGeneration": 1}]}}));
    objs.push(json!({"apiVersion": "ceph.rook.io/v1", "kind": "CephCluster",
        "metadata": {"name": "rook-ceph", "namespace": "rook-ceph", "generation": 1},
        "spec": {"cephVersion": {"image": "quay.io/ceph/ceph:v19.2.2"}, "dataDirHostPath": "/var/lib/rook",
                 "mon": {"count": 3, "allowMultiplePerNode": false}, "storage": {"useAllNodes": true, "useAllDevices": true}},
        "status": {"phase": "Ready", "state": "Created", "message": "Cluster created successfully",
                   "ceph": {"health": "HEALTH_OK", "fsid": "a7f64266-0894-4f1e-a635-d0aeaca0e993",
                            "capacity": {"bytesTotal": 3_221_225_472_000u64, "bytesUsed": 412_316_860_416u64,
                                         "bytesAvailable": 2_808_908_611_584u64, "lastUpdated": "2025-01-08T10:00:00Z"}}}}));
    objs.push(json!({"apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": "daily-20250106030000", "namespace": "velero",
                     "labels": {"velero.io/schedule-name": "daily", "velero.io/storage-location": "default"}},
        "spec": {"storageLocation": "default", "ttl": "720h0m0s", "includedNamespaces": ["*"]},
        "status": {"phase": "Completed", "startTimestamp": "2025-01-06T03:00:00Z",
                   "completionTimestamp": "2025-01-06T03:04:12Z", "expiration": "2025-02-05T03:00:00Z",
                   "errors": 0, "warnings": 2, "progress": {"totalItems": 1843, "itemsBackedUp": 1843},
                   "formatVersion": "1.1.0", "version": 1}}));
    objs.push(json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": "velero"},
        "spec": {"provider": "aws", "default": true, "objectStorage": {"bucket": "kha-lab-backups"}},
        "status": {"phase": "Available", "lastValidationTime": "2025-01-08T09:59:00Z"}}));
    objs.push(json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "checkout"}},
                 "template": {"metadata": {"labels": {"app": "checkout"}},
                              "spec": {"containers": [{"name": "checkout", "image": "ghcr.io/kha-lab/checkout:1.8.0"}]}},
                 "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}],
                                         "analysis": {"templates": [{"templateName": "success-rate"}]}}}},
        "status": {"phase": "Healthy", "replicas": 4, "updatedReplicas": 4, "readyReplicas": 4,
                   "availableReplicas": 4, "HPAReplicas": 4, "selector": "app=checkout",
                   "stableRS": "7c9d4", "currentPodHash": "7c9d4", "observedGeneration": "1"}}));
    objs.push(json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisRun",
        "metadata": {"name": "checkout-7c9d4-2", "namespace": "shop"},
        "spec": {"metrics": [{"name": "success-rate", "provider": {"prometheus": {"query": "vector(1)"}}}]},
        "status": {"phase": "Successful"}}));
    objs
}

// ---- scale harness ----

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Prints the numbers for 5,000 nodes + 150,000 pods: put_many time, RSS, and how long
/// `kubectl get nodes --no-headers | wc -l` takes. Run in release mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale harness: prints numbers, run with --release -- --ignored --nocapture"]
async fn scale_report() {
    require_kubectl();
    const NODES: usize = 5_000;
    const PODS: usize = 150_000;
    let rss_before = vm_rss_kib();
    let mut objs = Vec::with_capacity(NODES + PODS + 8);
    for ns in ["kube-system", "shop"] {
        objs.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}}));
    }
    for i in 0..NODES {
        let z = zone(i % 3);
        let name = format!("worker-{}-{i:05}", &z[z.len() - 1..]);
        objs.push(node(
            &name,
            &z,
            &format!("10.{}.{}.{}", 1 + i % 3, 16 + (i / 250) % 200, 10 + i % 240),
            false,
        ));
    }
    for i in 0..PODS {
        let n = i % NODES;
        let z = zone(n % 3);
        let node_name = format!("worker-{}-{n:05}", &z[z.len() - 1..]);
        let rs = format!("app-{:03}-5d9c7b8f6d", i % 500);
        let mut p = pod(
            "shop",
            &format!("{rs}-{i:06}"),
            &node_name,
            json!({"app": format!("app-{:03}", i % 500), "pod-template-hash": "5d9c7b8f6d"}),
            owner("ReplicaSet", &rs, "apps/v1"),
            &format!("10.{}.{}.{}", 100 + i / 65_000, (i / 250) % 250, i % 250),
        );
        p["spec"]["containers"][0]["env"] = json!([{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]);
        objs.push(p);
    }
    let sample = serde_json::to_vec(&objs[10]).unwrap().len()
        + serde_json::to_vec(&objs[NODES + 10]).unwrap().len();
    let store = Store::new();
    let started = Instant::now();
    store.put_many(objs).unwrap();
    let load = started.elapsed();
    let rss_after = vm_rss_kib();
    let server = KubeApiServer::start(
        store.clone(),
        KubeApiConfig {
            token: TOKEN.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let cmd = format!(
        "{KUBECTL} --kubeconfig={} --cache-dir={} get nodes --no-headers | wc -l",
        kubeconfig.display(),
        dir.path().join("cache").display()
    );
    let mut timings = Vec::new();
    let mut counted = String::new();
    for _ in 0..3 {
        let t = Instant::now();
        let out = Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .await
            .unwrap();
        timings.push(t.elapsed());
        counted = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    let t = Instant::now();
    let (code, body) = tokio::task::spawn_blocking({
        let url = server.url();
        move || http(&url, "GET", "/api/v1/nodes", Some(TOKEN), None)
    })
    .await
    .unwrap();
    let raw_list = t.elapsed();
    let timed = |path: &'static str| {
        let url = server.url();
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let (code, body) = http(&url, "GET", path, Some(TOKEN), None);
            (code, body.len(), t.elapsed())
        })
    };
    let first_page = timed("/api/v1/pods?limit=500").await.unwrap();
    let second_page = timed("/api/v1/pods?limit=500").await.unwrap();
    let selected = timed("/api/v1/namespaces/shop/pods?labelSelector=app%3Dapp-007")
        .await
        .unwrap();
    println!("scale_report: {NODES} nodes + {PODS} pods (sample node+pod JSON {sample} bytes)");
    println!("scale_report: put_many {:.3} s", load.as_secs_f64());
    println!(
        "scale_report: VmRSS {} MiB before, {} MiB after loading",
        rss_before / 1024,
        rss_after / 1024
    );
    println!("scale_report: kubectl get nodes --no-headers | wc -l = {counted}; runs: {timings:?}");
    println!(
        "scale_report: raw GET /api/v1/nodes: HTTP {code}, {} MiB in {raw_list:?}",
        body.len() / (1 << 20)
    );
    println!(
        "scale_report: GET pods?limit=500: first (sorts the keys) {:?}, again {:?}",
        first_page.2, second_page.2
    );
    println!(
        "scale_report: GET pods?labelSelector=app=app-007 over {PODS} pods: HTTP {}, {} KiB in {:?}",
        selected.0,
        selected.1 / 1024,
        selected.2
    );
    assert_eq!(counted, NODES.to_string());
    server.shutdown().await;
}
