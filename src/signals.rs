//! Signal dispositions and the signal mask of the daemon (daemon(7) steps
//! 2 and 3), through libc: rustix wraps `sigaction` only for runtimes.

use rustix::io;

/// One past the highest signal number (`_NSIG`).
#[cfg(any(target_os = "linux", target_os = "android"))]
const NSIG: i32 = 65;
#[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
const NSIG: i32 = 129;
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly"
)))]
const NSIG: i32 = 33;

/// Puts every signal's disposition back to `SIG_DFL`, as the daemon's
/// handlers may be the caller's (and a program it execs gets the ignored
/// ones).
///
/// `before_exec`: the daemon is about to become another program, so every
/// signal is reset, SIGPIPE and the C library's reserved ones (glibc's 32
/// and 33, which its `sigaction` refuses to touch) included, through the
/// raw system call. Otherwise the daemon goes on running this program:
/// SIGPIPE stays ignored if it was (Rust's runtime ignores it and Rust code
/// expects `EPIPE` from a closed socket, not death), and the C library's
/// reserved signals stay as they are (its threads rely on them).
///
/// Only the signals whose disposition is not `SIG_DFL` already are touched:
/// `/proc/self/status` names them (`SigIgn`, `SigCgt`) in one read, where
/// one `sigaction` per signal would be 64 system calls on each start.
/// Without `/proc`, every signal is reset.
pub(crate) fn reset_handlers(before_exec: bool) {
    let changed = not_default().unwrap_or(u64::MAX);
    for signal in 1..NSIG {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        if signal <= 64 && changed & (1 << (signal - 1)) == 0 {
            continue;
        }
        if before_exec {
            set_default_raw(signal);
            continue;
        }
        if signal == libc::SIGPIPE && is_ignored(signal) {
            continue;
        }
        // The reserved signals answer EINVAL, as intended.
        set_default(signal);
    }
}

/// The signals this process ignores or catches, bit N-1 for signal N, from
/// `SigIgn` and `SigCgt` of `/proc/self/status`: one open and a read into a
/// stack buffer, async-signal-safe. `None` without `/proc`.
#[cfg(daemonic_procfs)]
fn not_default() -> Option<u64> {
    use rustix::fs::{Mode, OFlags};
    let file = rustix::fs::open(
        c"/proc/self/status",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    masks(&buf[..len])
}

#[cfg(not(daemonic_procfs))]
fn not_default() -> Option<u64> {
    None
}

/// `SigIgn | SigCgt` from the text of `/proc/PID/status`; `None` unless
/// both are there.
#[cfg_attr(not(daemonic_procfs), allow(dead_code))]
fn masks(status: &[u8]) -> Option<u64> {
    let field = |name: &[u8]| {
        let line = status
            .split(|&b| b == b'\n')
            .find_map(|line| line.strip_prefix(name))?;
        let hex = line.strip_prefix(b":")?.trim_ascii();
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        hex.iter().try_fold(0u64, |mask, &digit| {
            let value = (digit as char).to_digit(16)?;
            Some(mask << 4 | u64::from(value))
        })
    };
    Some(field(b"SigIgn")? | field(b"SigCgt")?)
}

/// `sigaction(signal, SIG_DFL)` through the C library.
fn set_default(signal: i32) {
    // SAFETY: a zeroed sigaction with SIG_DFL and an empty mask is a valid
    // disposition; sigaction is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = core::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, core::ptr::null_mut());
    }
}

/// `rt_sigaction(signal, SIG_DFL)` past the C library. An all-zero kernel
/// `struct sigaction` is `SIG_DFL` with no flags and an empty mask on every
/// architecture, whatever its layout, so a zeroed buffer larger than any of
/// them serves.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_default_raw(signal: i32) {
    let zeroed = [0u64; 8];
    // The kernel's sigset size: _NSIG / 8.
    #[cfg(any(target_arch = "mips", target_arch = "mips64"))]
    const SIGSET_SIZE: usize = 16;
    #[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
    const SIGSET_SIZE: usize = 8;
    // SAFETY: the kernel reads at most sizeof(struct sigaction) bytes from
    // our 64-byte zeroed buffer and writes nothing (null old action).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            zeroed.as_ptr(),
            core::ptr::null_mut::<u8>(),
            SIGSET_SIZE,
        );
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_default_raw(signal: i32) {
    set_default(signal);
}

fn is_ignored(signal: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one
    // into our zeroed local.
    unsafe {
        let mut current: libc::sigaction = core::mem::zeroed();
        libc::sigaction(signal, core::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Unblocks every signal: a multithreaded caller may have blocked some in
/// the thread that started the daemon, and the daemon inherits that mask.
pub(crate) fn unblock_all() -> io::Result<()> {
    // SAFETY: sigemptyset initialises the set before sigprocmask reads it;
    // both are async-signal-safe.
    let rc = unsafe {
        let mut empty: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, core::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(crate::fork::last_errno())
    }
}

#[cfg(test)]
mod tests {
    use super::masks;

    #[test]
    fn masks_from_proc_status() {
        let status = b"Name:\tx\nSigQ:\t0/1\nSigPnd:\t0000000000000000\n\
            SigBlk:\tffffffffffffffff\nSigIgn:\t0000000000001000\nSigCgt:\t0000000180000002\n";
        assert_eq!(masks(status), Some(0x1000 | 0x1_8000_0002));
        assert_eq!(masks(b"SigIgn:\t0000000000001000\n"), None);
        assert_eq!(masks(b"SigIgn:\tzz\nSigCgt:\t0\n"), None);
    }

    /// This process's own masks agree with what sigaction says.
    #[cfg(daemonic_procfs)]
    #[test]
    fn masks_agree_with_sigaction() {
        let mask = super::not_default().expect("/proc/self/status");
        for signal in 1..=64 {
            // SAFETY: a query only (null new action).
            let mut current: libc::sigaction = unsafe { core::mem::zeroed() };
            // SAFETY: as above, into our zeroed local.
            if unsafe { libc::sigaction(signal, core::ptr::null(), &mut current) } != 0 {
                // The C library's reserved signals (glibc's 32 and 33).
                continue;
            }
            let default = current.sa_sigaction == libc::SIG_DFL;
            assert_eq!(mask & (1 << (signal - 1)) == 0, default, "signal {signal}");
        }
    }
}
