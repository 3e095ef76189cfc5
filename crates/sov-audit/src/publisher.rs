//! The publisher thread: owns the tiles and the signing key; writes tiles as entries arrive, and
//! every `checkpoint_interval` (or on request) syncs them, writes `signed`, signs and publishes
//! the checkpoint.
//!
//! Every acknowledged batch is pushed into the tile tree in memory, failed or not, so the tree
//! always holds exactly the acknowledged entries. After a failed write the publisher retries the
//! whole publication on a timer (0.5 s, backing off to 5 s; every step is idempotent) and is
//! healthy again once a checkpoint is written.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::resume::WalMark;
use crate::sequencer::PubMsg;
use crate::shared::{Backoff, Component, Shared};
use crate::sign::{Signer, signed_text};
use crate::tiles::TileBuilder;
use crate::{AuditError, CHECKPOINT_FILE, RESUME_FILE, RUNNING_FILE, SIGNED_FILE, fsx};

pub(crate) struct Publisher {
    pub shared: Arc<Shared>,
    pub dir: PathBuf,
    pub tiles: TileBuilder,
    /// Where the tile tree's entries end in the WAL, for the resume point (`None` once a batch
    /// did not follow on from the last: no resume point is written after that).
    pub mark: Option<WalMark>,
    pub signer: Signer,
    pub interval: Duration,
    /// Size of the last published checkpoint (`None` before the first).
    pub published: Option<u64>,
    pub last_start: Option<Instant>,
    /// Why publishing is failed (cleared by a published checkpoint).
    pub failed: Option<String>,
    /// A failure no retry can mend (the tile tree lost an entry).
    pub fatal: Option<String>,
    pub retry: Backoff,
    pub rx: mpsc::Receiver<PubMsg>,
    /// The writer's lock, held until this (the last) thread ends.
    pub _lock: File,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Publisher {
    pub(crate) fn run(mut self) {
        loop {
            let now = Instant::now();
            let due = if self.failed.is_some() && self.fatal.is_none() {
                Some(self.retry.at())
            } else if self.fatal.is_none() && self.published != Some(self.tiles.size()) {
                Some(
                    self.last_start
                        .map_or(now, |t| t.checked_add(self.interval).unwrap_or(now)),
                )
            } else {
                None
            };
            let msg = match due {
                Some(at) if at <= now => {
                    self.periodic();
                    continue;
                }
                Some(at) => self.rx.recv_timeout(at.saturating_duration_since(now)),
                None => self
                    .rx
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match msg {
                Ok(PubMsg::Batch {
                    entries,
                    start,
                    last_time,
                }) => {
                    self.advance_mark(start, &entries, last_time);
                    self.take(entries);
                }
                Ok(PubMsg::Sign(tx)) => {
                    let _ = tx.send(self.publish());
                }
                Ok(PubMsg::Close { tx, wal, deadline }) => {
                    let _ = tx.send(self.close(wal, deadline));
                    return;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.periodic(),
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Pushes acknowledged entries into the tree (always: they are in the WAL), then writes the
    /// full tiles they complete unless publishing is failed (the retry writes them).
    fn take(&mut self, entries: Vec<(Vec<u8>, sov_audit_core::hash::Hash)>) {
        for (bytes, leaf) in entries {
            if let Err(e) = self.tiles.push(&bytes, leaf) {
                let reason = e.chain();
                self.shared.fail(Component::Publish, &reason);
                self.fatal = Some(reason);
            }
        }
        if self.failed.is_none()
            && self.fatal.is_none()
            && let Err(e) = self.tiles.write_full()
        {
            self.fail(&e);
        }
    }

    fn advance_mark(
        &mut self,
        start: u64,
        entries: &[(Vec<u8>, sov_audit_core::hash::Hash)],
        last_time: u64,
    ) {
        if let Some(mark) = &mut self.mark
            && let Err(e) = mark.batch(start, entries, last_time)
        {
            tracing::error!(error = %e.chain(), "no more audit resume points until the next open");
            self.mark = None;
        }
    }

    fn periodic(&mut self) {
        if let Err(e) = self.publish() {
            tracing::error!(error = %e.chain(), "publishing the audit checkpoint failed");
        }
    }

    fn fail(&mut self, e: &AuditError) {
        let reason = e.chain();
        self.shared.fail(Component::Publish, &reason);
        self.failed = Some(reason);
        self.retry.failed();
    }

    /// Publishes a checkpoint of everything received, unless the last one already covers it and
    /// nothing failed since.
    fn publish(&mut self) -> Result<u64, AuditError> {
        if let Some(reason) = &self.fatal {
            return Err(AuditError::Failed {
                reason: reason.clone(),
            });
        }
        let size = self.tiles.size();
        if self.failed.is_none() && self.published == Some(size) {
            return Ok(size);
        }
        self.last_start = Some(Instant::now());
        match self.write_checkpoint() {
            Ok(()) => {
                self.published = Some(size);
                if self.failed.take().is_some() {
                    tracing::info!(size, "audit checkpoint published again");
                    self.retry.reset();
                    self.shared.clear(Component::Publish);
                }
                Ok(size)
            }
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    /// The final checkpoint: publishing is retried until `deadline` if it fails; `running` is
    /// removed only if both it and the WAL (`wal`) are healthy.
    fn close(&mut self, wal: Result<(), AuditError>, deadline: Instant) -> Result<(), AuditError> {
        let mut published = self.publish();
        while published.is_err() && self.fatal.is_none() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = self.retry.at().saturating_duration_since(now);
            std::thread::sleep(wait.min(deadline.saturating_duration_since(now)));
            published = self.publish();
        }
        published?;
        wal?;
        let running = self.dir.join(RUNNING_FILE);
        fs::remove_file(&running).map_err(AuditError::io(&running))?;
        fsx::sync_dir(&self.dir)
    }

    /// The write order: full then partial tiles; fsync of every tile written since the last
    /// checkpoint and of their directories; `signed` (durable); sign; `checkpoint` (durable);
    /// the resume point (durable); then old partial tiles may go.
    fn write_checkpoint(&mut self) -> Result<(), AuditError> {
        let size = self.tiles.size();
        let root = self.tiles.root();
        self.tiles.write_full()?;
        self.tiles.write_partials()?;
        self.tiles.sync()?;
        fsx::write_atomic(
            &self.dir.join(SIGNED_FILE),
            signed_text(size, &root).as_bytes(),
            true,
        )?;
        let note = self.signer.sign(size, &root, now_secs())?;
        fsx::write_atomic(&self.dir.join(CHECKPOINT_FILE), &note, true)?;
        // The resume point of this size, after the checkpoint: it is never ahead of `signed`.
        match self.mark.and_then(|m| m.point(&self.tiles)) {
            Some(point) => fsx::write_atomic(
                &self.dir.join(RESUME_FILE),
                &point.encode(&self.signer),
                true,
            )?,
            None => tracing::warn!(size, "no audit resume point written for this checkpoint"),
        }
        self.tiles.remove_stale();
        Ok(())
    }
}
