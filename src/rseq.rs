//! Restartable sequences (Linux rseq): the per-CPU fast path of std
//! programs without a lock and without an atomic read-modify-write.
//!
//! glibc 2.35+ registers a `struct rseq` for every thread; we use that area
//! (`__rseq_offset` from the thread pointer), never a second registration.
//! Each operation on the current CPU's cache is one critical section in
//! `asm!`: it arms the area's `rseq_cs` with a descriptor (in the
//! `__rseq_cs` section), reads the CPU index, works on that CPU's arrays
//! and ends with one store, the commit. If the thread is preempted,
//! migrated or signalled inside it, the kernel resumes it at the abort
//! handler (preceded by the signature glibc registered, [`RSEQ_SIG`]),
//! which starts over: a section either commits on the CPU it read, or
//! leaves no trace but scratch writes above `top`.
//!
//! Another thread working on some CPU's cache (flushing an idle one,
//! stealing, reclaiming) first stops it: it sets every class's `begin` and
//! `limit` so that pops and pushes fail, then runs
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ)` on that CPU, which
//! aborts whatever section runs there. From then on no section of that CPU
//! can commit until the cache restarts (TCMalloc stops a CPU the same way).
//!
//! Offsets the assembly relies on are checked at compile time in
//! `cpu_cache.rs` ([`crate::cpu_cache::ClassCache`]'s layout).

use core::arch::asm;

use crate::cpu_cache::{ClassCache, PerCpuCache, Slot};
use crate::slab::Block;

unsafe extern "C" {
    /// Offset of glibc's `struct rseq` from the thread pointer (glibc 2.35+).
    static __rseq_offset: isize;
    /// Size of the registered `struct rseq`, 0 when rseq is not in use.
    static __rseq_size: u32;
}

/// Bytes from one CPU's cache to the next: the sections index the caches
/// by it.
const CPU_STRIDE: usize = size_of::<PerCpuCache>();

/// The signature the kernel checks before an abort handler: glibc's for
/// x86 (it registered every thread's area with it).
const RSEQ_SIG: u32 = 0x5305_3053;

/// `membarrier` commands (linux/membarrier.h).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ: i32 = 1 << 7;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ: i32 = 1 << 8;
const MEMBARRIER_CMD_FLAG_CPU: u32 = 1 << 0;

/// One critical section on the current CPU's cache of the class whose
/// cache on CPU 0 is `class0` (module doc), around the instructions that
/// differ: it arms `rseq_cs` with its descriptor (label `3`), and leaves
/// in `{c}` the current CPU's class cache for `commit`, the instructions
/// from the start (label `2`) through the commit store. Then `after` runs
/// (past label `4`, outside the section); a jump to label `5` leaves with
/// `fail` instead. The abort handler (label `6`, after [`RSEQ_SIG`])
/// starts over from arming. `{t}` and `{c}` are scratch registers.
macro_rules! section {
    (
        class0 = $class0:expr,
        [$($commit:literal),* $(,)?],
        $(after: [$($after:literal),* $(,)?],)?
        fail: $fail:literal,
        $($operands:tt)*
    ) => {
        asm!(
            "9:",
            "lea {t}, [rip + 3f]",
            "mov qword ptr fs:[{off} + 8], {t}",
            "2:",
            "mov {c:e}, dword ptr fs:[{off}]",
            "imul {c}, {c}, {stride}",
            "add {c}, {cls}",
            $($commit,)*
            "4:",
            $($($after,)*)?
            "jmp 7f",
            "5:",
            $fail,
            "jmp 7f",
            ".byte 0x0f, 0xb9, 0x3d",
            ".long {sig}",
            "6:",
            "jmp 9b",
            "7:",
            ".pushsection __rseq_cs, \"aw\"",
            ".balign 32",
            "3:",
            ".long 0, 0",
            ".quad 2b, 4b - 2b, 6b",
            ".popsection",
            off = in(reg) __rseq_offset,
            cls = in(reg) $class0,
            stride = const CPU_STRIDE,
            sig = const RSEQ_SIG,
            t = out(reg) _,
            c = out(reg) _,
            $($operands)*
            options(nostack),
        )
    };
}

/// Sets up the restartable path for a process with caches for `cpus` CPUs:
/// true when glibc registered this thread's area, the kernel offers
/// membarrier's rseq fence, every possible CPU has a cache, and
/// `ACEALLOC_RSEQ` is not `0`. Valgrind, old kernels and glibc without the
/// registration fail one of these and get the try-lock path.
pub fn init(cpus: usize, wanted: bool) -> bool {
    wanted && registered() && possible_cpus() <= cpus && register_fence()
}

/// Whether glibc registered this thread's area (its `cpu_id` is a CPU).
fn registered() -> bool {
    // SAFETY: glibc defines both statics and never changes them after start-up.
    if unsafe { __rseq_size } < 20 {
        return false;
    }
    let cpu_id: i32;
    // SAFETY: the registered area lies at this offset from the thread
    // pointer; `cpu_id` (second u32) is negative while unregistered.
    unsafe {
        asm!(
            "mov {c:e}, dword ptr fs:[{off} + 4]",
            off = in(reg) __rseq_offset,
            c = out(reg) cpu_id,
            options(nostack, readonly, preserves_flags)
        )
    };
    cpu_id >= 0
}

fn possible_cpus() -> usize {
    // SAFETY: `sysconf` has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.max(1) as usize
}

fn register_fence() -> bool {
    // SAFETY: a plain system call; registering twice is harmless.
    let r = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
            0u32,
            0i32,
        )
    };
    r == 0
}

/// Aborts any restartable section running on `cpu` and orders memory with
/// it: after this, a section there sees every store made before.
pub fn fence(cpu: usize) {
    // SAFETY: a plain system call; the process registered for it (`init`).
    let r = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
            MEMBARRIER_CMD_FLAG_CPU,
            cpu as i32,
        )
    };
    // A forked child's process may not carry the parent's registration:
    // register and fence again. An offline CPU (EINVAL) runs nothing.
    if r != 0 && register_fence() {
        // SAFETY: as above.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
                MEMBARRIER_CMD_FLAG_CPU,
                cpu as i32,
            )
        };
    }
}

/// Pops a block from the current CPU's cache of the class whose
/// [`ClassCache`] on CPU 0 is `class0`; null when empty (or stopped).
///
/// # Safety
/// `class0` is a class of the first of `CPU_STRIDE`-spaced caches, one per
/// possible CPU, set up by `init` (so their slots are valid).
#[inline(always)]
pub unsafe fn pop(class0: *const ClassCache) -> *mut Block {
    let block: *mut Block;
    // SAFETY: the critical section reads and writes only the current CPU's
    // class cache and its slots (the caller's contract), and commits with
    // its last store; the abort handler restarts it from arming.
    unsafe {
        section!(
            class0 = class0,
            [
                "mov {t}, qword ptr [{c}]",
                "cmp {t}, qword ptr [{c} + 8]",
                "jbe 5f",
                "mov {b}, qword ptr [{t} - 8]",
                "sub {t}, 8",
                // Counted inside: an abort after the add counts an allocation
                // twice, never less (allocations never fall below frees).
                "add qword ptr [{c} + 24], 1",
                "mov qword ptr [{c}], {t}",
            ],
            fail: "xor {b:e}, {b:e}",
            b = out(reg) block,
        )
    };
    block
}

/// Pushes `block` onto the current CPU's cache of the class at `class0`;
/// false (nothing done) when at capacity (or stopped).
///
/// # Safety
/// As for [`pop`]; `block` is a free block of the class nobody uses.
#[inline(always)]
pub unsafe fn push(class0: *const ClassCache, block: *mut Block) -> bool {
    let done: u32;
    // SAFETY: as in `pop`; the slot written lies below `limit`.
    unsafe {
        section!(
            class0 = class0,
            [
                "mov {t}, qword ptr [{c}]",
                "cmp {t}, qword ptr [{c} + 16]",
                "jae 5f",
                "mov qword ptr [{t}], {blk}",
                "add {t}, 8",
                "mov qword ptr [{c}], {t}",
            ],
            after: [
                // Counted after the commit: inside, an abort after the add
                // would count the free twice (and frees must never exceed
                // allocations); out here it can at worst be lost to a
                // migration.
                "add qword ptr [{c} + 32], 1",
                "mov {ok:e}, 1",
            ],
            fail: "xor {ok:e}, {ok:e}",
            blk = in(reg) block,
            ok = out(reg) done,
        )
    };
    done != 0
}

/// Moves up to `out.len()` of the newest blocks of the current CPU's cache
/// of the class at `class0` into `out`; returns how many (0 when stopped).
///
/// # Safety
/// As for [`pop`].
pub unsafe fn take(class0: *const ClassCache, out: &mut [Slot]) -> usize {
    let n: usize;
    // SAFETY: as in `pop`; the copy writes `out` only (scratch on abort),
    // and reads filled slots `[top - n, top)`.
    unsafe {
        section!(
            class0 = class0,
            [
                "mov {t}, qword ptr [{c}]",
                "cmp {t}, qword ptr [{c} + 8]",
                "jbe 5f",
                "mov {k}, {t}",
                "sub {k}, qword ptr [{c} + 8]",
                "shr {k}, 3",
                "cmp {k}, {len}",
                "cmova {k}, {len}",
                "mov {j}, {k}",
                "shl {j}, 3",
                "sub {t}, {j}",
                "xor {j:e}, {j:e}",
                "12:",
                "cmp {j}, {k}",
                "jae 13f",
                "mov {x}, qword ptr [{t} + {j} * 8]",
                "mov qword ptr [{dst} + {j} * 8], {x}",
                "inc {j}",
                "jmp 12b",
                "13:",
                "mov qword ptr [{c}], {t}",
            ],
            fail: "xor {k:e}, {k:e}",
            dst = in(reg) out.as_mut_ptr(),
            len = in(reg) out.len(),
            j = out(reg) _,
            x = out(reg) _,
            k = out(reg) n,
        )
    };
    n
}

/// Caches as many of `blocks` as fit in the current CPU's cache of the
/// class at `class0`; returns how many (the first ones; 0 when stopped).
///
/// # Safety
/// As for [`pop`]; the blocks are free blocks of the class nobody uses.
pub unsafe fn put(class0: *const ClassCache, blocks: &[Slot]) -> usize {
    let n: usize;
    // SAFETY: as in `pop`; the copy writes free slots `[top, limit)` only.
    unsafe {
        section!(
            class0 = class0,
            [
                "mov {t}, qword ptr [{c}]",
                "mov {k}, qword ptr [{c} + 16]",
                "cmp {t}, {k}",
                "jae 5f",
                "sub {k}, {t}",
                "shr {k}, 3",
                "cmp {k}, {len}",
                "cmova {k}, {len}",
                "xor {j:e}, {j:e}",
                "12:",
                "cmp {j}, {k}",
                "jae 13f",
                "mov {x}, qword ptr [{src} + {j} * 8]",
                "mov qword ptr [{t} + {j} * 8], {x}",
                "inc {j}",
                "jmp 12b",
                "13:",
                "lea {t}, [{t} + {k} * 8]",
                "mov qword ptr [{c}], {t}",
            ],
            fail: "xor {k:e}, {k:e}",
            src = in(reg) blocks.as_ptr(),
            len = in(reg) blocks.len(),
            j = out(reg) _,
            x = out(reg) _,
            k = out(reg) n,
        )
    };
    n
}
