//! The recording seam: what an entry holds before the log sequences it ([`Draft`]), what the
//! log answers once it is durable ([`Appended`]), and the [`Record`] trait every crate that
//! records facts depends on, instead of on the log writer itself.
//!
//! `sov-audit`'s `AuditLog` implements [`Record`]; the identity directory (`sov-policy`), the
//! seal (`sov-seal`), the egress gate (`sov-egress`) and the kernel (`sov-kernel`) write
//! through it. So a crate that records a fact can be tested with any implementation and does
//! not pull in the writer's threads and files.

use crate::entry::{Kind, Outcome};
use crate::hash::Hash;

/// An entry to append; the log's sequencer fills in index, time, previous hash and node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// What happened.
    pub kind: Kind,
    /// Who asked (`system` for the node itself).
    pub principal: String,
    /// What it was about.
    pub resource: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why (refusal reason, error message).
    pub reason: String,
    /// SHA-256 of the model used.
    pub model: Option<Hash>,
    /// Commitment to the inputs.
    pub input: Option<Hash>,
    /// Commitment to the outputs.
    pub output: Option<Hash>,
    /// Further facts (any order: they are sorted by key; keys must be unique).
    pub attrs: Vec<(String, String)>,
}

impl Draft {
    /// A draft with the given kind, principal, resource and outcome, and nothing else.
    pub fn new(
        kind: Kind,
        principal: impl Into<String>,
        resource: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        Self {
            kind,
            principal: principal.into(),
            resource: resource.into(),
            outcome,
            reason: String::new(),
            model: None,
            input: None,
            output: None,
            attrs: Vec::new(),
        }
    }
}

/// A durable entry: its index and leaf hash (`SHA-256(0x00 || entry bytes)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The entry's index.
    pub index: u64,
    /// The entry's leaf hash.
    pub leaf: Hash,
}

/// Why an entry was not recorded: the writer's error with its causes, as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

impl RecordError {
    /// `e` and its causes, joined by `: `.
    pub fn from_error(e: &dyn std::error::Error) -> Self {
        let mut s = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            s.push_str(": ");
            s.push_str(&cause.to_string());
            source = cause.source();
        }
        Self(s)
    }
}

/// What is called once with an entry's result, after it is durable (or failed).
pub type Done = Box<dyn FnOnce(Result<Appended, RecordError>) + Send + 'static>;

/// A record that takes entries: the seam between the crates that record facts and the log.
pub trait Record: Send + Sync + std::fmt::Debug {
    /// Queues `draft`; `done` is called once with the result, after the entry is durable (or
    /// with the error). `done` may run on the record's own thread: it must be quick.
    fn submit(&self, draft: Draft, done: Done);

    /// Appends `draft` and returns once it is durable. Blocks the calling thread: not for an
    /// async task (use [`Record::submit`] with a channel).
    fn append(&self, draft: Draft) -> Result<Appended, RecordError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(
            draft,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| Err(RecordError("the record stopped before answering".into())))
    }
}
