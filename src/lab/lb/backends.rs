//! One simulated kube-apiserver health endpoint per control-plane node, each on its own
//! 127.0.0.1 port over plain HTTP. A backend whose zone is lost has its listener closed
//! (and its connections dropped), so clients get "connection refused" like from a dead
//! apiserver; it listens again on the same port when the zone comes back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use color_eyre::eyre::{Result, WrapErr};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::health::{self, HealthAnswer, HealthEndpoint};
use crate::lab::topology::{Faults, Topology};

/// How often a backend whose port could not be re-bound tries again.
const REBIND_RETRY: Duration = Duration::from_millis(200);
/// The pause after a failed `accept`.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The simulated apiserver health endpoints of the lab's control plane.
pub struct ApiServerBackends {
    slots: Arc<Vec<BackendSlot>>,
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

/// One control-plane node's apiserver.
struct BackendSlot {
    zone: String,
    addr: SocketAddr,
    /// The readiness check that fails while the apiserver is alive but unready.
    failing_check: Mutex<Option<String>>,
}

impl BackendSlot {
    fn failing_check(&self) -> Option<String> {
        self.failing_check
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

impl ApiServerBackends {
    /// One simulated kube-apiserver health endpoint per control-plane node of the
    /// topology, each on its own `127.0.0.1:0` port, plain HTTP. They follow `faults`
    /// live: a backend in the lost zone refuses connections (listener closed), like a
    /// dead apiserver; `etcd_nospace` does not fail readyz (real apiservers stay ready).
    /// [`ApiServerBackends::set_unready`] makes one backend unready but alive.
    pub async fn start(
        topology: Topology,
        faults: watch::Receiver<Faults>,
    ) -> Result<ApiServerBackends> {
        let mut slots = Vec::new();
        let mut listeners = Vec::new();
        for node in &topology.control_plane {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .wrap_err_with(|| format!("cannot listen for apiserver {}", node.name))?;
            let addr = listener
                .local_addr()
                .wrap_err("cannot read the apiserver's port")?;
            slots.push(BackendSlot {
                zone: node.zone.clone(),
                addr,
                failing_check: Mutex::new(None),
            });
            listeners.push(Some(listener));
        }
        let slots = Arc::new(slots);
        let (stop, stop_rx) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(slots.clone(), listeners, faults, stop_rx));
        Ok(ApiServerBackends {
            slots,
            stop,
            supervisor,
        })
    }

    /// Base URLs in control-plane order (for `KHA_APISERVER_BACKENDS`).
    pub fn urls(&self) -> Vec<String> {
        self.slots
            .iter()
            .map(|s| format!("http://{}", s.addr))
            .collect()
    }

    /// Makes backend `idx` alive but unready: `Some("etcd")` fails `/readyz` with
    /// `[-]etcd failed: reason withheld` (and `/livez` too, for checks it runs); `None`
    /// makes it ready again. Any check name is accepted; one that is not a readiness
    /// check of v1.31 changes nothing. An `idx` beyond the control plane is ignored.
    pub fn set_unready(&self, idx: usize, failing_check: Option<&str>) {
        if let Some(slot) = self.slots.get(idx) {
            let value = failing_check.map(str::to_string);
            match slot.failing_check.lock() {
                Ok(mut g) => *g = value,
                Err(poisoned) => *poisoned.into_inner() = value,
            }
        }
    }

    /// Stops every backend and waits until their listeners are closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.supervisor.await;
    }
}

/// Keeps each backend listening exactly while its zone is up.
async fn supervise(
    slots: Arc<Vec<BackendSlot>>,
    mut listeners: Vec<Option<TcpListener>>,
    mut faults: watch::Receiver<Faults>,
    mut stop: watch::Receiver<bool>,
) {
    let mut serving: Vec<Option<JoinHandle<()>>> = slots.iter().map(|_| None).collect();
    let mut faults_open = true;
    loop {
        let current = faults.borrow_and_update().clone();
        let mut pending_rebind = false;
        for (i, slot) in slots.iter().enumerate() {
            let wanted = !current.zone_is_down(&slot.zone);
            match (&serving[i], wanted) {
                (None, true) => {
                    let listener = match listeners[i].take() {
                        Some(l) => Some(l),
                        None => TcpListener::bind(slot.addr).await.ok(),
                    };
                    match listener {
                        Some(l) => serving[i] = Some(tokio::spawn(serve(l, slots.clone(), i))),
                        None => pending_rebind = true,
                    }
                }
                (Some(_), false) => {
                    if let Some(task) = serving[i].take() {
                        task.abort();
                        let _ = task.await;
                    }
                }
                _ => {}
            }
            // A listener reserved at start for a backend whose zone is down is closed.
            if !wanted {
                listeners[i] = None;
            }
        }
        tokio::select! {
            changed = faults.changed(), if faults_open => {
                if changed.is_err() {
                    faults_open = false;
                }
            }
            _ = tokio::time::sleep(REBIND_RETRY), if pending_rebind => {}
            _ = stop.changed() => break,
        }
    }
    for task in serving.into_iter().flatten() {
        task.abort();
        let _ = task.await;
    }
}

/// Accepts connections for backend `idx`; dropping (aborting) this task closes the
/// listener and every connection it accepted.
async fn serve(listener: TcpListener, slots: Arc<Vec<BackendSlot>>, idx: usize) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or similar: do not spin.
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                };
                connections.spawn(serve_connection(stream, slots.clone(), idx));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// HTTP/1 on one accepted connection; each request sees the backend's current readiness.
async fn serve_connection(stream: TcpStream, slots: Arc<Vec<BackendSlot>>, idx: usize) {
    let service = service_fn(move |req| {
        let failing = slots.get(idx).and_then(BackendSlot::failing_check);
        async move { Ok::<_, Infallible>(answer(&req, failing.as_deref())) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The apiserver's answer to one request on its public (anonymous) paths.
fn answer(req: &Request<Incoming>, failing: Option<&str>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let verb = req.method().as_str().to_ascii_lowercase();
        return json(StatusCode::FORBIDDEN, health::forbidden_json(&verb, path));
    }
    if path == "/version" || path == "/version/" {
        return json(StatusCode::OK, health::version_json());
    }
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let root = parts.next().unwrap_or("");
    let rest = parts.next();
    let Some(endpoint) = HealthEndpoint::from_name(root) else {
        return json(StatusCode::FORBIDDEN, health::forbidden_json("get", path));
    };
    let answer = match rest {
        None | Some("") => Some(health::root_health(endpoint, failing, query)),
        Some(check) => health::single_check(endpoint, check, failing),
    };
    match answer {
        Some(a) => text(a),
        None => json(StatusCode::FORBIDDEN, health::forbidden_json("get", path)),
    }
}

fn text(answer: HealthAnswer) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, "text/plain; charset=utf-8", answer.body)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "application/json", body)
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
