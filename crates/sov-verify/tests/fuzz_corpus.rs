//! Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/) from the test fixture:
//! `cargo test -p sov-verify --test fuzz_corpus -- --ignored`. The fuzz targets' fixed keys
//! (fuzz/src/lib.rs) are the fixture's; a normal run checks that they still agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{Fixture, make_entry};
use sov_audit_core::tile::{Tile, TileKind, encode_bundle};

fn corpus_dir(target: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn put(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(corpus_dir(target).join(name), bytes).unwrap();
}

/// The tile target's input: mode 1, a tile (kind byte: 0xff entries, else a level; width),
/// then the file's bytes.
fn tile_input(kind: u8, width: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![1, kind];
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn fuzz_keys_are_the_fixture_keys() {
    let fx = Fixture::build(1);
    let lib = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/src/lib.rs"),
    )
    .unwrap();
    assert!(
        lib.contains(&fx.ed_vkey.encode()),
        "update ED25519_VKEY in fuzz/src/lib.rs"
    );
    assert!(
        lib.contains(&fx.ml_vkey.encode()),
        "update MLDSA_VKEY in fuzz/src/lib.rs"
    );
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand when the formats change"]
fn write_fuzz_corpus() {
    let fx = Fixture::build(600);
    println!("ED25519_VKEY {}", fx.ed_vkey.encode());
    println!("MLDSA_VKEY {}", fx.ml_vkey.encode());

    for i in [0usize, 3, 4, 17, 599] {
        put("entry", &format!("entry-{i}"), &fx.entries[i]);
    }
    let mut big = make_entry(42, [9; 32]);
    big.attrs = (0..20)
        .map(|k| (format!("k{k:02}"), "v".repeat(k)))
        .collect();
    big.reason = "a reason with ünïcödé".into();
    big.output = None;
    put("entry", "entry-attrs", &big.encode().unwrap());

    for size in [1u64, 256, 600] {
        let cp = fx.checkpoint(size);
        put("note", &format!("checkpoint-{size}"), &cp);
        put("checkpoint", &format!("checkpoint-{size}"), &cp);
    }
    put(
        "note",
        "plain",
        "hello\nworld\n\n\u{2014} example.com/x AAAAAQID\n".as_bytes(),
    );

    for (i, size, extra) in [
        (0u64, 1u64, true),
        (17, 600, true),
        (599, 600, false),
        (255, 256, true),
    ] {
        put(
            "proof",
            &format!("proof-{i}-{size}"),
            &fx.receipt(i, size, extra).to_bytes(),
        );
    }

    for p in [
        "tile/0/000",
        "tile/entries/000.p/88",
        "tile/1/000.p/2",
        "tile/2/x001/x234/067.p/255",
        "tile/entries/x999/999",
    ] {
        let mut v = vec![0u8];
        v.extend_from_slice(p.as_bytes());
        put("tile", &p.replace('/', "_"), &v);
    }
    let items: Vec<&[u8]> = fx.entries[..3].iter().map(Vec::as_slice).collect();
    put(
        "tile",
        "bundle-3",
        &tile_input(0xff, 3, &encode_bundle(&items).unwrap()),
    );
    let hashes: Vec<u8> = fx.entries[..4]
        .iter()
        .flat_map(|e| sov_audit_core::hash::leaf_hash(e))
        .collect();
    put("tile", "hashes-4", &tile_input(0, 4, &hashes));
    let t = Tile {
        kind: TileKind::Hash { level: 1 },
        index: 0,
        width: 2,
    };
    put(
        "tile",
        "hashes-level1",
        &tile_input(1, t.width, &hashes[..64]),
    );

    put("vkey", "ed25519", fx.ed_vkey.encode().as_bytes());
    put("vkey", "mldsa44", fx.ml_vkey.encode().as_bytes());
    let cosig =
        sov_audit_core::note::Vkey::from_cosig_ed25519("witness.example/w1", fx.ed.verifying_key());
    put("vkey", "cosig-ed25519", cosig.encode().as_bytes());
}
