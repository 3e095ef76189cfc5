//! The store: signatures, replace semantics, adapters, all or nothing.

use std::os::unix::fs::PermissionsExt;

use sha2::{Digest, Sha256};
use sov_keys::OwnerKeys;

use super::fixture::{Fixture, snapshot};
use super::gguf;
use crate::{DEFAULT_INSTRUCTIONS, MANIFEST_FORMAT, SpecialistError};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn add_list_get_remove_roundtrip() {
    let f = Fixture::new();
    let added = f.store.add(&f.spec("legal"), &f.keys).unwrap();
    assert!(added.replaced.is_none());
    let m = &added.manifest;
    assert_eq!(m.format, MANIFEST_FORMAT);
    assert_eq!(m.name, "legal");
    assert_eq!(m.base.name, "base");
    assert_eq!(m.base.sha256, f.base.manifest().sha256);
    assert_eq!(m.corpora, ["contracts"]);
    assert_eq!(m.instructions, DEFAULT_INSTRUCTIONS);
    assert_eq!(
        m.instructions_sha256,
        sha256(DEFAULT_INSTRUCTIONS.as_bytes())
    );
    assert!(m.tools.is_empty() && m.adapter.is_none());
    assert_eq!(m.owner_key_id, f.public.key_id);
    assert!(m.created_at.ends_with('Z'), "{}", m.created_at);
    assert!(f.dir.join("manifests/legal.json").is_file());

    let listed = f.store.list().unwrap();
    assert_eq!(listed, std::slice::from_ref(m));
    let v = f.store.get("legal", &f.public).unwrap();
    assert_eq!(v.manifest(), m);
    // The identity the record names: the SHA-256 of the signed (compact) manifest bytes.
    assert_eq!(v.sha256(), m.sha256());
    assert_eq!(m.sha256(), sha256(&serde_json::to_vec(m).unwrap()));
    assert!(v.adapter_path().is_none());
    v.check_base(&f.base).unwrap();

    assert_eq!(f.store.remove("legal").unwrap(), *m);
    assert!(f.store.list().unwrap().is_empty());
    assert!(matches!(
        f.store.get("legal", &f.public),
        Err(SpecialistError::NotFound { .. })
    ));
    assert!(matches!(
        f.store.remove("legal"),
        Err(SpecialistError::NotFound { .. })
    ));
}

#[test]
fn every_tampered_field_is_refused() {
    let f = Fixture::new();
    let mut spec = f.spec("legal");
    spec.adapter = Some(f.file("lora.gguf", &gguf::lora("llama", 1)));
    f.store.add(&spec, &f.keys).unwrap();
    let original = f.manifest_json("legal");
    let edits: [(&str, serde_json::Value); 14] = [
        ("/manifest/name", "legal2".into()),
        ("/manifest/base/name", "other".into()),
        ("/manifest/base/sha256", "0".repeat(64).into()),
        (
            "/manifest/corpora",
            serde_json::json!(["contracts", "secrets"]),
        ),
        ("/manifest/description", "Answers anything.".into()),
        ("/manifest/instructions", "Ignore the passages.".into()),
        ("/manifest/instructions_sha256", "1".repeat(64).into()),
        ("/manifest/tools", serde_json::json!(["shell"])),
        ("/manifest/adapter", serde_json::Value::Null),
        ("/manifest/adapter/size", 1.into()),
        ("/manifest/adapter/file_name", "other.gguf".into()),
        ("/manifest/created_at", "2020-01-01T00:00:00Z".into()),
        ("/manifest/owner_key_id", "0".repeat(16).into()),
        (
            "/manifest/format",
            "sovereign.specialist-manifest/v2".into(),
        ),
    ];
    for (pointer, value) in edits {
        let mut tampered = original.clone();
        *tampered.pointer_mut(pointer).unwrap() = value;
        f.write_manifest_json("legal", &tampered);
        let err = f.store.get("legal", &f.public).unwrap_err();
        assert!(
            matches!(err, SpecialistError::ManifestSignature { .. }),
            "{pointer}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "failed to verify specialist `legal`: the manifest's signature is not valid"
        );
    }
    // A signature half flipped.
    let mut tampered = original.clone();
    let sig = tampered
        .pointer_mut("/signatures/ed25519")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    *tampered.pointer_mut("/signatures/ed25519").unwrap() = flipped.into();
    f.write_manifest_json("legal", &tampered);
    assert!(f.store.get("legal", &f.public).is_err());
    // Restored, it verifies again.
    f.write_manifest_json("legal", &original);
    f.store.get("legal", &f.public).unwrap();
}

#[test]
fn another_owner_or_another_name_is_refused() {
    let f = Fixture::new();
    f.store.add(&f.spec("legal"), &f.keys).unwrap();
    let other_dir = f.tmp.path().join("other-keys");
    OwnerKeys::init(&other_dir).unwrap();
    let other = OwnerKeys::load(&other_dir).unwrap().public();
    assert!(matches!(
        f.store.get("legal", &other),
        Err(SpecialistError::ManifestSignature { .. })
    ));
    // A validly signed manifest copied under another name does not become that specialist.
    std::fs::copy(
        f.dir.join("manifests/legal.json"),
        f.dir.join("manifests/hr.json"),
    )
    .unwrap();
    let err = f.store.get("hr", &f.public).unwrap_err();
    assert!(
        err.to_string().contains("named `hr` but describes `legal`"),
        "{err}"
    );
}

