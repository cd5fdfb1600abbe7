//! Node objects: kubeadm control-plane nodes, workers and the GPU pool, with the labels,
//! taints, conditions and capacity the kubelet, kubeadm and NVIDIA GPU Feature Discovery
//! write; nodes of a lost zone go Unknown the way the node lifecycle controller marks them.

use serde_json::{Value, json};

use super::clock::DAY;
use super::{Ctx, ids, versions};

/// What a node is for; decides labels, taints, size and images.
#[derive(Debug, Clone, Copy)]
pub(super) enum Role<'a> {
    ControlPlane,
    Worker,
    Gpu { gpus: u32, product: &'a str },
}

/// One node of the topology, whatever its role.
#[derive(Debug, Clone, Copy)]
pub(super) struct NodeRef<'a> {
    pub name: &'a str,
    pub zone: &'a str,
    pub ip: &'a str,
    pub role: Role<'a>,
    /// Position in the cluster's node list; picks the pod CIDR.
    pub index: usize,
}

impl NodeRef<'_> {
    /// `10.<128+i/256>.<i%256>.0/24`: one /24 per node out of the 10.128.0.0/10 pod network
    /// (clear of the node subnets 10.0-10.3 and the service range 10.96.0.0/12).
    pub fn pod_cidr_base(&self) -> (usize, usize) {
        (128 + self.index / 256 % 64, self.index % 256)
    }

    pub fn pod_ip(&self, host: usize) -> String {
        let (a, b) = self.pod_cidr_base();
        format!("10.{a}.{b}.{}", 2 + host % 250)
    }

    pub fn instance_type(&self) -> &'static str {
        match self.role {
            Role::ControlPlane => "m6i.2xlarge",
            Role::Worker => "m6i.4xlarge",
            Role::Gpu { .. } => "p4d.24xlarge",
        }
    }
}

/// Every node of the topology that exists under the current faults (a lost zone's GPU
/// node is gone: the cloud deleted the instance and its Node object with it).
pub(super) fn all<'a>(ctx: &Ctx<'a>) -> Vec<NodeRef<'a>> {
    let t = ctx.topo;
    let mut out = Vec::with_capacity(t.control_plane.len() + t.gpu_nodes.len() + t.workers.len());
    for c in &t.control_plane {
        out.push(NodeRef {
            name: &c.name,
            zone: &c.zone,
            ip: &c.ip,
            role: Role::ControlPlane,
            index: out.len(),
        });
    }
    for (i, g) in t.gpu_nodes.iter().enumerate() {
        let node = NodeRef {
            name: &g.name,
            zone: &g.zone,
            ip: &g.ip,
            role: Role::Gpu {
                gpus: g.gpus,
                product: &g.product,
            },
            index: t.control_plane.len() + i,
        };
        if !ctx.faults.zone_is_down(&g.zone) {
            out.push(node);
        }
    }
    let base = t.control_plane.len() + t.gpu_nodes.len();
    out.extend((0..t.workers.len()).map(|i| worker(ctx, i, base)));
    out
}

/// Worker `i` as a node reference (`base` = nodes listed before the workers).
pub(super) fn worker<'a>(ctx: &Ctx<'a>, i: usize, base: usize) -> NodeRef<'a> {
    let w = &ctx.topo.workers[i];
    NodeRef {
        name: &w.name,
        zone: &w.zone,
        ip: &w.ip,
        role: Role::Worker,
        index: base + i,
    }
}

