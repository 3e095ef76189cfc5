//! `sov model ...`: the owned model store.

pub mod import;
pub mod list;
pub mod rm;
pub mod show;
pub mod verify;

use anyhow::{Context, Result};
use sov_models::ModelStore;

use crate::home::Home;

pub(crate) fn open_store(home: &Home) -> Result<ModelStore> {
    home.require_initialised()?;
    ModelStore::open(&home.models_dir()).context("failed to open the model store")
}

/// Bytes in a human unit (binary prefixes).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS.get(unit).copied().unwrap_or("B"))
    }
}

/// A parameter count the way model cards write it (135M, 7.2B).
pub(crate) fn human_count(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.0}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.0}K", n / 1e3)
    } else {
        format!("{n}")
    }
}
