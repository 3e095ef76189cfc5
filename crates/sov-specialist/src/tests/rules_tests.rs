//! Names, limits and tools: each rule refuses with a message that says which and why.

use crate::rules::{check_corpora, check_description, check_instructions, check_tools};
use crate::{
    MAX_DESCRIPTION_CHARS, MAX_INSTRUCTIONS_BYTES, Manifest, SpecialistError, validate_corpus_name,
    validate_name,
};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn names_follow_the_model_rule_and_auto_is_reserved() {
    for ok in ["legal", "hr-2", "a", "x.y_z", &"a".repeat(64)] {
        validate_name(ok).unwrap();
    }
    for (bad, why) in [
        ("", "empty"),
        ("Legal", "start with a lowercase letter or digit"),
        ("-x", "start with a lowercase letter or digit"),
        ("a/b", "only a-z"),
        ("../x", "start with"),
        ("a b", "only a-z"),
        (&"a".repeat(65), "longer than 64"),
        ("auto", "reserved"),
    ] {
        let err = validate_name(bad).unwrap_err();
        assert!(
            matches!(err, SpecialistError::InvalidName { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains(why), "{bad}: {err}");
    }
    // `auto` is only reserved for specialists; a corpus may be called that.
    validate_corpus_name("auto").unwrap();
    let err = validate_corpus_name("../etc").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to use corpus name `../etc`"),
        "{err}"
    );
}

#[test]
fn corpora_are_valid_names_each_once() {
    check_corpora(&[]).unwrap();
    check_corpora(&strings(&["contracts", "policies"])).unwrap();
    let err = check_corpora(&strings(&["contracts", "contracts"])).unwrap_err();
    assert!(
        err.to_string().contains("`contracts` is named twice"),
        "{err}"
    );
    let err = check_corpora(&strings(&["ok", "Not/Ok"])).unwrap_err();
    assert!(
        matches!(err, SpecialistError::InvalidCorpus { .. }),
        "{err}"
    );
    let many: Vec<String> = (0..65).map(|i| format!("c{i}")).collect();
    let err = check_corpora(&many).unwrap_err();
    assert!(
        err.to_string().contains("65 corpora; the most is 64"),
        "{err}"
    );
}

#[test]
fn the_description_is_required_and_bounded() {
    for blank in ["", "   ", "\n\t"] {
        let err = check_description(blank).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to use the description: it is empty"
        );
    }
    // The bound is in characters, not bytes.
    check_description(&"é".repeat(MAX_DESCRIPTION_CHARS)).unwrap();
    let err = check_description(&"é".repeat(MAX_DESCRIPTION_CHARS + 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to use the description: it is 2001 characters; the most is 2000"
    );
    check_description("line one\nline two\tand a tab").unwrap();
    let err = check_description("bell\u{7}").unwrap_err();
    assert!(
        err.to_string().contains("control character U+0007"),
        "{err}"
    );
}

#[test]
fn instructions_are_bounded_at_32_kib() {
    check_instructions(&"a".repeat(MAX_INSTRUCTIONS_BYTES)).unwrap();
    let err = check_instructions(&"a".repeat(MAX_INSTRUCTIONS_BYTES + 1)).unwrap_err();
    assert!(
        err.to_string()
            .contains("they are 32769 bytes; the most is 32768"),
        "{err}"
    );
    // Bytes, not characters: 16,385 two-byte characters are over.
    assert!(check_instructions(&"é".repeat(MAX_INSTRUCTIONS_BYTES / 2 + 1)).is_err());
    assert!(check_instructions(" \n").is_err());
    assert!(check_instructions("say \u{0}").is_err());
    check_instructions("Windows line ends\r\nare fine.").unwrap();
}

#[test]
fn the_defaults_are_valid_and_fit_the_corpora() {
    let with = Manifest::default_instructions(&strings(&["c"]));
    let without = Manifest::default_instructions(&[]);
    check_instructions(with).unwrap();
    check_instructions(without).unwrap();
    assert!(with.contains("numbered passages") && with.contains("[1]"));
    assert!(!without.contains("passages"));
}

#[test]
fn tools_must_be_installed() {
    check_tools(&[], &[]).unwrap();
    let err = check_tools(&strings(&["calculator"]), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown tool `calculator`: no tools are installed"
    );
    let installed = strings(&["calculator", "clock"]);
    check_tools(&strings(&["clock"]), &installed).unwrap();
    let err = check_tools(&strings(&["web"]), &installed).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown tool `web`: the installed tools are calculator, clock"
    );
    let err = check_tools(&strings(&["clock", "clock"]), &installed).unwrap_err();
    assert!(err.to_string().contains("`clock` is named twice"), "{err}");
}
