//! The hosted build's background thread: what jemalloc's
//! `background_thread` is to its decay. It runs the allocator's
//! housekeeping (`Allocator::maintain`: idle caches, due purges, the
//! release of a quiet spell) every 10 ms (`ACEALLOC_HOUSEKEEPING_MS`; 0:
//! none), which a std program has no timer interrupt for, and, with
//! `ACEALLOC_ACE=1`, ticks ACE. The hosted global allocator starts it
//! itself ([`HostedAlloc`](crate::hosted::HostedAlloc)
//! calls [`start`] at the end of its first allocation, after its own
//! initialisation); a C library calls it once its own set-up is done.
//!
//! Where a thread can be started from inside an allocator:
//! - not during initialisation: the thread is created after `init` has
//!   returned, outside the `Once`, holding none of the allocator's locks
//!   (a re-entrant allocation from `pthread_create`, as glibc makes for a
//!   thread's TLS under `LD_PRELOAD`, finds the allocator ready);
//! - not through `std::thread::spawn`: it allocates its handle through the
//!   allocator being entered and panics when the thread cannot be made
//!   (no panic may leave `alloc`). A raw `pthread_create` reports failure
//!   as a code: ACE then stays off and the allocation goes on;
//! - with every signal blocked in the new thread, so no handler of the
//!   program ever runs on it;
//! - across `fork`: a `pthread_atfork` handler waits (before the fork) for
//!   a tick in progress to finish, so the child inherits no lock the ticker
//!   held; in the child, where the thread does not exist, the next
//!   allocation starts a new one. A process that exits just stops it.
//!
//! The thread itself then reads the settings (`ticker::config_from_env`,
//! which allocates: it may, being an ordinary thread), switches the engine
//! on, attaches it to the allocator and ticks until ACE is switched off.

use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, Ordering::SeqCst};
use std::time::Duration;

use super::ticker::{self, HOSTED_CLOCK_HZ, Ticks};
use super::{Ace, Tunable};

/// The engine the background thread runs (one per process).
static ENGINE: Ace = Ace::new();

/// Where the background thread is: not started, being started, running,
/// or finished (ACE switched itself off: it is not started again).
const IDLE: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const FINISHED: u8 = 3;
static STATE: AtomicU8 = AtomicU8::new(IDLE);
/// Set around a fork: the thread skips its ticks meanwhile.
static PAUSED: AtomicBool = AtomicBool::new(false);
/// Set while the thread is inside a tick.
static TICKING: AtomicBool = AtomicBool::new(false);
/// The flag of the allocator's fast path that the child of a fork clears,
/// so that its next allocation comes back to [`start`].
static RESTART: AtomicPtr<AtomicBool> = AtomicPtr::new(core::ptr::null_mut());
static ATFORK: spin::Once<()> = spin::Once::new();

/// The engine the background thread runs, for tests and statistics.
pub fn engine() -> &'static Ace {
    &ENGINE
}

/// Starts the background thread for `target`, unless it runs already (or
/// ran and ACE switched itself off). `ready` is the flag whose clearing
/// sends the target's allocations back to its slow start-up path: the
/// child of a fork clears it so the thread starts again there. Returns
/// whether the thread is running. Call it holding none of the target's
/// locks; it allocates nothing itself (glibc's `pthread_create` may).
pub fn start<T: Tunable + Sync + 'static>(target: &'static T, ready: &'static AtomicBool) -> bool {
    if STATE
        .compare_exchange(IDLE, STARTING, SeqCst, SeqCst)
        .is_err()
    {
        return STATE.load(SeqCst) == RUNNING;
    }
    RESTART.store(core::ptr::from_ref(ready).cast_mut(), SeqCst);
    ATFORK.call_once(|| {
        // SAFETY: the handlers are `extern "C"` functions that only touch
        // atomics (and `RESTART`'s flag, a `&'static AtomicBool`).
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(in_child)) };
    });
    let running = spawn(target);
    STATE.store(if running { RUNNING } else { IDLE }, SeqCst);
    running
}

