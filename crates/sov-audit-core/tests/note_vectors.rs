//! Signed notes and vkeys against the examples in c2sp.org/signed-note, and malformed notes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use sov_audit_core::note::{
    self, MAX_NOTE_SIZE, MAX_SIGNATURES, Note, NoteError, NoteSignature, PublicKey, SIG_ED25519,
    Vkey, key_id, parse_vkeys, signature_line,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The vkey and signed note of signed-note.md's "Example" section.
const FOO_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const FOO_TEXT: &str = "This is an example message.\n";
const FOO_SIG_LINE: &str = "\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/// The note at the top of signed-note.md.
const QUASIMODO: &str = "Ognuno sta solo sul cuor della terra\n\
trafitto da un raggio di sole:\n\
\n\
ed è subito sera.\n\
\n\
\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

fn foo_note() -> String {
    format!("{FOO_TEXT}\n{FOO_SIG_LINE}")
}

fn ed25519_of(k: &Vkey) -> ed25519_dalek::VerifyingKey {
    match &k.key {
        PublicKey::Ed25519(k) => *k,
        other => panic!("not an Ed25519 key: {other:?}"),
    }
}

fn verifies(k: &ed25519_dalek::VerifyingKey, text: &str, sig: &[u8]) -> bool {
    let Ok(arr) = <&[u8; 64]>::try_from(sig) else {
        return false;
    };
    k.verify_strict(text.as_bytes(), &ed25519_dalek::Signature::from_bytes(arr))
        .is_ok()
}

#[test]
fn spec_example_vkey_verifies_spec_example_note() {
    let vkey = Vkey::parse(FOO_VKEY).unwrap();
    assert_eq!(vkey.name, "example.com/foo");
    assert_eq!(vkey.key_id, 0x530d_903a);
    assert_eq!(vkey.sig_type(), SIG_ED25519);
    assert_eq!(vkey.encode(), FOO_VKEY);

    let n = Note::parse(foo_note().as_bytes()).unwrap();
    assert_eq!(n.text, FOO_TEXT);
    assert_eq!(n.signatures.len(), 1);
    let s = &n.signatures[0];
    assert_eq!(s.name, vkey.name);
    assert_eq!(s.key_id, vkey.key_id);
    assert_eq!(s.signature.len(), 64);
    let k = ed25519_of(&vkey);
    assert!(verifies(&k, &n.text, &s.signature));
    // The parsed text and signature are exactly what was signed: one changed byte fails.
    assert!(!verifies(&k, "This is an example message!\n", &s.signature));
    let mut bad = s.signature.clone();
    bad[10] ^= 1;
    assert!(!verifies(&k, &n.text, &bad));
    // Re-encoding the signature line gives the spec's line back.
    assert_eq!(
        signature_line(&s.name, s.key_id, &s.signature),
        FOO_SIG_LINE
    );
}

