//! Tools from a fresh home, as the README shows them: a specialist with the calculator answers
//! the eval's 40 arithmetic questions (eval/tools/arithmetic.jsonl) through the starter model and
//! the official openai client; the tool endpoints are called directly (units, dates, a declared
//! read-only SQL database, refusals); a specialist made to use its tools runs the tool loop;
//! every call has a receipt in the record, whose commitment
//! the caller can open and which the offline verifier proves. Needs SOV_TEST_MODEL and
//! SOV_TEST_PYTHON (`bash scripts/test` sets them).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{client, entries, env_path, home_with_starter, run, sov, start};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The salted commitment an entry carries (sov-audit-core's `commitment`), recomputed here.
fn commitment(label: &str, salt: &[u8], data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"sovereign/audit-commitment/v1\n");
    h.update(label.as_bytes());
    h.update(b"\n");
    h.update(salt);
    h.update(data);
    hex::encode(h.finalize())
}

#[test]
fn a_calculator_specialist_answers_exactly_and_every_tool_call_is_receipted() {
    let python = env_path("SOV_TEST_PYTHON");
    let (dir, home) = home_with_starter();
    sov(
        &home,
        &[
            "specialist",
            "add",
            "calc",
            "--model",
            "smollm2",
            "--tools",
            "calculator",
            "--description",
            "Exact arithmetic: products, powers, divisions, percentages",
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
            "--tools",
            "calculator,units,dates",
            "--description",
            "Conversions and dates",
        ],
    );
    // A declared read-only database, made by Python's own sqlite3.
    let ledger = home.join("ledger.db");
    let made = Command::new(&python)
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.executescript(\"CREATE TABLE accounts(name TEXT, balance INTEGER); \
             INSERT INTO accounts VALUES ('alice', 100), ('bob', 250);\"); c.commit()",
        )
        .arg(&ledger)
        .status()
        .unwrap();
    assert!(made.success());
    let config = home.join("sov.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[[tools.sql]]\nname = \"ledger\"\npath = \"{}\"\ndescription = \"Account balances.\"\n",
        ledger.display()
    ));
    std::fs::write(&config, toml).unwrap();
    sov(&home, &["principal", "add", "ana", "--role", "analyst"]);
    sov(
        &home,
        &[
            "principal",
            "add",
            "billing",
            "--kind",
            "service",
            "--role",
            "service",
        ],
    );
    let ana = sov(&home, &["token", "issue", "ana"]).trim().to_owned();
    let billing = sov(&home, &["token", "issue", "billing"]).trim().to_owned();

    let (server, base, _) = start(&home);
    let questions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../eval/tools/arithmetic.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools_client.py");
    let questions = questions.to_str().unwrap();
    let env = [
        ("SOV_TEST_TOKEN", ana.as_str()),
        ("SOV_TEST_SERVICE", &billing),
    ];
    let seen = client(&python, &script, &[&base, questions], &env);
    drop(server);

    // At least 38 of the 40 answers (95%) state the exact result; each has its calculator step.
    let asked = seen["asked"].as_array().unwrap();
    assert_eq!(asked.len(), 40);
    let mut exact = 0;
    for a in asked {
        let answer = a["answer"].as_str().unwrap();
        let text = a["text"].as_str().unwrap();
        assert_eq!(a["model"], "calc", "{a}");
        let calls = a["tool_calls"]
            .as_array()
            .unwrap_or_else(|| panic!("no tool call: {a}"));
        assert_eq!(calls.len(), 1, "{a}");
        assert_eq!(calls[0]["tool"], "calculator");
        assert_eq!(calls[0]["result"]["result"], answer, "{a}");
        // The answer is the calculator's statement: the expression, `=` (or `≈` when
        // rounded), the exact result; the model adds nothing.
        let expression = calls[0]["result"]["expression"].as_str().unwrap();
        if text.starts_with(expression) && text.contains(&format!(" {answer}")) {
            exact += 1;
        }
    }
    eprintln!("exact answers: {exact}/40");
    assert!(
        exact >= 38,
        "only {exact} of 40 answers were exact: {asked:#?}"
    );
    // A stream ends with the same statement.
    let stream = &seen["stream"];
    assert!(
        stream["text"]
            .as_str()
            .unwrap()
            .contains("717897987691852588770249"),
        "{stream}"
    );
    assert_eq!(stream["tool_calls"][0]["tool"], "calculator", "{stream}");

    // A specialist with units and dates answers a plain conversion or calendar question with
    // the tool, and anything else with its model.
    let clerk = seen["clerk"].as_array().unwrap();
    let said = |i: usize| clerk[i]["text"].as_str().unwrap();
    assert_eq!(said(0), "12.5 miles = 20.1168 kilometres", "{clerk:?}");
    assert_eq!(clerk[0]["tool_calls"][0]["tool"], "units");
    assert_eq!(said(1), "2026-12-25 is a Friday", "{clerk:?}");
    assert!(
        said(2).contains("59 days, of which 42 business days"),
        "{clerk:?}"
    );
    assert!(clerk[3]["tool_calls"].is_null(), "{clerk:?}");
    assert!(!said(3).is_empty());

    // The tool endpoints.
    let listed: Vec<&str> = seen["list"]["body"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["calculator", "dates", "ledger", "units"],
        "{}",
        seen["list"]
    );
    assert_eq!(
        seen["units"]["body"]["result"]["result"], "20.1168",
        "{}",
        seen["units"]
    );
    assert_eq!(
        seen["dates"]["body"]["result"]["date"], "2026-12-07",
        "{}",
        seen["dates"]
    );
    assert_eq!(
        seen["ledger"]["body"]["result"]["rows"][0][0], 350,
        "{}",
        seen["ledger"]
    );
    let refused = |key: &str, status: u64, says: &str| {
        let r = &seen[key];
        assert_eq!(r["status"], status, "{key}: {r}");
        assert!(r["body"].to_string().contains(says), "{key}: {r}");
    };
    refused("ledger_write", 422, "only reading is allowed");
    refused("divide_by_zero", 422, "division by zero");
    refused("bad_arguments", 422, "invalid arguments");
    refused("unknown", 404, "no tool named `abacus`");
    refused("service", 403, "permission");

    // Every call has its receipt; the caller can open the commitment to its arguments.
    let entries = entries(&home);
    let receipts: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "tool.call")
        .collect();
    let calculator_ok = receipts
        .iter()
        .filter(|e| {
            e["resource"] == "Tool::\"calculator\""
                && e["outcome"] == "ok"
                && e["principal"] == "ana"
        })
        .count();
    assert!(
        calculator_ok >= 41,
        "{calculator_ok} calculator receipts: {receipts:#?}"
    );
    let denied = receipts
        .iter()
        .find(|e| e["principal"] == "billing")
        .expect("a receipt for the refused service");
    assert_eq!(denied["outcome"], "denied", "{denied}");
    let failed = receipts
        .iter()
        .find(|e| {
            e["resource"] == "Tool::\"ledger\""
                && e["outcome"] == "error"
                && e["attrs"]["round"] == "0"
        })
        .expect("a receipt for the refused write");
    assert!(
        failed["reason"].as_str().unwrap().contains("only reading"),
        "{failed}"
    );
    let first = &asked[0];
    let salt = base64::engine::general_purpose::STANDARD
        .decode(first["salt"].as_str().unwrap())
        .unwrap();
    let args = first["tool_calls"][0]["arguments"].as_str().unwrap();
    let opened = commitment("tool.arguments", &salt, args.as_bytes());
    let receipt = receipts
        .iter()
        .find(|e| e["input"] == opened.as_str())
        .unwrap_or_else(|| panic!("no receipt commits to {args}"));
    assert_eq!(receipt["attrs"]["tool"], "calculator");
    assert_eq!(receipt["attrs"]["round"], "1");
    assert!(
        receipt["attrs"]["tool_version"]
            .as_str()
            .unwrap()
            .starts_with("sov-tools/")
    );
    let result = serde_json::to_vec(&first["tool_calls"][0]["result"]).unwrap();
    assert_eq!(
        receipt["output"],
        commitment("tool.result", &salt, &result).as_str()
    );
    // The answer's own entry lists the receipt among its decisions.
    let answer = entries
        .iter()
        .find(|e| e["index"].as_u64() == first["entry"].as_str().unwrap().parse().ok())
        .unwrap();
    let decisions = answer["attrs"]["decision"].as_str().unwrap();
    assert!(
        decisions
            .split(',')
            .any(|d| d.parse::<u64>().ok() == receipt["index"].as_u64()),
        "{answer} {receipt}"
    );

    // The record verifies offline, and the receipt is proved by the standalone verifier.
    let vkeys = common::verify_offline(&home, dir.path());
    let verify = common::verifier();
    let index = receipt["index"].to_string();
    let proof = dir.path().join("receipt.tlog-proof");
    std::fs::write(&proof, run(&home, &["audit", "proof", &index]).stdout).unwrap();
    let proved = Command::new(&verify)
        .arg("proof")
        .arg(&proof)
        .arg("--key")
        .arg(&vkeys)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        proved.status.success(),
        "{}",
        String::from_utf8_lossy(&proved.stderr)
    );
    let report: Value = serde_json::from_slice(&proved.stdout).unwrap();
    assert_eq!(report["entry"]["kind"], "tool.call", "{report}");
    assert_eq!(report["entry"]["input"], opened.as_str(), "{report}");
}

