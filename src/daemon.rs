//! The daemon's handle on what `start` set up for it.

use core::ffi::CStr;

use rustix::fd::{OwnedFd, RawFd};
use rustix::io::Errno;
use rustix::process::Pid;

use crate::decimal::Decimal;
use crate::error::{Error, Step};
use crate::fork::exit_now;
use crate::notify;
use crate::pidfile::{self, LockedPidFile};
use crate::plan::Plan;
use crate::report::{self, Record};

/// The daemon's handle, returned by [`Plan::start`](crate::Plan::start) in
/// the daemon.
///
/// It holds the PID file and its lock: [`remove_pid_file`](Daemon::remove_pid_file)
/// or dropping the handle removes the file, in the daemon only (a process the
/// daemon forks later and that drops a copy leaves it alone). Code that ends
/// with `std::process::exit` or a signal should remove the file first.
///
/// Nothing the handle does calls the allocator, for the daemon's whole life:
/// [`ready`](Daemon::ready), [`notify_status`](Daemon::notify_status),
/// [`fail`](Daemon::fail), [`remove_pid_file`](Daemon::remove_pid_file) and
/// dropping it make system calls only. What a
/// [`Daemonize`](crate::Daemonize) builder prepared for it (paths, vectors)
/// is never freed: `free` takes the allocator's lock as `malloc` does, and in
/// a daemon forked from a multithreaded host another thread may have held
/// that lock at the fork. It is a few hundred bytes, returned when the
/// daemon exits.
///
/// It is `Send`: a daemon may hand it to the thread or task that serves
/// (an async runtime started after the start) and drop it there; its
/// methods are system calls on what it owns.
///
/// ```
/// fn send<T: Send>() {}
/// send::<daemonic::Daemon<'static>>();
/// ```
#[derive(Debug)]
pub struct Daemon<'a> {
    pid: Pid,
    pid_file: Option<LockedPidFile>,
    pid_path: Option<CPath<'a>>,
    /// The report pipe, until readiness is reported.
    report: Option<OwnedFd>,
    notify_socket: Option<CPath<'a>>,
    /// `READY=1` was sent (the path is kept: dropping an owned one would
    /// call the allocator, which `fail` must not before `_exit`).
    notify_told: bool,
    notify_fd: Option<RawFd>,
    /// What a [`Daemonize`](crate::Daemonize) builder prepared, kept (and
    /// never freed: see above) for as long as the daemon may use it.
    #[cfg(feature = "std")]
    _prepared: Option<core::mem::ManuallyDrop<crate::prepare::Prepared>>,
}

/// A path borrowed from a [`Plan`], or owned when a
/// [`Daemonize`](crate::Daemonize) builder made it (and then never freed:
/// the daemon must not call the allocator).
#[derive(Debug)]
enum CPath<'a> {
    Borrowed(&'a CStr),
    #[cfg(feature = "std")]
    Owned(core::mem::ManuallyDrop<std::ffi::CString>),
}

impl CPath<'_> {
    fn as_c_str(&self) -> &CStr {
        match self {
            CPath::Borrowed(path) => path,
            #[cfg(feature = "std")]
            CPath::Owned(path) => path,
        }
    }
}

