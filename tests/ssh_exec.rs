//! Runbook steps on a host go through the real OpenSSH client to a real `sshd` on
//! loopback: every argument arrives at the remote program exactly as given (spaces,
//! quotes, `$(...)`, `;`, globs, empty strings: nothing is interpreted by the remote
//! shell), a failing remote command fails the step with its output, connections are
//! shared per host, and a host that refuses the key fails at once in batch mode
//! instead of waiting at a password prompt.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kha::runbook::Operation;
use kha::runbook::exec::{Executor, LiveExecutor};

fn sshd_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("sshd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`sshd` is not installed: run scripts/deps.sh or `apt-get install openssh-server`"
            )
        })
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs (apt-get install openssh-client)");
    assert!(status.success(), "ssh-keygen failed");
}

/// A throw-away sshd on 127.0.0.1 that accepts one key, and an ssh config that knows
/// its host key.
struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Sshd {
    fn start() -> Sshd {
        let sshd = sshd_binary();
        // sshd's privilege-separation directory (created by its service normally).
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd can be created (run as root)");
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        keygen(&d.join("hostkey"));
        keygen(&d.join("id"));
        keygen(&d.join("stranger"));
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id runs")
                .stdout,
        )
        .expect("user name")
        .trim()
        .to_string();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            std::fs::write(
                d.join("sshd_config"),
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n\
                     AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                     PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel ERROR\n",
                    d = d.display()
                ),
            )
            .expect("sshd_config");
            let host_key = std::fs::read_to_string(d.join("hostkey.pub")).expect("host key");
            std::fs::write(
                d.join("known_hosts"),
                format!("[127.0.0.1]:{port} {host_key}"),
            )
            .expect("known_hosts");
            let host = |name: &str, key: &str| {
                format!(
                    "Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                     IdentityFile {d}/{key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  \
                     GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n",
                    d = d.display()
                )
            };
            std::fs::write(
                d.join("ssh_config"),
                host("cp-test", "id") + &host("cp-stranger", "stranger"),
            )
            .expect("ssh_config");
            let mut child = Command::new(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sshd starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost the port to someone else: try another
                }
                // sshd writes its pid file once its socket listens: a connection alone
                // could reach another test's sshd that won a race for the same port.
                let ours = std::fs::read_to_string(d.join("sshd.pid"))
                    .is_ok_and(|pid| pid.trim() == child.id().to_string());
                if ours && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd { dir, child };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("sshd did not start on a loopback port");
    }

    fn executor(&self) -> LiveExecutor {
        let control = self.dir.path().join("control");
        std::fs::create_dir_all(&control).expect("control dir");
        LiveExecutor::new(&Default::default(), control)
            .expect("executor")
            .with_ssh_command(vec![
                "ssh".into(),
                "-F".into(),
                self.dir.path().join("ssh_config").display().to_string(),
            ])
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn on(host: &str, argv: &[&str]) -> Operation {
    Operation::Argv {
        host: Some(host.into()),
        argv: argv.iter().map(|a| a.to_string()).collect(),
    }
}

#[tokio::test]
async fn every_argument_reaches_the_remote_program_unchanged() {
    let sshd = Sshd::start();
    let mut exec = sshd.executor();
    let canary = sshd.dir.path().join("pwned");
    let injection = format!("$(touch {})", canary.display());
    let tricky = [
        "plain",
        "two words",
        "it's",
        "\"double\"",
        injection.as_str(),
        "a;b",
        "`id`",
        "*",
        "",
        "back\\slash",
        "tab\there",
    ];
    let mut argv = vec!["printf", "[%s]\\n"];
    argv.extend(tricky);
    let out = exec
        .execute(&on("cp-test", &argv))
        .await
        .expect("printf runs over ssh");
    let expected: Vec<String> = tricky.iter().map(|a| format!("[{a}]")).collect();
    assert_eq!(out.lines, expected, "{}", out.summary);
    assert!(
        !canary.exists(),
        "the remote shell ran a command substitution"
    );
    // One shared connection per host (ControlMaster), kept for the next step.
    let sockets = std::fs::read_dir(sshd.dir.path().join("control"))
        .expect("control dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("ssh-"))
        .count();
    assert_eq!(sockets, 1, "one ssh control socket for the host");
    let again = exec
        .execute(&on("cp-test", &["echo", "second step"]))
        .await
        .expect("second step over the shared connection");
    assert_eq!(again.lines, vec!["second step".to_string()]);
}

#[tokio::test]
async fn a_failing_remote_command_fails_the_step_with_its_output() {
    let sshd = Sshd::start();
    let mut exec = sshd.executor();
    let err = exec
        .execute(&on(
            "cp-test",
            &[
                "sh",
                "-c",
                "echo 'etcdutl: snapshot is corrupt' >&2; exit 3",
            ],
        ))
        .await
        .expect_err("exit 3 fails the step");
    let text = format!("{err:#}");
    assert!(text.contains("exit status: 3"), "{text}");
    assert!(text.contains("snapshot is corrupt"), "{text}");
}

#[tokio::test]
async fn a_host_that_refuses_the_key_fails_at_once_without_a_prompt() {
    let sshd = Sshd::start();
    let mut exec = sshd.executor();
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        exec.execute(&on("cp-stranger", &["true"])),
    )
    .await
    .expect("batch mode does not wait for a password")
    .expect_err("an unknown key is refused");
    let text = format!("{err:#}");
    assert!(text.contains("Permission denied"), "{text}");
}
