//! Merkle tree hashes and proofs (RFC 6962 §2.1, RFC 9162 §2.1.3 and §2.1.4).
//!
//! # The tree
//!
//! The Merkle Tree Hash of `n` leaves `D[0:n]` is `MTH({}) = SHA-256("")`,
//! `MTH({d}) = leaf_hash(d)` and, for `n > 1`, with `k` the largest power of two smaller than
//! `n`, `MTH(D[0:n]) = node_hash(MTH(D[0:k]), MTH(D[k:n]))`. So a tree of size `n` is the
//! right-to-left fold of the perfect subtrees given by the binary digits of `n`: a tree of
//! size 13 = 8 + 4 + 1 is `node(S8, node(S4, S1))`.
//!
//! A *complete subtree* at `(level, index)` is the perfect subtree over the leaves
//! `[index << level, (index + 1) << level)`. Everything in this module is computed from such
//! subtree hashes, obtained from a [`SubtreeSource`]: [`MemoryTree`] (all hashes in memory) or
//! [`crate::tile::TileSource`] (a tiled log's files).
//!
//! # Inclusion proofs (RFC 9162 §2.1.3)
//!
//! The proof for leaf `index` in a tree of `size` lists the sibling hashes on the path from the
//! leaf to the root, bottom-up. The path splits in two parts: the *inner* part, below the point
//! where the paths to `index` and to `size - 1` diverge (`bit_length(index ^ (size - 1))` hashes,
//! left or right by the bits of `index`), and the *border* part along the tree's right edge
//! (one left sibling per set bit of `index` above the inner part). The proof length is
//! therefore fixed by `(index, size)`, and [`root_from_inclusion`] rejects any other length
//! before hashing anything.
//!
//! # Consistency proofs (RFC 9162 §2.1.4)
//!
//! The proof from `size1` to `size2` is essentially the inclusion proof of leaf `size1 - 1` in
//! the tree of `size2`, cut at level `trailing_zeros(size1)` (where the old tree's last perfect
//! subtree sits), plus that subtree's hash first unless `size1` is a power of two (then it is the
//! old root itself). The verifier rebuilds both roots from it: the old root from the hashes on
//! the left of the path only, the new root from all of them.
//!
//! Edge cases, as the public RFC 9162 test vectors expect: `size1 > size2` is an error; for
//! `size1 == size2` the proof must be empty and the roots equal (and equal to the empty root
//! when the size is 0); a proof from size 0 to a larger size is meaningless and rejected.
//!
//! Verification never panics: every size, index and proof length is checked first, and all
//! arithmetic is checked.
//!
//! # Compact ranges
//!
//! [`CompactRange`] keeps only the right edge of a growing tree (one hash per set bit of its
//! size), enough to compute the root at the current size without the leaves.

use crate::hash::{Hash, empty_root, hash_to_base64, node_hash};

/// Why a Merkle proof or a subtree request was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for the given sizes or index.
    #[error("proof has {got} hashes, want {want}")]
    WrongProofLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes a valid proof has.
        want: usize,
    },
    /// The root computed from the proof is not the expected root (inclusion proofs, and the new
    /// root of consistency proofs).
    #[error("root mismatch: computed {}, expected {}", hash_to_base64(.computed), hash_to_base64(.expected))]
    RootMismatch {
        /// The root the proof leads to.
        computed: Hash,
        /// The root it should lead to.
        expected: Hash,
    },
    /// A consistency proof does not lead to the old tree's root (`root1`).
    #[error("old root mismatch: the consistency proof gives {}, expected {}", hash_to_base64(.computed), hash_to_base64(.expected))]
    OldRootMismatch {
        /// The old root the proof leads to.
        computed: Hash,
        /// The old root it should lead to.
        expected: Hash,
    },
    /// The first tree of a consistency proof is larger than the second.
    #[error("tree sizes out of order: size1 {size1} > size2 {size2}")]
    SizeOrder {
        /// The old size.
        size1: u64,
        /// The new size.
        size2: u64,
    },
    /// A consistency proof from the empty tree to a non-empty one was requested or given; such a
    /// proof is meaningless (every tree extends the empty tree), so none exists.
    #[error("consistency proof from the empty tree to size {size2} is meaningless")]
    EmptyTreeConsistency {
        /// The new size.
        size2: u64,
    },
    /// [`CompactRange::from_parts`] was given a number of hashes other than one per set bit of
    /// the size.
    #[error("a compact range of size {size} has {want} hashes, got {got}")]
    CompactRangeLength {
        /// The tree size.
        size: u64,
        /// Hashes given.
        got: usize,
        /// Hashes a compact range of that size has.
        want: usize,
    },
    /// A complete subtree that is not inside the tree was requested from a source.
    #[error(
        "subtree at level {level}, index {index} is not a complete subtree of a tree of size {size}"
    )]
    SubtreeOutOfRange {
        /// The subtree's level (it spans `2^level` leaves).
        level: u8,
        /// The subtree's index at that level.
        index: u64,
        /// The tree size.
        size: u64,
    },
}

