//! Deadlines on the monotonic clock, and sleeping, without `std`.

use core::time::Duration;

use rustix::event::Timespec;

/// A point in time on the monotonic clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    at: Timespec,
}

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Deadline {
        let now = monotonic_now();
        let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX / 2);
        let mut at = Timespec {
            tv_sec: now.tv_sec.saturating_add(secs),
            tv_nsec: now.tv_nsec + i64::from(timeout.subsec_nanos()),
        };
        if at.tv_nsec >= 1_000_000_000 {
            at.tv_sec = at.tv_sec.saturating_add(1);
            at.tv_nsec -= 1_000_000_000;
        }
        Deadline { at }
    }

    /// Time left, or `None` once the deadline has passed.
    pub(crate) fn remaining(&self) -> Option<Timespec> {
        let now = monotonic_now();
        let mut left = Timespec {
            tv_sec: self.at.tv_sec - now.tv_sec,
            tv_nsec: self.at.tv_nsec - now.tv_nsec,
        };
        if left.tv_nsec < 0 {
            left.tv_sec -= 1;
            left.tv_nsec += 1_000_000_000;
        }
        if left.tv_sec < 0 || (left.tv_sec == 0 && left.tv_nsec == 0) {
            return None;
        }
        Some(left)
    }
}

/// The monotonic clock, through the C library's
/// [`clock_gettime(3)`](https://man7.org/linux/man-pages/man3/clock_gettime.3.html):
/// the C library is linked anyway and reads the vDSO itself, so rustix's own
/// vDSO lookup (about 3 KB in a static binary) would be a second copy.
/// Async-signal-safe.
fn monotonic_now() -> Timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to fill; CLOCK_MONOTONIC
    // cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    Timespec {
        tv_sec: now.tv_sec as _,
        tv_nsec: now.tv_nsec as _,
    }
}

/// Sleeps (less than a second) with `poll(2)` on no fds, which every Unix has.
pub(crate) fn sleep(duration: Duration) {
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(duration.subsec_nanos()),
    };
    let _ = rustix::event::poll(&mut [], Some(&timeout));
}
