//! `sov-verify log`: a fixture log verifies, and every kind of corruption is detected with the
//! right location named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Fixture, ORIGIN, failure, run, with_flipped, with_replaced};
use sov_audit_core::tile;

/// 600 entries: level 0 has two full tiles and one partial (88), level 1 one partial (2).
const N: u64 = 600;

fn log_args(fx: &Fixture) -> Vec<String> {
    let mut a = vec!["log".to_owned(), fx.path().display().to_string()];
    a.extend(fx.key_args());
    a
}

/// Where entry `i` starts in its bundle file (after its length prefix), and its length.
fn entry_span(fx: &Fixture, i: usize) -> (String, usize, usize) {
    let bundle = i / 256;
    let first = bundle * 256;
    let mut off = 0;
    for e in &fx.entries[first..i] {
        off += 2 + e.len();
    }
    let width = (fx.entries.len() - first).min(256);
    let path = if width == 256 {
        format!("tile/entries/{bundle:03}")
    } else {
        format!("tile/entries/{bundle:03}.p/{width}")
    };
    (path, off + 2, fx.entries[i].len())
}

fn entry_location(fx: &Fixture, i: usize) -> String {
    let (path, _, _) = entry_span(fx, i);
    format!("{path}, entry {} (log index {i})", i % 256)
}

