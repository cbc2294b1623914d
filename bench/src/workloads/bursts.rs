//! `bursts`: a service's day. Bursts of small objects (16–512 B, 32768 slots, about 8 MiB) and
//! bursts of large buffers (32 KiB–1 MiB, 96 slots, about 50 MiB) take turns, each followed by
//! a quiet spell in which nothing is allocated; each step frees a random slot's block if it
//! holds one, else fills it, and a burst's blocks are all freed at its end. An allocator that
//! keeps the freed pages is fast at the next burst and costs their memory through the quiet
//! spell; one that gives them back at once pays system calls and page faults in every burst.
//! The figure is throughput over the busy time; the time-averaged resident set (sampled every
//! 10 ms by `cargo xtask bench`) says what the memory cost.

use std::alloc::GlobalAlloc;

use super::spells::phases;
use super::{Outcome, Params};

/// The two kinds of burst: smallest and largest block, slots.
const BURSTS: [(usize, usize, usize); 2] = [(16, 512, 32768), (32 << 10, 1 << 20, 96)];

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    // Busy and quiet ms; spells in a quick and a full run; steps between looks at the clock.
    phases(alloc, p, &BURSTS, (300, 300), (4, 16), 64)
}
