//! Sessions: a person signs in with an API token once and holds a session secret instead (the
//! console keeps it in an HttpOnly cookie, so the page never holds the token).
//!
//! A session is its token's, re-checked on every use: the node keeps only `SHA-256` of the
//! session secret (as it does for tokens) with the token's public id, never the token, and each
//! request through the session reads the token and its principal again ([`Directory::readmit`]),
//! so revoking the token, its expiry or disabling the principal ends the session at its next use.
//! The same policies decide its actions and its entries name the token and the session.
//!
//! A session ends when signed out, after [`SessionLimits::lifetime`] whatever its use, after
//! [`SessionLimits::idle`] without a request, or when the server stops (the table is in memory:
//! a restart signs everyone out, which is the safe direction). Each session has a CSRF token of
//! its own, which every state-changing request through the session must present beside the
//! cookie: `SHA-256("sov-csrf" 0x00 secret)` in base64url ([`csrf_of`]), so only a holder of the
//! session secret can make it, the node computes it from the presented cookie instead of
//! storing it, and it is compared in constant time ([`csrf_matches`]).
//!
//! The table is bounded: at most [`SessionLimits::per_principal`] sessions per principal (a new
//! one ends that principal's least recently used) and [`SessionLimits::max`] in all (a new one
//! ends the node's least recently used, after the stale ones are dropped).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::guard::{Caller, Credential};
use crate::store::{AuthError, Directory, StoreError};

/// What every session secret starts with (a secret scanner can tell it from a token).
pub const PREFIX: &str = "sovs_";

/// How long sessions live and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session ends this long after sign-in, however it is used.
    pub lifetime: Duration,
    /// A session ends after this long without a request.
    pub idle: Duration,
    /// Sessions one principal may hold at once.
    pub per_principal: usize,
    /// Sessions the node holds at once.
    pub max: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(12 * 3600),
            idle: Duration::from_secs(30 * 60),
            per_principal: 16,
            max: 65_536,
        }
    }
}

/// A session just opened: its secrets are given to the signing-in person once and zeroed when
/// dropped.
#[derive(Debug)]
pub struct Opened {
    /// The session secret (the cookie's value).
    pub secret: Zeroizing<String>,
    /// The CSRF token, to send with every state-changing request.
    pub csrf: Zeroizing<String>,
    /// What the record and the caller may see of it.
    pub info: SessionInfo,
}

/// A session as it may be shown (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's public id (16 hex characters), named by its entries.
    pub id: String,
    /// The token it was opened with (its public id).
    pub token: String,
    /// Signed in at (Unix ms).
    pub opened_ms: u64,
    /// Ends at (Unix ms) at the latest.
    pub expires_ms: u64,
    /// Ends after this long without a request.
    pub idle: Duration,
}

/// Why a presented session does not admit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a session secret.
    #[error("malformed session")]
    Malformed,
    /// No such session: never opened, signed out, ended, or opened before the server started.
    #[error("no such session: sign in again")]
    Unknown,
    /// Its lifetime is over.
    #[error("the session has expired: sign in again")]
    Expired {
        /// The session's id.
        id: String,
    },
    /// Unused for too long.
    #[error("the session ended after being idle: sign in again")]
    Idle {
        /// The session's id.
        id: String,
    },
    /// Its token no longer admits (revoked, expired, its principal disabled or gone).
    #[error("the session ended: {cause}")]
    Ended {
        /// The session's id.
        id: String,
        /// Why its token no longer admits.
        cause: AuthError,
    },
}

impl SessionError {
    /// A short, stable word for the audit entry.
    pub fn code(&self) -> &'static str {
        match self {
            SessionError::Malformed => "malformed",
            SessionError::Unknown => "unknown",
            SessionError::Expired { .. } => "expired",
            SessionError::Idle { .. } => "idle",
            SessionError::Ended { cause, .. } => match cause {
                AuthError::Revoked { .. } => "token-revoked",
                AuthError::Expired { .. } => "token-expired",
                AuthError::Disabled { .. } => "principal-disabled",
                _ => "token-unknown",
            },
        }
    }

    /// The session's id, when the presented secret named one.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            SessionError::Malformed | SessionError::Unknown => None,
            SessionError::Expired { id } | SessionError::Idle { id } => Some(id),
            SessionError::Ended { id, .. } => Some(id),
        }
    }
}

#[derive(Debug)]
struct Held {
    info: SessionInfo,
    principal: String,
    secret: [u8; 32],
    opened: Instant,
    last: Instant,
}

/// The node's sessions (see the module docs).
#[derive(Debug)]
pub(crate) struct Sessions {
    limits: SessionLimits,
    /// By session id, which is the first 8 bytes (hex) of the secret's SHA-256.
    table: Mutex<HashMap<String, Held>>,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// A session's public id: the first 8 bytes of its secret's SHA-256, in hex.
fn id_of(hash: &[u8; 32]) -> String {
    hex::encode(&hash[..8])
}

/// The CSRF token of session `secret` (see the module docs).
pub fn csrf_of(secret: &str) -> Zeroizing<String> {
    let mut h = Sha256::new();
    h.update(b"sov-csrf\0");
    h.update(secret.as_bytes());
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize()))
}

/// Whether `presented` is session `secret`'s CSRF token, compared in constant time.
pub fn csrf_matches(secret: &str, presented: &str) -> bool {
    bool::from(csrf_of(secret).as_bytes().ct_eq(presented.as_bytes()))
}

