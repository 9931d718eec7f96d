//! `daemonic`: start, stop, check and supervise a program as a daemon, on
//! the `daemonic` crate. See `daemonic --help` and README.md.
//!
//! `#![no_std]` and `#![no_main]`: a C `main` over the C library, no
//! allocator, no formatting machinery, so that the static binary stays
//! small (README, "Building tiny"). Arguments stay the bytes `argv` holds.
//! With the `std` feature (the default, for `cargo install`) the library
//! links `std`, which then provides the panic handler; nothing here uses it.

#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

// The command stands on Linux: signalfd, pidfds, /proc as the proof of a
// PID file, the child subreaper and the parent-death signal. The library
// builds on every Unix (README, "Platforms").
#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!(
    "the daemonic command is Linux-only (signalfd, pidfd, /proc, PR_SET_CHILD_SUBREAPER); \
     the library builds here: depend on it with default-features = false, features = [\"std\"]"
);

// The lean command (feature `cli`): start, stop, status, signal.
mod args;
mod control;
// Used on musl; tested everywhere.
#[cfg_attr(not(target_env = "musl"), allow(dead_code))]
mod etc;
mod help;
mod ids;
mod inspect;
mod out;
mod outcome;
mod pinned;
mod procfs;
mod program;
mod request;
mod schedule;
mod sigconf;
mod signame;
mod start;
mod startplan;
mod sys;
mod values;
// --supervise (feature `supervise`), with PID 1's duties (`pid1`) inside.
#[cfg(feature = "supervise")]
mod childenv;
#[cfg(feature = "supervise")]
mod spawn;
#[cfg(feature = "supervise")]
mod supervise;
#[cfg(feature = "supervise")]
mod supervised;
#[cfg(feature = "supervise")]
mod tree;
#[cfg(feature = "supervise")]
mod watchdog;
// The supervisor's log pump (feature `logs`); without it, a pump that
// cannot exist, so that the supervisor reads the same either way.
#[cfg(feature = "logs")]
mod logfile;
#[cfg_attr(not(feature = "logs"), path = "no_pump.rs")]
#[cfg(feature = "supervise")]
mod pump;
#[cfg(feature = "logs")]
mod syslog;
// Hardening and activation (feature `harden`).
#[cfg(feature = "harden")]
mod activated;
#[cfg(feature = "harden")]
mod envfile;
#[cfg(feature = "harden")]
mod harden;
#[cfg(feature = "harden")]
mod listen;
#[cfg(feature = "harden")]
mod rundir;

use core::ffi::{CStr, c_char, c_int};

use out::Line;
use request::Command;

// Without std, the libc crate declares C functions but links no C library.
#[cfg(not(feature = "std"))]
#[link(name = "c")]
unsafe extern "C" {}

// The prebuilt `core` carries unwind tables that name a personality
// routine (and, on ARM EHABI targets, these two as well); with panic =
// "abort" nothing unwinds, so nothing ever calls them. LTO drops the
// references; a build without it needs the symbols to link.
#[cfg(all(not(feature = "std"), not(test)))]
mod unwind_stubs {
    #[unsafe(no_mangle)]
    extern "C" fn rust_eh_personality() {}
    #[cfg(target_arch = "arm")]
    #[unsafe(no_mangle)]
    extern "C" fn __aeabi_unwind_cpp_pr0() {}
    #[cfg(target_arch = "arm")]
    #[unsafe(no_mangle)]
    extern "C" fn __aeabi_unwind_cpp_pr1() {}
}

/// Nothing here should panic; if something does, end at once with the
/// status of a start that failed (no unwinding, no message machinery).
#[cfg(all(not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: _exit takes any status and never returns.
    unsafe { libc::_exit(exit::COULD_NOT_START) }
}

/// Exit statuses, as `--help` documents them.
mod exit {
    pub const STARTED: i32 = 0;
    pub const USAGE: i32 = 1;
    pub const ALREADY_RUNNING: i32 = 2;
    pub const COULD_NOT_START: i32 = 3;
    pub const NOT_READY: i32 = 4;
    // In the foreground, where daemonic stands for the program, as shells
    // report a command that cannot be run.
    pub const CANNOT_EXECUTE: i32 = 126;
    pub const NOT_FOUND: i32 = 127;
    // --status, as LSB init scripts have it.
    pub const STATUS_RUNNING: i32 = 0;
    pub const STATUS_DEAD_PID_FILE: i32 = 1;
    pub const STATUS_NOT_RUNNING: i32 = 3;
    pub const STATUS_UNKNOWN: i32 = 4;
    // --stop and --signal.
    pub const STOP_DONE: i32 = 0;
    pub const STOP_NOT_RUNNING: i32 = 1;
    /// The schedule is over and the daemon (or what holds its PID file)
    /// is still there, as start-stop-daemon's `--retry` has it.
    pub const STOP_STILL_RUNNING: i32 = 2;
    pub const STOP_UNKNOWN: i32 = 4;
}

