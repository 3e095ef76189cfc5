//! Manifests written before the optional fields existed, and the chat templates chosen at import.

use serde::Serialize;
use sov_keys::OwnerKeys;

use super::builder::{Value, build, tiny_model};
use crate::templates::{self, TemplateError};
use crate::{
    ChosenBy, GgufInfo, ImportOptions, ImportOutcome, MANIFEST_DOMAIN, ModelStore, StoreError,
};

/// The manifest as the store wrote it before `converted_from` and `chat_template` existed:
/// the same fields in the same order, nothing else.
#[derive(Serialize)]
struct OldManifest {
    format: String,
    name: String,
    sha256: String,
    size: u64,
    chunk_size: u64,
    chunk_blake3: Vec<String>,
    gguf: GgufInfo,
    source_file_name: String,
    imported_at: String,
    owner_key_id: String,
}

fn keys(dir: &std::path::Path) -> OwnerKeys {
    OwnerKeys::init(&dir.join("keys")).unwrap();
    OwnerKeys::load(&dir.join("keys")).unwrap()
}

#[test]
fn a_manifest_of_the_old_format_still_verifies_and_reserializes_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys(tmp.path());
    let store = ModelStore::open(&tmp.path().join("models")).unwrap();
    let src = tmp.path().join("m.gguf");
    std::fs::write(&src, tiny_model("m")).unwrap();
    let ImportOutcome::Imported(m) = store
        .import(&src, Some("m"), &keys, &mut |_, _| {})
        .unwrap()
    else {
        panic!()
    };
    // Rewrite the manifest as the old code did: its own struct, signed over its own bytes.
    let old = OldManifest {
        format: m.format.clone(),
        name: m.name.clone(),
        sha256: m.sha256.clone(),
        size: m.size,
        chunk_size: m.chunk_size,
        chunk_blake3: m.chunk_blake3.clone(),
        gguf: m.gguf.clone(),
        source_file_name: m.source_file_name.clone(),
        imported_at: "2026-01-02T03:04:05Z".into(),
        owner_key_id: m.owner_key_id.clone(),
    };
    let old_bytes = serde_json::to_vec(&old).unwrap();
    let signatures = keys.sign(MANIFEST_DOMAIN, &old_bytes).unwrap();
    let file = serde_json::json!({"manifest": old, "signatures": signatures});
    let path = tmp.path().join("models/manifests/m.json");
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();

    let verified = store.verify("m", &keys.public()).unwrap();
    assert_eq!(verified.manifest().signed_bytes(), old_bytes);
    assert!(verified.manifest().converted_from.is_none());
    assert!(verified.manifest().chat_template.is_none());
    // And a manifest that has neither field is written without them.
    let text = String::from_utf8(verified.manifest().signed_bytes()).unwrap();
    let end = format!(",\"owner_key_id\":\"{}\"}}", m.owner_key_id);
    assert!(
        !text.contains("converted_from") && text.ends_with(&end),
        "{text}"
    );
}

fn gemma_like() -> Vec<u8> {
    build(
        &[
            ("general.architecture", Value::Str("gemma3")),
            ("gemma3.context_length", Value::U32(32768)),
        ],
        &[super::builder::Tensor {
            name: "token_embd.weight",
            dims: vec![64, 4],
            ty: 0,
        }],
    )
}

#[test]
fn a_gemma_gguf_without_a_template_gets_gemmas_and_the_manifest_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys(tmp.path());
    let store = ModelStore::open(&tmp.path().join("models")).unwrap();
    let src = tmp.path().join("gemma.gguf");
    std::fs::write(&src, gemma_like()).unwrap();
    let ImportOutcome::Imported(m) = store
        .import(&src, Some("g"), &keys, &mut |_, _| {})
        .unwrap()
    else {
        panic!()
    };
    let t = m.chat_template.as_ref().unwrap();
    assert_eq!(
        (t.name.as_str(), t.chosen_by, t.text.as_ref()),
        ("gemma", ChosenBy::Architecture, None)
    );
    assert_eq!(templates::text_of(t).unwrap(), templates::GEMMA);
    store.verify("g", &keys.public()).unwrap();

    // The owner's choice wins, and a second import with another choice is refused.
    let options = ImportOptions {
        name: Some("g".into()),
        chat_template: Some(templates::choose("chatml").unwrap()),
    };
    let err = store
        .import_with(&src, &options, &keys, &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, StoreError::TemplateDiffers { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("chat template `gemma`, not chat template `chatml`"),
        "{err}"
    );
    let options = ImportOptions {
        name: Some("c".into()),
        ..options
    };
    let ImportOutcome::Imported(c) = store
        .import_with(&src, &options, &keys, &mut |_, _| {})
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(c.chat_template.as_ref().unwrap().chosen_by, ChosenBy::Owner);
    assert!(matches!(
        store
            .import_with(&src, &options, &keys, &mut |_, _| {})
            .unwrap(),
        ImportOutcome::AlreadyPresent(_)
    ));

    // A llama GGUF with its own template keeps it.
    let own = tmp.path().join("own.gguf");
    std::fs::write(&own, tiny_model("own")).unwrap();
    let ImportOutcome::Imported(o) = store
        .import(&own, Some("o"), &keys, &mut |_, _| {})
        .unwrap()
    else {
        panic!()
    };
    assert!(o.chat_template.is_none());
}

#[test]
fn a_template_file_is_kept_in_the_manifest_and_checked_against_its_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = keys(tmp.path());
    let store = ModelStore::open(&tmp.path().join("models")).unwrap();
    let path = tmp.path().join("mine.jinja");
    std::fs::write(
        &path,
        "{% for m in messages %}{{ m['content'] }}{% endfor %}",
    )
    .unwrap();
    let choice = templates::choose(path.to_str().unwrap()).unwrap();
    assert_eq!(choice.name, "mine.jinja");
    let src = tmp.path().join("gemma.gguf");
    std::fs::write(&src, gemma_like()).unwrap();
    let options = ImportOptions {
        name: Some("g".into()),
        chat_template: Some(choice),
    };
    store
        .import_with(&src, &options, &keys, &mut |_, _| {})
        .unwrap();
    let m = store
        .verify("g", &keys.public())
        .unwrap()
        .manifest()
        .clone();
    let t = m.chat_template.unwrap();
    assert_eq!(
        templates::text_of(&t).unwrap(),
        std::fs::read_to_string(&path).unwrap()
    );
    let mut edited = t.clone();
    edited.text = Some("{{ 'other' }}".into());
    assert!(
        templates::text_of(&edited)
            .unwrap_err()
            .contains("the manifest says")
    );
    let mut unknown = t;
    unknown.text = None;
    unknown.name = "llama9".into();
    assert!(
        templates::text_of(&unknown)
            .unwrap_err()
            .contains("not built into this release")
    );

    assert!(matches!(templates::choose("gemma"), Ok(c) if c.text.is_none()));
    assert!(matches!(
        templates::choose("nonesuch"),
        Err(TemplateError::Unknown(_))
    ));
    assert!(matches!(
        templates::choose("/no/such/file.jinja"),
        Err(TemplateError::Read { .. })
    ));
    let big = tmp.path().join("big.jinja");
    std::fs::write(&big, vec![b'x'; 70 * 1024]).unwrap();
    assert!(matches!(
        templates::choose(big.to_str().unwrap()),
        Err(TemplateError::Invalid { .. })
    ));
    assert_eq!(templates::for_architecture("llama"), None);
}
