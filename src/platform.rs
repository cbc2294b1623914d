//! What differs between a kernel and a hosted process, in one trait.
//!
//! The allocator's per-CPU section (touching this CPU's cache) must not be
//! entered twice at once. A kernel guarantees that by masking interrupts
//! around it: code on a CPU cannot be preempted by other code on the same
//! CPU, so the cache needs no lock and an interrupt handler that allocates
//! simply waits until the interrupted allocation is done. A hosted process
//! cannot mask preemption, so two threads may share a CPU index: there each
//! cache carries a lock that is try-locked (never waited on).
//!
//! The same difference decides how the shared layers' locks wait
//! ([`lock_wait`](Platform::lock_wait)): a kernel's lock holder runs with
//! interrupts masked and is never preempted, so spinning is right; a
//! hosted holder can lose its CPU, so waiters must let it run.

/// CPU index, interrupt masking and a clock for one environment.
///
/// # Safety
/// If [`EXCLUSIVE_CPU`](Self::EXCLUSIVE_CPU) is true, code that has called
/// [`irq_save`](Self::irq_save) and not yet the matching
/// [`irq_restore`](Self::irq_restore) must be the only code running with
/// its [`current_cpu`](Self::current_cpu) index, which must not change in
/// between (no preemption, no migration).
pub unsafe trait Platform {
    /// Whether masking interrupts makes the current CPU's cache exclusive.
    /// When false, caches are guarded by a try-lock.
    const EXCLUSIVE_CPU: bool;

    /// Whether the per-CPU sections may run as Linux restartable sequences
    /// on the registration glibc made (hosted x86_64 Linux). The allocator
    /// still checks at `init` that the kernel and glibc provide them, and
    /// falls back to the try-lock otherwise. Requires `EXCLUSIVE_CPU` false.
    const RESTARTABLE: bool = false;

    /// Number of CPU indices `current_cpu` may return (`0..cpu_count()`).
    fn cpu_count() -> usize;

    /// Index of the CPU running the caller.
    fn current_cpu() -> usize;

    /// Masks interrupts on this CPU and returns the previous state.
    fn irq_save() -> usize;

    /// Restores the state returned by the matching `irq_save`.
    fn irq_restore(state: usize);

    /// A monotonic cycle or tick count (for statistics and control loops).
    fn now() -> u64;

    /// Waits a little for a lock held by another CPU, after `spins` failed
    /// tries. The default spins, which is right where lock holders are
    /// never preempted (kernels, interrupts masked). Where they can be,
    /// spin briefly and then give the CPU away (yield, or sleep on a futex).
    #[inline]
    fn lock_wait(spins: u32) {
        let _ = spins;
        core::hint::spin_loop();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Platform;

    /// One CPU that spins on locks, for the unit tests of the layers.
    pub struct Spinning;

    // SAFETY: used by single-threaded unit tests only, on index 0.
    unsafe impl Platform for Spinning {
        const EXCLUSIVE_CPU: bool = true;
        fn cpu_count() -> usize {
            1
        }
        fn current_cpu() -> usize {
            0
        }
        fn irq_save() -> usize {
            0
        }
        fn irq_restore(_: usize) {}
        fn now() -> u64 {
            0
        }
    }
}
