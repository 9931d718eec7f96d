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
        let (umask, readiness, ready_timeout) = (self.umask, self.readiness, self.ready_timeout);
        // The builder's own strings are freed here, in the caller.
        let mut prepared = Prepared::new(self)?;
        let [stdin, stdout, stderr] = &prepared.streams;
        let plan = Plan::new()
            .working_directory(&prepared.working_directory)
            .umask(umask)
            .stdin(stdin.stdio())
            .stdout(stdout.stdio())
            .stderr(stderr.stdio())
            .readiness(readiness)
            .ready_timeout(ready_timeout);
        let plan = match prepared.pid_file.as_deref() {
            Some(path) => plan.pid_file(path),
            None => plan,
        };
        // The daemon lets go of the borrowed strings before it takes them
        // over; the caller never gets past this statement.
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
        // The fds given for the streams now sit on 0, 1 and 2: close the
        // originals (a system call, no allocation).
        for stream in &mut prepared.streams {
            if let PreparedStdio::Fd(_) = stream {
                *stream = PreparedStdio::Null;
            }
        }
        let pid_file = prepared.pid_file.take();
        Ok(daemon.owning(pid_file, prepared))
    }
}

/// The builder's data in the form the daemon uses, made before the fork:
/// paths as absolute C strings, fds as they were.
///
/// The daemon's handle keeps it, so nothing here is freed between the fork
/// and the moment the program drops the handle: `free` takes the allocator's
/// lock just as `malloc` does.
#[derive(Debug)]
pub(crate) struct Prepared {
    working_directory: CString,
    streams: [PreparedStdio; 3],
    pid_file: Option<CString>,
}

impl Prepared {
    fn new(builder: Daemonize) -> Result<Prepared, Error> {
        Ok(Prepared {
            // chdir resolves a relative directory against the caller's own,
            // as wanted; only files are opened after it.
            working_directory: c_string(
                builder.working_directory.as_os_str(),
                "working_directory",
            )?,
            streams: [
                PreparedStdio::new(builder.stdin, "stdin")?,
                PreparedStdio::new(builder.stdout, "stdout")?,
                PreparedStdio::new(builder.stderr, "stderr")?,
            ],
            pid_file: builder
                .pid_file
                .as_deref()
                .map(|path| c_path(path, "pid_file"))
                .transpose()?,
        })
    }
}

/// A [`Redirect`] with its path turned into a C string.
#[derive(Debug)]
enum PreparedStdio {
    Null,
    Inherit,
    File(CString),
    Fd(OwnedFd),
}

impl PreparedStdio {
    fn new(redirect: Redirect, option: &'static str) -> Result<PreparedStdio, Error> {
        Ok(match redirect {
            Redirect::Null => PreparedStdio::Null,
            Redirect::Inherit => PreparedStdio::Inherit,
            Redirect::Fd(fd) => PreparedStdio::Fd(fd),
            Redirect::File(path) => PreparedStdio::File(c_path(&path, option)?),
        })
    }

    fn stdio(&self) -> Stdio<'_> {
        match self {
            PreparedStdio::Null => Stdio::Null,
            PreparedStdio::Inherit => Stdio::Inherit,
            PreparedStdio::File(path) => Stdio::File(path),
            PreparedStdio::Fd(fd) => Stdio::Fd(fd.as_fd()),
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
