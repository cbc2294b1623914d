//! Memory handed to the region-based allocators, as a kernel hands its heap over.

use std::ptr::NonNull;

/// An anonymous private mapping reserved lazily (`MAP_NORESERVE`): its pages become resident
/// only when an allocator writes them, so the peak RSS of a run over a region counts what the
/// allocator touched, as for the allocators that map memory themselves.
pub struct Region {
    start: NonNull<u8>,
    len: usize,
}

impl Region {
    /// Maps `len` bytes (a multiple of the page size); panics if the OS refuses.
    pub fn new(len: usize) -> Self {
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing aliases
        // nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED, "cannot map a {len}-byte region");
        Region {
            start: NonNull::new(p.cast()).expect("mmap does not return null on success"),
            len,
        }
    }

    pub fn start(&self) -> *mut u8 {
        self.start.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` and nothing refers to it any more (every
        // allocator over it is dropped before its region: see `allocators.rs`).
        unsafe { libc::munmap(self.start.as_ptr().cast(), self.len) };
    }
}
