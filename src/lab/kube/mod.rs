//! The lab's Kubernetes API server: a generic object server on 127.0.0.1 that real
//! clients (kubectl, kube-rs) cannot tell from kube-apiserver for what they use.
//!
//! The [`Store`] holds every object as JSON with one global resourceVersion counter and a
//! bounded event history; [`KubeApiServer`] serves it on one port in plain HTTP and TLS
//! (the kubeconfig it writes uses `https://`, since kubectl sends bearer tokens only over
//! TLS) with bearer-token auth: discovery, get/list (label and field selectors,
//! `limit`/`continue`), watch (resourceVersion, bookmarks, 410 after compaction),
//! create/update/delete, merge, JSON and strategic-merge patches, the `status` and
//! `scale` subresources, pod evictions that honour PodDisruptionBudgets,
//! SelfSubjectAccessReviews, server-side Tables for kubectl, the protobuf bodies kubectl's
//! typed clients send, and 403s from [`DenyRule`]s. The lab's world (src/lab/world)
//! decides what the objects are; this module only serves them.

mod apply;
mod clock;
mod collection;
mod crds;
mod discovery;
mod events;
mod eviction;
mod jsonpath;
mod list;
mod metadata;
mod object;
mod openapi;
mod patch;
mod printers;
mod protobuf;
mod rbac;
mod recorder;
mod request;
mod resources;
mod scale;
mod selectors;
mod server;
mod status;
mod store;
mod strategic;
mod table;
mod tls;
mod verbs;
mod watch;

pub use crds::lab_crds;
pub use events::{EventType, WatchEvent};
pub use recorder::{RecordedAnswer, RecordedRequest, Recorder};
pub use server::KubeApiServer;
pub use store::{Store, StoreError};

/// A rule that forbids verbs on a resource (for RBAC tests); `namespace` `None` means in
/// every namespace and at the cluster scope. `"*"` in `verbs`, `group` or `resource`
/// matches anything; a subresource is named `"pods/eviction"`, `"rollouts/status"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenyRule {
    pub verbs: Vec<String>,
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
}

impl std::str::FromStr for DenyRule {
    type Err = String;

    /// `VERBS:RESOURCE[.GROUP][:NAMESPACE]`, e.g. `list,watch:rollouts.argoproj.io:shop`
    /// or `patch:nodes` (core group, every namespace).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(':');
        let (Some(verbs), Some(resource)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "{text:?}: expected VERBS:RESOURCE[.GROUP][:NAMESPACE]"
            ));
        };
        let namespace = parts.next().filter(|n| !n.is_empty()).map(str::to_string);
        if parts.next().is_some() {
            return Err(format!("{text:?}: too many ':'"));
        }
        let verbs: Vec<String> = verbs
            .split(',')
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        if verbs.is_empty() || resource.is_empty() {
            return Err(format!("{text:?}: give at least one verb and a resource"));
        }
        let (resource, group) = match resource.split_once('.') {
            Some((r, g)) => (r.to_string(), g.to_string()),
            None => (resource.to_string(), String::new()),
        };
        Ok(DenyRule {
            verbs,
            group,
            resource,
            namespace,
        })
    }
}

/// Who the server thinks the client is and what it may not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeApiConfig {
    /// The bearer token every request must carry.
    pub token: String,
    /// The user name in 403 messages and access reviews, e.g. `kha-lab-admin`.
    pub user: String,
    /// Requests matching any of these get 403 Forbidden.
    pub deny: Vec<DenyRule>,
}

impl Default for KubeApiConfig {
    fn default() -> Self {
        KubeApiConfig {
            token: "kha-lab-token".to_string(),
            user: "kha-lab-admin".to_string(),
            deny: Vec::new(),
        }
    }
}

/// The Kubernetes version the lab's API server reports (kubectl warns beyond ±1 minor).
/// The lab cluster runs one Kubernetes version everywhere (apiserver, backends, kubelets).
pub const SERVER_VERSION: &str = crate::lab::lb::KUBERNETES_VERSION;

#[cfg(test)]
mod deny_rule_tests {
    use super::DenyRule;

    #[test]
    fn deny_rules_parse_from_the_command_line_form() {
        let r: DenyRule = "list,watch:rollouts.argoproj.io:shop".parse().unwrap();
        assert_eq!(r.verbs, ["list", "watch"]);
        assert_eq!(
            (
                r.resource.as_str(),
                r.group.as_str(),
                r.namespace.as_deref()
            ),
            ("rollouts", "argoproj.io", Some("shop"))
        );
        let r: DenyRule = "patch:nodes".parse().unwrap();
        assert_eq!((r.group.as_str(), r.namespace), ("", None));
        assert!("nodes".parse::<DenyRule>().is_err());
        assert!(":nodes".parse::<DenyRule>().is_err());
        assert!("get:pods:a:b".parse::<DenyRule>().is_err());
    }
}
