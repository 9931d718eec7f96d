//! What a PID file proves: whether it may be trusted at all, and which
//! process holds it open, the proof that the PID it names is the daemon,
//! read from `/proc/PID/fd` (Linux).
//!
//! A PID file's lock proves that *some* process holds the file open; the
//! number written in it may name anything (a reused PID, a process another
//! user chose). Only the process itself holding an fd of the very file
//! (same device and inode) proves the number. `/proc/locks` is no help: for
//! a `flock` lock it lists the process that took the lock, which for a
//! daemon is the caller that has long exited.
//!
//! Everything here reads `/proc` with `getdents64` into stack buffers and
//! compares `stat` results: no allocation, usable without `std`.

#[cfg(daemonic_procfs)]
use core::mem::MaybeUninit;

#[cfg(daemonic_procfs)]
use rustix::fd::AsFd;
use rustix::fd::BorrowedFd;
use rustix::fs::Stat;
#[cfg(daemonic_procfs)]
use rustix::fs::{AtFlags, Mode, OFlags, RawDir};
use rustix::io;
#[cfg(not(daemonic_procfs))]
use rustix::io::Errno;
use rustix::process::Pid;

pub use crate::trust::check_pid_file;

#[cfg(daemonic_procfs)]
use crate::decimal::{self, Decimal};

/// Whether process `pid` holds `file` (an fd of this process) open.
///
/// # Errors
///
/// `ENOENT`: no such process, or no `/proc` (tell them apart with a pidfd
/// or `kill(pid, 0)`); `EACCES`: another user's process, which only root
/// may look into; `ENOSYS`: a system without `/proc/PID/fd`.
///
/// # Example
///
/// ```no_run
/// # #[cfg(feature = "std")] {
/// use std::os::fd::AsFd;
///
/// let file = std::fs::File::open("/run/mydaemon.pid")?;
/// let pid = daemonic::Pid::from_raw(1234).unwrap();
/// if daemonic::proof::holds(pid, file.as_fd())? {
///     println!("1234 is the daemon that holds /run/mydaemon.pid");
/// }
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// See [proc_pid_fd(5)](https://man7.org/linux/man-pages/man5/proc_pid_fd.5.html).
pub fn holds(pid: Pid, file: BorrowedFd<'_>) -> io::Result<bool> {
    let wanted = rustix::fs::fstat(file)?;
    holds_stat(pid, &wanted)
}

/// A process other than `skip` (and this one) that holds `file` open, if
/// any can be seen: the whole `/proc` is searched, so unprivileged callers
/// see only their own processes.
///
/// # Errors
///
/// `/proc` cannot be read (`ENOENT`, or `ENOSYS` off Linux).
pub fn find_holder(file: BorrowedFd<'_>, skip: Option<Pid>) -> io::Result<Option<Pid>> {
    let wanted = rustix::fs::fstat(file)?;
    let me = rustix::process::getpid();
    let mut found = None;
    for_each_pid(|pid| {
        if pid != me && Some(pid) != skip && holds_stat(pid, &wanted) == Ok(true) {
            found = Some(pid);
            return false;
        }
        true
    })?;
    Ok(found)
}

/// The `flock` lock on a PID file, as a process holding it shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldLock {
    /// The process recorded as having taken the lock. For a daemon this
    /// is the caller that started it, long gone; a process that took the
    /// lock itself names itself.
    pub taken_by: Option<Pid>,
}

/// Whether process `pid` holds, through one of its fds, the very open file
/// description that holds the exclusive `flock` lock on `file`'s inode:
/// `/proc/PID/fdinfo/N` lists a `flock` lock only for fds of the
/// description it was taken on, so unlike holding the file open (which
/// anyone who may read it can do), this is inherited, never acquired,
/// while the lock is held: the process descends from the lock's taker or
/// was handed the fd. The lock's taker comes with it.
///
/// # Errors
///
/// As [`holds`]; a kernel whose fdinfo lists no locks (before Linux 3.8)
/// answers `None`.
///
/// See [proc_pid_fdinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_fdinfo.5.html)
/// and [flock(2)](https://man7.org/linux/man-pages/man2/flock.2.html).
pub fn held_lock(pid: Pid, file: BorrowedFd<'_>) -> io::Result<Option<HeldLock>> {
    let wanted = rustix::fs::fstat(file)?;
    held_lock_stat(pid, &wanted)
}

