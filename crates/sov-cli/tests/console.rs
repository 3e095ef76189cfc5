//! The web console in a real browser: a served home with a specialist over a corpus (one of its
//! documents full of HTML and script), and `console/test/e2e.mjs` driving Debian's chromium with
//! playwright-core through sign-in, chat with citations, the seal, the audit record and its
//! verification in the browser (and its failure when a served byte is changed), escaping,
//! accessibility basics, a phone's width and sign-out. Screenshots of every page land in
//! `<target>/test-output/console/`. Needs SOV_TEST_MODEL, SOV_TEST_EMBED_MODEL_ZIP,
//! SOV_TEST_NODE and SOV_TEST_CHROMIUM, and the console built into `sov` with its npm packages
//! in `console/node_modules` (`bash scripts/test` sees to all of it). Then the console's
//! TypeScript entry decoder is fuzzed differentially against the Rust one (`console/test/decoder.mjs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::{entries, env_path, home_with_starter, sov, start};
use serde_json::Value;
use sov_audit_core::entry::Entry;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the screenshots go: beside the build, outside the clone.
fn shots() -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_sov"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    target.join("test-output/console")
}

#[test]
fn the_console_signs_in_chats_with_citations_shows_the_seal_and_record_and_signs_out() {
    assert!(
        sov_server::console::built(),
        "this sov was built without the console: run `bash scripts/test`, which builds it first"
    );
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
    // A corpus: the eval's leave policy, and a document whose text is markup and script.
    let corpus = dir.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    std::fs::copy(
        repo().join("eval/corpora/hollowmere/annual-leave-policy.md"),
        corpus.join("annual-leave-policy.md"),
    )
    .unwrap();
    std::fs::write(
        corpus.join("leave-notes-<img src=x onerror=window.__pwned=5>.md"),
        "# Leave notes <script>window.__pwned=3</script>\n\n\
         Annual leave requests go to the line manager <img src=x onerror=\"window.__pwned=4\">. \
         A full-time member of staff asks for annual leave four weeks ahead.\n",
    )
    .unwrap();
    sov(
        &home,
        &["corpus", "add", "hollowmere", corpus.to_str().unwrap()],
    );
    // A confidential document, withheld from anyone without clearance 3.
    sov(
        &home,
        &[
            "corpus",
            "add",
            "hollowmere",
            repo()
                .join("eval/restricted/hollowmere/major-incident-surge-plan.md")
                .to_str()
                .unwrap(),
            "--clearance",
            "3",
        ],
    );
    sov(
        &home,
        &[
            "specialist",
            "add",
            "clerk",
            "--model",
            "smollm2",
            "--corpus",
            "hollowmere",
            "--description",
            "Hollowmere General Hospital: staff leave",
        ],
    );
    // A specialist with the calculator: a plain computation is answered by its tool.
    sov(
        &home,
        &[
            "specialist",
            "add",
            "reckoner",
            "--model",
            "smollm2",
            "--corpus",
            "hollowmere",
            "--tools",
            "calculator",
            "--description",
            "Arithmetic for the hospital's staff",
        ],
    );
    sov(&home, &["principal", "add", "ada", "--role", "admin"]);
    let token = sov(&home, &["token", "issue", "ada"]).trim().to_owned();
    let (server, base, _) = start(&home);
    let root = base.trim_end_matches("/v1").to_owned();

    let out = Command::new(env_path("SOV_TEST_NODE"))
        .arg(repo().join("console/test/e2e.mjs"))
        .current_dir(repo().join("console"))
        .env("SOV_CONSOLE_BASE", &root)
        .env("SOV_CONSOLE_TOKEN", &token)
        .env("SOV_CONSOLE_SPECIALIST", "clerk")
        .env("SOV_CONSOLE_SHOTS", shots())
        .env("SOV_CHROMIUM", env_path("SOV_TEST_CHROMIUM"))
        .output()
        .unwrap();
    // The catalog the models page shows: the confidential document is withheld from ada, who
    // has no clearance, without a trace (not even a count); the record counts it.
    let catalog: Value = reqwest::blocking::Client::new()
        .get(format!("{base}/catalog"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    drop(server);
    let corpus = &catalog["corpora"][0];
    assert_eq!(corpus["name"], "hollowmere");
    assert!(corpus.get("withheld").is_none(), "{catalog}");
    assert!(!catalog.to_string().contains("major-incident"), "{catalog}");
    assert_eq!(
        corpus["documents"].as_array().unwrap().len(),
        2,
        "{catalog}"
    );
    assert_eq!(catalog["specialists"][0]["name"], "clerk");
    assert_eq!(
        catalog["specialists"][0]["manifest_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{}{}",
        shots().display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    for name in [
        "signin",
        "chat",
        "models",
        "seal",
        "audit",
        "chat-phone",
        "audit-phone",
    ] {
        let png = shots().join(format!("{name}.png"));
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{}", png.display());
    }
    eprintln!("console screenshots: {}", shots().display());

    // The record has the session from open to close, and every request in between names it.
    let all = entries(&home);
    let sessions: Vec<&Value> = all.iter().filter(|e| e["kind"] == "session").collect();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions[0]["attrs"]["change"], "session.open");
    assert_eq!(sessions[1]["attrs"]["change"], "session.close");
    let id = sessions[0]["attrs"]["session"].as_str().unwrap();
    assert_eq!(sessions[1]["attrs"]["session"], id);
    assert_eq!(sessions[0]["principal"], "ada");
    let answered = all
        .iter()
        .find(|e| e["kind"] == "inference" && e["resource"] == "clerk")
        .unwrap();
    assert_eq!(answered["attrs"]["session"], id);
    // The catalog's document decisions: one entry, the confidential document withheld.
    assert!(
        all.iter().any(|e| e["kind"] == "policy.decision"
            && e["attrs"]["action"] == "read-corpus"
            && e["attrs"]["withheld"] == "1"
            && e["attrs"]["route"] == "/v1/catalog"),
        "{all:?}"
    );
    // The replayed cookie's refusal.
    assert!(
        all.iter()
            .any(|e| e["kind"] == "refusal" && e["reason"] == "session: unknown"),
        "{all:?}"
    );

    // The console's TypeScript entry decoder against the Rust one, on every entry of this
    // record and 40 mutations of each: they must accept and reject the same bytes, and read
    // the same fields from what they accept.
    let export = dir.path().join("export");
    sov(&home, &["audit", "export", export.to_str().unwrap()]);
    let decoded = dir.path().join("decoded.jsonl");
    let out = Command::new(env_path("SOV_TEST_NODE"))
        .arg(repo().join("console/test/decoder.mjs"))
        .arg(&export)
        .arg(&decoded)
        .arg("40")
        .current_dir(repo().join("console"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut inputs, mut accepted) = (0, 0);
    for line in std::fs::read_to_string(&decoded).unwrap().lines() {
        let ts: Value = serde_json::from_str(line).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(ts["bytes"].as_str().unwrap())
            .unwrap();
        let rust = Entry::decode(&bytes);
        inputs += 1;
        assert_eq!(
            rust.is_ok(),
            ts["ok"] == true,
            "the decoders disagree on {}: Rust {:?}, TypeScript {}",
            ts["bytes"],
            rust.as_ref().err(),
            ts["error"]
        );
        let Ok(e) = rust else { continue };
        accepted += 1;
        let h = |x: Option<[u8; 32]>| x.map_or(Value::Null, |x| Value::String(hex::encode(x)));
        let attrs: serde_json::Map<String, Value> = e
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let want = serde_json::json!({
            "ok": true, "kind": e.kind.name(), "index": e.index.to_string(), "time_ms": e.time_ms.to_string(),
            "prev": hex::encode(e.prev), "node": e.node, "principal": e.principal,
            "resource": e.resource, "outcome": e.outcome.name(), "reason": e.reason,
            "model": h(e.model), "input": h(e.input), "output": h(e.output), "attrs": attrs,
            "bytes": ts["bytes"],
        });
        assert_eq!(ts, want);
    }
    assert!(
        inputs > 1000 && accepted < inputs,
        "{inputs} inputs, {accepted} accepted"
    );
}
