//! Live probes: after the seal is applied, try what it must refuse (and one thing it must allow)
//! and keep what the kernel answered. The report's claims rest on these results, not on the
//! rules alone.
//!
//! `prepare` runs before the seal: it finds a file outside the roots that can be read *now*
//! and opens a listener on an undeclared loopback port, so that a refusal afterwards can only
//! come from the seal. `run` runs right after it, while the process still has one thread (the
//! two are steps of [`crate::start`]).
//! This module and the egress gate (`sov-egress`) are the only code that opens network
//! connections.

use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::confine::Rules;

/// One probe and what the kernel answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Short stable name (`connect-undeclared`, `read-outside`, ...).
    pub name: String,
    /// What was tried, in words.
    pub tried: String,
    /// What the seal must do with it: `refused` or `allowed`.
    pub expect: String,
    /// What happened: `refused: EACCES (Permission denied)`, `allowed`, ...
    pub result: String,
    /// Whether the result is what the seal promises.
    pub holds: bool,
}

/// What the probes need from before the seal.
#[derive(Debug)]
pub struct Prepared {
    /// A listener on an undeclared loopback port: reachable before the seal.
    target: Option<(TcpListener, u16)>,
    /// A file outside every root that could be read before the seal.
    outside: Option<PathBuf>,
    /// A folder outside every root, for the write probe.
    outside_dir: Option<PathBuf>,
    /// The configuration: it must stay readable and must not be writable.
    config: Option<PathBuf>,
}

/// Candidate files outside the roots (system files present on any Linux).
const OUTSIDE_FILES: [&str; 4] = [
    "/etc/hostname",
    "/etc/os-release",
    "/etc/passwd",
    "/proc/version",
];

fn under_roots(path: &Path, rules: &Rules) -> bool {
    rules
        .read_write
        .iter()
        .chain(&rules.read_only)
        .any(|root| path.starts_with(root))
}

/// Prepares the probes (before the seal). `config` is the configuration file: in a read-only
/// root, it must stay readable and must not be writable.
pub(crate) fn prepare(rules: &Rules, config: Option<PathBuf>) -> Prepared {
    // A port nobody declared, with a listener behind it, so "refused" cannot mean "nobody there".
    let mut target = None;
    for _ in 0..8 {
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            && let Ok(addr) = l.local_addr()
            && !rules.connect_ports.contains(&addr.port())
        {
            target = Some((l, addr.port()));
            break;
        }
    }
    let outside = OUTSIDE_FILES
        .iter()
        .map(PathBuf::from)
        .find(|p| !under_roots(p, rules) && std::fs::read(p).is_ok());
    let outside_dir = [
        std::env::temp_dir(),
        PathBuf::from("/tmp"),
        PathBuf::from("/var/tmp"),
    ]
    .into_iter()
    .find(|d| d.is_dir() && !under_roots(d, rules));
    Prepared {
        target,
        outside,
        outside_dir,
        config,
    }
}

fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).to_string(),
        None => e.to_string(),
    }
}

/// Whether an error is a refusal by a layer of the seal (Landlock: EACCES; seccomp: EPERM; the
/// namespace: ENETUNREACH), as opposed to an ordinary failure.
fn is_seal_refusal(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::ENETUNREACH)
    )
}

fn must_refuse(name: &str, tried: String, outcome: std::io::Result<()>) -> Probe {
    let (result, holds) = match outcome {
        Ok(()) => ("allowed".to_owned(), false),
        Err(e) if is_seal_refusal(&e) => (format!("refused: {}", errno_text(&e)), true),
        Err(e) => (format!("failed otherwise: {}", errno_text(&e)), false),
    };
    Probe {
        name: name.into(),
        tried,
        expect: "refused".into(),
        result,
        holds,
    }
}

fn not_run(name: &str, why: &str) -> Probe {
    Probe {
        name: name.into(),
        tried: why.into(),
        expect: "refused".into(),
        result: "not run".into(),
        holds: false,
    }
}

