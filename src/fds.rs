//! Closing the file descriptors the daemon inherited (daemon(7) step 1),
//! except those it must keep.
//!
//! Three ways, fastest first, each falling back to the next:
//! `close_range(2)` over the gaps between kept fds (Linux, FreeBSD), or
//! where the system has `closefrom(2)` instead (NetBSD, OpenBSD,
//! DragonFly), `closefrom` above the highest kept fd and a loop below it;
//! walking `/proc/self/fd` with `getdents64` into a stack buffer (Linux;
//! cost: the fds actually open); a loop up to the `RLIMIT_NOFILE` hard
//! limit (cost: one system call per possible fd, a million where the limit
//! is 1,048,576; macOS and illumos, which have neither call in a form safe
//! after fork, go this way).

#[cfg(daemonic_procfs)]
use core::mem::MaybeUninit;

#[cfg(daemonic_procfs)]
use rustix::fd::AsRawFd;
use rustix::fd::{BorrowedFd, RawFd};
#[cfg(any(
    daemonic_procfs,
    daemonic_closefrom,
    not(any(daemonic_close_range_syscall, daemonic_close_range_libc))
))]
use rustix::io::Errno;
use rustix::io::{self, FdFlags};

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
#[cfg(not(all(
    daemonic_closefrom,
    not(any(daemonic_close_range_syscall, daemonic_close_range_libc))
)))]
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

/// `CLOSE_RANGE_CLOEXEC`: the same bit on Linux and FreeBSD.
#[cfg(any(daemonic_close_range_syscall, daemonic_close_range_libc))]
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// [`close_range(2)`](https://man7.org/linux/man-pages/man2/close_range.2.html),
/// Linux 5.9 (`CLOSE_RANGE_CLOEXEC`: 5.11), as the raw system call (glibc
/// has no wrapper before 2.34). `ENOSYS` (older kernels, seccomp sandboxes)
/// or `EINVAL` (an unknown flag) send the caller to the fallbacks.
#[cfg(daemonic_close_range_syscall)]
fn close_range(first: u32, last: u32, cloexec: bool) -> io::Result<()> {
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

/// [`close_range(2)`](https://man.freebsd.org/cgi/man.cgi?query=close_range&sektion=2),
/// FreeBSD 12.2, through the C library's function (the system call's own
/// wrapper: async-signal-safe).
#[cfg(daemonic_close_range_libc)]
fn close_range(first: u32, last: u32, cloexec: bool) -> io::Result<()> {
    let flags = if cloexec {
        CLOSE_RANGE_CLOEXEC as libc::c_int
    } else {
        0
    };
    // SAFETY: as above.
    let rc = unsafe { libc::close_range(first, last, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(crate::fork::last_errno())
    }
}

/// Where there is no `close_range` but a `closefrom(2)` system call: the
/// gaps below the highest kept fd one by one (kept fds are few and low),
/// everything above it with `closefrom`. `closefrom` cannot mark
/// close-on-exec: that mode goes on to the fallbacks.
#[cfg(all(
    daemonic_closefrom,
    not(any(daemonic_close_range_syscall, daemonic_close_range_libc))
))]
fn close_gaps(keep: &KeepList<'_>, cloexec: bool) -> io::Result<()> {
    if cloexec {
        return Err(Errno::NOSYS);
    }
    let mut highest: RawFd = 2;
    let mut fd = 3;
    while let Some(kept) = keep.next_kept(fd) {
        for gap in fd..kept {
            close_one(gap, false);
        }
        highest = kept;
        match kept.checked_add(1) {
            Some(next) => fd = next,
            None => return Ok(()),
        }
    }
    // SAFETY: closefrom takes a plain integer and closes what the daemon
    // neither keeps nor uses (see close_range).
    unsafe { libc::closefrom(highest + 1) };
    Ok(())
}

#[cfg(not(any(daemonic_close_range_syscall, daemonic_close_range_libc)))]
#[cfg_attr(daemonic_closefrom, allow(dead_code))]
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
        unsafe { close_raw(fd) };
    }
}

/// `close(2)` as the system call itself where the children share the
/// caller's memory (`clone(CLONE_VM)`): the C library's `close` is a
/// cancellation point, which looks at the calling thread's cancellation
/// state, here the caller's.
///
/// # Safety
///
/// As `close`: nothing may use `fd` afterwards.
#[cfg(daemonic_clone_vm)]
unsafe fn close_raw(fd: RawFd) {
    // SAFETY: forwarded as received.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// `close(2)` through the C library.
///
/// # Safety
///
/// As `close`: nothing may use `fd` afterwards.
#[cfg(not(daemonic_clone_vm))]
unsafe fn close_raw(fd: RawFd) {
    // SAFETY: forwarded as received.
    unsafe { libc::close(fd) };
}

#[cfg(all(test, daemonic_close_range_syscall))]
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
