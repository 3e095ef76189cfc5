//! RFC 6962 hashing (§2.1): the leaf and interior-node hashes of the log's Merkle tree.
//!
//! The hash function is SHA-256. Leaves and interior nodes are domain-separated by a one-byte
//! prefix, so a leaf can never be confused with a node:
//!
//! * leaf hash: `SHA-256(0x00 || data)`
//! * node hash: `SHA-256(0x01 || left || right)`
//! * the hash of the empty tree: `SHA-256("")`
//!
//! Every hash is exactly [`HASH_SIZE`] bytes; [`hash_from_slice`] is the one way to turn bytes of
//! unknown length (from JSON, a proof file, a tile) into a [`Hash`](type@Hash), and it rejects
//! any other length instead of padding or truncating.

mod lanes;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The size of a [`Hash`](type@Hash) in bytes.
pub const HASH_SIZE: usize = 32;

/// The RFC 6962 leaf hash of `data`: `SHA-256(0x00 || data)`.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// The RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The leaf hashes of many entries, in order: the same as [`leaf_hash`] on each, but several
/// at a time in vector lanes where the build's CPU allows (see `hash/lanes.rs`).
#[must_use]
pub fn leaf_hashes(items: &[&[u8]]) -> Vec<Hash> {
    let mut out = Vec::with_capacity(items.len());
    if lanes::ENABLED {
        lanes::hash_prefixed(
            0x00,
            items.len(),
            |i| items.get(i).copied().unwrap_or(&[]),
            &mut out,
        );
    } else {
        out.extend(items.iter().map(|d| leaf_hash(d)));
    }
    out
}

/// One level up a tree: the [`node_hash`] of each pair of neighbours `(hashes[2i],
/// hashes[2i + 1])`, with an odd last hash carried up unchanged. Repeating this until one hash
/// is left gives the RFC 6962 tree hash of `hashes` (see [`crate::tile::subtree_root`]).
#[must_use]
pub fn parent_level(hashes: &[Hash]) -> Vec<Hash> {
    let pairs = hashes.len() / 2;
    let mut out = Vec::with_capacity(hashes.len().div_ceil(2));
    if lanes::ENABLED {
        let flat = hashes.as_flattened();
        lanes::hash_prefixed(
            0x01,
            pairs,
            |i| flat.get(64 * i..64 * i + 64).unwrap_or(&[]),
            &mut out,
        );
    } else {
        out.extend(hashes.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])));
    }
    if hashes.len() % 2 == 1
        && let Some(last) = hashes.last()
    {
        out.push(*last);
    }
    out
}

/// The root hash of the empty tree (size 0): `SHA-256("")`.
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `b` as a [`Hash`](type@Hash) if it is exactly [`HASH_SIZE`] bytes long, `None` otherwise.
#[must_use]
pub fn hash_from_slice(b: &[u8]) -> Option<Hash> {
    Hash::try_from(b).ok()
}

/// `h` in standard base64 with padding (the form used by checkpoints, proofs and JSON vectors).
#[must_use]
pub fn hash_to_base64(h: &Hash) -> String {
    STANDARD.encode(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> Hash {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let pair = s.get(2 * i..2 * i + 2).unwrap_or("zz");
            *byte = u8::from_str_radix(pair, 16).unwrap_or_default();
        }
        out
    }

    #[test]
    fn known_values() {
        // RFC 6962 test tree values (as used by certificate-transparency and transparency-dev).
        assert_eq!(
            empty_root(),
            hex32("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            leaf_hash(b""),
            hex32("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        let l0 = leaf_hash(b"");
        let l1 = leaf_hash(&[0x00]);
        assert_eq!(
            l1,
            hex32("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")
        );
        assert_eq!(
            node_hash(&l0, &l1),
            hex32("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")
        );
    }

    #[test]
    fn batches_match_one_at_a_time() {
        let data: Vec<Vec<u8>> = (0..300u32)
            .map(|i| (0..(i * 7) % 400).map(|j| (i + j) as u8).collect())
            .collect();
        for n in [0usize, 1, 2, 9, 31, 300] {
            let items: Vec<&[u8]> = data[..n].iter().map(Vec::as_slice).collect();
            let leaves = leaf_hashes(&items);
            let want: Vec<Hash> = items.iter().map(|d| leaf_hash(d)).collect();
            assert_eq!(leaves, want);
            let up = parent_level(&leaves);
            assert_eq!(up.len(), n.div_ceil(2));
            for (i, h) in up.iter().enumerate() {
                match leaves.get(2 * i + 1) {
                    Some(r) => assert_eq!(*h, node_hash(&leaves[2 * i], r)),
                    None => assert_eq!(*h, leaves[2 * i]),
                }
            }
        }
    }

    #[test]
    fn slices() {
        assert_eq!(hash_from_slice(&[7u8; 32]), Some([7u8; 32]));
        assert_eq!(hash_from_slice(&[7u8; 31]), None);
        assert_eq!(hash_from_slice(&[7u8; 33]), None);
        assert_eq!(hash_from_slice(&[]), None);
        assert_eq!(
            hash_to_base64(&empty_root()),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
