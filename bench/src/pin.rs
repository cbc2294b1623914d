//! Pinning worker threads to CPUs, so that a multi-threaded workload measures what it says.
//!
//! Left to the scheduler, the two threads of a producer-consumer pair on this 2-CPU machine
//! sometimes share a CPU and sometimes not, and the figure swings 4x between runs for every
//! allocator: one run measures cross-CPU frees, the next context switches. So each multi-threaded
//! workload pins its thread `i` to the `i`-th CPU (modulo the count) of the set the process may
//! run on, the same for every allocator, and says in its doc which threads share a CPU.

use std::sync::OnceLock;

/// An empty CPU set.
fn empty() -> libc::cpu_set_t {
    // SAFETY: `cpu_set_t` is an array of integers, for which all zero bits is a valid (empty)
    // set.
    unsafe { std::mem::zeroed() }
}

/// The CPUs the process may run on, in order, as it started (before any thread was pinned).
fn allowed() -> &'static [usize] {
    static ALLOWED: OnceLock<Vec<usize>> = OnceLock::new();
    ALLOWED.get_or_init(|| {
        let mut set = empty();
        // SAFETY: `set` is a `cpu_set_t` of the size passed; 0 names this thread.
        let got = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
        if got != 0 {
            return vec![0];
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` is below `CPU_SETSIZE`, the set's bound.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        if cpus.is_empty() { vec![0] } else { cpus }
    })
}

/// How many CPUs the workloads' threads are spread over.
pub fn cpus() -> usize {
    allowed().len()
}

/// Pins the calling thread to CPU `i` modulo [`cpus`] (of the process's allowed set). Call it
/// first thing in a worker thread, before the thread allocates.
pub fn pin(i: usize) {
    let cpus = allowed();
    let cpu = cpus[i % cpus.len()];
    let mut set = empty();
    // SAFETY: `cpu` is below `CPU_SETSIZE` (it came from `CPU_ISSET` over that range), and `set`
    // is a `cpu_set_t` of the size passed; 0 names this thread.
    let result = unsafe {
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        result,
        0,
        "sched_setaffinity to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pinned thread runs only on its CPU.
    #[test]
    fn a_pinned_thread_runs_on_its_cpu() {
        for i in 0..2 * cpus() {
            std::thread::spawn(move || {
                pin(i);
                for _ in 0..1000 {
                    // SAFETY: `sched_getcpu` has no preconditions.
                    let now = unsafe { libc::sched_getcpu() };
                    assert_eq!(now as usize, allowed()[i % cpus()]);
                    std::thread::yield_now();
                }
            })
            .join()
            .unwrap();
        }
    }
}
