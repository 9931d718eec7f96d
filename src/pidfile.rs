//! The PID file: locked by the caller before anything forks, written by the
//! daemon, removed only by the process that holds the lock.
//!
//! # Why `flock`
//!
//! A `flock(2)` lock belongs to the open file description, so the caller
//! takes it before the first fork and the daemon inherits it: a second start
//! fails at once, before it forks anything, and the lock lives exactly as
//! long as the daemon (and a program it execs) holds the fd. POSIX `fcntl`
//! locks belong to the process, are not inherited by `fork` and vanish when
//! the process closes *any* fd of the file. OFD locks would do, but are
//! Linux-only, and `flock` is what FreeBSD's pidfile(3), util-linux's
//! `flock(1)` and most tools check.

use core::ffi::CStr;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, Stat};
use rustix::io::{self, Errno};
use rustix::process::Pid;

use crate::decimal::{self, Decimal};
use crate::error::{Error, Step, os};
use crate::parentdir::open_parent;
use crate::proof;
use crate::trust::{check_directory, check_trustworthy, mode};

/// Mode of a new PID file (before the umask): readable by all, so `kill $(cat
/// FILE)` works for whoever may signal the daemon, writable by its owner only.
const PID_FILE_MODE: u32 = 0o644;

/// A PID file opened and locked by the caller.
#[derive(Debug)]
pub(crate) struct LockedPidFile {
    /// The directory holding it, so it can be removed whatever the daemon's
    /// working directory or root becomes.
    pub(crate) dir: OwnedFd,
    /// The file, opened read-only: the lock lives as long as any copy of
    /// this fd, and a daemon holding it for life (across privilege drops
    /// and exec) cannot rewrite the PID it names.
    pub(crate) file: OwnedFd,
    /// The file opened for writing, until the daemon has written its PID.
    pub(crate) writer: Option<OwnedFd>,
}

/// Opens and locks the PID file, before anything forks.
///
/// A live daemon holding the lock gives [`Error::AlreadyRunning`] with its
/// PID (proven, where `/proc` can tell, by that process holding the file);
/// a lock held by a process the file does not name, still held after a
/// third of a second, gives [`Error::LockedByOther`]; a file no process
/// has locked is stale and taken over. The file must be a regular file
/// that not everyone can write (as start-stop-daemon insists), and when
/// root starts the daemon, one that no other user can write or replace
/// ([`Error::UntrustedPidFile`]).
// Out of line: one copy, however many callers LTO sees (ci/size measures).
#[inline(never)]
pub(crate) fn lock(path: &CStr) -> Result<LockedPidFile, Error> {
    let name = file_name(path).ok_or(Error::Invalid {
        option: "pid_file",
        reason: "names a directory, not a file",
    })?;
    let dir = open_parent(path).map_err(os(Step::PidFile))?;
    let root = rustix::process::geteuid().is_root();
    if root {
        check_directory(&rustix::fs::fstat(&dir).map_err(os(Step::PidFile))?)?;
    }
    // If the file's last owner removes it between our open and our lock, we
    // hold a lock on a file nobody can see: try again with the one the path
    // names now. Two rounds settle any race but a hostile loop.
    for _ in 0..8 {
        let (writer, created) = open_or_create(dir.as_fd(), name).map_err(os(Step::PidFile))?;
        // A file this start created goes again if the start fails here.
        let undo = |error: Error| {
            if created {
                let _ = rustix::fs::unlinkat(&dir, name, AtFlags::empty());
            }
            error
        };
        let stat = rustix::fs::fstat(&writer).map_err(|errno| undo(os(Step::PidFile)(errno)))?;
        check_trustworthy(&stat, root).map_err(undo)?;
        // The lock goes on a read-only description of the same file.
        let file = match open_reader(dir.as_fd(), name, &stat) {
            Ok(Some(file)) => file,
            Ok(None) => continue,
            Err(errno) => return Err(undo(os(Step::PidFile)(errno))),
        };
        match lock_soon(&file, PROBE_TRIES) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => match held_by(&file) {
                Holder::Daemon(pid) => return Err(Error::AlreadyRunning { pid: Some(pid) }),
                // Not a daemon: most likely a probe that a busy machine
                // descheduled while it held the lock. Give it longer; one
                // that holds on is named.
                Holder::Other(named) => {
                    if lock_soon(&file, SLOW_PROBE_TRIES).is_err() {
                        let holder = proof::find_holder(file.as_fd(), named).ok().flatten();
                        return Err(Error::LockedByOther { named, holder });
                    }
                }
            },
            Err(errno) => return Err(undo(os(Step::PidFile)(errno))),
        }
        if names_same_file(dir.as_fd(), name, &stat) {
            return Ok(LockedPidFile {
                dir,
                file,
                writer: Some(writer),
            });
        }
    }
    Err(Error::Os {
        step: Step::PidFile,
        errno: Errno::AGAIN,
    })
}

