//! The seal: the boundary Sovereign declares, enforces with the kernel, checks with live
//! probes and reports on.
//!
//! - [`declare`]: the `[seal]` section of `sov.toml`, the one place a path out of the boundary
//!   can be opened (listen addresses, permitted outbound destinations with their purpose,
//!   read-only filesystem roots, offline mode), and the edits `sov seal open` / `close` make.
//! - [`start`]: the seal at start, as a typestate, the only way to apply it: the plan from the
//!   declaration (checked before the port is taken), confined, probed, stored, attested.
//! - [`confine`]: the kernel layers `sov serve` applies at start, in order: a network namespace
//!   (when offline), Landlock, seccomp (its filters in `seccomp`).
//! - [`probe`]: what is tried right after, to back each claim with the kernel's answer.
//! - [`report`]: the seal report (`sov seal status`, `GET /v1/seal`, the attestation entry).
//!
//! The egress gate, the only code that opens outbound connections, is `sov-egress` (async, on
//! tokio): it checks each destination against the declaration and records every attempt.

pub mod confine;
pub mod declare;
pub mod launch;
pub mod private_file;
pub mod probe;
pub mod report;
mod seccomp;
pub mod start;

pub use confine::{Confinement, Layer, LayerStatus};
pub use declare::{Declaration, Destination, SealError};
pub use report::Report;
pub use start::{Attested, NotWhole, Plan, Refused, StartError};