#[test]
fn a_good_log_verifies() {
    let fx = Fixture::build(N);
    let r = run(&log_args(&fx));
    println!("{}", r.stdout);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.ends_with("OK\n"), "{}", r.stdout);
    assert!(r.stdout.contains(ORIGIN));
    assert!(r.stdout.contains("entries    600"), "{}", r.stdout);
    assert!(r.stdout.contains("(Ed25519, 0x01)"), "{}", r.stdout);
    assert!(
        r.stdout.contains("(ML-DSA-44 subtree/v1, 0x06)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("inference 299"), "{}", r.stdout);
    assert!(r.stdout.contains("server.start 1"), "{}", r.stdout);
    assert!(r.stdout.contains("time span  2026-11-18T"), "{}", r.stdout);

    // The exported vkeys file works as --key, alone or with a key string.
    let vkeys = fx.path().join("vkeys").display().to_string();
    let r = run(&["log", &fx.path().display().to_string(), "--key", &vkeys]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&[
        "log",
        &fx.path().display().to_string(),
        "--key",
        &vkeys,
        "--key",
        &fx.ed_vkey.encode(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One key is enough if only that one is asked for.
    let r = run(&[
        "log",
        &fx.path().display().to_string(),
        "--key",
        &fx.ml_vkey.encode(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn json_output_of_a_good_log() {
    let fx = Fixture::build(N);
    let mut a = log_args(&fx);
    a.push("--json".into());
    let r = run(&a);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["command"], "log");
    assert_eq!(j["origin"], ORIGIN);
    assert_eq!(j["size"], N);
    assert_eq!(j["root"], sov_audit_core::hash::hash_to_base64(&fx.root(N)));
    assert_eq!(j["verified_by"].as_array().unwrap().len(), 2);
    assert_eq!(j["verified_by"][1]["type"], "0x06");
    assert_eq!(j["verified_by"][1]["timestamp"], common::TIMESTAMP);
    assert_eq!(j["kinds"]["inference"], 299);
    let total: u64 = j["kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, N);
    assert_eq!(j["first_time_ms"], 1_795_000_000_000u64);
    assert_eq!(j["last_time_ms"], 1_795_000_000_000u64 + 599 * 37);
}

#[test]
fn empty_and_single_tile_logs_verify() {
    for n in [0, 1, 255, 256, 257, 512] {
        let fx = Fixture::build(n);
        let r = run(&log_args(&fx));
        assert_eq!(r.code, 0, "size {n}: {}", r.stderr);
    }
}

#[test]
fn bit_flips_in_entries_name_the_entry() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    // First, middle, bundle edges (255/256 and 511/512: settled by the next bundle), and the
    // log's last entry (settled by the signed root).
    for i in [0usize, 1, 17, 254, 255, 256, 300, 511, 512, 598, 599] {
        let (path, start, len) = entry_span(&fx, i);
        let want = entry_location(&fx, i);
        for bit in (0..len * 8).step_by(53).chain([len * 8 - 1]) {
            let (loc, what) = with_flipped(fx.path(), &path, start * 8 + bit, || failure(&args));
            assert_eq!(loc, want, "entry {i}, bit {bit}: {what}");
        }
    }
}

#[test]
fn bit_flips_in_level0_tiles_name_the_hash() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    for (path, hash) in [
        ("tile/0/000", 0usize),
        ("tile/0/000", 5),
        ("tile/0/000", 255), // settled by the next bundle's first entry
        ("tile/0/001", 128),
        ("tile/0/002.p/88", 0),
        ("tile/0/002.p/88", 87), // the log's last entry: settled by the signed root
    ] {
        for bit in [0, 77, 255] {
            let (loc, what) = with_flipped(fx.path(), path, hash * 256 + bit, || failure(&args));
            assert_eq!(loc, format!("{path}, hash {hash}"), "bit {bit}: {what}");
        }
    }
}

#[test]
fn a_last_tile_hash_of_a_full_last_tile_is_settled_by_the_root() {
    let fx = Fixture::build(512);
    let args = log_args(&fx);
    let (loc, _) = with_flipped(fx.path(), "tile/0/001", 255 * 256 + 3, || failure(&args));
    assert_eq!(loc, "tile/0/001, hash 255");
    let (path, start, _) = entry_span(&fx, 511);
    let (loc, _) = with_flipped(fx.path(), &path, start * 8 + 100, || failure(&args));
    assert_eq!(loc, "tile/entries/001, entry 255 (log index 511)");
}

#[test]
fn bit_flips_in_level1_tiles_name_the_hash() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    for hash in [0usize, 1] {
        for bit in [0, 100, 255] {
            let (loc, what) = with_flipped(fx.path(), "tile/1/000.p/2", hash * 256 + bit, || {
                failure(&args)
            });
            assert_eq!(loc, format!("tile/1/000.p/2, hash {hash}"), "{what}");
        }
    }
}

#[test]
fn two_full_levels_and_a_third() {
    // 65,536 + 300 entries: level 0 has 257 full tiles and a partial one, level 1 a full tile
    // and a partial one (width 1), level 2 a partial one (width 1).
    let n = 65_536 + 300;
    let fx = Fixture::build(n);
    let args = log_args(&fx);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (path, hash) in [
        ("tile/1/000", 100usize),
        ("tile/1/000", 255),
        ("tile/1/001.p/1", 0),
        ("tile/2/000.p/1", 0),
        ("tile/0/256", 7),
        ("tile/0/257.p/44", 3),
    ] {
        let (loc, what) = with_flipped(fx.path(), path, hash * 256 + 9, || failure(&args));
        assert_eq!(loc, format!("{path}, hash {hash}"), "{what}");
    }
    let i = 65_536 + 5;
    let (bpath, start, _) = entry_span_big(&fx, i);
    let (loc, _) = with_flipped(fx.path(), &bpath, start * 8 + 600, || failure(&args));
    assert_eq!(loc, format!("{bpath}, entry 5 (log index {i})"));
}

/// `entry_span` for bundle indexes of more than three digits.
fn entry_span_big(fx: &Fixture, i: usize) -> (String, usize, usize) {
    let bundle = i / 256;
    let first = bundle * 256;
    let off: usize = fx.entries[first..i].iter().map(|e| 2 + e.len()).sum();
    let width = (fx.entries.len() - first).min(256) as u16;
    let t = tile::Tile {
        kind: tile::TileKind::Entries,
        index: bundle as u64,
        width,
    };
    (t.path(), off + 2, fx.entries[i].len())
}

#[test]
fn bit_flips_in_the_checkpoint_text() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    let text_len = fx.checkpoint_text(N).len();
    for bit in (0..text_len * 8).step_by(5) {
        let (loc, what) = with_flipped(fx.path(), "checkpoint", bit, || failure(&args));
        assert_eq!(loc, "checkpoint", "bit {bit}: {what}");
    }
}

#[test]
fn bit_flips_in_each_signature_name_the_signature() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    let text = fx.checkpoint_text(N);
    let good_ed = fx.ed_sig(&text);
    let good_ml = fx.ml_sig(N, &fx.root(N));
    for (which, len) in [(0usize, 4 + good_ed.len()), (1, 4 + good_ml.len())] {
        let want = if which == 0 {
            format!("checkpoint, signature by {ORIGIN} (0x01)")
        } else {
            format!("checkpoint, signature by {ORIGIN} (0x06)")
        };
        // Key ID bytes, timestamp bytes (ML-DSA), then a sample across the signature.
        let bits: Vec<usize> = (0..64).chain((64..len * 8).step_by(97)).collect();
        for bit in bits {
            let mut note = sov_audit_core::note::Note::parse(&fx.checkpoint(N)).unwrap();
            let sig = &mut note.signatures[which];
            let mut raw = sig.key_id.to_be_bytes().to_vec();
            raw.extend_from_slice(&sig.signature);
            raw[bit / 8] ^= 1 << (bit % 8);
            sig.key_id = u32::from_be_bytes(raw[..4].try_into().unwrap());
            sig.signature = raw[4..].to_vec();
            let bytes = note.to_bytes();
            let (loc, what) =
                with_replaced(fx.path(), "checkpoint", Some(&bytes), || failure(&args));
            assert_eq!(loc, want, "signature {which}, bit {bit}: {what}");
        }
    }
    // Raw flips anywhere in the signature lines (base64 text, names, the em dash) fail too.
    let all = fx.checkpoint(N);
    for bit in ((text.len() + 1) * 8..all.len() * 8).step_by(211) {
        let (loc, what) = with_flipped(fx.path(), "checkpoint", bit, || failure(&args));
        assert!(loc.starts_with("checkpoint"), "bit {bit}: {loc}: {what}");
    }
}

#[test]
fn a_deleted_entry_is_detected() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    // Removed from a full bundle: it no longer has 256 entries.
    let mut items: Vec<&[u8]> = fx.entries[..256].iter().map(Vec::as_slice).collect();
    items.remove(10);
    let short = tile::encode_bundle(&items).unwrap();
    let (loc, what) = with_replaced(fx.path(), "tile/entries/000", Some(&short), || {
        failure(&args)
    });
    assert_eq!(loc, "tile/entries/000", "{what}");
    // Removed and the entry after it duplicated, so the count is right: the chain breaks.
    let mut items: Vec<&[u8]> = fx.entries[..256].iter().map(Vec::as_slice).collect();
    items.remove(10);
    items.push(&fx.entries[255]);
    let bytes = tile::encode_bundle(&items).unwrap();
    let (loc, what) = with_replaced(fx.path(), "tile/entries/000", Some(&bytes), || {
        failure(&args)
    });
    assert_eq!(loc, "tile/entries/000, entry 10 (log index 10)", "{what}");
    // Removed from the partial bundle, which is renamed to its new width.
    let mut items: Vec<&[u8]> = fx.entries[512..].iter().map(Vec::as_slice).collect();
    items.remove(40);
    let bytes = tile::encode_bundle(&items).unwrap();
    common::write(fx.path(), "tile/entries/002.p/87", &bytes);
    let (loc, what) = with_replaced(fx.path(), "tile/entries/002.p/88", None, || failure(&args));
    assert_eq!(loc, "tile/entries/002.p/88", "{what}");
    assert!(what.contains("missing"), "{what}");
}

#[test]
fn reordered_entries_are_detected() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    let mut items: Vec<&[u8]> = fx.entries[..256].iter().map(Vec::as_slice).collect();
    items.swap(20, 21);
    let bytes = tile::encode_bundle(&items).unwrap();
    let (loc, what) = with_replaced(fx.path(), "tile/entries/000", Some(&bytes), || {
        failure(&args)
    });
    assert_eq!(loc, "tile/entries/000, entry 20 (log index 20)", "{what}");
    // Across a bundle boundary: entry 255 and 256 exchanged.
    let mut b0: Vec<&[u8]> = fx.entries[..256].iter().map(Vec::as_slice).collect();
    let mut b1: Vec<&[u8]> = fx.entries[256..512].iter().map(Vec::as_slice).collect();
    std::mem::swap(&mut b0[255], &mut b1[0]);
    let bytes0 = tile::encode_bundle(&b0).unwrap();
    let bytes1 = tile::encode_bundle(&b1).unwrap();
    let (loc, what) = with_replaced(fx.path(), "tile/entries/000", Some(&bytes0), || {
        with_replaced(fx.path(), "tile/entries/001", Some(&bytes1), || {
            failure(&args)
        })
    });
    assert_eq!(loc, "tile/entries/000, entry 255 (log index 255)", "{what}");
}

#[test]
fn truncations_are_detected() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    let bundle = std::fs::read(fx.path().join("tile/entries/001")).unwrap();
    // A bundle shortened: by one byte, by one entry's worth, to nothing.
    for cut in [1, 100, bundle.len()] {
        let short = &bundle[..bundle.len() - cut];
        let (loc, what) = with_replaced(fx.path(), "tile/entries/001", Some(short), || {
            failure(&args)
        });
        assert_eq!(loc, "tile/entries/001", "cut {cut}: {what}");
    }
    // A tile shortened.
    let t = std::fs::read(fx.path().join("tile/0/001")).unwrap();
    let (loc, _) = with_replaced(fx.path(), "tile/0/001", Some(&t[..t.len() - 32]), || {
        failure(&args)
    });
    assert_eq!(loc, "tile/0/001");
    // Files missing.
    for path in [
        "tile/0/000",
        "tile/0/002.p/88",
        "tile/1/000.p/2",
        "tile/entries/000",
        "tile/entries/002.p/88",
        "checkpoint",
    ] {
        let (loc, what) = with_replaced(fx.path(), path, None, || failure(&args));
        assert_eq!(loc, path, "{what}");
        assert!(what.contains("missing"), "{what}");
    }
    // The partial bundle and tile replaced by shorter ones (a torn tail), under the old names.
    let items: Vec<&[u8]> = fx.entries[512..590].iter().map(Vec::as_slice).collect();
    let shorter = tile::encode_bundle(&items).unwrap();
    let (loc, _) = with_replaced(fx.path(), "tile/entries/002.p/88", Some(&shorter), || {
        failure(&args)
    });
    assert_eq!(loc, "tile/entries/002.p/88");
}

