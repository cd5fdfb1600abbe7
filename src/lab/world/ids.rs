//! Deterministic identifiers shaped like the real ones: UIDs, pod-template hashes,
//! generated-name suffixes, container IDs and image digests. Each is a pure function of
//! the lab seed and what it names, so every view derives the same value independently.

/// The alphabet of `k8s.io/apimachinery/pkg/util/rand` (no vowels, no confusable digits).
const SAFE: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";
/// 27^5: how many distinct 5-character generated-name suffixes exist.
const SUFFIX_SPACE: u64 = 14_348_907;

/// splitmix64 finaliser over a combination of two words.
pub(super) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a name under the lab seed.
pub(super) fn hash(seed: u64, name: &str) -> u64 {
    // FNV-1a, then mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(seed, h)
}

/// A stable hash of several name parts (kind, namespace, name...) without joining them.
pub(super) fn hash_parts(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0x1f).wrapping_mul(0x0100_0000_01b3);
    }
    mix(seed, h)
}

/// A version-4-shaped UUID, as the API server assigns to `metadata.uid`.
pub(super) fn uid(h: u64) -> String {
    let hi = mix(h, 1);
    let lo = mix(h, 2);
    let mut s = String::with_capacity(36);
    push_hex(&mut s, hi >> 32, 8);
    s.push('-');
    push_hex(&mut s, (hi >> 16) & 0xffff, 4);
    s.push('-');
    push_hex(&mut s, 0x4000 | (hi & 0x0fff), 4);
    s.push('-');
    push_hex(&mut s, 0x8000 | ((lo >> 48) & 0x3fff), 4);
    s.push('-');
    push_hex(&mut s, lo & 0xffff_ffff_ffff, 12);
    s
}

/// `n` lowercase hex digits from repeated mixing of `h` (container IDs, digests).
pub(super) fn hex(h: u64, n: usize) -> String {
    let mut s = String::with_capacity(n);
    let mut word = 0u64;
    while s.len() < n {
        let chunk = mix(h, word);
        let digits = 16.min(n - s.len());
        push_hex(&mut s, chunk, digits);
        word += 1;
    }
    s
}

fn push_hex(s: &mut String, v: u64, digits: usize) {
    for i in (0..digits).rev() {
        let nibble = ((v >> (i * 4)) & 0xf) as u8;
        s.push(char::from(if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + nibble - 10
        }));
    }
}

/// A `pod-template-hash`: like the ReplicaSet controller's `SafeEncodeString` of a
/// decimal `uint32`, so it only holds the characters `bcdf456789`.
pub(super) fn template_hash(h: u64) -> String {
    let decimal = (h as u32).to_string();
    decimal
        .bytes()
        .map(|b| char::from(SAFE[usize::from(b) % SAFE.len()]))
        .collect()
}

/// The 5-character suffix of a generated name (`<generateName><suffix>`), distinct for
/// distinct `index` under one `salt`: an affine bijection of 27^5 keeps it collision-free.
pub(super) fn name_suffix(salt: u64, index: u64) -> String {
    // Multiplier not divisible by 3 so the map is a bijection on 27^5 = 3^15.
    let a = (salt % SUFFIX_SPACE) | 1;
    let a = if a.is_multiple_of(3) { a + 2 } else { a };
    let b = mix(salt, 7) % SUFFIX_SPACE;
    let mut v = ((index % SUFFIX_SPACE) * a + b) % SUFFIX_SPACE;
    let mut out = [0u8; 5];
    for slot in out.iter_mut() {
        *slot = SAFE[(v % 27) as usize];
        v /= 27;
    }
    out.iter().map(|&c| char::from(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn suffixes_are_distinct_and_hashes_look_real() {
        let set: HashSet<String> = (0..50_000).map(|i| name_suffix(99, i)).collect();
        assert_eq!(set.len(), 50_000);
        let h = template_hash(12345);
        assert!(
            h.len() >= 5 && h.chars().all(|c| "bcdf456789".contains(c)),
            "{h}"
        );
        let u = uid(5);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(hex(3, 64).len(), 64);
    }
}
