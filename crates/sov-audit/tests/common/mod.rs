//! Helpers shared by the integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    missing_debug_implementations
)]

use std::path::{Path, PathBuf};

use sov_audit::{AuditLog, Draft, Kind, LogConfig, LogReader, Outcome, Recovery};
use sov_audit_core::checkpoint::{require_all, verify_checkpoint};
use sov_audit_core::entry::Entry;
use sov_audit_core::hash::{Hash, leaf_hash};
use sov_audit_core::merkle::{CompactRange, tree_hash};
use sov_audit_core::note::{SIG_COSIG_MLDSA44, SIG_ED25519, Vkey, parse_vkeys};
use sov_audit_core::tile::{Tile, TileSource, parse_bundle};
use sov_audit_core::verify::{LogFiles, verify_log};
use sov_keys::LogKey;

pub const ORIGIN: &str = "sovereign.test/audit";
pub const NODE: &str = "node-1";

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub keys: PathBuf,
    pub dir: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("keys");
        let dir = tmp.path().join("audit");
        LogKey::init_or_load(&keys).unwrap();
        Env { tmp, keys, dir }
    }

    pub fn key(&self) -> LogKey {
        LogKey::init_or_load(&self.keys).unwrap()
    }

    pub fn open(&self) -> (AuditLog, Recovery) {
        AuditLog::open(&self.dir, self.key(), config()).unwrap()
    }

    pub fn wal(&self) -> PathBuf {
        self.dir.join("entries.wal")
    }
}

pub fn config() -> LogConfig {
    LogConfig::new(ORIGIN, NODE)
}

pub fn draft(i: u64) -> Draft {
    let mut d = Draft::new(
        Kind::Inference,
        format!("user-{}", i % 7),
        format!("model/{i}"),
        if i.is_multiple_of(5) {
            Outcome::Denied
        } else {
            Outcome::Ok
        },
    );
    d.reason = if i.is_multiple_of(5) {
        "quota".into()
    } else {
        String::new()
    };
    d.input = Some(leaf_hash(&i.to_be_bytes()));
    d.attrs = vec![("tokens".into(), (i * 3).to_string())];
    d
}

pub fn vkeys(dir: &Path) -> Vec<Vkey> {
    parse_vkeys(&std::fs::read_to_string(dir.join("vkeys")).unwrap()).unwrap()
}

/// Files of a log directory, for `verify_log`.
pub struct DirFiles(pub PathBuf);

impl LogFiles for DirFiles {
    fn get(&mut self, path: &str) -> Result<Option<Vec<u8>>, String> {
        match std::fs::read(self.0.join(path)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Verifies everything about the published log in `dir` independently of the writer: the
/// checkpoint's two signatures, every entry (decodes, index, prev chain, time), the root
/// recomputed from the entries and from the hash tiles, and `signed`. Returns the leaf hashes.
pub fn verify_all(dir: &Path) -> Vec<Hash> {
    let reader = LogReader::open(dir).unwrap();
    let keys = vkeys(dir);
    assert_eq!(keys.len(), 2);
    let (note, cp) = reader.checkpoint();
    let verified = verify_checkpoint(note, &keys).unwrap();
    require_all(&verified, &keys).unwrap();
    let types: Vec<u8> = verified.verified_by.iter().map(|v| v.sig_type).collect();
    assert!(types.contains(&SIG_ED25519) && types.contains(&SIG_COSIG_MLDSA44));
    assert_eq!(verified.checkpoint, *cp);
    assert_eq!(cp.origin, ORIGIN);

    let mut range = CompactRange::new();
    let mut leaves = Vec::new();
    let mut prev = [0u8; 32];
    let mut time = 0;
    for bundle in Tile::entry_bundles_for_size(cp.size) {
        let bytes = std::fs::read(dir.join(bundle.path())).unwrap();
        for entry in parse_bundle(&bytes, &bundle).unwrap() {
            let i = leaves.len() as u64;
            let e = Entry::decode(entry).unwrap();
            assert_eq!(e.index, i);
            assert_eq!(e.prev, prev, "prev of entry {i}");
            assert!(e.time_ms >= time, "time of entry {i}");
            assert_eq!(e.node, NODE);
            time = e.time_ms;
            prev = leaf_hash(entry);
            range.push(prev);
            leaves.push(prev);
        }
    }
    assert_eq!(leaves.len() as u64, cp.size);
    // The reader serves the same entries.
    for i in [0, cp.size / 2, cp.size.saturating_sub(1)] {
        if i < cp.size {
            assert_eq!(leaf_hash(&reader.entry(i).unwrap()), leaves[i as usize]);
        }
    }
    assert_eq!(range.root(), cp.root, "root recomputed from the entries");
    // Exact paths only: a checkpoint's partial tiles are never removed.
    let mut src = TileSource::new(cp.size, |t: &Tile| std::fs::read(dir.join(t.path())));
    assert_eq!(
        tree_hash(&mut src, cp.size).unwrap(),
        cp.root,
        "root from the hash tiles"
    );
    // `signed` is never behind the checkpoint.
    let signed = std::fs::read_to_string(dir.join("signed")).unwrap();
    let mut lines = signed.lines();
    let signed_size: u64 = lines.next().unwrap().parse().unwrap();
    assert!(signed_size >= cp.size);
    if signed_size == cp.size {
        use base64::Engine as _;
        let root = base64::engine::general_purpose::STANDARD
            .decode(lines.next().unwrap())
            .unwrap();
        assert_eq!(root, cp.root);
    }
    // And the core's whole-log verifier agrees.
    let t = std::time::Instant::now();
    let report = verify_log(&mut DirFiles(dir.to_path_buf()), &keys).unwrap();
    assert_eq!(report.size, cp.size);
    assert_eq!(report.root, cp.root);
    if std::env::var_os("SOV_AUDIT_TIMING").is_some() {
        println!("verify_log {:?}", t.elapsed());
    }
    leaves
}

/// Splits the WAL into records: (offset, bytes); `None` bytes for a terminator.
pub fn wal_records(bytes: &[u8]) -> Vec<(usize, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 2 <= bytes.len() {
        let n = usize::from(u16::from_be_bytes([bytes[pos], bytes[pos + 1]]));
        if n == 0 {
            out.push((pos, None));
        } else {
            out.push((pos, Some(bytes[pos + 2..pos + 2 + n].to_vec())));
        }
        pos += 2 + n;
    }
    assert_eq!(pos, bytes.len(), "WAL framing ends exactly at the end");
    out
}
