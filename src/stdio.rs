//! Putting files on the standard streams (fds 0, 1 and 2) in the daemon.

use core::ffi::CStr;

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::{self, Errno, FdFlags};

/// Where one standard stream of the daemon goes.
#[derive(Clone, Copy, Debug)]
pub enum Stdio<'a> {
    /// `/dev/null`, checked to be the real null device (the default, as in
    /// daemon(7) and daemon(3)).
    Null,
    /// Left as the caller had it, like daemon(3)'s `noclose`. A terminal left
    /// here is not a controlling terminal any more, but writes to it still
    /// reach whoever sits at it.
    Inherit,
    /// A file opened in the daemon: standard input read-only; standard output
    /// and error for appending, created with mode 0640 (less the umask) when
    /// missing. A relative path is resolved against the caller's working
    /// directory at [`crate::Plan::start`].
    File(&'a CStr),
    /// An fd the caller opened before starting, duplicated onto the stream.
    Fd(BorrowedFd<'a>),
}

impl Stdio<'_> {
    /// The path this stream is opened from, if any.
    pub(crate) fn path(&self) -> Option<&CStr> {
        match self {
            Stdio::File(path) => Some(path),
            _ => None,
        }
    }
}

/// One of the three standard streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdin,
    Stdout,
    Stderr,
}

impl Stream {
    fn fd_number(self) -> RawFd {
        match self {
            Stream::Stdin => 0,
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }

    fn open_flags(self) -> OFlags {
        // O_NOCTTY: should the file be a terminal, opening it must not make
        // it the controlling terminal (the daemon is no session leader, so it
        // could not anyway; this keeps that true under `Inherit`-like setups).
        let common = OFlags::NOCTTY | OFlags::CLOEXEC;
        match self {
            Stream::Stdin => common | OFlags::RDONLY,
            Stream::Stdout | Stream::Stderr => {
                common | OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE
            }
        }
    }

    /// `dup2(fd, self)`.
    fn dup_onto(self, fd: impl AsFd) -> io::Result<()> {
        match self {
            Stream::Stdin => rustix::stdio::dup2_stdin(fd),
            Stream::Stdout => rustix::stdio::dup2_stdout(fd),
            Stream::Stderr => rustix::stdio::dup2_stderr(fd),
        }
    }
}

/// Mode of an output file the daemon creates (before the umask).
const OUTPUT_FILE_MODE: u32 = 0o640;

const DEV_NULL: &CStr = c"/dev/null";

/// `/dev/null`, opened (and checked) once for all the streams that want it.
#[derive(Default)]
pub(crate) struct DevNull {
    fd: Option<OwnedFd>,
    /// It landed on a stream's own number (that stream was closed) and is
    /// that stream now: it stays open.
    is_a_stream: bool,
}

impl DevNull {
    /// Closes the shared fd, unless it became one of the streams.
    pub(crate) fn done(self) {
        if let (Some(fd), true) = (self.fd, self.is_a_stream) {
            let _ = fd.into_raw_fd();
        }
    }
}

/// Puts what `stdio` names on `stream`. Runs after fork: system calls only.
pub(crate) fn redirect(
    stdio: &Stdio<'_>,
    stream: Stream,
    dir: BorrowedFd<'_>,
    null: &mut DevNull,
) -> io::Result<()> {
    match *stdio {
        Stdio::Inherit => Ok(()),
        Stdio::Fd(fd) => place_borrowed(fd, stream),
        Stdio::Null => {
            let fd = match &null.fd {
                Some(fd) => fd,
                None => null.fd.insert(open_dev_null()?),
            };
            if fd.as_raw_fd() == stream.fd_number() {
                null.is_a_stream = true;
            }
            place_borrowed(fd.as_fd(), stream)
        }
        Stdio::File(path) => {
            let mode = crate::trust::mode(OUTPUT_FILE_MODE);
            let fd = rustix::fs::openat(dir, path, stream.open_flags(), mode)?;
            place_owned(fd, stream)
        }
    }
}

/// Opens `/dev/null` and checks it is the null device: on a broken or
/// tampered system it may be a regular file that would collect (or feed)
/// the daemon's streams. glibc's daemon(3) makes the same check.
fn open_dev_null() -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        DEV_NULL,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::CharacterDevice {
        return Err(Errno::NODEV);
    }
    #[cfg(daemonic_dev_null_1_3)]
    {
        let rdev = stat.st_rdev;
        if rustix::fs::major(rdev) != 1 || rustix::fs::minor(rdev) != 3 {
            return Err(Errno::NODEV);
        }
    }
    Ok(fd)
}

/// Moves a freshly opened fd onto the stream, leaving exactly one fd.
fn place_owned(fd: OwnedFd, stream: Stream) -> io::Result<()> {
    if fd.as_raw_fd() == stream.fd_number() {
        // The stream was closed, so open(2) handed out its very number: keep
        // the fd, but without the close-on-exec flag it was opened with.
        rustix::io::fcntl_setfd(&fd, FdFlags::empty())?;
        let _ = fd.into_raw_fd();
        return Ok(());
    }
    stream.dup_onto(&fd)
    // `fd` closes here; the stream keeps its own copy, which dup2 made
    // without close-on-exec.
}

/// Duplicates the caller's fd onto the stream.
fn place_borrowed(fd: BorrowedFd<'_>, stream: Stream) -> io::Result<()> {
    if fd.as_raw_fd() == stream.fd_number() {
        return rustix::io::fcntl_setfd(fd, FdFlags::empty());
    }
    stream.dup_onto(fd)
}
