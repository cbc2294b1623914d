//! From QEMU's PVH entry to Rust in 64-bit mode on the boot CPU.
//!
//! Implements the Xen PVH boot ABI's entry (Xen `docs/misc/pvh.pandoc`: ELF note
//! `XEN_ELFNOTE_PHYS32_ENTRY`, 32-bit protected mode with paging off, `%ebx` = physical address
//! of `hvm_start_info`, no stack) and Intel SDM Vol. 3A, "Initializing IA-32e Mode" (CR4.PAE,
//! CR3, IA32_EFER.LME, then CR0.PG, then a far jump to a 64-bit code segment), with 4-level
//! paging and 2 MiB pages ("4-Level Paging and 5-Level Paging").
//!
//! Memory layout: the image runs at its link address (1 MiB, see `targets/kernel.ld`). The page
//! tables map the first [`IDENTITY_MAP_END`] bytes identically with writeback 2 MiB pages and
//! the 2 MiB page holding the local APIC uncached. The tables, and one [`STACK_SIZE`] stack per
//! CPU (`acealloc_rt_cpu_stacks`, CPU 0 first), live in `.bss`, which the entry zeroes before
//! anything else. The GDT has a 64-bit code segment and a data segment; there is no TSS (no
//! privilege changes, no IST stacks).

use core::arch::global_asm;

use crate::apic::APIC_BASE;
use crate::percpu::MAX_CPUS;
use crate::{pvh, start};

/// Bytes of each CPU's stack.
pub(crate) const STACK_SIZE: usize = 64 * 1024;
/// End of the identity-mapped RAM: addresses below it (and the local APIC page) are usable.
pub(crate) const IDENTITY_MAP_END: u64 = 1 << 30;
/// Limit of the GDT (null, code and data descriptors), for GDTR.
pub(crate) const GDT_LIMIT: u16 = 3 * 8 - 1;
/// GDT selector of the 64-bit code segment.
pub(crate) const KERNEL_CODE_SELECTOR: u16 = 0x08;
/// GDT selector of the data segment.
pub(crate) const KERNEL_DATA_SELECTOR: u16 = 0x10;

const PAGE_PRESENT_WRITABLE: u64 = 0b11;
const PAGE_WRITE_THROUGH: u64 = 1 << 3;
const PAGE_CACHE_DISABLE: u64 = 1 << 4;
const PAGE_LARGE: u64 = 1 << 7;
const LARGE_PAGE_SHIFT: u32 = 21;

global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .p2align 2
    .long 4                     /* name size, "Xen\0" */
    .long 8                     /* descriptor size: a 64-bit entry address */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .p2align 2
    .quad pvh_start

    .section .text.acealloc_rt_boot, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    /* Zero .bss: page tables, stacks and zero-initialised statics. %ebx survives. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb
    mov %ebx, {start_info}

    /* PML4[0] -> PDPT; PDPT[0] -> PD of 0..1 GiB; PDPT[3] -> PD of 3..4 GiB (local APIC). */
    mov $(acealloc_rt_pdpt + {table}), %eax
    mov %eax, acealloc_rt_pml4
    mov $(acealloc_rt_pd_low + {table}), %eax
    mov %eax, acealloc_rt_pdpt
    mov $(acealloc_rt_pd_apic + {table}), %eax
    mov %eax, acealloc_rt_pdpt + 8 * {apic_pdpt_index}
    xor %ecx, %ecx
