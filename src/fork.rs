//! `fork` and `_exit`: the two calls rustix leaves to libc.
//!
//! rustix's own `kernel_fork` bypasses libc, which would leave libc's state
//! (its cached thread id, its `pthread_atfork` handlers, the locks of its
//! `malloc`) wrong in the child. The daemon goes on to run the program's own
//! code, which may call into libc, so the fork must be libc's.

use rustix::io::{self, Errno};
use rustix::process::Pid;

/// Which side of a fork this process is on.
pub(crate) enum Forked {
    /// The original process; the child has this PID.
    Parent(Pid),
    /// The new process.
    Child,
}

/// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html).
///
/// After it returns [`Forked::Child`] in a multithreaded program, only
/// async-signal-safe work may follow: the callers in this crate run plain
/// system calls on data prepared before the fork.
pub(crate) fn fork() -> io::Result<Forked> {
    // SAFETY: `fork` has no preconditions of its own. What makes the child
    // sound is the code that follows it: the sequence runs only system calls
    // on memory prepared before the fork, touching no lock and no allocator,
    // until it returns to the program in the daemon (documented on `start`).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(last_errno()),
        0 => Ok(Forked::Child),
        // A positive PID from fork is a valid PID.
        pid => Ok(Forked::Parent(Pid::from_raw(pid).ok_or(Errno::INVAL)?)),
    }
}

/// [`_exit(2)`](https://man7.org/linux/man-pages/man2/_exit.2.html): ends the
/// process at once, running no `atexit` handler and flushing no stdio buffer,
/// both of which belong to the original process and would run twice.
pub(crate) fn exit_now(status: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and takes any status.
    unsafe { libc::_exit(status) }
}

/// The errno libc set for the call that just failed.
pub(crate) fn last_errno() -> Errno {
    // SAFETY: each of these returns a pointer to the calling thread's errno,
    // valid for the thread's life; we read it right after the failed call.
    let raw = unsafe { *errno_location() };
    Errno::from_raw_os_error(raw)
}

#[cfg(any(target_os = "illumos", target_os = "solaris"))]
use libc::___errno as errno_location;
#[cfg(target_os = "android")]
use libc::__errno as errno_location;
#[cfg(any(target_os = "netbsd", target_os = "openbsd"))]
use libc::__errno as errno_location;
#[cfg(any(target_os = "linux", target_os = "redox"))]
use libc::__errno_location as errno_location;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "dragonfly"
))]
use libc::__error as errno_location;
