//! The seal: the boundary Sovereign declares and keeps.
//!
//! Today this crate holds the **declaration** ([`declare`]): the `[seal]` section of `sov.toml`,
//! the one place a path out of the boundary can be opened (listen addresses, permitted outbound
//! destinations with their purpose, read-only filesystem roots, offline mode), and the edits
//! `sov seal open` / `sov seal close` make to it, which preserve the file's comments and layout.
//! Kernel confinement (network namespace, Landlock, seccomp), the egress gate and the seal
//! report are to come (issue 5); until then nothing here is enforced, and the threat model says
//! so.

pub mod declare;

pub use declare::{Declaration, Destination, SealError};