#[test]
fn spec_example_key_id_is_recomputed() {
    let raw = B64
        .decode("AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
        .unwrap();
    assert_eq!(raw[0], SIG_ED25519);
    assert_eq!(
        key_id("example.com/foo", SIG_ED25519, &raw[1..]),
        0x530d_903a
    );
    // Name, type and key all go into the ID.
    assert_ne!(
        key_id("example.com/fo0", SIG_ED25519, &raw[1..]),
        0x530d_903a
    );
    assert_ne!(key_id("example.com/foo", 0x04, &raw[1..]), 0x530d_903a);
    let vkey = Vkey::parse(FOO_VKEY).unwrap();
    let rebuilt = Vkey::from_ed25519("example.com/foo", ed25519_of(&vkey));
    assert_eq!(rebuilt.key_id, 0x530d_903a);
    assert_eq!(rebuilt.encode(), FOO_VKEY);
    // A vkey whose ID is not the recomputed one is rejected.
    assert_eq!(
        Vkey::parse("example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"),
        Err(NoteError::VkeyIdMismatch {
            name: "example.com/foo".into(),
            got: 0x530d_903b,
            want: 0x530d_903a
        })
    );
    // So is the same key under another name.
    assert!(
        Vkey::parse("example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .is_err()
    );
    assert_eq!(parse_vkeys(&format!("\n{FOO_VKEY}\n")).unwrap().len(), 1);
}

#[test]
fn spec_quasimodo_note_parses_and_round_trips() {
    let n = Note::parse(QUASIMODO.as_bytes()).unwrap();
    // The text keeps its inner blank line: only the last blank line separates.
    assert_eq!(
        n.text,
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    );
    assert_eq!(n.signatures.len(), 1);
    assert_eq!(n.signatures[0].name, "quasimodo.example/salvatore");
    assert_eq!(n.signatures[0].key_id, 0x367b_a04b);
    assert_eq!(n.signatures[0].signature.len(), 64);
    assert_eq!(n.to_bytes(), QUASIMODO.as_bytes());
}

#[test]
fn round_trip_is_byte_exact() {
    let sk = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let k = Vkey::from_ed25519("example.com/rt", sk.verifying_key());
    let text = "first\n\nthird — with an em dash and ünïcödé\n";
    let mut bytes = format!("{text}\n");
    bytes.push_str(&signature_line(
        &k.name,
        k.key_id,
        &sk.sign(text.as_bytes()).to_bytes(),
    ));
    // Other signatures of any (non-empty) length, kept in order.
    bytes.push_str(&signature_line("w1", 1, &[1, 2, 3]));
    bytes.push_str(&signature_line("w2", u32::MAX, &[0xee; 2432]));
    let n = Note::parse(bytes.as_bytes()).unwrap();
    assert_eq!(n.text, text);
    assert_eq!(n.signatures.len(), 3);
    assert_eq!(
        n.signatures[1],
        NoteSignature {
            name: "w1".into(),
            key_id: 1,
            signature: vec![1, 2, 3]
        }
    );
    assert!(verifies(
        &sk.verifying_key(),
        &n.text,
        &n.signatures[0].signature
    ));
    assert_eq!(n.to_bytes(), bytes.as_bytes());
    assert_eq!(Note::parse(&n.to_bytes()).unwrap(), n);
    assert_eq!(
        Note::parse(foo_note().as_bytes()).unwrap().to_bytes(),
        foo_note().as_bytes()
    );
}

/// A signature line for `name` with a 4-byte ID and 64 bytes of signature.
fn line(name: &str) -> String {
    signature_line(name, 7, &[5; 64])
}

#[test]
fn malformed_notes_are_rejected() {
    let good = format!("text\n\n{}", line("k"));
    Note::parse(good.as_bytes()).unwrap();
    let sig_b64 = good.trim_end().rsplit(' ').next().unwrap().to_owned();
    let cases: Vec<(&str, String)> = vec![
        ("missing blank line", format!("text\n{}", line("k"))),
        ("only signatures", line("k")),
        ("no signatures", "text\n\n".into()),
        ("no signatures, no separator", "text\n".into()),
        ("empty", String::new()),
        ("no final newline", good.trim_end().to_owned()),
        ("tab in text", format!("te\txt\n\n{}", line("k"))),
        ("NUL in text", format!("te\0xt\n\n{}", line("k"))),
        ("0x1f in text", format!("te\u{1f}xt\n\n{}", line("k"))),
        (
            "CRLF",
            format!("text\r\n\r\n{}", line("k").replace('\n', "\r\n")),
        ),
        (
            "CR at end of signature line",
            format!("text\n\n{}\r\n", line("k").trim_end()),
        ),
        (
            "hyphen instead of em dash",
            format!("text\n\n- k {sig_b64}\n"),
        ),
        (
            "en dash instead of em dash",
            format!("text\n\n\u{2013} k {sig_b64}\n"),
        ),
        (
            "no space after em dash",
            format!("text\n\n\u{2014}k {sig_b64}\n"),
        ),
        (
            "two spaces after em dash",
            format!("text\n\n\u{2014}  k {sig_b64}\n"),
        ),
        ("no signature after name", "text\n\n\u{2014} k\n".into()),
        ("empty signature", "text\n\n\u{2014} k \n".into()),
        (
            "key name with +",
            format!("text\n\n\u{2014} a+b {sig_b64}\n"),
        ),
        (
            "key name with space",
            format!("text\n\n\u{2014} a b {sig_b64}\n"),
        ),
        (
            "key name with NBSP",
            format!("text\n\n\u{2014} a\u{a0}b {sig_b64}\n"),
        ),
        (
            "key name with ideographic space",
            format!("text\n\n\u{2014} a\u{3000}b {sig_b64}\n"),
        ),
        (
            "key name with em space",
            format!("text\n\n\u{2014} a\u{2003}b {sig_b64}\n"),
        ),
        (
            "base64 bad character",
            format!("text\n\n\u{2014} k {}!\n", &sig_b64[1..]),
        ),
        (
            "base64 URL alphabet",
            "text\n\n\u{2014} k AAAA_-__\n".into(),
        ),
        (
            "base64 missing padding",
            format!("text\n\n\u{2014} k {}\n", sig_b64.trim_end_matches('=')),
        ),
        (
            "base64 extra padding",
            format!("text\n\n\u{2014} k {sig_b64}=\n"),
        ),
        (
            "base64 non-zero trailing bits",
            "text\n\n\u{2014} k AAAAAAF=\n".into(),
        ),
        (
            "base64 with trailing space",
            format!("text\n\n\u{2014} k {sig_b64} \n"),
        ),
        (
            "signature of only a key id",
            "text\n\n\u{2014} k AAAAAQ==\n".into(),
        ),
        (
            "signature shorter than a key id",
            "text\n\n\u{2014} k AAAA\n".into(),
        ),
        (
            "blank line among signatures then junk",
            format!("text\n\n{}\nnot a signature\n", line("k")),
        ),
    ];
    for (what, note) in &cases {
        let r = Note::parse(note.as_bytes());
        assert!(r.is_err(), "{what}: accepted {note:?}");
    }
    // Invalid UTF-8, in the text and in a signature line.
    let mut b = b"te\xffxt\n\n".to_vec();
    b.extend_from_slice(line("k").as_bytes());
    assert!(matches!(
        Note::parse(&b),
        Err(NoteError::InvalidUtf8 { line: 1, .. })
    ));
    let mut b = b"text\n\n\xe2\x80\x94 k\xc3 ".to_vec();
    b.extend_from_slice(sig_b64.as_bytes());
    b.push(b'\n');
    assert!(matches!(
        Note::parse(&b),
        Err(NoteError::InvalidUtf8 { line: 3, .. })
    ));
    // Errors name the line.
    assert_eq!(
        Note::parse(format!("a\nb\n\n{}- k {sig_b64}\n", line("k")).as_bytes()),
        Err(NoteError::BadSignatureLine {
            line: 5,
            reason: "does not start with an em dash (U+2014) and a space".into()
        })
    );
    assert_eq!(
        Note::parse(format!("a\nb\tc\n\n{}", line("k")).as_bytes()),
        Err(NoteError::ControlChar {
            line: 2,
            byte: b'\t'
        })
    );
    // DEL (0x7f) is not below U+0020, so the spec allows it.
    Note::parse(format!("te\u{7f}xt\n\n{}", line("k")).as_bytes()).unwrap();
}

#[test]
fn signature_count_limits() {
    let note_with = |n: usize| {
        let mut s = "text\n\n".to_string();
        for i in 0..n {
            s.push_str(&line(&format!("w{i}")));
        }
        s
    };
    // The spec requires accepting at least 16.
    assert_eq!(
        Note::parse(note_with(16).as_bytes())
            .unwrap()
            .signatures
            .len(),
        16
    );
    assert_eq!(
        Note::parse(note_with(MAX_SIGNATURES).as_bytes())
            .unwrap()
            .signatures
            .len(),
        MAX_SIGNATURES
    );
    assert_eq!(
        Note::parse(note_with(MAX_SIGNATURES + 1).as_bytes()),
        Err(NoteError::TooManySignatures {
            count: MAX_SIGNATURES + 1,
            max: MAX_SIGNATURES
        })
    );
    // 64 ML-DSA-44 cosignatures (4 + 8 + 2420 bytes each) fit in a note.
    let mut s = "text\n\n".to_string();
    for i in 0..MAX_SIGNATURES {
        s.push_str(&signature_line(&format!("w{i}"), 1, &[3; 2428]));
    }
    assert!(s.len() < MAX_NOTE_SIZE);
    Note::parse(s.as_bytes()).unwrap();
    // Size limit.
    let mut big = "a".repeat(MAX_NOTE_SIZE);
    big.push_str(&format!("\n\n{}", line("k")));
    assert!(matches!(
        Note::parse(big.as_bytes()),
        Err(NoteError::TooLarge { .. })
    ));
}

#[test]
fn vkeys_reject_malformed() {
    for bad in [
        "",
        "example.com/foo",
        "example.com/foo+530d903a",
        "example.com/foo+530d903a+",
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+0530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k=",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k+x",
        "example.com/foo+530d903a+ AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/f o+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ] {
        assert!(Vkey::parse(bad).is_err(), "accepted {bad:?}");
    }
    // The error of a list names the line.
    let e = parse_vkeys(&format!("{FOO_VKEY}\n\n{FOO_VKEY}x\n")).unwrap_err();
    assert!(matches!(e, NoteError::VkeyLine { line: 3, .. }), "{e}");
    assert!(e.to_string().contains("line 3"), "{e}");
    // A weak (small-order) Ed25519 key is refused: it could never verify a signature.
    let weak = [0u8; 32]; // not a valid point's compressed form? then also refused
    let mut ident = [0u8; 32];
    ident[0] = 1; // the identity point, small order
    for pk in [weak, ident] {
        let mut raw = vec![SIG_ED25519];
        raw.extend_from_slice(&pk);
        let s = format!(
            "w+{:08x}+{}",
            key_id("w", SIG_ED25519, &pk),
            B64.encode(&raw)
        );
        assert!(Vkey::parse(&s).is_err(), "accepted {s}");
    }
}

/// A tiny deterministic PRNG for mutation tests.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutations_never_panic_and_round_trip_when_accepted() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let seeds = [foo_note(), QUASIMODO.to_string()];
    for _ in 0..20_000 {
        let mut b = seeds[rng.below(seeds.len())].clone().into_bytes();
        for _ in 0..=rng.below(3) {
            match rng.below(4) {
                0 if !b.is_empty() => {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
                1 if !b.is_empty() => {
                    b.truncate(rng.below(b.len()));
                }
                2 => {
                    let i = rng.below(b.len() + 1);
                    b.insert(i, [b'\n', b' ', b'+', 0xe2, 0x80, 0x94][rng.below(6)]);
                }
                _ if !b.is_empty() => {
                    b.remove(rng.below(b.len()));
                }
                _ => {}
            }
        }
        if let Ok(n) = Note::parse(&b) {
            // Whatever is accepted re-encodes to exactly the same bytes.
            assert_eq!(n.to_bytes(), b);
        }
        let _ = Vkey::parse(&String::from_utf8_lossy(&b));
    }
    assert!(note::is_valid_key_name("example.com/foo"));
}