/// Bit length of `x`: the number of bits needed to write it (0 for 0).
fn bit_length(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// Splits the inclusion proof of `index` in a tree of `size` (requires `index < size`) into its
/// inner part (below where the paths to `index` and `size - 1` diverge) and its border part
/// (left siblings along the right edge). Returns the two lengths.
fn decompose(index: u64, size: u64) -> (u32, u32) {
    let last = size.saturating_sub(1);
    let inner = bit_length(index ^ last);
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner, border)
}

fn proof_len(inner: u32, border: u32, extra: usize) -> usize {
    // Both are at most 64, so this cannot overflow.
    (inner as usize)
        .saturating_add(border as usize)
        .saturating_add(extra)
}

/// Bit `i` of `x` (0 when `i >= 64`).
fn bit(x: u64, i: usize) -> bool {
    u32::try_from(i)
        .ok()
        .and_then(|i| x.checked_shr(i))
        .is_some_and(|v| v & 1 == 1)
}

/// The root of the tree of `size` that an inclusion proof of `leaf` at `index` leads to.
///
/// Errors: `index >= size` ([`MerkleError::IndexOutOfRange`], which covers `size == 0`), or a
/// proof of the wrong length ([`MerkleError::WrongProofLength`]). The result is only meaningful
/// when compared with a trusted root; [`verify_inclusion`] does that.
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose(index, size);
    let want = proof_len(inner, border, 0);
    if proof.len() != want {
        return Err(MerkleError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    let mut h = *leaf;
    for (i, p) in proof.iter().enumerate() {
        h = if i < inner as usize && !bit(index, i) {
            node_hash(&h, p)
        } else {
            node_hash(p, &h)
        };
    }
    Ok(h)
}

/// Verifies that `leaf` (a leaf hash) is at `index` in the tree of `size` whose root is `root`,
/// given the RFC 9162 inclusion proof `proof` (sibling hashes, bottom-up).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    let computed = root_from_inclusion(index, size, leaf, proof)?;
    if computed == *root {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch {
            computed,
            expected: *root,
        })
    }
}

