//! What a start ended in, said: the message of a refused or failed start,
//! naming the file or program involved, and its exit status.

use core::ffi::CStr;

use daemonic::{Errno, Error, Plan, Step};

use crate::exit;
use crate::inspect::{Holder, inspect};
use crate::out::Line;
use crate::program::Unfit;
use crate::request::Start;

/// Says why the program cannot be executed.
#[inline(never)]
pub fn unfit_program(unfit: Unfit, start: &Start) -> i32 {
    let mut message = Line::daemonic();
    match unfit {
        Unfit::NotInPath => message
            .text(b"no program '")
            .c(start.program[0])
            .text(b"' in PATH"),
        Unfit::NoMemory => message
            .text(b"failed to prepare the program: ")
            .errno(Errno::NOMEM),
    };
    message.eprint();
    match unfit {
        // In the foreground daemonic stands for the program: a shell's status.
        Unfit::NotInPath if start.foreground => exit::NOT_FOUND,
        _ => exit::COULD_NOT_START,
    }
}

/// The program could not be executed, with nobody else to tell (in the
/// foreground): says so and exits with a shell's status, 127 when it was
/// not found, 126 when it was found but could not be executed, as shells,
/// tini and docker report it.
#[cfg(feature = "supervise")]
pub fn exec_failed(program: &CStr, errno: Errno) -> ! {
    Line::daemonic()
        .text(b"failed to execute ")
        .c(program)
        .text(b": ")
        .errno(errno)
        .eprint();
    // SAFETY: ends this process; nothing is buffered.
    unsafe { libc::_exit(exec_status(errno)) }
}

/// 127 for a program not found, 126 for one that cannot be executed.
pub fn exec_status(errno: Errno) -> i32 {
    match errno {
        Errno::NOENT | Errno::NOTDIR => exit::NOT_FOUND,
        _ => exit::CANNOT_EXECUTE,
    }
}

/// Prints why a start failed, naming the file or program involved, and
/// gives the exit status.
#[inline(never)]
pub fn refused(error: &Error, plan: &Plan<'_>, start: &Start) -> i32 {
    match error {
        Error::Os { step, errno } if !(*step == Step::Readiness && *errno == Errno::TIMEDOUT) => {
            // What failed on what: the plan names the path or program.
            Line::daemonic().described(&plan.describe(error)).eprint();
            match step {
                Step::Exec if start.foreground => exec_status(*errno),
                _ => status_of(error),
            }
        }
        Error::NotReady {
            last_step: Some(step),
            ..
        } => {
            let mut message = Line::daemonic();
            message.text(b"the daemon was not ready in time, still ");
            doing(&mut message, *step, start);
            message.text(b"; it was stopped").eprint();
            exit::NOT_READY
        }
        Error::LockedByOther { .. } => {
            let mut message = Line::daemonic();
            message.error(error);
            if let (Some(path), Holder::Survivors { .. }) = (
                start.pid_file,
                start.pid_file.map_or(Holder::Missing, inspect),
            ) {
                message
                    .text(b"; it outlived the daemon that held the PID file (daemonic --stop -p ")
                    .c(path)
                    .text(b" stops it)");
            }
            message.eprint();
            status_of(error)
        }
        error => report(error),
    }
}

/// What the daemon was doing at `step`, with the path it was opening.
fn doing(line: &mut Line, step: Step, start: &Start) {
    let opening = |line: &mut Line, what: &[u8], path: Option<&CStr>| match path {
        Some(path) => {
            line.text(b"opening the ").text(what).text(b" ").c(path);
        }
        None => {
            line.text(b"opening /dev/null for the ").text(what);
        }
    };
    match step {
        Step::RedirectStdout => opening(line, b"output file", start.stdout),
        Step::RedirectStderr => opening(line, b"error file", start.stderr),
        Step::RedirectStdin => opening(line, b"input", None),
        Step::ChangeDirectory => {
            line.text(b"changing directory to ")
                .c(start.chdir.unwrap_or(c"/"));
        }
        step => {
            line.text(b"trying to ").text(step.describe().as_bytes());
        }
    }
}

/// Prints the error and gives its exit status.
#[inline(never)]
pub fn report(error: &Error) -> i32 {
    let mut message = Line::daemonic();
    match error {
        Error::Os {
            step: Step::Readiness,
            errno: Errno::TIMEDOUT,
        } => message.text(b"the program was not ready in time; it was stopped"),
        error => message.error(error),
    };
    message.eprint();
    status_of(error)
}

pub fn status_of(error: &Error) -> i32 {
    match error {
        Error::AlreadyRunning { .. } | Error::LockedByOther { .. } => exit::ALREADY_RUNNING,
        Error::UntrustedPidFile { .. } => exit::USAGE,
        Error::NotReady { .. } => exit::NOT_READY,
        Error::Os {
            step: Step::Readiness,
            errno: Errno::TIMEDOUT,
        } => exit::NOT_READY,
        Error::Invalid { .. } | Error::InteriorNul { .. } => exit::USAGE,
        _ => exit::COULD_NOT_START,
    }
}
