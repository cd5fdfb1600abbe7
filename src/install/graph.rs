//! The install order: every component after what it depends on (CNI first, operators
//! before the clusters they run, CRD owners before their objects), ties broken by the
//! stack file's order so the plan reads like the file. A cycle is an error naming the
//! `depends_on` entry that closes it.

use std::collections::BTreeSet;

use super::stack::{Stack, StackError};

/// Indices into `stack.components`, in install order.
pub fn order(stack: &Stack) -> Result<Vec<usize>, StackError> {
    let comps = &stack.components;
    let index = |name: &str| comps.iter().position(|c| c.name == name);
    let mut done: Vec<bool> = vec![false; comps.len()];
    let mut out = Vec::with_capacity(comps.len());
    while out.len() < comps.len() {
        let next = (0..comps.len()).find(|&i| {
            !done[i]
                && comps[i]
                    .depends_on
                    .iter()
                    .all(|d| index(d).is_none_or(|j| done[j]))
        });
        match next {
            Some(i) => {
                done[i] = true;
                out.push(i);
            }
            None => return Err(cycle_error(stack, &done)),
        }
    }
    Ok(out)
}

/// Walks the dependencies of the components not yet ordered until one repeats.
fn cycle_error(stack: &Stack, done: &[bool]) -> StackError {
    let comps = &stack.components;
    let index = |name: &str| comps.iter().position(|c| c.name == name);
    let Some(start) = (0..comps.len()).find(|&i| !done[i]) else {
        return stack.source.error_at(0, "dependency cycle");
    };
    let mut path: Vec<usize> = vec![start];
    let mut seen = BTreeSet::from([start]);
    let mut at = start;
    loop {
        // Follow the first dependency that is itself stuck.
        let Some((k, next)) = comps[at]
            .depends_on
            .iter()
            .enumerate()
            .find_map(|(k, d)| index(d).filter(|&j| !done[j]).map(|j| (k, j)))
        else {
            return stack.source.error_at(comps[at].offset, "dependency cycle");
        };
        if seen.contains(&next) {
            let from = path.iter().position(|&p| p == next).unwrap_or(0);
            let mut names: Vec<&str> = path[from..]
                .iter()
                .map(|&p| comps[p].name.as_str())
                .collect();
            names.push(comps[next].name.as_str());
            let offset = comps[at].depends_on_offsets.get(k).copied().unwrap_or(0);
            return stack.source.error_at(
                offset,
                format!(
                    "dependency cycle: {} (remove one of these depends_on entries)",
                    names.join(" -> ")
                ),
            );
        }
        seen.insert(next);
        path.push(next);
        at = next;
    }
}
