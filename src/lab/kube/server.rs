//! The HTTP side: binds 127.0.0.1:0 and serves HTTP/1.1 (hyper) on that one port both in
//! plain text and over TLS (told apart by the first byte a client sends), checks the
//! bearer token, serves discovery and the resource verbs, writes a kubeconfig for
//! clients, and can drop every open watch or shut down. The kubeconfig uses `https://`
//! because kubectl (client-go) never sends a bearer token over plain HTTP.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use color_eyre::eyre::{Result, WrapErr};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::openapi;
use super::request::{Query, Route, route};
use super::status::ApiError;
use super::store::Store;
use super::tls::ServingCerts;
use super::verbs::{self, Ctx, Reply, ResourceRequest};
use super::{KubeApiConfig, SERVER_VERSION};

/// kube-apiserver's default request body limit (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

type Body = BoxBody<Bytes, Infallible>;

/// The lab's Kubernetes API server, serving a [`Store`] on 127.0.0.1.
pub struct KubeApiServer {
    addr: SocketAddr,
    token: String,
    user: String,
    ca_pem: String,
    stop_watches: watch::Sender<u64>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    /// Kept so a stopped server can serve again (same port, CA and token).
    ctx: Arc<Ctx>,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl KubeApiServer {
    /// Binds 127.0.0.1 on a free port and starts serving `store`.
    pub async fn start(store: Store, config: KubeApiConfig) -> Result<KubeApiServer> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .wrap_err("cannot bind the lab's Kubernetes API server to 127.0.0.1")?;
        let addr = listener
            .local_addr()
            .wrap_err("cannot read the lab API server's address")?;
        let certs = ServingCerts::generate()?;
        let (stop_watches, stop_rx) = watch::channel(0u64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let token = config.token.clone();
        let user = config.user.clone();
        let ctx = Arc::new(Ctx {
            store,
            config,
            stop_watches: stop_rx,
            recorder: super::Recorder::default(),
        });
        let ca_pem = certs.ca_pem.clone();
        let acceptor = certs.acceptor.clone();
        let task = tokio::spawn(accept_loop(listener, ctx.clone(), certs, shutdown_rx));
        Ok(KubeApiServer {
            addr,
            token,
            user,
            ca_pem,
            stop_watches,
            shutdown,
            task: Some(task),
            ctx,
            acceptor,
        })
    }

    /// Stops serving, as a crashed or restarting kube-apiserver does: open watches and
    /// connections close and the port refuses connections, until [`KubeApiServer::resume`].
    pub async fn stop(&mut self) {
        self.drop_watches();
        let _ = self.shutdown.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    /// Serves again at the same address with the same store, CA and token.
    pub async fn resume(&mut self) -> Result<()> {
        if self.task.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .wrap_err_with(|| format!("cannot bind {} again", self.addr))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        self.shutdown = shutdown;
        let certs = ServingCerts {
            ca_pem: self.ca_pem.clone(),
            acceptor: self.acceptor.clone(),
        };
        self.task = Some(tokio::spawn(accept_loop(
            listener,
            self.ctx.clone(),
            certs,
            shutdown_rx,
        )));
        Ok(())
    }

    /// `http://127.0.0.1:PORT` (plain HTTP; the same port also speaks TLS).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:PORT`, verified by [`KubeApiServer::ca_pem`].
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes a kubeconfig (cluster and context `kha-lab` at [`KubeApiServer::https_url`]
    /// with the CA inlined, the user with the bearer token) atomically with mode 0600.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        use base64::Engine;
        let q = |s: &str| Value::String(s.to_string()).to_string();
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kha-lab\n  cluster:\n    certificate-authority-data: {ca}\n    server: {server}\ncontexts:\n- name: kha-lab\n  context:\n    cluster: kha-lab\n    user: {user}\ncurrent-context: kha-lab\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    token: {token}\n",
            server = q(&self.https_url()),
            user = q(&self.user),
            token = q(&self.token),
        );
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "kubeconfig".to_string());
        let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .wrap_err_with(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .wrap_err_with(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).wrap_err_with(|| {
            format!(
                "cannot move the kubeconfig into place at {}",
                path.display()
            )
        })?;
        Ok(())
    }

    /// The log of the requests this server received (method, path, content type, body).
    pub fn recorder(&self) -> super::Recorder {
        self.ctx.recorder.clone()
    }

    /// Closes every open watch stream now; clients re-watch (or relist).
    pub fn drop_watches(&self) {
        self.stop_watches.send_modify(|generation| *generation += 1);
    }

    /// Closes watches and connections and stops listening.
    pub async fn shutdown(mut self) {
        self.drop_watches();
        let _ = self.shutdown.send(true);
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for KubeApiServer {
    /// A server dropped without [`KubeApiServer::shutdown`] stops at once.
    fn drop(&mut self) {
        self.drop_watches();
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    certs: ServingCerts,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let ctx = ctx.clone();
                let acceptor = certs.acceptor.clone();
                let shutdown = shutdown.clone();
                connections.spawn(async move {
                    // A TLS ClientHello starts with the handshake record type 0x16.
                    let mut first = [0u8; 1];
                    let tls = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16);
                    if tls {
                        let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                        if let Ok(Ok(tls_stream)) = handshake.await {
                            serve_connection(tls_stream, ctx, shutdown).await;
                        }
                    } else {
                        serve_connection(stream, ctx, shutdown).await;
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(1), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

async fn serve_connection<S>(stream: S, ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(serve(&ctx, req).await) }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

fn full(code: u16, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body).boxed());
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}

fn reply(r: Reply) -> Response<Body> {
    match r {
        Reply::Json { code, body } => full(code, "application/json", body),
        Reply::Stream(rx) => {
            let frames =
                ReceiverStream::new(rx).map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
            let mut resp = Response::new(StreamBody::new(frames).boxed());
            let headers = resp.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, private"),
            );
            resp
        }
    }
}

fn error(e: &ApiError) -> Response<Body> {
    reply(Reply::error(e))
}

/// Whether the request carries the right bearer token; `None` when it carries none.
fn token_ok(req: &Request<Incoming>, token: &str) -> Option<bool> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let presented = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(presented.trim() == token)
}

async fn serve(ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let routed = route(&path);
    let public = matches!(routed, Route::Version | Route::Health);
    match token_ok(&req, &ctx.config.token) {
        Some(true) => {}
        None if public => {}
        _ => return error(&ApiError::unauthorized()),
    }
    let method = req.method().clone();
    let query = req.uri().query().map(String::from);
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let accept = header(header::ACCEPT);
    let content_type = header(header::CONTENT_TYPE);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {MAX_BODY}"),
            ));
        }
    };
    ctx.recorder.record(
        method.as_str(),
        &path,
        query.as_deref(),
        content_type.as_deref(),
        &body,
    );
    let registry = || ctx.store.registry();
    let write = (method != http::Method::GET).then(|| (method.to_string(), path.clone()));
    let result = match routed {
        Route::Root => Ok(Reply::json(200, &root_paths(ctx))),
        Route::Version => Ok(Reply::json(200, &version())),
        Route::Health => {
            return full(200, "text/plain; charset=utf-8", Bytes::from_static(b"ok"));
        }
        Route::LegacyVersions => Ok(Reply::json(200, &registry().api_versions("127.0.0.1:6443"))),
        Route::Groups => Ok(Reply::json(200, &registry().api_group_list())),
        Route::Group(g) => registry()
            .api_group(&g)
            .map(|doc| Reply::json(200, &doc))
            .ok_or_else(ApiError::no_route),
        Route::Discovery { group, version } => registry()
            .api_resource_list(&group, &version)
            .map(|doc| Reply::json(200, &doc))
            .ok_or_else(ApiError::no_route),
        Route::Resource(resource_path) => match Query::parse(query.as_deref()) {
            Ok(query) => verbs::handle(
                ctx,
                ResourceRequest {
                    method: method.as_str(),
                    path: resource_path,
                    query,
                    accept: accept.as_deref(),
                    content_type: content_type.as_deref(),
                    body,
                },
            ),
            Err(e) => Err(e),
        },
        Route::OpenApiIndex => Ok(Reply::json(200, &openapi::index(&registry()))),
        Route::OpenApi { group, version } => openapi::group_version(&registry(), &group, &version)
            .map(|doc| Reply::json(200, &doc))
            .ok_or_else(ApiError::no_route),
        Route::NotFound => Err(ApiError::no_route()),
    };
    if let Some((method, path)) = write {
        let code = match &result {
            Ok(Reply::Json { code, .. }) => *code,
            Ok(Reply::Stream(_)) => 200,
            Err(e) => e.code,
        };
        ctx.recorder.answered(&method, &path, code);
    }
    match result {
        Ok(r) => reply(r),
        Err(e) => error(&e),
    }
}

fn version() -> Value {
    let minor = SERVER_VERSION
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .unwrap_or("0");
    json!({
        "major": "1",
        "minor": minor,
        "gitVersion": SERVER_VERSION,
        "gitCommit": "c9f1eda2f2a0b1e64b8bed6cd4a8a8d01d2d8a0a",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T16:00:55Z",
        "goVersion": "go1.23.8",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn root_paths(ctx: &Ctx) -> Value {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
    ];
    let groups = ctx.store.registry().api_group_list();
    for g in groups["groups"].as_array().into_iter().flatten() {
        if let Some(name) = g["name"].as_str() {
            paths.push(format!("/apis/{name}"));
        }
        for v in g["versions"].as_array().into_iter().flatten() {
            if let Some(gv) = v["groupVersion"].as_str() {
                paths.push(format!("/apis/{gv}"));
            }
        }
    }
    paths.extend(["/healthz", "/livez", "/readyz", "/version"].map(String::from));
    json!({"paths": paths})
}
