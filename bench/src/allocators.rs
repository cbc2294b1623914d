//! The allocators under test, each built through its own crate in its normal configuration.
//!
//! - The OS-backed allocators (glibc's `malloc` through `std::alloc::System`, mimalloc,
//!   jemalloc) are used as they are: each maps its own memory.
//! - The `no_std` allocators (talc, linked_list_allocator, buddy_system_allocator, rlsf) get one
//!   large [`Region`] and a `spin` lock, as kernels use them: their crates' own locked types
//!   where they have one (`talc::TalcLock` over `spin`'s mutex, `linked_list_allocator::LockedHeap`,
//!   `buddy_system_allocator::LockedHeap`), a `spin::Mutex` around `rlsf::Tlsf`, which has none.
//! - acealloc runs as a std program gets it (the hosted platform: CPU index from rseq, per-CPU
//!   caches try-locked; the `mmap` page provider) in each [`AceVariant`], and over a
//!   `RegionProvider` for the region-only heap-efficiency workload; `acealloc-balanced-ace` adds
//!   the adaptive control engine, ticked by a thread of the run. `acealloc-balanced-1cpu` is
//!   the kernel-style build of `benches/fast_path.rs` (an exclusive CPU, no lock) for the
//!   fast-path count only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::{self, NonNull};

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};

use acealloc::ace::{Ace, AceConfig, AceStatus, Decision, Knob, Tunable, background, ticker};
use acealloc::hosted::HostedPlatform;
use acealloc::provider::{MmapProvider, OsCalls};
use acealloc::{Allocator, Config, Knobs, Platform, Profile, RegionProvider};

use crate::region::Region;

/// One configuration of acealloc under test.
///
/// This is the single place where acealloc's variants are declared: the profile
/// (`acealloc::Profile`, passed through `Config`), the knobs it starts with, and whether the
/// adaptive control engine runs ([`ace_config`](Self::ace_config)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AceVariant {
    pub profile: Profile,
    pub ace: bool,
    /// The knobs at `init`: the defaults, or what `run --knobs` asks for (the ACE evaluation's
    /// grid search over static settings). ACE, where it runs, starts from them.
    pub knobs: Knobs,
}

/// Every acealloc variant measured, in table order.
pub const ACE_VARIANTS: [AceVariant; 4] = [
    AceVariant {
        profile: Profile::Fast,
        ace: false,
        knobs: Knobs::DEFAULT,
    },
    AceVariant {
        profile: Profile::Balanced,
        ace: false,
        knobs: Knobs::DEFAULT,
    },
    AceVariant {
        profile: Profile::Lean,
        ace: false,
        knobs: Knobs::DEFAULT,
    },
    AceVariant {
        profile: Profile::Balanced,
        ace: true,
        knobs: Knobs::DEFAULT,
    },
];

