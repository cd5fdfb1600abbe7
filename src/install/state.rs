//! What kha has installed, kept in the cluster (ConfigMap `kube-system/kha-install`) so
//! a run interrupted on one jump host is continued from another: one entry per
//! component finished (chart version and the digest of what was applied), written
//! only after its readiness checks passed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const CONFIGMAP_NAMESPACE: &str = "kube-system";
pub const CONFIGMAP_NAME: &str = "kha-install";

/// One finished component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// The chart version, or `-` for a component of manifests only.
    pub version: String,
    /// [`super::stack::Component::digest`] of what was applied.
    pub digest: String,
}

/// The ConfigMap's content: component name -> what was finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallState {
    pub components: BTreeMap<String, Installed>,
}

impl InstallState {
    /// From the ConfigMap object; entries that do not parse are ignored (they are
    /// re-installed, which is safe: every step is idempotent).
    pub fn from_configmap(cm: &Value) -> InstallState {
        let mut components = BTreeMap::new();
        if let Some(data) = cm["data"].as_object() {
            for (k, v) in data {
                if let Some(installed) = v
                    .as_str()
                    .and_then(|s| serde_json::from_str::<Installed>(s).ok())
                {
                    components.insert(k.clone(), installed);
                }
            }
        }
        InstallState { components }
    }

    /// The whole ConfigMap, as server-side applied by kha (so every entry it owns is in
    /// each apply).
    pub fn to_configmap(&self) -> Value {
        let data: serde_json::Map<String, Value> = self
            .components
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Value::String(serde_json::to_string(v).unwrap_or_default()),
                )
            })
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIGMAP_NAME,
                "namespace": CONFIGMAP_NAMESPACE,
                "labels": {"app.kubernetes.io/managed-by": "kha"},
            },
            "data": data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_the_configmap() {
        let mut s = InstallState::default();
        s.components.insert(
            "velero".into(),
            Installed {
                version: "12.1.0".into(),
                digest: "ab12".into(),
            },
        );
        let cm = s.to_configmap();
        assert_eq!(
            cm["data"]["velero"],
            r#"{"version":"12.1.0","digest":"ab12"}"#
        );
        assert_eq!(InstallState::from_configmap(&cm), s);
    }
}
