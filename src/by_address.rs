//! Entry points that take only an address, as C's `free`, `realloc` and
//! `malloc_usable_size` do: the page map supplies what the layout would.
//! No header sits in front of blocks; a slab page names its descriptor (so
//! the class), a large run's first page its page count.

use core::alloc::Layout;

use crate::allocator::Allocator;
use crate::misuse::{Misuse, MisuseKind};
use crate::page_map::Entry;
use crate::platform::Platform;
use crate::provider::{PAGE_SIZE, PageProvider};
use crate::size_class::{self, MAX_SMALL};

impl<P: PageProvider + Send, Pl: Platform> Allocator<P, Pl> {
    /// A layout of the block at `ptr` that [`dealloc`](Self::dealloc) and
    /// [`realloc`](Self::realloc) accept: the block's class size, or its
    /// run's bytes, with the least alignment that leads to the same class
    /// or run. `None` when the page map shows no block that could start at
    /// `ptr` (checked mode then still verifies liveness and the exact start
    /// of a small block in `dealloc`).
    #[inline]
    pub fn layout_of(&self, ptr: *const u8) -> Option<Layout> {
        self.block_at(ptr).ok()
    }

    /// Usable bytes of the live block at `ptr`: its class size, or its
    /// run's bytes (at least what was asked for). In checked mode a pointer
    /// that is not a live block is reported (`use after free` for a freed
    /// one) and gives `None`; unchecked, only what the page map shows.
    #[inline]
    pub fn usable_size(&self, ptr: *const u8) -> Option<usize> {
        match self.checked_block_at(ptr.cast_mut()) {
            Ok(layout) => Some(layout.size()),
            Err(kind) => {
                self.report_unsized(kind, ptr, false);
                None
            }
        }
    }

    /// Frees the block at `ptr` without its layout (C's `free`).
    ///
    /// Addresses that the page map shows cannot start a block (outside the
    /// span, metadata, inside a large run, a freed large run) are reported
    /// as misuse in either mode and dropped; checked mode verifies the rest
    /// as [`dealloc`](Self::dealloc) does.
    ///
    /// # Safety
    /// Unchecked, `ptr` is a live block of this allocator that is not used
    /// again (the page map cannot tell a block's interior from its start,
    /// nor a live block from a freed one).
    #[inline]
    pub unsafe fn free(&self, ptr: *mut u8) {
        // SAFETY: forwarded caller contract.
        if !unsafe { self.free_to_cache(ptr) } {
            // SAFETY: forwarded caller contract.
            unsafe { self.free_uncached(ptr) }
        }
    }

    /// [`free`](Self::free) past its fast path: large runs, checked mode,
    /// pointers the page map shows no slab for.
    ///
    /// # Safety
    /// As for [`free`](Self::free).
    #[cold]
    #[inline(never)]
    unsafe fn free_uncached(&self, ptr: *mut u8) {
        match self.checked_block_at(ptr) {
            // SAFETY: forwarded caller contract (or verified in checked
            // mode); the layout leads to the block's own class or run.
            Ok(layout) => unsafe { self.dealloc(ptr, layout) },
            Err(kind) => self.report_unsized(kind, ptr, true),
        }
    }

    /// Resizes the block at `ptr` to `new_size` bytes without its layout
    /// (C's `realloc`), as [`realloc`](Self::realloc) does with the layout
    /// [`layout_of`](Self::layout_of) gives; misuse is reported as by
    /// [`free`](Self::free) (`use after free` for a freed block) and gives
    /// null with the block left as it was.
    ///
    /// # Safety
    /// As for [`free`](Self::free), except that the block is used again
    /// when null is returned.
    #[inline]
    pub unsafe fn realloc_unsized(&self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        match self.checked_block_at(ptr) {
            // SAFETY: forwarded caller contract (or verified in checked
            // mode); the layout leads to the block's own class or run.
            Ok(layout) => unsafe { self.realloc(ptr, layout, new_size) },
            Err(kind) => {
                self.report_unsized(kind, ptr, false);
                core::ptr::null_mut()
            }
        }
    }

    /// [`block_at`](Self::block_at), and in checked mode also whether the
    /// block is live and `ptr` its exact start (without marking it free:
    /// `dealloc` does that, verifying once more).
    #[inline]
    fn checked_block_at(&self, ptr: *mut u8) -> Result<Layout, MisuseKind> {
        let layout = self.block_at(ptr)?;
        if self.checks_on()
            && let Some(kind) = self.misuse_at(ptr, layout, false)
        {
            return Err(kind);
        }
        Ok(layout)
    }

    /// The round-trip layout of the block the page map shows at `ptr`, or
    /// the misuse that freeing `ptr` would be.
    #[inline]
    fn block_at(&self, ptr: *const u8) -> Result<Layout, MisuseKind> {
        let addr = ptr as usize;
        let entry = self.entry_at(addr);
        let page_start = addr.is_multiple_of(PAGE_SIZE);
        let (size, align) = match entry {
            // Alignment 1: `for_layout` maps a class size to its class.
            Entry::Slab { class, .. } => (size_class::size_of(class), 1),
            Entry::Large { pages } if page_start => {
                let size = pages * PAGE_SIZE;
                // A run of at most MAX_SMALL bytes was over-aligned (above a
                // page), or it would be a slab block: its own alignment
                // keeps the layout on the large path.
                let align = if size > MAX_SMALL {
                    1
                } else {
                    1 << addr.trailing_zeros()
                };
                (size, align)
            }
            Entry::FreedLarge if page_start => return Err(MisuseKind::DoubleFree),
            _ => return Err(MisuseKind::InvalidFree),
        };
        Layout::from_size_align(size, align).map_err(|_| MisuseKind::InvalidFree)
    }

    /// Reports misuse of `ptr` by a call that passed no layout.
    fn report_unsized(&self, kind: MisuseKind, ptr: *const u8, release: bool) {
        let kind = match kind {
            MisuseKind::DoubleFree if !release => MisuseKind::UseAfterFree,
            MisuseKind::UseAfterFree if release => MisuseKind::DoubleFree,
            kind => kind,
        };
        self.report(Misuse {
            kind,
            addr: ptr as usize,
            size: 0,
            align: 0,
        });
    }
}
