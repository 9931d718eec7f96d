//! The no_std entry point: a plan of borrowed data, and `start`.

use core::ffi::CStr;
use core::time::Duration;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::process::Pid;

use crate::daemon::Daemon;
use crate::error::{Error, Step, os};
use crate::fork::{Forked, fork};
use crate::stdio::Stdio;
use crate::{caller, report, sequence};

/// When the daemon tells the caller it is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// As soon as the sequence is done, before `start` returns in the daemon
    /// (the default).
    WhenStarted,
    /// When the program calls [`Daemon::ready`], after its own set-up (say,
    /// once its sockets are bound), so that whoever started it can rely on
    /// the service being there, as daemon(7) asks.
    Manual,
}

/// Everything the daemon needs, prepared before anything forks, borrowed
/// from the caller. Works without `std` and allocates nothing.
///
/// Defaults, each chosen for a daemon that cannot hurt the system it runs on:
///
/// | option | default | why |
/// |---|---|---|
/// | [`working_directory`](Plan::working_directory) | `/` | keeps no mount point busy |
/// | [`umask`](Plan::umask) | `0o022` | files the program creates 0666 come out 0644, not world-writable (daemon(7) says 0, which leaves modes to each `open` call; most programs pass 0666 and expect a umask) |
/// | [`stdin`](Plan::stdin), [`stdout`](Plan::stdout), [`stderr`](Plan::stderr) | [`Stdio::Null`] | no terminal is held open |
/// | [`pid_file`](Plan::pid_file) | none | |
/// | [`readiness`](Plan::readiness) | [`Readiness::WhenStarted`] | |
/// | [`ready_timeout`](Plan::ready_timeout) | 60 s | start-stop-daemon's `--notify-timeout` default |
///
/// # Example
///
/// ```no_run
/// use daemonic::{Plan, Started};
///
/// let plan = Plan::new().pid_file(c"/run/mydaemon.pid").umask(0o027);
/// match plan.start() {
///     Ok(Started::Parent(parent)) => {
///         // The daemon is up: its PID is in the file and here.
///         println!("started {}", parent.pid().as_raw_pid());
///     }
///     Ok(Started::Daemon(daemon)) => {
///         // Here runs the daemon: no terminal, its own session, cwd `/`.
///         # let _ = daemon;
///     }
///     Err(error) => eprintln!("mydaemon: {error}"),
/// }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    pub(crate) working_directory: &'a CStr,
    pub(crate) umask: u32,
    pub(crate) stdin: Stdio<'a>,
    pub(crate) stdout: Stdio<'a>,
    pub(crate) stderr: Stdio<'a>,
    pub(crate) pid_file: Option<&'a CStr>,
    pub(crate) readiness: Readiness,
    pub(crate) ready_timeout: Option<Duration>,
}

/// The default time the caller waits for the daemon to report.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The default file mode creation mask of the daemon.
pub const DEFAULT_UMASK: u32 = 0o022;

impl Default for Plan<'_> {
    fn default() -> Self {
        Plan::new()
    }
}

