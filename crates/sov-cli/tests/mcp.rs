//! MCP tool servers declared in `[[tools.mcp]]`, against real servers from the registries:
//! `mcp-server-time` (PyPI) and `@modelcontextprotocol/server-filesystem` (npm) over stdio,
//! `@modelcontextprotocol/server-everything` (npm) over streamable HTTP, and stdlib-only
//! fixtures (tests/mcp_misbehaving_server.py, tests/mcp_http_fixture.py) that try what their
//! sandbox must refuse and misbehave on request. Each stdio server runs in the seal's
//! launcher's sandbox: no network, no file outside the declared ones, a cleared environment,
//! seccomp; a remote one is reached only at a destination declared in `[seal] outbound`, each
//! request over a connection the egress gate recorded. Every call is decided and receipted,
//! and the record verifies offline. Needs SOV_TEST_MODEL, SOV_TEST_PYTHON (with
//! mcp-server-time installed), SOV_TEST_NODE, SOV_TEST_MCP_FILESYSTEM and
//! SOV_TEST_MCP_EVERYTHING (the npm packages' folders); `bash scripts/test` sets them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{entries, env_path, home_with_starter, run, sov, start};
use serde_json::{Value, json};

fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The Python the test venv runs on (its real file) and the folders it needs: the venv and
/// the installation it was made from.
fn python() -> (PathBuf, Vec<PathBuf>) {
    let venv_python = env_path("SOV_TEST_PYTHON");
    let out = std::process::Command::new(&venv_python)
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable)); print(sys.prefix); print(sys.base_prefix)",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(PathBuf::from);
    let real = lines.next().unwrap();
    (real, lines.collect())
}

fn toml_paths(paths: &[PathBuf]) -> String {
    let quoted: Vec<String> = paths
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// A `[[tools.mcp]]` block running the fixture with `args`.
fn fixture(name: &str, extra: &str, args: &[&str]) -> String {
    let (real, prefixes) = python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_misbehaving_server.py");
    let mut read_only = prefixes;
    read_only.push(script.clone());
    let mut all_args = vec![script.display().to_string()];
    all_args.extend(args.iter().map(|a| (*a).to_owned()));
    format!(
        "\n[[tools.mcp]]\nname = \"{name}\"\ncommand = {:?}\nargs = {:?}\nsha256 = \"{}\"\nread_only = {}\n{extra}\n",
        real.display().to_string(),
        all_args,
        sha256(&real),
        toml_paths(&read_only),
    )
}

fn declare(home: &Path, blocks: &str) {
    let config = home.join("sov.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(blocks);
    std::fs::write(&config, text).unwrap();
}

fn token(home: &Path) -> String {
    sov(home, &["principal", "add", "ana", "--role", "analyst"]);
    sov(home, &["token", "issue", "ana"]).trim().to_owned()
}

/// `POST /v1/tools/NAME` with `args`: the status and the body.
fn call(base: &str, token: &str, name: &str, args: Value) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{base}/tools/{name}"))
        .bearer_auth(token)
        .json(&args)
        .timeout(Duration::from_secs(30))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap())
}

fn text_of(body: &Value) -> String {
    body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {body}"))
        .to_owned()
}

/// A tool's error, as a 422 answer carries it.
fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
}

