//! The software versions the simulated cluster runs, in one place so every object agrees.

use super::clock::DAY;
use super::ids;

pub(super) const KUBERNETES: &str = "v1.31.4";
pub(super) const CONTAINERD: &str = "containerd://1.7.24";
pub(super) const ETCD_IMAGE: &str = "registry.k8s.io/etcd:3.5.15-0";
pub(super) const CILIUM_IMAGE: &str = "quay.io/cilium/cilium:v1.16.5";
pub(super) const CEPH_IMAGE: &str = "quay.io/ceph/ceph:v19.2.2";
pub(super) const CEPH_VERSION: &str =
    "ceph version 19.2.2 (0eceb0defba60152a8182f7bd87d164b639885b8) squid (stable)";
/// How long ago the control plane was upgraded to [`KUBERNETES`] (kubelets restarted).
pub(super) const UPGRADED_AGO: i64 = 37 * DAY;

/// `repo@sha256:<digest>` for an image reference `repo:tag`: the form the kubelet reports
/// as `imageID` and in the node's image list. Fixed per image, whatever the lab seed.
pub(super) fn digest_ref(image: &str) -> String {
    let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
    format!("{repo}@sha256:{}", ids::hex(ids::hash(0, image), 64))
}
