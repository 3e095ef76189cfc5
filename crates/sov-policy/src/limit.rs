//! Rate limits: a token bucket per key (a principal's name, or a peer address for failed
//! authentication), in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bucket's size and refill rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per minute, sustained.
    pub per_minute: u32,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

/// Token buckets by key. Keys whose bucket is full again are forgotten, and the number of keys
/// is capped, so a flood of distinct keys cannot grow memory without bound: when the cap is
/// reached, new keys share one overflow bucket (so they are limited together, never let through).
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

const OVERFLOW: &str = "\u{0}overflow";

impl RateLimiter {
    /// A limiter allowing `rate` per key, tracking at most `max_keys` keys.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.rate.per_minute) / 60.0
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second()).min(f64::from(self.rate.burst));
        b.at = now;
    }

    /// Takes one request from `key`'s bucket: `Ok` if allowed, else how long until one is.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.take(key, now, true)
    }

    /// Whether `key` has a request left, without taking it.
    pub fn peek(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.take(key, now, false)
    }

    fn take(&self, key: &str, now: Instant, consume: bool) -> Result<(), Duration> {
        if self.rate.per_minute == 0 || self.rate.burst == 0 {
            // A zero rate refuses everything (the configuration says so explicitly).
            return Err(Duration::from_secs(60));
        }
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let burst = f64::from(self.rate.burst);
            let per_second = self.per_second();
            buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * per_second < burst
            });
        }
        let key = if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            OVERFLOW
        } else {
            key
        };
        let burst = f64::from(self.rate.burst);
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            if consume {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second();
            Err(Duration::from_secs_f64(wait.max(0.001)))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let l = RateLimiter::new(
            Rate {
                per_minute: 60,
                burst: 3,
            },
            10,
        );
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check("a", t0).is_ok());
        }
        let wait = l.check("a", t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        // Other keys have buckets of their own.
        assert!(l.check("b", t0).is_ok());
        // One per second refills.
        assert!(l.check("a", t0 + Duration::from_millis(1000)).is_ok());
        assert!(l.check("a", t0 + Duration::from_millis(1000)).is_err());
        // peek does not consume.
        assert!(l.peek("c", t0).is_ok());
        for _ in 0..3 {
            assert!(l.check("c", t0).is_ok());
        }
    }

    #[test]
    fn many_keys_share_an_overflow_bucket_and_are_still_limited() {
        let l = RateLimiter::new(
            Rate {
                per_minute: 60,
                burst: 2,
            },
            4,
        );
        let t0 = Instant::now();
        for k in 0..4 {
            l.check(&format!("k{k}"), t0).unwrap();
        }
        // The map is full of non-full buckets: new keys go to the overflow bucket.
        assert!(l.check("x1", t0).is_ok());
        assert!(l.check("x2", t0).is_ok());
        assert!(l.check("x3", t0).is_err());
        // Once the old buckets refill they are forgotten and new keys get their own again.
        let later = t0 + Duration::from_secs(10);
        assert!(l.check("y", later).is_ok());
        assert!(l.buckets.lock().unwrap().len() <= 4);
    }

    #[test]
    fn a_zero_rate_refuses() {
        let l = RateLimiter::new(
            Rate {
                per_minute: 0,
                burst: 5,
            },
            4,
        );
        assert!(l.check("a", Instant::now()).is_err());
    }
}
