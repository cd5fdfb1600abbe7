//! The kubeadm control plane: mirror pods of the static pods kube-apiserver, etcd,
//! kube-controller-manager and kube-scheduler on each control-plane node, with the flags,
//! probes, volumes and annotations kubeadm v1.31 writes into their manifests.

use serde_json::{Value, json};

use super::nodes::NodeRef;
use super::pod::{Container, Running};
use super::{Ctx, Sink, ids, pod, versions};

/// The static pods' components, in the order kubeadm creates them.
pub(super) const COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The four mirror pods of control-plane node `n`.
pub(super) fn static_pods(ctx: &Ctx, n: &NodeRef, out: &mut dyn Sink) {
    for (i, component) in COMPONENTS.iter().enumerate() {
        out.push(mirror_pod(ctx, n, component, i));
    }
}

fn image(component: &str) -> String {
    if component == "etcd" {
        versions::ETCD_IMAGE.to_string()
    } else {
        format!("registry.k8s.io/{component}:{}", versions::KUBERNETES)
    }
}

fn mirror_pod(ctx: &Ctx, n: &NodeRef, component: &str, i: usize) -> Value {
    let name = format!("{component}-{}", n.name);
    let seed = ids::hash_parts(ctx.seed, &["Pod", "kube-system", &name]);
    let config_hash = ids::hex(ids::mix(seed, 99), 32);
    let started_ago = versions::UPGRADED_AGO - 60 - 17 * i as i64;
    let image = image(component);
    let image_id = versions::digest_ref(&image);
    let containers = [Container {
        name: component,
        image: &image,
        image_id: &image_id,
    }];
    let mut annotations = json!({
        "kubernetes.io/config.hash": config_hash,
        "kubernetes.io/config.mirror": config_hash,
        "kubernetes.io/config.seen": format!(
            "{}.{:09}Z",
            ctx.clock.ago(started_ago + 5).trim_end_matches('Z'),
            seed % 1_000_000_000
        ),
        "kubernetes.io/config.source": "file",
    });
    match component {
        "kube-apiserver" => {
            annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] =
                json!(format!("{}:6443", n.ip));
        }
        "etcd" => {
            annotations["kubeadm.kubernetes.io/etcd.advertise-client-urls"] =
                json!(format!("https://{}:2379", n.ip));
        }
        _ => {}
    }
    let (command, port, host, cpu, volumes) = component_spec(ctx, n, component);
    let probe = |path: &str, period: u32, failures: u32, delay: bool| {
        let mut p = json!({
            "failureThreshold": failures,
            "httpGet": {
                "host": host,
                "path": path,
                "port": port,
                "scheme": if component == "etcd" { "HTTP" } else { "HTTPS" },
            },
            "periodSeconds": period,
            "successThreshold": 1,
            "timeoutSeconds": 15,
        });
        if delay {
            p["initialDelaySeconds"] = json!(10);
        }
        p
    };
    let mounts: Vec<Value> = volumes
        .iter()
        .map(|(vname, path, _)| {
            // As kubeadm writes them: etcd's and the FlexVolume mounts are read-write.
            let mut m = json!({"mountPath": path, "name": vname});
            if component != "etcd" && *vname != "flexvolume-dir" {
                m["readOnly"] = json!(true);
            }
            m
        })
        .collect();
    let host_volumes: Vec<Value> = volumes
        .iter()
        .map(|(vname, path, kind)| json!({"hostPath": {"path": path, "type": kind}, "name": vname}))
        .collect();
    let mut resources = json!({"requests": {"cpu": cpu}});
    if component == "etcd" {
        resources["requests"]["memory"] = json!("100Mi");
    }
    let restarts = match component {
        "kube-controller-manager" => 2 + (seed % 3) as u32,
        "kube-scheduler" => 1 + (seed % 2) as u32,
        _ => 0,
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": annotations,
            "creationTimestamp": ctx.clock.ago(started_ago - 3),
            "labels": {"component": component, "tier": "control-plane"},
            "name": name,
            "namespace": "kube-system",
            "ownerReferences": [{
                "apiVersion": "v1",
                "controller": true,
                "kind": "Node",
                "name": n.name,
                "uid": ids::uid(ctx.node_seed(n.name)),
            }],
            "uid": ids::uid(seed),
        },
        "spec": {
            "containers": [{
                "command": command,
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "livenessProbe": probe(if component == "etcd" || component == "kube-apiserver" { "/livez" } else { "/healthz" }, 10, 8, true),
                "name": component,
                "readinessProbe": probe("/readyz", if component == "kube-apiserver" { 1 } else { 10 }, 3, false),
                "resources": resources,
                "startupProbe": probe(if component == "kube-controller-manager" { "/healthz" } else { "/livez" }, 10, 24, true),
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": mounts,
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "hostNetwork": true,
            "nodeName": n.name,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 2_000_001_000,
            "priorityClassName": "system-node-critical",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 30,
            "tolerations": [{"effect": "NoExecute", "operator": "Exists"}],
            "volumes": host_volumes,
        },
        "status": pod::running_status(ctx, &Running {
            host_ip: n.ip,
            pod_ip: n.ip,
            started_ago,
            containers: &containers,
            restarts,
            node_down: ctx.faults.zone_is_down(n.zone),
            seed,
            qos: "Burstable",
        }),
    })
}

