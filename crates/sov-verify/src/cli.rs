//! Command-line arguments, parsed by hand (the binary depends on sov-audit-core only).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sov_audit_core::note::{Vkey, parse_vkeys};

/// The help text.
pub const USAGE: &str = "\
sov-verify: offline verifier for Sovereign's Open Audit Record. It reads files only and never
touches the network.

USAGE:
  sov-verify log DIR --key VKEY [--key VKEY ...] [--json]
      Verify a whole tiled log (an `sov audit export` folder or a copy of a node's log):
      DIR/checkpoint and every entry bundle and hash tile under DIR/tile/ that its size
      requires. Decodes every entry, recomputes every leaf hash, checks the hash chain
      (index and prev of each entry), every tile at every level, the tree root and the
      checkpoint's signatures.

  sov-verify proof FILE --key VKEY [--entry FILE] [--json]
      Verify a c2sp.org/tlog-proof@v1 receipt (`sov audit proof N > FILE`) and print the
      entry it proves. The entry comes from the receipt's extra line, or from --entry FILE
      (its exact bytes); given both, they must be equal.

  sov-verify consistency OLD_CHECKPOINT NEW_CHECKPOINT --key VKEY (--proof FILE | --dir DIR) [--json]
      Verify that NEW_CHECKPOINT extends OLD_CHECKPOINT (the log only grew): with a
      consistency proof FILE (one base64 hash per line), or with the proof computed from
      the hash tiles in DIR.

  sov-verify --help | --version

OPTIONS:
  --key VKEY     A verifier key in signed-note form (name+keyid+base64key), or a file holding
                 one per line (such as an exported log's `vkeys`). Repeatable. Every key given
                 must have signed each checkpoint checked.
  --entry FILE   The entry's bytes (proof only).
  --proof FILE   A consistency proof, one base64 hash per line (consistency only).
  --dir DIR      A log directory to compute the consistency proof from (consistency only).
  --json         Print one JSON object: {\"ok\": true, ...} or
                 {\"ok\": false, \"failure\": {\"location\": ..., \"what\": ...}}.

EXIT STATUS:
  0  verified
  1  verification failed: `FAILED: <location>: <what>` on stderr
  2  usage error (bad arguments, unreadable or malformed --key)
";

/// What to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
    /// Verify a whole log.
    Log {
        /// The log directory.
        dir: PathBuf,
        /// `--key` arguments.
        keys: Vec<OsString>,
    },
    /// Verify a receipt.
    Proof {
        /// The receipt.
        file: PathBuf,
        /// `--entry`.
        entry: Option<PathBuf>,
        /// `--key` arguments.
        keys: Vec<OsString>,
    },
    /// Verify consistency between two checkpoints.
    Consistency {
        /// The older checkpoint.
        old: PathBuf,
        /// The newer checkpoint.
        new: PathBuf,
        /// Where the proof comes from.
        source: ProofSource,
        /// `--key` arguments.
        keys: Vec<OsString>,
    },
}

/// Where a consistency proof comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum ProofSource {
    /// A file of base64 hashes.
    File(PathBuf),
    /// Computed from a log directory's tiles.
    Dir(PathBuf),
}

/// Parsed arguments.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// The command.
    pub command: Command,
    /// `--json`.
    pub json: bool,
}

/// A usage error.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage {
    /// What is wrong.
    pub message: String,
    /// Whether `--json` was among the arguments (so the error is printed as JSON).
    pub json: bool,
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<OsString>) -> Result<Args, Usage> {
    let json = args.iter().any(|a| a == "--json");
    let usage = |message: String| Usage { message, json };
    let mut positional: Vec<OsString> = Vec::new();
    let mut keys: Vec<OsString> = Vec::new();
    let mut entry: Option<PathBuf> = None;
    let mut proof: Option<PathBuf> = None;
    let mut dir: Option<PathBuf> = None;
    let mut help = false;
    let mut version = false;
    let mut only_positional = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let text = arg.to_str().map(str::to_owned);
        let flag = match &text {
            Some(t) if !only_positional && t.starts_with('-') && t.len() > 1 => t.clone(),
            _ => {
                positional.push(arg);
                continue;
            }
        };
        // `--name=value` or `--name value`.
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(OsString::from(v))),
            _ => (flag.clone(), None),
        };
        let mut value = |name: &str| -> Result<OsString, Usage> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => Err(usage(format!("{name} needs a value"))),
            }
        };
        match name.as_str() {
            "--" => only_positional = true,
            "-h" | "--help" => help = true,
            "-V" | "--version" => version = true,
            "--json" => {}
            "--key" => keys.push(value("--key")?),
            "--entry" => set_once(&mut entry, value("--entry")?, "--entry", json)?,
            "--proof" => set_once(&mut proof, value("--proof")?, "--proof", json)?,
            "--dir" => set_once(&mut dir, value("--dir")?, "--dir", json)?,
            other => return Err(usage(format!("unknown option {other}"))),
        }
    }
    if help {
        return Ok(Args {
            command: Command::Help,
            json,
        });
    }
    if version {
        return Ok(Args {
            command: Command::Version,
            json,
        });
    }
    let mut pos = positional.into_iter();
    let Some(sub) = pos.next() else {
        return Err(usage(
            "no command: expected log, proof or consistency".to_owned(),
        ));
    };
    let rest: Vec<PathBuf> = pos.map(PathBuf::from).collect();
    let sub = sub.to_string_lossy().into_owned();
    let no = |flag: &str, set: bool| -> Result<(), Usage> {
        if set {
            Err(usage(format!("{flag} does not apply to `{sub}`")))
        } else {
            Ok(())
        }
    };
    let need_keys = |keys: &[OsString]| -> Result<(), Usage> {
        if keys.is_empty() {
            Err(usage(format!(
                "`{sub}` needs at least one --key: a checkpoint is only as good as the keys it is checked against"
            )))
        } else {
            Ok(())
        }
    };
    let command = match sub.as_str() {
        "log" => {
            no("--entry", entry.is_some())?;
            no("--proof", proof.is_some())?;
            no("--dir", dir.is_some())?;
            need_keys(&keys)?;
            let [d] = exactly::<1>(rest, "log DIR", json)?;
            Command::Log { dir: d, keys }
        }
        "proof" => {
            no("--proof", proof.is_some())?;
            no("--dir", dir.is_some())?;
            need_keys(&keys)?;
            let [file] = exactly::<1>(rest, "proof FILE", json)?;
            Command::Proof { file, entry, keys }
        }
        "consistency" => {
            no("--entry", entry.is_some())?;
            need_keys(&keys)?;
            let [old, new] = exactly::<2>(rest, "consistency OLD_CHECKPOINT NEW_CHECKPOINT", json)?;
            let source = match (proof, dir) {
                (Some(p), None) => ProofSource::File(p),
                (None, Some(d)) => ProofSource::Dir(d),
                _ => {
                    return Err(usage(
                        "consistency needs exactly one of --proof FILE and --dir DIR".to_owned(),
                    ));
                }
            };
            Command::Consistency {
                old,
                new,
                source,
                keys,
            }
        }
        other => {
            return Err(usage(format!(
                "unknown command {other:?}: expected log, proof or consistency"
            )));
        }
    };
    Ok(Args { command, json })
}

