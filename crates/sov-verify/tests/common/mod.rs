//! A fixture log built with sov-audit-core only (no sov-audit): entries with `Entry::encode`,
//! bundles with `tile::encode_bundle`, hash tiles from a `MemoryTree`, and a checkpoint signed
//! by test keys from fixed seeds (Ed25519 0x01 and ML-DSA-44 subtree/v1 0x06), plus helpers to
//! run the real `sov-verify` binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ed25519_dalek::Signer as _;
use ml_dsa::signature::Keypair as _;
use sov_audit_core::checkpoint::{Checkpoint, mldsa_cosigned_message};
use sov_audit_core::entry::{Entry, Kind, Outcome, commitment};
use sov_audit_core::hash::{Hash, hash_to_base64, leaf_hash};
use sov_audit_core::merkle::{self, MemoryTree, SubtreeSource};
use sov_audit_core::note::{Note, NoteSignature, Vkey};
use sov_audit_core::receipt::TlogProof;
use sov_audit_core::tile::{self, Tile, TileKind};

/// The log's origin and the name of both of its keys.
pub const ORIGIN: &str = "example.com/sovereign-test";
/// The ML-DSA cosignature timestamp (seconds).
pub const TIMESTAMP: u64 = 1_795_000_000;

/// A log on disk, and everything needed to re-sign it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub entries: Vec<Vec<u8>>,
    pub tree: MemoryTree,
    pub ed: ed25519_dalek::SigningKey,
    pub ml: ml_dsa::SigningKey<ml_dsa::MlDsa44>,
    pub ed_vkey: Vkey,
    pub ml_vkey: Vkey,
}

/// A realistic entry (about 200 bytes).
pub fn make_entry(index: u64, prev: Hash) -> Entry {
    let kinds = [
        Kind::Inference,
        Kind::Inference,
        Kind::Inference,
        Kind::Refusal,
        Kind::ModelLoad,
        Kind::PolicyDecision,
    ];
    let kind = if index == 0 {
        Kind::ServerStart
    } else {
        kinds[(index % kinds.len() as u64) as usize]
    };
    let salt = [index as u8; 32];
    Entry {
        index,
        time_ms: 1_795_000_000_000 + index * 37,
        prev,
        kind,
        node: "node-1".into(),
        principal: format!("user-{}", index % 7),
        resource: "smollm2-135m-instruct".into(),
        outcome: if kind == Kind::Refusal {
            Outcome::Denied
        } else {
            Outcome::Ok
        },
        reason: if kind == Kind::Refusal {
            "queue full".into()
        } else {
            String::new()
        },
        model: Some([7u8; 32]),
        input: Some(commitment(
            "input",
            &salt,
            format!("prompt {index}").as_bytes(),
        )),
        output: (kind == Kind::Inference)
            .then(|| commitment("output", &salt, format!("answer {index}").as_bytes())),
        attrs: vec![
            ("route".into(), "/v1/chat/completions".into()),
            ("tokens".into(), (index % 500).to_string()),
        ],
    }
}

/// Encoded entries 0..n, chained.
pub fn make_entries(n: u64) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(n as usize);
    let mut prev = [0u8; 32];
    for i in 0..n {
        let bytes = make_entry(i, prev).encode().unwrap();
        prev = leaf_hash(&bytes);
        out.push(bytes);
    }
    out
}

/// Writes `bytes` at `dir/path`, creating directories.
pub fn write(dir: &Path, path: &str, bytes: &[u8]) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, bytes).unwrap();
}

impl Fixture {
    /// A log of `n` entries in a new temporary directory, with `checkpoint` and `vkeys`.
    pub fn build(n: u64) -> Fixture {
        let entries = make_entries(n);
        let mut tree = MemoryTree::new();
        for e in &entries {
            tree.push(leaf_hash(e));
        }
        let ed = ed25519_dalek::SigningKey::from_bytes(&[0x11; 32]);
        let ml = ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_seed(&[0x22; 32].into());
        let ed_vkey = Vkey::from_ed25519(ORIGIN, ed.verifying_key());
        let ml_vkey = Vkey::from_mldsa44(ORIGIN, ml.verifying_key());
        let fx = Fixture {
            dir: tempfile::tempdir().unwrap(),
            entries,
            tree,
            ed,
            ml,
            ed_vkey,
            ml_vkey,
        };
        fx.write_tiles(fx.path(), n);
        write(fx.path(), "checkpoint", &fx.checkpoint(n));
        write(
            fx.path(),
            "vkeys",
            format!("{}\n{}\n", fx.ed_vkey.encode(), fx.ml_vkey.encode()).as_bytes(),
        );
        fx
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The hashes of hash tile level `level` (complete subtrees of 256^level leaves) for `size`.
    fn level_hashes(&self, level: u8, size: u64) -> Vec<Hash> {
        let mut t = self.tree.clone();
        let count = size >> (8 * u32::from(level));
        (0..count)
            .map(|i| t.subtree(8 * level, i).unwrap())
            .collect()
    }

    /// Writes the entry bundles and hash tiles of the first `size` entries into `dir`.
    pub fn write_tiles(&self, dir: &Path, size: u64) {
        for b in Tile::entry_bundles_for_size(size) {
            let start = (b.index * 256) as usize;
            let items: Vec<&[u8]> = self.entries[start..start + b.width as usize]
                .iter()
                .map(Vec::as_slice)
                .collect();
            write(dir, &b.path(), &tile::encode_bundle(&items).unwrap());
        }
        let mut levels: std::collections::BTreeMap<u8, Vec<Hash>> = Default::default();
        for t in Tile::hash_tiles_for_size(size) {
            let TileKind::Hash { level } = t.kind else {
                panic!("hash tile expected")
            };
            let hashes = levels
                .entry(level)
                .or_insert_with(|| self.level_hashes(level, size));
            let start = (t.index * 256) as usize;
            let bytes: Vec<u8> = hashes[start..start + t.width as usize]
                .iter()
                .flat_map(|h| h.iter().copied())
                .collect();
            write(dir, &t.path(), &bytes);
        }
    }

    /// The tree root of the first `size` entries.
    pub fn root(&self, size: u64) -> Hash {
        let mut t = self.tree.clone();
        merkle::tree_hash(&mut t, size).unwrap()
    }

    /// The checkpoint text for the first `size` entries.
    pub fn checkpoint_text(&self, size: u64) -> String {
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: self.root(size),
            extensions: vec![],
        }
        .to_text()
    }

