//! `sov-verify`: the standalone, offline verifier of Sovereign's Open Audit Record.
//!
//! It depends on `sov-audit-core` only, reads files only and never touches the network, so
//! anyone can check an exported log, a receipt or the consistency of two checkpoints with this
//! one binary. See [`cli::USAGE`] for the commands. Exit status: 0 verified, 1 verification
//! failed (the failure's location and what is wrong on stderr), 2 usage error.

/// `println!` that ignores a closed stdout (`sov-verify ... | head` is not a crash).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

mod cli;
mod dir;
mod report;

use std::path::Path;
use std::process::ExitCode;

use sov_audit_core::note::Vkey;
use sov_audit_core::verify::{self, Failure};

use crate::cli::{Args, Command, ProofSource, USAGE};
use crate::dir::DirFiles;
use crate::report::Out;

/// The largest checkpoint or receipt read (a signed note is at most 1 MiB; a receipt adds an
/// entry and a proof).
const MAX_SMALL_FILE: u64 = 2 << 20;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    match cli::parse(args) {
        Ok(args) => run(args),
        Err(usage) => {
            report::usage_error(&usage.message, usage.json);
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> ExitCode {
    let json = args.json;
    let keys_of = |keys: &[std::ffi::OsString]| -> Result<Vec<Vkey>, ExitCode> {
        cli::load_keys(keys).map_err(|e| {
            report::usage_error(&e, json);
            ExitCode::from(2)
        })
    };
    let (command, result): (&str, Result<Out, Failure>) = match &args.command {
        Command::Help => {
            out!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            outln!("sov-verify {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Log { dir, keys } => {
            let keys = match keys_of(keys) {
                Ok(k) => k,
                Err(code) => return code,
            };
            ("log", verify_log(dir, &keys))
        }
        Command::Proof { file, entry, keys } => {
            let keys = match keys_of(keys) {
                Ok(k) => k,
                Err(code) => return code,
            };
            ("proof", verify_proof(file, entry.as_deref(), &keys))
        }
        Command::Consistency {
            old,
            new,
            source,
            keys,
        } => {
            let keys = match keys_of(keys) {
                Ok(k) => k,
                Err(code) => return code,
            };
            ("consistency", verify_consistency(old, new, source, &keys))
        }
    };
    match result {
        Ok(out) => {
            if json {
                outln!("{}", out.json(command));
            } else {
                out!("{}", out.human());
                outln!("OK");
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            report::failure(command, &failure, json);
            ExitCode::from(1)
        }
    }
}

/// Reads a small input file named on the command line; a failure is located at its path.
fn read_input(path: &Path, label: &str) -> Result<Vec<u8>, Failure> {
    dir::read_limited(path, MAX_SMALL_FILE).map_err(|e| {
        Failure::new(
            format!("{label} {}", path.display()),
            format!("cannot be read: {e}"),
        )
    })
}

fn verify_log(dir: &Path, keys: &[Vkey]) -> Result<Out, Failure> {
    let mut files = DirFiles::open(dir).map_err(|e| Failure::new(dir.display().to_string(), e))?;
    verify::verify_log(&mut files, keys).map(Out::Log)
}

fn verify_proof(file: &Path, entry: Option<&Path>, keys: &[Vkey]) -> Result<Out, Failure> {
    let proof = read_input(file, "proof")?;
    let entry = entry.map(|p| read_input(p, "entry")).transpose()?;
    verify::verify_receipt(&proof, entry.as_deref(), keys).map(Out::Proof)
}

fn verify_consistency(
    old: &Path,
    new: &Path,
    source: &ProofSource,
    keys: &[Vkey],
) -> Result<Out, Failure> {
    let old_bytes = read_input(old, "old checkpoint")?;
    let new_bytes = read_input(new, "new checkpoint")?;
    let (proof, from) = match source {
        ProofSource::File(p) => {
            let text = read_input(p, "proof")?;
            let label = format!("proof {}", p.display());
            (verify::parse_hash_lines(&text, &label)?, label)
        }
        ProofSource::Dir(d) => {
            // The sizes come from the checkpoints, which must verify first.
            let old_v = verify::verify_signed_checkpoint("old checkpoint", &old_bytes, keys)?;
            let new_v = verify::verify_signed_checkpoint("new checkpoint", &new_bytes, keys)?;
            let (o, n) = (old_v.checkpoint.size, new_v.checkpoint.size);
            if o > n {
                return Err(Failure::new(
                    "new checkpoint",
                    format!("size {n} is smaller than the old checkpoint's {o}"),
                ));
            }
            let mut files =
                DirFiles::open(d).map_err(|e| Failure::new(d.display().to_string(), e))?;
            let proof = verify::consistency_proof_from_files(&mut files, o, n)?;
            (proof, format!("computed from the tiles in {}", d.display()))
        }
    };
    verify::verify_consistency_notes(&old_bytes, &new_bytes, &proof, keys)
        .map(|report| Out::Consistency { report, from })
}
