//! With `std`: a builder that owns its data and a `daemonize` that returns
//! only in the daemon.

use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Daemon, Error, Plan, Readiness, Started, Stdio, Step};

/// Exit status of the calling process when [`Daemonize::daemonize`] could
/// not start the daemon.
pub const EXIT_START_FAILED: i32 = 1;

/// Where one standard stream of the daemon goes, owned.
#[derive(Debug, Default)]
pub enum Redirect {
    /// `/dev/null` (the default).
    #[default]
    Null,
    /// Left as the caller had it.
    Inherit,
    /// A file: standard input read-only; output appended, created 0640.
    File(PathBuf),
    /// An open file, duplicated onto the stream.
    Fd(OwnedFd),
}

/// Builds a daemon from owned data, with the defaults of [`Plan`].
///
/// # Example
///
/// ```no_run
/// let mut daemon = daemonic::Daemonize::new()
///     .pid_file("/run/mydaemon.pid")
///     .stderr(daemonic::Redirect::File("/var/log/mydaemon.log".into()))
///     .daemonize()
///     .unwrap_or_else(|error| {
///         eprintln!("mydaemon: {error}");
///         std::process::exit(2);
///     });
/// // Only the daemon gets here; the caller exited 0 once it was ready.
/// # let _ = &mut daemon;
/// ```
#[derive(Debug)]
pub struct Daemonize {
    working_directory: PathBuf,
    umask: u32,
    stdin: Redirect,
    stdout: Redirect,
    stderr: Redirect,
    pid_file: Option<PathBuf>,
    readiness: Readiness,
    ready_timeout: Option<Duration>,
}

impl Default for Daemonize {
    fn default() -> Self {
        Daemonize::new()
    }
}

impl Daemonize {
    /// A builder with every default of [`Plan`].
    pub fn new() -> Daemonize {
        let plan = Plan::new();
        Daemonize {
            working_directory: PathBuf::from("/"),
            umask: plan.umask,
            stdin: Redirect::Null,
            stdout: Redirect::Null,
            stderr: Redirect::Null,
            pid_file: None,
            readiness: plan.readiness,
            ready_timeout: plan.ready_timeout,
        }
    }

    /// See [`Plan::working_directory`].
    pub fn working_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_directory = dir.into();
        self
    }

    /// See [`Plan::umask`].
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = mask;
        self
    }

    /// See [`Plan::stdin`].
    pub fn stdin(mut self, redirect: Redirect) -> Self {
        self.stdin = redirect;
        self
    }

    /// See [`Plan::stdout`].
    pub fn stdout(mut self, redirect: Redirect) -> Self {
        self.stdout = redirect;
        self
    }

    /// See [`Plan::stderr`].
    pub fn stderr(mut self, redirect: Redirect) -> Self {
        self.stderr = redirect;
        self
    }

    /// See [`Plan::pid_file`].
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }

    /// See [`Plan::readiness`].
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// See [`Plan::ready_timeout`].
    pub fn ready_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Turns this process into a daemon. Returns only in the daemon: the
    /// calling process exits 0 once the daemon is ready, or prints the error
    /// (`PROGRAM: failed to STEP: OS ERROR`) on its standard error and exits
    /// with [`EXIT_START_FAILED`].
    ///
    /// Every path is made absolute and turned into a C string here, before
    /// anything forks, so the daemon allocates nothing.
    ///
    /// # Errors
    ///
    /// Only for input found bad before anything forked, in the calling
    /// process: a path with a NUL byte ([`Error::InteriorNul`]), an invalid
    /// umask, or an unreadable working directory to resolve relative paths
    /// against.
    pub fn daemonize(self) -> Result<Daemon<'static>, Error> {
        let paths = Paths::prepare(&self)?;
        let plan = Plan::new()
            .working_directory(&paths.working_directory)
            .umask(self.umask)
            .stdin(paths.stdin.stdio())
            .stdout(paths.stdout.stdio())
            .stderr(paths.stderr.stdio())
            .readiness(self.readiness)
            .ready_timeout(self.ready_timeout);
        let plan = match paths.pid_file.as_deref() {
            Some(path) => plan.pid_file(path),
            None => plan,
        };
        // The daemon lets go of the borrowed strings before it takes the
        // PID file's over; the caller never gets past this statement.
        let daemon = match plan.start() {
            Ok(Started::Daemon(daemon)) => daemon.forget_pid_file(),
            Ok(Started::Parent(_)) => std::process::exit(0),
            // Refused before anything forked: the program may know better.
            Err(error @ Error::Invalid { .. }) => return Err(error),
            Err(error) => {
                let program = program_name();
                let _ = writeln!(std::io::stderr(), "{program}: {error}");
                std::process::exit(EXIT_START_FAILED)
            }
        };
        Ok(daemon.owning(paths.pid_file))
    }
}

/// The builder's paths as absolute C strings, made before the fork.
struct Paths<'a> {
    working_directory: CString,
    stdin: PreparedStdio<'a>,
    stdout: PreparedStdio<'a>,
    stderr: PreparedStdio<'a>,
    pid_file: Option<CString>,
}

impl Paths<'_> {
    fn prepare(builder: &Daemonize) -> Result<Paths<'_>, Error> {
        Ok(Paths {
            // chdir resolves a relative directory against the caller's own,
            // as wanted; only files are opened after it.
            working_directory: c_string(
                builder.working_directory.as_os_str(),
                "working_directory",
            )?,
            stdin: PreparedStdio::new(&builder.stdin, "stdin")?,
            stdout: PreparedStdio::new(&builder.stdout, "stdout")?,
            stderr: PreparedStdio::new(&builder.stderr, "stderr")?,
            pid_file: builder
                .pid_file
                .as_deref()
                .map(|path| c_path(path, "pid_file"))
                .transpose()?,
        })
    }
}

/// A [`Redirect`] with its path turned into a C string.
enum PreparedStdio<'a> {
    Ready(Stdio<'a>),
    File(CString),
}

impl<'a> PreparedStdio<'a> {
    fn new(redirect: &'a Redirect, option: &'static str) -> Result<PreparedStdio<'a>, Error> {
        Ok(match redirect {
            Redirect::Null => PreparedStdio::Ready(Stdio::Null),
            Redirect::Inherit => PreparedStdio::Ready(Stdio::Inherit),
            Redirect::Fd(fd) => PreparedStdio::Ready(Stdio::Fd(fd.as_fd())),
            Redirect::File(path) => PreparedStdio::File(c_path(path, option)?),
        })
    }

    fn stdio(&self) -> Stdio<'_> {
        match self {
            PreparedStdio::Ready(stdio) => *stdio,
            PreparedStdio::File(path) => Stdio::File(path),
        }
    }
}

/// `path` made absolute against the current directory, as a C string.
fn c_path(path: &Path, option: &'static str) -> Result<CString, Error> {
    let absolute = std::path::absolute(path).map_err(|error| Error::Os {
        step: Step::Prepare,
        errno: rustix::io::Errno::from_io_error(&error).unwrap_or(rustix::io::Errno::INVAL),
    })?;
    c_string(absolute.as_os_str(), option)
}

fn c_string(text: &OsStr, option: &'static str) -> Result<CString, Error> {
    CString::new(text.as_bytes()).map_err(|_| Error::InteriorNul { option })
}

/// The name this program was started as, for messages.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| String::from("daemonic"))
}
