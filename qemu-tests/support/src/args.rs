//! Numbers from the kernel command line (QEMU's `-append`, set per run in the kernel's
//! `[package.metadata.qemu]`).

use acealloc_kernel_rt::BootInfo;

/// The number given as `key=N` on the command line, or `default`. Panics (failing the run) on a
/// value that is not a number.
pub fn number(boot: &BootInfo, key: &str, default: u64) -> u64 {
    boot.cmdline_value(key).map_or(default, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{key}={value} is not a number"))
    })
}
