//! Checkpoint signatures: the torchwood ML-DSA-44 subtree/v1 cosignature vector (accepted, and
//! rejected after any single-bit change), and checkpoints signed here with fresh Ed25519 (0x01,
//! 0x04) and ML-DSA-44 (0x06) keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use sov_audit_core::checkpoint::{
    Checkpoint, CheckpointError, MAX_TIMESTAMP, VerifiedBy, ed25519_cosigned_message,
    mldsa_cosigned_message, require_all, verify_checkpoint,
};
use sov_audit_core::note::{
    MAX_SIGNATURES, Note, NoteError, PublicKey, SIG_COSIG_ED25519, SIG_COSIG_MLDSA44, SIG_ED25519,
    Vkey, signature_line,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

const VECTOR: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/checkpoint/torchwood-mldsa44.txt"
));

const ORIGIN: &str = "example.com/mldsa-log";
const ROOT_B64: &str = "+zoErtsZtGO6sfiSV/v4UJSIyowisE8hvjw0q5+bD38=";

fn vector_field(name: &str) -> &'static str {
    VECTOR
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{name} not in the vector file"))
}

fn vector_text() -> String {
    format!("{ORIGIN}\n1\n{ROOT_B64}\n")
}

/// The checkpoint note with the vector's signature bytes (keyID || timestamp || sig) `raw`.
fn vector_note(text: &str, raw: &[u8]) -> Vec<u8> {
    format!("{text}\n\u{2014} {ORIGIN} {}\n", B64.encode(raw)).into_bytes()
}

fn vector_sig() -> Vec<u8> {
    B64.decode(vector_field("SIG")).unwrap()
}

#[test]
fn torchwood_mldsa44_vector_verifies() {
    let vkey = Vkey::parse(vector_field("VKEY")).unwrap();
    assert_eq!(vkey.name, ORIGIN);
    assert_eq!(vkey.key_id, 0xb5df_45c5);
    assert_eq!(vkey.sig_type(), SIG_COSIG_MLDSA44);
    assert_eq!(vkey.encode(), vector_field("VKEY"));
    let raw = vector_sig();
    assert_eq!(raw.len(), 4 + 8 + 2420);
    let note = vector_note(&vector_text(), &raw);
    let v = verify_checkpoint(&note, std::slice::from_ref(&vkey)).unwrap();
    assert_eq!(
        v.checkpoint,
        Checkpoint {
            origin: ORIGIN.into(),
            size: 1,
            root: B64.decode(ROOT_B64).unwrap().try_into().unwrap(),
            extensions: vec![],
        }
    );
    let ts = u64::from_be_bytes(raw[4..12].try_into().unwrap());
    assert_eq!(
        v.verified_by,
        vec![VerifiedBy {
            name: ORIGIN.into(),
            key_id: 0xb5df_45c5,
            sig_type: SIG_COSIG_MLDSA44,
            timestamp: Some(ts),
        }]
    );
    require_all(&v, &[vkey]).unwrap();
    assert_eq!(Note::parse(&note).unwrap().to_bytes(), note);
}

#[test]
fn torchwood_vector_rejected_after_any_signature_bit_flip() {
    let vkey = Vkey::parse(vector_field("VKEY")).unwrap();
    let keys = [vkey];
    let text = vector_text();
    let raw = vector_sig();
    let mut flipped = 0usize;
    for bit in 0..raw.len() * 8 {
        let mut r = raw.clone();
        r[bit / 8] ^= 0x80 >> (bit % 8);
        let err = verify_checkpoint(&vector_note(&text, &r), &keys)
            .expect_err(&format!("accepted with signature bit {bit} flipped"));
        match (bit, &err) {
            // Key ID: the signature is by an unknown key, so there is no known signature.
            (
                0..32,
                CheckpointError::NoKnownSignature {
                    signatures: 1,
                    keys: 1,
                },
            ) => {}
            // The timestamp's top bit makes it exceed 2^63-1.
            (32, CheckpointError::TimestampTooLarge { .. }) => {}
            // Anything else is a failing signature by the known key.
            (
                33..,
                CheckpointError::BadSignature {
                    name,
                    key_id: 0xb5df_45c5,
                    ..
                },
            ) if name == ORIGIN => {}
            _ => panic!("bit {bit}: unexpected error {err}"),
        }
        flipped += 1;
    }
    assert_eq!(flipped, 19_456);
    // Truncated or extended signatures are rejected too.
    for r in [
        &raw[..raw.len() - 1],
        &[raw.as_slice(), &[0]].concat()[..],
        &raw[..12],
    ] {
        let err = verify_checkpoint(&vector_note(&text, r), &keys).unwrap_err();
        assert!(matches!(err, CheckpointError::BadSignature { .. }), "{err}");
    }
}

