//! Serving certificates for the lab's API server: a fresh CA (what a kubeadm cluster's
//! `ca.crt` is) and a `kube-apiserver` certificate for 127.0.0.1/localhost signed by it,
//! generated at start. kubectl (client-go) only sends bearer tokens over TLS, so the
//! kubeconfig points at `https://` with the CA inlined.

use std::sync::Arc;

use color_eyre::eyre::{Result, WrapErr};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// The CA clients trust and the acceptor that serves the signed certificate.
pub struct ServingCerts {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

impl ServingCerts {
    pub fn generate() -> Result<ServingCerts> {
        let ca_key = KeyPair::generate().wrap_err("cannot generate the lab CA key")?;
        let mut ca_params = CertificateParams::new(Vec::new()).wrap_err("bad CA parameters")?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kha-lab-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .wrap_err("cannot sign the lab CA")?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().wrap_err("cannot generate the API server key")?;
        let names = [
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
        ];
        let mut params = CertificateParams::new(names.map(String::from).to_vec())
            .wrap_err("bad API server certificate parameters")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .wrap_err("cannot sign the API server certificate")?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .wrap_err("no TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(vec![server_cert.der().clone(), ca_cert.der().clone()], key)
            .wrap_err("cannot use the API server certificate")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServingCerts {
            ca_pem: ca_cert.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}