fn from_nix(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

/// The namespace's probe, tried inside the new namespace before the other layers (which would
/// refuse the connect first): the host's loopback listener must be out of reach.
pub(crate) fn netns_isolated(target: Option<SocketAddr>) -> Probe {
    match target {
        Some(addr) => must_refuse(
            "netns-isolated",
            format!(
                "TCP connect to {addr} from inside the namespace (a listener of the host's namespace behind it)"
            ),
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(drop),
        ),
        None => not_run(
            "netns-isolated",
            "no loopback port could be opened for the probe",
        ),
    }
}

impl Prepared {
    /// The undeclared loopback address with a listener behind it (for the namespace's probe).
    pub fn target(&self) -> Option<SocketAddr> {
        self.target
            .as_ref()
            .map(|(_, port)| SocketAddr::from((Ipv4Addr::LOCALHOST, *port)))
    }
}

/// Runs the probes (right after the seal).
pub(crate) fn run(prepared: Prepared) -> Vec<Probe> {
    let mut probes = Vec::new();

    // Network: a connect to an undeclared port on loopback, where a listener is waiting.
    probes.push(match &prepared.target {
        Some((_, port)) => {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
            must_refuse(
                "connect-undeclared",
                format!("TCP connect to {addr} (undeclared port, a listener behind it)"),
                TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map(drop),
            )
        }
        None => not_run(
            "connect-undeclared",
            "no loopback port could be opened for the probe",
        ),
    });
    // Network: the ways to a peer that do not pass through connect(), which Landlock hooks.
    let target = prepared
        .target
        .as_ref()
        .map(|(_, port)| SocketAddrV4::new(Ipv4Addr::LOCALHOST, *port));
    probes.extend(past_connect(target));
    drop(prepared.target);

    // Network: a new listening port (the server's own was bound before the seal).
    probes.push(must_refuse(
        "bind-undeclared",
        "TCP bind to 127.0.0.1:0 (a new listening port)".into(),
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map(drop),
    ));

    // Filesystem: read a file outside the roots that was readable before the seal.
    probes.push(match &prepared.outside {
        Some(path) => must_refuse(
            "read-outside",
            format!(
                "read {} (outside the roots, readable before the seal)",
                path.display()
            ),
            std::fs::File::open(path).and_then(|mut f| f.read(&mut [0; 16]).map(drop)),
        ),
        None => not_run(
            "read-outside",
            "no readable file outside the roots was found",
        ),
    });

    // Filesystem: create a file outside the roots.
    probes.push(match &prepared.outside_dir {
        Some(dir) => {
            let path = dir.join(format!(".sov-seal-probe-{}", std::process::id()));
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map(drop);
            if created.is_ok() {
                // It should not exist; do not leave it behind.
                let _ = std::fs::remove_file(&path);
            }
            must_refuse(
                "write-outside",
                format!("create {} (outside the roots)", path.display()),
                created,
            )
        }
        None => not_run("write-outside", "no folder outside the roots was found"),
    });

    // Filesystem: the configuration stays readable, and the server cannot change it.
    if let Some(path) = &prepared.config {
        let read = std::fs::read(path);
        probes.push(Probe {
            name: "read-config".into(),
            tried: format!("read {} (a read-only root)", path.display()),
            expect: "allowed".into(),
            holds: read.is_ok(),
            result: match read {
                Ok(_) => "allowed".into(),
                Err(e) => format!("refused: {}", errno_text(&e)),
            },
        });
        // Opened for appending and closed unwritten: harmless if it were allowed.
        probes.push(must_refuse(
            "write-config",
            format!("open {} for writing (a read-only root)", path.display()),
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map(drop),
        ));
    }

    // Sockets of kinds the server never needs.
    use nix::sys::socket::{AddressFamily, SockFlag, SockProtocol, SockType, socket};
    for (name, tried, family, kind, protocol) in [
        (
            "socket-udp",
            "create a UDP socket (IPv4)",
            AddressFamily::Inet,
            SockType::Datagram,
            None,
        ),
        (
            "socket-unix",
            "create a Unix stream socket (to reach a local daemon)",
            AddressFamily::Unix,
            SockType::Stream,
            None,
        ),
        (
            "socket-netlink",
            "create a netlink socket (to read or change the host's network)",
            AddressFamily::Netlink,
            SockType::Raw,
            Some(SockProtocol::NetlinkRoute),
        ),
    ] {
        probes.push(must_refuse(
            name,
            tried.into(),
            socket(family, kind, SockFlag::SOCK_CLOEXEC, protocol)
                .map(drop)
                .map_err(from_nix),
        ));
    }

    // A new namespace, tried on a thread of its own: if it were allowed, only that short-lived
    // thread would be in it.
    let unshared = std::thread::Builder::new()
        .name("sov-seal-probe".into())
        .spawn(|| nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS).map_err(from_nix))
        .map_err(|e| e.to_string())
        .and_then(|h| h.join().map_err(|_| "the probe thread failed".to_owned()));
    probes.push(match unshared {
        Ok(outcome) => must_refuse(
            "new-namespace",
            "unshare(CLONE_NEWUTS) (enter a new namespace)".into(),
            outcome,
        ),
        Err(why) => not_run("new-namespace", &why),
    });

    // Another process's memory (tried on itself: it would be harmless if allowed).
    let secret = [0x5a_u8; 8];
    let mut copy = [0_u8; 8];
    let read = nix::sys::uio::process_vm_readv(
        nix::unistd::getpid(),
        &mut [std::io::IoSliceMut::new(&mut copy)],
        &[nix::sys::uio::RemoteIoVec {
            base: std::ptr::addr_of!(secret) as usize,
            len: secret.len(),
        }],
    );
    probes.push(must_refuse(
        "read-process-memory",
        "process_vm_readv (read a process's memory, the way ptrace-like tools do)".into(),
        read.map(drop).map_err(from_nix),
    ));
    probes
}

