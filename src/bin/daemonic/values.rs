//! Option values: their parsers (seconds, which several options take, a
//! mask, a rotation, an fd to keep, a signal, restart delays, a start
//! limit), the defaults they fall back on, and the usage error they
//! report, its message in the caller's line.

use core::time::Duration;

use crate::out::Line;
use crate::{signame, sys};

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

/// At most 5 starts within 10 s, then the supervisor gives up (systemd's
/// `StartLimitBurst=` and `StartLimitIntervalSec=` defaults).
pub const DEFAULT_START_LIMIT: (u32, Duration) = (5, Duration::from_secs(10));
/// The shortest restart delay: a program failing at once must not make the
/// supervisor spin.
#[cfg(feature = "supervise")]
pub const MIN_RESTART_DELAY: Duration = Duration::from_millis(100);

pub fn octal(text: &[u8], line: &mut Line) -> Result<u32, Usage> {
    let mut mask = 0u32;
    for &d in text {
        if !(b'0'..=b'7').contains(&d) || mask > 0o777 {
            mask = u32::MAX;
            break;
        }
        mask = mask * 8 + u32::from(d - b'0');
    }
    if text.is_empty() || mask > 0o777 {
        let error = &mut *line;
        error
            .text(b"--umask ")
            .text(text)
            .text(b": expected an octal mask from 0 to 777");
        return Err(Usage);
    }
    Ok(mask)
}

/// `SIZE[:COUNT]`: bytes (`k` and `M` suffixes: KiB, MiB) per file, at
/// least 1 KiB, and how many earlier files to keep (default 10, at most
/// 1000).
#[cfg(feature = "logs")]
pub fn rotation(text: &[u8], line: &mut Line) -> Result<(u64, u32), Usage> {
    let (size, count) = match text.iter().position(|&b| b == b':') {
        Some(colon) => (&text[..colon], Some(&text[colon + 1..])),
        None => (text, None),
    };
    let (digits, unit) = match size.last() {
        Some(b'k' | b'K') => (&size[..size.len() - 1], 1024),
        Some(b'M') => (&size[..size.len() - 1], 1024 * 1024),
        _ => (size, 1),
    };
    let bytes = sys::parse_u64(digits, u64::MAX / (1024 * 1024)).map(|n| n * unit);
    let count = match count {
        Some(count) => sys::parse_u64(count, 1000).map(|n| n as u32),
        None => Some(crate::pump::DEFAULT_ROTATE_COUNT),
    };
    match (bytes, count) {
        (Some(bytes), Some(count)) if bytes >= 1024 => Ok((bytes, count)),
        _ => {
            line.text(b"--rotate ").text(text).text(
                b": expected SIZE[:COUNT], SIZE at least 1024 (k, M: KiB, MiB), COUNT up to 1000",
            );
            Err(Usage)
        }
    }
}

/// An fd the daemon is to keep must be open here: a closed number would be
/// "kept" as nothing, or as whatever the daemon opens there next.
pub fn check_open(fd: i32, text: &[u8], line: &mut Line) -> Result<(), Usage> {
    let error = &mut *line;
    error.text(b"--keep-fd ").text(text);
    if fd < 0 {
        error.text(b": expected a whole number from 3 up");
        return Err(Usage);
    }
    // SAFETY: F_GETFD only asks about the fd number; EBADF if not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        error.text(b": fd ").text(text).text(b" is not open");
        return Err(Usage);
    }
    Ok(())
}

/// The soft `RLIMIT_NOFILE`: no fd at or above it can be opened or made.
pub fn fd_limit() -> i64 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map_or(i64::from(i32::MAX), |n| n.min(i32::MAX as u64) as i64)
}

/// A signal by name (`TERM`, `SIGTERM`) or number, for `option`.
pub fn signal_number(text: &[u8], option: &[u8], line: &mut Line) -> Result<i32, Usage> {
    signame::by_name(text).ok_or_else(|| {
        line.text(option)
            .text(b" ")
            .text(text)
            .text(b": unknown signal");
        Usage
    })
}

/// `--restart=DELAY[:MAX]`: the first delay, at least 0.1 s, and the
/// longest one it doubles up to (systemd's `RestartMaxDelaySec=`).
#[cfg(feature = "supervise")]
pub fn restart_delays(text: &[u8], line: &mut Line) -> Result<(Duration, Option<Duration>), Usage> {
    let (first, cap) = match text.iter().position(|&b| b == b':') {
        Some(colon) => (&text[..colon], Some(&text[colon + 1..])),
        None => (text, None),
    };
    let delay = seconds(first, b"--restart", line)?;
    let cap = match cap {
        Some(cap) => Some(seconds(cap, b"--restart", line)?),
        None => None,
    };
    if delay < MIN_RESTART_DELAY || cap.is_some_and(|cap| cap < delay) {
        line.text(b"--restart=")
            .text(text)
            .text(b": the delay must be at least 0.1 s, and MAX at least the delay");
        return Err(Usage);
    }
    Ok((delay, cap))
}

/// `--start-limit BURST[/SECS]`: at most BURST starts within SECS
/// (default 10 s); a BURST of 0 never gives up.
#[cfg(feature = "supervise")]
pub fn start_limit(text: &[u8], line: &mut Line) -> Result<(u32, Duration), Usage> {
    let (burst, secs) = match text.iter().position(|&b| b == b'/') {
        Some(slash) => (&text[..slash], Some(&text[slash + 1..])),
        None => (text, None),
    };
    let interval = match secs {
        Some(secs) => seconds(secs, b"--start-limit", line)?,
        None => DEFAULT_START_LIMIT.1,
    };
    match sys::parse_u64(burst, 1_000_000) {
        Some(burst) if interval > Duration::ZERO || burst == 0 => Ok((burst as u32, interval)),
        _ => {
            line.text(b"--start-limit ")
                .text(text)
                .text(b": expected BURST[/SECS], BURST a whole number (0: no limit), SECS above 0");
            Err(Usage)
        }
    }
}
