//! Kernel confinement of the calling process: a network namespace (when the declaration says
//! `offline`), Landlock (filesystem roots, TCP bind and connect by port, signal and abstract
//! socket scoping) and seccomp (socket kinds, the ways to send without `connect`, ptrace, new
//! namespaces: [`crate::seccomp`]), applied in that order.
//!
//! Landlock and the namespace act on the calling thread and the threads it creates afterwards,
//! so `apply` (reached only through [`crate::start::Plan::confine`]) must run while the process
//! has one thread: in `sov serve`, after the listener is bound and before the audit writer, the
//! engine or the async runtime start a thread. The thread
//! count is read first and reported; a layer that could not cover every thread is reported as
//! not in force. A layer that cannot be applied is reported with the kernel's reason, never
//! skipped in silence. Rules are never loosened: a process cannot leave a Landlock domain or
//! remove a seccomp filter, so a change to the declaration takes effect at the next start.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};

use crate::probe::Probe;

/// One kernel layer of the seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// A network namespace of its own, with only a loopback that is down.
    Netns,
    /// Landlock: filesystem roots, TCP bind/connect by port, scoping.
    Landlock,
    /// seccomp: socket kinds, ptrace, new namespaces and other calls a server never needs.
    Seccomp,
}

impl Layer {
    /// Every layer, in the order they are applied.
    pub const ALL: [Layer; 3] = [Layer::Netns, Layer::Landlock, Layer::Seccomp];

    /// The layer's name, as in the report and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Netns => "netns",
            Layer::Landlock => "landlock",
            Layer::Seccomp => "seccomp",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Layer::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| format!("`{s}` is not a layer of the seal (netns, landlock, seccomp)"))
    }
}

/// What to confine the process to (made from the declaration by [`crate::start::Plan`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    /// Enter a network namespace of its own (the declaration's `offline`).
    pub offline: bool,
    /// Roots the process may read and write (the data home).
    pub read_write: Vec<PathBuf>,
    /// Roots the process may only read (declared `read_only` paths).
    pub read_only: Vec<PathBuf>,
    /// TCP ports the process may connect to (the declared destinations' ports).
    pub connect_ports: BTreeSet<u16>,
    /// Layers made unavailable on purpose, as if the kernel lacked them (for tests of the
    /// report and of `--require-seal`). Reported as such.
    pub unavailable: BTreeSet<Layer>,
}

/// How one layer stands once the seal is applied ([`crate::start::Plan::confine`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerStatus {
    /// Which layer.
    pub layer: Layer,
    /// Whether the declaration asks for it (the namespace only when `offline`).
    pub declared: bool,
    /// Whether it is in force for the whole process.
    pub in_force: bool,
    /// What was applied, or why it is not in force, in words.
    pub detail: String,
}

/// How the layers stand once the seal is applied ([`crate::start::Confined::confinement`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confinement {
    /// Threads the process had when the seal was applied (1 when done right).
    pub threads: usize,
    /// Each layer, in the order applied.
    pub layers: Vec<LayerStatus>,
    /// The namespace's own probe (a connect to a loopback listener of the host's namespace,
    /// tried inside the new one before the other layers, which would refuse it first).
    pub netns_probe: Option<Probe>,
}

impl Confinement {
    /// The status of `layer`.
    pub fn layer(&self, layer: Layer) -> Option<&LayerStatus> {
        self.layers.iter().find(|l| l.layer == layer)
    }

    /// Whether `layer` is in force.
    pub fn in_force(&self, layer: Layer) -> bool {
        self.layer(layer).is_some_and(|l| l.in_force)
    }
}

/// The Landlock ABI the rules are written for (tested on an ABI 7 kernel; ABI 7 adds no access
/// rights over 6). On an older kernel the rules it cannot express are dropped and the layer is
/// reported as partly enforced, hence not in force.
const LANDLOCK_ABI: ABI = ABI::V6;

