//! What the central free lists' locks do not cover: a thread that is inside
//! the page provider for a new slab (a system call on hosted builds, which
//! may take long or lose the CPU) holds no central-list lock, so other
//! threads keep returning blocks of that class meanwhile.

mod common;

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use acealloc::{Allocator, Config, Knobs, PageProvider, RegionProvider, Span};

use common::{PretendCpus, Region};

/// Two CPUs with try-locked caches; each thread picks its own.
type Cpus = PretendCpus<2, false>;

/// Armed: the next `alloc_pages` call says it entered and waits until it
/// is released, or gives up after [`GATE_TIMEOUT`] (and says so).
static ARMED: AtomicBool = AtomicBool::new(false);
static ENTERED: AtomicBool = AtomicBool::new(false);
static RELEASED: AtomicBool = AtomicBool::new(false);
static TIMED_OUT: AtomicBool = AtomicBool::new(false);
const GATE_TIMEOUT: Duration = Duration::from_secs(10);

/// A region provider whose next call, once armed, stands for a system call
/// that does not return until the test says so.
struct Gated(RegionProvider);

// SAFETY: every call goes to the region provider, which keeps the promises.
unsafe impl PageProvider for Gated {
    fn span(&self) -> Span {
        self.0.span()
    }

    fn alloc_pages(&mut self, pages: usize, align: usize) -> Option<NonNull<u8>> {
        if ARMED.swap(false, SeqCst) {
            ENTERED.store(true, SeqCst);
            let start = Instant::now();
            while !RELEASED.load(SeqCst) {
                if start.elapsed() > GATE_TIMEOUT {
                    TIMED_OUT.store(true, SeqCst);
                    break;
                }
                thread::yield_now();
            }
        }
        self.0.alloc_pages(pages, align)
    }

    unsafe fn free_pages(&mut self, ptr: NonNull<u8>, pages: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.0.free_pages(ptr, pages) }
    }
}

/// Thread A on CPU 0 allocates 64-byte blocks until the class needs a new
/// slab and the provider holds it there; meanwhile the test thread, on
/// CPU 1, frees blocks of the class, which (with a one-block cache and a
/// one-block transfer threshold) go back to their slab under the class's
/// central lock. That must finish while A is still in the provider.
#[test]
fn a_new_slab_is_made_without_the_central_lock() {
    let region = Region::new(64 << 20, 1 << 20);
    let a: Allocator<Gated, Cpus> = Allocator::new();
    let config = Config {
        knobs: Knobs {
            cache_capacity: 1,
            bundle_width: 1,
            drain_threshold: 1,
            // Slabs that empty stay as the reserve: no page lock on free.
            release_pages: 1024,
        },
        checks: false,
        ..Config::DEFAULT
    };
    // SAFETY: the region outlives the allocator (declared first) and has
    // this one provider.
    a.init(Gated(unsafe { region.provider() }), config).unwrap();
    let layout = Layout::from_size_align(64, 8).unwrap();
    Cpus::run_on(1);
    let mine: Vec<_> = (0..8).map(|_| a.alloc(layout)).collect();
    assert!(mine.iter().all(|p| !p.is_null()));
    ARMED.store(true, SeqCst);
    thread::scope(|s| {
        let (a, layout) = (&a, layout);
        let taker = s.spawn(move || {
            Cpus::run_on(0);
            let mut got = Vec::new();
            while !ENTERED.load(SeqCst) && got.len() < 100_000 {
                got.push(a.alloc(layout));
            }
            for ptr in got {
                // SAFETY: allocated above with `layout`.
                unsafe { a.dealloc(ptr, layout) };
            }
        });
        let start = Instant::now();
        while !ENTERED.load(SeqCst) && start.elapsed() < GATE_TIMEOUT {
            thread::yield_now();
        }
        assert!(ENTERED.load(SeqCst), "the class never needed a new slab");
        for ptr in mine {
            // SAFETY: allocated above with `layout`.
            unsafe { a.dealloc(ptr, layout) };
        }
        RELEASED.store(true, SeqCst);
        taker.join().unwrap();
    });
    assert!(
        !TIMED_OUT.load(SeqCst),
        "freeing waited for the thread inside the provider: {}",
        a.stats()
    );
}
