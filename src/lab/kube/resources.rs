//! The resource registry: which kinds the server knows (built-in ones plus those that
//! CustomResourceDefinition objects in the store define), and the discovery documents
//! (`/api`, `/apis`, `/apis/<group>/<version>`) generated from it.

use std::sync::Arc;

use serde_json::Value;

/// How `kubectl scale` finds the replica counts of a custom resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One CRD `additionalPrinterColumns` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    pub column_type: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// Everything the server needs to know about one resource (one group/plural).
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceInfo {
    pub group: String,
    /// Every served version; the first is the one objects are stored at.
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<String>,
    pub status_subresource: bool,
    pub scale: Option<ScalePaths>,
    /// Defined by a CRD (no strategic merge patch, printer columns from the CRD).
    pub custom: bool,
    /// CRD `additionalPrinterColumns` (custom resources only).
    pub printer_columns: Vec<PrinterColumn>,
    /// `false` for request-only resources such as selfsubjectaccessreviews.
    pub stored: bool,
    /// [`ResourceInfo::qualified`], computed once.
    qualified_name: String,
    /// [`ResourceInfo::api_version`], computed once.
    storage_api_version: String,
}

impl ResourceInfo {
    /// Fills the derived names once the other fields are set.
    fn finish(mut self) -> Self {
        self.qualified_name = if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        };
        let version = self.versions.first().map(String::as_str).unwrap_or("v1");
        self.storage_api_version = if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        };
        self
    }

    /// `pods`, `rollouts.argoproj.io`: the resource's name in messages and store keys.
    pub fn qualified(&self) -> &str {
        &self.qualified_name
    }

    /// The storage apiVersion, `v1` or `argoproj.io/v1alpha1`.
    pub fn api_version(&self) -> &str {
        &self.storage_api_version
    }

    /// Whether objects with this apiVersion and kind belong here.
    pub fn holds(&self, api_version: &str, kind: &str) -> bool {
        let (group, version) = split_api_version(api_version);
        self.kind == kind && self.group == group && self.serves(version)
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// Whether `metadata.generation` counts spec changes for this resource.
    pub fn tracks_generation(&self) -> bool {
        self.stored && !self.group.is_empty()
    }

    /// Whether objects carry pod-like disruption semantics (eviction subresource).
    pub fn is_pods(&self) -> bool {
        self.group.is_empty() && self.plural == "pods"
    }

    /// Whether `name` is a field this resource's list accepts in a fieldSelector.
    pub fn supports_field(&self, name: &str) -> bool {
        matches!(name, "metadata.name" | "metadata.namespace")
            || self.indexed_fields().contains(&name)
    }

    /// The fields, besides metadata.name and metadata.namespace, that the real server
    /// accepts in a field selector for this resource (and the store indexes).
    pub fn indexed_fields(&self) -> &'static [&'static str] {
        match (self.group.as_str(), self.plural.as_str()) {
            ("", "pods") => &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ],
            ("", "nodes") => &["spec.unschedulable"],
            ("", "namespaces") => &["status.phase"],
            ("", "events") => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ],
            _ => &[],
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    scale: bool,
}

const BUILTINS: &[Builtin] = &[
    builtin(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        &[],
        true,
    ),
    builtin("", "v1", "Node", "nodes", false, &["no"], &[], true),
    builtin("", "v1", "Pod", "pods", true, &["po"], &["all"], true),
    builtin(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        &["cm"],
        &[],
        false,
    ),
    builtin("", "v1", "Event", "events", true, &["ev"], &[], false),
    builtin(
        "",
        "v1",
        "Service",
        "services",
        true,
        &["svc"],
        &["all"],
        true,
    ),
    Builtin {
        scale: true,
        ..builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            &["all"],
            true,
        )
    },
    Builtin {
        scale: true,
        ..builtin(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            &["all"],
            true,
        )
    },
    builtin(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
        &["all"],
        true,
    ),
    builtin(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        &[],
        true,
    ),
    builtin(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        &[],
        false,
    ),
    builtin(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
        &[],
        &[],
        false,
    ),
    builtin(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
        &[],
        &[],
        false,
    ),
    builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        true,
    ),
];

