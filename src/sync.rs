//! The atomics and the spin lock of the concurrent protocols: core's and
//! spin's, or loom's when the crate is built with `--cfg loom`, so that the
//! loom models (`loom_models` beside each protocol; `cargo xtask test` runs
//! them) run the real code while loom explores its interleavings and
//! weak-memory outcomes. Only the protocols' own state comes from here: a
//! per-CPU cache's lock, `top` and request marks, the allocator's flush and
//! prewarm requests, checked mode's live bitmap, and the lock of the shared
//! layers ([`Lock`](crate::lock::Lock): transfer caches, central free lists)
//! with the state it guards. Everything else uses core's atomics directly.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64};

#[cfg(loom)]
pub(crate) use loom_spin::{SpinMutex, SpinMutexGuard};
#[cfg(not(loom))]
pub(crate) use spin::mutex::{SpinMutex, SpinMutexGuard};

/// A `const fn` except under loom, whose atomics are made at run time.
macro_rules! const_but_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])*
        $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])*
        $vis fn $($rest)*
    };
}
pub(crate) use const_but_loom;

/// `[const { $value }; $n]`, or under loom (whose atomics are not `const`)
/// an array made at run time.
macro_rules! array_but_loom {
    ($value:expr; $n:expr) => {{
        #[cfg(not(loom))]
        let array = [const { $value }; $n];
        #[cfg(loom)]
        let array = core::array::from_fn(|_| $value);
        array
    }};
}
pub(crate) use array_but_loom;

/// spin's `SpinMutex` protocol on loom's atomic and cell: taken by a strong
/// compare-exchange (`Acquire`), tested by a `Relaxed` load, given back by
/// a `Release` store, as spin 0.10 does. loom then checks that the lock
/// orders every access to what it guards (the guard holds loom's tracked
/// pointer while it lives), and explores its waiters' interleavings.
#[cfg(loom)]
mod loom_spin {
    use core::mem::ManuallyDrop;
    use core::ops::{Deref, DerefMut};
    use loom::cell::{MutPtr, UnsafeCell};
    use loom::sync::atomic::{AtomicBool, Ordering};

    pub(crate) struct SpinMutex<T> {
        lock: AtomicBool,
        data: UnsafeCell<T>,
    }

    // SAFETY: the value is reached only by the lock's holder, as in spin.
    unsafe impl<T: Send> Sync for SpinMutex<T> {}
    // SAFETY: as above.
    unsafe impl<T: Send> Send for SpinMutex<T> {}

    pub(crate) struct SpinMutexGuard<'a, T> {
        lock: &'a AtomicBool,
        data: ManuallyDrop<MutPtr<T>>,
    }

    impl<T> SpinMutex<T> {
        pub fn new(value: T) -> SpinMutex<T> {
            SpinMutex {
                lock: AtomicBool::new(false),
                data: UnsafeCell::new(value),
            }
        }

        pub fn is_locked(&self) -> bool {
            self.lock.load(Ordering::Relaxed)
        }

        pub fn try_lock(&self) -> Option<SpinMutexGuard<'_, T>> {
            self.lock
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .ok()
                .map(|_| SpinMutexGuard {
                    lock: &self.lock,
                    data: ManuallyDrop::new(self.data.get_mut()),
                })
        }

        /// # Safety
        /// The lock is held and its guard was forgotten.
        pub unsafe fn force_unlock(&self) {
            self.lock.store(false, Ordering::Release);
        }
    }

    impl<T> Deref for SpinMutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard holds the lock, so its pointer is the only
            // one to the value.
            unsafe { MutPtr::deref(&self.data) }
        }
    }

    impl<T> DerefMut for SpinMutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: as in `deref`, and `&mut self` is unique.
            unsafe { MutPtr::deref(&self.data) }
        }
    }

    impl<T> Drop for SpinMutexGuard<'_, T> {
        fn drop(&mut self) {
            // SAFETY: dropped once, here; loom's access ends before the
            // lock is given back.
            unsafe { ManuallyDrop::drop(&mut self.data) };
            self.lock.store(false, Ordering::Release);
        }
    }
}
