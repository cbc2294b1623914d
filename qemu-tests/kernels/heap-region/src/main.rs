//! acealloc as the kernel's `#[global_allocator]` over a 100 KiB fixed region (`RegionProvider`
//! over `.bss`), on 4 CPUs: the usual heap tests through `Box` and `Vec`, then exhaustion: the
//! heap runs out, `alloc` returns null, and frees make allocation possible again.
#![no_std]
#![no_main]

use core::alloc::Layout;

use acealloc::Allocator;
use acealloc_kernel_rt::{BootInfo, entry, println};
use kernel_support::check;
use kernel_support::heaps::{self, CONFIG, FIXED_REGION_SIZE, RegionHeap};
use kernel_support::pattern::{Coverage, Patterned, fill, free_all};
use kernel_support::suite::Suite;

entry!(main);

#[global_allocator]
static HEAP: RegionHeap = Allocator::new();

/// Most blocks the exhaustion tests hold (more than the region can serve at their size).
const MAX_BLOCKS: usize = 512;
const BLOCK: usize = 256;
/// A large-path block (above the 32 KiB slab limit) of 12 pages.
const LARGE: usize = 48 * 1024;

fn main(_boot: &'static BootInfo) -> ! {
    let mut suite = Suite::start("heap-region");
    suite.test("init over the 100 KiB region", || {
        let result = heaps::init_fixed_region_heap(&HEAP, CONFIG);
        check!(result.is_ok(), "init failed: {result:?}");
        let free = HEAP.with_provider(|region| region.free_bytes());
        println!(
            "    {FIXED_REGION_SIZE} bytes, {} free for blocks after the metadata of {} CPUs",
            free.unwrap_or(0),
            HEAP.stats().cpus
        );
    });
    heap_tests::run(&mut suite);
    suite.test(
        "exhaustion: null when full, reusable after frees",
        exhaustion,
    );
    suite.test(
        "exhaustion: freed slabs serve a large block",
        large_after_small,
    );
    suite.finish()
}

fn block_layout() -> Layout {
    Layout::from_size_align(BLOCK, 8).expect("valid layout")
}

fn exhaustion() {
    let mut blocks = [const { None }; MAX_BLOCKS];
    let live_before = HEAP.stats().live_bytes;
    let first = fill(&mut blocks, &HEAP, block_layout());
    check!(
        first > 0 && first < MAX_BLOCKS,
        "{first} blocks of {BLOCK} bytes from a {FIXED_REGION_SIZE}-byte region"
    );
    check!(
        HEAP.alloc(block_layout()).is_null(),
        "an allocation succeeded after one failed, with nothing freed"
    );
    check!(
        HEAP.alloc(Layout::new::<u64>()).is_null(),
        "a block of another class came from a full region"
    );
    let failed = HEAP.stats().provider.failed_calls;
    check!(failed > 0, "no failed provider call counted");
    free_all(&mut blocks);
    let live = HEAP.stats().live_bytes;
    check!(
        live == live_before,
        "{live} live bytes after freeing all, {live_before} before"
    );
    let second = fill(&mut blocks, &HEAP, block_layout());
    check!(
        second >= first,
        "{second} blocks after the frees, {first} the first time"
    );
    free_all(&mut blocks);
    println!("    {first} blocks of {BLOCK} bytes until null, {second} again after freeing them");
}

fn large_after_small() {
    let mut blocks = [const { None }; MAX_BLOCKS];
    let small = fill(&mut blocks, &HEAP, block_layout());
    let layout = Layout::from_size_align(LARGE, 8).expect("valid layout");
    check!(
        HEAP.alloc(layout).is_null(),
        "a {LARGE}-byte block from a full region"
    );
    free_all(&mut blocks);
    let large = Patterned::alloc(&HEAP, layout, 7, Coverage::Full);
    check!(
        large.is_some(),
        "no {LARGE}-byte block after freeing {small} blocks of {BLOCK} bytes: empty slabs not returned to the region"
    );
    if let Some(large) = large {
        large.free(Coverage::Full);
    }
    let stats = HEAP.stats();
    check!(
        stats.live_bytes == 0,
        "{} bytes live at the end",
        stats.live_bytes
    );
}
