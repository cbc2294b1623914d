//! Links the kernel with the runtime's linker script.

fn main() {
    let script = std::env::var("DEP_ACEALLOC_KERNEL_RT_LINKER_SCRIPT")
        .expect("acealloc-kernel-rt publishes its linker script");
    println!("cargo::rerun-if-changed={script}");
    println!("cargo::rustc-link-arg-bins=-T{script}");
}
