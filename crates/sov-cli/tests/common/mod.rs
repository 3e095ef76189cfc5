//! Helpers the CLI's integration tests share: running `sov`, a served node, the record, the
//! offline verifier. (`mod common;` in a test file; each test binary uses a part of it.)

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// A path from the environment `bash scripts/test` prepares.
pub fn env_path(var: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(var).unwrap_or_else(|| {
        panic!("{var} is not set: run the tests with `bash scripts/test`, which installs what they need")
    }))
}

/// Runs `sov --home HOME ARGS`.
pub fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sov"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("SOV_HOME")
        .env("SOV_LOG", "error")
        .output()
        .unwrap()
}

/// Runs `sov --home HOME ARGS`, which must succeed; its standard output.
pub fn sov(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "sov {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `sov serve`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server(pub Child);

impl Server {
    /// Stops the server as an operator would (SIGTERM), so it records its stop.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `sov serve` on a free port: the server, its base URL (`http://…/v1`) and the lines
/// it printed before it was ready.
pub fn start(home: &Path) -> (Server, String, Vec<String>) {
    start_with(home, &[])
}

/// [`start`] with more arguments to `sov serve`.
pub fn start_with(home: &Path, args: &[&str]) -> (Server, String, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sov"))
        .arg("--home")
        .arg(home)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("SOV_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).unwrap() == 0 {
            panic!("sov serve stopped before it was ready: {printed:?}");
        }
        let ready = line.starts_with("Sovereign is serving");
        printed.push(line.trim_end().to_owned());
        if ready {
            break;
        }
    }
    let base = printed
        .last()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    (Server(child), base, printed)
}

/// Every entry of the home's record, as `sov audit tail --json` shows them.
pub fn entries(home: &Path) -> Vec<Value> {
    sov(home, &["audit", "tail", "--json", "-n", "100000"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The record's entries once `until` holds for them (polled for up to 15 s: while `sov serve`
/// runs, `sov audit tail` sees what its latest signed checkpoint covers, about a second behind).
pub fn wait_for(home: &Path, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..75 {
        let all = entries(home);
        if until(&all) {
            return all;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!(
        "the record never showed what was waited for: {:?}",
        entries(home)
    );
}

/// A fresh home in a temporary folder with the starter model imported as `smollm2`.
pub fn home_with_starter() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    sov(&home, &["init"]);
    import_starter(&home, "smollm2", &[]);
    (dir, home)
}

/// Imports the starter model into `home` as `name`, with `more` arguments to the import.
pub fn import_starter(home: &Path, name: &str, more: &[&str]) {
    let starter = env_path("SOV_TEST_MODEL");
    let mut args = vec!["model", "import", starter.to_str().unwrap(), "--name", name];
    args.extend_from_slice(more);
    sov(home, &args);
}

/// Exports the home's record into `dir` and checks it with the standalone `sov-verify`; the
/// file of the log's public keys it was checked against.
pub fn verify_offline(home: &Path, dir: &Path) -> PathBuf {
    let export = dir.join("export");
    let exported = sov(home, &["audit", "export", export.to_str().unwrap()]);
    let keys: String = exported
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| format!("{}\n", l.trim()))
        .collect();
    let vkeys = dir.join("keys");
    std::fs::write(&vkeys, keys).unwrap();
    let verified = Command::new(verifier())
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
    vkeys
}

/// The standalone verifier, built beside `sov`.
pub fn verifier() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_sov")).with_file_name("sov-verify")
}

/// Runs a Python client script with `args` and `env`; the one JSON object it prints.
pub fn client(python: &Path, script: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
