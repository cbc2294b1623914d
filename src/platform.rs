//! What differs between a kernel and a hosted process, in one trait.
//!
//! The allocator's per-CPU section (touching this CPU's cache) must not be
//! entered twice at once. A kernel guarantees that by masking interrupts
//! around it: code on a CPU cannot be preempted by other code on the same
//! CPU, so the cache needs no lock and an interrupt handler that allocates
//! simply waits until the interrupted allocation is done. A hosted process
//! cannot mask preemption, so two threads may share a CPU index: there each
//! cache carries a lock that is try-locked (never waited on).

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
}
