//! DCGM exporter series joined to the GPU nodes of the kube pane: per GPU its utilisation,
//! framebuffer used/free, temperature, power and the pod holding it; findings for hot GPUs
//! and for GPUs a pod has held for over an hour at under 5 % utilisation. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::catalogue::default_catalogue;
use super::super::finding::{Finding, Health};
use super::PANE;

/// One instant-vector sample: its labels and value.
pub type Sample = (BTreeMap<String, String>, f64);

/// One GPU as dcgm-exporter reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuDevice {
    /// The node: the `Hostname` label (else `node` / `kubernetes_node`).
    pub hostname: String,
    /// The GPU index on the node (`gpu` label).
    pub gpu: String,
    pub model: Option<String>,
    pub util_percent: Option<f64>,
    pub fb_used_mib: Option<f64>,
    pub fb_free_mib: Option<f64>,
    pub temp_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    /// `namespace/pod` holding the GPU (dcgm-exporter's pod mapping), if any.
    pub pod: Option<String>,
    /// Held by `pod` for over an hour with at most this utilisation (< 5 %).
    pub idle_for_an_hour: Option<f64>,
}

/// Temperature thresholds and the idle bar. Defaults from the catalogue's `gpu_temp`
/// (warn 83 °C, crit 90 °C, as the lab's `GPUTemperatureHigh`) and `gpu_idle_allocated`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuThresholds {
    pub temp_warn: f64,
    pub temp_crit: f64,
}

impl Default for GpuThresholds {
    fn default() -> Self {
        let temp = default_catalogue().into_iter().find(|q| q.id == "gpu_temp");
        GpuThresholds {
            temp_warn: temp.as_ref().and_then(|q| q.warn).unwrap_or(83.0),
            temp_crit: temp.as_ref().and_then(|q| q.crit).unwrap_or(90.0),
        }
    }
}

fn node_of(labels: &BTreeMap<String, String>) -> Option<String> {
    ["Hostname", "node", "kubernetes_node"]
        .iter()
        .find_map(|k| labels.get(*k).filter(|v| !v.is_empty()).cloned())
}

fn key_of(labels: &BTreeMap<String, String>) -> Option<(String, String)> {
    Some((
        node_of(labels)?,
        labels.get("gpu").cloned().unwrap_or_default(),
    ))
}

/// The DCGM series of one round, as the source read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DcgmSeries {
    pub util: Vec<Sample>,
    pub fb_used: Vec<Sample>,
    pub fb_free: Vec<Sample>,
    pub temp: Vec<Sample>,
    pub power: Vec<Sample>,
    /// The catalogue's `gpu_idle_allocated` answer.
    pub idle: Vec<Sample>,
}

/// Stores one DCGM field's value on a device.
type SetField = fn(&mut GpuDevice, f64);

/// One device per (node, gpu index), sorted; empty when there are no DCGM series.
pub fn devices(series: &DcgmSeries) -> Vec<GpuDevice> {
    let mut out: BTreeMap<(String, String), GpuDevice> = BTreeMap::new();
    let fields: [(&[Sample], SetField); 5] = [
        (&series.util, |d, v| d.util_percent = Some(v)),
        (&series.fb_used, |d, v| d.fb_used_mib = Some(v)),
        (&series.fb_free, |d, v| d.fb_free_mib = Some(v)),
        (&series.temp, |d, v| d.temp_celsius = Some(v)),
        (&series.power, |d, v| d.power_watts = Some(v)),
    ];
    for (samples, set) in fields {
        for (labels, value) in samples {
            let Some(key) = key_of(labels) else {
                continue;
            };
            let d = out.entry(key.clone()).or_insert_with(|| GpuDevice {
                hostname: key.0.clone(),
                gpu: key.1.clone(),
                model: labels.get("modelName").cloned(),
                util_percent: None,
                fb_used_mib: None,
                fb_free_mib: None,
                temp_celsius: None,
                power_watts: None,
                pod: None,
                idle_for_an_hour: None,
            });
            if value.is_finite() {
                set(d, *value);
            }
            if let (Some(ns), Some(pod)) = (labels.get("namespace"), labels.get("pod"))
                && !pod.is_empty()
            {
                d.pod = Some(format!("{ns}/{pod}"));
            }
        }
    }
    for (labels, value) in &series.idle {
        if let Some(d) = key_of(labels).and_then(|k| out.get_mut(&k)) {
            d.idle_for_an_hour = Some(*value);
        }
    }
    out.into_values().collect()
}

