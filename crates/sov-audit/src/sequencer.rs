//! The sequencer thread: owns `entries.wal`, assigns indexes, writes batches, fdatasyncs,
//! acknowledges; after a failed batch it rolls back and recovers by itself.
//!
//! It remembers the WAL length and chain state (next index, last leaf, last time) after the last
//! acknowledged batch. When writing or syncing a batch fails, that batch's callers get errors, so
//! its entries must never appear later: the in-memory chain goes back to the remembered state
//! and, on a timer (0.5 s, backing off to 5 s), the sequencer cuts the WAL back to the remembered
//! length (`set_len` + fsync, through a new file handle), reads back the last acknowledged
//! record and checks its leaf hash, and proves the disk takes writes again (a probe file written,
//! fsynced and removed). Only then does it accept entries again.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use sov_audit_core::entry::{Entry, MAX_ENTRY_SIZE};
use sov_audit_core::hash::{Hash, leaf_hash};

use crate::shared::{Backoff, Callback, Component, Job, Shared, now_ms};
use crate::wal::MAX_BATCH_BYTES;
use crate::{Appended, AuditError, Draft};

/// Name of the file written to prove the disk takes writes again (hidden; never served).
pub(crate) const PROBE_FILE: &str = ".write-probe";
const PROBE_BYTES: usize = 64 * 1024;

/// How long [`crate::AuditLog::close`] keeps trying to recover a failed log.
pub(crate) const CLOSE_RECOVERY: Duration = Duration::from_secs(2);

/// Runs a caller's callback; a panic in it is logged and does not take the writer down.
pub(crate) fn call(done: Callback, result: Result<Appended, AuditError>) {
    let run = std::panic::AssertUnwindSafe(move || done(result));
    if std::panic::catch_unwind(run).is_err() {
        tracing::error!("an audit append callback panicked");
    }
}

/// The chain state after some prefix of the log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tip {
    pub next: u64,
    pub last_leaf: Hash,
    pub last_time: u64,
}

/// The state after the last acknowledged batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Good {
    pub tip: Tip,
    /// The WAL's length.
    pub len: u64,
    /// Offset of the last entry's record (meaningful when `tip.next > 0`).
    pub last_record: u64,
}

#[derive(Default)]
struct Batch {
    wal: Vec<u8>,
    /// Offset of the last record in `wal`.
    last_record: usize,
    acks: Vec<(Callback, Appended)>,
    entries: Vec<(Vec<u8>, Hash)>,
}

pub(crate) enum PubMsg {
    /// An acknowledged batch: its entries, the WAL offset it was written at, and the time of
    /// its last entry.
    Batch {
        entries: Vec<(Vec<u8>, Hash)>,
        start: u64,
        last_time: u64,
    },
    Sign(mpsc::Sender<Result<u64, AuditError>>),
    /// Close, with the WAL's state and the time by which a failed log must have recovered.
    Close {
        tx: mpsc::Sender<Result<(), AuditError>>,
        wal: Result<(), AuditError>,
        deadline: Instant,
    },
}

pub(crate) struct Sequencer {
    pub shared: Arc<Shared>,
    pub dir: PathBuf,
    pub wal: File,
    pub wal_path: PathBuf,
    pub tip: Tip,
    pub good: Good,
    pub node: String,
    pub max_batch: usize,
    pub publisher: mpsc::SyncSender<PubMsg>,
    /// Why the WAL is failed (cleared by a recovery).
    pub failed: Option<String>,
    pub retry: Backoff,
}

