//! What closing inherited fds costs, per strategy, side by side in one run:
//! `close_range(2)` and the `/proc/self/fd` walk against a plain loop up to
//! the `RLIMIT_NOFILE` hard limit (python-daemon's way, and the fallback).
//!
//! Each measurement forks a child that holds 16 open fds and times one
//! `close_inherited_with` call there; twice: with low fds only (the common
//! case), then with one moved near the top of the limit (the kernel's fd
//! table then spans the limit, which `close_range` walks slot by slot).
//! The loop's cost grows with the limit, the others' with the open fds: the
//! loop is also given at 1,048,576 (measured where the hard limit can be
//! raised that far, else scaled from the limit in force, per possible fd).
//!
//! `cargo bench --bench close_fds` (or `bash ci/bench`).

use std::time::Instant;

use daemonic::InheritedFds;
use daemonic::fds::{Strategy, close_inherited_with};

const RUNS: usize = 15;
const OPEN_FDS: usize = 16;
const TARGET_LIMIT: u64 = 1 << 20;

fn main() {
    let limit = raise_limit();
    println!(
        "close inherited fds: {OPEN_FDS} open, RLIMIT_NOFILE {limit}, median of {RUNS} runs, each in a fresh child"
    );
    hold_fds();
    report("low fds only (3..19)", limit);
    let high = (limit - 10) as i32;
    // SAFETY: dup2 of an open fd onto a free number below the limit.
    unsafe { libc::dup2(3, high) };
    report(&format!("one fd at {high}"), limit);
}

fn report(case: &str, limit: u64) {
    let loop_ns = median(Strategy::Loop);
    let rows = [
        ("close_range", median(Strategy::Best)),
        ("/proc/self/fd walk", median(Strategy::ProcWalk)),
        ("loop to the limit", loop_ns),
    ];
    println!("\n{case}");
    println!(
        "{:<22} {:>12} {:>18}",
        "strategy", "time", "loop / strategy"
    );
    for (name, ns) in rows {
        println!(
            "{name:<22} {:>9.1} µs {:>17.1}x",
            ns as f64 / 1e3,
            loop_ns as f64 / ns.max(1) as f64
        );
    }
    if limit < TARGET_LIMIT {
        let scaled = loop_ns as f64 * TARGET_LIMIT as f64 / limit as f64;
        println!(
            "loop at RLIMIT_NOFILE {TARGET_LIMIT}: ~{:.1} ms (scaled per possible fd from {limit}, the hard limit here, which cannot be raised)",
            scaled / 1e6
        );
    }
}

/// Raises the soft limit to the hard one, and both to 2^20 where allowed.
fn raise_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let wanted = libc::rlimit {
            rlim_cur: TARGET_LIMIT,
            rlim_max: TARGET_LIMIT,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
            return TARGET_LIMIT;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        limit.rlim_max
    }
}

/// Opens OPEN_FDS fds (3 and up), held for the whole run.
fn hold_fds() {
    for _ in 0..OPEN_FDS {
        let file = std::fs::File::open("/dev/null").unwrap();
        let _ = std::os::fd::IntoRawFd::into_raw_fd(file);
    }
}

/// Median nanoseconds of one strategy, each run in a fresh child.
fn median(strategy: Strategy) -> u64 {
    let mut times: Vec<u64> = (0..RUNS).map(|_| time_in_child(strategy)).collect();
    times.sort_unstable();
    times[RUNS / 2]
}

fn time_in_child(strategy: Strategy) -> u64 {
    let mut ends = [0; 2];
    // SAFETY: pipe2 fills `ends`; fork's child only times a system-call
    // sequence, writes 8 bytes and _exits.
    unsafe {
        assert_eq!(libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC), 0);
        let pid = libc::fork();
        if pid == 0 {
            let started = Instant::now();
            let _ = close_inherited_with(&[ends[1]], [-1; 6], InheritedFds::Close, strategy);
            let ns = started.elapsed().as_nanos() as u64;
            libc::write(ends[1], ns.to_ne_bytes().as_ptr().cast(), 8);
            libc::_exit(0);
        }
        libc::close(ends[1]);
        let mut bytes = [0u8; 8];
        libc::read(ends[0], bytes.as_mut_ptr().cast(), 8);
        libc::close(ends[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        u64::from_ne_bytes(bytes)
    }
}
