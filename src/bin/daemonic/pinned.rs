//! A process pinned before it is checked and signalled, so that a signal
//! can never reach a later process that reused its PID.
//!
//! The pin is a pidfd ([`pidfd_open(2)`], Linux 5.3) where the system gives
//! one. Where it refuses pidfds (ENOSYS before 5.3; EPERM from the seccomp
//! profiles of older Docker and Podman releases, which also refuse
//! `pidfd_send_signal`), it is the process's `/proc/PID` directory: an open
//! directory keeps naming that process, and stops answering once it is
//! gone, even if its number is reused. A plain [`kill(2)`] then follows a
//! check through it made right before; the window between the two is a
//! few system calls, not the seconds of a stop.
//!
//! [`pidfd_open(2)`]: https://man7.org/linux/man-pages/man2/pidfd_open.2.html
//! [`kill(2)`]: https://man7.org/linux/man-pages/man2/kill.2.html

use core::time::Duration;

use daemonic::fd::{AsRawFd, OwnedFd};
use daemonic::{Errno, Pid};
use rustix::fs::{Mode, OFlags};

use crate::procfs::{field, proc_file, read_all};
use crate::sys;

/// A process, pinned.
pub struct Pinned {
    pid: i32,
    how: How,
}

enum How {
    Pidfd(OwnedFd),
    /// `/proc/PID`, opened while the process was there.
    Proc(OwnedFd),
}

/// A live process's state, through its pin.
#[derive(PartialEq, Eq)]
enum State {
    Running,
    /// Exited (a zombie) or gone.
    Ended,
    /// Nothing can tell (no `/proc` and no pidfd).
    Unknown,
}

impl Pinned {
    /// Pins `pid`. `Err(ESRCH)` when there is no such process; another
    /// error when it can be pinned neither way (the pidfd's, when the
    /// system gives pidfds but not this one).
    pub fn new(pid: i32) -> Result<Pinned, Errno> {
        let raw = Pid::from_raw(pid).ok_or(Errno::SRCH)?;
        match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()) {
            Ok(pidfd) => Ok(Pinned {
                pid,
                how: How::Pidfd(pidfd),
            }),
            // pidfd_open itself never checks permissions: EPERM is a filter.
            Err(Errno::PERM | Errno::NOSYS) => Self::by_proc(pid),
            Err(errno) => Err(errno),
        }
    }

    fn by_proc(pid: i32) -> Result<Pinned, Errno> {
        let mut path = [0u8; 32];
        let path = proc_file(pid, b"", &mut path).ok_or(Errno::SRCH)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(dir) => dir,
            // No such process; or no /proc: then a process kill(2) reaches
            // exists, but nothing can pin it.
            Err(Errno::NOENT) if kill(pid, 0).is_ok() => return Err(Errno::PERM),
            Err(Errno::NOENT) => return Err(Errno::SRCH),
            Err(errno) => return Err(errno),
        };
        let pinned = Pinned {
            pid,
            how: How::Proc(dir),
        };
        match pinned.state() {
            State::Ended => Err(Errno::SRCH),
            _ => Ok(pinned),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the pin is a pidfd (else `/proc`, and signals go by `kill`).
    pub fn by_pidfd(&self) -> bool {
        matches!(self.how, How::Pidfd(_))
    }

    /// Sends `signal` (0: checks that it may be sent). Through `/proc`,
    /// only if the process is still there right before: `ESRCH` if not.
    /// A filter may allow `pidfd_open` but refuse `pidfd_send_signal`: then
    /// the pidfd, polled right before, says the process is still there, and
    /// a plain `kill` follows (a genuine EPERM comes back from it too).
    pub fn send(&self, signal: i32) -> Result<(), Errno> {
        match &self.how {
            How::Pidfd(pidfd) => match pidfd_send(pidfd, signal) {
                Err(Errno::PERM | Errno::NOSYS) if !self.exited(Duration::ZERO) => {
                    kill(self.pid, signal)
                }
                other => other,
            },
            How::Proc(_) if self.state() == State::Ended => Err(Errno::SRCH),
            How::Proc(_) => kill(self.pid, signal),
        }
    }

    /// Sends `signal`, then SIGCONT, so that a stopped process (SIGSTOP,
    /// a debugger) acts on it now rather than never: runit's `sv down` and
    /// s6's `s6-svc -d` do the same. Not after SIGKILL, which needs none.
    pub fn send_and_continue(&self, signal: i32) -> Result<(), Errno> {
        self.send(signal)?;
        if signal != libc::SIGKILL && signal != libc::SIGCONT {
            let _ = self.send(libc::SIGCONT);
        }
        Ok(())
    }

    /// Whether the process has exited, waiting up to `timeout`. A pidfd
    /// turns readable the moment it does; `/proc` is looked at every few
    /// milliseconds.
    pub fn exited(&self, timeout: Duration) -> bool {
        let deadline = sys::now() + timeout;
        loop {
            let ended = match &self.how {
                How::Pidfd(pidfd) => {
                    sys::readable([pidfd.as_raw_fd()], sys::millis_until(deadline))[0]
                }
                How::Proc(_) => self.state() == State::Ended,
            };
            if ended {
                return true;
            }
            if sys::now() >= deadline {
                return false;
            }
            if !self.by_pidfd() {
                sys::sleep(Duration::from_millis(5).min(deadline - sys::now()));
            }
        }
    }

    /// Whether `signal` waits in the process's shared pending set (`ShdPnd`
    /// in `/proc/PID/status`): sent but not yet taken, as for a process
    /// that blocks it or is stopped. `None` when gone or when nothing can
    /// tell.
    pub fn pending(&self, signal: i32) -> Option<bool> {
        let mut buf = [0u8; 2048];
        let text = self.read(b"status", &mut buf)?;
        let line = text
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(b"ShdPnd:"))?;
        let mask = hex(line)?;
        // Read while the pinned process was there: not a later one's.
        if self.exited(Duration::ZERO) {
            return None;
        }
        let bit = u32::try_from(signal - 1).ok().filter(|&bit| bit < 64)?;
        Some(mask & (1u64 << bit) != 0)
    }

    fn state(&self) -> State {
        let mut buf = [0u8; 512];
        let Some(text) = self.read(b"stat", &mut buf) else {
            return match &self.how {
                How::Proc(_) => State::Ended,
                How::Pidfd(_) => State::Unknown,
            };
        };
        let fields = text
            .iter()
            .rposition(|&b| b == b')')
            .map_or(&b""[..], |close| &text[close + 1..]);
        match field(fields, 0) {
            Some(b"Z" | b"X" | b"x") => State::Ended,
            Some(_) => State::Running,
            None => State::Unknown,
        }
    }

    /// `/proc/PID/NAME`, read whole into `buf`.
    fn read<'b>(&self, name: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let file = match &self.how {
            How::Proc(dir) => {
                let mut c_name = [0u8; 16];
                c_name.get_mut(..name.len())?.copy_from_slice(name);
                let c_name = core::ffi::CStr::from_bytes_until_nul(&c_name).ok()?;
                rustix::fs::openat(dir, c_name, flags, Mode::empty()).ok()?
            }
            How::Pidfd(_) => {
                let mut path = [0u8; 32];
                let mut suffix = [0u8; 16];
                suffix[0] = b'/';
                suffix.get_mut(1..=name.len())?.copy_from_slice(name);
                let path = proc_file(self.pid, &suffix[..=name.len()], &mut path)?;
                rustix::fs::open(path, flags, Mode::empty()).ok()?
            }
        };
        read_all(&file, buf)
    }
}

