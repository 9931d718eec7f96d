//! A log file the supervisor writes for the program: lines stamped
//! (`--timestamps`), rotated by size (`--rotate`, as svlogd does), made
//! anew when deleted or moved away, and a full disk waited out without
//! losing a byte, as svlogd and multilog do.
//!
//! What is to be written gathers in one fixed buffer. A write that fails
//! with ENOSPC, EDQUOT or EIO keeps what it could not write and says the
//! file is stalled: the caller takes nothing more until [`LogFile::retry`]
//! writes it; meanwhile the program's pipe fills and its writes wait. Any
//! other error cannot be waited out: those bytes are dropped, counted, and
//! a line says how many once a write succeeds again. Nothing allocates.

use core::ffi::CStr;
use core::time::Duration;

use daemonic::Errno;
use daemonic::decimal::Decimal;
use daemonic::fd::{AsRawFd, BorrowedFd};
use rustix::fs::{FileType, Mode, OFlags};

use crate::sys;

/// The longest stamp (`--timestamps`): `2026-11-26T18:50:07.123Z `.
pub const STAMP: usize = 25;

/// How the file is kept.
#[derive(Clone, Copy)]
pub struct Config {
    /// Absolute (the supervisor's directory is `/`).
    pub path: &'static CStr,
    /// `--rotate SIZE:COUNT`.
    pub rotate: Option<(u64, u32)>,
    pub timestamps: bool,
    /// Which of the supervisor's streams the file is on: where lines are
    /// written, and what a reopen replaces.
    pub stdout: bool,
    pub stderr: bool,
}

pub struct LogFile {
    config: Config,
    /// Bytes in the current file, for `--rotate`.
    written: u64,
    /// The next byte taken starts a line.
    line_start: bool,
    out: &'static mut [u8],
    out_len: usize,
    /// Why the last write failed, while what it could not write waits.
    stall: Option<Errno>,
    /// The file passed its size: rotate once what is gathered is written.
    rotate_due: bool,
    /// Lines dropped by a write error nothing can wait out.
    lost: u64,
    lost_errno: Errno,
    /// When the path was last compared with the open file (monotonic).
    checked: Duration,
}

/// Whether a write error is one to wait out: the disk or quota full, or
/// the device failing for a while (a flash being erased, a USB stick).
pub fn waits(errno: Errno) -> bool {
    matches!(errno, Errno::NOSPC | Errno::DQUOT | Errno::IO)
}

impl LogFile {
    /// # Errors
    ///
    /// `ENOMEM`: no memory for the buffer.
    pub fn new(config: Config) -> Result<LogFile, Errno> {
        let mut file = LogFile {
            config,
            written: 0,
            line_start: true,
            out: sys::zeroed(16384)?,
            out_len: 0,
            stall: None,
            rotate_due: false,
            lost: 0,
            lost_errno: Errno::IO,
            checked: sys::now(),
        };
        file.written = rustix::fs::fstat(file.fd()).map_or(0, |stat| stat.st_size as u64);
        Ok(file)
    }

    /// Why the file is stalled, if it is.
    pub fn stalled(&self) -> Option<Errno> {
        self.stall
    }

    /// Whether the file is on the supervisor's standard error (where its
    /// own lines go).
    pub fn on_stderr(&self) -> bool {
        self.config.stderr
    }

    /// Whether SIGHUP is for this file (it is reopened, not rotated).
    pub fn takes_hangup(&self) -> bool {
        self.config.rotate.is_none()
    }

    /// How much of `bytes` to take as one piece: a line at most with
    /// stamps (or when `by_line`), else up to where the file may rotate;
    /// never more than the buffer holds.
    pub fn piece_len(&self, bytes: &[u8], by_line: bool) -> usize {
        let room = self.out.len() - STAMP;
        let end = if self.config.timestamps || by_line {
            line_len(bytes)
        } else {
            self.until_rotation(bytes)
        };
        end.min(room)
    }

    /// Takes `piece` (stamped with `stamp` where a line starts, when
    /// stamps are asked for): false, taking nothing, when the file is
    /// stalled or becomes so making room.
    pub fn take(&mut self, piece: &[u8], stamp: &[u8]) -> bool {
        if self.stall.is_some() {
            return false;
        }
        let stamp = if self.config.timestamps && self.line_start {
            stamp
        } else {
            &[][..]
        };
        if self.out_len + stamp.len() + piece.len() > self.out.len() && self.flush().is_err() {
            return false;
        }
        if stamp.is_empty() && self.out_len == 0 {
            // Nothing gathered and nothing to add: straight from the read
            // buffer, as cat writes (what the disk refuses is kept).
            self.write_direct(piece);
        } else {
            for part in [stamp, piece] {
                self.out[self.out_len..self.out_len + part.len()].copy_from_slice(part);
                self.out_len += part.len();
            }
        }
        self.written += (stamp.len() + piece.len()) as u64;
        self.line_start = piece.last() == Some(&b'\n');
        if let Some((size, _)) = self.config.rotate {
            // At a line's end, or mid-line once a line alone passes it.
            if self.written >= size && (self.line_start || self.written >= 2 * size) {
                self.rotate_due = true;
                let _ = self.settle();
            }
        }
        true
    }

