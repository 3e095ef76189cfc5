//! `c2sp.org/tlog-proof@v1` receipts: built from a real tree and signed checkpoint, round-tripped
//! byte-exactly, verified, and rejected after tampering with any part.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use sov_audit_core::checkpoint::{Checkpoint, CheckpointError, mldsa_cosigned_message};
use sov_audit_core::hash::{Hash, leaf_hash};
use sov_audit_core::merkle::{MemoryTree, MerkleError, inclusion_proof};
use sov_audit_core::note::{PublicKey, Vkey, signature_line};
use sov_audit_core::receipt::{MAX_PROOF_HASHES, ReceiptError, TlogProof};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const SIZE: u64 = 300;
const INDEXES: [u64; 10] = [0, 1, 2, 127, 128, 255, 256, 257, 298, 299];

struct Log {
    tree: MemoryTree,
    entries: Vec<Vec<u8>>,
    checkpoint: Vec<u8>,
    keys: Vec<Vkey>,
}

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i}: some audit record bytes").into_bytes()
}

/// A 300-leaf log whose checkpoint is signed by an Ed25519 log key and an ML-DSA-44 witness.
fn log() -> Log {
    let mut tree = MemoryTree::new();
    let mut entries = Vec::new();
    for i in 0..SIZE {
        let e = entry(i);
        tree.push(leaf_hash(&e));
        entries.push(e);
    }
    let cp = Checkpoint {
        origin: "example.com/audit".into(),
        size: SIZE,
        root: tree.root(),
        extensions: vec![],
    };
    let text = cp.to_text();
    let log_key = ed25519_dalek::SigningKey::from_bytes(&[11; 32]);
    let log_vkey = Vkey::from_ed25519("example.com/audit", log_key.verifying_key());
    let w = ml_dsa::ExpandedSigningKey::<ml_dsa::MlDsa44>::from_seed(&ml_dsa::Seed::from([12; 32]));
    let w_vkey = Vkey::from_mldsa44("witness.example/w", w.verifying_key());
    let ts = 1_750_000_000u64;
    let msg = mldsa_cosigned_message(&w_vkey.name, ts, &cp.origin, 0, cp.size, &cp.root).unwrap();
    let mut w_sig = ts.to_be_bytes().to_vec();
    w_sig.extend_from_slice(&w.sign_deterministic(&msg, &[]).unwrap().encode());
    let checkpoint = format!(
        "{text}\n{}{}",
        signature_line(
            &log_vkey.name,
            log_vkey.key_id,
            &log_key.sign(text.as_bytes()).to_bytes()
        ),
        signature_line(&w_vkey.name, w_vkey.key_id, &w_sig),
    )
    .into_bytes();
    Log {
        tree,
        entries,
        checkpoint,
        keys: vec![log_vkey, w_vkey],
    }
}

fn proof_for(log: &mut Log, index: u64, with_extra: bool) -> TlogProof {
    TlogProof {
        extra: with_extra.then(|| log.entries[index as usize].clone()),
        index,
        proof: inclusion_proof(&mut log.tree, index, SIZE).unwrap(),
        checkpoint: log.checkpoint.clone(),
    }
}

fn leaf(log: &Log, index: u64) -> Hash {
    leaf_hash(&log.entries[index as usize])
}

#[test]
fn proofs_round_trip_and_verify() {
    let mut log = log();
    for index in INDEXES {
        for with_extra in [false, true] {
            let p = proof_for(&mut log, index, with_extra);
            let bytes = p.to_bytes();
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(text.starts_with("c2sp.org/tlog-proof@v1\n"));
            assert_eq!(text.contains("\nextra "), with_extra);
            assert!(text.contains(&format!("\nindex {index}\n")));
            let parsed = TlogProof::parse(&bytes).unwrap();
            assert_eq!(parsed, p);
            assert_eq!(parsed.to_bytes(), bytes);
            assert!(bytes.ends_with(&log.checkpoint));
            let v = parsed.verify(&leaf(&log, index), &log.keys).unwrap();
            assert_eq!(v.checkpoint.size, SIZE);
            assert_eq!(v.checkpoint.root, log.tree.root());
            assert_eq!(v.verified_by.len(), 2);
            // Sovereign's use: the leaf is recomputed from the extra data.
            if let Some(extra) = &parsed.extra {
                parsed.verify(&leaf_hash(extra), &log.keys).unwrap();
            }
        }
    }
}

