//! What the caller prepares before the first fork and shares, by fork,
//! with the session leader and the daemon: the starting directory, the
//! locked PID file, the program's readiness channel, the progress page.
//! Runs in the caller; it may fail, never after the fork.

use core::ffi::CStr;

use rustix::fd::{AsRawFd, OwnedFd, RawFd};
use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Step, os};
use crate::pidfile::{self, LockedPidFile};
use crate::plan::{Plan, ProgramReadiness};
use crate::progress::Progress;
use crate::{notify, report};

/// What the caller prepares before forking, shared (by fork) with the daemon.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The caller's working directory, for relative stream paths.
    pub(crate) start_dir: Option<OwnedFd>,
    /// The PID file, locked.
    pub(crate) pid_file: Option<LockedPidFile>,
    /// The caller's end of the program's readiness channel: the bound
    /// notification socket or the pipe's read end.
    pub(crate) program_ready_reader: Option<OwnedFd>,
    /// The program's end: the pipe's write end, for the fd it writes to.
    pub(crate) program_ready_writer: Option<OwnedFd>,
    /// Where the daemon records the step it is in, for a timeout's message
    /// (detached starts only: no caller waits otherwise).
    pub(crate) progress: Option<Progress>,
}

impl Setup {
    // Out of line: one copy, however many callers LTO sees (ci/size measures).
    #[inline(never)]
    pub(crate) fn prepare(plan: &Plan<'_>) -> Result<Setup, Error> {
        let mut setup = Setup {
            start_dir: open_start_dir(plan)?,
            pid_file: plan.pid_file.map(pidfile::lock).transpose()?,
            program_ready_reader: None,
            program_ready_writer: None,
            progress: None,
        };
        match plan.program_readiness {
            None => {}
            Some(ProgramReadiness::NotifySocket(path)) => {
                let socket = notify::bind(path).map_err(os(Step::Readiness))?;
                // The program runs as the plan's user: the socket must be
                // writable by it (a file of the caller's otherwise).
                if let Some(uid) = plan.credentials.uid {
                    notify::give_to(path, uid, plan.credentials.gid)
                        .map_err(os(Step::Readiness))?;
                }
                setup.program_ready_reader = Some(socket);
            }
            Some(ProgramReadiness::Fd(_)) => {
                let (reader, writer) = report::pipe().map_err(os(Step::Readiness))?;
                setup.program_ready_reader = Some(reader);
                setup.program_ready_writer = Some(writer);
            }
        }
        Ok(setup)
    }

    /// Removes the PID file this setup locked (after a failure, while this
    /// process holds the lock).
    pub(crate) fn remove_pid_file(&self, plan: &Plan<'_>) {
        if let (Some(locked), Some(path)) = (&self.pid_file, plan.pid_file) {
            let _ = pidfile::remove(locked, path);
        }
    }

    /// The fds the daemon must not close.
    pub(crate) fn own_fds(&self, report: Option<&OwnedFd>) -> [RawFd; 6] {
        let raw = |fd: Option<&OwnedFd>| fd.map_or(-1, AsRawFd::as_raw_fd);
        [
            raw(report),
            raw(self.pid_file.as_ref().map(|p| &p.file)),
            raw(self.pid_file.as_ref().map(|p| &p.dir)),
            raw(self.program_ready_writer.as_ref()),
            -1,
            raw(self.pid_file.as_ref().and_then(|p| p.writer.as_ref())),
        ]
    }

    /// Moves the crate's own fds off the numbers the daemon will overwrite
    /// (see [`off_overwritten`]).
    // Out of line: one copy, however many callers LTO sees (ci/size measures).
    #[inline(never)]
    pub(crate) fn move_own_fds(&mut self, plan: &Plan<'_>) -> Result<(), Error> {
        let away = |fd| off_overwritten(fd, plan, true);
        if let Some(locked) = self.pid_file.take() {
            self.pid_file = Some(LockedPidFile {
                dir: away(locked.dir)?,
                file: away(locked.file)?,
                writer: locked.writer.map(away).transpose()?,
            });
        }
        self.start_dir = self.start_dir.take().map(away).transpose()?;
        self.program_ready_reader = self.program_ready_reader.take().map(away).transpose()?;
        // The pipe end the program gets is placed on its number later.
        self.program_ready_writer = self
            .program_ready_writer
            .take()
            .map(|fd| off_overwritten(fd, plan, false))
            .transpose()?;
        Ok(())
    }
}

/// `fd`, moved if it sits where the daemon will put something else: on 0, 1
/// or 2, which `open(2)` hands out when the caller had them closed (a
/// `#![no_std]` program gets no runtime that reopens them), or, with
/// `off_program_fd`, on the number the program's readiness fd must take.
pub(crate) fn off_overwritten(
    fd: OwnedFd,
    plan: &Plan<'_>,
    off_program_fd: bool,
) -> Result<OwnedFd, Error> {
    let target = match plan.program_readiness {
        Some(ProgramReadiness::Fd(target)) if off_program_fd => Some(target),
        _ => None,
    };
    let raw = fd.as_raw_fd();
    if raw > 2 && Some(raw) != target {
        return Ok(fd);
    }
    let moved = rustix::io::fcntl_dupfd_cloexec(&fd, 3).map_err(os(Step::Prepare))?;
    match target {
        // The lowest free number may be the program's: past it.
        Some(target) if moved.as_raw_fd() == target => {
            rustix::io::fcntl_dupfd_cloexec(&moved, target + 1).map_err(os(Step::Prepare))
        }
        _ => Ok(moved),
    }
}

/// Opens the caller's working directory when a relative stream path needs
/// it: the daemon changes directory (and maybe root) before it opens them.
fn open_start_dir(plan: &Plan<'_>) -> Result<Option<OwnedFd>, Error> {
    let paths = [plan.stdin.path(), plan.stdout.path(), plan.stderr.path()];
    let relative = |path: &&CStr| path.to_bytes().first() != Some(&b'/');
    if !paths.iter().flatten().any(relative) {
        return Ok(None);
    }
    #[cfg(daemonic_o_path)]
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    #[cfg(not(daemonic_o_path))]
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(c".", flags, Mode::empty())
        .map(Some)
        .map_err(os(Step::Prepare))
}