    /// Writes what is gathered, and rotates if due.
    ///
    /// # Errors
    ///
    /// The file is stalled: why.
    pub fn settle(&mut self) -> Result<(), Errno> {
        self.flush()?;
        if self.rotate_due {
            self.rotate_due = false;
            self.rotate();
        }
        Ok(())
    }

    /// Tries again to write what waits: true once the file takes writes.
    pub fn retry(&mut self) -> bool {
        self.stall = None;
        self.settle().is_ok()
    }

    /// Writes what is gathered. An error to wait out leaves the rest
    /// gathered and the file stalled; any other drops it, counted.
    fn flush(&mut self) -> Result<(), Errno> {
        self.check_path();
        let (done, failed) = write_some(self.fd(), &self.out[..self.out_len]);
        match failed {
            Some(errno) if waits(errno) => {
                self.out.copy_within(done..self.out_len, 0);
                self.out_len -= done;
                self.stall = Some(errno);
                return Err(errno);
            }
            Some(errno) => self.drop_lines(done..self.out_len, errno),
            // Said once a write has gone through again.
            None if self.lost > 0 && done > 0 => self.say_lost(),
            None => {}
        }
        self.out_len = 0;
        Ok(())
    }

    /// Writes `piece` (no longer than the buffer) without gathering it;
    /// what a full disk refuses is gathered, and the file stalled.
    fn write_direct(&mut self, piece: &[u8]) {
        self.check_path();
        let (done, failed) = write_some(self.fd(), piece);
        let rest = &piece[done..];
        match failed {
            Some(errno) if waits(errno) => {
                self.out[..rest.len()].copy_from_slice(rest);
                self.out_len = rest.len();
                self.stall = Some(errno);
            }
            Some(errno) => {
                self.lost += lines_in(rest);
                self.lost_errno = errno;
            }
            None if self.lost > 0 => self.say_lost(),
            None => {}
        }
    }

    /// Counts the gathered bytes in `range` as lost lines, to `errno`.
    fn drop_lines(&mut self, range: core::ops::Range<usize>, errno: Errno) {
        self.lost += lines_in(&self.out[range]);
        self.lost_errno = errno;
    }

    /// `daemonic: N lines lost (...)`, once a write went through again.
    fn say_lost(&mut self) {
        let count = Decimal::new(self.lost);
        let errno = Decimal::new(u64::from(self.lost_errno.raw_os_error().unsigned_abs()));
        let mut note = [0u8; 96];
        let mut len = 0;
        for part in [
            &b"daemonic: "[..],
            count.digits(),
            b" lines lost (write failed: os error ",
            errno.digits(),
            b")\n",
        ] {
            note[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        crate::out::write_all(self.fd().as_raw_fd(), &note[..len]);
        self.lost = 0;
    }

    /// Removes the oldest rotated file (`FILE.COUNT`, or the highest one
    /// there is), to make room on a full disk: whether one went.
    pub fn drop_oldest(&mut self) -> bool {
        let Some((_, count)) = self.config.rotate else {
            return false;
        };
        let mut name = [0u8; 4120];
        (1..=count).rev().any(|n| {
            numbered(self.config.path, n, &mut name).is_some_and(|n| rustix::fs::unlink(n).is_ok())
        })
    }

    /// How much of `bytes` to write before the file may rotate: through
    /// the line that takes it past its size, or all of it.
    fn until_rotation(&self, bytes: &[u8]) -> usize {
        let Some((size, _)) = self.config.rotate else {
            return bytes.len();
        };
        let room = size.saturating_sub(self.written) as usize;
        if room >= bytes.len() {
            return bytes.len();
        }
        bytes[room.saturating_sub(1)..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |at| room.saturating_sub(1) + at + 1)
    }

    /// The supervisor's stream the file is on.
    fn fd(&self) -> BorrowedFd<'static> {
        let fd = if self.config.stdout { 1 } else { 2 };
        // SAFETY: the supervisor's standard stream stays open for its life
        // (the library put the file there; a reopen replaces it with dup2).
        unsafe { BorrowedFd::borrow_raw(fd) }
    }

    /// A file deleted or moved away without SIGHUP (a cleanup script, a
    /// logrotate without `postrotate`) is made anew: the path is compared
    /// with the open file at most once a second, as a write comes.
    fn check_path(&mut self) {
        let now = sys::now();
        if now.saturating_sub(self.checked) < Duration::from_secs(1) {
            return;
        }
        self.checked = now;
        let Ok(open) = rustix::fs::fstat(self.fd()) else {
            return;
        };
        if FileType::from_raw_mode(open.st_mode) != FileType::RegularFile {
            return;
        }
        let same = rustix::fs::stat(self.config.path)
            .is_ok_and(|named| named.st_dev == open.st_dev && named.st_ino == open.st_ino);
        if open.st_nlink == 0 || !same {
            self.reopen();
        }
    }

    /// `FILE.(N-1)` -> `FILE.N` ... `FILE` -> `FILE.1`, the oldest dropped,
    /// then a fresh `FILE`. Never a device or a FIFO (`--rotate` refuses
    /// one; this checks the open file again). Out of line: its two path
    /// buffers (8 KB) are on the stack only while it rotates.
    #[inline(never)]
    fn rotate(&mut self) {
        let Some((_, count)) = self.config.rotate else {
            return;
        };
        let regular = rustix::fs::fstat(self.fd())
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile);
        if !regular {
            return;
        }
        let path = self.config.path;
        let mut from = [0u8; 4120];
        let mut to = [0u8; 4120];
        for n in (1..count).rev() {
            if let (Some(from), Some(to)) =
                (numbered(path, n, &mut from), numbered(path, n + 1, &mut to))
            {
                let _ = rustix::fs::rename(from, to);
            }
        }
        if count == 0 {
            let _ = rustix::fs::unlink(path);
        } else if let Some(to) = numbered(path, 1, &mut to) {
            let _ = rustix::fs::rename(path, to);
        }
        self.reopen();
    }

