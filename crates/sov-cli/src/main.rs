//! The `sov` binary: parse arguments, run, print the error chain. Everything else is in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    sov_cli::main()
}
