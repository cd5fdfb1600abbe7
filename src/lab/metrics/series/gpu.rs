//! dcgm-exporter series for the GPU pool, labelled as the exporter emits them (`gpu`,
//! `UUID`, `pci_bus_id`, `device`, `modelName`, `Hostname`, `DCGM_FI_DRIVER_VERSION`, and
//! `pod`/`namespace`/`container` for GPUs attributed to a pod).
//!
//! As in the kube view, each GPU node runs one `ml/llm-inference` pod holding three
//! quarters of its GPUs. The pod keeps all but the last of them busy (30-70 %); the last
//! has sat under 5 % for hours (the idle-GPU finding); the node's other GPUs are
//! unallocated. A lost zone's node has no series; `gpu_hot` runs the busy GPUs at 95 °C.

use super::{At, SCRAPE_INTERVAL, Sample, fnv1a, pod_ip, series_labels};
use crate::lab::metrics::clock::HOUR;
use crate::lab::topology::{GpuNode, Rng};

const DRIVER_VERSION: &str = "550.127.05";
/// Framebuffer the driver keeps for itself (MiB).
const FB_RESERVED: f64 = 567.0;
/// Bus IDs of the eight SXM GPUs in an HGX A100 board.
const PCI_BUS_IDS: [&str; 8] = [
    "00000000:07:00.0",
    "00000000:0F:00.0",
    "00000000:47:00.0",
    "00000000:4E:00.0",
    "00000000:87:00.0",
    "00000000:90:00.0",
    "00000000:B7:00.0",
    "00000000:BD:00.0",
];
const NAMESPACE: &str = "ml";
const CONTAINER: &str = "triton";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Inference,
    /// Held by the inference pod but unused.
    Idle,
    Unallocated,
}

/// One GPU and the pod it is attributed to, if any.
struct Gpu<'a> {
    node: &'a GpuNode,
    node_index: usize,
    index: u32,
    uuid: String,
    workload: Workload,
    pod: Option<String>,
}

/// GPUs the inference pod on a node of `gpus` holds (the kube view's request).
fn requested(gpus: u32) -> u32 {
    (gpus * 3 / 4).max(1)
}

fn workload(gpus: u32, index: u32) -> Workload {
    let held = requested(gpus);
    if index + 1 == held {
        Workload::Idle
    } else if index < held {
        Workload::Inference
    } else {
        Workload::Unallocated
    }
}

/// The inference pod on GPU node `node_index`, named as the Kubernetes view names it.
fn inference_pod(seed: u64, node_index: usize) -> String {
    crate::lab::world::gpu_inference_pod(seed, node_index)
}

fn uuid(seed: u64, node: &str, index: u32) -> String {
    let mut rng = Rng::new(seed ^ fnv1a(&format!("{node}/gpu{index}")));
    let hex = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn gpus<'a>(at: &At<'a>) -> Vec<Gpu<'a>> {
    let topology = at.topology();
    let mut out = Vec::new();
    for (node_index, node) in topology.gpu_nodes.iter().enumerate() {
        let pod = inference_pod(at.model.seed, node_index);
        for index in 0..node.gpus {
            let workload = workload(node.gpus, index);
            out.push(Gpu {
                node,
                node_index,
                index,
                uuid: uuid(at.model.seed, &node.name, index),
                workload,
                pod: (workload != Workload::Unallocated).then(|| pod.clone()),
            });
        }
    }
    out
}

fn busy(gpu: &Gpu) -> bool {
    gpu.workload == Workload::Inference
}

fn util(at: &At, gpu: &Gpu) -> f64 {
    let key = format!("util/{}", gpu.uuid);
    match gpu.workload {
        _ if busy(gpu) && at.faults.gpu_hot => at.between(&key, 98.0, 100.99).floor(),
        Workload::Inference => {
            let base = 35.0 + 30.0 * at.stable(&key);
            (base + 4.0 * at.daily_wave(&key) + at.between(&key, -3.0, 3.0))
                .clamp(30.0, 70.0)
                .round()
        }
        Workload::Idle => at.between(&key, 0.0, 4.0).floor(),
        Workload::Unallocated => 0.0,
    }
}

fn temperature(at: &At, gpu: &Gpu, util: f64) -> f64 {
    let key = format!("temp/{}", gpu.uuid);
    let value = match (busy(gpu), at.faults.gpu_hot) {
        (true, true) => at.between(&key, 95.0, 96.99).floor(),
        (true, false) => 50.0 + util * 0.25 + at.between(&key, -1.5, 1.5),
        (false, true) => at.between(&key, 70.0, 76.0),
        (false, false) => at.between(&key, 33.0, 40.0),
    };
    value.round()
}

fn power(at: &At, gpu: &Gpu, util: f64) -> f64 {
    let key = format!("power/{}", gpu.uuid);
    let watts = match (gpu.workload, at.faults.gpu_hot) {
        (_, true) if busy(gpu) => at.between(&key, 392.0, 400.0),
        (Workload::Inference, _) => 90.0 + util * 3.0 + at.between(&key, -8.0, 8.0),
        (Workload::Idle, _) => at.between(&key, 58.0, 66.0),
        (Workload::Unallocated, _) => at.between(&key, 54.0, 60.0),
    };
    (watts * 1000.0).round() / 1000.0
}