fn set_once(slot: &mut Option<PathBuf>, v: OsString, name: &str, json: bool) -> Result<(), Usage> {
    if slot.is_some() {
        return Err(Usage {
            message: format!("{name} given twice"),
            json,
        });
    }
    *slot = Some(PathBuf::from(v));
    Ok(())
}

fn exactly<const N: usize>(
    rest: Vec<PathBuf>,
    form: &str,
    json: bool,
) -> Result<[PathBuf; N], Usage> {
    let n = rest.len();
    rest.try_into().map_err(|_| Usage {
        message: format!("expected `sov-verify {form}`: {n} argument(s) given"),
        json,
    })
}

/// The keys of the `--key` arguments: each a file of vkeys (one per line) if it names an
/// existing file, else one vkey.
pub fn load_keys(args: &[OsString]) -> Result<Vec<Vkey>, String> {
    let mut keys: Vec<Vkey> = Vec::new();
    for arg in args {
        let path = Path::new(arg);
        let loaded = if path.is_file() {
            let bytes = crate::dir::read_limited(path, 1 << 20)
                .map_err(|e| format!("--key {}: {e}", path.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| format!("--key {}: not UTF-8 text", path.display()))?;
            let keys = parse_vkeys(&text).map_err(|e| format!("--key {}: {e}", path.display()))?;
            if keys.is_empty() {
                return Err(format!("--key {}: no keys in the file", path.display()));
            }
            keys
        } else {
            let s = arg
                .to_str()
                .ok_or_else(|| format!("--key {}: not a file and not a vkey", path.display()))?;
            vec![
                Vkey::parse(s.trim())
                    .map_err(|e| format!("--key {s}: not an existing file, and not a vkey: {e}"))?,
            ]
        };
        for k in loaded {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn p(args: &[&str]) -> Result<Args, Usage> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn commands_parse() {
        let a = p(&["log", "d", "--key", "k1", "--key=k2", "--json"]).unwrap();
        assert!(a.json);
        assert_eq!(
            a.command,
            Command::Log {
                dir: "d".into(),
                keys: vec!["k1".into(), "k2".into()]
            }
        );
        let a = p(&["proof", "f", "--entry", "e", "--key", "k"]).unwrap();
        assert_eq!(
            a.command,
            Command::Proof {
                file: "f".into(),
                entry: Some("e".into()),
                keys: vec!["k".into()]
            }
        );
        let a = p(&["consistency", "a", "b", "--key", "k", "--dir", "d"]).unwrap();
        assert!(matches!(
            a.command,
            Command::Consistency {
                source: ProofSource::Dir(_),
                ..
            }
        ));
        assert_eq!(p(&["--help"]).unwrap().command, Command::Help);
        assert_eq!(p(&["log", "-h"]).unwrap().command, Command::Help);
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["frob"],
            &["log", "d"],
            &["log", "--key", "k"],
            &["log", "d", "e", "--key", "k"],
            &["log", "d", "--key"],
            &["log", "d", "--key", "k", "--bogus"],
            &["log", "d", "--key", "k", "--proof", "p"],
            &["proof", "f", "--key", "k", "--dir", "d"],
            &["consistency", "a", "b", "--key", "k"],
            &[
                "consistency",
                "a",
                "b",
                "--key",
                "k",
                "--dir",
                "d",
                "--proof",
                "p",
            ],
            &["proof", "f", "--key", "k", "--entry", "a", "--entry", "b"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(p(&["frob", "--json"]).unwrap_err().json);
    }
}
