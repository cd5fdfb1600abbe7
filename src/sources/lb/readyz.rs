//! The verbose text of a kube-apiserver's `/readyz?verbose` and `/livez?verbose`
//! (`k8s.io/apiserver/pkg/server/healthz`): one `[+]name ok` or `[-]name failed: ...`
//! line per check, then `readyz check passed` or `readyz check failed`.

/// At most this many failing checks are kept (a hostile body cannot grow the state).
const MAX_FAILING: usize = 32;
/// Check names longer than this are cut.
const MAX_NAME: usize = 96;

/// The names of the checks reported failing, in order, without repeats.
pub fn failing_checks(body: &str) -> Vec<String> {
    let mut failing: Vec<String> = Vec::new();
    for line in body.lines() {
        let Some(rest) = line.trim_start().strip_prefix("[-]") else {
            continue;
        };
        let name = rest.split_whitespace().next().unwrap_or("");
        if name.is_empty() {
            continue;
        }
        let name: String = name.chars().take(MAX_NAME).collect();
        if !failing.contains(&name) {
            failing.push(name);
        }
        if failing.len() == MAX_FAILING {
            break;
        }
    }
    failing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_checks_come_from_minus_lines() {
        let body = "[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n\
                    [+]etcd-readiness ok\n[-]poststarthook/crd-informer-synced failed: not finished\n\
                    [-]etcd failed: again\nreadyz check failed\n";
        assert_eq!(
            failing_checks(body),
            ["etcd", "poststarthook/crd-informer-synced"]
        );
        assert!(failing_checks("ok").is_empty());
        assert!(failing_checks("[-]\n[-]   \n").is_empty());
    }
}
