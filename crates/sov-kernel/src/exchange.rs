//! One request's record: [`Exchange`] holds what the kernel learns while it serves a request
//! (who, through which door, which decisions, which model, how many tokens) and turns it into
//! the request's entries. It is owned by one party at a time and moved, never shared.
//!
//! The entries (the same whichever door):
//! - every decision: a `policy.decision` entry (action, policy set, deciding policies, the
//!   caller's credential), submitted at once; the request's own entry waits until all of the
//!   request's decisions are durable, and lists their indices in `decision`;
//! - a plain answer: one entry, kind `inference` (or the kind the use case set) with outcome
//!   `ok`/`error`, or kind `refusal` with outcome `denied`, whose reason is the refusal's type,
//!   code and parameter (never its message, which may quote the input);
//! - a streamed answer: an entry with outcome `started` before the first byte, and one when the
//!   stream ends (`ok`, `error`, or `cancelled`) with the output commitment and `request` = the
//!   first entry's index;
//! - a request dropped before its end (the client left): an entry with outcome `cancelled`
//!   and status `499`, made when the [`Exchange`] is dropped unfinished.
//! - a read (a door's `GET`) is recorded through its decisions only; it gets an entry of its
//!   own only when it fails before any decision.
//!
//! Inputs and outputs enter only as salted commitments
//! ([`sov_audit_core::entry::commitment`]) over the exact bytes the door received and sent: the
//! door feeds them ([`Exchange::commit_input`], [`Exchange::feed_output`]); the 32-byte salt
//! goes back to the caller ([`Exchange::salt`]) and is not kept.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use sov_audit::{Appended, AuditLog, Draft, Record, RecordError};
use sov_audit_core::entry::{Committer, Kind, Outcome, clean_text, commitment};
use sov_audit_core::hash::Hash;
use sov_policy::{Caller, Credential, Verdict};
use tokio::sync::oneshot;

type Pending = oneshot::Receiver<Result<Appended, RecordError>>;

/// The front door a request came through: its route (an HTTP path, or a command such as
/// `sov chat`), the peer's address if it has one, and whether the request only reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Door {
    /// The route (cleaned for an entry).
    pub route: String,
    /// The peer's address (`ip:port`), for a network door.
    pub peer: Option<String>,
    /// Whether the request only reads (an HTTP `GET`): recorded through its decisions.
    pub read: bool,
}

/// What went wrong, as an entry may say it: never the message, which may quote the input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Refusal {
    /// The error's type (OpenAI's `type`: `invalid_request_error`, `permission_error`, ...).
    pub kind: String,
    /// Its code (`model_not_found`, `context_length_exceeded`, ...), if any.
    pub code: Option<String>,
    /// The request parameter at fault, if any.
    pub param: Option<String>,
}

impl Refusal {
    /// `type=... code=... param=...`, the entry's reason.
    fn summary(&self) -> String {
        let mut parts = vec![format!("type={}", self.kind)];
        if let Some(c) = &self.code {
            parts.push(format!("code={c}"));
        }
        if let Some(p) = &self.param {
            parts.push(format!("param={p}"));
        }
        clean_text(&parts.join(" "), 512)
    }
}

/// How a request ended, as its door saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Answered in full.
    Answered,
    /// Refused (bad input, not allowed, not found, too much, record unavailable).
    Refused(Refusal),
    /// Failed on the node's side.
    Failed(Refusal),
}

/// The record could not be written: the request must not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit record could not be written: {0}")]
pub struct Unrecorded(pub String);

/// The entry whose index and leaf a door returns with its answer, and the salt of its
/// commitments when it has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The entry.
    pub appended: Appended,
    /// The salt of the entry's input and output commitments (`None` for a decision's entry).
    pub salt: Option<[u8; 32]>,
}

