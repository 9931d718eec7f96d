//! The program's output, carried by the supervisor (`--supervise` with
//! `--rotate`, `--timestamps` or `--syslog`): the program writes into a
//! pipe, the supervisor reads it and writes it out itself, so that it can
//! put a time on each line, rotate the file by size (`FILE` -> `FILE.1` ...
//! `FILE.COUNT`, the oldest dropped, as svlogd does), reopen it on SIGHUP
//! after a logrotate or newsyslog moved it (as FreeBSD daemon(8) `-H`
//! does), or send each line to the local syslog socket (daemon(8) `-l`,
//! `-s`, `-T`).
//!
//! Fixed buffers, no allocation: the supervisor's loop calls [`Pump::drain`]
//! when a pipe is readable and once more when the program ends, so what it
//! wrote last is written before the supervisor exits or restarts it. Writes
//! to a file block: a slow disk slows the supervisor, the pipe fills (64
//! KiB on Linux) and then the program's writes wait; nothing is dropped.
//! Datagrams to syslog never block: while the socket is missing or full,
//! lines are counted as lost, and the count is reported in a line of its
//! own once the socket takes lines again.

use core::ffi::CStr;
use core::time::Duration;

use daemonic::Errno;
use daemonic::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use rustix::fs::{Mode, OFlags};

use crate::out::write_all;
use daemonic::decimal::Decimal;

/// `--rotate SIZE[:COUNT]`: the files kept beside the current one when
/// none is given (svlogd's default).
pub const DEFAULT_ROTATE_COUNT: u32 = 10;

/// The longest syslog message sent: a longer line goes out in pieces of
/// this size (RFC 3164's 1024 bytes, header included, for any receiver).
const SYSLOG_LINE: usize = 900;

/// Where one stream of the program's output goes.
#[derive(Clone, Copy)]
pub enum Dest {
    /// A file on the supervisor's fd 1 and/or 2.
    File {
        /// Absolute (the supervisor's directory is `/`).
        path: &'static CStr,
        /// `--rotate SIZE:COUNT`.
        rotate: Option<(u64, u32)>,
        /// `--timestamps`.
        timestamps: bool,
        /// Which of the supervisor's streams the file is on: where the
        /// lines are written, and what a reopen replaces.
        stdout: bool,
        stderr: bool,
    },
    /// The local syslog socket, `<PRI>TAG[PID]: line` per datagram.
    Syslog {
        socket: &'static CStr,
        tag: &'static [u8],
        /// Facility * 8 + severity.
        priority: u8,
    },
}

