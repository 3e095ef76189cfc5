//! The directory: principals and API tokens in SQLite (`state/identity.db` in the home).
//!
//! Every change is one transaction that also writes its audit entry into an outbox table, so a
//! change and its record are never separated: whoever holds the audit log (the running server,
//! or the command itself when no server runs) moves outbox rows into the log with
//! [`Directory::drain_outbox`], and deletes each row only once its entry is durable. A crash
//! between the two can append an entry twice (each carries its outbox number, so a duplicate is
//! recognisable); it can never lose one.
//!
//! Tokens are stored as `SHA-256` of the whole token, looked up by their public id and compared
//! in constant time ([`crate::token`]). The database is opened in WAL mode so the server reads
//! while a command writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use sov_audit_core::entry::{Kind, Outcome, clean_text};
use sov_audit_core::record::{Draft, Record};

use crate::guard::{Caller, Credential};
use crate::policy::Action;
use crate::principal::{
    InvalidName, Principal, PrincipalKind, check_attr, check_principal_name, check_role,
};
use crate::token::{Malformed, NewToken, Presented};

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("the identity database {} failed: {source}", path.display())]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A name, role or attribute breaks the rules.
    #[error(transparent)]
    Invalid(#[from] InvalidName),
    /// No principal of that name.
    #[error("no principal named `{0}`")]
    NoPrincipal(String),
    /// A principal of that name exists.
    #[error("a principal named `{0}` already exists")]
    Exists(String),
    /// No token with that id.
    #[error("no token with id `{0}`")]
    NoToken(String),
    /// The principal is disabled (no new tokens for it).
    #[error("principal `{0}` is disabled")]
    Disabled(String),
    /// The expiry is not in the future.
    #[error("the expiry must be in the future")]
    Expiry,
    /// The system has no randomness for a token.
    #[error("no randomness for a new token: {0}")]
    Random(String),
    /// A session was asked for by a caller who did not present a token.
    #[error("only a caller with an API token can open a session")]
    NotATokenCaller,
    /// Appending an outbox entry to the audit log failed.
    #[error("failed to write the audit record: {0}")]
    Audit(String),
    /// A stored row does not read back (the database was edited by hand).
    #[error("the identity database holds an unreadable {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("no API token: send `Authorization: Bearer sov_...`")]
    Missing,
    /// Not a Sovereign token.
    #[error("malformed API token: {0}")]
    Malformed(Malformed),
    /// No such token (or its secret does not match).
    #[error("unknown API token")]
    Unknown { id: String },
    /// Expired.
    #[error("the API token has expired")]
    Expired { id: String },
    /// Revoked.
    #[error("the API token has been revoked")]
    Revoked { id: String },
    /// Its principal is disabled.
    #[error("the API token's principal is disabled")]
    Disabled { id: String },
}

impl AuthError {
    /// A short, stable word for the audit entry.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::Unknown { .. } => "unknown",
            AuthError::Expired { .. } => "expired",
            AuthError::Revoked { .. } => "revoked",
            AuthError::Disabled { .. } => "disabled",
        }
    }

    /// The presented token's public id, when it had one.
    pub fn token_id(&self) -> Option<&str> {
        match self {
            AuthError::Missing | AuthError::Malformed(_) => None,
            AuthError::Unknown { id }
            | AuthError::Expired { id }
            | AuthError::Revoked { id }
            | AuthError::Disabled { id } => Some(id),
        }
    }
}

/// A token as listings show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// The public id (the 12 characters after `sov_`).
    pub id: String,
    /// Whose.
    pub principal: String,
    /// Limited to these actions; `None`: all.
    pub scope: Option<Vec<String>>,
    /// Issued (Unix ms).
    pub created_ms: u64,
    /// Expires (Unix ms); `None`: never.
    pub expires_ms: Option<u64>,
    /// Revoked (Unix ms).
    pub revoked_ms: Option<u64>,
}