/// The Node object.
pub(super) fn node(ctx: &Ctx, n: &NodeRef) -> Value {
    let seed = ids::hash_parts(ctx.seed, &["Node", n.name]);
    let created = match n.role {
        Role::ControlPlane => 412 * DAY + n.index as i64 * 7 * 60,
        Role::Gpu { .. } => 96 * DAY + n.index as i64 * 11 * 60,
        Role::Worker => 30 * DAY + (seed % (360 * DAY as u64)) as i64,
    };
    let (cidr_a, cidr_b) = n.pod_cidr_base();
    let pod_cidr = format!("10.{cidr_a}.{cidr_b}.0/24");
    let down = ctx.faults.zone_is_down(n.zone);

    let mut labels = json!({
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": n.instance_type(),
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": n.instance_type(),
        "topology.kubernetes.io/region": ctx.topo.region,
        "topology.kubernetes.io/zone": n.zone,
    });
    let mut annotations = json!({
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
        "network.cilium.io/ipv4-cilium-host": format!("10.{cidr_a}.{cidr_b}.1"),
        "network.cilium.io/ipv4-health-ip": format!("10.{cidr_a}.{cidr_b}.254"),
        "network.cilium.io/ipv4-pod-cidr": pod_cidr,
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    });
    let mut taints = Vec::new();
    match n.role {
        Role::ControlPlane => {
            labels["node-role.kubernetes.io/control-plane"] = json!("");
            labels["node.kubernetes.io/exclude-from-external-load-balancers"] = json!("");
            taints.push(
                json!({"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}),
            );
        }
        Role::Worker => {
            annotations["csi.volume.kubernetes.io/nodeid"] = json!(format!(
                "{{\"rook-ceph.cephfs.csi.ceph.com\":\"{0}\",\"rook-ceph.rbd.csi.ceph.com\":\"{0}\"}}",
                n.name
            ));
        }
        Role::Gpu { gpus, product } => {
            for (k, v) in gpu_labels(gpus, product) {
                labels[k] = json!(v);
            }
            annotations["nfd.node.kubernetes.io/feature-labels"] = json!(
                "cpu-cpuid.AVX512F,cpu-hardware_multithreading,kernel-version.full,pci-10de.present"
            );
            annotations["nvidia.com/gpu-driver-upgrade-enabled"] = json!("true");
            taints
                .push(json!({"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"}));
        }
    }
    if down {
        let noticed = ctx
            .clock
            .ago(super::ZONE_LOST_AGO - super::NODE_MONITOR_GRACE);
        taints.push(json!({"effect": "NoSchedule", "key": "node.kubernetes.io/unreachable"}));
        taints.push(json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "timeAdded": noticed}));
    }

    let mut spec = json!({
        "podCIDR": pod_cidr,
        "podCIDRs": [pod_cidr],
        "providerID": format!("aws:///{}/i-0{}", n.zone, ids::hex(seed, 16)),
    });
    if !taints.is_empty() {
        spec["taints"] = Value::Array(taints);
    }

    obj! {
        "apiVersion" => "v1",
        "kind" => "Node",
        "metadata" => obj! {
            "annotations" => annotations,
            "creationTimestamp" => ctx.clock.ago(created),
            "labels" => labels,
            "name" => n.name,
            "uid" => ids::uid(seed),
        },
        "spec" => spec,
        "status" => status(ctx, n, seed, created, down),
    }
}

/// The labels GPU Feature Discovery and the GPU Operator put on a GPU node, plus the
/// node-group label of the GPU pool.
fn gpu_labels(gpus: u32, product: &str) -> Vec<(&'static str, String)> {
    vec![
        ("node-group", "gpu-a100".to_string()),
        ("nvidia.com/cuda.driver.major", "550".into()),
        ("nvidia.com/cuda.driver.minor", "127".into()),
        ("nvidia.com/cuda.driver.rev", "08".into()),
        ("nvidia.com/cuda.runtime.major", "12".into()),
        ("nvidia.com/cuda.runtime.minor", "4".into()),
        ("nvidia.com/gfd.timestamp", "1727172914".into()),
        ("nvidia.com/gpu.compute.major", "8".into()),
        ("nvidia.com/gpu.compute.minor", "0".into()),
        ("nvidia.com/gpu.count", gpus.to_string()),
        ("nvidia.com/gpu.deploy.device-plugin", "true".into()),
        ("nvidia.com/gpu.deploy.dcgm-exporter", "true".into()),
        ("nvidia.com/gpu.family", "ampere".into()),
        ("nvidia.com/gpu.machine", "p4d.24xlarge".into()),
        ("nvidia.com/gpu.memory", "81920".into()),
        ("nvidia.com/gpu.present", "true".into()),
        ("nvidia.com/gpu.product", product.to_string()),
        ("nvidia.com/gpu.replicas", "1".into()),
        ("nvidia.com/mig.capable", "true".into()),
        ("nvidia.com/mig.strategy", "single".into()),
    ]
}