#[test]
fn a_declared_database_that_cannot_be_served_is_refused_at_start() {
    let (dir, home) = home_with_starter();
    let config = home.join("sov.toml");
    let base = std::fs::read_to_string(&config).unwrap();
    let outside = dir.path().join("outside.db");
    std::fs::write(&outside, b"").unwrap();
    for (decl, says) in [
        (
            "name = \"x\"\npath = \"rel.db\"".to_owned(),
            "must be absolute",
        ),
        (
            format!(
                "name = \"x\"\npath = \"{}\"",
                home.join("none.db").display()
            ),
            "no database file",
        ),
        (
            format!("name = \"x\"\npath = \"{}\"", outside.display()),
            "add its folder to [seal] read_only",
        ),
        (
            format!(
                "name = \"calculator\"\npath = \"{}\"",
                home.join("sov.toml").display()
            ),
            "already installed",
        ),
        (
            format!(
                "name = \"a b\"\npath = \"{}\"",
                home.join("sov.toml").display()
            ),
            "is not a tool name",
        ),
    ] {
        std::fs::write(&config, format!("{base}\n[[tools.sql]]\n{decl}\n")).unwrap();
        let args = [
            "specialist",
            "add",
            "s",
            "--model",
            "smollm2",
            "--tools",
            "calculator",
        ];
        let out = run(&home, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{decl}: {err}");
    }
    // Nothing was added by the refused commands.
    std::fs::write(&config, &base).unwrap();
    assert!(sov(&home, &["specialist", "list"]).contains("no specialists yet"));
}

#[test]
fn a_specialist_made_to_use_its_tools_runs_the_tool_loop_and_states_each_result() {
    let (_dir, home) = home_with_starter();
    // `required` needs tools.
    let out = run(
        &home,
        &[
            "specialist",
            "add",
            "x",
            "--model",
            "smollm2",
            "--tool-choice",
            "required",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs at least one tool"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sov(
        &home,
        &[
            "specialist",
            "add",
            "counter",
            "--model",
            "smollm2",
            "--tools",
            "calculator",
            "--tool-choice",
            "required",
            "--description",
            "Counts stock",
        ],
    );
    sov(&home, &["principal", "add", "ana", "--role", "analyst"]);
    let ana = sov(&home, &["token", "issue", "ana"]).trim().to_owned();
    let (server, base, _) = start(&home);
    // Not a plain computation (no operator): the model is asked, and must call the calculator.
    let question = "A shop has 17 boxes with 24 pens in each box. How many pens are there in all?";
    let body: Value = reqwest::blocking::Client::new()
        .post(format!("{base}/chat/completions"))
        .bearer_auth(&ana)
        .json(&serde_json::json!({
            "model": "counter",
            "temperature": 0,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": question}],
        }))
        // Two generations (the call, then the words), beside the other tests' load.
        .timeout(std::time::Duration::from_secs(300))
        .send()
        .unwrap()
        .json()
        .unwrap();
    drop(server);
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    let calls = body["sov_tool_calls"]
        .as_array()
        .unwrap_or_else(|| panic!("no tool calls: {body}"));
    assert!(!calls.is_empty(), "{body}");
    assert!(content.contains("Tool results: "), "{content}");
    for call in calls {
        assert_eq!(call["tool"], "calculator", "{call}");
        // The grammar made arguments that match the schema; whatever the model asked, the
        // answer states the calculator's result as computed.
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert!(args["expression"].is_string(), "{call}");
        match call["result"]["result"].as_str() {
            Some(result) => assert!(content.contains(result), "{result} not in {content}"),
            None => assert!(content.contains("could not be computed"), "{content}"),
        }
    }
    let entries = entries(&home);
    let receipts: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "tool.call" && e["principal"] == "ana")
        .collect();
    assert_eq!(receipts.len(), calls.len(), "{receipts:?}");
    // `required`: one round of calls, then the answer in words.
    assert!(
        receipts.iter().all(|r| r["attrs"]["round"] == "1"),
        "{receipts:?}"
    );
    let answer = entries
        .iter()
        .rev()
        .find(|e| e["kind"] == "inference" && e["principal"] == "ana")
        .unwrap();
    assert_eq!(answer["attrs"]["answered_by"], "model+tools", "{answer}");
    assert_eq!(answer["attrs"]["tool_choice"], "required", "{answer}");
    assert_eq!(answer["attrs"]["tool_rounds"], "1", "{answer}");
}
