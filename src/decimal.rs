//! Decimal numbers without allocation: formatting into a fixed buffer and
//! parsing, for PID files, `MAINPID=`/`ERRNO=` and `/proc/self/fd` names.
//! Public but hidden: the `daemonic` command formats its numbers with it
//! too; not an API for others.

use rustix::process::Pid;

/// A number in decimal followed by a newline, in a fixed buffer.
pub struct Decimal {
    // "18446744073709551615\n" is the longest a u64 gets.
    bytes: [u8; 21],
    len: usize,
}

impl Decimal {
    pub fn new(mut n: u64) -> Decimal {
        let mut bytes = [0u8; 21];
        let mut start = 20;
        bytes[20] = b'\n';
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
            len: 21 - start,
        }
    }

    /// A PID (always positive).
    pub fn pid(pid: Pid) -> Decimal {
        Decimal::new(u64::from(pid.as_raw_pid().unsigned_abs()))
    }

    /// The digits and the newline.
    pub fn line(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The digits alone.
    pub fn digits(&self) -> &[u8] {
        &self.bytes[..self.len - 1]
    }
}

/// Parses 1 to 19 ASCII digits (no sign, no space): what the kernel and
/// daemonic write.
pub fn parse(digits: &[u8]) -> Option<u64> {
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
        assert_eq!(Decimal::new(u64::from(u32::MAX)).line(), b"4294967295\n");
        assert_eq!(Decimal::new(u64::MAX).digits(), b"18446744073709551615");
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