    /// Opens `FILE` anew (created, appended to) onto the supervisor's
    /// stream(s): after a rotation, a SIGHUP, or once the file was found
    /// deleted or moved away.
    pub fn reopen(&mut self) {
        let flags =
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOCTTY | OFlags::CLOEXEC;
        let Ok(file) = rustix::fs::open(self.config.path, flags, Mode::from_raw_mode(0o640)) else {
            // Kept on the old file, which is better than nowhere.
            return;
        };
        // SAFETY: dup2 onto the supervisor's own standard streams, which
        // then name the new file; the old descriptions are closed.
        unsafe {
            if self.config.stdout {
                libc::dup2(file.as_raw_fd(), 1);
            }
            if self.config.stderr {
                libc::dup2(file.as_raw_fd(), 2);
            }
        }
        self.written = rustix::fs::fstat(&file).map_or(0, |stat| stat.st_size as u64);
        self.checked = sys::now();
    }
}

/// Writes `bytes` to `fd`, over short writes and EINTR: how many went,
/// and the error that stopped the rest, if one did.
fn write_some(fd: BorrowedFd<'_>, bytes: &[u8]) -> (usize, Option<Errno>) {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: writes from our slice to an fd the caller holds open.
        let n = unsafe {
            libc::write(
                fd.as_raw_fd(),
                bytes[done..].as_ptr().cast(),
                bytes.len() - done,
            )
        };
        if n > 0 {
            done += n as usize;
            continue;
        }
        let errno = if n == 0 { Errno::IO } else { sys::errno() };
        if errno != Errno::INTR {
            return (done, Some(errno));
        }
    }
    (done, None)
}

/// Through the first newline, or all of `bytes`.
pub fn line_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |at| at + 1)
}

/// Lines in `bytes`, a last one without its newline counted too.
fn lines_in(bytes: &[u8]) -> u64 {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(bytes.last().is_some_and(|&b| b != b'\n'))
}

/// `PATH.N` as a C string in `buf`.
fn numbered<'b>(path: &CStr, n: u32, buf: &'b mut [u8; 4120]) -> Option<&'b CStr> {
    let digits = Decimal::new(u64::from(n));
    let mut len = 0;
    for part in [path.to_bytes(), b".", digits.digits(), b"\0"] {
        buf.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
    }
    CStr::from_bytes_with_nul(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_paths() {
        let mut buf = [0u8; 4120];
        assert_eq!(
            numbered(c"/var/log/x", 10, &mut buf),
            Some(c"/var/log/x.10")
        );
    }

    #[test]
    fn lines_and_errors() {
        assert_eq!(lines_in(b"a\nb\nc"), 3);
        assert_eq!(lines_in(b"a\n"), 1);
        assert_eq!(lines_in(b""), 0);
        assert_eq!(line_len(b"ab\ncd"), 3);
        assert_eq!(line_len(b"abcd"), 4);
        assert!(waits(Errno::NOSPC) && waits(Errno::DQUOT) && waits(Errno::IO));
        assert!(!waits(Errno::BADF) && !waits(Errno::PIPE));
    }
}
