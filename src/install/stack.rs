//! The stack file (`stack.toml`): the components of the HA toolchain, each a Helm chart
//! (repo, chart, version, namespace, values) and/or manifests applied after it, with
//! its dependencies and readiness checks. Parsing keeps TOML spans so every mistake
//! (bad TOML, an unknown field or component, a missing `${setting}`) names its line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::ready::ReadyCheck;

/// The default stack shipped in the binary: the reference architecture corrected to
/// current upstream.
pub const DEFAULT_STACK: &str = include_str!("default-stack.toml");

/// A stack-file mistake, with the line and column it is on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

impl std::error::Error for StackError {}

/// The stack file's text and name, for turning byte offsets into lines.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
    /// Where relative `values_files` and `manifest_files` are looked up.
    pub dir: Option<PathBuf>,
}

impl Source {
    pub fn embedded() -> Source {
        Source {
            name: "stack.toml (built in)".into(),
            text: DEFAULT_STACK.into(),
            dir: None,
        }
    }

    pub fn read(path: &Path) -> Result<Source, StackError> {
        let text = std::fs::read_to_string(path).map_err(|e| StackError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read the stack file: {e}"),
        })?;
        Ok(Source {
            name: path.display().to_string(),
            text,
            dir: path.parent().map(Path::to_path_buf),
        })
    }

    /// An error at byte `offset`.
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> StackError {
        let before = self.text.get(..offset).unwrap_or(&self.text);
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        StackError {
            file: self.name.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    #[serde(default)]
    settings: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    preflight: Preflight,
    components: BTreeMap<String, Spanned<RawComponent>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    description: Option<String>,
    repo: Option<String>,
    chart: Option<String>,
    version: Option<String>,
    namespace: String,
    release: Option<String>,
    #[serde(default = "default_timeout")]
    timeout: String,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    values: Option<Spanned<toml::Table>>,
    #[serde(default)]
    values_files: Vec<Spanned<String>>,
    #[serde(default)]
    manifests: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    manifest_files: Vec<Spanned<String>>,
    #[serde(default)]
    ready: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    needs: Vec<Spanned<String>>,
}

fn default_timeout() -> String {
    "5m".into()
}

/// What the cluster must have before anything is installed.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Preflight {
    /// The oldest Helm that runs the plan (`--set-json` needs 3.10).
    pub helm_min_version: String,
    pub min_nodes: usize,
    pub min_zones: usize,
    /// Nodes with allocatable `nvidia.com/gpu` the GPU pool needs (0: no GPU pool).
    pub min_gpu_nodes: usize,
}

impl Default for Preflight {
    fn default() -> Self {
        Preflight {
            helm_min_version: "3.10.0".into(),
            min_nodes: 3,
            min_zones: 3,
            min_gpu_nodes: 0,
        }
    }
}

/// What a component needs of the cluster beyond the common preflight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Need {
    /// Nodes with raw devices for Ceph OSDs (the CephCluster's `storage.nodes`).
    StorageDevices,
    /// GPU nodes (see `preflight.min_gpu_nodes`).
    GpuNodes,
}

/// A Helm chart to install or upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// A repository URL (`--repo`), or `None` for an `oci://` chart reference.
    pub repo: Option<String>,
    pub chart: String,
    pub version: String,
    pub release: String,
    /// Helm's `--timeout` (e.g. `10m`).
    pub timeout: String,
    /// Top-level values, each passed as `--set-json KEY=JSON` (no temp files, exact types).
    pub values: BTreeMap<String, Value>,
    /// Values files, passed as `--values` in order, before the inline values.
    pub values_files: Vec<PathBuf>,
}

/// One object applied (server-side, field manager `kha`) after the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub object: Value,
}

