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

/// Reads the kubeconfig and builds the client. Fails on local problems only (an
/// unreadable kubeconfig, an unknown context); the network is not touched.
pub async fn connect(source: &KubeconfigSource, context: Option<&str>) -> Result<Connection> {
    connect_with(source, context, true).await
}

/// [`connect`], with kube-rs's retry of 429/503/504 answers on or off. Off for callers
/// that must see a 429 themselves (a drain names the PodDisruptionBudget behind it).
pub async fn connect_with(
    source: &KubeconfigSource,
    context: Option<&str>,
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
    config.default_retry = retry;
    let target = format!("context {context_name} at {}", config.cluster_url);
    let client = Client::try_from(config).wrap_err("cannot build the Kubernetes client")?;
    Ok(Connection {
        client,
        target,
        warnings,
    })
}
