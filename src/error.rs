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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = FmtOut { f, result: Ok(()) };
        self.render(&mut out);
        out.result
    }
}

impl Error {
    /// The one-line message, written into `buf` without `core::fmt` (the
    /// OS error as its name and number: `ENOENT (os error 2)`); the bytes
    /// written, cut short if `buf` is. For `#![no_std]` programs that count
    /// their bytes: formatting machinery costs kilobytes. With `std`,
    /// [`Display`](fmt::Display) gives the same text with the system's
    /// words for the OS error.
    ///
    /// ```
    /// use daemonic::{Errno, Error, Step};
    ///
    /// let error = Error::Os { step: Step::ChangeDirectory, errno: Errno::NOENT };
    /// let mut buf = [0u8; 128];
    /// assert_eq!(
    ///     error.write_message(&mut buf),
    ///     b"failed to change directory (chdir): ENOENT (os error 2)"
    /// );
    /// ```
    pub fn write_message<'b>(&self, buf: &'b mut [u8]) -> &'b [u8] {
        ByteOut::<false>::render(buf, |out| self.render(out))
    }

    /// The one-line message, written into `buf` without `core::fmt`, with
    /// the OS error in the C library's words
    /// ([`strerror_r(3)`](https://man7.org/linux/man-pages/man3/strerror_r.3.html)),
    /// as `std`'s `Display` gives them: `No such file or directory (os
    /// error 2)`. For a `#![no_std]` program that prints for people; the
    /// C library's message table costs a few kilobytes that
    /// [`write_message`](Error::write_message) does not.
    ///
    /// ```
    /// use daemonic::{Errno, Error, Step};
    ///
    /// let error = Error::Os { step: Step::ChangeDirectory, errno: Errno::NOENT };
    /// let mut buf = [0u8; 128];
    /// let message = error.write_message_strerror(&mut buf);
    /// assert!(message.starts_with(b"failed to change directory (chdir): "));
    /// assert!(message.ends_with(b" (os error 2)"));
    /// ```
    pub fn write_message_strerror<'b>(&self, buf: &'b mut [u8]) -> &'b [u8] {
        ByteOut::<true>::render(buf, |out| self.render(out))
    }

    /// The message, piece by piece, to either kind of output.
    fn render(&self, out: &mut impl Out) {
        let pid = |out: &mut dyn Out, pid: &Option<Pid>| {
            if let Some(pid) = pid {
                out.signed(i64::from(pid.as_raw_pid()));
                out.text(" ");
            }
        };
        match self {
            Error::Os {
                step: Step::Readiness,
                errno: Errno::PIPE,
            } => out.text("the program closed its readiness fd without reporting ready"),
            Error::Os { step, errno } => {
                out.text("failed to ");
                out.text(step.describe());
                out.text(": ");
                out.errno(*errno);
            }
            Error::Vanished {
                pid: daemon,
                caller_threads,
            } => {
                out.text("daemon ");
                pid(out, daemon);
                out.text("ended before reporting ready or failed");
                if let Some(n) = caller_threads {
                    out.text(" (it was started from a process with ");
                    out.signed(i64::from(*n));
                    out.text(
                        " threads, which do not survive fork: daemonize before starting \
                         threads or an async runtime)",
                    );
                }
            }
            Error::NotReady {
                pid: daemon,
                timeout,
                last_step,
            } => {
                out.text("daemon ");
                pid(out, daemon);
                out.text("not ready within ");
                out.signed(timeout.as_secs() as i64);
                out.text(".");
                let millis = timeout.subsec_millis();
                for digit in [millis / 100, millis / 10 % 10, millis % 10] {
                    out.signed(i64::from(digit));
                }
                out.text(" s");
                if let Some(step) = last_step {
                    out.text(" (still trying to ");
                    out.text(step.describe());
                    out.text(")");
                }
                out.text("; it was killed");
            }
            Error::LockedByOther { named, holder } => {
                out.text("the PID file is locked by ");
                match holder {
                    Some(pid) => {
                        out.text("PID ");
                        out.signed(i64::from(pid.as_raw_pid()));
                    }
                    None => out.text("another process"),
                }
                match named {
                    Some(pid) => {
                        out.text(", not by PID ");
                        out.signed(i64::from(pid.as_raw_pid()));
                        out.text(" which it names");
                    }
                    None => out.text(", and names no PID"),
                }
            }
            Error::UntrustedPidFile { reason, uid, mode } => {
                out.text("refusing the PID file: ");
                out.text(reason);
                out.text(" (owner uid ");
                out.signed(i64::from(*uid));
                out.text(", mode ");
                let mode = mode & 0o7777;
                for shift in [9, 6, 3, 0] {
                    out.signed(i64::from((mode >> shift) & 0o7));
                }
                out.text(")");
            }
            Error::Invalid { option, reason } => {
                out.text("invalid ");
                out.text(option);
                out.text(": ");
                out.text(reason);
            }
            Error::Threaded { threads } => {
                out.text(
                    "refusing to fork a daemon that returns into this program from a process with ",
                );
                out.signed(i64::from(*threads));
                out.text(
                    " threads: the daemon would have only the calling one, and locks the others \
                     hold stay taken; start before any thread (before an async runtime), or exec \
                     a program, or allow_threads if the daemon needs none of them",
                );
            }
            Error::AlreadyRunning { pid: Some(pid) } => {
                out.text("already running as PID ");
                out.signed(i64::from(pid.as_raw_pid()));
            }
            Error::AlreadyRunning { pid: None } => {
                out.text("already running (the PID file is locked)")
            }
            Error::Exited {
                pid: program,
                status,
            } => {
                out.text("program ");
                pid(out, program);
                match status {
                    ExitStatus::Code(code) => {
                        out.text("exited with status ");
                        out.signed(i64::from(*code));
                    }
                    ExitStatus::Signal(signal) => {
                        out.text("was killed by signal ");
                        out.signed(i64::from(*signal));
                    }
                }
                out.text(" before it was ready");
            }
            Error::Initialization { context, errno } => {
                out.text("failed to initialize (");
                out.text(context.as_str());
                out.text("): ");
                out.errno(*errno);
            }
            Error::InteriorNul { option } => {
                out.text("the path given for ");
                out.text(option);
                out.text(" contains a NUL byte");
            }
        }
    }
}

