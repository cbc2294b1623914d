#![doc = include_str!("../README.md")]
#![no_std]
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod ace;
mod allocator;
mod by_address;
mod central;
mod checked;
mod config;
mod cpu_cache;
mod lock;
mod misuse;
mod page_heap;
mod page_map;
mod pages;
mod platform;
pub mod provider;
#[cfg_attr(
    all(
        feature = "std",
        target_os = "linux",
        target_env = "gnu",
        target_arch = "x86_64",
        not(miri)
    ),
    path = "rseq.rs"
)]
#[cfg_attr(
    not(all(
        feature = "std",
        target_os = "linux",
        target_env = "gnu",
        target_arch = "x86_64",
        not(miri)
    )),
    path = "rseq_unavailable.rs"
)]
mod rseq;
pub mod size_class;
mod slab;
mod stats;
mod sync;
mod transfer;

#[cfg(feature = "std")]
pub mod hosted;

/// x86_64 specifics: interrupt masking, CPU identification, time stamps.
#[cfg(target_arch = "x86_64")]
#[path = "../arch/x86_64/mod.rs"]
pub mod arch;

pub use allocator::{Allocator, InitError, OomHook};
pub use config::{Config, DecommitMode, Knobs, MisuseHook, Profile};
pub use misuse::{Misuse, MisuseKind};
pub use platform::Platform;
pub use provider::{AddRegionError, PAGE_SIZE, PageProvider, RegionProvider, Span};
pub use stats::{ClassStats, CpuStats, PerCpuPath, ProviderStats, Stats};
