//! The background thread as a program gets it: `HostedAlloc` as the
//! global allocator, no code. The test runs this binary again as a child
//! process, so that the variables are set before the first allocation:
//! with `ACEALLOC_ACE=1`, ACE must start by itself, keep ticking in the
//! child of a fork (without hanging it), and let the process exit; by
//! default, the housekeeping gives a program's memory back once it stops
//! allocating, and with `ACEALLOC_HOUSEKEEPING_MS=0` nothing does.

use std::process::Command;
use std::time::{Duration, Instant};

use acealloc::hosted::HostedAlloc;

#[global_allocator]
static A: HostedAlloc = HostedAlloc::new();

/// Set in the child process: what it is to check.
const ROLE: &str = "ACEALLOC_TEST_BACKGROUND_ROLE";
const TEST: &str = "ace_starts_by_itself_and_survives_fork_and_exit";

#[test]
fn ace_starts_by_itself_and_survives_fork_and_exit() {
    match std::env::var(ROLE).as_deref() {
        Ok("on") => return with_ace(),
        Ok("off") => return without_ace(),
        Ok("housekeeping") => return quiet_memory_goes_back(true),
        Ok("no-housekeeping") => return quiet_memory_goes_back(false),
        _ => {}
    }
    for (role, ace, housekeeping) in [
        ("on", "1", "10"),
        ("off", "0", "10"),
        ("housekeeping", "0", "10"),
        ("no-housekeeping", "0", "0"),
    ] {
        let exe = std::env::current_exe().expect("the test binary");
        let out = Command::new(exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env("ACEALLOC_ACE", ace)
            .env("ACEALLOC_HOUSEKEEPING_MS", housekeeping)
            .env("ACEALLOC_ACE_FAST_MS", "5")
            .output()
            .expect("the child runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "child ({role}) failed:\n{text}");
        assert!(text.contains(&format!("background {role}: ok")), "{text}");
    }
}

/// Allocates and frees for a while.
fn churn() -> usize {
    let blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 16 + i * 8]).collect();
    blocks.iter().map(Vec::len).sum()
}

/// Deciding ticks so far (0 without an engine).
fn ticks() -> u64 {
    A.ace_stats().map_or(0, |r| r.status.deciding_ticks)
}

/// Churns until ACE has decided more than `after` times, or `within` passes.
fn ticks_past(after: u64, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        std::hint::black_box(churn());
        if ticks() > after {
            return true;
        }
    }
    false
}

fn with_ace() {
    assert!(ticks_past(2, Duration::from_secs(10)), "ACE never ticked");
    let report = A.ace_stats().expect("an engine is attached");
    assert!(report.status.enabled, "{:?}", report.status);
    let at_fork = ticks();
    // SAFETY: the child only allocates, checks and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The thread was not copied: a new one must start and tick.
        let ok = ticks_past(at_fork, Duration::from_secs(10));
        // SAFETY: ends the child without running the parent's exit paths.
        unsafe { libc::_exit(if ok { 0 } else { 3 }) };
    }
    let end = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child without blocking.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            break;
        }
        if Instant::now() > end {
            // SAFETY: our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the child of the fork hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "ACE did not tick in the child of a fork (status {status:#x})"
    );
    let after = ticks();
    assert!(
        ticks_past(after, Duration::from_secs(10)),
        "ACE stopped ticking in the parent after the fork"
    );
    println!("background on: ok");
}

fn without_ace() {
    std::hint::black_box(churn());
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        A.ace_stats().is_none(),
        "ACE started without ACEALLOC_ACE=1"
    );
    println!("background off: ok");
}

/// Frees 16 MiB of large blocks, then allocates nothing for 300 ms (BALANCED
/// goes quiet after 20 ms): with housekeeping the free runs are purged, and
/// without it they are still there (BALANCED's purge delay is 1 s).
fn quiet_memory_goes_back(housekeeping: bool) {
    let blocks: Vec<Vec<u8>> = (0..16).map(|i| vec![i as u8; 1 << 20]).collect();
    drop(std::hint::black_box(blocks));
    let before = A.stats().retained_bytes;
    assert!(before >= 16 << 20, "{}", A.stats());
    std::thread::sleep(Duration::from_millis(300));
    let s = A.stats();
    if housekeeping {
        assert!(s.retained_bytes < 1 << 20, "not given back: {s}");
        assert!(s.decommitted_total_bytes >= 15 << 20, "{s}");
        println!("background housekeeping: ok");
    } else {
        assert!(
            s.retained_bytes >= 16 << 20,
            "given back without housekeeping: {s}"
        );
        println!("background no-housekeeping: ok");
    }
}