/// Applies the layers of `rules` to this process, in order, and says how each stands.
pub(crate) fn apply(rules: &Rules, probe_target: Option<SocketAddr>) -> Confinement {
    let threads = thread_count();
    let mut netns_probe = None;
    let netns = if !rules.offline {
        LayerStatus {
            layer: Layer::Netns,
            declared: false,
            in_force: false,
            detail: "not declared (offline = false)".into(),
        }
    } else {
        // Before seccomp, which forbids unshare.
        let outcome = attempt(rules, Layer::Netns, || {
            let detail = enter_netns()?;
            netns_probe = Some(crate::probe::netns_isolated(probe_target));
            Ok((true, detail))
        });
        per_thread(outcome, threads)
    };
    let landlock = per_thread(attempt(rules, Layer::Landlock, || landlock(rules)), threads);
    // seccomp is synchronised to every thread (TSYNC), so the thread count does not matter.
    let seccomp = attempt(rules, Layer::Seccomp, || {
        crate::seccomp::apply().map(|d| (true, d))
    });
    Confinement {
        threads: threads.unwrap_or(0),
        layers: vec![netns, landlock, seccomp],
        netns_probe,
    }
}

/// Applies one declared layer unless it was made unavailable on purpose; `apply_layer` says
/// whether the kernel enforces all of it, and what was applied.
fn attempt(
    rules: &Rules,
    layer: Layer,
    apply_layer: impl FnOnce() -> Result<(bool, String), String>,
) -> LayerStatus {
    let (in_force, detail) = if rules.unavailable.contains(&layer) {
        (
            false,
            "made unavailable on purpose (--seal-unavailable, for tests): not applied".to_owned(),
        )
    } else {
        match apply_layer() {
            Ok(applied) => applied,
            Err(why) => (false, format!("could not be applied: {why}")),
        }
    };
    LayerStatus {
        layer,
        declared: true,
        in_force,
        detail,
    }
}

/// A layer that covers only the calling thread (and the threads it starts later) is in force
/// for the process only if the process had one thread when it was applied.
fn per_thread(mut status: LayerStatus, threads: Option<usize>) -> LayerStatus {
    if status.in_force && threads != Some(1) {
        status.in_force = false;
        status.detail = format!(
            "{}; but the process had {} threads when it was applied, and this layer covers only the thread that applied it and its later threads",
            status.detail,
            threads.map_or_else(|| "an unknown number of".to_owned(), |n| n.to_string())
        );
    }
    status
}

/// Threads of this process, from /proc/self/task.
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task")
        .ok()
        .map(|d| d.filter(Result::is_ok).count())
}

fn netns_id() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// Moves this thread into a new network namespace, whose only interface is a loopback that is
/// left down: nothing can be reached from inside, not even the namespace's own loopback. The
/// listener bound before stays in the host's namespace and keeps accepting.
fn enter_netns() -> Result<String, String> {
    use nix::sched::{CloneFlags, unshare};
    let before = netns_id();
    let through = match unshare(CloneFlags::CLONE_NEWNET) {
        Ok(()) => "",
        // Not root: a user namespace of its own owns the new network namespace.
        Err(nix::errno::Errno::EPERM) => {
            enter_user_and_net()?;
            ", through a user namespace of its own (not running as root)"
        }
        Err(e) => return Err(format!("unshare(CLONE_NEWNET): {e}")),
    };
    let after = netns_id();
    if after == before {
        return Err(format!("still in {before} after unshare"));
    }
    let mut interfaces = BTreeMap::new();
    for ifa in nix::ifaddrs::getifaddrs().map_err(|e| format!("listing interfaces: {e}"))? {
        let up = ifa.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP);
        interfaces.insert(ifa.interface_name, up);
    }
    let listed: Vec<String> = interfaces
        .iter()
        .map(|(name, up)| format!("{name} ({})", if *up { "up" } else { "down" }))
        .collect();
    if interfaces.keys().any(|n| n != "lo") || interfaces.values().any(|up| *up) {
        return Err(format!(
            "the new namespace {after} has interfaces other than a loopback that is down: {}",
            listed.join(", ")
        ));
    }
    Ok(format!(
        "own network namespace {after} (was {before}){through}; interfaces: {}",
        if listed.is_empty() {
            "none".to_owned()
        } else {
            listed.join(", ")
        }
    ))
}

