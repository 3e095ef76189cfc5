//! Identity and permission: principals, API tokens and Cedar authorisation.
//!
//! - [`store::Directory`]: principals (people and services, with roles and attributes) and API
//!   tokens in SQLite; tokens stored as hashes and checked in constant time ([`token`]); every
//!   change queued with its audit entry in one transaction (the outbox).
//! - [`policy::Policies`]: the Cedar policy set from `policies/*.cedar`, validated against
//!   [`policy::SCHEMA`] at load; decisions name the policies that made them; default deny.
//! - [`guard::Guard`]: authentication (a [`Caller`] comes only from it) and decisions whose
//!   allowed form is a [`Permit`], the proof token every authorised kernel action takes.
//! - [`limit::RateLimiter`]: per-key token buckets for request rates and failed logins.
//!
//! Recording each decision is the kernel's step (`sov-kernel`); 401/403/429 are the HTTP door's
//! (`sov-server`).

pub mod guard;
pub mod limit;
pub mod policy;
pub mod principal;
pub mod session;
pub mod store;
pub mod token;

pub use guard::{Caller, Credential, Guard, Permit, Verdict};
pub use limit::{Rate, RateLimiter};
pub use policy::{
    Action, Basis, Decision, Policies, PolicyError, PolicyFile, PolicySource, Resource,
};
pub use principal::{Principal, PrincipalKind};
pub use session::{Opened, SessionError, SessionInfo, SessionLimits};
pub use store::{AuthError, Batch, Directory, NewPrincipal, StoreError, TokenInfo};
