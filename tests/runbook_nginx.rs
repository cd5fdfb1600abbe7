//! The nginx LB runbook against a real nginx (Debian's `nginx` + `libnginx-mod-stream`)
//! started by the test on loopback with its own prefix and main config, the stream
//! upstream in a file the main config includes (`include stream.d/*`), in front of two
//! backends that say who they are. The runbook runs through the engine with the live
//! executor and the same `-p`/`-c`: drain marks B `down` on disk (backup hidden from
//! the wildcard) and, once nginx reloads, every fresh connection reaches A; ready
//! brings B back. A config that `nginx -t` rejects stops the run before the reload,
//! and nginx keeps serving the config it had. The `nginx -T` check after a reload
//! fails when the main config does not include the file.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::haproxy::free_port;
use common::nginx::{named_backend, start_real_nginx, who_answers};
use kha::runbook::audit::AuditLog;
use kha::runbook::engine::{Decision, Engine, Operator, Progress};
use kha::runbook::exec::{Executor, LiveExecutor};
use kha::runbook::lb::{self, BackendAction, NginxTarget};

/// Confirms, aborts on any failure, and keeps what happened.
#[derive(Clone, Default)]
struct Yes {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Operator for Yes {
    fn ask(&mut self, _: &str) -> String {
        "y".into()
    }
    fn decide(&mut self, _: usize, _: &str, _: bool) -> Decision {
        Decision::Abort
    }
    fn progress(&mut self, event: Progress) {
        let mut lines = self.lines.lock().unwrap();
        match event {
            Progress::StepStarted { step, title, .. } => lines.push(format!("{step}. {title}")),
            Progress::StepDone { result, .. } => lines.push(result),
            Progress::StepFailed { error, .. } => lines.push(format!("FAILED: {error}")),
            _ => {}
        }
    }
}

/// Fresh connections per look: enough that round robin shows both backends.
const BATCH: usize = 8;

/// Who answers `BATCH` fresh connections through `listen`.
async fn batch(listen: SocketAddr) -> Vec<Result<String, String>> {
    let mut seen = Vec::with_capacity(BATCH);
    for _ in 0..BATCH {
        seen.push(who_answers(listen).await);
    }
    seen
}

/// Polls (a reload is asynchronous: the master starts new workers and the old ones stop
/// accepting) until one whole batch is answered by exactly `want`; fails after 5 s
/// with the last batch and nginx's log.
async fn until_reached(listen: SocketAddr, want: &[&str], log: impl Fn() -> String) {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = batch(listen).await;
        let names: Option<BTreeSet<String>> = seen.iter().map(|r| r.clone().ok()).collect();
        if names.as_ref() == Some(&want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "connections through {listen} did not reach exactly {want:?} within 5 s; last \
             batch: {seen:?}\nnginx's log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn upstream_file(a: SocketAddr, b: SocketAddr, listen: SocketAddr) -> String {
    format!(
        "stream {{\n    upstream kube_apiserver {{\n        server {a} max_fails=3 fail_timeout=30s;\n        \
         server {b} max_fails=3 fail_timeout=30s; # cp-b\n    }}\n    server {{\n        \
         listen {listen};\n        proxy_pass kube_apiserver;\n    }}\n}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_and_ready_a_backend_of_a_real_nginx_and_stop_at_a_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let a = named_backend("backend-a").await;
    let b = named_backend("backend-b").await;
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let original = upstream_file(a, b, listen);
    let mut nginx = start_real_nginx(dir.path(), &original, listen);
    let upstream = dir.path().join("stream.d/apiserver.conf");
    let log = || std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
    until_reached(listen, &["backend-a", "backend-b"], log).await;

    let target = NginxTarget {
        host: None,
        config: upstream.display().to_string(),
        main_config: Some(nginx.main_config.display().to_string()),
        prefix: Some(nginx.prefix.display().to_string()),
        bin: Some(nginx.bin.display().to_string()),
    };
    let b_addr = b.to_string();
    let mut engine = Engine {
        executor: LiveExecutor::new(&Default::default(), dir.path().to_path_buf()).unwrap(),
        audit: AuditLog::in_dir(&dir.path().join("audit")),
        read_only: false,
        poll: Duration::from_millis(200),
        kube_user: None,
        seen: Vec::new(),
    };

    // Drain B: exactly its line gains `down`, the old file is kept, nginx reloads and
    // every fresh connection reaches A.
    let rb = lb::nginx("lab", &target, &original, &b_addr, BackendAction::Drain).unwrap();
    assert!(rb.unmet().is_empty(), "{:?}", rb.unmet());
    let yes = Yes::default();
    let ran = engine.run(&rb, &mut yes.clone(), None).await;
    let said = yes.lines.lock().unwrap().join("\n");
    assert!(ran.is_ok(), "{ran:?}\n{said}\nnginx's log:\n{}", log());
    let on_disk = std::fs::read_to_string(&upstream).unwrap();
    assert_eq!(
        on_disk,
        lb::mark_down(&original, &b_addr, true).unwrap(),
        "{said}"
    );
    let down: Vec<(String, bool)> = lb::upstream_servers(&on_disk)
        .into_iter()
        .map(|s| (s.address, s.down))
        .collect();
    assert_eq!(down, [(a.to_string(), false), (b_addr.clone(), true)]);
    // The backup is hidden: `include stream.d/*` would load a visible one as a second
    // `upstream kube_apiserver`, and `nginx -t` would fail.
    let mut in_stream_d: Vec<String> = std::fs::read_dir(dir.path().join("stream.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    in_stream_d.sort();
    assert_eq!(in_stream_d, [".apiserver.conf.kha-bak", "apiserver.conf"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("stream.d/.apiserver.conf.kha-bak")).unwrap(),
        original
    );
    until_reloaded(&log, 1).await;
    until_reached(listen, &["backend-a"], log).await;

    // Ready: the file is as it was, and both backends are reached again.
    let rb = lb::nginx("lab", &target, &on_disk, &b_addr, BackendAction::Ready).unwrap();
    let yes = Yes::default();
    let ran = engine.run(&rb, &mut yes.clone(), None).await;
    let said = yes.lines.lock().unwrap().join("\n");
    assert!(ran.is_ok(), "{ran:?}\n{said}\nnginx's log:\n{}", log());
    assert_eq!(std::fs::read_to_string(&upstream).unwrap(), original);
    until_reloaded(&log, 2).await;
    until_reached(listen, &["backend-a", "backend-b"], log).await;

    // Someone left a broken directive in the file: the edit keeps it, `nginx -t`
    // rejects it, the run stops before the reload, and nginx serves its old config
    // (B in rotation) although the file on disk now marks B down.
    let broken = original.replace(
        "proxy_pass kube_apiserver;",
        "proxy_pass kube_apiserver;\n        proxy_timeout soon;",
    );
    std::fs::write(&upstream, &broken).unwrap();
    let rb = lb::nginx("lab", &target, &broken, &b_addr, BackendAction::Drain).unwrap();
    let yes = Yes::default();
    let err = engine
        .run(&rb, &mut yes.clone(), None)
        .await
        .expect_err("nginx -t must reject the config");
    let said = yes.lines.lock().unwrap().join("\n");
    assert!(
        err.to_string()
            .starts_with("aborted at step 3 (Check the config (nginx -t))"),
        "{err}\n{said}"
    );
    assert!(err.to_string().contains("proxy_timeout"), "{err}\n{said}");
    assert!(!said.contains("4. Reload nginx"), "{said}");
    assert!(upstream_is_down(&upstream, &b_addr));
    assert!(nginx.running(), "nginx died:\n{}", log());
    until_reached(listen, &["backend-a", "backend-b"], log).await;
    assert_eq!(
        reloads(&log()),
        2,
        "no reload after the failed check:\n{}",
        log()
    );

    // The check after the reload reads what this nginx loads (`nginx -T`, same -p/-c):
    // it holds for the file as it is, fails for a state it is not in, and fails when
    // the main config does not include the file at all.
    std::fs::write(&upstream, &original).unwrap();
    let drained = lb::mark_down(&original, &b_addr, true).unwrap();
    let ready = lb::nginx("lab", &target, &drained, &b_addr, BackendAction::Ready).unwrap();
    let holds = engine.executor.verify(&ready.steps[3].verification).await;
    assert_eq!(
        holds.map_err(|e| format!("{e:#}")),
        Ok(format!(
            "nginx loads {} with {b_addr} of upstream kube_apiserver in rotation",
            upstream.display()
        ))
    );
    let drain = lb::nginx("lab", &target, &original, &b_addr, BackendAction::Drain).unwrap();
    let wrong = engine
        .executor
        .verify(&drain.steps[3].verification)
        .await
        .expect_err("B is in rotation on disk");
    assert!(
        wrong.to_string().ends_with("in rotation, not marked down"),
        "{wrong:#}"
    );
    let other = dir.path().join("other.conf");
    let without_include: String = std::fs::read_to_string(&nginx.main_config)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("include "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&other, without_include).unwrap();
    let elsewhere = NginxTarget {
        main_config: Some(other.display().to_string()),
        ..target.clone()
    };
    let drain = lb::nginx("lab", &elsewhere, &original, &b_addr, BackendAction::Drain).unwrap();
    let missing = engine
        .executor
        .verify(&drain.steps[3].verification)
        .await
        .expect_err("other.conf does not include the upstream file");
    assert!(
        missing.to_string().starts_with(&format!(
            "`nginx -T` does not list {}: the configuration nginx loads does not include it \
             (it loads {})",
            upstream.display(),
            other.display()
        )),
        "{missing:#}"
    );
    drop(nginx);
}

/// How many reloads the master logged (`signal 1 (SIGHUP) received …, reconfiguring`,
/// at the `notice` level the test's main config sets).
/// `nginx -s reload` only signals the master: waits (at most 5 s) until the master has
/// reloaded `n` times in all and the workers of the old configuration have exited, so
/// that no old worker still accepts connections with the old upstream (under load it
/// can, for a while).
async fn until_reloaded(log: &impl Fn() -> String, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = log();
        let retired = text
            .lines()
            .filter(|l| l.contains("exited with code"))
            .count();
        if reloads(&text) == n && retired >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not finish reload {n} within 5 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reloads(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("(SIGHUP) received") && l.ends_with("reconfiguring"))
        .count()
}

fn upstream_is_down(path: &std::path::Path, address: &str) -> bool {
    let text = std::fs::read_to_string(path).unwrap();
    lb::upstream_servers(&text)
        .iter()
        .any(|s| s.address == address && s.down)
}