impl<'a> Daemon<'a> {
    pub(crate) fn new(
        pid: Pid,
        plan: &Plan<'a>,
        pid_file: Option<LockedPidFile>,
        report: Option<OwnedFd>,
    ) -> Daemon<'a> {
        Daemon {
            pid,
            pid_file,
            pid_path: plan.pid_file.map(CPath::Borrowed),
            report,
            notify_socket: plan.notify_socket.map(CPath::Borrowed),
            notify_told: false,
            notify_fd: plan.notify_fd,
            #[cfg(feature = "std")]
            _prepared: None,
        }
    }

    /// The daemon's PID.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The read-only fd that holds the PID file's `flock` lock, if there is
    /// a PID file (close-on-exec). A daemon that starts a program of its own
    /// may hand the program a copy (cleared of close-on-exec in the child
    /// only): the lock then lasts while either holds it, so a program that
    /// outlives the daemon (one that lost its parent-death signal) still
    /// keeps a second start away, and [`proof::held_lock`](crate::proof::held_lock)
    /// finds it. The program cannot rewrite the PID through it.
    pub fn pid_file_lock(&self) -> Option<rustix::fd::BorrowedFd<'_>> {
        use rustix::fd::AsFd;
        self.pid_file.as_ref().map(|locked| locked.file.as_fd())
    }

    /// Tells whoever waits that the daemon is ready: the caller of `start`
    /// returns (or exits 0, under [`Daemonize`](crate::Daemonize)); the
    /// notification socket gets `READY=1` and `MAINPID=`; the notification
    /// fd gets a newline and is closed. Each is told once; later calls do
    /// nothing. The pipe to the caller is closed just after the caller is
    /// told, so for a moment after `start` returns there the daemon may still
    /// hold it (the caller does not wait for that: children the daemon
    /// forked before `ready` hold it too). Under the default
    /// [`Readiness::WhenStarted`](crate::Readiness::WhenStarted) `start` has
    /// already called it.
    ///
    /// # Errors
    ///
    /// The first write that failed (`EPIPE`: the caller is gone); the other
    /// channels are still told.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use daemonic::{Plan, Readiness, Started};
    ///
    /// let plan = Plan::new().readiness(Readiness::Manual);
    /// if let Started::Daemon(mut daemon) = plan.start()? {
    ///     let listener = std::net::TcpListener::bind("127.0.0.1:8080");
    ///     match listener {
    ///         // Bound: now whoever started us may rely on the port.
    ///         Ok(_listener) => daemon.ready().ok(),
    ///         Err(_) => daemon.fail(daemonic::Errno::ADDRINUSE),
    ///     };
    /// }
    /// # Ok::<(), daemonic::Error>(())
    /// ```
    pub fn ready(&mut self) -> Result<(), Errno> {
        // The caller last: once it has heard, it may exit, and a supervisor
        // such as systemd must know the daemon's PID (MAINPID=) by then.
        let mut result = Ok(());
        if let (Some(socket), false) = (&self.notify_socket, self.notify_told) {
            self.notify_told = true;
            let pid = Decimal::pid(self.pid);
            let mut message = notify::Message::new();
            message.push(b"READY=1\nMAINPID=").push(pid.line());
            result = notify::send(socket.as_c_str(), message.as_bytes());
        }
        if let Some(fd) = self.notify_fd.take() {
            result = result.and(notify::write_newline(fd));
        }
        if let Some(report) = self.report.take() {
            result = result.and(report::send(&report, Record::Ready(self.pid)));
        }
        result
    }

    /// Blocks SIGTERM and SIGINT in the calling thread, to be taken with
    /// [`StopSignals::wait`](crate::StopSignals::wait) instead of ending the daemon at once. Call it
    /// before [`ready`](Daemon::ready): a stop sent the moment the caller
    /// returns then waits for the program, which can remove its PID file.
    /// Threads started afterwards inherit the mask (so start an async
    /// runtime after it, too).
    ///
    /// # Errors
    ///
    /// [`pthread_sigmask(3)`](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html)
    /// failed.
    pub fn block_stop_signals(&self) -> Result<crate::StopSignals, Errno> {
        crate::StopSignals::block()
    }

    /// Sends `STATUS=text` to the notification socket, which systemd shows
    /// in `systemctl status` (does nothing without a socket, or once the
    /// daemon is ready and the socket was told).
    ///
    /// # Errors
    ///
    /// The send failed.
    pub fn notify_status(&self, text: &str) -> Result<(), Errno> {
        match &self.notify_socket {
            Some(socket) => {
                let mut message = notify::Message::new();
                message.push(b"STATUS=").push(text.as_bytes());
                notify::send(socket.as_c_str(), message.as_bytes())
            }
            None => Ok(()),
        }
    }

    /// Reports that the program's own set-up failed with `errno`, removes the
    /// PID file and ends the daemon with `_exit(1)`. The caller's `start`
    /// returns [`Error::Os`] with
    /// [`Step::Initialization`]. Use it with
    /// [`Readiness::Manual`](crate::Readiness::Manual), before
    /// [`ready`](Daemon::ready).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use daemonic::{Errno, Error, Plan, Readiness, Started, Step};
    ///
    /// match Plan::new().readiness(Readiness::Manual).start() {
    ///     Ok(Started::Daemon(daemon)) => {
    ///         if std::fs::metadata("/etc/mydaemon.conf").is_err() {
    ///             // The caller's start returns the error; no daemon stays.
    ///             daemon.fail(Errno::NOENT);
    ///         }
    ///     }
    ///     Ok(Started::Parent(_)) => {}
    ///     Err(Error::Os { step: Step::Initialization, errno }) => {
    ///         eprintln!("mydaemon: its configuration: {errno}");
    ///     }
    ///     Err(error) => eprintln!("mydaemon: {error}"),
    /// }
    /// ```
    pub fn fail(self, errno: Errno) -> ! {
        self.fail_with(Error::Os {
            step: Step::Initialization,
            errno,
        })
    }

    /// As [`fail`](Daemon::fail), saying what failed: the caller's `start`
    /// returns [`Error::Initialization`] with `context` (at most
    /// [`Context::MAX`](crate::Context::MAX) bytes travel; the text is
    /// copied, nothing allocates, so it may come from a stack buffer).
    ///
    /// ```no_run
    /// use daemonic::{Errno, Plan, Readiness, Started};
    ///
    /// if let Started::Daemon(mut daemon) = Plan::new().readiness(Readiness::Manual).start()? {
    ///     match std::net::TcpListener::bind("0.0.0.0:80") {
    ///         Ok(_listener) => daemon.ready().ok(),
    ///         // The caller prints: failed to initialize (bind 0.0.0.0:80):
    ///         // Address already in use (os error 98)
    ///         Err(_) => daemon.fail_at("bind 0.0.0.0:80", Errno::ADDRINUSE),
    ///     };
    /// }
    /// # Ok::<(), daemonic::Error>(())
    /// ```
    pub fn fail_at(self, context: &str, errno: Errno) -> ! {
        self.fail_with(Error::Initialization {
            context: crate::error::Context::new(context),
            errno,
        })
    }

    /// Reports `error` to the caller, whose `start` returns it, removes the
    /// PID file and ends the daemon with `_exit(1)`: for a daemon that
    /// starts something of its own (a supervisor executing a program) and
    /// passes on how that went. [`Error::Os`], [`Error::Initialization`]
    /// and [`Error::Exited`] travel as they are; other errors arrive as
    /// [`Step::Initialization`] with `EIO`.
    pub fn fail_with(mut self, error: Error) -> ! {
        let _ = self.remove_pid_file();
        let mut context = None;
        let (record, errno) = match error {
            Error::Initialization {
                context: said,
                errno,
            } => {
                context = Some(said);
                (
                    Record::Failed {
                        step: Step::Initialization,
                        errno,
                        pid: self.pid,
                    },
                    errno,
                )
            }
            Error::Os { step, errno } => (
                Record::Failed {
                    step,
                    errno,
                    pid: self.pid,
                },
                errno,
            ),
            Error::Exited { status, pid } => (
                Record::Exited {
                    pid: pid.unwrap_or(self.pid),
                    status: status.to_raw(),
                },
                Errno::CHILD,
            ),
            _ => (
                Record::Failed {
                    step: Step::Initialization,
                    errno: Errno::IO,
                    pid: self.pid,
                },
                Errno::IO,
            ),
        };
        // ERRNO= first: the caller returns once the record is in and the
        // report pipe closed, and a manager listening on the socket may be
        // that caller (a test was, and missed a late ERRNO= now and then).
        if let (Some(socket), false) = (&self.notify_socket, self.notify_told) {
            let mut message = notify::Message::new();
            let code = Decimal::new(u64::from(errno.raw_os_error().unsigned_abs()));
            message.push(b"ERRNO=").push(code.digits());
            let _ = notify::send(socket.as_c_str(), message.as_bytes());
        }
        if let Some(report) = self.report.take() {
            let _ = match &context {
                Some(context) => report::send_failure(&report, context, record),
                None => report::send(&report, record),
            };
        }
        exit_now(1)
    }

    /// Removes the PID file now and releases its lock, if this process is
    /// the daemon that holds it.
    ///
    /// # Errors
    ///
    /// [`unlink(2)`](https://man7.org/linux/man-pages/man2/unlink.2.html)
    /// failed; the handle lets go of the file all the same.
    pub fn remove_pid_file(&mut self) -> Result<(), Errno> {
        if rustix::process::getpid() != self.pid {
            return Ok(());
        }
        // The path stays (freeing an owned one here would call the
        // allocator, and `fail` calls this right before `_exit`); the lock
        // goes, after the file: no other start can lock the file and then
        // lose it to us.
        match (self.pid_file.take(), &self.pid_path) {
            (Some(locked), Some(path)) => pidfile::remove(&locked, path.as_c_str()),
            _ => Ok(()),
        }
    }
}

