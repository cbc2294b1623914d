//! What the PVH loader tells the kernel: memory map, command line and ACPI RSDP.
//!
//! Implements Xen's `xen/include/public/arch-x86/hvm/start_info.h`: `struct hvm_start_info`
//! (magic 0x336E_C578; version 1 adds the memory map) and `struct hvm_memmap_table_entry`, whose
//! types are the E820 address range types of the ACPI specification ("System Address Map
//! Interfaces": 1 RAM, 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 unusable).
//!
//! The boot CPU copies everything into [`BootInfo`] before it touches low memory, so the loader's
//! structures may be overwritten afterwards.

use core::ops::Range;
use core::sync::atomic::{AtomicU32, Ordering};

use spin::Once;

use crate::boot::{IDENTITY_MAP_END, Plain, kernel_end, read_physical};

/// Physical address of `hvm_start_info`, stored by the entry code from `%ebx`.
pub(crate) static START_INFO_PADDR: AtomicU32 = AtomicU32::new(0);

const START_INFO_MAGIC: u32 = 0x336E_C578;
// Offsets in `struct hvm_start_info`.
const VERSION: u64 = 0x04;
const CMDLINE_PADDR: u64 = 0x18;
const RSDP_PADDR: u64 = 0x20;
const MEMMAP_PADDR: u64 = 0x28;
const MEMMAP_ENTRIES: u64 = 0x30;
/// Size of `struct hvm_memmap_table_entry`: address, size, type, reserved.
const MEMMAP_ENTRY_SIZE: u64 = 24;

const MAX_REGIONS: usize = 128;
const CMDLINE_CAPACITY: usize = 1024;
const PAGE_SIZE: u64 = 4096;

/// The type of a memory map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Usable RAM (E820 type 1).
    Ram,
    /// Reserved by the platform (type 2).
    Reserved,
    /// ACPI tables, reusable once read (type 3).
    AcpiReclaimable,
    /// ACPI non-volatile storage (type 4).
    AcpiNvs,
    /// Defective memory (type 5).
    Unusable,
    /// Any other type code.
    Other(u32),
}

impl MemoryKind {
    fn from_e820(code: u32) -> MemoryKind {
        match code {
            1 => MemoryKind::Ram,
            2 => MemoryKind::Reserved,
            3 => MemoryKind::AcpiReclaimable,
            4 => MemoryKind::AcpiNvs,
            5 => MemoryKind::Unusable,
            other => MemoryKind::Other(other),
        }
    }
}

/// One entry of the physical memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Physical address of the first byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// What the memory is.
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// Physical address one past the last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// Boot information from the PVH loader, copied at start-up.
pub struct BootInfo {
    regions: [MemoryRegion; MAX_REGIONS],
    region_count: usize,
    cmdline: [u8; CMDLINE_CAPACITY],
    cmdline_len: usize,
    rsdp_paddr: u64,
}

impl BootInfo {
    /// The memory map as the loader gave it (e820 style, in its order).
    pub fn memory_map(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }

    /// RAM that nothing uses: the [`MemoryKind::Ram`] ranges above the kernel image and below the
    /// end of the identity map (1 GiB), trimmed to whole 4 KiB pages.
    ///
    /// The kernel may hand these to an allocator; addresses are physical and equal to virtual.
    pub fn usable_ram(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.memory_map()
            .iter()
            .filter(|region| region.kind == MemoryKind::Ram)
            .filter_map(|region| {
                let start = region.start.max(kernel_end()).next_multiple_of(PAGE_SIZE);
                let end = region.end().min(IDENTITY_MAP_END) / PAGE_SIZE * PAGE_SIZE;
                (start < end).then_some(start..end)
            })
    }

    /// The kernel command line (QEMU's `-append`), empty if none.
    pub fn cmdline(&self) -> &str {
        let bytes = &self.cmdline[..self.cmdline_len];
        match core::str::from_utf8(bytes) {
            Ok(line) => line,
            // Keep the valid prefix; the copy may have cut a character in two.
            Err(error) => core::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default(),
        }
    }

    /// Whether the command line contains the word `flag` (separated by whitespace).
    pub fn cmdline_flag(&self, flag: &str) -> bool {
        self.cmdline()
            .split_ascii_whitespace()
            .any(|word| word == flag)
    }

    /// The value of the first `key=value` word on the command line.
    pub fn cmdline_value(&self, key: &str) -> Option<&str> {
        self.cmdline()
            .split_ascii_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }

    /// Physical address of the ACPI RSDP, if the loader found one.
    pub(crate) fn rsdp_paddr(&self) -> Option<u64> {
        (self.rsdp_paddr != 0).then_some(self.rsdp_paddr)
    }
}

static BOOT_INFO: Once<BootInfo> = Once::new();

/// Reads an integer of the loader's boot data (start info, memory map, command line).
fn read_loader_data<T: Plain>(paddr: u64) -> T {
    // SAFETY: nothing writes the loader's data while the boot CPU copies it.
    unsafe { read_physical(paddr) }
}

/// Copies the loader's `hvm_start_info` into a [`BootInfo`] (boot CPU, early start-up).
pub(crate) fn read_start_info() -> &'static BootInfo {
    BOOT_INFO.call_once(|| {
        let base = u64::from(START_INFO_PADDR.load(Ordering::Relaxed));
        let magic: u32 = read_loader_data(base);
        assert_eq!(
            magic, START_INFO_MAGIC,
            "no PVH start info at {base:#x}: boot with QEMU -kernel"
        );
        let version: u32 = read_loader_data(base + VERSION);
        let mut info = BootInfo {
            regions: [MemoryRegion {
                start: 0,
                len: 0,
                kind: MemoryKind::Reserved,
            }; MAX_REGIONS],
            region_count: 0,
            cmdline: [0; CMDLINE_CAPACITY],
            cmdline_len: 0,
            rsdp_paddr: read_loader_data(base + RSDP_PADDR),
        };
        if version >= 1 {
            let table: u64 = read_loader_data(base + MEMMAP_PADDR);
            let entries: u32 = read_loader_data(base + MEMMAP_ENTRIES);
            let count = (entries as usize).min(MAX_REGIONS);
            for (index, region) in info.regions[..count].iter_mut().enumerate() {
                let entry = table + index as u64 * MEMMAP_ENTRY_SIZE;
                *region = MemoryRegion {
                    start: read_loader_data(entry),
                    len: read_loader_data(entry + 8),
                    kind: MemoryKind::from_e820(read_loader_data(entry + 16)),
                };
            }
            info.region_count = count;
        }
        let cmdline: u64 = read_loader_data(base + CMDLINE_PADDR);
        if cmdline != 0 {
            while info.cmdline_len < CMDLINE_CAPACITY {
                let byte: u8 = read_loader_data(cmdline + info.cmdline_len as u64);
                if byte == 0 {
                    break;
                }
                info.cmdline[info.cmdline_len] = byte;
                info.cmdline_len += 1;
            }
        }
        info
    })
}