/// One pipe and where it goes.
struct Source {
    read: RawFd,
    dest: Dest,
    /// Bytes in the current file, for `--rotate`.
    written: u64,
    /// The next byte read starts a line (for `--timestamps`).
    line_start: bool,
    /// A syslog line being gathered (the header is added when sent).
    line: &'static mut [u8],
    line_len: usize,
    /// The syslog socket once connected; lines lost while it was not.
    socket: Option<OwnedFd>,
    lost: u64,
    /// `--timestamps`: stamped lines gathered for one write.
    out: &'static mut [u8],
    out_len: usize,
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
            {
                let written = match dest {
                    Dest::File { stdout, .. } => {
                        // SAFETY: the supervisor's stream stays open for its
                        // life (the library put the file there).
                        let file = unsafe { BorrowedFd::borrow_raw(if stdout { 1 } else { 2 }) };
                        rustix::fs::fstat(file).map_or(0, |stat| stat.st_size as u64)
                    }
                    Dest::Syslog { .. } => 0,
                };
                Ok(Some(Source {
                    read,
                    dest,
                    written,
                    line_start: true,
                    line: crate::sys::zeroed(SYSLOG_LINE)?,
                    line_len: 0,
                    socket: None,
                    lost: 0,
                    out: crate::sys::zeroed(16384)?,
                    out_len: 0,
                }))
            }
        };
        let [first, second] = outputs;
        Ok(Pump {
            sources: [source(first)?, source(second)?],
            pid: 0,
            buf: crate::sys::zeroed(16384)?,
        })
    }

    /// The program now running (for syslog's `TAG[PID]`).
    pub fn set_pid(&mut self, pid: i32) {
        self.pid = pid;
    }

    /// The pipes' read ends, -1 where there is none (`poll` passes over it).
    pub fn fds(&self) -> [libc::c_int; 2] {
        let fd = |source: &Option<Source>| source.as_ref().map_or(-1, |s| s.read);
        [fd(&self.sources[0]), fd(&self.sources[1])]
    }

    /// Whether SIGHUP is the supervisor's (reopen a file it does not
    /// rotate), not the program's.
    pub fn takes_hangup(&self) -> bool {
        self.sources
            .iter()
            .flatten()
            .any(|source| matches!(source.dest, Dest::File { rotate: None, .. }))
    }

    /// Reads and writes out everything the pipes hold now; with `end`, the
    /// program has ended: a line left without its newline goes out too.
    pub fn drain(&mut self, end: bool) {
        let (sources, buf, pid) = (&mut self.sources, &mut self.buf, self.pid);
        for source in sources.iter_mut().flatten() {
            // SAFETY: the read end stays open for the supervisor's life.
            let read = unsafe { BorrowedFd::borrow_raw(source.read) };
            loop {
                match rustix::io::read(read, &mut **buf) {
                    Ok(0) | Err(Errno::AGAIN) => break,
                    Ok(n) => source.write_out(&buf[..n], pid),
                    Err(Errno::INTR) => continue,
                    Err(_) => break,
                }
            }
            if end && source.line_len > 0 {
                source.send_line(pid);
            }
        }
    }

    /// Opens each file anew that is not rotated (SIGHUP: logrotate moved it).
    pub fn reopen(&mut self) {
        for source in self.sources.iter_mut().flatten() {
            if let Dest::File { rotate: None, .. } = source.dest {
                source.reopen();
            }
        }
    }
}

