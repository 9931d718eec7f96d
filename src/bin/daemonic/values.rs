//! Option values that more than one option takes: seconds, and the usage
//! error their parsers report.

use core::time::Duration;

use crate::out::Line;
use crate::sys;

/// A usage error: its message is in the caller's [`Line`], which starts
/// `daemonic: `.
#[derive(Debug)]
pub struct Usage;

/// The longest timeout or delay taken: a year, far beyond any real wait and
/// far inside what clocks and `poll` can count.
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// Seconds, as `S`, `S.FFF` or `.FFF`: a duration from 0 to a year, to
/// the nanosecond.
pub fn seconds(text: &[u8], option: &[u8], line: &mut Line) -> Result<Duration, Usage> {
    let digits = text.strip_prefix(b"+").unwrap_or(text);
    let (whole, fraction) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], &digits[dot + 1..]),
        None => (digits, &b""[..]),
    };
    let secs = match whole {
        b"" if !fraction.is_empty() => Some(0),
        whole => sys::parse_u64(whole, MAX_SECONDS),
    };
    // Nanoseconds: the first nine decimals.
    let mut nanos = 0;
    for (&d, scale) in fraction.iter().zip(
        [
            100_000_000,
            10_000_000,
            1_000_000,
            100_000,
            10_000,
            1_000,
            100,
            10,
            1,
        ]
        .iter()
        .chain(core::iter::repeat(&0)),
    ) {
        nanos += u32::from(d.wrapping_sub(b'0')) * scale;
    }
    let fraction_ok = fraction.iter().all(u8::is_ascii_digit);
    match secs {
        Some(secs) if fraction_ok && (secs < MAX_SECONDS || nanos == 0) => {
            Ok(Duration::new(secs, nanos))
        }
        _ => {
            let error = &mut *line;
            error
                .text(option)
                .text(b" ")
                .text(text)
                .text(b": expected seconds from 0 to ")
                .num(MAX_SECONDS as i64)
                .text(b" (a year)");
            Err(Usage)
        }
    }
}
