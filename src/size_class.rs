//! Size classes: the table that maps a request to a block size.
//!
//! ```text
//!   16  32  48 ... 128          eight classes, 16 B apart
//!  144 160 ... 256              eight per doubling from here on:
//!  288 320 ... 512              the step is 1/8 of the group base,
//!  ...                          so rounding wastes < 12.5 %
//! 18432 ... 32768               (72 classes in all)
//! ```
//!
//! Every class size is a multiple of its step, and slabs start on a page
//! boundary, so each block is naturally aligned to the largest power of two
//! that divides its size (capped at a page). A request with a larger
//! alignment is served by the first class whose natural alignment covers it.

use core::alloc::Layout;

use crate::PAGE_SIZE;

/// Number of size classes.
pub const NUM_CLASSES: usize = 72;
/// Largest size served by slabs; larger requests take the large path.
pub const MAX_SMALL: usize = 32 * 1024;
/// Most blocks one slab holds (bounds the checked-mode bitmap).
pub const MAX_BLOCKS_PER_SLAB: usize = 512;

/// Index of a size class, `0..NUM_CLASSES`.
pub type Class = usize;

const fn class_size_at(class: usize) -> usize {
    if class < 8 {
        (class + 1) * 16
    } else {
        let group = (class - 8) / 8; // 0 for 129..=256
        let base = 128 << group;
        base + (class % 8 + 1) * (base / 8)
    }
}

const fn slab_pages_at(class: usize) -> usize {
    let size = class_size_at(class);
    // Enough room for a few blocks of the class...
    let min_blocks = if size >= 8192 { 1 } else { 8192 / size };
    let min_blocks = if min_blocks > 8 { 8 } else { min_blocks };
    let mut pages = (min_blocks * size).div_ceil(PAGE_SIZE);
    // ...then grow until the tail that no block fits in is at most 1/8.
    while (pages * PAGE_SIZE) % size * 8 > pages * PAGE_SIZE {
        pages += 1;
    }
    pages
}

/// `(block size, slab pages)` of every class, computed at compile time.
const fn build() -> ([u32; NUM_CLASSES], [u32; NUM_CLASSES]) {
    let (mut sizes, mut pages) = ([0u32; NUM_CLASSES], [0u32; NUM_CLASSES]);
    let mut class = 0;
    while class < NUM_CLASSES {
        sizes[class] = class_size_at(class) as u32;
        pages[class] = slab_pages_at(class) as u32;
        class += 1;
    }
    (sizes, pages)
}

static SIZES: [u32; NUM_CLASSES] = build().0;
static SLAB_PAGES: [u32; NUM_CLASSES] = build().1;

/// Block size of `class` in bytes.
#[inline]
pub fn size_of(class: Class) -> usize {
    SIZES[class] as usize
}

/// Pages in one slab of `class`.
#[inline]
pub fn slab_pages(class: Class) -> usize {
    SLAB_PAGES[class] as usize
}

/// Blocks in one slab of `class`.
#[inline]
pub fn blocks_per_slab(class: Class) -> usize {
    slab_pages(class) * PAGE_SIZE / size_of(class)
}

/// Natural alignment of the blocks of `class`.
#[inline]
pub fn align_of(class: Class) -> usize {
    let size = size_of(class);
    (size & size.wrapping_neg()).min(PAGE_SIZE)
}

/// The alignment of every class's blocks (all sizes are multiples of it).
pub const MIN_ALIGN: usize = 16;

/// The class of each size up to [`MAX_SMALL`] in steps of [`MIN_ALIGN`]
/// (entry `n`: sizes `16n - 15 ..= 16n`; entry 0: size 0): every class
/// size is a multiple of 16, so the step decides the class. 2 KiB, of
/// which a program touches the lines of the sizes it uses.
const CLASS_OF: [u8; MAX_SMALL / MIN_ALIGN + 1] = {
    let mut table = [0u8; MAX_SMALL / MIN_ALIGN + 1];
    let (mut step, mut class) = (1, 0);
    while step < table.len() {
        while class_size_at(class) < step * MIN_ALIGN {
            class += 1;
        }
        table[step] = class as u8;
        step += 1;
    }
    table
};

const _: () = assert!(NUM_CLASSES <= 256, "CLASS_OF holds classes as u8");

/// Smallest class whose blocks hold `size` bytes, or `None` above [`MAX_SMALL`].
#[inline(always)]
pub fn for_size(size: usize) -> Option<Class> {
    if size <= MAX_SMALL {
        Some(CLASS_OF[size.div_ceil(MIN_ALIGN)] as Class)
    } else {
        None
    }
}

/// The class that serves `layout`, or `None` for the large path.
///
/// Deterministic in the layout, so `dealloc` recomputes it instead of
/// looking the block up: `GlobalAlloc` guarantees the same layout.
#[inline(always)]
pub fn for_layout(layout: Layout) -> Option<Class> {
    let class = for_size(layout.size())?;
    if layout.align() <= MIN_ALIGN {
        return Some(class);
    }
    for_aligned(class, layout.align())
}

#[cold]
fn for_aligned(first: Class, align: usize) -> Option<Class> {
    (first..NUM_CLASSES).find(|&c| align_of(c) >= align)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_increase_and_end_at_max_small() {
        for c in 1..NUM_CLASSES {
            assert!(size_of(c) > size_of(c - 1));
        }
        assert_eq!(size_of(0), 16);
        assert_eq!(size_of(NUM_CLASSES - 1), MAX_SMALL);
    }

    #[test]
    fn every_size_maps_to_the_smallest_fitting_class() {
        for size in 0..=MAX_SMALL {
            let c = for_size(size).unwrap();
            assert!(size_of(c) >= size, "size {size} class {c}");
            if c > 0 {
                assert!(size_of(c - 1) < size.max(1), "size {size} not smallest");
            }
        }
        assert_eq!(for_size(MAX_SMALL + 1), None);
    }

    #[test]
    fn rounding_waste_is_at_most_an_eighth_above_128() {
        for size in 129..=MAX_SMALL {
            let block = size_of(for_size(size).unwrap());
            assert!((block - size) * 8 <= block, "size {size} -> {block}");
        }
    }

    #[test]
    fn slabs_hold_blocks_with_little_tail_waste() {
        for c in 0..NUM_CLASSES {
            let bytes = slab_pages(c) * PAGE_SIZE;
            let blocks = blocks_per_slab(c);
            assert!((1..=MAX_BLOCKS_PER_SLAB).contains(&blocks), "class {c}");
            assert!((bytes - blocks * size_of(c)) * 8 <= bytes, "class {c}");
        }
    }

    #[test]
    fn aligned_layouts_get_aligned_classes() {
        for align in [32, 64, 128, 256, 512, 1024, 2048, 4096] {
            for size in [1, 17, 100, 1000, 5000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                let c = for_layout(layout).unwrap();
                assert!(size_of(c) >= size);
                assert_eq!(size_of(c) % align, 0, "size {size} align {align}");
            }
        }
        let huge_align = Layout::from_size_align(64, 8192).unwrap();
        assert_eq!(for_layout(huge_align), None);
    }
}
