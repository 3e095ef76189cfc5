//! Tile paths, hash tiles and entry bundles: parsing never panics; what parses round-trips.
//!
//! Input: byte 0 = mode. Mode 0: the rest is a tile path. Otherwise: byte 1 = kind (0xff: an
//! entry bundle, else a hash tile at level byte % 64), bytes 2..4 = width (big-endian, folded
//! into 1..=256), then the file's bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sov_audit_core::tile::{Tile, TileKind, encode_bundle, parse_bundle, parse_hash_tile};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode == 0 {
        if let Ok(path) = std::str::from_utf8(rest)
            && let Ok(tile) = Tile::parse_path(path)
        {
            assert_eq!(tile.path(), path, "tile path does not round-trip");
            assert_eq!(Tile::parse_path(&tile.path()), Ok(tile));
        }
        return;
    }
    let [kind, w0, w1, payload @ ..] = rest else {
        return;
    };
    let width = (u16::from_be_bytes([*w0, *w1]) % 256) + 1;
    let kind = if *kind == 0xff {
        TileKind::Entries
    } else {
        TileKind::Hash { level: kind % 64 }
    };
    let tile = Tile {
        kind,
        index: u64::from(*w0) << 20 | u64::from(*w1),
        width,
    };
    let _ = tile.path();
    if let Ok(hashes) = parse_hash_tile(payload, &tile) {
        assert_eq!(hashes.len(), usize::from(width));
        let flat: Vec<u8> = hashes.iter().flatten().copied().collect();
        assert_eq!(flat, payload);
    }
    if let Ok(entries) = parse_bundle(payload, &tile) {
        assert_eq!(entries.len(), usize::from(width));
        assert_eq!(
            encode_bundle(&entries).expect("parsed entries encode"),
            payload
        );
    }
});
