//! Messages, built in a fixed buffer and written with one `write(2)`: no
//! `core::fmt`, no allocation, no lock (the supervisor writes them from its
//! loop).

use core::ffi::CStr;
use core::mem::MaybeUninit;
use core::time::Duration;

use daemonic::decimal::Decimal;
use daemonic::{Described, Errno, Error};

/// One line of output, at most [`Line::CAPACITY`] bytes (longer ones are
/// cut; a path is at most 4096 bytes). The buffer is left uninitialised
/// until written: stack pages a short message never reaches are never
/// touched, which is memory a supervisor does not hold for its life.
pub struct Line {
    buf: [MaybeUninit<u8>; Line::CAPACITY],
    /// The first `len` bytes of `buf` are written.
    len: usize,
}

impl Line {
    /// A path of `PATH_MAX` (4096) and the words around it.
    pub const CAPACITY: usize = 4608;

    /// An empty line.
    pub fn new() -> Line {
        Line {
            buf: [MaybeUninit::uninit(); Line::CAPACITY],
            len: 0,
        }
    }

    /// A line that starts `daemonic: `, as every message of the command.
    #[inline(never)]
    pub fn daemonic() -> Line {
        let mut line = Line::new();
        line.text(b"daemonic: ");
        line
    }

    #[inline(never)]
    pub fn text(&mut self, text: &[u8]) -> &mut Line {
        let n = text.len().min(Line::CAPACITY - self.len);
        for (slot, &byte) in self.buf[self.len..self.len + n].iter_mut().zip(text) {
            slot.write(byte);
        }
        self.len += n;
        self
    }

    #[inline(never)]
    pub fn c(&mut self, text: &CStr) -> &mut Line {
        self.text(text.to_bytes())
    }

    /// A number in decimal.
    #[inline(never)]
    pub fn num(&mut self, n: i64) -> &mut Line {
        if n < 0 {
            self.text(b"-");
        }
        self.text(Decimal::new(n.unsigned_abs()).digits())
    }

    /// Seconds, with up to three decimals (`10`, `0.5`).
    #[inline(never)]
    pub fn secs(&mut self, duration: Duration) -> &mut Line {
        self.num(duration.as_secs() as i64);
        let millis = duration.subsec_millis();
        if millis != 0 {
            let mut digits = [
                b'.',
                b'0' + (millis / 100) as u8,
                b'0' + (millis / 10 % 10) as u8,
                b'0' + (millis % 10) as u8,
            ];
            let mut len = 4;
            while digits[len - 1] == b'0' {
                len -= 1;
            }
            digits[len..].fill(0);
            self.text(&digits[..len]);
        }
        self
    }

    /// The OS error in the C library's words, as std has them: `No such
    /// file or directory (os error 2)`.
    #[inline(never)]
    pub fn errno(&mut self, errno: Errno) -> &mut Line {
        let mut words = [0u8; 160];
        self.text(daemonic::write_os_error(errno, &mut words))
    }

    /// A library error's message, OS error in words.
    #[inline(never)]
    pub fn error(&mut self, error: &Error) -> &mut Line {
        let mut buf = [0u8; 1024];
        self.text(error.write_message_strerror(&mut buf))
    }

    /// A library error with what it failed on.
    pub fn described(&mut self, described: &Described<'_>) -> &mut Line {
        let mut buf = [0u8; Line::CAPACITY];
        self.text(described.write_message_strerror(&mut buf))
    }

    /// What is written so far.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialised (see `len`).
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len) }
    }

    /// Writes the line and a newline to standard error.
    pub fn eprint(&mut self) {
        self.to(2);
    }

    /// The line with its newline, for a writer of its own.
    #[cfg(feature = "supervise")]
    pub fn terminated(&mut self) -> &[u8] {
        if self.len == self.buf.len() {
            self.len -= 1;
        }
        self.buf[self.len].write(b'\n');
        self.len += 1;
        self.as_bytes()
    }

    /// Writes the line and a newline to standard output.
    pub fn print(&mut self) {
        self.to(1);
    }

    /// Writes the line and a newline to `fd`, whole (a pipe may take it in
    /// parts).
    #[inline(never)]
    pub fn to(&mut self, fd: libc::c_int) {
        if self.len == Line::CAPACITY {
            self.len -= 1;
        }
        self.buf[self.len].write(b'\n');
        self.len += 1;
        write_all(fd, self.as_bytes());
        self.len -= 1;
    }
}

/// Writes all of `bytes` to `fd`, retrying on a short write or EINTR.
pub fn write_all(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from our slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 && crate::sys::errno() == Errno::INTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let mut line = Line::daemonic();
        line.num(-12)
            .text(b" ")
            .secs(Duration::from_millis(1500))
            .text(b" ");
        line.secs(Duration::from_secs(10))
            .text(b" ")
            .errno(Errno::NOENT);
        assert_eq!(
            core::str::from_utf8(line.as_bytes()).unwrap(),
            "daemonic: -12 1.5 10 No such file or directory (os error 2)"
        );
    }
}