/// What a tool call's receipt records (see [`Exchange::tool_receipt`]).
#[derive(Debug)]
pub(crate) struct Receipt<'a> {
    /// The tool's name.
    pub tool: &'a str,
    /// Its version or hash.
    pub version: &'a str,
    /// The exact bytes of the arguments it was given.
    pub arguments: &'a [u8],
    /// The exact bytes of its result, or `None` when it gave none.
    pub result: Option<&'a [u8]>,
    /// `ok`, `error` (the tool failed), `denied` (not allowed).
    pub outcome: Outcome,
    /// Why it failed or was refused; empty when it answered.
    pub reason: &'a str,
    /// The call's other facts (the decision, the round, the duration).
    pub attrs: Vec<(String, String)>,
}

/// One request's record in progress (see the module docs).
#[derive(Debug)]
pub struct Exchange {
    log: AuditLog,
    caller: Caller,
    door: Door,
    salt: [u8; 32],
    input: Hash,
    output: Option<Committer>,
    kind: Kind,
    model: Option<(String, Hash)>,
    attrs: BTreeMap<String, String>,
    decisions: Vec<Pending>,
    decided: usize,
    failed: bool,
    started: Option<u64>,
    done: bool,
}

impl Exchange {
    pub(crate) fn new(log: AuditLog, caller: Caller, door: Door) -> Result<Self, Unrecorded> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)
            .map_err(|e| Unrecorded(format!("no randomness for the audit salt: {e}")))?;
        Ok(Self {
            log,
            caller,
            door: Door {
                route: clean_text(&door.route, 1024),
                ..door
            },
            input: commitment("input", &salt, b""),
            output: Some(Committer::new("output", &salt)),
            salt,
            kind: Kind::Inference,
            model: None,
            attrs: BTreeMap::new(),
            decisions: Vec::new(),
            decided: 0,
            failed: false,
            started: None,
            done: false,
        })
    }

    /// Who is asking.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The door.
    pub fn door(&self) -> &Door {
        &self.door
    }

    /// The salt of the request's commitments (the door returns it to the caller).
    pub fn salt(&self) -> &[u8; 32] {
        &self.salt
    }

    /// Commits to the exact bytes the door received.
    pub fn commit_input(&mut self, bytes: &[u8]) {
        self.input = commitment("input", &self.salt, bytes);
    }

    /// Adds bytes the door sent to the output commitment.
    pub fn feed_output(&mut self, bytes: &[u8]) {
        if let Some(c) = self.output.as_mut() {
            c.update(bytes);
        }
    }

    /// The request's own entry is of `kind` (default: inference).
    pub fn set_kind(&mut self, kind: Kind) {
        self.kind = kind;
    }

    /// The request is served by model `name` with file digest `digest`.
    pub(crate) fn set_model(&mut self, name: &str, digest: Hash) {
        self.model = Some((name.to_owned(), digest));
    }

    /// A fact about the request (keys: `a-z 0-9 _ . -`).
    pub(crate) fn attr(&mut self, key: &str, value: impl ToString) {
        self.attrs.insert(key.to_owned(), value.to_string());
    }

    /// The generation failed after the answer had started.
    pub fn set_failed(&mut self) {
        self.failed = true;
    }

    /// Submits the decision's entry (see [`crate::Kernel::authorize`]).
    pub(crate) fn decided(&mut self, verdict: &Verdict) {
        let decision = verdict.decision();
        let mut attrs = vec![
            ("action".to_owned(), verdict.action().name().to_owned()),
            ("policy_set".to_owned(), verdict.policy_set().to_owned()),
        ];
        attrs.extend(self.credential_attrs());
        if !decision.policies().is_empty() {
            attrs.push(("policies".to_owned(), decision.policy_ids()));
        }
        let draft = Draft {
            kind: Kind::PolicyDecision,
            principal: clean_text(self.caller.name(), 255),
            resource: clean_text(&verdict.resource().to_string(), 1024),
            outcome: if decision.is_allowed() {
                Outcome::Ok
            } else {
                Outcome::Denied
            },
            reason: clean_text(&decision.explain(), 2048),
            model: None,
            input: None,
            output: None,
            attrs: self.with_door(attrs.into_iter().collect()),
        };
        self.submit_decision(draft);
    }

    /// Submits one entry for the `read-corpus` decisions on the documents of `corpus` (one
    /// decision per document, made before any ranking): how many were decided, readable and
    /// withheld, the policies that decided, and a SHA-256 over the sorted ids of the withheld
    /// ones, so that an auditor holding the corpus can tell which documents a caller was denied
    /// without the record naming them.
    pub(crate) fn decided_documents(&mut self, corpus: &str, verdicts: &[Verdict]) {
        let withheld: BTreeSet<&str> = verdicts
            .iter()
            .filter(|v| !v.is_allowed())
            .map(|v| v.resource().id())
            .collect();
        let mut policies: BTreeSet<String> = BTreeSet::new();
        for v in verdicts {
            for p in v.decision().policies() {
                policies.insert(p.id.clone());
            }
        }
        let mut digest = Sha256::new();
        for id in &withheld {
            digest.update(id.as_bytes());
            digest.update(b"\n");
        }
        let readable = verdicts.len() - withheld.len();
        let policy_set = verdicts
            .first()
            .map(|v| v.policy_set().to_owned())
            .unwrap_or_default();
        let mut attrs = vec![
            ("action".to_owned(), "read-corpus".to_owned()),
            ("policy_set".to_owned(), policy_set),
            ("documents".to_owned(), verdicts.len().to_string()),
            ("readable".to_owned(), readable.to_string()),
            ("withheld".to_owned(), withheld.len().to_string()),
            ("withheld_sha256".to_owned(), hex::encode(digest.finalize())),
        ];
        attrs.extend(self.credential_attrs());
        if !policies.is_empty() {
            attrs.push((
                "policies".to_owned(),
                policies.into_iter().collect::<Vec<_>>().join(","),
            ));
        }
        let draft = Draft {
            kind: Kind::PolicyDecision,
            principal: clean_text(self.caller.name(), 255),
            resource: clean_text(&format!("Corpus::{corpus:?} documents"), 1024),
            outcome: if readable > 0 {
                Outcome::Ok
            } else {
                Outcome::Denied
            },
            reason: format!("{readable} of {} documents readable", verdicts.len()),
            model: None,
            input: None,
            output: None,
            attrs: self.with_door(attrs.into_iter().collect()),
        };
        self.submit_decision(draft);
    }

    fn submit_decision(&mut self, draft: Draft) {
        let (tx, rx) = oneshot::channel();
        self.log.submit(draft, move |r| {
            let _ = tx.send(r.map_err(|e| RecordError::from_error(&e)));
        });
        self.decisions.push(rx);
        self.decided += 1;
    }

    /// Submits a decision of the kernel's own that is not an authorisation (the router's
    /// choice): an entry of `kind` naming `resource`, with `attrs`; the request's entry waits
    /// for it like for a policy decision.
    pub(crate) fn noted(
        &mut self,
        kind: Kind,
        resource: &str,
        outcome: Outcome,
        reason: &str,
        attrs: Vec<(String, String)>,
    ) {
        let draft = Draft {
            kind,
            principal: clean_text(self.caller.name(), 255),
            resource: clean_text(resource, 1024),
            outcome,
            reason: clean_text(reason, 2048),
            model: None,
            input: Some(self.input),
            output: None,
            attrs: self.with_door(attrs.into_iter().collect()),
        };
        self.submit_decision(draft);
    }

    /// Submits a tool call's receipt (a `tool.call` entry): the tool, its version and the
    /// decision that allowed it as attributes, salted commitments to the exact argument and
    /// result bytes as its input and output (the request's salt: the caller can open them);
    /// the request's entry waits for it like for a decision.
    pub(crate) fn tool_receipt(&mut self, receipt: Receipt<'_>) {
        let mut attrs: BTreeMap<String, String> = receipt.attrs.into_iter().collect();
        attrs.insert("tool".into(), receipt.tool.to_owned());
        attrs.insert("tool_version".into(), receipt.version.to_owned());
        let draft = Draft {
            kind: Kind::ToolCall,
            principal: clean_text(self.caller.name(), 255),
            resource: clean_text(&format!("Tool::\"{}\"", receipt.tool), 1024),
            outcome: receipt.outcome,
            reason: clean_text(receipt.reason, 2048),
            model: None,
            input: Some(commitment("tool.arguments", &self.salt, receipt.arguments)),
            output: receipt
                .result
                .map(|r| commitment("tool.result", &self.salt, r)),
            attrs: self.with_door(attrs),
        };
        self.submit_decision(draft);
    }

    /// How the caller proved who they are, as a decision names it: `token` (and `session`
    /// through a session) or `local`.
    fn credential_attrs(&self) -> Vec<(String, String)> {
        match self.caller.credential() {
            Credential::Token(id) => vec![("token".to_owned(), id.clone())],
            Credential::Local(user) => vec![("local".to_owned(), user.clone())],
            Credential::Session { token, session } => vec![
                ("token".to_owned(), token.clone()),
                ("session".to_owned(), session.clone()),
            ],
        }
    }

    /// `attrs` with the door's route and peer, cleaned for an entry.
    fn with_door(&self, mut attrs: BTreeMap<String, String>) -> Vec<(String, String)> {
        attrs.insert("route".into(), self.door.route.clone());
        if let Some(session) = self.caller.session_id() {
            attrs.insert("session".into(), session.to_owned());
        }
        if let Some(peer) = &self.door.peer {
            attrs.insert("peer".into(), peer.clone());
        }
        attrs
            .into_iter()
            .map(|(k, v)| (k, clean_text(&v, 1024)))
            .collect()
    }

    /// Waits for every decision entry; their indices, in order.
    async fn decisions_durable(&mut self) -> Result<Vec<Appended>, Unrecorded> {
        let mut out = Vec::with_capacity(self.decisions.len());
        for rx in std::mem::take(&mut self.decisions) {
            match rx.await {
                Ok(Ok(a)) => out.push(a),
                Ok(Err(e)) => return Err(Unrecorded(e.0)),
                Err(_) => return Err(Unrecorded("the audit log stopped before answering".into())),
            }
        }
        Ok(out)
    }

    fn draft(
        &self,
        kind: Kind,
        outcome: Outcome,
        reason: String,
        output: Option<Hash>,
        attrs: BTreeMap<String, String>,
    ) -> Draft {
        let (resource, digest) = match &self.model {
            Some((name, digest)) => (clean_text(name, 1024), Some(*digest)),
            None => (self.door.route.clone(), None),
        };
        Draft {
            kind,
            principal: clean_text(self.caller.name(), 255),
            resource,
            outcome,
            reason,
            model: digest,
            input: Some(self.input),
            output,
            attrs: self.with_door(attrs),
        }
    }

    /// Ends the request (a plain answer, a refusal, a failure) with its entry, once every
    /// decision is durable. `status` is the door's own status code (HTTP), if it has one. A read
    /// that made decisions returns its last decision's entry instead; a read that succeeded
    /// without any decision returns `None`.
    pub async fn finish(
        mut self,
        end: End,
        status: Option<u16>,
    ) -> Result<Option<Recorded>, Unrecorded> {
        self.done = true;
        let decisions = self.decisions_durable().await?;
        if self.door.read {
            match (decisions.last(), &end) {
                (Some(last), _) => {
                    return Ok(Some(Recorded {
                        appended: *last,
                        salt: None,
                    }));
                }
                (None, End::Answered) => return Ok(None),
                (None, _) => {}
            }
        }
        let mut attrs = self.attrs.clone();
        if let Some(status) = status {
            attrs.insert("status".into(), status.to_string());
        }
        if !decisions.is_empty() {
            attrs.insert("decision".into(), indices(&decisions));
        }
        let (kind, outcome, reason) = match &end {
            End::Answered if !self.failed => (self.kind, Outcome::Ok, String::new()),
            End::Answered => (self.kind, Outcome::Error, String::new()),
            End::Refused(r) => (Kind::Refusal, Outcome::Denied, r.summary()),
            End::Failed(r) => (self.kind, Outcome::Error, r.summary()),
        };
        let output = self.output.take().map(Committer::finish);
        let draft = self.draft(kind, outcome, reason, output, attrs);
        let appended = append(&self.log, draft).await?;
        Ok(Some(Recorded {
            appended,
            salt: Some(self.salt),
        }))
    }

    /// Records the start of a streamed answer (before its first byte); the stream's end is
    /// recorded by [`Exchange::finish_stream`], or as `cancelled` if the exchange is dropped.
    pub async fn start_stream(&mut self, status: Option<u16>) -> Result<Recorded, Unrecorded> {
        let decisions = self.decisions_durable().await?;
        let mut attrs = self.attrs.clone();
        if let Some(status) = status {
            attrs.insert("status".into(), status.to_string());
        }
        attrs.insert("stream".into(), "true".into());
        if !decisions.is_empty() {
            attrs.insert("decision".into(), indices(&decisions));
        }
        let draft = self.draft(
            Kind::Inference,
            Outcome::Started,
            String::new(),
            None,
            attrs,
        );
        let appended = append(&self.log, draft).await?;
        self.started = Some(appended.index);
        Ok(Recorded {
            appended,
            salt: Some(self.salt),
        })
    }

    /// Records the end of a streamed answer whose every byte was sent. The answer is already
    /// out, so nothing waits on the entry; a failure is logged.
    pub fn finish_stream(mut self) {
        self.done = true;
        let outcome = if self.failed {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        self.submit_stream_end(outcome);
    }

    fn submit_stream_end(&mut self, outcome: Outcome) {
        let mut attrs = self.attrs.clone();
        if let Some(started) = self.started {
            attrs.insert("request".into(), started.to_string());
        }
        attrs.insert("stream".into(), "true".into());
        let output = self.output.take().map(Committer::finish);
        let draft = self.draft(Kind::Inference, outcome, String::new(), output, attrs);
        self.log.submit(draft, |result| {
            if let Err(e) = result {
                tracing::error!(error = %e, "failed to record the end of a streamed answer");
            }
        });
    }
}

