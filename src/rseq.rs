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
/// differ: it arms `rseq_cs` with its descriptor (label `3`), puts the
/// current CPU's class cache in `{c}` (from `cpu_id`, which is negative
/// on a thread whose area is not registered: glibc's registration failed
/// there, under a seccomp filter set up after start-up say, and nothing
/// would abort its sections, so it fails at once), runs `bound` (which loads `begin`
/// or `limit` into a register), and only then loads `top` into `{t}`, and
/// runs `commit`, the instructions through the commit store. Then `after`
/// runs (past label `4`, outside the section); a jump to label `5` leaves
/// with `fail` instead. The abort handler (label `6`, after [`RSEQ_SIG`])
/// starts over from arming. `{t}` and `{c}` are scratch registers.
///
/// The bound before `top`: a thread that stopped this cache writes `top`
/// and only then restarts it (Release stores, `ClassCache::restart`); a
/// section that sees the restarted bound sees that `top` too (x86 keeps
/// loads in order), and one that saw the old bound began before the fence
/// and is aborted by it.
macro_rules! section {
    (
        class0 = $class0:expr,
        bound = $bound:literal,
        [$($commit:expr),* $(,)?],
        $(after: [$($after:literal),* $(,)?],)?
        fail: $fail:literal,
        $($operands:tt)*
    ) => {
        asm!(
            "9:",
            "lea {t}, [rip + 3f]",
            "mov qword ptr fs:[{off} + 8], {t}",
            "2:",
            "mov {c:e}, dword ptr fs:[{off} + 4]",
            "test {c:e}, {c:e}",
            "js 5f",
            "imul {c}, {c}, {stride}",
            "add {c}, {cls}",
            $bound,
            race_window!(),
            "mov {t}, qword ptr [{c}]",
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

/// Nothing between a section's two loads of its cache (`bound`, then
/// `top`) in the library.
#[cfg(not(test))]
macro_rules! race_window {
    () => {
        ""
    };
}

/// In unit tests, a delay between a section's two loads of its cache, as
/// long as [`tests::RACE_WINDOW`] says (0: none): the moment in which a
/// thread stalled without being preempted (an interrupt, a hypervisor)
/// meets a stopper, made wide enough to hit. It counts down in `{t}`,
/// which the next load overwrites.
#[cfg(test)]
macro_rules! race_window {
    () => {
        "mov {t}, qword ptr [rip + acealloc_rseq_race_window]\n\
         21:\n\
         sub {t}, 1\n\
         jae 21b"
    };
}

/// The copy loop of `take` and `put`: `{k}` slots from `[$from]` on to
/// `[$to]` on, with `{j}` and `{x}` as scratch.
macro_rules! copy_slots {
    ($from:literal, $to:literal) => {
        concat!(
            "xor {j:e}, {j:e}\n",
            "12:\n",
            "cmp {j}, {k}\n",
            "jae 13f\n",
            "mov {x}, qword ptr [",
            $from,
            " + {j} * 8]\n",
            "mov qword ptr [",
            $to,
            " + {j} * 8], {x}\n",
            "inc {j}\n",
            "jmp 12b\n",
            "13:",
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

/// The CPU this thread runs on, from the `cpu_id` that the kernel keeps in
/// the thread's registered area; `None` when glibc registered none (an
/// old glibc, `glibc.pthread.rseq=0`, a kernel without rseq), whose
/// `cpu_id` is negative or whose area is absent.
#[inline(always)]
pub fn cpu_id() -> Option<usize> {
    // SAFETY: glibc defines both statics and never changes them after start-up.
    if unsafe { __rseq_size } < 20 {
        return None;
    }
    let cpu_id: i32;
    // SAFETY: the registered area lies at this offset from the thread
    // pointer; `cpu_id` is its second u32, which the kernel rewrites on
    // migration (a fresh load every time: the asm is not pure).
    unsafe {
        asm!(
            "mov {c:e}, dword ptr fs:[{off} + 4]",
            off = in(reg) __rseq_offset,
            c = out(reg) cpu_id,
            options(nostack, readonly, preserves_flags)
        )
    };
    usize::try_from(cpu_id).ok()
}

/// Whether glibc registered this thread's area.
fn registered() -> bool {
    cpu_id().is_some()
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
            bound = "mov {b}, qword ptr [{c} + 8]",
            [
                "cmp {t}, {b}",
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
    let done: usize;
    // SAFETY: as in `pop`; the slot written lies below `limit`.
    unsafe {
        section!(
            class0 = class0,
            bound = "mov {ok}, qword ptr [{c} + 16]",
            [
                "cmp {t}, {ok}",
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
            bound = "mov {j}, qword ptr [{c} + 8]",
            [
                "mov {k}, {t}",
                "sub {k}, {j}",
                "jbe 5f",
                "shr {k}, 3",
                "cmp {k}, {len}",
                "cmova {k}, {len}",
                "mov {j}, {k}",
                "shl {j}, 3",
                "sub {t}, {j}",
                copy_slots!("{t}", "{dst}"),
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
            bound = "mov {k}, qword ptr [{c} + 16]",
            [
                "cmp {t}, {k}",
                "jae 5f",
                "sub {k}, {t}",
                "shr {k}, 3",
                "cmp {k}, {len}",
                "cmova {k}, {len}",
                copy_slots!("{src}", "{t}"),
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

#[cfg(test)]
pub(crate) mod tests {
    use core::alloc::Layout;
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
    use std::collections::HashSet;
    use std::time::{Duration, Instant};
    use std::vec::Vec;

    use super::{RSEQ_SIG, asm};
    use crate::hosted::HostedPlatform;
    use crate::provider::{DecommitMode, MmapProvider};
    use crate::{Allocator, Config, PerCpuPath};

    /// One test at a time: each sets the race window and wants the CPUs.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Countdown of the race window between a section's two loads (see
    /// `race_window!`): 0 outside the test that widens it.
    #[unsafe(export_name = "acealloc_rseq_race_window")]
    pub static RACE_WINDOW: AtomicU64 = AtomicU64::new(0);

    fn pin(cpu: usize) {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
        unsafe {
            let mut set: libc::cpu_set_t = core::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            assert_eq!(
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
                0
            );
        }
    }

    /// Initialises `heap` unchecked, on restartable sections (failing the
    /// test where the machine offers none).
    fn init_restartable(heap: &Allocator<MmapProvider, HostedPlatform>) {
        let provider = MmapProvider::new(1 << 30, DecommitMode::Off).unwrap();
        let config = Config {
            restartable: true,
            checks: false,
            ..Config::DEFAULT
        };
        heap.init(provider, config).unwrap();
        assert_eq!(
            heap.per_cpu_path(),
            PerCpuPath::Restartable,
            "glibc 2.35+ and Linux 5.10+ offer rseq here"
        );
    }

    /// A thread on CPU 0 allocates and frees while another, on CPU 1,
    /// stops CPU 0's cache, empties it and restarts it (`trim`), again and
    /// again; every section dawdles between its two loads of the cache.
    /// A section that began after the stopper's fence and read `top`
    /// before the stopper emptied the cache must not commit once the
    /// cache restarts: it would hand out, or cache again, blocks the
    /// stopper gave away, and a block would be live twice.
    #[test]
    fn a_section_that_outlasts_a_stop_never_commits_a_stale_top() {
        if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            std::eprintln!("skipped: one CPU, no stopper beside the section");
            return;
        }
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let heap: Allocator<MmapProvider, HostedPlatform> = Allocator::new();
        init_restartable(&heap);
        // About 10 µs per section.
        RACE_WINDOW.store(20_000, Relaxed);
        let stop = AtomicBool::new(false);
        let stops = AtomicU64::new(0);
        let layout = Layout::from_size_align(64, 8).unwrap();
        let (heap, stop_ref, stops_ref) = (&heap, &stop, &stops);
        let steps = std::thread::scope(|s| {
            let worker = s.spawn(move || {
                pin(0);
                let mut live: HashSet<usize> = HashSet::new();
                let mut window: Vec<*mut u8> = Vec::new();
                let mut steps = 0u64;
                while !stop_ref.load(Relaxed) {
                    let block = heap.alloc(layout);
                    assert!(!block.is_null());
                    assert!(
                        live.insert(block as usize),
                        "block {block:p} handed out while live"
                    );
                    window.push(block);
                    if window.len() > 48 {
                        let old = window.swap_remove((steps as usize * 7) % 48);
                        live.remove(&(old as usize));
                        // SAFETY: allocated above with `layout`, freed once.
                        unsafe { heap.dealloc(old, layout) };
                    }
                    steps += 1;
                }
                for block in window {
                    // SAFETY: as above.
                    unsafe { heap.dealloc(block, layout) };
                }
                steps
            });
            s.spawn(move || {
                pin(1);
                while !stop_ref.load(Relaxed) {
                    heap.trim();
                    stops_ref.fetch_add(1, Relaxed);
                }
            });
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) && !worker.is_finished() {
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Relaxed);
            worker.join().unwrap()
        });
        RACE_WINDOW.store(0, Relaxed);
        std::eprintln!("{steps} steps, {} stops", stops.load(Relaxed));
        assert!(stops.load(Relaxed) > 100 && steps > 1000);
    }

    /// Unregisters glibc's rseq area of the calling thread, as a failed
    /// registration leaves it (its `cpu_id` negative, and no abort for its
    /// sections); false if the kernel refuses.
    fn unregister_this_thread() -> bool {
        const RSEQ_FLAG_UNREGISTER: i32 = 1;
        let tp: usize;
        // SAFETY: on x86_64 Linux, `fs:0` holds the thread pointer.
        unsafe { asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly)) };
        // SAFETY: glibc's area of this thread; unregistering takes the
        // length and signature it was registered with (glibc registers at
        // least 32 bytes).
        unsafe {
            let area = (tp as isize + super::__rseq_offset) as *mut u8;
            let size = super::__rseq_size.max(32);
            libc::syscall(libc::SYS_rseq, area, size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) == 0
        }
    }

    /// Two threads share CPU 0, one of them without a registered area:
    /// nothing aborts that one's sections when the other preempts it, so
    /// it must not use the caches at all (both allocate and free 64-byte
    /// blocks; a block live twice fails the test).
    #[test]
    fn a_thread_without_a_registered_area_bypasses_the_caches() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let heap: Allocator<MmapProvider, HostedPlatform> = Allocator::new();
        init_restartable(&heap);
        let layout = Layout::from_size_align(64, 8).unwrap();
        let stop = AtomicBool::new(false);
        let (heap, stop) = (&heap, &stop);
        // Blocks either thread holds: one handed out twice is caught at once.
        let live = std::sync::Mutex::new(HashSet::new());
        let live = &live;
        let churn = move |steps: &mut u64| {
            let mut window: Vec<*mut u8> = Vec::new();
            while !stop.load(Relaxed) {
                let block = heap.alloc(layout);
                assert!(!block.is_null());
                let fresh = live.lock().unwrap().insert(block as usize);
                assert!(fresh, "block {block:p} handed out while live");
                window.push(block);
                if window.len() > 32 {
                    let old = window.swap_remove((*steps as usize * 7) % 32);
                    live.lock().unwrap().remove(&(old as usize));
                    // SAFETY: allocated above with `layout`, freed once.
                    unsafe { heap.dealloc(old, layout) };
                }
                *steps += 1;
            }
            for block in window {
                live.lock().unwrap().remove(&(block as usize));
                // SAFETY: as above.
                unsafe { heap.dealloc(block, layout) };
            }
        };
        // Sections long enough to be preempted inside.
        RACE_WINDOW.store(20_000, Relaxed);
        let before = heap.stats().slow_paths;
        let (unregistered, registered) = std::thread::scope(|s| {
            let unregistered = s.spawn(move || {
                pin(0);
                assert!(unregister_this_thread(), "the kernel kept the area");
                assert_eq!(super::cpu_id(), None);
                let mut steps = 0;
                churn(&mut steps);
                steps
            });
            let registered = s.spawn(move || {
                pin(0);
                let mut steps = 0;
                churn(&mut steps);
                steps
            });
            std::thread::sleep(Duration::from_millis(1500));
            stop.store(true, Relaxed);
            (unregistered.join().unwrap(), registered.join().unwrap())
        });
        RACE_WINDOW.store(0, Relaxed);
        // Every allocation of the unregistered thread was a direct one.
        let direct = heap.stats().slow_paths - before;
        std::eprintln!("{unregistered} and {registered} steps, {direct} slow paths");
        assert!(unregistered > 1000 && registered > 1000);
        assert!(direct >= unregistered);
    }
}
