#[global_allocator]
static A: acealloc::hosted::HostedAlloc = acealloc::hosted::HostedAlloc::new();
fn main() {
    let mut v = Vec::new();
    for i in 0..100000u64 {
        v.push(Box::new(i));
    }
    let s: u64 = v.iter().map(|b| **b).sum();
    let mut big = vec![0u8; 1 << 20];
    big.resize(3 << 20, 1);
    let strings: Vec<String> = (0..10000).map(|i| format!("item {i}")).collect();
    println!("sum {s} {} {}", big.len(), strings.len());
    drop(v);
    let t: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut x = Vec::new();
                for i in 0..100000 {
                    x.push(vec![t as u8; i % 300]);
                    if i % 3 == 0 {
                        x.swap_remove(i % x.len());
                    }
                }
                x.len()
            })
        })
        .collect();
    for h in t {
        println!("{}", h.join().unwrap());
    }
    println!("{}", A.stats());
}
