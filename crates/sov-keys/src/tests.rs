#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;

use super::*;

const DOMAIN: &[u8] = b"sovereign/test/v1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn fresh() -> (tempfile::TempDir, PathBuf, OwnerKeys) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    assert_eq!(OwnerKeys::init(&dir).unwrap(), InitOutcome::Created);
    let keys = OwnerKeys::load(&dir).unwrap();
    (tmp, dir, keys)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn sign_verify_roundtrip() {
    let (_tmp, dir, keys) = fresh();
    let public = OwnerPublicKeys::load(&dir).unwrap();
    assert_eq!(public, keys.public());
    assert_eq!(public.key_id.len(), 16);
    let sigs = keys.sign(DOMAIN, b"hello").unwrap();
    public.verify(DOMAIN, b"hello", &sigs).unwrap();
    // Deterministic: the same message gives the same signatures.
    assert_eq!(keys.sign(DOMAIN, b"hello").unwrap(), sigs);
}

#[test]
fn wrong_domain_and_other_keys_rejected() {
    let (_tmp, _dir, keys) = fresh();
    let (_tmp2, _dir2, other) = fresh();
    let sigs = keys.sign(DOMAIN, b"msg").unwrap();
    let public = keys.public();
    for domain in [&b"sovereign/test/v2"[..], b"", b"sovereign/test/v1\0"] {
        assert!(matches!(
            public.verify(domain, b"msg", &sigs),
            Err(KeyError::BadSignature)
        ));
    }
    assert!(other.public().verify(DOMAIN, b"msg", &sigs).is_err());
    // Moving a byte between domain and message must not verify.
    assert!(public.verify(b"sovereign/test/", b"v1msg", &sigs).is_err());
    assert!(matches!(
        keys.sign(&[0u8; 256], b"x"),
        Err(KeyError::DomainTooLong { len: 256 })
    ));
}

#[test]
fn modified_message_bytes_rejected() {
    let (_tmp, _dir, keys) = fresh();
    let msg = b"{\"name\":\"model\",\"size\":42}".to_vec();
    let sigs = keys.sign(DOMAIN, &msg).unwrap();
    let public = keys.public();
    for i in 0..msg.len() {
        let mut bad = msg.clone();
        bad[i] ^= 0x01;
        assert!(public.verify(DOMAIN, &bad, &sigs).is_err(), "byte {i}");
    }
    assert!(public.verify(DOMAIN, &msg[..msg.len() - 1], &sigs).is_err());
}

#[test]
fn flipped_signature_bits_rejected() {
    let (_tmp, _dir, keys) = fresh();
    let sigs = keys.sign(DOMAIN, b"m").unwrap();
    let public = keys.public();
    let ed = hex::decode(&sigs.ed25519).unwrap();
    for bit in 0..ed.len() * 8 {
        let mut bad = ed.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let s = Signatures {
            ed25519: hex::encode(bad),
            ml_dsa_65: sigs.ml_dsa_65.clone(),
        };
        assert!(
            public.verify(DOMAIN, b"m", &s).is_err(),
            "ed25519 bit {bit}"
        );
    }
    let ml = B64.decode(&sigs.ml_dsa_65).unwrap();
    // Every bit would be 26k verifications; step through the signature instead.
    for bit in (0..ml.len() * 8).step_by(7) {
        let mut bad = ml.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let s = Signatures {
            ed25519: sigs.ed25519.clone(),
            ml_dsa_65: B64.encode(bad),
        };
        assert!(public.verify(DOMAIN, b"m", &s).is_err(), "ml-dsa bit {bit}");
    }
    let truncated = Signatures {
        ed25519: sigs.ed25519.clone(),
        ml_dsa_65: B64.encode(&ml[..ml.len() - 1]),
    };
    assert!(public.verify(DOMAIN, b"m", &truncated).is_err());
    let garbage = Signatures {
        ed25519: "zz".into(),
        ml_dsa_65: "!".into(),
    };
    assert!(public.verify(DOMAIN, b"m", &garbage).is_err());
}

#[test]
fn init_twice_is_idempotent() {
    let (_tmp, dir, _keys) = fresh();
    let secret = std::fs::read(dir.join(SECRET_FILE)).unwrap();
    let public = std::fs::read(dir.join(PUBLIC_FILE)).unwrap();
    assert_eq!(OwnerKeys::init(&dir).unwrap(), InitOutcome::AlreadyPresent);
    assert_eq!(std::fs::read(dir.join(SECRET_FILE)).unwrap(), secret);
    assert_eq!(std::fs::read(dir.join(PUBLIC_FILE)).unwrap(), public);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "no temp files left"
    );
}

#[test]
fn half_present_is_an_error_and_never_overwrites() {
    let (_tmp, dir, _keys) = fresh();
    let secret = std::fs::read(dir.join(SECRET_FILE)).unwrap();
    std::fs::remove_file(dir.join(PUBLIC_FILE)).unwrap();
    let err = OwnerKeys::init(&dir).unwrap_err();
    assert!(matches!(err, KeyError::HalfPresent { .. }), "{err}");
    assert!(err.to_string().contains(PUBLIC_FILE), "{err}");
    assert_eq!(std::fs::read(dir.join(SECRET_FILE)).unwrap(), secret);
}

#[test]
fn secret_file_modes() {
    let (_tmp, dir, _keys) = fresh();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(SECRET_FILE)), 0o600);
    assert_eq!(mode(&dir.join(PUBLIC_FILE)), 0o644);
}

#[test]
fn load_refuses_readable_secret() {
    let (_tmp, dir, _keys) = fresh();
    let path = dir.join(SECRET_FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = OwnerKeys::load(&dir).unwrap_err();
    assert!(
        matches!(err, KeyError::InsecurePermissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn debug_has_no_secrets() {
    let (_tmp, dir, keys) = fresh();
    let text = std::fs::read_to_string(dir.join(SECRET_FILE)).unwrap();
    let debug = format!("{keys:?}");
    for line in text.lines().skip(1) {
        let seed = line.split(' ').nth(1).unwrap();
        assert!(!debug.contains(seed), "{debug}");
        assert!(!debug.contains(&seed[..16]), "{debug}");
    }
    assert!(debug.contains(&keys.public().key_id));
}

#[test]
fn malformed_secret_rejected() {
    let (_tmp, dir, _keys) = fresh();
    let path = dir.join(SECRET_FILE);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&path, "sovereign-owner-key v1\ned25519-seed 00\n").unwrap();
    assert!(matches!(
        OwnerKeys::load(&dir),
        Err(KeyError::Malformed { .. })
    ));
}
