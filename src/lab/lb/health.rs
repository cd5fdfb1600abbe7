//! What a kube-apiserver v1.31 answers on its health endpoints, as pure functions:
//! `/readyz`, `/livez` and `/healthz` (plain, `?verbose`, `?exclude=<check>`, and the
//! per-check sub-paths) in the text format of `k8s.io/apiserver/pkg/server/healthz`,
//! and `/version`.

use serde::Serialize;

/// The Kubernetes release the lab's apiservers report (matches the lab's node images).
pub const KUBERNETES_VERSION: &str = "v1.31.4";

/// The readiness checks of a kubeadm-installed v1.31 kube-apiserver, in the order it
/// reports them (generic checks, then post-start hooks in registration order, then
/// the shutdown check).
const READYZ_CHECKS: &[&str] = &[
    "ping",
    "log",
    "etcd",
    "etcd-readiness",
    "informer-sync",
    "poststarthook/start-apiserver-admission-initializer",
    "poststarthook/generic-apiserver-start-informers",
    "poststarthook/priority-and-fairness-config-consumer",
    "poststarthook/priority-and-fairness-filter",
    "poststarthook/storage-object-count-tracker-hook",
    "poststarthook/start-apiextensions-informers",
    "poststarthook/start-apiextensions-controllers",
    "poststarthook/crd-informer-synced",
    "poststarthook/start-system-namespaces-controller",
    "poststarthook/start-cluster-authentication-info-controller",
    "poststarthook/start-kube-apiserver-identity-lease-controller",
    "poststarthook/start-kube-apiserver-identity-lease-garbage-collector",
    "poststarthook/start-legacy-token-tracking-controller",
    "poststarthook/start-service-ip-repair-controllers",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "poststarthook/priority-and-fairness-config-producer",
    "poststarthook/bootstrap-controller",
    "poststarthook/aggregator-reload-proxy-client-cert",
    "poststarthook/start-kube-aggregator-informers",
    "poststarthook/apiservice-registration-controller",
    "poststarthook/apiservice-status-available-controller",
    "poststarthook/apiservice-discovery-controller",
    "poststarthook/kube-apiserver-autoregistration",
    "autoregister-completion",
    "poststarthook/apiservice-openapi-controller",
    "poststarthook/apiservice-openapiv3-controller",
    "shutdown",
];

/// Checks that only `/readyz` runs; `/livez` and `/healthz` run the rest.
const READYZ_ONLY: &[&str] = &["etcd-readiness", "informer-sync", "shutdown"];

/// One of the apiserver's health endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthEndpoint {
    Readyz,
    Livez,
    Healthz,
}

impl HealthEndpoint {
    pub fn name(self) -> &'static str {
        match self {
            HealthEndpoint::Readyz => "readyz",
            HealthEndpoint::Livez => "livez",
            HealthEndpoint::Healthz => "healthz",
        }
    }

    pub fn from_name(name: &str) -> Option<HealthEndpoint> {
        match name {
            "readyz" => Some(HealthEndpoint::Readyz),
            "livez" => Some(HealthEndpoint::Livez),
            "healthz" => Some(HealthEndpoint::Healthz),
            _ => None,
        }
    }

    /// The checks this endpoint runs, in reporting order.
    pub fn checks(self) -> Vec<&'static str> {
        READYZ_CHECKS
            .iter()
            .copied()
            .filter(|c| self == HealthEndpoint::Readyz || !READYZ_ONLY.contains(c))
            .collect()
    }
}

/// A health answer: HTTP status and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthAnswer {
    pub status: u16,
    pub body: String,
}

/// The detail an apiserver logs (never serves on the root endpoint) for a failing check;
/// the per-check sub-path serves it as `internal server error: <detail>`.
fn failure_detail(check: &str) -> &'static str {
    match check {
        "etcd" | "etcd-readiness" => "error getting data from etcd: context deadline exceeded",
        "informer-sync" => "1 informers not started yet: [*v1.Pod]",
        "shutdown" => "process is shutting down",
        "ping" | "log" => "check failed",
        _ => "not finished",
    }
}

