//! Starting: the options onto the library's [`Plan`], its errors onto the
//! exit statuses.

use core::ffi::CStr;

#[cfg(feature = "harden")]
use daemonic::Errno;
use daemonic::{Error, ProgramReadiness, Started, Step};

use crate::ids::{self, Ids};
use crate::out::Line;
use crate::outcome::{refused, report, unfit_program};
use crate::program::{self, Notify};
use crate::request::{DEFAULT_WAIT, Start};
use crate::startplan::plan;
#[cfg(feature = "supervise")]
use crate::supervise;
use crate::{exit, sys};

#[inline(never)]
pub fn run(start: &mut Start) -> i32 {
    #[cfg(feature = "harden")]
    if read_env_files(start).is_err() {
        return exit::USAGE;
    }
    let Some(ids) = resolve_ids(start) else {
        return exit::USAGE;
    };
    #[cfg(feature = "harden")]
    if let Some(name) = start.runtime_dir {
        let made = match make_runtime_dir(start, &ids, name) {
            Ok(made) => made,
            Err(status) => return status,
        };
        let status = start_as(start, &ids);
        // A start that failed leaves nothing it made.
        if made && status != exit::STARTED {
            remove_runtime_dir(name);
        }
        return status;
    }
    start_as(start, &ids)
}

/// Starts with the ids resolved (and the runtime directory made).
fn start_as(start: &mut Start, ids: &Ids) -> i32 {
    #[cfg(feature = "supervise")]
    if start.supervise {
        return supervise::run(start, ids);
    }
    // The program tells a socket in a private directory, which the
    // library's caller side binds and reads.
    let mut private = None;
    if start.wait_ready.is_some() && start.ready_fd.is_none() {
        match program::private_dir(ids.owner()).and_then(|(dir, socket)| {
            let entry = sys::c_string(&[b"NOTIFY_SOCKET=", socket.to_bytes()])?;
            Ok((dir, socket, entry))
        }) {
            Ok(made) => private = Some(made),
            Err(errno) => {
                return report(&Error::Os {
                    step: Step::Readiness,
                    errno,
                });
            }
        }
    }
    let notify = private.map_or(Notify::Keep, |(_, _, entry)| Notify::Set(entry));
    let status = start_program(start, ids, notify, private.map(|(_, socket, _)| socket));
    if let Some((dir, socket, _)) = private {
        program::remove_private_dir(dir, socket);
    }
    status
}

/// The `--env-file`s' entries before the `--env`s, or `Err` once what is
/// wrong is said. Out of line: see `parse` in main.rs.
#[cfg(feature = "harden")]
#[inline(never)]
fn read_env_files(start: &mut Start) -> Result<(), ()> {
    if start.env_files().is_empty() {
        return Ok(());
    }
    let mut error = Line::daemonic();
    match crate::envfile::merge(start.env_files(), start.env(), &mut error) {
        Ok(entries) => {
            start.env_count = entries.len();
            start.env = entries;
            Ok(())
        }
        Err(()) => {
            error.eprint();
            Err(())
        }
    }
}

/// `--runtime-dir NAME`: `/run/NAME` made for the user the daemon runs as,
/// and `RUNTIME_DIRECTORY` for the program; whether it was made now, or
/// the status once the error is said. Out of line: see `parse` in main.rs.
#[cfg(feature = "harden")]
#[inline(never)]
fn make_runtime_dir(start: &mut Start, ids: &Ids, name: &'static CStr) -> Result<bool, i32> {
    let failed = |errno| {
        runtime_dir_said(b"failed to make the runtime directory ", name, errno);
        exit::COULD_NOT_START
    };
    let made = crate::rundir::create(name, ids.owner()).map_err(failed)?;
    let entry = crate::rundir::path(name)
        .and_then(|path| sys::c_string(&[b"RUNTIME_DIRECTORY=", path.to_bytes()]))
        .and_then(|entry| start.prepend_env(entry));
    entry.map(|()| made).map_err(|errno| {
        if made {
            remove_runtime_dir(name);
        }
        failed(errno)
    })
}

/// `what /run/NAME: error`.
#[cfg(feature = "harden")]
fn runtime_dir_said(what: &[u8], name: &CStr, errno: Errno) {
    Line::daemonic()
        .text(what)
        .c(crate::rundir::PARENT)
        .text(b"/")
        .c(name)
        .text(b": ")
        .errno(errno)
        .eprint();
}

