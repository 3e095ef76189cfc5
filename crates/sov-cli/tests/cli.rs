//! The `sov` binary as a user runs it: real home, real keys, real model, real server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::Server;
use serde_json::Value;

/// Tests that run the model take this first: two `sov` processes computing at once would share
/// two cores between four llama.cpp threads, which spin at barriers and slow each other 10-100x.
/// (Inside one process the engine serialises this itself.)
fn inference() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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

/// Every path under `dir` with its bytes: to prove a failed command changed nothing.
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

fn settings(home: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(&regex_escape(&home.display().to_string()), "[HOME]");
    s.add_filter(r"owner key id:  [0-9a-f]{16}", "owner key id:  [KEY]");
    s.add_filter(r"sovereign/sov-[0-9a-f]{8}", "sovereign/sov-[NODE]");
    s.add_filter(r"[0-9]+\.[0-9]{2} s\)", "[T] s)");
    s.add_filter(r"sov_[A-Za-z0-9_-]{43}", "[TOKEN]");
    s.add_filter(r"revoke [A-Za-z0-9_-]{12}", "revoke [ID]");
    s.add_filter(r"set [0-9a-f]{16}", "set [HASH]");
    s.add_filter(r"expires [0-9T:.Z-]{24}", "expires [TIME]");
    s
}

/// The owner's token, from the first `sov init`'s output.
fn owner_token(init: &Output) -> String {
    stdout(init)
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("sov_"))
        .unwrap_or_else(|| panic!("no token in: {}", stdout(init)))
        .to_owned()
}

/// Authorization header value for `token`.
fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_alphanumeric() || c == '/' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

