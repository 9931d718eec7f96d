//! The daemon's handle on what `start` set up for it.

use core::ffi::CStr;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::CWD;
use rustix::io::Errno;
use rustix::process::Pid;

use crate::error::Step;
use crate::fork::exit_now;
use crate::pidfile;
use crate::report::{self, Record};

/// The daemon's handle, returned by [`Plan::start`](crate::Plan::start) in
/// the daemon.
///
/// It owns the daemon's PID file: [`remove_pid_file`](Daemon::remove_pid_file)
/// or dropping the handle removes it, in the daemon only (a process the
/// daemon forks later and that drops a copy leaves it alone). Code that ends
/// with `std::process::exit` or a signal should remove the file first.
#[derive(Debug)]
pub struct Daemon<'a> {
    pid: Pid,
    pid_file: Option<PidFilePath<'a>>,
    /// Where a relative PID file path is resolved (the caller's directory).
    pid_dir: Option<OwnedFd>,
    /// The report pipe, until readiness is reported.
    report: Option<OwnedFd>,
    /// What a [`Daemonize`](crate::Daemonize) builder prepared, kept so
    /// that it is freed only when the program drops the handle.
    #[cfg(feature = "std")]
    _prepared: Option<crate::builder::Prepared>,
}

/// The PID file's path: borrowed from a [`Plan`](crate::Plan), or owned when
/// a [`Daemonize`](crate::Daemonize) builder made it.
#[derive(Debug)]
enum PidFilePath<'a> {
    Borrowed(&'a CStr),
    #[cfg(feature = "std")]
    Owned(std::ffi::CString),
}

impl PidFilePath<'_> {
    fn as_c_str(&self) -> &CStr {
        match self {
            PidFilePath::Borrowed(path) => path,
            #[cfg(feature = "std")]
            PidFilePath::Owned(path) => path,
        }
    }
}

impl<'a> Daemon<'a> {
    pub(crate) fn new(
        pid: Pid,
        pid_file: Option<&'a CStr>,
        pid_dir: Option<OwnedFd>,
        report: OwnedFd,
    ) -> Daemon<'a> {
        Daemon {
            pid,
            pid_file: pid_file.map(PidFilePath::Borrowed),
            pid_dir,
            report: Some(report),
            #[cfg(feature = "std")]
            _prepared: None,
        }
    }

    /// The same handle without its borrowed PID file path.
    #[cfg(feature = "std")]
    pub(crate) fn forget_pid_file(mut self) -> Daemon<'static> {
        // Emptied so that dropping `self` removes nothing.
        self.pid_file = None;
        Daemon {
            pid: self.pid,
            pid_file: None,
            pid_dir: self.pid_dir.take(),
            report: self.report.take(),
            _prepared: None,
        }
    }

    /// The daemon's PID.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Tells the caller the daemon is ready, which lets it return (or exit
    /// 0, under [`Daemonize`](crate::Daemonize)). Call it once the program's
    /// set-up is done, with [`Readiness::Manual`](crate::Readiness::Manual);
    /// under the default [`Readiness::WhenStarted`](crate::Readiness::WhenStarted)
    /// `start` has already done it and this does nothing.
    ///
    /// # Errors
    ///
    /// The write to the report pipe failed (`EPIPE`: the caller is gone).
    pub fn ready(&mut self) -> Result<(), Errno> {
        match self.report.take() {
            Some(report) => report::send(&report, Record::Ready(self.pid)),
            None => Ok(()),
        }
    }

    /// Reports that the program's own set-up failed with `errno`, removes the
    /// PID file and ends the daemon with `_exit(1)`. The caller's `start`
    /// returns [`Error::Os`](crate::Error::Os) with
    /// [`Step::Initialization`]. Use it with
    /// [`Readiness::Manual`](crate::Readiness::Manual), before
    /// [`ready`](Daemon::ready).
    pub fn fail(mut self, errno: Errno) -> ! {
        let _ = self.remove_pid_file();
        if let Some(report) = self.report.take() {
            let record = Record::Failed {
                step: Step::Initialization,
                errno,
                pid: self.pid,
            };
            let _ = report::send(&report, record);
        }
        exit_now(1)
    }

    /// Removes the PID file now, if this process is the daemon that wrote it.
    ///
    /// # Errors
    ///
    /// [`unlink(2)`](https://man7.org/linux/man-pages/man2/unlink.2.html)
    /// failed; the handle forgets the file all the same.
    pub fn remove_pid_file(&mut self) -> Result<(), Errno> {
        if rustix::process::getpid() != self.pid {
            return Ok(());
        }
        match self.pid_file.take() {
            Some(path) => {
                let dir = self.pid_dir.as_ref().map_or(CWD, |fd| fd.as_fd());
                pidfile::remove(dir, path.as_c_str())
            }
            None => Ok(()),
        }
    }
}

#[cfg(feature = "std")]
impl Daemon<'static> {
    /// The same handle owning its PID file path and what the builder
    /// prepared, so they outlive the plan that borrowed them. Moves them;
    /// allocates nothing.
    pub(crate) fn owning(
        mut self,
        pid_file: Option<std::ffi::CString>,
        prepared: crate::builder::Prepared,
    ) -> Daemon<'static> {
        self.pid_file = pid_file.map(PidFilePath::Owned);
        self._prepared = Some(prepared);
        self
    }
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        let _ = self.remove_pid_file();
    }
}
