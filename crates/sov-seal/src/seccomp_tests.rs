//! The filters' programs, run by a classic-BPF interpreter on `seccomp_data` the kernel would
//! pass: the calls the live probes cannot make without `unsafe` (x32 and i386 numbers), and the
//! ordinary calls the server needs, which must stay allowed. The live checks are in
//! tests/kernel.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// `AUDIT_ARCH_I386` (`EM_386 | __AUDIT_ARCH_LE`).
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

/// Runs one program on `seccomp_data { nr, arch, instruction_pointer: 0, args }`.
fn run(program: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::with_capacity(64);
    data.extend(nr.to_le_bytes());
    data.extend(arch.to_le_bytes());
    data.extend(0_u64.to_le_bytes());
    for a in args {
        data.extend(a.to_le_bytes());
    }
    let (mut acc, mut pc) = (0_u32, 0_usize);
    loop {
        let op = &program[pc];
        pc += 1;
        let k = op.k;
        let jump = |taken: bool| usize::from(if taken { op.jt } else { op.jf });
        match op.code {
            0x20 => {
                let at = k as usize;
                acc = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
            }
            0x54 => acc &= k,
            0x05 => pc += k as usize,
            0x15 => pc += jump(acc == k),
            0x25 => pc += jump(acc > k),
            0x35 => pc += jump(acc >= k),
            0x45 => pc += jump(acc & k != 0),
            0x06 => return k,
            code => panic!("instruction {code:#x} not interpreted"),
        }
    }
}

/// The kernel's answer with every filter installed: the action of highest precedence.
fn verdict(nr: i64, arch: u32, args: [u64; 6]) -> u32 {
    let rank = |ret: u32| match ret & 0xffff_0000 {
        libc::SECCOMP_RET_KILL_PROCESS => 0,
        libc::SECCOMP_RET_KILL_THREAD => 1,
        libc::SECCOMP_RET_TRAP => 2,
        libc::SECCOMP_RET_ERRNO => 3,
        libc::SECCOMP_RET_TRACE => 5,
        libc::SECCOMP_RET_LOG => 6,
        _ => 7,
    };
    filters()
        .unwrap()
        .iter()
        .map(|p| run(p, nr as u32, arch, args))
        .min_by_key(|r| rank(*r))
        .unwrap()
}

const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

fn x86_64(nr: i64, args: [u64; 6]) -> u32 {
    verdict(nr, AUDIT_ARCH_X86_64, args)
}

#[test]
fn x32_system_calls_are_refused() {
    // socket(AF_UNIX) and sendto(MSG_FASTOPEN) through the x32 numbers: no rule matches them.
    let unix = [libc::AF_UNIX as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0];
    assert_eq!(x86_64(libc::SYS_socket | 0x4000_0000, unix), EPERM);
    let fastopen = [3, 0, 1, libc::MSG_FASTOPEN as u64, 0, 0];
    assert_eq!(x86_64(libc::SYS_sendto | 0x4000_0000, fastopen), EPERM);
    assert_eq!(
        x86_64(519, [0; 6]),
        ALLOW,
        "x86_64 call 519 does not exist, but is not x32"
    );
}

#[test]
fn i386_system_calls_kill_the_process() {
    // socketcall(2) and socket(2) of the i386 table, through `int 0x80`.
    for nr in [102, 359] {
        assert_eq!(
            verdict(nr, AUDIT_ARCH_I386, [libc::AF_UNIX as u64, 1, 0, 0, 0, 0]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }
}

#[test]
fn tcp_fast_open_flag_is_refused_with_any_other_flag() {
    let flags = (libc::MSG_FASTOPEN | libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) as u64;
    assert_eq!(x86_64(libc::SYS_sendto, [3, 0, 1, flags, 0, 0]), EPERM);
    assert_eq!(x86_64(libc::SYS_sendmsg, [3, 0, flags, 0, 0, 0]), EPERM);
    assert_eq!(x86_64(libc::SYS_sendmmsg, [3, 0, 1, flags, 0, 0]), EPERM);
    // The upper half of a 64-bit register does not hide the flag.
    let high = (1_u64 << 40) | libc::MSG_FASTOPEN as u64;
    assert_eq!(x86_64(libc::SYS_sendto, [3, 0, 1, high, 0, 0]), EPERM);
}

#[test]
fn ordinary_sends_and_socket_options_stay_allowed() {
    let nosignal = libc::MSG_NOSIGNAL as u64;
    assert_eq!(x86_64(libc::SYS_sendto, [3, 0, 1, nosignal, 0, 0]), ALLOW);
    assert_eq!(x86_64(libc::SYS_sendmsg, [3, 0, nosignal, 0, 0, 0]), ALLOW);
    assert_eq!(x86_64(libc::SYS_sendmmsg, [3, 0, 1, 0, 0, 0]), ALLOW);
    // A flag in another argument's place is not the flag.
    let fastopen = libc::MSG_FASTOPEN as u64;
    assert_eq!(x86_64(libc::SYS_sendmsg, [3, 0, 0, fastopen, 0, 0]), ALLOW);
    let tcp = libc::IPPROTO_TCP as u64;
    for option in [
        libc::TCP_NODELAY,
        libc::TCP_KEEPIDLE,
        libc::TCP_USER_TIMEOUT,
    ] {
        assert_eq!(
            x86_64(libc::SYS_setsockopt, [3, tcp, option as u64, 0, 4, 0]),
            ALLOW
        );
    }
    // The same numbers at another level are other options (SO_ACCEPTCONN, IP_TRANSPARENT).
    let sol_socket = libc::SOL_SOCKET as u64;
    assert_eq!(
        x86_64(libc::SYS_setsockopt, [3, sol_socket, 30, 0, 4, 0]),
        ALLOW
    );
    assert_eq!(x86_64(libc::SYS_setsockopt, [3, 0, 19, 0, 4, 0]), ALLOW);
    let stream = libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    for protocol in [0, libc::IPPROTO_TCP] {
        let args = [
            libc::AF_INET6 as u64,
            stream as u64,
            protocol as u64,
            0,
            0,
            0,
        ];
        assert_eq!(x86_64(libc::SYS_socket, args), ALLOW);
    }
}

#[test]
fn tcp_fast_open_and_repair_options_are_refused() {
    let tcp = libc::IPPROTO_TCP as u64;
    for (option, name) in TCP_OPTIONS {
        assert_eq!(
            x86_64(libc::SYS_setsockopt, [3, tcp, option as u64, 0, 4, 0]),
            EPERM,
            "{name}"
        );
    }
}

#[test]
fn mptcp_and_sctp_sockets_are_refused() {
    let stream = libc::SOCK_STREAM as u64;
    for protocol in [libc::IPPROTO_MPTCP, libc::IPPROTO_SCTP] {
        let args = [libc::AF_INET as u64, stream, protocol as u64, 0, 0, 0];
        assert_eq!(x86_64(libc::SYS_socket, args), EPERM);
    }
    let seqpacket = [
        libc::AF_INET as u64,
        libc::SOCK_SEQPACKET as u64,
        0,
        0,
        0,
        0,
    ];
    assert_eq!(x86_64(libc::SYS_socket, seqpacket), EPERM);
}
