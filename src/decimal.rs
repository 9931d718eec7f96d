//! Decimal numbers without allocation: formatting into a fixed buffer and
//! parsing, for PID files, `MAINPID=`/`ERRNO=` and `/proc/self/fd` names.

use rustix::process::Pid;

/// A number in decimal followed by a newline, in a fixed buffer.
pub(crate) struct Decimal {
    // "4294967295\n" is the longest a u32 gets.
    bytes: [u8; 11],
    len: usize,
}

impl Decimal {
    pub(crate) fn new(mut n: u32) -> Decimal {
        let mut bytes = [0u8; 11];
        let mut start = 10;
        bytes[10] = b'\n';
        loop {
            start -= 1;
            bytes[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        bytes.copy_within(start.., 0);
        Decimal {
            bytes,
            len: 11 - start,
        }
    }

    /// A PID (always positive).
    pub(crate) fn pid(pid: Pid) -> Decimal {
        Decimal::new(pid.as_raw_pid().unsigned_abs())
    }

    /// The digits and the newline.
    pub(crate) fn line(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The digits alone.
    pub(crate) fn digits(&self) -> &[u8] {
        &self.bytes[..self.len - 1]
    }
}

/// Parses 1 to 19 ASCII digits (no sign, no space): what the kernel and
/// daemonic write.
pub(crate) fn parse(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_any_u32() {
        assert_eq!(Decimal::new(42).digits(), b"42");
        assert_eq!(Decimal::new(0).line(), b"0\n");
        assert_eq!(Decimal::new(u32::MAX).line(), b"4294967295\n");
    }

    #[test]
    fn parses_digits_only() {
        assert_eq!(parse(b"0"), Some(0));
        assert_eq!(parse(b"4294967296"), Some(1 << 32));
        for bad in [&b""[..], b"-1", b"1 ", b"x", b"12345678901234567890"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
