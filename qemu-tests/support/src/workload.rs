//! Allocation workloads, generic over `GlobalAlloc` so the same code drives acealloc and
//! `linked_list_allocator`:
//!
//! - [`Mixed`], `mixed-ws400`: 400 slots; each step frees a random slot if it is taken, else
//!   fills it with a block of 16–1040 bytes (the hosted demo's workload).
//! - [`Mailboxes`], cross-CPU traffic: every CPU allocates blocks of 16 B–64 KiB (log-uniform),
//!   keeps some and sends most to another CPU's mailbox; each CPU frees what it receives, so
//!   blocks are freed on CPUs other than the one that allocated them.
//!
//! Every block carries a pattern that is checked before it is freed.

use core::alloc::{GlobalAlloc, Layout};

use spin::mutex::SpinMutex;

use crate::check;
use crate::pattern::{Coverage, Patterned};
use crate::rng::Rng;

/* ---------------------------------------------------------------------- */
/* mixed-ws400                                                              */
/* ---------------------------------------------------------------------- */

/// Slots of [`Mixed`].
pub const MIXED_SLOTS: usize = 400;
/// Smallest and largest block of [`Mixed`].
pub const MIXED_SIZES: (usize, usize) = (16, 1040);

/// One CPU's `mixed-ws400` state (about 16 KiB: keep it on a 64 KiB stack, not in a loop).
pub struct Mixed<'h, A> {
    heap: &'h A,
    slots: [Option<Patterned<'h, A>>; MIXED_SLOTS],
    rng: Rng,
    coverage: Coverage,
    operations: u64,
}

impl<'h, A: GlobalAlloc> Mixed<'h, A> {
    /// Empty slots over `heap`; `coverage` says how much of each block is patterned.
    pub fn new(heap: &'h A, seed: u64, coverage: Coverage) -> Self {
        Mixed {
            heap,
            slots: [const { None }; MIXED_SLOTS],
            rng: Rng::new(seed),
            coverage,
            operations: 0,
        }
    }

    /// Takes `steps` steps (each one allocation or one free). False, with a failed check, if the
    /// heap returned null or a pattern was broken.
    pub fn run(&mut self, steps: u64) -> bool {
        for _ in 0..steps {
            let r = self.rng.next_u64();
            let slot = &mut self.slots[(r % MIXED_SLOTS as u64) as usize];
            match slot.take() {
                Some(block) => {
                    if !block.free(self.coverage) {
                        return false;
                    }
                }
                None => {
                    let (low, high) = MIXED_SIZES;
                    let size = low + (r >> 32) as usize % (high - low + 1);
                    let layout = Layout::from_size_align(size, 8).expect("valid layout");
                    *slot = Patterned::alloc(self.heap, layout, r, self.coverage);
                    if !check!(slot.is_some(), "out of memory allocating {size} bytes") {
                        return false;
                    }
                }
            }
            self.operations += 1;
        }
        true
    }

    /// Allocations and frees done so far.
    pub fn operations(&self) -> u64 {
        self.operations
    }

    /// Frees every block still held, checking each; false if a pattern was broken.
    pub fn release(&mut self) -> bool {
        let mut intact = true;
        for block in self.slots.iter_mut().filter_map(Option::take) {
            intact &= block.free(self.coverage);
        }
        intact
    }
}

/* ---------------------------------------------------------------------- */
/* Cross-CPU traffic                                                        */
/* ---------------------------------------------------------------------- */

/// Most CPUs the cross-CPU workload runs on.
pub const MAX_CPUS: usize = 8;
const MAILBOX_CAPACITY: usize = 32;
/// Blocks each CPU keeps for itself (freed on the CPU that allocated them).
const KEPT: usize = 16;
/// Largest block: 64 KiB (the large path starts above 32 KiB).
const MAX_CROSS_SIZE: usize = 64 * 1024;

/// A ring of blocks sent to one CPU.
struct Mailbox<'h, A> {
    blocks: [Option<Patterned<'h, A>>; MAILBOX_CAPACITY],
    head: usize,
    len: usize,
}

