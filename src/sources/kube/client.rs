//! The kube-rs client from the kubeconfig (`--kubeconfig`, `KUBECONFIG`, the profile)
//! and context (`--context`, the profile, else the current one). TLS is always verified:
//! a kubeconfig that asks to skip verification is overridden, and said so.

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Where the kubeconfig comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeconfigSource {
    /// `--kubeconfig` or the profile's `kubeconfig`.
    File(PathBuf),
    /// `KUBECONFIG` (a list of files, merged as kubectl merges them).
    Env,
}

/// A connected client and one line saying which cluster it talks to.
pub struct Connection {
    pub client: Client,
    pub target: String,
    /// Said to the engineer (e.g. TLS verification forced back on).
    pub warnings: Vec<String>,
}

/// Who the kubeconfig says we are: `user@context` of the context in use (for audit
/// records). `None` when there is no readable kubeconfig.
pub fn identity(source: &KubeconfigSource, context: Option<&str>) -> Option<String> {
    let kubeconfig = match source {
        KubeconfigSource::File(path) => Kubeconfig::read_from(path).ok()?,
        KubeconfigSource::Env => Kubeconfig::from_env().ok()??,
    };
    let name = context
        .map(str::to_string)
        .or_else(|| kubeconfig.current_context.clone())?;
    let ctx = kubeconfig.contexts.iter().find(|c| c.name == name)?;
    let user = ctx.context.as_ref()?.user.clone()?;
    Some(format!("{user}@{name}"))
}

/// How long the audit waits for the API server to say who we are before it records the
/// kubeconfig's name instead (a runbook during an outage must not wait on it).
pub const WHOAMI_WAIT: Duration = Duration::from_secs(3);

/// Who the API server says the credentials are, as `kubectl auth whoami` asks (a
/// SelfSubjectReview, GA since Kubernetes 1.28): `alice@example.com [sre, system:authenticated]`.
pub async fn whoami(client: &kube::Client) -> Result<String> {
    let body = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
    });
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body)?)
        .map_err(|e| eyre!("SelfSubjectReview: {e}"))?;
    let review: serde_json::Value = client
        .request(req)
        .await
        .map_err(|e| eyre!("SelfSubjectReview: {e}"))?;
    let info = &review["status"]["userInfo"];
    let user = info["username"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| eyre!("SelfSubjectReview: the answer names no user"))?;
    let groups: Vec<&str> = info["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(serde_json::Value::as_str).collect())
        .unwrap_or_default();
    Ok(if groups.is_empty() {
        user.to_string()
    } else {
        format!("{user} [{}]", groups.join(", "))
    })
}

/// The identity an audit record names: the API server's answer (with the kubeconfig's
/// `user@context` it came through), or, when the server does not answer within
/// [`WHOAMI_WAIT`], the kubeconfig's name marked as unconfirmed. `None` without a
/// readable kubeconfig.
pub async fn audit_identity(source: &KubeconfigSource, context: Option<&str>) -> Option<String> {
    let named = identity(source, context)?;
    let asked = async {
        let conn = connect(source, context).await?;
        whoami(&conn.client).await
    };
    Some(match tokio::time::timeout(WHOAMI_WAIT, asked).await {
        Ok(Ok(who)) => format!("{who} via {named}"),
        Ok(Err(e)) => format!("{named} (unconfirmed: {e:#})"),
        Err(_) => format!(
            "{named} (unconfirmed: the API server did not say who within {} s)",
            WHOAMI_WAIT.as_secs()
        ),
    })
}

/// How much longer than a watch request's own timeout a read may wait for bytes before
/// the connection is taken for dead.
pub const READ_MARGIN: Duration = Duration::from_secs(5);

/// Reads the kubeconfig and builds the client. Fails on local problems only (an
/// unreadable kubeconfig, an unknown context); the network is not touched.
pub async fn connect(source: &KubeconfigSource, context: Option<&str>) -> Result<Connection> {
    connect_with(source, context, super::DEFAULT_WATCH_TIMEOUT).await
}

/// [`connect`] for a client whose watches last `watch_timeout`: a response that sends
/// nothing for longer than that (plus [`READ_MARGIN`]) fails, so a request to a frozen
/// API server or over a dead connection ends in an error instead of waiting forever.
pub async fn connect_with(
    source: &KubeconfigSource,
    context: Option<&str>,
    watch_timeout: Duration,
) -> Result<Connection> {
    connect_configured(source, context, watch_timeout, true).await
}

/// [`connect`] without kube-rs's own retry of 429/503/504 answers, for callers that
/// must see a 429 themselves (a drain names the PodDisruptionBudget behind it and keeps
/// its own schedule; kube-rs would retry up to 15 times, backing off to minutes).
pub async fn connect_without_retry(
    source: &KubeconfigSource,
    context: Option<&str>,
) -> Result<Connection> {
    connect_configured(source, context, super::DEFAULT_WATCH_TIMEOUT, false).await
}

async fn connect_configured(
    source: &KubeconfigSource,
    context: Option<&str>,
    watch_timeout: Duration,
    retry: bool,
) -> Result<Connection> {
    let kubeconfig = match source {
        KubeconfigSource::File(path) => Kubeconfig::read_from(path)
            .wrap_err_with(|| format!("cannot read the kubeconfig {}", path.display()))?,
        KubeconfigSource::Env => Kubeconfig::from_env()
            .wrap_err("cannot read the kubeconfig(s) in KUBECONFIG")?
            .ok_or_else(|| eyre!("KUBECONFIG is empty"))?,
    };
    let context_name = context
        .map(str::to_string)
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_else(|| "(none)".into());
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .wrap_err_with(|| {
            format!(
                "cannot use context {context_name:?} of the kubeconfig (--context picks another)"
            )
        })?;
    let mut warnings = Vec::new();
    if config.accept_invalid_certs {
        config.accept_invalid_certs = false;
        warnings.push(format!(
            "kubeconfig context {context_name} asks to skip TLS verification; kha verifies anyway"
        ));
    }
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(watch_timeout + READ_MARGIN);
    // Count the read timeout from each request, not from when a pooled connection
    // went idle.
    config.reset_reader_on_write = true;
    config.default_retry = retry;
    let target = format!("context {context_name} at {}", config.cluster_url);
    let client = Client::try_from(config).wrap_err("cannot build the Kubernetes client")?;
    Ok(Connection {
        client,
        target,
        warnings,
    })
}
