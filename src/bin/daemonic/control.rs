//! `--status` and `--stop`: what the PID file proves, and acting on it.
//!
//! A PID file alone proves nothing: the process may be gone and its number
//! reused, and anyone who can open the file can lock it. So a PID is acted
//! on only once the process it names is seen holding the very file open
//! (`/proc/PID/fd`), and it is signalled through a pidfd taken before that
//! check, which can never reach a later process that reused the number.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use daemonic::{Errno, Pid};
use rustix::fs::{FlockOperation, Mode, OFlags};

use crate::exit;

/// How `--status` and `--stop` treat a PID whose proof cannot be had.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    /// `--trust-pidfile`: act on the file's word where `/proc` cannot tell.
    pub pid_file: bool,
}

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
    /// (no `/proc`, or another user's process).
    Unproven {
        pid: i32,
        pidfd: OwnedFd,
        file: OwnedFd,
        why: String,
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
    /// The file must not be used or cannot be read: the message.
    Unknown(String),
}

fn inspect(path: &Path) -> Holder {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return Holder::Unknown(format!("{}: the path holds a NUL byte", path.display()));
    };
    // O_NONBLOCK: a FIFO planted here must not hang the open; it is
    // refused right after as not a regular file.
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let file = match rustix::fs::open(c_path.as_c_str(), flags, Mode::empty()) {
        Ok(file) => file,
        Err(Errno::NOENT) => return Holder::Missing,
        Err(Errno::LOOP) => {
            return Holder::Unknown(format!("{}: is a symbolic link", path.display()));
        }
        Err(errno) => return Holder::Unknown(format!("cannot read {}: {errno}", path.display())),
    };
    if let Err(error) = daemonic::proof::check_pid_file(&c_path, file.as_fd()) {
        return Holder::Unknown(format!("{}: {error}", path.display()));
    }
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => return Holder::Stale(read_pid(&file, false)),
        Err(Errno::WOULDBLOCK) => {}
        Err(errno) => return Holder::Unknown(format!("cannot lock {}: {errno}", path.display())),
    }
    let holder = |skip: Option<i32>| {
        daemonic::proof::find_holder(file.as_fd(), skip.and_then(Pid::from_raw))
            .ok()
            .flatten()
            .map(Pid::as_raw_pid)
    };
    let Some(pid) = read_pid(&file, true) else {
        return Holder::Foreign {
            named: None,
            holder: holder(None),
        };
    };
    // Never PID 1 or this process, whatever the file says.
    if pid == 1 || pid == std::process::id() as i32 {
        return Holder::Foreign {
            named: Some(pid),
            holder: holder(Some(pid)),
        };
    }
    // The pidfd first: from here on the PID cannot be reused under us.
    let pidfd = match pidfd_open(pid) {
        Ok(pidfd) => pidfd,
        Err(_) => {
            return Holder::Foreign {
                named: Some(pid),
                holder: holder(Some(pid)),
            };
        }
    };
    let named = Pid::from_raw(pid).expect("a PID above 1");
    match daemonic::proof::holds(named, file.as_fd()) {
        Ok(true) => Holder::Daemon {
            pid,
            session: session_of(pid),
            pidfd,
            file,
        },
        Ok(false) => Holder::Foreign {
            named: Some(pid),
            holder: holder(Some(pid)),
        },
        Err(_) if exited(&pidfd, Duration::ZERO) => Holder::Foreign {
            named: Some(pid),
            holder: holder(Some(pid)),
        },
        Err(errno) => Holder::Unproven {
            pid,
            pidfd,
            file,
            why: format!("cannot read /proc/{pid}/fd: {errno}"),
        },
    }
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
            let pid = std::str::from_utf8(digits).ok()?.parse::<i32>().ok();
            if pid.is_some_and(|pid| pid > 0) && digits.iter().all(u8::is_ascii_digit) {
                return pid;
            }
        }
        std::thread::sleep(Duration::from_millis(4));
    }
    None
}

/// `--status`, with LSB's exit statuses.
pub fn status(path: &Path, trust: Trust) -> i32 {
    match inspect(path) {
        Holder::Daemon { pid, .. } => {
            println!("daemonic: running as PID {pid}");
            exit::STATUS_RUNNING
        }
        Holder::Unproven { pid, .. } if trust.pid_file => {
            println!("daemonic: running as PID {pid} (as the locked PID file says; not verified)");
            exit::STATUS_RUNNING
        }
        Holder::Unproven { pid, why, .. } => {
            eprintln!("daemonic: {}", unproven(pid, &why));
            exit::STATUS_UNKNOWN
        }
        Holder::Foreign { named, holder } => {
            eprintln!(
                "daemonic: {}: cannot tell whether the daemon runs",
                foreign(named, holder)
            );
            exit::STATUS_UNKNOWN
        }
        Holder::Stale(pid) => {
            let named = pid
                .map(|pid| format!(" (it names {pid})"))
                .unwrap_or_default();
            println!(
                "daemonic: not running, but {} remains{named}",
                path.display()
            );
            exit::STATUS_DEAD_PID_FILE
        }
        Holder::Missing => {
            println!("daemonic: not running");
            exit::STATUS_NOT_RUNNING
        }
        Holder::Unknown(message) => {
            eprintln!("daemonic: cannot tell: {message}");
            exit::STATUS_UNKNOWN
        }
    }
}

fn unproven(pid: i32, why: &str) -> String {
    format!(
        "the PID file names PID {pid}, but nothing proves it is the daemon ({why}); \
         --trust-pidfile accepts the file's word"
    )
}

