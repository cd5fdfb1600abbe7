//! Reading a request: which API path it names, its query parameters, and which
//! representation (`Accept`) the client wants back.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;

use super::status::ApiError;

/// What a URL path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Root,
    Version,
    Health,
    /// `/api`
    LegacyVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1`, `/apis/<group>/<version>`
    Discovery {
        group: String,
        version: String,
    },
    Resource(ResourcePath),
    /// `/openapi/v3`
    OpenApiIndex,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`
    OpenApi {
        group: String,
        version: String,
    },
    NotFound,
}

/// `/api[s]/<gv>/[watch/][namespaces/<ns>/]<plural>[/<name>[/<sub>]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The deprecated `/watch/` path form.
    pub watch_prefix: bool,
}

/// Routes a request path.
pub fn route(path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        [] => Route::Root,
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["api"] => Route::LegacyVersions,
        ["api", "v1"] => Route::Discovery {
            group: String::new(),
            version: "v1".into(),
        },
        ["api", "v1", rest @ ..] => resource("", "v1", rest),
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::Discovery {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        ["openapi", "v3"] => Route::OpenApiIndex,
        ["openapi", "v3", "api", version] => Route::OpenApi {
            group: String::new(),
            version: version.to_string(),
        },
        ["openapi", "v3", "apis", group, version] => Route::OpenApi {
            group: group.to_string(),
            version: version.to_string(),
        },
        _ => Route::NotFound,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, rest) = match rest {
        ["watch", more @ ..] => (true, more),
        _ => (false, rest),
    };
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced_path {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, subresource) = match rest {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name.to_string()), None),
        [plural, name, sub] => (plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Route::NotFound,
    };
    Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: plural.to_string(),
        name,
        subresource,
        watch_prefix,
    })
}

/// `includeObject` for Tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// The query parameters the server understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub label_selector: String,
    pub field_selector: String,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub watch: bool,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout_seconds: Option<u64>,
    pub dry_run: bool,
    pub include_object: IncludeObject,
    /// `fieldManager` (server-side apply needs one).
    pub field_manager: Option<String>,
    pub force: bool,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let mut params: HashMap<String, String> = HashMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(decode_component(k), decode_component(v));
        }
        let flag = |name: &str| {
            params
                .get(name)
                .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
        };
        let number = |name: &str| -> Result<Option<u64>, ApiError> {
            match params.get(name).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| ApiError::bad_request(format!("invalid value for {name}: {v:?}"))),
            }
        };
        let text = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
        let include_object = match params.get("includeObject").map(String::as_str) {
            None | Some("") | Some("Metadata") => IncludeObject::Metadata,
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "includeObject: Unsupported value: {other:?}: supported values: \"None\", \"Metadata\", \"Object\""
                )));
            }
        };
        Ok(Query {
            label_selector: text("labelSelector").unwrap_or_default(),
            field_selector: text("fieldSelector").unwrap_or_default(),
            limit: number("limit")?.filter(|l| *l > 0).map(|l| l as usize),
            continue_token: text("continue"),
            resource_version: text("resourceVersion"),
            resource_version_match: text("resourceVersionMatch"),
            watch: flag("watch"),
            allow_bookmarks: flag("allowWatchBookmarks"),
            send_initial_events: flag("sendInitialEvents"),
            timeout_seconds: number("timeoutSeconds")?,
            dry_run: params.get("dryRun").is_some_and(|v| v == "All"),
            include_object,
            field_manager: text("fieldManager"),
            force: flag("force"),
        })
    }
}

fn decode_component(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The representation of objects in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    /// `meta.k8s.io/v1 Table` (what kubectl get asks for).
    Table,
    /// `PartialObjectMetadata[List]` (metadata-only clients).
    Metadata,
}

/// Picks the first acceptable media type in `Accept`.
pub fn negotiate(accept: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params: HashMap<String, String> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        let meta_group = params.get("g").map(String::as_str) == Some("meta.k8s.io")
            && matches!(params.get("v").map(String::as_str), Some("v1" | "v1beta1"));
        match params.get("as").map(String::as_str) {
            None => return Ok(Output::Json),
            Some("Table") if meta_group => return Ok(Output::Table),
            Some("PartialObjectMetadata" | "PartialObjectMetadataList") if meta_group => {
                return Ok(Output::Metadata);
            }
            _ => continue,
        }
    }
    Err(ApiError::new(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json",
    ))
}

/// The media type of a request body, lower-cased and without parameters.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(
            route("/apis/apps/v1"),
            Route::Discovery {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        let Route::Resource(p) = route("/api/v1/namespaces/shop/pods/web-0/eviction") else {
            panic!("not a resource route");
        };
        assert_eq!(p.namespace.as_deref(), Some("shop"));
        assert_eq!(p.name.as_deref(), Some("web-0"));
        assert_eq!(p.subresource.as_deref(), Some("eviction"));
        let Route::Resource(ns) = route("/api/v1/namespaces/shop/status") else {
            panic!("not a resource route");
        };
        assert_eq!(
            (ns.plural.as_str(), ns.name.as_deref()),
            ("namespaces", Some("shop"))
        );
        assert_eq!(ns.subresource.as_deref(), Some("status"));
        assert_eq!(route("/api/v1/a/b/c/d"), Route::NotFound);
    }

    #[test]
    fn accept_negotiation() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(kubectl)), Ok(Output::Table));
        let discovery =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(discovery)), Ok(Output::Json));
        assert_eq!(negotiate(None), Ok(Output::Json));
        assert!(negotiate(Some("application/vnd.kubernetes.protobuf")).is_err());
    }

    #[test]
    fn query_parameters() {
        let q = Query::parse(Some(
            "labelSelector=tier%3Dcontrol-plane&watch=1&limit=2&dryRun=All",
        ))
        .unwrap();
        assert_eq!(q.label_selector, "tier=control-plane");
        assert!(q.watch && q.dry_run);
        assert_eq!(q.limit, Some(2));
        assert!(Query::parse(Some("limit=abc")).is_err());
    }
}