#[cfg(feature = "std")]
impl Daemon<'_> {
    /// As [`fail_at`](Daemon::fail_at), from a [`std::io::Error`]: its OS
    /// error number travels, or `EIO` for an error that has none (one made
    /// with [`std::io::Error::other`]: its text stays here, as the report is
    /// a fixed-size record that nothing allocates for).
    ///
    /// ```no_run
    /// let mut daemon = daemonic::Daemonize::new()
    ///     .readiness(daemonic::Readiness::Manual)
    ///     .daemonize()?;
    /// match std::net::TcpListener::bind("0.0.0.0:80") {
    ///     Ok(_listener) => daemon.ready().ok(),
    ///     // The caller prints: failed to initialize (bind 0.0.0.0:80):
    ///     // Address already in use (os error 98)
    ///     Err(error) => daemon.fail_io("bind 0.0.0.0:80", &error),
    /// };
    /// # Ok::<(), daemonic::StartError>(())
    /// ```
    pub fn fail_io(self, context: &str, error: &std::io::Error) -> ! {
        let errno = error
            .raw_os_error()
            .map_or(Errno::IO, Errno::from_raw_os_error);
        self.fail_at(context, errno)
    }

    /// The same handle without the paths it borrowed from the plan.
    pub(crate) fn forget_paths(mut self) -> Daemon<'static> {
        Daemon {
            pid: self.pid,
            pid_file: self.pid_file.take(),
            pid_path: None,
            report: self.report.take(),
            notify_socket: None,
            notify_told: self.notify_told,
            notify_fd: self.notify_fd.take(),
            _prepared: None,
        }
    }
}