/// Creates the thread with every signal blocked; whether it was created.
fn spawn<T: Tunable + Sync + 'static>(target: &'static T) -> bool {
    // SAFETY: plain libc calls on locals: the signal sets are initialised
    // by `sigfillset`/`pthread_sigmask` before use, the thread id is
    // written by `pthread_create`, and `run::<T>` receives `target`, which
    // is `'static`, as its argument.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let mut thread: libc::pthread_t = core::mem::zeroed();
        let arg = core::ptr::from_ref(target).cast_mut().cast::<c_void>();
        let made = libc::pthread_create(&mut thread, core::ptr::null(), run::<T>, arg) == 0;
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        if made {
            libc::pthread_detach(thread);
        }
        made
    }
}

/// The allocator's housekeeping period (ms) the environment asks for:
/// `ACEALLOC_HOUSEKEEPING_MS`, 10 unless set; 0 turns it off.
pub fn housekeeping_ms() -> u64 {
    std::env::var("ACEALLOC_HOUSEKEEPING_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(HOUSEKEEPING_MS)
}

/// Runs `target`'s housekeeping every [`housekeeping_ms`] until `stop` is
/// set (not at all with a period of 0): what the background thread does
/// without ACE, for a program that made its allocator itself (a benchmark
/// running one as a std program gets it). Run it on a thread of its own.
pub fn housekeep<T: Tunable>(target: &T, stop: &core::sync::atomic::AtomicBool) {
    let period = housekeeping_ms();
    while period > 0 && !stop.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(period));
        target.maintain(target.now().saturating_add(HOUSEKEEPING_BUDGET_NS));
    }
}

/// The default housekeeping period: a tenth of the shortest quiet delay
/// ([`Profile::quiet_ms`](crate::Profile::quiet_ms)), so a quiet spell is
/// seen promptly, at the cost of a few counter reads a tick.
const HOUSEKEEPING_MS: u64 = 10;

/// Most time one housekeeping call takes (ns): the purges of a quiet
/// spell's start are spread over the next calls.
const HOUSEKEEPING_BUDGET_NS: u64 = 2_000_000;

/// The thread: switches ACE on if the environment asks for it (unless it
/// is on already, as in the child of a fork), then, every housekeeping
/// period, runs the allocator's housekeeping ([`Tunable::maintain`]), and
/// ticks ACE (whose tick runs it too) every fast interval, until neither
/// is left to do.
extern "C" fn run<T: Tunable + Sync + 'static>(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `spawn` passes a `&'static T`.
    let target: &'static T = unsafe { &*arg.cast::<T>() };
    let ace = ticker::config_from_env();
    if let Some(config) = ace
        && !ENGINE.is_enabled()
    {
        ENGINE.enable(target, config, HOSTED_CLOCK_HZ);
        target.attach(&ENGINE);
    }
    let fast_ms = ace.map_or(u64::MAX, |c| c.fast_ms.max(1));
    let housekeeping = housekeeping_ms();
    let period = if housekeeping == 0 {
        fast_ms
    } else {
        housekeeping.min(fast_ms)
    };
    let mut ticks = Ticks::open(ace.is_some() && ticker::log_from_env());
    let mut since_tick = 0;
    while ENGINE.is_enabled() || housekeeping > 0 {
        std::thread::sleep(Duration::from_millis(period));
        since_tick += period;
        TICKING.store(true, SeqCst);
        if !PAUSED.load(SeqCst) {
            if ENGINE.is_enabled() && since_tick >= fast_ms {
                since_tick = 0;
                ticks.tick(&ENGINE, target);
            } else {
                target.maintain(target.now().saturating_add(HOUSEKEEPING_BUDGET_NS));
            }
        }
        TICKING.store(false, SeqCst);
    }
    STATE.store(FINISHED, SeqCst);
    core::ptr::null_mut()
}

/// Before a fork: no tick starts, and the one in progress ends, so the
/// child inherits no lock the thread held.
extern "C" fn before_fork() {
    PAUSED.store(true, SeqCst);
    while TICKING.load(SeqCst) {
        core::hint::spin_loop();
    }
}

extern "C" fn after_fork() {
    PAUSED.store(false, SeqCst);
}

/// In the child: the thread was not copied; the next allocation starts it.
extern "C" fn in_child() {
    PAUSED.store(false, SeqCst);
    TICKING.store(false, SeqCst);
    if STATE.load(SeqCst) == RUNNING {
        STATE.store(IDLE, SeqCst);
        // SAFETY: `start` stored a `&'static AtomicBool` here.
        if let Some(ready) = unsafe { RESTART.load(SeqCst).as_ref() } {
            ready.store(false, SeqCst);
        }
    }
}
