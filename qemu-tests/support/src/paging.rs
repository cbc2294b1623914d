//! The page tables the kernel runs on, as the `x86_64` crate's `OffsetPageTable`.
//!
//! The runtime identity-maps the first 1 GiB, where every page table lives (its own, and the
//! ones [`PhysicalFrames`](crate::frames::PhysicalFrames) hands out), so the physical-memory
//! offset is 0. Every CPU runs on the same level-4 table, so a mapping added on one CPU is seen
//! by all.

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::VirtAddr;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{OffsetPageTable, PageTable};

static TAKEN: AtomicBool = AtomicBool::new(false);

/// The active page tables, for the one owner that edits them (the frame-provider heap).
/// Panics on a second call: two owners would be two `&mut` to the same level-4 table.
pub fn kernel_page_table() -> OffsetPageTable<'static> {
    assert!(
        !TAKEN.swap(true, Ordering::AcqRel),
        "the kernel's page tables have one owner"
    );
    let (level_4, _) = Cr3::read();
    let address = level_4.start_address().as_u64();
    assert!(
        address < 1 << 30,
        "the level-4 table lies in the identity map"
    );
    // SAFETY: CR3 holds the physical address of the active level-4 table, which lies in the
    // identity map (checked), so its physical address is a valid virtual address of it. The
    // table lives as long as the kernel, and the check above makes this the only reference
    // handed out; the runtime does not touch the tables after start-up.
    let table = unsafe { &mut *(address as *mut PageTable) };
    // SAFETY: with the identity map, physical address p is at virtual address p (offset 0) for
    // all the memory page tables live in (below 1 GiB).
    unsafe { OffsetPageTable::new(table, VirtAddr::zero()) }
}
