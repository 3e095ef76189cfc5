//! The writer: open and recovery, the sequencer thread (WAL, group commit, acknowledgements) and
//! the publisher thread (tiles, `signed`, checkpoints).

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use sov_audit_core::checkpoint::Checkpoint;
use sov_audit_core::entry::{Entry, Kind, Outcome};
use sov_audit_core::hash::Hash;
use sov_audit_core::note::{Note, is_valid_key_name};
use sov_keys::LogKey;

use crate::publisher::Publisher;
use crate::sequencer::{Good, Sequencer, Tip};
use crate::shared::{Backoff, Counters, Health, Job, Shared};
use crate::sign::{Signer, b64, read_signed};
use crate::tiles::TileBuilder;
use crate::wal;
use crate::{
    Appended, AuditError, CHECKPOINT_FILE, Draft, ENTRIES_FILE, LOCK_FILE, LogConfig, LogReader,
    ORIGIN_FILE, RUNNING_FILE, Recovery, SIGNED_FILE, VKEYS_FILE, fsx,
};

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

/// Checks (or, for a new log, writes) the `origin` file.
fn check_origin(dir: &Path, origin: &str, wal_len: u64) -> Result<(), AuditError> {
    let path = dir.join(ORIGIN_FILE);
    match fsx::read_optional(&path, 4096)? {
        Some(bytes) => {
            let found = String::from_utf8_lossy(&bytes);
            let found = found.strip_suffix('\n').unwrap_or(&found);
            if found != origin {
                return Err(AuditError::OriginMismatch {
                    path,
                    found: found.to_owned(),
                    configured: origin.to_owned(),
                });
            }
            Ok(())
        }
        None if wal_len > 0 => Err(AuditError::Malformed {
            path,
            reason: "missing, but entries.wal holds entries: refusing to guess the origin".into(),
        }),
        None => fsx::write_atomic(&path, format!("{origin}\n").as_bytes(), true),
    }
}

/// Checks (or writes) the `vkeys` file: the log must keep signing with the key it published.
fn check_vkeys(dir: &Path, signer: &Signer) -> Result<(), AuditError> {
    let path = dir.join(VKEYS_FILE);
    let want = signer.vkeys_text();
    match fsx::read_optional(&path, 64 * 1024)? {
        Some(bytes) if bytes == want.as_bytes() => Ok(()),
        Some(_) => Err(AuditError::KeyMismatch { path }),
        None => fsx::write_atomic(&path, want.as_bytes(), true),
    }
}

