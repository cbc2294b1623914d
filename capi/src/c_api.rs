//! C's allocation semantics over any [`Allocator`], shared by the hosted
//! and the freestanding library: what `malloc(0)`, `realloc(p, 0)`, an
//! overflowing `calloc` or a bad alignment give. The callers turn the
//! [`Error`] into `errno` (hosted) or just null (freestanding).

use core::alloc::Layout;
use core::ptr;

use acealloc::{Allocator, PageProvider, Platform};

/// The alignment C's `malloc` promises (`alignof(max_align_t)`).
pub const MALLOC_ALIGN: usize = acealloc::size_class::MIN_ALIGN;

/// Why a call returned null.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// `ENOMEM`: no memory, or a size no block can have.
    NoMemory,
    /// `EINVAL`: an alignment the call does not accept.
    Invalid,
}

type Result = core::result::Result<*mut u8, Error>;

/// `malloc`: `size` 0 gives a unique block of the smallest class.
#[inline(always)]
pub fn malloc<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>, size: usize) -> Result {
    non_null(a.alloc_bytes(size))
}

/// A block of `size` bytes aligned to `align`, a power of two.
pub fn aligned<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    align: usize,
    size: usize,
) -> Result {
    let layout = Layout::from_size_align(size, align).map_err(|_| Error::NoMemory)?;
    non_null(a.alloc(layout))
}

/// A block, or `ENOMEM` for null.
#[inline(always)]
fn non_null(p: *mut u8) -> Result {
    if p.is_null() {
        Err(Error::NoMemory)
    } else {
        Ok(p)
    }
}

/// `calloc`: `n * size` zeroed bytes; an overflowing product is `ENOMEM`.
/// Fresh pages that read as zero are not cleared again
/// ([`Allocator::alloc_zeroed`]).
pub fn calloc<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    n: usize,
    size: usize,
) -> Result {
    let bytes = n.checked_mul(size).ok_or(Error::NoMemory)?;
    let layout = Layout::from_size_align(bytes, MALLOC_ALIGN).map_err(|_| Error::NoMemory)?;
    non_null(a.alloc_zeroed(layout))
}

/// `aligned_alloc`: `EINVAL` unless `align` is a power of two (glibc's
/// rule: any size). `posix_memalign` is this too, and also wants a
/// multiple of `sizeof(void *)`, which its caller checks.
pub fn aligned_alloc<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    align: usize,
    size: usize,
) -> Result {
    if !align.is_power_of_two() {
        return Err(Error::Invalid);
    }
    aligned(a, align, size)
}

/// `free`: null is a no-op.
///
/// # Safety
/// `p` is null or a block of `a` that is not used again (in checked mode
/// anything else is reported).
#[inline(always)]
pub unsafe fn free<P: PageProvider + Send, Pl: Platform>(a: &Allocator<P, Pl>, p: *mut u8) {
    if !p.is_null() {
        // SAFETY: forwarded caller contract.
        unsafe { a.free(p) }
    }
}

/// `realloc` as glibc does it: a null `p` allocates, size 0 frees and
/// gives null (`Ok`), failure leaves the block as it was.
///
/// # Safety
/// As for [`free`], except that the block stays live when an error or the
/// block itself comes back.
pub unsafe fn realloc<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    p: *mut u8,
    size: usize,
) -> Result {
    if p.is_null() {
        return malloc(a, size);
    }
    if size == 0 {
        // SAFETY: forwarded caller contract.
        unsafe { a.free(p) };
        return Ok(ptr::null_mut());
    }
    if size > isize::MAX as usize - MALLOC_ALIGN {
        return Err(Error::NoMemory);
    }
    // SAFETY: forwarded caller contract.
    non_null(unsafe { a.realloc_unsized(p, size) })
}

/// `malloc_usable_size`: 0 for null.
pub fn usable_size<P: PageProvider + Send, Pl: Platform>(
    a: &Allocator<P, Pl>,
    p: *const u8,
) -> usize {
    if p.is_null() {
        return 0;
    }
    a.usable_size(p).unwrap_or(0)
}
