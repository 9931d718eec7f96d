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

/// The kernel's signal set size, `_NSIG / 8`, as `rt_sigaction` takes it.
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    any(target_arch = "mips", target_arch = "mips64")
))]
const SIGSET_SIZE: usize = 16;
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(any(target_arch = "mips", target_arch = "mips64"))
))]
const SIGSET_SIZE: usize = 8;

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
/// Only the signals whose disposition is not `SIG_DFL` already are changed:
/// each is asked for first (`sigaction` with no new action). The 64
/// queries cost a start about 4 µs; reading `SigIgn` and `SigCgt` from
/// `/proc/self/status` instead, a new process's first look into `/proc`,
/// cost it about 25 µs (measured side by side with hyperfine, the exec
/// variant's start 0.478 -> 0.460 ms), and needs `/proc`.
pub(crate) fn reset_handlers(before_exec: bool) {
    for signal in 1..NSIG {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        match disposition(signal) {
            Some(libc::SIG_DFL) => continue,
            Some(libc::SIG_IGN) if signal == libc::SIGPIPE && !before_exec => continue,
            // Not a signal here (the C library's reserved ones, where it
            // is asked): nothing to reset.
            None => continue,
            _ => {}
        }
        if before_exec {
            set_default_raw(signal);
        } else {
            set_default(signal);
        }
    }
}

/// The handler of `signal` (`SIG_DFL`, `SIG_IGN` or a function's address),
/// asked of the kernel itself: the C library's `sigaction` may take a lock
/// (musl's for SIGABRT), which the daemon must not. `None` if refused.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn disposition(signal: i32) -> Option<libc::sighandler_t> {
    // The kernel's struct sigaction, with room to spare. Its handler comes
    // first, but on MIPS after a 32-bit flags field (padded to a pointer's
    // size on mips64).
    const HANDLER: usize = if cfg!(any(target_arch = "mips", target_arch = "mips64")) {
        1
    } else {
        0
    };
    let mut action = [0usize; 8];
    // SAFETY: with a null new action the kernel only writes the current one,
    // at most sizeof(struct sigaction) bytes, into our 64-byte buffer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            core::ptr::null::<u8>(),
            action.as_mut_ptr(),
            SIGSET_SIZE,
        )
    };
    (rc == 0).then_some(action[HANDLER])
}

/// As above, through the C library where there is no raw system call.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn disposition(signal: i32) -> Option<libc::sighandler_t> {
    // SAFETY: sigaction with a null new action only writes the current one
    // into our zeroed local.
    unsafe {
        let mut current: libc::sigaction = core::mem::zeroed();
        (libc::sigaction(signal, core::ptr::null(), &mut current) == 0)
            .then_some(current.sa_sigaction)
    }
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
