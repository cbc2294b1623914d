//! TLB shootdown: invalidating a range of pages on every running CPU after its mappings changed.
//!
//! Implements Intel SDM Vol. 3A §4.10.5, "Propagation of Paging-Structure Changes to Multiple
//! Processors": the CPU that changed the page tables invalidates its own TLB entries, sends an
//! IPI to the other CPUs, whose handlers invalidate theirs, and waits until every one of them has
//! acknowledged before anything may reuse what the old entries pointed at (a freed frame). Within
//! a CPU, `invlpg` drops one page's entries and a CR3 write drops all non-global ones (§4.10.4.1).
//!
//! Callers run with interrupts masked, and spin on locks with interrupts masked, while they wait
//! for each other: acealloc decommits (and so shoots down) inside its per-CPU section with its
//! page lock held, and another CPU may at that moment spin on that very lock, interrupts masked.
//! A maskable IPI would wait in that CPU's IRR for ever and the initiator for its acknowledgement:
//! a deadlock no polling loop inside this module can break, since the spinning CPU is in the
//! allocator's lock, not here. So the IPI is sent with delivery mode NMI (SDM Vol. 3A,
//! "Interrupt Command Register (ICR)"; "Nonmaskable Interrupt (NMI)"): it is taken whatever the
//! target's IF, including by a CPU halted in `hlt`, and needs no EOI. The NMI vector (2) is
//! reserved to shootdowns in these kernels; an NMI that finds no request does nothing.
//!
//! One shootdown is in flight at a time (a lock taken with interrupts masked): concurrent callers
//! wait for it, and while they wait they still answer its NMI, so every call completes. The
//! request is a range shared by all targets plus one flag per CPU; the handler only touches
//! atomics and the TLB, so it is safe wherever the NMI lands, the initiator's own code included.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use x86_64::VirtAddr;
use x86_64::instructions::{interrupts, tlb};

use crate::apic;
use crate::idt::interrupt_entry;
use crate::percpu::{MAX_CPUS, cpu_count, cpu_index};

/// Above this many pages a CPU reloads CR3 instead of issuing one `invlpg` per page: past a few
/// dozen pages the single full flush is cheaper than the loop, and the heap's pages are not
/// global, so the reload drops them too.
const INVLPG_MAX_PAGES: usize = 32;
const PAGE_SIZE: u64 = 4096;

/// Held by the CPU whose shootdown is in flight.
static IN_FLIGHT: AtomicBool = AtomicBool::new(false);
/// The range of the shootdown in flight; written before any flag in [`REQUESTED`] is raised.
static RANGE_START: AtomicU64 = AtomicU64::new(0);
static RANGE_PAGES: AtomicUsize = AtomicUsize::new(0);
/// Raised by the initiator for each target CPU, lowered by that CPU once it has invalidated.
static REQUESTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Targets of the shootdown in flight that have not acknowledged yet.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Shootdowns each CPU initiated towards other CPUs, and requests each CPU answered.
static SENT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static ANSWERED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// What one CPU has done in shootdowns so far, for tests to check that they happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Shootdowns this CPU initiated that reached other CPUs.
    pub sent: u64,
    /// Requests from other CPUs this CPU answered.
    pub answered: u64,
}

/// The counts of CPU `cpu` (below [`MAX_CPUS`]).
pub fn counts(cpu: usize) -> Counts {
    Counts {
        sent: SENT[cpu].load(Ordering::Relaxed),
        answered: ANSWERED[cpu].load(Ordering::Relaxed),
    }
}

/// Invalidates the TLB entries of `pages` pages from `start` on every running CPU and returns
/// once all of them have done so.
///
/// Call it after changing or removing the mappings and before reusing what they pointed at. Any
/// context works: interrupts masked or not, interrupt handlers, several CPUs at once (calls are
/// served one at a time); it masks interrupts itself while it runs.
pub fn shootdown(start: VirtAddr, pages: usize) {
    interrupts::without_interrupts(|| {
        invalidate(start.as_u64(), pages);
        let others = cpu_count() - 1;
        if others > 0 {
            send_and_wait(start.as_u64(), pages, others);
        }
    });
}

/// Posts the request to the `others` CPUs, interrupts them and waits for their acknowledgements.
/// Interrupts are masked.
fn send_and_wait(start: u64, pages: usize, others: usize) {
    let me = cpu_index();
    // A CPU waiting here for another shootdown still answers it: its NMI gets through.
    while IN_FLIGHT
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    RANGE_START.store(start, Ordering::Relaxed);
    RANGE_PAGES.store(pages, Ordering::Relaxed);
    PENDING.store(others, Ordering::Relaxed);
    for (cpu, flag) in REQUESTED.iter().enumerate().take(others + 1) {
        if cpu != me {
            // Release: the range (and the page-table changes before this call) are visible to
            // the CPU that sees its flag raised.
            flag.store(true, Ordering::Release);
        }
    }
    apic::send_nmi_to_others();
    while PENDING.load(Ordering::Acquire) != 0 {
        core::hint::spin_loop();
    }
    SENT[me].fetch_add(1, Ordering::Relaxed);
    IN_FLIGHT.store(false, Ordering::Release);
}

/// Drops this CPU's TLB entries for the range.
fn invalidate(start: u64, pages: usize) {
    if pages > INVLPG_MAX_PAGES {
        tlb::flush_all();
    } else {
        for page in 0..pages as u64 {
            tlb::flush(VirtAddr::new(start + page * PAGE_SIZE));
        }
    }
}

interrupt_entry!(
    /// IDT entry of the NMI vector, which carries shootdown requests.
    nmi_entry => on_nmi
);

/// Answers the request addressed to this CPU, if there is one. NMIs need no EOI.
extern "C" fn on_nmi() {
    let me = cpu_index();
    // Acquire: pairs with the initiator's Release, so the range read below is the request's.
    // The swap lets exactly one NMI answer a request even if two arrive for it.
    if REQUESTED[me].swap(false, Ordering::Acquire) {
        invalidate(
            RANGE_START.load(Ordering::Relaxed),
            RANGE_PAGES.load(Ordering::Relaxed),
        );
        ANSWERED[me].fetch_add(1, Ordering::Relaxed);
        // Release: the invalidation is done before the initiator, seeing the count drop, lets
        // the frames be reused.
        PENDING.fetch_sub(1, Ordering::Release);
    }
}
