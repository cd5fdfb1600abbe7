//! Whether evicted pods fit on the nodes left, one pod on one node at a time, as the
//! scheduler must place them: a 4-core pod does not fit on four nodes with one free
//! core each, though the totals say it would. First-fit decreasing (largest pod first,
//! onto the first node with room for all of its CPU, memory and GPUs); a segment tree
//! of the nodes' free resources finds that node in about log(nodes) steps, so tens of
//! thousands of pods place onto thousands of nodes in milliseconds. Pure.

use std::cmp::Ordering;

use super::facts::{PodFacts, Resources};

/// Places `pods`, largest first, each onto the first of `free` (the nodes' free
/// resources, in order) with room for all it requests, taking that room; returns the
/// pods that fit on no node, largest first.
pub fn first_fit_decreasing<'a>(
    pods: &[&'a PodFacts],
    free: &mut [Resources],
) -> Vec<&'a PodFacts> {
    let mut order: Vec<&'a PodFacts> = pods.to_vec();
    let biggest = free.iter().fold(Resources::default(), |m, r| m.max(*r));
    order.sort_by(|a, b| larger_first(a, b, &biggest));
    let mut tree = FreeTree::new(free);
    let mut unplaced = Vec::new();
    for pod in order {
        match tree.first_fit(&pod.requests) {
            Some(node) => {
                free[node] = free[node].saturating_sub(pod.requests);
                tree.set(node, free[node]);
            }
            None => unplaced.push(pod),
        }
    }
    unplaced
}

/// GPUs first, then the larger share of the biggest node's CPU or memory, then by name
/// (so plans do not depend on the order pods were listed in).
fn larger_first(a: &PodFacts, b: &PodFacts, biggest: &Resources) -> Ordering {
    let share = |p: &PodFacts| {
        let cpu = p.requests.cpu_millis as f64 / biggest.cpu_millis.max(1) as f64;
        let memory = p.requests.memory_bytes as f64 / biggest.memory_bytes.max(1) as f64;
        cpu.max(memory)
    };
    b.requests
        .gpus
        .cmp(&a.requests.gpus)
        .then_with(|| share(b).total_cmp(&share(a)))
        .then_with(|| b.requests.cpu_millis.cmp(&a.requests.cpu_millis))
        .then_with(|| b.requests.memory_bytes.cmp(&a.requests.memory_bytes))
        .then_with(|| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
}

/// A segment tree over the nodes: each inner entry holds the largest free CPU, memory
/// and GPUs below it (each on its own, possibly of different nodes), so a subtree none
/// of whose nodes could have room is never searched.
struct FreeTree {
    /// Leaves from `size`; `1` is the root.
    max: Vec<Resources>,
    size: usize,
    nodes: usize,
}

impl FreeTree {
    fn new(free: &[Resources]) -> FreeTree {
        let size = free.len().next_power_of_two().max(1);
        let mut max = vec![Resources::default(); 2 * size];
        max[size..size + free.len()].copy_from_slice(free);
        for i in (1..size).rev() {
            max[i] = max[2 * i].max(max[2 * i + 1]);
        }
        FreeTree {
            max,
            size,
            nodes: free.len(),
        }
    }

    fn set(&mut self, node: usize, free: Resources) {
        let mut i = self.size + node;
        self.max[i] = free;
        while i > 1 {
            i /= 2;
            self.max[i] = self.max[2 * i].max(self.max[2 * i + 1]);
        }
    }

    /// The first node with room for all of `need`.
    fn first_fit(&self, need: &Resources) -> Option<usize> {
        if self.nodes == 0 {
            return None;
        }
        self.search(1, need)
    }

    fn search(&self, i: usize, need: &Resources) -> Option<usize> {
        if !self.max[i].covers(need) {
            return None;
        }
        if i >= self.size {
            let node = i - self.size;
            return (node < self.nodes).then_some(node);
        }
        self.search(2 * i, need)
            .or_else(|| self.search(2 * i + 1, need))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, cpu_millis: u64, memory_gib: u64, gpus: u64) -> PodFacts {
        PodFacts::test_pod(name, None, node(cpu_millis, memory_gib, gpus))
    }

    fn node(cpu_millis: u64, memory_gib: u64, gpus: u64) -> Resources {
        Resources {
            cpu_millis,
            memory_bytes: memory_gib << 30,
            gpus,
        }
    }

    #[test]
    fn a_pod_bigger_than_every_node_fits_nowhere_though_the_totals_would_do() {
        let big = pod("big", 4000, 1, 0);
        let mut free = vec![node(1000, 8, 0); 4];
        let unplaced = first_fit_decreasing(&[&big], &mut free);
        assert_eq!(unplaced.len(), 1);
        assert_eq!(free, vec![node(1000, 8, 0); 4], "nothing taken");
    }

    #[test]
    fn the_largest_pods_go_first_and_small_ones_fill_the_gaps() {
        // First fit in listed order would put the 1-core pods on the 3-core node and
        // leave the 3-core pod without a node; largest first places everything.
        let pods = [
            pod("a", 1000, 1, 0),
            pod("b", 1000, 1, 0),
            pod("c", 3000, 1, 0),
        ];
        let refs: Vec<&PodFacts> = pods.iter().collect();
        let mut free = vec![node(3000, 4, 0), node(2000, 4, 0)];
        assert!(first_fit_decreasing(&refs, &mut free).is_empty());
        assert_eq!(free, vec![node(0, 3, 0), node(0, 2, 0)]);
    }

    #[test]
    fn every_resource_must_fit_on_the_same_node() {
        // One node has the CPU, the other the memory: neither has both.
        let p = pod("p", 2000, 16, 0);
        let mut free = vec![node(4000, 8, 0), node(1000, 32, 0)];
        assert_eq!(first_fit_decreasing(&[&p], &mut free).len(), 1);
        let gpu = pod("train", 1000, 1, 4);
        let mut free = vec![node(8000, 64, 2), node(8000, 64, 2), node(8000, 64, 4)];
        assert!(first_fit_decreasing(&[&gpu], &mut free).is_empty());
        assert_eq!(free[2].gpus, 0);
    }

    #[test]
    fn no_nodes_place_nothing_and_zero_requests_fit_anywhere() {
        let idle = pod("idle", 0, 0, 0);
        assert_eq!(first_fit_decreasing(&[&idle], &mut []).len(), 1);
        let mut free = vec![node(0, 0, 0)];
        assert!(first_fit_decreasing(&[&idle], &mut free).is_empty());
    }

    #[test]
    fn the_tree_finds_the_first_node_with_room_among_many() {
        let mut free: Vec<Resources> = (0..1000).map(|i| node(100 + i, 1, 0)).collect();
        let tree = FreeTree::new(&free);
        assert_eq!(tree.first_fit(&node(600, 1, 0)), Some(500));
        assert_eq!(tree.first_fit(&node(2000, 1, 0)), None);
        let p = pod("p", 1099, 1, 0);
        assert!(first_fit_decreasing(&[&p], &mut free).is_empty());
        assert_eq!(free[999], node(0, 0, 0));
    }
}