/// Verifies that the tree of `size2` with root `root2` extends the tree of `size1` with root
/// `root1`, given the RFC 9162 consistency proof `proof`.
///
/// `size1 == size2` needs an empty proof and equal roots (the empty root for size 0);
/// `size1 == 0 < size2` is always rejected ([`MerkleError::EmptyTreeConsistency`]): callers
/// that start from an empty tree need no proof.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if size1 > size2 {
        return Err(MerkleError::SizeOrder { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        if size1 == 0 && *root1 != empty_root() {
            return Err(MerkleError::OldRootMismatch {
                computed: empty_root(),
                expected: *root1,
            });
        }
        if root1 != root2 {
            return Err(MerkleError::RootMismatch {
                computed: *root1,
                expected: *root2,
            });
        }
        return Ok(());
    }
    if size1 == 0 {
        return Err(MerkleError::EmptyTreeConsistency { size2 });
    }
    // Here 0 < size1 < size2. The proof is the part of the inclusion proof of leaf size1 - 1
    // in the tree of size2 above level `shift`, where the old tree's last perfect subtree is.
    let last1 = size1 - 1;
    let (inner, border) = decompose(last1, size2);
    let shift = size1.trailing_zeros();
    // shift < inner because size1 < size2 (the paths diverge above the old subtree).
    let inner = inner.saturating_sub(shift);
    let size1_is_perfect = size1.is_power_of_two();
    let extra = usize::from(!size1_is_perfect);
    let want = proof_len(inner, border, extra);
    if proof.len() != want {
        return Err(MerkleError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    let (seed, rest) = match proof.split_first() {
        Some((first, rest)) if !size1_is_perfect => (*first, rest),
        _ => (*root1, proof),
    };
    let mask = last1.checked_shr(shift).unwrap_or(0);
    let mut h1 = seed;
    let mut h2 = seed;
    for (i, p) in rest.iter().enumerate() {
        if i < inner as usize && !bit(mask, i) {
            // Right sibling: part of the new tree only.
            h2 = node_hash(&h2, p);
        } else {
            h1 = node_hash(p, &h1);
            h2 = node_hash(p, &h2);
        }
    }
    if h1 != *root1 {
        return Err(MerkleError::OldRootMismatch {
            computed: h1,
            expected: *root1,
        });
    }
    if h2 != *root2 {
        return Err(MerkleError::RootMismatch {
            computed: h2,
            expected: *root2,
        });
    }
    Ok(())
}

/// A source of complete-subtree hashes: the hash of leaves `[index << level, (index + 1) << level)`.
///
/// Level 0 is the leaf hashes themselves. A source only has to answer for complete subtrees that
/// lie inside its tree; proof generation never asks for anything else.
pub trait SubtreeSource {
    /// Why a subtree hash could not be produced.
    type Error;
    /// The hash of the complete subtree at `(level, index)`.
    fn subtree(&mut self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// Why generating a tree hash or proof failed.
#[derive(Debug, thiserror::Error)]
pub enum ProofError<E> {
    /// The subtree source failed.
    #[error("subtree source failed: {0}")]
    Source(E),
    /// The request itself is invalid (index or sizes out of range).
    #[error("invalid proof request: {0}")]
    Merkle(MerkleError),
}

fn get<S: SubtreeSource>(
    src: &mut S,
    level: u32,
    index: u64,
) -> Result<Hash, ProofError<S::Error>> {
    let level = u8::try_from(level).map_err(|_| {
        ProofError::Merkle(MerkleError::SubtreeOutOfRange {
            level: u8::MAX,
            index,
            size: 0,
        })
    })?;
    src.subtree(level, index).map_err(ProofError::Source)
}

/// `MTH(D[start:start + len])` for a range whose start is a multiple of the smallest power of
/// two `>= len`, so that it splits into aligned complete subtrees, one per set bit of `len`.
fn range_hash<S: SubtreeSource>(
    src: &mut S,
    start: u64,
    len: u64,
) -> Result<Hash, ProofError<S::Error>> {
    if len == 0 {
        return Ok(empty_root());
    }
    let mut parts = Vec::with_capacity(len.count_ones() as usize);
    let mut pos = start;
    for level in (0..u64::BITS).rev() {
        let width = 1u64 << level;
        if len & width != 0 {
            parts.push(get(src, level, pos >> level)?);
            pos = pos.wrapping_add(width);
        }
    }
    Ok(fold_right(&parts))
}

/// Folds perfect-subtree hashes (largest first) from the right: `node(a, node(b, c))`.
fn fold_right(parts: &[Hash]) -> Hash {
    let mut iter = parts.iter().rev();
    let Some(last) = iter.next() else {
        return empty_root();
    };
    iter.fold(*last, |acc, left| node_hash(left, &acc))
}

/// The largest power of two strictly smaller than `n` (requires `n >= 2`).
fn split_point(n: u64) -> u64 {
    let k = 1u64
        << (u64::BITS
            .saturating_sub(1)
            .saturating_sub(n.leading_zeros()))
        .min(63);
    if k == n { k >> 1 } else { k }
}

/// `MTH(D[0:size])`: the root hash of the tree of `size` ([`empty_root`] for 0).
pub fn tree_hash<S: SubtreeSource>(src: &mut S, size: u64) -> Result<Hash, ProofError<S::Error>> {
    range_hash(src, 0, size)
}

/// The RFC 9162 inclusion proof (sibling hashes, bottom-up) of leaf `index` in the tree of `size`.
///
/// Errors with [`MerkleError::IndexOutOfRange`] unless `index < size`.
pub fn inclusion_proof<S: SubtreeSource>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::Merkle(MerkleError::IndexOutOfRange {
            index,
            size,
        }));
    }
    // Walk down from the root (RFC 6962 PATH), collecting siblings top-down.
    let mut siblings = Vec::new();
    let (mut lo, mut n, mut m) = (0u64, size, index);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            siblings.push(range_hash(src, lo + k, n - k)?);
            n = k;
        } else {
            siblings.push(range_hash(src, lo, k)?);
            lo += k;
            m -= k;
            n -= k;
        }
    }
    siblings.reverse();
    Ok(siblings)
}