impl AceVariant {
    pub fn name(self) -> &'static str {
        match (self.profile, self.ace) {
            (Profile::Fast, false) => "acealloc-fast",
            (Profile::Balanced, false) => "acealloc-balanced",
            (Profile::Lean, false) => "acealloc-lean",
            (Profile::Fast, true) => "acealloc-fast-ace",
            (Profile::Balanced, true) => "acealloc-balanced-ace",
            (Profile::Lean, true) => "acealloc-lean-ace",
        }
    }

    /// ACE's settings when the variant runs it: a 50 ms fast loop and a 5 s slow loop, since a
    /// run lasts seconds (the defaults, 100 ms and 30 s, would barely act in one), and the
    /// phased workloads' quiet spells last 200-400 ms: the quiet rule tells a spell from a
    /// pause by its length in intervals, so a spell must span several.
    pub fn ace_config(self) -> Option<AceConfig> {
        self.ace.then_some(AceConfig {
            fast_ms: 50,
            slow_s: 5,
            ..AceConfig::DEFAULT
        })
    }

    /// Runs `run` with ACE ticking `heap` from a thread of its own when the variant asks for
    /// it (`ACEALLOC_ACE_LOG=1` prints its decisions); ACE stops when `run` returns, and an
    /// `ACE …` line on stdout says what it did ([`ace_line`]).
    fn with_ace<T: Tunable + Sync, R>(self, heap: &T, run: impl FnOnce() -> R) -> R {
        let Some(config) = self.ace_config() else {
            return run();
        };
        let engine = Box::new(Ace::new());
        engine.enable(heap, config, ticker::HOSTED_CLOCK_HZ);
        let stop = AtomicBool::new(false);
        let log = ticker::log_from_env();
        let output = std::thread::scope(|s| {
            s.spawn(|| ticker::run(&engine, heap, config.fast_ms, &stop, log));
            let output = run();
            stop.store(true, Relaxed);
            output
        });
        let report = engine.report();
        println!("{}", ace_line(&report.status, report.decisions()));
        output
    }

    /// The configuration acealloc gets: the variant's settings, checks off (as in release).
    pub fn config(self) -> Config {
        Config {
            profile: self.profile,
            knobs: self.knobs,
            checks: false,
            // As `HostedAlloc` reads it: `ACEALLOC_RSEQ=0` or `1` picks the per-CPU path.
            restartable: std::env::var("ACEALLOC_RSEQ")
                .map_or(Config::DEFAULT.restartable, |v| v == "1"),
            ..Config::DEFAULT
        }
    }
}

/// What ACE did in a run, as `ACE key=value …`: whether it is still on (else why not),
/// decisions in all, mean cost of a deciding tick, the knobs it left, and the knob changes
/// among the decisions its trace still holds (`traced` of them: all when `traced` equals
/// `decisions`).
fn ace_line(status: &AceStatus, trace: &[Decision]) -> String {
    let changes = |knob: Knob| trace.iter().filter(|d| d.knob == knob).count();
    let knobs = status.knobs.map_or("-".into(), |k| {
        format!(
            "{},{},{},{}",
            k.cache_capacity, k.bundle_width, k.drain_threshold, k.release_pages
        )
    });
    let tick_ns = status.total_tick / status.deciding_ticks.max(1);
    format!(
        "ACE enabled={} off_reason={} decisions={} traced={} deciding_ticks={} tick_mean_ns={tick_ns} \
         knobs={knobs} changes=diet:{},bundle:{},drain:{},release:{},scavenge:{},purge_delay:{}",
        u8::from(status.enabled),
        status.off_reason.map_or("-".into(), |r| format!("{r:?}")),
        status.decisions,
        trace.len(),
        status.deciding_ticks,
        changes(Knob::Diet),
        changes(Knob::BundleWidth),
        changes(Knob::DrainThreshold),
        changes(Knob::ReleasePages),
        changes(Knob::Scavenge),
        changes(Knob::PurgeDelay),
    )
}

/// An allocator under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alloc {
    Acealloc(AceVariant),
    /// acealloc BALANCED on a single-CPU kernel's platform: only for `fast-path`.
    AceallocOneCpu,
    Glibc,
    Mimalloc,
    #[cfg(feature = "jemalloc")]
    Jemalloc,
    Talc,
    LinkedList,
    Buddy,
    Rlsf,
}

/// Address space given to a region-based allocator in the throughput workloads: more than any
/// workload holds, reserved lazily so that only what the allocator touches becomes resident.
const THROUGHPUT_REGION: usize = 8 << 30;

/// Address space the hosted acealloc reserves: as much as the regions. (`HostedAlloc` reserves
/// 64 GiB by default; valgrind, which counts the fast path, cannot map that much, and no
/// workload holds more than half a GiB. The reservation costs no memory either way.)
const ACE_RESERVE: usize = THROUGHPUT_REGION;

