//! Publishes the absolute path of the test-kernel linker script (`targets/kernel.ld`) to the
//! build scripts of kernels that depend on this crate, as `DEP_ACEALLOC_KERNEL_RT_LINKER_SCRIPT`.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = manifest_dir.join("../../../targets/kernel.ld");
    let script = script
        .canonicalize()
        .unwrap_or_else(|e| panic!("linker script {}: {e}", script.display()));
    println!("cargo::rerun-if-changed={}", script.display());
    println!("cargo::metadata=linker_script={}", script.display());
}
