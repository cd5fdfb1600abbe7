//! The simulated cluster's facts: the HA control plane, the GPU pool, workloads and
//! budgets, Ceph, Velero, the canary, and churn.

use std::collections::{HashMap, HashSet};

use kha::lab::topology::Rng;
use kha::lab::world;

use super::*;

#[test]
fn control_plane_is_three_zones_of_kubeadm_static_pods() {
    let (spec, t) = lab(6, 4);
    let objects = world::objects(&t, &spec, &Faults::default(), now());
    let cp: Vec<&Value> = of_kind(&objects, "Node")
        .into_iter()
        .filter(|n| n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] == "")
        .collect();
    assert_eq!(cp.len(), 3);
    let zones: HashSet<&str> = cp
        .iter()
        .filter_map(|n| n["metadata"]["labels"]["topology.kubernetes.io/zone"].as_str())
        .collect();
    assert_eq!(zones.len(), 3, "one control-plane node per zone");
    for node in &cp {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        let ip = node["status"]["addresses"][0]["address"]
            .as_str()
            .unwrap_or_default();
        assert!(node["spec"]["taints"].as_array().is_some_and(|t| {
            t.iter().any(|t| {
                t["key"] == "node-role.kubernetes.io/control-plane" && t["effect"] == "NoSchedule"
            })
        }));
        assert_eq!(condition(node, "Ready")["status"], "True");
        assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], "v1.31.4");
        let statics: Vec<&Value> = of_kind(&objects, "Pod")
            .into_iter()
            .filter(|p| {
                p["metadata"]["namespace"] == "kube-system"
                    && p["spec"]["nodeName"] == name
                    && p["metadata"]["labels"]["tier"] == "control-plane"
            })
            .collect();
        assert_eq!(statics.len(), 4, "{name}");
        for p in statics {
            let component = p["metadata"]["labels"]["component"]
                .as_str()
                .unwrap_or_default();
            assert_eq!(p["metadata"]["name"], format!("{component}-{name}"));
            assert_eq!(
                p["metadata"]["annotations"]["kubernetes.io/config.source"],
                "file"
            );
            assert!(p["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string());
            assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Node");
            assert_eq!(
                p["metadata"]["ownerReferences"][0]["uid"],
                node["metadata"]["uid"]
            );
            assert_eq!(p["spec"]["priorityClassName"], "system-node-critical");
            assert_eq!(p["spec"]["hostNetwork"], true);
            assert_eq!(p["status"]["phase"], "Running");
            match component {
                "kube-apiserver" => assert_eq!(
                    p["metadata"]["annotations"]["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"],
                    format!("{ip}:6443")
                ),
                "etcd" => {
                    assert_eq!(
                        p["metadata"]["annotations"]["kubeadm.kubernetes.io/etcd.advertise-client-urls"],
                        format!("https://{ip}:2379")
                    );
                    assert_eq!(
                        p["spec"]["containers"][0]["image"],
                        "registry.k8s.io/etcd:3.5.15-0"
                    );
                }
                "kube-scheduler" | "kube-controller-manager" => {
                    assert_eq!(
                        p["spec"]["containers"][0]["image"],
                        format!("registry.k8s.io/{component}:v1.31.4")
                    )
                }
                other => panic!("unexpected component {other}"),
            }
        }
    }
}

#[test]
fn gpu_nodes_are_tainted_and_their_pods_tolerate_it() {
    let (spec, t) = lab(6, 4);
    let objects = world::objects(&t, &spec, &Faults::default(), now());
    let gpu_nodes: Vec<&Value> = of_kind(&objects, "Node")
        .into_iter()
        .filter(|n| n["metadata"]["labels"]["nvidia.com/gpu.present"] == "true")
        .collect();
    assert_eq!(gpu_nodes.len(), t.gpu_nodes.len());
    for n in &gpu_nodes {
        assert_eq!(n["status"]["allocatable"]["nvidia.com/gpu"], "8");
        assert_eq!(
            n["metadata"]["labels"]["nvidia.com/gpu.product"],
            "NVIDIA-A100-SXM4-80GB"
        );
        assert!(n["metadata"]["labels"]["node-group"].is_string());
        assert!(n["spec"]["taints"].as_array().is_some_and(|t| {
            t.iter().any(|t| {
                t["key"] == "nvidia.com/gpu"
                    && t["value"] == "present"
                    && t["effect"] == "NoSchedule"
            })
        }));
    }
    let gpu_pods: Vec<&Value> = of_kind(&objects, "Pod")
        .into_iter()
        .filter(|p| p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"].is_string())
        .collect();
    assert_eq!(gpu_pods.len(), t.gpu_nodes.len());
    for p in gpu_pods {
        assert!(
            p["spec"]["tolerations"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["key"] == "nvidia.com/gpu"))
        );
        assert_eq!(p["status"]["phase"], "Running");
    }
    assert!(
        of_kind(&objects, "Pod")
            .iter()
            .all(|p| p["status"]["phase"] == "Running"),
        "nothing pending while healthy"
    );
}