/// The tree head in the `checkpoint` file, if it parses (it is only a second witness beside
/// `signed`, which is written first).
fn read_checkpoint_head(path: &Path) -> Result<Option<(u64, Hash)>, AuditError> {
    let Some(bytes) = fsx::read_optional(path, 1 << 20)? else {
        return Ok(None);
    };
    Ok(Note::parse(&bytes)
        .ok()
        .and_then(|n| Checkpoint::parse_text(&n.text).ok())
        .map(|c| (c.size, c.root)))
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
        let wal_path = dir.join(ENTRIES_FILE);
        let wal_len = match fs::metadata(&wal_path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(AuditError::Io {
                    path: wal_path,
                    source,
                });
            }
        };
        check_origin(dir, &config.origin, wal_len)?;
        let signer = Signer::new(key, &config.origin);
        check_vkeys(dir, &signer)?;

        let signed_path = dir.join(SIGNED_FILE);
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let mut heads = Vec::new();
        if let Some(head) = read_signed(&signed_path)? {
            heads.push((signed_path, head));
        }
        if let Some(head) = read_checkpoint_head(&checkpoint_path)? {
            heads.push((checkpoint_path, head));
        }
        let running_path = dir.join(RUNNING_FILE);
        let unclean = fsx::exists(&running_path)?;

        // 1. Validate the WAL (nothing is modified yet).
        let sizes: Vec<u64> = heads.iter().map(|(_, (s, _))| *s).collect();
        let scan = wal::scan(&wal_path, &sizes)?;
        // 2. It must extend every tree the log has signed.
        for (path, (size, root)) in &heads {
            let found = if scan.chain.size < *size {
                Some(format!(
                    "entries.wal holds only {} valid entries (root {})",
                    scan.chain.size,
                    b64(&scan.chain.range.root())
                ))
            } else {
                match scan.roots.iter().find(|(s, _)| s == size) {
                    Some((_, r)) if r == root => None,
                    Some((_, r)) => Some(format!(
                        "the entries in entries.wal give root {} at size {size}",
                        b64(r)
                    )),
                    None => Some(format!("no root could be computed at size {size}")),
                }
            };
            if let Some(found) = found {
                return Err(AuditError::Inconsistent {
                    path: path.clone(),
                    signed_size: *size,
                    signed_root: b64(root),
                    found,
                });
            }
        }
        // 3. Cut a torn tail.
        let truncated = scan.file_len.saturating_sub(scan.good_len);
        let wal_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)
            .map_err(AuditError::io(&wal_path))?;
        if truncated > 0 {
            tracing::warn!(
                bytes = truncated,
                offset = scan.good_len,
                "truncating a torn tail of the audit WAL"
            );
            wal_file
                .set_len(scan.good_len)
                .and_then(|()| wal_file.sync_all())
                .map_err(AuditError::io(&wal_path))?;
        }
        if wal_len == 0 {
            wal_file.sync_all().map_err(AuditError::io(&wal_path))?;
            fsx::sync_dir(dir)?;
        }
        fsx::write_atomic(&running_path, b"", true)?;
        // 4. Rebuild the tiles from the WAL, repairing what is missing or wrong.
        let mut tiles = TileBuilder::new(dir, true);
        wal::replay(&wal_path, scan.good_len, |_, bytes, leaf| {
            tiles.push(bytes, leaf)?;
            tiles.write_full()
        })?;
        tiles.set_repair(false);
        if tiles.repaired > 0 {
            tracing::warn!(
                tiles = tiles.repaired,
                "rewrote missing or damaged audit tiles"
            );
        }
        if tiles.size() != scan.chain.size {
            return Err(AuditError::Corrupt {
                path: wal_path,
                offset: scan.good_len,
                reason: format!(
                    "replay found {} entries, the scan {} (the file changed while opening)",
                    tiles.size(),
                    scan.chain.size
                ),
            });
        }

        // 5. Start the threads.
        let shared = Arc::new(Shared::new());
        let (pub_tx, pub_rx) = mpsc::sync_channel(1024);
        let publisher = Publisher {
            shared: Arc::clone(&shared),
            dir: dir.to_path_buf(),
            tiles,
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
            next: scan.chain.size,
            last_leaf: scan.chain.last_leaf,
            last_time: scan.chain.last_time,
        };
        let sequencer = Sequencer {
            shared: Arc::clone(&shared),
            dir: dir.to_path_buf(),
            wal: wal_file,
            wal_path,
            tip,
            good: Good {
                tip,
                len: scan.good_len,
                last_record: scan.chain.last_offset,
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
        let log = AuditLog {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                shared,
                threads: Mutex::new(Some((seq_handle, pub_handle))),
            }),
        };

        // 6. Record the recovery, then sign.
        let mut recovery = Recovery {
            size: scan.chain.size,
            truncated_bytes: truncated,
            unclean,
            entry: None,
        };
        if unclean || truncated > 0 {
            let mut why = Vec::new();
            if unclean {
                why.push("the previous run did not close cleanly".to_owned());
            }
            if truncated > 0 {
                why.push(format!(
                    "{truncated} bytes of a torn write were cut from entries.wal at byte {}",
                    scan.good_len
                ));
            }
            let draft = Draft {
                kind: Kind::Recovery,
                principal: "system".into(),
                resource: ENTRIES_FILE.into(),
                outcome: Outcome::Ok,
                reason: format!("recovered {} entries: {}", scan.chain.size, why.join("; ")),
                model: None,
                input: None,
                output: None,
                attrs: vec![
                    ("recovered_size".into(), scan.chain.size.to_string()),
                    ("truncated_bytes".into(), truncated.to_string()),
                    ("unclean".into(), unclean.to_string()),
                ],
            };
            recovery.entry = Some(log.append(draft)?);
        }
        log.sign_now()?;
        Ok((log, recovery))
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