#[test]
fn torchwood_vector_rejected_after_public_key_bit_flips() {
    let vkey_str = vector_field("VKEY");
    let vkey = Vkey::parse(vkey_str).unwrap();
    // The base64 key may itself contain '+': split at the first two.
    let parts: Vec<&str> = vkey_str.splitn(3, '+').collect();
    let (prefix, key_b64) = (format!("{}+{}", parts[0], parts[1]), parts[2]);
    let key_raw = B64.decode(key_b64).unwrap();
    assert_eq!(key_raw.len(), 1 + 1312);
    let note = vector_note(&vector_text(), &vector_sig());
    let mut checked = 0usize;
    // Every bit of type byte and key, as a vkey: the recomputed key ID no longer matches.
    for bit in 0..key_raw.len() * 8 {
        let mut k = key_raw.clone();
        k[bit / 8] ^= 0x80 >> (bit % 8);
        let s = format!("{prefix}+{}", B64.encode(&k));
        assert!(
            Vkey::parse(&s).is_err(),
            "vkey accepted with bit {bit} flipped"
        );
    }
    // Every 3rd bit of the ML-DSA-44 key, forcing the original name and key ID so the
    // signature really is checked against the changed key.
    for bit in (0..1312 * 8).step_by(3) {
        let mut k = key_raw[1..].to_vec();
        k[bit / 8] ^= 0x80 >> (bit % 8);
        let enc = ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa44>::try_from(k.as_slice()).unwrap();
        let forged = Vkey {
            name: vkey.name.clone(),
            key_id: vkey.key_id,
            key: PublicKey::MlDsa44(Box::new(ml_dsa::VerifyingKey::decode(&enc))),
        };
        let err = verify_checkpoint(&note, &[forged])
            .expect_err(&format!("accepted under a key with bit {bit} flipped"));
        assert!(
            matches!(err, CheckpointError::BadSignature { .. }),
            "bit {bit}: {err}"
        );
        checked += 1;
    }
    assert!(checked >= 1312 * 8 / 7);
}

#[test]
fn torchwood_vector_rejected_after_message_changes() {
    let keys = [Vkey::parse(vector_field("VKEY")).unwrap()];
    let raw = vector_sig();
    let root = B64.decode(ROOT_B64).unwrap();
    for bit in 0..256 {
        let mut r = root.clone();
        r[bit / 8] ^= 0x80 >> (bit % 8);
        let text = format!("{ORIGIN}\n1\n{}\n", B64.encode(&r));
        let err = verify_checkpoint(&vector_note(&text, &raw), &keys)
            .expect_err(&format!("accepted with root bit {bit} flipped"));
        assert!(matches!(err, CheckpointError::BadSignature { .. }), "{err}");
    }
    for size in ["0", "2", "3", "256", "18446744073709551615"] {
        let text = format!("{ORIGIN}\n{size}\n{ROOT_B64}\n");
        let err = verify_checkpoint(&vector_note(&text, &raw), &keys).unwrap_err();
        assert!(
            matches!(err, CheckpointError::BadSignature { .. }),
            "size {size}: {err}"
        );
    }
    // Malformed sizes never reach the signature check.
    for size in ["01", "1 ", "+1", "0x1"] {
        let text = format!("{ORIGIN}\n{size}\n{ROOT_B64}\n");
        let err = verify_checkpoint(&vector_note(&text, &raw), &keys).unwrap_err();
        assert!(
            matches!(err, CheckpointError::Text { line: 2, .. }),
            "size {size:?}: {err}"
        );
    }
    // Another origin, with the signature still under the key's name.
    for origin in [
        "example.com/mldsa-loh",
        "example.com/mldsa-log2",
        "xample.com/mldsa-log",
    ] {
        let text = format!("{origin}\n1\n{ROOT_B64}\n");
        let err = verify_checkpoint(&vector_note(&text, &raw), &keys).unwrap_err();
        assert!(
            matches!(err, CheckpointError::BadSignature { .. }),
            "origin {origin}: {err}"
        );
    }
    // The ML-DSA-44 message commits to the cosigner name too: the same key under another
    // name (with its matching key ID) does not verify.
    let PublicKey::MlDsa44(k) = &keys[0].key else {
        panic!()
    };
    let renamed = Vkey::from_mldsa44("example.com/other", (**k).clone());
    let mut r = raw.clone();
    r[..4].copy_from_slice(&renamed.key_id.to_be_bytes());
    let note = format!(
        "{}\n\u{2014} example.com/other {}\n",
        vector_text(),
        B64.encode(&r)
    );
    let err = verify_checkpoint(note.as_bytes(), &[renamed]).unwrap_err();
    assert!(matches!(err, CheckpointError::BadSignature { .. }), "{err}");
}