    /// The Ed25519 signature line's signature (without key ID) over `text`.
    pub fn ed_sig(&self, text: &str) -> Vec<u8> {
        self.ed.sign(text.as_bytes()).to_bytes().to_vec()
    }

    /// The ML-DSA-44 subtree/v1 signature (timestamp || signature) for a checkpoint.
    pub fn ml_sig(&self, size: u64, root: &Hash) -> Vec<u8> {
        let msg = mldsa_cosigned_message(ORIGIN, TIMESTAMP, ORIGIN, 0, size, root).unwrap();
        let sig = self
            .ml
            .expanded_key()
            .sign_deterministic(&msg, &[])
            .unwrap();
        let mut out = TIMESTAMP.to_be_bytes().to_vec();
        out.extend_from_slice(&sig.encode());
        out
    }

    /// The signed checkpoint note for the first `size` entries.
    pub fn checkpoint(&self, size: u64) -> Vec<u8> {
        let text = self.checkpoint_text(size);
        Note {
            signatures: vec![
                NoteSignature {
                    name: ORIGIN.into(),
                    key_id: self.ed_vkey.key_id,
                    signature: self.ed_sig(&text),
                },
                NoteSignature {
                    name: ORIGIN.into(),
                    key_id: self.ml_vkey.key_id,
                    signature: self.ml_sig(size, &self.root(size)),
                },
            ],
            text,
        }
        .to_bytes()
    }

    /// A receipt for entry `index` in the tree of `size`, with the entry in `extra` or not.
    pub fn receipt(&self, index: u64, size: u64, with_extra: bool) -> TlogProof {
        let mut t = self.tree.clone();
        TlogProof {
            extra: with_extra.then(|| self.entries[index as usize].clone()),
            index,
            proof: merkle::inclusion_proof(&mut t, index, size).unwrap(),
            checkpoint: self.checkpoint(size),
        }
    }

    /// A consistency proof between two sizes, one base64 hash per line.
    pub fn consistency_file(&self, old: u64, new: u64) -> String {
        let mut t = self.tree.clone();
        merkle::consistency_proof(&mut t, old, new)
            .unwrap()
            .iter()
            .map(|h| format!("{}\n", hash_to_base64(h)))
            .collect()
    }

    /// `--key A --key B` for both keys, as vkey strings.
    pub fn key_args(&self) -> Vec<String> {
        vec![
            "--key".into(),
            self.ed_vkey.encode(),
            "--key".into(),
            self.ml_vkey.encode(),
        ]
    }

    /// Writes a file in the fixture's directory and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON object printed on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.stdout))
    }
}

/// Runs `sov-verify` with `args`.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_sov-verify"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `sov-verify ARGS --json`, expects exit status 1, and returns the failure's location and
/// what.
pub fn failure<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (String, String) {
    let mut all: Vec<std::ffi::OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    all.push("--json".into());
    let r = run(&all);
    assert_eq!(
        r.code, 1,
        "expected a verification failure, got {}: {} {}",
        r.code, r.stdout, r.stderr
    );
    let j = r.json();
    assert_eq!(j["ok"], serde_json::Value::Bool(false), "{}", r.stdout);
    let loc = j["failure"]["location"].as_str().unwrap().to_owned();
    let what = j["failure"]["what"].as_str().unwrap().to_owned();
    (loc, what)
}

/// Flips bit `bit` of the file at `dir/path`, runs `check`, then restores the file.
pub fn with_flipped<R>(dir: &Path, path: &str, bit: usize, check: impl FnOnce() -> R) -> R {
    let full = dir.join(path);
    let orig = std::fs::read(&full).unwrap();
    let mut b = orig.clone();
    b[bit / 8] ^= 1 << (bit % 8);
    std::fs::write(&full, &b).unwrap();
    let r = check();
    std::fs::write(&full, &orig).unwrap();
    r
}

/// Replaces the file at `dir/path` by `bytes` (or removes it for `None`), runs `check`, then
/// restores it.
pub fn with_replaced<R>(
    dir: &Path,
    path: &str,
    bytes: Option<&[u8]>,
    check: impl FnOnce() -> R,
) -> R {
    let full = dir.join(path);
    let orig = std::fs::read(&full).unwrap();
    match bytes {
        Some(b) => std::fs::write(&full, b).unwrap(),
        None => std::fs::remove_file(&full).unwrap(),
    }
    let r = check();
    std::fs::write(&full, &orig).unwrap();
    r
}
