//! The scrape targets behind `/api/v1/targets` and `up`, named like kube-prometheus'
//! ServiceMonitors. A target whose host is in a lost zone times out.

use super::{At, SCRAPE_INTERVAL, Sample, pod_ip, series_labels};
use crate::lab::metrics::clock::SECOND;
use crate::lab::metrics::promql::Labels;

/// Prometheus' scrape timeout for every pool.
pub const SCRAPE_TIMEOUT: i64 = 10 * SECOND;

/// One active target as `/api/v1/targets` reports it.
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    pub scrape_pool: String,
    pub scrape_url: String,
    /// After relabelling: `instance`, `job` and the pool's target labels.
    pub labels: Labels,
    pub discovered_labels: Labels,
    pub up: bool,
    pub last_error: String,
    /// Unix ms of the last scrape attempt.
    pub last_scrape: i64,
    pub last_scrape_duration: f64,
}

struct Spec<'a> {
    pool: &'static str,
    job: &'static str,
    scheme: &'static str,
    address: String,
    path: &'a str,
    zone: &'a str,
    extra: Vec<(&'static str, String)>,
    /// `instance` when it is not the address (blackbox probes name their target).
    instance: Option<String>,
}

fn specs<'a>(at: &At<'a>) -> Vec<Spec<'a>> {
    let topology = at.topology();
    let mut specs = Vec::new();
    let node = |job, pool, name: &str, zone: &'a str, address: String, scheme| Spec {
        pool,
        job,
        scheme,
        address,
        path: "/metrics",
        zone,
        extra: vec![("node", name.to_string())],
        instance: None,
    };
    for cp in &topology.control_plane {
        specs.push(Spec {
            extra: vec![
                ("namespace", "default".into()),
                ("service", "kubernetes".into()),
            ],
            ..node(
                "apiserver",
                "serviceMonitor/monitoring/kube-apiserver/0",
                &cp.name,
                &cp.zone,
                format!("{}:6443", cp.ip),
                "https",
            )
        });
        specs.push(Spec {
            extra: vec![
                ("namespace", "kube-system".into()),
                ("pod", format!("etcd-{}", cp.name)),
                ("service", "kube-etcd".into()),
            ],
            ..node(
                "kube-etcd",
                "serviceMonitor/monitoring/kube-etcd/0",
                &cp.name,
                &cp.zone,
                format!("{}:2381", cp.ip),
                "http",
            )
        });
    }
    let nodes = topology
        .control_plane
        .iter()
        .map(|n| (&n.name, &n.zone, &n.ip))
        .chain(topology.workers.iter().map(|n| (&n.name, &n.zone, &n.ip)))
        .chain(topology.gpu_nodes.iter().map(|n| (&n.name, &n.zone, &n.ip)));
    for (name, zone, ip) in nodes {
        let mut spec = node(
            "kubelet",
            "serviceMonitor/monitoring/kubelet/0",
            name,
            zone,
            format!("{ip}:10250"),
            "https",
        );
        spec.extra.extend([
            ("namespace", "kube-system".to_string()),
            ("service", "kubelet".to_string()),
        ]);
        specs.push(spec);
    }
    for (i, gpu) in topology.gpu_nodes.iter().enumerate() {
        let zi = at.zone_index(&gpu.zone);
        specs.push(Spec {
            extra: Vec::new(),
            ..node(
                "nvidia-dcgm-exporter",
                "serviceMonitor/gpu-operator/nvidia-dcgm-exporter/0",
                &gpu.name,
                &gpu.zone,
                format!("{}:9400", pod_ip(zi, 90 + i as u32)),
                "http",
            )
        });
    }
    for source in &topology.zones {
        let prober = format!("{}:9115", pod_ip(at.zone_index(source), 80));
        for target in topology
            .control_plane
            .iter()
            .filter(|cp| &cp.zone != source)
        {
            specs.push(Spec {
                pool: "probe/monitoring/cross-az",
                job: "blackbox-cross-az",
                scheme: "http",
                address: prober.clone(),
                path: "/probe",
                zone: source,
                extra: vec![
                    ("source_zone", source.clone()),
                    ("target_zone", target.zone.clone()),
                ],
                instance: Some(target.ip.clone()),
            });
        }
    }
    let zones = &topology.zones;
    let singleton = |job, pool, zone_index: usize, host, port| Spec {
        pool,
        job,
        scheme: "http",
        address: format!("{}:{port}", pod_ip(zone_index, host)),
        path: "/metrics",
        zone: zones.get(zone_index).map_or("", String::as_str),
        extra: Vec::new(),
        instance: None,
    };
    for (replica, zone_index) in [0, zones.len().saturating_sub(1)].into_iter().enumerate() {
        let mut spec = singleton(
            "prometheus-k8s",
            "serviceMonitor/monitoring/prometheus-k8s/0",
            zone_index,
            30,
            9090,
        );
        spec.extra = vec![("pod", format!("prometheus-k8s-{replica}"))];
        specs.push(spec);
    }
    specs.push(singleton(
        "rook-ceph-mgr",
        "serviceMonitor/rook-ceph/rook-ceph-mgr/0",
        at.first_up_zone(&[0, 1, 2]),
        60,
        9283,
    ));
    specs.push(singleton(
        "velero",
        "serviceMonitor/velero/velero/0",
        at.first_up_zone(&[1, 0, 2]),
        70,
        8085,
    ));
    specs
}

/// Every active target at `at`.
pub fn targets(at: &At) -> Vec<ScrapeTarget> {
    specs(at)
        .into_iter()
        .map(|spec| {
            let query = match &spec.instance {
                Some(target) => format!("?module=icmp&target={target}"),
                None => String::new(),
            };
            let scrape_url = format!("{}://{}{}{query}", spec.scheme, spec.address, spec.path);
            let instance = spec
                .instance
                .clone()
                .unwrap_or_else(|| spec.address.clone());
            let mut labels: Labels = spec
                .extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            labels.insert("instance".into(), instance);
            labels.insert("job".into(), spec.job.into());
            let discovered_labels: Labels = [
                ("__address__", spec.address.as_str()),
                ("__metrics_path__", spec.path),
                ("__scheme__", spec.scheme),
                ("__scrape_interval__", "30s"),
                ("__scrape_timeout__", "10s"),
                ("job", spec.pool),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let key = format!("scrape/{scrape_url}");
            let offset = (at.stable(&key) * SCRAPE_INTERVAL as f64) as i64;
            let last_scrape =
                (at.t - offset).div_euclid(SCRAPE_INTERVAL) * SCRAPE_INTERVAL + offset;
            let up = !at.zone_down(spec.zone);
            ScrapeTarget {
                scrape_pool: spec.pool.into(),
                last_error: if up {
                    String::new()
                } else {
                    format!("Get \"{scrape_url}\": context deadline exceeded")
                },
                last_scrape_duration: if up {
                    at.between(&key, 0.004, 0.09)
                } else {
                    SCRAPE_TIMEOUT as f64 / 1000.0 + at.between(&key, 0.0, 0.002)
                },
                scrape_url,
                labels,
                discovered_labels,
                up,
                last_scrape,
            }
        })
        .collect()
}

/// `up` per target: 1 when the last scrape worked.
pub fn up(at: &At) -> Vec<Sample> {
    targets(at)
        .into_iter()
        .map(|target| {
            let pairs: Vec<(&str, &str)> = target
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            Sample {
                labels: series_labels("up", &pairs),
                value: f64::from(u8::from(target.up)),
            }
        })
        .collect()
}
