//! Checked mode: every pointer coming back is verified against the page map
//! and the slab's live-block bitmap before it is trusted, and misuse is
//! reported (kind and address) through the configured hook.

use core::alloc::Layout;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;

use crate::allocator::{Allocator, large_pages};
use crate::misuse::{Misuse, MisuseKind};
use crate::page_map::Entry;
use crate::platform::Platform;
use crate::provider::{PAGE_SIZE, PageProvider};
use crate::size_class::{self, MAX_BLOCKS_PER_SLAB};

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
    pub const fn new() -> LiveBits {
        LiveBits([const { AtomicU64::new(0) }; LIVE_WORDS])
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