impl Sequencer {
    pub(crate) fn run(mut self) {
        loop {
            if self.failed.is_some() && Instant::now() >= self.retry.at() {
                self.recover();
            }
            let (jobs, refused) = match self.take_jobs() {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::error!(error = %e, "audit sequencer stopping");
                    return;
                }
            };
            let mut batch = Batch::default();
            for job in jobs {
                match job {
                    Job::Append(draft, done) => match &refused {
                        Some(reason) => call(
                            done,
                            Err(AuditError::Failed {
                                reason: reason.clone(),
                            }),
                        ),
                        None => self.add(draft, done, &mut batch),
                    },
                    Job::Sign(tx) => {
                        self.flush(&mut batch);
                        self.forward(PubMsg::Sign(tx));
                    }
                    Job::Close(tx) => {
                        self.flush(&mut batch);
                        let deadline = Instant::now()
                            .checked_add(CLOSE_RECOVERY)
                            .unwrap_or_else(Instant::now);
                        let wal = self.recover_until(deadline);
                        self.forward(PubMsg::Close { tx, wal, deadline });
                        return;
                    }
                }
            }
            self.flush(&mut batch);
        }
    }

    /// Waits for work (while failed, at most until the next retry is due), then takes up to
    /// `max_batch` appends (stopping after a control job), with the reason appends are refused
    /// if the publisher is failed.
    fn take_jobs(&self) -> Result<(Vec<Job>, Option<String>), AuditError> {
        let mut q = self.shared.lock()?;
        while q.jobs.is_empty() {
            if self.failed.is_none() {
                q = self
                    .shared
                    .wake
                    .wait(q)
                    .map_err(|_| AuditError::Poisoned { what: "job queue" })?;
                continue;
            }
            let now = Instant::now();
            let Some(wait) = self.retry.at().checked_duration_since(now) else {
                return Ok((Vec::new(), None));
            };
            if wait.is_zero() {
                return Ok((Vec::new(), None));
            }
            q = self
                .shared
                .wake
                .wait_timeout(q, wait)
                .map_err(|_| AuditError::Poisoned { what: "job queue" })?
                .0;
        }
        let refused = q.refusal();
        let mut out = Vec::new();
        let mut appends = 0usize;
        while appends < self.max_batch {
            let Some(job) = q.jobs.pop_front() else {
                break;
            };
            let control = !matches!(job, Job::Append(..));
            out.push(job);
            if control {
                break;
            }
            appends = appends.saturating_add(1);
        }
        Ok((out, refused))
    }

    fn refuse_if_failed(&self, done: Callback) -> Option<Callback> {
        match &self.failed {
            Some(reason) => {
                call(
                    done,
                    Err(AuditError::Failed {
                        reason: reason.clone(),
                    }),
                );
                None
            }
            None => Some(done),
        }
    }

    fn add(&mut self, draft: Box<Draft>, done: Callback, batch: &mut Batch) {
        let Some(done) = self.refuse_if_failed(done) else {
            return;
        };
        let draft = *draft;
        let time = now_ms().max(self.tip.last_time);
        let mut attrs = draft.attrs;
        attrs.sort_by(|a, b| a.0.cmp(&b.0));
        let entry = Entry {
            index: self.tip.next,
            time_ms: time,
            prev: self.tip.last_leaf,
            kind: draft.kind,
            node: self.node.clone(),
            principal: draft.principal,
            resource: draft.resource,
            outcome: draft.outcome,
            reason: draft.reason,
            model: draft.model,
            input: draft.input,
            output: draft.output,
            attrs,
        };
        let bytes = match entry.encode() {
            Ok(b) => b,
            Err(e) => return call(done, Err(AuditError::Entry(e))),
        };
        let Ok(len) = u16::try_from(bytes.len()).map(|l| l.to_be_bytes()) else {
            return call(
                done,
                Err(AuditError::TooLarge {
                    size: bytes.len(),
                    max: MAX_ENTRY_SIZE,
                }),
            );
        };
        // Keep the framed batch (records + terminator) within MAX_BATCH_BYTES. The flush
        // changes the chain state, so the entry is built again.
        if batch
            .wal
            .len()
            .saturating_add(bytes.len())
            .saturating_add(4)
            > MAX_BATCH_BYTES
        {
            self.flush(batch);
            return self.add(Box::new(undo(entry)), done, batch);
        }
        let leaf = leaf_hash(&bytes);
        batch.last_record = batch.wal.len();
        batch.wal.extend_from_slice(&len);
        batch.wal.extend_from_slice(&bytes);
        batch.acks.push((
            done,
            Appended {
                index: self.tip.next,
                leaf,
            },
        ));
        batch.entries.push((bytes, leaf));
        self.tip = Tip {
            next: self.tip.next.saturating_add(1),
            last_leaf: leaf,
            last_time: time,
        };
    }

    /// Writes the batch to the WAL with one write, fdatasyncs, then acknowledges its entries and
    /// hands them to the publisher. On an error, the batch's entries get it, the chain state goes
    /// back to the last acknowledged batch and the WAL is marked failed.
    fn flush(&mut self, batch: &mut Batch) {
        if batch.acks.is_empty() {
            return;
        }
        batch.wal.extend_from_slice(&[0, 0]);
        let written = self
            .wal
            .write_all(&batch.wal)
            .and_then(|()| self.wal.sync_data());
        let batch_len = u64::try_from(batch.wal.len()).unwrap_or(u64::MAX);
        let last_record = u64::try_from(batch.last_record).unwrap_or(u64::MAX);
        batch.wal.clear();
        let acks = std::mem::take(&mut batch.acks);
        let entries = std::mem::take(&mut batch.entries);
        match written {
            Ok(()) => {
                let start = self.good.len;
                self.good = Good {
                    tip: self.tip,
                    len: self.good.len.saturating_add(batch_len),
                    last_record: self.good.len.saturating_add(last_record),
                };
                self.shared
                    .appended(u64::try_from(acks.len()).unwrap_or(u64::MAX));
                self.shared.wal_bytes(self.good.len);
                for (done, appended) in acks {
                    call(done, Ok(appended));
                }
                self.forward(PubMsg::Batch {
                    entries,
                    start,
                    last_time: self.tip.last_time,
                });
            }
            Err(e) => {
                let reason = format!("failed to write `{}`: {e}", self.wal_path.display());
                self.tip = self.good.tip;
                self.fail(&reason);
                for (done, _) in acks {
                    call(
                        done,
                        Err(AuditError::Failed {
                            reason: reason.clone(),
                        }),
                    );
                }
            }
        }
    }

    fn forward(&mut self, msg: PubMsg) {
        if let Err(mpsc::SendError(msg)) = self.publisher.send(msg) {
            // Nothing can bring a stopped thread back: this failure is never cleared.
            let reason = "the publisher thread stopped".to_owned();
            self.shared.fail(Component::Publish, &reason);
            let err = || AuditError::Failed {
                reason: reason.clone(),
            };
            match msg {
                PubMsg::Sign(tx) => {
                    let _ = tx.send(Err(err()));
                }
                PubMsg::Close { tx, .. } => {
                    let _ = tx.send(Err(err()));
                }
                PubMsg::Batch { .. } => {}
            }
        }
    }

    fn fail(&mut self, reason: &str) {
        self.failed = Some(reason.to_owned());
        self.shared.fail(Component::Wal, reason);
        self.retry.failed();
    }

    /// One recovery attempt; clears the failure if it works.
    fn recover(&mut self) {
        match self.try_recover() {
            Ok(()) => {
                tracing::info!(
                    size = self.good.tip.next,
                    bytes = self.good.len,
                    "audit WAL recovered"
                );
                self.failed = None;
                self.retry.reset();
                self.shared.clear(Component::Wal);
            }
            Err(e) => self.fail(&e.chain()),
        }
    }

    /// Tries to recover until `deadline` (for close); the WAL's state at the end.
    fn recover_until(&mut self, deadline: Instant) -> Result<(), AuditError> {
        loop {
            let Some(reason) = self.failed.clone() else {
                return Ok(());
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(AuditError::Failed { reason });
            }
            let wait = self.retry.at().saturating_duration_since(now);
            std::thread::sleep(wait.min(deadline.saturating_duration_since(now)));
            if Instant::now() >= self.retry.at() {
                self.recover();
            }
        }
    }

    /// Cuts the WAL back to the last acknowledged batch (through a new handle: the old one saw
    /// the error), checks the last acknowledged record, and proves the disk takes writes.
    fn try_recover(&mut self) -> Result<(), AuditError> {
        let path = &self.wal_path;
        let io = || AuditError::io(path);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io())?;
        let len = file.metadata().map_err(io())?.len();
        if len < self.good.len {
            return Err(AuditError::Corrupt {
                path: path.clone(),
                offset: len,
                reason: format!(
                    "the file is shorter than the {} bytes acknowledged",
                    self.good.len
                ),
            });
        }
        if len > self.good.len {
            tracing::warn!(
                bytes = len.saturating_sub(self.good.len),
                offset = self.good.len,
                "cutting a failed batch from the audit WAL"
            );
            file.set_len(self.good.len).map_err(io())?;
        }
        file.sync_all().map_err(io())?;
        check_last_record(&file, path, &self.good)?;
        probe(&self.dir)?;
        self.wal = file;
        Ok(())
    }
}

