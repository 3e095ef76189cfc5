//! What the writer threads share: the job queue, the failure state of each component (the WAL
//! and the publisher), the counters, and the retry timer both use.
//!
//! A failure is tracked per component because each recovers on its own: the sequencer once the
//! WAL is cut back to its last acknowledged batch and the disk takes writes again, the publisher
//! once a checkpoint is written. Appends are accepted only while both are healthy.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{Appended, AuditError, Draft};

pub(crate) type Callback = Box<dyn FnOnce(Result<Appended, AuditError>) + Send + 'static>;

pub(crate) enum Job {
    Append(Box<Draft>, Callback),
    Sign(mpsc::Sender<Result<u64, AuditError>>),
    Close(mpsc::Sender<Result<(), AuditError>>),
}

/// The part of the writer that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Component {
    /// The sequencer: writing or fdatasyncing `entries.wal`.
    Wal,
    /// The publisher: tiles, `signed`, `checkpoint`.
    Publish,
}

impl Component {
    fn name(self) -> &'static str {
        match self {
            Component::Wal => "entries.wal",
            Component::Publish => "publishing",
        }
    }
}

/// Whether the log accepts entries now (see [`crate::AuditLog::health`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Appends are accepted.
    Ok,
    /// A write failed; appends are refused with [`AuditError::Failed`] until the log recovers by
    /// itself (it retries every 0.5 s, backing off to 5 s).
    Degraded {
        /// The latest failure of each failed part (`entries.wal: ...`, `publishing: ...`).
        reason: String,
        /// When the log became degraded, in ms since the Unix epoch.
        since_ms: u64,
        /// Failed attempts since then: the first failure and every failed retry.
        failures: u64,
    },
}

/// Totals since the log was opened, for metrics (see [`crate::AuditLog::counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Entries made durable and acknowledged (recovery entries included).
    pub entries_appended: u64,
    /// Failed writes: every failed WAL batch, publication and recovery attempt.
    pub write_failures: u64,
    /// Times the log went from degraded back to accepting entries.
    pub recoveries: u64,
    /// Bytes of `entries.wal` written and synced.
    pub wal_bytes: u64,
    /// How long appends took, from the call to the acknowledgement (durable or failed).
    pub append_latency: Latency,
}

/// Upper bounds of the append-latency buckets, in microseconds; the last bucket (+Inf) is
/// [`Latency::count`].
pub const APPEND_BUCKETS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// A latency histogram's totals, as Prometheus reads one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Appends at or under each bound of [`APPEND_BUCKETS_US`] (cumulative).
    pub buckets: [u64; APPEND_BUCKETS_US.len()],
    /// Appends in all.
    pub count: u64,
    /// Their durations summed, in microseconds.
    pub sum_us: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Failure {
    reason: String,
    since_ms: u64,
    failures: u64,
}

#[derive(Default)]
pub(crate) struct Queue {
    pub jobs: VecDeque<Job>,
    pub closing: bool,
    wal: Option<Failure>,
    publish: Option<Failure>,
}

impl Queue {
    /// Why appends are refused now, if they are.
    pub(crate) fn refusal(&self) -> Option<String> {
        match self.health() {
            Health::Ok => None,
            Health::Degraded { reason, .. } => Some(reason),
        }
    }

    fn health(&self) -> Health {
        let failed: Vec<(Component, &Failure)> = [
            (Component::Wal, self.wal.as_ref()),
            (Component::Publish, self.publish.as_ref()),
        ]
        .into_iter()
        .filter_map(|(c, f)| f.map(|f| (c, f)))
        .collect();
        if failed.is_empty() {
            return Health::Ok;
        }
        Health::Degraded {
            reason: failed
                .iter()
                .map(|(c, f)| format!("{}: {}", c.name(), f.reason))
                .collect::<Vec<_>>()
                .join("; "),
            since_ms: failed.iter().map(|(_, f)| f.since_ms).min().unwrap_or(0),
            failures: failed
                .iter()
                .fold(0u64, |n, (_, f)| n.saturating_add(f.failures)),
        }
    }

