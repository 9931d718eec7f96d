//! What went wrong, and at which step of the sequence.

use core::fmt;
use core::time::Duration;

use rustix::io::Errno;
use rustix::process::Pid;

/// One step of the daemonizing sequence, as named in errors.
///
/// The numbering is part of the report pipe's record format (the daemon
/// sends a step's number), so variants are only ever added at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Step {
    /// Preparing in the caller before the first fork (opening the starting
    /// directory that relative paths are resolved against).
    Prepare = 1,
    /// Creating the report pipe, [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe.2.html).
    ReportPipe = 2,
    /// The first [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html).
    Fork = 3,
    /// [`setsid(2)`](https://man7.org/linux/man-pages/man2/setsid.2.html) in the first child.
    NewSession = 4,
    /// The second [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html), in the session leader.
    SecondFork = 5,
    /// [`chdir(2)`](https://man7.org/linux/man-pages/man2/chdir.2.html) to the working directory.
    ChangeDirectory = 6,
    /// Opening standard input's file and putting it on fd 0.
    RedirectStdin = 7,
    /// Opening standard output's file and putting it on fd 1.
    RedirectStdout = 8,
    /// Opening standard error's file and putting it on fd 2.
    RedirectStderr = 9,
    /// Creating and writing the PID file.
    PidFile = 10,
    /// The program's own initialization, reported through
    /// [`crate::Daemon::fail`] or, by an executed program, as `ERRNO=` on
    /// the notification socket.
    Initialization = 11,
    /// Resetting signal dispositions and unblocking every signal.
    ResetSignals = 12,
    /// [`chroot(2)`](https://man7.org/linux/man-pages/man2/chroot.2.html).
    ChangeRoot = 13,
    /// Closing inherited fds ([`close_range(2)`](https://man7.org/linux/man-pages/man2/close_range.2.html) or a fallback).
    CloseFds = 14,
    /// [`setrlimit(RLIMIT_CORE)`](https://man7.org/linux/man-pages/man2/setrlimit.2.html).
    DisableCoreDumps = 15,
    /// [`nice(2)`](https://man7.org/linux/man-pages/man2/nice.2.html).
    Nice = 16,
    /// [`setgroups(2)`](https://man7.org/linux/man-pages/man2/setgroups.2.html).
    SetGroups = 17,
    /// [`setresgid(2)`](https://man7.org/linux/man-pages/man2/setresgid.2.html).
    SetGid = 18,
    /// [`setresuid(2)`](https://man7.org/linux/man-pages/man2/setresuid.2.html).
    SetUid = 19,
    /// Checking that dropped privileges cannot be regained.
    VerifyPrivileges = 20,
    /// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html).
    Exec = 21,
    /// Setting up a readiness channel: the notification fd or socket.
    Readiness = 22,
    /// [`setrlimit(2)`](https://man7.org/linux/man-pages/man2/setrlimit.2.html)
    /// of [`Plan::limits`](crate::Plan::limits).
    Limits = 23,
    /// The capabilities kept ([`Plan::capabilities`](crate::Plan::capabilities)):
    /// [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html)'s
    /// `PR_CAPBSET_DROP`, `PR_SET_KEEPCAPS` and `PR_CAP_AMBIENT`,
    /// [`capset(2)`](https://man7.org/linux/man-pages/man2/capset.2.html).
    Capabilities = 24,
    /// `prctl(PR_SET_NO_NEW_PRIVS)` ([`Plan::no_new_privileges`](crate::Plan::no_new_privileges)).
    NoNewPrivileges = 25,
}