fn status(ctx: &Ctx, n: &NodeRef, seed: u64, created: i64, down: bool) -> Value {
    let (cpu, memory, storage, storage_alloc) = match n.role {
        Role::ControlPlane => ("8", 32_386_524u64, "101430960Ki", "93478772582"),
        Role::Worker => ("16", 65_843_232, "203056560Ki", "187136925387"),
        Role::Gpu { .. } => ("96", 1_176_509_708, "507790308Ki", "467979128957"),
    };
    let mut capacity = json!({
        "cpu": cpu,
        "ephemeral-storage": storage,
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": format!("{memory}Ki"),
        "pods": "110",
    });
    let mut allocatable = capacity.clone();
    allocatable["ephemeral-storage"] = json!(storage_alloc);
    allocatable["memory"] = json!(format!("{}Ki", memory - 102_400));
    if let Role::Gpu { gpus, .. } = n.role {
        capacity["nvidia.com/gpu"] = json!(gpus.to_string());
        allocatable["nvidia.com/gpu"] = json!(gpus.to_string());
    }
    let booted = match n.role {
        Role::ControlPlane => versions::UPGRADED_AGO,
        _ => created.min(versions::UPGRADED_AGO),
    } - 40;
    obj! {
        "addresses" => vec![
            obj! {"address" => n.ip, "type" => "InternalIP"},
            obj! {"address" => n.name, "type" => "Hostname"},
        ],
        "allocatable" => allocatable,
        "capacity" => capacity,
        "conditions" => conditions(ctx, seed, booted, down),
        "daemonEndpoints" => json!({"kubeletEndpoint": {"Port": 10250}}),
        "features" => json!({"supplementalGroupsPolicy": true}),
        "images" => images(n),
        "nodeInfo" => obj! {
            "architecture" => "amd64",
            "bootID" => ids::uid(ids::mix(seed, 11)),
            "containerRuntimeVersion" => versions::CONTAINERD,
            "kernelVersion" => "6.8.0-1021-aws",
            "kubeProxyVersion" => "",
            "kubeletVersion" => versions::KUBERNETES,
            "machineID" => ids::hex(ids::mix(seed, 12), 32),
            "operatingSystem" => "linux",
            "osImage" => "Ubuntu 24.04.1 LTS",
            "systemUUID" => format!("ec2{}", &ids::uid(ids::mix(seed, 13))[3..]),
        },
        "runtimeHandlers" => json!([
            {"features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}, "name": "runc"},
            {"features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}, "name": ""},
        ]),
    }
}

/// Ready, MemoryPressure, DiskPressure, PIDPressure as the kubelet posts them, or, for a
/// node that stopped posting, as the node lifecycle controller rewrites them; plus
/// Cilium's NetworkUnavailable, which the controller leaves alone.
fn conditions(ctx: &Ctx, seed: u64, booted: i64, down: bool) -> Value {
    let jitter = (seed % 290) as i64;
    let kubelet = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    let mut out = Vec::with_capacity(5);
    out.push(json!({
        "lastHeartbeatTime": ctx.clock.ago(booted - 25),
        "lastTransitionTime": ctx.clock.ago(booted - 25),
        "message": "Cilium is running on this node",
        "reason": "CiliumIsUp",
        "status": "False",
        "type": "NetworkUnavailable",
    }));
    for (kind, status, reason, message) in kubelet {
        out.push(if down {
            json!({
                "lastHeartbeatTime": ctx.clock.ago(super::ZONE_LOST_AGO + jitter),
                "lastTransitionTime": ctx.clock.ago(super::ZONE_LOST_AGO - super::NODE_MONITOR_GRACE),
                "message": "Kubelet stopped posting node status.",
                "reason": "NodeStatusUnknown",
                "status": "Unknown",
                "type": kind,
            })
        } else {
            json!({
                "lastHeartbeatTime": ctx.clock.ago(jitter),
                "lastTransitionTime": ctx.clock.ago(booted - if kind == "Ready" { 12 } else { 0 }),
                "message": message,
                "reason": reason,
                "status": status,
                "type": kind,
            })
        });
    }
    Value::Array(out)
}

/// A node condition heartbeat, as the kubelet's periodic status report refreshes it.
pub(super) fn heartbeat(node: &mut Value, at: &str) {
    if let Some(conds) = node["status"]["conditions"].as_array_mut() {
        for c in conds {
            if c["type"] != "NetworkUnavailable" && c["status"] != "Unknown" {
                c["lastHeartbeatTime"] = json!(at);
            }
        }
    }
}

/// The images the kubelet reports as present (most recent pulls first), sized like the
/// real ones.
fn images(n: &NodeRef) -> Value {
    let own: &[(&str, u64)] = match n.role {
        Role::ControlPlane => &[
            ("registry.k8s.io/etcd:3.5.15-0", 56_909_194),
            ("registry.k8s.io/kube-apiserver:v1.31.4", 28_073_066),
            (
                "registry.k8s.io/kube-controller-manager:v1.31.4",
                26_253_620,
            ),
            ("registry.k8s.io/kube-scheduler:v1.31.4", 20_149_312),
        ],
        Role::Worker => &[
            ("ghcr.io/acme-shop/frontend:2.31.0", 48_211_904),
            ("ghcr.io/acme-shop/checkout:1.42.0", 61_542_113),
            ("ghcr.io/acme-shop/search-api:0.42.3", 233_004_512),
        ],
        Role::Gpu { .. } => &[
            ("nvcr.io/nvidia/tritonserver:24.08-py3", 8_754_201_088),
            ("nvcr.io/nvidia/k8s-device-plugin:v0.16.2", 131_702_322),
            (
                "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.7-3.5.0-ubuntu22.04",
                356_908_713,
            ),
        ],
    };
    let common: &[(&str, u64)] = &[
        (versions::CILIUM_IMAGE, 208_954_337),
        ("quay.io/cephcsi/cephcsi:v3.12.3", 475_390_120),
        (
            "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.12.0",
            10_818_122,
        ),
        ("quay.io/prometheus/node-exporter:v1.8.2", 11_656_208),
        ("registry.k8s.io/pause:3.10", 320_368),
    ];
    Value::Array(
        own.iter()
            .chain(common)
            .map(|&(image, size)| {
                json!({
                    "names": [versions::digest_ref(image), image],
                    "sizeBytes": size,
                })
            })
            .collect(),
    )
}