#[test]
fn wrong_or_missing_keys_are_detected() {
    let fx = Fixture::build(N);
    let dir = fx.path().display().to_string();
    // Another Ed25519 key under the same name: a different key ID, so no signature by it.
    let other = ed25519_dalek::SigningKey::from_bytes(&[0x33; 32]);
    let other_vkey = sov_audit_core::note::Vkey::from_ed25519(ORIGIN, other.verifying_key());
    let (loc, what) = failure(&["log", &dir, "--key", &other_vkey.encode()]);
    assert_eq!(
        loc,
        format!("checkpoint, signature by {ORIGIN} (0x01)"),
        "{what}"
    );
    assert!(what.contains("missing"), "{what}");
    // A right key and a wrong one: every key given must have signed.
    let (loc, _) = failure(&[
        "log",
        &dir,
        "--key",
        &fx.ml_vkey.encode(),
        "--key",
        &other_vkey.encode(),
    ]);
    assert_eq!(loc, format!("checkpoint, signature by {ORIGIN} (0x01)"));
    // A key by another name.
    let stranger =
        sov_audit_core::note::Vkey::from_ed25519("example.org/other", other.verifying_key());
    let (loc, _) = failure(&["log", &dir, "--key", &stranger.encode()]);
    assert_eq!(loc, "checkpoint, signature by example.org/other (0x01)");
}

