//! Whether a PID file may be trusted: the rules a start applies to the file
//! and its directory before it locks one, and [`check_pid_file`] before a
//! caller acts on the PID one names. Plain `stat` checks, no allocation.

use core::ffi::CStr;

use rustix::fd::BorrowedFd;
use rustix::fs::{FileType, Mode, Stat};

use crate::error::{Error, Step, os};
use crate::parentdir::open_parent;

/// Checks that the PID file `file`, opened at `path`, may be acted on: a
/// regular file not everyone can write and, when this process is root, one
/// that no other user owns or can write, in a directory others cannot
/// replace it in. The same rules [`Plan::pid_file`](crate::Plan::pid_file)
/// applies before a start.
///
/// # Errors
///
/// [`Error::Invalid`] (not a regular file, writable by everyone),
/// [`Error::UntrustedPidFile`] (as root), [`Error::Os`] when the file or
/// its directory cannot be examined.
pub fn check_pid_file(path: &CStr, file: BorrowedFd<'_>) -> Result<(), Error> {
    let stat = rustix::fs::fstat(file).map_err(os(Step::PidFile))?;
    let root = rustix::process::geteuid().is_root();
    check_trustworthy(&stat, root)?;
    if root {
        let dir = open_parent(path).map_err(os(Step::PidFile))?;
        check_directory(&rustix::fs::fstat(&dir).map_err(os(Step::PidFile))?)?;
    }
    Ok(())
}

/// A PID file's own checks: a regular file, not writable by everyone and,
/// for root, [`check_root_may_trust`].
pub(crate) fn check_trustworthy(stat: &Stat, root: bool) -> Result<(), Error> {
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Error::Invalid {
            option: "pid_file",
            reason: "is not a regular file",
        });
    }
    if stat.st_mode & 0o002 != 0 {
        return Err(Error::Invalid {
            option: "pid_file",
            reason: "is writable by everyone",
        });
    }
    if root {
        check_root_may_trust(stat)?;
    }
    Ok(())
}

/// What root demands of a PID file whose PID it may signal: no other user
/// can have written it (start-stop-daemon: "matching only on non-root
/// pidfile ... is insecure").
pub(crate) fn check_root_may_trust(stat: &Stat) -> Result<(), Error> {
    let untrusted = |reason| Error::UntrustedPidFile {
        reason,
        uid: stat.st_uid,
        mode: mode_bits(stat),
    };
    if stat.st_uid != 0 {
        return Err(untrusted("root does not use a PID file another user owns"));
    }
    if stat.st_mode & 0o022 != 0 {
        return Err(untrusted(
            "root does not use a PID file its group or others can write",
        ));
    }
    Ok(())
}

/// What root demands of the PID file's directory: others cannot replace
/// the file (write access without the sticky bit lets them).
pub(crate) fn check_directory(stat: &Stat) -> Result<(), Error> {
    const STICKY: u32 = 0o1000;
    let mode = mode_bits(stat);
    if mode & 0o002 != 0 && mode & STICKY == 0 {
        return Err(Error::UntrustedPidFile {
            reason: "root does not use a PID file in a directory others can write to without the sticky bit",
            uid: stat.st_uid,
            mode,
        });
    }
    Ok(())
}

/// `st_mode` as a `u32`: it is a `u16` on macOS and the BSDs.
#[allow(clippy::unnecessary_cast)]
fn mode_bits(stat: &Stat) -> u32 {
    stat.st_mode as u32
}

/// Permission bits (at most `0o7777`) as this system's [`Mode`]: its
/// `mode_t` is a `u16` on macOS and the BSDs.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn mode(bits: u32) -> Mode {
    Mode::from_raw_mode((bits & 0o7777) as rustix::fs::RawMode)
}
