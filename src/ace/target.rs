//! What ACE tunes, as a trait: the allocator in the builds, a scripted
//! fake in the tests. Everything here must be callable from an interrupt
//! handler: no allocation, no lock that is waited on.

use core::sync::atomic::Ordering::Relaxed;

use super::Ace;
use super::metrics::Totals;
use crate::allocator::Allocator;
use crate::config::Knobs;
use crate::platform::Platform;
use crate::provider::PageProvider;

/// An allocator ACE can observe and tune.
pub trait Tunable {
    /// The software counters now (depot locks only tried).
    fn totals(&self) -> Totals;
    /// The knobs in force.
    fn knobs(&self) -> Knobs;
    /// Sets the knobs (safe while other CPUs allocate).
    fn set_knobs(&self, knobs: Knobs);
    /// Decommits idle memory, at most `max_pages` pages, stopping once the
    /// clock ([`now`](Self::now)) reaches `deadline`, only trying locks;
    /// returns the pages decommitted.
    fn scavenge(&self, max_pages: usize, deadline: u64) -> usize;
    /// The allocator's housekeeping (idle caches, due purges: see
    /// `Allocator::maintain`), only trying locks, stopping once the clock
    /// reaches `deadline`; called on every tick of every CPU.
    fn maintain(&self, deadline: u64);
    /// Asks the target's housekeeping ([`maintain`](Self::maintain), on
    /// the ticks that follow) to release its idle memory as in a quiet
    /// spell, whatever its own delays; a plain store.
    fn request_release(&self);
    /// The purge delay in ms, where the target has one to set.
    fn purge_delay_ms(&self) -> Option<u32> {
        None
    }
    /// Sets the purge delay (ms); a plain store, fit for a timer tick.
    fn set_purge_delay_ms(&self, ms: u32) {
        let _ = ms;
    }
    /// Allocations that found a CPU cache of `class` empty plus frees that
    /// found it full, all CPUs, since the start (cumulative; 0 where the
    /// target does not count them).
    fn class_pressure(&self, class: usize) -> u64 {
        let _ = class;
        0
    }
    /// The capacity (blocks) every CPU's cache of `class` has, and the
    /// most it can be given; (0, 0) where classes cannot be sized.
    fn class_capacity(&self, class: usize) -> (u32, u32) {
        let _ = class;
        (0, 0)
    }
    /// Gives every CPU's cache of `class` `capacity` blocks (0: back to the
    /// capacity knob's), only trying locks; false if a cache could not
    /// take it now (the caller tries again later).
    fn set_class_capacity(&self, class: usize, capacity: u32) -> bool {
        let _ = (class, capacity);
        false
    }
    /// The platform clock (`Platform::now`).
    fn now(&self) -> u64;
    /// The running CPU's index.
    fn current_cpu(&self) -> usize;
    /// Caps what one allocation slow path adds to the timed total, in
    /// clock units (see `AceConfig::latency_limit_pct`).
    fn clip_slow_paths(&self, max: u64);
    /// Remembers `ace` as the engine tuning this target, for its
    /// statistics API; nothing by default.
    fn attach(&self, ace: &'static Ace) {
        let _ = ace;
    }
}

impl<P: PageProvider + Send, Pl: Platform> Tunable for Allocator<P, Pl> {
    fn totals(&self) -> Totals {
        self.ace_totals()
    }

    fn knobs(&self) -> Knobs {
        Allocator::knobs(self)
    }

    fn set_knobs(&self, knobs: Knobs) {
        Allocator::set_knobs(self, knobs)
    }

    fn scavenge(&self, max_pages: usize, deadline: u64) -> usize {
        Allocator::scavenge(self, max_pages, deadline)
    }

    fn maintain(&self, deadline: u64) {
        Allocator::maintain(self, deadline);
    }

    fn request_release(&self) {
        Allocator::request_release(self);
    }

    fn purge_delay_ms(&self) -> Option<u32> {
        Some(Allocator::purge_delay_ms(self))
    }

    fn set_purge_delay_ms(&self, ms: u32) {
        Allocator::set_purge_delay_ms(self, ms)
    }

    fn class_pressure(&self, class: usize) -> u64 {
        Allocator::class_pressure(self, class)
    }

    fn class_capacity(&self, class: usize) -> (u32, u32) {
        self.class_capacity_range(class)
    }

    fn set_class_capacity(&self, class: usize, capacity: u32) -> bool {
        self.try_set_class_capacity(class, capacity)
    }

    fn now(&self) -> u64 {
        Pl::now()
    }

    fn current_cpu(&self) -> usize {
        Pl::current_cpu()
    }

    fn clip_slow_paths(&self, max: u64) {
        self.slow_clip.store(max, Relaxed);
    }

    fn attach(&self, ace: &'static Ace) {
        self.attach_ace(ace);
    }
}