impl Step {
    /// Every step, in the order the sequence runs them. A slice: the enum
    /// is `#[non_exhaustive]`, and a step added later must not change this
    /// constant's type.
    ///
    /// ```
    /// use daemonic::Step;
    ///
    /// assert_eq!(Step::ALL.first(), Some(&Step::Prepare));
    /// for step in Step::ALL {
    ///     // "failed to " + this reads as a sentence.
    ///     assert!(!step.describe().is_empty());
    /// }
    /// ```
    pub const ALL: &'static [Step] = &[
        Step::Prepare,
        Step::PidFile,
        Step::Readiness,
        Step::ReportPipe,
        Step::Fork,
        Step::NewSession,
        Step::SecondFork,
        Step::ResetSignals,
        Step::RedirectStdin,
        Step::RedirectStdout,
        Step::RedirectStderr,
        Step::ChangeRoot,
        Step::ChangeDirectory,
        Step::CloseFds,
        Step::DisableCoreDumps,
        Step::Nice,
        Step::Limits,
        Step::SetGroups,
        Step::SetGid,
        Step::SetUid,
        Step::VerifyPrivileges,
        Step::Capabilities,
        Step::NoNewPrivileges,
        Step::Exec,
        Step::Initialization,
    ];

    /// The step with this wire number, if any.
    pub(crate) fn from_u8(n: u8) -> Option<Step> {
        Step::ALL.iter().copied().find(|step| *step as u8 == n)
    }

    /// What the step does, in words that fit "failed to ...".
    pub fn describe(self) -> &'static str {
        match self {
            Step::Prepare => "prepare (open the starting directory)",
            Step::ReportPipe => "create the report pipe (pipe2)",
            Step::Fork => "fork",
            Step::NewSession => "start a new session (setsid)",
            Step::SecondFork => "fork the daemon from the session leader",
            Step::ChangeDirectory => "change directory (chdir)",
            Step::RedirectStdin => "redirect standard input",
            Step::RedirectStdout => "redirect standard output",
            Step::RedirectStderr => "redirect standard error",
            Step::PidFile => "write the PID file",
            Step::Initialization => "initialize (reported by the daemon)",
            Step::ResetSignals => "reset signal handlers and mask",
            Step::ChangeRoot => "change root (chroot)",
            Step::CloseFds => "close inherited file descriptors",
            Step::DisableCoreDumps => "disable core dumps (setrlimit)",
            Step::Nice => "change priority (nice)",
            Step::SetGroups => "set supplementary groups (setgroups)",
            Step::SetGid => "set group (setgid)",
            Step::SetUid => "set user (setuid)",
            Step::VerifyPrivileges => "verify the privilege drop (root could be regained)",
            Step::Exec => "execute the program (execve)",
            Step::Readiness => "set up the readiness notification",
            Step::Limits => "set a resource limit (setrlimit)",
            Step::Capabilities => "keep the capabilities asked for (capset, prctl)",
            Step::NoNewPrivileges => "set no_new_privs (prctl)",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why a daemon could not be started.
///
/// Every error returned in the caller means nothing is left behind: no daemon
/// process, no zombie, no PID file written by this start.
///
/// # Example
///
/// ```
/// use daemonic::{Errno, Error, Step};
///
/// /// An init script's exit status for a failed start.
/// fn exit_status(error: &Error) -> i32 {
///     match error {
///         Error::AlreadyRunning { .. } | Error::LockedByOther { .. } => 2,
///         Error::Invalid { .. } | Error::InteriorNul { .. } => 1,
///         Error::Os { step: Step::Exec, errno: Errno::NOENT } => 127,
///         Error::NotReady { .. } => 4,
///         _ => 3,
///     }
/// }
/// let error = Error::Os { step: Step::Exec, errno: Errno::NOENT };
/// assert_eq!(exit_status(&error), 127);
/// assert_eq!(error.step(), Some(Step::Exec));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed at `step`, in the caller, the session leader or
    /// the daemon.
    Os {
        /// Which step failed.
        step: Step,
        /// The error the system call returned.
        errno: Errno,
    },
    /// The daemon (or the session leader before it) ended without reporting
    /// success or failure: killed by a signal, or it closed the report pipe.
    Vanished {
        /// The daemon's PID, when it was known.
        pid: Option<Pid>,
        /// How many threads the calling process had, when more than one
        /// (Linux): the likely reason. Threads do not survive `fork`, and
        /// an async runtime started before the start loses its threads and
        /// its epoll fds in the daemon. Daemonize first, then start them.
        caller_threads: Option<u32>,
    },
    /// The daemon did not report ready within the timeout. It was killed and
    /// its PID file removed.
    NotReady {
        /// The daemon's PID.
        pid: Option<Pid>,
        /// The timeout that ran out.
        timeout: Duration,
        /// The last step the daemon reached (it may be blocked in it, say
        /// opening a FIFO nobody reads); `None` once the sequence was done
        /// and the daemon or its program was initializing.
        last_step: Option<Step>,
    },
    /// The PID file is locked by a running daemon: nothing was started.
    AlreadyRunning {
        /// The running daemon's PID, as its PID file says (and, where
        /// `/proc` can tell, as proven by that process holding the file).
        pid: Option<Pid>,
    },
    /// The PID file is locked, but not by the process it names (which may
    /// be gone, reused, or any process someone wrote there), and still
    /// locked a third of a second later (a probe such as `daemonic
    /// --status` lets go sooner): nothing was started, and nothing may be
    /// signalled on the file's word.
    LockedByOther {
        /// The PID the file names, if any.
        named: Option<Pid>,
        /// A process seen holding the file open, if `/proc` shows one.
        holder: Option<Pid>,
    },
    /// The PID file is one that root must not trust: another user owns it,
    /// others can write it, or others can replace it in its directory.
    /// Found before anything forked.
    UntrustedPidFile {
        /// What is wrong.
        reason: &'static str,
        /// The owner of the file (or of the directory, for a directory
        /// problem).
        uid: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// The executed program ended before it reported ready.
    Exited {
        /// Its PID.
        pid: Option<Pid>,
        /// How it ended.
        status: ExitStatus,
    },
    /// An option's value cannot work. Found before anything forked.
    Invalid {
        /// Which option.
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The daemon's own initialization failed, and it said where:
    /// [`Daemon::fail_at`](crate::Daemon::fail_at).
    Initialization {
        /// What it was doing (say, `bind 0.0.0.0:80`).
        context: Context,
        /// The error it met.
        errno: Errno,
    },
    /// A path given to the builder holds a NUL byte, so no system call can
    /// take it. Found before anything forked.
    InteriorNul {
        /// Which option held the path.
        option: &'static str,
    },
    /// Refused before the fork: the caller has `threads` threads, which a
    /// daemon returning into its code would not have (see
    /// [`Plan::allow_threads`](crate::Plan::allow_threads)).
    Threaded {
        /// The caller's threads, the calling one included.
        threads: u32,
    },
}

impl Error {
    /// The step that failed, for [`Error::Os`].
    pub fn step(&self) -> Option<Step> {
        match self {
            Error::Os { step, .. } => Some(*step),
            _ => None,
        }
    }

    /// The OS error, for [`Error::Os`] and [`Error::Initialization`].
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Os { errno, .. } | Error::Initialization { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

impl core::error::Error for Error {}

/// A short text a daemon sent with its failure, held inline (no
/// allocation): at most [`Context::MAX`] bytes, cut at a character
/// boundary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Context {
    bytes: [u8; Context::MAX],
    len: u8,
}

impl Context {
    /// The most bytes a context holds.
    pub const MAX: usize = 48;

    /// `text`, cut to at most [`Context::MAX`] bytes at a character
    /// boundary.
    pub fn new(text: &str) -> Context {
        let mut len = text.len().min(Context::MAX);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0u8; Context::MAX];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Context {
            bytes,
            len: len as u8,
        }
    }

    /// From bytes that came through the report pipe: the valid UTF-8 start.
    pub(crate) fn from_wire(bytes: &[u8]) -> Context {
        let bytes = &bytes[..bytes.len().min(Context::MAX)];
        // The first chunk's valid part: all of it, or up to the first
        // invalid sequence (`utf8_chunks` costs the static command 0.4 KB
        // less than `str::from_utf8`).
        let text = bytes.utf8_chunks().next().map_or("", |chunk| chunk.valid());
        Context::new(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let text = &self.bytes[..usize::from(self.len)];
        // SAFETY: `bytes[..len]` is only ever written by `new`, from a
        // `&str` cut at a character boundary: valid UTF-8.
        unsafe { core::str::from_utf8_unchecked(text) }
    }

    /// The bytes as they travel: the text, zero-padded.
    pub(crate) fn wire(&self) -> (&[u8; Context::MAX], u8) {
        (&self.bytes, self.len)
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(feature = "std")]
impl From<Error> for std::io::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Os { errno, .. } => std::io::Error::new(errno.kind(), error),
            Error::NotReady { .. } => std::io::Error::new(std::io::ErrorKind::TimedOut, error),
            Error::InteriorNul { .. } | Error::Invalid { .. } | Error::Threaded { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, error)
            }
            Error::AlreadyRunning { .. } | Error::LockedByOther { .. } => {
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, error)
            }
            Error::UntrustedPidFile { .. } => {
                std::io::Error::new(std::io::ErrorKind::PermissionDenied, error)
            }
            Error::Initialization { errno, .. } => std::io::Error::new(errno.kind(), error),
            Error::Vanished { .. } | Error::Exited { .. } => std::io::Error::other(error),
        }
    }
}

/// How a process ended, from its wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal with this number killed it.
    Signal(i32),
}

impl ExitStatus {
    /// Encodes it as a raw wait status.
    pub(crate) fn to_raw(self) -> i32 {
        match self {
            ExitStatus::Code(code) => (code & 0xff) << 8,
            ExitStatus::Signal(signal) => signal & 0x7f,
        }
    }

    /// Decodes a raw wait status from `waitpid`.
    pub(crate) fn from_raw(status: i32) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signal(libc::WTERMSIG(status))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        }
    }
}

#[cfg(test)]
#[test]
fn exit_status_survives_the_wait_encoding() {
    for status in [
        ExitStatus::Code(0),
        ExitStatus::Code(3),
        ExitStatus::Code(255),
        ExitStatus::Signal(9),
    ] {
        assert_eq!(ExitStatus::from_raw(status.to_raw()), status);
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exited with status {code}"),
            ExitStatus::Signal(signal) => write!(f, "was killed by signal {signal}"),
        }
    }
}

/// A failure at `step` with `errno`.
pub(crate) fn os(step: Step) -> impl Fn(Errno) -> Error {
    move |errno| Error::Os { step, errno }
}
