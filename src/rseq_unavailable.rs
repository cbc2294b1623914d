//! Where restartable sequences cannot run (not x86_64 Linux with glibc, no
//! `std`, or Miri, which cannot run inline assembly): the same interface,
//! never enabled, so the try-lock path serves.

use crate::cpu_cache::{ClassCache, Slot};
use crate::slab::Block;

/// Never usable here.
pub fn init(_cpus: usize, _wanted: bool) -> bool {
    false
}

pub fn fence(_cpu: usize) {}

/// No registered area here: the caller asks the OS.
#[inline(always)]
pub fn cpu_id() -> Option<usize> {
    None
}

/// # Safety
/// Never called: `init` returned false.
pub unsafe fn pop(_class0: *const ClassCache) -> *mut Block {
    core::ptr::null_mut()
}

/// # Safety
/// Never called: `init` returned false.
pub unsafe fn push(_class0: *const ClassCache, _block: *mut Block) -> bool {
    false
}

/// # Safety
/// Never called: `init` returned false.
pub unsafe fn take(_class0: *const ClassCache, _out: &mut [Slot]) -> usize {
    0
}

/// # Safety
/// Never called: `init` returned false.
pub unsafe fn put(_class0: *const ClassCache, _blocks: &[Slot]) -> usize {
    0
}