/// The draft an entry was built from (to build it again after a flush changed the chain).
fn undo(entry: Entry) -> Draft {
    Draft {
        kind: entry.kind,
        principal: entry.principal,
        resource: entry.resource,
        outcome: entry.outcome,
        reason: entry.reason,
        model: entry.model,
        input: entry.input,
        output: entry.output,
        attrs: entry.attrs,
    }
}

/// Reads back the last acknowledged record: its framing ends the file with a terminator, and its
/// leaf hash is the one acknowledged.
fn check_last_record(file: &File, path: &Path, good: &Good) -> Result<(), AuditError> {
    let corrupt = |offset: u64, reason: String| AuditError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if good.tip.next == 0 {
        return if good.len == 0 {
            Ok(())
        } else {
            Err(corrupt(
                0,
                "no entry was acknowledged, yet bytes were".into(),
            ))
        };
    }
    let size = good.len.saturating_sub(good.last_record);
    let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
    file.read_exact_at(&mut buf, good.last_record)
        .map_err(AuditError::io(path))?;
    let ok = match buf.as_slice() {
        [a, b, body @ .., 0, 0] => {
            usize::from(u16::from_be_bytes([*a, *b])) == body.len()
                && leaf_hash(body) == good.tip.last_leaf
        }
        _ => false,
    };
    if !ok {
        return Err(corrupt(
            good.last_record,
            format!(
                "reading back the last acknowledged entry ({}) gives other bytes",
                good.tip.next.saturating_sub(1)
            ),
        ));
    }
    Ok(())
}

/// Writes, fsyncs and removes a small file in the log directory: the disk takes writes again.
fn probe(dir: &Path) -> Result<(), AuditError> {
    let path = dir.join(PROBE_FILE);
    let written = File::create(&path).and_then(|mut f| {
        f.write_all(&[0u8; PROBE_BYTES])?;
        f.sync_all()
    });
    let removed = fs::remove_file(&path);
    written
        .and(removed)
        .map_err(|e| AuditError::Io { path, source: e })
}