/// `/<endpoint>` with its query string, for a backend whose `failing` check (if any)
/// fails. Mirrors `healthz.handleRootHealth`: failures are always verbose and answered
/// with status 500; `?verbose` lists every check; `exclude=<name>` skips checks.
pub fn root_health(endpoint: HealthEndpoint, failing: Option<&str>, query: &str) -> HealthAnswer {
    let params = parse_query(query);
    let verbose = params.iter().any(|(k, _)| k == "verbose");
    let mut excluded: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "exclude")
        .map(|(_, v)| v.clone())
        .collect();
    let mut lines = String::new();
    let mut failed = false;
    for check in endpoint.checks() {
        if let Some(pos) = excluded.iter().position(|e| e == check) {
            excluded.remove(pos);
            lines.push_str(&format!("[+]{check} excluded: ok\n"));
        } else if failing == Some(check) {
            failed = true;
            lines.push_str(&format!("[-]{check} failed: reason withheld\n"));
        } else {
            lines.push_str(&format!("[+]{check} ok\n"));
        }
    }
    if !excluded.is_empty() {
        excluded.sort();
        excluded.dedup();
        let quoted: Vec<String> = excluded.iter().map(|e| format!("{e:?}")).collect();
        lines.push_str(&format!(
            "warn: some health checks cannot be excluded: no matches for {}\n",
            quoted.join(",")
        ));
    }
    let name = endpoint.name();
    if failed {
        // http.Error appends a newline to the message.
        return HealthAnswer {
            status: 500,
            body: format!("{lines}{name} check failed\n"),
        };
    }
    let body = if verbose {
        format!("{lines}{name} check passed\n")
    } else {
        "ok".to_string()
    };
    HealthAnswer { status: 200, body }
}

/// `/<endpoint>/<check>`: `ok`, or the check's error; `None` when no such check exists.
pub fn single_check(
    endpoint: HealthEndpoint,
    check: &str,
    failing: Option<&str>,
) -> Option<HealthAnswer> {
    if !endpoint.checks().contains(&check) {
        return None;
    }
    Some(if failing == Some(check) {
        HealthAnswer {
            status: 500,
            body: format!("internal server error: {}\n", failure_detail(check)),
        }
    } else {
        HealthAnswer {
            status: 200,
            body: "ok".to_string(),
        }
    })
}

/// `/version`, as `k8s.io/apimachinery/pkg/version.Info` (v1.31 fields only).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct VersionInfo {
    major: &'static str,
    minor: &'static str,
    git_version: &'static str,
    git_commit: &'static str,
    git_tree_state: &'static str,
    build_date: &'static str,
    go_version: &'static str,
    compiler: &'static str,
    platform: &'static str,
}

/// The `/version` body: indented JSON as the apiserver writes it (no trailing newline).
pub fn version_json() -> String {
    let info = VersionInfo {
        major: "1",
        minor: "31",
        git_version: KUBERNETES_VERSION,
        git_commit: "a78aa47129b8539636eb86a9d00e31b2720fe06b",
        git_tree_state: "clean",
        build_date: "2024-12-10T11:36:40Z",
        go_version: "go1.22.9",
        compiler: "gc",
        platform: "linux/amd64",
    };
    serde_json::to_string_pretty(&info).unwrap_or_default()
}

