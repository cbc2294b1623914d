//! What acealloc's test kernels share (`qemu-tests/kernels/*`, booted by `cargo xtask qemu`).
//!
//! - [`platform`]: acealloc's `Platform` for the kernels (CPU index, interrupt masking, TSC).
//! - [`frames`]: the physical frame allocator over the boot memory map, for the `x86_64`
//!   crate's paging traits; [`paging`]: the active page tables as an `OffsetPageTable`.
//! - [`heaps`]: the fixed-region heap and the frame-provider heap;
//!   [`static_memory`]: `.bss` memory handed over once.
//! - [`suite`]: checks, one line per test, summary and exit code; [`clock`]: guest time;
//!   [`args`]: numbers from the command line.
//! - [`workload`]: allocation workloads over any `GlobalAlloc`; [`pattern`]: checked block
//!   contents; [`rng`]: their random source.
#![no_std]

pub mod args;
pub mod clock;
pub mod frames;
pub mod heaps;
pub mod paging;
pub mod pattern;
pub mod platform;
pub mod rng;
pub mod static_memory;
pub mod suite;
pub mod workload;
