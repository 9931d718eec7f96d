//! The local syslog socket as a sink for the program's lines (FreeBSD
//! daemon(8) `-l`, `-s`, `-T`): `<PRI>TAG[PID]: line`, one datagram a line,
//! in the RFC 3164 form BusyBox's syslogd, rsyslog and journald accept.
//! Datagrams never wait: while the socket is missing or full, lines are
//! counted as lost, and the count goes out in a line of its own once the
//! socket takes lines again.

use core::ffi::CStr;

use daemonic::Errno;
use daemonic::decimal::Decimal;
use daemonic::fd::OwnedFd;

/// The longest syslog message sent: a longer line goes out in pieces of
/// this size (RFC 3164's 1024 bytes, header included, for any receiver).
pub const LINE: usize = 900;

/// Where and how lines go.
#[derive(Clone, Copy)]
pub struct Config {
    pub socket: &'static CStr,
    pub tag: &'static [u8],
    /// Facility * 8 + severity.
    pub priority: u8,
}

pub struct Syslog {
    config: Config,
    /// A line being gathered (the header is added when sent).
    line: &'static mut [u8],
    line_len: usize,
    /// The socket once connected; lines lost while it was not.
    socket: Option<OwnedFd>,
    lost: u64,
}

impl Syslog {
    /// # Errors
    ///
    /// `ENOMEM`: no memory for the line buffer.
    pub fn new(config: Config) -> Result<Syslog, Errno> {
        Ok(Syslog {
            config,
            line: crate::sys::zeroed(LINE)?,
            line_len: 0,
            socket: None,
            lost: 0,
        })
    }

    /// A line, or part of one (never past a newline), gathered; sent at
    /// its newline or when the buffer is full (a long line goes out in
    /// pieces).
    pub fn take(&mut self, piece: &[u8], pid: i32) {
        let mut piece = piece;
        while !piece.is_empty() {
            let room = LINE - self.line_len;
            let take = piece.len().min(room);
            self.line[self.line_len..self.line_len + take].copy_from_slice(&piece[..take]);
            self.line_len += take;
            piece = &piece[take..];
            let full = self.line_len == LINE;
            let ended = self.line[..self.line_len].last() == Some(&b'\n');
            if full || ended {
                self.send_line(pid);
            }
        }
    }

    /// The program has ended: a line left without its newline goes out.
    pub fn end(&mut self, pid: i32) {
        if self.line_len > 0 {
            self.send_line(pid);
        }
    }

    /// Sends the gathered line (its newline dropped) as one datagram; first
    /// the count of lines lost, if the socket took none for a while.
    fn send_line(&mut self, pid: i32) {
        let Config {
            socket,
            tag,
            priority,
        } = self.config;
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
    let mut datagram = [0u8; LINE + 320];
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
