//! `phased-mix`: phases that each hold a working set of a different size mix, one after
//! another: 16–128 B (16384 slots), 512 B–4 KiB (1024 slots), 8–32 KiB (128 slots), each about
//! 1–2.5 MiB; each step frees a random slot's block if it holds one, else fills it. At a phase's
//! end its blocks are all freed, and a quiet spell follows (a service between kinds of
//! request). The caches that served one phase hold memory the next does not use: keeping it
//! is fast when the phase comes back, and costs memory until it does.

use std::alloc::GlobalAlloc;

use super::spells::phases;
use super::{Outcome, Params};

/// Each phase: smallest and largest block, slots.
const PHASES: [(usize, usize, usize); 3] =
    [(16, 128, 16384), (512, 4096, 1024), (8192, 32768, 128)];

pub fn run<A: GlobalAlloc>(alloc: &A, p: &Params) -> Outcome {
    // Busy and quiet ms; spells in a quick and a full run; steps between looks at the clock.
    phases(alloc, p, &PHASES, (400, 200), (3, 15), 256)
}