#[cfg(feature = "std")]
impl Daemon<'static> {
    /// The handle owning the paths and what the builder prepared, so they
    /// outlive the plan that borrowed them. Moves them; allocates nothing.
    pub(crate) fn owning(
        mut self,
        pid_file: Option<std::ffi::CString>,
        notify_socket: Option<std::ffi::CString>,
        prepared: crate::prepare::Prepared,
    ) -> Daemon<'static> {
        let owned = |path| CPath::Owned(core::mem::ManuallyDrop::new(path));
        self.pid_path = pid_file.map(owned);
        self.notify_socket = notify_socket.map(owned);
        self._prepared = Some(core::mem::ManuallyDrop::new(prepared));
        self
    }
}

impl Drop for Daemon<'_> {
    /// Removes the PID file; when that fails (a daemon that changed its user
    /// and may not write the file's directory), says so on its standard
    /// error instead of leaving the file silently.
    fn drop(&mut self) {
        match self.remove_pid_file() {
            // Gone already (removed by hand or by `daemonic --stop`): nothing
            // is left to speak of.
            Ok(()) | Err(Errno::NOENT) => {}
            Err(errno) => self.say_pid_file_left(errno),
        }
    }
}

impl Daemon<'_> {
    /// `daemonic: PID file PATH left behind: OS ERROR` on standard error,
    /// built in a stack buffer (nothing allocates in the daemon), in one
    /// write. Out of line: its buffer is on the stack only while it runs.
    #[cold]
    #[inline(never)]
    fn say_pid_file_left(&self, errno: Errno) {
        let Some(path) = self.pid_path.as_ref() else {
            return;
        };
        let mut buf = [0u8; 4096 + 256];
        let line = crate::message::write_pid_file_left(path.as_c_str().to_bytes(), errno, &mut buf);
        // SAFETY: fd 2 is the daemon's standard error, which the sequence
        // set up (at worst /dev/null); it is only borrowed for the write.
        let stderr = unsafe { rustix::fd::BorrowedFd::borrow_raw(2) };
        let _ = rustix::io::write(stderr, line);
    }
}
