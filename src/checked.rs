//! Checked mode: every pointer coming back is verified against the page map
//! and the slab's live-block bitmap before it is trusted, and misuse is
//! reported (kind and address) through the configured hook.

use core::alloc::Layout;
use core::sync::atomic::Ordering::Relaxed;

use crate::allocator::{Allocator, large_pages};
use crate::misuse::{Misuse, MisuseKind};
use crate::page_map::Entry;
use crate::platform::Platform;
use crate::provider::{PAGE_SIZE, PageProvider};
use crate::size_class::{self, MAX_BLOCKS_PER_SLAB};
use crate::sync::AtomicU64;

const LIVE_WORDS: usize = MAX_BLOCKS_PER_SLAB / 64;

/// A slab's live-block bitmap: a bit per block, set while the block is with
/// the user. Written without the depot's lock (as blocks leave and come
/// back through the per-CPU caches), so it is plain atomic words: bitvec's
/// aliased `BitSlice<AtomicU64>` writes through a reference that its own
/// pointer casts made read-only (Miri, Tree Borrows). Relaxed suffices:
/// whoever frees a block got it from its allocator through the program's
/// own synchronisation, which orders the bit's setting before its clearing.
pub(crate) struct LiveBits([AtomicU64; LIVE_WORDS]);

impl LiveBits {
    pub fn new() -> LiveBits {
        LiveBits(core::array::from_fn(|_| AtomicU64::new(0)))
    }

    fn word(&self, index: usize) -> (&AtomicU64, u64) {
        (&self.0[index / 64], 1 << (index % 64))
    }

    /// Marks block `index` live.
    pub fn set(&self, index: usize) {
        let (word, bit) = self.word(index);
        word.fetch_or(bit, Relaxed);
    }

    /// Whether block `index` is live.
    pub fn get(&self, index: usize) -> bool {
        let (word, bit) = self.word(index);
        word.load(Relaxed) & bit != 0
    }

    /// Marks block `index` free; returns whether it was live. One atomic
    /// step, so of two frees of a block racing on two CPUs only one wins.
    pub fn clear(&self, index: usize) -> bool {
        let (word, bit) = self.word(index);
        word.fetch_and(!bit, Relaxed) & bit != 0
    }
}

impl<P: PageProvider + Send, Pl: Platform> Allocator<P, Pl> {
    /// Records that the small block at `addr` is now with the user.
    pub(crate) fn mark_live(&self, addr: usize) {
        if let Entry::Slab { slab, .. } = self.map().get(addr) {
            // SAFETY: the page map names the live descriptor of the slab the
            // block was just taken from; the bitmap is atomic.
            let slab = unsafe { &*slab };
            if let Some(index) = slab.block_index(addr) {
                slab.live.set(index);
            }
        }
    }

    /// Verifies that `ptr` is a live block allocated with `layout`; when
    /// `release`, also marks it free. Reports misuse and returns `false`.
    pub(crate) fn verify(&self, ptr: *mut u8, layout: Layout, release: bool) -> bool {
        match self.misuse_at(ptr, layout, release) {
            None => true,
            Some(kind) => {
                self.report(Misuse {
                    kind,
                    addr: ptr as usize,
                    size: layout.size(),
                    align: layout.align(),
                });
                false
            }
        }
    }

    /// [`verify`](Self::verify) without the report: the misuse, if any.
    pub(crate) fn misuse_at(
        &self,
        ptr: *mut u8,
        layout: Layout,
        release: bool,
    ) -> Option<MisuseKind> {
        let addr = ptr as usize;
        let class = size_class::for_layout(layout);
        let entry = self.entry_at(addr);
        let page_start = addr.is_multiple_of(PAGE_SIZE);
        // First whether a block starts at `addr` (anything else is an
        // invalid free, whatever layout came with it), then whether it is
        // live, and only then whether `layout` is the one it was given.
        match entry {
            Entry::Slab { slab, .. } => {
                // SAFETY: descriptors named by the page map stay readable for
                // the allocator's life (the pool never returns its pages).
                let slab = unsafe { &*slab };
                match slab.block_index(addr) {
                    None => Some(MisuseKind::InvalidFree),
                    Some(index) if !slab.live.get(index) => Some(freed(release)),
                    Some(_) if class != Some(slab.class) => Some(MisuseKind::LayoutMismatch),
                    // Another CPU may have freed it since the test above.
                    Some(index) if release && !slab.live.clear(index) => Some(freed(release)),
                    Some(_) => None,
                }
            }
            Entry::Large { pages } if page_start => {
                let wrong = class.is_some()
                    || large_pages(layout) != pages
                    || !addr.is_multiple_of(layout.align());
                wrong.then_some(MisuseKind::LayoutMismatch)
            }
            Entry::FreedLarge if page_start => Some(freed(release)),
            _ => Some(MisuseKind::InvalidFree),
        }
    }

    pub(crate) fn report(&self, misuse: Misuse) {
        match self.config().and_then(|c| c.misuse_hook) {
            Some(hook) => hook(&misuse),
            None => panic!("{misuse}"),
        }
    }
}

/// The misuse of a block that is no longer live: freeing it again, or
/// using it (`realloc`, a usable-size query).
fn freed(release: bool) -> MisuseKind {
    if release {
        MisuseKind::DoubleFree
    } else {
        MisuseKind::UseAfterFree
    }
}

/// loom model of the live bitmap under cross-CPU frees (run by `cargo xtask
/// test`'s loom step).
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::atomic::Ordering::{Acquire, Release};
    use loom::thread;

    /// Three CPUs and blocks 0 and 1 of one slab (one bitmap word): CPU A
    /// allocates block 0 and hands it to CPU B (through the program's own
    /// synchronisation, here a flag), which frees it, while CPUs B and C
    /// both free block 1, live from before: block 0's free finds it live,
    /// and exactly one of block 1's frees does (the other is the double
    /// free that checked mode reports); no bit of the word is lost.
    #[test]
    fn each_live_bit_is_cleared_once_across_cpus() {
        loom::model(|| {
            let live = Arc::new(LiveBits::new());
            let handed = Arc::new(AtomicBool::new(false));
            live.set(1);
            let a = {
                let (live, handed) = (live.clone(), handed.clone());
                thread::spawn(move || {
                    live.set(0);
                    handed.store(true, Release);
                })
            };
            let c = {
                let live = live.clone();
                thread::spawn(move || live.clear(1))
            };
            let b_freed_1 = live.clear(1);
            while !handed.load(Acquire) {
                thread::yield_now();
            }
            assert!(live.clear(0), "a block handed over is live");
            a.join().unwrap();
            let c_freed_1 = c.join().unwrap();
            assert!(b_freed_1 != c_freed_1, "exactly one of two frees wins");
            assert!(!live.get(0) && !live.get(1));
        });
    }
}