/// `prefix` + 43 base64url characters of 32 random bytes.
fn random_secret(prefix: &str) -> Result<Zeroizing<String>, StoreError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).map_err(|e| StoreError::Random(e.to_string()))?;
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref());
    Ok(Zeroizing::new(format!("{prefix}{body}")))
}

/// Whether `s` has a session secret's shape (checked before it is hashed and looked up).
fn well_formed(s: &str) -> bool {
    s.strip_prefix(PREFIX).is_some_and(|body| {
        body.len() == 43
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

impl Sessions {
    pub(crate) fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            table: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn limits(&self) -> SessionLimits {
        self.limits
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // A poisoned lock: a panic while holding it; the map itself is whole.
        match self.table.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Opens a session for `caller` (just authenticated with a token) at `now`/`now_ms`.
    pub(crate) fn open(
        &self,
        caller: Caller,
        now: Instant,
        now_ms: u64,
    ) -> Result<(Caller, Opened), StoreError> {
        let Credential::Token(token) = caller.credential().clone() else {
            return Err(StoreError::NotATokenCaller);
        };
        let mut table = self.table();
        table.retain(|_, h| self.live(h, now));
        // A new id is drawn until it is free (two in 2^64 alike: never, but not assumed).
        let (secret, id) = loop {
            let secret = random_secret(PREFIX)?;
            let id = id_of(&digest(&secret));
            if !table.contains_key(&id) {
                break (secret, id);
            }
        };
        let csrf = csrf_of(&secret);
        let lifetime_ms = u64::try_from(self.limits.lifetime.as_millis()).unwrap_or(u64::MAX);
        let info = SessionInfo {
            id: id.clone(),
            token: token.clone(),
            opened_ms: now_ms,
            expires_ms: now_ms.saturating_add(lifetime_ms),
            idle: self.limits.idle,
        };
        let held = Held {
            info: info.clone(),
            principal: caller.name().to_owned(),
            secret: digest(&secret),
            opened: now,
            last: now,
        };
        let own = table
            .values()
            .filter(|h| h.principal == held.principal)
            .count();
        if own >= self.limits.per_principal {
            evict_least_recent(&mut table, Some(&held.principal));
        }
        if table.len() >= self.limits.max {
            evict_least_recent(&mut table, None);
        }
        table.insert(id.clone(), held);
        drop(table);
        let caller = caller.with_credential(Credential::Session { token, session: id });
        Ok((caller, Opened { secret, csrf, info }))
    }

    fn live(&self, held: &Held, now: Instant) -> bool {
        now.duration_since(held.opened) < self.limits.lifetime
            && now.duration_since(held.last) < self.limits.idle
    }

    /// The caller of a request presenting session `secret` at `now`/`now_ms`: its token is
    /// read again from `directory`. A session that no longer admits is ended.
    pub(crate) fn resume(
        &self,
        directory: &Directory,
        secret: &str,
        now: Instant,
        now_ms: u64,
    ) -> Result<Result<Caller, SessionError>, StoreError> {
        if !well_formed(secret) {
            return Ok(Err(SessionError::Malformed));
        }
        let hash = digest(secret);
        let key = id_of(&hash);
        let (info, principal) = {
            let mut table = self.table();
            let Some(held) = table
                .get_mut(&key)
                .filter(|h| bool::from(h.secret.ct_eq(&hash)))
            else {
                return Ok(Err(SessionError::Unknown));
            };
            let id = held.info.id.clone();
            if now.duration_since(held.opened) >= self.limits.lifetime {
                table.remove(&key);
                return Ok(Err(SessionError::Expired { id }));
            }
            if now.duration_since(held.last) >= self.limits.idle {
                table.remove(&key);
                return Ok(Err(SessionError::Idle { id }));
            }
            held.last = now;
            (held.info.clone(), held.principal.clone())
        };
        match directory.readmit(&info.token, now_ms)? {
            Ok((p, scope)) if p.name == principal => Ok(Ok(Caller::new(
                p,
                Credential::Session {
                    token: info.token,
                    session: info.id,
                },
                scope,
            ))),
            other => {
                self.table().remove(&key);
                let cause = match other {
                    Err(cause) => cause,
                    Ok(_) => AuthError::Unknown { id: info.token },
                };
                Ok(Err(SessionError::Ended { id: info.id, cause }))
            }
        }
    }

    /// The session `caller` acts through, as it may be shown.
    pub(crate) fn info(&self, caller: &Caller) -> Option<SessionInfo> {
        let id = caller.session_id()?;
        self.table().get(id).map(|h| h.info.clone())
    }

    /// Ends `caller`'s session; whether it was open.
    pub(crate) fn close(&self, caller: &Caller) -> bool {
        let Some(id) = caller.session_id() else {
            return false;
        };
        self.table().remove(id).is_some()
    }
}

/// Ends the least recently used session (of `principal`, or of anyone).
fn evict_least_recent(table: &mut HashMap<String, Held>, principal: Option<&str>) {
    let oldest = table
        .iter()
        .filter(|(_, h)| principal.is_none_or(|p| h.principal == p))
        .min_by_key(|(_, h)| h.last)
        .map(|(k, _)| k.clone());
    if let Some(k) = oldest {
        table.remove(&k);
    }
}