fn fb_used(at: &At, gpu: &Gpu) -> f64 {
    let key = format!("fb/{}", gpu.uuid);
    let wobble = (at.noise(&key) * 256.0).floor();
    match gpu.workload {
        Workload::Inference => (60_000.0 + 16_000.0 * at.stable(&key)).floor() + wobble,
        Workload::Idle => (1_100.0 + 800.0 * at.stable(&key)).floor(),
        Workload::Unallocated => 0.0,
    }
}

fn fb_total(node: &GpuNode) -> f64 {
    if node.product.contains("40GB") {
        40_960.0
    } else {
        81_920.0
    }
}

fn labels(at: &At, name: &str, gpu: &Gpu) -> crate::lab::metrics::promql::Labels {
    let zone_index = at.zone_index(&gpu.node.zone);
    let instance = format!("{}:9400", pod_ip(zone_index, 90 + gpu.node_index as u32));
    let model_name = gpu.node.product.replacen('-', " ", 1);
    let bus_id = PCI_BUS_IDS.get(gpu.index as usize).map_or_else(
        || format!("00000000:{:02X}:00.0", 0xC0 + gpu.index),
        |b| b.to_string(),
    );
    let (gpu_index, device) = (gpu.index.to_string(), format!("nvidia{}", gpu.index));
    let mut pairs: Vec<(&str, &str)> = vec![
        ("gpu", &gpu_index),
        ("UUID", &gpu.uuid),
        ("pci_bus_id", &bus_id),
        ("device", &device),
        ("modelName", &model_name),
        ("Hostname", &gpu.node.name),
        ("DCGM_FI_DRIVER_VERSION", DRIVER_VERSION),
        ("instance", &instance),
        ("job", "nvidia-dcgm-exporter"),
    ];
    if let Some(pod) = &gpu.pod {
        pairs.extend([
            ("namespace", NAMESPACE),
            ("pod", pod),
            ("container", CONTAINER),
        ]);
    }
    series_labels(name, &pairs)
}

/// One dcgm-exporter field for every GPU on a reachable node.
pub fn family(at: &At, name: &str) -> Option<Vec<Sample>> {
    let field: fn(&At, &Gpu) -> f64 = match name {
        "DCGM_FI_DEV_GPU_UTIL" => util,
        "DCGM_FI_DEV_GPU_TEMP" => |at, gpu| temperature(at, gpu, util(at, gpu)),
        "DCGM_FI_DEV_POWER_USAGE" => |at, gpu| power(at, gpu, util(at, gpu)),
        "DCGM_FI_DEV_FB_USED" => fb_used,
        "DCGM_FI_DEV_FB_FREE" => |at, gpu| fb_total(gpu.node) - FB_RESERVED - fb_used(at, gpu),
        _ => return None,
    };
    Some(
        gpus(at)
            .iter()
            .filter(|gpu| !at.zone_down(&gpu.node.zone))
            .map(|gpu| Sample {
                labels: labels(at, name, gpu),
                value: field(at, gpu),
            })
            .collect(),
    )
}

/// `max_over_time(DCGM_FI_DEV_GPU_UTIL{pod!=""}[1h]) < 5 and ... offset 1h`: allocated GPUs whose busiest
/// scrape in the last hour stayed under 5 %. Busy GPUs never drop below 30 % in this
/// model, so only the idle ones need the hour's scrapes evaluated.
pub fn idle_allocated(at: &At) -> Vec<Sample> {
    let last_scrape = at.t.div_euclid(SCRAPE_INTERVAL) * SCRAPE_INTERVAL;
    let scrapes: Vec<i64> = (0..)
        .map(|k| last_scrape - k * SCRAPE_INTERVAL)
        .take_while(|&s| s > at.t - HOUR)
        .collect();
    gpus(at)
        .iter()
        .filter(|gpu| gpu.workload == Workload::Idle)
        .filter_map(|gpu| {
            let max = scrapes
                .iter()
                .map(|&s| at.shifted(s))
                .filter(|then| !then.zone_down(&gpu.node.zone))
                .map(|then| util(&then, gpu))
                .reduce(f64::max)?;
            let mut labels = labels(at, "DCGM_FI_DEV_GPU_UTIL", gpu);
            labels.remove("__name__");
            (max < 5.0).then_some(Sample { labels, value: max })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inference_pod_holds_three_quarters_and_idles_one() {
        let kinds: Vec<Workload> = (0..8).map(|i| workload(8, i)).collect();
        assert!(kinds[..5].iter().all(|w| *w == Workload::Inference));
        assert_eq!(kinds[5], Workload::Idle);
        assert_eq!(&kinds[6..], &[Workload::Unallocated, Workload::Unallocated]);
        assert_eq!(workload(1, 0), Workload::Idle);
        assert_ne!(inference_pod(42, 0), inference_pod(42, 1));
    }
}