impl Source {
    /// Writes `bytes` out: to a file in as few writes as rotation allows
    /// (the lines of one read share their time), to syslog a line a
    /// datagram.
    fn write_out(&mut self, bytes: &[u8], pid: i32) {
        let Dest::File { timestamps, .. } = self.dest else {
            let mut rest = bytes;
            while !rest.is_empty() {
                let end = rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |e| e + 1);
                self.gather_syslog(&rest[..end], pid);
                rest = &rest[end..];
            }
            return;
        };
        let mut stamp = [0u8; 25];
        let stamp = if timestamps {
            timestamp(wall_clock(), &mut stamp)
        } else {
            &[][..]
        };
        let mut rest = bytes;
        while !rest.is_empty() {
            // Whole lines at once unless a stamp goes before each: then
            // line by line into the gathering buffer.
            let end = if timestamps {
                rest.iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |e| e + 1)
            } else {
                self.until_rotation(rest)
            };
            self.write_file(&rest[..end], stamp);
            rest = &rest[end..];
        }
        self.flush();
    }

    /// How much of `bytes` to write before the file may rotate: through
    /// the line that takes it past its size, or all of it.
    fn until_rotation(&self, bytes: &[u8]) -> usize {
        let Dest::File {
            rotate: Some((size, _)),
            ..
        } = self.dest
        else {
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

    /// `piece` (a line, its start, or with no stamps several lines) to the
    /// file, after `stamp` where a line starts; rotates once past the size.
    fn write_file(&mut self, piece: &[u8], stamp: &[u8]) {
        let Dest::File { rotate, .. } = self.dest else {
            return;
        };
        if stamp.is_empty() {
            // No stamps: straight from the read buffer.
            self.flush();
            write_all(self.file_fd(), piece);
            self.written += piece.len() as u64;
        } else {
            if self.line_start {
                self.append(stamp);
            }
            self.append(piece);
        }
        self.line_start = piece.last() == Some(&b'\n');
        if let Some((size, count)) = rotate {
            // At a line's end, or mid-line once a line alone passes it.
            if self.written >= size && (self.line_start || self.written >= 2 * size) {
                self.flush();
                self.rotate(count);
            }
        }
    }

    /// Adds `bytes` to what goes to the file (written at once when large).
    fn append(&mut self, bytes: &[u8]) {
        self.written += bytes.len() as u64;
        if self.out_len + bytes.len() > self.out.len() {
            self.flush();
        }
        if bytes.len() > self.out.len() {
            write_all(self.file_fd(), bytes);
            return;
        }
        self.out[self.out_len..self.out_len + bytes.len()].copy_from_slice(bytes);
        self.out_len += bytes.len();
    }

    /// Writes what [`append`](Source::append) gathered.
    fn flush(&mut self) {
        if self.out_len > 0 {
            write_all(self.file_fd(), &self.out[..self.out_len]);
            self.out_len = 0;
        }
    }

    /// The supervisor's fd the file is on.
    fn file_fd(&self) -> libc::c_int {
        match self.dest {
            Dest::File { stdout: false, .. } => 2,
            _ => 1,
        }
    }

    /// A line, or part of one, gathered for syslog; sent at its newline or
    /// when the buffer is full (a long line goes out in pieces).
    fn gather_syslog(&mut self, piece: &[u8], pid: i32) {
        let mut piece = piece;
        while !piece.is_empty() {
            let room = SYSLOG_LINE - self.line_len;
            let take = piece.len().min(room);
            self.line[self.line_len..self.line_len + take].copy_from_slice(&piece[..take]);
            self.line_len += take;
            piece = &piece[take..];
            let full = self.line_len == SYSLOG_LINE;
            let ended = self.line[..self.line_len].last() == Some(&b'\n');
            if full || ended {
                self.send_line(pid);
            }
        }
    }

    /// Sends the gathered line (its newline dropped) as one datagram; first
    /// the count of lines lost, if the socket took none for a while.
    fn send_line(&mut self, pid: i32) {
        let Dest::Syslog {
            socket,
            tag,
            priority,
        } = self.dest
        else {
            return;
        };
        let mut text = &self.line[..self.line_len];
        if let Some(stripped) = text.strip_suffix(b"\n") {
            text = stripped;
        }
        if self.lost > 0 {
            let mut note = [0u8; 96];
            let count = Decimal::new(self.lost);
            let mut len = 0;
            for part in [
                &b"daemonic: "[..],
                count.digits(),
                b" lines lost while the syslog socket took none",
            ] {
                note[len..len + part.len()].copy_from_slice(part);
                len += part.len();
            }
            if send(&mut self.socket, socket, tag, priority, pid, &note[..len]) {
                self.lost = 0;
            }
        }
        if self.lost > 0 || !send(&mut self.socket, socket, tag, priority, pid, text) {
            self.lost += 1;
        }
        self.line_len = 0;
    }

    /// `FILE.(N-1)` -> `FILE.N` ... `FILE` -> `FILE.1`, the oldest dropped,
    /// then a fresh `FILE`. Out of line: its two path buffers (8 KB) are on
    /// the stack only while it rotates, not in every drain's frame (a frame
    /// touches all its pages as it is entered, and the supervisor keeps
    /// them).
    #[inline(never)]
    fn rotate(&mut self, count: u32) {
        let Dest::File { path, .. } = self.dest else {
            return;
        };
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
    /// stream(s): after a rotation, or a SIGHUP once something else moved it
    /// away.
    fn reopen(&mut self) {
        let Dest::File {
            path,
            stdout,
            stderr,
            ..
        } = self.dest
        else {
            return;
        };
        let flags =
            OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOCTTY | OFlags::CLOEXEC;
        let Ok(file) = rustix::fs::open(path, flags, Mode::from_raw_mode(0o640)) else {
            // Kept on the old file, which is better than nowhere.
            return;
        };
        // SAFETY: dup2 onto the supervisor's own standard streams, which
        // then name the new file; the old descriptions are closed.
        unsafe {
            if stdout {
                libc::dup2(file.as_raw_fd(), 1);
            }
            if stderr {
                libc::dup2(file.as_raw_fd(), 2);
            }
        }
        self.written = rustix::fs::fstat(&file).map_or(0, |stat| stat.st_size as u64);
    }
}

/// One datagram `<PRI>TAG[PID]: text` to the syslog socket at `path`
/// (connected into `slot` when it is not), without waiting: whether it went.
fn send(
    slot: &mut Option<OwnedFd>,
    path: &CStr,
    tag: &[u8],
    priority: u8,
    pid: i32,
    text: &[u8],
) -> bool {
    let mut datagram = [0u8; SYSLOG_LINE + 320];
    let priority = Decimal::new(u64::from(priority));
    let pid = Decimal::new(u64::from(pid.unsigned_abs()));
    let mut len = 0;
    for part in [
        &b"<"[..],
        priority.digits(),
        b">",
        &tag[..tag.len().min(256)],
        b"[",
        pid.digits(),
        b"]: ",
        text,
    ] {
        datagram[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    for _ in 0..2 {
        if slot.is_none() {
            *slot = connect(path).ok();
        }
        let Some(socket) = slot.as_ref() else {
            return false;
        };
        match rustix::net::send(socket, &datagram[..len], rustix::net::SendFlags::DONTWAIT) {
            Ok(_) => return true,
            // Full: this line is lost, the socket stays.
            Err(Errno::AGAIN | Errno::NOBUFS) => return false,
            // The listener went (syslogd restarted): connect again, once.
            Err(_) => *slot = None,
        }
    }
    false
}

/// A datagram socket connected to the syslog socket at `path`, close-on-exec
/// and non-blocking.
fn connect(path: &CStr) -> Result<OwnedFd, Errno> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::connect(&socket, &SocketAddrUnix::new(path)?)?;
    Ok(socket)
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

/// Syslog facilities by name, as `--syslog=FACILITY.PRIORITY` takes them.
const FACILITIES: &[(&[u8], u8)] = &[
    (b"kern", 0),
    (b"user", 1),
    (b"mail", 2),
    (b"daemon", 3),
    (b"auth", 4),
    (b"syslog", 5),
    (b"lpr", 6),
    (b"news", 7),
    (b"uucp", 8),
    (b"cron", 9),
    (b"authpriv", 10),
    (b"ftp", 11),
    (b"local0", 16),
    (b"local1", 17),
    (b"local2", 18),
    (b"local3", 19),
    (b"local4", 20),
    (b"local5", 21),
    (b"local6", 22),
    (b"local7", 23),
];

/// Severities by name.
const SEVERITIES: &[(&[u8], u8)] = &[
    (b"emerg", 0),
    (b"alert", 1),
    (b"crit", 2),
    (b"err", 3),
    (b"warning", 4),
    (b"notice", 5),
    (b"info", 6),
    (b"debug", 7),
];

/// `FACILITY.PRIORITY` (either may be left out: `daemon.notice`, as
/// daemon(8)) into `<PRI>`'s number.
pub fn priority(text: &[u8]) -> Option<u8> {
    let (facility, severity) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None if SEVERITIES.iter().any(|(name, _)| *name == text) => (&b""[..], text),
        None => (text, &b""[..]),
    };
    let find = |table: &[(&[u8], u8)], name: &[u8], default: u8| match name {
        b"" => Some(default),
        name => table
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, n)| n),
    };
    Some(find(FACILITIES, facility, 3)? * 8 + find(SEVERITIES, severity, 5)?)
}

/// A severity alone (`--syslog-stderr err`), with `facility` from the
/// main priority.
pub fn severity(text: &[u8], main: u8) -> Option<u8> {
    let severity = SEVERITIES.iter().find(|(name, _)| *name == text)?.1;
    Some(main / 8 * 8 + severity)
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

    #[test]
    fn numbered_paths() {
        let mut buf = [0u8; 4120];
        assert_eq!(
            numbered(c"/var/log/x", 10, &mut buf),
            Some(c"/var/log/x.10")
        );
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(b"daemon.notice"), Some(29));
        assert_eq!(priority(b"local3.err"), Some(19 * 8 + 3));
        assert_eq!(priority(b"local0"), Some(16 * 8 + 5));
        assert_eq!(priority(b"info"), Some(3 * 8 + 6));
        assert_eq!(priority(b"bogus.err"), None);
        assert_eq!(severity(b"err", 29), Some(27));
        assert_eq!(severity(b"loud", 29), None);
    }
}
