//! Finding the CPUs: ACPI RSDP, then RSDT or XSDT, then the MADT's local APIC entries.
//!
//! Implements the ACPI 6.5 specification, §5.2.5 "Root System Description Pointer (RSDP)"
//! (found by the loader, else by scanning the BIOS area 0xE0000–0xFFFFF on 16-byte boundaries),
//! §5.2.6 "System Description Table Header", §5.2.7 "RSDT", §5.2.8 "XSDT", §5.2.12 "Multiple
//! APIC Description Table (MADT)" and §5.2.12.2 "Processor Local APIC Structure" (flag bit 0:
//! enabled). Processor Local x2APIC structures (IDs above 254) are not read: the xAPIC cannot
//! address those CPUs anyway.
//!
//! Only the boot CPU reads the tables, during start-up, before the kernel owns any RAM.

use crate::boot::{Plain, read_physical};

const RSDP_SIGNATURE: [u8; 8] = *b"RSD PTR ";
const RSDP_V1_LENGTH: u64 = 20;
const BIOS_AREA: core::ops::Range<u64> = 0xE_0000..0x10_0000;
const HEADER_LENGTH: u64 = 36;
const MADT_ENTRIES: u64 = 44;
const PROCESSOR_LOCAL_APIC: u8 = 0;
const LOCAL_APIC_ENABLED: u32 = 1 << 0;

/// Reads ACPI table data.
fn read<T: Plain>(paddr: u64) -> T {
    // SAFETY: ACPI tables are firmware data that no CPU writes while the boot CPU reads them.
    unsafe { read_physical(paddr) }
}

/// Whether the `length` bytes at `paddr` add up to zero (mod 256), as every ACPI table does.
fn checksum_ok(paddr: u64, length: u64) -> bool {
    (0..length).fold(0u8, |sum, offset| sum.wrapping_add(read(paddr + offset))) == 0
}

fn find_rsdp(hint: Option<u64>) -> Option<u64> {
    let valid =
        |paddr: u64| read::<[u8; 8]>(paddr) == RSDP_SIGNATURE && checksum_ok(paddr, RSDP_V1_LENGTH);
    hint.filter(|&paddr| valid(paddr))
        .or_else(|| BIOS_AREA.step_by(16).find(|&paddr| valid(paddr)))
}

/// The MADT's address, through the XSDT when the RSDP has one (revision 2+), else the RSDT.
fn find_madt(rsdp: u64) -> Option<u64> {
    let revision: u8 = read(rsdp + 15);
    let xsdt: u64 = if revision >= 2 { read(rsdp + 24) } else { 0 };
    let (root, entry_size) = if xsdt != 0 {
        (xsdt, 8)
    } else {
        (u64::from(read::<u32>(rsdp + 16)), 4)
    };
    let length = u64::from(read::<u32>(root + 4));
    (HEADER_LENGTH..length)
        .step_by(entry_size)
        .map(|offset| match entry_size {
            8 => read::<u64>(root + offset),
            _ => u64::from(read::<u32>(root + offset)),
        })
        .find(|&table| read::<[u8; 4]>(table) == *b"APIC")
}

/// Local APIC IDs of the enabled CPUs, in MADT order.
pub(crate) struct ApicIds {
    ids: [u8; 256],
    count: usize,
}

impl ApicIds {
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids[..self.count].iter().map(|&id| u32::from(id))
    }
}

/// Lists the enabled CPUs of the MADT. `rsdp_hint` is the loader's RSDP address, if any.
///
/// Panics if there is no valid RSDP or MADT.
pub(crate) fn enabled_cpus(rsdp_hint: Option<u64>) -> ApicIds {
    let rsdp = find_rsdp(rsdp_hint).expect("no ACPI RSDP");
    let madt = find_madt(rsdp).expect("no ACPI MADT");
    let length = u64::from(read::<u32>(madt + 4));
    assert!(checksum_ok(madt, length), "bad MADT checksum");
    let mut cpus = ApicIds {
        ids: [0; 256],
        count: 0,
    };
    let mut offset = MADT_ENTRIES;
    while offset + 2 <= length {
        let kind: u8 = read(madt + offset);
        let entry_length = u64::from(read::<u8>(madt + offset + 1));
        assert!(entry_length >= 2, "bad MADT entry at {:#x}", madt + offset);
        let enabled = || read::<u32>(madt + offset + 4) & LOCAL_APIC_ENABLED != 0;
        if kind == PROCESSOR_LOCAL_APIC && enabled() && cpus.count < cpus.ids.len() {
            cpus.ids[cpus.count] = read(madt + offset + 3);
            cpus.count += 1;
        }
        offset += entry_length;
    }
    cpus
}
