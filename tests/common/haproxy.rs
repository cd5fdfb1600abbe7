//! A real HAProxy (Debian's `haproxy`) in front of apiserver backends, for the tests that
//! hold kha's LB reading and the lab's runtime API against the real thing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

pub const HAPROXY: &str = "/usr/sbin/haproxy";

/// Fails loudly (never skips) when HAProxy is not installed.
pub fn require_haproxy() {
    assert!(
        Path::new(HAPROXY).exists(),
        "{HAPROXY} is missing: this test needs the real thing. Install it with \
         `apt-get install haproxy` (or run scripts/deps.sh)."
    );
}

/// A real HAProxy in the foreground, killed when dropped.
pub struct RealHaproxy {
    child: Child,
    pub socket: PathBuf,
}

impl Drop for RealHaproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// HAProxy on loopback with `option httpchk GET /readyz`, `inter 1s fall 3 rise 2`, in
/// front of `servers` (`(name, http://host:port)`) as backend `kube-apiserver`, its
/// runtime API on `dir/real.sock` at admin level.
pub fn start_real_haproxy(dir: &Path, servers: &[(String, String)]) -> RealHaproxy {
    let socket = dir.join("real.sock");
    let mut cfg = format!(
        "global\n    stats socket {} mode 600 level admin\n    stats timeout 30s\n\
         defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
         frontend kube-apiserver-frontend\n    bind 127.0.0.1:{}\n    mode tcp\n    default_backend kube-apiserver\n\
         backend kube-apiserver\n    mode tcp\n    option httpchk GET /readyz\n    http-check expect status 200\n    balance roundrobin\n    default-server inter 1s fall 3 rise 2\n",
        socket.display(),
        free_port()
    );
    for (name, url) in servers {
        let addr = url.trim_start_matches("http://");
        cfg.push_str(&format!("    server {name} {addr} check\n"));
    }
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let log_path = dir.join("haproxy.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(HAPROXY)
        .arg("-f")
        .arg(&cfg_path)
        .arg("-db")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("cannot start haproxy");
    let real = RealHaproxy { child, socket };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !real.socket.exists() {
        assert!(
            Instant::now() < deadline,
            "haproxy did not open its stats socket; its log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    real
}

/// One command on a runtime-API socket, non-interactive: the whole answer.
pub async fn ask(socket: &Path, command: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stream = loop {
        match UnixStream::connect(socket).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot connect to {}: {e}", socket.display()),
        }
    };
    stream
        .write_all(format!("{command}\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut out))
        .await
        .expect("the runtime API did not close the connection")
        .unwrap();
    out
}
