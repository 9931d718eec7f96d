//! Closing the file descriptors the daemon inherited (daemon(7) step 1),
//! except those it must keep.
//!
//! Three ways, fastest first, each falling back to the next: Linux's
//! `close_range(2)` over the gaps between kept fds; walking `/proc/self/fd`
//! with `getdents64` into a stack buffer (cost: the fds actually open); a
//! loop up to the `RLIMIT_NOFILE` hard limit (cost: one system call per
//! possible fd, a million where the limit is 1,048,576).

use core::mem::MaybeUninit;

use rustix::fd::{AsRawFd, BorrowedFd, RawFd};
use rustix::io::{self, Errno, FdFlags};

/// What happens to the fds the daemon inherited above 2.
///
/// ```no_run
/// use daemonic::{InheritedFds, Plan};
///
/// // A listening socket bound before the start (fd 3) stays open; every
/// // other inherited fd is closed.
/// let keep = [3];
/// Plan::new().inherited_fds(InheritedFds::Close).keep_fds(&keep).start()?;
/// // Or: keep them all in the daemon, but not in a program it executes.
/// let plan = Plan::new().inherited_fds(InheritedFds::CloseOnExec);
/// # let _ = plan;
/// # Ok::<(), daemonic::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InheritedFds {
    /// Closed, but for those asked to be kept (the default, as daemon(7) and
    /// python-daemon do).
    Close,
    /// Marked close-on-exec instead: the daemon keeps them, a program it
    /// execs does not get them.
    CloseOnExec,
    /// Left alone.
    Keep,
}

/// A way to close a range of fds, for benchmarks and tests that pin one.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// `close_range(2)`, falling back to the others.
    Best,
    /// Walk `/proc/self/fd`, falling back to the loop.
    ProcWalk,
    /// One call per fd up to the `RLIMIT_NOFILE` hard limit.
    Loop,
}

/// The fds to keep: the caller's list and the crate's own (report pipe, PID
/// file, ...), unsorted; the gaps between them are found without sorting,
/// as sorting a borrowed list would need a copy.
pub(crate) struct KeepList<'a> {
    pub(crate) caller: &'a [RawFd],
    pub(crate) own: [RawFd; 6],
}

impl KeepList<'_> {
    fn kept(&self, fd: RawFd) -> bool {
        self.caller.contains(&fd) || self.own.contains(&fd)
    }

    /// The smallest kept fd at or above `fd`.
    fn next_kept(&self, fd: RawFd) -> Option<RawFd> {
        self.caller
            .iter()
            .chain(self.own.iter())
            .copied()
            .filter(|&k| k >= fd)
            .min()
    }
}

/// Closes (or marks close-on-exec) every fd from 3 up that `keep` does not
/// name. Runs after fork: system calls on a stack buffer only.
#[doc(hidden)]
pub fn close_inherited_with(
    keep_caller: &[RawFd],
    own: [RawFd; 6],
    mode: InheritedFds,
    strategy: Strategy,
) -> io::Result<()> {
    let keep = KeepList {
        caller: keep_caller,
        own,
    };
    close_inherited(&keep, mode, strategy)
}

pub(crate) fn close_inherited(
    keep: &KeepList<'_>,
    mode: InheritedFds,
    strategy: Strategy,
) -> io::Result<()> {
    if mode == InheritedFds::Keep {
        return Ok(());
    }
    let cloexec = mode == InheritedFds::CloseOnExec;
    if strategy == Strategy::Best && close_gaps(keep, cloexec).is_ok() {
        return Ok(());
    }
    if strategy != Strategy::Loop {
        #[cfg(daemonic_procfs)]
        match walk_proc(keep, cloexec) {
            Ok(()) => return Ok(()),
            // No /proc (embedded boards, chroots): the loop still works.
            Err(Errno::NOENT | Errno::ACCESS | Errno::NOTDIR | Errno::MFILE | Errno::NFILE) => {}
            Err(errno) => return Err(errno),
        }
    }
    close_by_loop(keep, cloexec)
}

