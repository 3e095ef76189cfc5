//! The seal's seccomp filters (x86_64): the calls a model server never makes, and every way
//! the kernel offers to reach a destination that Landlock does not see.
//!
//! Landlock's network rules hook `bind()` and `connect()` on TCP sockets (`IPPROTO_TCP`), and
//! nothing else. What reaches a peer without passing through those two hooks is refused here,
//! each with EPERM:
//!
//! - sockets other than TCP over IPv4/IPv6 (protocol 0 or `IPPROTO_TCP`): UDP, raw, packet,
//!   netlink, Unix, vsock, SCTP (`SOCK_SEQPACKET` or `IPPROTO_SCTP`), and MPTCP (`SOCK_STREAM`
//!   with `IPPROTO_MPTCP`), which Landlock's TCP rules do not cover: with Landlock alone, an
//!   MPTCP connect to an undeclared port succeeds (tests/kernel.rs, `seccomp-unavailable`);
//! - TCP Fast Open: `sendto`, `sendmsg` and `sendmmsg` with `MSG_FASTOPEN` connect from inside
//!   the send call, past `connect()`'s hook, so the flag is refused in all three; so are the
//!   options `TCP_FASTOPEN_CONNECT` (the handshake deferred to the first write) and
//!   `TCP_FASTOPEN` (data in the SYN, on a listener);
//! - `TCP_REPAIR`, which puts a socket in a state of its choosing without a handshake;
//! - `pidfd_getfd`, which takes a descriptor (a connected socket) from another process;
//! - io_uring (`io_uring_setup`, `io_uring_enter`, `io_uring_register`): its operations run in
//!   the kernel without system calls for seccomp to check;
//! - calls of another ABI: seccompiler's filters kill a process making a call of another
//!   architecture (i386 through `int 0x80`); x32 calls carry the x86_64 architecture with bit
//!   30 of the number set, which no rule matches, so a filter of its own refuses them.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch, sock_filter,
};

/// Calls a model server never makes, refused with EPERM.
const DENIED_CALLS: [(i64, &str); 25] = [
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_process_vm_readv, "process_vm_readv"),
    (libc::SYS_process_vm_writev, "process_vm_writev"),
    (libc::SYS_pidfd_getfd, "pidfd_getfd"),
    (libc::SYS_unshare, "unshare"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_mount, "mount"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_chroot, "chroot"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_userfaultfd, "userfaultfd"),
    (libc::SYS_io_uring_setup, "io_uring_setup"),
    (libc::SYS_io_uring_enter, "io_uring_enter"),
    (libc::SYS_io_uring_register, "io_uring_register"),
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
    (libc::SYS_swapon, "swapon"),
];

/// Namespace flags refused in clone(2) (its flags are argument 0 on x86_64).
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// The send calls and the index of their `flags` argument: `sendto(fd, buf, len, flags, addr,
/// addrlen)`, `sendmsg(fd, msg, flags)`, `sendmmsg(fd, msgvec, vlen, flags)`.
const SEND_CALLS: [(i64, u8); 3] = [
    (libc::SYS_sendto, 3),
    (libc::SYS_sendmsg, 2),
    (libc::SYS_sendmmsg, 3),
];

/// TCP options refused (level `IPPROTO_TCP`).
const TCP_OPTIONS: [(libc::c_int, &str); 3] = [
    (libc::TCP_FASTOPEN_CONNECT, "TCP_FASTOPEN_CONNECT"),
    (libc::TCP_FASTOPEN, "TCP_FASTOPEN"),
    (libc::TCP_REPAIR, "TCP_REPAIR"),
];

/// Bit 30 of the call number: an x32 call (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