/// [`pidfd_send_signal(2)`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html),
/// with any signal number (0 checks permission only).
fn pidfd_send(pidfd: &OwnedFd, signal: i32) -> Result<(), Errno> {
    // SAFETY: a pidfd we own, a signal number, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            core::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    sys::check(rc as libc::c_long).map(drop)
}

/// [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html).
fn kill(pid: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: kill takes plain integers.
    sys::check(unsafe { libc::kill(pid, signal) } as libc::c_long).map(drop)
}

/// A hexadecimal mask, as `/proc/PID/status` writes them.
fn hex(text: &[u8]) -> Option<u64> {
    let digits = text.trim_ascii();
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |mask, &d| {
        let value = (d as char).to_digit(16)?;
        Some(mask << 4 | u64::from(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_this_process_and_reads_its_masks() {
        let own = rustix::process::getpid().as_raw_pid();
        let pinned = Pinned::new(own).unwrap();
        assert!(!pinned.exited(Duration::ZERO));
        assert_eq!(pinned.pending(libc::SIGUSR2), Some(false));
        let by_proc = Pinned::by_proc(own).unwrap();
        assert!(!by_proc.by_pidfd());
        assert!(by_proc.state() == State::Running);
        assert_eq!(by_proc.pending(libc::SIGUSR2), Some(false));
        assert_eq!(Pinned::new(i32::MAX).err(), Some(Errno::SRCH));
        assert_eq!(Pinned::by_proc(i32::MAX).err(), Some(Errno::SRCH));
    }

    #[test]
    fn hex_masks() {
        assert_eq!(hex(b"\t0000000000004001\n"), Some(0x4001));
        assert_eq!(hex(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(hex(b"10000000000000000"), None);
        assert_eq!(hex(b"xyz"), None);
    }
}
