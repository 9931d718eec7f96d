//! `--watchdog SECS` with `--supervise` and `--wait-ready`: systemd's
//! `WatchdogSec=`. The program finds `WATCHDOG_USEC` and `WATCHDOG_PID`
//! (its own PID) in its environment, as sd_watchdog_enabled(3) reads them,
//! and sends `WATCHDOG=1` to its `NOTIFY_SOCKET` at least that often; a
//! program that misses a deadline hangs, and the supervisor stops it
//! (SIGABRT, so that it dumps core, then SIGKILL) and counts that as a
//! crash. `WATCHDOG=trigger` asks for the same at once. The deadline runs
//! from the program's readiness, as systemd's does.
//!
//! `WATCHDOG_PID` differs for each run: see childenv.rs.

use core::ffi::CStr;
use core::time::Duration;

use daemonic::Errno;
use daemonic::fd::RawFd;

use crate::sys;

/// What the notification socket said since it was last read.
#[derive(Debug, PartialEq, Eq)]
pub enum Ping {
    /// `WATCHDOG=1`: the program is alive.
    Alive,
    /// `WATCHDOG=trigger`: stop it now, as a missed deadline.
    Trigger,
    Nothing,
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
