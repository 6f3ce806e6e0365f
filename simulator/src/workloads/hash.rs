//! Names the workload controllers make: the `pod-template-hash` of a Pod template, and the
//! random-looking suffix of a generated Pod name.

use serde::Serialize;

/// Characters upstream's `rand.SafeEncodeString` maps to (no vowels, no look-alikes), so that
/// generated names never spell words (k8s.io/apimachinery `pkg/util/rand`).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// 32-bit FNV-1a, the hash upstream's `ComputeHash` uses (`pkg/controller/controller_utils.go`).
fn fnv1a_32(bytes: impl IntoIterator<Item = u8>) -> u32 {
    bytes.into_iter().fold(0x811c_9dc5u32, |hash, b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// `SafeEncodeString(fmt.Sprint(hash))`: each decimal digit mapped into the safe alphabet.
fn safe_encode(hash: u32) -> String {
    hash.to_string()
        .bytes()
        .map(|c| SAFE_ALPHABET[usize::from(c) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// The `pod-template-hash` of a template and the Deployment's `status.collisionCount`, as
/// upstream's `ComputeHash` (FNV-1a over the template, then the collision count), but over the
/// template's JSON rather than Go's `spew` dump: the value differs from kube-controller-
/// manager's, its properties (stable, changes with the template) do not.
pub(crate) fn template_hash<T: Serialize>(template: &T, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    let mut bytes = json;
    if let Some(count) = collision_count {
        bytes.extend_from_slice(&count.to_le_bytes());
    }
    safe_encode(fnv1a_32(bytes))
}

/// A five-character name suffix, as the API server's `generateName` appends, derived from
/// `seed` so that planning stays a pure function of its inputs.
pub(crate) fn name_suffix(seed: &str) -> String {
    // 27^5 < 2^32: five base-27 digits of the seed's hash.
    let base = SAFE_ALPHABET.len() as u32;
    let mut hash = fnv1a_32(seed.bytes());
    (0..5)
        .map(|_| {
            let c = SAFE_ALPHABET[(hash % base) as usize] as char;
            hash /= base;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // FNV-1a 32 test vectors (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a_32(*b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(*b"a"), 0xe40c_292c);
    }

    #[test]
    fn template_hash_is_stable_changes_with_the_template_and_the_collision_count() {
        let a = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}});
        let b = json!({"metadata": {"labels": {"app": "web2"}}, "spec": {"containers": []}});
        assert_eq!(template_hash(&a, None), template_hash(&a.clone(), None));
        assert_ne!(template_hash(&a, None), template_hash(&b, None));
        assert_ne!(template_hash(&a, None), template_hash(&a, Some(1)));
        let hash = template_hash(&a, None);
        assert!(hash.bytes().all(|c| SAFE_ALPHABET.contains(&c)), "{hash}");
    }

    #[test]
    fn name_suffixes_are_five_safe_characters_and_differ_by_seed() {
        let a = name_suffix("rs-uid/1");
        let b = name_suffix("rs-uid/2");
        assert_eq!(a.len(), 5);
        assert!(a.bytes().all(|c| SAFE_ALPHABET.contains(&c)), "{a}");
        assert_ne!(a, b);
    }
}