/// `unshare(CLONE_NEWUSER | CLONE_NEWNET)` with this user and group mapped to themselves, for a
/// process without CAP_SYS_ADMIN. Files keep their owners; the process gains no right outside
/// the new namespaces.
fn enter_user_and_net() -> Result<(), String> {
    use nix::sched::{CloneFlags, unshare};
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(|e| {
        format!(
            "unshare(CLONE_NEWNET) needs root or CAP_SYS_ADMIN, and a user namespace could not be made instead: {e} (unprivileged user namespaces may be disabled on this host)"
        )
    })?;
    for (file, text) in [
        ("/proc/self/setgroups", "deny".to_owned()),
        ("/proc/self/uid_map", format!("{uid} {uid} 1")),
        ("/proc/self/gid_map", format!("{gid} {gid} 1")),
    ] {
        std::fs::write(file, text).map_err(|e| format!("writing {file}: {e}"))?;
    }
    Ok(())
}

/// Landlock rules: the read-write and read-only roots; no TCP bind at all (the listener is
/// already bound); TCP connect to the declared ports only; no signals to or abstract Unix
/// sockets of processes outside the domain. Returns whether it is fully enforced.
fn landlock(rules: &Rules) -> Result<(bool, String), String> {
    let err = |e: &dyn fmt::Display| e.to_string();
    let abi = LANDLOCK_ABI;
    let mut created = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| err(&e))?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
        .map_err(|e| err(&e))?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(|e| err(&e))?
        .create()
        .map_err(|e| err(&e))?;
    // A root may be a single file (a launched tool server's executable, /dev/null): it gets
    // the file rights of its kind, since directory rights on a file are not enforceable.
    let file_only = |root: &PathBuf, access: landlock::BitFlags<AccessFs>| {
        if root.is_dir() {
            access
        } else {
            access & AccessFs::from_file(abi)
        }
    };
    for root in &rules.read_write {
        let fd = PathFd::new(root).map_err(|e| format!("{}: {e}", root.display()))?;
        created = created
            .add_rule(PathBeneath::new(
                fd,
                file_only(root, AccessFs::from_all(abi)),
            ))
            .map_err(|e| err(&e))?;
    }
    for root in &rules.read_only {
        let fd = PathFd::new(root).map_err(|e| format!("{}: {e}", root.display()))?;
        created = created
            .add_rule(PathBeneath::new(
                fd,
                file_only(root, AccessFs::from_read(abi)),
            ))
            .map_err(|e| err(&e))?;
    }
    for port in &rules.connect_ports {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(|e| err(&e))?;
    }
    let status = created.restrict_self().map_err(|e| err(&e))?;
    let abi_text = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => format!("ABI {}", effective_abi as u32),
        LandlockStatus::NotEnabled => "Landlock is built into the kernel but not enabled".into(),
        LandlockStatus::NotImplemented => "the kernel has no Landlock".into(),
    };
    let ports = if rules.connect_ports.is_empty() {
        "none".to_owned()
    } else {
        rules
            .connect_ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rules = format!(
        "read-write {}; read-only {}; TCP bind: none; TCP connect to ports: {ports}; signals and abstract Unix sockets scoped",
        list(&rules.read_write),
        list(&rules.read_only),
    );
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => (true, format!("{abi_text}, fully enforced: {rules}")),
        RulesetStatus::PartiallyEnforced => (
            false,
            format!(
                "{abi_text}, only partly enforced (the kernel lacks some of the rules: {rules})"
            ),
        ),
        RulesetStatus::NotEnforced => (false, format!("not enforced: {abi_text}")),
    })
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "none".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
