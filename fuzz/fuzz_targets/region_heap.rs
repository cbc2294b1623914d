//! Alloc/realloc/free sequences on a region heap (a kernel's fixed region,
//! here 64 KiB to 4 MiB, so it runs out) on four pretend CPUs, checks on or
//! off, against the shadow model.
#![no_main]

use acealloc::{Allocator, PageProvider, RegionProvider};
use acealloc_fuzz::{Op, PretendCpus, Region, config, run};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

type Cpus = PretendCpus<4>;

#[derive(Arbitrary, Debug)]
struct Input {
    checks: bool,
    profile: u8,
    region_pages: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let region = Region::new(
        (16 + usize::from(input.region_pages) * 4) * acealloc::PAGE_SIZE,
        acealloc::PAGE_SIZE,
    );
    Cpus::switch(0);
    // SAFETY: the only provider of the region, and the heap (which owns
    // it) is dropped before the region.
    let provider = unsafe { region.provider() };
    let span = provider.span();
    let heap: Box<Allocator<RegionProvider, Cpus>> = Box::new(Allocator::new());
    heap.init(provider, config(input.profile, input.checks))
        .expect("a region of 64 KiB or more takes the heap's metadata");
    run(
        &heap,
        &input.ops,
        (span.base, span.base + span.len),
        true,
        Cpus::switch,
    );
    drop(heap);
});
