//! The signal configuration daemonic was started with: which signals it
//! ignored and which it blocked. As a container's entry point
//! (`--foreground --supervise`) the program gets it back, as tini hands its
//! child the container's (tini's sigconf test): the supervisor itself reads
//! signals through a signalfd and ignores the terminal's stop signals, and
//! none of that is the program's business.
//!
//! Everything here is read before the first fork (`record`) and written
//! in the forked child before `execve` (`restore`): plain system calls on
//! a copy in memory, nothing allocates.

use core::sync::atomic::{AtomicBool, Ordering};

/// Whether SIGPIPE was ignored before `main` ignored it for itself.
static PIPE_WAS_IGNORED: AtomicBool = AtomicBool::new(false);

/// Ignores SIGPIPE (a reader gone away is EPIPE from write, not death), and
/// remembers whether the caller had ignored it already.
pub fn ignore_pipe() {
    // SAFETY: setting a disposition to SIG_IGN has no preconditions.
    let before = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    PIPE_WAS_IGNORED.store(before == libc::SIG_IGN, Ordering::Relaxed);
}

/// The ignored signals and the mask, as the caller had them.
#[cfg(feature = "supervise")]
#[derive(Clone, Copy)]
pub struct Inherited {
    /// Bit N-1 for signal N.
    ignored: u64,
    mask: libc::sigset_t,
}

/// Reads the caller's configuration, before the library resets it.
#[cfg(feature = "supervise")]
pub fn record() -> Inherited {
    let mut ignored = 0u64;
    for signal in 1..=64 {
        // SAFETY: sigaction only reads into our zeroed struct; a signal
        // the C library reserves answers EINVAL and is left out.
        let handler = unsafe {
            let mut old: libc::sigaction = core::mem::zeroed();
            if libc::sigaction(signal, core::ptr::null(), &mut old) != 0 {
                continue;
            }
            old.sa_sigaction
        };
        if handler == libc::SIG_IGN {
            ignored |= bit(signal);
        }
    }
    if PIPE_WAS_IGNORED.load(Ordering::Relaxed) {
        ignored |= bit(libc::SIGPIPE);
    } else {
        ignored &= !bit(libc::SIGPIPE);
    }
    // SAFETY: with a null new set, sigprocmask only reads the mask into ours.
    let mask = unsafe {
        let mut mask: libc::sigset_t = core::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, core::ptr::null(), &mut mask);
        mask
    };
    Inherited { ignored, mask }
}

#[cfg(feature = "supervise")]
impl Inherited {
    /// In the forked child: ignores what the caller ignored, blocks what it
    /// blocked. Every other signal is at its default by then.
    pub fn restore(&self) {
        for signal in 1..=64 {
            if self.ignored & bit(signal) != 0 {
                // SAFETY: setting a disposition to SIG_IGN; async-signal-safe.
                unsafe { libc::signal(signal, libc::SIG_IGN) };
            }
        }
        // SAFETY: sets the mask from our copy; async-signal-safe.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &self.mask, core::ptr::null_mut()) };
    }
}

#[cfg(feature = "supervise")]
const fn bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

#[cfg(all(test, feature = "supervise"))]
mod tests {
    use super::*;

    #[test]
    fn records_what_is_ignored_and_blocked() {
        // SAFETY: this test's own thread; put back below.
        unsafe {
            libc::signal(libc::SIGURG, libc::SIG_IGN);
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGXCPU);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
        }
        let inherited = record();
        assert_ne!(inherited.ignored & bit(libc::SIGURG), 0);
        assert_eq!(inherited.ignored & bit(libc::SIGTERM), 0);
        // SAFETY: reads our copy of the mask; restores this thread's.
        unsafe {
            assert_eq!(libc::sigismember(&inherited.mask, libc::SIGXCPU), 1);
            libc::signal(libc::SIGURG, libc::SIG_DFL);
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGXCPU);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, core::ptr::null_mut());
        }
    }
}
