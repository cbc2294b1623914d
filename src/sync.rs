//! The atomics of the lock-free protocols: core's, or loom's when the crate
//! is built with `--cfg loom`, so that the loom models (`loom_models` beside
//! each protocol; `cargo xtask test` runs them) run the real code while loom
//! explores its interleavings and weak-memory outcomes. Only the protocols'
//! own state comes from here: a per-CPU cache's lock, `top` and request
//! marks, the allocator's flush and prewarm requests, checked mode's live
//! bitmap. Everything else uses core's atomics directly.

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64};

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
