//! `--status` and `--stop`: what the PID file proves, and acting on it.
//!
//! A PID file alone proves nothing: the process may be gone and its number
//! reused, and anyone who can open the file can lock it. So a PID is acted
//! on only once the process it names is seen holding the very file open
//! (`/proc/PID/fd`), and it is signalled through a pidfd taken before that
//! check, which can never reach a later process that reused the number.

use core::ffi::CStr;
use core::mem::MaybeUninit;
use core::time::Duration;

use daemonic::fd::{AsFd, AsRawFd, OwnedFd};
use daemonic::{Errno, Error, Pid};
use rustix::fs::{FlockOperation, Mode, OFlags, RawDir};

use crate::out::Line;
use crate::procfs::{field, proc_file, read_small, stat_fields};
use crate::{exit, sys};

/// What a PID file says about its daemon.
enum Holder {
    /// Proven: this process holds the file open. Its pidfd, the file and
    /// the session it runs in.
    Daemon {
        pid: i32,
        pidfd: OwnedFd,
        file: OwnedFd,
        session: Option<i32>,
    },
    /// Locked, the PID named lives, but nothing can prove it is the holder
    /// (no `/proc`, or another user's process): why.
    Unproven {
        pid: i32,
        pidfd: OwnedFd,
        file: OwnedFd,
        why: Errno,
    },
    /// Locked, but not by the process the file names.
    Foreign {
        named: Option<i32>,
        holder: Option<i32>,
    },
    /// Not locked: the daemon is gone, the file stayed (the PID it names).
    Stale(Option<i32>),
    /// No PID file.
    Missing,
    /// The file must not be used or cannot be read.
    Unknown(Unknown),
}

/// Why a PID file cannot be used.
enum Unknown {
    SymbolicLink,
    CannotRead(Errno),
    Untrusted(Error),
    CannotLock(Errno),
}

impl Unknown {
    fn write(&self, line: &mut Line, path: &CStr) {
        match self {
            Unknown::SymbolicLink => line.c(path).text(b": is a symbolic link"),
            Unknown::CannotRead(errno) => {
                line.text(b"cannot read ").c(path).text(b": ").errno(*errno)
            }
            Unknown::Untrusted(error) => line.c(path).text(b": ").error(error),
            Unknown::CannotLock(errno) => {
                line.text(b"cannot lock ").c(path).text(b": ").errno(*errno)
            }
        };
    }
}

fn inspect(path: &CStr) -> Holder {
    // O_NONBLOCK: a FIFO planted here must not hang the open; it is
    // refused right after as not a regular file.
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(file) => file,
        Err(Errno::NOENT) => return Holder::Missing,
        Err(Errno::LOOP) => return Holder::Unknown(Unknown::SymbolicLink),
        Err(errno) => return Holder::Unknown(Unknown::CannotRead(errno)),
    };
    if let Err(error) = daemonic::proof::check_pid_file(path, file.as_fd()) {
        return Holder::Unknown(Unknown::Untrusted(error));
    }
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => return Holder::Stale(read_pid(&file, false)),
        Err(Errno::WOULDBLOCK) => {}
        Err(errno) => return Holder::Unknown(Unknown::CannotLock(errno)),
    }
    let foreign = |named: Option<i32>| Holder::Foreign {
        named,
        holder: holder(&file, named),
    };
    let Some(pid) = read_pid(&file, true) else {
        return foreign(None);
    };
    // Never PID 1 or this process, whatever the file says.
    if pid == 1 || pid == own_pid() {
        return foreign(Some(pid));
    }
    // The pidfd first: from here on the PID cannot be reused under us.
    let Ok(pidfd) = pidfd_open(pid) else {
        return foreign(Some(pid));
    };
    let named = Pid::from_raw(pid).unwrap_or(Pid::INIT);
    match daemonic::proof::holds(named, file.as_fd()) {
        Ok(true) => Holder::Daemon {
            pid,
            session: session_of(pid),
            pidfd,
            file,
        },
        Ok(false) => foreign(Some(pid)),
        Err(_) if exited(&pidfd, Duration::ZERO) => foreign(Some(pid)),
        Err(why) => Holder::Unproven {
            pid,
            pidfd,
            file,
            why,
        },
    }
}

/// The process holding `file` open, other than `skip`, if one is seen.
fn holder(file: &OwnedFd, skip: Option<i32>) -> Option<i32> {
    daemonic::proof::find_holder(file.as_fd(), skip.and_then(Pid::from_raw))
        .ok()
        .flatten()
        .map(Pid::as_raw_pid)
}

fn own_pid() -> i32 {
    rustix::process::getpid().as_raw_pid()
}

/// The PID in the file (digits and a newline, as daemons write it). With
/// `wait`, a daemon between its lock and its write gets 200 ms to write.
fn read_pid(file: &OwnedFd, wait: bool) -> Option<i32> {
    let rounds = if wait { 50 } else { 1 };
    for _ in 0..rounds {
        let mut buf = [0u8; 16];
        if let Ok(len) = rustix::io::pread(file, &mut buf, 0) {
            let text = &buf[..len];
            let digits = text.strip_suffix(b"\n").unwrap_or(text);
            if let Some(pid) = sys::parse_pid(digits).filter(|&pid| pid > 0) {
                return Some(pid);
            }
        }
        sys::sleep(Duration::from_millis(4));
    }
    None
}