/// The RFC 9162 consistency proof from the tree of `size1` to the tree of `size2`.
///
/// Empty when `size1 == size2`. Errors with [`MerkleError::SizeOrder`] when `size1 > size2`
/// and [`MerkleError::EmptyTreeConsistency`] when `size1 == 0 < size2`.
pub fn consistency_proof<S: SubtreeSource>(
    src: &mut S,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if size1 > size2 {
        return Err(ProofError::Merkle(MerkleError::SizeOrder { size1, size2 }));
    }
    if size1 == size2 {
        return Ok(Vec::new());
    }
    if size1 == 0 {
        return Err(ProofError::Merkle(MerkleError::EmptyTreeConsistency {
            size2,
        }));
    }
    // RFC 6962 SUBPROOF(m, D[lo:lo+n], b), unrolled: siblings are collected top-down.
    let mut siblings = Vec::new();
    let (mut lo, mut n, mut m, mut whole) = (0u64, size2, size1, true);
    while m != n {
        let k = split_point(n);
        if m <= k {
            siblings.push(range_hash(src, lo + k, n - k)?);
            n = k;
        } else {
            siblings.push(range_hash(src, lo, k)?);
            lo += k;
            m -= k;
            n -= k;
            whole = false;
        }
    }
    let mut proof = Vec::with_capacity(siblings.len() + 1);
    if !whole {
        proof.push(range_hash(src, lo, m)?);
    }
    proof.extend(siblings.into_iter().rev());
    Ok(proof)
}

/// In-memory leaf hashes as a [`SubtreeSource`] (for tests, small trees, the writer's current
/// tile).
///
/// Keeps every complete subtree hash (about twice the leaf hashes), so [`SubtreeSource::subtree`]
/// is a lookup and [`MemoryTree::root`] costs `O(log n)`.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    /// `levels[l][i]`: the complete subtree at `(l, i)`; `levels[0]` are the leaf hashes.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut level = 0usize;
        loop {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                return;
            };
            row.push(h);
            if row.len() % 2 != 0 {
                return;
            }
            match row.len().checked_sub(2).and_then(|i| row.get(i..)) {
                Some([l, r]) => h = node_hash(l, r),
                _ => return,
            }
            level += 1;
        }
    }

    /// The number of leaves.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.leaves().len() as u64
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.leaves().is_empty()
    }

    /// The root hash at the current size ([`empty_root`] when empty).
    #[must_use]
    pub fn root(&self) -> Hash {
        let size = self.len();
        let mut parts = Vec::new();
        let mut pos = 0u64;
        for level in (0..u64::BITS).rev() {
            let width = 1u64 << level;
            if size & width != 0 {
                if let Some(h) = self.node(level as usize, pos >> level) {
                    parts.push(h);
                }
                pos += width;
            }
        }
        fold_right(&parts)
    }

    /// The leaf hashes, in order.
    #[must_use]
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    fn node(&self, level: usize, index: u64) -> Option<Hash> {
        let index = usize::try_from(index).ok()?;
        self.levels.get(level)?.get(index).copied()
    }
}

