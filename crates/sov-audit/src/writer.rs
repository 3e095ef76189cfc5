//! The writer: open (the recovery itself is in `recover`), the sequencer thread (WAL, group
//! commit, acknowledgements) and the publisher thread (tiles, `signed`, checkpoints).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use sov_audit_core::entry::{Entry, Kind, Outcome};
use sov_audit_core::note::is_valid_key_name;
use sov_keys::LogKey;

use crate::publisher::Publisher;
use crate::recover::{self, Recovered};
use crate::sequencer::{Good, Sequencer, Tip};
use crate::shared::{Backoff, Counters, Health, Job, Shared};
use crate::{Appended, AuditError, Draft, LOCK_FILE, LogConfig, LogReader, Recovery};

/// The Open Audit Record's writer: a handle to an open log directory. Cheap to clone (all clones
/// share one writer); see the crate documentation for the design.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    dir: PathBuf,
    shared: Arc<Shared>,
    threads: Mutex<Option<(JoinHandle<()>, JoinHandle<()>)>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e.chain(), "closing the audit log on drop failed");
        }
    }
}

impl Inner {
    /// Queues a job, or hands it back with the reason it was refused.
    fn push(&self, job: Job) -> Result<(), Box<(Job, AuditError)>> {
        let mut q = match self.shared.lock() {
            Ok(q) => q,
            Err(e) => return Err(Box::new((job, e))),
        };
        if let Some(reason) = q.refusal() {
            return Err(Box::new((job, AuditError::Failed { reason })));
        }
        if q.closing {
            return Err(Box::new((job, AuditError::Closed)));
        }
        q.jobs.push_back(job);
        drop(q);
        self.shared.wake.notify_one();
        Ok(())
    }

    fn shutdown(&self) -> Result<(), AuditError> {
        let threads = self
            .threads
            .lock()
            .map_err(|_| AuditError::Poisoned { what: "threads" })?
            .take();
        let Some((sequencer, publisher)) = threads else {
            return Ok(());
        };
        let (tx, rx) = mpsc::channel();
        {
            let mut q = self.shared.lock()?;
            q.closing = true;
            q.jobs.push_back(Job::Close(tx));
        }
        self.shared.wake.notify_all();
        let me = std::thread::current().id();
        if sequencer.thread().id() == me || publisher.thread().id() == me {
            // The last handle was dropped inside a callback, on a writer thread: it cannot wait
            // for itself. The threads finish the close on their own (the publisher releases the
            // lock when it is done).
            return Ok(());
        }
        let result = rx.recv().unwrap_or_else(|_| {
            Err(AuditError::Thread {
                reason: "the writer threads ended before the log was closed".into(),
            })
        });
        let joined = [sequencer.join(), publisher.join()];
        result?;
        if joined.iter().any(Result::is_err) {
            return Err(AuditError::Thread {
                reason: "a writer thread panicked".into(),
            });
        }
        Ok(())
    }
}

fn validate_config(config: &LogConfig) -> Result<(), AuditError> {
    let bad = |reason: String| Err(AuditError::Config { reason });
    if !is_valid_key_name(&config.origin) || config.origin.len() > 255 {
        return bad(format!(
            "origin {:?} must be 1 to 255 bytes with no spaces and no `+`",
            config.origin
        ));
    }
    if config.max_batch == 0 {
        return bad("max_batch must be at least 1".into());
    }
    if config.checkpoint_interval.is_zero() {
        return bad("checkpoint_interval must be more than zero".into());
    }
    let probe = Entry {
        index: 0,
        time_ms: 0,
        prev: [0; 32],
        kind: Kind::ServerStart,
        node: config.node.clone(),
        principal: String::new(),
        resource: String::new(),
        outcome: Outcome::Ok,
        reason: String::new(),
        model: None,
        input: None,
        output: None,
        attrs: Vec::new(),
    };
    if let Err(e) = probe.encode() {
        return bad(format!(
            "node {:?} cannot be written in an entry: {e}",
            config.node
        ));
    }
    Ok(())
}

fn take_lock(dir: &Path) -> Result<File, AuditError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(AuditError::io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(AuditError::Locked {
            dir: dir.to_path_buf(),
            path,
        }),
        Err(fs::TryLockError::Error(source)) => Err(AuditError::Io { path, source }),
    }
}

impl AuditLog {
    /// Opens (creating if needed) the log in `dir`, recovering from an unclean stop, then signs a
    /// checkpoint. See the crate documentation for the recovery rule.
    ///
    /// Fails with [`AuditError::Locked`] if another writer has it open,
    /// [`AuditError::Inconsistent`] if the entries on disk do not extend the last signed tree,
    /// [`AuditError::Corrupt`] if the WAL is damaged other than by a torn last write.
    pub fn open(
        dir: &Path,
        key: LogKey,
        config: LogConfig,
    ) -> Result<(AuditLog, Recovery), AuditError> {
        validate_config(&config)?;
        fs::create_dir_all(dir).map_err(AuditError::io(dir))?;
        let lock = take_lock(dir)?;
        let recovered = recover::recover(dir, key, &config.origin)?;
        let draft = recover::entry_draft(&recovered.report, recovered.good_len);
        let mut recovery = recovered.report.clone();
        let log = AuditLog::start(dir, lock, recovered, &config)?;
        // Record the recovery, then sign.
        if let Some(draft) = draft {
            recovery.entry = Some(log.append(draft)?);
        }
        log.sign_now()?;
        Ok((log, recovery))
    }