/// The C entry point: `argv` holds `argc` C strings that live as long as
/// the process.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    entry(argc, argv)
}

fn entry(argc: c_int, argv: *const *const c_char) -> c_int {
    // As Rust's runtime (and every daemon tool) has it: a reader gone away
    // is EPIPE from write, not death. The daemon and the program get the
    // default back (the library resets signals before execve), or, as a
    // container's entry point, what the caller had (sigconf.rs).
    sigconf::ignore_pipe();
    match arguments(argc, argv) {
        Ok(args) => run(args),
        Err(_) => out_of_memory(),
    }
}

/// Out of line, as every function that builds a message (see `parse`):
/// inlined, its message buffer (4.6 KB) sat in `main`'s frame, under
/// every frame of a supervisor.
#[inline(never)]
fn out_of_memory() -> c_int {
    Line::daemonic().text(b"out of memory").eprint();
    exit::USAGE
}

/// `argv[1..argc]` as a slice of C strings.
fn arguments(
    argc: c_int,
    argv: *const *const c_char,
) -> Result<&'static [&'static CStr], daemonic::Errno> {
    let count = usize::try_from(argc).unwrap_or(0).saturating_sub(1);
    let args = sys::slab(count, c"")?;
    for (at, arg) in args.iter_mut().enumerate() {
        // SAFETY: argv holds argc valid C strings, which live (unchanged
        // by this program) until the process ends.
        *arg = unsafe { CStr::from_ptr(*argv.add(at + 1)) };
    }
    Ok(args)
}

fn run(args: &'static [&'static CStr]) -> i32 {
    // The daemon of a `--listen` start without `--supervise` (activated.rs).
    #[cfg(feature = "harden")]
    if let [mode, rest @ ..] = args {
        if *mode == activated::MODE {
            activated::run(rest);
        }
    }
    let mut start = request::Start::default();
    match parse(args, &mut start) {
        None => exit::USAGE,
        Some(Command::Help) => print_help(),
        Some(Command::Version) => {
            let version = concat!("daemonic ", env!("CARGO_PKG_VERSION"), "\n");
            out::write_all(1, version.as_bytes());
            0
        }
        Some(Command::Status { pid_file, trust }) => control::status(pid_file, trust),
        Some(Command::Stop {
            pid_file,
            schedule,
            trust,
            runtime_dir,
        }) => {
            let status = control::stop(pid_file, schedule, trust);
            #[cfg(feature = "harden")]
            if let (Some(name), exit::STOP_DONE | exit::STOP_NOT_RUNNING) = (runtime_dir, status) {
                start::remove_runtime_dir(name);
            }
            let _ = runtime_dir;
            status
        }
        Some(Command::Signal {
            pid_file,
            signal,
            timeout,
            trust,
        }) => control::signal(pid_file, signal, timeout, trust),
        Some(Command::Start) => start::run(&mut start),
    }
}

/// `--help`. Out of line: the unpacked text's buffer (5.6 KB) must not sit
/// in `run`'s frame, under every frame of a supervisor that stays for
/// months (those stack pages would stay resident).
#[inline(never)]
fn print_help() -> i32 {
    let mut text = [0; help::LEN];
    out::write_all(1, help::text(&mut text));
    0
}

/// The command line, or `None` once a usage error is printed. Out of line,
/// as every function that builds a message: the message buffer lives on
/// the stack only while the message is made, not under a supervisor that
/// stays for months (its stack pages would stay resident).
#[inline(never)]
fn parse(args: &'static [&'static CStr], start: &mut request::Start) -> Option<Command> {
    let mut usage = Line::daemonic();
    match args::parse(args, start, &mut usage) {
        Ok(command) => Some(command),
        Err(request::Usage) => {
            usage.text(b" (see daemonic --help)").eprint();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_reads_argv() {
        let words = [c"daemonic", c"--version"];
        let argv: Vec<*const c_char> = words.iter().map(|w| w.as_ptr()).collect();
        assert_eq!(entry(2, argv.as_ptr()), 0);
        let words = [c"daemonic", c"--bogus"];
        let argv: Vec<*const c_char> = words.iter().map(|w| w.as_ptr()).collect();
        assert_eq!(entry(2, argv.as_ptr()), exit::USAGE);
    }
}
