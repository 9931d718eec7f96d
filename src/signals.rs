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
    // The kernel's struct sigaction has its handler first, but on MIPS
    // after a 32-bit flags field (padded to a pointer's size on mips64).
    const HANDLER: usize = if cfg!(any(target_arch = "mips", target_arch = "mips64")) {
        1
    } else {
        0
    };
    let mut action = KernelSigaction::default();
    rt_sigaction(signal, None, Some(&mut action)).then_some(action.0[HANDLER])
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
/// architecture, whatever its layout.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_default_raw(signal: i32) {
    rt_sigaction(signal, Some(&KernelSigaction::default()), None);
}

/// Room for the kernel's `struct sigaction`: eight words, 32 bytes on
/// 32-bit systems (where the struct takes 24 at most, on MIPS) and 64 on
/// 64-bit ones (where it takes 32 at most).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Default)]
struct KernelSigaction([usize; 8]);

/// [`rt_sigaction(2)`](https://man7.org/linux/man-pages/man2/rt_sigaction.2.html)
/// as the raw system call: sets `new` if given, writes the old action
/// into `old` if given; whether the kernel took it.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline(always)] // each caller passes one `None`: folded away there
fn rt_sigaction(
    signal: i32,
    new: Option<&KernelSigaction>,
    old: Option<&mut KernelSigaction>,
) -> bool {
    let new = new.map_or(core::ptr::null(), |new| new.0.as_ptr());
    let old = old.map_or(core::ptr::null_mut(), |old| old.0.as_mut_ptr());
    // SAFETY: each non-null pointer points at a buffer larger than the
    // kernel's struct sigaction, which it reads (`new`) or writes (`old`)
    // and nothing beyond; SIGSET_SIZE is the kernel's own set size.
    unsafe { libc::syscall(libc::SYS_rt_sigaction, signal, new, old, SIGSET_SIZE) == 0 }
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
