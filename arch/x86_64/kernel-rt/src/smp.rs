//! Starting the application processors, and running a function on every CPU.
//!
//! Implements Intel SDM Vol. 3A, chapter "Multiple-Processor Management": "MP Initialization
//! Example" / "Typical AP Initialization Sequence" (INIT IPI, 10 ms, STARTUP IPI, 200 µs,
//! STARTUP IPI; the AP starts in real mode at `vector * 4096`), and the switch from real mode
//! straight into IA-32e mode ("Initializing IA-32e Mode": CR4.PAE, CR3, EFER.LME, then CR0.PE
//! and CR0.PG together, then a far jump to the 64-bit code segment).
//!
//! CPUs are started one at a time, in MADT order, each receiving the next dense index and its
//! stack through [`AP_BOOT_INDEX`] and [`AP_BOOT_STACK`]. The 16-bit trampoline is copied to
//! [`TRAMPOLINE_PADDR`] (below 1 MiB, as STARTUP requires) and shares the boot CPU's GDT and page
//! tables.
//!
//! Once up, an application processor waits in `hlt` with interrupts enabled for work posted by
//! [`run_on_all_cpus`], which wakes it with an IPI on [`WAKEUP_VECTOR`].

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use spin::Mutex;
use x86_64::instructions::interrupts;

use crate::boot::{self, GDT_LIMIT, KERNEL_CODE_SELECTOR, KERNEL_DATA_SELECTOR};
use crate::idt::{self, interrupt_entry};
use crate::percpu::{self, MAX_CPUS, cpu_count, cpu_index};
use crate::pvh::BootInfo;
use crate::{acpi, apic, pit};

/// Vector of the IPI that wakes idle CPUs when there is work.
pub(crate) const WAKEUP_VECTOR: u8 = 0x21;
/// Where the trampoline runs: page 8, the STARTUP vector.
const TRAMPOLINE_PADDR: u64 = 0x8000;
const TRAMPOLINE_MAX_LEN: usize = 4096;
/// How long a started CPU has to report in.
const START_TIMEOUT_US: u64 = 1_000_000;
const START_POLL_US: u64 = 100;

/// Dense index of the CPU being started.
static AP_BOOT_INDEX: AtomicUsize = AtomicUsize::new(0);
/// Initial stack pointer of the CPU being started (read by the trampoline's 64-bit part).
static AP_BOOT_STACK: AtomicU64 = AtomicU64::new(0);
/// CPUs that have reached the idle loop, the boot CPU included.
static ONLINE: AtomicUsize = AtomicUsize::new(1);

global_asm!(
    r#"
    .section .text.acealloc_rt_ap_trampoline, "ax"
    .code16
    .global acealloc_rt_ap_trampoline_start
acealloc_rt_ap_trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl acealloc_rt_ap_gdtr - acealloc_rt_ap_trampoline_start
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $acealloc_rt_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    /* PG | ET | PE; also clears the CD and NW bits that INIT leaves set. */
    mov $0x80000011, %eax
    mov %eax, %cr0
    ljmpl ${code}, $acealloc_rt_ap_long_mode
    .p2align 3
acealloc_rt_ap_gdtr:
    .word {gdt_limit}
    .long acealloc_rt_gdt
    .global acealloc_rt_ap_trampoline_end
acealloc_rt_ap_trampoline_end:

    .code64
    .section .text.acealloc_rt_ap_entry, "ax"
acealloc_rt_ap_long_mode:
    mov ${data}, %eax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov {stack}(%rip), %rsp
    call {ap_main}
    ud2
    "#,
    gdt_limit = const GDT_LIMIT,
    code = const KERNEL_CODE_SELECTOR,
    data = const KERNEL_DATA_SELECTOR,
    stack = sym AP_BOOT_STACK,
    ap_main = sym ap_main,
    options(att_syntax),
);

unsafe extern "C" {
    safe static acealloc_rt_ap_trampoline_start: [u8; 0];
    safe static acealloc_rt_ap_trampoline_end: [u8; 0];
}

