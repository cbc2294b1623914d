//! The hosted library: the C library's `malloc` family, replaced.
//!
//! Every function below is exported under its C name, so a program linked
//! with `libacealloc.so` (or run under `LD_PRELOAD`) allocates through one
//! [`HostedAlloc`], which is also this library's own Rust allocator. The
//! allocator sets itself up on the first call, from the `ACEALLOC_*`
//! variables ([`acealloc::hosted`]), reading them with `getenv` and mapping
//! its memory with `mmap`: nothing on that path calls `malloc`, so the
//! first `malloc` (the dynamic loader's, before `main`) cannot recurse.
//! No thread-local storage and no `dlsym` are used.
//!
//! A constructor (`.init_array`, run once the C library is up) registers
//! the `fork` handlers and starts ACE's ticker thread if `ACEALLOC_ACE=1`.
//! This is the one place the hosted library starts ACE.

use core::ffi::{c_int, c_void};
use core::ptr;

use acealloc::PAGE_SIZE;
use acealloc::hosted::{HostedAlloc, HostedAllocator};

use crate::CStats;
use crate::c_api::{self, Error, MALLOC_ALIGN};

/// The process's allocator: C's `malloc` and this library's Rust code.
#[global_allocator]
static ALLOC: HostedAlloc = HostedAlloc::new();

#[inline(always)]
fn a() -> &'static HostedAllocator {
    ALLOC.allocator()
}

/// The `errno` value of `error`.
fn errno_of(error: Error) -> c_int {
    match error {
        Error::NoMemory => libc::ENOMEM,
        Error::Invalid => libc::EINVAL,
    }
}

fn set_errno(error: Error) {
    // SAFETY: `__errno_location` returns this thread's errno.
    unsafe { *libc::__errno_location() = errno_of(error) };
}

/// The pointer, or null with `errno` set.
#[inline(always)]
fn or_errno(result: Result<*mut u8, Error>) -> *mut c_void {
    match result {
        Ok(p) => p.cast(),
        Err(e) => {
            set_errno(e);
            ptr::null_mut()
        }
    }
}

/// `malloc(3)`: a block from this CPU's cache, with no call on the way;
/// everything else in [`malloc_uncached`].
#[unsafe(no_mangle)]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    let p = ALLOC.alloc_cached(size);
    if p.is_null() {
        return malloc_uncached(size);
    }
    p.cast()
}

/// `malloc` past its fast path: set-up, refills, large blocks, checked
/// mode, errno. `extern "C"` (a panic cannot leave it) so that `malloc`
/// needs no unwinding pad around the call and ends in a jump to it.
#[cold]
#[inline(never)]
extern "C" fn malloc_uncached(size: usize) -> *mut c_void {
    or_errno(c_api::malloc(a(), size))
}

/// `free(3)`: a small block onto this CPU's cache, with no call on the
/// way; everything else in [`free_uncached`].
///
/// # Safety
/// `p` is null or a live block from this library, not used again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: forwarded caller contract.
    if !unsafe { ALLOC.free_cached(p.cast()) } {
        // SAFETY: forwarded caller contract.
        unsafe { free_uncached(p) }
    }
}

/// `free` past its fast path: null, large blocks, drains, checked mode,
/// misuse. `extern "C"` as [`malloc_uncached`] is.
///
/// # Safety
/// As for [`free`].
#[cold]
#[inline(never)]
unsafe extern "C" fn free_uncached(p: *mut c_void) {
    // SAFETY: forwarded caller contract.
    unsafe { c_api::free(a(), p.cast()) }
}

/// C23's `free_sized`: `free` with the size the block was allocated with,
/// through the sized Rust API (`Allocator::dealloc`), so checked mode
/// verifies the size.
///
/// # Safety
/// As for [`free`], and `size` is the size passed to `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, size: usize) {
    // SAFETY: forwarded caller contract.
    unsafe { free_aligned_sized(p, MALLOC_ALIGN, size) }
}

/// C23's `free_aligned_sized`: as [`free_sized`] for a block of
/// `aligned_alloc(align, size)`.
///
/// # Safety
/// As for [`free`], and `align`, `size` are the ones the block was
/// allocated with.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, align: usize, size: usize) {
    if p.is_null() {
        return;
    }
    match core::alloc::Layout::from_size_align(size, align) {
        // SAFETY: forwarded caller contract.
        Ok(layout) => unsafe { a().dealloc(p.cast(), layout) },
        // No block has this layout: let the page map judge the pointer.
        // SAFETY: forwarded caller contract.
        Err(_) => unsafe { free(p) },
    }
}