#[test]
fn mldsa44_does_not_cover_extension_lines() {
    // Per c2sp.org/tlog-cosignature the ML-DSA-44 message has no extension lines, so adding one
    // keeps the signature valid: callers must not trust extension lines on ML-DSA alone.
    let keys = [Vkey::parse(vector_field("VKEY")).unwrap()];
    let text = format!("{}extension\n", vector_text());
    let v = verify_checkpoint(&vector_note(&text, &vector_sig()), &keys).unwrap();
    assert_eq!(v.checkpoint.extensions, vec!["extension"]);
}

// ---- checkpoints signed here -------------------------------------------------------------

struct Signers {
    log: ed25519_dalek::SigningKey,
    log_vkey: Vkey,
    cosig: ed25519_dalek::SigningKey,
    cosig_vkey: Vkey,
    mldsa: ml_dsa::ExpandedSigningKey<ml_dsa::MlDsa44>,
    mldsa_vkey: Vkey,
}

fn signers() -> Signers {
    let log = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let log_vkey = Vkey::from_ed25519("example.com/log", log.verifying_key());
    let cosig = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let cosig_vkey = Vkey::from_cosig_ed25519("witness.example/ed", cosig.verifying_key());
    let mldsa =
        ml_dsa::ExpandedSigningKey::<ml_dsa::MlDsa44>::from_seed(&ml_dsa::Seed::from([3; 32]));
    let mldsa_vkey = Vkey::from_mldsa44("witness.example/pq", mldsa.verifying_key());
    Signers {
        log,
        log_vkey,
        cosig,
        cosig_vkey,
        mldsa,
        mldsa_vkey,
    }
}

fn ed25519_line(s: &Signers, text: &str) -> String {
    let sig = s.log.sign(text.as_bytes()).to_bytes();
    signature_line(&s.log_vkey.name, s.log_vkey.key_id, &sig)
}

fn cosig_line(s: &Signers, ts: u64, text: &str) -> String {
    let mut sig = ts.to_be_bytes().to_vec();
    sig.extend_from_slice(&s.cosig.sign(&ed25519_cosigned_message(ts, text)).to_bytes());
    signature_line(&s.cosig_vkey.name, s.cosig_vkey.key_id, &sig)
}

fn mldsa_line(s: &Signers, ts: u64, cp: &Checkpoint) -> String {
    let msg =
        mldsa_cosigned_message(&s.mldsa_vkey.name, ts, &cp.origin, 0, cp.size, &cp.root).unwrap();
    let sig = s.mldsa.sign_deterministic(&msg, &[]).unwrap();
    let mut raw = ts.to_be_bytes().to_vec();
    raw.extend_from_slice(&sig.encode());
    assert_eq!(raw.len(), 8 + 2420);
    signature_line(&s.mldsa_vkey.name, s.mldsa_vkey.key_id, &raw)
}

fn test_checkpoint() -> Checkpoint {
    Checkpoint {
        origin: "example.com/log".into(),
        size: 1234,
        root: [0x42; 32],
        extensions: vec![],
    }
}

fn all_keys(s: &Signers) -> Vec<Vkey> {
    vec![
        s.log_vkey.clone(),
        s.cosig_vkey.clone(),
        s.mldsa_vkey.clone(),
    ]
}