#[test]
fn init_is_idempotent_and_keys_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let first = sov(&home, &["init"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = tree(&home);
    let second = sov(&home, &["init"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(tree(&home), before, "a second init changed the home");
    settings(&home).bind(|| {
        insta::assert_snapshot!("init_first", stdout(&first));
        insta::assert_snapshot!("init_second", stdout(&second));
    });
    assert_eq!(
        std::fs::metadata(&home).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let mut secrets = 0;
    for entry in std::fs::read_dir(home.join("keys")).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".pub.json") {
            continue;
        }
        secrets += 1;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
        // The secret never appears in anything the user sees.
        let secret = std::fs::read_to_string(&path).unwrap();
        for line in secret.lines().filter(|l| l.len() >= 32) {
            assert!(!stdout(&first).contains(line) && !stderr(&first).contains(line));
        }
    }
    assert_eq!(
        secrets, 2,
        "expected two secret key files (the owner's, the audit log's)"
    );
    assert!(home.join("keys/owner.key").is_file());
    assert!(home.join("keys/log.key").is_file());
    assert!(home.join("audit/checkpoint").is_file());
}

#[test]
fn commands_before_init_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = sov(&dir.path().join("none"), &["model", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("run `sov init` first"),
        "{}",
        stderr(&out)
    );
}

/// The home without its audit record (which grows with every action, refusals included).
fn store_tree(home: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    tree(home)
        .into_iter()
        .filter(|(p, _)| !p.starts_with(home.join("audit")))
        .collect()
}

/// The record's entries (as covered by its latest checkpoint), as JSON.
fn audit_entries(home: &Path) -> Vec<Value> {
    let out = sov(home, &["audit", "tail", "-n", "100000", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_bad_import_leaves_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(sov(&home, &["init"]).status.success());
    let before = store_tree(&home);

    let not_gguf = dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, b"this is not a model, just text").unwrap();
    let out = sov(&home, &["model", "import", not_gguf.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a GGUF file"), "{}", stderr(&out));
    assert_eq!(store_tree(&home), before);

    // The real model, cut short: its header parses but its tensors are missing.
    let truncated = dir.path().join("cut.gguf");
    let bytes = std::fs::read(starter()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = sov(&home, &["model", "import", truncated.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("truncated"),
        "{}",
        stderr(&out)
    );
    assert_eq!(store_tree(&home), before);

    let out = sov(
        &home,
        &[
            "model",
            "import",
            dir.path().join("missing.gguf").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert_eq!(store_tree(&home), before);

    // Each refusal is in the record, with its reason.
    let entries = audit_entries(&home);
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "model.import" && e["outcome"] == "denied")
        .collect();
    assert_eq!(refused.len(), 3, "{entries:?}");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a GGUF file")
    );
}

/// A home with the starter model imported as `smollm2`, and the owner's token.
fn home_with_starter() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let init = sov(&home, &["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let token = owner_token(&init);
    let out = sov(
        &home,
        &[
            "model",
            "import",
            starter().to_str().unwrap(),
            "--name",
            "smollm2",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    (dir, home, token)
}

#[test]
fn import_list_show_verify_rm() {
    let (_dir, home, _token) = home_with_starter();
    // Importing the same file again is a no-op.
    let again = sov(
        &home,
        &[
            "model",
            "import",
            starter().to_str().unwrap(),
            "--name",
            "smollm2",
        ],
    );
    assert!(
        stdout(&again).starts_with("Already in the store"),
        "{}",
        stdout(&again)
    );
    settings(&home).bind(|| {
        insta::assert_snapshot!("model_list", stdout(&sov(&home, &["model", "list"])));
        let show = stdout(&sov(&home, &["model", "show", "smollm2"]));
        let show: String = show
            .lines()
            .filter(|l| !l.starts_with("imported at:") && !l.starts_with("signed by:"))
            .map(|l| format!("{l}\n"))
            .collect();
        insta::assert_snapshot!("model_show", show);
        insta::assert_snapshot!("model_verify", stdout(&sov(&home, &["model", "verify"])));
    });
    let rm = sov(&home, &["model", "rm", "smollm2"]);
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert!(stdout(&sov(&home, &["model", "list"])).contains("The model store is empty"));
    let blobs: Vec<_> = std::fs::read_dir(home.join("models/blobs/sha256"))
        .unwrap()
        .collect();
    assert!(blobs.is_empty(), "the model file was not removed");
}

fn blob_of(home: &Path) -> PathBuf {
    let dir = home.join("models/blobs/sha256");
    let entry = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
    entry.path()
}

#[test]
fn a_model_altered_by_one_byte_is_refused_at_load() {
    let (_dir, home, _token) = home_with_starter();
    let blob = blob_of(&home);
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();

    let verify = sov(&home, &["model", "verify", "smollm2"]);
    assert!(!verify.status.success());
    assert!(
        stdout(&verify).contains("FAILED  smollm2"),
        "{}",
        stdout(&verify)
    );

    for args in [
        &["chat", "--model", "smollm2", "hi"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = sov(&home, args);
        assert!(
            !out.status.success(),
            "{args:?} started with a tampered model"
        );
        let err = stderr(&out);
        assert!(err.contains("refusing to load model `smollm2`"), "{err}");
        assert!(err.contains("does not match its signed manifest"), "{err}");
    }
    // Both refusals are recorded.
    let denied = audit_entries(&home)
        .into_iter()
        .filter(|e| e["kind"] == "model.load" && e["outcome"] == "denied")
        .count();
    assert_eq!(denied, 2);
}

#[test]
fn a_tampered_manifest_is_refused_at_load() {
    let (_dir, home, _token) = home_with_starter();
    let manifest = home.join("models/manifests/smollm2.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text.replacen("\"llama\"", "\"llamb\"", 1);
    std::fs::write(&manifest, text).unwrap();
    let out = sov(&home, &["chat", "--model", "smollm2", "hi"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("refusing to load model `smollm2`"), "{err}");
    assert!(err.contains("signature"), "{err}");
}

#[test]
fn chat_answers_a_question_in_process() {
    let _running = inference();
    let (_dir, home, _token) = home_with_starter();
    let out = sov(
        &home,
        &[
            "chat",
            "Name the capital city of France.",
            "--temperature",
            "0",
            "--max-tokens",
            "40",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Paris"), "{}", stdout(&out));
    // The answer is recorded with commitments to the question and the answer, not the text.
    let entries = audit_entries(&home);
    let chat = entries
        .iter()
        .find(|e| e["kind"] == "inference")
        .unwrap_or_else(|| panic!("no inference entry: {entries:?}"));
    assert_eq!(chat["outcome"], "ok");
    assert_eq!(chat["attrs"]["route"], "sov chat");
    assert!(
        chat["input"].is_string() && chat["output"].is_string(),
        "{chat}"
    );
    assert!(!chat.to_string().contains("France"), "{chat}");
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "model.load" && e["outcome"] == "ok")
    );
}

/// An entry's fields that do not depend on the door: everything but the entry's place in the
/// log (index, time, previous hash), its salted commitments, and the attributes each door
/// adds of its own (`route`, `peer`, the HTTP `status`, the indices in `decision`, and the
/// caller's credential: `token` for the API, `local` for a command).
fn door_independent(entry: &Value) -> Value {
    const DOOR: [&str; 6] = ["route", "peer", "status", "decision", "token", "local"];
    let mut attrs = entry["attrs"].as_object().unwrap().clone();
    attrs.retain(|k, _| !DOOR.contains(&k.as_str()));
    serde_json::json!({
        "kind": entry["kind"], "node": entry["node"], "principal": entry["principal"],
        "resource": entry["resource"], "outcome": entry["outcome"], "reason": entry["reason"],
        "model": entry["model"], "input": entry["input"].is_string(),
        "output": entry["output"].is_string(), "attrs": attrs,
    })
}

#[test]
fn the_same_chat_through_sov_chat_and_the_api_makes_the_same_entries() {
    let _running = inference();
    let (_dir, home, token) = home_with_starter();
    let question = "Name the capital city of France.";
    let out = sov(
        &home,
        &["chat", question, "--temperature", "0", "--max-tokens", "8"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (mut server, base) = serve(&home);
    let res = reqwest::blocking::Client::new()
        .post(format!("{base}/chat/completions"))
        .header("authorization", bearer(&token))
        .json(
            &serde_json::json!({"model": "smollm2", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": question}]}),
        )
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    let index: usize = res.headers()["sov-audit-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    server.stop();

    let entries = audit_entries(&home);
    let by_door = |route: &str| -> (Value, Vec<Value>) {
        let own = entries
            .iter()
            .find(|e| e["kind"] == "inference" && e["attrs"]["route"] == route)
            .unwrap_or_else(|| panic!("no inference entry from {route}: {entries:?}"))
            .clone();
        let decisions: Vec<Value> = own["attrs"]["decision"]
            .as_str()
            .unwrap_or_else(|| panic!("no decisions listed: {own}"))
            .split(',')
            .map(|i| entries[i.parse::<usize>().unwrap()].clone())
            .collect();
        (own, decisions)
    };
    let (cli, cli_decisions) = by_door("sov chat");
    let (api, api_decisions) = by_door("/v1/chat/completions");
    assert_eq!(api["index"], index);
    // The door's own attributes are there, and only they differ.
    assert_eq!(api["attrs"]["status"], "200");
    assert!(api["attrs"]["peer"].is_string(), "{api}");
    assert!(cli_decisions[0]["attrs"]["local"].is_string());
    assert!(api_decisions[0]["attrs"]["token"].is_string());
    assert_eq!(door_independent(&cli), door_independent(&api));
    for key in ["prompt_tokens", "completion_tokens", "finish_reason"] {
        assert!(cli["attrs"][key].is_string(), "{key} missing: {cli}");
    }
    assert_eq!(cli["principal"], "owner");
    assert_eq!(cli_decisions.len(), api_decisions.len());
    for (c, a) in cli_decisions.iter().zip(&api_decisions) {
        assert_eq!(c["kind"], "policy.decision");
        assert_eq!(door_independent(c), door_independent(a));
    }

    // The policies decide for `sov chat` too: a principal without a role is refused, recorded.
    let add = sov(&home, &["principal", "add", "guest"]);
    assert!(add.status.success(), "{}", stderr(&add));
    let out = sov(&home, &["chat", "--as", "guest", question]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    let out = sov(&home, &["chat", "--as", "nobody", question]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot act as `nobody`"),
        "{}",
        stderr(&out)
    );
    let entries = audit_entries(&home);
    let refusal = entries
        .iter()
        .rfind(|e| e["kind"] == "refusal" && e["principal"] == "guest")
        .unwrap_or_else(|| panic!("no refusal of guest: {entries:?}"));
    assert_eq!(refusal["attrs"]["route"], "sov chat");
    let denied = &entries[refusal["attrs"]["decision"]
        .as_str()
        .unwrap()
        .parse::<usize>()
        .unwrap()];
    assert_eq!(denied["kind"], "policy.decision");
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["attrs"]["action"], "infer");
}

#[test]
fn interactive_chat_answers_each_line() {
    let _running = inference();
    let (_dir, home, _token) = home_with_starter();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sov"))
        .arg("--home")
        .arg(&home)
        .args(["chat", "--temperature", "0", "--max-tokens", "24"])
        .env("SOV_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "Name the capital city of France.").unwrap();
        writeln!(stdin, "/reset").unwrap();
        writeln!(stdin, "What is 2 + 2?").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Paris") && text.contains('4'), "{text}");
}

/// Starts `sov serve` on an ephemeral port and returns it with its base URL.
fn serve(home: &Path) -> (Server, String) {
    let (server, url, seal) = serve_with(home, &[]);
    assert!(seal.starts_with("Seal: sealed:"), "{seal}");
    (server, url)
}

/// Starts `sov serve --listen 127.0.0.1:0 ARGS` and returns it with its base URL and the line
/// saying how the seal stands (printed before the ready line).
fn serve_with(home: &Path, args: &[&str]) -> (Server, String, String) {
    let (server, url, printed) = common::start_with(home, args);
    let line = printed.last().unwrap();
    assert!(
        line.starts_with("Sovereign is serving smollm2 at http://127.0.0.1:"),
        "{printed:?}"
    );
    (server, url, printed[0].clone())
}

#[test]
fn the_official_openai_python_client_works_unchanged() {
    let _running = inference();
    let python = std::env::var_os("SOV_TEST_PYTHON").unwrap_or_else(|| {
        panic!("SOV_TEST_PYTHON is not set: run the tests with `bash scripts/test`, which installs the openai client")
    });
    let (_dir, home, token) = home_with_starter();
    let (_server, base) = serve(&home);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&base)
        .arg("smollm2")
        .env("SOV_TEST_TOKEN", &token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["models"], serde_json::json!(["smollm2"]));
    let chat = seen["chat"].as_str().unwrap();
    assert!(chat.contains("Paris"), "{chat}");
    assert_eq!(seen["stream"], seen["chat"]);
    assert_eq!(seen["stream_usage"], seen["chat_usage"]);
    assert!(seen["text"].as_str().unwrap().contains("Paris"), "{seen}");
    assert_eq!(seen["embedding_dims"], serde_json::json!([576, 576]));
    assert_eq!(
        seen["not_found"],
        serde_json::json!({"status": 404, "code": "model_not_found"})
    );
    assert_eq!(
        seen["unauthenticated"],
        serde_json::json!({"status": 401, "code": "invalid_api_key"})
    );
}

#[test]
fn serve_refuses_a_port_in_use() {
    let (_dir, home, _token) = home_with_starter();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = sov(&home, &["serve", "--listen", &format!("127.0.0.1:{port}")]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("failed to listen on 127.0.0.1:{port}")),
        "{}",
        stderr(&out)
    );
}

/// The standalone verifier, built beside `sov` by the workspace's tests.
fn sov_verify() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_sov")).with_file_name("sov-verify");
    assert!(
        path.is_file(),
        "{} is missing: run the workspace's tests (`bash scripts/test`), which build it",
        path.display()
    );
    path
}

#[test]
fn a_served_session_is_recorded_and_its_export_verifies_offline() {
    let _running = inference();
    let (dir, home, token) = home_with_starter();
    let (mut server, base) = serve(&home);
    let res = reqwest::blocking::Client::new()
        .post(format!("{base}/chat/completions"))
        .header("authorization", bearer(&token))
        .json(
            &serde_json::json!({"model": "smollm2", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "Name the capital city of France."}]}),
        )
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    let index: u64 = res.headers()["sov-audit-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // One writer per record: a command that records is refused while the server runs.
    let rm = sov(&home, &["model", "rm", "smollm2"]);
    assert!(!rm.status.success());
    assert!(stderr(&rm).contains("another process"), "{}", stderr(&rm));
    assert!(stdout(&sov(&home, &["model", "list"])).contains("smollm2"));

    // Identity changes made while the server runs take effect at once; the server records them.
    let client = reqwest::blocking::Client::new();
    let out = sov(
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
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("running server"), "{}", stdout(&out));
    let out = sov(&home, &["token", "issue", "billing"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svc = stdout(&out).trim().to_owned();
    let call = |path: &str, token: &str| {
        client
            .get(format!("{base}{path}"))
            .header("authorization", bearer(token))
            .send()
            .unwrap()
    };
    let res = call("/models", &svc);
    assert_eq!(res.status(), 200);
    let res = call("/audit/checkpoint", &svc);
    assert_eq!(res.status(), 403);
    let denied: u64 = res.headers()["sov-audit-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = res.json().unwrap();
    assert_eq!(body["error"]["code"], "permission_denied");
    assert!(
        sov(&home, &["token", "revoke", &svc[4..16]])
            .status
            .success()
    );
    let res = call("/models", &svc);
    assert_eq!(res.status(), 401);
    let body: Value = res.json().unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );
    server.stop();
    let entries = audit_entries(&home);
    let start = entries
        .iter()
        .find(|e| e["kind"] == "server.start")
        .unwrap();
    let decision = &entries[denied as usize];
    assert_eq!(decision["kind"], "policy.decision");
    assert_eq!(decision["outcome"], "denied");
    assert_eq!(decision["principal"], "billing");
    assert_eq!(decision["resource"], "AuditLog::\"record\"");
    assert_eq!(decision["attrs"]["action"], "read-audit");
    assert_eq!(
        decision["attrs"]["policy_set"],
        start["attrs"]["policy_set"]
    );
    let changes = identity_changes(&home);
    for change in ["principal.add", "token.issue", "token.revoke"] {
        assert!(
            changes.contains(&(change.to_owned(), "billing".to_owned())),
            "{change} of billing is not recorded: {changes:?}"
        );
    }
    assert!(
        entries.iter().any(|e| e["kind"] == "refusal"
            && e["attrs"]["status"] == "401"
            && e["attrs"]["token"] == svc[4..16]),
        "the revoked token's refusal is not recorded"
    );

    // The session, in order: import, load, start, the answer, stop.
    let entries = audit_entries(&home);
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("no {k}: {kinds:?}"))
    };
    assert!(pos("model.import") < pos("model.load"));
    assert!(pos("model.load") < pos("server.start"));
    assert!(pos("server.start") < index as usize);
    assert!((index as usize) < pos("server.stop"));
    assert_eq!(entries[index as usize]["kind"], "inference");
    assert!(
        !kinds.contains(&"recovery"),
        "a clean stop needs no recovery: {kinds:?}"
    );

    let show = sov(&home, &["audit", "show", &index.to_string()]);
    assert!(show.status.success(), "{}", stderr(&show));
    assert!(
        stdout(&show).contains("kind:      inference (6)"),
        "{}",
        stdout(&show)
    );
    let verify = sov(&home, &["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    assert!(stdout(&verify).contains("OK"), "{}", stdout(&verify));

    // A receipt and an export, checked by the standalone verifier alone: a fresh folder holding
    // only the binary, the export, the receipt and the keys; no environment; no network where
    // the kernel lets us take it away.
    let proof = sov(&home, &["audit", "proof", &index.to_string()]);
    assert!(proof.status.success(), "{}", stderr(&proof));
    let export = sov(
        &home,
        &[
            "audit",
            "export",
            dir.path().join("x/record").to_str().unwrap(),
        ],
    );
    assert!(export.status.success(), "{}", stderr(&export));
    let keys: String = stdout(&export)
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    assert_eq!(keys.lines().count(), 2, "{}", stdout(&export));
    let alone = dir.path().join("alone");
    std::fs::create_dir(&alone).unwrap();
    std::fs::rename(dir.path().join("x/record"), alone.join("record")).unwrap();
    std::fs::copy(sov_verify(), alone.join("sov-verify")).unwrap();
    std::fs::write(alone.join("keys"), &keys).unwrap();
    std::fs::write(alone.join("answer.tlog-proof"), &proof.stdout).unwrap();
    let offline = |args: &[&str]| -> Output {
        // `unshare -n` gives the verifier a network namespace with no interfaces, if allowed.
        let isolated = Command::new("unshare")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
        let mut cmd = if isolated {
            let mut c = Command::new("unshare");
            c.args(["-n", "./sov-verify"]);
            c
        } else {
            Command::new("./sov-verify")
        };
        cmd.args(args)
            .current_dir(&alone)
            .env_clear()
            .output()
            .unwrap()
    };
    let out = offline(&["log", "record", "--key", "keys"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("OK"), "{}", stdout(&out));
    let out = offline(&["proof", "answer.tlog-proof", "--key", "keys", "--json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["entry"]["index"], index);
    assert_eq!(report["entry"]["kind"], "inference");

    // One flipped bit in the exported entries is found and named.
    let bundle = std::fs::read_dir(alone.join("record/tile/entries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .or_else(|| {
            let partial = std::fs::read_dir(alone.join("record/tile/entries/000.p")).ok()?;
            partial.map(|e| e.unwrap().path()).next()
        })
        .unwrap();
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&bundle, bytes).unwrap();
    let out = offline(&["log", "record", "--key", "keys"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tile/entries/"), "{}", stderr(&out));
}

/// The `change` attribute of every `identity.change` entry, in order.
fn identity_changes(home: &Path) -> Vec<(String, String)> {
    audit_entries(home)
        .iter()
        .filter(|e| e["kind"] == "identity.change")
        .map(|e| {
            (
                e["attrs"]["change"].as_str().unwrap_or_default().to_owned(),
                e["resource"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn principals_tokens_and_policy_checks_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let init = sov(&home, &["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    let owner = owner_token(&init);
    assert_eq!(owner.len(), 4 + 43);

    let add = |args: &[&str]| sov(&home, &[&["principal", "add"], args].concat());
    let out = add(&[
        "ana",
        "--role",
        "analyst",
        "--attr",
        "department=oncology",
        "--attr",
        "clearance=2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Refused, each with a reason, and nothing added.
    for (args, why) in [
        (vec!["ana"], "already exists"),
        (vec!["bad name"], "invalid principal name"),
        (
            vec!["bo", "--kind", "robot"],
            "must be `person` or `service`",
        ),
        (vec!["bo", "--attr", "clearance=high"], "clearance"),
        (vec!["bo", "--attr", "noequals"], "KEY=VALUE"),
    ] {
        let out = add(&args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }
    let list = stdout(&sov(&home, &["principal", "list"]));
    assert!(list.contains("owner") && list.contains("ana"), "{list}");
    assert!(!list.contains("bo "), "{list}");

    // A token: printed once, alone on stdout; only its hash is on disk.
    let out = sov(
        &home,
        &[
            "token",
            "issue",
            "ana",
            "--expires",
            "12h",
            "--scope",
            "infer",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let secret = stdout(&out).trim().to_owned();
    assert!(secret.starts_with("sov_") && secret.len() == 47, "{secret}");
    assert!(
        stderr(&out).contains("Limited to: infer."),
        "{}",
        stderr(&out)
    );
    for file in ["state/identity.db", "state/identity.db-wal"] {
        if let Ok(bytes) = std::fs::read(home.join(file)) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&secret[4..]) && !text.contains(&owner[4..]));
        }
    }
    let id = &secret[4..16];
    let tokens: Value =
        serde_json::from_slice(&sov(&home, &["token", "list", "--json"]).stdout).unwrap();
    assert_eq!(tokens.as_array().unwrap().len(), 2, "{tokens}");
    let ana = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap();
    assert_eq!(ana["scope"], serde_json::json!(["infer"]));
    assert_eq!(ana["state"], "active");
    assert!(!tokens.to_string().contains(&secret[16..]));
    let bad = sov(&home, &["token", "issue", "ana", "--scope", "fly"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("unknown action"), "{}", stderr(&bad));
    let bad = sov(&home, &["token", "issue", "nobody"]);
    assert!(
        stderr(&bad).contains("no principal named `nobody`"),
        "{}",
        stderr(&bad)
    );

    // Issue 12, finding 9: an id that starts with `-` (one in 64 of those issued before the fix)
    // is taken as an id, not read as an unknown flag.
    let dash = sov(&home, &["token", "revoke", "-AbCdEfGhIjK"]);
    assert!(
        stderr(&dash).contains("no token with id `-AbCdEfGhIjK`"),
        "{}",
        stderr(&dash)
    );

    // Revoke (by id, or by the whole token) and disable.
    let out = sov(&home, &["token", "revoke", &secret]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains(&secret[16..]),
        "the secret was echoed"
    );
    let show: Value =
        serde_json::from_slice(&sov(&home, &["principal", "show", "ana", "--json"]).stdout)
            .unwrap();
    assert_eq!(show["tokens"][0]["state"], "revoked");
    assert_eq!(show["attrs"]["department"], "oncology");
    let out = sov(&home, &["principal", "disable", "ana"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = sov(&home, &["token", "issue", "ana"]);
    assert!(stderr(&out).contains("disabled"), "{}", stderr(&out));

    // Each change is in the audit record, in order.
    let changes = identity_changes(&home);
    let expected: Vec<(String, String)> = [
        ("principal.add", "owner"),
        ("token.issue", "owner"),
        ("principal.add", "ana"),
        ("token.issue", "ana"),
        ("token.revoke", "ana"),
        ("principal.disable", "ana"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(changes, expected);
    let entries = audit_entries(&home);
    let install = entries
        .iter()
        .find(|e| e["kind"] == "policy.change")
        .expect("the starter set's install is recorded");
    assert_eq!(install["attrs"]["change"], "policy.install");

    // Decisions explained, with the deciding policy and its place; exit 0 allow, 2 deny.
    let check = |args: &[&str]| sov(&home, &[&["policy", "check"], args].concat());
    let out = check(&["owner", "manage-principals", "node:n1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("ALLOW"), "{}", stdout(&out));
    assert!(stdout(&out).contains("admin-all"), "{}", stdout(&out));
    let out = check(&["ana", "read-audit", "auditlog:record"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("default is deny"), "{}", stdout(&out));
    assert!(stdout(&out).contains("is disabled"), "{}", stdout(&out));
    let out = check(&["owner", "read-corpus", "document:d1,clearance=3", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["basis"], "forbidden");
    assert_eq!(v["policies"][0]["id"], "clearance-documents");
    assert_eq!(v["policies"][0]["file"], "clearance.cedar");
    let out = check(&["owner", "fly", "model:x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown action"), "{}", stderr(&out));
}

#[test]
fn an_invalid_policy_file_stops_the_start_with_its_line() {
    let (_dir, home, _token) = home_with_starter();
    let installed: Value =
        serde_json::from_slice(&sov(&home, &["policy", "show", "--json"]).stdout).unwrap();
    std::fs::write(
        home.join("policies/broken.cedar"),
        "// A typo in an action name.\n@id(\"oops\")\npermit (principal, action == Action::\"infr\", resource);\n",
    )
    .unwrap();
    let before = audit_entries(&home).len();
    let out = sov(&home, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("broken.cedar:3"), "{err}");
    assert!(err.contains("sov serve did not start"), "{err}");
    let out = sov(&home, &["policy", "show"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("broken.cedar:3"), "{}", stderr(&out));
    assert_eq!(
        audit_entries(&home).len(),
        before,
        "a refused start recorded something"
    );

    // Mended, the changed set starts, and the change is recorded with both hashes.
    std::fs::write(
        home.join("policies/broken.cedar"),
        "// Analysts may read the record.\n@id(\"analyst-audit\")\npermit (principal in Role::\"analyst\", action == Action::\"read-audit\", resource);\n",
    )
    .unwrap();
    let mended: Value =
        serde_json::from_slice(&sov(&home, &["policy", "show", "--json"]).stdout).unwrap();
    assert_ne!(installed["hash"], mended["hash"]);
    let _running = inference();
    let (mut server, _base) = serve(&home);
    server.stop();
    let entries = audit_entries(&home);
    let load = entries
        .iter()
        .find(|e| e["kind"] == "policy.change" && e["attrs"]["change"] == "policy.load")
        .expect("the changed set is recorded at start");
    assert_eq!(load["attrs"]["old"], installed["hash"]);
    assert_eq!(load["attrs"]["new"], mended["hash"]);
    let start = entries
        .iter()
        .find(|e| e["kind"] == "server.start")
        .unwrap();
    assert_eq!(start["attrs"]["policy_set"], mended["hash"]);
}

#[test]
fn seal_open_and_close_edit_the_declaration_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(sov(&home, &["init"]).status.success());
    let config = || std::fs::read_to_string(home.join("sov.toml")).unwrap();
    let before = config();
    assert!(before.contains("outbound = []"), "{before}");

    // Refused, and the file untouched.
    for (args, why) in [
        (
            vec!["seal", "open", "10.0.0.7", "--purpose", "x"],
            "HOST:PORT",
        ),
        (
            vec!["seal", "open", "10.0.0.7:8080", "--purpose", " "],
            "purpose",
        ),
        (vec!["seal", "close", "10.0.0.7:8080"], "not declared open"),
    ] {
        let out = sov(&home, &args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
        assert_eq!(config(), before);
    }

    let out = sov(
        &home,
        &[
            "seal",
            "open",
            "10.0.0.7:8080",
            "--purpose",
            "upstream engine",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("next starts"), "{}", stdout(&out));
    let opened = config();
    assert!(opened.contains("purpose = \"upstream engine\""), "{opened}");
    // The documentation in the file survives the edit.
    assert!(
        opened.contains("# Permitted outbound destinations"),
        "{opened}"
    );
    let again = sov(
        &home,
        &["seal", "open", "10.0.0.7:8080", "--purpose", "again"],
    );
    assert!(
        stderr(&again).contains("already declared open"),
        "{}",
        stderr(&again)
    );
    let out = sov(&home, &["seal", "close", "10.0.0.7:8080"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !config().contains("purpose = \"upstream engine\""),
        "{}",
        config()
    );

    let seal: Vec<(String, String)> = audit_entries(&home)
        .iter()
        .filter(|e| e["kind"] == "policy.change" && e["resource"] == "seal")
        .map(|e| {
            (
                e["attrs"]["change"].as_str().unwrap().to_owned(),
                e["attrs"]["destination"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seal,
        [
            ("seal.open".to_owned(), "10.0.0.7:8080".to_owned()),
            ("seal.close".to_owned(), "10.0.0.7:8080".to_owned())
        ]
    );
}

fn get_json(url: &str, token: &str) -> (u16, Value) {
    let res = reqwest::blocking::Client::new()
        .get(url)
        .header("authorization", bearer(token))
        .send()
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn the_seal_is_applied_probed_reported_and_attested_at_start() {
    let _running = inference();
    let (_dir, home, token) = home_with_starter();
    // A declared destination (nothing needs to listen there: only its port enters the rules).
    let out = sov(
        &home,
        &["seal", "open", "127.0.0.1:9", "--purpose", "test peer"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (server, base, seal) = serve_with(&home, &[]);
    assert_eq!(
        seal,
        "Seal: sealed: layers in force: landlock, seccomp; probes held: 19/19 (report: `sov seal status`)"
    );

    let (status, body) = get_json(&format!("{base}/seal"), &token);
    assert_eq!(status, 200, "{body}");
    let report = &body["report"];
    assert_eq!(report["sealed"], true, "{body:#}");
    assert_eq!(report["threads"], 1);
    let stored = std::fs::read(home.join("seal/report.json")).unwrap();
    assert_eq!(body["report_sha256"], sha256_hex(&stored));
    assert!(
        home.join(format!("seal/reports/{}.json", sha256_hex(&stored)))
            .is_file()
    );
    assert_eq!(body["pending"], serde_json::json!([]));
    // Every claim is backed by a probe, and the kernel refused what it must.
    let probes = report["probes"].as_array().unwrap();
    for control in report["controls"].as_array().unwrap() {
        assert_eq!(control["level"], "kernel", "{control}");
        for name in control["probes"].as_array().unwrap() {
            let p = probes.iter().find(|p| &p["name"] == name).unwrap();
            assert_eq!(p["holds"], true, "{p}");
        }
    }
    let result = |name: &str| {
        probes.iter().find(|p| p["name"] == name).unwrap()["result"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(result("connect-undeclared").starts_with("refused: EACCES"));
    assert!(result("read-outside").starts_with("refused: EACCES"));
    assert!(result("socket-udp").starts_with("refused: EPERM"));
    let landlock = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["layer"] == "landlock")
        .unwrap();
    assert!(
        landlock["detail"]
            .as_str()
            .unwrap()
            .contains("TCP connect to ports: 9;"),
        "{landlock}"
    );
    let not_covered = report["not_covered"].to_string();
    assert!(
        not_covered.contains("by port, not by address"),
        "{not_covered}"
    );
    assert!(not_covered.contains("physical access"), "{not_covered}");

    // A change while serving waits for the next start, and the report says so.
    let out = sov(
        &home,
        &["seal", "open", "10.0.0.9:9000", "--purpose", "later"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, body) = get_json(&format!("{base}/seal"), &token);
    assert_eq!(
        body["pending"],
        serde_json::json!(["open 10.0.0.9:9000 (later)"])
    );
    let status = sov(&home, &["seal", "status"]);
    assert!(status.status.success(), "{}", stderr(&status));
    let text = stdout(&status);
    assert!(text.contains("landlock  in force: ABI"), "{text}");
    assert!(text.contains("  - open 10.0.0.9:9000 (later)"), "{text}");
    assert!(text.contains(": running."), "{text}");
    // Once a signed checkpoint covers the attestation, status checks the report against it.
    let mut text = text;
    for _ in 0..100 {
        if text.contains("matches the audit record's seal.attestation entry") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        text = stdout(&sov(&home, &["seal", "status"]));
    }
    assert!(
        text.contains("matches the audit record's seal.attestation entry"),
        "{text}"
    );
    let attestation_index = body["attestation_index"].clone();

    // Reading the report is reading the record: an analyst may not.
    assert!(
        sov(&home, &["principal", "add", "ana", "--role", "analyst"])
            .status
            .success()
    );
    let issued = sov(&home, &["token", "issue", "ana"]);
    let ana = stdout(&issued).trim().to_owned();
    let (status, body) = get_json(&format!("{base}/seal"), &ana);
    assert_eq!(status, 403, "{body}");
    drop(server);

    let entries = audit_entries(&home);
    let attestation = entries
        .iter()
        .find(|e| e["kind"] == "seal.attestation")
        .unwrap();
    assert_eq!(attestation["outcome"], "ok", "{attestation}");
    assert_eq!(attestation["index"], attestation_index);
    assert_eq!(attestation["attrs"]["report_sha256"], sha256_hex(&stored));
    assert_eq!(attestation["attrs"]["probes_held"], "19/19");
    assert_eq!(
        attestation["attrs"]["probe.write-config"],
        "refused: EACCES: Permission denied"
    );
    // The kernel's refusals are in the record itself, not only in the report.
    assert_eq!(
        attestation["attrs"]["probe.connect-undeclared"],
        "refused: EACCES: Permission denied"
    );
    assert_eq!(
        attestation["attrs"]["probe.read-outside"],
        "refused: EACCES: Permission denied"
    );
    assert_eq!(
        attestation["attrs"]["layers"],
        "netns=off,landlock=on,seccomp=on"
    );
    // Both reads of the report are decisions in the record, the refused one too.
    let reads: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "policy.decision" && e["resource"] == "AuditLog::\"seal\"")
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(reads, ["ok", "ok", "denied"], "{entries:#?}");
    let verify = sov(&home, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));

    // A report edited after the start no longer matches its attestation, and status says so.
    let edited = String::from_utf8(stored)
        .unwrap()
        .replace("\"sealed\": true", "\"sealed\": false");
    std::fs::write(home.join("seal/report.json"), edited).unwrap();
    let status = sov(&home, &["seal", "status"]);
    assert!(!status.status.success());
    assert!(
        stderr(&status).contains("does not match the record"),
        "{}",
        stderr(&status)
    );
}

#[test]
fn a_layer_made_unavailable_is_reported_and_require_seal_refuses_to_start() {
    let _running = inference();
    let (_dir, home, token) = home_with_starter();
    let out = sov(
        &home,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--require-seal",
            "--seal-unavailable",
            "landlock",
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--require-seal: the seal is not whole: landlock is not in force"),
        "{err}"
    );
    assert!(
        stdout(&out).starts_with("Seal: NOT fully sealed"),
        "{}",
        stdout(&out)
    );
    let status = stdout(&sov(&home, &["seal", "status"]));
    assert!(
        status.contains("landlock  NOT IN FORCE: made unavailable on purpose"),
        "{status}"
    );
    assert!(status.contains("filesystem [nothing]"), "{status}");
    let entries = audit_entries(&home);
    let attestation = entries
        .iter()
        .find(|e| e["kind"] == "seal.attestation")
        .unwrap();
    assert_eq!(attestation["outcome"], "error");
    assert!(
        attestation["reason"]
            .as_str()
            .unwrap()
            .contains("landlock not in force"),
        "{attestation}"
    );
    let start = entries
        .iter()
        .find(|e| e["kind"] == "server.start")
        .unwrap();
    assert_eq!(start["outcome"], "denied", "{start}");
    assert!(
        entries.iter().all(|e| e["kind"] != "model.load"),
        "nothing is loaded after a refused start"
    );

    // Without --require-seal it starts, and says what is missing.
    let (server, base, seal) = serve_with(&home, &["--seal-unavailable", "seccomp"]);
    assert!(
        seal.starts_with("Seal: NOT fully sealed: layers in force: landlock;"),
        "{seal}"
    );
    let (_, body) = get_json(&format!("{base}/seal"), &token);
    let report = &body["report"];
    assert_eq!(report["sealed"], false);
    let probes = report["probes"].as_array().unwrap();
    let failed: Vec<&str> = probes
        .iter()
        .filter(|p| p["holds"] == false)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Every probe of a seccomp rule fails without seccomp: Landlock alone lets MPTCP, and on
    // most kernels TCP Fast Open's implicit connect, reach an undeclared port. Some kernels'
    // Landlock also checks the connect that sendto/sendmsg/sendmmsg with MSG_FASTOPEN make
    // (seen on Linux 6.18 on 2026-12-03): those three then hold, refused by Landlock itself.
    let fast_open_sends = [
        "tcp-fast-open",
        "tcp-fast-open-sendmsg",
        "tcp-fast-open-sendmmsg",
    ];
    for p in probes {
        if fast_open_sends.contains(&p["name"].as_str().unwrap()) && p["holds"] == true {
            // EACCES is Landlock's answer (seccomp's would be EPERM).
            assert!(
                p["result"].as_str().unwrap().starts_with("refused: EACCES"),
                "{p}"
            );
        }
    }
    let failed: Vec<&str> = failed
        .into_iter()
        .filter(|n| !fast_open_sends.contains(n))
        .collect();
    assert_eq!(
        failed,
        [
            "tcp-fastopen-connect",
            "tcp-repair",
            "mptcp-socket",
            "sctp-socket",
            "pidfd-getfd",
            "socket-udp",
            "socket-unix",
            "socket-netlink",
            "new-namespace",
            "read-process-memory"
        ]
    );
    drop(server);
}

/// The README's quick start (init, import, serve, chat over HTTP, audit verify) inside a network
/// namespace whose only interface is loopback: Sovereign needs no network. Then the same node
/// with `offline = true`, which puts the server in a namespace of its own.
#[test]
fn the_quick_start_flow_runs_inside_a_network_namespace_with_only_loopback() {
    const NAME: &str = "the_quick_start_flow_runs_inside_a_network_namespace_with_only_loopback";
    if std::env::var_os("SOV_TEST_IN_NETNS").is_none() {
        let _running = inference();
        let out = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec \"$0\" \"$@\"",
            ])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env("SOV_TEST_IN_NETNS", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success() && stdout(&out).contains("1 passed"),
            "the test inside the namespace failed (it needs root, util-linux's unshare and iproute2's ip)\n--- stdout\n{}\n--- stderr\n{}",
            stdout(&out),
            stderr(&out)
        );
        return;
    }
    // /proc/self/net/dev lists this process's namespace (/sys/class/net is the mounter's).
    let interfaces: Vec<String> = std::fs::read_to_string("/proc/self/net/dev")
        .unwrap()
        .lines()
        .skip(2)
        .map(|l| l.split(':').next().unwrap().trim().to_owned())
        .collect();
    assert_eq!(interfaces, ["lo"], "only loopback in this namespace");

    let (_dir, home, token) = home_with_starter();
    let chat = |base: &str| {
        let res = reqwest::blocking::Client::new()
            .post(format!("{base}/chat/completions"))
            .header("authorization", bearer(&token))
            .json(
                &serde_json::json!({"model": "smollm2", "max_tokens": 12, "temperature": 0,
                "messages": [{"role": "user", "content": "Name the capital city of France."}]}),
            )
            .send()
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().unwrap();
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (server, base) = serve(&home);
    assert!(chat(&base).contains("Paris"));
    drop(server);
    let verify = sov(&home, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));

    // Offline: the server moves into a namespace of its own; its listener stays reachable.
    let config = std::fs::read_to_string(home.join("sov.toml")).unwrap();
    let offline = config.replace("offline = false", "offline = true");
    assert_ne!(offline, config);
    std::fs::write(home.join("sov.toml"), offline).unwrap();
    let (server, base, seal) = serve_with(&home, &["--require-seal"]);
    assert_eq!(
        seal,
        "Seal: sealed: layers in force: netns, landlock, seccomp; probes held: 20/20 (report: `sov seal status`)"
    );
    assert!(chat(&base).contains("Paris"));
    let (_, body) = get_json(&format!("{base}/seal"), &token);
    let netns = body["report"]["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "netns-isolated")
        .unwrap()
        .clone();
    assert_eq!(
        netns["result"], "refused: ENETUNREACH: Network is unreachable",
        "{netns}"
    );
    drop(server);
    let verify = sov(&home, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[test]
fn a_start_outside_the_declaration_is_refused_and_recorded() {
    let _running = inference();
    let (_dir, home, _token) = home_with_starter();
    let config = std::fs::read_to_string(home.join("sov.toml")).unwrap();
    for (from, to, why) in [
        (
            "listen = []",
            "listen = [\"127.0.0.1:1\"]",
            "127.0.0.1:0 is not a declared listen address",
        ),
        (
            "read_only = []",
            "read_only = [\"/nonexistent/sov-seal-root\"]",
            "the declared read-only root /nonexistent/sov-seal-root does not exist",
        ),
    ] {
        std::fs::write(home.join("sov.toml"), config.replace(from, to)).unwrap();
        refused(&home, why);
    }
    std::fs::write(home.join("sov.toml"), &config).unwrap();

    // Models kept on another disk through a symbolic link: the seal would deny them at load.
    let elsewhere = home.parent().unwrap().join("elsewhere");
    std::fs::rename(home.join("models"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, home.join("models")).unwrap();
    refused(
        &home,
        "outside the home: the seal would deny the server access to it",
    );
    // Declared read-only (the server only reads models), it starts.
    let declared = config.replace(
        "read_only = []",
        &format!("read_only = [{:?}]", elsewhere.to_str().unwrap()),
    );
    std::fs::write(home.join("sov.toml"), declared).unwrap();
    let _ = serve(&home);

    fn refused(home: &Path, why: &str) {
        let out = sov(home, &["serve", "--listen", "127.0.0.1:0"]);
        assert!(!out.status.success());
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
        let entries = audit_entries(home);
        let last = entries.last().unwrap();
        assert_eq!(last["kind"], "server.start", "{last}");
        assert_eq!(last["outcome"], "denied");
        assert!(last["reason"].as_str().unwrap().contains(why), "{last}");
    }
}

#[test]
fn audit_verify_checks_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    assert!(sov(&home, &["init"]).status.success());
    // A few recorded refusals: entries in the WAL, each its own batch.
    let not_gguf = dir.path().join("notes.gguf");
    std::fs::write(&not_gguf, b"not a model").unwrap();
    for _ in 0..3 {
        assert!(
            !sov(&home, &["model", "import", not_gguf.to_str().unwrap()])
                .status
                .success()
        );
    }
    let verify = sov(&home, &["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}{}",
        stdout(&verify),
        stderr(&verify)
    );
    assert!(stdout(&verify).contains("wal:"), "{}", stdout(&verify));

    // One byte of the first entry's body (its version byte), which the tiles do not show.
    let wal_path = home.join("audit/entries.wal");
    let mut wal = std::fs::read(&wal_path).unwrap();
    assert!(wal.len() > 100, "the WAL holds entries");
    wal[2] ^= 0x01;
    std::fs::write(&wal_path, &wal).unwrap();

    let verify = sov(&home, &["audit", "verify"]);
    assert!(!verify.status.success(), "{}", stdout(&verify));
    assert!(!stdout(&verify).contains("OK"), "{}", stdout(&verify));
    let err = stderr(&verify);
    assert!(
        err.contains("FAILED: entries.wal") && err.contains("byte 0"),
        "{err}"
    );
    let json = sov(&home, &["audit", "verify", "--json"]);
    assert!(!json.status.success());
    let v: Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["failure"]["location"]
            .as_str()
            .unwrap()
            .starts_with("entries.wal"),
        "{v}"
    );
}