/// `--status`, with LSB's exit statuses.
#[inline(never)]
pub fn status(path: &CStr, trust: bool) -> i32 {
    let mut line = Line::daemonic();
    match inspect(path) {
        Holder::Daemon { pid, .. } => {
            line.text(b"running as PID ").num(pid.into()).print();
            exit::STATUS_RUNNING
        }
        Holder::Unproven { pid, .. } if trust => {
            line.text(b"running as PID ")
                .num(pid.into())
                .text(b" (as the locked PID file says; not verified)")
                .print();
            exit::STATUS_RUNNING
        }
        Holder::Unproven { pid, why, .. } => {
            unproven(&mut line, pid, why).eprint();
            exit::STATUS_UNKNOWN
        }
        Holder::Foreign { named, holder } => {
            foreign(&mut line, named, holder)
                .text(b": cannot tell whether the daemon runs")
                .eprint();
            exit::STATUS_UNKNOWN
        }
        Holder::Stale(pid) => {
            line.text(b"not running, but ").c(path).text(b" remains");
            if let Some(pid) = pid {
                line.text(b" (it names ").num(pid.into()).text(b")");
            }
            line.print();
            exit::STATUS_DEAD_PID_FILE
        }
        Holder::Missing => {
            line.text(b"not running").print();
            exit::STATUS_NOT_RUNNING
        }
        Holder::Unknown(why) => {
            line.text(b"cannot tell: ");
            why.write(&mut line, path);
            line.eprint();
            exit::STATUS_UNKNOWN
        }
    }
}

fn unproven(line: &mut Line, pid: i32, why: Errno) -> &mut Line {
    line.text(b"the PID file names PID ")
        .num(pid.into())
        .text(b", but nothing proves it is the daemon (cannot read /proc/")
        .num(pid.into())
        .text(b"/fd: ")
        .errno(why)
        .text(b"); --trust-pidfile accepts the file's word")
}

fn foreign(line: &mut Line, named: Option<i32>, holder: Option<i32>) -> &mut Line {
    line.text(b"the PID file is held by ");
    by(line, holder);
    match named {
        Some(pid) => line
            .text(b", not by PID ")
            .num(pid.into())
            .text(b" which it names"),
        None => line.text(b" and names no PID"),
    }
}

/// `PID 812 (sleep)`, or `another process`.
fn by(line: &mut Line, holder: Option<i32>) -> &mut Line {
    match holder {
        Some(pid) => {
            let mut path = [0u8; 32];
            let mut name = [0u8; 64];
            let comm = proc_file(pid, b"/comm", &mut path)
                .and_then(|path| read_small(path, &mut name))
                .map_or(&b"?"[..], |text| text.strip_suffix(b"\n").unwrap_or(text));
            line.text(b"PID ")
                .num(pid.into())
                .text(b" (")
                .text(comm)
                .text(b")")
        }
        None => line.text(b"another process"),
    }
}

/// `--stop`: signal the proven daemon, wait until it is gone and its lock
/// released; after `timeout`, SIGKILL what is left of its session, then it.
#[inline(never)]
pub fn stop(path: &CStr, signal: i32, timeout: Duration, trust: bool) -> i32 {
    let mut line = Line::daemonic();
    let (pid, pidfd, file, session) = match inspect(path) {
        Holder::Daemon {
            pid,
            pidfd,
            file,
            session,
        } => (pid, pidfd, file, session),
        Holder::Unproven {
            pid, pidfd, why, ..
        } if !trust => {
            // One who may not signal it hears that first: it is the answer.
            if let Err(errno) = send(&pidfd, 0) {
                cannot_signal(&mut line, pid, errno);
            } else {
                unproven(&mut line, pid, why);
            }
            line.eprint();
            return exit::STOP_UNKNOWN;
        }
        Holder::Unproven {
            pid, pidfd, file, ..
        } => (pid, pidfd, file, session_of(pid)),
        Holder::Foreign { named, holder } => {
            foreign(&mut line, named, holder)
                .text(b": not signalling anything")
                .eprint();
            return exit::STOP_UNKNOWN;
        }
        Holder::Stale(_) | Holder::Missing => {
            line.text(b"not running").eprint();
            return exit::STOP_NOT_RUNNING;
        }
        Holder::Unknown(why) => {
            line.text(b"cannot stop: ");
            why.write(&mut line, path);
            line.eprint();
            return exit::STOP_UNKNOWN;
        }
    };
    if let Err(errno) = send(&pidfd, signal) {
        cannot_signal(&mut line, pid, errno).eprint();
        return exit::STOP_UNKNOWN;
    }
    let deadline = sys::now() + timeout;
    let gone = exited(&pidfd, timeout);
    if gone && released_by(&file, deadline) {
        remove_if_stale(path, &file);
        return exit::STOP_DONE;
    }
    line.text(b"PID ").num(pid.into());
    if gone {
        line.text(b" is gone, but its children still hold ").c(path);
    } else {
        line.text(b" still running after ")
            .secs(timeout)
            .text(b" s");
    }
    line.text(b": sending SIGKILL").eprint();
    // What the daemon started first (a supervisor then sees its program
    // end and removes its files itself), then the daemon.
    let others = session.map_or(0, |session| kill_session(session, pid));
    if !gone && (others == 0 || !exited(&pidfd, Duration::from_secs(1))) {
        let _ = send(&pidfd, libc::SIGKILL);
    }
    let mut line = Line::daemonic();
    if !exited(&pidfd, Duration::from_secs(5)) {
        line.text(b"PID ")
            .num(pid.into())
            .text(b" survived SIGKILL")
            .eprint();
        return exit::STOP_UNKNOWN;
    }
    if !released_by(&file, sys::now() + Duration::from_secs(5)) {
        line.text(b"PID ").num(pid.into()).text(b" is gone, but ");
        by(&mut line, holder(&file, None))
            .text(b" still holds ")
            .c(path)
            .eprint();
        return exit::STOP_UNKNOWN;
    }
    remove_if_stale(path, &file);
    exit::STOP_DONE
}

