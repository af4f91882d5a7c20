//! One budget of buffered write bytes for a whole client, shared by every writer (each open
//! file of a mount, each PUT of the gateway): without it each writer may hold its own write
//! window, and many writers on a cluster slower than they are add up to gigabytes.
//!
//! The budget is a semaphore of bytes split in two halves:
//! - **dirty bytes** (a [`crate::FileWriter`]'s buffered runs not yet sent) take from the
//!   first half and never wait: when the half is taken, the writer sends its runs as
//!   stripes instead of buffering them. Dirty bytes may sit in an idle open file forever,
//!   so if they could wait, idle files holding the budget would stall every other writer.
//! - **stripes in flight** wait in [`WriteBudget::admit`] for bytes of the whole budget
//!   minus what dirty bytes can hold, and give them back when the stripe is durable (or has
//!   failed). Those bytes always come back without anyone else's progress, so a waiter is
//!   never stuck behind an idle file: no deadlock.
//!
//! A stripe larger than the in-flight half (a budget smaller than a stripe) takes the whole
//! half and goes alone, so a single writer always progresses; the bytes counted can then
//! pass the budget by at most one stripe. Bytes here are file bytes: a stripe in flight
//! also holds its m parity shards, (k+m)/k times its data in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The client's shared budget of buffered write bytes.
pub(crate) struct WriteBudget {
    sem: Arc<Semaphore>,
    total: u64,
    /// Most bytes dirty buffers may hold together.
    dirty_cap: u64,
    /// Most permits one stripe takes: what dirty buffers can never hold.
    stripe_cap: u64,
    dirty_held: AtomicU64,
    /// File bytes counted now (dirty held + stripes admitted, at their full length).
    in_use: AtomicU64,
}

/// A stripe's admission: its bytes count against the budget until this is dropped.
pub(crate) struct Admission {
    budget: Arc<WriteBudget>,
    len: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.budget.in_use.fetch_sub(self.len, Ordering::AcqRel);
    }
}

impl WriteBudget {
    /// A budget of `total` bytes (at least 2, so each half has one).
    pub fn new(total: u64) -> WriteBudget {
        let total = total.max(2);
        let dirty_cap = total / 2;
        WriteBudget {
            sem: Arc::new(Semaphore::new(total as usize)),
            total,
            dirty_cap,
            stripe_cap: total - dirty_cap,
            dirty_held: AtomicU64::new(0),
            in_use: AtomicU64::new(0),
        }
    }

    /// The budget in bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// File bytes counted against the budget now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Acquire)
    }

    /// Takes `n` bytes for dirty buffers if they are free now; never waits.
    pub fn try_hold(&self, n: u64) -> bool {
        if n == 0 {
            return true;
        }
        let Ok(permits) = u32::try_from(n) else {
            return false;
        };
        let cap = self.dirty_cap;
        if self
            .dirty_held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                (h + n <= cap).then_some(h + n)
            })
            .is_err()
        {
            return false;
        }
        match self.sem.try_acquire_many(permits) {
            Ok(p) => {
                p.forget();
                self.in_use.fetch_add(n, Ordering::AcqRel);
                true
            }
            Err(_) => {
                self.dirty_held.fetch_sub(n, Ordering::AcqRel);
                false
            }
        }
    }

    /// Gives back `n` bytes taken by [`Self::try_hold`].
    pub fn release_held(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.dirty_held.fetch_sub(n, Ordering::AcqRel);
        self.in_use.fetch_sub(n, Ordering::AcqRel);
        self.sem.add_permits(n as usize);
    }

    /// Waits until a stripe of `len` file bytes may be in flight.
    pub async fn admit(self: &Arc<Self>, len: u64) -> Admission {
        // At most stripe_cap (≤ the budget), so it always fits once stripes finish; a chunk
        // is at most 256 MiB, far below u32::MAX.
        let permits = len.clamp(1, self.stripe_cap).min(u32::MAX as u64) as u32;
        let permit = self
            .sem
            .clone()
            .acquire_many_owned(permits)
            .await
            .expect("the write budget's semaphore is never closed");
        self.in_use.fetch_add(len, Ordering::AcqRel);
        Admission {
            budget: self.clone(),
            len,
            _permit: permit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_bytes_never_take_more_than_half() {
        let b = WriteBudget::new(100);
        assert!(b.try_hold(30));
        assert!(b.try_hold(20));
        assert!(!b.try_hold(1), "the dirty half is full");
        assert_eq!(b.in_use(), 50);
        b.release_held(20);
        assert!(b.try_hold(20));
        b.release_held(50);
        assert_eq!(b.in_use(), 0);
    }

    #[tokio::test]
    async fn a_stripe_larger_than_the_budget_goes_alone() {
        let b = Arc::new(WriteBudget::new(10));
        assert!(b.try_hold(5), "idle dirty bytes hold their half");
        let a = b.admit(1000).await;
        assert_eq!(b.in_use(), 1005);
        let b2 = b.clone();
        let second = tokio::spawn(async move { b2.admit(1).await });
        tokio::task::yield_now().await;
        assert!(!second.is_finished(), "waits for the first stripe");
        drop(a);
        let s = second.await.unwrap();
        assert_eq!(b.in_use(), 6);
        drop(s);
        b.release_held(5);
        assert_eq!(b.in_use(), 0);
    }
}
