//! How kha talks TLS to each kube-apiserver: the cluster CA (from `--apiserver-ca` or the
//! kubeconfig), the kubeconfig's credentials (bearer token or client certificate), and
//! the name each serving certificate is verified against. Verification is always on.
//! Secrets stay in memory: no `Debug` of them, no error message quoting them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use color_eyre::eyre::{Result, WrapErr, eyre};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret;
use tokio_rustls::TlsConnector;

/// Where the CA, credentials and server name come from (flag > env > profile).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiServerAuth {
    /// `--apiserver-ca`: PEM bundle of the cluster CA (kubeadm: /etc/kubernetes/pki/ca.crt).
    pub ca_file: Option<PathBuf>,
    /// The kubeconfig whose current (or `context`) cluster CA and user credentials are used.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// The name every serving certificate is verified against (and sent as SNI).
    pub server_name: Option<String>,
}

/// What the kubeconfig's cluster and user say.
#[derive(Default)]
struct KubeconfigParts {
    ca_pem: Option<Vec<u8>>,
    server: Option<String>,
    tls_server_name: Option<String>,
    token: Option<String>,
    client_cert_pem: Option<Vec<u8>>,
    client_key_pem: Option<Vec<u8>>,
}

/// Ready-to-use TLS for the probes.
#[derive(Clone)]
pub struct ProbeTls {
    /// `None` when no CA is known (then only http:// backends can be probed).
    pub connector: Option<TlsConnector>,
    /// Explicit server name (flag, profile, or the kubeconfig's `tls-server-name`).
    server_name: Option<String>,
    /// The kubeconfig server's host when it is a DNS name: the name every apiserver
    /// certificate of a kubeadm cluster carries (its `controlPlaneEndpoint`).
    endpoint_host: Option<String>,
    /// `Authorization: Bearer ...`, sent over TLS only.
    bearer: Option<Arc<str>>,
}

impl fmt::Debug for ProbeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeTls")
            .field("tls", &self.connector.is_some())
            .field("server_name", &self.server_name)
            .field("endpoint_host", &self.endpoint_host)
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn is_ip(host: &str) -> bool {
    host.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
}

/// `https://host:6443/x` -> `host` (brackets kept off IPv6).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

impl ProbeTls {
    /// Loads the CA and credentials. `needs_tls`: some backend uses https, so a CA is
    /// required (kha never probes an apiserver without verifying it).
    pub fn load(auth: &ApiServerAuth, needs_tls: bool) -> Result<ProbeTls> {
        let kube = match &auth.kubeconfig {
            Some(path) => read_kubeconfig(path, auth.context.as_deref())?,
            None => KubeconfigParts::default(),
        };
        let ca_pem = match &auth.ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .wrap_err_with(|| format!("cannot read the apiserver CA {}", path.display()))?,
            ),
            None => kube.ca_pem.clone(),
        };
        let connector = match ca_pem {
            Some(pem) => Some(connector(&pem, &kube)?),
            None if needs_tls => {
                return Err(eyre!(
                    "apiserver backends use https but no CA is known: set --apiserver-ca \
                     (kubeadm: /etc/kubernetes/pki/ca.crt) or KUBECONFIG"
                ));
            }
            None => None,
        };
        let endpoint_host = kube
            .server
            .as_deref()
            .and_then(url_host)
            .filter(|h| !is_ip(h));
        Ok(ProbeTls {
            connector,
            server_name: auth.server_name.clone().or(kube.tls_server_name),
            endpoint_host,
            bearer: kube.token.map(Arc::from),
        })
    }

    /// The name to verify `backend_host`'s certificate against: the explicit one; else,
    /// for a backend given by IP, the LB's DNS name from the kubeconfig; else the host.
    pub fn server_name_for(&self, backend_host: &str) -> String {
        if let Some(name) = &self.server_name {
            return name.clone();
        }
        match &self.endpoint_host {
            Some(name) if is_ip(backend_host) => name.clone(),
            _ => backend_host.trim_matches(['[', ']']).to_string(),
        }
    }

    pub fn bearer(&self) -> Option<&str> {
        self.bearer.as_deref()
    }
}

