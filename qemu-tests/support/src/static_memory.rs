//! Memory the kernels reserve in `.bss` and hand over once: heap regions and bitmaps.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// A static value handed out once as `&'static mut`.
pub struct StaticMut<T> {
    value: UnsafeCell<T>,
    taken: AtomicBool,
}

// SAFETY: the value is reachable only through the one `&'static mut` that `take` hands out, so
// sharing the wrapper shares nothing but the flag, which is atomic.
unsafe impl<T: Send> Sync for StaticMut<T> {}

impl<T> StaticMut<T> {
    /// Wraps `value` (a `const` so it can initialise a `static`).
    pub const fn new(value: T) -> Self {
        StaticMut {
            value: UnsafeCell::new(value),
            taken: AtomicBool::new(false),
        }
    }

    /// The value, for good. Panics on a second call.
    #[allow(clippy::mut_from_ref)] // the flag makes the one `&mut` unique
    pub fn take(&'static self) -> &'static mut T {
        assert!(
            !self.taken.swap(true, Ordering::AcqRel),
            "static memory handed over twice"
        );
        // SAFETY: the flag was clear, so no reference was handed out before and none will be
        // after; the value lives in a static.
        unsafe { &mut *self.value.get() }
    }
}

/// `N` bytes aligned to a page, for a heap region.
#[repr(C, align(4096))]
pub struct PageAligned<const N: usize>(pub [u8; N]);

impl<const N: usize> PageAligned<N> {
    /// Zero bytes (so a `static` of it lands in `.bss`).
    pub const ZERO: Self = PageAligned([0; N]);
}
