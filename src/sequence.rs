//! The daemonizing sequence after the first fork, one step a function, in
//! the order daemon(7) gives them.
//!
//! Everything here runs in a child of a possibly multithreaded process, so
//! it is only system calls on data prepared before the fork: no allocation,
//! no lock, no panic, no formatting. A failing step reports itself through
//! the report pipe and ends the process with `_exit`.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{CWD, Mode};
use rustix::io::Errno;
use rustix::process::Pid;

use crate::daemon::Daemon;
use crate::error::Step;
use crate::fork::{Forked, exit_now, fork};
use crate::pidfile;
use crate::plan::{Plan, Readiness};
use crate::report::{self, Record};
use crate::stdio::{self, Stream};

/// Exit status of a session leader or daemon that reported a failure.
const FAILED: i32 = 1;

/// Runs the child's part of the sequence. Returns only in the daemon.
pub(crate) fn run<'a>(plan: &Plan<'a>, report: OwnedFd, start_dir: Option<OwnedFd>) -> Daemon<'a> {
    new_session(&report);
    fork_daemon(&report);
    let pid = rustix::process::getpid();
    let dir = match &start_dir {
        Some(fd) => fd.as_fd(),
        None => CWD,
    };
    let failed = |step, errno| fail(&report, step, errno, pid);
    set_umask(plan);
    change_directory(plan).unwrap_or_else(|e| failed(Step::ChangeDirectory, e));
    stdio::redirect(&plan.stdin, Stream::Stdin, dir)
        .unwrap_or_else(|e| failed(Step::RedirectStdin, e));
    stdio::redirect(&plan.stdout, Stream::Stdout, dir)
        .unwrap_or_else(|e| failed(Step::RedirectStdout, e));
    stdio::redirect(&plan.stderr, Stream::Stderr, dir)
        .unwrap_or_else(|e| failed(Step::RedirectStderr, e));
    write_pid_file(plan, dir, pid).unwrap_or_else(|e| failed(Step::PidFile, e));
    // The start directory stays open only to find a relative PID file again.
    let pid_dir = start_dir.filter(|_| plan.pid_file.is_some_and(|p| !is_absolute(p)));
    let mut daemon = Daemon::new(pid, plan.pid_file, pid_dir, report);
    if plan.readiness == Readiness::WhenStarted {
        // The caller learns of a failed report as a vanished daemon.
        let _ = daemon.ready();
    }
    daemon
}

/// Step 6 of daemon(7): `setsid()` in the first child, leaving the caller's
/// session and with it any controlling terminal.
fn new_session(report: &OwnedFd) {
    if let Err(errno) = rustix::process::setsid() {
        fail(report, Step::NewSession, errno, rustix::process::getpid());
    }
}

/// Steps 7 and 8: fork again, so the daemon is not a session leader and can
/// never acquire a controlling terminal, and `_exit` in the session leader at
/// once. It tells the caller the daemon's PID first, so that a daemon that
/// dies silently can still be named.
fn fork_daemon(report: &OwnedFd) {
    match fork() {
        Ok(Forked::Child) => {}
        Ok(Forked::Parent(daemon)) => {
            let _ = report::send(report, Record::Forked(daemon));
            exit_now(0);
        }
        Err(errno) => fail(report, Step::SecondFork, errno, rustix::process::getpid()),
    }
}

/// Step 10: the file mode creation mask. `umask(2)` cannot fail.
fn set_umask(plan: &Plan<'_>) {
    rustix::process::umask(Mode::from_raw_mode(plan.umask));
}

/// Step 11: the working directory, `/` unless told otherwise.
fn change_directory(plan: &Plan<'_>) -> Result<(), Errno> {
    rustix::process::chdir(plan.working_directory)
}

/// Step 12: the PID file, written by the daemon so the PID is its own.
fn write_pid_file(plan: &Plan<'_>, dir: BorrowedFd<'_>, pid: Pid) -> Result<(), Errno> {
    match plan.pid_file {
        Some(path) => pidfile::write(dir, path, pid),
        None => Ok(()),
    }
}

/// Reports a failed step and ends the process. Nothing of this start is
/// left: the PID file is the last step, so no earlier failure leaves one.
pub(crate) fn fail(report: &OwnedFd, step: Step, errno: Errno, pid: Pid) -> ! {
    let _ = report::send(report, Record::Failed { step, errno, pid });
    exit_now(FAILED)
}

fn is_absolute(path: &core::ffi::CStr) -> bool {
    path.to_bytes().first() == Some(&b'/')
}
