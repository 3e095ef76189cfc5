//! Specialists from a fresh home, as the README shows them: both starter models imported, two
//! corpora added (one holding a confidential document), two specialists, questions asked
//! through the official openai client; then the record is exported and verified offline, and
//! its router and provenance entries are checked. Needs SOV_TEST_MODEL, SOV_TEST_EMBED_MODEL_ZIP
//! and SOV_TEST_PYTHON (`bash scripts/test` sets them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{client, entries, env_path, home_with_starter};
use serde_json::Value;

fn sov(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_sov"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("SOV_HOME")
        .env("SOV_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sov {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn eval_dir(sub: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../eval")
        .join(sub)
        .display()
        .to_string()
}

const SECRET: &str = "AMBERWICK";

#[test]
fn specialists_answer_with_citations_and_a_confidential_document_stays_with_the_cleared() {
    let python = env_path("SOV_TEST_PYTHON");
    let (dir, home) = home_with_starter();
    let embed = env_path("SOV_TEST_EMBED_MODEL_ZIP");
    sov(
        &home,
        &[
            "model",
            "import",
            embed.to_str().unwrap(),
            "--name",
            "all-minilm-l6-v2",
        ],
    );

    // Two corpora; the hospital's confidential plan at clearance 3.
    let added = sov(
        &home,
        &[
            "corpus",
            "add",
            "hollowmere",
            &eval_dir("corpora/hollowmere"),
            "--clearance",
            "0",
        ],
    );
    assert!(
        text(&added).contains("added      annual-leave-policy.md"),
        "{}",
        text(&added)
    );
    sov(
        &home,
        &[
            "corpus",
            "add",
            "hollowmere",
            &eval_dir("restricted/hollowmere"),
            "--clearance",
            "3",
        ],
    );
    sov(
        &home,
        &[
            "corpus",
            "add",
            "veloria",
            &eval_dir("corpora/veloria"),
            "--clearance",
            "0",
        ],
    );
    // Adding the same files again changes nothing.
    let again = sov(
        &home,
        &[
            "corpus",
            "add",
            "veloria",
            &eval_dir("corpora/veloria"),
            "--clearance",
            "0",
        ],
    );
    assert!(
        text(&again).contains("chunks embedded: 0"),
        "{}",
        text(&again)
    );
    let shown = text(&sov(&home, &["corpus", "show", "hollowmere"]));
    assert!(
        shown.contains("major-incident-surge-plan.md  clearance 3"),
        "{shown}"
    );

    sov(
        &home,
        &[
            "specialist",
            "add",
            "hollowmere-clerk",
            "--model",
            "smollm2",
            "--corpus",
            "hollowmere",
            "--description",
            "Hollowmere General Hospital: staff leave, visiting, medication incidents, charges, IT service desk, board minutes",
        ],
    );
    sov(
        &home,
        &[
            "specialist",
            "add",
            "veloria-clerk",
            "--model",
            "smollm2",
            "--corpus",
            "veloria",
            "--description",
            "Bank of Veloria: central bank fees, VELPAY payments, reserve requirements, banknotes, monetary policy, staff leave",
        ],
    );

    sov(
        &home,
        &[
            "principal",
            "add",
            "ana",
            "--role",
            "analyst",
            "--attr",
            "clearance=0",
        ],
    );
    sov(
        &home,
        &[
            "principal",
            "add",
            "cleo",
            "--role",
            "analyst",
            "--attr",
            "clearance=5",
        ],
    );
    let ana = text(&sov(&home, &["token", "issue", "ana"]))
        .trim()
        .to_owned();
    let cleo = text(&sov(&home, &["token", "issue", "cleo"]))
        .trim()
        .to_owned();

    // The CLI searches as a principal, too.
    let found: Value = serde_json::from_str(&text(&sov(
        &home,
        &[
            "corpus",
            "search",
            "hollowmere",
            "major incident code word",
            "--as",
            "ana",
            "--json",
        ],
    )))
    .unwrap();
    assert!(found["withheld"].as_u64().unwrap() >= 1, "{found}");
    assert!(!found.to_string().contains(SECRET), "{found}");
    let found = text(&sov(
        &home,
        &[
            "corpus",
            "search",
            "hollowmere",
            "major incident code word",
            "--as",
            "cleo",
        ],
    ));
    assert!(found.contains(SECRET), "{found}");

    // The test compares a streamed answer with a whole one, word for word: that holds only when
    // neither reads a prompt start another request left cached (prompt reuse computes it in
    // another batch, and llama.cpp's rounding then can move a later token: README).
    let toml = home.join("sov.toml");
    let config = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("prompt_reuse = true", "prompt_reuse = false");
    assert!(config.contains("prompt_reuse = false"), "{config}");
    std::fs::write(&toml, config).unwrap();
    let (server, base, printed) = common::start(&home);
    let ready = printed.last().unwrap();
    assert!(
        ready.contains("specialists hollowmere-clerk, veloria-clerk"),
        "{printed:?}"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specialists_client.py");
    let seen = client(
        &python,
        &script,
        &[&base],
        &[("SOV_TEST_TOKEN", &ana), ("SOV_TEST_CLEARED", &cleo)],
    );
    let models: Vec<&str> = seen["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for m in ["auto", "hollowmere-clerk", "veloria-clerk", "smollm2"] {
        assert!(models.contains(&m), "{models:?}");
    }

    let cites = |answer: &Value| -> Vec<String> {
        answer["citations"]
            .as_array()
            .unwrap_or_else(|| panic!("no citations: {answer}"))
            .iter()
            .map(|c| c["document"].as_str().unwrap().to_owned())
            .collect()
    };
    let clerk = &seen["clerk"];
    assert_eq!(clerk["model"], "hollowmere-clerk");
    assert!(
        cites(clerk).contains(&"annual-leave-policy.md".to_owned()),
        "{clerk}"
    );
    assert!(clerk["text"].as_str().unwrap().contains("27"), "{clerk}");
    assert!(
        clerk["text"].as_str().unwrap().contains("[1]")
            || clerk["text"].as_str().unwrap().contains("[2]"),
        "{clerk}"
    );
    // A stream carries the same citations in its first chunk, and the same text.
    assert_eq!(seen["clerk_stream"]["citations"], clerk["citations"]);
    assert_eq!(seen["clerk_stream"]["text"], clerk["text"]);

    let banker = &seen["banker"];
    assert_eq!(banker["model"], "veloria-clerk");
    assert!(
        cites(banker).iter().any(|d| d.starts_with("fee-schedule")),
        "{banker}"
    );
    assert!(
        banker["text"].as_str().unwrap().contains("17:45"),
        "{banker}"
    );

    let auto = &seen["auto"];
    assert_eq!(auto["model"], "veloria-clerk", "{auto}");
    assert_eq!(auto["route"]["choice"], "veloria-clerk", "{auto}");

    // A question no specialist fits, with no general model set: refused, plainly.
    let unrelated = &seen["unrelated_auto"];
    assert_eq!(unrelated["status"], 404, "{unrelated}");
    assert!(
        unrelated["error"]
            .as_str()
            .unwrap()
            .contains("no_specialist_fits"),
        "{unrelated}"
    );

    // The code word: never for ana (answer, citations, router reason or error), always for cleo.
    for key in ["secret_plain", "secret_plain_auto"] {
        let seen = seen[key].to_string();
        assert!(!seen.contains(SECRET), "{key}: {seen}");
        assert!(!seen.contains("major-incident-surge-plan"), "{key}: {seen}");
    }
    let cleared = &seen["secret_cleared"];
    assert!(
        cites(cleared).contains(&"major-incident-surge-plan.md".to_owned()),
        "{cleared}"
    );
    assert!(
        cleared["text"].as_str().unwrap().contains(SECRET),
        "{cleared}"
    );
    drop(server);

    // `sov chat` asks a specialist, and the router, in its own process: the same answer
    // grounded in the same document, its citations printed after it, the code word withheld.
    let velpay = "What is the cut-off time for interbank payments in the VELPAY system at the Bank of Veloria?";
    let chat = |model: &str, who: &str, question: &str| {
        let args = [
            "chat",
            "--model",
            model,
            "--as",
            who,
            "--temperature",
            "0",
            question,
        ];
        let out = sov(&home, &args);
        (
            text(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (answer, _) = chat("veloria-clerk", "ana", velpay);
    assert!(answer.contains("17:45"), "{answer}");
    assert!(
        answer
            .lines()
            .any(|l| l.starts_with("[1] veloria/fee-schedule")),
        "{answer}"
    );
    let (answer, said) = chat("auto", "ana", velpay);
    assert!(said.contains("router: veloria-clerk"), "{said}");
    assert!(answer.contains("[1] veloria/"), "{answer}");
    let code_word = "What code word does the Hollowmere General Hospital switchboard broadcast to activate a Level 4 major incident?";
    let (answer, said) = chat("hollowmere-clerk", "ana", code_word);
    assert!(
        !answer.contains(SECRET) && !said.contains(SECRET),
        "{answer}{said}"
    );
    assert!(!answer.contains("major-incident-surge-plan"), "{answer}");
    let (answer, _) = chat("hollowmere-clerk", "cleo", code_word);
    assert!(answer.contains("major-incident-surge-plan.md"), "{answer}");

    // The record, exported and verified offline; the router's and the specialist's entries
    // proved one by one by the standalone verifier, which prints them as it checked them.
    let export = dir.path().join("export");
    let exported = text(&sov(&home, &["audit", "export", export.to_str().unwrap()]));
    let keys: String = exported
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    let vkeys = dir.path().join("keys");
    std::fs::write(&vkeys, keys).unwrap();
    let verify = Path::new(env!("CARGO_BIN_EXE_sov")).with_file_name("sov-verify");
    let verified = Command::new(&verify)
        .arg("log")
        .arg(&export)
        .arg("--key")
        .arg(&vkeys)
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let proved = |index: u64| -> Value {
        let proof = dir.path().join(format!("{index}.tlog-proof"));
        std::fs::write(
            &proof,
            sov(&home, &["audit", "proof", &index.to_string()]).stdout,
        )
        .unwrap();
        let out = Command::new(&verify)
            .arg("proof")
            .arg(&proof)
            .arg("--key")
            .arg(&vkeys)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["ok"], true);
        report["entry"].clone()
    };
    let entries = entries(&home);
    let route = entries
        .iter()
        .find(|e| e["kind"] == "route")
        .expect("a route entry");
    let route = proved(route["index"].as_u64().unwrap());
    assert_eq!(route["kind"], "route", "{route}");
    assert_eq!(route["attrs"]["choice"], "veloria-clerk", "{route}");
    assert!(
        route["attrs"]["candidates"]
            .as_str()
            .unwrap()
            .contains("hollowmere-clerk:"),
        "{route}"
    );
    let answer = entries
        .iter()
        .find(|e| e["kind"] == "inference" && e["resource"] == "hollowmere-clerk")
        .expect("a specialist's inference entry");
    let answer = proved(answer["index"].as_u64().unwrap());
    let attrs = &answer["attrs"];
    assert_eq!(
        attrs["specialist_manifest"].as_str().unwrap().len(),
        64,
        "{answer}"
    );
    assert!(
        attrs["corpora"]
            .as_str()
            .unwrap()
            .starts_with("hollowmere="),
        "{answer}"
    );
    let chunks: Vec<&str> = attrs["chunks"].as_str().unwrap().split(',').collect();
    assert!(
        !chunks.is_empty() && chunks.iter().all(|c| c.len() == 64),
        "{answer}"
    );
    // Every chunk named is in the corpus's signed manifest: anyone holding it can prove them.
    let manifest: Value = serde_json::from_str(&text(&sov(
        &home,
        &["corpus", "show", "hollowmere", "--json"],
    )))
    .unwrap();
    let listed = manifest.to_string();
    assert!(chunks.iter().all(|c| listed.contains(c)), "{answer}");
    assert!(
        !entries
            .iter()
            .any(|e| e["principal"] == "ana" && e.to_string().contains(SECRET))
    );
}