impl GpuDevice {
    pub fn temp_health(&self, t: &GpuThresholds) -> Health {
        match self.temp_celsius {
            Some(c) if c >= t.temp_crit => Health::Crit,
            Some(c) if c >= t.temp_warn => Health::Warn,
            _ => Health::Ok,
        }
    }

    pub fn health(&self, t: &GpuThresholds) -> Health {
        let idle = if self.idle_for_an_hour.is_some() {
            Health::Warn
        } else {
            Health::Ok
        };
        self.temp_health(t).max(idle)
    }

    /// Framebuffer used, in percent of used + free.
    pub fn fb_used_percent(&self) -> Option<f64> {
        let (u, f) = (self.fb_used_mib?, self.fb_free_mib?);
        (u + f > 0.0).then(|| u / (u + f) * 100.0)
    }
}

/// Hot GPUs (warn/crit by temperature) and idle-but-allocated ones (warn).
pub fn findings(devices: &[GpuDevice], t: &GpuThresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in devices {
        let health = d.temp_health(t);
        if let (true, Some(c)) = (health > Health::Ok, d.temp_celsius) {
            let limit = if health == Health::Crit {
                t.temp_crit
            } else {
                t.temp_warn
            };
            out.push(Finding {
                severity: health,
                pane: PANE,
                message: format!(
                    "GPU {} #{} is hot: {c:.0} °C (>= {limit:.0} °C)",
                    d.hostname, d.gpu
                ),
            });
        }
        if let Some(max) = d.idle_for_an_hour {
            out.push(Finding::warn(
                PANE,
                format!(
                    "GPU {} #{} held by {} for over an hour at {max:.0} % utilisation (< 5 %)",
                    d.hostname,
                    d.gpu,
                    d.pod.as_deref().unwrap_or("a pod")
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(host: &str, gpu: &str, pod: Option<&str>, v: f64) -> Sample {
        let mut l: BTreeMap<String, String> = [
            ("Hostname".to_string(), host.to_string()),
            ("gpu".to_string(), gpu.to_string()),
        ]
        .into();
        if let Some(p) = pod {
            l.insert("namespace".into(), "ml".into());
            l.insert("pod".into(), p.into());
        }
        (l, v)
    }

    #[test]
    fn series_join_per_gpu_and_judge_heat_and_idleness() {
        let series = DcgmSeries {
            util: vec![s("a", "0", Some("x"), 80.0), s("a", "1", Some("y"), 1.0)],
            temp: vec![s("a", "0", Some("x"), 95.0), s("a", "1", Some("y"), 84.0)],
            fb_used: vec![s("a", "0", Some("x"), 60.0)],
            fb_free: vec![s("a", "0", Some("x"), 20.0)],
            power: vec![],
            idle: vec![s("a", "1", Some("y"), 1.0), s("zz", "9", None, 0.0)],
        };
        let d = devices(&series);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].pod.as_deref(), Some("ml/x"));
        assert_eq!(d[0].fb_used_percent(), Some(75.0));
        let t = GpuThresholds::default();
        assert_eq!((t.temp_warn, t.temp_crit), (83.0, 90.0));
        assert_eq!(d[0].health(&t), Health::Crit);
        assert_eq!(d[1].health(&t), Health::Warn);
        let f = findings(&d, &t);
        let m: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            m,
            [
                "GPU a #0 is hot: 95 °C (>= 90 °C)",
                "GPU a #1 is hot: 84 °C (>= 83 °C)",
                "GPU a #1 held by ml/y for over an hour at 1 % utilisation (< 5 %)",
            ]
        );
        assert!(devices(&DcgmSeries::default()).is_empty());
    }
}