/// The system calls the provider of the last hosted acealloc run made (its own counters);
/// `None` before one. The other allocators' calls the bench cannot see: `cargo xtask bench
/// --strace` counts every allocator's with `strace`.
static OS_CALLS: Mutex<Option<OsCalls>> = Mutex::new(None);

/// What [`OS_CALLS`] holds.
pub fn provider_os_calls() -> Option<OsCalls> {
    *OS_CALLS.lock().unwrap_or_else(|e| e.into_inner())
}

impl Alloc {
    /// Every allocator this build has, in table order (acealloc first).
    pub fn all() -> Vec<Alloc> {
        let mut all: Vec<Alloc> = ACE_VARIANTS.into_iter().map(Alloc::Acealloc).collect();
        all.extend([
            Alloc::AceallocOneCpu,
            Alloc::Glibc,
            Alloc::Mimalloc,
            #[cfg(feature = "jemalloc")]
            Alloc::Jemalloc,
            Alloc::Talc,
            Alloc::LinkedList,
            Alloc::Buddy,
            Alloc::Rlsf,
        ]);
        all
    }

    pub fn name(self) -> &'static str {
        match self {
            Alloc::Acealloc(variant) => variant.name(),
            Alloc::AceallocOneCpu => "acealloc-balanced-1cpu",
            Alloc::Glibc => "glibc",
            Alloc::Mimalloc => "mimalloc",
            #[cfg(feature = "jemalloc")]
            Alloc::Jemalloc => "jemalloc",
            Alloc::Talc => "talc",
            Alloc::LinkedList => "linked-list",
            Alloc::Buddy => "buddy-system",
            Alloc::Rlsf => "rlsf",
        }
    }

    /// The allocator named `name`: one of [`all`](Self::all), or any other profile with or
    /// without ACE (`acealloc-lean-ace`, `acealloc-fast-ace`: measured on request, not in the
    /// default matrix).
    pub fn from_name(name: &str) -> Option<Alloc> {
        let profiles = [Profile::Fast, Profile::Balanced, Profile::Lean];
        let variants = profiles.into_iter().flat_map(|profile| {
            [false, true].map(|ace| {
                Alloc::Acealloc(AceVariant {
                    profile,
                    ace,
                    knobs: Knobs::DEFAULT,
                })
            })
        });
        Alloc::all()
            .into_iter()
            .chain(variants)
            .find(|a| a.name() == name)
    }

    /// The same allocator starting with `knobs`; `None` for anything but hosted acealloc.
    pub fn with_knobs(self, knobs: Knobs) -> Option<Alloc> {
        match self {
            Alloc::Acealloc(variant) => Some(Alloc::Acealloc(AceVariant { knobs, ..variant })),
            _ => None,
        }
    }

    /// The knobs acealloc starts with; `None` for the other allocators.
    pub fn knobs(self) -> Option<Knobs> {
        match self {
            Alloc::Acealloc(variant) => Some(variant.knobs),
            Alloc::AceallocOneCpu => Some(Knobs::DEFAULT),
            _ => None,
        }
    }

    /// Whether the allocator can run over a fixed region (for `heap-efficiency`).
    pub fn has_region_form(self) -> bool {
        matches!(
            self,
            Alloc::Acealloc(_) | Alloc::Talc | Alloc::LinkedList | Alloc::Buddy | Alloc::Rlsf
        )
    }

    /// Runs `visit` with the allocator as a program would have it: the OS-backed ones as they
    /// are, the region-based ones over a fresh region, acealloc hosted over `mmap`.
    pub fn visit<V: Visit>(self, visit: V) -> V::Output {
        match self {
            Alloc::Acealloc(variant) => {
                let ace = Box::new(Allocator::<MmapProvider, HostedPlatform>::new());
                let config = variant.config();
                let provider = MmapProvider::new(ACE_RESERVE, config.decommit)
                    .expect("reserve acealloc's address space");
                ace.init(provider, config).expect("acealloc init");
                let stop = AtomicBool::new(false);
                let output = std::thread::scope(|s| {
                    s.spawn(|| background::housekeep(&*ace, &stop));
                    let output = variant.with_ace(&*ace, || visit.visit(&*ace));
                    stop.store(true, SeqCst);
                    output
                });
                *OS_CALLS.lock().unwrap_or_else(|e| e.into_inner()) =
                    ace.with_provider(MmapProvider::os_calls);
                output
            }
            Alloc::AceallocOneCpu => {
                let ace = Box::new(Allocator::<MmapProvider, OneCpu>::new());
                let provider = MmapProvider::new(ACE_RESERVE, Config::DEFAULT.decommit)
                    .expect("reserve acealloc's address space");
                let balanced = AceVariant {
                    profile: Profile::Balanced,
                    ace: false,
                    knobs: Knobs::DEFAULT,
                };
                ace.init(provider, balanced.config())
                    .expect("acealloc init");
                visit.visit(&*ace)
            }
            Alloc::Glibc => visit.visit(&System),
            Alloc::Mimalloc => visit.visit(&mimalloc::MiMalloc),
            #[cfg(feature = "jemalloc")]
            Alloc::Jemalloc => visit.visit(&tikv_jemallocator::Jemalloc),
            _ => self
                .visit_in_region(THROUGHPUT_REGION, visit)
                .expect("every other allocator has a region form"),
        }
    }

    /// Runs `visit` with the allocator over a fresh region of `len` bytes; `None` for the
    /// allocators that only map their own memory.
    pub fn visit_in_region<V: Visit>(self, len: usize, visit: V) -> Option<V::Output> {
        let region = Region::new(len);
        let (start, len) = (region.start(), region.len());
        // Each allocator below is dropped before `region` (declared later, dropped first).
        let output = match self {
            Alloc::Acealloc(variant) => {
                let ace = Box::new(Allocator::<RegionProvider, HostedPlatform>::new());
                // SAFETY: the region is ours and outlives the allocator.
                let provider = unsafe { RegionProvider::new(start, len) };
                ace.init(provider, variant.config()).expect("acealloc init");
                variant.with_ace(&*ace, || visit.visit(&*ace))
            }
            Alloc::Talc => {
                let talc =
                    talc::TalcLock::<spin::mutex::SpinMutex<()>, _>::new(talc::source::Manual);
                // SAFETY: the region is ours, writable, and outlives the allocator.
                unsafe { talc.lock().claim(start, len) }.expect("talc claims the region");
                visit.visit(&talc)
            }
            Alloc::LinkedList => {
                let heap = linked_list_allocator::LockedHeap::empty();
                // SAFETY: as above.
                unsafe { heap.lock().init(start, len) };
                visit.visit(&heap)
            }
            Alloc::Buddy => {
                let heap = buddy_system_allocator::LockedHeap::<32>::empty();
                // SAFETY: as above.
                unsafe { heap.lock().init(start as usize, len) };
                visit.visit(&heap)
            }
            Alloc::Rlsf => {
                let tlsf = LockedTlsf(spin::Mutex::new(rlsf::Tlsf::new()));
                let pool = NonNull::slice_from_raw_parts(
                    NonNull::new(start).expect("a mapped region is not null"),
                    len,
                );
                // SAFETY: as above.
                unsafe { tlsf.0.lock().insert_free_block_ptr(pool) }
                    .expect("rlsf takes the region");
                visit.visit(&tlsf)
            }
            _ => return None,
        };
        Some(output)
    }
}

