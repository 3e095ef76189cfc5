//! How many entries requests without a valid token may add to the record.
//!
//! Every refusal is accountable, but a client without a token must not be able to grow the
//! record at the rate it sends requests (a record written for an attacker is a disk filled by
//! one). So an unauthenticated refusal gets an entry of its own only while the node is under a
//! rate of such entries ([`crate::Limits::unauthenticated_entries`]) and its address is under the
//! failed-authentication limit; every other one is counted here, by status and address, and the
//! counts become one summary entry when [`Unrecorded::take`] is called (every
//! [`crate::FLUSH_INTERVAL`] by [`crate::serve`], and when it stops).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use sov_audit_core::entry::{Kind, Outcome};
use sov_kernel::node::NodeEntry;
use sov_policy::{Rate, RateLimiter};

/// Distinct addresses named in one summary (the count goes on beyond it).
const MAX_ADDRESSES: usize = 16;

/// The refusals counted instead of recorded one by one.
#[derive(Debug)]
pub(crate) struct Unrecorded {
    entries: RateLimiter,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
pub(crate) struct Counts {
    requests: u64,
    by_status: BTreeMap<u16, u64>,
    addresses: BTreeSet<String>,
    more_addresses: bool,
    first_ms: u64,
    last_ms: u64,
}

const NODE: &str = "node";

impl Unrecorded {
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            entries: RateLimiter::new(rate, 1),
            counts: Mutex::new(Counts::default()),
        }
    }

    /// Whether one more unauthenticated refusal may have an entry of its own now.
    pub(crate) fn admit(&self, now: Instant) -> bool {
        self.entries.check(NODE, now).is_ok()
    }

    /// Counts a refusal answered with `status` to `peer` that has no entry of its own.
    pub(crate) fn count(&self, peer: &str, status: u16) {
        let now = sov_policy::store::now_ms();
        let mut c = match self.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if c.requests == 0 {
            c.first_ms = now;
        }
        c.requests = c.requests.saturating_add(1);
        c.last_ms = now;
        *c.by_status.entry(status).or_default() += 1;
        if c.addresses.len() < MAX_ADDRESSES {
            c.addresses.insert(peer.to_owned());
        } else if !c.addresses.contains(peer) {
            c.more_addresses = true;
        }
    }

    /// Everything counted since the last call, if anything was, as a summary entry and the
    /// counts themselves (to [`Unrecorded::put_back`] if the entry cannot be written).
    pub(crate) fn take(&self) -> Option<(NodeEntry, Counts)> {
        let c = {
            let mut guard = match self.counts.lock() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            std::mem::take(&mut *guard)
        };
        if c.requests == 0 {
            return None;
        }
        Some((c.entry(), c))
    }

    /// Counts taken by [`Unrecorded::take`] whose entry could not be written: they go into the
    /// next summary.
    pub(crate) fn put_back(&self, old: Counts) {
        let mut c = match self.counts.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        c.first_ms = if c.requests == 0 {
            old.first_ms
        } else {
            c.first_ms.min(old.first_ms)
        };
        c.last_ms = c.last_ms.max(old.last_ms);
        c.requests = c.requests.saturating_add(old.requests);
        for (status, n) in old.by_status {
            *c.by_status.entry(status).or_default() += n;
        }
        c.more_addresses |= old.more_addresses;
        for a in old.addresses {
            if c.addresses.len() < MAX_ADDRESSES {
                c.addresses.insert(a);
            } else if !c.addresses.contains(&a) {
                c.more_addresses = true;
            }
        }
    }
}

impl Counts {
    fn entry(&self) -> NodeEntry {
        let c = self;
        let statuses: Vec<String> = c
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        let mut addresses: Vec<String> = c.addresses.iter().cloned().collect();
        if c.more_addresses {
            addresses.push("...".to_owned());
        }
        let mut entry = NodeEntry::new(Kind::Refusal, "unauthenticated", Outcome::Denied).reason(
            format!(
                "{} requests without a valid token were refused without an entry of their own (over the limit of such entries)",
                c.requests
            ),
        );
        entry.attrs = vec![
            ("addresses".to_owned(), addresses.join(",")),
            ("first_ms".to_owned(), c.first_ms.to_string()),
            ("last_ms".to_owned(), c.last_ms.to_string()),
            ("requests".to_owned(), c.requests.to_string()),
            ("statuses".to_owned(), statuses.join(",")),
            ("summary".to_owned(), "true".to_owned()),
        ];
        entry
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn counts_become_one_summary_then_reset() {
        let u = Unrecorded::new(Rate {
            per_minute: 1,
            burst: 2,
        });
        let now = Instant::now();
        assert!(u.admit(now) && u.admit(now) && !u.admit(now));
        assert!(u.take().is_none());
        for i in 0..40 {
            u.count(&format!("10.0.0.{i}"), if i % 2 == 0 { 401 } else { 429 });
        }
        let (_, counts) = u.take().unwrap();
        u.count("10.0.0.1", 401);
        u.put_back(counts);
        let (d, _) = u.take().unwrap();
        let attr = |k: &str| d.attrs.iter().find(|(a, _)| a == k).unwrap().1.clone();
        assert_eq!(attr("requests"), "41");
        assert_eq!(attr("statuses"), "401=21,429=20");
        assert!(attr("addresses").ends_with(",..."));
        assert!(u.take().is_none());
    }
}