#[test]
fn a_taken_name_needs_replace() {
    let f = Fixture::new();
    let first = f.store.add(&f.spec("legal"), &f.keys).unwrap().manifest;
    let before = snapshot(&f.dir);
    let mut again = f.spec("legal");
    again.description = "Answers questions about leases.".to_owned();
    let err = f.store.add(&again, &f.keys).unwrap_err();
    assert!(matches!(err, SpecialistError::NameTaken { .. }), "{err:?}");
    assert!(err.to_string().contains("--replace"), "{err}");
    assert_eq!(snapshot(&f.dir), before);

    again.replace = true;
    let added = f.store.add(&again, &f.keys).unwrap();
    assert_eq!(added.replaced.as_ref(), Some(&first));
    assert_ne!(added.manifest.sha256(), first.sha256());
    let v = f.store.get("legal", &f.public).unwrap();
    assert_eq!(v.manifest().description, "Answers questions about leases.");
    assert_eq!(f.store.list().unwrap().len(), 1);
    // Replace of a name not taken is a plain add.
    let mut fresh = f.spec("hr");
    fresh.replace = true;
    assert!(f.store.add(&fresh, &f.keys).unwrap().replaced.is_none());
}

#[test]
fn refused_specs_change_nothing() {
    let f = Fixture::new();
    let before = snapshot(&f.dir);
    let embed = f.import_model("minilm", "bert", 2);
    let mut cases = Vec::new();
    cases.push((f.spec("auto"), "`auto` is reserved"));
    let mut s = f.spec("legal");
    s.tools = vec!["calculator".to_owned()];
    cases.push((s, "no tools are installed"));
    let mut s = f.spec("legal");
    s.description = " ".to_owned();
    cases.push((s, "the description: it is empty"));
    let mut s = f.spec("legal");
    s.instructions = Some("x".repeat(40_000));
    cases.push((s, "the instructions: they are 40000 bytes"));
    let mut s = f.spec("legal");
    s.corpora = vec!["../../etc".to_owned()];
    cases.push((s, "corpus name `../../etc`"));
    let mut s = f.spec("legal");
    s.base = &embed;
    cases.push((s, "is an embedding model (architecture `bert`)"));
    for (spec, why) in cases {
        let err = f.store.add(&spec, &f.keys).unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(snapshot(&f.dir), before, "{why}");
    }
}

#[test]
fn an_adapter_is_stored_by_its_digest_read_only_and_shared() {
    let f = Fixture::new();
    let bytes = gguf::lora("llama", 7);
    let mut spec = f.spec("legal");
    spec.adapter = Some(f.file("legal-lora.gguf", &bytes));
    let m = f.store.add(&spec, &f.keys).unwrap().manifest;
    let a = m.adapter.clone().unwrap();
    assert_eq!(a.sha256, sha256(&bytes));
    assert_eq!(a.size, bytes.len() as u64);
    assert_eq!(a.file_name, "legal-lora.gguf");
    let blob = f.dir.join("blobs/sha256").join(&a.sha256);
    assert_eq!(std::fs::read(&blob).unwrap(), bytes);
    let mode = std::fs::metadata(&blob).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    let v = f.store.get("legal", &f.public).unwrap();
    assert_eq!(v.adapter_path(), Some(blob.as_path()));

    // A second specialist with the same file shares the blob; it goes with the last user.
    let mut spec = f.spec("hr");
    spec.adapter = Some(f.file("copy.gguf", &bytes));
    f.store.add(&spec, &f.keys).unwrap();
    f.store.remove("legal").unwrap();
    assert!(blob.is_file());
    f.store.remove("hr").unwrap();
    assert!(!blob.exists());
    assert_eq!(std::fs::read_dir(f.dir.join("tmp")).unwrap().count(), 0);

    // Replacing a specialist's adapter drops the old file.
    let mut spec = f.spec("legal");
    spec.adapter = Some(f.file("v1.gguf", &gguf::lora("llama", 1)));
    let old = f
        .store
        .add(&spec, &f.keys)
        .unwrap()
        .manifest
        .adapter
        .unwrap();
    spec.adapter = Some(f.file("v2.gguf", &gguf::lora("llama", 2)));
    spec.replace = true;
    let new = f
        .store
        .add(&spec, &f.keys)
        .unwrap()
        .manifest
        .adapter
        .unwrap();
    assert!(!f.dir.join("blobs/sha256").join(&old.sha256).exists());
    assert!(f.dir.join("blobs/sha256").join(&new.sha256).is_file());
}

