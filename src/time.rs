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

/// The monotonic clock:
/// [`clock_gettime(2)`](https://man7.org/linux/man-pages/man2/clock_gettime.2.html).
/// On 64-bit Linux a plain system call, not the vDSO the C library would
/// read: the vDSO's page would then count in the resident memory of a
/// supervisor that reads the clock a few times per event (4 kB of a PID 1's
/// 70), and the C library's vDSO lookup in its size, for nanoseconds
/// saved. Elsewhere the C library's function (rustix's own vDSO lookup,
/// about 3 KB in a static binary, would be a second copy). Async-signal-safe.
fn monotonic_now() -> Timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "64"
    ))]
    // SAFETY: a valid clock id and a timespec to fill, which on 64-bit Linux
    // is the kernel's own layout; CLOCK_MONOTONIC cannot fail.
    unsafe {
        libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut now)
    };
    #[cfg(not(all(
        any(target_os = "linux", target_os = "android"),
        target_pointer_width = "64"
    )))]
    // SAFETY: a valid clock id and a timespec to fill; CLOCK_MONOTONIC
    // cannot fail.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now)
    };
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

/// A POSIX timer ([`timer_create(2)`](https://man7.org/linux/man-pages/man2/timer_create.2.html))
/// that has the kernel kill this process with SIGKILL once a timeout has
/// passed, until [`disarmed`](KillTimer::disarm).
///
/// For the cloned daemon ([`crate::sequence`]'s clone path): its caller is
/// suspended until it executes the program or ends, so a step that blocks
/// (opening a FIFO nobody reads) would hold the caller past the plan's
/// timeout; its signals are all blocked, and SIGKILL is the one a timer can
/// still deliver. Raw system calls (no C library state, no errno on
/// success); a timer the system refuses leaves the steps unbounded, as
/// they were.
#[cfg(daemonic_clone_vm)]
pub(crate) struct KillTimer {
    /// The kernel's timer id.
    #[cfg_attr(
        not(any(target_pointer_width = "64", target_arch = "x86", target_arch = "arm")),
        allow(dead_code)
    )]
    id: libc::c_int,
}

#[cfg(daemonic_clone_vm)]
impl KillTimer {
    /// Arms the timer; `None` if the system refuses one.
    pub(crate) fn arm(timeout: Duration) -> Option<KillTimer> {
        // The kernel's `struct itimerspec` with `long` fields: 64-bit
        // everywhere but on x86 and arm, whose `timer_settime` takes
        // 32-bit ones, enough for any relative timeout up to 68 years.
        #[cfg(any(target_pointer_width = "64", target_arch = "x86", target_arch = "arm"))]
        {
            use libc::c_long;
            // SAFETY: an all-zero sigevent is a valid value; the fields
            // that matter are set next.
            let mut event: libc::sigevent = unsafe { core::mem::zeroed() };
            event.sigev_notify = libc::SIGEV_SIGNAL;
            event.sigev_signo = libc::SIGKILL;
            let mut id: libc::c_int = 0;
            // SAFETY: the kernel reads our sigevent and writes the timer id
            // into our int.
            let created = unsafe {
                libc::syscall(
                    libc::SYS_timer_create,
                    libc::CLOCK_MONOTONIC,
                    &event as *const libc::sigevent,
                    &mut id as *mut libc::c_int,
                )
            };
            if created != 0 {
                return None;
            }
            let secs = c_long::try_from(timeout.as_secs()).unwrap_or(c_long::MAX);
            // Below 10^9, so it fits any long. At least a nanosecond: an
            // all-zero value would disarm the timer.
            let nanos = (timeout.subsec_nanos() as c_long).max(1);
            // it_interval (none), then it_value.
            let spec: [c_long; 4] = [0, 0, secs, nanos];
            // SAFETY: the kernel reads four longs, the layout of its
            // itimerspec on these targets, and writes no old value (null).
            unsafe {
                libc::syscall(
                    libc::SYS_timer_settime,
                    id,
                    0,
                    spec.as_ptr(),
                    core::ptr::null_mut::<c_long>(),
                )
            };
            Some(KillTimer { id })
        }
        #[cfg(not(any(target_pointer_width = "64", target_arch = "x86", target_arch = "arm")))]
        {
            let _ = timeout;
            None
        }
    }

    /// Deletes the timer ([`timer_delete(2)`](https://man7.org/linux/man-pages/man2/timer_delete.2.html)):
    /// once the steps that can block are done and before the daemon reports
    /// it is executing the program, so that a kill cannot land between that
    /// record and `execve`, where the caller would take the closed pipe for
    /// a program executed.
    pub(crate) fn disarm(self) {
        #[cfg(any(target_pointer_width = "64", target_arch = "x86", target_arch = "arm"))]
        // SAFETY: deletes our own timer by id; no memory is passed.
        unsafe {
            libc::syscall(libc::SYS_timer_delete, self.id)
        };
    }
}