/// The filters: `socket` only for TCP over IPv4/IPv6, `socketpair` only for Unix sockets (the
/// async runtime's wake-up pair), no `MSG_FASTOPEN` in the send calls, no TCP Fast Open or
/// repair options, no namespaces through `clone`, and the calls in [`DENIED_CALLS`], all with
/// EPERM; `clone3` with ENOSYS (its flags are in memory, out of seccomp's sight; C libraries
/// fall back to `clone`, which is checked); and x32 calls with EPERM.
pub(crate) fn filters() -> Result<[BpfProgram; 3], String> {
    let err = |e: seccompiler::BackendError| e.to_string();
    let arg = |index: u8, op: Op, value: u64| Cond::new(index, Len::Dword, op, value).map_err(err);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();

    // socket(family, type, protocol): refused unless family is INET/INET6, type is STREAM and
    // protocol is 0 or TCP (not MPTCP, not SCTP). Each rule below is one way of not being that.
    let (inet, inet6) = (libc::AF_INET as u64, libc::AF_INET6 as u64);
    let mut socket = vec![
        SeccompRule::new(vec![arg(0, Op::Ne, inet)?, arg(0, Op::Ne, inet6)?]).map_err(err)?,
        SeccompRule::new(vec![
            arg(2, Op::Ne, 0)?,
            arg(2, Op::Ne, libc::IPPROTO_TCP as u64)?,
        ])
        .map_err(err)?,
    ];
    for kind in 0..=0xf_u64 {
        if kind != libc::SOCK_STREAM as u64 {
            socket.push(SeccompRule::new(vec![arg(1, Op::MaskedEq(0xf), kind)?]).map_err(err)?);
        }
    }
    rules.insert(libc::SYS_socket, socket);
    rules.insert(
        libc::SYS_socketpair,
        vec![SeccompRule::new(vec![arg(0, Op::Ne, libc::AF_UNIX as u64)?]).map_err(err)?],
    );

    // TCP Fast Open connects inside the send call, past Landlock's connect hook.
    let fastopen = libc::MSG_FASTOPEN as u32 as u64;
    for (nr, flags) in SEND_CALLS {
        rules.insert(
            nr,
            vec![
                SeccompRule::new(vec![arg(flags, Op::MaskedEq(fastopen), fastopen)?])
                    .map_err(err)?,
            ],
        );
    }
    // setsockopt(fd, level, optname, ...).
    let mut setsockopt = Vec::new();
    for (option, _) in TCP_OPTIONS {
        setsockopt.push(
            SeccompRule::new(vec![
                arg(1, Op::Eq, libc::IPPROTO_TCP as u64)?,
                arg(2, Op::Eq, option as u64)?,
            ])
            .map_err(err)?,
        );
    }
    rules.insert(libc::SYS_setsockopt, setsockopt);

    for (nr, _) in DENIED_CALLS {
        rules.insert(nr, vec![]);
    }
    let mut clone = Vec::new();
    for flag in NAMESPACE_FLAGS {
        let flag = flag as u64;
        clone.push(
            SeccompRule::new(vec![
                Cond::new(0, Len::Qword, Op::MaskedEq(flag), flag).map_err(err)?,
            ])
            .map_err(err)?,
        );
    }
    rules.insert(libc::SYS_clone, clone);
    let eperm: BpfProgram = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        TargetArch::x86_64,
    )
    .map_err(err)?
    .try_into()
    .map_err(err)?;

    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, vec![]);
    let enosys: BpfProgram = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )
    .map_err(err)?
    .try_into()
    .map_err(err)?;
    Ok([eperm, enosys, x32()])
}

/// A filter seccompiler cannot express (it matches call numbers one by one): every x32 call,
/// whatever its number, refused with EPERM. Another architecture is killed, as in the others.
fn x32() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        op(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        op(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        op(RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        op(JGE_K, 0, 1, X32_SYSCALL_BIT),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Installs the filters on every thread and says what they refuse.
pub(crate) fn apply() -> Result<String, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err("the filters are written for x86_64 only".into());
    }
    let programs = filters()?;
    for program in &programs {
        seccompiler::apply_filter_all_threads(program).map_err(|e| e.to_string())?;
    }
    let calls: Vec<&str> = DENIED_CALLS.iter().map(|(_, name)| *name).collect();
    let options: Vec<&str> = TCP_OPTIONS.iter().map(|(_, name)| *name).collect();
    Ok(format!(
        "{} filters on every thread: sockets only TCP over IPv4/IPv6 (no UDP, raw, packet, netlink, Unix, MPTCP or SCTP sockets; Unix socket pairs allowed); no MSG_FASTOPEN in sendto, sendmsg or sendmmsg; TCP options refused: {}; no new namespaces through clone; clone3 answers ENOSYS; calls of another architecture kill the process, x32 calls refused; refused: {}",
        programs.len(),
        options.join(", "),
        calls.join(", ")
    ))
}

#[cfg(test)]
#[path = "seccomp_tests.rs"]
mod tests;
