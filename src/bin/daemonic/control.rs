//! `--status` and `--stop`: what the PID file's lock says, and acting on it.
//!
//! A PID file alone proves nothing (the process may be gone and its number
//! reused); its `flock` lock does: the daemon holds it for its life.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fd::OwnedFd;
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::exit;

/// What a PID file says about its daemon.
pub enum Holder {
    /// Locked: a daemon runs (its PID, if the file names one).
    Running(Option<i32>, OwnedFd),
    /// Not locked: the daemon is gone, the file stayed (the PID it names).
    Stale(Option<i32>),
    /// No PID file.
    Missing,
    /// The file cannot be read.
    Unknown(Errno),
}

pub fn inspect(path: &Path) -> Holder {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return Holder::Unknown(Errno::INVAL);
    };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    let file = match rustix::fs::open(c_path.as_c_str(), flags, Mode::empty()) {
        Ok(file) => file,
        Err(Errno::NOENT) => return Holder::Missing,
        Err(errno) => return Holder::Unknown(errno),
    };
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared) {
        Err(Errno::WOULDBLOCK) => Holder::Running(read_pid(&file), file),
        Ok(()) => Holder::Stale(read_pid(&file)),
        Err(errno) => Holder::Unknown(errno),
    }
}

/// The PID in the file; a daemon between its lock and its write gets a
/// moment to write it.
fn read_pid(file: &OwnedFd) -> Option<i32> {
    for _ in 0..50 {
        let mut buf = [0u8; 16];
        if let Ok(len) = rustix::io::pread(file, &mut buf, 0) {
            let text = String::from_utf8_lossy(&buf[..len]);
            if let Ok(pid) = text.trim_end().parse::<i32>() {
                if pid > 0 {
                    return Some(pid);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(4));
    }
    None
}

/// `--status`, with LSB's exit statuses.
pub fn status(path: &Path) -> i32 {
    match inspect(path) {
        Holder::Running(Some(pid), _) => {
            println!("daemonic: running as PID {pid}");
            exit::STATUS_RUNNING
        }
        Holder::Running(None, _) => {
            println!("daemonic: running (the PID file is locked but names no PID)");
            exit::STATUS_RUNNING
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
        Holder::Unknown(errno) => {
            eprintln!("daemonic: cannot tell: {}: {errno}", path.display());
            exit::STATUS_UNKNOWN
        }
    }
}

/// `--stop`: signal the daemon, wait until it is gone (its lock released),
/// SIGKILL it after `timeout`.
pub fn stop(path: &Path, signal: i32, timeout: Duration) -> i32 {
    let (pid, file) = match inspect(path) {
        Holder::Running(Some(pid), file) => (pid, file),
        Holder::Running(None, _) => {
            eprintln!("daemonic: {} is locked but names no PID", path.display());
            return exit::STOP_UNKNOWN;
        }
        Holder::Stale(_) | Holder::Missing => {
            eprintln!("daemonic: not running");
            return exit::STOP_NOT_RUNNING;
        }
        Holder::Unknown(errno) => {
            eprintln!("daemonic: cannot read {}: {errno}", path.display());
            return exit::STOP_UNKNOWN;
        }
    };
    // SAFETY: kill takes plain integers; ESRCH (already gone) is fine.
    unsafe { libc::kill(pid, signal) };
    if !released_within(&file, timeout) {
        eprintln!("daemonic: PID {pid} still running after {timeout:?}: sending SIGKILL");
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        if !released_within(&file, Duration::from_secs(5)) {
            // SAFETY: kill with signal 0 only checks the process exists.
            let gone = unsafe { libc::kill(pid, 0) } != 0;
            if gone {
                eprintln!(
                    "daemonic: PID {pid} is gone, but other processes (its children?) still hold {}: use --supervise for programs that fork",
                    path.display()
                );
            } else {
                eprintln!("daemonic: PID {pid} survived SIGKILL");
            }
            return exit::STOP_UNKNOWN;
        }
    }
    remove_if_stale(path, &file);
    exit::STOP_DONE
}

/// Waits until the lock on `file` can be had.
fn released_within(file: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if rustix::fs::flock(file, FlockOperation::NonBlockingLockShared).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A daemon that could not remove its PID file (a program executed without
/// `--supervise` does not know it has one): remove it, under an exclusive
/// lock (converted from the shared one `file` holds), if the path still
/// names that file.
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