/// Removes `/run/NAME` with what it holds, saying what cannot be removed.
#[cfg(feature = "harden")]
#[inline(never)]
pub fn remove_runtime_dir(name: &CStr) {
    if let Err(errno) = crate::rundir::remove(name) {
        runtime_dir_said(b"cannot remove the runtime directory ", name, errno);
    }
}

/// The user and group as ids, or `None` once the unknown one is named.
/// Out of line: see `parse` in main.rs.
#[inline(never)]
fn resolve_ids(start: &Start) -> Option<Ids> {
    let mut unknown = Line::daemonic();
    let ids = ids::resolve(start.user, start.group, &mut unknown).ok();
    if ids.is_none() {
        unknown.eprint();
    }
    ids
}

fn start_program(start: &mut Start, ids: &Ids, notify: Notify, socket: Option<&CStr>) -> i32 {
    #[cfg(feature = "harden")]
    if !start.listens().is_empty() {
        if let Err(status) = activate(start, ids, notify) {
            return status;
        }
    }
    let exec = match program::prepare(start, notify) {
        Ok(exec) => exec,
        Err(unfit) => return unfit_program(unfit, start),
    };
    let mut plan = plan(start, ids)
        .exec(exec)
        .ready_timeout(Some(start.wait_ready.unwrap_or(DEFAULT_WAIT)));
    if let Some(fd) = start.ready_fd {
        plan = plan.program_readiness(ProgramReadiness::Fd(fd));
    } else if let Some(socket) = socket {
        plan = plan.program_readiness(ProgramReadiness::NotifySocket(socket));
    }
    match plan.start() {
        Ok(Started::Parent(_)) => exit::STARTED,
        // An executed program never returns here.
        Ok(Started::Daemon(_)) => exit::COULD_NOT_START,
        Err(error) => refused(&error, &plan, start),
    }
}

/// `--listen` without `--supervise`: the sockets bound (as root) and put at
/// fds 3, 4, ... of this process, which the daemon keeps; `LISTEN_FDS` and
/// `LISTEN_FDNAMES` in the environment; and the program run through
/// daemonic's own binary (opened from `/proc/self/exe`), which sets
/// `LISTEN_PID` to the daemon's PID (activated.rs). `Err` once the error
/// is said.
#[cfg(feature = "harden")]
#[inline(never)]
fn activate(start: &mut Start, ids: &Ids, notify: Notify) -> Result<(), i32> {
    let program = program::locate(start, notify).map_err(|unfit| unfit_program(unfit, start))?;
    let bound = crate::listen::bind_all(start.listens(), ids.owner())
        .map_err(|(address, errno)| crate::listen::cannot(address, errno))?;
    for (at, &fd) in bound.fds.iter().enumerate() {
        let target = 3 + at as i32;
        // SAFETY: our own sockets onto fds this process does not need (the
        // daemon closes all but the kept ones); dup2's copy is inheritable.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(crate::listen::cannot(start.listens()[at], sys::errno()));
        }
        start.keep_fds[start.kept] = target;
        start.kept += 1;
    }
    // daemonic's own binary, opened now, as root: executed through
    // /proc/self/fd/N by the daemon, after its user changed, whatever
    // directory it lies in (`-u`'s user may not reach it).
    let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC;
    let exe = rustix::fs::open(c"/proc/self/exe", flags, rustix::fs::Mode::empty())
        .ok()
        .map(daemonic::fd::IntoRawFd::into_raw_fd)
        .and_then(|fd| {
            let number = daemonic::decimal::Decimal::new(fd as u64);
            start.keep_fds[start.kept] = fd;
            start.kept += 1;
            sys::c_string(&[b"/proc/self/fd/", number.digits()]).ok()
        });
    let Some(exe) = exe else {
        Line::daemonic()
            .text(b"--listen without --supervise runs the program through /proc/self/exe, which is not there: use --supervise")
            .eprint();
        return Err(exit::COULD_NOT_START);
    };
    let failed = |errno| {
        report(&Error::Os {
            step: Step::Prepare,
            errno,
        })
    };
    start.prepend_env(bound.names_entry).map_err(failed)?;
    start.prepend_env(bound.fds_entry).map_err(failed)?;
    let argv = sys::slab(start.program.len() + 3, exe).map_err(failed)?;
    argv[1] = crate::activated::MODE;
    argv[2] = program;
    argv[3..].copy_from_slice(start.program);
    start.program = argv;
    Ok(())
}
