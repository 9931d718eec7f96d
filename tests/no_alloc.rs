//! Nothing allocates after fork: a global allocator counts every call
//! (`alloc`, `realloc` and `dealloc` alike) made by any process other than
//! the one that started the daemon, into memory shared with all of them
//! (`MAP_SHARED`), so the session leader's calls count as well as the
//! daemon's. Counting covers the daemon's whole use of the library: the
//! start, then `ready`, `notify_status`, `remove_pid_file` and dropping the
//! handle; or `notify_status` and `fail` (`fail_at` through the plan). The daemon reads the count once
//! the caller (which reaps the session leader before it exits) is gone; for
//! `fail`, the caller reads it once its start has returned the error.
//!
//! A control allocation in the daemon afterwards must raise the count, or
//! the counter proves nothing.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TempDir, field};

struct CountingAfterFork;

/// The PID of the process that starts the daemon; 0 while not counting.
static ORIGINAL_PID: AtomicI32 = AtomicI32::new(0);
/// The shared counter, once mapped.
static SHARED_COUNT: AtomicPtr<AtomicUsize> = AtomicPtr::new(std::ptr::null_mut());

fn note_call() {
    let original = ORIGINAL_PID.load(Ordering::SeqCst);
    // SAFETY: getpid has no preconditions and never allocates.
    if original != 0 && unsafe { libc::getpid() } != original {
        let shared = SHARED_COUNT.load(Ordering::SeqCst);
        // SAFETY: set once, before counting starts, to a mapping that lives
        // as long as the process.
        unsafe { (*shared).fetch_add(1, Ordering::SeqCst) };
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAfterFork {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_call();
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_call();
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_call();
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_call();
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAfterFork = CountingAfterFork;

fn main() {
    common::main(helper, tests());
}

fn tests() -> Vec<common::Test> {
    #[allow(unused_mut)]
    let mut tests: Vec<common::Test> = vec![
        (
            "plan_allocates_nothing_after_fork",
            plan_allocates_nothing_after_fork,
        ),
        ("plan_fail_allocates_nothing", plan_fail_allocates_nothing),
        ("exec_fail_allocates_nothing", exec_fail_allocates_nothing),
    ];
    #[cfg(feature = "std")]
    tests.push((
        "builder_allocates_nothing_after_fork",
        builder_allocates_nothing_after_fork,
    ));
    #[cfg(feature = "std")]
    tests.push((
        "builder_fail_allocates_nothing",
        builder_fail_allocates_nothing,
    ));
    tests
}

/// `builder DIR` or `plan DIR`: starts a daemon with every option that
/// takes a path, through that API; the daemon uses its handle to the end
/// and writes `DIR/result`. `builder-fail DIR`, `plan-fail DIR`: the daemon
/// fails instead, and the caller writes the result.
fn helper(api: &str, args: Vec<String>) {
    let dir = Path::new(&args[0]);
    start_counting();
    match api {
        #[cfg(feature = "std")]
        "builder-fail" => {
            let socket = std::os::unix::net::UnixDatagram::bind(dir.join("notify")).unwrap();
            let started = daemonic::Daemonize::new()
                .pid_file(dir.join("d.pid"))
                .notify_socket(Some(dir.join("notify")))
                .readiness(daemonic::Readiness::Manual)
                .start();
            match started {
                Ok(daemonic::Started::Daemon(daemon)) => {
                    let _ = daemon.notify_status("failing");
                    daemon.fail(daemonic::Errno::ADDRINUSE);
                }
                outcome => caller_reports(dir, outcome.err().map(daemonic::Error::from), &socket),
            }
        }
        "plan-fail" => {
            let pid_file =
                CString::new(dir.join("d.pid").into_os_string().into_encoded_bytes()).unwrap();
            let plan = daemonic::Plan::new()
                .pid_file(&pid_file)
                .readiness(daemonic::Readiness::Manual);
            match plan.start() {
                Ok(daemonic::Started::Daemon(daemon)) => {
                    let _ = daemon.notify_status("failing");
                    // With a context copied from a stack buffer.
                    let mut what = [0u8; 16];
                    what[..4].copy_from_slice(b"bind");
                    let what = std::str::from_utf8(&what[..4]).unwrap();
                    daemon.fail_at(what, daemonic::Errno::ADDRINUSE);
                }
                outcome => caller_reports_plain(dir, outcome.err(), daemonic::Errno::ADDRINUSE),
            }
        }
        #[cfg(feature = "std")]
        "builder" => {
            // Every step that runs after fork without exec: signals, fds
            // (one kept), core dumps, nice, limits, capabilities (as root),
            // no_new_privs, sd_notify on ready.
            let socket = std::os::unix::net::UnixDatagram::bind(dir.join("notify")).unwrap();
            let kept = std::os::fd::AsRawFd::as_raw_fd(&socket);
            let mut builder = daemonic::Daemonize::new();
            if as_root() {
                builder = builder.capabilities(daemonic::Capabilities::EMPTY.with(10));
            }
            let mut daemon = builder
                .pid_file(dir.join("d.pid"))
                .working_directory(dir)
                .umask(0o027)
                .stdin(daemonic::OwnedStdio::File(dir.join("in")))
                .stdout(daemonic::OwnedStdio::File(dir.join("out")))
                .stderr(daemonic::OwnedStdio::File(dir.join("err")))
                .keep_fds([kept])
                .disable_core_dumps(true)
                .nice(1)
                .limit(daemonic::Limit::new(
                    daemonic::Resource::Nofile,
                    Some(512),
                    Some(1024),
                ))
                .no_new_privileges(true)
                .notify_socket(Some(dir.join("notify")))
                .readiness(daemonic::Readiness::Manual)
                .daemonize()
                .expect("valid input");
            let _ = daemon.ready();
            let _ = daemon.notify_status("serving");
            let _ = daemon.remove_pid_file();
            drop(daemon);
            report(dir);
        }
        "plan" => {
            let c = |name: &str| {
                CString::new(dir.join(name).into_os_string().into_encoded_bytes()).unwrap()
            };
            let (pid_file, input, out, err) = (c("d.pid"), c("in"), c("out"), c("err"));
            let cwd = CString::new(args[0].as_bytes()).unwrap();
            let limits = [daemonic::Limit::new(
                daemonic::Resource::Nofile,
                Some(512),
                Some(1024),
            )];
            let mut plan = daemonic::Plan::new();
            if as_root() {
                plan = plan.capabilities(daemonic::Capabilities::EMPTY.with(10));
            }
            let plan = plan
                .limits(&limits)
                .no_new_privileges(true)
                .pid_file(&pid_file)
                .working_directory(&cwd)
                .stdin(daemonic::Stdio::File(&input))
                .stdout(daemonic::Stdio::File(&out))
                .stderr(daemonic::Stdio::File(&err))
                .readiness(daemonic::Readiness::Manual);
            match plan.start().expect("start") {
                daemonic::Started::Parent(_) => {}
                daemonic::Started::Daemon(mut daemon) => {
                    let _ = daemon.ready();
                    let _ = daemon.notify_status("serving");
                    let _ = daemon.remove_pid_file();
                    drop(daemon);
                    report(dir);
                }
            }
        }
        "exec-fail" => {
            // The exec variant, made with clone(CLONE_VM | CLONE_VFORK) on
            // Linux: the session leader and the daemon share this process's
            // memory, allocator included, until the exec fails and the
            // daemon exits. Every step runs, then execve.
            let c = |name: &str| {
                CString::new(dir.join(name).into_os_string().into_encoded_bytes()).unwrap()
            };
            let (pid_file, out, program) = (c("d.pid"), c("out"), c("no-such-program"));
            let mut slots = [std::ptr::null(); 2];
            let exec = daemonic::Exec {
                program: &program,
                args: daemonic::CStrArray::new(&[&program], &mut slots).unwrap(),
                env: daemonic::Environment::Inherit,
            };
            let plan = daemonic::Plan::new()
                .pid_file(&pid_file)
                .stdout(daemonic::Stdio::File(&out))
                .stderr(daemonic::Stdio::File(&out))
                .exec(exec);
            let outcome = plan.start();
            assert!(
                matches!(
                    outcome,
                    Err(daemonic::Error::Os {
                        step: daemonic::Step::Exec,
                        ..
                    })
                ),
                "{outcome:?}"
            );
            caller_reports_plain(dir, outcome.err(), daemonic::Errno::NOENT)
        }
        other => panic!("no helper {other}"),
    }
}

/// Whether this test runs as root, which keeping capabilities needs.
fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn start_counting() {
    // SAFETY: an anonymous shared mapping of one page, checked below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    SHARED_COUNT.store(page.cast(), Ordering::SeqCst);
    // SAFETY: getpid has no preconditions.
    ORIGINAL_PID.store(unsafe { libc::getpid() }, Ordering::SeqCst);
}

/// In the daemon, with no allocation until the count is read: waits for the
/// caller to be gone, reads the count, allocates once as a control, reads
/// again, and writes both.
fn report(dir: &Path) -> ! {
    let caller = ORIGINAL_PID.load(Ordering::SeqCst);
    for _ in 0..5000 {
        // SAFETY: kill with signal 0 only checks the process exists.
        if unsafe { libc::kill(caller, 0) } != 0 {
            break;
        }
        // SAFETY: usleep has no preconditions.
        unsafe { libc::usleep(1000) };
    }
    // SAFETY: mapped by start_counting before the fork; shared with us.
    let count = unsafe { (*SHARED_COUNT.load(Ordering::SeqCst)).load(Ordering::SeqCst) };
    let control = std::hint::black_box(vec![0u8; 64]);
    drop(control);
    // SAFETY: as above.
    let after = unsafe { (*SHARED_COUNT.load(Ordering::SeqCst)).load(Ordering::SeqCst) };
    fs::write(
        dir.join("result.tmp"),
        format!("count={count} control={after}\n"),
    )
    .unwrap();
    fs::rename(dir.join("result.tmp"), dir.join("result")).unwrap();
    std::process::exit(0);
}

/// In the caller of a start whose daemon failed: the count the daemon (and
/// the session leader) left, with a control allocation made in a child of
/// this process, which counts as they do.
fn caller_reports_plain(
    dir: &Path,
    error: Option<daemonic::Error>,
    expected: daemonic::Errno,
) -> ! {
    assert_eq!(
        error.and_then(|error| error.errno()),
        Some(expected),
        "{error:?}"
    );
    // SAFETY: mapped by start_counting before the fork; shared with us.
    let count = unsafe { (*SHARED_COUNT.load(Ordering::SeqCst)).load(Ordering::SeqCst) };
    // SAFETY: the child allocates once and exits; this process waits for it.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            drop(std::hint::black_box(vec![0u8; 64]));
            libc::_exit(0);
        }
        let mut status = 0;
        libc::waitpid(child, &mut status, 0);
    }
    // SAFETY: as above.
    let after = unsafe { (*SHARED_COUNT.load(Ordering::SeqCst)).load(Ordering::SeqCst) };
    fs::write(
        dir.join("result"),
        format!("count={count} control={after}\n"),
    )
    .unwrap();
    std::process::exit(0);
}

/// As [`caller_reports_plain`]; the notification socket also heard the
/// daemon's `STATUS=` and `ERRNO=`, sent without allocating.
#[cfg(feature = "std")]
fn caller_reports(
    dir: &Path,
    error: Option<daemonic::Error>,
    socket: &std::os::unix::net::UnixDatagram,
) -> ! {
    let mut said = String::new();
    let mut buf = [0u8; 256];
    socket.set_nonblocking(true).unwrap();
    while let Ok(n) = socket.recv(&mut buf) {
        said.push_str(&String::from_utf8_lossy(&buf[..n]));
        said.push(' ');
    }
    assert!(
        said.contains("STATUS=failing") && said.contains("ERRNO=98"),
        "{said}"
    );
    caller_reports_plain(dir, error, daemonic::Errno::ADDRINUSE)
}

fn check(api: &str) {
    let dir = TempDir::new(api);
    fs::write(dir.join("in"), "").unwrap();
    let output = common::run(&mut common::helper(api, &[dir.path().to_str().unwrap()]));
    assert!(output.status.success(), "{output:?}");
    let result = dir.join("result");
    let deadline = Instant::now() + common::PATIENCE;
    while !result.exists() {
        assert!(Instant::now() < deadline, "daemon wrote no result");
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = fs::read_to_string(&result).unwrap();
    println!("{api}: allocator calls after fork: {}", text.trim());
    let count: usize = field(&text, "count").unwrap().parse().unwrap();
    let control: usize = field(&text, "control").unwrap().parse().unwrap();
    assert_eq!(
        count, 0,
        "allocator calls between fork and return in the daemon: {text}"
    );
    assert!(
        control >= 2,
        "the counter missed the control allocation: {text}"
    );
}

#[cfg(feature = "std")]
fn builder_allocates_nothing_after_fork() {
    check("builder");
}

fn plan_allocates_nothing_after_fork() {
    check("plan");
}

fn plan_fail_allocates_nothing() {
    check("plan-fail");
}

fn exec_fail_allocates_nothing() {
    check("exec-fail");
}

#[cfg(feature = "std")]
fn builder_fail_allocates_nothing() {
    check("builder-fail");
}