/// Something to do with an allocator, generic so that every allocator's calls are direct (and
/// inlined where its crate allows), as they would be for a `#[global_allocator]`.
pub trait Visit {
    type Output;
    fn visit<A: GlobalAlloc + Sync>(self, alloc: &A) -> Self::Output;
}

/// rlsf's core allocator behind a `spin` lock, as a kernel would wrap it (`GlobalTlsf`, the
/// crate's own global allocator, maps memory from the OS instead of taking a region). The
/// parameters are `GlobalTlsf`'s: `usize` bitmaps and as many lists as they have bits.
struct LockedTlsf(spin::Mutex<rlsf::Tlsf<'static, usize, usize, 64, 64>>);

// SAFETY: the `Tlsf` is reached only under the lock; the pool it manages is owned by the run.
unsafe impl Sync for LockedTlsf {}

// SAFETY: forwards to `Tlsf`, which returns blocks of the layout's size and alignment, disjoint
// from every other live block of its pool, or null.
unsafe impl GlobalAlloc for LockedTlsf {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0
            .lock()
            .allocate(layout)
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this pool with `layout` (caller contract), so it is not null.
        unsafe {
            self.0
                .lock()
                .deallocate(NonNull::new_unchecked(ptr), layout.align())
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the new layout is valid (`GlobalAlloc::realloc` contract).
        unsafe {
            let new = Layout::from_size_align_unchecked(new_size, layout.align());
            self.0
                .lock()
                .reallocate(NonNull::new_unchecked(ptr), new)
                .map_or(ptr::null_mut(), NonNull::as_ptr)
        }
    }
}

/// A single-CPU kernel's platform minus interrupt masking (which user mode cannot do): one CPU
/// slot, used without a lock, as in `benches/fast_path.rs`.
struct OneCpu;

// SAFETY: `Alloc::AceallocOneCpu` is accepted only by the single-thread fast-path workload
// (`Workload::accepts`), so one thread alone ever runs with CPU index 0.
unsafe impl Platform for OneCpu {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alloc in Alloc::all() {
            assert_eq!(Alloc::from_name(alloc.name()), Some(alloc));
        }
        assert_eq!(Alloc::from_name("nope"), None);
        let lean_ace = Alloc::from_name("acealloc-lean-ace").expect("on request");
        assert_eq!(lean_ace.name(), "acealloc-lean-ace");
        assert!(
            !Alloc::all().contains(&lean_ace),
            "not in the default matrix"
        );
    }

    #[test]
    fn knobs_reach_acealloc_config_and_only_acealloc_has_them() {
        let knobs = Knobs {
            cache_capacity: 8,
            bundle_width: 128,
            drain_threshold: 64,
            release_pages: 4,
        };
        let balanced = Alloc::from_name("acealloc-balanced").unwrap();
        let tuned = balanced.with_knobs(knobs).unwrap();
        assert_eq!(tuned.name(), "acealloc-balanced");
        assert_eq!(tuned.knobs(), Some(knobs));
        let Alloc::Acealloc(variant) = tuned else {
            panic!("still acealloc")
        };
        assert_eq!(variant.config().knobs, knobs);
        assert_eq!(balanced.knobs(), Some(Knobs::DEFAULT));
        assert_eq!(Alloc::Glibc.with_knobs(knobs), None);
        assert_eq!(Alloc::Glibc.knobs(), None);
    }

    #[test]
    fn the_ace_line_says_what_ace_did() {
        let status = AceStatus {
            enabled: true,
            decisions: 3,
            deciding_ticks: 4,
            total_tick: 4000,
            knobs: Some(Knobs {
                cache_capacity: 32,
                ..Knobs::DEFAULT
            }),
            ..AceStatus::default()
        };
        let purge = Decision {
            knob: Knob::PurgeDelay,
            ..Decision::EMPTY
        };
        let line = ace_line(&status, &[Decision::EMPTY, purge, purge]);
        assert!(line.starts_with("ACE enabled=1 off_reason=- decisions=3 traced=3"));
        assert!(line.contains(" tick_mean_ns=1000 knobs=32,32,256,1 "));
        assert!(
            line.ends_with(" changes=diet:0,bundle:0,drain:0,release:0,scavenge:0,purge_delay:2")
        );
    }
}
