//! `sov-verify proof`: receipts (c2sp.org/tlog-proof@v1) verify, and any change is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Fixture, ORIGIN, failure, run};
use sov_audit_core::verify::verify_receipt;

const N: u64 = 600;

fn proof_args(fx: &Fixture, file: &std::path::Path) -> Vec<String> {
    let mut a = vec!["proof".to_owned(), file.display().to_string()];
    a.extend(fx.key_args());
    a
}

#[test]
fn a_receipt_verifies_and_shows_its_entry() {
    let fx = Fixture::build(N);
    for (index, size) in [(17u64, N), (0, 1), (599, N), (255, 256), (300, 301)] {
        let file = fx.file("r.tlog-proof", &fx.receipt(index, size, true).to_bytes());
        let r = run(&proof_args(&fx, &file));
        assert_eq!(r.code, 0, "{index}/{size}: {}", r.stderr);
        assert!(r.stdout.ends_with("OK\n"));
        assert!(
            r.stdout.contains(&format!("entry      {index}\n")),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("{ORIGIN}, size {size}")),
            "{}",
            r.stdout
        );
    }
    let file = fx.file("r.tlog-proof", &fx.receipt(15, N, true).to_bytes());
    let r = run(&proof_args(&fx, &file));
    for want in [
        "kind       refusal",
        "outcome    denied",
        "principal  user-1",
        "resource   smollm2-135m-instruct",
        "reason     queue full",
        "model      0707",
        "input      ",
        "output     -",
        "attr       route=/v1/chat/completions",
    ] {
        assert!(r.stdout.contains(want), "{want:?} in {}", r.stdout);
    }
    // JSON.
    let mut a = proof_args(&fx, &file);
    a.push("--json".into());
    let j = run(&a).json();
    assert_eq!(j["ok"], true);
    assert_eq!(j["index"], 15);
    assert_eq!(j["entry"]["kind"], "refusal");
    assert_eq!(j["entry"]["index"], 15);
    assert_eq!(j["checkpoint"]["size"], N);
    assert_eq!(j["verified_by"].as_array().unwrap().len(), 2);
}

#[test]
fn the_entry_can_come_from_a_file() {
    let fx = Fixture::build(N);
    let entry = fx.file("e17", &fx.entries[17]);
    // Receipt without extra: --entry is required.
    let bare = fx.file("bare.tlog-proof", &fx.receipt(17, N, false).to_bytes());
    let mut a = proof_args(&fx, &bare);
    a.extend(["--entry".to_owned(), entry.display().to_string()]);
    assert_eq!(run(&a).code, 0);
    let (loc, what) = failure(&proof_args(&fx, &bare));
    assert_eq!(loc, "proof", "{what}");
    // With extra too: they must agree.
    let full = fx.file("full.tlog-proof", &fx.receipt(17, N, true).to_bytes());
    let mut a = proof_args(&fx, &full);
    a.extend(["--entry".to_owned(), entry.display().to_string()]);
    assert_eq!(run(&a).code, 0);
    let other = fx.file("e18", &fx.entries[18]);
    let mut a = proof_args(&fx, &full);
    a.extend(["--entry".to_owned(), other.display().to_string()]);
    let (loc, _) = failure(&a);
    assert_eq!(loc, "entry");
    // A wrong entry for a bare receipt: another index, or the right index altered.
    let mut a = proof_args(&fx, &bare);
    a.extend(["--entry".to_owned(), other.display().to_string()]);
    let (loc, what) = failure(&a);
    assert_eq!(loc, "entry", "{what}");
    let mut altered = fx.entries[17].clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x01; // the tokens attribute's last digit
    let altered = fx.file("e17x", &altered);
    let mut a = proof_args(&fx, &bare);
    a.extend(["--entry".to_owned(), altered.display().to_string()]);
    let (loc, what) = failure(&a);
    assert_eq!(loc, "proof, inclusion proof", "{what}");
    // An entry file that is missing.
    let mut a = proof_args(&fx, &bare);
    a.extend([
        "--entry".to_owned(),
        fx.path().join("nope").display().to_string(),
    ]);
    let (loc, _) = failure(&a);
    assert!(loc.starts_with("entry "), "{loc}");
}