#[test]
fn human_failure_output_and_exit_status() {
    let fx = Fixture::build(N);
    let args = log_args(&fx);
    let r = with_replaced(fx.path(), "tile/0/000", None, || run(&args));
    println!("{}", r.stderr);
    let (path, start, _) = entry_span(&fx, 17);
    let r2 = with_flipped(fx.path(), &path, start * 8 + 900, || run(&args));
    println!("{}", r2.stderr);
    assert_eq!(r2.code, 1);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with("FAILED: tile/0/000: missing"),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let fx = Fixture::build(3);
    let dir = fx.path().display().to_string();
    for args in [
        vec![],
        vec!["log", &dir],
        vec!["log", &dir, "--key", "not-a-key"],
        vec!["log", &dir, "--key"],
        vec!["log", &dir, "--key", "x", "--frobnicate"],
        vec!["frob"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {} {}", r.stdout, r.stderr);
        assert!(r.stderr.contains("sov-verify --help"), "{}", r.stderr);
    }
    let r = run(&["log", &dir, "--key", "nope", "--json"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.json()["ok"], false);
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("sov-verify log DIR --key VKEY"));
    // Not a directory.
    let (loc, _) = failure(&[
        "log",
        &format!("{dir}/nowhere"),
        "--key",
        &fx.ed_vkey.encode(),
    ]);
    assert!(loc.ends_with("nowhere"), "{loc}");
}