/// `close_range` over each gap between kept fds.
fn close_gaps(keep: &KeepList<'_>, cloexec: bool) -> io::Result<()> {
    let mut first: RawFd = 3;
    loop {
        match keep.next_kept(first) {
            Some(kept) => {
                if kept > first {
                    close_range(first as u32, (kept - 1) as u32, cloexec)?;
                }
                // The highest fd number there is: nothing above it to close
                // (and `kept + 1` would wrap to a negative number).
                let Some(next) = kept.checked_add(1) else {
                    return Ok(());
                };
                first = next;
            }
            None => return close_range(first as u32, u32::MAX, cloexec),
        }
    }
}

/// [`close_range(2)`](https://man7.org/linux/man-pages/man2/close_range.2.html),
/// Linux 5.9 (`CLOSE_RANGE_CLOEXEC`: 5.11), FreeBSD 12.2. `ENOSYS` (older
/// kernels, seccomp sandboxes) or `EINVAL` (an unknown flag) send the caller
/// to the fallbacks.
#[cfg(daemonic_close_range)]
fn close_range(first: u32, last: u32, cloexec: bool) -> io::Result<()> {
    // The same bit on Linux and FreeBSD.
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let flags: libc::c_uint = if cloexec { CLOSE_RANGE_CLOEXEC } else { 0 };
    // SAFETY: close_range takes plain integers; closing fds the daemon does
    // not keep is this function's purpose, and nothing in the daemon's
    // sequence uses them afterwards.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(crate::fork::last_errno())
    }
}

#[cfg(not(daemonic_close_range))]
fn close_range(_first: u32, _last: u32, _cloexec: bool) -> io::Result<()> {
    Err(Errno::NOSYS)
}

/// Walks `/proc/self/fd`, closing as it goes (the kernel lists the fds
/// still open at each read, so closing during the walk is sound).
#[cfg(daemonic_procfs)]
fn walk_proc(keep: &KeepList<'_>, cloexec: bool) -> io::Result<()> {
    use rustix::fs::{Mode, OFlags, RawDir};
    let dir = rustix::fs::open(
        c"/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dir_fd = dir.as_raw_fd();
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(&dir, &mut buf);
    while let Some(entry) = entries.next() {
        let Some(fd) = parse_fd(entry?.file_name().to_bytes()) else {
            continue; // "." and ".."
        };
        if fd > 2 && fd != dir_fd && !keep.kept(fd) {
            close_one(fd, cloexec);
        }
    }
    Ok(())
}

/// One call for every possible fd up to the hard `RLIMIT_NOFILE` limit
/// (fds opened under a higher soft limit may sit above the current one).
fn close_by_loop(keep: &KeepList<'_>, cloexec: bool) -> io::Result<()> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let top = limit
        .maximum
        .or(limit.current)
        .unwrap_or(1 << 20)
        .min(RawFd::MAX as u64) as RawFd;
    for fd in 3..top {
        if !keep.kept(fd) {
            close_one(fd, cloexec);
        }
    }
    Ok(())
}

fn close_one(fd: RawFd, cloexec: bool) {
    if cloexec {
        // SAFETY: the fd is only borrowed for this call; EBADF (not open)
        // is the common, harmless answer.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC);
    } else {
        // Not rustix's `close`: it asserts success in debug builds, and most
        // numbers the loop tries are not open, which must not panic here.
        // SAFETY: the daemon does not use the fds it closes here: they are
        // neither kept nor its own; a number not open is a harmless EBADF.
        unsafe { libc::close(fd) };
    }
}

#[cfg(all(test, daemonic_close_range))]
mod tests {
    use super::*;

    #[test]
    fn keeping_the_highest_fd_number_ends_the_gap_walk() {
        // Before the fix, `kept + 1` wrapped and the walk never ended.
        let keep = KeepList {
            caller: &[RawFd::MAX],
            own: [-1; 6],
        };
        // CLOEXEC on this test process's fds above 2 is harmless: the test
        // binary executes nothing that needs them.
        assert_eq!(close_gaps(&keep, true), Ok(()));
    }
}

#[cfg(daemonic_procfs)]
fn parse_fd(name: &[u8]) -> Option<RawFd> {
    RawFd::try_from(crate::decimal::parse(name)?).ok()
}