#[test]
fn single_leaf_tree_has_an_empty_proof() {
    let mut tree = MemoryTree::new();
    tree.push(leaf_hash(b"only"));
    let cp = Checkpoint {
        origin: "o".into(),
        size: 1,
        root: tree.root(),
        extensions: vec![],
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let vkey = Vkey::from_ed25519("o", key.verifying_key());
    let text = cp.to_text();
    let note = format!(
        "{text}\n{}",
        signature_line("o", vkey.key_id, &key.sign(text.as_bytes()).to_bytes())
    );
    let p = TlogProof {
        extra: Some(vec![]),
        index: 0,
        proof: vec![],
        checkpoint: note.into_bytes(),
    };
    let bytes = p.to_bytes();
    assert!(bytes.starts_with(b"c2sp.org/tlog-proof@v1\nextra \nindex 0\n\no\n1\n"));
    assert_eq!(TlogProof::parse(&bytes).unwrap(), p);
    p.verify(&leaf_hash(b"only"), std::slice::from_ref(&vkey))
        .unwrap();
    assert!(p.verify(&leaf_hash(b"other"), &[vkey]).is_err());
}

#[test]
fn flipped_proof_hash_bits_are_rejected() {
    let mut log = log();
    for index in [0, 128, 257, 299] {
        let p = proof_for(&mut log, index, false);
        let l = leaf(&log, index);
        assert!(!p.proof.is_empty());
        for h in 0..p.proof.len() {
            for bit in 0..256 {
                let mut q = p.clone();
                q.proof[h][bit / 8] ^= 0x80 >> (bit % 8);
                // Through the encoding, as a verifier would see it.
                let q = TlogProof::parse(&q.to_bytes()).unwrap();
                match q.verify(&l, &log.keys) {
                    Err(ReceiptError::Inclusion(MerkleError::RootMismatch { .. })) => {}
                    other => panic!("index {index}, hash {h}, bit {bit}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn wrong_index_leaf_and_proof_length_are_rejected() {
    let mut log = log();
    for index in INDEXES {
        let p = proof_for(&mut log, index, true);
        let l = leaf(&log, index);
        // Another index with the same proof.
        for other in [
            index ^ 1,
            index.wrapping_add(2) % SIZE,
            (index + 150) % SIZE,
        ] {
            if other == index {
                continue;
            }
            let q = TlogProof {
                index: other,
                ..p.clone()
            };
            assert!(
                matches!(q.verify(&l, &log.keys), Err(ReceiptError::Inclusion(_))),
                "index {index} as {other}"
            );
        }
        // Indexes outside the tree.
        for other in [SIZE, SIZE + 1, u64::MAX] {
            let q = TlogProof {
                index: other,
                ..p.clone()
            };
            assert_eq!(
                q.verify(&l, &log.keys).unwrap_err(),
                ReceiptError::IndexOutOfRange {
                    index: other,
                    size: SIZE
                }
            );
        }
        // Another leaf.
        let wrong = leaf(&log, (index + 1) % SIZE);
        assert!(matches!(
            p.verify(&wrong, &log.keys),
            Err(ReceiptError::Inclusion(MerkleError::RootMismatch { .. }))
        ));
        // Truncated proof, extra hash, empty proof.
        let mut q = p.clone();
        q.proof.pop();
        assert!(matches!(
            q.verify(&l, &log.keys),
            Err(ReceiptError::Inclusion(
                MerkleError::WrongProofLength { .. }
            ))
        ));
        let mut q = p.clone();
        q.proof.push([0; 32]);
        assert!(matches!(
            q.verify(&l, &log.keys),
            Err(ReceiptError::Inclusion(
                MerkleError::WrongProofLength { .. }
            ))
        ));
        let mut q = p.clone();
        q.proof.insert(0, p.proof[0]);
        assert!(q.verify(&l, &log.keys).is_err());
        let q = TlogProof {
            proof: vec![],
            ..p.clone()
        };
        assert!(q.verify(&l, &log.keys).is_err());
        // Swapped hashes.
        let mut q = p.clone();
        q.proof.swap(0, 1);
        assert!(q.verify(&l, &log.keys).is_err());
    }
}

#[test]
fn tampered_checkpoint_and_wrong_keys_are_rejected() {
    let mut log = log();
    let p = proof_for(&mut log, 42, false);
    let l = leaf(&log, 42);
    p.verify(&l, &log.keys).unwrap();
    let cp_text = std::str::from_utf8(&log.checkpoint).unwrap();
    // Changed size or root in the checkpoint text (signatures kept).
    let other_root = B64.encode([7u8; 32]);
    let root_b64 = B64.encode(log.tree.root());
    for tampered in [
        cp_text.replacen("\n300\n", "\n301\n", 1),
        cp_text.replacen("\n300\n", "\n299\n", 1),
        cp_text.replacen(&root_b64, &other_root, 1),
        cp_text.replacen("example.com/audit\n", "example.com/audiT\n", 1),
    ] {
        assert_ne!(tampered, cp_text);
        let q = TlogProof {
            checkpoint: tampered.into_bytes(),
            ..p.clone()
        };
        match q.verify(&l, &log.keys) {
            Err(ReceiptError::Checkpoint(CheckpointError::BadSignature { .. })) => {}
            other => panic!("{other:?}"),
        }
    }
    // A flipped bit in each signature.
    for sig_line in cp_text.lines().filter(|l| l.starts_with('\u{2014}')) {
        let (head, b64) = sig_line.rsplit_once(' ').unwrap();
        let mut raw = B64.decode(b64).unwrap();
        let i = raw.len() - 3;
        raw[i] ^= 0x10;
        let tampered = cp_text.replacen(sig_line, &format!("{head} {}", B64.encode(&raw)), 1);
        let q = TlogProof {
            checkpoint: tampered.into_bytes(),
            ..p.clone()
        };
        assert!(matches!(
            q.verify(&l, &log.keys),
            Err(ReceiptError::Checkpoint(
                CheckpointError::BadSignature { .. }
            ))
        ));
    }
    // A stripped witness signature: every given key is required.
    let stripped: String = cp_text
        .lines()
        .filter(|l| !l.contains("witness.example/w"))
        .map(|l| format!("{l}\n"))
        .collect();
    let q = TlogProof {
        checkpoint: stripped.into_bytes(),
        ..p.clone()
    };
    q.verify(&l, &log.keys[..1]).unwrap();
    assert!(matches!(
        q.verify(&l, &log.keys),
        Err(ReceiptError::Checkpoint(
            CheckpointError::MissingRequired { .. }
        ))
    ));
    // Wrong keys: another key (so another ID) under the log's name is unknown.
    let other = ed25519_dalek::SigningKey::from_bytes(&[99; 32]).verifying_key();
    let wrong = Vkey::from_ed25519("example.com/audit", other);
    assert!(matches!(
        p.verify(&l, std::slice::from_ref(&wrong)),
        Err(ReceiptError::Checkpoint(
            CheckpointError::NoKnownSignature { .. }
        ))
    ));
    // ... and required, next to the right ones.
    assert!(matches!(
        p.verify(&l, &[log.keys[0].clone(), log.keys[1].clone(), wrong]),
        Err(ReceiptError::Checkpoint(
            CheckpointError::MissingRequired { .. }
        ))
    ));
    // Another key forced under the log's name and ID fails verification outright.
    let forged = Vkey {
        key: PublicKey::Ed25519(other),
        ..log.keys[0].clone()
    };
    assert!(matches!(
        p.verify(&l, &[forged]),
        Err(ReceiptError::Checkpoint(
            CheckpointError::BadSignature { .. }
        ))
    ));
    assert!(matches!(
        p.verify(&l, &[]),
        Err(ReceiptError::Checkpoint(
            CheckpointError::NoKnownSignature { .. }
        ))
    ));
}

#[test]
fn spec_example_header_lines_parse_and_round_trip() {
    // The header, extra, index and proof lines of the example in tlog-proof.md, with a
    // checkpoint of our own (the spec's has elided signatures).
    let log = log();
    let head = "c2sp.org/tlog-proof@v1\n\
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n\
index 73894\n\
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n\
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n\
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n\
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n\
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n\n";
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(&log.checkpoint);
    let p = TlogProof::parse(&bytes).unwrap();
    assert_eq!(p.index, 73_894);
    assert_eq!(p.proof.len(), 5);
    assert_eq!(
        p.extra.as_deref(),
        Some(
            &B64.decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
                .unwrap()[..]
        )
    );
    assert_eq!(p.to_bytes(), bytes);
    // Index 73894 is beyond our 300-leaf checkpoint.
    assert_eq!(
        p.verify(&[0; 32], &log.keys).unwrap_err(),
        ReceiptError::IndexOutOfRange {
            index: 73_894,
            size: SIZE
        }
    );
}

#[test]
fn malformed_proofs_are_rejected_naming_the_line() {
    let mut log = log();
    let p = proof_for(&mut log, 5, true);
    let good = String::from_utf8(p.to_bytes()).unwrap();
    let cp = std::str::from_utf8(&log.checkpoint).unwrap();
    let h = B64.encode(p.proof[0]);
    let e = B64.encode(p.extra.clone().unwrap());
    let cases: Vec<(String, Option<usize>)> = vec![
        (
            good.replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
            Some(1),
        ),
        (good.replacen("c2sp.org/tlog-proof@v1\n", "", 1), Some(1)),
        (good.replacen("index 5\n", "index 05\n", 1), Some(3)),
        (good.replacen("index 5\n", "index -5\n", 1), Some(3)),
        (good.replacen("index 5\n", "index +5\n", 1), Some(3)),
        (good.replacen("index 5\n", "index  5\n", 1), Some(3)),
        (good.replacen("index 5\n", "index 5 \n", 1), Some(3)),
        (good.replacen("index 5\n", "index\n", 1), Some(3)),
        (
            good.replacen("index 5\n", "index 18446744073709551616\n", 1),
            Some(3),
        ),
        (good.replacen("index 5\n", "Index 5\n", 1), Some(3)),
        (good.replacen("index 5\n", "", 1), Some(3)),
        (
            good.replacen(&format!("extra {e}\n"), &format!("extra {e}=\n"), 1),
            Some(2),
        ),
        (
            good.replacen(&format!("extra {e}\n"), &format!("extra={e}\n"), 1),
            Some(2),
        ),
        (
            good.replacen(&format!("extra {e}\n"), &format!("extra  {e}\n"), 1),
            Some(2),
        ),
        // Extra after index.
        (
            good.replacen(
                &format!("extra {e}\nindex 5\n"),
                &format!("index 5\nextra {e}\n"),
                1,
            ),
            Some(3),
        ),
        // A hash of 31 bytes, of 33 bytes, non-canonical, with a space.
        (good.replacen(&h, &B64.encode([1u8; 31]), 1), Some(4)),
        (good.replacen(&h, &B64.encode([1u8; 33]), 1), Some(4)),
        (good.replacen(&h, &h.replace('=', ""), 1), Some(4)),
        (good.replacen(&h, &format!(" {h}"), 1), Some(4)),
        // CRLF line endings.
        (good.replace('\n', "\r\n"), Some(1)),
        (good.replacen("index 5\n", "index 5\r\n", 1), Some(3)),
        // No empty line before the checkpoint: the checkpoint's lines are not hashes.
        (
            good.replacen(
                &format!("\n\n{}", cp.lines().next().unwrap()),
                &format!("\n{}", cp.lines().next().unwrap()),
                1,
            ),
            None,
        ),
        // The checkpoint is missing, is not a note, or is not a checkpoint.
        (good.replacen(cp, "", 1), None),
        (good.replacen(cp, "hello\n", 1), None),
        (
            good.replacen(cp, &cp.replacen("\n300\n", "\n0300\n", 1), 1),
            None,
        ),
        (good.replacen(cp, &cp.replacen("\n\n", "\n", 1), 1), None),
        // Truncated anywhere in the header.
        ("c2sp.org/tlog-proof@v1".into(), Some(1)),
        ("c2sp.org/tlog-proof@v1\n".into(), Some(2)),
        (format!("c2sp.org/tlog-proof@v1\nindex 5\n{h}"), Some(3)),
        (format!("c2sp.org/tlog-proof@v1\nindex 5\n{h}\n"), Some(4)),
        (String::new(), Some(1)),
    ];
    for (bad, line) in &cases {
        let r = TlogProof::parse(bad.as_bytes());
        match (r, line) {
            (Err(ReceiptError::Parse { line: l, .. }), Some(want)) => {
                assert_eq!(l, *want, "{bad:?}")
            }
            (Err(ReceiptError::Checkpoint(_) | ReceiptError::Parse { .. }), None) => {}
            (other, _) => panic!("{bad:?}: {other:?}"),
        }
    }
    // At most MAX_PROOF_HASHES hashes.
    let mut q = p.clone();
    q.proof = vec![[3; 32]; MAX_PROOF_HASHES];
    assert_eq!(TlogProof::parse(&q.to_bytes()).unwrap(), q);
    q.proof.push([3; 32]);
    assert!(
        matches!(TlogProof::parse(&q.to_bytes()), Err(ReceiptError::Parse { line, .. }) if line == 4 + MAX_PROOF_HASHES)
    );
    // Invalid UTF-8 in a header line.
    let mut bad = good.clone().into_bytes();
    bad[25] = 0xff;
    assert!(matches!(
        TlogProof::parse(&bad),
        Err(ReceiptError::Parse { line: 2, .. })
    ));
}

/// A tiny deterministic PRNG for mutation tests.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_proofs_never_panic_and_never_verify() {
    let mut log = log();
    let p = proof_for(&mut log, 77, true);
    let l = leaf(&log, 77);
    let good = p.to_bytes();
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let mut accepted = 0;
    for _ in 0..3000 {
        let mut b = good.clone();
        match rng.below(3) {
            0 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => b.truncate(rng.below(b.len())),
            _ => {
                let i = rng.below(b.len() + 1);
                b.insert(i, [b'\n', b' ', b'=', b'A'][rng.below(4)]);
            }
        }
        if let Ok(q) = TlogProof::parse(&b) {
            assert_eq!(q.to_bytes(), b);
            if q.verify(&l, &log.keys).is_ok() {
                // Only a change to the unauthenticated extra data can leave a valid proof.
                assert_eq!(
                    TlogProof {
                        extra: p.extra.clone(),
                        ..q.clone()
                    },
                    p,
                    "{}",
                    String::from_utf8_lossy(&b)
                );
                accepted += 1;
            }
        }
    }
    assert!(accepted < 3000);
}
