//! Configuration: the config file with cluster profiles, themes and keymaps. Shipped
//! files are embedded; the user's files in the config dir override them partially. A
//! broken user file yields a [`ConfigProblem`] naming the file and line, and kha carries
//! on with the defaults.

pub mod keymap;
pub mod theme;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A user file kha could not use, and why. Shown in the TUI and on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{} line {line}: {}", self.path.display(), self.message)?,
            None => write!(f, "{}: {}", self.path.display(), self.message)?,
        }
        write!(f, " (using the built-in defaults)")
    }
}

impl ConfigProblem {
    pub fn at(path: &Path, text: &str, offset: Option<usize>, message: impl Into<String>) -> Self {
        ConfigProblem {
            path: path.to_path_buf(),
            line: offset.map(|o| line_of(text, o)),
            message: message.into(),
        }
    }

    /// From a toml parse/deserialize error; the message is toml's own first line.
    pub fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> Self {
        let message = err
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .trim()
            .to_string();
        Self::at(path, text, err.span().map(|s| s.start), message)
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// Where kha keeps its files. `KHA_CONFIG_DIR` / `KHA_STATE_DIR` override the XDG dirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Paths {
    pub fn discover() -> Self {
        let dirs = directories::ProjectDirs::from("", "", "kha");
        let config_dir = std::env::var_os("KHA_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                dirs.as_ref()
                    .map_or_else(|| PathBuf::from(".kha"), |d| d.config_dir().to_path_buf())
            });
        let state_dir = std::env::var_os("KHA_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                dirs.as_ref()
                    .map(|d| {
                        d.state_dir()
                            .unwrap_or_else(|| d.data_local_dir())
                            .to_path_buf()
                    })
                    .unwrap_or_else(|| PathBuf::from(".kha/state"))
            });
        Paths {
            config_dir,
            state_dir,
        }
    }

    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }
}

/// `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Profile used when `--cluster` is not given.
    pub default_cluster: Option<String>,
    pub theme: Option<String>,
    pub keymap: Option<String>,
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterProfile>,
}

/// One cluster: how to reach its parts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterProfile {
    pub etcd_endpoints: Option<Vec<String>>,
    pub etcd_cacert: Option<PathBuf>,
    pub etcd_cert: Option<PathBuf>,
    pub etcd_key: Option<PathBuf>,
    /// `--quota-backend-bytes` of the cluster's etcd (default 2 GiB).
    pub etcd_quota_bytes: Option<u64>,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub prometheus_url: Option<String>,
    /// CA of Prometheus / Thanos Query's serving certificate (default: the system's).
    pub prometheus_ca: Option<PathBuf>,
    /// A file holding the bearer token sent to Prometheus (never logged).
    pub prometheus_token_file: Option<PathBuf>,
    /// `[clusters.X.kpis.<id>]`: overrides of the default KPIs, or new ones.
    #[serde(default)]
    pub kpis: BTreeMap<String, crate::model::kpi::KpiOverride>,
    /// User for HTTP basic auth to Prometheus / Thanos Query; the password comes from
    /// `KHA_PROMETHEUS_PASSWORD` or `prometheus_password_file`, never from a flag.
    pub prometheus_user: Option<String>,
    /// A file holding the basic-auth password (never logged).
    pub prometheus_password_file: Option<PathBuf>,
    /// Window of the API availability KPI, e.g. `30d` (the default, as kubernetes-mixin).
    pub availability_window: Option<String>,
    /// The Thanos compactor's `--retention.resolution-raw|5m|1h` the metrics pane checks
    /// data against (defaults 14d, 180d, 365d; `0` means not checked).
    pub thanos_retention_raw: Option<String>,
    pub thanos_retention_5m: Option<String>,
    pub thanos_retention_1h: Option<String>,
    /// GPU temperatures (°C) that are a warning / critical (default 83 / 90, as the
    /// catalogue's `gpu_temp`).
    pub gpu_temp_warn: Option<f64>,
    pub gpu_temp_crit: Option<f64>,
    /// The LB's view: `unix:///path`, `tcp://host:port` (HAProxy runtime API) or
    /// `nginx+http://host/status` (nginx upstream check).
    pub lb_stats: Option<String>,
    /// kube-apiserver backends probed directly: `https://10.0.0.1:6443` or `name=URL`.
    pub apiserver_backends: Option<Vec<String>>,
    /// CA of the apiserver serving certificates (default: the kubeconfig's).
    pub apiserver_ca: Option<PathBuf>,
    /// The name apiserver certificates are verified against when probing by IP.
    pub apiserver_tls_server_name: Option<String>,
    /// Refuse every action for this cluster.
    #[serde(default)]
    pub read_only: bool,
    /// How runbooks reach control-plane hosts: the ssh program and options, e.g.
    /// `["ssh", "-F", "/etc/kha/ssh_config"]` or `["ssh", "-J", "bastion"]` (default
    /// `["ssh"]`, with the user's own ssh config).
    pub ssh_command: Option<Vec<String>>,
    pub theme: Option<String>,
    pub keymap: Option<String>,
}