/// Starts every enabled CPU in the MADT (up to [`MAX_CPUS`]) and sets the CPU count.
/// Boot CPU, start-up, after the boot information was copied and the timer calibrated.
pub(crate) fn start_aps(boot: &BootInfo) {
    let cpus = acpi::enabled_cpus(boot.rsdp_paddr());
    let me = apic::id();
    let others = cpus.iter().filter(|&id| id != me);
    let ignored = cpus
        .iter()
        .filter(|&id| id != me)
        .count()
        .saturating_sub(MAX_CPUS - 1);
    if ignored > 0 {
        crate::println!("kernel-rt: {ignored} CPUs beyond {MAX_CPUS} stay halted");
    }

    let start = acealloc_rt_ap_trampoline_start.as_ptr();
    let len = acealloc_rt_ap_trampoline_end.as_ptr() as usize - start as usize;
    assert!(len <= TRAMPOLINE_MAX_LEN);
    // SAFETY: the page at TRAMPOLINE_PADDR is conventional RAM below the image that nothing else
    // uses (the loader's data was copied by `pvh::read_start_info` already), identity-mapped.
    unsafe { core::ptr::copy_nonoverlapping(start, TRAMPOLINE_PADDR as *mut u8, len) };

    let startup_page = (TRAMPOLINE_PADDR / 4096) as u8;
    for (index, apic_id) in (1..MAX_CPUS).zip(others) {
        AP_BOOT_INDEX.store(index, Ordering::Relaxed);
        AP_BOOT_STACK.store(boot::stack_top(index), Ordering::Release);
        apic::send_init(apic_id);
        pit::sleep_us(10_000);
        apic::send_startup(apic_id, startup_page);
        pit::sleep_us(200);
        apic::send_startup(apic_id, startup_page);
        let mut waited = 0;
        while ONLINE.load(Ordering::Acquire) <= index {
            assert!(
                waited < START_TIMEOUT_US,
                "CPU with APIC ID {apic_id} did not start"
            );
            pit::sleep_us(START_POLL_US);
            waited += START_POLL_US;
        }
    }
    percpu::set_cpu_count(ONLINE.load(Ordering::Acquire));
}

/// First Rust code of an application processor, on its own stack.
extern "C" fn ap_main() -> ! {
    let index = AP_BOOT_INDEX.load(Ordering::Relaxed);
    percpu::init_current(index);
    idt::load();
    apic::init_current();
    ONLINE.fetch_add(1, Ordering::Release);
    wait_for_work(index)
}

/// A function shared with the other CPUs for the duration of one [`run_on_all_cpus`] call.
type Job = &'static (dyn Fn(usize) + Sync);

/// The posted job; set and cleared by CPU 0 only.
static JOB: Mutex<Option<Job>> = Mutex::new(None);
/// Bumped for each job; a CPU runs the job when it sees a generation it has not run.
static JOB_GENERATION: AtomicUsize = AtomicUsize::new(0);
/// Other CPUs still running the current job.
static JOB_PENDING: AtomicUsize = AtomicUsize::new(0);

/// Runs `f(cpu_index())` on every CPU, CPU 0 (the caller) included, and returns when all have
/// finished.
///
/// `f` starts with interrupts disabled on each CPU and may enable them (to take timer ticks, for
/// instance); each CPU's previous interrupt state is restored afterwards. Must be called on CPU 0
/// and not from within `f`. A panic in `f` on any CPU ends the test.
pub fn run_on_all_cpus(f: &(dyn Fn(usize) + Sync)) {
    assert_eq!(cpu_index(), 0, "run_on_all_cpus must be called on CPU 0");
    // SAFETY: only the lifetime changes. The reference is published through `JOB` and removed
    // below, after every CPU has finished calling it (JOB_PENDING is 0); a panic anywhere ends
    // the machine instead of unwinding, so this function cannot return early.
    let job: Job = unsafe { core::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
    let others = cpu_count() - 1;
    *JOB.lock() = Some(job);
    JOB_PENDING.store(others, Ordering::Relaxed);
    JOB_GENERATION.fetch_add(1, Ordering::Release);
    if others > 0 {
        apic::send_to_others(WAKEUP_VECTOR);
    }
    run_job(job, 0);
    while JOB_PENDING.load(Ordering::Acquire) != 0 {
        core::hint::spin_loop();
    }
    *JOB.lock() = None;
}

fn run_job(job: Job, cpu: usize) {
    let were_enabled = interrupts::are_enabled();
    interrupts::disable();
    job(cpu);
    if were_enabled {
        interrupts::enable();
    } else {
        interrupts::disable();
    }
}

/// The idle loop of an application processor: sleep until a new job is posted, run it, report.
fn wait_for_work(cpu: usize) -> ! {
    let mut done_generation = 0;
    loop {
        interrupts::disable();
        let generation = JOB_GENERATION.load(Ordering::Acquire);
        if generation == done_generation {
            // Atomically re-enables interrupts and halts, so a wake-up IPI cannot be missed.
            interrupts::enable_and_hlt();
            continue;
        }
        let job = JOB.lock().expect("a posted job generation has a job");
        run_job(job, cpu);
        done_generation = generation;
        JOB_PENDING.fetch_sub(1, Ordering::Release);
    }
}

interrupt_entry!(
    /// IDT entry of [`WAKEUP_VECTOR`].
    wakeup_entry => on_wakeup
);

/// The wake-up IPI only ends `hlt`; the idle loop does the rest.
extern "C" fn on_wakeup() {
    apic::end_of_interrupt();
}
