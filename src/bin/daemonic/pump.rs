//! The program's output, carried by the supervisor (`--supervise` with
//! `--rotate` or `--timestamps`): the program writes into a pipe, the
//! supervisor reads it and writes the file itself, so that it can put a
//! time on each line, rotate the file by size (`FILE` -> `FILE.1` ...
//! `FILE.COUNT`, the oldest dropped, as svlogd does) or, without
//! `--rotate`, reopen it on SIGHUP after a logrotate or newsyslog moved it
//! (as FreeBSD daemon(8) `-H` does).
//!
//! One fixed buffer, no allocation: the supervisor's loop calls [`Pump::drain`]
//! when the pipe is readable and once more when the program ends, so what it
//! wrote last is written before the supervisor exits or restarts it. Writes
//! to the file block: a slow disk slows the supervisor, the pipe fills (64
//! KiB on Linux) and then the program's writes wait; nothing is dropped.

use core::ffi::CStr;
use core::time::Duration;

use daemonic::Errno;
use daemonic::fd::{AsRawFd, BorrowedFd, RawFd};
use rustix::fs::{Mode, OFlags};

use crate::out::{Decimal, write_all};

/// `--rotate SIZE[:COUNT]`: the files kept beside the current one when
/// none is given (svlogd's default).
pub const DEFAULT_ROTATE_COUNT: u32 = 10;

/// How the output is carried.
#[derive(Clone, Copy)]
pub struct Spec {
    /// The file, absolute (the supervisor's directory is `/`).
    pub path: &'static CStr,
    /// `--rotate SIZE:COUNT`.
    pub rotate: Option<(u64, u32)>,
    /// `--timestamps`.
    pub timestamps: bool,
    /// Which of the supervisor's streams the file is on (1, 2 or both):
    /// where the lines are written, and what a reopen replaces.
    pub stdout: bool,
    pub stderr: bool,
}

impl Spec {
    /// The supervisor's fd the lines go to.
    fn fd(&self) -> libc::c_int {
        if self.stdout { 1 } else { 2 }
    }
}

/// The pipe's read end and the file the lines go to (fds 1 and 2 of the
/// supervisor, where the library opened it).
pub struct Pump {
    spec: Spec,
    /// The pipe's read end (the supervisor's for its life).
    read: RawFd,
    /// Bytes in the current file, for `--rotate`.
    written: u64,
    /// The next byte read starts a line (for `--timestamps`).
    line_start: bool,
    buf: [u8; 16384],
}

impl Pump {
    /// `read` must be non-blocking; the file is already on fds 1 and 2.
    pub fn new(spec: Spec, read: RawFd) -> Pump {
        // SAFETY: the supervisor's stream stays open for its life (the
        // library put the file there; reopen replaces it in place).
        let file = unsafe { BorrowedFd::borrow_raw(spec.fd()) };
        let written = rustix::fs::fstat(file).map_or(0, |stat| stat.st_size as u64);
        Pump {
            spec,
            read,
            written,
            line_start: true,
            buf: [0; 16384],
        }
    }

    pub fn fd(&self) -> libc::c_int {
        self.read
    }

    /// Whether SIGHUP is the supervisor's (reopen), not the program's.
    pub fn takes_hangup(&self) -> bool {
        self.spec.rotate.is_none()
    }

    /// Reads and writes out everything the pipe holds now.
    pub fn drain(&mut self) {
        // SAFETY: the read end stays open for the supervisor's life.
        let read = unsafe { BorrowedFd::borrow_raw(self.read) };
        loop {
            match rustix::io::read(read, &mut self.buf) {
                Ok(0) | Err(Errno::AGAIN) => return,
                Ok(n) => self.write_out(n),
                Err(Errno::INTR) => continue,
                Err(_) => return,
            }
        }
    }

