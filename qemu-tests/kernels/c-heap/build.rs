//! Compiles the kernel's C code (`c/heap.c`) with gcc as freestanding code fit for the kernel
//! (no red zone, since interrupts arrive on the same stack; general registers only, since the
//! kernel does not save vector state; no PIC, small code model: linked at 1 MiB), archives it for rustc, and links
//! the kernel with the runtime's linker script.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let script = std::env::var("DEP_ACEALLOC_KERNEL_RT_LINKER_SCRIPT")
        .expect("acealloc-kernel-rt publishes its linker script");
    println!("cargo::rerun-if-changed={script}");
    println!("cargo::rustc-link-arg-bins=-T{script}");

    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let source = manifest.join("c/heap.c");
    let include = manifest.join("../../../capi/include");
    println!("cargo::rerun-if-changed={}", source.display());
    println!(
        "cargo::rerun-if-changed={}",
        include.join("acealloc.h").display()
    );
    let object = out.join("heap.o");
    let status = Command::new("gcc")
        .args([
            "-std=c11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-ffreestanding",
            "-fno-builtin",
            "-nostdlib",
            "-fno-stack-protector",
            "-fno-pic",
            "-mno-red-zone",
            "-mgeneral-regs-only",
            "-mcmodel=small",
            "-c",
        ])
        .arg("-I")
        .arg(&include)
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .status()
        .expect("gcc runs (Debian: apt-get install gcc)");
    assert!(status.success(), "gcc failed on {}", source.display());
    let archive = out.join("libheap.a");
    let _ = std::fs::remove_file(&archive);
    let status = Command::new("ar")
        .arg("crs")
        .arg(&archive)
        .arg(&object)
        .status()
        .expect("ar runs");
    assert!(status.success(), "ar failed");
    println!("cargo::rustc-link-search=native={}", out.display());
    println!("cargo::rustc-link-lib=static=heap");
}