type HostVolume = (&'static str, &'static str, &'static str);

/// (command, probe port, probe host, cpu request, hostPath volumes) of a component.
fn component_spec(
    ctx: &Ctx,
    n: &NodeRef,
    component: &str,
) -> (Vec<String>, u16, String, &'static str, Vec<HostVolume>) {
    let ip = n.ip;
    let pki = [
        ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate"),
        (
            "etc-ca-certificates",
            "/etc/ca-certificates",
            "DirectoryOrCreate",
        ),
        ("k8s-certs", "/etc/kubernetes/pki", "DirectoryOrCreate"),
        (
            "usr-local-share-ca-certificates",
            "/usr/local/share/ca-certificates",
            "DirectoryOrCreate",
        ),
        (
            "usr-share-ca-certificates",
            "/usr/share/ca-certificates",
            "DirectoryOrCreate",
        ),
    ];
    let flags = |bin: &str, list: &[&str]| {
        std::iter::once(bin.to_string())
            .chain(dashed(list))
            .collect::<Vec<_>>()
    };
    match component {
        "etcd" => {
            let me = ctx
                .topo
                .control_plane
                .iter()
                .position(|c| c.name == n.name)
                .unwrap_or(0);
            let member = ctx
                .topo
                .control_plane
                .get(me)
                .map_or("etcd", |c| c.etcd_member.as_str());
            let cluster = ctx
                .topo
                .control_plane
                .iter()
                .take(me + 1)
                .map(|c| format!("{}=https://{}:2380", c.etcd_member, c.ip))
                .collect::<Vec<_>>()
                .join(",");
            let mut cmd = vec!["etcd".to_string()];
            cmd.extend([
                format!("--advertise-client-urls=https://{ip}:2379"),
                "--cert-file=/etc/kubernetes/pki/etcd/server.crt".into(),
                "--client-cert-auth=true".into(),
                "--data-dir=/var/lib/etcd".into(),
                "--experimental-initial-corrupt-check=true".into(),
                "--experimental-watch-progress-notify-interval=5s".into(),
                format!("--initial-advertise-peer-urls=https://{ip}:2380"),
                format!("--initial-cluster={cluster}"),
                format!(
                    "--initial-cluster-state={}",
                    if me == 0 { "new" } else { "existing" }
                ),
                "--key-file=/etc/kubernetes/pki/etcd/server.key".into(),
                format!("--listen-client-urls=https://127.0.0.1:2379,https://{ip}:2379"),
                "--listen-metrics-urls=http://127.0.0.1:2381".into(),
                format!("--listen-peer-urls=https://{ip}:2380"),
                format!("--name={member}"),
                "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt".into(),
                "--peer-client-cert-auth=true".into(),
                "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key".into(),
                "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt".into(),
                "--snapshot-count=10000".into(),
                "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt".into(),
            ]);
            let vols = vec![
                (
                    "etcd-certs",
                    "/etc/kubernetes/pki/etcd",
                    "DirectoryOrCreate",
                ),
                ("etcd-data", "/var/lib/etcd", "DirectoryOrCreate"),
            ];
            (cmd, 2381, "127.0.0.1".into(), "100m", vols)
        }
        "kube-apiserver" => {
            let mut cmd = vec![
                "kube-apiserver".to_string(),
                format!("--advertise-address={ip}"),
            ];
            cmd.extend(dashed(&[
                "allow-privileged=true",
                "authorization-mode=Node,RBAC",
                "client-ca-file=/etc/kubernetes/pki/ca.crt",
                "enable-admission-plugins=NodeRestriction",
                "enable-bootstrap-token-auth=true",
                "etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
                "etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
                "etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
                "etcd-servers=https://127.0.0.1:2379",
                "kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
                "kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
                "kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                "proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
                "proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
                "requestheader-allowed-names=front-proxy-client",
                "requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
                "requestheader-extra-headers-prefix=X-Remote-Extra-",
                "requestheader-group-headers=X-Remote-Group",
                "requestheader-username-headers=X-Remote-User",
                "secure-port=6443",
                "service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "service-account-key-file=/etc/kubernetes/pki/sa.pub",
                "service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
                "service-cluster-ip-range=10.96.0.0/12",
                "tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
                "tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
            ]));
            (cmd, 6443, ip.to_string(), "250m", pki.to_vec())
        }
        "kube-controller-manager" => {
            let cmd = flags(
                "kube-controller-manager",
                &[
                    "allocate-node-cidrs=true",
                    "authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
                    "authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
                    "bind-address=127.0.0.1",
                    "client-ca-file=/etc/kubernetes/pki/ca.crt",
                    "cluster-cidr=10.128.0.0/10",
                    "cluster-name=kubernetes",
                    "cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
                    "cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
                    "controllers=*,bootstrapsigner,tokencleaner",
                    "kubeconfig=/etc/kubernetes/controller-manager.conf",
                    "leader-elect=true",
                    "requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
                    "root-ca-file=/etc/kubernetes/pki/ca.crt",
                    "service-account-private-key-file=/etc/kubernetes/pki/sa.key",
                    "service-cluster-ip-range=10.96.0.0/12",
                    "use-service-account-credentials=true",
                ],
            );
            let mut vols = pki.to_vec();
            vols.push((
                "flexvolume-dir",
                "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
                "DirectoryOrCreate",
            ));
            vols.push((
                "kubeconfig",
                "/etc/kubernetes/controller-manager.conf",
                "FileOrCreate",
            ));
            (cmd, 10257, "127.0.0.1".into(), "200m", vols)
        }
        _ => {
            let cmd = flags(
                "kube-scheduler",
                &[
                    "authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
                    "authorization-kubeconfig=/etc/kubernetes/scheduler.conf",
                    "bind-address=127.0.0.1",
                    "kubeconfig=/etc/kubernetes/scheduler.conf",
                    "leader-elect=true",
                ],
            );
            let vols = vec![(
                "kubeconfig",
                "/etc/kubernetes/scheduler.conf",
                "FileOrCreate",
            )];
            (cmd, 10259, "127.0.0.1".into(), "100m", vols)
        }
    }
}

fn dashed<'a>(list: &'a [&str]) -> impl Iterator<Item = String> + 'a {
    list.iter().map(|f| format!("--{f}"))
}