#[cfg(daemonic_procfs)]
fn held_lock_stat(pid: Pid, wanted: &Stat) -> io::Result<Option<HeldLock>> {
    let mut held = None;
    each_fd_of(pid, wanted, |fds, name| {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let Ok(info_dir) =
            rustix::fs::openat(fds, c"../fdinfo", flags | OFlags::DIRECTORY, Mode::empty())
        else {
            return false;
        };
        let Ok(info) = rustix::fs::openat(&info_dir, name, flags, Mode::empty()) else {
            return false;
        };
        let mut text = [0u8; 1024];
        let mut len = 0;
        while len < text.len() {
            match rustix::io::read(&info, &mut text[len..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => len += n,
            }
        }
        held = flock_line(&text[..len], wanted.st_ino);
        held.is_some()
    })?;
    Ok(held)
}

#[cfg(not(daemonic_procfs))]
fn held_lock_stat(_pid: Pid, _wanted: &Stat) -> io::Result<Option<HeldLock>> {
    Err(Errno::NOSYS)
}

/// The exclusive `flock` lock on inode `ino` among fdinfo's `lock:` lines
/// (`lock:\t1: FLOCK  ADVISORY  WRITE 9237 fe:00:10010754 0 EOF`).
#[cfg(daemonic_procfs)]
fn flock_line(fdinfo: &[u8], ino: u64) -> Option<HeldLock> {
    fdinfo.split(|&b| b == b'\n').find_map(|line| {
        let mut words = line
            .strip_prefix(b"lock:")?
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|word| !word.is_empty());
        // The lock's number, its kind, how advisory, its mode.
        let (_, kind, _, mode) = (words.next()?, words.next()?, words.next()?, words.next()?);
        let (taker, device_ino) = (words.next()?, words.next()?);
        let on = device_ino.rsplit(|&b| b == b':').next()?;
        (kind == b"FLOCK" && mode == b"WRITE" && decimal::parse(on) == Some(ino)).then(|| {
            HeldLock {
                taken_by: decimal::parse(taker)
                    .and_then(|n| i32::try_from(n).ok())
                    .and_then(Pid::from_raw),
            }
        })
    })
}

