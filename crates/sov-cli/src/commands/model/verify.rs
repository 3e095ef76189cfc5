//! `sov model verify [NAME]`: check signatures and every byte; non-zero exit on any failure.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use sov_keys::OwnerPublicKeys;

use super::{human_size, open_store};
use crate::home::Home;

pub fn run(home: &Home, name: Option<&str>) -> Result<ExitCode> {
    let store = open_store(home)?;
    let owner = OwnerPublicKeys::load(&home.keys_dir())
        .context("failed to load the owner's public keys")?;
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_owned()],
        None => store
            .list()
            .context("failed to list the model store")?
            .into_iter()
            .map(|m| m.name)
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    let mut failed = 0usize;
    for name in &names {
        let started = Instant::now();
        match store.verify(name, &owner) {
            Ok(v) => writeln!(
                out,
                "ok      {name}  ({} checked in {:.2} s)",
                human_size(v.manifest().size),
                started.elapsed().as_secs_f64()
            )?,
            Err(err) => {
                failed += 1;
                writeln!(out, "FAILED  {name}: {:#}", anyhow::Error::from(err))?;
            }
        }
    }
    if names.is_empty() {
        writeln!(out, "The model store is empty; nothing to verify.")?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