impl TokenInfo {
    /// `active`, `expired` or `revoked` at `now_ms`.
    pub fn state(&self, now_ms: u64) -> &'static str {
        if self.revoked_ms.is_some() {
            "revoked"
        } else if self.expires_ms.is_some_and(|e| e <= now_ms) {
            "expired"
        } else {
            "active"
        }
    }

    /// The token as the admin API and `sov token list --json` show it (never the secret).
    pub fn to_json(&self, now_ms: u64) -> serde_json::Value {
        use sov_audit_core::entry::rfc3339_ms;
        serde_json::json!({
            "object": "token",
            "id": self.id,
            "principal": self.principal,
            "scope": self.scope,
            "created_at": rfc3339_ms(self.created_ms),
            "expires_at": self.expires_ms.map(rfc3339_ms),
            "revoked_at": self.revoked_ms.map(rfc3339_ms),
            "state": self.state(now_ms),
        })
    }
}

/// A new principal's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrincipal {
    pub name: String,
    pub kind: PrincipalKind,
    pub roles: BTreeSet<String>,
    pub attrs: BTreeMap<String, String>,
}

/// An audit entry waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Its number in the outbox.
    pub seq: i64,
    /// The entry to append (with the attribute `outbox` = `seq`).
    pub draft: Draft,
}

/// The principals and tokens of one node.
#[derive(Debug)]
pub struct Directory {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// One drain at a time, so no outbox row is appended twice by two drains.
    drain: Mutex<()>,
}

const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS principals (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('person', 'service')),
    roles       TEXT NOT NULL,
    attrs       TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    disabled_ms INTEGER
) STRICT;
CREATE TABLE IF NOT EXISTS tokens (
    id          TEXT PRIMARY KEY,
    principal   TEXT NOT NULL REFERENCES principals(name),
    hash        BLOB NOT NULL CHECK (length(hash) = 32),
    scope       TEXT,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER,
    revoked_ms  INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS tokens_principal ON tokens(principal);
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        INTEGER NOT NULL,
    principal   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    outcome     INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    attrs       TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
) STRICT;
";

/// The `meta` key of the hash of the policy set last in force.
const POLICY_HASH: &str = "policy_hash";

/// A token and its principal, by the token's id: what every authenticated request reads.
const ADMIT_SQL: &str = "SELECT t.hash, t.scope, t.expires_ms, t.revoked_ms,
        p.name, p.kind, p.roles, p.attrs, p.created_ms, p.disabled_ms
    FROM tokens t JOIN principals p ON p.name = t.principal WHERE t.id = ?1";
/// One principal by name.
const PRINCIPAL_SQL: &str =
    "SELECT name, kind, roles, attrs, created_ms, disabled_ms FROM principals WHERE name = ?1";
/// One token's listing, by id.
const TOKEN_SQL: &str =
    "SELECT id, principal, scope, created_ms, expires_ms, revoked_ms FROM tokens WHERE id = ?1";
/// One principal's tokens, newest first.
const TOKENS_OF_SQL: &str = "SELECT id, principal, scope, created_ms, expires_ms, revoked_ms
    FROM tokens WHERE principal = ?1 ORDER BY created_ms DESC, id";
/// Every token, newest first.
const TOKENS_ALL_SQL: &str = "SELECT id, principal, scope, created_ms, expires_ms, revoked_ms
    FROM tokens ORDER BY created_ms DESC, id";

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Starts a write transaction. IMMEDIATE takes the write lock at once, waiting up to the busy
/// timeout; a deferred one that reads first and writes later fails at once with "database is
/// locked" when another connection (the server draining the outbox while `sov token issue` runs)
/// wrote in between, because SQLite cannot upgrade a stale read snapshot to a write.
fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