impl Manifest {
    /// `velero.io/v1 BackupStorageLocation velero/dr`.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {} {ns}/{}", self.api_version, self.kind, self.name),
            None => format!("{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// One component of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub chart: Option<Chart>,
    pub manifests: Vec<Manifest>,
    pub depends_on: Vec<String>,
    pub ready: Vec<ReadyCheck>,
    pub needs: Vec<Need>,
    /// How long its chart and readiness may take (`timeout`, default 5m).
    pub timeout: std::time::Duration,
    /// Where its table starts in the stack file (for messages, and file order).
    pub offset: usize,
    /// Byte offsets of its `depends_on` entries, parallel to `depends_on`.
    pub depends_on_offsets: Vec<usize>,
    /// A digest of everything that decides what it installs (chart, version, values,
    /// values files' contents, manifests): equal digests mean nothing to change.
    pub digest: String,
}

impl Component {
    pub fn version(&self) -> Option<&str> {
        self.chart.as_ref().map(|c| c.version.as_str())
    }
}

/// A parsed, resolved stack: components in file order.
#[derive(Debug, Clone)]
pub struct Stack {
    pub source: Source,
    pub preflight: Preflight,
    pub components: Vec<Component>,
}

impl Stack {
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// Parses `source`, with `overrides` (`--set name=value`) over its `[settings]`.
pub fn parse(source: Source, overrides: &BTreeMap<String, String>) -> Result<Stack, StackError> {
    let raw: RawStack = toml::from_str(&source.text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        source.error_at(offset, e.message().trim().to_string())
    })?;
    let mut settings: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in &raw.settings {
        settings.insert(k.clone(), to_json(v.get_ref()));
    }
    for (k, v) in overrides {
        let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.clone()));
        settings.insert(k.clone(), value);
    }
    let mut components = Vec::new();
    for (name, spanned) in &raw.components {
        let offset = spanned.span().start;
        components.push(component(
            &source,
            &settings,
            name,
            offset,
            spanned.get_ref(),
        )?);
    }
    components.sort_by_key(|c| c.offset);
    let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
    for c in &components {
        for (dep, at) in c.depends_on.iter().zip(&c.depends_on_offsets) {
            if !names.contains(&dep.as_str()) {
                return Err(source.error_at(
                    *at,
                    format!(
                        "component `{}` depends on `{dep}`, which is not in the stack (components: {})",
                        c.name,
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    let stack = Stack {
        preflight: raw.preflight,
        components,
        source,
    };
    super::graph::order(&stack)?;
    Ok(stack)
}

fn to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
    }
}

fn table_json(t: &toml::Table) -> Value {
    Value::Object(
        t.iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<serde_json::Map<_, _>>(),
    )
}

/// Replaces `${name}` placeholders from `settings`. A string that is exactly one
/// placeholder takes the setting's type (a number stays a number, a list a list).
/// Returns the first missing setting's name on failure.
fn substitute(v: &mut Value, settings: &BTreeMap<String, Value>) -> Result<(), String> {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
                && !name.contains("${")
                && !name.contains('}')
            {
                *v = setting(settings, name)?.clone();
                return Ok(());
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let Some(end) = after.find('}') else {
                    return Err(after.to_string());
                };
                let name = &after[..end];
                match setting(settings, name)? {
                    Value::String(text) => out.push_str(text),
                    other => out.push_str(&other.to_string()),
                }
                rest = &after[end + 1..];
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|i| substitute(i, settings)),
        Value::Object(map) => map.values_mut().try_for_each(|i| substitute(i, settings)),
        _ => Ok(()),
    }
}

fn setting<'a>(settings: &'a BTreeMap<String, Value>, name: &str) -> Result<&'a Value, String> {
    match settings.get(name) {
        Some(Value::String(s)) if s.is_empty() => Err(name.to_string()),
        Some(Value::Null) | None => Err(name.to_string()),
        Some(v) => Ok(v),
    }
}

/// `substitute`, with a missing setting reported at the placeholder's line (searched
/// from `from`, the start of what is being resolved).
fn resolve(
    source: &Source,
    settings: &BTreeMap<String, Value>,
    mut v: Value,
    from: usize,
    component: &str,
) -> Result<Value, StackError> {
    substitute(&mut v, settings).map_err(|name| {
        let needle = format!("${{{name}");
        let at = source
            .text
            .get(from..)
            .and_then(|rest| rest.find(&needle))
            .map_or(from, |i| from + i);
        source.error_at(
            at,
            format!(
                "missing value: `${{{name}}}` in component `{component}` has no value; set `{name}` \
                 in [settings] or pass --set {name}=VALUE"
            ),
        )
    })?;
    Ok(v)
}

