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

mod args;
mod control;
// Used on musl; tested everywhere.
#[cfg_attr(not(target_env = "musl"), allow(dead_code))]
mod etc;
mod ids;
mod out;
mod program;
mod pump;
mod start;
mod supervise;
mod sys;
mod tree;

use core::ffi::{CStr, c_char, c_int};

use args::Command;
use out::Line;

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
    // --status, as LSB init scripts have it.
    pub const STATUS_RUNNING: i32 = 0;
    pub const STATUS_DEAD_PID_FILE: i32 = 1;
    pub const STATUS_NOT_RUNNING: i32 = 3;
    pub const STATUS_UNKNOWN: i32 = 4;
    // --stop.
    pub const STOP_DONE: i32 = 0;
    pub const STOP_NOT_RUNNING: i32 = 1;
    pub const STOP_UNKNOWN: i32 = 4;
}

const HELP: &str = "\
daemonic: run a program as a Unix daemon

USAGE
  daemonic [OPTIONS] -- PROGRAM [ARGS...]      start PROGRAM as a daemon
  daemonic --stop --pidfile PATH [--signal SIG] [--timeout SECS] [--trust-pidfile]
  daemonic --status --pidfile PATH [--trust-pidfile]

START OPTIONS
  -p, --pidfile PATH      write the daemon's PID to PATH, locked (flock) for its life;
                          a second start while it runs fails (status 2)
  -C, --chdir DIR         working directory (default /)
  -m, --umask OCTAL       file mode creation mask (default 022)
  -o, --stdout FILE       standard output to FILE (append, create 0640; default /dev/null,
                          or as it is with --foreground)
  -e, --stderr FILE       standard error to FILE
      --output FILE       both to FILE
  -u, --user USER[:GROUP] run as USER (name or number), with its groups
  -g, --group GROUP       run as GROUP
      --chroot DIR        change root to DIR first (the working directory is inside)
      --keep-fd N         keep fd N open (repeatable; all other fds above 2 are closed)
      --env KEY=VALUE     set an environment variable (repeatable)
      --clear-env         start from an empty environment
      --nice N            add N to the nice value
      --wait-ready[=SECS] return once PROGRAM reports ready: READY=1 on the
                          NOTIFY_SOCKET daemonic provides, or a newline on --ready-fd
                          (default 60 s; not ready in time: status 4, PROGRAM stopped)
      --ready-fd N        PROGRAM writes a newline to fd N when ready (s6 style)
      --supervise         stay as a supervisor: hold the PID file (own PID), write
                          PROGRAM's PID to --child-pidfile, forward every signal to
                          PROGRAM (but SIGCHLD, the synchronous ones, SIGTTIN and
                          SIGTTOU); SIGTERM or SIGINT stop PROGRAM's whole tree
                          (SIGKILL after --timeout); reap every orphan; what PROGRAM
                          leaves running when it exits is stopped too; PROGRAM gets
                          SIGKILL if the supervisor dies; remove the PID files at
                          exit. As PID 1 (--foreground in a container or PID
                          namespace) exit with PROGRAM's status, 128+N for signal N
      --child-pidfile PATH  with --supervise: PROGRAM's PID file
      --restart[=DELAY]   with --supervise: restart PROGRAM when it exits abnormally,
                          after DELAY seconds (default 1, at least 0.1), doubling up
                          to 60 s; never after a stop request; after 5 starts within
                          10 s the supervisor gives up
      --timeout SECS      with --supervise: how long a stopping PROGRAM gets before
                          SIGKILL (default 10)
      --rotate SIZE[:COUNT]  with --supervise and one output file: the supervisor
                          writes PROGRAM's output itself and moves FILE to FILE.1 ...
                          FILE.COUNT (default 10, oldest dropped) when it passes SIZE
                          bytes (k, M: KiB, MiB)
      --timestamps        with --supervise and one output file: each line of PROGRAM's
                          output starts with its time, ISO 8601 UTC; without
                          --rotate, SIGHUP makes the supervisor reopen FILE (for
                          logrotate, newsyslog) instead of reaching PROGRAM
      --syslog[=FACILITY.PRIORITY]  with --supervise: each line PROGRAM writes goes
                          to the syslog socket as <PRI>TAG[PID]: line (default
                          daemon.notice); lines are counted, never waited for, while
                          the socket is missing or full, and the count is sent once it
                          takes lines again
      --syslog-tag TAG    the tag (default: PROGRAM's name)
      --syslog-stderr SEVERITY  standard error at a severity of its own (err, ...)
      --syslog-socket PATH  the socket (default /dev/log)
      --foreground        every step but the forks (systemd Type=notify, containers);
                          standard streams stay as they are unless a file is named
  -h, --help              this text
  -V, --version           the version

STOP OPTIONS
      --signal SIG        the signal to send (name or number; default TERM)
      --timeout SECS      wait this long for the daemon to go, then SIGKILL what it
                          started and it (default 10)
      --trust-pidfile     act on the PID file's word where nothing can prove that the
                          PID it names holds it (no /proc)

A PID is signalled or reported running only once that process is seen holding the
PID file open (/proc/PID/fd), through a pidfd taken first; never PID 1. As root, a
PID file another user owns or can write, or in a directory others can write without
the sticky bit, is refused.

EXIT STATUS
  start:    0 started (and ready, with --wait-ready); 1 usage error; 2 already running
            (the message names the PID); 3 PROGRAM could not be started (the message
            names the step and the OS error); 4 not ready in time (PROGRAM was stopped,
            no PID file left)
  --status: 0 running; 1 not running but the PID file exists; 3 not running;
            4 unknown (the PID file cannot be read or trusted, or is held by a
            process other than the one it names)
  --stop:   0 stopped (once the process is gone); 1 not running; 4 could not tell,
            may not signal it, or could not stop
Every error message starts with 'daemonic: '.
";

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
    // default back (the library resets signals before execve).
    // SAFETY: setting a disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let args = match arguments(argc, argv) {
        Ok(args) => args,
        Err(_) => {
            Line::daemonic().text(b"out of memory").eprint();
            return exit::USAGE;
        }
    };
    run(args)
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
    let mut start = args::Start::default();
    match parse(args, &mut start) {
        None => exit::USAGE,
        Some(Command::Help) => {
            out::write_all(1, HELP.as_bytes());
            0
        }
        Some(Command::Version) => {
            let version = concat!("daemonic ", env!("CARGO_PKG_VERSION"), "\n");
            out::write_all(1, version.as_bytes());
            0
        }
        Some(Command::Status { pid_file, trust }) => control::status(pid_file, trust),
        Some(Command::Stop {
            pid_file,
            signal,
            timeout,
            trust,
        }) => control::stop(pid_file, signal, timeout, trust),
        Some(Command::Start) => start::run(&mut start),
    }
}

/// The command line, or `None` once a usage error is printed. Out of line,
/// as every function that builds a message: the message buffer lives on
/// the stack only while the message is made, not under a supervisor that
/// stays for months (its stack pages would stay resident).
#[inline(never)]
fn parse(args: &'static [&'static CStr], start: &mut args::Start) -> Option<Command> {
    let mut usage = Line::daemonic();
    match args::parse(args, start, &mut usage) {
        Ok(command) => Some(command),
        Err(args::Usage) => {
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
