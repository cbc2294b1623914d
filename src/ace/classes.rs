//! Per-class cache capacity within a byte budget, after TCMalloc's
//! dynamic per-CPU cache sizing: a class whose caches keep missing
//! (allocations finding them empty, frees finding them full) grows; the
//! bytes come from classes that hardly miss, so one CPU's caches never
//! hold more than they could when ACE started (the profile's and knobs'
//! per-class capacities, summed), times the diet. A workload that uses a
//! few classes hard gets their caches sized for it, at the memory the
//! static setting would spend on all of them.
//!
//! Each fast interval, from the deciding tick: the interval's pressure
//! per class (cumulative counters, differenced); then at most [`GROWS`]
//! classes grow by half their capacity, hottest first, each taking room
//! from the coldest classes under a quarter of its pressure (halved, one
//! at a time) when the budget is full. Moves are traced per class. The
//! latency guard's probes leave class capacities alone (they only reset
//! the knobs); switching ACE off gives every class back to the knobs.

use super::Tunable;
use crate::size_class::{self, NUM_CLASSES};

/// Classes grown in one interval, at most.
const GROWS: usize = 2;
/// Fewest misses plus overflows in an interval for a class to grow; it
/// must also be at least 1/1024 of the interval's operations.
const PRESSURE_FLOOR: u64 = 64;

/// What a class capacity move was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Move {
    /// The class missed over the floor: it grew.
    Grow,
    /// The budget was full (or the diet lowered it): a cold class gave
    /// capacity back.
    Shrink,
}

/// The sizing's state, in the engine.
pub(super) struct ClassSizing {
    /// Cumulative pressure per class at the last interval.
    seen: [u64; NUM_CLASSES],
    /// Capacities (blocks) as last read or set, and their ceilings.
    caps: [u32; NUM_CLASSES],
    max: [u32; NUM_CLASSES],
    /// Classes ACE gave a capacity of their own (the rest follow the
    /// capacity knob), and those a busy cache has not taken yet.
    own: [bool; NUM_CLASSES],
    pending: [bool; NUM_CLASSES],
    /// One CPU's cache bytes at the capacities found at `start`: the
    /// budget before the diet. 0: the target's classes cannot be sized.
    budget: u64,
    /// One CPU's cache bytes at `caps` (kept with them).
    used: u64,
}

impl ClassSizing {
    pub(super) const NEW: ClassSizing = ClassSizing {
        seen: [0; NUM_CLASSES],
        caps: [0; NUM_CLASSES],
        max: [0; NUM_CLASSES],
        own: [false; NUM_CLASSES],
        pending: [false; NUM_CLASSES],
        budget: 0,
        used: 0,
    };

    /// Starts from `target`'s capacities and counters as they are.
    pub(super) fn start<T: Tunable>(target: &T) -> ClassSizing {
        let mut sizing = ClassSizing::NEW;
        for class in 0..NUM_CLASSES {
            sizing.seen[class] = target.class_pressure(class);
        }
        sizing.read_caps(target);
        sizing.budget = sizing.used;
        sizing
    }

    /// Reads the capacities in force (the knob's classes follow the knobs,
    /// which the other loops move) and their bytes on one CPU.
    fn read_caps<T: Tunable>(&mut self, target: &T) {
        self.used = 0;
        for class in 0..NUM_CLASSES {
            (self.caps[class], self.max[class]) = target.class_capacity(class);
            self.used += u64::from(self.caps[class]) * size_class::size_of(class) as u64;
        }
    }

    /// One fast interval of `operations` operations, with the diet at
    /// `diet` (1/256); `moved(class, old, new, why)` records each move.
    pub(super) fn resize<T: Tunable>(
        &mut self,
        target: &T,
        operations: u64,
        diet: u32,
        moved: &mut impl FnMut(usize, u32, u32, Move),
    ) {
        if self.budget == 0 {
            return;
        }
        let mut pressure = [0u64; NUM_CLASSES];
        for (class, p) in pressure.iter_mut().enumerate() {
            let now = target.class_pressure(class);
            *p = now.wrapping_sub(self.seen[class]);
            self.seen[class] = now;
        }
        self.read_caps(target);
        for class in 0..NUM_CLASSES {
            if self.pending[class] {
                self.pending[class] = !target.set_class_capacity(class, self.caps[class]);
            }
        }
        let budget = self.budget * u64::from(diet) / 256;
        while self.used > budget && self.shrink_coldest(target, &pressure, None, moved) {}
        if operations < super::MIN_OPS {
            return;
        }
        let floor = PRESSURE_FLOOR.max(operations / 1024);
        let mut grown = [false; NUM_CLASSES];
        for _ in 0..GROWS {
            let hot = (0..NUM_CLASSES)
                .filter(|&c| !grown[c] && pressure[c] >= floor && self.caps[c] < self.max[c])
                .max_by_key(|&c| pressure[c]);
            let Some(hot) = hot else { break };
            grown[hot] = true;
            let size = size_class::size_of(hot) as u64;
            let step = (self.caps[hot] / 2)
                .max(1)
                .min(self.max[hot] - self.caps[hot]);
            let colder = Some((hot, pressure[hot] / 4));
            while self.used + u64::from(step) * size > budget
                && self.shrink_coldest(target, &pressure, colder, moved)
            {}
            let room = budget.saturating_sub(self.used) / size;
            let grow = u64::from(step).min(room) as u32;
            if grow > 0 {
                self.set(target, hot, self.caps[hot] + grow, Move::Grow, moved);
            }
        }
    }

    /// Halves the capacity of the class with the least pressure (the
    /// larger in bytes among equals), among those over one block and,
    /// with `colder = Some((hot, limit))`, other than `hot` and under
    /// `limit`; false if there is none.
    fn shrink_coldest<T: Tunable>(
        &mut self,
        target: &T,
        pressure: &[u64; NUM_CLASSES],
        colder: Option<(usize, u64)>,
        moved: &mut impl FnMut(usize, u32, u32, Move),
    ) -> bool {
        let bytes = |c: usize| u64::from(self.caps[c]) * size_class::size_of(c) as u64;
        let victim = (0..NUM_CLASSES)
            .filter(|&c| self.caps[c] > 1)
            .filter(|&c| colder.is_none_or(|(hot, limit)| c != hot && pressure[c] < limit))
            .min_by_key(|&c| (pressure[c], u64::MAX - bytes(c)));
        let Some(victim) = victim else {
            return false;
        };
        self.set(target, victim, self.caps[victim] / 2, Move::Shrink, moved);
        true
    }

    fn set<T: Tunable>(
        &mut self,
        target: &T,
        class: usize,
        capacity: u32,
        why: Move,
        moved: &mut impl FnMut(usize, u32, u32, Move),
    ) {
        moved(class, self.caps[class], capacity, why);
        let size = size_class::size_of(class) as u64;
        self.used = self.used - u64::from(self.caps[class]) * size + u64::from(capacity) * size;
        self.caps[class] = capacity;
        self.own[class] = true;
        self.pending[class] = !target.set_class_capacity(class, capacity);
    }

    /// Gives every class ACE sized back to the capacity knob.
    pub(super) fn release<T: Tunable>(&mut self, target: &T) {
        for class in 0..NUM_CLASSES {
            if self.own[class] {
                // A busy cache takes it on its next slow path of the class
                // (or the next set): the knob's value is stored either way.
                target.set_class_capacity(class, 0);
                self.own[class] = false;
                self.pending[class] = false;
            }
        }
    }
}