/// `sov serve`, which must refuse to start saying `says`.
fn refused_start(home: &Path, says: &str) {
    let out = run(home, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success(), "it started: expected {says:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says), "{says}: {err}");
}

/// `sov seal open 127.0.0.1:PORT --purpose PURPOSE`.
fn open_seal(home: &Path, port: u16, purpose: &str) {
    let destination = format!("127.0.0.1:{port}");
    sov(home, &["seal", "open", &destination, "--purpose", purpose]);
}

fn server_entries(home: &Path) -> Vec<Value> {
    entries(home)
        .into_iter()
        .filter(|e| e["kind"] == "tool.server")
        .collect()
}

#[test]
fn registry_servers_run_sealed_and_every_call_is_receipted() {
    let (dir, home) = home_with_starter();
    let venv = env_path("SOV_TEST_PYTHON")
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_owned();
    let (_, prefixes) = python();
    let time = venv.join("bin/mcp-server-time");
    let npm = env_path("SOV_TEST_MCP_FILESYSTEM");
    let node = env_path("SOV_TEST_NODE");
    // The package's dependencies lie beside it, in the node_modules folder above.
    let node_modules = npm.parent().and_then(Path::parent).unwrap().to_owned();
    let node_prefix = node.parent().and_then(Path::parent).unwrap().to_owned();
    let data = dir.path().join("data");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(data.join("inside.txt"), "the permitted words\n").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "secret beside the folder\n").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    declare(
        &home,
        &format!(
            "\n[[tools.mcp]]\nname = \"time\"\ncommand = {:?}\nsha256 = \"{}\"\nread_only = {}\n\n[[tools.mcp]]\nname = \"files\"\ncommand = {:?}\nargs = [{:?}, {:?}, {:?}, \"/\"]\nsha256 = \"{}\"\nread_only = {}\nread_write = {}\n{}",
            time.display().to_string(),
            sha256(&time),
            toml_paths(&[vec![venv.clone()], prefixes].concat()),
            node.display().to_string(),
            npm.join("dist/index.js").display().to_string(),
            data.display().to_string(),
            work.display().to_string(),
            sha256(&node),
            toml_paths(&[node_modules, node_prefix, data.clone()]),
            toml_paths(std::slice::from_ref(&work)),
            fixture("probe", "env = { PROBE_FLAG = \"1\" }", &[]),
        ),
    );
    let ana = token(&home);
    // A specialist may be given a server's tools: `specialist add` starts the servers in their
    // sandboxes to check the names.
    let refused = run(
        &home,
        &[
            "specialist",
            "add",
            "clock",
            "--model",
            "smollm2",
            "--tools",
            "time__no_such_tool",
        ],
    );
    assert!(!refused.status.success());
    sov(
        &home,
        &[
            "specialist",
            "add",
            "clock",
            "--model",
            "smollm2",
            "--tools",
            "time__get_current_time",
            "--tool-choice",
            "required",
            "--description",
            "Tells the time",
        ],
    );
    let (server, base, printed) = start(&home);
    for name in ["time", "files", "probe"] {
        assert!(
            printed
                .iter()
                .any(|l| l.starts_with(&format!("Tool server {name}: "))),
            "{printed:?}"
        );
    }

    // The servers' tools are the node's, under their server's name.
    let listed: Value = reqwest::blocking::Client::new()
        .get(format!("{base}/tools"))
        .bearer_auth(&ana)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    for name in [
        "calculator",
        "time__get_current_time",
        "time__convert_time",
        "files__read_text_file",
        "files__write_file",
        "probe__connect",
    ] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }

    // mcp-server-time answers.
    let (status, body) = call(
        &base,
        &ana,
        "time__get_current_time",
        json!({"timezone": "UTC"}),
    );
    assert_eq!(status, 200, "{body}");
    let now: Value = serde_json::from_str(&text_of(&body)).unwrap();
    assert_eq!(now["timezone"], "UTC", "{now}");
    assert!(now["datetime"].as_str().unwrap().starts_with("20"), "{now}");
    let (status, body) = call(
        &base,
        &ana,
        "time__convert_time",
        json!({"source_timezone": "Europe/Paris", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(text_of(&body).contains("Asia/Tokyo"), "{body}");
    let (status, body) = call(
        &base,
        &ana,
        "time__get_current_time",
        json!({"timezone": "Nowhere/City"}),
    );
    assert_eq!(status, 422, "{body}");

    // The filesystem server was told it may serve its two folders and "/" (so that its own
    // checks let every path through), but its sandbox holds only the declared folders: it reads
    // inside them, and nothing beside them, in the home, or in /etc; it writes only where the
    // declaration says it may.
    let read = |path: &Path| call(&base, &ana, "files__read_text_file", json!({"path": path}));
    let (status, body) = read(&data.join("inside.txt"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(text_of(&body), "the permitted words\n");
    for outside in [
        dir.path().join("outside.txt"),
        home.join("sov.toml"),
        home.join("keys").join(sov_keys::LOG_KEY_FILE),
        PathBuf::from("/etc/passwd"),
    ] {
        let (status, body) = read(&outside);
        assert_eq!(status, 422, "{} was read: {body}", outside.display());
        assert!(error_of(&body).contains("EACCES"), "{body}");
    }
    let write = |path: &Path| {
        call(
            &base,
            &ana,
            "files__write_file",
            json!({"path": path, "content": "written"}),
        )
    };
    let (status, body) = write(&work.join("new.txt"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        std::fs::read_to_string(work.join("new.txt")).unwrap(),
        "written"
    );
    let (status, body) = write(&data.join("new.txt"));
    assert_eq!(status, 422, "{body}");
    assert!(!data.join("new.txt").exists());

    // Its process: another network namespace, seccomp, no new privileges, a cleared
    // environment.
    // (`sov audit tail` sees what the latest signed checkpoint covers: up to a second behind.)
    let started = common::wait_for(&home, |all| {
        all.iter().filter(|e| e["kind"] == "tool.server").count() == 3
    })
    .into_iter()
    .filter(|e| e["kind"] == "tool.server")
    .collect::<Vec<_>>();
    let files = started
        .iter()
        .find(|e| e["resource"] == "mcp:files")
        .unwrap();
    let pid = files["attrs"]["pid"].as_str().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("Seccomp:\t2"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert_ne!(
        std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap(),
        std::fs::read_link("/proc/self/ns/net").unwrap()
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let mut keys: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            String::from_utf8_lossy(v)
                .split('=')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ["HOME", "LANG", "PATH", "TMPDIR"], "{keys:?}");

    // The same sandbox, tried from inside by the fixture: no connection out (a listener waits
    // on the host's loopback), no file of the home, only the declared environment.
    let (_, body) = call(
        &base,
        &ana,
        "probe__connect",
        json!({"host": "127.0.0.1", "port": port}),
    );
    assert!(error_of(&body).starts_with("refused"), "{body}");
    assert!(
        listener.accept().is_err(),
        "the sandboxed server connected out"
    );
    let (_, body) = call(
        &base,
        &ana,
        "probe__read",
        json!({"path": home.join("sov.toml")}),
    );
    assert!(error_of(&body).contains("errno 13"), "{body}");
    let (_, body) = call(&base, &ana, "probe__env", json!({}));
    assert_eq!(text_of(&body), "HOME,LANG,PATH,PROBE_FLAG,TMPDIR", "{body}");
    let (_, body) = call(&base, &ana, "probe__where", json!({}));
    assert_eq!(Path::new(&text_of(&body)), home.join("mcp/probe"), "{body}");

    // The specialist's tool loop calls the server's tool (made to), and states its result.
    let answer: Value = reqwest::blocking::Client::new()
        .post(format!("{base}/chat/completions"))
        .bearer_auth(&ana)
        .json(&json!({"model": "clock", "temperature": 0, "max_tokens": 48,
                      "messages": [{"role": "user", "content": "What time is it in Tokyo right now?"}]}))
        .timeout(Duration::from_secs(300))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let content = answer["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.contains("Tool results: time__get_current_time"),
        "{answer}"
    );
    assert_eq!(
        answer["sov_tool_calls"][0]["tool"], "time__get_current_time",
        "{answer}"
    );
    drop(server);

    // Each start is recorded with the executable's and the tool list's SHA-256 (the one
    // printed), and every call has a receipt naming the server's version.
    assert_eq!(started.len(), 3, "{started:?}");
    for e in &started {
        assert_eq!(e["outcome"], "ok", "{e}");
        assert_eq!(e["attrs"]["tools_changed"], "first start", "{e}");
        let hash = e["attrs"]["tools_sha256"].as_str().unwrap();
        assert!(printed.iter().any(|l| l.ends_with(hash)), "{e} {printed:?}");
    }
    assert_eq!(files["attrs"]["executable_sha256"], sha256(&node));
    assert!(
        files["attrs"]["tools"]
            .as_str()
            .unwrap()
            .contains("read_text_file")
    );
    let receipts: Vec<Value> = entries(&home)
        .into_iter()
        .filter(|e| {
            e["kind"] == "tool.call" && e["resource"].as_str().unwrap().starts_with("Tool::")
        })
        .collect();
    let direct = receipts
        .iter()
        .filter(|e| e["attrs"]["round"] == "0")
        .count();
    assert_eq!(direct, 14, "{receipts:?}");
    assert!(
        receipts
            .iter()
            .any(|e| e["attrs"]["round"] == "1" && e["attrs"]["tool"] == "time__get_current_time"),
        "{receipts:?}"
    );
    let denied_reads = receipts
        .iter()
        .filter(|e| e["attrs"]["tool"] == "files__read_text_file" && e["outcome"] == "error")
        .count();
    assert_eq!(denied_reads, 4);
    for r in &receipts {
        let server = r["attrs"]["tool"]
            .as_str()
            .unwrap()
            .split("__")
            .next()
            .unwrap();
        let version = r["attrs"]["tool_version"].as_str().unwrap();
        assert!(version.starts_with(&format!("mcp:{server} ")), "{r}");
        assert!(r["input"].as_str().is_some_and(|c| c.len() == 64), "{r}");
    }
    common::verify_offline(&home, dir.path());

    // A second start with the same servers: the same lists, recorded as unchanged. Pinned to
    // another list, a server is refused and so is the start.
    let (server, _, _) = start(&home);
    drop(server);
    let again = server_entries(&home);
    assert!(
        again[3..]
            .iter()
            .all(|e| e["attrs"]["tools_changed"] == "no"),
        "{again:?}"
    );
    let config = std::fs::read_to_string(home.join("sov.toml")).unwrap();
    // (The block itself, not the commented example `sov init` writes.)
    let pinned = config.replacen(
        "[[tools.mcp]]\nname = \"time\"",
        &format!(
            "[[tools.mcp]]\nname = \"time\"\ntools_sha256 = \"{}\"",
            "0".repeat(64)
        ),
        1,
    );
    assert_ne!(pinned, config);
    std::fs::write(home.join("sov.toml"), pinned).unwrap();
    refused_start(&home, "not the pinned tools_sha256");
    let last = server_entries(&home)
        .into_iter()
        .rev()
        .find(|e| e["resource"] == "mcp:time")
        .unwrap();
    assert_eq!(last["outcome"], "denied", "{last}");
}

#[test]
fn a_misbehaving_server_gets_a_bounded_wait_and_a_clear_error_and_nothing_else_is_affected() {
    let (dir, home) = home_with_starter();
    let quick = "timeout_ms = 1500";
    declare(
        &home,
        &[
            fixture("crashy", quick, &[]),
            fixture("flood", quick, &[]),
            fixture("hang", quick, &[]),
        ]
        .concat(),
    );
    let ana = token(&home);
    let (server, base, _) = start(&home);

    // Malformed JSON-RPC (lines that are not JSON, a result of the wrong shape): an error, and
    // the server goes on answering.
    let (status, body) = call(&base, &ana, "crashy__garbage", json!({}));
    assert_eq!(status, 422, "{body}");
    let (status, body) = call(&base, &ana, "crashy__echo", json!({"text": "still here"}));
    assert_eq!(
        (status, text_of(&body).as_str()),
        (200, "still here"),
        "{body}"
    );
    // Arguments that are not an object never reach it.
    let (status, body) = call(&base, &ana, "crashy__echo", json!(["x"]));
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("invalid arguments"), "{body}");

    // A server that hangs, or floods its output without an end of line: the declared wait,
    // then an error.
    for tool in ["hang__hang", "flood__flood"] {
        let began = Instant::now();
        let (status, body) = call(&base, &ana, tool, json!({}));
        let waited = began.elapsed();
        assert_eq!(status, 422, "{tool}: {body}");
        assert!(
            error_of(&body).contains("did not answer within 1500 ms"),
            "{tool}: {body}"
        );
        assert!(waited < Duration::from_secs(5), "{tool} took {waited:?}");
    }

    // A server that crashes: its exit and its last words, then the same for every later call.
    let (status, body) = call(&base, &ana, "crashy__crash", json!({}));
    assert_eq!(status, 422, "{body}");
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = call(&base, &ana, "crashy__echo", json!({"text": "x"}));
    assert_eq!(status, 422, "{body}");
    let message = error_of(&body);
    assert!(message.contains("has stopped"), "{message}");
    assert!(
        message.contains("the fixture crashes on purpose"),
        "{message}"
    );

    // The node is untouched: its own tools answer.
    let (status, body) = call(&base, &ana, "calculator", json!({"expression": "2 + 2"}));
    assert_eq!(status, 200, "{body}");
    drop(server);

    let receipts: Vec<Value> = entries(&home)
        .into_iter()
        .filter(|e| {
            e["kind"] == "tool.call" && e["resource"].as_str().unwrap().starts_with("Tool::")
        })
        .collect();
    let errors: Vec<&str> = receipts
        .iter()
        .filter(|e| e["outcome"] == "error")
        .map(|e| e["attrs"]["tool"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "crashy__garbage",
            "crashy__echo",
            "hang__hang",
            "flood__flood",
            "crashy__crash",
            "crashy__echo"
        ],
        "{receipts:?}"
    );
    common::verify_offline(&home, dir.path());
}

#[test]
fn a_server_that_cannot_start_stops_the_start_and_is_recorded() {
    let (_dir, home) = home_with_starter();
    let base = std::fs::read_to_string(home.join("sov.toml")).unwrap();
    let good = fixture("probe", "", &[]);
    let at = good.find("sha256 = \"").unwrap() + 10;
    let mut wrong_hash = good.clone();
    wrong_hash.replace_range(at..at + 64, &"0".repeat(64));
    for (block, says) in [
        (wrong_hash, "not the declared"),
        (
            fixture("probe", "", &["--handshake", "exit"]),
            "the fixture refuses to start",
        ),
        (
            fixture("probe", "", &["--handshake", "garbage"]),
            "no answer to the MCP handshake",
        ),
        (fixture("Bad_Name", "", &[]), "not a server name"),
        (
            fixture("probe", "", &[]).replacen(
                "read_only = [",
                "read_only = [\"relative/path\", ",
                1,
            ),
            "not absolute",
        ),
    ] {
        std::fs::write(home.join("sov.toml"), format!("{base}{block}")).unwrap();
        let began = Instant::now();
        refused_start(&home, says);
        assert!(began.elapsed() < Duration::from_secs(30));
    }
    let refused = server_entries(&home);
    assert_eq!(refused.len(), 5, "{refused:?}");
    assert!(refused.iter().all(|e| e["outcome"] != "ok"), "{refused:?}");
}

/// A free port of 127.0.0.1 (free when asked; the server that takes it is started at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port` of 127.0.0.1.
fn wait_listening(port: u16) {
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on port {port}");
}

/// A process the test started, killed when dropped.
struct Peer(std::process::Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn egress_entries(home: &Path, port: u16) -> Vec<Value> {
    entries(home)
        .into_iter()
        .filter(|e| {
            e["kind"] == "egress.decision" && e["resource"] == format!("tcp://127.0.0.1:{port}")
        })
        .collect()
}

#[test]
fn a_remote_server_is_reached_only_through_the_egress_gate_at_a_declared_destination() {
    let (dir, home) = home_with_starter();
    // @modelcontextprotocol/server-everything (npm), serving streamable HTTP on its own port,
    // outside the node: the node reaches it as it would a server on another machine.
    let everything = env_path("SOV_TEST_MCP_EVERYTHING");
    let port = free_port();
    let _peer = Peer(
        std::process::Command::new(env_path("SOV_TEST_NODE"))
            .arg(everything.join("dist/index.js"))
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port);
    declare(
        &home,
        &format!("\n[[tools.mcp]]\nname = \"everything\"\nurl = \"http://127.0.0.1:{port}/mcp\"\n"),
    );

    // Not declared in [seal] outbound: the gate refuses the connection (recorded), and the
    // node does not start.
    refused_start(&home, "not declared in [seal] outbound");
    let refused = egress_entries(&home, port);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["outcome"], "denied");
    assert_eq!(refused[0]["attrs"]["use"], "mcp everything");
    let last = server_entries(&home).pop().unwrap();
    assert_eq!(
        (&last["resource"], &last["outcome"]),
        (&json!("mcp:everything"), &json!("error")),
        "{last}"
    );

    // Declared: served, each request over a connection the gate decided and recorded.
    open_seal(&home, port, "the everything MCP server");
    let ana = token(&home);
    let (server, base, printed) = start(&home);
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("Tool server everything:")),
        "{printed:?}"
    );
    let (status, body) = call(
        &base,
        &ana,
        "everything__echo",
        json!({"message": "hello through the gate"}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(text_of(&body).contains("hello through the gate"), "{body}");
    let (status, body) = call(&base, &ana, "everything__get-sum", json!({"a": 2, "b": 40}));
    assert_eq!(status, 200, "{body}");
    assert!(text_of(&body).contains("42"), "{body}");
    // Arguments its schema refuses: the server's error, handed on.
    let (status, body) = call(&base, &ana, "everything__echo", json!({"message": 7}));
    assert_eq!(status, 422, "{body}");
    drop(server);

    let served = server_entries(&home).pop().unwrap();
    assert_eq!(served["outcome"], "ok", "{served}");
    let attrs = &served["attrs"];
    assert_eq!(attrs["transport"], "streamable-http", "{served}");
    assert_eq!(attrs["url"], format!("http://127.0.0.1:{port}/mcp"));
    assert!(
        attrs["tools"]
            .as_str()
            .unwrap()
            .split(',')
            .any(|t| t == "get-sum"),
        "{served}"
    );
    let contacts = egress_entries(&home, port);
    let ok: Vec<&Value> = contacts.iter().filter(|e| e["outcome"] == "ok").collect();
    // The handshake (initialize, initialized), the tool list and three calls at least.
    assert!(ok.len() >= 6, "{contacts:?}");
    assert!(
        ok.iter().all(|e| e["attrs"]["use"] == "mcp everything"
            && e["attrs"]["purpose"] == "the everything MCP server"),
        "{ok:?}"
    );
    let receipts: Vec<(String, String)> = entries(&home)
        .into_iter()
        .filter(|e| {
            e["kind"] == "tool.call" && e["resource"].as_str().unwrap().starts_with("Tool::")
        })
        .map(|e| {
            (
                e["attrs"]["tool"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        receipts,
        [
            ("everything__echo".to_owned(), "ok".to_owned()),
            ("everything__get-sum".to_owned(), "ok".to_owned()),
            ("everything__echo".to_owned(), "error".to_owned()),
        ]
    );
    common::verify_offline(&home, dir.path());
}

#[test]
fn a_misbehaving_remote_server_gets_a_bounded_wait_and_its_token_stays_secret() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, home) = home_with_starter();
    let secret = "fixture-bearer-9f8e7d";
    let port_file = dir.path().join("port");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_http_fixture.py");
    let _peer = Peer(
        std::process::Command::new(env_path("SOV_TEST_PYTHON"))
            .arg(&fixture)
            .arg(&port_file)
            .arg(secret)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut port = None;
    for _ in 0..150 {
        if let Ok(text) = std::fs::read_to_string(&port_file)
            && let Ok(p) = text.trim().parse::<u16>()
        {
            port = Some(p);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let port = port.expect("the fixture wrote no port");
    wait_listening(port);
    open_seal(&home, port, "the misbehaving fixture");
    let token_file = dir.path().join("far.token");
    let block = format!(
        "\n[[tools.mcp]]\nname = \"far\"\nurl = \"http://127.0.0.1:{port}/mcp\"\nbearer_token_file = {:?}\ntimeout_ms = 1500\n",
        token_file.display().to_string()
    );
    declare(&home, &block);

    // A token file others may read, then a wrong token: refused, each recorded.
    for (text, mode, says) in [
        (secret, 0o644, "chmod 600"),
        ("not-the-token", 0o600, "refused this node's credentials"),
    ] {
        std::fs::write(&token_file, format!("{text}\n")).unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(mode)).unwrap();
        refused_start(&home, says);
    }
    std::fs::write(&token_file, format!("{secret}\n")).unwrap();
    let ana = token(&home);
    let (server, base, _) = start(&home);
    let (status, body) = call(&base, &ana, "far__echo", json!({"text": "first"}));
    assert_eq!((status, text_of(&body).as_str()), (200, "first"), "{body}");

    // Never answers, an event that never ends, an answer that is not JSON, one that is too
    // long: a clear error within the declared wait, and the server is still usable after.
    for (tool, says) in [
        ("far__hang", "did not answer within 1500 ms"),
        (
            "far__flood",
            "one of its events is longer than 1048576 bytes",
        ),
        ("far__garbage", "not JSON-RPC"),
        ("far__big", "longer than"),
    ] {
        let began = Instant::now();
        let (status, body) = call(&base, &ana, tool, json!({}));
        let waited = began.elapsed();
        assert_eq!(status, 422, "{tool}: {body}");
        assert!(error_of(&body).contains(says), "{tool}: {body}");
        assert!(waited < Duration::from_secs(5), "{tool} took {waited:?}");
    }
    let (status, body) = call(&base, &ana, "far__echo", json!({"text": "still here"}));
    assert_eq!(
        (status, text_of(&body).as_str()),
        (200, "still here"),
        "{body}"
    );
    drop(server);

    let served = server_entries(&home).pop().unwrap();
    assert_eq!(served["outcome"], "ok", "{served}");
    assert_eq!(served["attrs"]["bearer_token"], "true", "{served}");
    // The token is in no entry and no file of the home.
    let record = serde_json::to_string(&entries(&home)).unwrap();
    assert!(!record.contains(secret));
    let mut files = vec![home.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path) {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "the token is in {}", path.display());
        }
    }
    common::verify_offline(&home, dir.path());
}

#[test]
fn a_stdio_server_given_outbound_destinations_reaches_their_ports_only() {
    let (_dir, home) = home_with_starter();
    let allowed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let allowed_port = allowed.local_addr().unwrap().port();
    let other_port = other.local_addr().unwrap().port();
    let destination = format!("127.0.0.1:{allowed_port}");
    declare(
        &home,
        &fixture("netprobe", &format!("outbound = [\"{destination}\"]"), &[]),
    );

    // Its destinations must be the node's declared ones too: one place says what may leave.
    refused_start(&home, "not declared in [seal] outbound");

    open_seal(&home, allowed_port, "the probe's database");
    let ana = token(&home);
    let (server, base, _) = start(&home);
    let (status, body) = call(
        &base,
        &ana,
        "netprobe__connect",
        json!({"host": "127.0.0.1", "port": allowed_port}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(text_of(&body).starts_with("ok"), "{body}");
    // Another port of the same host: refused by the kernel inside its sandbox.
    let (_, body) = call(
        &base,
        &ana,
        "netprobe__connect",
        json!({"host": "127.0.0.1", "port": other_port}),
    );
    assert!(error_of(&body).starts_with("refused"), "{body}");
    assert!(error_of(&body).contains("errno 13"), "{body}");
    other.set_nonblocking(true).unwrap();
    assert!(
        other.accept().is_err(),
        "it connected to an undeclared port"
    );
    drop(server);

    let entry = server_entries(&home).pop().unwrap();
    assert_eq!(entry["outcome"], "ok", "{entry}");
    assert_eq!(entry["attrs"]["outbound"], destination, "{entry}");
    let confinement = entry["attrs"]["confinement"].as_str().unwrap();
    assert!(
        confinement.contains(&format!("TCP connect only to ports {allowed_port}")),
        "{confinement}"
    );
}
