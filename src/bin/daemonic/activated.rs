//! `--listen` without `--supervise` (feature `harden`): socket activation
//! wants `LISTEN_PID` to be the program's own PID, which is the daemon's,
//! known only once it exists. So the daemon executes daemonic once more,
//! as `daemonic --exec-activated PROGRAM ARGV0 ARGS...` (an internal mode,
//! not for users: the start composes it), which sets `LISTEN_PID` to its
//! PID and executes PROGRAM: `execve` keeps the PID. A fresh process
//! image, with no host's threads, so preparing memory here is safe.

use core::ffi::{CStr, c_char};

use daemonic::Errno;

use crate::out::Line;
use crate::sys;

/// The internal mode's word.
pub const MODE: &CStr = c"--exec-activated";

/// `PROGRAM ARGV0 ARGS...`: executes PROGRAM with `LISTEN_PID` set; on
/// failure says why and ends with a shell's status (127 or 126).
pub fn run(args: &[&'static CStr]) -> ! {
    let errno = match args {
        [program, argv @ ..] if !argv.is_empty() => execute(program, argv),
        _ => Errno::INVAL,
    };
    Line::daemonic()
        .text(b"failed to execute ")
        .c(args.first().copied().unwrap_or(c"?"))
        .text(b": ")
        .errno(errno)
        .eprint();
    // SAFETY: ends this process; nothing is buffered.
    unsafe { libc::_exit(crate::outcome::exec_status(errno)) }
}

fn execute(program: &CStr, argv: &[&'static CStr]) -> Errno {
    let pid = daemonic::decimal::Decimal::pid(rustix::process::getpid());
    let Ok(entry) = sys::c_string(&[b"LISTEN_PID=", pid.digits()]) else {
        return Errno::NOMEM;
    };
    let inherited = sys::environ().filter(|e| !e.to_bytes().starts_with(b"LISTEN_PID="));
    let (Ok(env), Ok(args)) = (
        sys::slab(sys::environ().count() + 2, core::ptr::null::<c_char>()),
        sys::slab(argv.len() + 1, core::ptr::null::<c_char>()),
    ) else {
        return Errno::NOMEM;
    };
    for (slot, entry) in env.iter_mut().zip(inherited.chain([entry])) {
        *slot = entry.as_ptr();
    }
    for (slot, arg) in args.iter_mut().zip(argv) {
        *slot = arg.as_ptr();
    }
    // SAFETY: null-terminated arrays of C strings that live for the
    // process; execve replaces it or returns.
    unsafe { libc::execve(program.as_ptr(), args.as_ptr(), env.as_ptr()) };
    sys::errno()
}