fn cannot_signal(line: &mut Line, pid: i32, errno: Errno) -> &mut Line {
    line.text(b"cannot signal PID ")
        .num(pid.into())
        .text(b": ")
        .errno(errno)
}

/// [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    let pid = Pid::from_raw(pid).ok_or(Errno::SRCH)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
}

/// [`pidfd_send_signal(2)`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html),
/// with any signal number (0 checks permission only).
fn send(pidfd: &OwnedFd, signal: i32) -> Result<(), Errno> {
    // SAFETY: a pidfd we own, a signal number, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            core::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    sys::check(rc as libc::c_long).map(drop)
}

/// Whether the process behind `pidfd` has exited, waiting up to `timeout`:
/// a pidfd turns readable the moment it does, so this returns then, not
/// at the next poll of a loop.
fn exited(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = sys::now() + timeout;
    loop {
        if sys::readable([pidfd.as_raw_fd()], sys::millis_until(deadline))[0] {
            return true;
        }
        if sys::now() >= deadline {
            return false;
        }
    }
}

/// Waits until the lock on `file` can be had, up to `deadline`.
fn released_by(file: &OwnedFd, deadline: Duration) -> bool {
    loop {
        if rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            return true;
        }
        if sys::now() >= deadline {
            return false;
        }
        sys::sleep(Duration::from_millis(2));
    }
}

/// The session a process runs in, from `/proc/PID/stat`.
fn session_of(pid: i32) -> Option<i32> {
    let mut buf = [0u8; 512];
    sys::parse_pid(field(stat_fields(pid, &mut buf)?, 3)?)
}

/// SIGKILLs every process of the daemon's session but the daemon: what it
/// started. Only a session of the daemon's own: one whose leader was the
/// daemon's first child (gone) or is the daemon, never this process's.
/// Each process is pinned with a pidfd before its session is checked, so a
/// reused PID is never signalled. How many were signalled.
fn kill_session(session: i32, daemon: i32) -> usize {
    let mut path = [0u8; 32];
    let leader_gone =
        proc_file(session, b"", &mut path).is_none_or(|path| rustix::fs::stat(path).is_err());
    if session_of(own_pid()) == Some(session) || !(session == daemon || leader_gone) {
        return 0;
    }
    let Ok(proc) = rustix::fs::open(
        c"/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return 0;
    };
    let mut dir_buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut entries = RawDir::new(&proc, &mut dir_buf);
    let mut signalled = 0;
    while let Some(entry) = entries.next() {
        let Some(pid) = entry
            .ok()
            .and_then(|e| sys::parse_pid(e.file_name().to_bytes()))
        else {
            continue;
        };
        if pid == daemon || pid <= 1 || pid == own_pid() {
            continue;
        }
        let Ok(pidfd) = pidfd_open(pid) else {
            continue;
        };
        if session_of(pid) == Some(session) && send(&pidfd, libc::SIGKILL).is_ok() {
            signalled += 1;
        }
    }
    signalled
}

/// A daemon that could not remove its PID file (a program executed without
/// `--supervise` does not know it has one): remove it, while `file` holds
/// the exclusive lock, if the path still names that file.
fn remove_if_stale(path: &CStr, file: &OwnedFd) {
    if rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive).is_err() {
        return;
    }
    let (Ok(held), Ok(now)) = (rustix::fs::fstat(file), rustix::fs::lstat(path)) else {
        return;
    };
    if held.st_ino == now.st_ino && held.st_dev == now.st_dev {
        let _ = rustix::fs::unlink(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_from_stat() {
        let mut stat = [0u8; 512];
        let own = rustix::process::getpid().as_raw_pid();
        let fields = stat_fields(own, &mut stat).expect("/proc/self/stat");
        assert_eq!(session_of(own), sys::parse_pid(field(fields, 3).unwrap()));
    }
}
