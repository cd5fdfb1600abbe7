//! One HTTP/1.1 GET over plain TCP or verified TLS, for the apiserver probes and the
//! nginx status page: status, body (capped), latency, and the serving certificate's
//! `notAfter`.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper::header::{AUTHORIZATION, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::auth::{ProbeTls, url_host};
use super::cert;
use crate::model::lb::url_address;

/// A health body is a few KiB; anything past this is cut.
const MAX_BODY: usize = 256 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
    pub latency: Duration,
    pub cert_not_after: Option<SystemTime>,
}

/// GET `url` within `timeout`. https is verified against the CA of `tls`; the bearer
/// token (if any) is sent over https only.
pub async fn get(url: &str, tls: &ProbeTls, timeout: Duration) -> Result<HttpAnswer, String> {
    match tokio::time::timeout(timeout, get_unbounded(url, tls)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

async fn get_unbounded(url: &str, tls: &ProbeTls) -> Result<HttpAnswer, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url}: not a URL"))?;
    let address = url_address(url);
    let path = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => rest[i..].to_string(),
        Some(i) => format!("/{}", &rest[i..]),
        None => "/".to_string(),
    };
    let started = Instant::now();
    let tcp = TcpStream::connect(&address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match scheme {
        "http" => exchange(tcp, &address, &path, None, started, None).await,
        "https" => {
            let connector = tls
                .connector
                .as_ref()
                .ok_or("https needs the cluster CA: set --apiserver-ca or KUBECONFIG")?;
            let host = url_host(url).unwrap_or_default();
            let name = tls.server_name_for(&host);
            let server_name =
                ServerName::try_from(name.clone()).map_err(|_| format!("bad TLS name {name:?}"))?;
            let stream = connector
                .connect(server_name, tcp)
                .await
                .map_err(|e| format!("TLS (verifying {name}): {e}"))?;
            let not_after = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|c| cert::not_after(c.as_ref()));
            exchange(stream, &address, &path, tls.bearer(), started, not_after).await
        }
        other => Err(format!("{url}: unsupported scheme {other}")),
    }
}

async fn exchange<S>(
    stream: S,
    host: &str,
    path: &str,
    bearer: Option<&str>,
    started: Instant,
    cert_not_after: Option<SystemTime>,
) -> Result<HttpAnswer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = Request::get(path)
        .header(HOST, host)
        .header(USER_AGENT, concat!("kha/", env!("CARGO_PKG_VERSION")));
    if let Some(token) = bearer {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|_| format!("cannot build a request for {path}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("HTTP body: {e}"))?
            .to_bytes();
        Ok(HttpAnswer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            latency: started.elapsed(),
            cert_not_after,
        })
    }
    .await;
    driver.abort();
    result
}
