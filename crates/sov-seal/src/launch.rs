//! The seal's launcher: starts an outside program (an MCP tool server) in a confinement of its
//! own, tighter than the server's, so that a tool server holds none of the server's privileges.
//!
//! The server never runs the program itself. It starts `sov` again as the launcher
//! ([`Sandbox::command`]: `sov __sandbox <json>`, with a cleared environment and the scratch
//! folder as its working directory); the launcher, a process of one thread,
//! [`Sandbox::exec`]s the program in these steps:
//!
//! 1. opens the executable and checks its SHA-256 against the declared one, on the bytes of
//!    the open file (the file executed is the file checked: it is run through its descriptor);
//! 2. enters a network namespace of its own with no usable interface (a tool server started
//!    this way reaches nothing over the network), unless it is given `outbound` destinations:
//!    then it keeps the host's network, and Landlock lets TCP connect through only to their
//!    ports;
//! 3. Landlock: read and execute only the system's program folders ([`SYSTEM_READ_ONLY`]), the
//!    executable and the declared read-only paths; write only its scratch folder and the
//!    declared read-write paths; no TCP bind, and TCP connect to the `outbound` ports only
//!    (none by default); signals and abstract Unix sockets scoped to its own domain. The home
//!    (keys, record, models) is not among them;
//! 4. seccomp: the server's own filters ([`crate::seccomp`]);
//! 5. a parent-death signal (it is killed when the server goes), then `exec`.
//!
//! A layer that cannot be applied refuses the start: a tool server runs confined or not at all.
//! These layers are applied before `exec` and kept across it, so the program never runs
//! outside them. The server must start its launchers before it applies its own seal (whose
//! Landlock domain would not let it execute `sov` again): tool servers are started with the
//! server and are not restarted while it runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::confine::{self, Layer, Rules};

/// The hidden subcommand of `sov` that runs [`Sandbox::exec`].
pub const SUBCOMMAND: &str = "__sandbox";

/// The system paths a launched program may read and execute (its interpreter, libraries,
/// time zones), each only if it exists. Not `/etc` as a whole, nor `/proc`, `/home` or `/root`.
pub const SYSTEM_READ_ONLY: [&str; 9] = [
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ssl/openssl.cnf",
    "/dev/urandom",
];

/// The confinement of a launched program without outbound destinations, in words (each layer
/// is in force, or the program was not started); [`Sandbox::confinement`] says it for one.
pub const CONFINEMENT: &str = "own network namespace without a usable interface; Landlock: read and execute the system's program folders, the executable and the declared read-only paths, write its scratch folder and the declared read-write paths, no TCP bind or connect, signals and abstract Unix sockets scoped; seccomp: the seal's filters; cleared environment";

/// The confinement, in words, of a launched program that may reach `outbound` (none: no
/// network at all, [`CONFINEMENT`]).
pub fn confinement(outbound: &[SocketAddr]) -> String {
    if outbound.is_empty() {
        return CONFINEMENT.to_owned();
    }
    let ports: std::collections::BTreeSet<u16> = outbound.iter().map(SocketAddr::port).collect();
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!(
        "the host's network, TCP connect only to ports {} (any address there: Landlock checks ports; its connections are not recorded one by one); Landlock: read and execute the system's program folders, the executable and the declared read-only paths, write its scratch folder and the declared read-write paths, no TCP bind, signals and abstract Unix sockets scoped; seccomp: the seal's filters (TCP only: no UDP, so no DNS); cleared environment",
        ports.join(", ")
    )
}

/// Files a launched program may write besides its own folders.
const SYSTEM_READ_WRITE: [&str; 1] = ["/dev/null"];

/// The environment a launched program gets, beside the declared variables: `HOME` and
/// `TMPDIR` are its scratch folder.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// An outside program and the confinement it runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    /// The executable, absolute.
    pub executable: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The SHA-256 (hex) its bytes must have.
    pub sha256: String,
    /// Paths it may read (and execute), besides the system's.
    pub read_only: Vec<PathBuf>,
    /// Paths it may read and write.
    pub read_write: Vec<PathBuf>,
    /// Its own folder: its working directory, `HOME` and `TMPDIR`, writable.
    pub scratch: PathBuf,
    /// Destinations it may connect to over TCP. Empty (the default): no network at all (a
    /// network namespace of its own). Otherwise it shares the host's network and the kernel
    /// lets TCP connect through to these ports only (Landlock checks ports, not addresses).
    #[serde(default)]
    pub outbound: Vec<SocketAddr>,
}

