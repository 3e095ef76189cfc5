//! The writer: open and recovery, the sequencer thread (WAL, group commit, acknowledgements) and
//! the publisher thread (tiles, `signed`, checkpoints).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sov_audit_core::checkpoint::Checkpoint;
use sov_audit_core::entry::{Entry, Kind, MAX_ENTRY_SIZE, Outcome};
use sov_audit_core::hash::{Hash, leaf_hash};
use sov_audit_core::note::{Note, is_valid_key_name};
use sov_keys::LogKey;

use crate::sign::{Signer, b64, read_signed, signed_text};
use crate::tiles::TileBuilder;
use crate::wal::{self, MAX_BATCH_BYTES};
use crate::{
    Appended, AuditError, CHECKPOINT_FILE, Draft, ENTRIES_FILE, LOCK_FILE, LogConfig, LogReader,
    ORIGIN_FILE, RUNNING_FILE, Recovery, SIGNED_FILE, VKEYS_FILE, fsx,
};

type Callback = Box<dyn FnOnce(Result<Appended, AuditError>) + Send + 'static>;

enum Job {
    Append(Box<Draft>, Callback),
    Sign(mpsc::Sender<Result<u64, AuditError>>),
    Close(mpsc::Sender<Result<(), AuditError>>),
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closing: bool,
    failed: Option<String>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> Result<MutexGuard<'_, Queue>, AuditError> {
        self.queue
            .lock()
            .map_err(|_| AuditError::Poisoned { what: "job queue" })
    }

    /// Marks the log failed: every later job is refused with the reason.
    fn fail(&self, reason: &str) {
        tracing::error!(reason, "audit log stopped accepting entries");
        if let Ok(mut q) = self.queue.lock()
            && q.failed.is_none()
        {
            q.failed = Some(reason.to_owned());
        }
    }
}

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
        if let Some(reason) = &q.failed {
            let reason = reason.clone();
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

/// Runs a caller's callback; a panic in it is logged and does not take the writer down.
fn call(done: Callback, result: Result<Appended, AuditError>) {
    let run = std::panic::AssertUnwindSafe(move || done(result));
    if std::panic::catch_unwind(run).is_err() {
        tracing::error!("an audit append callback panicked");
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
        wal::replay(&wal_path, scan.good_len, |bytes, leaf| {
            tiles.push(bytes, leaf)
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
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
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
            rx: pub_rx,
            _lock: lock,
        };
        let pub_handle = std::thread::Builder::new()
            .name("sov-audit-publish".into())
            .spawn(move || publisher.run())
            .map_err(|e| AuditError::Thread {
                reason: format!("cannot start the publisher thread: {e}"),
            })?;
        let sequencer = Sequencer {
            shared: Arc::clone(&shared),
            wal: wal_file,
            wal_path,
            next: scan.chain.size,
            last_leaf: scan.chain.last_leaf,
            last_time: scan.chain.last_time,
            node: config.node.clone(),
            max_batch: config.max_batch,
            publisher: pub_tx,
            failed: None,
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
    pub fn close(&self) -> Result<(), AuditError> {
        self.inner.shutdown()
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

#[derive(Default)]
struct Batch {
    wal: Vec<u8>,
    acks: Vec<(Callback, Appended)>,
    entries: Vec<(Vec<u8>, Hash)>,
}

enum PubMsg {
    Batch(Vec<(Vec<u8>, Hash)>),
    Sign(mpsc::Sender<Result<u64, AuditError>>),
    Close(mpsc::Sender<Result<(), AuditError>>),
}

/// Owns the WAL: assigns indexes, writes batches, fdatasyncs, acknowledges.
struct Sequencer {
    shared: Arc<Shared>,
    wal: File,
    wal_path: PathBuf,
    next: u64,
    last_leaf: Hash,
    last_time: u64,
    node: String,
    max_batch: usize,
    publisher: mpsc::SyncSender<PubMsg>,
    failed: Option<String>,
}

impl Sequencer {
    fn run(mut self) {
        loop {
            let jobs = match self.take_jobs() {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::error!(error = %e, "audit sequencer stopping");
                    return;
                }
            };
            let mut batch = Batch::default();
            for job in jobs {
                match job {
                    Job::Append(draft, done) => self.add(draft, done, &mut batch),
                    Job::Sign(tx) => {
                        self.flush(&mut batch);
                        self.forward(PubMsg::Sign(tx));
                    }
                    Job::Close(tx) => {
                        self.flush(&mut batch);
                        self.forward(PubMsg::Close(tx));
                        return;
                    }
                }
            }
            self.flush(&mut batch);
        }
    }

    /// Waits for work, then takes up to `max_batch` appends (stopping after a control job).
    fn take_jobs(&self) -> Result<Vec<Job>, AuditError> {
        let mut q = self.shared.lock()?;
        while q.jobs.is_empty() {
            q = self
                .shared
                .wake
                .wait(q)
                .map_err(|_| AuditError::Poisoned { what: "job queue" })?;
        }
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
        Ok(out)
    }

    fn add(&mut self, draft: Box<Draft>, done: Callback, batch: &mut Batch) {
        if let Some(reason) = &self.failed {
            call(
                done,
                Err(AuditError::Failed {
                    reason: reason.clone(),
                }),
            );
            return;
        }
        let draft = *draft;
        let time = now_ms().max(self.last_time);
        let mut attrs = draft.attrs;
        attrs.sort_by(|a, b| a.0.cmp(&b.0));
        let entry = Entry {
            index: self.next,
            time_ms: time,
            prev: self.last_leaf,
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
        // Keep the framed batch (records + terminator) within MAX_BATCH_BYTES.
        if batch
            .wal
            .len()
            .saturating_add(bytes.len())
            .saturating_add(4)
            > MAX_BATCH_BYTES
        {
            self.flush(batch);
            if let Some(reason) = &self.failed {
                call(
                    done,
                    Err(AuditError::Failed {
                        reason: reason.clone(),
                    }),
                );
                return;
            }
        }
        let leaf = leaf_hash(&bytes);
        batch.wal.extend_from_slice(&len);
        batch.wal.extend_from_slice(&bytes);
        batch.acks.push((
            done,
            Appended {
                index: self.next,
                leaf,
            },
        ));
        batch.entries.push((bytes, leaf));
        self.next = self.next.saturating_add(1);
        self.last_leaf = leaf;
        self.last_time = time;
    }

    /// Writes the batch to the WAL with one write, fdatasyncs, then acknowledges its entries and
    /// hands them to the publisher.
    fn flush(&mut self, batch: &mut Batch) {
        if batch.acks.is_empty() {
            return;
        }
        batch.wal.extend_from_slice(&[0, 0]);
        let written = self
            .wal
            .write_all(&batch.wal)
            .and_then(|()| self.wal.sync_data());
        batch.wal.clear();
        let acks = std::mem::take(&mut batch.acks);
        let entries = std::mem::take(&mut batch.entries);
        match written {
            Ok(()) => {
                for (done, appended) in acks {
                    call(done, Ok(appended));
                }
                self.forward(PubMsg::Batch(entries));
            }
            Err(e) => {
                let reason = format!("writing `{}` failed: {e}", self.wal_path.display());
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
            let reason = "the publisher thread stopped".to_owned();
            self.fail(&reason);
            match msg {
                PubMsg::Sign(tx) => {
                    let _ = tx.send(Err(AuditError::Failed { reason }));
                }
                PubMsg::Close(tx) => {
                    let _ = tx.send(Err(AuditError::Failed { reason }));
                }
                PubMsg::Batch(_) => {}
            }
        }
    }

    fn fail(&mut self, reason: &str) {
        if self.failed.is_none() {
            self.failed = Some(reason.to_owned());
            self.shared.fail(reason);
        }
    }
}

/// Owns the tiles and the signing key: writes tiles as entries arrive, and every
/// `checkpoint_interval` (or on request) syncs them, writes `signed`, signs and publishes the
/// checkpoint.
struct Publisher {
    shared: Arc<Shared>,
    dir: PathBuf,
    tiles: TileBuilder,
    signer: Signer,
    interval: Duration,
    /// Size of the last published checkpoint (`None` before the first).
    published: Option<u64>,
    last_start: Option<Instant>,
    failed: Option<String>,
    rx: mpsc::Receiver<PubMsg>,
    /// The writer's lock, held until this (the last) thread ends.
    _lock: File,
}

impl Publisher {
    fn run(mut self) {
        loop {
            let behind = self.failed.is_none() && self.published != Some(self.tiles.size());
            let msg = if behind {
                let now = Instant::now();
                let wait = self.last_start.map_or(Duration::ZERO, |t| {
                    self.interval
                        .saturating_sub(now.saturating_duration_since(t))
                });
                if wait.is_zero() {
                    self.periodic();
                    continue;
                }
                self.rx.recv_timeout(wait)
            } else {
                self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            };
            match msg {
                Ok(PubMsg::Batch(entries)) => {
                    if self.failed.is_some() {
                        continue;
                    }
                    for (bytes, leaf) in entries {
                        if let Err(e) = self.tiles.push(&bytes, leaf) {
                            self.fail(&e);
                            break;
                        }
                    }
                }
                Ok(PubMsg::Sign(tx)) => {
                    let _ = tx.send(self.publish());
                }
                Ok(PubMsg::Close(tx)) => {
                    let result = self.publish().and_then(|_| {
                        let running = self.dir.join(RUNNING_FILE);
                        fs::remove_file(&running).map_err(AuditError::io(&running))?;
                        fsx::sync_dir(&self.dir)
                    });
                    let _ = tx.send(result);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => self.periodic(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn periodic(&mut self) {
        if let Err(e) = self.publish() {
            tracing::error!(error = %e.chain(), "publishing the audit checkpoint failed");
        }
    }

    fn fail(&mut self, e: &AuditError) {
        let reason = e.chain();
        self.shared.fail(&reason);
        self.failed = Some(reason);
    }

    /// Publishes a checkpoint of everything received, unless the last one already covers it.
    fn publish(&mut self) -> Result<u64, AuditError> {
        if let Some(reason) = &self.failed {
            return Err(AuditError::Failed {
                reason: reason.clone(),
            });
        }
        let size = self.tiles.size();
        if self.published == Some(size) {
            return Ok(size);
        }
        self.last_start = Some(Instant::now());
        match self.write_checkpoint() {
            Ok(()) => {
                self.published = Some(size);
                Ok(size)
            }
            Err(e) => {
                self.fail(&e);
                Err(e)
            }
        }
    }

    /// The write order: partial tiles; fsync of every tile written since the last checkpoint and
    /// of their directories; `signed` (durable); sign; `checkpoint` (durable); then old partial
    /// tiles may go.
    fn write_checkpoint(&mut self) -> Result<(), AuditError> {
        let size = self.tiles.size();
        let root = self.tiles.root();
        self.tiles.write_partials()?;
        self.tiles.sync()?;
        fsx::write_atomic(
            &self.dir.join(SIGNED_FILE),
            signed_text(size, &root).as_bytes(),
            true,
        )?;
        let note = self.signer.sign(size, &root, now_secs())?;
        fsx::write_atomic(&self.dir.join(CHECKPOINT_FILE), &note, true)?;
        self.tiles.remove_stale();
        Ok(())
    }
}
