//! `sov specialist ...` as a user runs it: a real home with the starter model, each change and
//! each refusal in the audit record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};

fn starter() -> PathBuf {
    PathBuf::from(std::env::var_os("SOV_TEST_MODEL").unwrap_or_else(|| {
        panic!("SOV_TEST_MODEL is not set: run the tests with `bash scripts/test`, which fetches the starter model")
    }))
}

fn sov(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sov"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("SOV_HOME")
        .env("SOV_LOG", "error")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `sov` and expects success.
fn ok(home: &Path, args: &[&str]) -> String {
    let out = sov(home, args);
    assert!(out.status.success(), "sov {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Every path under `dir` with its bytes: to prove a refused command changed nothing.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.push((p.clone(), Vec::new()));
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The record's entries, as JSON.
fn audit_entries(home: &Path) -> Vec<Value> {
    ok(home, &["audit", "tail", "-n", "100000", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect()
}

/// The record's `specialist.change` entries, as JSON.
fn specialist_entries(home: &Path) -> Vec<Value> {
    audit_entries(home)
        .into_iter()
        .filter(|e| e["kind"] == "specialist.change")
        .collect()
}

/// A home with the starter model imported as `smollm2`, and an empty corpus of each name
/// (made by sov-knowledge itself, signed by the home's owner: no embedding model is needed
/// for a corpus with no documents).
fn home_with(corpora: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&home, &["init"]);
    let model = starter();
    ok(
        &home,
        &[
            "model",
            "import",
            model.to_str().unwrap(),
            "--name",
            "smollm2",
        ],
    );
    let owner = sov_keys::OwnerKeys::load(&home.join("keys")).unwrap();
    let store = sov_knowledge::KnowledgeStore::open(&home.join("corpora")).unwrap();
    let embedder = sov_knowledge::EmbedderId {
        name: "all-minilm-l6-v2".into(),
        sha256: "0".repeat(64),
        dims: 384,
    };
    for c in corpora {
        store.create(c, &embedder, &owner).unwrap();
    }
    // The first command that opens the store makes its (empty) folders.
    assert!(ok(&home, &["specialist", "list"]).contains("no specialists yet"));
    (dir, home)
}

fn starter_sha256() -> String {
    hex::encode(Sha256::digest(std::fs::read(starter()).unwrap()))
}

#[test]
fn add_list_show_replace_rm_each_recorded() {
    let (dir, home) = home_with(&["contracts", "policies"]);
    let instructions = dir.path().join("legal.txt");
    std::fs::write(
        &instructions,
        "Answer as the firm's counsel, from the passages.\n",
    )
    .unwrap();
    let added = ok(
        &home,
        &[
            "specialist",
            "add",
            "legal",
            "--model",
            "smollm2",
            "--corpus",
            "contracts,policies",
            "--description",
            "Questions about the firm's contracts and policies.",
            "--instructions",
            instructions.to_str().unwrap(),
        ],
    );
    assert!(
        added.starts_with("Added specialist legal (base smollm2, corpora: contracts, policies)"),
        "{added}"
    );
    let list = ok(&home, &["specialist", "list"]);
    assert!(list.starts_with("NAME "), "{list}");
    assert!(
        list.contains("legal  smollm2  contracts,policies"),
        "{list}"
    );

    let show: Value =
        serde_json::from_str(&ok(&home, &["specialist", "show", "legal", "--json"])).unwrap();
    let m = &show["manifest"];
    assert_eq!(m["base"]["sha256"], starter_sha256());
    assert_eq!(m["corpora"], serde_json::json!(["contracts", "policies"]));
    assert_eq!(
        m["instructions"],
        "Answer as the firm's counsel, from the passages.\n"
    );
    assert_eq!(show["signature"], "valid");
    assert_eq!(show["base_in_store"], "same");
    let sha = show["sha256"].as_str().unwrap().to_owned();
    assert!(
        added.contains(&format!("manifest sha256: {sha}")),
        "{added}"
    );
    let text = ok(&home, &["specialist", "show", "legal"]);
    assert!(text.contains("signature valid"), "{text}");
    assert!(
        text.contains("corpora:         contracts, policies"),
        "{text}"
    );

    // The same name again needs --replace; with it, the specialist is replaced.
    let again = sov(&home, &["specialist", "add", "legal", "--model", "smollm2"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--replace"), "{}", stderr(&again));
    let replaced = ok(
        &home,
        &[
            "specialist",
            "add",
            "legal",
            "--model",
            "smollm2",
            "--replace",
        ],
    );
    assert!(
        replaced.starts_with("Replaced specialist legal"),
        "{replaced}"
    );
    // Without corpora or --description, the defaults say so.
    assert!(replaced.contains("(the default;"), "{replaced}");
    let show: Value =
        serde_json::from_str(&ok(&home, &["specialist", "show", "legal", "--json"])).unwrap();
    let new_sha = show["sha256"].as_str().unwrap().to_owned();
    assert_eq!(show["manifest"]["corpora"], serde_json::json!([]));

    // A base model gone from the store is shown as such.
    ok(&home, &["model", "rm", "smollm2"]);
    let show: Value =
        serde_json::from_str(&ok(&home, &["specialist", "show", "legal", "--json"])).unwrap();
    assert_eq!(show["base_in_store"], "missing");

    let rm = ok(&home, &["specialist", "rm", "legal"]);
    assert!(rm.starts_with("Removed specialist legal"), "{rm}");
    assert!(ok(&home, &["specialist", "list"]).contains("no specialists yet"));
    assert!(
        !sov(&home, &["specialist", "show", "legal"])
            .status
            .success()
    );
    let again = sov(&home, &["specialist", "rm", "legal"]);
    assert!(stderr(&again).contains("failed to find specialist `legal`"));

    // Every change, and the refusals, in order, with what they were about.
    let entries = specialist_entries(&home);
    let summary: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap(),
                e["attrs"]["change"].as_str().unwrap(),
                e["resource"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ok", "specialist.add", "legal"),
            ("denied", "specialist.add", "legal"),
            ("ok", "specialist.add", "legal"),
            ("ok", "specialist.remove", "legal"),
            ("denied", "specialist.remove", "legal"),
        ]
    );
    let first = &entries[0];
    assert_eq!(first["model"], starter_sha256());
    assert_eq!(first["attrs"]["base"], "smollm2");
    assert_eq!(first["attrs"]["base_sha256"], starter_sha256());
    assert_eq!(first["attrs"]["corpora"], "contracts,policies");
    assert_eq!(first["attrs"]["manifest_sha256"], sha);
    assert_eq!(first["attrs"]["replaced"], "false");
    assert!(
        entries[1]["reason"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert_eq!(entries[2]["attrs"]["replaced"], "true");
    assert_eq!(entries[2]["attrs"]["replaced_sha256"], sha);
    assert_eq!(entries[2]["attrs"]["manifest_sha256"], new_sha);
    assert_eq!(entries[3]["attrs"]["manifest_sha256"], new_sha);
    assert!(
        entries[4]["reason"]
            .as_str()
            .unwrap()
            .contains("failed to find specialist")
    );
}

#[test]
fn refusals_say_why_change_nothing_and_are_recorded() {
    let (dir, home) = home_with(&["contracts"]);
    let long = dir.path().join("long.txt");
    std::fs::write(&long, "x".repeat(40_000)).unwrap();
    let model = starter();
    // A LoRA adapter for a llama model, but wider than SmolLM2-135M: llama.cpp refuses it.
    let wide = dir.path().join("wide.gguf");
    let lora = sov_models::gguf::lora_fixture::Lora {
        arch: "llama",
        n_embd: 640,
        layers: 2,
        magnitude: 0.1,
        seed: 1,
    };
    std::fs::write(&wide, lora.bytes()).unwrap();
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["legal", "--model", "nope"],
            "legal",
            "failed to find model `nope` in the store",
        ),
        (
            vec!["legal", "--model", "smollm2", "--corpus", "contracts,hr"],
            "legal",
            "failed to find corpus `hr` in this home",
        ),
        (
            vec!["smollm2", "--model", "smollm2"],
            "smollm2",
            "a model in the store has that name",
        ),
        (
            vec!["auto", "--model", "smollm2"],
            "auto",
            "`auto` is reserved",
        ),
        (
            vec!["legal", "--model", "smollm2", "--tools", "abacus"],
            "legal",
            "unknown tool `abacus`: the installed tools are calculator, dates, units",
        ),
        (
            vec![
                "legal",
                "--model",
                "smollm2",
                "--adapter",
                model.to_str().unwrap(),
            ],
            "legal",
            "not `adapter`",
        ),
        (
            vec![
                "legal",
                "--model",
                "smollm2",
                "--adapter",
                wide.to_str().unwrap(),
            ],
            "legal",
            "as the adapter of base model `smollm2`",
        ),
        (
            vec![
                "legal",
                "--model",
                "smollm2",
                "--instructions",
                long.to_str().unwrap(),
            ],
            "legal",
            "larger than 32 KiB",
        ),
        (
            vec!["legal", "--model", "smollm2", "--corpus", "../contracts"],
            "legal",
            "failed to use corpus name `../contracts`",
        ),
    ];
    let before = tree(&home.join("specialists"));
    for (args, resource, why) in &cases {
        let mut full = vec!["specialist", "add"];
        full.extend(args);
        let out = sov(&home, &full);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
        assert_eq!(tree(&home.join("specialists")), before, "{args:?}");
        let last = specialist_entries(&home).pop().unwrap();
        assert_eq!(last["outcome"], "denied", "{args:?}");
        assert_eq!(last["resource"], *resource, "{args:?}");
        assert!(
            last["reason"].as_str().unwrap().contains(why),
            "{args:?}: {last}"
        );
    }
    assert_eq!(specialist_entries(&home).len(), cases.len());
}

#[test]
fn a_tampered_manifest_is_refused_by_show() {
    let (_dir, home) = home_with(&[]);
    ok(
        &home,
        &["specialist", "add", "general", "--model", "smollm2"],
    );
    let path = home.join("specialists/manifests/general.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("The general specialist", "The other specialist"),
    )
    .unwrap();
    let out = sov(&home, &["specialist", "show", "general"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "failed to verify specialist `general`: the manifest's signature is not valid"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_change_is_refused_while_another_process_writes_the_record() {
    let (_dir, home) = home_with(&[]);
    // What `sov serve` holds while it runs: the record's write lock.
    let lock = std::fs::File::open(home.join("audit/lock")).unwrap();
    lock.try_lock().unwrap();
    let before = tree(&home.join("specialists"));
    let out = sov(
        &home,
        &["specialist", "add", "general", "--model", "smollm2"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already open for writing"),
        "{}",
        stderr(&out)
    );
    assert_eq!(tree(&home.join("specialists")), before);
    lock.unlock().unwrap();
    ok(
        &home,
        &["specialist", "add", "general", "--model", "smollm2"],
    );
}

#[test]
fn serve_refuses_a_corpus_embedded_by_another_model_than_the_nodes() {
    let (_dir, home) = home_with(&[]);
    // A corpus built with the chat model's embeddings, on a node whose embedding model is none:
    // its vectors and the node's queries would not be comparable.
    let owner = sov_keys::OwnerKeys::load(&home.join("keys")).unwrap();
    let store = sov_knowledge::KnowledgeStore::open(&home.join("corpora")).unwrap();
    let embedder = sov_knowledge::EmbedderId {
        name: "smollm2".into(),
        sha256: starter_sha256(),
        dims: 576,
    };
    store.create("notes", &embedder, &owner).unwrap();
    let out = sov(&home, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "the corpus `notes` was embedded by `smollm2`, but the node embeds with no model"
        ),
        "{}",
        stderr(&out)
    );
    let entries = ok(&home, &["audit", "tail", "-n", "5", "--json"]);
    assert!(
        entries.contains("corpus:notes") && entries.contains("\"denied\""),
        "{entries}"
    );
}

#[test]
fn a_specialist_with_a_lora_adapter_answers_through_it_and_the_record_names_it() {
    let (dir, home) = home_with(&[]);
    let n_embd = sov_models::read_info(&starter())
        .unwrap()
        .embedding_length
        .unwrap();
    let adapter = |name: &str, magnitude: f32| {
        let path = dir.path().join(name);
        let lora = sov_models::gguf::lora_fixture::Lora {
            arch: "llama",
            n_embd,
            layers: 4,
            magnitude,
            seed: 1,
        };
        std::fs::write(&path, lora.bytes()).unwrap();
        let sha = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
        (path, sha)
    };
    let (strong, strong_sha) = adapter("strong.gguf", 0.3);
    let (zero, zero_sha) = adapter("zero.gguf", 0.0);
    let add = |name: &str, lora: Option<&Path>| {
        let mut args = vec!["specialist", "add", name, "--model", "smollm2"];
        args.extend(["--description", "Answers general questions."]);
        if let Some(p) = lora {
            args.extend(["--adapter", p.to_str().unwrap()]);
        }
        ok(&home, &args)
    };
    add("plain", None);
    assert!(add("tuned", Some(&strong)).contains(&strong_sha));
    add("untuned", Some(&zero));
    let ask = |model: &str| {
        let question = "Write a short story about a lighthouse keeper.";
        let args = [
            "chat",
            "--model",
            model,
            "--temperature",
            "0",
            "--max-tokens",
            "24",
            question,
        ];
        ok(&home, &args)
    };
    let plain = ask("plain");
    let tuned = ask("tuned");
    assert_ne!(tuned, plain, "the adapter changed nothing");
    // A zero adapter is applied (llama.cpp computes it) and adds nothing: the same answer.
    assert_eq!(ask("untuned"), plain);

    let entries = audit_entries(&home);
    let last = |kind: &str, resource: &str| {
        entries
            .iter()
            .rev()
            .find(|e| e["kind"] == kind && e["resource"] == resource)
            .unwrap()
    };
    let answer = last("inference", "tuned");
    assert_eq!(
        answer["attrs"]["adapter_sha256"],
        strong_sha.as_str(),
        "{answer}"
    );
    assert_eq!(answer["model"], starter_sha256().as_str(), "{answer}");
    let plain_entry = last("inference", "plain");
    assert!(
        plain_entry["attrs"].get("adapter_sha256").is_none(),
        "{plain_entry}"
    );
    // The base model was loaded with both adapters, each named.
    let load = last("model.load", "smollm2");
    let loaded = load["attrs"]["adapters_sha256"].as_str().unwrap();
    assert!(
        loaded.contains(&strong_sha) && loaded.contains(&zero_sha),
        "{load}"
    );
}
