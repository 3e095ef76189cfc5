//! `sov`: the command line of Sovereign.
//!
//! A thin layer: it parses arguments ([`cli`]), finds the home and its configuration ([`home`]),
//! and calls the library crates. Each command lives in `commands/<noun>/<verb>.rs`, or, for
//! nouns whose verbs are short, in one `commands/<noun>.rs`.

mod cli;
mod commands;
pub mod home;
mod identity;
mod record;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Runs `sov` with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    // The seal's launcher (`sov __sandbox SPEC`, started by the server for a tool server): it
    // must run while the process has one thread, before anything else.
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == sov_seal::launch::SUBCOMMAND)
    {
        return launch(args.next());
    }
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`sov model list | head`) is not a failure.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the seal's launcher: it returns only when the program could not be started.
fn launch(spec: Option<std::ffi::OsString>) -> ExitCode {
    let err = match spec.as_deref().and_then(|s| s.to_str()) {
        None => sov_seal::launch::LaunchError("the sandbox's description is missing".into()),
        Some(spec) => match sov_seal::launch::Sandbox::from_arg(spec) {
            Ok(sandbox) => sandbox.exec(),
            Err(e) => e,
        },
    };
    let _ = writeln!(std::io::stderr(), "sov sandbox: {err}");
    ExitCode::from(126)
}

fn init_logging(verbose: u8) {
    // llama.cpp's own logs arrive as debug events from the `llama-cpp-2` target: hidden unless -vv.
    let default = match verbose {
        // llama.cpp's own warnings (e.g. about pooling defaults) are for -v, not for every start.
        0 => "warn,llama-cpp-2=error",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SOV_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
