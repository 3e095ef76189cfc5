use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sov_keys::OwnerKeys;

use super::builder::tiny_model;
use crate::{ImportOutcome, ModelStore, StoreError};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: ModelStore,
    keys: OwnerKeys,
    src: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let keys_dir = tmp.path().join("keys");
    OwnerKeys::init(&keys_dir).unwrap();
    let keys = OwnerKeys::load(&keys_dir).unwrap();
    let dir = tmp.path().join("models");
    // Small chunks so that a few KiB span several of them.
    let store = ModelStore::open(&dir).unwrap().with_chunk_size(1024);
    let src = tmp.path().join("Tiny-Model.Q8_0.gguf");
    std::fs::write(&src, tiny_model("tiny")).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        store,
        keys,
        src,
    }
}

fn import(f: &Fixture, src: &Path, name: Option<&str>) -> Result<ImportOutcome, StoreError> {
    f.store.import(src, name, &f.keys, &mut |_, _| {})
}

/// Every path under `dir` with its contents (None for directories).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                out.insert(path.clone(), None);
                stack.push(path);
            } else {
                out.insert(path.clone(), Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn import_list_get_verify_remove_roundtrip() {
    let f = fixture();
    let mut calls = Vec::new();
    let outcome = f
        .store
        .import(&f.src, None, &f.keys, &mut |d, t| calls.push((d, t)))
        .unwrap();
    let ImportOutcome::Imported(m) = outcome else {
        panic!("{outcome:?}")
    };
    let size = std::fs::metadata(&f.src).unwrap().len();
    assert_eq!(m.name, "tiny-model.q8_0");
    assert_eq!(m.size, size);
    assert_eq!(m.chunk_blake3.len() as u64, size.div_ceil(1024));
    assert_eq!(m.owner_key_id, f.keys.public().key_id);
    assert_eq!(calls.last(), Some(&(size, size)));
    let blob = f.dir.join("blobs/sha256").join(&m.sha256);
    assert_eq!(
        std::fs::metadata(&blob).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        std::fs::read(&f.src).unwrap()
    );

    // Importing again is a no-op.
    let before = snapshot(&f.dir);
    assert!(matches!(
        import(&f, &f.src, None).unwrap(),
        ImportOutcome::AlreadyPresent(_)
    ));
    assert_eq!(snapshot(&f.dir), before);

    // A second name for the same bytes shares the blob.
    import(&f, &f.src, Some("alias")).unwrap();
    let names: Vec<_> = f
        .store
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["alias", "tiny-model.q8_0"]);
    assert_eq!(f.store.get("alias").unwrap().sha256, m.sha256);

    let verified = f.store.verify(&m.name, &f.keys.public()).unwrap();
    assert_eq!(verified.manifest(), &m);
    assert_eq!(verified.path(), blob);

    assert_eq!(f.store.remove("alias").unwrap().name, "alias");
    assert!(blob.exists(), "blob still used by the other manifest");
    f.store.remove(&m.name).unwrap();
    assert!(!blob.exists());
    assert!(f.store.list().unwrap().is_empty());
    assert!(matches!(
        f.store.get(&m.name),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn flipped_blob_byte_is_caught_with_offset() {
    let f = fixture();
    let ImportOutcome::Imported(m) = import(&f, &f.src, Some("m")).unwrap() else {
        panic!()
    };
    let blob = f.dir.join("blobs/sha256").join(&m.sha256);
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[2500] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    let err = f.store.verify("m", &f.keys.public()).unwrap_err();
    match &err {
        StoreError::DigestMismatch {
            offset, expected, ..
        } => {
            assert_eq!(*offset, 2048);
            assert_eq!(expected, &m.chunk_blake3[2]);
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("2048"), "{err}");
    bytes.pop();
    std::fs::write(&blob, &bytes).unwrap();
    assert!(matches!(
        f.store.verify("m", &f.keys.public()),
        Err(StoreError::BlobSize { .. })
    ));
}

#[test]
fn tampered_manifest_fails_signature() {
    let f = fixture();
    let ImportOutcome::Imported(m) = import(&f, &f.src, Some("m")).unwrap() else {
        panic!()
    };
    let path = f.dir.join("manifests/m.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let size_line = format!("\"size\": {}", m.size);
    for tampered in [
        original.replace(&size_line, &format!("\"size\": {}", m.size + 1)),
        original.replace("\"name\": \"m\"", "\"name\": \"n\""),
        original.replace("\"quantization\": \"Q8_0\"", "\"quantization\": \"F16\""),
    ] {
        assert_ne!(tampered, original);
        std::fs::write(&path, tampered).unwrap();
        let err = f.store.verify("m", &f.keys.public()).unwrap_err();
        assert!(matches!(err, StoreError::ManifestSignature { .. }), "{err}");
    }
    // A different owner's key does not verify either.
    std::fs::write(&path, &original).unwrap();
    let other = tempfile::tempdir().unwrap();
    OwnerKeys::init(other.path()).unwrap();
    let other = OwnerKeys::load(other.path()).unwrap().public();
    assert!(matches!(
        f.store.verify("m", &other),
        Err(StoreError::ManifestSignature { .. })
    ));
    f.store.verify("m", &f.keys.public()).unwrap();
}

#[test]
fn failed_imports_leave_store_untouched() {
    let f = fixture();
    import(&f, &f.src, Some("existing")).unwrap();
    let before = snapshot(&f.dir);
    let dir = f.src.parent().unwrap();
    let full = tiny_model("t");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not.gguf", b"this is not a model at all".to_vec()),
        ("truncated.gguf", full[..full.len() - 100].to_vec()),
        ("empty.gguf", Vec::new()),
    ];
    for (file, bytes) in &cases {
        let path = dir.join(file);
        std::fs::write(&path, bytes).unwrap();
        let err = import(&f, &path, None).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidModel { .. }),
            "{file}: {err}"
        );
        assert_eq!(snapshot(&f.dir), before, "{file}");
    }
    let err = import(&f, &dir.join("missing.gguf"), None).unwrap_err();
    assert!(matches!(err, StoreError::ReadSource { .. }), "{err}");
    assert_eq!(snapshot(&f.dir), before);
    if let Ok(real) = std::env::var("SOV_TEST_MODEL") {
        let bytes = std::fs::read(real).unwrap();
        let path = dir.join("cut.gguf");
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(
            import(&f, &path, None),
            Err(StoreError::InvalidModel { .. })
        ));
        assert_eq!(snapshot(&f.dir), before);
    }
}

#[test]
fn same_name_different_content_is_taken() {
    let f = fixture();
    import(&f, &f.src, Some("m")).unwrap();
    let before = snapshot(&f.dir);
    let other = f.src.with_file_name("other.gguf");
    std::fs::write(&other, tiny_model("other")).unwrap();
    let err = import(&f, &other, Some("m")).unwrap_err();
    assert!(matches!(err, StoreError::NameTaken { .. }), "{err}");
    assert_eq!(snapshot(&f.dir), before);
}

#[test]
fn bad_names_rejected() {
    let f = fixture();
    for name in [
        "",
        "../evil",
        "a/b",
        "Upper",
        ".hidden",
        "-x",
        "a b",
        &"a".repeat(65),
    ] {
        let err = import(&f, &f.src, Some(name)).unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidName { .. }),
            "{name}: {err}"
        );
        assert!(matches!(
            f.store.get(name),
            Err(StoreError::InvalidName { .. })
        ));
    }
    assert!(crate::validate_name(&"a".repeat(64)).is_ok());
}

