//! `--watchdog SECS` with `--supervise` and `--wait-ready`: systemd's
//! `WatchdogSec=`. The program finds `WATCHDOG_USEC` and `WATCHDOG_PID`
//! (its own PID) in its environment, as sd_watchdog_enabled(3) reads them,
//! and sends `WATCHDOG=1` to its `NOTIFY_SOCKET` at least that often; a
//! program that misses a deadline hangs, and the supervisor stops it
//! (SIGABRT, so that it dumps core, then SIGKILL) and counts that as a
//! crash. `WATCHDOG=trigger` asks for the same at once. The deadline runs
//! from the program's readiness, as systemd's does.
//!
//! `WATCHDOG_PID` differs for each run, and nothing may be allocated in the
//! forked child: the pointer arrays for `execve` are laid out before, with
//! one slot for that entry, which each child points at a buffer on its own
//! stack.

use core::ffi::{CStr, c_char};
use core::time::Duration;

use daemonic::Errno;
use daemonic::fd::RawFd;

use crate::sys;

/// The program's `argv` and `envp` for `execve`, with the slot for
/// `WATCHDOG_PID=`; raw pointers, written only in a forked child.
pub struct Watchdog {
    pub period: Duration,
    program: &'static CStr,
    argv: *const *const c_char,
    envp: *mut *const c_char,
    /// Where `WATCHDOG_PID=` goes in `envp` (the null follows it).
    pid_slot: usize,
}

/// What the notification socket said since it was last read.
#[derive(Debug, PartialEq, Eq)]
pub enum Ping {
    /// `WATCHDOG=1`: the program is alive.
    Alive,
    /// `WATCHDOG=trigger`: stop it now, as a missed deadline.
    Trigger,
    Nothing,
}

impl Watchdog {
    /// Lays out `program`, `args` and `env` (which holds `WATCHDOG_USEC`),
    /// before any fork.
    pub fn prepare(
        period: Duration,
        program: &'static CStr,
        args: &[&'static CStr],
        env: &[&'static CStr],
    ) -> Result<Watchdog, Errno> {
        let argv = sys::slab(args.len() + 1, core::ptr::null::<c_char>())?;
        for (slot, arg) in argv.iter_mut().zip(args) {
            *slot = arg.as_ptr();
        }
        // The entries, WATCHDOG_PID's slot, the null.
        let envp = sys::slab(env.len() + 2, core::ptr::null::<c_char>())?;
        for (slot, entry) in envp.iter_mut().zip(env) {
            *slot = entry.as_ptr();
        }
        Ok(Watchdog {
            period,
            program,
            argv: argv.as_ptr(),
            envp: envp.as_mut_ptr(),
            pid_slot: env.len(),
        })
    }

    /// In a forked child: `execve` with `WATCHDOG_PID` set to this process.
    /// Returns only on failure.
    ///
    /// # Safety
    ///
    /// Only in a child of `fork`, whose copy of the arrays nobody else uses;
    /// nothing is allocated.
    pub unsafe fn execute(&self) -> Errno {
        let mut entry = [0u8; 32];
        let prefix = b"WATCHDOG_PID=";
        entry[..prefix.len()].copy_from_slice(prefix);
        let pid = daemonic::decimal::Decimal::pid(rustix::process::getpid());
        let digits = pid.digits();
        entry[prefix.len()..prefix.len() + digits.len()].copy_from_slice(digits);
        // SAFETY: `envp` has `pid_slot + 2` slots (prepare), this child's
        // own copy; `entry` lives on this stack until execve, NUL-terminated
        // (32 bytes hold the prefix, 20 digits and the NUL); the arrays are
        // null-terminated and point at C strings that live for the process.
        unsafe {
            *self.envp.add(self.pid_slot) = entry.as_ptr().cast();
            libc::execve(self.program.as_ptr(), self.argv, self.envp);
        }
        sys::errno()
    }
}

/// `WATCHDOG_USEC=N` for the program's environment.
pub fn usec_entry(period: Duration) -> Result<&'static CStr, Errno> {
    let usec = daemonic::decimal::Decimal::new(period.as_micros().min(u128::from(u64::MAX)) as u64);
    sys::c_string(&[b"WATCHDOG_USEC=", usec.digits()])
}

/// Reads every datagram waiting on the notification socket (non-blocking)
/// and says what they asked for: a trigger over a ping.
pub fn heard(socket: RawFd) -> Ping {
    let mut heard = Ping::Nothing;
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: receives into our buffer, without blocking.
        let n = unsafe {
            libc::recv(
                socket,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            if sys::errno() == Errno::INTR {
                continue;
            }
            return heard;
        };
        for line in buf[..n.min(buf.len())].split(|&b| b == b'\n') {
            match line {
                b"WATCHDOG=trigger" => heard = Ping::Trigger,
                b"WATCHDOG=1" if heard == Ping::Nothing => heard = Ping::Alive,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_and_triggers() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&b);
        assert_eq!(heard(fd), Ping::Nothing);
        a.send(b"STATUS=busy\nWATCHDOG=1").unwrap();
        assert_eq!(heard(fd), Ping::Alive);
        a.send(b"WATCHDOG=1").unwrap();
        a.send(b"WATCHDOG=trigger\n").unwrap();
        assert_eq!(heard(fd), Ping::Trigger);
        assert_eq!(heard(fd), Ping::Nothing);
        assert_eq!(
            usec_entry(Duration::from_millis(2500)).unwrap(),
            c"WATCHDOG_USEC=2500000"
        );
    }
}
