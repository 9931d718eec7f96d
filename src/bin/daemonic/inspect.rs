//! What a PID file proves, for `--status`, `--signal` and `--stop`.
//!
//! A PID file alone proves nothing: the process may be gone and its number
//! reused, and anyone who can open the file can lock it. So a PID is acted
//! on only once the process it names is seen holding the very file open
//! (`/proc/PID/fd`), pinned (a pidfd, see [`Pinned`]) before that check.
//!
//! One more kind of proof covers what outlives its daemon: a supervised
//! program that lost its parent-death signal (a set-uid program, or one
//! that changed its own user) and so survived its supervisor. The program
//! holds a copy of the supervisor's locked fd, so the lock is still held;
//! `/proc/PID/fdinfo` shows a `flock` lock only on fds of the description
//! it was taken on, which only the daemon's descendants inherit. A process
//! that took the lock itself (a probe, or someone else's process that
//! opened the file) names itself as its taker and is never taken for one;
//! nor is anything while the lock's taker lives (`flock FILE command`
//! hands its lock to `command`): the daemonic that started a daemon exits
//! once it has started it.

use core::ffi::CStr;
use core::time::Duration;

use daemonic::fd::{AsFd, OwnedFd};
use daemonic::{Errno, Error, Pid};
use rustix::fs::{FlockOperation, Mode, OFlags};

use crate::out::Line;
use crate::pinned::Pinned;
use crate::procfs::{each_pid, field, proc_file, read_small, stat_fields};
use crate::sys;

/// What a PID file says about its daemon.
pub enum Holder {
    /// Proven: this process holds the file open. Its pin, the file and
    /// the session it runs in.
    Daemon {
        pinned: Pinned,
        file: OwnedFd,
        session: Option<i32>,
    },
    /// Locked, the PID named lives, but nothing can prove it is the holder
    /// (no `/proc`, or another user's process): why.
    Unproven {
        pinned: Pinned,
        file: OwnedFd,
        why: Errno,
    },
    /// The process the file names is gone (or is not the holder), but
    /// `survivor` holds the daemon's own lock: what outlived the daemon.
    Survivors {
        named: Option<i32>,
        survivor: i32,
        file: OwnedFd,
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
pub enum Unknown {
    SymbolicLink,
    CannotRead(Errno),
    Untrusted(Error),
    CannotLock(Errno),
    /// Neither a pidfd nor `/proc/PID` could pin this PID: nothing may be
    /// signalled safely.
    CannotPin(i32, Errno),
}

impl Unknown {
    pub fn write(&self, line: &mut Line, path: &CStr) {
        match self {
            Unknown::SymbolicLink => line.c(path).text(b": is a symbolic link"),
            Unknown::CannotRead(errno) => {
                line.text(b"cannot read ").c(path).text(b": ").errno(*errno)
            }
            Unknown::Untrusted(error) => line.c(path).text(b": ").error(error),
            Unknown::CannotLock(errno) => {
                line.text(b"cannot lock ").c(path).text(b": ").errno(*errno)
            }
            Unknown::CannotPin(pid, errno) => line
                .text(b"cannot pin PID ")
                .num((*pid).into())
                .text(b" named by ")
                .c(path)
                .text(b": pidfd_open refused (")
                .errno(*errno)
                .text(b"; a seccomp profile?) and no /proc/")
                .num((*pid).into()),
        };
    }
}

pub fn inspect(path: &CStr) -> Holder {
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
    let Some(pid) = read_pid(&file, true) else {
        return after_the_daemon(file, None);
    };
    // Never PID 1 or this process, whatever the file says.
    if pid == 1 || pid == own_pid() {
        return foreign(&file, Some(pid));
    }
    // The pin first: from here on the PID cannot be reused under us.
    let pinned = match Pinned::new(pid) {
        Ok(pinned) => pinned,
        Err(Errno::SRCH) => return after_the_daemon(file, Some(pid)),
        Err(errno) => return Holder::Unknown(Unknown::CannotPin(pid, errno)),
    };
    let named = Pid::from_raw(pid).unwrap_or(Pid::INIT);
    match daemonic::proof::holds(named, file.as_fd()) {
        Ok(true) => Holder::Daemon {
            session: session_of(pid),
            pinned,
            file,
        },
        Ok(false) => foreign(&file, Some(pid)),
        Err(_) if pinned.exited(Duration::ZERO) => after_the_daemon(file, Some(pid)),
        Err(why) => Holder::Unproven { pinned, file, why },
    }
}

/// The file is locked, but the process it names is gone (or it names
/// none): a survivor of the daemon holds it, or someone else does. Only
/// then: a live process the file names that does not hold it is
/// [`foreign`], whoever holds the lock.
fn after_the_daemon(file: OwnedFd, named: Option<i32>) -> Holder {
    match first_survivor(&file, named) {
        Some(survivor) => Holder::Survivors {
            named,
            survivor,
            file,
        },
        None => foreign(&file, named),
    }
}

fn foreign(file: &OwnedFd, named: Option<i32>) -> Holder {
    Holder::Foreign {
        named,
        holder: holder(file, named),
    }
}

/// The first process seen that holds the daemon's own lock on `file`
/// without having taken it (see the module's text), other than `skip`.
pub fn first_survivor(file: &OwnedFd, skip: Option<i32>) -> Option<i32> {
    let mut found = None;
    each_survivor(file, skip, |pid| {
        found = Some(pid);
        false
    });
    found
}

/// Calls `visit` with each survivor (as [`first_survivor`]) until it
/// returns `false`.
pub fn each_survivor(file: &OwnedFd, skip: Option<i32>, mut visit: impl FnMut(i32) -> bool) {
    let own = own_pid();
    each_pid(|pid| {
        if pid == own || Some(pid) == skip || pid == 1 {
            return true;
        }
        let Some(raw) = Pid::from_raw(pid) else {
            return true;
        };
        match daemonic::proof::held_lock(raw, file.as_fd()) {
            Ok(Some(lock)) if lock.taken_by != Some(raw) && gone(lock.taken_by) => visit(pid),
            _ => true,
        }
    });
}

/// Whether the lock's taker has exited (a zombie counts) or cannot be seen
/// from here (another PID namespace's). A reused number looks alive: then
/// nothing is taken for a survivor, the safe side.
fn gone(taker: Option<Pid>) -> bool {
    taker.is_none_or(|taker| {
        Pinned::new(taker.as_raw_pid())
            .map_or_else(|errno| errno == Errno::SRCH, |p| p.exited(Duration::ZERO))
    })
}

/// The process holding `file` open, other than `skip`, if one is seen.
pub fn holder(file: &OwnedFd, skip: Option<i32>) -> Option<i32> {
    daemonic::proof::find_holder(file.as_fd(), skip.and_then(Pid::from_raw))
        .ok()
        .flatten()
        .map(Pid::as_raw_pid)
}

pub fn own_pid() -> i32 {
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

/// `PID 812 (sleep)`, or `another process`.
pub fn by(line: &mut Line, holder: Option<i32>) -> &mut Line {
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

/// The session a process runs in, from `/proc/PID/stat`.
pub fn session_of(pid: i32) -> Option<i32> {
    let mut buf = [0u8; 512];
    sys::parse_pid(field(stat_fields(pid, &mut buf)?, 3)?)
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
