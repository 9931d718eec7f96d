//! How a failure is said: an [`Error`]'s one-line message, with the path
//! or id it concerns ([`Described`]), written through `core::fmt` or into a
//! byte buffer without it (for `#![no_std]` programs that count their
//! bytes), the OS error in the C library's words or as its name.

use core::fmt;

use rustix::io::Errno;
use rustix::process::Pid;

use crate::error::{Error, ExitStatus, Step};

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

/// `daemonic: PID file PATH left behind: OS ERROR` and a newline, into
/// `buf`: the line a daemon's handle says when it cannot remove its PID
/// file. The OS error as the library's messages say it: with std in the C
/// library's words, without by its name (those texts weigh 3 KB).
pub(crate) fn write_pid_file_left<'b>(path: &[u8], errno: Errno, buf: &'b mut [u8]) -> &'b [u8] {
    ByteOut::<{ cfg!(feature = "std") }>::render(buf, |out| {
        out.text("daemonic: PID file ");
        out.bytes(path);
        out.text(" left behind: ");
        out.errno(errno);
        out.text("\n");
    })
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

#[cfg(test)]
mod message_tests {
    use super::*;
    use crate::error::Context;
    use core::time::Duration;

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