/// Where a message goes, one piece at a time.
trait Out {
    fn text(&mut self, text: &str);
    /// A path as given: bytes, not always UTF-8.
    fn bytes(&mut self, bytes: &[u8]);
    fn signed(&mut self, n: i64);
    fn errno(&mut self, errno: Errno);
}

/// Into a [`fmt::Formatter`]: std's words for OS errors where there is std.
struct FmtOut<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    result: fmt::Result,
}

impl Out for FmtOut<'_, '_> {
    fn text(&mut self, text: &str) {
        if self.result.is_ok() {
            self.result = self.f.write_str(text);
        }
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for chunk in bytes.utf8_chunks() {
            self.text(chunk.valid());
            if !chunk.invalid().is_empty() {
                self.text("\u{fffd}");
            }
        }
    }
    fn signed(&mut self, n: i64) {
        if self.result.is_ok() {
            self.result = write!(self.f, "{n}");
        }
    }
    fn errno(&mut self, errno: Errno) {
        if self.result.is_ok() {
            self.result = write_errno(self.f, errno);
        }
    }
}

/// Into a byte buffer, cut at its end: no `core::fmt`. An OS error goes
/// in as its name (`ENOENT (os error 2)`), or with `STRERROR` in the C
/// library's words (`No such file or directory (os error 2)`): a constant,
/// so that a program that never asks for the words links no message table.
struct ByteOut<'b, const STRERROR: bool> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b, const STRERROR: bool> ByteOut<'b, STRERROR> {
    /// Runs `render` into `buf`; the bytes written.
    fn render(buf: &'b mut [u8], render: impl FnOnce(&mut Self)) -> &'b [u8] {
        let mut out = ByteOut { buf, len: 0 };
        render(&mut out);
        let ByteOut { buf, len } = out;
        &buf[..len]
    }
}

impl<const STRERROR: bool> Out for ByteOut<'_, STRERROR> {
    fn text(&mut self, text: &str) {
        self.bytes(text.as_bytes());
    }
    fn bytes(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }
    fn signed(&mut self, n: i64) {
        if n < 0 {
            self.text("-");
        }
        let digits = crate::decimal::Decimal::new(n.unsigned_abs());
        self.bytes(digits.digits());
    }
    fn errno(&mut self, errno: Errno) {
        let mut text = [0u8; 128];
        let words = if STRERROR {
            strerror(errno, &mut text)
        } else {
            errno_name(errno).map(str::as_bytes)
        };
        match words {
            Some(words) => {
                self.bytes(words);
                self.text(" (os error ");
            }
            None => self.text("os error "),
        }
        self.signed(i64::from(errno.raw_os_error()));
        if words.is_some() {
            self.text(")");
        }
    }
}

