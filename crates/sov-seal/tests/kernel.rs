//! The seal against the real kernel. The layers act on a whole process and cannot be undone, so
//! each case runs in a child process (this binary again, with `harness = false` so that the
//! child has one thread when it seals itself, as `sov serve` does). The child takes the steps
//! of `sov_seal::start` as `sov serve` does: plan, confine, probe, store, attest.
//!
//! - `sealed`: Landlock and seccomp in force; the declared destination is reached through the
//!   egress gate (`sov-egress`, on a tokio runtime started after the seal), an undeclared one is refused by the gate and by the kernel (EACCES), a
//!   declared-to-the-gate port missing from the kernel rules is refused by the kernel, a file
//!   outside the roots cannot be read; every attempt is in the audit record, with the seal
//!   attestation whose hash matches the stored report.
//! - `landlock-unavailable`: the same with Landlock made unavailable on purpose: the report says
//!   so, the probes that depend on it fail, and the attestation is an error.
//! - `offline`: the network namespace: the host's loopback is out of reach.
//! - `offline-unprivileged`: the same as user `nobody` (through a user namespace of its own).
//! - `threaded`: sealed while a second thread exists: Landlock cannot cover that thread on this
//!   kernel, so the report says Landlock is not in force (seccomp, synchronised, still is).
//! - the paths to a peer past `connect()`, each tried against the undeclared peer, which must
//!   accept nothing: `tcp_fast_open_is_refused` (sendto, sendmsg, sendmmsg with MSG_FASTOPEN),
//!   `tcp_fastopen_connect_is_refused`, `tcp_repair_is_refused`,
//!   `mptcp_and_sctp_sockets_are_refused`, `pidfd_getfd_is_refused`.
//! - `seccomp-unavailable`: Landlock alone: TCP Fast Open and MPTCP reach the undeclared peer
//!   (Landlock hooks only connect() and bind() on TCP sockets), and the probes say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sov_audit::{AuditLog, LogConfig, LogReader};
use sov_audit_core::entry::{Entry, Kind, Outcome};
use sov_egress::{EgressError, Gate};
use sov_keys::LogKey;
use sov_seal::Layer;
use sov_seal::declare::{Declaration, Destination};
use sov_seal::start::{Files, Home, Plan};
use sov_seal::{Report, report};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(
            &args[2],
            Path::new(&args[3]),
            Path::new(&args[4]),
            &args[5..],
        );
        return;
    }
    // A small part of libtest's command line, so that `cargo test -- NAME [--exact]` and
    // runners that list first (`--list`) work: positional arguments filter the cases.
    let mut filters = Vec::new();
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--format" | "--color" | "--skip" | "--logfile" => {
                rest.next();
            }
            a if a.starts_with('-') => {}
            a => filters.push(a),
        }
    }
    let exact = args.iter().any(|a| a == "--exact");
    let cases = CASES.into_iter().filter(|case| {
        filters.is_empty()
            || filters
                .iter()
                .any(|f| if exact { case == f } else { case.contains(f) })
    });
    if args.iter().any(|a| a == "--list") {
        for case in cases {
            println!("{case}: test");
        }
        return;
    }
    for case in cases {
        print!("test {case} ... ");
        std::io::stdout().flush().unwrap();
        parent(case);
        println!("ok");
    }
}

/// Every case, each in a child process of its own.
const CASES: [&str; 11] = [
    "sealed",
    "landlock-unavailable",
    "offline",
    "offline-unprivileged",
    "threaded",
    "tcp_fast_open_is_refused",
    "tcp_fastopen_connect_is_refused",
    "tcp_repair_is_refused",
    "mptcp_and_sctp_sockets_are_refused",
    "pidfd_getfd_is_refused",
    "seccomp-unavailable",
];

/// The probes of the paths past `connect()` and of `pidfd_getfd` (all refused by seccomp, with
/// EPERM).
/// The probes that send with `MSG_FASTOPEN` (connecting without `connect()`).
const FAST_OPEN_SENDS: [&str; 3] = [
    "tcp-fast-open",
    "tcp-fast-open-sendmsg",
    "tcp-fast-open-sendmmsg",
];

fn past_connect_probes() -> impl Iterator<Item = &'static str> {
    sov_seal::probe::PAST_CONNECT
        .into_iter()
        .chain(["pidfd-getfd"])
}

/// The user `nobody` (uid and gid 65534 on Debian).
const NOBODY: u32 = 65534;