/// What the probes of [`past_connect`] send.
const PROBE_DATA: &[u8] = b"sov-seal-probe";

/// The probes of the paths to a peer that bypass `connect()` (refused by [`crate::seccomp`]),
/// against `target`, the undeclared listener, where one is needed: TCP Fast Open in each send
/// call, the Fast Open and repair options, MPTCP and SCTP sockets, and taking a descriptor
/// from a process. A path that is not refused is followed to the peer where it can be, and
/// the result says how far it got.
/// The probes of the outbound paths past `connect()`'s Landlock hook, which seccomp refuses; the
/// report's outbound control rests on them ([`past_connect`] makes exactly these, then
/// `pidfd-getfd`, which belongs to the control of other processes).
pub const PAST_CONNECT: [&str; 7] = [
    "tcp-fast-open",
    "tcp-fast-open-sendmsg",
    "tcp-fast-open-sendmmsg",
    "tcp-fastopen-connect",
    "tcp-repair",
    "mptcp-socket",
    "sctp-socket",
];

fn past_connect(target: Option<SocketAddrV4>) -> Vec<Probe> {
    use nix::sys::socket::{setsockopt, sockopt};
    use rustix::net::addr::SocketAddrArg as _;
    use rustix::net::{
        self, AddressFamily, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketType, ipproto,
    };
    let io = std::io::Error::from;
    let tcp = || net::socket(AddressFamily::INET, SocketType::STREAM, None).map_err(io);
    let fastopen = SendFlags::from_bits_retain(libc::MSG_FASTOPEN as u32);
    let iov = [std::io::IoSlice::new(PROBE_DATA)];
    let mut probes = Vec::new();

    let fast_open: [(&str, &str); 4] = [
        ("tcp-fast-open", "sendto with MSG_FASTOPEN"),
        ("tcp-fast-open-sendmsg", "sendmsg with MSG_FASTOPEN"),
        ("tcp-fast-open-sendmmsg", "sendmmsg with MSG_FASTOPEN"),
        (
            "tcp-fastopen-connect",
            "setsockopt TCP_FASTOPEN_CONNECT, then connect and write",
        ),
    ];
    match target {
        None => probes.extend(
            fast_open
                .iter()
                .map(|(name, _)| not_run(name, "no loopback port could be opened for the probe")),
        ),
        Some(addr) => {
            let tried = |how: &str| {
                format!(
                    "{how} to {addr} on a new TCP socket (connects without connect(); undeclared port, a listener behind it)"
                )
            };
            let any = addr.as_any();
            let outcomes: [std::io::Result<()>; 3] = [
                tcp().and_then(|s| net::sendto(&s, PROBE_DATA, fastopen, &addr).map_err(io)),
                tcp().and_then(|s| {
                    let mut control = SendAncillaryBuffer::default();
                    net::sendmsg_addr(&s, &addr, &iov, &mut control, fastopen).map_err(io)
                }),
                tcp().and_then(|s| {
                    let mut control = SendAncillaryBuffer::default();
                    let mut msgs = [MMsgHdr::new_with_addr(&any, &iov, &mut control)];
                    net::sendmmsg(&s, &mut msgs, fastopen).map_err(io)
                }),
            ]
            .map(|r| r.map(drop));
            for ((name, how), outcome) in fast_open.iter().zip(outcomes) {
                probes.push(must_refuse(name, tried(how), outcome));
            }
            // The option defers the handshake to the first write; connect() is still hooked.
            let (name, how) = fast_open[3];
            probes.push(match tcp() {
                Err(e) => must_refuse(name, tried(how), Err(e)),
                Ok(s) => {
                    let set = setsockopt(&s, sockopt::TcpFastOpenConnect, &true);
                    let probe = must_refuse(name, tried(how), set.map_err(from_nix));
                    followed(probe, || {
                        net::connect(&s, &addr)
                            .and_then(|()| rustix::io::write(&s, PROBE_DATA).map(drop))
                            .map_err(io)
                    })
                }
            });
        }
    }

    probes.push(must_refuse(
        "tcp-repair",
        "setsockopt TCP_REPAIR on a new TCP socket (a connection state set without a handshake)"
            .into(),
        tcp().and_then(|s| setsockopt(&s, sockopt::TcpRepair, &1).map_err(from_nix)),
    ));

    // Protocols over IP that Landlock's TCP rules do not cover.
    for (name, what, kind, protocol) in [
        (
            "mptcp-socket",
            "an MPTCP socket (SOCK_STREAM, IPPROTO_MPTCP)",
            SocketType::STREAM,
            ipproto::MPTCP,
        ),
        (
            "sctp-socket",
            "an SCTP socket (SOCK_SEQPACKET, IPPROTO_SCTP)",
            SocketType::SEQPACKET,
            ipproto::SCTP,
        ),
    ] {
        let socket = net::socket(AddressFamily::INET, kind, Some(protocol)).map_err(io);
        let (outcome, socket) = match socket {
            Ok(s) => (Ok(()), Some(s)),
            Err(e) => (Err(e), None),
        };
        let probe = must_refuse(name, format!("create {what}"), outcome);
        probes.push(match (socket, target) {
            (Some(s), Some(addr)) => followed(probe, || {
                net::connect(&s, &addr)
                    .and_then(|()| rustix::io::write(&s, PROBE_DATA).map(drop))
                    .map_err(io)
            }),
            _ => probe,
        });
    }

    // A descriptor of a process, taken through a pidfd (tried on this process's standard
    // error: harmless if allowed; with a peer's process it would be its connected sockets).
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
    probes.push(match pidfd_open(getpid(), PidfdFlags::empty()) {
        Err(e) => not_run(
            "pidfd-getfd",
            &format!("pidfd_open of this process failed: {}", errno_text(&io(e))),
        ),
        Ok(pidfd) => must_refuse(
            "pidfd-getfd",
            "pidfd_getfd (take a descriptor of a process, such as a connected socket)".into(),
            pidfd_getfd(&pidfd, 2, PidfdGetfdFlags::empty())
                .map(drop)
                .map_err(io),
        ),
    });
    probes
}

