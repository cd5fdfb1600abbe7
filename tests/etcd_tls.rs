//! TLS against a real etcd with client-certificate auth, laid out like kubeadm's
//! /etc/kubernetes/pki/etcd/: verification is on, and a wrong CA is refused.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::require_binary;
use kha::lab::etcd_real::free_port;
use serde_json::Value;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA named `ca` and a certificate `name` signed by it, for 127.0.0.1.
fn issue(dir: &Path, ca: &str, name: &str, usage: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"),
    )
    .expect("write ext");
    let (key, csr, crt, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ]
        .into_iter()
        .chain([
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ])
        .collect::<Vec<_>>(),
    );
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

fn new_ca(dir: &Path, name: &str) {
    let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ]
        .into_iter()
        .chain([
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ])
        .collect::<Vec<_>>(),
    );
}

fn kha_status(args: &[&str]) -> (i32, Option<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["status", "--json"])
        .args(args)
        .env("KHA_CONFIG_DIR", "/nonexistent-kha-test")
        .env_remove("KHA_ETCD_ENDPOINTS")
        .output()
        .expect("run kha");
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).ok(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_client_certificates_is_verified() {
    let etcd = require_binary("etcd", "etcd-server");
    require_binary("openssl", "openssl");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    new_ca(dir, "ca");
    issue(dir, "ca", "server", "serverAuth");
    issue(dir, "ca", "healthcheck-client", "clientAuth");
    new_ca(dir, "other-ca");

    let (client_port, peer_port) = (free_port().expect("port"), free_port().expect("port"));
    let client_url = format!("https://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let _server = tokio::process::Command::new(etcd)
        .args(["--name", "tls", "--data-dir"])
        .arg(dir.join("data"))
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args(["--initial-cluster", &format!("tls={peer_url}")])
        .arg("--cert-file")
        .arg(dir.join("server.crt"))
        .arg("--key-file")
        .arg(dir.join("server.key"))
        .arg("--trusted-ca-file")
        .arg(dir.join("ca.crt"))
        .arg("--client-cert-auth")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("etcd.log")).expect("log"),
        ))
        .kill_on_drop(true)
        .spawn()
        .expect("start etcd with TLS");

    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (ca, cert, key, other) = (
        path("ca.crt"),
        path("healthcheck-client.crt"),
        path("healthcheck-client.key"),
        path("other-ca.crt"),
    );
    let good = [
        "--etcd-endpoints",
        &client_url,
        "--etcd-cacert",
        &ca,
        "--etcd-cert",
        &cert,
        "--etcd-key",
        &key,
    ];

    let started = Instant::now();
    let (code, report, stderr) = loop {
        let r = kha_status(&good);
        // A member that just started may answer status before the member list: then
        // it has no name yet. Wait for both.
        let named = r.1.as_ref().is_some_and(|j| j["etcd"]["leader"] == "tls");
        if (r.0 == 0 && named) || started.elapsed() > Duration::from_secs(15) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = report.unwrap_or_else(|| panic!("no JSON; stderr: {stderr}"));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["etcd"]["quorum"]["healthy"], 1);
    assert_eq!(report["etcd"]["leader"], "tls");

    // No CA for an https endpoint: a clear error before any connection.
    let (code, _, stderr) = kha_status(&["--etcd-endpoints", &client_url]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--etcd-cacert"), "{stderr}");

    // A CA that did not sign the server certificate: refused, not silently trusted.
    let wrong = [
        "--etcd-endpoints",
        &client_url,
        "--etcd-cacert",
        &other,
        "--etcd-cert",
        &cert,
        "--etcd-key",
        &key,
    ];
    let (code, report, stderr) = kha_status(&wrong);
    let report = report.unwrap_or_else(|| panic!("no JSON; stderr: {stderr}"));
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["etcd"]["members"][0]["healthy"], false, "{report:#}");

    // The right CA but no client certificate: the server refuses us.
    let (code, report, _) = kha_status(&["--etcd-endpoints", &client_url, "--etcd-cacert", &ca]);
    assert_eq!(code, 2, "{report:?}");

    // Secrets never leak: the key's contents appear nowhere in what kha printed.
    let key_pem = std::fs::read_to_string(dir.join("healthcheck-client.key")).expect("key");
    let secret_line = key_pem.lines().nth(1).expect("key body");
    let out = Command::new(env!("CARGO_BIN_EXE_kha"))
        .args(["status"])
        .args(wrong)
        .env("KHA_CONFIG_DIR", "/nonexistent-kha-test")
        .output()
        .expect("run kha");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !printed.contains(secret_line),
        "the client key leaked into the output"
    );
}