impl SubtreeSource for MemoryTree {
    type Error = MerkleError;

    fn subtree(&mut self, level: u8, index: u64) -> Result<Hash, MerkleError> {
        self.node(usize::from(level), index)
            .ok_or(MerkleError::SubtreeOutOfRange {
                level,
                index,
                size: self.len(),
            })
    }
}

/// Compact range: the `O(log n)` right-edge state of a growing tree (root at any size without
/// all leaves).
///
/// It holds one perfect-subtree hash per set bit of the size, largest (leftmost) first; pushing
/// a leaf merges equal-sized subtrees like a binary counter carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The compact range of the empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a compact range from its parts: `hashes` are the perfect subtrees of the tree of
    /// `size`, largest first (as [`CompactRange::hashes`] returns them). Errors unless there is
    /// exactly one hash per set bit of `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, MerkleError> {
        let want = size.count_ones() as usize;
        if hashes.len() != want {
            return Err(MerkleError::CompactRangeLength {
                size,
                got: hashes.len(),
                want,
            });
        }
        Ok(Self { size, hashes })
    }

    /// The compact range of the tree of `size`, read from a subtree source (for example the
    /// tiles of a log being reopened).
    pub fn from_source<S: SubtreeSource>(
        src: &mut S,
        size: u64,
    ) -> Result<Self, ProofError<S::Error>> {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut pos = 0u64;
        for level in (0..u64::BITS).rev() {
            let width = 1u64 << level;
            if size & width != 0 {
                hashes.push(get(src, level, pos >> level)?);
                pos = pos.wrapping_add(width);
            }
        }
        Ok(Self { size, hashes })
    }

    /// Appends a leaf hash. (A tree holds at most `u64::MAX` leaves; a push beyond that is
    /// ignored, which no real log can reach.)
    pub fn push(&mut self, leaf: Hash) {
        let Some(new_size) = self.size.checked_add(1) else {
            return;
        };
        let mut h = leaf;
        // Each trailing one bit of the old size is a subtree that merges with the new one.
        for _ in 0..self.size.trailing_ones() {
            match self.hashes.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break,
            }
        }
        self.hashes.push(h);
        self.size = new_size;
    }

    /// The number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash at the current size ([`empty_root`] when empty).
    #[must_use]
    pub fn root(&self) -> Hash {
        fold_right(&self.hashes)
    }

    /// The perfect-subtree hashes of the right edge, largest first (one per set bit of the size).
    #[must_use]
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::hash::leaf_hash;

    fn tree(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(leaf_hash(&i.to_be_bytes()));
        }
        t
    }

    /// MTH straight from the RFC 6962 recursive definition.
    fn reference_mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_mth(&leaves[..k]), &reference_mth(&leaves[k..]))
            }
        }
    }

    fn flip(h: &Hash, bit: usize) -> Hash {
        let mut h = *h;
        h[bit / 8] ^= 1 << (bit % 8);
        h
    }

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(u64::MAX), 1 << 63);
        assert_eq!(split_point(1 << 63), 1 << 62);
    }

    #[test]
    fn memory_tree_root_matches_definition() {
        let t = tree(0);
        assert!(t.is_empty());
        assert_eq!(t.root(), empty_root());
        for n in 1..=70u64 {
            let mut t = tree(n);
            assert_eq!(t.len(), n);
            assert_eq!(t.root(), reference_mth(t.leaves()), "size {n}");
            assert_eq!(tree_hash(&mut t, n).unwrap(), t.root());
            for m in 0..=n {
                let want = reference_mth(&t.leaves()[..m as usize]);
                assert_eq!(tree_hash(&mut t, m).unwrap(), want, "prefix {m} of {n}");
            }
        }
    }

    #[test]
    fn inclusion_generate_then_verify_all_sizes() {
        for size in 1..=130u64 {
            let mut t = tree(size);
            let root = t.root();
            for index in 0..size {
                let proof = inclusion_proof(&mut t, index, size).unwrap();
                let leaf = t.leaves()[index as usize];
                verify_inclusion(index, size, &leaf, &proof, &root)
                    .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));
                // Every single-bit change of every proof hash is caught. (All 256 bits for small
                // trees, a rotating selection of 4 bits per hash for larger ones, to keep debug
                // builds fast.)
                for (j, p) in proof.iter().enumerate() {
                    let bits: Vec<usize> = if size <= 24 {
                        (0..256).collect()
                    } else {
                        (0..4)
                            .map(|b| (b * 64 + j * 7 + index as usize) % 256)
                            .collect()
                    };
                    for b in bits {
                        let mut bad = proof.clone();
                        bad[j] = flip(p, b);
                        assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
                    }
                }
                // Wrong leaf, wrong index, wrong size, wrong length.
                assert!(verify_inclusion(index, size, &flip(&leaf, 3), &proof, &root).is_err());
                if size > 1 {
                    let other = (index + 1) % size;
                    assert!(verify_inclusion(other, size, &leaf, &proof, &root).is_err());
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert_eq!(
                    verify_inclusion(index, size, &leaf, &longer, &root),
                    Err(MerkleError::WrongProofLength {
                        got: proof.len() + 1,
                        want: proof.len()
                    })
                );
                if !proof.is_empty() {
                    assert!(verify_inclusion(index, size, &leaf, &proof[1..], &root).is_err());
                }
            }
            assert_eq!(
                verify_inclusion(size, size, &root, &[], &root),
                Err(MerkleError::IndexOutOfRange { index: size, size })
            );
            assert!(matches!(
                inclusion_proof(&mut t, size, size),
                Err(ProofError::Merkle(MerkleError::IndexOutOfRange { .. }))
            ));
        }
    }

    #[test]
    fn consistency_generate_then_verify_all_pairs() {
        let mut big = tree(130);
        let roots: Vec<Hash> = (0..=130).map(|n| tree_hash(&mut big, n).unwrap()).collect();
        for size2 in 1..=130u64 {
            let mut t = tree(size2);
            let root2 = roots[size2 as usize];
            assert_eq!(t.root(), root2);
            for size1 in 1..=size2 {
                let root1 = roots[size1 as usize];
                let proof = consistency_proof(&mut t, size1, size2).unwrap();
                // The proof from the big tree is the same: it depends only on the sizes.
                assert_eq!(proof, consistency_proof(&mut big, size1, size2).unwrap());
                verify_consistency(size1, size2, &root1, &root2, &proof)
                    .unwrap_or_else(|e| panic!("{size1} -> {size2}: {e}"));
                for (j, p) in proof.iter().enumerate() {
                    let bits: Vec<usize> = if size2 <= 20 {
                        (0..256).collect()
                    } else {
                        (0..4)
                            .map(|b| (b * 64 + j * 13 + size1 as usize) % 256)
                            .collect()
                    };
                    for b in bits {
                        let mut bad = proof.clone();
                        bad[j] = flip(p, b);
                        assert!(
                            verify_consistency(size1, size2, &root1, &root2, &bad).is_err(),
                            "{size1} -> {size2}: flipped bit {b} of hash {j} accepted"
                        );
                    }
                }
                assert!(
                    verify_consistency(size1, size2, &flip(&root1, 0), &root2, &proof).is_err()
                );
                assert!(
                    verify_consistency(size1, size2, &root1, &flip(&root2, 255), &proof).is_err()
                );
                if size1 < size2 {
                    assert!(verify_consistency(size1, size2, &root2, &root1, &proof).is_err());
                    assert!(verify_consistency(size1, size2, &root1, &root2, &[]).is_err());
                    let mut longer = proof.clone();
                    longer.push(root1);
                    assert!(verify_consistency(size1, size2, &root1, &root2, &longer).is_err());
                }
            }
        }
    }

    #[test]
    fn consistency_edge_cases() {
        let e = empty_root();
        let mut t = tree(5);
        let r5 = t.root();
        assert_eq!(verify_consistency(0, 0, &e, &e, &[]), Ok(()));
        assert!(verify_consistency(0, 0, &r5, &r5, &[]).is_err());
        assert_eq!(
            verify_consistency(0, 5, &e, &r5, &[]),
            Err(MerkleError::EmptyTreeConsistency { size2: 5 })
        );
        assert_eq!(
            verify_consistency(5, 4, &r5, &r5, &[]),
            Err(MerkleError::SizeOrder { size1: 5, size2: 4 })
        );
        assert_eq!(
            verify_consistency(5, 5, &r5, &r5, &[r5]),
            Err(MerkleError::WrongProofLength { got: 1, want: 0 })
        );
        assert!(verify_consistency(u64::MAX, u64::MAX, &r5, &r5, &[]).is_ok());
        assert!(verify_consistency(1, u64::MAX, &r5, &r5, &[r5; 64]).is_err());
        assert!(consistency_proof(&mut t, 0, 0).unwrap().is_empty());
        assert!(matches!(
            consistency_proof(&mut t, 0, 5),
            Err(ProofError::Merkle(MerkleError::EmptyTreeConsistency {
                size2: 5
            }))
        ));
        assert!(matches!(
            consistency_proof(&mut t, 3, 2),
            Err(ProofError::Merkle(MerkleError::SizeOrder { .. }))
        ));
        // Asking a source for more than it holds is an error from the source, not a panic.
        assert!(matches!(
            consistency_proof(&mut t, 3, 9),
            Err(ProofError::Source(MerkleError::SubtreeOutOfRange { .. }))
        ));
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let h = [9u8; 32];
        for (index, size) in [
            (0, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (1 << 63, u64::MAX),
            (0, (1 << 63) + 1),
            (u64::MAX, u64::MAX),
        ] {
            for len in [0usize, 1, 63, 64, 65, 128] {
                let proof = vec![h; len];
                let _ = verify_inclusion(index, size, &h, &proof, &h);
            }
        }
        for (s1, s2) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
            for len in [0usize, 1, 63, 64, 65, 128, 129] {
                let proof = vec![h; len];
                let _ = verify_consistency(s1, s2, &h, &h, &proof);
            }
        }
        let mut t = tree(3);
        assert!(t.subtree(200, 0).is_err());
        assert!(t.subtree(0, u64::MAX).is_err());
        assert!(t.subtree(1, 1).is_err());
        assert_eq!(
            t.subtree(1, 0).unwrap(),
            node_hash(&t.leaves()[0], &t.leaves()[1])
        );
    }

    #[test]
    fn compact_range_matches_memory_tree() {
        let mut t = MemoryTree::new();
        let mut c = CompactRange::new();
        assert_eq!(c.root(), empty_root());
        for n in 0..=600u64 {
            assert_eq!(c.size(), n);
            assert_eq!(c.root(), t.root(), "size {n}");
            assert_eq!(c.hashes().len(), n.count_ones() as usize);
            let mut copy = t.clone();
            assert_eq!(CompactRange::from_source(&mut copy, n).unwrap(), c);
            assert_eq!(CompactRange::from_parts(n, c.hashes().to_vec()).unwrap(), c);
            let leaf = leaf_hash(&n.to_le_bytes());
            t.push(leaf);
            c.push(leaf);
        }
        assert!(CompactRange::from_parts(3, vec![[0; 32]]).is_err());
    }

    #[test]
    fn error_messages_show_base64() {
        let e = MerkleError::RootMismatch {
            computed: empty_root(),
            expected: [0; 32],
        };
        assert_eq!(
            e.to_string(),
            "root mismatch: computed 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=, expected AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
        );
    }
}