impl<'a> Plan<'a> {
    /// A plan with every default (see the table above).
    pub const fn new() -> Plan<'a> {
        Plan {
            working_directory: c"/",
            umask: DEFAULT_UMASK,
            stdin: Stdio::Null,
            stdout: Stdio::Null,
            stderr: Stdio::Null,
            pid_file: None,
            readiness: Readiness::WhenStarted,
            ready_timeout: Some(DEFAULT_READY_TIMEOUT),
        }
    }

    /// The daemon's working directory (default `/`). A relative path is
    /// resolved against the caller's working directory.
    pub const fn working_directory(mut self, dir: &'a CStr) -> Self {
        self.working_directory = dir;
        self
    }

    /// The daemon's file mode creation mask (default `0o022`). Bits above
    /// `0o777` are refused by [`start`](Plan::start).
    pub const fn umask(mut self, mask: u32) -> Self {
        self.umask = mask;
        self
    }

    /// Where standard input comes from (default `/dev/null`).
    pub const fn stdin(mut self, stdio: Stdio<'a>) -> Self {
        self.stdin = stdio;
        self
    }

    /// Where standard output goes (default `/dev/null`).
    pub const fn stdout(mut self, stdio: Stdio<'a>) -> Self {
        self.stdout = stdio;
        self
    }

    /// Where standard error goes (default `/dev/null`).
    pub const fn stderr(mut self, stdio: Stdio<'a>) -> Self {
        self.stderr = stdio;
        self
    }

    /// The PID file the daemon writes its PID to (default: none). A relative
    /// path is resolved against the caller's working directory.
    pub const fn pid_file(mut self, path: &'a CStr) -> Self {
        self.pid_file = Some(path);
        self
    }

    /// When the daemon reports ready (default [`Readiness::WhenStarted`]).
    pub const fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// How long the caller waits for the daemon to report ready or failed
    /// (default 60 s; `None` waits for ever). When it runs out, the daemon
    /// is killed and its PID file removed.
    pub const fn ready_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Starts the daemon: returns [`Started::Parent`] in the calling process
    /// once the daemon is ready, and [`Started::Daemon`] in the daemon.
    ///
    /// The sequence: check the plan and open what relative paths need; make
    /// a close-on-exec report pipe; `fork`. The child calls `setsid` and
    /// forks the daemon, then `_exit`s at once. The daemon sets the umask,
    /// changes directory, puts the standard streams in place, writes the PID
    /// file and, with [`Readiness::WhenStarted`], reports ready. A failure in
    /// any step travels back to the caller, which returns it as an error with
    /// no daemon, no zombie and no PID file left.
    ///
    /// # In the daemon
    ///
    /// Between the fork and the return, the child runs system calls on data
    /// prepared before the fork: nothing allocates, takes a lock or panics,
    /// so starting from a multithreaded program is safe. After the return,
    /// the daemon runs the program's code with one thread: the one that
    /// called `start`. If other threads existed, locks they held at the fork
    /// stay held in the daemon (glibc's `malloc` and Rust's default allocator
    /// on it prepare for that; a plain spin-lock allocator does not).
    ///
    /// # Errors
    ///
    /// In the caller only: see [`Error`]. Every error means no daemon is
    /// running and no PID file was left by this start.
    pub fn start(&self) -> Result<Started<'a>, Error> {
        self.check()?;
        let start_dir = self.open_start_dir()?;
        let (reader, writer) = report::pipe().map_err(os(Step::ReportPipe))?;
        match fork().map_err(os(Step::Fork))? {
            Forked::Parent(session_leader) => {
                drop(writer);
                let pid = caller::await_report(self, reader, session_leader, start_dir.as_ref())?;
                Ok(Started::Parent(Parent { pid }))
            }
            Forked::Child => {
                drop(reader);
                let daemon = sequence::run(self, writer, start_dir);
                Ok(Started::Daemon(daemon))
            }
        }
    }

    /// Checks what can be checked without the daemon.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.umask & !0o777 != 0 {
            return Err(Error::Invalid {
                option: "umask",
                reason: "has bits above 0o777",
            });
        }
        Ok(())
    }

    /// Opens the caller's working directory when a relative file path needs
    /// it: the daemon changes directory before it opens files, so it resolves
    /// them against this fd instead of its new working directory.
    fn open_start_dir(&self) -> Result<Option<OwnedFd>, Error> {
        let paths = [
            self.stdin.path(),
            self.stdout.path(),
            self.stderr.path(),
            self.pid_file,
        ];
        let relative = |path: &&CStr| path.to_bytes().first() != Some(&b'/');
        if !paths.iter().flatten().any(relative) {
            return Ok(None);
        }
        // O_PATH would do on Linux even in a directory we may not list, but
        // O_RDONLY is what every Unix has; a directory we cannot read is one
        // we could not have created files in by relative path either.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::open(c".", flags, Mode::empty())
            .map(Some)
            .map_err(os(Step::Prepare))
    }
}

/// What [`Plan::start`] returns, in each of the two processes.
#[derive(Debug)]
pub enum Started<'a> {
    /// In the calling process: the daemon is running and ready.
    Parent(Parent),
    /// In the daemon.
    Daemon(Daemon<'a>),
}

/// The calling process's view of a started daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parent {
    pid: Pid,
}

impl Parent {
    /// The daemon's PID.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}