impl Drop for Exchange {
    /// Dropped unfinished: the caller went away (the door dropped the request's future). A
    /// stream that had started gets its `cancelled` end; any other request an entry of its own,
    /// so no request ends without an entry of its outcome.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.started.is_some() {
            self.submit_stream_end(Outcome::Cancelled);
            return;
        }
        let mut attrs = self.attrs.clone();
        attrs.insert("status".into(), "499".into());
        if self.decided > 0 {
            attrs.insert("decisions".into(), self.decided.to_string());
        }
        let draft = self.draft(
            self.kind,
            Outcome::Cancelled,
            "the client went away before the answer".to_owned(),
            None,
            attrs,
        );
        self.log.submit(draft, |result| {
            if let Err(e) = result {
                tracing::error!(error = %e, "failed to record an abandoned request");
            }
        });
    }
}

/// The indices of `entries`, comma-separated.
fn indices(entries: &[Appended]) -> String {
    entries
        .iter()
        .map(|a| a.index.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Appends `draft` and waits (without blocking the thread) until it is durable.
pub async fn append(log: &dyn Record, draft: Draft) -> Result<Appended, Unrecorded> {
    let (tx, rx) = oneshot::channel();
    log.submit(
        draft,
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    match rx.await {
        Ok(Ok(appended)) => Ok(appended),
        Ok(Err(e)) => Err(Unrecorded(e.0)),
        Err(_) => Err(Unrecorded("the audit log stopped before answering".into())),
    }
}