#[test]
fn every_bit_flip_of_a_receipt_is_refused() {
    let fx = Fixture::build(N);
    let keys = [fx.ed_vkey.clone(), fx.ml_vkey.clone()];
    let receipt = fx.receipt(300, N, true).to_bytes();
    verify_receipt(&receipt, None, &keys).unwrap();
    // In process (the binary runs the same function; a sample runs it below): every bit, but
    // only every 5th of the 3,300 base64 characters of the ML-DSA-44 signature, to keep the
    // test quick in debug builds.
    let text = String::from_utf8(receipt.clone()).unwrap();
    let ml_line = text.rfind("\u{2014} ").unwrap();
    let ml_sig = (ml_line + "\u{2014} ".len() + ORIGIN.len() + 1 + 8) * 8; // after the key ID
    let ml_end = (receipt.len() - 1) * 8;
    let bits = (0..ml_sig)
        .chain((ml_sig..ml_end).step_by(5))
        .chain(ml_end..receipt.len() * 8);
    for bit in bits {
        let mut b = receipt.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        assert!(
            verify_receipt(&b, None, &keys).is_err(),
            "bit {bit} not detected"
        );
    }
    let file = fx.path().join("r.tlog-proof");
    std::fs::write(&file, &receipt).unwrap();
    let args = proof_args(&fx, &file);
    for bit in (0..receipt.len() * 8).step_by(331) {
        let (loc, what) = common::with_flipped(fx.path(), "r.tlog-proof", bit, || failure(&args));
        assert!(
            ["proof", "entry"].iter().any(|p| loc.starts_with(p)),
            "bit {bit}: {loc}: {what}"
        );
    }
}

#[test]
fn altered_proofs_name_the_part() {
    let fx = Fixture::build(N);
    let good = fx.receipt(300, N, true);
    let write = |p: &sov_audit_core::receipt::TlogProof| {
        let f = fx.file("x.tlog-proof", &p.to_bytes());
        failure(&proof_args(&fx, &f))
    };
    // A hash of the inclusion proof.
    let mut p = good.clone();
    p.proof[3][7] ^= 0x40;
    assert_eq!(write(&p).0, "proof, inclusion proof");
    // A hash missing.
    let mut p = good.clone();
    p.proof.pop();
    assert_eq!(write(&p).0, "proof, inclusion proof");
    // The index of another entry, with its entry: the proof is for 300.
    let mut p = good.clone();
    p.index = 301;
    p.extra = Some(fx.entries[301].clone());
    assert_eq!(write(&p).0, "proof, inclusion proof");
    // The index changed alone: the entry says 300.
    let mut p = good.clone();
    p.index = 299;
    assert_eq!(write(&p).0, "proof, extra line");
    // A checkpoint of another size, re-signed: the proof does not fit it.
    let mut p = good.clone();
    p.checkpoint = fx.checkpoint(N - 1);
    assert_eq!(write(&p).0, "proof, inclusion proof");
    // An ML-DSA signature bit.
    let mut p = good.clone();
    let mut note = sov_audit_core::note::Note::parse(&p.checkpoint).unwrap();
    note.signatures[1].signature[100] ^= 1;
    p.checkpoint = note.to_bytes();
    assert_eq!(
        write(&p).0,
        format!("proof, checkpoint, signature by {ORIGIN} (0x06)")
    );
    // Keys from the wrong log.
    let other = ed25519_dalek::SigningKey::from_bytes(&[0x44; 32]);
    let vk = sov_audit_core::note::Vkey::from_ed25519(ORIGIN, other.verifying_key());
    let f = fx.file("ok.tlog-proof", &good.to_bytes());
    let (loc, _) = failure(&["proof", &f.display().to_string(), "--key", &vk.encode()]);
    assert_eq!(
        loc,
        format!("proof, checkpoint, signature by {ORIGIN} (0x01)")
    );
}