fn component(
    source: &Source,
    settings: &BTreeMap<String, Value>,
    name: &str,
    offset: usize,
    raw: &RawComponent,
) -> Result<Component, StackError> {
    let chart = match (&raw.chart, &raw.version) {
        (None, None) if raw.repo.is_none() => None,
        (Some(chart), Some(version)) => {
            let mut values = BTreeMap::new();
            if let Some(table) = &raw.values {
                let resolved = resolve(
                    source,
                    settings,
                    table_json(table.get_ref()),
                    table.span().start,
                    name,
                )?;
                if let Value::Object(map) = resolved {
                    values.extend(map);
                }
            }
            if raw.repo.is_none() && !chart.starts_with("oci://") {
                return Err(source.error_at(
                    offset,
                    format!(
                        "component `{name}`: chart `{chart}` needs `repo = \"https://...\"` (or an oci:// chart reference)"
                    ),
                ));
            }
            Some(Chart {
                repo: raw.repo.clone(),
                chart: chart.clone(),
                version: version.clone(),
                release: raw.release.clone().unwrap_or_else(|| name.to_string()),
                timeout: raw.timeout.clone(),
                values,
                values_files: raw
                    .values_files
                    .iter()
                    .map(|f| relative(source, f.get_ref()))
                    .collect(),
            })
        }
        _ => {
            return Err(source.error_at(
                offset,
                format!("component `{name}`: a chart needs `repo`, `chart` and `version` together"),
            ));
        }
    };
    let mut manifests = Vec::new();
    for m in &raw.manifests {
        let object = resolve(
            source,
            settings,
            table_json(m.get_ref()),
            m.span().start,
            name,
        )?;
        manifests.push(
            manifest(object, &raw.namespace).map_err(|e| source.error_at(m.span().start, e))?,
        );
    }
    for f in &raw.manifest_files {
        let path = relative(source, f.get_ref());
        let text = std::fs::read_to_string(&path).map_err(|e| {
            source.error_at(
                f.span().start,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let object: Value = serde_json::from_str(&text).map_err(|e| {
            source.error_at(
                f.span().start,
                format!(
                    "{} is not JSON ({e}); manifest files are JSON (convert YAML with `yq -o json`)",
                    path.display()
                ),
            )
        })?;
        let object = resolve(source, settings, object, f.span().start, name)?;
        manifests
            .push(manifest(object, &raw.namespace).map_err(|e| {
                source.error_at(f.span().start, format!("{}: {e}", path.display()))
            })?);
    }
    if chart.is_none() && manifests.is_empty() {
        return Err(source.error_at(
            offset,
            format!("component `{name}` has neither a chart nor manifests"),
        ));
    }
    let mut ready = Vec::new();
    for r in &raw.ready {
        ready.push(
            ReadyCheck::from_table(r.get_ref(), &raw.namespace)
                .map_err(|e| source.error_at(r.span().start, format!("component `{name}`: {e}")))?,
        );
    }
    let mut needs = Vec::new();
    for n in &raw.needs {
        needs.push(match n.get_ref().as_str() {
            "storage-devices" => Need::StorageDevices,
            "gpu-nodes" => Need::GpuNodes,
            other => {
                return Err(source.error_at(
                    n.span().start,
                    format!(
                        "component `{name}`: unknown need `{other}` (known: storage-devices, gpu-nodes)"
                    ),
                ));
            }
        });
    }
    let timeout = parse_timeout(&raw.timeout).ok_or_else(|| {
        source.error_at(
            offset,
            format!(
                "component `{name}`: timeout {:?} is not a duration like 90s, 5m or 1h",
                raw.timeout
            ),
        )
    })?;
    if chart.is_some() && timeout > HELM_TIMEOUT_LIMIT {
        return Err(source.error_at(
            offset,
            format!(
                "component `{name}`: timeout {} is longer than kha lets a command run ({} s); \
                 use at most 9m (readiness is checked by kha afterwards anyway)",
                raw.timeout,
                HELM_TIMEOUT_LIMIT.as_secs()
            ),
        ));
    }
    let mut c = Component {
        name: name.to_string(),
        description: raw.description.clone().unwrap_or_default(),
        namespace: raw.namespace.clone(),
        chart,
        manifests,
        depends_on: raw.depends_on.iter().map(|d| d.get_ref().clone()).collect(),
        depends_on_offsets: raw.depends_on.iter().map(|d| d.span().start).collect(),
        ready,
        needs,
        timeout,
        offset,
        digest: String::new(),
    };
    c.digest = digest(&c);
    Ok(c)
}

/// The longest a chart's `--timeout` may be: the runbook executor stops any command
/// after 600 s, and helm needs time to report after its own timeout.
pub const HELM_TIMEOUT_LIMIT: std::time::Duration = std::time::Duration::from_secs(570);

/// A Go-style duration as Helm takes it (`90s`, `5m`, `1h`).
pub fn parse_timeout(text: &str) -> Option<std::time::Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

fn relative(source: &Source, file: &str) -> PathBuf {
    let path = PathBuf::from(file);
    match &source.dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

fn manifest(object: Value, default_namespace: &str) -> Result<Manifest, String> {
    let text = |field: &str| object[field].as_str().map(str::to_string);
    let api_version = text("apiVersion").ok_or("a manifest needs `apiVersion`")?;
    let kind = text("kind").ok_or("a manifest needs `kind`")?;
    let name = object["metadata"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or("a manifest needs `metadata.name`")?
        .to_string();
    let namespace = match object["metadata"]["namespace"].as_str() {
        Some(ns) => Some(ns.to_string()),
        None if cluster_scoped(&kind) => None,
        None => Some(default_namespace.to_string()),
    };
    let mut object = object;
    if let (Some(ns), Some(meta)) = (&namespace, object["metadata"].as_object_mut()) {
        meta.insert("namespace".into(), Value::String(ns.clone()));
    }
    Ok(Manifest {
        api_version,
        kind,
        namespace,
        name,
        object,
    })
}

/// Kinds that live outside namespaces (the ones a stack applies).
fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "CustomResourceDefinition"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "StorageClass"
            | "ConstraintTemplate"
            | "ClusterAnalysisTemplate"
            | "ClusterPolicy"
            | "PriorityClass"
    ) || kind.starts_with("K8s")
}

fn digest(c: &Component) -> String {
    let mut h = Sha256::new();
    if let Some(chart) = &c.chart {
        h.update(
            format!(
                "{:?}|{}|{}|{}|",
                chart.repo, chart.chart, chart.version, chart.release
            )
            .as_bytes(),
        );
        h.update(serde_json::to_string(&chart.values).unwrap_or_default());
        for f in &chart.values_files {
            h.update(f.display().to_string());
            h.update(std::fs::read(f).unwrap_or_default());
        }
    }
    for m in &c.manifests {
        h.update(serde_json::to_string(&m.object).unwrap_or_default());
    }
    let bytes = h.finalize();
    bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Stack, StackError> {
        parse(
            Source {
                name: "stack.toml".into(),
                text: text.into(),
                dir: None,
            },
            &BTreeMap::new(),
        )
    }

    #[test]
    fn the_default_stack_parses_with_the_api_server_set() {
        let mut overrides = BTreeMap::new();
        overrides.insert("api_server_host".to_string(), "10.0.0.100".to_string());
        let stack = parse(Source::embedded(), &overrides).unwrap();
        let cilium = stack.component("cilium").unwrap();
        let values = &cilium.chart.as_ref().unwrap().values;
        assert_eq!(values["kubeProxyReplacement"], Value::Bool(true));
        assert_eq!(values["k8sServiceHost"], "10.0.0.100");
        assert_eq!(values["k8sServicePort"], 6443);
        let rook = stack.component("rook-ceph").unwrap();
        assert_eq!(
            rook.chart.as_ref().unwrap().values["crds"]["enabled"],
            Value::Bool(true)
        );
        let chaos = stack.component("chaos-mesh").unwrap();
        assert_eq!(
            chaos.chart.as_ref().unwrap().values["chaosDaemon"]["runtime"],
            "containerd"
        );
    }

    #[test]
    fn the_default_stack_without_the_api_server_names_the_line() {
        let err = parse(Source::embedded(), &BTreeMap::new()).unwrap_err();
        let line = DEFAULT_STACK
            .lines()
            .position(|l| l.contains("k8sServiceHost"))
            .unwrap()
            + 1;
        assert_eq!(err.line, line, "{err}");
        assert!(err.message.contains("`${api_server_host}`"), "{err}");
    }

    #[test]
    fn a_placeholder_takes_the_type_of_its_setting() {
        let stack = parse_text(
            "[settings]\nport = 6443\nhost = \"lb\"\n[components.a]\nrepo = \"https://r\"\nchart = \"a\"\nversion = \"1\"\nnamespace = \"a\"\nvalues = { port = \"${port}\", url = \"https://${host}:${port}\" }\n",
        )
        .unwrap();
        let v = &stack.components[0].chart.as_ref().unwrap().values;
        assert_eq!(v["port"], 6443);
        assert_eq!(v["url"], "https://lb:6443");
    }
}