impl ConfigFile {
    /// Parse `text` (the contents of `path`).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigProblem> {
        toml::from_str(text).map_err(|e| ConfigProblem::from_toml(path, text, &e))
    }

    /// Load the file; a missing file is an empty config, a broken one a problem plus
    /// the empty config.
    pub fn load(path: &Path) -> (Self, Option<ConfigProblem>) {
        match std::fs::read_to_string(path) {
            Ok(text) => match Self::parse(path, &text) {
                Ok(cfg) => (cfg, None),
                Err(p) => (ConfigFile::default(), Some(p)),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (ConfigFile::default(), None),
            Err(e) => (
                ConfigFile::default(),
                Some(ConfigProblem {
                    path: path.to_path_buf(),
                    line: None,
                    message: format!("cannot read: {e}"),
                }),
            ),
        }
    }

    /// The profile named by `--cluster`, or `default_cluster`, or the only profile there
    /// is. Unknown names are an error.
    pub fn profile(&self, name: Option<&str>) -> Result<(String, ClusterProfile), String> {
        let only = match self.clusters.keys().collect::<Vec<_>>()[..] {
            [one] => Some(one.as_str()),
            _ => None,
        };
        match name.or(self.default_cluster.as_deref()).or(only) {
            Some(n) => match self.clusters.get(n) {
                Some(p) => Ok((n.to_string(), p.clone())),
                None => {
                    let known: Vec<&str> = self.clusters.keys().map(String::as_str).collect();
                    Err(format!(
                        "no cluster profile {n:?} in the config (known: {})",
                        known.join(", ")
                    ))
                }
            },
            None => Ok(("default".to_string(), ClusterProfile::default())),
        }
    }
}

/// Flag > environment > profile, for one setting.
pub fn pick<T>(flag: Option<T>, env: Option<T>, profile: Option<T>) -> Option<T> {
    flag.or(env).or(profile)
}

/// "a, b,c" -> ["a", "b", "c"]
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_config_names_file_and_line() {
        let text =
            "default_cluster = \"prod\"\n[clusters.prod]\netcd_endpoints = [\"http://a:2379\"\n";
        let err = ConfigFile::parse(Path::new("/x/config.toml"), text).unwrap_err();
        assert_eq!(err.path, Path::new("/x/config.toml"));
        assert!(err.line.is_some_and(|l| l >= 3), "{err}");
        let text = "[clusters.prod]\netcd_endpoint = [\"http://a:2379\"]\n";
        let err = ConfigFile::parse(Path::new("c.toml"), text).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.contains("etcd_endpoint"), "{err}");
    }

    #[test]
    fn kpi_overrides_parse_and_bad_ones_name_the_line() {
        let text = "[clusters.prod]\nprometheus_url = \"http://p:9090\"\n\
                    [clusters.prod.kpis.apiserver_p99_latency]\ncrit = 0.8\n\
                    direction = \"lower_is_better\"\n";
        let cfg = ConfigFile::parse(Path::new("c.toml"), text).unwrap();
        let kpis = &cfg.clusters["prod"].kpis;
        assert_eq!(kpis["apiserver_p99_latency"].crit, Some(0.8));

        let text = "[clusters.prod]\n[clusters.prod.kpis.pod_startup_p99]\ncrit = \"5s\"\n";
        let err = ConfigFile::parse(Path::new("c.toml"), text).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        let text = "[clusters.prod]\n[clusters.prod.kpis.pod_startup_p99]\nthreshold = 5\n";
        let err = ConfigFile::parse(Path::new("c.toml"), text).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("threshold"), "{err}");
        let text = "[clusters.prod.kpis.canary_error_rate]\ndirection = \"up\"\n";
        let err = ConfigFile::parse(Path::new("c.toml"), text).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn profiles_resolve_and_precedence_is_flag_env_profile() {
        let text = "default_cluster = \"prod\"\n[clusters.prod]\netcd_endpoints = [\"http://a:2379\"]\n[clusters.stage]\n";
        let cfg = ConfigFile::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(cfg.profile(None).unwrap().0, "prod");
        assert_eq!(cfg.profile(Some("stage")).unwrap().0, "stage");
        assert!(
            cfg.profile(Some("nope"))
                .unwrap_err()
                .contains("prod, stage")
        );
        assert_eq!(pick(Some(1), Some(2), Some(3)), Some(1));
        assert_eq!(pick(None, Some(2), Some(3)), Some(2));
        assert_eq!(pick(None, None, Some(3)), Some(3));
        assert_eq!(
            split_list(" http://a:1, http://b:2 ,"),
            vec!["http://a:1", "http://b:2"]
        );
    }
}