#[test]
fn fresh_keys_sign_and_verify() {
    let s = signers();
    let cp = test_checkpoint();
    let text = cp.to_text();
    let (l1, l4, l6) = (
        ed25519_line(&s, &text),
        cosig_line(&s, 1_700_000_000, &text),
        mldsa_line(&s, 1_700_000_001, &cp),
    );
    let note = format!("{text}\n{l1}{l4}{l6}");
    let keys = all_keys(&s);
    let v = verify_checkpoint(note.as_bytes(), &keys).unwrap();
    assert_eq!(v.checkpoint, cp);
    assert_eq!(
        v.verified_by,
        vec![
            VerifiedBy {
                name: "example.com/log".into(),
                key_id: s.log_vkey.key_id,
                sig_type: SIG_ED25519,
                timestamp: None
            },
            VerifiedBy {
                name: "witness.example/ed".into(),
                key_id: s.cosig_vkey.key_id,
                sig_type: SIG_COSIG_ED25519,
                timestamp: Some(1_700_000_000)
            },
            VerifiedBy {
                name: "witness.example/pq".into(),
                key_id: s.mldsa_vkey.key_id,
                sig_type: SIG_COSIG_MLDSA44,
                timestamp: Some(1_700_000_001)
            },
        ]
    );
    require_all(&v, &keys).unwrap();
    // Vkeys survive encoding.
    for k in &keys {
        assert_eq!(&Vkey::parse(&k.encode()).unwrap(), k);
    }
    // Each key alone verifies its own signature, ignoring the others' as unknown.
    for k in &keys {
        let v = verify_checkpoint(note.as_bytes(), std::slice::from_ref(k)).unwrap();
        assert_eq!(v.verified_by.len(), 1);
        require_all(&v, std::slice::from_ref(k)).unwrap();
    }
    // Timestamp 0 and 2^63-1 are allowed.
    for ts in [0, MAX_TIMESTAMP] {
        let note = format!(
            "{text}\n{}{}",
            cosig_line(&s, ts, &text),
            mldsa_line(&s, ts, &cp)
        );
        verify_checkpoint(note.as_bytes(), &keys[1..]).unwrap();
    }
    // The Ed25519 signatures cover extension lines.
    let mut ext = cp.clone();
    ext.extensions.push("ext".into());
    let bad = format!("{}\n{l1}", ext.to_text());
    assert!(matches!(
        verify_checkpoint(bad.as_bytes(), &keys[..1]),
        Err(CheckpointError::BadSignature { .. })
    ));
    let bad = format!("{}\n{l4}", ext.to_text());
    assert!(matches!(
        verify_checkpoint(bad.as_bytes(), &keys[1..2]),
        Err(CheckpointError::BadSignature { .. })
    ));
}

#[test]
fn require_all_fails_when_a_required_signature_is_stripped() {
    let s = signers();
    let cp = test_checkpoint();
    let text = cp.to_text();
    let lines = [
        ed25519_line(&s, &text),
        cosig_line(&s, 5, &text),
        mldsa_line(&s, 6, &cp),
    ];
    let keys = all_keys(&s);
    for strip in 0..3 {
        let note = format!(
            "{text}\n{}",
            lines
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != strip)
                .map(|(_, l)| l.as_str())
                .collect::<String>()
        );
        let v = verify_checkpoint(note.as_bytes(), &keys).unwrap();
        assert_eq!(v.verified_by.len(), 2);
        let err = require_all(&v, &keys).unwrap_err();
        assert_eq!(
            err,
            CheckpointError::MissingRequired {
                name: keys[strip].name.clone(),
                key_id: keys[strip].key_id,
                sig_type: keys[strip].sig_type(),
            }
        );
        assert!(err.to_string().contains(&keys[strip].name), "{err}");
        // The keys that did sign are enough on their own.
        let rest: Vec<Vkey> = keys
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != strip)
            .map(|(_, k)| k.clone())
            .collect();
        require_all(&v, &rest).unwrap();
    }
}

