//! The spin lock of the shared layers (transfer caches, central free
//! lists), counting contention, and waiting the way the platform wants.
//!
//! Kernels take these locks with interrupts masked, so a holder is never
//! preempted and pure spinning is right. A std program cannot mask
//! preemption: a holder may lose its CPU for a whole time slice, so after
//! a few spins the waiter hands its CPU over ([`Platform::lock_wait`])
//! instead of burning the slice the holder needs.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::platform::Platform;
use crate::sync::{self, SpinMutex, SpinMutexGuard};

/// A spin lock with contention counters.
pub(crate) struct Lock<T> {
    inner: SpinMutex<T>,
    /// Acquisitions that found the lock taken.
    pub contended: AtomicU64,
    /// Failed tries spent waiting for it.
    pub spins: AtomicU64,
}

impl<T> Lock<T> {
    sync::const_but_loom! {
        pub fn new(value: T) -> Lock<T> {
            Lock {
                inner: SpinMutex::new(value),
                contended: AtomicU64::new(0),
                spins: AtomicU64::new(0),
            }
        }
    }

    /// Takes the lock, waiting as `Pl` waits.
    #[inline]
    pub fn lock<Pl: Platform>(&self) -> SpinMutexGuard<'_, T> {
        if let Some(guard) = self.inner.try_lock() {
            return guard;
        }
        self.lock_contended::<Pl>()
    }

    #[cold]
    fn lock_contended<Pl: Platform>(&self) -> SpinMutexGuard<'_, T> {
        self.contended.fetch_add(1, Relaxed);
        let mut spins = 0u32;
        loop {
            Pl::lock_wait(spins);
            spins = spins.saturating_add(1);
            // Test before the atomic swap, so waiters share the line.
            if !self.inner.is_locked()
                && let Some(guard) = self.inner.try_lock()
            {
                self.spins.fetch_add(u64::from(spins), Relaxed);
                return guard;
            }
        }
    }

    /// Releases a lock whose guard was forgotten ([`Allocator::lock_all`]).
    ///
    /// # Safety
    /// The lock is held, and its holder gave it up for this call.
    ///
    /// [`Allocator::lock_all`]: crate::Allocator::lock_all
    pub unsafe fn force_unlock(&self) {
        // SAFETY: the caller's contract.
        unsafe { self.inner.force_unlock() }
    }

    /// Takes the lock only if it is free (for interrupt context).
    pub fn try_lock(&self) -> Option<SpinMutexGuard<'_, T>> {
        self.inner.try_lock()
    }
}