    /// Writes the first `len` bytes of the buffer, line by line when each
    /// needs a time or the file may have to rotate at a line's end.
    fn write_out(&mut self, len: usize) {
        let mut at = 0;
        while at < len {
            let rest = &self.buf[at..len];
            let line_end = rest.iter().position(|&b| b == b'\n');
            let piece = line_end.map_or(rest.len(), |end| end + 1);
            if self.line_start && self.spec.timestamps {
                let mut stamp = [0u8; 25];
                let stamp = timestamp(wall_clock(), &mut stamp);
                write_all(self.spec.fd(), stamp);
                self.written += stamp.len() as u64;
            }
            write_all(self.spec.fd(), &self.buf[at..at + piece]);
            self.written += piece as u64;
            self.line_start = line_end.is_some();
            at += piece;
            if let Some((size, count)) = self.spec.rotate {
                // At a line's end, or mid-line once a line alone passes it.
                if self.written >= size && (self.line_start || self.written >= 2 * size) {
                    self.rotate(count);
                }
            }
        }
    }

    /// `FILE.(N-1)` -> `FILE.N` ... `FILE` -> `FILE.1`, the oldest dropped,
    /// then a fresh `FILE`.
    fn rotate(&mut self, count: u32) {
        let mut from = [0u8; 4120];
        let mut to = [0u8; 4120];
        for n in (1..count).rev() {
            if let (Some(from), Some(to)) = (
                numbered(self.spec.path, n, &mut from),
                numbered(self.spec.path, n + 1, &mut to),
            ) {
                let _ = rustix::fs::rename(from, to);
            }
        }
        if count == 0 {
            let _ = rustix::fs::unlink(self.spec.path);
        } else if let Some(to) = numbered(self.spec.path, 1, &mut to) {
            let _ = rustix::fs::rename(self.spec.path, to);
        }
        self.reopen();
    }

    /// Opens `FILE` anew (created, appended to) onto the supervisor's
    /// stream(s): after a rotation, or a SIGHUP once something else moved it
    /// away.
    pub fn reopen(&mut self) {
        let flags =
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOCTTY | OFlags::CLOEXEC;
        let Ok(file) = rustix::fs::open(self.spec.path, flags, Mode::from_raw_mode(0o640)) else {
            // Kept on the old file, which is better than nowhere.
            return;
        };
        // SAFETY: dup2 onto the supervisor's own standard streams, which
        // then name the new file; the old descriptions are closed.
        unsafe {
            if self.spec.stdout {
                libc::dup2(file.as_raw_fd(), 1);
            }
            if self.spec.stderr {
                libc::dup2(file.as_raw_fd(), 2);
            }
        }
        self.written = rustix::fs::fstat(&file).map_or(0, |stat| stat.st_size as u64);
    }
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

/// The time since the Unix epoch (`CLOCK_REALTIME`).
fn wall_clock() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec as u32)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ ` (ISO 8601, UTC) for `since_epoch`, into
/// `buf`: plain arithmetic (days to a civil date), no C library time
/// functions, which may take the time zone's lock.
fn timestamp(since_epoch: Duration, buf: &mut [u8; 25]) -> &[u8] {
    let secs = since_epoch.as_secs();
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fields: [(u64, usize); 7] = [
        (year.clamp(0, 9999) as u64, 4),
        (month as u64, 2),
        (day as u64, 2),
        (day_secs / 3600, 2),
        (day_secs / 60 % 60, 2),
        (day_secs % 60, 2),
        (u64::from(since_epoch.subsec_millis()), 3),
    ];
    let separators = [b'-', b'-', b'T', b':', b':', b'.', b'Z'];
    let mut at = 0;
    for ((value, width), separator) in fields.into_iter().zip(separators) {
        let mut v = value;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        at += width;
        buf[at] = separator;
        at += 1;
    }
    buf[at] = b' ';
    &buf[..=at]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc() {
        let mut buf = [0u8; 25];
        assert_eq!(
            timestamp(Duration::ZERO, &mut buf),
            b"1970-01-01T00:00:00.000Z "
        );
        // 2026-11-26T18:50:07.123Z
        let t = Duration::new(1_795_719_007, 123_000_000);
        assert_eq!(timestamp(t, &mut buf), b"2026-11-26T18:50:07.123Z ");
        // A leap day.
        let t = Duration::from_secs(951_782_400);
        assert_eq!(timestamp(t, &mut buf), b"2000-02-29T00:00:00.000Z ");
    }

    #[test]
    fn numbered_paths() {
        let mut buf = [0u8; 4120];
        assert_eq!(
            numbered(c"/var/log/x", 10, &mut buf),
            Some(c"/var/log/x.10")
        );
    }
}
