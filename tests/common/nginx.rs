//! A real nginx (Debian's `nginx` with `libnginx-mod-stream`) as the test's own process
//! on loopback: prefix, main config, pid file and logs in a temp dir, never /etc/nginx,
//! never port 80. Stopped (`nginx -s stop`, then killed) when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Where Debian puts nginx, for when /usr/sbin is not on PATH.
const DEBIAN_NGINX: &str = "/usr/sbin/nginx";

/// The nginx program; fails loudly (never skips) when it is not installed.
pub fn require_nginx() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
        .or_else(|| Some(PathBuf::from(DEBIAN_NGINX)).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed (not on PATH, no {DEBIAN_NGINX}): this test needs the \
                 real thing. Run scripts/deps.sh or `apt-get install nginx libnginx-mod-stream`."
            )
        })
}

/// The `load_module` line the stream module needs: none when nginx has it built in, the
/// module file when it is built apart (Debian); fails loudly when nginx has no stream.
fn load_stream_module(nginx: &Path) -> String {
    let out = Command::new(nginx)
        .arg("-V")
        .output()
        .expect("run nginx -V");
    let built = String::from_utf8_lossy(&out.stderr).into_owned();
    let flags: Vec<&str> = built.split_whitespace().collect();
    if flags.contains(&"--with-stream") {
        return String::new();
    }
    let modules = flags
        .iter()
        .find_map(|f| f.strip_prefix("--modules-path="))
        .unwrap_or("/usr/lib/nginx/modules");
    let module = Path::new(modules).join("ngx_stream_module.so");
    assert!(
        flags.contains(&"--with-stream=dynamic") && module.is_file(),
        "{} has no stream module ({} missing): run scripts/deps.sh or \
         `apt-get install libnginx-mod-stream`",
        nginx.display(),
        module.display()
    );
    format!("load_module {};\n", module.display())
}

/// A real nginx master in the foreground (`daemon off`), with one worker.
pub struct RealNginx {
    child: Child,
    pub bin: PathBuf,
    /// The prefix (`-p`), holding the main config, pid file and logs.
    pub prefix: PathBuf,
    /// The main config (`-c`); it includes every file of `prefix/stream.d/`.
    pub main_config: PathBuf,
    pub error_log: PathBuf,
}

impl RealNginx {
    /// `nginx -p PREFIX -c MAIN args…`, run to completion.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.bin)
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&self.main_config)
            .args(args)
            .output()
            .expect("run nginx")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.error_log).unwrap_or_default()
    }

    /// Whether the master is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for RealNginx {
    fn drop(&mut self) {
        // SIGTERM to the master: a fast shutdown that takes its workers with it (SIGKILL
        // on the master alone leaves them running). Not `nginx -s stop`: that parses the
        // config on disk first, and fails when the test left it broken.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts nginx in `dir` with `stream_file` (the upstream file's text) as
/// `dir/stream.d/apiserver.conf`, included by a main config whose other lines hold
/// what an nginx needs; returns once `listen` accepts connections.
pub fn start_real_nginx(dir: &Path, stream_file: &str, listen: SocketAddr) -> RealNginx {
    let bin = require_nginx();
    let stream_d = dir.join("stream.d");
    std::fs::create_dir_all(&stream_d).unwrap();
    std::fs::write(stream_d.join("apiserver.conf"), stream_file).unwrap();
    let error_log = dir.join("error.log");
    let main_config = dir.join("nginx.conf");
    // `include stream.d/*`, like Debian's `sites-enabled/*`: every file there is loaded.
    let main = format!(
        "{}daemon off;\nmaster_process on;\nworker_processes 1;\npid {}/nginx.pid;\n\
         error_log {} notice;\nevents {{\n    worker_connections 64;\n}}\ninclude {}/*;\n",
        load_stream_module(&bin),
        dir.display(),
        error_log.display(),
        stream_d.display()
    );
    std::fs::write(&main_config, main).unwrap();
    let out = std::fs::File::create(dir.join("nginx.out")).unwrap();
    let child = Command::new(&bin)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&main_config)
        .arg("-e")
        .arg(&error_log)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("cannot start nginx");
    let mut nginx = RealNginx {
        child,
        bin,
        prefix: dir.to_path_buf(),
        main_config,
        error_log,
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_err() {
        assert!(
            nginx.running() && Instant::now() < deadline,
            "nginx did not listen on {listen}; its output:\n{}\nits log:\n{}",
            std::fs::read_to_string(dir.join("nginx.out")).unwrap_or_default(),
            nginx.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

/// A backend on loopback that answers every connection with its name and a newline,
/// then closes; it lives as long as the test's runtime.
pub async fn named_backend(name: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let line = format!("{name}\n");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let line = line.clone();
            tokio::spawn(async move {
                let _ = conn.write_all(line.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

/// Who answers one fresh connection through `addr`.
pub async fn who_answers(addr: SocketAddr) -> Result<String, String> {
    let talk = async {
        let mut conn = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut said = String::new();
        conn.read_to_string(&mut said)
            .await
            .map_err(|e| e.to_string())?;
        Ok(said.trim().to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), talk)
        .await
        .map_err(|_| format!("no answer through {addr} within 2 s"))?
}
