//! A real C2SP tlog-tiles tree of size 300 (`tests/vectors/tiles`, from FiloSottile/sunlight's
//! skylight testdata): its tiles must reconstruct the checkpoint's root through
//! [`TileSource`], and proofs generated from the tiles must verify against it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sov_audit_core::hash::{Hash, hash_from_slice};
use sov_audit_core::merkle::{
    SubtreeSource, consistency_proof, inclusion_proof, tree_hash, verify_consistency,
    verify_inclusion,
};
use sov_audit_core::tile::{Tile, TileError, TileKind, TileSource, parse_bundle, parse_hash_tile};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

fn dir() -> PathBuf {
    let dir = Path::new(VECTORS).join("tiles");
    assert!(
        dir.is_dir(),
        "test vectors missing: {} does not exist (they are committed under crates/sov-audit-core/tests/vectors)",
        dir.display()
    );
    dir
}

/// (size, root) from the checkpoint file: line 2 is the size, line 3 the base64 root.
fn checkpoint() -> (u64, Hash) {
    let text = fs::read_to_string(dir().join("checkpoint")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let size = lines[1].parse().unwrap();
    let root = hash_from_slice(&STANDARD.decode(lines[2]).unwrap()).unwrap();
    (size, root)
}

fn read(tile: &Tile) -> Result<Vec<u8>, String> {
    let path = dir().join(tile.path());
    fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

#[test]
fn tiles_reconstruct_the_checkpoint_root() {
    let (size, root) = checkpoint();
    assert_eq!(size, 300);

    // The files in the folder are exactly the hash tiles a tree of 300 has.
    let tiles = Tile::hash_tiles_for_size(size);
    let paths: Vec<String> = tiles.iter().map(Tile::path).collect();
    assert_eq!(paths, ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"]);
    for t in &tiles {
        assert_eq!(Tile::parse_path(&t.path()).unwrap(), *t);
        parse_hash_tile(&read(t).unwrap(), t).unwrap();
    }

    let fetched = RefCell::new(Vec::new());
    let mut src = TileSource::new(size, |t: &Tile| {
        fetched.borrow_mut().push(t.path());
        read(t)
    });
    assert_eq!(tree_hash(&mut src, size).unwrap(), root);

    // The level 1 tile's hash is the root of the full level 0 tile.
    let level0 = parse_hash_tile(&read(&tiles[0]).unwrap(), &tiles[0]).unwrap();
    let level1 = parse_hash_tile(&read(&tiles[2]).unwrap(), &tiles[2]).unwrap();
    assert_eq!(sov_audit_core::tile::subtree_root(&level0), level1[0]);
    assert_eq!(src.subtree(8, 0).unwrap(), level1[0]);

    // Inclusion proofs from the tiles, for leaves in the full and the partial tile.
    for index in [
        0, 1, 2, 7, 100, 127, 128, 255, 256, 257, 270, 287, 288, 296, 299,
    ] {
        let leaf = src.subtree(0, index).unwrap();
        let proof = inclusion_proof(&mut src, index, size).unwrap();
        verify_inclusion(index, size, &leaf, &proof, &root)
            .unwrap_or_else(|e| panic!("index {index}: {e}"));
        let mut bad = proof.clone();
        bad[0][0] ^= 1;
        assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
    }
    // Consistency proofs from earlier sizes (whose subtrees are all inside the 300 tree).
    for size1 in [1, 2, 3, 100, 255, 256, 257, 299, 300] {
        let root1 = tree_hash(&mut src, size1).unwrap();
        let proof = consistency_proof(&mut src, size1, size).unwrap();
        verify_consistency(size1, size, &root1, &root, &proof)
            .unwrap_or_else(|e| panic!("{size1} -> {size}: {e}"));
    }
    // Nothing outside the tree is served.
    assert!(src.subtree(0, 300).is_err());
    assert!(src.subtree(9, 0).is_err());

    // Each tile was read once, and only the three tiles of the tree.
    let fetched = fetched.borrow().clone();
    let unique: HashSet<&String> = fetched.iter().collect();
    assert_eq!(
        unique.len(),
        fetched.len(),
        "a tile was read twice: {fetched:?}"
    );
    assert_eq!(unique.len(), 3);
}

#[test]
fn entry_bundle_placeholders() {
    let (size, _) = checkpoint();
    let bundles = Tile::entry_bundles_for_size(size);
    let paths: Vec<String> = bundles.iter().map(Tile::path).collect();
    assert_eq!(paths, ["tile/entries/000", "tile/entries/001.p/44"]);
    let widths: Vec<u16> = bundles.iter().map(|t| t.width).collect();
    assert_eq!(widths, [256, 44]);
    for t in &bundles {
        assert_eq!(Tile::parse_path(&t.path()).unwrap(), *t);
        assert_eq!(t.kind, TileKind::Entries);
        // The placeholder files are gzip-compressed text ("fake mirrored entry bundle"), not entry
        // bundles: the strict parser must refuse them, naming where it stopped, and not panic.
        let bytes = read(t).unwrap();
        assert_eq!(
            &bytes[..2],
            &[0x1f, 0x8b],
            "{}: expected the gzip placeholder",
            t.path()
        );
        let err = parse_bundle(&bytes, t).unwrap_err();
        assert!(
            matches!(
                err,
                TileError::BundleTruncated {
                    entry: 0,
                    offset: 0,
                    ..
                }
            ),
            "{}: {err}",
            t.path()
        );
        assert!(err.to_string().contains(&t.path()));
    }
}
