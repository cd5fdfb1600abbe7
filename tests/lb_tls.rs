//! The direct apiserver probe over TLS: verified against the CA from the kubeconfig, the
//! kubeconfig server's DNS name used as SNI and verified name when the backend is an IP,
//! its bearer token sent over TLS only, the serving certificate's expiry read; a wrong
//! CA or a wrong name is an error, never a silent pass.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kha::model::finding::Health;
use kha::model::lb::LbSettings;
use kha::sources::lb::{ApiServerAuth, BackendTarget, LbProber, LbSourceConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const BODY: &str = "[+]ping ok\n[+]etcd ok\nreadyz check passed\n";

/// What the server saw of each request: SNI and the Authorization header.
type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

fn ca() -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

/// An apiserver stand-in whose certificate names only `kubernetes.lab` and expires in
/// ten days.
async fn tls_apiserver(seen: Seen) -> (u16, String) {
    let (ca_params, ca_key, ca_pem) = ca();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["kubernetes.lab".into()]).unwrap();
    let (y, m, d) = midnight_in(10);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(str::to_string);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).to_string();
                let auth = text
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: ").map(str::to_string));
                seen.lock().unwrap().push((sni, auth));
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca_pem)
}

/// Midnight UTC, `days` days from today (so 9.x days are left for 10).
fn midnight_in(days: i64) -> (i32, u8, u8) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    let (y, m, d) = kha::lab::civil::civil_from_days(today + days);
    (y as i32, m as u8, d as u8)
}

fn prober(port: u16, auth: ApiServerAuth) -> LbProber {
    let target = BackendTarget::parse(&format!("cp-a=https://127.0.0.1:{port}")).unwrap();
    let mut config = LbSourceConfig::new(vec![target], None);
    config.auth = auth;
    config.timeout = Duration::from_secs(3);
    LbProber::new(config).expect("prober")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_verify_tls_with_the_kubeconfig_and_read_the_expiry() {
    let seen: Seen = Arc::default();
    let (port, ca_pem) = tls_apiserver(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, &ca_pem).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: prod\n\
             clusters:\n- name: prod\n  cluster:\n    server: https://kubernetes.lab:6443\n    certificate-authority: {}\n\
             contexts:\n- name: prod\n  context:\n    cluster: prod\n    user: oncall\n\
             users:\n- name: oncall\n  user:\n    token: t0ken-s3cret\n",
            ca_path.display()
        ),
    )
    .unwrap();

    // By IP: the kubeconfig server's name is sent as SNI and verified.
    let mut p = prober(
        port,
        ApiServerAuth {
            kubeconfig: Some(kubeconfig.clone()),
            ..Default::default()
        },
    );
    let obs = p.probe().await;
    let b = &obs.backends[0];
    let ready = b.readyz.as_ref().unwrap();
    assert_eq!(ready.status, Some(200), "{b:#?}");
    assert!(ready.failing.is_empty());
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "readyz and livez: {seen:?}");
        for (sni, auth) in seen.iter() {
            assert_eq!(sni.as_deref(), Some("kubernetes.lab"));
            assert_eq!(auth.as_deref(), Some("Bearer t0ken-s3cret"));
        }
    }
    let findings = obs.findings(&LbSettings::default());
    assert!(
        findings.iter().any(|f| f.severity == Health::Warn
            && f.message == "serving certificate of cp-a expires in 9 days"),
        "{findings:#?}"
    );

    // A CA that did not sign the certificate: an error, and the token never sent.
    let (_, _, other_ca) = ca();
    let other = dir.path().join("other-ca.crt");
    std::fs::write(&other, other_ca).unwrap();
    seen.lock().unwrap().clear();
    let mut p = prober(
        port,
        ApiServerAuth {
            ca_file: Some(other),
            kubeconfig: Some(kubeconfig.clone()),
            ..Default::default()
        },
    );
    let obs = p.probe().await;
    let ready = obs.backends[0].readyz.as_ref().unwrap();
    assert_eq!(ready.status, None);
    let error = ready.error.clone().unwrap_or_default();
    assert!(error.contains("TLS (verifying kubernetes.lab)"), "{error}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the server"
    );
    assert!(
        obs.findings(&LbSettings::default())
            .iter()
            .any(|f| f.message.contains("no apiserver backend serving")),
    );

    // The right CA but a name the certificate does not carry: refused too.
    let mut p = prober(
        port,
        ApiServerAuth {
            ca_file: Some(ca_path),
            server_name: Some("wrong.lab".into()),
            ..Default::default()
        },
    );
    let error = p.probe().await.backends[0]
        .readyz
        .as_ref()
        .and_then(|r| r.error.clone())
        .unwrap_or_default();
    assert!(error.contains("TLS (verifying wrong.lab)"), "{error}");
}