#[test]
fn known_key_failure_rejects_whole_note_and_unknown_keys_are_ignored() {
    let s = signers();
    let cp = test_checkpoint();
    let text = cp.to_text();
    let good = ed25519_line(&s, &text);
    let keys = all_keys(&s);
    let id = s.cosig_vkey.key_id;
    let unknown = [
        // Unknown name and ID.
        signature_line("other.example/w", 1, &[0; 72]),
        // A known name with another ID, and a known ID with another name.
        signature_line(&s.cosig_vkey.name, id ^ 1, &[0; 72]),
        signature_line("other.example/w", id, &[0; 72]),
    ];
    for u in &unknown {
        for note in [format!("{text}\n{u}{good}"), format!("{text}\n{good}{u}")] {
            let v = verify_checkpoint(note.as_bytes(), &keys).unwrap();
            assert_eq!(v.verified_by.len(), 1);
        }
        // Only unknown signatures: rejected.
        let note = format!("{text}\n{u}");
        assert_eq!(
            verify_checkpoint(note.as_bytes(), &keys),
            Err(CheckpointError::NoKnownSignature {
                signatures: 1,
                keys: 3
            })
        );
    }
    // 15 unknown signatures and one good one: at least 16 must be accepted.
    let many: String = (0..15)
        .map(|i| signature_line(&format!("w{i}"), i, &[0; 72]))
        .collect();
    verify_checkpoint(format!("{text}\n{many}{good}").as_bytes(), &keys).unwrap();
    // Too many signatures: the note is malformed.
    let many: String = (0..MAX_SIGNATURES as u32)
        .map(|i| signature_line(&format!("w{i}"), i, &[0; 72]))
        .collect();
    assert!(matches!(
        verify_checkpoint(format!("{text}\n{many}{good}").as_bytes(), &keys),
        Err(CheckpointError::Note(NoteError::TooManySignatures { .. }))
    ));
    // A bad signature by a known key, before or after a good one, rejects the note, naming the key.
    // A cosignature made for time 7, presented with time 8.
    let mut raw = 8u64.to_be_bytes().to_vec();
    raw.extend_from_slice(&s.cosig.sign(&ed25519_cosigned_message(7, &text)).to_bytes());
    let bad_lines = [
        // Right length, wrong timestamp.
        signature_line(&s.cosig_vkey.name, id, &raw),
        // Wrong lengths.
        signature_line(&s.cosig_vkey.name, id, &[0; 71]),
        signature_line(&s.cosig_vkey.name, id, &[0; 64]),
        signature_line(&s.log_vkey.name, s.log_vkey.key_id, &[0; 72]),
        signature_line(&s.mldsa_vkey.name, s.mldsa_vkey.key_id, &[0; 2427]),
        // Right length, all zero.
        signature_line(&s.log_vkey.name, s.log_vkey.key_id, &[0; 64]),
        signature_line(&s.mldsa_vkey.name, s.mldsa_vkey.key_id, &[0; 2428]),
        // A valid signature over another text.
        ed25519_line(
            &s,
            "example.com/log\n1235\nQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=\n",
        ),
    ];
    for b in &bad_lines {
        for note in [format!("{text}\n{b}{good}"), format!("{text}\n{good}{b}")] {
            let err = verify_checkpoint(note.as_bytes(), &keys).unwrap_err();
            match &err {
                CheckpointError::BadSignature { name, .. } => {
                    assert!(err.to_string().contains(name.as_str()))
                }
                other => panic!("{b}: {other}"),
            }
        }
    }
    // A signature repeated by the same key: both copies are checked, the key is listed once.
    let note = format!("{text}\n{good}{good}");
    assert_eq!(
        verify_checkpoint(note.as_bytes(), &keys)
            .unwrap()
            .verified_by
            .len(),
        1
    );
}

#[test]
fn timestamps_above_2_63_are_rejected_even_when_signed() {
    let s = signers();
    let text = test_checkpoint().to_text();
    for ts in [MAX_TIMESTAMP + 1, u64::MAX] {
        let note = format!("{text}\n{}", cosig_line(&s, ts, &text));
        assert_eq!(
            verify_checkpoint(note.as_bytes(), &all_keys(&s)),
            Err(CheckpointError::TimestampTooLarge {
                name: s.cosig_vkey.name.clone(),
                key_id: s.cosig_vkey.key_id,
                timestamp: ts
            })
        );
    }
}

#[test]
fn ambiguous_keys_and_malformed_checkpoints() {
    let s = signers();
    let cp = test_checkpoint();
    let text = cp.to_text();
    let note = format!("{text}\n{}", ed25519_line(&s, &text));
    // The same key twice is fine; two different keys under one (name, ID) are an error.
    verify_checkpoint(note.as_bytes(), &[s.log_vkey.clone(), s.log_vkey.clone()]).unwrap();
    let other = Vkey {
        key: PublicKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[4; 32]).verifying_key()),
        ..s.log_vkey.clone()
    };
    assert!(matches!(
        verify_checkpoint(note.as_bytes(), &[s.log_vkey.clone(), other]),
        Err(CheckpointError::AmbiguousKey { .. })
    ));
    // Signed text that is not a checkpoint is rejected, with the line named.
    for (t, line) in [
        ("example.com/log\n1234\n", 3),
        ("example.com/log\n01234\nQkJC\n", 2),
    ] {
        let note = format!("{t}\n{}", ed25519_line(&s, t));
        match verify_checkpoint(note.as_bytes(), &all_keys(&s)) {
            Err(CheckpointError::Text { line: l, .. }) => assert_eq!(l, line, "{t:?}"),
            other => panic!("{t:?}: {other:?}"),
        }
    }
    // No keys at all.
    assert_eq!(
        verify_checkpoint(note.as_bytes(), &[]),
        Err(CheckpointError::NoKnownSignature {
            signatures: 1,
            keys: 0
        })
    );
}