impl<'h, A> Mailbox<'h, A> {
    /// Adds a block; gives it back when the mailbox is full.
    fn push(&mut self, block: Patterned<'h, A>) -> Result<(), Patterned<'h, A>> {
        if self.len == MAILBOX_CAPACITY {
            return Err(block);
        }
        self.blocks[(self.head + self.len) % MAILBOX_CAPACITY] = Some(block);
        self.len += 1;
        Ok(())
    }

    fn pop(&mut self) -> Option<Patterned<'h, A>> {
        if self.len == 0 {
            return None;
        }
        let block = self.blocks[self.head].take();
        self.head = (self.head + 1) % MAILBOX_CAPACITY;
        self.len -= 1;
        block
    }
}

/// What one CPU did in [`Mailboxes::run`].
#[derive(Clone, Copy, Default)]
pub struct CrossCpuReport {
    /// Blocks allocated.
    pub allocated: u64,
    /// Blocks sent to another CPU.
    pub sent: u64,
    /// Blocks received from another CPU and freed here.
    pub received: u64,
}

/// One mailbox per CPU, shared by every CPU of the cross-CPU workload. Its locks do not mask
/// interrupts: interrupt handlers must not use it.
pub struct Mailboxes<'h, A> {
    boxes: [SpinMutex<Mailbox<'h, A>>; MAX_CPUS],
}

impl<'h, A: GlobalAlloc + Sync> Default for Mailboxes<'h, A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'h, A: GlobalAlloc + Sync> Mailboxes<'h, A> {
    /// Empty mailboxes.
    pub fn new() -> Self {
        Mailboxes {
            boxes: core::array::from_fn(|_| {
                SpinMutex::new(Mailbox {
                    blocks: [const { None }; MAILBOX_CAPACITY],
                    head: 0,
                    len: 0,
                })
            }),
        }
    }

    /// Runs `steps` steps as CPU `cpu` of `cpus`: each step allocates a block patterned as
    /// `coverage` says, keeps it (replacing and freeing an older one) or sends it to a random
    /// other CPU (freeing it here if that mailbox is full), then frees one block from this CPU's
    /// mailbox. Stops early, with a failed check, if the heap returns null or a pattern was
    /// broken.
    pub fn run(
        &self,
        heap: &'h A,
        cpu: usize,
        cpus: usize,
        steps: u64,
        coverage: Coverage,
    ) -> CrossCpuReport {
        assert!(cpus <= MAX_CPUS && cpu < cpus);
        let mut rng = Rng::new(0xC0FFEE + cpu as u64);
        let mut kept: [Option<Patterned<'h, A>>; KEPT] = [const { None }; KEPT];
        let mut report = CrossCpuReport::default();
        for _ in 0..steps {
            let r = rng.next_u64();
            // Log-uniform: a power of two from 16 B to 32 KiB, then up to twice that.
            let base = 16usize << (r % 12);
            let size = (base + (r >> 16) as usize % base).min(MAX_CROSS_SIZE);
            let layout = Layout::from_size_align(size, 8).expect("valid layout");
            let Some(block) = Patterned::alloc(heap, layout, r, coverage) else {
                check!(false, "out of memory allocating {size} bytes");
                break;
            };
            report.allocated += 1;
            let destination = (cpu + 1 + (r >> 40) as usize % (cpus - 1).max(1)) % cpus;
            let unsent = if r & 3 == 0 || destination == cpu {
                kept[(r >> 8) as usize % KEPT].replace(block)
            } else {
                match self.boxes[destination].lock().push(block) {
                    Ok(()) => {
                        report.sent += 1;
                        None
                    }
                    Err(full) => Some(full),
                }
            };
            if let Some(old) = unsent
                && !old.free(coverage)
            {
                break;
            }
            let received = self.boxes[cpu].lock().pop();
            if let Some(block) = received {
                report.received += 1;
                if !block.free(coverage) {
                    break;
                }
            }
        }
        for block in kept.iter_mut().filter_map(Option::take) {
            block.free(coverage);
        }
        report
    }

    /// Frees every block left in a mailbox (once every CPU has stopped), checking each as
    /// `coverage` says (as the run that sent them); returns how many there were.
    pub fn drain(&self, coverage: Coverage) -> u64 {
        let mut drained = 0;
        for mailbox in &self.boxes {
            while let Some(block) = mailbox.lock().pop() {
                block.free(coverage);
                drained += 1;
            }
        }
        drained
    }
}