    fn slot(&mut self, c: Component) -> &mut Option<Failure> {
        match c {
            Component::Wal => &mut self.wal,
            Component::Publish => &mut self.publish,
        }
    }
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    pub wake: Condvar,
    appended: AtomicU64,
    write_failures: AtomicU64,
    recoveries: AtomicU64,
    wal_bytes: AtomicU64,
    /// Appends in each bucket of [`APPEND_BUCKETS_US`] (not cumulative), then over the last.
    append_buckets: [AtomicU64; APPEND_BUCKETS_US.len() + 1],
    append_sum_us: AtomicU64,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            appended: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            wal_bytes: AtomicU64::new(0),
            append_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            append_sum_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Queue>, AuditError> {
        self.queue
            .lock()
            .map_err(|_| AuditError::Poisoned { what: "job queue" })
    }

    /// Records a failed attempt of `c`: appends are refused until [`Shared::clear`].
    pub(crate) fn fail(&self, c: Component, reason: &str) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        match q.slot(c) {
            Some(f) => {
                f.failures = f.failures.saturating_add(1);
                if f.reason != reason {
                    tracing::warn!(part = c.name(), reason, "audit log still failing");
                    f.reason = reason.to_owned();
                }
            }
            slot @ None => {
                tracing::error!(
                    part = c.name(),
                    reason,
                    "audit log stopped accepting entries; retrying"
                );
                *slot = Some(Failure {
                    reason: reason.to_owned(),
                    since_ms: now_ms(),
                    failures: 1,
                });
            }
        }
    }

    /// `c` works again; once both components do, appends are accepted again.
    pub(crate) fn clear(&self, c: Component) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        if q.slot(c).take().is_some() {
            tracing::info!(part = c.name(), "audit log part recovered");
            if q.wal.is_none() && q.publish.is_none() {
                self.recoveries.fetch_add(1, Ordering::Relaxed);
                tracing::info!("audit log accepts entries again");
            }
        }
    }

    pub(crate) fn appended(&self, n: u64) {
        self.appended.fetch_add(n, Ordering::Relaxed);
    }

    /// The WAL's length after a synced batch.
    pub(crate) fn wal_bytes(&self, len: u64) {
        self.wal_bytes.store(len, Ordering::Relaxed);
    }

    /// One append's latency.
    pub(crate) fn observe_append(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = APPEND_BUCKETS_US
            .iter()
            .position(|bound| us <= *bound)
            .unwrap_or(APPEND_BUCKETS_US.len());
        self.append_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.append_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(crate) fn health(&self) -> Health {
        match self.queue.lock() {
            Ok(q) => q.health(),
            Err(_) => Health::Degraded {
                reason: "internal state poisoned by a panic".into(),
                since_ms: 0,
                failures: 0,
            },
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        Counters {
            entries_appended: self.appended.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
            recoveries: self.recoveries.load(Ordering::Relaxed),
            wal_bytes: self.wal_bytes.load(Ordering::Relaxed),
            append_latency: self.latency(),
        }
    }

    fn latency(&self) -> Latency {
        let mut latency = Latency {
            sum_us: self.append_sum_us.load(Ordering::Relaxed),
            ..Latency::default()
        };
        let mut total = 0u64;
        for (i, n) in self.append_buckets.iter().enumerate() {
            total = total.saturating_add(n.load(Ordering::Relaxed));
            if let Some(b) = latency.buckets.get_mut(i) {
                *b = total;
            }
        }
        latency.count = total;
        latency
    }
}

/// When a failed component tries again: 0.5 s after the failure, doubling to at most 5 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    delay: Duration,
    at: Instant,
}

const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(5);

impl Backoff {
    pub(crate) fn new() -> Self {
        Self {
            delay: Duration::ZERO,
            at: Instant::now(),
        }
    }

    /// An attempt failed: schedule the next one.
    pub(crate) fn failed(&mut self) {
        self.delay = if self.delay.is_zero() {
            FIRST_RETRY
        } else {
            self.delay.saturating_mul(2).min(MAX_RETRY)
        };
        let now = Instant::now();
        self.at = now.checked_add(self.delay).unwrap_or(now);
    }

    pub(crate) fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// When the next attempt is due.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
