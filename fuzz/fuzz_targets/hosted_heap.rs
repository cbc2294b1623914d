//! Alloc/realloc/free sequences on the hosted heap (an `mmap` reservation
//! and the OS's CPU index), checks on or off, against the shadow model.
//! The reservation is never exhausted, so every request must succeed.
#![no_main]

use acealloc::PageProvider;
use acealloc::hosted::HostedAllocator;
use acealloc::provider::MmapProvider;
use acealloc_fuzz::{Op, config, run};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    checks: bool,
    profile: u8,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let config = config(input.profile, input.checks);
    let provider = MmapProvider::new(4 << 30, config.decommit).expect("reserve 4 GiB");
    let span = provider.span();
    let heap = Box::new(HostedAllocator::new());
    heap.init(provider, config).expect("init");
    run(
        &heap,
        &input.ops,
        (span.base, span.base + span.len),
        false,
        |_| {},
    );
});