#[test]
fn worker_pods_fill_every_worker_and_budgets_can_block_drains() {
    let (spec, t) = lab(6, 4);
    let objects = world::objects(&t, &spec, &Faults::default(), now());
    for w in &t.workers {
        let on: Vec<&Value> = of_kind(&objects, "Pod")
            .into_iter()
            .filter(|p| {
                p["spec"]["nodeName"] == w.name.as_str()
                    && p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
            })
            .collect();
        assert_eq!(on.len(), spec.pods_per_node, "{}", w.name);
        for p in on {
            let rs = p["metadata"]["ownerReferences"][0]["name"]
                .as_str()
                .unwrap_or_default();
            let owner = find(&objects, "ReplicaSet", rs);
            assert_eq!(
                owner["metadata"]["uid"],
                p["metadata"]["ownerReferences"][0]["uid"]
            );
            assert_eq!(p["status"]["hostIP"], w.ip.as_str());
        }
    }
    let pdbs = of_kind(&objects, "PodDisruptionBudget");
    assert!(
        pdbs.iter().any(|p| p["status"]["disruptionsAllowed"] == 0),
        "a PDB must block drains"
    );
    assert!(
        pdbs.iter()
            .any(|p| p["status"]["disruptionsAllowed"].as_u64() > Some(0))
    );
}