fn foreign(named: Option<i32>, holder: Option<i32>) -> String {
    let by = match holder {
        Some(pid) => format!("PID {pid} ({})", command_name(pid)),
        None => String::from("another process"),
    };
    match named {
        Some(pid) => format!("the PID file is held by {by}, not by PID {pid} which it names"),
        None => format!("the PID file is held by {by} and names no PID"),
    }
}

/// A process's command name, for messages.
fn command_name(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|name| name.trim_end().to_string())
        .unwrap_or_else(|_| String::from("?"))
}

/// `--stop`: signal the proven daemon, wait until it is gone and its lock
/// released; after `timeout`, SIGKILL what is left of its session, then it.
pub fn stop(path: &Path, signal: i32, timeout: Duration, trust: Trust) -> i32 {
    let (pid, pidfd, file, session) = match inspect(path) {
        Holder::Daemon {
            pid,
            pidfd,
            file,
            session,
        } => (pid, pidfd, file, session),
        Holder::Unproven {
            pid, pidfd, why, ..
        } if !trust.pid_file => {
            // One who may not signal it hears that first: it is the answer.
            if let Err(errno) = send(&pidfd, 0) {
                eprintln!("daemonic: cannot signal PID {pid}: {errno}");
            } else {
                eprintln!("daemonic: {}", unproven(pid, &why));
            }
            return exit::STOP_UNKNOWN;
        }
        Holder::Unproven {
            pid, pidfd, file, ..
        } => (pid, pidfd, file, session_of(pid)),
        Holder::Foreign { named, holder } => {
            eprintln!(
                "daemonic: {}: not signalling anything",
                foreign(named, holder)
            );
            return exit::STOP_UNKNOWN;
        }
        Holder::Stale(_) | Holder::Missing => {
            eprintln!("daemonic: not running");
            return exit::STOP_NOT_RUNNING;
        }
        Holder::Unknown(message) => {
            eprintln!("daemonic: cannot stop: {message}");
            return exit::STOP_UNKNOWN;
        }
    };
    if let Err(errno) = send(&pidfd, signal) {
        eprintln!("daemonic: cannot signal PID {pid}: {errno}");
        return exit::STOP_UNKNOWN;
    }
    let deadline = Instant::now() + timeout;
    let gone = exited(&pidfd, timeout);
    if gone && released_by(&file, deadline) {
        remove_if_stale(path, &file);
        return exit::STOP_DONE;
    }
    if gone {
        eprintln!(
            "daemonic: PID {pid} is gone, but its children still hold {}: sending SIGKILL",
            path.display()
        );
    } else {
        eprintln!("daemonic: PID {pid} still running after {timeout:?}: sending SIGKILL");
    }
    // What the daemon started first (a supervisor then sees its program
    // end and removes its files itself), then the daemon.
    let others = session.map_or(0, |session| kill_session(session, pid));
    if !gone && (others == 0 || !exited(&pidfd, Duration::from_secs(1))) {
        let _ = send(&pidfd, libc::SIGKILL);
    }
    if !exited(&pidfd, Duration::from_secs(5)) {
        eprintln!("daemonic: PID {pid} survived SIGKILL");
        return exit::STOP_UNKNOWN;
    }
    if !released_by(&file, Instant::now() + Duration::from_secs(5)) {
        let holder = daemonic::proof::find_holder(file.as_fd(), None)
            .ok()
            .flatten()
            .map(Pid::as_raw_pid);
        eprintln!(
            "daemonic: PID {pid} is gone, but {} still holds {}",
            holder.map_or(String::from("another process"), |h| format!(
                "PID {h} ({})",
                command_name(h)
            )),
            path.display()
        );
        return exit::STOP_UNKNOWN;
    }
    remove_if_stale(path, &file);
    exit::STOP_DONE
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
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
    }
}

/// Whether the process behind `pidfd` has exited, waiting up to `timeout`:
/// a pidfd turns readable the moment it does, so this returns then, not
/// at the next poll of a loop.
fn exited(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let millis = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, millis) };
        if n > 0 {
            return true;
        }
        if n == 0 || left.is_zero() {
            return false;
        }
    }
}

/// Waits until the lock on `file` can be had, up to `deadline`.
fn released_by(file: &OwnedFd, deadline: Instant) -> bool {
    loop {
        if rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The session a process runs in, from `/proc/PID/stat`.
fn session_of(pid: i32) -> Option<i32> {
    stat_field(pid, 3)
}

/// Field `index` after the command name of `/proc/PID/stat` (0: state,
/// 1: ppid, 2: pgrp, 3: session).
fn stat_field(pid: i32, index: usize) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    after_name.split_whitespace().nth(index)?.parse().ok()
}

/// SIGKILLs every process of the daemon's session but the daemon: what it
/// started. Only a session of the daemon's own: one whose leader was the
/// daemon's first child (gone) or is the daemon, never this process's.
/// Each process is pinned with a pidfd before its session is checked, so a
/// reused PID is never signalled. How many were signalled.
fn kill_session(session: i32, daemon: i32) -> usize {
    let own_session = session_of(std::process::id() as i32);
    let leader_gone = std::fs::metadata(format!("/proc/{session}")).is_err();
    if own_session == Some(session) || !(session == daemon || leader_gone) {
        return 0;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut signalled = 0;
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == daemon || pid <= 1 || pid == std::process::id() as i32 {
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
fn remove_if_stale(path: &Path, file: &OwnedFd) {
    if rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive).is_err() {
        return;
    }
    let (Ok(held), Ok(now)) = (rustix::fs::fstat(file), std::fs::symlink_metadata(path)) else {
        return;
    };
    use std::os::unix::fs::MetadataExt;
    if held.st_ino == now.ino() && held.st_dev == now.dev() {
        let _ = std::fs::remove_file(path);
    }
}