/// The `Status` an anonymous client gets for a path or verb it may not use, with the
/// fields in the order the apiserver writes them.
pub fn forbidden_json(verb: &str, path: &str) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        kind: &'static str,
        api_version: &'static str,
        metadata: serde_json::Map<String, serde_json::Value>,
        status: &'static str,
        message: String,
        reason: &'static str,
        details: serde_json::Map<String, serde_json::Value>,
        code: u16,
    }
    let status = Status {
        kind: "Status",
        api_version: "v1",
        metadata: serde_json::Map::new(),
        status: "Failure",
        message: format!("forbidden: User \"system:anonymous\" cannot {verb} path \"{path}\""),
        reason: "Forbidden",
        details: serde_json::Map::new(),
        code: 403,
    };
    format!(
        "{}\n",
        serde_json::to_string_pretty(&status).unwrap_or_default()
    )
}

/// `a=1&b&exclude=etcd` → pairs, percent-decoding `%XX` and `+`.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_readyz_is_a_bare_ok_and_verbose_lists_every_check() {
        let plain = root_health(HealthEndpoint::Readyz, None, "");
        assert_eq!(
            plain,
            HealthAnswer {
                status: 200,
                body: "ok".into()
            }
        );
        let verbose = root_health(HealthEndpoint::Readyz, None, "verbose");
        assert!(
            verbose
                .body
                .starts_with("[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\n")
        );
        assert!(
            verbose
                .body
                .ends_with("[+]shutdown ok\nreadyz check passed\n")
        );
        assert_eq!(verbose.body.lines().count(), READYZ_CHECKS.len() + 1);
    }

    #[test]
    fn a_failing_check_makes_readyz_500_and_verbose_even_without_asking() {
        let a = root_health(HealthEndpoint::Readyz, Some("etcd"), "");
        assert_eq!(a.status, 500);
        assert!(a.body.contains("[-]etcd failed: reason withheld\n"));
        assert!(a.body.ends_with("readyz check failed\n"));
        // excluding the failing check makes it pass again
        let b = root_health(HealthEndpoint::Readyz, Some("etcd"), "verbose&exclude=etcd");
        assert_eq!(b.status, 200);
        assert!(b.body.contains("[+]etcd excluded: ok\n"));
    }

    #[test]
    fn livez_skips_readiness_only_checks() {
        let a = root_health(HealthEndpoint::Livez, Some("informer-sync"), "verbose");
        assert_eq!(a.status, 200);
        assert!(!a.body.contains("]informer-sync"));
        assert!(!a.body.contains("]shutdown"));
        assert!(a.body.ends_with("livez check passed\n"));
    }

    #[test]
    fn unknown_exclusions_are_warned_about() {
        let a = root_health(
            HealthEndpoint::Healthz,
            None,
            "verbose&exclude=nope&exclude=a%2Fb",
        );
        assert!(a.body.contains(
            "warn: some health checks cannot be excluded: no matches for \"a/b\",\"nope\"\n"
        ));
    }

    #[test]
    fn single_checks_answer_ok_or_the_error() {
        assert_eq!(
            single_check(HealthEndpoint::Readyz, "etcd", None).map(|a| a.status),
            Some(200)
        );
        let failing = single_check(HealthEndpoint::Readyz, "etcd", Some("etcd"));
        assert_eq!(failing.as_ref().map(|a| a.status), Some(500));
        assert!(single_check(HealthEndpoint::Livez, "shutdown", None).is_none());
    }

    #[test]
    fn forbidden_is_a_status_in_the_apiservers_field_order() {
        let body = forbidden_json("post", "/readyz");
        assert!(body.starts_with(
            "{\n  \"kind\": \"Status\",\n  \"apiVersion\": \"v1\",\n  \"metadata\": {},"
        ));
        assert!(body.contains("cannot post path \\\"/readyz\\\""));
        assert!(body.ends_with("\"code\": 403\n}\n"));
    }

    #[test]
    fn version_is_indented_json_of_a_v1_31_server() {
        let v: serde_json::Value = serde_json::from_str(&version_json()).unwrap();
        assert_eq!(v["gitVersion"], KUBERNETES_VERSION);
        assert_eq!(v["minor"], "31");
        assert!(version_json().starts_with("{\n  \"major\": \"1\","));
    }
}