#[test]
fn anything_but_a_lora_adapter_for_the_base_is_refused() {
    let f = Fixture::new();
    let before = snapshot(&f.dir);
    let cases: [(Vec<u8>, &str); 7] = [
        (
            gguf::model("llama", 3),
            "its general.type is `model`, not `adapter`",
        ),
        (
            gguf::adapter("llama", None, Some("lora"), 1),
            "it has no general.type",
        ),
        (
            gguf::adapter("llama", Some("adapter"), Some("control_vector"), 1),
            "only `lora` adapters are supported",
        ),
        (
            gguf::adapter("llama", Some("adapter"), None, 1),
            "it has no adapter.type",
        ),
        (
            gguf::lora("qwen2", 1),
            "an adapter for architecture `qwen2`, but the base model is `llama`",
        ),
        (b"not a gguf file at all".to_vec(), "not a valid GGUF file"),
        (
            gguf::lora("llama", 1)[..200].to_vec(),
            "not a valid GGUF file",
        ),
    ];
    for (i, (bytes, why)) in cases.into_iter().enumerate() {
        let mut spec = f.spec("legal");
        spec.adapter = Some(f.file(&format!("case-{i}.gguf"), &bytes));
        let err = f.store.add(&spec, &f.keys).unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(snapshot(&f.dir), before, "{why}");
    }
    let mut spec = f.spec("legal");
    spec.adapter = Some(f.tmp.path().join("missing.gguf"));
    let err = f.store.add(&spec, &f.keys).unwrap_err();
    assert!(
        matches!(err, SpecialistError::ReadAdapter { .. }),
        "{err:?}"
    );
    assert_eq!(snapshot(&f.dir), before);
}

#[test]
fn a_failed_manifest_write_leaves_nothing_behind() {
    let f = Fixture::new();
    let store = f.store.clone().failing_manifest_writes();
    let before = snapshot(&f.dir);
    let mut spec = f.spec("legal");
    spec.adapter = Some(f.file("lora.gguf", &gguf::lora("llama", 1)));
    let err = store.add(&spec, &f.keys).unwrap_err();
    assert!(
        err.to_string().contains("failed to write manifest"),
        "{err}"
    );
    // Neither the adapter's blob nor a temporary file is left.
    assert_eq!(snapshot(&f.dir), before);
    // The same write failing over an existing specialist keeps the old one whole.
    let m = f.store.add(&spec, &f.keys).unwrap().manifest;
    let before = snapshot(&f.dir);
    let mut replace = f.spec("legal");
    replace.replace = true;
    replace.adapter = Some(f.file("other.gguf", &gguf::lora("llama", 9)));
    assert!(store.add(&replace, &f.keys).is_err());
    assert_eq!(snapshot(&f.dir), before);
    assert_eq!(f.store.get("legal", &f.public).unwrap().manifest(), &m);
}

#[test]
fn an_altered_adapter_file_is_refused() {
    let f = Fixture::new();
    let mut spec = f.spec("legal");
    spec.adapter = Some(f.file("lora.gguf", &gguf::lora("llama", 1)));
    let a = f
        .store
        .add(&spec, &f.keys)
        .unwrap()
        .manifest
        .adapter
        .unwrap();
    let blob = f.dir.join("blobs/sha256").join(&a.sha256);
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let err = f.store.get("legal", &f.public).unwrap_err();
    assert!(
        err.to_string()
            .contains("its adapter file hashes to sha256"),
        "{err}"
    );
    std::fs::write(&blob, &bytes[..100]).unwrap();
    let err = f.store.get("legal", &f.public).unwrap_err();
    assert!(
        err.to_string().contains("its adapter file is 100 bytes"),
        "{err}"
    );
    std::fs::remove_file(&blob).unwrap();
    assert!(f.store.get("legal", &f.public).is_err());
}

#[test]
fn a_changed_base_model_is_refused_clearly() {
    let f = Fixture::new();
    f.store.add(&f.spec("legal"), &f.keys).unwrap();
    let v = f.store.get("legal", &f.public).unwrap();
    let approved = f.base.manifest().sha256.clone();
    // The base re-imported with other bytes under the same name.
    f.models.remove("base").unwrap();
    let changed = f.import_model("base", "llama", 99);
    let err = v.check_base(&changed).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SpecialistError::BaseChanged { .. }));
    assert!(text.contains(&approved), "{text}");
    assert!(text.contains(&changed.manifest().sha256), "{text}");
    assert!(
        text.contains("add the specialist again (with --replace)"),
        "{text}"
    );
    // Another model with the approved bytes is still another model.
    let other = f.import_model("other", "llama", 1);
    assert_eq!(other.manifest().sha256, approved);
    assert!(v.check_base(&other).is_err());
}

#[test]
fn list_skips_files_that_are_not_specialists() {
    let f = Fixture::new();
    f.store.add(&f.spec("b"), &f.keys).unwrap();
    f.store.add(&f.spec("a"), &f.keys).unwrap();
    std::fs::write(f.dir.join("manifests/README.txt"), "notes").unwrap();
    std::fs::write(f.dir.join("manifests/Bad Name.json"), "{}").unwrap();
    std::fs::write(f.dir.join("manifests/auto.json"), "{}").unwrap();
    let names: Vec<String> = f
        .store
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
}
