//! `--status`, `--signal` and `--stop`: acting on what the PID file proves
//! ([`inspect`]), with the exit statuses `--help` documents.

use core::ffi::CStr;
use core::time::Duration;

use daemonic::Errno;
use daemonic::fd::OwnedFd;
use rustix::fs::FlockOperation;

use crate::inspect::{Holder, by, each_survivor, holder, inspect, own_pid, session_of};
use crate::out::Line;
use crate::pinned::Pinned;
use crate::procfs::each_pid;
use crate::schedule::{Action, Schedule};
use crate::{exit, signame, sys};

/// `--status`, with LSB's exit statuses.
#[inline(never)]
pub fn status(path: &CStr, trust: bool) -> i32 {
    let mut line = Line::daemonic();
    match inspect(path) {
        Holder::Daemon { pinned, .. } => {
            line.text(b"running as PID ")
                .num(pinned.pid().into())
                .print();
            exit::STATUS_RUNNING
        }
        Holder::Unproven { pinned, .. } if trust => {
            line.text(b"running as PID ")
                .num(pinned.pid().into())
                .text(b" (as the locked PID file says; not verified)")
                .print();
            exit::STATUS_RUNNING
        }
        Holder::Unproven { pinned, why, .. } => {
            unproven(&mut line, pinned.pid(), why).eprint();
            exit::STATUS_UNKNOWN
        }
        Holder::Survivors {
            named, survivor, ..
        } => {
            survivors(&mut line, named, survivor)
                .text(b"; --stop stops it")
                .eprint();
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

fn survivors(line: &mut Line, named: Option<i32>, survivor: i32) -> &mut Line {
    match named {
        Some(pid) => line.text(b"PID ").num(pid.into()),
        None => line.text(b"the daemon"),
    };
    line.text(b" which the PID file names is gone, but ");
    by(line, Some(survivor)).text(b" still holds its lock: it outlived the daemon")
}

/// What a verb does to what the PID file proves.
#[derive(PartialEq, Eq)]
enum Verb {
    /// `--signal`: the daemon itself, or nothing.
    Signal,
    /// `--stop`: the daemon, or what outlived it.
    Stop,
}

/// A proven daemon to act on, or why there is none (its exit status, once
/// the message is printed).
fn proven(path: &CStr, trust: bool, verb: Verb) -> Result<Target, i32> {
    let mut line = Line::daemonic();
    match inspect(path) {
        Holder::Daemon {
            pinned,
            file,
            session,
        } => Ok(Target {
            daemon: Some(pinned),
            file,
            session,
        }),
        Holder::Unproven { pinned, why, .. } if !trust => {
            // One who may not signal it hears that first: it is the answer.
            if let Err(errno) = pinned.send(0) {
                cannot_signal(&mut line, pinned.pid(), errno);
            } else {
                unproven(&mut line, pinned.pid(), why);
            }
            line.eprint();
            Err(exit::STOP_UNKNOWN)
        }
        Holder::Unproven { pinned, file, .. } => {
            let session = session_of(pinned.pid());
            Ok(Target {
                daemon: Some(pinned),
                file,
                session,
            })
        }
        // Only a stop goes after what outlived the daemon.
        Holder::Survivors {
            named,
            survivor,
            file,
        } if verb == Verb::Stop => {
            survivors(&mut line, named, survivor)
                .text(b": stopping what holds it")
                .eprint();
            Ok(Target {
                daemon: None,
                file,
                session: None,
            })
        }
        Holder::Survivors {
            named, survivor, ..
        } => {
            survivors(&mut line, named, survivor)
                .text(b"; not signalling it (--stop stops it)")
                .eprint();
            Err(exit::STOP_UNKNOWN)
        }
        Holder::Foreign { named, holder } => {
            foreign(&mut line, named, holder)
                .text(b": not signalling anything")
                .eprint();
            Err(exit::STOP_UNKNOWN)
        }
        Holder::Stale(_) | Holder::Missing => {
            line.text(b"not running").eprint();
            Err(exit::STOP_NOT_RUNNING)
        }
        Holder::Unknown(why) => {
            line.text(b"cannot act: ");
            why.write(&mut line, path);
            line.eprint();
            Err(exit::STOP_UNKNOWN)
        }
    }
}

/// `--signal SIG` alone: send it to the proven daemon, and return once the
/// daemon has taken it (it left the daemon's pending signals), waiting up
/// to `timeout`. The daemon runs on: a reload.
#[inline(never)]
pub fn signal(path: &CStr, signal: i32, timeout: Duration, trust: bool) -> i32 {
    let target = match proven(path, trust, Verb::Signal) {
        Ok(target) => target,
        Err(status) => return status,
    };
    let Some(daemon) = &target.daemon else {
        return exit::STOP_UNKNOWN;
    };
    if let Err(errno) = target.send_to_daemon(daemon, signal, Resume::No) {
        cannot_signal(&mut Line::daemonic(), daemon.pid(), errno).eprint();
        return exit::STOP_UNKNOWN;
    }
    let deadline = sys::now() + timeout;
    loop {
        // Gone: it took the signal (and ended on it, or for its own reasons).
        if daemon.exited(Duration::ZERO) {
            return exit::STOP_DONE;
        }
        match daemon.pending(signal) {
            Some(true) if sys::now() < deadline => sys::sleep(Duration::from_millis(2)),
            Some(true) => {
                let mut line = Line::daemonic();
                line.text(b"PID ")
                    .num(daemon.pid().into())
                    .text(b" has not taken SIG");
                signal_name(&mut line, signal)
                    .text(b" within ")
                    .secs(timeout)
                    .text(b" s (it blocks the signal, or is stopped)")
                    .eprint();
                return exit::STOP_UNKNOWN;
            }
            // Taken; or nothing can tell (no /proc): sent is all we know.
            _ => return exit::STOP_DONE,
        }
    }
}

/// `--stop`: signal the proven daemon by the schedule, until it is gone
/// and its lock released.
#[inline(never)]
pub fn stop(path: &CStr, schedule: Schedule, trust: bool) -> i32 {
    let target = match proven(path, trust, Verb::Stop) {
        Ok(target) => target,
        Err(status) => return status,
    };
    let started = sys::now();
    let mut sent = 0;
    let mut at = 0;
    while let Some(&action) = schedule.actions.get(at) {
        at += 1;
        match action {
            Action::Signal(signal) => {
                if sent > 0 {
                    target.escalating(started, signal);
                }
                if let Err(errno) = target.signal(signal) {
                    if sent == 0 {
                        let pid = target.daemon.as_ref().map_or(0, Pinned::pid);
                        cannot_signal(&mut Line::daemonic(), pid, errno).eprint();
                        return exit::STOP_UNKNOWN;
                    }
                }
                sent += 1;
            }
            Action::Wait(grace) => {
                if target.gone_by(sys::now() + grace) {
                    remove_if_stale(path, &target.file);
                    return exit::STOP_DONE;
                }
            }
            Action::Repeat(to) => at = to,
        }
    }
    target.still_there(started);
    exit::STOP_STILL_RUNNING
}

/// Whether SIGCONT follows the signal: after a stop signal, so that a
/// stopped daemon acts on it; never after a reload's, which must not resume
/// a process someone stopped (a debugger).
enum Resume {
    Yes,
    No,
}

/// What a stop acts on: the daemon (gone already when only survivors hold
/// its lock), its PID file and its session.
struct Target {
    daemon: Option<Pinned>,
    file: OwnedFd,
    session: Option<i32>,
}

impl Target {
    /// Sends `signal` (and SIGCONT) to what is left: the daemon while it
    /// lives; after it, whatever still holds its lock. SIGKILL goes first
    /// to the rest of the daemon's session (what it started: a supervisor
    /// then sees its program end and removes its files itself), then, a
    /// second later if it is still there, to the daemon.
    fn signal(&self, signal: i32) -> Result<(), Errno> {
        let alive = self.daemon.as_ref().filter(|d| !d.exited(Duration::ZERO));
        let others = match (signal, self.session, &self.daemon) {
            (libc::SIGKILL, Some(session), Some(daemon)) => kill_session(session, daemon.pid()),
            _ => 0,
        };
        match alive {
            Some(daemon) if others > 0 && daemon.exited(Duration::from_secs(1)) => Ok(()),
            Some(daemon) => self.send_to_daemon(daemon, signal, Resume::Yes),
            None => {
                self.signal_survivors(signal);
                Ok(())
            }
        }
    }

    /// Sends `signal` to the daemon, and SIGCONT after it for a stop. With
    /// a pin through `/proc`, only if the daemon still holds its PID file
    /// right before.
    fn send_to_daemon(&self, daemon: &Pinned, signal: i32, resume: Resume) -> Result<(), Errno> {
        if !daemon.by_pidfd() {
            let pid = daemonic::Pid::from_raw(daemon.pid()).ok_or(Errno::SRCH)?;
            if daemonic::proof::holds(pid, daemonic::fd::AsFd::as_fd(&self.file)) == Ok(false) {
                return Err(Errno::SRCH);
            }
        }
        match resume {
            Resume::Yes => daemon.send_and_continue(signal),
            Resume::No => daemon.send(signal),
        }
    }

    /// Sends `signal` (and SIGCONT) to every process that holds the
    /// daemon's lock, each pinned and seen holding it after the pin.
    fn signal_survivors(&self, signal: i32) {
        let skip = self.daemon.as_ref().map(Pinned::pid);
        each_survivor(&self.file, skip, |pid| {
            if let Ok(pinned) = Pinned::new(pid) {
                let raw = daemonic::Pid::from_raw(pid);
                let still = raw.is_some_and(|raw| {
                    matches!(
                        daemonic::proof::held_lock(raw, daemonic::fd::AsFd::as_fd(&self.file)),
                        Ok(Some(_))
                    )
                });
                if still {
                    let _ = pinned.send_and_continue(signal);
                }
            }
            true
        });
    }

    /// Whether the daemon is gone and its lock released by `deadline`.
    fn gone_by(&self, deadline: Duration) -> bool {
        let left = deadline.saturating_sub(sys::now());
        self.daemon
            .as_ref()
            .is_none_or(|daemon| daemon.exited(left))
            && released_by(&self.file, deadline)
    }

    /// `PID 7 still running after 10 s: sending SIGKILL`.
    fn escalating(&self, started: Duration, signal: i32) {
        let mut line = Line::daemonic();
        self.where_it_is(&mut line, started);
        line.text(b": sending SIG");
        signal_name(&mut line, signal).eprint();
    }

    /// The schedule is over and something is still there.
    fn still_there(&self, started: Duration) {
        let mut line = Line::daemonic();
        self.where_it_is(&mut line, started);
        line.text(b"; the stop schedule is over").eprint();
    }

    fn where_it_is(&self, line: &mut Line, started: Duration) {
        let elapsed = sys::now().saturating_sub(started);
        match &self.daemon {
            Some(daemon) if !daemon.exited(Duration::ZERO) => {
                line.text(b"PID ")
                    .num(daemon.pid().into())
                    .text(b" still running after ")
                    .secs(elapsed)
                    .text(b" s");
            }
            daemon => {
                if let Some(daemon) = daemon {
                    line.text(b"PID ")
                        .num(daemon.pid().into())
                        .text(b" is gone, but ");
                }
                let skip = daemon.as_ref().map(Pinned::pid);
                by(line, holder(&self.file, skip))
                    .text(b" still holds the PID file after ")
                    .secs(elapsed)
                    .text(b" s");
            }
        }
    }
}

/// `TERM` for SIGTERM, or the number.
fn signal_name(line: &mut Line, signal: i32) -> &mut Line {
    match signame::name(signal) {
        Some(name) => line.text(name),
        None => line.num(signal.into()),
    }
}

fn cannot_signal(line: &mut Line, pid: i32, errno: Errno) -> &mut Line {
    line.text(b"cannot signal PID ")
        .num(pid.into())
        .text(b": ")
        .errno(errno)
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

/// SIGKILLs every process of the daemon's session but the daemon: what it
/// started. Only a session of the daemon's own: one whose leader was the
/// daemon's first child (gone) or is the daemon, never this process's.
/// Each process is pinned before its session is checked, so a reused PID
/// is never signalled. How many were signalled.
fn kill_session(session: i32, daemon: i32) -> usize {
    let mut path = [0u8; 32];
    let leader_gone = crate::procfs::proc_file(session, b"", &mut path)
        .is_none_or(|path| rustix::fs::stat(path).is_err());
    if session_of(own_pid()) == Some(session) || !(session == daemon || leader_gone) {
        return 0;
    }
    let mut signalled = 0;
    each_pid(|pid| {
        if pid == daemon || pid <= 1 || pid == own_pid() {
            return true;
        }
        if let Ok(pinned) = Pinned::new(pid) {
            if session_of(pid) == Some(session) && pinned.send(libc::SIGKILL).is_ok() {
                signalled += 1;
            }
        }
        true
    });
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
