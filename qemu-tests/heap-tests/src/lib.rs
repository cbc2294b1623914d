//! The usual kernel heap tests, as in "Writing an OS in Rust": they use `alloc::boxed::Box` and
//! `alloc::vec::Vec`, so they run on whatever the kernel declares as its `#[global_allocator]`.
//!
//! A crate of its own because linking `alloc` requires a global allocator, which only the heap
//! kernels declare.
#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::hint::black_box;

use kernel_support::check;
use kernel_support::suite::Suite;

/// Boxes allocated one after the other by the long tests: far more memory in all than the
/// 100 KiB heap, so they pass only if freed memory is reused.
pub const MANY: u64 = 100_000;

/// Runs the four tests in `suite`.
pub fn run(suite: &mut Suite) {
    suite.test("two boxes", two_boxes);
    suite.test("vec of 1000 elements", large_vec);
    suite.test("100000 boxes", many_boxes);
    suite.test("100000 boxes with one long-lived", many_boxes_long_lived);
}

fn two_boxes() {
    let first = black_box(Box::new(41));
    let second = black_box(Box::new(13));
    check!(
        *first == 41 && *second == 13,
        "boxes hold {first} and {second}"
    );
    check!(
        !core::ptr::eq(&*first, &*second),
        "two live boxes share an address"
    );
}

fn large_vec() {
    let n = 1000u64;
    let mut vec = Vec::new();
    for i in 0..n {
        vec.push(black_box(i));
    }
    check!(vec.len() == 1000, "{} elements", vec.len());
    check!(
        vec.iter().sum::<u64>() == (n - 1) * n / 2,
        "sum {} of 0..1000",
        vec.iter().sum::<u64>()
    );
    check!(
        vec.iter().enumerate().all(|(i, &x)| x == i as u64),
        "an element changed"
    );
}

fn many_boxes() {
    for i in 0..MANY {
        let x = black_box(Box::new(i));
        if !check!(*x == i, "box {i} holds {x}") {
            return;
        }
    }
}

fn many_boxes_long_lived() {
    let long_lived = black_box(Box::new(1u64));
    for i in 0..MANY {
        let x = black_box(Box::new(i));
        if !check!(*x == i, "box {i} holds {x}") {
            return;
        }
    }
    check!(*long_lived == 1, "the long-lived box holds {long_lived}");
}