/// `calloc(3)`: null with `ENOMEM` when `n * size` overflows.
#[unsafe(no_mangle)]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    or_errno(c_api::calloc(a(), n, size))
}

/// `realloc(3)`, as glibc: `realloc(NULL, n)` is `malloc(n)`,
/// `realloc(p, 0)` frees `p` and returns null.
///
/// # Safety
/// As for [`free`]; on null (other than for size 0) `p` is still live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded caller contract.
    or_errno(unsafe { c_api::realloc(a(), p.cast(), size) })
}

/// `reallocarray(3)`: `realloc(p, n * size)`, `ENOMEM` on overflow.
///
/// # Safety
/// As for [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded caller contract.
        Some(bytes) => unsafe { realloc(p, bytes) },
        None => or_errno(Err(Error::NoMemory)),
    }
}

/// `posix_memalign(3)`: `EINVAL` unless `align` is a power of two and a
/// multiple of `sizeof(void *)`; `ENOMEM`; `errno` untouched.
///
/// # Safety
/// `out` is valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_multiple_of(size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    match c_api::aligned_alloc(a(), align, size) {
        Ok(p) => {
            // SAFETY: the caller's contract.
            unsafe { out.write(p.cast()) };
            0
        }
        Err(e) => errno_of(e),
    }
}

/// `aligned_alloc(3)`: null with `EINVAL` unless `align` is a power of two
/// (glibc's rule: any size).
#[unsafe(no_mangle)]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    or_errno(c_api::aligned_alloc(a(), align, size))
}

/// `memalign(3)`, as glibc: an alignment that is not a power of two is
/// rounded up to one; `EINVAL` above the largest.
#[unsafe(no_mangle)]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let align = align.max(MALLOC_ALIGN);
    or_errno(
        align
            .checked_next_power_of_two()
            .filter(|&a| a <= isize::MAX as usize / 2 + 1)
            .ok_or(Error::Invalid)
            .and_then(|align| c_api::aligned(a(), align, size)),
    )
}

/// `valloc(3)`: page-aligned.
#[unsafe(no_mangle)]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    or_errno(c_api::aligned(a(), PAGE_SIZE, size))
}

/// `pvalloc(3)`: page-aligned, the size rounded up to whole pages.
#[unsafe(no_mangle)]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let Some(rounded) = size.max(1).checked_next_multiple_of(PAGE_SIZE) else {
        return or_errno(Err(Error::NoMemory));
    };
    or_errno(c_api::aligned(a(), PAGE_SIZE, rounded))
}

/// `malloc_usable_size(3)`: the block's class size or run bytes, at least
/// what was asked for; 0 for null.
///
/// # Safety
/// `p` is null or a live block from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    c_api::usable_size(a(), p.cast())
}

/// `acealloc_stats` (header): a statistics snapshot.
///
/// # Safety
/// `out` is valid for writing a `struct acealloc_stats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acealloc_stats(out: *mut CStats) {
    let stats = CStats::from(&ALLOC.stats());
    // SAFETY: the caller's contract.
    unsafe { out.write(stats) };
}

/// `acealloc_trim` (header): returns cached and empty memory to the system.
#[unsafe(no_mangle)]
pub extern "C" fn acealloc_trim() {
    a().trim();
}

/* ---------------------------------------------------------------------- */
/* Start-up: fork handlers, ACE                                            */
/* ---------------------------------------------------------------------- */

/// Takes every allocator lock before `fork`, so the child does not start
/// with a lock held by a thread it does not have.
extern "C" fn before_fork() {
    a().lock_all();
}

/// Releases them after `fork`, in the parent and in the child.
extern "C" fn after_fork() {
    // SAFETY: `before_fork` took them, in this thread (or, in the child,
    // in the parent thread this one continues).
    unsafe { a().unlock_all() };
}

/// Runs once when the library is loaded, after the C library's own start-up
/// (both `pthread_atfork` and thread creation allocate: not from inside
/// the first `malloc`).
extern "C" fn on_load() {
    // SAFETY: valid handlers that live as long as the process.
    unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
    // The background thread: the allocator's housekeeping, and ACE with
    // `ACEALLOC_ACE=1` (and its `ACEALLOC_ACE_*` settings).
    ALLOC.start_background();
}

#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;