fn to_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn to_u64(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

/// Whom a token admits: its principal as they are now, and its scope (`None`: every action).
pub(crate) type Admitted = (Principal, Option<BTreeSet<Action>>);

impl Directory {
    /// Opens (creating on first use, mode 0600) the directory at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = |source| StoreError::Db {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| db(rusqlite::Error::InvalidPath(PathBuf::from(e.to_string()))))?;
        }
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| db(rusqlite::Error::InvalidPath(PathBuf::from(e.to_string()))))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        // Temporary tables and sort spills stay in memory: under the seal the server may not
        // create files outside its home (SQLite would otherwise use /var/tmp or /tmp).
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(db)?;
        conn.execute_batch(SCHEMA_SQL).map_err(db)?;
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            drain: Mutex::new(()),
        })
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A poisoned lock means a panic while holding it; the connection itself is still
        // consistent (SQLite rolls back an unfinished transaction), so carry on with it.
        let mut conn = match self.conn.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut conn)
    }

    /// Adds a principal; `actor` is recorded as who did it.
    pub fn add_principal(&self, new: &NewPrincipal, actor: &str) -> Result<Principal, StoreError> {
        self.batch(actor, |b| b.add_principal(new))
    }

    /// Makes the changes `f` asks of its [`Batch`] in one transaction, each with its own audit
    /// entry: all of them or, if `f` or any change fails, none. One commit (one write to disk)
    /// for the lot, so importing many principals and tokens costs one `fsync`, not two per
    /// principal, and a failed import leaves nothing half done. `actor` is recorded as who made
    /// every change. Other writers wait while a batch runs (SQLite has one writer at a time), so
    /// keep batches to what belongs together.
    pub fn batch<T>(
        &self,
        actor: &str,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(|conn| {
            let tx = write_tx(conn).map_err(|e| self.db(e))?;
            let mut batch = Batch {
                dir: self,
                conn: &tx,
                actor,
            };
            // An error drops `tx` uncommitted, which rolls every change of the batch back.
            let out = f(&mut batch)?;
            tx.commit().map_err(|e| self.db(e))?;
            Ok(out)
        })
    }

    /// Every principal, by name.
    pub fn principals(&self) -> Result<Vec<Principal>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, kind, roles, attrs, created_ms, disabled_ms FROM principals ORDER BY name",
                )
                .map_err(|e| self.db(e))?;
            let rows = stmt
                .query_map([], raw_principal)
                .map_err(|e| self.db(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.db(e))?;
            rows.into_iter().map(RawPrincipal::parse).collect()
        })
    }

    /// One principal.
    pub fn principal(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(PRINCIPAL_SQL).map_err(|e| self.db(e))?;
            let raw = stmt
                .query_row([name], raw_principal)
                .optional()
                .map_err(|e| self.db(e))?;
            raw.map(RawPrincipal::parse).transpose()
        })
    }

    /// Disables a principal: every token of it is refused from now on.
    pub fn disable_principal(&self, name: &str, actor: &str) -> Result<Principal, StoreError> {
        let now = now_ms();
        self.with(|conn| {
            let tx = write_tx(conn).map_err(|e| self.db(e))?;
            let changed = tx
                .execute(
                    "UPDATE principals SET disabled_ms = ?2 WHERE name = ?1 AND disabled_ms IS NULL",
                    params![name, to_i64(now)],
                )
                .map_err(|e| self.db(e))?;
            let exists: bool = tx
                .query_row("SELECT 1 FROM principals WHERE name = ?1", [name], |_| Ok(true))
                .optional()
                .map_err(|e| self.db(e))?
                .unwrap_or(false);
            if !exists {
                return Err(StoreError::NoPrincipal(name.to_owned()));
            }
            if changed == 1 {
                outbox(&tx, actor, name, Outcome::Ok, "", vec![("change", "principal.disable".into())])
                    .map_err(|e| self.db(e))?;
            }
            tx.commit().map_err(|e| self.db(e))?;
            Ok(())
        })?;
        self.principal(name)?
            .ok_or_else(|| StoreError::NoPrincipal(name.to_owned()))
    }

    /// Issues a token for `principal`. The secret is in the returned [`NewToken`] only.
    pub fn issue_token(
        &self,
        principal: &str,
        expires_ms: Option<u64>,
        scope: Option<&BTreeSet<Action>>,
        actor: &str,
    ) -> Result<(NewToken, TokenInfo), StoreError> {
        self.batch(actor, |b| b.issue_token(principal, expires_ms, scope))
    }

    /// Tokens, of one principal or of all, newest first.
    pub fn tokens(&self, principal: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        self.select_tokens(principal, None)
    }

    /// Tokens matching a principal and/or an id (`None`: any).
    fn select_tokens(
        &self,
        principal: Option<&str>,
        id: Option<&str>,
    ) -> Result<Vec<TokenInfo>, StoreError> {
        self.with(|conn| {
            // One statement per filter, each using its index. A single statement with
            // `(?1 IS NULL OR principal = ?1) AND (?2 IS NULL OR id = ?2)` scanned every token
            // (the plan is made before the values are known), so `token(id)` cost O(tokens).
            let (sql, key) = match (id, principal) {
                (Some(id), _) => (TOKEN_SQL, Some(id)),
                (None, Some(p)) => (TOKENS_OF_SQL, Some(p)),
                (None, None) => (TOKENS_ALL_SQL, None),
            };
            let mut stmt = conn.prepare_cached(sql).map_err(|e| self.db(e))?;
            let read = |r: &rusqlite::Row<'_>| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            };
            let rows = match key {
                Some(k) => stmt.query_map([k], read),
                None => stmt.query_map([], read),
            }
            .map_err(|e| self.db(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e))?;
            rows.into_iter()
                .map(|(id, principal, scope, created, expires, revoked)| {
                    let scope = match scope {
                        Some(s) => Some(serde_json::from_str::<Vec<String>>(&s).map_err(|e| {
                            StoreError::Corrupt {
                                what: "token scope",
                                detail: e.to_string(),
                            }
                        })?),
                        None => None,
                    };
                    Ok(TokenInfo {
                        id,
                        principal,
                        scope,
                        created_ms: to_u64(created),
                        expires_ms: expires.map(to_u64),
                        revoked_ms: revoked.map(to_u64),
                    })
                })
                .collect()
        })
    }

    /// One token's listing.
    pub fn token(&self, id: &str) -> Result<Option<TokenInfo>, StoreError> {
        Ok(self.select_tokens(None, Some(id))?.into_iter().next())
    }

    /// Revokes a token (idempotent: revoking a revoked token changes nothing).
    pub fn revoke_token(&self, id: &str, actor: &str) -> Result<TokenInfo, StoreError> {
        let now = now_ms();
        self.with(|conn| {
            let tx = write_tx(conn).map_err(|e| self.db(e))?;
            let principal: Option<String> = tx
                .query_row("SELECT principal FROM tokens WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.db(e))?;
            let Some(principal) = principal else {
                return Err(StoreError::NoToken(id.to_owned()));
            };
            let changed = tx
                .execute(
                    "UPDATE tokens SET revoked_ms = ?2 WHERE id = ?1 AND revoked_ms IS NULL",
                    params![id, to_i64(now)],
                )
                .map_err(|e| self.db(e))?;
            if changed == 1 {
                outbox(
                    &tx,
                    actor,
                    &principal,
                    Outcome::Ok,
                    "",
                    vec![("change", "token.revoke".into()), ("token", id.to_owned())],
                )
                .map_err(|e| self.db(e))?;
            }
            tx.commit().map_err(|e| self.db(e))?;
            Ok(())
        })?;
        self.token(id)?
            .ok_or_else(|| StoreError::NoToken(id.to_owned()))
    }

    /// Authenticates a bearer token at `now_ms`. Store failures are errors of their own (the
    /// caller answers 500/503, not 401).
    pub fn authenticate(
        &self,
        token: Option<&str>,
        now_ms: u64,
    ) -> Result<Result<Caller, AuthError>, StoreError> {
        let Some(token) = token else {
            return Ok(Err(AuthError::Missing));
        };
        let presented = match Presented::parse(token) {
            Ok(p) => p,
            Err(e) => return Ok(Err(AuthError::Malformed(e))),
        };
        self.admit(presented.id(), now_ms, |hash| presented.matches(hash))
            .map(|r| {
                r.map(|(principal, scope)| {
                    Caller::new(
                        principal,
                        Credential::Token(presented.id().to_owned()),
                        scope,
                    )
                })
            })
    }

    /// Checks token `id` again for a session opened with it (whose own secret stands for the
    /// token's): the principal and scope as they are now, or why the token no longer admits
    /// (revoked, expired, its principal disabled, or gone).
    pub(crate) fn readmit(
        &self,
        id: &str,
        now_ms: u64,
    ) -> Result<Result<Admitted, AuthError>, StoreError> {
        self.admit(id, now_ms, |_| true)
    }

    /// Token `id`'s principal and scope at `now_ms`, if `secret_matches` accepts its stored hash.
    fn admit(
        &self,
        id: &str,
        now_ms: u64,
        secret_matches: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Result<Admitted, AuthError>, StoreError> {
        let id = id.to_owned();
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(ADMIT_SQL).map_err(|e| self.db(e))?;
            let row = stmt
                .query_row([&id], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                        RawPrincipal {
                            name: r.get(4)?,
                            kind: r.get(5)?,
                            roles: r.get(6)?,
                            attrs: r.get(7)?,
                            created_ms: r.get(8)?,
                            disabled_ms: r.get(9)?,
                        },
                    ))
                })
                .optional()
                .map_err(|e| self.db(e))?;
            let Some((hash, scope, expires, revoked, raw)) = row else {
                return Ok(Err(AuthError::Unknown { id }));
            };
            // The secret is checked first, so the other answers are given only to a holder of
            // the token: a guesser learns nothing about which ids exist or their state.
            if !secret_matches(&hash) {
                return Ok(Err(AuthError::Unknown { id }));
            }
            if revoked.is_some() {
                return Ok(Err(AuthError::Revoked { id }));
            }
            if expires.is_some_and(|e| to_u64(e) <= now_ms) {
                return Ok(Err(AuthError::Expired { id }));
            }
            let principal = raw.parse()?;
            if principal.disabled_ms.is_some() {
                return Ok(Err(AuthError::Disabled { id }));
            }
            let scope = match scope {
                None => None,
                Some(s) => {
                    let names: Vec<String> =
                        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
                            what: "token scope",
                            detail: e.to_string(),
                        })?;
                    let mut set = BTreeSet::new();
                    for n in names {
                        set.insert(n.parse::<Action>().map_err(|e| StoreError::Corrupt {
                            what: "token scope",
                            detail: e.to_string(),
                        })?);
                    }
                    Some(set)
                }
            };
            Ok(Ok((principal, scope)))
        })
    }

    /// Queues an audit entry with no directory change (e.g. a policy load seen by a command).
    pub fn record(
        &self,
        kind: Kind,
        actor: &str,
        resource: &str,
        reason: &str,
        attrs: Vec<(&str, String)>,
    ) -> Result<(), StoreError> {
        self.with(|conn| {
            outbox_kind(conn, kind, actor, resource, Outcome::Ok, reason, attrs)
                .map_err(|e| self.db(e))?;
            Ok(())
        })
    }

    /// The audit entries waiting in the outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, kind, principal, resource, outcome, reason, attrs FROM outbox ORDER BY seq",
                )
                .map_err(|e| self.db(e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                })
                .map_err(|e| self.db(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.db(e))?;
            rows.into_iter()
                .map(|(seq, kind, principal, resource, outcome, reason, attrs)| {
                    let corrupt = |detail: String| StoreError::Corrupt {
                        what: "outbox entry",
                        detail,
                    };
                    let kind = u16::try_from(kind)
                        .ok()
                        .and_then(Kind::from_code)
                        .ok_or_else(|| corrupt(format!("kind {kind}")))?;
                    let outcome = u8::try_from(outcome)
                        .map(Outcome::from_code)
                        .map_err(|_| corrupt(format!("outcome {outcome}")))?;
                    let mut attrs: Vec<(String, String)> =
                        serde_json::from_str(&attrs).map_err(|e| corrupt(e.to_string()))?;
                    attrs.push(("outbox".into(), seq.to_string()));
                    attrs.sort();
                    Ok(OutboxItem {
                        seq,
                        draft: Draft {
                            kind,
                            principal,
                            resource,
                            outcome,
                            reason,
                            model: None,
                            input: None,
                            output: None,
                            attrs,
                        },
                    })
                })
                .collect()
        })
    }

    /// Appends every outbox entry to `log`, deleting each once it is durable. Returns how many
    /// were moved.
    pub fn drain_outbox(&self, log: &dyn Record) -> Result<usize, StoreError> {
        let _one = match self.drain.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let items = self.outbox()?;
        for item in &items {
            log.append(item.draft.clone())
                .map_err(|e| StoreError::Audit(e.to_string()))?;
            self.with(|conn| {
                conn.execute("DELETE FROM outbox WHERE seq = ?1", [item.seq])
                    .map_err(|e| self.db(e))?;
                Ok(())
            })?;
        }
        Ok(items.len())
    }

    /// Notes that the policy set `hash` (a hex SHA-256, of `files`) is in force, as `change`
    /// (`policy.load` at a start, `policy.reload` at run time) by `actor`. If it differs from
    /// the set last noted, a `policy.change` entry with the old and new hashes is queued, in the
    /// same transaction that keeps the new hash. Returns the previous hash (`None` the first
    /// time), or `Some(hash)` itself when nothing changed.
    pub fn policy_loaded(
        &self,
        hash: &str,
        files: &[String],
        change: &str,
        actor: &str,
    ) -> Result<Option<String>, StoreError> {
        self.with(|conn| {
            let tx = write_tx(conn).map_err(|e| self.db(e))?;
            let old: Option<String> = tx
                .query_row("SELECT value FROM meta WHERE key = ?1", [POLICY_HASH], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| self.db(e))?;
            if old.as_deref() != Some(hash) {
                let mut attrs = vec![
                    ("change", change.to_owned()),
                    ("new", hash.to_owned()),
                    ("files", files.join(",")),
                ];
                if let Some(o) = &old {
                    attrs.push(("old", o.clone()));
                }
                outbox_kind(
                    &tx,
                    Kind::PolicyChange,
                    actor,
                    "policies",
                    Outcome::Ok,
                    "",
                    attrs,
                )
                .map_err(|e| self.db(e))?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![POLICY_HASH, hash],
                )
                .map_err(|e| self.db(e))?;
            }
            tx.commit().map_err(|e| self.db(e))?;
            Ok(old)
        })
    }
}