/// An OS error as `std` prints one, in the C library's words
/// ([`strerror_r(3)`](https://man7.org/linux/man-pages/man3/strerror_r.3.html)),
/// written into `buf` without `core::fmt`: the bytes written, cut short if
/// `buf` is. For a `#![no_std]` program that reports its own failures the
/// way [`Error::write_message_strerror`] reports the library's.
///
/// ```
/// use daemonic::Errno;
///
/// let mut buf = [0u8; 80];
/// let words = daemonic::write_os_error(Errno::NOENT, &mut buf);
/// assert!(words.ends_with(b" (os error 2)"));
/// assert!(words.len() > b" (os error 2)".len());
/// ```
pub fn write_os_error(errno: Errno, buf: &mut [u8]) -> &[u8] {
    ByteOut::<true>::render(buf, |out| out.errno(errno))
}

/// The C library's words for `errno`, into `buf`:
/// [`strerror_r(3)`](https://man7.org/linux/man-pages/man3/strerror_r.3.html)
/// (the XSI one, which the `libc` crate binds on glibc too).
fn strerror(errno: Errno, buf: &mut [u8; 128]) -> Option<&[u8]> {
    // SAFETY: strerror_r writes at most `buf.len()` bytes, NUL included,
    // into our buffer; it takes no lock and allocates nothing.
    let rc = unsafe { libc::strerror_r(errno.raw_os_error(), buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0)?;
    (rc == 0 && len > 0).then_some(&buf[..len])
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

/// An [`Error`] with what it failed on: the path, program or id of the
/// step. Made by [`Plan::describe`](crate::Plan::describe) (and by the std
/// builder's `describe`); formatting it allocates nothing.
///
/// ```
/// use daemonic::{Errno, Error, Plan, Step};
///
/// let plan = Plan::new().pid_file(c"/run/missing/x.pid");
/// let error = Error::Os { step: Step::PidFile, errno: Errno::NOENT };
/// let text = plan.describe(&error).to_string();
/// assert!(text.starts_with("failed to write the PID file /run/missing/x.pid: "));
/// ```
#[derive(Clone, Copy)]
pub struct Described<'a> {
    pub(crate) error: &'a Error,
    pub(crate) subject: Option<Subject<'a>>,
}

/// What a step failed on.
#[derive(Clone, Copy)]
pub(crate) enum Subject<'a> {
    /// A path, as the caller gave it (bytes: not always UTF-8).
    Path(&'a [u8]),
    /// A user or group id, with its label (`uid`, `gid`).
    Id(&'static str, u32),
}

impl fmt::Debug for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = FmtOut { f, result: Ok(()) };
        self.render(&mut out);
        out.result
    }
}