#[test]
fn ceph_degraded_reports_health_warn_with_the_checks() {
    let (spec, t) = lab(6, 2);
    let healthy = world::objects(&t, &spec, &Faults::default(), now());
    let cluster = find(&healthy, "CephCluster", "rook-ceph");
    assert_eq!(cluster["status"]["ceph"]["health"], "HEALTH_OK");
    assert_eq!(cluster["status"]["phase"], "Ready");
    assert_eq!(cluster["spec"]["mon"]["count"], 3);
    let faults = Faults::for_scenario(Scenario::CephDegraded, &t);
    let objects = world::objects(&t, &spec, &faults, now());
    let ceph = &find(&objects, "CephCluster", "rook-ceph")["status"]["ceph"];
    assert_eq!(ceph["health"], "HEALTH_WARN");
    assert_eq!(ceph["details"]["OSD_DOWN"]["message"], "1 osds down");
    assert!(
        ceph["details"]["PG_DEGRADED"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Degraded data redundancy: "))
    );
    let endpoints = find(&objects, "ConfigMap", "rook-ceph-mon-endpoints");
    for k in ["data", "outOfQuorum", "maxMonId", "mapping"] {
        assert!(endpoints["data"][k].is_string(), "{k}");
    }
    // A lost zone takes its mon out of quorum too.
    let az = world::objects(
        &t,
        &spec,
        &Faults::for_scenario(Scenario::AzFailure, &t),
        now(),
    );
    assert_eq!(
        find(&az, "ConfigMap", "rook-ceph-mon-endpoints")["data"]["outOfQuorum"],
        "c"
    );
    assert!(
        find(&az, "CephCluster", "rook-ceph")["status"]["ceph"]["details"]["MON_DOWN"].is_object()
    );
}

#[test]
fn backups_are_daily_and_stale_when_the_fault_says_so() {
    let (spec, t) = lab(6, 2);
    let newest_completed = |objects: &[Value]| {
        of_kind(objects, "Backup")
            .into_iter()
            .filter(|b| b["status"]["phase"] == "Completed")
            .filter_map(|b| b["status"]["startTimestamp"].as_str().map(unix))
            .max()
            .expect("a completed backup")
    };
    let healthy = world::objects(&t, &spec, &Faults::default(), now());
    let backups = of_kind(&healthy, "Backup");
    assert_eq!(backups.len(), 7);
    for b in &backups {
        let name = b["metadata"]["name"].as_str().unwrap_or_default();
        assert!(
            name.starts_with("daily-backup-") && name.len() == "daily-backup-".len() + 14,
            "{name}"
        );
        assert_eq!(
            b["metadata"]["labels"]["velero.io/schedule-name"],
            "daily-backup"
        );
    }
    assert!(
        backups
            .iter()
            .any(|b| b["status"]["phase"] == "PartiallyFailed"
                && b["status"]["errors"].as_u64() > Some(0))
    );
    assert!(NOW as i64 - newest_completed(&healthy) < 86_400 + 3_600);
    let schedule = find(&healthy, "Schedule", "daily-backup");
    assert_eq!(schedule["spec"]["schedule"], "0 2 * * *");
    assert_eq!(schedule["spec"]["template"]["ttl"], "720h0m0s");
    assert_eq!(schedule["status"]["phase"], "Enabled");
    let locations = of_kind(&healthy, "BackupStorageLocation");
    assert_eq!(locations.len(), 2);
    assert!(
        locations
            .iter()
            .all(|l| l["status"]["phase"] == "Available")
    );
    assert_eq!(
        find(&healthy, "BackupStorageLocation", "default")["spec"]["default"],
        true
    );

    let stale = world::objects(
        &t,
        &spec,
        &Faults::for_scenario(Scenario::BackupStale, &t),
        now(),
    );
    let newest = newest_completed(&stale);
    assert!(
        NOW as i64 - newest >= 3 * 86_400,
        "newest good backup is {}s old",
        NOW as i64 - newest
    );
    assert!(
        of_kind(&stale, "Backup")
            .iter()
            .any(|b| b["status"]["phase"] == "Failed"
                && b["status"]["startTimestamp"].as_str().map(unix) > Some(newest))
    );
}

#[test]
fn canary_in_trouble_is_paused_not_aborted() {
    let (spec, t) = lab(6, 4);
    for bad in [false, true] {
        let faults = Faults {
            canary_bad: bad,
            ..Faults::default()
        };
        let objects = world::objects(&t, &spec, &faults, now());
        let rollout = find(&objects, "Rollout", "checkout");
        let status = &rollout["status"];
        assert_eq!(status["phase"], "Paused");
        assert_eq!(status["pauseConditions"][0]["reason"], "CanaryPauseStep");
        assert!(status["observedGeneration"].is_string());
        assert_ne!(status["stableRS"], status["currentPodHash"]);
        assert!(status["abort"].is_null());
        let run_name = status["canary"]["currentBackgroundAnalysisRunStatus"]["name"]
            .as_str()
            .unwrap_or_default();
        assert!(run_name.starts_with(&format!(
            "checkout-{}-",
            status["currentPodHash"].as_str().unwrap_or_default()
        )));
        let run = find(&objects, "AnalysisRun", run_name);
        assert_eq!(run["status"]["phase"], "Running");
        let measurements = run["status"]["metricResults"][0]["measurements"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let failed: Vec<&Value> = measurements
            .iter()
            .filter(|m| m["phase"] == "Failed")
            .collect();
        if bad {
            assert!(failed.len() >= 2, "failures accumulate");
            for m in failed {
                let v: f64 = m["value"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_matches(['[', ']'])
                    .parse()
                    .unwrap_or(1.0);
                assert!((0.9..0.95).contains(&v), "{v}");
            }
        } else {
            assert!(failed.is_empty());
        }
        for (hash, rs) in [("stableRS", "stable"), ("currentPodHash", "canary")] {
            let name = format!("checkout-{}", status[hash].as_str().unwrap_or_default());
            assert_eq!(
                find(&objects, "ReplicaSet", &name)["metadata"]["ownerReferences"][0]["kind"],
                "Rollout",
                "{rs}"
            );
        }
    }
}

#[test]
fn churn_changes_one_existing_object_of_an_up_node() {
    let (spec, t) = lab(9, 4);
    let faults = Faults::for_scenario(Scenario::AzFailure, &t);
    let zone = faults.zone_down.clone().unwrap_or_default();
    let objects = world::objects(&t, &spec, &faults, now());
    let index: HashMap<ObjectRef, &Value> = objects.iter().map(|o| (key(o), o)).collect();
    let later = now() + Duration::from_secs(0);
    let mut rng = Rng::new(3);
    let mut again = Rng::new(3);
    let (mut pods, mut nodes) = (0, 0);
    for _ in 0..200 {
        let change = world::churn_change(&t, &spec, &faults, &mut rng, later);
        assert_eq!(
            change,
            world::churn_change(&t, &spec, &faults, &mut again, later),
            "deterministic"
        );
        let r = key(&change);
        let current = index
            .get(&r)
            .unwrap_or_else(|| panic!("churn on unknown {r:?}"));
        assert_ne!(*current, &change, "churn must change something");
        match r.kind.as_str() {
            "Pod" => {
                pods += 1;
                let node = change["spec"]["nodeName"].as_str().unwrap_or_default();
                assert!(
                    !t.workers.iter().any(|w| w.name == node && w.zone == zone),
                    "{node} is down"
                );
                let restarts = change["status"]["containerStatuses"][0]["restartCount"]
                    .as_u64()
                    .unwrap_or(0);
                let before = current["status"]["containerStatuses"][0]["restartCount"]
                    .as_u64()
                    .unwrap_or(0);
                assert!(restarts > before);
            }
            "Node" => {
                nodes += 1;
                assert_ne!(
                    change["metadata"]["labels"]["topology.kubernetes.io/zone"],
                    zone.as_str()
                );
                assert_eq!(
                    condition(&change, "Ready")["lastHeartbeatTime"],
                    "2026-11-30T01:44:23Z"
                );
            }
            other => panic!("churn on a {other}"),
        }
    }
    assert!(pods > 0 && nodes > 0, "pods {pods}, nodes {nodes}");
}
