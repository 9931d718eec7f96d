//! `nostd-smoke PIDFILE SECONDS`: the sleeper example without `std`.
//! Daemonizes with that PID file, reports ready once SIGTERM is blocked,
//! sleeps until SIGTERM or SECONDS pass, removes the PID file and exits 0.
//! A failed start prints `nostd-smoke: ERROR` and exits 1.

#![no_std]
#![no_main]

use core::ffi::{CStr, c_char, c_int};

use daemonic::{Plan, Readiness, Started};

// The libc crate declares C functions but, without std, links no C library.
#[link(name = "c")]
unsafe extern "C" {}

// The prebuilt `core` carries unwind tables that name a personality
// routine (ARM EHABI's name two more), kept by a build without LTO (the
// debug profile); with panic = "abort" nothing unwinds, so nothing ever
// calls them.
#[cfg(any(debug_assertions, target_arch = "arm"))]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
#[cfg(target_arch = "arm")]
#[unsafe(no_mangle)]
extern "C" fn __aeabi_unwind_cpp_pr0() {}
#[cfg(target_arch = "arm")]
#[unsafe(no_mangle)]
extern "C" fn __aeabi_unwind_cpp_pr1() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: _exit takes any status and never returns.
    unsafe { libc::_exit(101) }
}

#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    if argc != 3 {
        return fail(b"usage: nostd-smoke PIDFILE SECONDS", 2);
    }
    // SAFETY: argv holds argc valid C strings.
    let (pid_file, seconds) =
        unsafe { (CStr::from_ptr(*argv.add(1)), CStr::from_ptr(*argv.add(2))) };
    let Some(seconds) = parse(seconds.to_bytes()) else {
        return fail(b"SECONDS must be a number", 2);
    };
    let plan = Plan::new().pid_file(pid_file).readiness(Readiness::Manual);
    match plan.start() {
        Ok(Started::Parent(_)) => 0,
        Ok(Started::Daemon(mut daemon)) => {
            let signals = block_sigterm();
            if daemon.ready().is_err() {
                return 1;
            }
            // time_t is 32 or 64 bits by target; any u32 second count fits.
            let timeout = libc::timespec {
                tv_sec: seconds as _,
                tv_nsec: 0,
            };
            // SAFETY: valid set and timespec; a null info pointer is allowed.
            unsafe { libc::sigtimedwait(&signals, core::ptr::null_mut(), &timeout) };
            drop(daemon);
            0
        }
        Err(error) => {
            // The message without core::fmt: the formatting machinery
            // would cost this binary kilobytes.
            let mut buf = [0u8; 200];
            fail(error.write_message(&mut buf), 1)
        }
    }
}

fn parse(digits: &[u8]) -> Option<u32> {
    let mut n: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    (!digits.is_empty()).then_some(n)
}

fn block_sigterm() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before it is read.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, &set, core::ptr::null_mut());
        set
    }
}

/// Writes `nostd-smoke: MESSAGE` and a newline to stderr in one write,
/// from a stack buffer.
fn fail(message: &[u8], status: c_int) -> c_int {
    let mut line = [0u8; 256];
    let mut len = 0;
    for part in [&b"nostd-smoke: "[..], message, b"\n"] {
        let n = part.len().min(line.len() - len);
        line[len..len + n].copy_from_slice(&part[..n]);
        len += n;
    }
    // SAFETY: writes `len` initialised bytes from our buffer to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), len) };
    status
}