/// Calls `visit` with each PID in `/proc` until it returns `false`.
#[cfg(daemonic_procfs)]
fn for_each_pid(mut visit: impl FnMut(Pid) -> bool) -> io::Result<()> {
    let proc = rustix::fs::open(
        c"/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
    let mut entries = RawDir::new(&proc, &mut buf);
    while let Some(entry) = entries.next() {
        let Ok(entry) = entry else { continue };
        let pid = decimal::parse(entry.file_name().to_bytes())
            .and_then(|n| i32::try_from(n).ok())
            .and_then(Pid::from_raw);
        if let Some(pid) = pid {
            if !visit(pid) {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(not(daemonic_procfs))]
fn for_each_pid(_visit: impl FnMut(Pid) -> bool) -> io::Result<()> {
    Err(Errno::NOSYS)
}

#[cfg(daemonic_procfs)]
fn holds_stat(pid: Pid, wanted: &Stat) -> io::Result<bool> {
    each_fd_of(pid, wanted, |_, _| true)
}

/// Calls `visit` with `/proc/PID/fd` and the name of each of the process's
/// fds open on the file `wanted` describes (same device and inode), until
/// it returns `true`; whether one did.
#[cfg(daemonic_procfs)]
fn each_fd_of(
    pid: Pid,
    wanted: &Stat,
    mut visit: impl FnMut(&rustix::fd::OwnedFd, &core::ffi::CStr) -> bool,
) -> io::Result<bool> {
    let mut path = [0u8; 32];
    let fds = rustix::fs::open(
        proc_fd_path(pid, &mut path),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = RawDir::new(&fds, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name = entry.file_name();
        if decimal::parse(name.to_bytes()).is_none() {
            continue; // "." and ".."
        }
        // Following the magic link stats the open file itself, whatever
        // its path has become (renamed, removed, another mount namespace).
        if let Ok(open) = rustix::fs::statat(fds.as_fd(), name, AtFlags::empty()) {
            if open.st_dev == wanted.st_dev && open.st_ino == wanted.st_ino && visit(&fds, name) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(not(daemonic_procfs))]
fn holds_stat(_pid: Pid, _wanted: &Stat) -> io::Result<bool> {
    Err(Errno::NOSYS)
}

/// `/proc/PID/fd` as a C string in `buf`.
#[cfg(daemonic_procfs)]
fn proc_fd_path(pid: Pid, buf: &mut [u8; 32]) -> &core::ffi::CStr {
    let digits = Decimal::pid(pid);
    let mut len = 0;
    for part in [&b"/proc/"[..], digits.digits(), b"/fd\0"] {
        buf[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    // Digits and fixed text: the only NUL is the last byte.
    core::ffi::CStr::from_bytes_with_nul(&buf[..len]).unwrap_or(c"/proc/self/fd")
}

#[cfg(all(test, daemonic_procfs))]
mod tests {
    use super::*;

    #[test]
    fn this_process_holds_what_it_opened_and_not_what_it_did_not() {
        let dir = std::format!("/tmp/daemonic-proof-{}\0", std::process::id());
        let dir = core::ffi::CStr::from_bytes_with_nul(dir.as_bytes()).unwrap();
        let _ = rustix::fs::mkdir(dir, crate::trust::mode(0o700));
        let dir_fd =
            rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty()).unwrap();
        let create = |name: &core::ffi::CStr| {
            let flags = OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC;
            rustix::fs::openat(&dir_fd, name, flags, crate::trust::mode(0o600)).unwrap()
        };
        let open = create(c"open");
        let me = rustix::process::getpid();
        assert_eq!(holds(me, open.as_fd()), Ok(true));
        // A file nobody holds: open it, learn its stat, close it.
        let closed_stat = rustix::fs::fstat(create(c"closed")).unwrap();
        assert_eq!(holds_stat(me, &closed_stat), Ok(false));
        // Nobody else holds `open`.
        assert_eq!(find_holder(open.as_fd(), None), Ok(None));
        for name in [c"open", c"closed"] {
            rustix::fs::unlinkat(&dir_fd, name, AtFlags::empty()).unwrap();
        }
        rustix::fs::rmdir(dir).unwrap();
    }

    #[test]
    fn a_lock_is_seen_only_through_the_description_it_was_taken_on() {
        let path = std::format!("/tmp/daemonic-heldlock-{}\0", std::process::id());
        let path = core::ffi::CStr::from_bytes_with_nul(path.as_bytes()).unwrap();
        let flags = OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC;
        let locked = rustix::fs::open(path, flags, crate::trust::mode(0o600)).unwrap();
        let other =
            rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let me = rustix::process::getpid();
        assert_eq!(held_lock(me, other.as_fd()), Ok(None), "no lock yet");
        rustix::fs::flock(&locked, rustix::fs::FlockOperation::LockExclusive).unwrap();
        // Either fd names the file; the lock shows on the locked one only,
        // and this process took it.
        assert_eq!(
            held_lock(me, other.as_fd()),
            Ok(Some(HeldLock { taken_by: Some(me) }))
        );
        drop(locked);
        assert_eq!(held_lock(me, other.as_fd()), Ok(None), "released");
        rustix::fs::unlink(path).unwrap();
    }

    #[test]
    fn flock_lines() {
        let info = b"pos:\t0\nflags:\t0100000\nlock:\t1: FLOCK  ADVISORY  WRITE 9237 fe:00:10010754 0 EOF\n";
        assert_eq!(
            flock_line(info, 10010754),
            Some(HeldLock {
                taken_by: Pid::from_raw(9237)
            })
        );
        assert_eq!(flock_line(info, 1001075), None);
        let shared = b"lock:\t1: FLOCK  ADVISORY  READ 9237 fe:00:7 0 EOF\n";
        assert_eq!(flock_line(shared, 7), None);
        let posix = b"lock:\t1: POSIX  ADVISORY  WRITE 9237 fe:00:7 0 EOF\n";
        assert_eq!(flock_line(posix, 7), None);
    }

    #[test]
    fn the_path_is_proc_pid_fd() {
        let mut buf = [0u8; 32];
        let pid = Pid::from_raw(i32::MAX).unwrap();
        assert_eq!(proc_fd_path(pid, &mut buf), c"/proc/2147483647/fd");
    }
}