/// Changes made together in one transaction ([`Directory::batch`]).
pub struct Batch<'a> {
    dir: &'a Directory,
    conn: &'a Connection,
    actor: &'a str,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("path", &self.dir.path)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Batch<'_> {
    fn db(&self, source: rusqlite::Error) -> StoreError {
        self.dir.db(source)
    }

    /// Adds a principal (see [`Directory::add_principal`]).
    pub fn add_principal(&mut self, new: &NewPrincipal) -> Result<Principal, StoreError> {
        check_principal_name(&new.name)?;
        for role in &new.roles {
            check_role(role)?;
        }
        for (k, v) in &new.attrs {
            check_attr(k, v)?;
        }
        let principal = Principal {
            name: new.name.clone(),
            kind: new.kind,
            roles: new.roles.clone(),
            attrs: new.attrs.clone(),
            created_ms: now_ms(),
            disabled_ms: None,
        };
        let roles = json(&principal.roles);
        let attrs = json(&principal.attrs);
        let tx = self.conn;
        let exists: bool = tx
            .prepare_cached("SELECT 1 FROM principals WHERE name = ?1")
            .and_then(|mut st| st.query_row([&principal.name], |_| Ok(true)).optional())
            .map_err(|e| self.db(e))?
            .unwrap_or(false);
        if exists {
            return Err(StoreError::Exists(principal.name.clone()));
        }
        tx.prepare_cached(
            "INSERT INTO principals (name, kind, roles, attrs, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut st| {
            st.execute(params![
                principal.name,
                principal.kind.name(),
                roles,
                attrs,
                to_i64(principal.created_ms)
            ])
        })
        .map_err(|e| self.db(e))?;
        let mut a = vec![
            ("change", "principal.add".to_owned()),
            ("kind", principal.kind.name().to_owned()),
            (
                "roles",
                principal
                    .roles
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ];
        for (k, v) in &principal.attrs {
            a.push(("attr", format!("{k}={v}")));
        }
        outbox(tx, self.actor, &principal.name, Outcome::Ok, "", a).map_err(|e| self.db(e))?;
        Ok(principal)
    }

    /// Issues a token (see [`Directory::issue_token`]).
    pub fn issue_token(
        &mut self,
        principal: &str,
        expires_ms: Option<u64>,
        scope: Option<&BTreeSet<Action>>,
    ) -> Result<(NewToken, TokenInfo), StoreError> {
        let now = now_ms();
        if expires_ms.is_some_and(|e| e <= now) {
            return Err(StoreError::Expiry);
        }
        let scope_names: Option<Vec<String>> =
            scope.map(|s| s.iter().map(|a| a.name().to_owned()).collect());
        let tx = self.conn;
        let disabled: Option<Option<i64>> = tx
            .prepare_cached("SELECT disabled_ms FROM principals WHERE name = ?1")
            .and_then(|mut st| st.query_row([principal], |r| r.get(0)).optional())
            .map_err(|e| self.db(e))?;
        match disabled {
            None => return Err(StoreError::NoPrincipal(principal.to_owned())),
            Some(Some(_)) => return Err(StoreError::Disabled(principal.to_owned())),
            Some(None) => {}
        }
        // A 72-bit public id: a clash is astronomically unlikely, and refused if it happens.
        let token = NewToken::generate().map_err(|e| StoreError::Random(e.to_string()))?;
        tx.prepare_cached(
            "INSERT INTO tokens (id, principal, hash, scope, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut st| {
            st.execute(params![
                token.id(),
                principal,
                token.hash().as_slice(),
                scope_names.as_ref().map(json),
                to_i64(now),
                expires_ms.map(to_i64)
            ])
        })
        .map_err(|e| self.db(e))?;
        let mut a = vec![
            ("change", "token.issue".to_owned()),
            ("token", token.id().to_owned()),
        ];
        if let Some(e) = expires_ms {
            a.push(("expires", sov_audit_core::entry::rfc3339_ms(e)));
        }
        if let Some(s) = &scope_names {
            a.push(("scope", s.join(",")));
        }
        outbox(tx, self.actor, principal, Outcome::Ok, "", a).map_err(|e| self.db(e))?;
        let info = TokenInfo {
            id: token.id().to_owned(),
            principal: principal.to_owned(),
            scope: scope_names,
            created_ms: now,
            expires_ms,
            revoked_ms: None,
        };
        Ok((token, info))
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn outbox(
    conn: &Connection,
    actor: &str,
    resource: &str,
    outcome: Outcome,
    reason: &str,
    attrs: Vec<(&str, String)>,
) -> rusqlite::Result<()> {
    outbox_kind(
        conn,
        Kind::IdentityChange,
        actor,
        resource,
        outcome,
        reason,
        attrs,
    )
}

fn outbox_kind(
    conn: &Connection,
    kind: Kind,
    actor: &str,
    resource: &str,
    outcome: Outcome,
    reason: &str,
    attrs: Vec<(&str, String)>,
) -> rusqlite::Result<()> {
    // Attribute keys must be unique in an entry: repeated keys (several `attr`) get a number.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out: Vec<(String, String)> = Vec::with_capacity(attrs.len());
    for (k, v) in attrs {
        let n = seen.entry(k).or_insert(0);
        let key = if *n == 0 {
            k.to_owned()
        } else {
            format!("{k}.{n}")
        };
        *n += 1;
        out.push((key, clean_text(&v, 1024)));
    }
    conn.prepare_cached(
        "INSERT INTO outbox (kind, principal, resource, outcome, reason, attrs) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
            i64::from(kind.code()),
            clean_text(actor, 255),
            clean_text(resource, 1024),
            i64::from(outcome.code()),
            clean_text(reason, 2048),
            json(&out)
    ])?;
    Ok(())
}

