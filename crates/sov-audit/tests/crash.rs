//! The crash test: a writer under load is killed with SIGKILL at random moments, again and
//! again, on the same log; after every kill the log recovers, verifies, and still holds every
//! entry that was acknowledged.
//!
//! The test re-executes its own binary as the child (selected by an environment variable). The
//! child opens the log (recovering from the previous kill), prints `child-ready`, then appends
//! from five threads and prints `ack <index> <leaf hex>` for each entry once it is durable: four
//! threads call the blocking `append` in a loop (small batches, so the writer is almost always in
//! the middle of a write or an fdatasync), one `submit`s bursts of 32 (large group commits).
//!
//! The parent kills the child after a random 20-300 ms, counted from `child-ready` (so the kill
//! lands under load) in three rounds out of four, and from the start of the child in the fourth
//! (so it may land during recovery). The threads pause briefly between entries
//! (`SOV_AUDIT_CRASH_PAUSE_US`, default 1000 µs; 0 = as fast as they can) only to keep the log
//! small enough for 32 full verifications in an unoptimised test build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Env, config, draft, verify_all};
use sov_audit::AuditLog;
use sov_audit_core::hash::Hash;
use sov_keys::LogKey;

const TEST_NAME: &str = "kill9_under_load_loses_no_acknowledged_entry";
const CHILD_DIR: &str = "SOV_AUDIT_CRASH_CHILD_DIR";
const CHILD_KEYS: &str = "SOV_AUDIT_CRASH_CHILD_KEYS";
const ROUNDS: usize = 32;
const BLOCKING_THREADS: u64 = 4;
const BURST: u64 = 32;

fn print_ack(index: u64, leaf: &Hash) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ack {index} {}", hex::encode(leaf));
    let _ = out.flush();
}

fn child(dir: &Path, keys: &Path) {
    let key = LogKey::init_or_load(keys).unwrap();
    let (log, _) = AuditLog::open(dir, key, config()).unwrap();
    let pause_us: u64 = std::env::var("SOV_AUDIT_CRASH_PAUSE_US")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1000);
    let pause = Duration::from_micros(pause_us);
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "child-ready");
        let _ = out.flush();
    }
    let mut workers: Vec<_> = (0..BLOCKING_THREADS)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0.. {
                    let a = log.append(draft(t * 1_000_000_000 + n)).unwrap();
                    print_ack(a.index, &a.leaf);
                    std::thread::sleep(pause);
                }
            })
        })
        .collect();
    workers.push(std::thread::spawn(move || {
        let (tx, rx) = mpsc::channel::<()>();
        for n in 0.. {
            for k in 0..BURST {
                let tx = tx.clone();
                log.submit(draft(9_000_000_000 + n * BURST + k), move |r| {
                    if let Ok(a) = r {
                        print_ack(a.index, &a.leaf);
                    }
                    let _ = tx.send(());
                });
            }
            for _ in 0..BURST {
                rx.recv().unwrap();
            }
            std::thread::sleep(pause * 8);
        }
    }));
    for w in workers {
        w.join().unwrap();
    }
}

/// Complete `ack` lines only: a line cut by the kill is not an acknowledgement.
fn parse_acks(out: &[u8]) -> Vec<(u64, Hash)> {
    let mut acks = Vec::new();
    for line in out.split_inclusive(|&b| b == b'\n') {
        let Some(line) = line.strip_suffix(b"\n") else {
            continue;
        };
        let Some(rest) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.strip_prefix("ack "))
        else {
            continue;
        };
        let (index, leaf) = rest.split_once(' ').unwrap();
        let leaf: Hash = hex::decode(leaf).unwrap().try_into().unwrap();
        acks.push((index.parse().unwrap(), leaf));
    }
    acks
}

/// Kills the child if the parent panics before it does (no child outlives the test).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn kill9_under_load_loses_no_acknowledged_entry() {
    if let (Some(dir), Some(keys)) = (std::env::var_os(CHILD_DIR), std::env::var_os(CHILD_KEYS)) {
        child(Path::new(&dir), Path::new(&keys));
        return;
    }
    let env = Env::new();
    // The log exists before the first child, so every round starts from a reopen.
    env.open().0.close().unwrap();
    let exe = std::env::current_exe().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let mut acked: BTreeMap<u64, Hash> = BTreeMap::new();
    let (mut unclean, mut truncated_rounds, mut truncated_bytes) = (0, 0, 0);
    let start = Instant::now();
    for round in 0..ROUNDS {
        let mut child = KillOnDrop(
            Command::new(&exe)
                .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_DIR, &env.dir)
                .env(CHILD_KEYS, &env.keys)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut stdout = child.0.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        let collector = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 8192];
            let mut ready = Some(ready_tx);
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                }
                // libtest prints its own text first (without a newline before ours).
                if ready.is_some() && out.windows(12).any(|w| w == b"child-ready\n") {
                    let _ = ready.take().unwrap().send(());
                }
            }
            out
        });
        let delay = 20 + rng.next() % 281;
        let during_recovery = round % 4 == 3;
        if !during_recovery {
            ready_rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("round {round}: the child did not open the log"));
        }
        std::thread::sleep(Duration::from_millis(delay));
        child.0.kill().unwrap(); // SIGKILL
        let status = child.0.wait().unwrap();
        let acks = parse_acks(&collector.join().unwrap());
        for &(index, leaf) in &acks {
            if let Some(old) = acked.insert(index, leaf) {
                assert_eq!(
                    old, leaf,
                    "index {index} acknowledged twice with different leaves"
                );
            }
        }

        // Recovery, in this process.
        let (log, rec) =
            AuditLog::open(&env.dir, LogKey::init_or_load(&env.keys).unwrap(), config())
                .unwrap_or_else(|e| panic!("round {round}: reopen after kill failed: {e}"));
        unclean += usize::from(rec.unclean);
        if rec.truncated_bytes > 0 {
            truncated_rounds += 1;
            truncated_bytes += rec.truncated_bytes;
        }
        log.close().unwrap();
        // Every acknowledged entry is there, unchanged.
        let reader = sov_audit::LogReader::open(&env.dir).unwrap();
        let size = reader.checkpoint().1.size;
        let leaves = verify_all(&env.dir);
        assert_eq!(leaves.len() as u64, size);
        for (&index, leaf) in &acked {
            assert!(
                index < size,
                "round {round}: acknowledged index {index} lost (size {size})"
            );
            assert_eq!(
                &leaves[index as usize], leaf,
                "round {round}: acknowledged entry {index} changed"
            );
        }
        println!(
            "round {round}: killed {delay} ms after {} ({status}), {} acks, size {size}, recovery {rec:?}",
            if during_recovery { "start" } else { "ready" },
            acks.len()
        );
    }
    println!(
        "{ROUNDS} kills in {:.1} s: {} acknowledged entries, {unclean} unclean recoveries, {truncated_rounds} torn tails cut ({truncated_bytes} bytes)",
        start.elapsed().as_secs_f64(),
        acked.len()
    );
    assert!(
        acked.len() > 100,
        "the child acknowledged too little to test anything"
    );
    assert!(
        unclean >= ROUNDS / 2,
        "most kills should leave an unclean log"
    );
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "the crash test should take about a minute"
    );
}
