//! With `std`: what a [`Daemonize`] holds, its options owned (paths,
//! names, vectors), and the owned forms of a stream and of a program's
//! readiness. The builder's methods (`builder.rs`) set them; `prepare.rs`
//! turns them into what the plan borrows.

#![cfg_attr(docsrs, doc(cfg(feature = "std")))]

use std::ffi::OsString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use crate::lookup::Id;
use crate::{Capabilities, Detach, InheritedFds, Limit, Readiness};

/// Where one standard stream of the daemon goes, owned.
#[derive(Debug, Default)]
pub enum OwnedStdio {
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

/// An open file as a stream of the daemon ([`OwnedStdio::Fd`]): a log
/// opened by the program's own rules (`OpenOptions`), or one end of a pipe.
impl From<std::fs::File> for OwnedStdio {
    fn from(file: std::fs::File) -> OwnedStdio {
        OwnedStdio::Fd(OwnedFd::from(file))
    }
}

/// An open fd as a stream of the daemon ([`OwnedStdio::Fd`]).
impl From<OwnedFd> for OwnedStdio {
    fn from(fd: OwnedFd) -> OwnedStdio {
        OwnedStdio::Fd(fd)
    }
}

/// How the caller learns that an executed program is ready: the builder's
/// form of [`ProgramReadiness`](crate::ProgramReadiness), which makes and removes the socket itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnedProgramReadiness {
    /// A `NOTIFY_SOCKET` in a private directory the builder makes (under
    /// `/run` for root, else `$TMPDIR` or `/tmp`) and removes.
    NotifySocket,
    /// The program writes a newline to this fd.
    Fd(RawFd),
}

/// Builds a daemon from owned data, with the defaults of [`Plan`](crate::Plan).
///
/// # Example
///
/// ```no_run
/// let mut daemon = daemonic::Daemonize::new()
///     .pid_file("/run/mydaemon.pid")
///     .stderr(daemonic::OwnedStdio::File("/var/log/mydaemon.log".into()))
///     .daemonize()
///     .unwrap_or_else(|error| {
///         eprintln!("mydaemon: {error}");
///         std::process::exit(daemonic::EXIT_START_FAILED);
///     });
/// // Only the daemon gets here; the caller exited 0 once it was ready.
/// # let _ = &mut daemon;
/// ```
#[derive(Debug)]
#[must_use = "a Daemonize does nothing until started, and each option returns the changed builder"]
pub struct Daemonize {
    pub(crate) working_directory: PathBuf,
    pub(crate) umask: u32,
    pub(crate) stdin: OwnedStdio,
    pub(crate) stdout: OwnedStdio,
    pub(crate) stderr: OwnedStdio,
    pub(crate) pid_file: Option<PathBuf>,
    pub(crate) inherited_fds: InheritedFds,
    pub(crate) keep_fds: Vec<RawFd>,
    pub(crate) reset_signals: bool,
    pub(crate) chroot: Option<PathBuf>,
    pub(crate) user: Option<Id>,
    pub(crate) group: Option<Id>,
    pub(crate) disable_core_dumps: bool,
    pub(crate) nice: Option<i32>,
    pub(crate) limits: Vec<Limit>,
    pub(crate) capabilities: Option<Capabilities>,
    pub(crate) no_new_privileges: bool,
    pub(crate) program: Option<(OsString, Vec<OsString>)>,
    pub(crate) env_clear: bool,
    pub(crate) env_changes: Vec<(OsString, Option<OsString>)>,
    pub(crate) detach: Detach,
    pub(crate) allow_threads: bool,
    pub(crate) readiness: Readiness,
    pub(crate) notify_socket: Option<Option<PathBuf>>,
    pub(crate) notify_fd: Option<RawFd>,
    pub(crate) program_readiness: Option<OwnedProgramReadiness>,
    pub(crate) ready_timeout: Option<Duration>,
}