    /// Starts the publisher and sequencer threads on a recovered log; the publisher holds `lock`
    /// until it ends.
    fn start(
        dir: &Path,
        lock: File,
        recovered: Recovered,
        config: &LogConfig,
    ) -> Result<AuditLog, AuditError> {
        let Recovered {
            signer,
            wal,
            wal_path,
            chain,
            good_len,
            tiles,
            mark,
            report: _,
        } = recovered;
        let shared = Arc::new(Shared::new());
        shared.wal_bytes(good_len);
        let (pub_tx, pub_rx) = mpsc::sync_channel(1024);
        let publisher = Publisher {
            shared: Arc::clone(&shared),
            dir: dir.to_path_buf(),
            tiles,
            mark: Some(mark),
            signer,
            interval: config.checkpoint_interval,
            published: None,
            last_start: None,
            failed: None,
            fatal: None,
            retry: Backoff::new(),
            rx: pub_rx,
            _lock: lock,
        };
        let pub_handle = std::thread::Builder::new()
            .name("sov-audit-publish".into())
            .spawn(move || publisher.run())
            .map_err(|e| AuditError::Thread {
                reason: format!("cannot start the publisher thread: {e}"),
            })?;
        let tip = Tip {
            next: chain.size,
            last_leaf: chain.last_leaf,
            last_time: chain.last_time,
        };
        let sequencer = Sequencer {
            shared: Arc::clone(&shared),
            dir: dir.to_path_buf(),
            wal,
            wal_path,
            tip,
            good: Good {
                tip,
                len: good_len,
                last_record: chain.last_offset,
            },
            node: config.node.clone(),
            max_batch: config.max_batch,
            publisher: pub_tx,
            failed: None,
            retry: Backoff::new(),
        };
        let seq_handle = std::thread::Builder::new()
            .name("sov-audit-seq".into())
            .spawn(move || sequencer.run())
            .map_err(|e| AuditError::Thread {
                reason: format!("cannot start the sequencer thread: {e}"),
            })?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                shared,
                threads: Mutex::new(Some((seq_handle, pub_handle))),
            }),
        })
    }

    /// Appends an entry and returns once it is durable (in the WAL, fdatasynced). Its index,
    /// time, previous hash and node are filled in by the sequencer.
    pub fn append(&self, draft: Draft) -> Result<Appended, AuditError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(draft, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(AuditError::Failed {
                reason: "the sequencer thread stopped".into(),
            })
        })
    }

    /// Queues an entry; `done` is called once with the result, after the entry is durable (or
    /// with the error). `done` runs on the log's sequencer thread: it must be quick and must not
    /// block on the log (calling `submit` again is fine, `append` is not).
    pub fn submit(
        &self,
        draft: Draft,
        done: impl FnOnce(Result<Appended, AuditError>) + Send + 'static,
    ) {
        let shared = Arc::clone(&self.inner.shared);
        let start = Instant::now();
        let done = move |r: Result<Appended, AuditError>| {
            shared.observe_append(start.elapsed());
            done(r);
        };
        if let Err(rejected) = self
            .inner
            .push(Job::Append(Box::new(draft), Box::new(done)))
            && let (Job::Append(_, done), err) = *rejected
        {
            done(Err(err));
        }
    }

    /// Signs and publishes a checkpoint covering every entry acknowledged before this call
    /// (unless the latest checkpoint already does); returns its tree size.
    pub fn sign_now(&self) -> Result<u64, AuditError> {
        let (tx, rx) = mpsc::channel();
        if let Err(rejected) = self.inner.push(Job::Sign(tx)) {
            return Err(rejected.1);
        }
        rx.recv().unwrap_or_else(|_| {
            Err(AuditError::Failed {
                reason: "the writer threads stopped".into(),
            })
        })
    }

    /// Closes the log: every entry queued before is written, a final checkpoint is signed, the
    /// threads stop, `running` is removed and the lock released. Later appends fail with
    /// [`AuditError::Closed`]. Closing again does nothing.
    ///
    /// A log that is degraded (see [`AuditLog::health`]) first keeps trying to recover, for at
    /// most about 2 s; if it cannot, this returns the error and leaves `running` in place, so the
    /// next open recovers as after a crash (every acknowledged entry is kept).
    pub fn close(&self) -> Result<(), AuditError> {
        self.inner.shutdown()
    }

    /// Whether the log accepts entries now. Cheap (one short lock): a server can call it for
    /// every health check. [`Health::Degraded`] after a failed write, until the log has
    /// recovered by itself (see the crate documentation, `# Failures`); while degraded,
    /// [`AuditLog::append`], [`AuditLog::submit`] and [`AuditLog::sign_now`] fail at once with
    /// [`AuditError::Failed`].
    pub fn health(&self) -> Health {
        self.inner.shared.health()
    }

    /// Totals since the log was opened (entries appended, write failures, recoveries), for
    /// metrics. Lock-free.
    pub fn counters(&self) -> Counters {
        self.inner.shared.counters()
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// A reader of the latest published checkpoint (same as [`LogReader::open`] on [`Self::dir`]).
    pub fn reader(&self) -> Result<LogReader, AuditError> {
        LogReader::open(&self.inner.dir)
    }
}

impl crate::Record for AuditLog {
    fn submit(&self, draft: Draft, done: sov_audit_core::record::Done) {
        AuditLog::submit(self, draft, move |r| {
            done(r.map_err(|e| crate::RecordError::from_error(&e)));
        });
    }
}