/// Why a program was not launched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LaunchError(pub String);

/// The SHA-256 (hex) of what `reader` yields.
pub fn sha256_of(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The SHA-256 (hex) of the file at `path`.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_of(std::fs::File::open(path)?)
}

impl Sandbox {
    /// Checks the declaration before anything is started: absolute paths that exist, a
    /// SHA-256 in hex that matches the executable now (checked again by the launcher).
    pub fn check(&self) -> Result<(), LaunchError> {
        let fail = |why: String| Err(LaunchError(why));
        for (what, path) in [
            ("executable", &self.executable),
            ("scratch folder", &self.scratch),
        ]
        .into_iter()
        .chain(self.read_only.iter().map(|p| ("read-only path", p)))
        .chain(self.read_write.iter().map(|p| ("read-write path", p)))
        {
            if !path.is_absolute() {
                return fail(format!("the {what} `{}` is not absolute", path.display()));
            }
            if !path.exists() {
                return fail(format!("the {what} {} does not exist", path.display()));
            }
        }
        if self.outbound.iter().any(|a| a.port() == 0) {
            return fail("an outbound destination needs a port".into());
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return fail("sha256 must be 64 hexadecimal digits".into());
        }
        let actual = sha256_file(&self.executable)
            .map_err(|e| LaunchError(format!("reading {}: {e}", self.executable.display())))?;
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return fail(format!(
                "the SHA-256 of {} is {actual}, not the declared {}: the program changed, or the declaration is wrong",
                self.executable.display(),
                self.sha256
            ));
        }
        Ok(())
    }

    /// The command that launches this program through the launcher `sov` (the running binary,
    /// `std::env::current_exe`), with a cleared environment holding only `PATH`, `HOME`,
    /// `TMPDIR`, `LANG` and `env`. Its standard streams are the caller's to set.
    pub fn command(&self, sov: &Path, env: &BTreeMap<String, String>) -> Result<Command, String> {
        let spec = serde_json::to_string(self).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(sov);
        cmd.arg(SUBCOMMAND)
            .arg(spec)
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", &self.scratch)
            .env("TMPDIR", &self.scratch)
            .env("LANG", "C.UTF-8")
            .envs(env)
            .current_dir(&self.scratch);
        Ok(cmd)
    }

    /// Parses the launcher's argument (what [`Sandbox::command`] passed).
    pub fn from_arg(arg: &str) -> Result<Self, LaunchError> {
        serde_json::from_str(arg)
            .map_err(|e| LaunchError(format!("the sandbox's description: {e}")))
    }

    /// The launcher: confines this process and replaces it with the program (see the module's
    /// documentation). Returns only when the program could not be started, saying why.
    pub fn exec(&self) -> LaunchError {
        match self.confine_and_exec() {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    fn confine_and_exec(&self) -> Result<std::convert::Infallible, LaunchError> {
        let fail = |why: String| LaunchError(why);
        let file = std::fs::File::open(&self.executable)
            .map_err(|e| fail(format!("opening {}: {e}", self.executable.display())))?;
        let actual = sha256_of(&file)
            .map_err(|e| fail(format!("reading {}: {e}", self.executable.display())))?;
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(fail(format!(
                "the SHA-256 of {} is {actual}, not the declared {}: not started",
                self.executable.display(),
                self.sha256
            )));
        }
        // The descriptor stays open across exec: an interpreter reads a script through it.
        nix::fcntl::fcntl(
            &file,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map_err(|e| fail(format!("keeping the executable open: {e}")))?;
        let rules = self.rules();
        let confinement = confine::apply(&rules, None);
        let mut missing = String::new();
        for layer in Layer::ALL {
            if let Some(status) = confinement.layer(layer)
                && status.declared
                && !status.in_force
            {
                let _ = write!(missing, "; {layer}: {}", status.detail);
            }
        }
        if !missing.is_empty() {
            return Err(fail(format!(
                "the sandbox is not whole, so the program was not started{missing}"
            )));
        }
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| fail(format!("setting the parent-death signal: {e}")))?;
        let through = format!("/proc/self/fd/{}", file.as_raw_fd());
        let err = Command::new(&through)
            .arg0(&self.executable)
            .args(&self.args)
            .exec();
        Err(fail(format!(
            "executing {}: {err}",
            self.executable.display()
        )))
    }

    /// Its confinement, in words, as it is applied (each layer in force, or not started).
    pub fn confinement(&self) -> String {
        confinement(&self.outbound)
    }

    fn ports(&self) -> std::collections::BTreeSet<u16> {
        self.outbound.iter().map(SocketAddr::port).collect()
    }

    /// The confinement's rules: the system's folders, the declared paths, and no network or
    /// TCP to the outbound destinations' ports.
    fn rules(&self) -> Rules {
        let existing = |paths: &[&str]| -> Vec<PathBuf> {
            paths
                .iter()
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .collect()
        };
        let mut read_only = existing(&SYSTEM_READ_ONLY);
        read_only.push(self.executable.clone());
        read_only.extend(self.read_only.iter().cloned());
        let mut read_write = existing(&SYSTEM_READ_WRITE);
        read_write.push(self.scratch.clone());
        read_write.extend(self.read_write.iter().cloned());
        Rules {
            offline: self.outbound.is_empty(),
            read_write,
            read_only,
            connect_ports: self.ports(),
            unavailable: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn sandbox(dir: &Path) -> Sandbox {
        let exe = dir.join("tool.sh");
        std::fs::write(&exe, "#!/bin/sh\necho hi\n").unwrap();
        Sandbox {
            sha256: sha256_file(&exe).unwrap(),
            executable: exe,
            args: vec!["--flag".into()],
            read_only: vec![],
            read_write: vec![],
            scratch: dir.to_owned(),
            outbound: vec![],
        }
    }

    #[test]
    fn a_declaration_is_checked_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let good = sandbox(dir.path());
        assert_eq!(good.check(), Ok(()));
        type Change = fn(&mut Sandbox);
        let cases: [(Change, &str); 5] = [
            (|s| s.executable = PathBuf::from("tool.sh"), "not absolute"),
            (
                |s| s.read_only = vec![PathBuf::from("/no/such/path")],
                "does not exist",
            ),
            (|s| s.sha256 = "abc".into(), "64 hexadecimal digits"),
            (|s| s.sha256 = "0".repeat(64), "not the declared"),
            (
                |s| s.read_write = vec![PathBuf::from("rel")],
                "not absolute",
            ),
        ];
        for (change, says) in cases {
            let mut bad = good.clone();
            change(&mut bad);
            let err = bad.check().unwrap_err().0;
            assert!(err.contains(says), "{says}: {err}");
        }
    }

    #[test]
    fn the_launcher_gets_the_sandbox_and_a_cleared_environment() {
        let dir = tempfile::tempdir().unwrap();
        let s = sandbox(dir.path());
        let env = BTreeMap::from([("TOKEN_NAME".to_owned(), "x".to_owned())]);
        let cmd = s.command(Path::new("/bin/sov"), &env).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[0], SUBCOMMAND);
        assert_eq!(Sandbox::from_arg(&args[1]).unwrap(), s);
        let mut vars: Vec<String> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        vars.sort();
        assert_eq!(vars, ["HOME", "LANG", "PATH", "TMPDIR", "TOKEN_NAME"]);
        assert_eq!(cmd.get_current_dir(), Some(dir.path()));
        assert!(Sandbox::from_arg("{\"executable\": 1}").is_err());
    }

    #[test]
    fn outbound_destinations_open_their_ports_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sandbox(dir.path());
        s.outbound = vec![
            "10.0.0.5:5432".parse().unwrap(),
            "10.0.0.6:5432".parse().unwrap(),
            "[::1]:8080".parse().unwrap(),
        ];
        let rules = s.rules();
        assert!(!rules.offline);
        assert_eq!(rules.connect_ports, [5432, 8080].into());
        assert!(
            s.confinement()
                .contains("TCP connect only to ports 5432, 8080")
        );
        assert_eq!(sandbox(dir.path()).confinement(), CONFINEMENT);
        s.outbound = vec!["10.0.0.5:0".parse().unwrap()];
        assert!(s.check().unwrap_err().0.contains("needs a port"));
    }

    #[test]
    fn the_rules_hold_no_network_and_only_the_named_paths() {
        let dir = tempfile::tempdir().unwrap();
        let s = sandbox(dir.path());
        let rules = s.rules();
        assert!(rules.offline);
        assert!(rules.connect_ports.is_empty());
        assert!(rules.read_only.contains(&s.executable));
        assert!(rules.read_write.contains(&s.scratch));
        for p in rules.read_only.iter().chain(&rules.read_write) {
            assert!(
                SYSTEM_READ_ONLY.iter().any(|r| Path::new(r) == p)
                    || SYSTEM_READ_WRITE.iter().any(|r| Path::new(r) == p)
                    || p == &s.executable
                    || p == &s.scratch,
                "{}",
                p.display()
            );
        }
    }
}
