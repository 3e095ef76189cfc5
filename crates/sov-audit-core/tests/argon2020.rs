//! Real Certificate Transparency proofs from Google's Argon2020 log (`tests/vectors/ct-argon2020`,
//! RFC 6962 JSON responses): the inclusion proof of entry 10000 and the consistency proof from
//! size 3,654,490 to the STH of size 961,984,011 must verify, and must fail after any single-bit
//! change to any proof hash or root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sov_audit_core::hash::{Hash, hash_from_slice, leaf_hash};
use sov_audit_core::merkle::{MerkleError, verify_consistency, verify_inclusion};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const STH_SIZE: u64 = 961_984_011;
const OLD_SIZE: u64 = 3_654_490;
const LEAF_INDEX: u64 = 10_000;

fn dir() -> PathBuf {
    let dir = Path::new(VECTORS).join("ct-argon2020");
    assert!(
        dir.is_dir(),
        "test vectors missing: {} does not exist (they are committed under crates/sov-audit-core/tests/vectors)",
        dir.display()
    );
    dir
}

fn json(name: &str) -> Value {
    let path = dir().join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn b64_hash(v: &Value) -> Hash {
    let s = v.as_str().unwrap();
    hash_from_slice(&STANDARD.decode(s).unwrap()).unwrap_or_else(|| panic!("{s} is not 32 bytes"))
}

fn hash_list(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(b64_hash).collect()
}

fn sth() -> (u64, Hash) {
    let sth = json("azul_get-sth");
    (
        sth["tree_size"].as_u64().unwrap(),
        b64_hash(&sth["sha256_root_hash"]),
    )
}

/// The root of the tree at size 3,654,490, given in the vector's README.
fn old_root() -> Hash {
    let readme = fs::read_to_string(dir().join("README.md")).unwrap();
    let b64 = readme
        .split_whitespace()
        .find(|w| w.len() >= 44 && w.contains('='))
        .map(|w| w.trim_end_matches(['.', ')', ',']))
        .expect("old root in README.md");
    let root = hash_from_slice(&STANDARD.decode(b64).unwrap()).unwrap();
    assert_eq!(b64, "AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=");
    root
}

fn flip(h: &Hash, bit: usize) -> Hash {
    let mut h = *h;
    h[bit / 8] ^= 1 << (bit % 8);
    h
}

#[test]
fn inclusion_of_entry_10000() {
    let (size, root) = sth();
    assert_eq!(size, STH_SIZE);
    let entries = json("azul_get-entries-start-10000-end-10000");
    let leaf_input = STANDARD
        .decode(entries["entries"][0]["leaf_input"].as_str().unwrap())
        .unwrap();
    let leaf = leaf_hash(&leaf_input);
    let proof_json = json(
        "azul_get-proof-by-hash-tree-size-961984011-hash-nCs3mfIydh9x4CKyQ-2Bu2xtmpxmFggA5MLymHwNQSlLg-3D",
    );
    assert_eq!(proof_json["leaf_index"].as_u64(), Some(LEAF_INDEX));
    let proof = hash_list(&proof_json["audit_path"]);
    assert_eq!(proof.len(), 30);

    verify_inclusion(LEAF_INDEX, size, &leaf, &proof, &root).unwrap();

    for i in 0..proof.len() {
        for bit in 0..256 {
            let mut bad = proof.clone();
            bad[i] = flip(&proof[i], bit);
            assert!(
                matches!(
                    verify_inclusion(LEAF_INDEX, size, &leaf, &bad, &root),
                    Err(MerkleError::RootMismatch { .. })
                ),
                "accepted with bit {bit} of proof hash {i} flipped"
            );
        }
    }
    for bit in 0..256 {
        assert!(verify_inclusion(LEAF_INDEX, size, &leaf, &proof, &flip(&root, bit)).is_err());
        assert!(verify_inclusion(LEAF_INDEX, size, &flip(&leaf, bit), &proof, &root).is_err());
    }
    // Wrong index, size or proof length.
    assert!(verify_inclusion(LEAF_INDEX + 1, size, &leaf, &proof, &root).is_err());
    assert!(verify_inclusion(LEAF_INDEX, OLD_SIZE, &leaf, &proof, &root).is_err());
    assert!(verify_inclusion(LEAF_INDEX, size, &leaf, &proof[1..], &root).is_err());
    assert!(verify_inclusion(size, size, &leaf, &proof, &root).is_err());
}

#[test]
fn consistency_from_3654490() {
    let (size, root2) = sth();
    let root1 = old_root();
    let proof =
        hash_list(&json("azul_get-sth-consistency-first-3654490-second-961984011")["consistency"]);
    assert_eq!(proof.len(), 30);

    verify_consistency(OLD_SIZE, size, &root1, &root2, &proof).unwrap();

    for i in 0..proof.len() {
        for bit in 0..256 {
            let mut bad = proof.clone();
            bad[i] = flip(&proof[i], bit);
            assert!(
                verify_consistency(OLD_SIZE, size, &root1, &root2, &bad).is_err(),
                "accepted with bit {bit} of proof hash {i} flipped"
            );
        }
    }
    for bit in 0..256 {
        assert!(verify_consistency(OLD_SIZE, size, &flip(&root1, bit), &root2, &proof).is_err());
        assert!(verify_consistency(OLD_SIZE, size, &root1, &flip(&root2, bit), &proof).is_err());
    }
    assert!(verify_consistency(OLD_SIZE, size, &root2, &root1, &proof).is_err());
    assert!(verify_consistency(size, OLD_SIZE, &root2, &root1, &proof).is_err());
    assert!(verify_consistency(OLD_SIZE, size, &root1, &root2, &proof[1..]).is_err());
    let mut longer = proof.clone();
    longer.push(root1);
    assert!(verify_consistency(OLD_SIZE, size, &root1, &root2, &longer).is_err());
}