impl Described<'_> {
    /// The message, written into `buf` without `core::fmt`, as
    /// [`Error::write_message`] does; the bytes written.
    pub fn write_message<'b>(&self, buf: &'b mut [u8]) -> &'b [u8] {
        ByteOut::<false>::render(buf, |out| self.render(out))
    }

    /// The message with the OS error in the C library's words, as
    /// [`Error::write_message_strerror`] does; the bytes written.
    pub fn write_message_strerror<'b>(&self, buf: &'b mut [u8]) -> &'b [u8] {
        ByteOut::<true>::render(buf, |out| self.render(out))
    }

    fn render(&self, out: &mut impl Out) {
        match (self.error, self.subject) {
            (Error::Os { step, errno }, Some(subject)) => match subject_phrase(*step) {
                Some((step, word, after)) => {
                    out.text("failed to ");
                    out.text(step);
                    out.text(word);
                    subject.render(out);
                    out.text(after);
                    out.text(": ");
                    out.errno(*errno);
                }
                None => self.error.render(out),
            },
            (Error::Invalid { option, reason }, Some(subject)) => {
                out.text("invalid ");
                out.text(option);
                out.text(" ");
                subject.render(out);
                out.text(": ");
                out.text(reason);
            }
            _ => self.error.render(out),
        }
    }
}

impl Subject<'_> {
    fn render(&self, out: &mut impl Out) {
        match self {
            Subject::Path(bytes) => out.bytes(bytes),
            Subject::Id(label, id) => {
                out.text(label);
                out.text(" ");
                out.signed(i64::from(*id));
            }
        }
    }
}

/// How a step that failed on something names it: the step's words (as
/// [`Step::describe`] has them), a word before the subject, and words
/// after it (`change directory (chdir)`, ` to `, PATH, nothing).
fn subject_phrase(step: Step) -> Option<(&'static str, &'static str, &'static str)> {
    let word = match step {
        Step::Exec => return Some(("execute", " ", " (execve)")),
        Step::PidFile => " ",
        Step::RedirectStdin => " from ",
        Step::RedirectStdout
        | Step::RedirectStderr
        | Step::ChangeDirectory
        | Step::ChangeRoot
        | Step::SetUid
        | Step::SetGid => " to ",
        _ => return None,
    };
    Some((step.describe(), word, ""))
}

/// The OS error's text: std's (`No such file or directory (os error 2)`),
/// or without std the errno's name (`ENOENT (os error 2)`).
fn write_errno(f: &mut fmt::Formatter<'_>, errno: Errno) -> fmt::Result {
    #[cfg(feature = "std")]
    {
        write!(f, "{errno}")
    }
    #[cfg(not(feature = "std"))]
    {
        match errno_name(errno) {
            Some(name) => write!(f, "{name} (os error {})", errno.raw_os_error()),
            None => write!(f, "os error {}", errno.raw_os_error()),
        }
    }
}