#[allow(clippy::too_many_arguments)]
const fn builtin(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        namespaced,
        short_names,
        categories,
        status,
        scale: false,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Builtin {
    fn info(&self) -> ResourceInfo {
        let request_only = matches!(
            self.plural,
            "selfsubjectaccessreviews" | "selfsubjectreviews"
        );
        ResourceInfo {
            group: self.group.to_string(),
            versions: vec![self.version.to_string()],
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
            singular: self.kind.to_lowercase(),
            namespaced: self.namespaced,
            short_names: strings(self.short_names),
            categories: strings(self.categories),
            verbs: if request_only {
                strings(&["create"])
            } else {
                strings(ALL_VERBS)
            },
            status_subresource: self.status,
            scale: self.scale.then(|| ScalePaths {
                spec_replicas: ".spec.replicas".to_string(),
                status_replicas: ".status.replicas".to_string(),
                label_selector: None,
            }),
            custom: false,
            printer_columns: Vec::new(),
            stored: !request_only,
            qualified_name: String::new(),
            storage_api_version: String::new(),
        }
        .finish()
    }
}

/// The resources the server currently serves.
#[derive(Clone, Debug)]
pub struct Registry {
    resources: Vec<Arc<ResourceInfo>>,
}

impl Registry {
    /// The built-in resources (CRD-defined ones arrive with their CRD objects).
    pub fn builtin() -> Registry {
        Registry {
            resources: BUILTINS.iter().map(|b| Arc::new(b.info())).collect(),
        }
    }

    /// The resource behind `/apis/<group>/<version>/<plural>`.
    pub fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.plural == plural && r.serves(version))
            .cloned()
    }

    /// The resource of objects with this apiVersion and kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.resources
            .iter()
            .find(|r| r.holds(api_version, kind))
            .cloned()
    }

    /// Adds or replaces the resource a CustomResourceDefinition object defines.
    pub fn apply_crd(&mut self, crd: &Value) -> Result<Arc<ResourceInfo>, String> {
        let info = Arc::new(info_from_crd(crd)?);
        self.resources
            .retain(|r| !(r.custom && r.group == info.group && r.plural == info.plural));
        if self
            .resources
            .iter()
            .any(|r| r.group == info.group && r.plural == info.plural)
        {
            return Err(format!("{} is a built-in resource", info.qualified()));
        }
        self.resources.push(info.clone());
        Ok(info)
    }

    /// Forgets the resource a deleted CRD named `<plural>.<group>` defined.
    pub fn remove_crd(&mut self, crd_name: &str) -> Option<Arc<ResourceInfo>> {
        let pos = self
            .resources
            .iter()
            .position(|r| r.custom && r.qualified() == crd_name)?;
        Some(self.resources.remove(pos))
    }

    /// All resources, built-in first.
    pub fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.resources
    }
}

/// `("apps", "v1")` from `apps/v1`, `("", "v1")` from `v1`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a CustomResourceDefinition (apiextensions.k8s.io/v1) into a [`ResourceInfo`].
fn info_from_crd(crd: &Value) -> Result<ResourceInfo, String> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let text = |v: &Value, what: &str| -> Result<String, String> {
        v.as_str()
            .filter(|s| !s.is_empty())
            .map(String::from)
            .ok_or_else(|| format!("spec.{what}: Required value"))
    };
    let group = text(&spec["group"], "group")?;
    let plural = text(&names["plural"], "names.plural")?;
    let kind = text(&names["kind"], "names.kind")?;
    let singular = names["singular"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = match spec["scope"].as_str() {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        _ => return Err("spec.scope: Unsupported value".to_string()),
    };
    let mut versions: Vec<&Value> = spec["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|v| v["served"].as_bool().unwrap_or(true))
                .collect()
        })
        .unwrap_or_default();
    // The storage version first: objects are stored and served at it.
    versions.sort_by_key(|v| !v["storage"].as_bool().unwrap_or(false));
    let storage = *versions
        .first()
        .ok_or_else(|| "spec.versions: Required value".to_string())?;
    let version_names: Vec<String> = versions
        .iter()
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    let subresources = &storage["subresources"];
    let scale = subresources.get("scale").map(|s| ScalePaths {
        spec_replicas: s["specReplicasPath"]
            .as_str()
            .unwrap_or(".spec.replicas")
            .to_string(),
        status_replicas: s["statusReplicasPath"]
            .as_str()
            .unwrap_or(".status.replicas")
            .to_string(),
        label_selector: s["labelSelectorPath"].as_str().map(String::from),
    });
    let printer_columns = storage["additionalPrinterColumns"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .filter_map(|c| {
                    Some(PrinterColumn {
                        name: c["name"].as_str()?.to_string(),
                        column_type: c["type"].as_str().unwrap_or("string").to_string(),
                        format: c["format"].as_str().unwrap_or("").to_string(),
                        description: c["description"].as_str().unwrap_or("").to_string(),
                        priority: c["priority"].as_i64().unwrap_or(0),
                        json_path: c["jsonPath"].as_str()?.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ResourceInfo {
        group,
        versions: version_names,
        kind,
        plural,
        singular,
        namespaced,
        short_names: str_list(&names["shortNames"]),
        categories: str_list(&names["categories"]),
        verbs: strings(ALL_VERBS),
        status_subresource: subresources.get("status").is_some(),
        scale,
        custom: true,
        printer_columns,
        stored: true,
        qualified_name: String::new(),
        storage_api_version: String::new(),
    }
    .finish())
}