1:
    mov %ecx, %eax
    shl ${large_page_shift}, %eax
    or ${large_page}, %eax
    mov %eax, acealloc_rt_pd_low(, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jne 1b
    movl ${apic_page}, acealloc_rt_pd_apic + 8 * {apic_page_index}

    /* IA-32e mode: PAE, CR3, EFER.LME, paging; then a far jump into the 64-bit segment. */
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $acealloc_rt_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax
    mov %eax, %cr0
    lgdt acealloc_rt_gdtr
    ljmp ${code}, $acealloc_rt_long_mode

    .code64
acealloc_rt_long_mode:
    mov ${data}, %eax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $(acealloc_rt_cpu_stacks + {stack_size}), %rsp
    call {bsp_main}
    ud2

    .section .rodata.acealloc_rt_gdt, "a"
    .p2align 3
    .global acealloc_rt_gdt
acealloc_rt_gdt:
    .quad 0
    .quad 0x00AF9B000000FFFF    /* 0x08: code, 64-bit, DPL 0, accessed */
    .quad 0x00CF93000000FFFF    /* 0x10: data, writable, accessed */
    .p2align 3
acealloc_rt_gdtr:
    .word {gdt_limit}
    .quad acealloc_rt_gdt

    .section .bss.acealloc_rt_boot, "aw", @nobits
    .p2align 12
    .global acealloc_rt_pml4
acealloc_rt_pml4:
    .skip 4096
acealloc_rt_pdpt:
    .skip 4096
acealloc_rt_pd_low:
    .skip 4096
acealloc_rt_pd_apic:
    .skip 4096
    .p2align 4
    .global acealloc_rt_cpu_stacks
acealloc_rt_cpu_stacks:
    .skip {stack_size} * {max_cpus}
    "#,
    start_info = sym pvh::START_INFO_PADDR,
    bsp_main = sym start::bsp_main,
    table = const PAGE_PRESENT_WRITABLE,
    large_page_shift = const LARGE_PAGE_SHIFT,
    large_page = const PAGE_PRESENT_WRITABLE | PAGE_LARGE,
    apic_page = const APIC_BASE | PAGE_PRESENT_WRITABLE | PAGE_LARGE | PAGE_WRITE_THROUGH | PAGE_CACHE_DISABLE,
    apic_pdpt_index = const APIC_BASE >> 30,
    apic_page_index = const (APIC_BASE >> LARGE_PAGE_SHIFT) % 512,
    gdt_limit = const GDT_LIMIT,
    code = const KERNEL_CODE_SELECTOR,
    data = const KERNEL_DATA_SELECTOR,
    stack_size = const STACK_SIZE,
    max_cpus = const MAX_CPUS,
    options(att_syntax),
);

unsafe extern "C" {
    /// Start of the per-CPU stacks (zero-sized: only its address is used).
    safe static acealloc_rt_cpu_stacks: [u8; 0];
    /// End of the kernel image, page aligned (from the linker script).
    safe static __kernel_end: [u8; 0];
}

/// Initial stack pointer of CPU `cpu`.
pub(crate) fn stack_top(cpu: usize) -> u64 {
    assert!(cpu < MAX_CPUS);
    acealloc_rt_cpu_stacks.as_ptr() as u64 + ((cpu + 1) * STACK_SIZE) as u64
}

/// First byte after the kernel image (page aligned).
pub(crate) fn kernel_end() -> u64 {
    __kernel_end.as_ptr() as u64
}

/// Types for which every bit pattern is a valid value.
pub(crate) trait Plain: Copy {}
impl Plain for u8 {}
impl Plain for u16 {}
impl Plain for u32 {}
impl Plain for u64 {}
impl<const N: usize> Plain for [u8; N] {}

/// Reads a `T` from physical address `paddr` through the identity map.
///
/// Panics if `paddr` is null or the bytes reach past [`IDENTITY_MAP_END`].
///
/// # Safety
///
/// No CPU may be writing those bytes (firmware tables and loader data read at start-up qualify).
pub(crate) unsafe fn read_physical<T: Plain>(paddr: u64) -> T {
    let end = paddr.checked_add(size_of::<T>() as u64);
    assert!(
        paddr != 0 && end.is_some_and(|end| end <= IDENTITY_MAP_END),
        "physical address {paddr:#x} is outside the identity map"
    );
    // SAFETY: the bytes are mapped (checked above) and not null, any bit pattern is a valid `T`,
    // and the caller guarantees that nobody writes them meanwhile.
    unsafe { core::ptr::read_unaligned(paddr as *const T) }
}
