//! A program that starts a daemon through [`daemonic::Plan`] as its
//! `key=value` arguments say, and prints what `start` returned:
//!
//! - in the caller, one line: `parent pid=N` or `error step=STEP errno=N
//!   pid=N message=TEXT`, then ` forks=N` (forks this process made) and,
//!   with `subreaper=1`, ` left=N` (its descendants still running once the
//!   error came back);
//! - in the daemon, what `then=` says: `serve` (default: run until SIGTERM,
//!   then remove the PID file and exit 0), `fail:ERRNO` (report that error),
//!   `drop` (drop the handle without reporting), `hang` (never report),
//!   `exit:N`.
//!
//! Other keys: `pid_file`, `cwd`, `umask` (octal), `stdin`/`stdout`/`stderr`
//! (`null`, `inherit`, `fd:N` or a path), `readiness=manual`, `timeout_ms`
//! (0: none), `delay_ms=N` (the daemon's set-up time before it reports
//! ready), `marker=PATH` (created just before reporting ready), `say=1`
//! (the daemon writes a line to its stdout and stderr).

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use daemonic::{Error, Plan, Readiness, Started, Stdio};

static FORKS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_fork() {
    FORKS.fetch_add(1, Ordering::SeqCst);
}

pub fn run(args: Vec<String>) {
    let options: HashMap<String, String> = args
        .iter()
        .map(|arg| {
            let (key, value) = arg.split_once('=').expect("key=value");
            (key.to_string(), value.to_string())
        })
        .collect();
    let c = |key: &str| {
        options
            .get(key)
            .map(|v| CString::new(v.as_bytes()).unwrap())
    };
    // SAFETY: registers a handler that only bumps an atomic counter.
    unsafe { libc::pthread_atfork(Some(count_fork), None, None) };
    if options.get("subreaper").is_some_and(|v| v == "1") {
        super::become_subreaper();
    }

    let (pid_file, cwd) = (c("pid_file"), c("cwd"));
    let streams = [c("stdin"), c("stdout"), c("stderr")];
    let stdio = |i: usize| -> Stdio<'_> {
        match streams[i].as_deref().map(|s| s.to_str().unwrap()) {
            None | Some("null") => Stdio::Null,
            Some("inherit") => Stdio::Inherit,
            Some(fd) if fd.starts_with("fd:") => {
                let n = fd[3..].parse().unwrap();
                // SAFETY: the test passes fds it opened for this process.
                Stdio::Fd(unsafe { daemonic::fd::BorrowedFd::borrow_raw(n) })
            }
            Some(_) => Stdio::File(streams[i].as_deref().unwrap()),
        }
    };
    let mut plan = Plan::new()
        .stdin(stdio(0))
        .stdout(stdio(1))
        .stderr(stdio(2));
    if let Some(path) = pid_file.as_deref() {
        plan = plan.pid_file(path);
    }
    if let Some(dir) = cwd.as_deref() {
        plan = plan.working_directory(dir);
    }
    if let Some(mask) = options.get("umask") {
        plan = plan.umask(u32::from_str_radix(mask, 8).unwrap());
    }
    if options.get("readiness").is_some_and(|v| v == "manual") {
        plan = plan.readiness(Readiness::Manual);
    }
    if let Some(ms) = options.get("timeout_ms") {
        let ms: u64 = ms.parse().unwrap();
        plan = plan.ready_timeout((ms > 0).then(|| Duration::from_millis(ms)));
    }

    match plan.start() {
        Ok(Started::Parent(parent)) => {
            println!(
                "parent pid={} forks={}",
                parent.pid().as_raw_pid(),
                FORKS.load(Ordering::SeqCst)
            );
        }
        Err(error) => {
            let (step, errno) = match error {
                Error::Os { step, errno } => (format!("{step:?}"), errno.raw_os_error()),
                _ => (String::from("none"), 0),
            };
            let pid = match error {
                Error::Vanished { pid } | Error::NotReady { pid, .. } => {
                    pid.map_or(0, |p| p.as_raw_pid())
                }
                _ => 0,
            };
            let left = if options.get("subreaper").is_some_and(|v| v == "1") {
                descendants_left().to_string()
            } else {
                String::from("unknown")
            };
            println!(
                "error step={step} errno={errno} pid={pid} forks={} left={left} message={error}",
                FORKS.load(Ordering::SeqCst)
            );
            std::process::exit(1);
        }
        Ok(Started::Daemon(mut daemon)) => {
            if options.get("say").is_some_and(|v| v == "1") {
                let _ = writeln!(std::io::stdout(), "daemon stdout");
                let _ = writeln!(std::io::stderr(), "daemon stderr");
            }
            let then = options.get("then").map_or("serve", String::as_str);
            if let Some(errno) = then.strip_prefix("fail:") {
                daemon.fail(daemonic::Errno::from_raw_os_error(errno.parse().unwrap()));
            }
            if let Some(status) = then.strip_prefix("exit:") {
                std::process::exit(status.parse().unwrap());
            }
            if then == "hang" {
                // Keeps the report pipe open and never reports.
                std::thread::sleep(Duration::from_secs(60));
                std::process::exit(0);
            }
            if then == "drop" {
                // Closes the report pipe without a word, keeps running.
                drop(daemon);
                std::thread::sleep(Duration::from_secs(60));
                std::process::exit(0);
            }
            let signals = block_term();
            if let Some(ms) = options.get("delay_ms") {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            }
            if let Some(marker) = options.get("marker") {
                std::fs::write(marker, b"ready").unwrap();
            }
            let _ = daemon.ready();
            wait_for(&signals, 60);
            drop(daemon);
            std::process::exit(0);
        }
    }
}

/// After a failed start: how many of our descendants are still running once
/// the zombies among them are reaped (bounded wait of 2 s for exits).
fn descendants_left() -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes into our local.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc < 0 {
            return 0; // ECHILD: no children at all
        }
        if rc == 0 {
            if std::time::Instant::now() > deadline {
                return std::fs::read_to_string(format!(
                    "/proc/self/task/{}/children",
                    std::process::id()
                ))
                .map(|text| text.split_whitespace().count())
                .unwrap_or(1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn block_term() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before it is read.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for(set: &libc::sigset_t, seconds: i64) {
    let timeout = libc::timespec {
        tv_sec: seconds,
        tv_nsec: 0,
    };
    // SAFETY: valid set and timespec; a null info pointer is allowed.
    unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
}
