//! `spawn_from_host MIB RUNS`: a host that has touched MIB MiB of heap
//! starts `/bin/true` as a daemon RUNS times (the exec variant, returning
//! once it was executed) and prints the time of each start in microseconds,
//! on one line. `fork` copies the host's page
//! tables, so with fork the cost grows with the host; `ci/bench` compares
//! hosts of different sizes side by side.

use std::hint::black_box;
use std::process::exit;
use std::time::Instant;

use daemonic::{Daemonize, Started};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mib), Some(runs)) = (
        args.first().and_then(|a| a.parse::<usize>().ok()),
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: spawn_from_host MIB RUNS");
        exit(2)
    };
    // Touched, so that every page is mapped (and its page table filled).
    let heap = vec![1u8; mib << 20];
    black_box(&heap);
    let mut micros = Vec::with_capacity(runs);
    for _ in 0..runs {
        let began = Instant::now();
        match Daemonize::new().exec("/bin/true", [""; 0]).start() {
            Ok(Started::Parent(_)) => {}
            Ok(Started::Daemon(_)) => exit(1),
            Err(error) => {
                eprintln!("spawn_from_host: {error}");
                exit(1)
            }
        }
        micros.push(began.elapsed().as_secs_f64() * 1e6);
    }
    let line: Vec<String> = micros.iter().map(|m| format!("{m:.1}")).collect();
    println!("{}", line.join(" "));
}
