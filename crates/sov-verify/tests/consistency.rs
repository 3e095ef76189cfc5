//! `sov-verify consistency`: two checkpoints of one log, with a proof file or from the tiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Fixture, failure, run};

const N: u64 = 600;

fn args(fx: &Fixture, old: u64, new: u64, tail: &[&str]) -> Vec<String> {
    let o = fx.file(&format!("cp-{old}"), &fx.checkpoint(old));
    let n = fx.file(&format!("cp-{new}"), &fx.checkpoint(new));
    let mut a = vec![
        "consistency".to_owned(),
        o.display().to_string(),
        n.display().to_string(),
    ];
    a.extend(fx.key_args());
    a.extend(tail.iter().map(|s| (*s).to_owned()));
    a
}

#[test]
fn real_pairs_verify_with_a_proof_file_and_from_tiles() {
    let fx = Fixture::build(N);
    let dir = fx.path().display().to_string();
    for (old, new) in [
        (300u64, 600u64),
        (1, 600),
        (256, 600),
        (512, 600),
        (600, 600),
        (100, 300),
    ] {
        let proof = fx.file("proof", fx.consistency_file(old, new).as_bytes());
        let proof = proof.display().to_string();
        let r = run(&args(&fx, old, new, &["--proof", &proof]));
        assert_eq!(r.code, 0, "{old}->{new}: {}", r.stderr);
        assert!(r.stdout.ends_with("OK\n"));
        // From the tiles of the 600-entry log (for new < 600, partial tiles of `new` are
        // read from the wider tiles that replaced them).
        let r = run(&args(&fx, old, new, &["--dir", &dir]));
        assert_eq!(r.code, 0, "{old}->{new} from tiles: {}", r.stderr);
    }
    // From the empty tree: no proof (an empty file), and the old root must be the empty one.
    let empty = fx.file("empty-proof", b"");
    let empty = empty.display().to_string();
    let r = run(&args(&fx, 0, 600, &["--proof", &empty]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&args(&fx, 0, 600, &["--dir", &dir]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let one = fx.file("one-hash", fx.consistency_file(300, 600).as_bytes());
    let (loc, _) = failure(&args(&fx, 0, 600, &["--proof", &one.display().to_string()]));
    assert_eq!(loc, "consistency proof");

    let proof = fx.file("proof", fx.consistency_file(300, 600).as_bytes());
    let mut a = args(&fx, 300, 600, &["--proof", &proof.display().to_string()]);
    a.push("--json".into());
    let j = run(&a).json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["old"]["size"], 300);
    assert_eq!(j["new"]["size"], 600);
}

#[test]
fn wrong_proofs_fail() {
    let fx = Fixture::build(N);
    let good = fx.consistency_file(300, 600);
    let lines: Vec<&str> = good.lines().collect();
    assert!(lines.len() >= 2);
    let mut cases: Vec<String> = Vec::new();
    // A hash altered (a different valid base64 hash).
    let mut raw = sov_audit_core::verify::parse_hash_lines(good.as_bytes(), "p").unwrap();
    raw[0][0] ^= 1;
    cases.push(
        raw.iter()
            .map(|h| format!("{}\n", sov_audit_core::hash::hash_to_base64(h)))
            .collect(),
    );
    // A line dropped; lines swapped; a line added; empty.
    cases.push(lines[1..].join("\n"));
    let mut swapped = lines.clone();
    swapped.swap(0, 1);
    cases.push(swapped.join("\n"));
    cases.push(format!("{good}{}\n", lines[0]));
    cases.push(String::new());
    // The proof for other sizes.
    cases.push(fx.consistency_file(299, 600));
    for (i, c) in cases.iter().enumerate() {
        let p = fx.file("bad", c.as_bytes());
        let (loc, what) = failure(&args(&fx, 300, 600, &["--proof", &p.display().to_string()]));
        assert_eq!(loc, "consistency proof", "case {i}: {what}");
    }
    // Not base64.
    let p = fx.file("bad", b"not base64!\n");
    let (loc, _) = failure(&args(&fx, 300, 600, &["--proof", &p.display().to_string()]));
    assert!(loc.ends_with("bad, line 1"), "{loc}");
    // Old and new the wrong way round.
    let p = fx.file("p", good.as_bytes());
    let (loc, _) = failure(&args(&fx, 600, 300, &["--proof", &p.display().to_string()]));
    assert_eq!(loc, "new checkpoint");
}

#[test]
fn checkpoints_must_verify_and_tiles_must_be_right() {
    let fx = Fixture::build(N);
    let dir = fx.path().display().to_string();
    // An altered old checkpoint (its ML-DSA signature).
    let mut note = sov_audit_core::note::Note::parse(&fx.checkpoint(300)).unwrap();
    note.signatures[1].signature[50] ^= 4;
    let o = fx.file("old-bad", &note.to_bytes());
    let n = fx.file("new", &fx.checkpoint(600));
    let mut a = vec![
        "consistency".to_owned(),
        o.display().to_string(),
        n.display().to_string(),
        "--dir".into(),
        dir.clone(),
    ];
    a.extend(fx.key_args());
    let (loc, _) = failure(&a);
    assert_eq!(
        loc,
        format!("old checkpoint, signature by {} (0x06)", common::ORIGIN)
    );
    // A level-1 tile altered: the proof computed from it is wrong.
    let (loc, _) = common::with_flipped(fx.path(), "tile/1/000.p/2", 5, || {
        failure(&args(&fx, 300, 600, &["--dir", &dir]))
    });
    assert_eq!(loc, "consistency proof");
    // A tile missing.
    let (loc, what) = common::with_replaced(fx.path(), "tile/0/002.p/88", None, || {
        failure(&args(&fx, 300, 600, &["--dir", &dir]))
    });
    assert_eq!(loc, "tile/0/002.p/88", "{what}");
}