fn connector(ca_pem: &[u8], kube: &KubeconfigParts) -> Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| eyre!("the apiserver CA is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| eyre!("the apiserver CA holds an unusable certificate: {e}"))?;
        added += 1;
    }
    if added == 0 {
        return Err(eyre!("the apiserver CA holds no certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .wrap_err("no TLS protocol versions")?
        .with_root_certificates(roots);
    let mut config = match (&kube.client_cert_pem, &kube.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<_, _>>()
                .map_err(|e| eyre!("the kubeconfig's client certificate is not valid PEM: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|_| eyre!("the kubeconfig's client key is not a valid PEM key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| eyre!("cannot use the kubeconfig's client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Data (base64 in the kubeconfig) wins over a file path, as with kubectl.
fn data_or_file(data: Option<&str>, file: Option<&str>, what: &str) -> Result<Option<Vec<u8>>> {
    if let Some(data) = data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| eyre!("the kubeconfig's {what} data is not valid base64"))?;
        return Ok(Some(bytes));
    }
    match file {
        Some(path) => Ok(Some(std::fs::read(path).wrap_err_with(|| {
            format!("cannot read the kubeconfig's {what} {path}")
        })?)),
        None => Ok(None),
    }
}

fn read_kubeconfig(path: &Path, context: Option<&str>) -> Result<KubeconfigParts> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| eyre!("cannot read the kubeconfig {}: {e}", path.display()))?;
    let Some(name) = context.map(str::to_string).or(kc.current_context.clone()) else {
        return Ok(KubeconfigParts::default());
    };
    let ctx = kc
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| eyre!("no context {name:?} in the kubeconfig {}", path.display()))?;
    let mut parts = KubeconfigParts::default();
    if let Some(cluster) = kc
        .clusters
        .iter()
        .find(|c| c.name == ctx.cluster)
        .and_then(|c| c.cluster.as_ref())
    {
        parts.ca_pem = data_or_file(
            cluster.certificate_authority_data.as_deref(),
            cluster.certificate_authority.as_deref(),
            "certificate-authority",
        )?;
        parts.server = cluster.server.clone();
        parts.tls_server_name = cluster.tls_server_name.clone();
    }
    if let Some(user) = ctx.user.as_ref().and_then(|u| {
        kc.auth_infos
            .iter()
            .find(|a| &a.name == u)
            .and_then(|a| a.auth_info.as_ref())
    }) {
        parts.token = match (&user.token, &user.token_file) {
            (Some(t), _) => Some(t.expose_secret().to_string()),
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .wrap_err_with(|| format!("cannot read the kubeconfig's token file {file}"))?
                    .trim()
                    .to_string(),
            ),
            _ => None,
        };
        parts.client_cert_pem = data_or_file(
            user.client_certificate_data.as_deref(),
            user.client_certificate.as_deref(),
            "client-certificate",
        )?;
        let key_data = user.client_key_data.as_ref().map(|k| k.expose_secret());
        parts.client_key_pem = data_or_file(key_data, user.client_key.as_deref(), "client-key")?;
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_urls() {
        assert_eq!(
            url_host("https://10.0.0.1:6443/x").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            url_host("https://[fd00::1]:6443").as_deref(),
            Some("fd00::1")
        );
        assert_eq!(
            url_host("https://api.example").as_deref(),
            Some("api.example")
        );
        assert_eq!(url_host("nope"), None);
    }

    #[test]
    fn by_ip_the_endpoint_name_is_verified_and_explicit_wins() {
        let tls = ProbeTls {
            connector: None,
            server_name: None,
            endpoint_host: Some("k8s-api.example".into()),
            bearer: Some(Arc::from("s3cret")),
        };
        assert_eq!(tls.server_name_for("10.0.0.1"), "k8s-api.example");
        assert_eq!(tls.server_name_for("cp-a.example"), "cp-a.example");
        assert!(!format!("{tls:?}").contains("s3cret"));
        let explicit = ProbeTls {
            server_name: Some("kubernetes".into()),
            ..tls
        };
        assert_eq!(explicit.server_name_for("10.0.0.1"), "kubernetes");
    }

    #[test]
    fn https_without_a_ca_is_refused() {
        let err = ProbeTls::load(&ApiServerAuth::default(), true).unwrap_err();
        assert!(err.to_string().contains("--apiserver-ca"), "{err}");
        assert!(ProbeTls::load(&ApiServerAuth::default(), false).is_ok());
    }
}