/// A loopback listener counting the connections it accepts.
struct Peer {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

fn peer() -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0; 4];
            let _ = stream.read(&mut buf);
        }
    });
    Peer { port, accepted }
}

fn parent(case: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("inside.txt"), "inside").unwrap();
    let outside = tmp.path().join("outside.txt");
    std::fs::write(&outside, "outside").unwrap();
    std::fs::create_dir(home.join("data")).unwrap();
    let (declared, undeclared, gate_only) = (peer(), peer(), peer());
    let mut command = if case == "offline-unprivileged" {
        // `nobody` must reach the binary and own the home.
        use std::os::unix::fs::{PermissionsExt as _, chown};
        let exe = tmp.path().join("kernel-test");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        for path in [tmp.path(), exe.as_path()] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for path in [home.clone(), home.join("data"), home.join("inside.txt")] {
            chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(exe);
        c
    } else {
        Command::new(std::env::current_exe().unwrap())
    };
    let out = command
        .args(["child", case])
        .arg(&home)
        .arg(&outside)
        .args([declared.port, undeclared.port, gate_only.port].map(|p| p.to_string()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "case {case}: the child failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    let report_json = std::fs::read(home.join("data/report.json")).unwrap();
    let report = Report::from_json(&report_json).unwrap();
    let entries = entries(&home.join("data/audit"));
    let index = entries
        .iter()
        .position(|e| e.kind == Kind::SealAttestation)
        .expect("a seal attestation entry");
    let attestation = &entries[index];
    assert_eq!(
        attr(attestation, "report_sha256"),
        report::digest(&report_json),
        "the attestation names the stored report"
    );
    assert_eq!(
        std::fs::read_to_string(home.join("data/attestation")).unwrap(),
        format!("{index}\n"),
        "the attestation's index is noted beside the report"
    );
    let egress: Vec<(&str, Outcome, &str)> = entries
        .iter()
        .filter(|e| e.kind == Kind::EgressDecision)
        .map(|e| (e.resource.as_str(), e.outcome, e.reason.as_str()))
        .collect();
    let url = |p: u16| format!("tcp://127.0.0.1:{p}");

    match case {
        "sealed" => {
            assert!(report.sealed, "{}", report.to_text());
            assert_eq!(attestation.outcome, Outcome::Ok);
            for probe in ["connect-undeclared", "read-outside"] {
                assert_eq!(
                    attr(attestation, &format!("probe.{probe}")),
                    "refused: EACCES: Permission denied",
                    "the kernel's refusal is in the record"
                );
            }
            for probe in past_connect_probes() {
                assert_eq!(
                    attr(attestation, &format!("probe.{probe}")),
                    "refused: EPERM: Operation not permitted",
                    "the kernel's refusal is in the record"
                );
            }
            assert_eq!(report.threads, 1);
            for layer in [Layer::Landlock, Layer::Seccomp] {
                assert!(
                    report.layer(layer).unwrap().in_force,
                    "{layer} in force:\n{}",
                    report.to_text()
                );
            }
            // Three attempts through the gate, each recorded, in order.
            assert_eq!(egress.len(), 3, "{egress:?}");
            assert_eq!(egress[0].0, url(declared.port));
            assert_eq!(egress[0].1, Outcome::Ok);
            assert_eq!(egress[1].0, url(undeclared.port));
            assert_eq!(egress[1].1, Outcome::Denied);
            assert!(egress[1].2.contains("not declared"), "{}", egress[1].2);
            assert_eq!(egress[2].0, url(gate_only.port));
            assert_eq!(egress[2].1, Outcome::Error);
            assert!(
                egress[2].2.contains("refused by the kernel"),
                "{}",
                egress[2].2
            );
            // Only the declared peer saw a connection.
            wait_for(|| declared.accepted.load(Ordering::SeqCst) == 1);
            assert_eq!(undeclared.accepted.load(Ordering::SeqCst), 0);
            assert_eq!(gate_only.accepted.load(Ordering::SeqCst), 0);
        }
        "landlock-unavailable" => {
            assert!(!report.sealed);
            assert_eq!(attestation.outcome, Outcome::Error);
            assert!(
                attestation.reason.contains("landlock not in force"),
                "{}",
                attestation.reason
            );
            let landlock = report.layer(Layer::Landlock).unwrap();
            assert!(!landlock.in_force && landlock.detail.contains("unavailable on purpose"));
            let failed: Vec<&str> = report
                .failed_probes()
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            for name in [
                "connect-undeclared",
                "read-outside",
                "write-outside",
                "bind-undeclared",
            ] {
                assert!(
                    failed.contains(&name),
                    "{name} should fail without Landlock: {failed:?}"
                );
            }
            let fs = report
                .controls
                .iter()
                .find(|c| c.name == "filesystem")
                .unwrap();
            assert_eq!(fs.level, "nothing", "{}", report.to_text());
            let text = report.to_text();
            assert!(text.contains("landlock  NOT IN FORCE"), "{text}");
            assert!(text.contains("Landlock is not in force"), "{text}");
            // The child reached the undeclared peer directly: nothing in the kernel stopped it.
            wait_for(|| undeclared.accepted.load(Ordering::SeqCst) >= 1);
        }
        "threaded" => {
            assert!(!report.sealed);
            assert_eq!(report.threads, 2);
            let landlock = report.layer(Layer::Landlock).unwrap();
            assert!(!landlock.in_force, "{landlock:?}");
            assert!(
                landlock.detail.contains("the process had 2 threads"),
                "{}",
                landlock.detail
            );
            let seccomp = report.layer(Layer::Seccomp).unwrap();
            assert!(seccomp.in_force, "{seccomp:?}");
            assert_eq!(attestation.outcome, Outcome::Error);
        }
        "offline" | "offline-unprivileged" => {
            assert!(report.sealed, "{}", report.to_text());
            let netns = report
                .probes
                .iter()
                .find(|p| p.name == "netns-isolated")
                .unwrap();
            assert!(
                netns.holds && netns.result.contains("ENETUNREACH"),
                "{netns:?}"
            );
            let layer = report.layer(Layer::Netns).unwrap();
            assert!(layer.declared && layer.in_force, "{layer:?}");
            assert!(layer.detail.contains("lo (down)"), "{}", layer.detail);
            assert_eq!(
                case == "offline-unprivileged",
                layer.detail.contains("through a user namespace of its own"),
                "{}",
                layer.detail
            );
            assert_eq!(undeclared.accepted.load(Ordering::SeqCst), 0);
        }
        "seccomp-unavailable" => {
            assert!(!report.sealed);
            let failed: Vec<&str> = report
                .failed_probes()
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            // A kernel whose Landlock checks TCP Fast Open's connect refuses the three sends
            // itself (see the child's case): they then hold, refused with Landlock's EACCES.
            let result = |name: &str| attr(attestation, &format!("probe.{name}"));
            let landlock_refuses_fast_open = result("tcp-fast-open").starts_with("refused: EACCES");
            for name in past_connect_probes() {
                if landlock_refuses_fast_open && FAST_OPEN_SENDS.contains(&name) {
                    assert!(result(name).starts_with("refused: EACCES"), "{name}");
                    continue;
                }
                assert!(
                    failed.contains(&name),
                    "{name} should fail without seccomp: {failed:?}"
                );
            }
            assert!(
                !failed.contains(&"connect-undeclared"),
                "Landlock is in force"
            );
            if !landlock_refuses_fast_open {
                assert_eq!(result("tcp-fast-open"), "allowed");
            }
            assert_eq!(result("mptcp-socket"), "allowed, and the peer was reached");
            assert_eq!(
                result("tcp-fastopen-connect"),
                "allowed, then the rest refused: EACCES: Permission denied",
                "connect() is hooked by Landlock even with the option"
            );
            let outbound = report
                .controls
                .iter()
                .find(|c| c.name == "outbound")
                .unwrap();
            assert_eq!(outbound.level, "application", "{}", report.to_text());
            // TCP Fast Open (unless Landlock refused it) and MPTCP each reached the undeclared
            // peer past Landlock.
            let reached = if landlock_refuses_fast_open { 1 } else { 4 };
            wait_for(|| undeclared.accepted.load(Ordering::SeqCst) == reached);
        }
        _ => {
            // The paths past connect(): sealed, and nothing reached the undeclared peer.
            assert!(report.sealed, "{}", report.to_text());
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(undeclared.accepted.load(Ordering::SeqCst), 0);
        }
    }
}

fn wait_for(mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(f(), "timed out waiting");
}

fn entries(dir: &Path) -> Vec<Entry> {
    let reader = LogReader::open(dir).unwrap();
    let size = reader.checkpoint().1.size;
    (0..size)
        .map(|i| Entry::decode(&reader.entry(i).unwrap()).unwrap())
        .collect()
}

fn attr(e: &Entry, key: &str) -> String {
    e.attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// The child: seals itself, then tries. Any failed expectation panics (non-zero exit).
fn child(case: &str, home: &Path, outside: &Path, ports: &[String]) {
    let port = |i: usize| -> u16 { ports[i].parse().unwrap() };
    let (declared, undeclared, gate_only) = (port(0), port(1), port(2));
    let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let offline = case.starts_with("offline");
    let mut declaration = Declaration {
        offline,
        ..Declaration::default()
    };
    if !offline {
        declaration.outbound.push(
            Destination::parse(&format!("127.0.0.1:{declared}"), "the test's declared peer")
                .unwrap(),
        );
    }
    // As in `sov serve`: the data read-write (the seal's files in it), the rest of the home
    // read-only, with `inside.txt` probed as the configuration; the listener bound first.
    let data = home.join("data");
    let inside = home.join("inside.txt");
    let seal_home = Home {
        root: home.to_owned(),
        config: inside.clone(),
        writes: Vec::new(),
        files: Files::at(data.clone()),
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let plan = Plan::for_declaration(&declaration, seal_home, listener.local_addr().unwrap())
        .unwrap()
        .unavailable(match case {
            "landlock-unavailable" => vec![Layer::Landlock],
            "seccomp-unavailable" => vec![Layer::Seccomp],
            _ => Vec::new(),
        })
        .require_whole(true);
    if case == "threaded" {
        // A thread that exists before the seal (and outlives it).
        std::thread::spawn(|| std::thread::sleep(Duration::from_secs(30)));
    }
    let stored = plan.confine(&listener).unwrap().probe().store().unwrap();

    // The record opens after the seal (its writer starts threads), as in `sov serve`.
    let log = open_log(&data);
    let attested = stored.attest(&log, "system").unwrap();
    let whole = attested.require_whole();
    assert_eq!(whole.is_ok(), attested.report().sealed, "{whole:?}");
    if case == "landlock-unavailable" {
        let why = whole.unwrap_err().to_string();
        assert!(
            why.contains("landlock is not in force (made unavailable on purpose"),
            "{why}"
        );
    }

    // What the kernel does, whatever the gate says.
    let raw = TcpStream::connect_timeout(&addr(undeclared), Duration::from_secs(2));
    let read_outside = std::fs::read(outside);
    assert_eq!(
        std::fs::read(&inside).unwrap(),
        b"inside",
        "the home stays readable"
    );
    match case {
        "sealed" => {
            let e = raw.expect_err("an undeclared connect must be refused by the kernel");
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
            let e = read_outside.expect_err("a read outside the roots must be refused");
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
            let e = std::fs::write(&inside, "changed").expect_err("a read-only root");
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");

            // The gate: the declaration it checks also names `gate_only`, which the kernel's
            // rules (built from the real declaration) do not: the kernel refuses it.
            let mut gate_declaration = declaration.clone();
            gate_declaration.outbound.push(
                Destination::parse(&format!("127.0.0.1:{gate_only}"), "declared late").unwrap(),
            );
            let gate = Gate::new(gate_declaration, Arc::new(log.clone()), "system");
            // As in `sov serve`: the runtime starts after the seal, under its rules.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                use tokio::io::AsyncWriteExt as _;
                let timeout = Duration::from_secs(2);
                let mut stream = gate
                    .connect(addr(declared), "test peer", timeout)
                    .await
                    .expect("the declared destination works");
                stream.write_all(b"hi").await.unwrap();
                match gate.connect(addr(undeclared), "test peer", timeout).await {
                    Err(EgressError::Undeclared(a)) => assert_eq!(a, addr(undeclared)),
                    other => panic!("undeclared: {other:?}"),
                }
                match gate.connect(addr(gate_only), "test peer", timeout).await {
                    Err(EgressError::Connect { source, .. }) => {
                        assert_eq!(source.raw_os_error(), Some(libc::EACCES), "{source}")
                    }
                    other => panic!("kernel refusal: {other:?}"),
                }
            });
        }
        "landlock-unavailable" => {
            raw.expect("without Landlock the kernel lets the connect through");
            read_outside.expect("without Landlock the read succeeds");
        }
        "threaded" => {
            // The calling thread is confined all the same.
            let e = raw.expect_err("the sealing thread is confined");
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        }
        "offline" | "offline-unprivileged" => {
            let e = raw.expect_err("nothing leaves the namespace");
            assert!(
                matches!(e.raw_os_error(), Some(libc::EACCES | libc::ENETUNREACH)),
                "{e}"
            );
        }
        path => {
            let e = raw.expect_err("an undeclared connect must be refused by the kernel");
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
            past_connect(path, addr(undeclared));
        }
    }
    log.close().unwrap();
}

/// One path to `peer` (undeclared) past `connect()`, tried for real after the seal; each step
/// must be refused with EPERM (seccomp), or, with seccomp left off, reaches the peer.
fn past_connect(path: &str, peer: SocketAddr) {
    use nix::sys::socket::{setsockopt, sockopt};
    use rustix::net::{self, AddressFamily, SendFlags, SocketType, ipproto};
    let tcp = || net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    let fastopen = SendFlags::from_bits_retain(libc::MSG_FASTOPEN as u32);
    let data = b"past connect";
    let iov = [std::io::IoSlice::new(data)];
    let eperm = |what: &str, r: Result<(), rustix::io::Errno>| {
        assert_eq!(
            r,
            Err(rustix::io::Errno::PERM),
            "{what} must be refused by seccomp"
        );
    };
    let mut control = net::SendAncillaryBuffer::default();
    let fast_open = [
        net::sendto(tcp(), data, fastopen, &peer).map(drop),
        net::sendmsg_addr(tcp(), &peer, &iov, &mut control, fastopen).map(drop),
        {
            use rustix::net::addr::SocketAddrArg as _;
            let any = peer.as_any();
            let mut control = net::SendAncillaryBuffer::default();
            let mut msgs = [net::MMsgHdr::new_with_addr(&any, &iov, &mut control)];
            net::sendmmsg(tcp(), &mut msgs, fastopen).map(drop)
        },
    ];
    let mptcp = net::socket(
        AddressFamily::INET,
        SocketType::STREAM,
        Some(ipproto::MPTCP),
    );
    match path {
        "tcp_fast_open_is_refused" => {
            for (call, r) in ["sendto", "sendmsg", "sendmmsg"].iter().zip(fast_open) {
                eperm(&format!("{call} with MSG_FASTOPEN"), r);
            }
        }
        "tcp_fastopen_connect_is_refused" => {
            let s = tcp();
            let set = setsockopt(&s, sockopt::TcpFastOpenConnect, &true);
            assert_eq!(set, Err(nix::errno::Errno::EPERM), "TCP_FASTOPEN_CONNECT");
            // Landlock still refuses the connect itself.
            assert_eq!(net::connect(&s, &peer), Err(rustix::io::Errno::ACCESS));
        }
        "tcp_repair_is_refused" => {
            let set = setsockopt(&tcp(), sockopt::TcpRepair, &1);
            assert_eq!(set, Err(nix::errno::Errno::EPERM), "TCP_REPAIR");
        }
        "mptcp_and_sctp_sockets_are_refused" => {
            eperm("an MPTCP socket", mptcp.map(drop));
            for (kind, protocol) in [
                (SocketType::SEQPACKET, ipproto::SCTP),
                (SocketType::STREAM, ipproto::SCTP),
            ] {
                let sctp = net::socket(AddressFamily::INET, kind, Some(protocol));
                eperm("an SCTP socket", sctp.map(drop));
            }
        }
        "pidfd_getfd_is_refused" => {
            use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
            let pidfd = pidfd_open(getpid(), PidfdFlags::empty()).unwrap();
            eperm(
                "pidfd_getfd",
                pidfd_getfd(&pidfd, 2, PidfdGetfdFlags::empty()).map(drop),
            );
        }
        "seccomp-unavailable" => {
            // Landlock alone: each of these reaches the undeclared peer, except that some
            // kernels' Landlock also checks the connect a TCP Fast Open send makes (seen on
            // Linux 6.18.44 on 2026-12-03): then it refuses them itself, with EACCES (never
            // seccomp's EPERM), all of them alike.
            let refused: Vec<bool> = fast_open
                .into_iter()
                .map(|r| match r {
                    Ok(_) => false,
                    Err(e) => {
                        assert_eq!(e, rustix::io::Errno::ACCESS, "{e}");
                        true
                    }
                })
                .collect();
            assert!(
                refused.iter().all(|r| *r) || refused.iter().all(|r| !*r),
                "{refused:?}"
            );
            let s = mptcp.expect("an MPTCP socket without seccomp");
            net::connect(&s, &peer).expect("Landlock does not hook MPTCP's connect");
            rustix::io::write(&s, data).unwrap();
        }
        _ => unreachable!("{path}"),
    }
}

fn open_log(data: &Path) -> AuditLog {
    let keys: PathBuf = data.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = LogKey::init_or_load(&keys).unwrap();
    AuditLog::open(
        &data.join("audit"),
        key,
        LogConfig::new("sovereign/seal-test", "seal-test"),
    )
    .unwrap()
    .0
}