/// A probe whose first step was allowed: `then` tries the rest of the path (to the peer), and
/// the result says how far it got. The probe stays failed: the first step was to be refused.
fn followed(mut probe: Probe, then: impl FnOnce() -> std::io::Result<()>) -> Probe {
    if probe.result == "allowed" {
        probe.result = match then() {
            Ok(()) => "allowed, and the peer was reached".into(),
            Err(e) => format!("allowed, then the rest refused: {}", errno_text(&e)),
        };
    }
    probe
}

/// Whether a connect error is the kernel's refusal by rule (Landlock: EACCES; seccomp: EPERM),
/// as opposed to a network failure (refused by the peer, unreachable, timed out).
pub fn refused_by_rule(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

#[cfg(test)]
mod tests {
    /// The report relies on [`super::PAST_CONNECT`] naming exactly the outbound probes that
    /// `past_connect` makes (run here unsealed: the answers do not matter, only the names).
    #[test]
    fn past_connect_makes_the_probes_the_report_names() {
        let names: Vec<String> = super::past_connect(None)
            .into_iter()
            .map(|p| p.name.to_string())
            .collect();
        let mut want: Vec<String> = super::PAST_CONNECT.iter().map(|s| s.to_string()).collect();
        want.push("pidfd-getfd".into());
        assert_eq!(names, want);
    }
}
