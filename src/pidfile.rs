//! The PID file: the daemon's PID in decimal and a newline, written by the
//! daemon itself so the number is its own.

use core::ffi::CStr;

use rustix::fd::BorrowedFd;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::{self, Errno};
use rustix::process::Pid;

/// Mode of a new PID file (before the umask): readable by all, so `kill $(cat
/// FILE)` works for whoever may signal the daemon, writable by its owner only.
const PID_FILE_MODE: u32 = 0o644;

/// A PID as the text of a PID file, in a fixed buffer: formatting it needs
/// no allocation, so the daemon can do it after fork.
pub(crate) struct PidText {
    // "-2147483648\n" is the longest an i32 gets; PIDs are positive.
    bytes: [u8; 12],
    len: usize,
}

impl PidText {
    pub(crate) fn new(pid: Pid) -> PidText {
        let mut digits = [0u8; 12];
        let mut n = pid.as_raw_pid().unsigned_abs();
        let mut count = 0;
        loop {
            digits[count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut bytes = [0u8; 12];
        for (i, digit) in digits[..count].iter().rev().enumerate() {
            bytes[i] = *digit;
        }
        bytes[count] = b'\n';
        PidText {
            bytes,
            len: count + 1,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Parses PID file text: decimal digits, optionally followed by a newline.
pub(crate) fn parse(text: &[u8]) -> Option<Pid> {
    let digits = text.strip_suffix(b"\n").unwrap_or(text);
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut n: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(byte - b'0');
    }
    Pid::from_raw(i32::try_from(n).ok()?)
}

/// Creates (or truncates) the PID file and writes `pid` into it in one
/// write. `O_NOFOLLOW` refuses a symlink planted at the path, so a root
/// daemon cannot be tricked into overwriting another file.
pub(crate) fn write(dir: BorrowedFd<'_>, path: &CStr, pid: Pid) -> io::Result<()> {
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::TRUNC
        | OFlags::NOFOLLOW
        | OFlags::NOCTTY
        | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, path, flags, Mode::from_raw_mode(PID_FILE_MODE))?;
    let text = PidText::new(pid);
    let written = loop {
        match rustix::io::write(&fd, text.as_bytes()) {
            Err(Errno::INTR) => continue,
            other => break other,
        }
    };
    let result = match written {
        Ok(n) if n == text.as_bytes().len() => return Ok(()),
        // A short write to an empty file means the disk is full.
        Ok(_) => Err(Errno::NOSPC),
        Err(errno) => Err(errno),
    };
    // Leave no PID file that names nobody.
    let _ = remove(dir, path);
    result
}

/// Removes the PID file.
pub(crate) fn remove(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    rustix::fs::unlinkat(dir, path, AtFlags::empty())
}

/// Removes the PID file if it still names `pid`: the caller's clean-up after
/// it killed a daemon that never got ready, careful not to remove the file of
/// a daemon started since.
pub(crate) fn remove_if_names(dir: BorrowedFd<'_>, path: &CStr, pid: Pid) -> io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, path, flags, Mode::empty()) {
        Err(Errno::NOENT) => return Ok(()),
        other => other?,
    };
    let mut buf = [0u8; 16];
    let len = rustix::io::read(&fd, &mut buf)?;
    if parse(&buf[..len]) == Some(pid) {
        remove(dir, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: i32) -> std::vec::Vec<u8> {
        PidText::new(Pid::from_raw(n).unwrap()).as_bytes().to_vec()
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
}
