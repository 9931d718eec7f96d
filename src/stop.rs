//! Waiting for a stop request: SIGTERM or SIGINT, taken synchronously
//! instead of by a handler (python-daemon's `signal_map` default, without
//! its handler running at any point of the program).
//!
//! The signals are blocked in the calling thread (threads it starts later
//! inherit the mask, so none of them is picked to run a default action), and
//! [`StopSignals::wait`] takes one when it is pending. No allocation, no
//! handler, usable without `std`.

use core::time::Duration;

use rustix::io::Errno;

/// SIGTERM and SIGINT, blocked; made by
/// [`Daemon::block_stop_signals`](crate::Daemon::block_stop_signals).
///
/// # Example
///
/// ```no_run
/// # #[cfg(feature = "std")] {
/// use std::time::Duration;
/// use daemonic::{Plan, Readiness, Started};
///
/// if let Started::Daemon(mut daemon) = Plan::new().readiness(Readiness::Manual).start()? {
///     // Before ready: a stop sent the moment the caller returns is kept.
///     let stop = daemon.block_stop_signals()?;
///     daemon.ready().ok();
///     loop {
///         // ... a round of work ...
///         if let Some(signal) = stop.wait(Some(Duration::from_secs(1))) {
///             eprintln!("stopping on signal {signal}");
///             break;
///         }
///     }
///     // Dropping `daemon` removes the PID file.
/// }
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct StopSignals {
    set: libc::sigset_t,
}

impl core::fmt::Debug for StopSignals {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("StopSignals(SIGTERM, SIGINT)")
    }
}

impl StopSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread:
    /// [`pthread_sigmask(2)`](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html).
    pub(crate) fn block() -> Result<StopSignals, Errno> {
        // SAFETY: sigemptyset initialises the set before sigaddset and
        // pthread_sigmask read it.
        unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            match libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) {
                0 => Ok(StopSignals { set }),
                errno => Err(Errno::from_raw_os_error(errno)),
            }
        }
    }

    /// Waits until SIGTERM or SIGINT arrives (and takes it), or `timeout`
    /// runs out (`None`: no limit). The signal's number, or `None` on
    /// timeout.
    pub fn wait(&self, timeout: Option<Duration>) -> Option<i32> {
        self.wait_impl(timeout)
    }

    /// [`sigtimedwait(2)`](https://man7.org/linux/man-pages/man2/sigtimedwait.2.html).
    #[cfg(daemonic_sigtimedwait)]
    fn wait_impl(&self, timeout: Option<Duration>) -> Option<i32> {
        let deadline = timeout.map(crate::time::Deadline::after);
        loop {
            let left = match &deadline {
                Some(deadline) => Some(deadline.remaining()?),
                None => None,
            };
            let spec = left.map(|left| libc::timespec {
                tv_sec: left.tv_sec as _,
                tv_nsec: left.tv_nsec as _,
            });
            let spec_ptr = spec.as_ref().map_or(core::ptr::null(), |s| s as *const _);
            // SAFETY: an initialised set, a valid timespec or null (no
            // limit), and a null info pointer, which sigtimedwait allows.
            let signal = unsafe { libc::sigtimedwait(&self.set, core::ptr::null_mut(), spec_ptr) };
            if signal > 0 {
                return Some(signal);
            }
            // EINTR (another signal's handler ran): wait on; EAGAIN: timeout.
            if crate::fork::last_errno() != Errno::INTR {
                return None;
            }
        }
    }

    /// Without `sigtimedwait` (macOS, OpenBSD): look at the pending set
    /// every 10 ms, and take a pending signal with `sigwait`.
    #[cfg(not(daemonic_sigtimedwait))]
    fn wait_impl(&self, timeout: Option<Duration>) -> Option<i32> {
        let deadline = timeout.map(crate::time::Deadline::after);
        loop {
            // SAFETY: sigpending fills an initialised set; sigwait returns
            // at once for a signal that is pending and blocked.
            unsafe {
                let mut pending: libc::sigset_t = core::mem::zeroed();
                libc::sigemptyset(&mut pending);
                libc::sigpending(&mut pending);
                for signal in [libc::SIGTERM, libc::SIGINT] {
                    if libc::sigismember(&pending, signal) == 1 {
                        let mut taken = 0;
                        libc::sigwait(&self.set, &mut taken);
                        return Some(taken);
                    }
                }
            }
            if deadline.as_ref().is_some_and(|d| d.remaining().is_none()) {
                return None;
            }
            crate::time::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_stop_is_taken_and_a_quiet_wait_times_out() {
        let stop = StopSignals::block().unwrap();
        let began = std::time::Instant::now();
        assert_eq!(stop.wait(Some(Duration::from_millis(50))), None);
        assert!(began.elapsed() >= Duration::from_millis(50));
        // raise(3) signals this thread, where SIGTERM is blocked: it waits,
        // pending, for `wait` (without the block it would end the test).
        // SAFETY: raise takes a signal number.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        assert_eq!(stop.wait(Some(Duration::from_secs(5))), Some(libc::SIGTERM));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
        assert_eq!(stop.wait(None), Some(libc::SIGINT));
    }
}
