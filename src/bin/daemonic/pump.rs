//! The program's output, carried by the supervisor (`--supervise` with an
//! output file, `--syslog`, or both): the program writes into a pipe, the
//! supervisor reads it and hands each piece to its sinks, a log file
//! ([`LogFile`]: stamps, rotation, recreation, a full disk waited out) and
//! the syslog socket ([`Syslog`]).
//!
//! Fixed buffers, no allocation: the supervisor's loop calls [`Pump::drain`]
//! when a pipe is readable and once more when the program ends, so what it
//! wrote last is written before the supervisor exits or restarts it.
//!
//! A full disk loses nothing: when the file cannot take a piece, the rest
//! of what was read is held, the pipe is no longer read (the program's
//! writes then wait once it fills, 64 KiB on Linux), and the file is tried
//! again: at once after the oldest rotated file was removed to make room,
//! else after 50 ms, doubling up to a second. The supervisor stays in its
//! loop meanwhile, answering signals.

use core::time::Duration;

use daemonic::Errno;
use daemonic::fd::{BorrowedFd, RawFd};

use crate::logfile::{self, LogFile};
use crate::sys;
use crate::syslog::Syslog;

/// `--rotate SIZE[:COUNT]`: the files kept beside the current one when
/// none is given (svlogd's default).
pub const DEFAULT_ROTATE_COUNT: u32 = 10;

/// The first wait before a stalled file is tried again, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_CAP: Duration = Duration::from_secs(1);

/// Where one stream of the program's output goes: a file, syslog, or both.
#[derive(Clone, Copy)]
pub struct Dest {
    pub file: Option<logfile::Config>,
    pub syslog: Option<crate::syslog::Config>,
}

/// One pipe and where it goes.
struct Source {
    read: RawFd,
    file: Option<LogFile>,
    syslog: Option<Syslog>,
    /// What was read but not yet taken, while the file is stalled.
    held: &'static mut [u8],
    held_len: usize,
    /// When to try the stalled file again, and the wait after that.
    retry: Option<(Duration, Duration)>,
}

/// The program's output: one or two pipes (stdout, and stderr at a syslog
/// priority of its own), and one read buffer.
pub struct Pump {
    sources: [Option<Source>; 2],
    /// The program's PID, for syslog's `TAG[PID]`.
    pid: i32,
    /// The buffers live in memory of their own (`sys::zeroed`): untouched,
    /// and so not resident, until output comes, and never copied.
    buf: &'static mut [u8],
}

impl Pump {
    /// `outputs`: each pipe's non-blocking read end and where it goes.
    ///
    /// # Errors
    ///
    /// `ENOMEM`: no memory for the buffers.
    pub fn new(outputs: [Option<(RawFd, Dest)>; 2]) -> Result<Pump, Errno> {
        let source = |output: Option<(RawFd, Dest)>| -> Result<Option<Source>, Errno> {
            let Some((read, dest)) = output else {
                return Ok(None);
            };
            Ok(Some(Source {
                read,
                file: dest.file.map(LogFile::new).transpose()?,
                syslog: dest.syslog.map(Syslog::new).transpose()?,
                held: sys::zeroed(16384)?,
                held_len: 0,
                retry: None,
            }))
        };
        let [first, second] = outputs;
        Ok(Pump {
            sources: [source(first)?, source(second)?],
            pid: 0,
            buf: sys::zeroed(16384)?,
        })
    }

    /// The program now running (for syslog's `TAG[PID]`).
    pub fn set_pid(&mut self, pid: i32) {
        self.pid = pid;
    }

    /// The pipes' read ends to poll, -1 where there is none or while its
    /// file is stalled (`poll` passes over it).
    pub fn fds(&self) -> [libc::c_int; 2] {
        let fd = |source: &Option<Source>| {
            source
                .as_ref()
                .filter(|s| s.retry.is_none())
                .map_or(-1, |s| s.read)
        };
        [fd(&self.sources[0]), fd(&self.sources[1])]
    }

    /// When a stalled file is to be tried again, if one is.
    pub fn retry_at(&self) -> Option<Duration> {
        self.sources
            .iter()
            .flatten()
            .filter_map(|source| source.retry.map(|(at, _)| at))
            .min()
    }

    /// Whether SIGHUP is the supervisor's (reopen a file it does not
    /// rotate), not the program's.
    pub fn takes_hangup(&self) -> bool {
        self.sources
            .iter()
            .flatten()
            .any(|source| source.file.as_ref().is_some_and(LogFile::takes_hangup))
    }

    /// Reads and hands on everything the pipes hold now (but a stalled
    /// file's pipe); with `end`, the program has ended: a line left without
    /// its newline goes out too.
    pub fn drain(&mut self, end: bool) {
        self.retry_due();
        let (sources, buf, pid) = (&mut self.sources, &mut self.buf, self.pid);
        for source in sources.iter_mut().flatten() {
            // SAFETY: the read end stays open for the supervisor's life.
            let read = unsafe { BorrowedFd::borrow_raw(source.read) };
            while source.retry.is_none() {
                match rustix::io::read(read, &mut **buf) {
                    Ok(0) | Err(Errno::AGAIN) => break,
                    Ok(n) => source.take(&buf[..n], pid),
                    Err(Errno::INTR) => continue,
                    Err(_) => break,
                }
            }
            if end && source.retry.is_none() {
                if let Some(syslog) = source.syslog.as_mut() {
                    syslog.end(pid);
                }
            }
        }
    }