/// Names of the errors a daemon's start is likely to meet.
fn errno_name(errno: Errno) -> Option<&'static str> {
    const NAMES: &[(Errno, &str)] = &[
        (Errno::PERM, "EPERM"),
        (Errno::NOENT, "ENOENT"),
        (Errno::SRCH, "ESRCH"),
        (Errno::INTR, "EINTR"),
        (Errno::IO, "EIO"),
        (Errno::NOEXEC, "ENOEXEC"),
        (Errno::BADF, "EBADF"),
        (Errno::AGAIN, "EAGAIN"),
        (Errno::NOMEM, "ENOMEM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::BUSY, "EBUSY"),
        (Errno::EXIST, "EEXIST"),
        (Errno::NODEV, "ENODEV"),
        (Errno::NOTDIR, "ENOTDIR"),
        (Errno::ISDIR, "EISDIR"),
        (Errno::INVAL, "EINVAL"),
        (Errno::NFILE, "ENFILE"),
        (Errno::MFILE, "EMFILE"),
        (Errno::NOSPC, "ENOSPC"),
        (Errno::ROFS, "EROFS"),
        (Errno::PIPE, "EPIPE"),
        (Errno::NAMETOOLONG, "ENAMETOOLONG"),
        (Errno::NOSYS, "ENOSYS"),
        (Errno::LOOP, "ELOOP"),
        (Errno::ADDRINUSE, "EADDRINUSE"),
        (Errno::TIMEDOUT, "ETIMEDOUT"),
    ];
    NAMES
        .iter()
        .find(|(known, _)| *known == errno)
        .map(|(_, name)| *name)
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

#[cfg(test)]
mod message_tests {
    use super::*;

    /// Each step that fails on a path or id names it in these words.
    #[test]
    fn subject_phrases() {
        for (step, expected) in [
            (Step::PidFile, "write the PID file X"),
            (Step::RedirectStdin, "redirect standard input from X"),
            (Step::RedirectStdout, "redirect standard output to X"),
            (Step::RedirectStderr, "redirect standard error to X"),
            (Step::ChangeDirectory, "change directory (chdir) to X"),
            (Step::ChangeRoot, "change root (chroot) to X"),
            (Step::Exec, "execute X (execve)"),
            (Step::SetUid, "set user (setuid) to X"),
            (Step::SetGid, "set group (setgid) to X"),
        ] {
            let (words, word, after) = subject_phrase(step).unwrap();
            assert_eq!(std::format!("{words}{word}X{after}"), expected);
        }
        assert_eq!(subject_phrase(Step::Fork), None);
    }

    /// What comes through the report pipe keeps its valid UTF-8 start, at
    /// most `Context::MAX` bytes, never a cut character.
    #[test]
    fn context_from_the_wire() {
        assert_eq!(Context::from_wire(b"bind :80").as_str(), "bind :80");
        assert_eq!(Context::from_wire(b"ok\xffrest").as_str(), "ok");
        assert_eq!(Context::from_wire(b"\xc3").as_str(), "");
        // A two-byte character cut by the pipe's record, then by MAX.
        assert_eq!(
            Context::from_wire("caf\u{e9}".as_bytes()[..4].as_ref()).as_str(),
            "caf"
        );
        let long = "\u{e9}".repeat(Context::MAX);
        let context = Context::from_wire(long.as_bytes());
        assert_eq!(context.as_str(), "\u{e9}".repeat(Context::MAX / 2));
        let odd = std::format!("x{long}");
        let context = Context::from_wire(odd.as_bytes());
        assert_eq!(context.as_str().len(), Context::MAX - 1);
        assert_eq!(Context::new("x\u{e9}\u{e9}").as_str(), "x\u{e9}\u{e9}");
    }

    /// The byte message and Display say the same, but for the OS error's
    /// words (std's text there, its name here).
    #[test]
    fn bytes_and_display_agree() {
        let pid = Pid::from_raw(4242);
        let errors = [
            Error::Vanished {
                pid,
                caller_threads: Some(4),
            },
            Error::NotReady {
                pid,
                timeout: Duration::from_millis(60_005),
                last_step: Some(Step::RedirectStdout),
            },
            Error::LockedByOther {
                named: Pid::from_raw(4),
                holder: pid,
            },
            Error::UntrustedPidFile {
                reason: "r",
                uid: 65534,
                mode: 0o100644,
            },
            Error::AlreadyRunning { pid },
            Error::AlreadyRunning { pid: None },
            Error::Exited {
                pid,
                status: ExitStatus::Signal(9),
            },
            Error::Invalid {
                option: "umask",
                reason: "has bits above 0o777",
            },
            Error::InteriorNul { option: "pid_file" },
        ];
        for error in errors {
            let mut buf = [0u8; 256];
            let bytes = error.write_message(&mut buf);
            assert_eq!(
                core::str::from_utf8(bytes),
                Ok(std::format!("{error}").as_str())
            );
        }
        let mut buf = [0u8; 128];
        let error = Error::Initialization {
            context: Context::new("bind 0.0.0.0:80"),
            errno: Errno::ADDRINUSE,
        };
        assert_eq!(
            error.write_message(&mut buf),
            b"failed to initialize (bind 0.0.0.0:80): EADDRINUSE (os error 98)"
        );
        // Cut, never overrun.
        let mut small = [0u8; 10];
        assert_eq!(error.write_message(&mut small), b"failed to ");
    }
}
