//! Starting daemons from a busy multithreaded program cannot hang.
//!
//! The allocator here is a plain spin lock around the system allocator,
//! with no fork handler (as many embedded, arena and bump allocators are):
//! if another thread holds it at the fork, any allocation in the child spins
//! for ever. Eight threads allocate, read the environment (Rust's env lock)
//! and print (stdout's lock) in a loop while the main thread starts daemons.
//!
//! The control run allocates once in each daemon before it reports ready,
//! as a sequence that allocates after fork would: it must hang, or this test
//! proves nothing.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::field;

struct SpinLocked {
    locked: AtomicBool,
}

impl SpinLocked {
    fn with_lock<T>(&self, f: impl FnOnce() -> T) -> T {
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        let result = f();
        self.locked.store(false, Ordering::Release);
        result
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged, one
// at a time.
unsafe impl GlobalAlloc for SpinLocked {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as received.
        self.with_lock(|| unsafe { System.alloc(layout) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        self.with_lock(|| unsafe { System.dealloc(ptr, layout) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as received.
        self.with_lock(|| unsafe { System.realloc(ptr, layout, new_size) })
    }
}

#[global_allocator]
static ALLOCATOR: SpinLocked = SpinLocked {
    locked: AtomicBool::new(false),
};

const STARTS: usize = 500;
const CONTROL_STARTS: usize = 200;
const EXEC_STARTS: usize = 200;
#[cfg(feature = "std")]
const BUILDER_STARTS: usize = 200;

fn main() {
    common::main(helper, tests());
}

fn tests() -> Vec<common::Test> {
    #[allow(unused_mut)]
    let mut tests: Vec<common::Test> = vec![
        (
            "five_hundred_starts_under_load_never_hang",
            five_hundred_starts_under_load_never_hang,
        ),
        (
            "control_allocating_after_fork_hangs",
            control_allocating_after_fork_hangs,
        ),
        (
            "exec_starts_under_load_never_hang",
            exec_starts_under_load_never_hang,
        ),
    ];
    #[cfg(feature = "std")]
    tests.push((
        "builder_daemons_drop_their_handle_under_load",
        builder_daemons_drop_their_handle_under_load,
    ));
    tests.push((
        "threaded_caller_is_refused_unless_allowed",
        threaded_caller_is_refused_unless_allowed,
    ));
    tests
}

/// `host STARTS MODE`: starts STARTS daemons from the main thread while
/// eight threads load the allocator, and prints the tally. MODE `library`
/// daemons drop their handle and exit as soon as `start` returns; MODE
/// `builder` daemons do the same through `Daemonize` (owned paths, a PID
/// file the drop removes); MODE `exec` daemons execute `/bin/true`; MODE
/// `control` daemons allocate before they report ready, and the run stops
/// at the first hang. Every mode but `exec` allows the host's threads;
/// `library-refused` and `builder-refused` do not, and are refused.
fn helper(name: &str, args: Vec<String>) {
    assert_eq!(name, "host");
    let starts: usize = args[0].parse().unwrap();
    let mode = args[1].as_str();
    common::become_subreaper();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for n in 0..8 {
            let stop = &stop;
            scope.spawn(move || load(n, stop));
        }
        let tally = start_many(starts, mode);
        stop.store(true, Ordering::SeqCst);
        // The load threads own stdout; the tally goes to stderr.
        eprintln!("{tally}");
    });
}

/// Allocates, reads the environment and prints until told to stop.
fn load(n: usize, stop: &AtomicBool) {
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let buffer = vec![n as u8; 16 + (round % 64) * 32];
        let path = std::env::var("PATH").unwrap_or_default();
        println!("thread {n} round {round} {} {}", buffer.len(), path.len());
        round += 1;
    }
}

fn start_many(starts: usize, mode: &str) -> String {
    let control = mode == "control";
    let readiness = if control {
        daemonic::Readiness::Manual
    } else {
        daemonic::Readiness::WhenStarted
    };
    let timeout = if control {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    // These daemons drop their handle and end: they need none of the host's
    // threads, so they may start from it (an exec needs no allowing; the
    // `-refused` modes check that the default refuses).
    let allow = mode != "exec" && !mode.ends_with("-refused");
    let mut plan = daemonic::Plan::new()
        .readiness(readiness)
        .ready_timeout(Some(timeout))
        .allow_threads(allow);
    // The exec variant: each daemon becomes /bin/true, which exits at once.
    let mut argv_slots = [std::ptr::null(); 2];
    let mut env_slots = [std::ptr::null(); 1];
    if mode == "exec" {
        plan = plan.exec(daemonic::Exec {
            program: c"/bin/true",
            args: daemonic::CStrArray::new(&[c"true"], &mut argv_slots).unwrap(),
            env: daemonic::Environment::Exact(
                daemonic::CStrArray::new(&[], &mut env_slots).unwrap(),
            ),
        });
    }
    let dir = std::env::temp_dir().join(format!("daemonic-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut ready, mut hangs, mut errors, mut reaped, mut attempts) = (0, 0, 0, 0, 0);
    for _ in 0..starts {
        attempts += 1;
        let started = start_one(&plan, mode, &dir, timeout, allow);
        match started {
            Ok(daemonic::Started::Daemon(mut daemon)) => {
                if control {
                    // What a sequence that allocates after fork would do.
                    std::hint::black_box(Box::new(attempts));
                    let _ = daemon.ready();
                }
                // The handle goes as a program's would (the builder's
                // removes its PID file): a free in there hangs here, and the
                // caller's wait for the daemon's end runs out.
                drop(daemon);
                // SAFETY: _exit ends the daemon at once, touching nothing.
                unsafe { libc::_exit(0) };
            }
            Ok(daemonic::Started::Parent(parent)) => {
                ready += 1;
                let pid = parent.pid().as_raw_pid();
                if common::wait_pid(pid, Duration::from_secs(5)).is_some() {
                    reaped += 1;
                } else {
                    // Stuck after reporting ready (counted by `reaped`):
                    // killed, and the run ends here, within the caller's
                    // patience, rather than leave it spinning.
                    common::kill(pid, libc::SIGKILL);
                    let _ = common::wait_pid(pid, Duration::from_secs(5));
                    break;
                }
            }
            Err(daemonic::Error::NotReady { pid, .. }) => {
                hangs += 1;
                // `start` killed it; it was reparented to us: reap it.
                if let Some(pid) = pid {
                    let _ = common::wait_pid(pid.as_raw_pid(), Duration::from_secs(5));
                }
                if control {
                    break;
                }
            }
            Err(error) => {
                errors += 1;
                eprintln!("start failed: {error}");
            }
        }
    }
    // Every daemon was reaped above: no child of ours may remain.
    let mut status = 0;
    // SAFETY: waitpid writes into our local.
    let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    let leftover = if rc == -1 { 0 } else { 1 };
    let _ = std::fs::remove_dir_all(&dir);
    format!(
        "attempts={attempts} ready={ready} hangs={hangs} errors={errors} reaped={reaped} leftover={leftover}"
    )
}

/// One start through the plan, or in `builder` mode through `Daemonize`.
fn start_one<'a>(
    plan: &daemonic::Plan<'a>,
    mode: &str,
    dir: &std::path::Path,
    timeout: Duration,
    allow: bool,
) -> Result<daemonic::Started<'a>, daemonic::Error> {
    #[cfg(feature = "std")]
    if mode.starts_with("builder") {
        return daemonic::Daemonize::new()
            .pid_file(dir.join("d.pid"))
            .working_directory(dir)
            .ready_timeout(Some(timeout))
            .allow_threads(allow)
            .start()
            .map_err(daemonic::Error::from);
    }
    let _ = (mode, dir, timeout, allow);
    plan.start()
}

fn tally(mode: &str, starts: usize) -> String {
    let mut command = common::helper("host", &[&starts.to_string(), mode]);
    // The load threads print a lot, to /dev/null; the tally is on stderr.
    command.stdout(std::process::Stdio::null());
    // Four hosts of nine busy threads each share the machine's cores.
    let output = common::run_keeping_stdout_for(&mut command, Duration::from_secs(60));
    let text = common::stderr(&output);
    let last = text
        .lines()
        .rev()
        .find(|line| line.starts_with("attempts="))
        .unwrap_or("")
        .to_string();
    assert!(output.status.success(), "host failed: {text}");
    println!("threaded host, {mode}: {last}");
    last
}

fn five_hundred_starts_under_load_never_hang() {
    every_start_ready_and_reaped("library", STARTS);
}

fn exec_starts_under_load_never_hang() {
    every_start_ready_and_reaped("exec", EXEC_STARTS);
}

#[cfg(feature = "std")]
fn builder_daemons_drop_their_handle_under_load() {
    every_start_ready_and_reaped("builder", BUILDER_STARTS);
}

/// Runs the host in `mode`: no hang, no error, every daemon ready and
/// reaped, nothing left.
fn every_start_ready_and_reaped(mode: &str, starts: usize) {
    let tally = tally(mode, starts);
    let count = |key| field(&tally, key).unwrap().parse::<usize>().unwrap();
    assert_eq!(count("hangs"), 0, "{tally}");
    assert_eq!(count("errors"), 0, "{tally}");
    assert_eq!(count("ready"), starts, "{tally}");
    assert_eq!(count("reaped"), starts, "{tally}");
    assert_eq!(count("leftover"), 0, "{tally}");
}

/// By default a daemon that would return into the code of a process with
/// other threads is refused before anything forks, saying how many threads
/// and what to do; the plan and the builder alike. (An exec needs no
/// allowing: `exec_starts_under_load_never_hang` starts from the same host
/// without it.)
fn threaded_caller_is_refused_unless_allowed() {
    let mut modes = vec!["library-refused"];
    if cfg!(feature = "std") {
        modes.push("builder-refused");
    }
    for mode in modes {
        let mut command = common::helper("host", &["3", mode]);
        command.stdout(std::process::Stdio::null());
        let output = common::run_keeping_stdout_for(&mut command, Duration::from_secs(60));
        let text = common::stderr(&output);
        let tally = text
            .lines()
            .find(|line| line.starts_with("attempts="))
            .unwrap_or("");
        let count = |key| field(tally, key).unwrap().parse::<usize>().unwrap();
        assert_eq!(count("errors"), 3, "{mode}: {text}");
        assert_eq!(
            count("ready") + count("hangs") + count("leftover"),
            0,
            "{mode}: {text}"
        );
        // Nine threads: the main one and eight loading.
        assert!(
            text.contains(
                "refusing to fork a daemon that returns into this program from a process with 9 threads"
            ),
            "{mode}: {text}"
        );
        assert!(text.contains("or allow_threads"), "{mode}: {text}");
    }
}

fn control_allocating_after_fork_hangs() {
    let tally = tally("control", CONTROL_STARTS);
    let hangs = field(&tally, "hangs").unwrap().parse::<usize>().unwrap();
    assert!(
        hangs >= 1,
        "no daemon hung although each allocated after fork: {tally}"
    );
}