    /// Tries again each stalled file whose time has come.
    pub fn retry_due(&mut self) {
        let now = sys::now();
        let pid = self.pid;
        for source in self.sources.iter_mut().flatten() {
            if source.retry.is_some_and(|(at, _)| at <= now) {
                source.try_again(pid);
            }
        }
    }

    /// A line of the supervisor's own (the program's status, a restart),
    /// into the file on its standard error like the program's, stamped
    /// when asked; false when no such file is carried (then it goes to
    /// standard error as it is).
    pub fn say(&mut self, line: &[u8]) -> bool {
        let pid = self.pid;
        let Some(source) = self
            .sources
            .iter_mut()
            .flatten()
            .find(|source| source.file.as_ref().is_some_and(LogFile::on_stderr))
        else {
            return false;
        };
        if source.retry.is_some() {
            // Behind what waits, if it fits; else it goes with the rest.
            source.hold(line);
        } else {
            source.take(line, pid);
        }
        true
    }

    /// Waits (sleeping, up to `deadline`) for stalled files to take what
    /// they hold: the supervisor is about to exit.
    pub fn finish(&mut self, deadline: Duration) {
        loop {
            // What the pipes still hold too, not only what was held back.
            self.drain(true);
            match self.retry_at() {
                Some(at) if at <= deadline => sys::sleep(at.saturating_sub(sys::now())),
                _ => break,
            }
        }
    }

    /// Opens each file anew that is not rotated (SIGHUP: logrotate moved it).
    pub fn reopen(&mut self) {
        for source in self.sources.iter_mut().flatten() {
            if let Some(file) = source.file.as_mut().filter(|f| f.takes_hangup()) {
                file.reopen();
            }
        }
    }
}

impl Source {
    /// Hands `bytes` to the sinks, a piece at a time; what the file cannot
    /// take yet is held, and the file tried again later.
    fn take(&mut self, bytes: &[u8], pid: i32) {
        let taken = hand_on(&mut self.file, &mut self.syslog, bytes, pid);
        if taken < bytes.len() || self.file.as_ref().is_some_and(|f| f.stalled().is_some()) {
            self.hold(&bytes[taken..]);
            self.stalled();
        }
    }

    /// Keeps `bytes` for when the file takes writes again. Only what one
    /// read brings (or a line of the supervisor's) is ever held: the pipe
    /// is not read meanwhile.
    fn hold(&mut self, bytes: &[u8]) {
        let room = self.held.len() - self.held_len;
        let kept = bytes.len().min(room);
        self.held[self.held_len..self.held_len + kept].copy_from_slice(&bytes[..kept]);
        self.held_len += kept;
    }

    /// The file did not take a piece: when to try again. At once when the
    /// oldest rotated file could be removed to make room.
    fn stalled(&mut self) {
        let now = sys::now();
        let made_room = self.file.as_mut().is_some_and(LogFile::drop_oldest);
        let wait = self.retry.map_or(RETRY_FIRST, |(_, wait)| wait);
        self.retry = Some(if made_room {
            (now, wait)
        } else {
            (now + wait, (wait * 2).min(RETRY_CAP))
        });
    }

    fn try_again(&mut self, pid: i32) {
        let Some(file) = self.file.as_mut() else {
            self.retry = None;
            return;
        };
        if !file.retry() {
            self.stalled();
            return;
        }
        let held_len = self.held_len;
        let taken = hand_on(
            &mut self.file,
            &mut self.syslog,
            &self.held[..held_len],
            pid,
        );
        self.held.copy_within(taken..held_len, 0);
        self.held_len = held_len - taken;
        let still = self.file.as_ref().is_some_and(|f| f.stalled().is_some());
        if self.held_len > 0 || still {
            self.stalled();
        } else {
            self.retry = None;
        }
    }
}

/// Hands `bytes` to `file` and `syslog` piece by piece (a line at most
/// where lines matter); how many bytes were taken before the file stalled.
fn hand_on(
    file: &mut Option<LogFile>,
    syslog: &mut Option<Syslog>,
    bytes: &[u8],
    pid: i32,
) -> usize {
    let mut stamp = [0u8; logfile::STAMP];
    let stamp = timestamp(wall_clock(), &mut stamp);
    let by_line = syslog.is_some();
    let mut taken = 0;
    while taken < bytes.len() {
        let rest = &bytes[taken..];
        let len = match file.as_ref() {
            Some(file) => file.piece_len(rest, by_line),
            None => logfile::line_len(rest),
        };
        let piece = &rest[..len];
        if let Some(file) = file.as_mut() {
            if !file.take(piece, stamp) {
                return taken;
            }
        }
        if let Some(syslog) = syslog.as_mut() {
            syslog.take(piece, pid);
        }
        taken += len;
        if file.as_ref().is_some_and(|f| f.stalled().is_some()) {
            return taken;
        }
    }
    if let Some(file) = file.as_mut() {
        let _ = file.settle();
    }
    taken
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
        let t = Duration::new(1_795_719_007, 123_000_000);
        assert_eq!(timestamp(t, &mut buf), b"2026-11-26T18:50:07.123Z ");
        // A leap day.
        let t = Duration::from_secs(951_782_400);
        assert_eq!(timestamp(t, &mut buf), b"2000-02-29T00:00:00.000Z ");
    }
}