/// How many milliseconds a start first tries the lock: a probe such as
/// `daemonic --status` or `flock -n FILE true` holds it for a moment, and a
/// start at that instant must not fail as if a daemon ran.
const PROBE_TRIES: u32 = 20;

/// How many more milliseconds it tries when the holder is not the daemon
/// the file names (or the file names none): enough for a probe that lost
/// its CPU while holding the lock.
const SLOW_PROBE_TRIES: u32 = 300;

/// `flock(LOCK_EX|LOCK_NB)`, tried `tries` times a millisecond apart.
fn lock_soon(file: &OwnedFd, tries: u32) -> io::Result<()> {
    for _ in 0..tries {
        match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
            Err(Errno::WOULDBLOCK) => crate::time::sleep(core::time::Duration::from_millis(1)),
            other => return other,
        }
    }
    rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive)
}

/// Opens `name` read-only, if it is still the file `stat` describes.
fn open_reader(dir: BorrowedFd<'_>, name: &CStr, stat: &Stat) -> io::Result<Option<OwnedFd>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    let file = match rustix::fs::openat(dir, name, flags | OFlags::NONBLOCK, Mode::empty()) {
        Ok(file) => file,
        Err(Errno::NOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    let now = rustix::fs::fstat(&file)?;
    Ok((now.st_dev == stat.st_dev && now.st_ino == stat.st_ino).then_some(file))
}

/// Who holds a PID file someone else has locked, as far as the file and
/// `/proc` tell.
enum Holder {
    /// The daemon the file names: proven by that process holding the file,
    /// or, where nothing can prove it, the file's word.
    Daemon(Pid),
    /// Not the process the file names (the PID given), or the file names
    /// none.
    Other(Option<Pid>),
}

/// Whether the daemon the locked file names holds it.
// Out of line: one copy, however many callers LTO sees (ci/size measures).
#[inline(never)]
fn held_by(file: &OwnedFd) -> Holder {
    let Some(pid) = read_owner(file) else {
        return Holder::Other(None);
    };
    match proof::holds(pid, file.as_fd()) {
        Ok(true) => Holder::Daemon(pid),
        // Not the holder, or gone (ENOENT, with /proc mounted).
        Ok(false) | Err(Errno::NOENT | Errno::SRCH)
            if rustix::fs::access(c"/proc/self/fd", rustix::fs::Access::EXISTS).is_ok() =>
        {
            Holder::Other(Some(pid))
        }
        // No /proc, another user's process, another system: the file's word
        // is all there is; nothing starts either way.
        _ => Holder::Daemon(pid),
    }
}

/// Opens the PID file for writing, creating it if missing; whether it was
/// created.
fn open_or_create(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<(OwnedFd, bool)> {
    let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    let mode = mode(PID_FILE_MODE);
    loop {
        match rustix::fs::openat(dir, name, flags | OFlags::CREATE | OFlags::EXCL, mode) {
            Ok(file) => return Ok((file, true)),
            Err(Errno::EXIST) => {}
            Err(errno) => return Err(errno),
        }
        // O_NONBLOCK: a FIFO planted here must not block the open; it is
        // refused as not a regular file right after.
        match rustix::fs::openat(dir, name, flags | OFlags::NONBLOCK, mode) {
            Ok(file) => return Ok((file, false)),
            // Removed in between: create it after all.
            Err(Errno::NOENT) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

/// Whether `name` in `dir` is still the file `stat` describes.
fn names_same_file(dir: BorrowedFd<'_>, name: &CStr, stat: &Stat) -> bool {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(now) => now.st_dev == stat.st_dev && now.st_ino == stat.st_ino,
        Err(_) => false,
    }
}

/// The PID in a file another process has locked. It may be between its
/// lock and its write: give it a moment (up to 200 ms) to write.
fn read_owner(file: &OwnedFd) -> Option<Pid> {
    for _ in 0..100 {
        let mut buf = [0u8; 16];
        if let Ok(len) = rustix::io::pread(file, &mut buf, 0) {
            if let Some(pid) = parse(&buf[..len]) {
                return Some(pid);
            }
        }
        crate::time::sleep(core::time::Duration::from_millis(2));
    }
    None
}

/// The last component of `path`, a suffix of it (no copy), or `None` when
/// the path ends in `/`.
pub(crate) fn file_name(path: &CStr) -> Option<&CStr> {
    let bytes = path.to_bytes_with_nul();
    let start = bytes
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |slash| slash + 1);
    let name = CStr::from_bytes_with_nul(&bytes[start..]).ok()?;
    (!name.is_empty()).then_some(name)
}

/// Writes `PID\n` over whatever the file held: truncate, then one write at
/// offset 0. Runs in the daemon, after fork.
///
/// An empty file (the usual case: we just created it) is not truncated:
/// ext4 takes a truncation to size 0 for the start of a file being
/// replaced and, when the file is closed, allocates its blocks and starts
/// writing it out (`auto_da_alloc`, ext4(5)). That cost the start a
/// journal round, and whoever later removed the file 0.3 ms more to free
/// the blocks (measured with `perf trace daemonic --stop`).
pub(crate) fn write(file: BorrowedFd<'_>, pid: Pid) -> io::Result<()> {
    if rustix::fs::fstat(file)?.st_size != 0 {
        rustix::fs::ftruncate(file, 0)?;
    }
    let text = Decimal::pid(pid);
    let written = loop {
        match rustix::io::pwrite(file, text.line(), 0) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    if written != text.line().len() {
        // A short write to an empty file means the disk is full.
        return Err(Errno::NOSPC);
    }
    Ok(())
}

/// Removes the PID file if the path still names the file we hold (and so
/// hold the lock of): never another daemon's.
pub(crate) fn remove(locked: &LockedPidFile, path: &CStr) -> io::Result<()> {
    let name = file_name(path).ok_or(Errno::ISDIR)?;
    let stat = rustix::fs::fstat(&locked.file)?;
    if !names_same_file(locked.dir.as_fd(), name, &stat) {
        return Ok(());
    }
    rustix::fs::unlinkat(&locked.dir, name, AtFlags::empty())
}

/// Parses PID file text: decimal digits, optionally followed by a newline.
pub(crate) fn parse(text: &[u8]) -> Option<Pid> {
    let digits = text.strip_suffix(b"\n").unwrap_or(text);
    Pid::from_raw(i32::try_from(decimal::parse(digits)?).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: i32) -> std::vec::Vec<u8> {
        Decimal::pid(Pid::from_raw(n).unwrap()).line().to_vec()
    }

    #[test]
    fn pid_text_is_decimal_and_newline() {
        assert_eq!(text(1), b"1\n");
        assert_eq!(text(10), b"10\n");
        assert_eq!(text(4_194_304), b"4194304\n");
        assert_eq!(text(i32::MAX), b"2147483647\n");
    }

    #[test]
    fn parse_reads_what_write_formats() {
        for n in [1, 9, 10, 99, 12345, i32::MAX] {
            assert_eq!(parse(&text(n)), Pid::from_raw(n));
        }
        assert_eq!(parse(b"77"), Pid::from_raw(77));
    }

    #[test]
    fn parse_refuses_what_no_daemon_writes() {
        for bad in [
            &b""[..],
            b"\n",
            b"0\n",
            b"-5\n",
            b"12a\n",
            b"2147483648\n",
            b" 5\n",
            b"99999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn file_name_is_the_last_component() {
        assert_eq!(file_name(c"/run/x.pid"), Some(c"x.pid"));
        assert_eq!(file_name(c"x.pid"), Some(c"x.pid"));
        assert_eq!(file_name(c"a/b/c"), Some(c"c"));
        assert_eq!(file_name(c"/run/"), None);
        assert_eq!(file_name(c""), None);
    }
}
