//! The metrics settings that come from the profile and the environment: basic-auth
//! credentials (user from flag, env or profile; password from `KHA_PROMETHEUS_PASSWORD`
//! or a file, never a flag), the availability KPI's window and the Thanos retention the
//! metrics pane checks against.

use std::collections::BTreeMap;

use secrecy::SecretString;

use super::prometheus::{BasicAuth, PrometheusSourceConfig};
use crate::config::ClusterProfile;
use crate::model::kpi::{KpiDef, KpiOverride, with_availability_window};
use crate::model::thanos::{RetentionSettings, parse_duration};

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Sets `config.basic` when a user is given (flag/env `user`, else the profile's). A user
/// without a password, or an unreadable password file, is a problem, and no auth is sent.
pub fn apply_basic_auth(
    config: &mut PrometheusSourceConfig,
    user: Option<String>,
    profile: &ClusterProfile,
) -> Option<String> {
    let user = user.or_else(|| profile.prometheus_user.clone())?;
    let password = match (
        env_var("KHA_PROMETHEUS_PASSWORD"),
        &profile.prometheus_password_file,
    ) {
        (Some(p), _) => SecretString::from(p),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(p) => SecretString::from(p.trim_end_matches(['\n', '\r']).to_string()),
            Err(e) => {
                return Some(format!(
                    "cannot read the Prometheus password file {}: {e}",
                    path.display()
                ));
            }
        },
        (None, None) => {
            return Some(format!(
                "Prometheus user {user:?} given but no password: set KHA_PROMETHEUS_PASSWORD \
                 or the profile's prometheus_password_file"
            ));
        }
    };
    config.basic = Some(BasicAuth { user, password });
    None
}

/// The profile's `availability_window` applied to the KPIs (default 30d: unchanged).
pub fn apply_availability_window(
    kpis: &mut [KpiDef],
    profile: &ClusterProfile,
    overrides: &BTreeMap<String, KpiOverride>,
) -> Option<String> {
    let text = profile.availability_window.as_deref()?;
    match parse_duration(text) {
        Ok(window) => {
            with_availability_window(kpis, window, overrides);
            None
        }
        Err(e) => Some(format!("availability_window: {e}")),
    }
}

/// The retention the metrics pane checks, from the profile (defaults for what is unset
/// or unreadable, with the problem said).
pub fn retention_settings(profile: &ClusterProfile) -> (RetentionSettings, Option<String>) {
    let mut settings = RetentionSettings::default();
    let mut problem = None;
    for (key, value, slot) in [
        (
            "thanos_retention_raw",
            &profile.thanos_retention_raw,
            &mut settings.raw,
        ),
        (
            "thanos_retention_5m",
            &profile.thanos_retention_5m,
            &mut settings.five_minutes,
        ),
        (
            "thanos_retention_1h",
            &profile.thanos_retention_1h,
            &mut settings.one_hour,
        ),
    ] {
        if let Some(text) = value {
            match parse_duration(text) {
                Ok(d) => *slot = d,
                Err(e) => problem = Some(format!("{key}: {e}")),
            }
        }
    }
    (settings, problem)
}

/// The GPU temperature thresholds from the profile (catalogue defaults otherwise).
pub fn gpu_thresholds(
    profile: &ClusterProfile,
) -> (crate::model::gpu::metrics::GpuThresholds, Option<String>) {
    let mut t = crate::model::gpu::metrics::GpuThresholds::default();
    if let Some(w) = profile.gpu_temp_warn {
        t.temp_warn = w;
    }
    if let Some(c) = profile.gpu_temp_crit {
        t.temp_crit = c;
    }
    let problem = (t.temp_warn > t.temp_crit).then(|| {
        format!(
            "gpu_temp_warn ({}) is above gpu_temp_crit ({})",
            t.temp_warn, t.temp_crit
        )
    });
    (t, problem)
}
