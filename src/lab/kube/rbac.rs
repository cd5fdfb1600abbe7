//! Authorization for the lab: everything is allowed except what a [`DenyRule`] forbids;
//! forbidden requests get kube-apiserver's 403 message, and SelfSubjectAccessReviews
//! (`kubectl auth can-i`) answer from the same rules.

use serde_json::{Value, json};

use super::status::ApiError;
use super::{DenyRule, KubeApiConfig};

/// What a request asks to do, in RBAC terms.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl DenyRule {
    /// Whether this rule forbids the request.
    pub fn forbids(&self, attrs: &Attributes<'_>) -> bool {
        let any = |set: &str, value: &str| set == "*" || set == value;
        let resource = match attrs.subresource {
            Some(sub) => format!("{}/{sub}", attrs.resource),
            None => attrs.resource.to_string(),
        };
        let resource_matches = any(&self.resource, &resource)
            || self
                .resource
                .strip_suffix("/*")
                .is_some_and(|r| attrs.subresource.is_some() && r == attrs.resource);
        self.verbs.iter().any(|v| any(v, attrs.verb))
            && any(&self.group, attrs.group)
            && resource_matches
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| attrs.namespace == Some(ns))
    }
}

/// Whether any rule in the config forbids the request.
pub fn is_denied(config: &KubeApiConfig, attrs: &Attributes<'_>) -> bool {
    config.deny.iter().any(|r| r.forbids(attrs))
}

/// The 403 kube-apiserver sends for a forbidden request.
pub fn forbidden(config: &KubeApiConfig, attrs: &Attributes<'_>) -> ApiError {
    let qualified = if attrs.group.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}.{}", attrs.resource, attrs.group)
    };
    let resource = match attrs.subresource {
        Some(sub) => format!("{}/{sub}", attrs.resource),
        None => attrs.resource.to_string(),
    };
    let scope = match attrs.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let reason = format!(
        "User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        config.user, attrs.verb, attrs.group
    );
    let message = match attrs.name {
        Some(name) => format!("{qualified} \"{name}\" is forbidden: {reason}"),
        None => format!("{qualified} is forbidden: {reason}"),
    };
    let mut details = json!({"kind": attrs.resource});
    if let Some(name) = attrs.name {
        details["name"] = json!(name);
    }
    if !attrs.group.is_empty() {
        details["group"] = json!(attrs.group);
    }
    ApiError::new(403, "Forbidden", message).with_details(details)
}

/// Answers a SelfSubjectAccessReview (`kubectl auth can-i`).
pub fn access_review(config: &KubeApiConfig, review: &Value) -> Result<Value, ApiError> {
    let spec = &review["spec"];
    let allowed = if let Some(attrs) = spec.get("resourceAttributes").filter(|a| a.is_object()) {
        let text = |f: &str| attrs[f].as_str().filter(|s| !s.is_empty());
        let verb = text("verb")
            .ok_or_else(|| review_invalid("spec.resourceAttributes.verb: Required value"))?;
        let request = Attributes {
            verb,
            group: text("group").unwrap_or(""),
            resource: text("resource").unwrap_or(""),
            subresource: text("subresource"),
            namespace: text("namespace"),
            name: text("name"),
        };
        !is_denied(config, &request)
    } else if spec
        .get("nonResourceAttributes")
        .is_some_and(Value::is_object)
    {
        true
    } else {
        return Err(review_invalid(
            "spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    let mut reply = review.clone();
    if let Some(obj) = reply.as_object_mut() {
        obj.insert("apiVersion".into(), json!("authorization.k8s.io/v1"));
        obj.insert("kind".into(), json!("SelfSubjectAccessReview"));
        obj.insert("metadata".into(), json!({"creationTimestamp": null}));
        obj.insert("status".into(), json!({"allowed": allowed}));
    }
    Ok(reply)
}

/// Answers a SelfSubjectReview (`kubectl auth whoami`): who the token authenticates
/// as, with kubeadm's admin groups.
pub fn self_review(config: &KubeApiConfig) -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": {
            "username": config.user,
            "groups": ["kubeadm:cluster-admins", "system:authenticated"],
        }},
    })
}

fn review_invalid(message: &str) -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        format!("SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> KubeApiConfig {
        KubeApiConfig {
            token: "t".into(),
            user: "kha-lab-admin".into(),
            deny: vec![DenyRule {
                verbs: vec!["list".into(), "watch".into()],
                group: "argoproj.io".into(),
                resource: "rollouts".into(),
                namespace: Some("shop".into()),
            }],
        }
    }

    fn attrs<'a>(verb: &'a str, ns: Option<&'a str>) -> Attributes<'a> {
        Attributes {
            verb,
            group: "argoproj.io",
            resource: "rollouts",
            subresource: None,
            namespace: ns,
            name: None,
        }
    }

    #[test]
    fn rules_and_messages() {
        let c = config();
        assert!(is_denied(&c, &attrs("list", Some("shop"))));
        assert!(!is_denied(&c, &attrs("get", Some("shop"))));
        assert!(!is_denied(&c, &attrs("list", Some("other"))));
        assert!(!is_denied(&c, &attrs("list", None)));
        let e = forbidden(&c, &attrs("list", Some("shop")));
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "rollouts.argoproj.io is forbidden: User \"kha-lab-admin\" cannot list resource \"rollouts\" in API group \"argoproj.io\" in the namespace \"shop\""
        );
    }

    #[test]
    fn access_reviews() {
        let c = config();
        let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "shop", "verb": "list", "group": "argoproj.io", "resource": "rollouts"}}});
        assert_eq!(
            access_review(&c, &review).unwrap()["status"]["allowed"],
            json!(false)
        );
        let mut other = review.clone();
        other["spec"]["resourceAttributes"]["verb"] = json!("get");
        assert_eq!(
            access_review(&c, &other).unwrap()["status"]["allowed"],
            json!(true)
        );
        assert!(access_review(&c, &json!({"spec": {}})).is_err());
    }
}
