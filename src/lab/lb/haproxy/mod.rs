//! An HAProxy-compatible runtime API (the "stats socket") on a unix socket, fronting the
//! lab's apiserver backends as backend `kube-apiserver` behind a frontend
//! `kube-apiserver-frontend`. It health-checks every server like
//! `option httpchk GET /readyz` with `inter 1s fall 3 rise 2`, so what it reports follows
//! the backends. It serves the runtime API only: no traffic is proxied.

mod check;
mod cli;
mod proxy;
mod session;
mod stats;
mod usage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use color_eyre::eyre::{Result, WrapErr, eyre};
use tokio::net::UnixListener;
use tokio::task::{JoinHandle, JoinSet};

use cli::RuntimeState;
use proxy::{AdminState, Backend};

/// `inter 1s`: how often each server is checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How far apart the first checks of successive servers start.
const CHECK_STAGGER: Duration = Duration::from_millis(50);
/// The pause after a failed `accept`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// The backend's name, as in a typical HA apiserver config.
const BACKEND_NAME: &str = "kube-apiserver";

/// The lab's HAProxy runtime API.
pub struct HaproxyRuntime {
    socket_path: PathBuf,
    tasks: Vec<JoinHandle<()>>,
}

impl HaproxyRuntime {
    /// An HAProxy-compatible runtime API on a unix socket at `socket_path`, fronting
    /// `backend_urls` (`(server name, http://host:port)`) as backend `kube-apiserver`.
    /// It health-checks them (GET /readyz every 1 s, rise 2, fall 3) so its state follows
    /// the backends. A stale socket file at `socket_path` is replaced.
    pub async fn start(
        socket_path: &Path,
        backend_urls: Vec<(String, String)>,
    ) -> Result<HaproxyRuntime> {
        let mut servers = Vec::new();
        for (name, url) in backend_urls {
            servers.push((name, resolve_backend(&url).await?));
        }
        match std::fs::remove_file(socket_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).wrap_err_with(|| {
                    format!("cannot replace the old socket {}", socket_path.display())
                });
            }
        }
        let listener = UnixListener::bind(socket_path)
            .wrap_err_with(|| format!("cannot listen on {}", socket_path.display()))?;
        set_owner_only(socket_path)?;
        let now = Instant::now();
        let addrs: Vec<SocketAddr> = servers.iter().map(|(_, a)| *a).collect();
        let state = Arc::new(Mutex::new(RuntimeState {
            backend: Backend::new(BACKEND_NAME, servers, now),
            started: now,
            start_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            node: host_name(),
            cli_connections: 0,
        }));
        let mut tasks = vec![tokio::spawn(accept(listener, state.clone()))];
        for (idx, addr) in addrs.into_iter().enumerate() {
            tasks.push(tokio::spawn(check_server(state.clone(), idx, addr)));
        }
        Ok(HaproxyRuntime {
            socket_path: socket_path.to_path_buf(),
            tasks,
        })
    }

    /// Where the runtime API listens (`KHA_LB_STATS=unix://<path>`).
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Stops checking and serving, and removes the socket file.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

impl Drop for HaproxyRuntime {
    /// Dropped without [`HaproxyRuntime::shutdown`]: stop anyway, without waiting.
    fn drop(&mut self) {
        if self.tasks.is_empty() {
            return;
        }
        for task in &self.tasks {
            task.abort();
        }
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

/// `http://127.0.0.1:6443` (or with a trailing path) → its socket address.
async fn resolve_backend(url: &str) -> Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| eyre!("backend URL {url} must start with http://"))?;
    let host_port = rest.split('/').next().unwrap_or(rest);
    tokio::net::lookup_host(host_port)
        .await
        .wrap_err_with(|| format!("cannot resolve backend {url}"))?
        .next()
        .ok_or_else(|| eyre!("backend {url} resolves to no address"))
}

/// `stats socket ... mode 600`.
fn set_owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .wrap_err_with(|| format!("cannot restrict {}", path.display()))
}

/// The host name `show info` reports as `node`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Accepts runtime-API clients; aborting this task closes them all.
async fn accept(listener: UnixListener, state: Arc<Mutex<RuntimeState>>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or similar: do not spin.
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                };
                if let Ok(mut s) = state.lock() {
                    s.cli_connections += 1;
                }
                sessions.spawn(session::serve(stream, state.clone()));
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// Checks server `idx` every [`CHECK_INTERVAL`] while checks apply to it.
async fn check_server(state: Arc<Mutex<RuntimeState>>, idx: usize, addr: SocketAddr) {
    let first = tokio::time::Instant::now() + CHECK_STAGGER * idx as u32;
    let mut ticker = tokio::time::interval_at(first, CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let wanted = state.lock().is_ok_and(|s| {
            s.backend
                .servers
                .get(idx)
                .is_some_and(|srv| srv.checks_enabled && srv.admin != AdminState::Maint)
        });
        if !wanted {
            continue;
        }
        let report = check::http_check(addr, CHECK_INTERVAL).await;
        let mut s = state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        s.backend
            .count_check_traffic(report.bytes_out, report.bytes_in);
        s.backend.record_check(idx, &report.outcome, Instant::now());
    }
}
