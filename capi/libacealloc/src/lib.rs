//! `libacealloc.so` and `libacealloc.a`: the `acealloc-capi` crate's C ABI
//! as a C library. A separate package because Cargo names a library's
//! files after the crate: this one is `acealloc` (so `-lacealloc`), which
//! a Rust dependency could not share with the core crate; Rust kernels
//! link `acealloc-capi` itself.
#![no_std]

pub use acealloc_capi::*;

/// A kernel that breaks the platform contract (or calls in with no
/// misuse hook set while checks are on) stops here: nothing on the
/// allocator's own paths panics.
#[cfg(not(feature = "hosted"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
