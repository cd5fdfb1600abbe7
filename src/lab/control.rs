//! The lab's control endpoint (loopback HTTP, `KHA_LAB_CONTROL`), so tests and scripts
//! can inject the same faults the demo keys do:
//! `GET /faults`, `PUT /faults` (a JSON [`Faults`]), `POST /commands/<name>`.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use color_eyre::eyre::{Result, WrapErr};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::cluster::Lab;
use super::topology::Faults;
use crate::model::LabCommand;

/// A request to the task that owns the [`Lab`].
pub enum LabRequest {
    Command(LabCommand, oneshot::Sender<String>),
    GetFaults(oneshot::Sender<Faults>),
    SetFaults(Faults, oneshot::Sender<Result<Faults, String>>),
}

/// Command names of `POST /commands/<name>`.
pub fn command_by_name(name: &str) -> Option<LabCommand> {
    Some(match name {
        "stop-member" => LabCommand::StopMember,
        "start-member" => LabCommand::StartMember,
        "toggle-nospace" => LabCommand::ToggleNospace,
        "toggle-zone" => LabCommand::ToggleZone,
        "toggle-canary" => LabCommand::ToggleCanary,
        "toggle-backup-stale" => LabCommand::ToggleBackupStale,
        "toggle-ceph" => LabCommand::ToggleCeph,
        "toggle-gpu-hot" => LabCommand::ToggleGpuHot,
        _ => return None,
    })
}

/// Owns the lab until every request sender is gone, then shuts it down.
pub async fn serve(mut lab: Lab, mut requests: mpsc::Receiver<LabRequest>) {
    while let Some(request) = requests.recv().await {
        match request {
            LabRequest::Command(cmd, reply) => {
                let _ = reply.send(lab.command(cmd).await);
            }
            LabRequest::GetFaults(reply) => {
                let _ = reply.send(lab.faults());
            }
            LabRequest::SetFaults(faults, reply) => {
                let result = lab
                    .set_faults(faults)
                    .await
                    .map(|()| lab.faults())
                    .map_err(|e| format!("{e:#}"));
                let _ = reply.send(result);
            }
        }
    }
    lab.shutdown().await;
}

pub struct ControlServer {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

type Reply = (StatusCode, Json<Value>);

fn gone() -> Reply {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "the lab is shutting down"})),
    )
}

async fn get_faults(State(tx): State<mpsc::Sender<LabRequest>>) -> Reply {
    let (reply, answer) = oneshot::channel();
    if tx.send(LabRequest::GetFaults(reply)).await.is_err() {
        return gone();
    }
    match answer.await {
        Ok(f) => (StatusCode::OK, Json(json!(f))),
        Err(_) => gone(),
    }
}

async fn put_faults(State(tx): State<mpsc::Sender<LabRequest>>, body: String) -> Reply {
    let faults: Faults = match serde_json::from_str(&body) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("not a Faults object: {e}")})),
            );
        }
    };
    let (reply, answer) = oneshot::channel();
    if tx.send(LabRequest::SetFaults(faults, reply)).await.is_err() {
        return gone();
    }
    match answer.await {
        Ok(Ok(f)) => (StatusCode::OK, Json(json!(f))),
        Ok(Err(e)) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": e}))),
        Err(_) => gone(),
    }
}

async fn run_command(
    State(tx): State<mpsc::Sender<LabRequest>>,
    Path(name): Path<String>,
) -> Reply {
    let Some(cmd) = command_by_name(&name) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no lab command {name:?}")})),
        );
    };
    let (reply, answer) = oneshot::channel();
    if tx.send(LabRequest::Command(cmd, reply)).await.is_err() {
        return gone();
    }
    match answer.await {
        Ok(message) => (StatusCode::OK, Json(json!({"message": message}))),
        Err(_) => gone(),
    }
}

impl ControlServer {
    /// Binds 127.0.0.1:0 and forwards requests to the lab task.
    pub async fn start(requests: mpsc::Sender<LabRequest>) -> Result<ControlServer> {
        let app = Router::new()
            .route("/faults", get(get_faults).put(put_faults))
            .route("/commands/{name}", post(run_command))
            .with_state(requests);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .wrap_err("cannot bind the lab control port")?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(ControlServer { url, task })
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub async fn shutdown(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
