//! Checked mode: every pointer coming back is verified against the page map
//! and the slab's live-block bitmap before it is trusted, and misuse is
//! reported (kind and address) through the configured hook.

use core::alloc::Layout;

use crate::allocator::{Allocator, large_pages};
use crate::misuse::{Misuse, MisuseKind};
use crate::page_map::Entry;
use crate::platform::Platform;
use crate::provider::{PAGE_SIZE, PageProvider};
use crate::size_class;

impl<P: PageProvider + Send, Pl: Platform> Allocator<P, Pl> {
    /// Records that the small block at `addr` is now with the user.
    pub(crate) fn mark_live(&self, addr: usize) {
        if let Entry::Slab(slab) = self.map().get(addr) {
            // SAFETY: the page map names the live descriptor of the slab the
            // block was just taken from; the bitmap is atomic.
            let slab = unsafe { &*slab };
            if let Some(index) = slab.block_index(addr) {
                slab.live.set_aliased(index, true);
            }
        }
    }

    /// Verifies that `ptr` is a live block allocated with `layout`; when
    /// `release`, also marks it free. Reports misuse and returns `false`.
    pub(crate) fn verify(&self, ptr: *mut u8, layout: Layout, release: bool) -> bool {
        let addr = ptr as usize;
        let class = size_class::for_layout(layout);
        let entry = self.page_map().map_or(Entry::Unused, |map| map.get(addr));
        let page_start = addr.is_multiple_of(PAGE_SIZE);
        let problem = match (entry, class) {
            (Entry::Slab(slab), Some(class)) => {
                // SAFETY: descriptors named by the page map stay readable for
                // the allocator's life (the pool never returns its pages).
                let slab = unsafe { &*slab };
                match slab.block_index(addr) {
                    _ if slab.class != class => Some(MisuseKind::LayoutMismatch),
                    None => Some(MisuseKind::InvalidFree),
                    Some(index) if !slab.live[index] => Some(MisuseKind::DoubleFree),
                    Some(index) => {
                        if release {
                            slab.live.set_aliased(index, false);
                        }
                        None
                    }
                }
            }
            (Entry::Large { pages }, None) if page_start => {
                let wrong = large_pages(layout) != pages || !addr.is_multiple_of(layout.align());
                wrong.then_some(MisuseKind::LayoutMismatch)
            }
            (Entry::Slab(_), None) | (Entry::Large { .. }, Some(_))
                if page_start || class.is_none() =>
            {
                Some(MisuseKind::LayoutMismatch)
            }
            (Entry::FreedLarge, _) if page_start => Some(MisuseKind::DoubleFree),
            _ => Some(MisuseKind::InvalidFree),
        };
        match problem {
            None => true,
            Some(kind) => {
                self.report(Misuse {
                    kind,
                    addr,
                    size: layout.size(),
                    align: layout.align(),
                });
                false
            }
        }
    }

    fn report(&self, misuse: Misuse) {
        match self.config().and_then(|c| c.misuse_hook) {
            Some(hook) => hook(&misuse),
            None => panic!("{misuse}"),
        }
    }
}