struct RawPrincipal {
    name: String,
    kind: String,
    roles: String,
    attrs: String,
    created_ms: i64,
    disabled_ms: Option<i64>,
}

fn raw_principal(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawPrincipal> {
    Ok(RawPrincipal {
        name: r.get(0)?,
        kind: r.get(1)?,
        roles: r.get(2)?,
        attrs: r.get(3)?,
        created_ms: r.get(4)?,
        disabled_ms: r.get(5)?,
    })
}

impl RawPrincipal {
    fn parse(self) -> Result<Principal, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            what: "principal",
            detail,
        };
        Ok(Principal {
            kind: PrincipalKind::parse(&self.kind).map_err(|e| corrupt(e.to_string()))?,
            roles: serde_json::from_str(&self.roles).map_err(|e| corrupt(e.to_string()))?,
            attrs: serde_json::from_str(&self.attrs).map_err(|e| corrupt(e.to_string()))?,
            created_ms: to_u64(self.created_ms),
            disabled_ms: self.disabled_ms.map(to_u64),
            name: self.name,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// Every lookup by key that a request or an admin call makes uses an index: its plan has no
    /// `SCAN` (a full pass over a table, which grows with the directory). Listing all tokens is
    /// a scan by nature and is not here.
    #[test]
    fn keyed_lookups_use_an_index() {
        let tmp = tempfile::tempdir().unwrap();
        let d = Directory::open(&tmp.path().join("identity.db")).unwrap();
        let conn = d.conn.lock().unwrap();
        for sql in [ADMIT_SQL, PRINCIPAL_SQL, TOKEN_SQL, TOKENS_OF_SQL] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(["x"], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter().any(|row| row.starts_with("SEARCH")),
                "{sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|row| row.starts_with("SCAN")),
                "{sql}: {plan:?}"
            );
        }
    }
}