/// Measures `verify` throughput on a ~400 MB model (the starter model padded with
/// zeros, which GGUF allows). Run with
/// `SOV_TEST_MODEL=... cargo test -p sov-models -- --ignored --nocapture verify_throughput`.
#[test]
#[ignore = "benchmark: writes ~400 MB"]
fn verify_throughput() {
    let real = std::env::var("SOV_TEST_MODEL").expect("set SOV_TEST_MODEL");
    let tmp = tempfile::tempdir().unwrap();
    let keys_dir = tmp.path().join("keys");
    OwnerKeys::init(&keys_dir).unwrap();
    let keys = OwnerKeys::load(&keys_dir).unwrap();
    let store = ModelStore::open(&tmp.path().join("models")).unwrap();
    let src = tmp.path().join("big.gguf");
    let mut bytes = std::fs::read(real).unwrap();
    bytes.resize(400 * 1024 * 1024, 0);
    std::fs::write(&src, &bytes).unwrap();
    drop(bytes);
    let start = std::time::Instant::now();
    store.import(&src, None, &keys, &mut |_, _| {}).unwrap();
    let import = start.elapsed();
    for _ in 0..3 {
        let start = std::time::Instant::now();
        store.verify("big", &keys.public()).unwrap();
        let t = start.elapsed();
        println!(
            "import {:.2}s; verify 400 MiB in {:.3}s = {:.0} MiB/s",
            import.as_secs_f64(),
            t.as_secs_f64(),
            400.0 / t.as_secs_f64()
        );
    }
}
