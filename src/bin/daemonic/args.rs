//! The command line, parsed into what to do.
//!
//! A parser of our own, a page long: arguments stay the bytes `argv` holds
//! (`&CStr`, so paths and arguments need not be UTF-8), nothing is copied
//! or allocated, and the well-kept parsers (lexopt, getargs) either need
//! `std`'s `OsString` or leave `--opt=value` and usage texts to the caller,
//! which is most of what this file does. Options end at the first `--`;
//! the program and its arguments follow it untouched.

use core::ffi::CStr;
use core::time::Duration;

use crate::out::Line;
use crate::request::{
    Command, DEFAULT_START_LIMIT, DEFAULT_STOP_TIMEOUT, DEFAULT_WAIT, Start, Usage,
};
#[cfg(feature = "supervise")]
use crate::request::{DEFAULT_RESTART_DELAY, MIN_RESTART_DELAY};
use crate::schedule::Schedule;
use crate::sys;
#[cfg(feature = "logs")]
use crate::values::rotation;
use crate::values::{check_open, fd_limit, octal, seconds, signal_number};
#[cfg(feature = "supervise")]
use crate::values::{restart_delays, start_limit};

/// The options: long name, short letter (or 0), whether a value follows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opt {
    Help,
    Version,
    Stop,
    Status,
    PidFile,
    ChildPidFile,
    Chdir,
    Umask,
    Stdout,
    Stderr,
    Output,
    User,
    Group,
    Chroot,
    KeepFd,
    Env,
    ClearEnv,
    Nice,
    WaitReady,
    ReadyFd,
    Supervise,
    Restart,
    StartLimit,
    StopSignal,
    SuccessExit,
    Retry,
    Foreground,
    Signal,
    Timeout,
    TrustPidFile,
    Rotate,
    Timestamps,
    Syslog,
    SyslogTag,
    SyslogStderr,
    SyslogSocket,
    Cap,
    NoNewPrivs,
    Limit,
    EnvFile,
    RuntimeDir,
    Watchdog,
    Listen,
}

/// Whether an option takes a value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Value,
    /// Only as `--opt=VALUE`.
    Optional,
}

const OPTIONS: &[(&str, u8, Opt, Takes)] = &[
    ("help", b'h', Opt::Help, Takes::Nothing),
    ("version", b'V', Opt::Version, Takes::Nothing),
    ("stop", 0, Opt::Stop, Takes::Nothing),
    ("status", 0, Opt::Status, Takes::Nothing),
    ("pidfile", b'p', Opt::PidFile, Takes::Value),
    ("child-pidfile", 0, Opt::ChildPidFile, Takes::Value),
    ("chdir", b'C', Opt::Chdir, Takes::Value),
    ("umask", b'm', Opt::Umask, Takes::Value),
    ("stdout", b'o', Opt::Stdout, Takes::Value),
    ("stderr", b'e', Opt::Stderr, Takes::Value),
    ("output", 0, Opt::Output, Takes::Value),
    ("user", b'u', Opt::User, Takes::Value),
    ("group", b'g', Opt::Group, Takes::Value),
    ("chroot", 0, Opt::Chroot, Takes::Value),
    ("keep-fd", 0, Opt::KeepFd, Takes::Value),
    ("env", 0, Opt::Env, Takes::Value),
    ("clear-env", 0, Opt::ClearEnv, Takes::Nothing),
    ("nice", 0, Opt::Nice, Takes::Value),
    ("wait-ready", 0, Opt::WaitReady, Takes::Optional),
    ("ready-fd", 0, Opt::ReadyFd, Takes::Value),
    ("supervise", 0, Opt::Supervise, Takes::Nothing),
    ("restart", 0, Opt::Restart, Takes::Optional),
    ("start-limit", 0, Opt::StartLimit, Takes::Value),
    ("stop-signal", 0, Opt::StopSignal, Takes::Value),
    ("success-exit", 0, Opt::SuccessExit, Takes::Value),
    ("retry", b'R', Opt::Retry, Takes::Value),
    ("foreground", 0, Opt::Foreground, Takes::Nothing),
    ("signal", 0, Opt::Signal, Takes::Value),
    ("timeout", 0, Opt::Timeout, Takes::Value),
    ("trust-pidfile", 0, Opt::TrustPidFile, Takes::Nothing),
    ("rotate", 0, Opt::Rotate, Takes::Value),
    ("timestamps", 0, Opt::Timestamps, Takes::Nothing),
    ("syslog", 0, Opt::Syslog, Takes::Optional),
    ("syslog-tag", 0, Opt::SyslogTag, Takes::Value),
    ("syslog-stderr", 0, Opt::SyslogStderr, Takes::Value),
    ("syslog-socket", 0, Opt::SyslogSocket, Takes::Value),
    ("cap", 0, Opt::Cap, Takes::Value),
    ("no-new-privs", 0, Opt::NoNewPrivs, Takes::Nothing),
    ("limit", 0, Opt::Limit, Takes::Value),
    ("env-file", 0, Opt::EnvFile, Takes::Value),
    ("runtime-dir", 0, Opt::RuntimeDir, Takes::Value),
    ("watchdog", 0, Opt::Watchdog, Takes::Value),
    ("listen", 0, Opt::Listen, Takes::Value),
];

/// One option as written, and its value if any.
struct Given {
    opt: Opt,
    name: Name,
    value: Option<&'static CStr>,
}

/// An option's name as written, for messages: `--pidfile` or `-p`.
#[derive(Clone, Copy)]
enum Name {
    Long(&'static [u8]),
    Short(u8),
}

impl Name {
    fn write(self, line: &mut Line) -> &mut Line {
        match self {
            Name::Long(name) => line.text(name),
            Name::Short(letter) => line.text(&[b'-', letter]),
        }
    }
}

/// Walks the options (before `--`), one [`Given`] at a time.
struct Parser {
    args: &'static [&'static CStr],
    at: usize,
    /// A `-hV` word whose letters from this index on are still to come.
    shorts: Option<(&'static CStr, usize)>,
}

impl Parser {
    fn next(&mut self, line: &mut Line) -> Option<Result<Given, Usage>> {
        if let Some((word, at)) = self.shorts.take() {
            return Some(self.short(word, at, line));
        }
        let word = *self.args.get(self.at)?;
        self.at += 1;
        let bytes = word.to_bytes();
        Some(if let Some(long) = bytes.strip_prefix(b"--") {
            self.long(word, long, line)
        } else if bytes.len() > 1 && bytes[0] == b'-' {
            self.short(word, 1, line)
        } else {
            let error = &mut *line;
            error
                .text(b"unexpected argument '")
                .text(bytes)
                .text(b"': put the program after --");
            Err(Usage)
        })
    }

    fn long(
        &mut self,
        word: &'static CStr,
        long: &'static [u8],
        line: &mut Line,
    ) -> Result<Given, Usage> {
        let (name, inline) = match long.iter().position(|&b| b == b'=') {
            // The value after `=`: the word's own tail, still NUL-terminated.
            Some(eq) => (&long[..eq], Some(tail(word, 2 + eq + 1))),
            None => (long, None),
        };
        let written = Name::Long(&word.to_bytes()[..2 + name.len()]);
        let Some(&(_, _, opt, takes)) = OPTIONS.iter().find(|(n, ..)| n.as_bytes() == name) else {
            return Err(invalid(written, line));
        };
        let value = match (takes, inline) {
            (Takes::Nothing, Some(_)) => {
                let error = &mut *line;
                error.text(b"option '");
                written.write(error).text(b"' takes no value");
                return Err(Usage);
            }
            (Takes::Value, None) => Some(self.following(written, line)?),
            (_, inline) => inline,
        };
        Ok(Given {
            opt,
            name: written,
            value,
        })
    }

    /// The letter at `at` of `word` (`-pVALUE`, `-p VALUE`, `-hV`).
    fn short(&mut self, word: &'static CStr, at: usize, line: &mut Line) -> Result<Given, Usage> {
        let bytes = word.to_bytes();
        let letter = bytes[at];
        let name = Name::Short(letter);
        let Some(&(_, _, opt, takes)) = OPTIONS.iter().find(|o| o.1 == letter) else {
            return Err(invalid(name, line));
        };
        let more = at + 1 < bytes.len();
        let value = match takes {
            Takes::Value if more => Some(tail(word, at + 1)),
            Takes::Value => Some(self.following(name, line)?),
            _ => {
                if more {
                    self.shorts = Some((word, at + 1));
                }
                None
            }
        };
        Ok(Given { opt, name, value })
    }

    /// The next word, as the value of option `name`.
    fn following(&mut self, name: Name, line: &mut Line) -> Result<&'static CStr, Usage> {
        let Some(value) = self.args.get(self.at) else {
            let error = &mut *line;
            error.text(b"missing argument for option '");
            name.write(error).text(b"'");
            return Err(Usage);
        };
        self.at += 1;
        Ok(value)
    }
}

/// `word` from byte `at` on: the same C string's tail.
fn tail(word: &'static CStr, at: usize) -> &'static CStr {
    let bytes = word.to_bytes_with_nul();
    CStr::from_bytes_with_nul(&bytes[at.min(bytes.len() - 1)..]).unwrap_or(c"")
}

/// An option of a mode left out of this build (Cargo features, README
/// "Building tiny"): known, so that the message says what is missing.
#[cfg(not(all(feature = "supervise", feature = "logs", feature = "harden")))]
#[inline(never)]
fn built_without(opt: Opt, name: Name, line: &mut Line) -> Usage {
    let feature: &[u8] = match opt {
        Opt::Rotate
        | Opt::Timestamps
        | Opt::Syslog
        | Opt::SyslogTag
        | Opt::SyslogStderr
        | Opt::SyslogSocket => b"logs",
        Opt::Cap | Opt::NoNewPrivs | Opt::Limit | Opt::EnvFile | Opt::RuntimeDir | Opt::Listen => {
            b"harden"
        }
        _ => b"supervise",
    };
    name.write(line)
        .text(b": this daemonic was built without ")
        .text(feature)
        .text(b" (cargo feature \"")
        .text(feature)
        .text(b"\", or \"full\")");
    Usage
}

fn invalid(name: Name, line: &mut Line) -> Usage {
    line.text(b"invalid option '");
    name.write(line).text(b"'");
    Usage
}

/// Parses `args` (`argv` without `argv[0]`), a start's options into
/// `start` (default before); a usage error's message goes into `line`.
pub fn parse(
    args: &'static [&'static CStr],
    start: &mut Start,
    line: &mut Line,
) -> Result<Command, Usage> {
    let split = args.iter().position(|arg| arg.to_bytes() == b"--");
    let (options, program) = match split {
        Some(at) => (&args[..at], Some(&args[at + 1..])),
        None => (args, None),
    };
    // At most one per word: slabs sized by the command line, never short.
    let (Ok(keep_fds), Ok(env)) = (
        sys::zeroed(options.len() + 5),
        sys::slab(options.len(), c""),
    ) else {
        line.text(b"out of memory");
        return Err(Usage);
    };
    start.keep_fds = keep_fds;
    start.env = env;
    #[cfg(feature = "harden")]
    {
        let no_limit = daemonic::Limit::new(daemonic::Resource::Core, None, None);
        let (Ok(limits), Ok(env_files), Ok(listens)) = (
            sys::slab(options.len(), no_limit),
            sys::slab(options.len(), c""),
            sys::slab(options.len(), c""),
        ) else {
            line.text(b"out of memory");
            return Err(Usage);
        };
        start.limits = limits;
        start.env_files = env_files;
        start.listens = listens;
    }
    start.stop_timeout = DEFAULT_STOP_TIMEOUT;
    start.start_limit = DEFAULT_START_LIMIT;
    start.stop_signal = libc::SIGTERM;
    let mut parser = Parser {
        args: options,
        at: 0,
        shorts: None,
    };
    let mut mode: Option<&[u8]> = None;
    let mut signal = None;
    let mut retry: Option<&'static [u8]> = None;
    #[cfg_attr(not(feature = "supervise"), expect(unused_mut))]
    let mut start_limit_given = false;
    let mut timeout: Option<Duration> = None;
    let mut trust = false;
    #[cfg(feature = "logs")]
    let mut syslog_stderr: Option<&'static [u8]> = None;
    while let Some(given) = parser.next(line) {
        let Given { opt, name, value } = given?;
        let given_value = value;
        let text = value.map_or(&b""[..], CStr::to_bytes);
        let value = value.unwrap_or(c"");
        match opt {
            Opt::Help => return Ok(Command::Help),
            Opt::Version => return Ok(Command::Version),
            Opt::Stop => mode = Some(b"--stop"),
            Opt::Status => mode = Some(b"--status"),
            Opt::PidFile => start.pid_file = Some(value),
            Opt::Chdir => start.chdir = Some(value),
            Opt::Umask => start.umask = Some(octal(text, line)?),
            Opt::Stdout => start.stdout = Some(value),
            Opt::Stderr => start.stderr = Some(value),
            Opt::Output => {
                start.stdout = Some(value);
                start.stderr = Some(value);
            }
            Opt::User => match text.iter().position(|&b| b == b':') {
                Some(colon) => {
                    start.user = Some(&text[..colon]);
                    start.group = Some(&text[colon + 1..]);
                }
                None => start.user = Some(text),
            },
            Opt::Group => start.group = Some(text),
            Opt::Chroot => start.chroot = Some(value),
            Opt::KeepFd => {
                let fd = number(text, name, line)?;
                if (0..3).contains(&fd) {
                    let error = &mut *line;
                    error
                        .text(b"--keep-fd ")
                        .text(text)
                        .text(b": fds 0, 1 and 2 are always kept");
                    return Err(Usage);
                }
                check_open(fd, text, line)?;
                start.keep_fds[start.kept] = fd;
                start.kept += 1;
            }
            Opt::Env => {
                let Some(eq) = text.iter().position(|&b| b == b'=') else {
                    let error = &mut *line;
                    error
                        .text(b"--env ")
                        .text(text)
                        .text(b": expected KEY=VALUE");
                    return Err(Usage);
                };
                if eq == 0 {
                    let error = &mut *line;
                    error.text(b"--env ").text(text).text(b": empty name");
                    return Err(Usage);
                }
                start.env[start.env_count] = value;
                start.env_count += 1;
            }
            Opt::ClearEnv => start.clear_env = true,
            Opt::Nice => start.nice = Some(number(text, name, line)?),
            Opt::WaitReady => {
                start.wait_ready = Some(match given_value {
                    Some(_) => seconds(text, b"--wait-ready", line)?,
                    None => DEFAULT_WAIT,
                })
            }
            Opt::ReadyFd => {
                let fd = number(text, name, line)?;
                if fd < 3 {
                    let error = &mut *line;
                    error
                        .text(b"--ready-fd ")
                        .text(text)
                        .text(b": must be above 2");
                    return Err(Usage);
                }
                let limit = fd_limit();
                if i64::from(fd) >= limit {
                    let error = &mut *line;
                    error
                        .text(b"--ready-fd ")
                        .text(text)
                        .text(b": beyond the fd limit (")
                        .num(limit)
                        .text(b", RLIMIT_NOFILE)");
                    return Err(Usage);
                }
                start.ready_fd = Some(fd);
            }
            #[cfg(feature = "supervise")]
            Opt::Supervise => start.supervise = true,
            #[cfg(feature = "supervise")]
            Opt::Restart => {
                let (delay, cap) = match given_value {
                    Some(_) => restart_delays(text, line)?,
                    None => (DEFAULT_RESTART_DELAY, None),
                };
                start.restart = Some(delay);
                start.restart_cap = cap;
            }
            #[cfg(feature = "supervise")]
            Opt::StartLimit => {
                start.start_limit = start_limit(text, line)?;
                start_limit_given = true;
            }
            #[cfg(feature = "supervise")]
            Opt::StopSignal => start.stop_signal = signal_number(text, b"--stop-signal", line)?,
            Opt::Retry => retry = Some(text),
            #[cfg(feature = "supervise")]
            Opt::SuccessExit => {
                let Some(code) = sys::parse_u64(text, 255) else {
                    line.text(b"--success-exit ")
                        .text(text)
                        .text(b": expected an exit status from 0 to 255");
                    return Err(Usage);
                };
                start.success_exits[code as usize / 64] |= 1 << (code % 64);
            }
            Opt::Foreground => start.foreground = true,
            Opt::Signal => signal = Some(signal_number(text, b"--signal", line)?),
            Opt::Timeout => timeout = Some(seconds(text, b"--timeout", line)?),
            Opt::TrustPidFile => trust = true,
            #[cfg(feature = "logs")]
            Opt::Rotate => start.rotate = Some(rotation(text, line)?),
            #[cfg(feature = "logs")]
            Opt::Timestamps => start.timestamps = true,
            #[cfg(feature = "logs")]
            Opt::Syslog => {
                let spec = given_value.map_or(&b"daemon.notice"[..], CStr::to_bytes);
                let Some(priority) = crate::syslog::priority(spec) else {
                    line.text(b"--syslog=")
                        .text(spec)
                        .text(b": expected FACILITY.PRIORITY (daemon.notice, local0.info, ...)");
                    return Err(Usage);
                };
                start.syslog = Some(priority);
            }
            #[cfg(feature = "logs")]
            Opt::SyslogTag => start.syslog_tag = Some(text),
            #[cfg(feature = "logs")]
            Opt::SyslogStderr => syslog_stderr = Some(text),
            #[cfg(feature = "logs")]
            Opt::SyslogSocket => start.syslog_socket = Some(value),
            #[cfg(feature = "supervise")]
            Opt::ChildPidFile => start.child_pid_file = Some(value),
            #[cfg(feature = "supervise")]
            Opt::Watchdog => {
                let period = seconds(text, b"--watchdog", line)?;
                if period < MIN_RESTART_DELAY {
                    line.text(b"--watchdog ")
                        .text(text)
                        .text(b": at least 0.1 s");
                    return Err(Usage);
                }
                start.watchdog = Some(period);
            }
            #[cfg(feature = "harden")]
            Opt::Cap => {
                let number = crate::harden::capability(text, line)?;
                start.caps = Some(start.caps.unwrap_or_default().with(number));
            }
            #[cfg(feature = "harden")]
            Opt::NoNewPrivs => start.no_new_privs = true,
            #[cfg(feature = "harden")]
            Opt::Limit => {
                start.limits[start.limit_count] = crate::harden::limit(text, line)?;
                start.limit_count += 1;
            }
            #[cfg(feature = "harden")]
            Opt::RuntimeDir => {
                if !crate::rundir::valid_name(text) {
                    line.text(b"--runtime-dir ")
                        .text(text)
                        .text(b": expected one name, without / or .. (made as /run/NAME)");
                    return Err(Usage);
                }
                start.runtime_dir = Some(value);
            }
            #[cfg(feature = "harden")]
            Opt::Listen => {
                if crate::listen::parse(text).is_none() {
                    line.text(b"--listen ").text(text).text(
                        b": expected PORT, HOST:PORT, [IPV6]:PORT (udp: before one for UDP) or unix:/PATH; addresses, not names",
                    );
                    return Err(Usage);
                }
                start.listens[start.listen_count] = value;
                start.listen_count += 1;
            }
            #[cfg(feature = "harden")]
            Opt::EnvFile => {
                start.env_files[start.env_file_count] = value;
                start.env_file_count += 1;
            }
            // The options of a mode this command was built without.
            #[cfg(not(all(feature = "supervise", feature = "logs", feature = "harden")))]
            _ => return Err(built_without(opt, name, line)),
        }
    }
    if mode.is_none() && program.is_none() && signal.is_some() {
        mode = Some(b"--signal");
    }
    if let Some(which) = mode {
        let error = &mut *line;
        error.text(which);
        if program.is_some() {
            error.text(b" takes no program");
            return Err(Usage);
        }
        let Some(pid_file) = start.pid_file else {
            error.text(b" needs --pidfile");
            return Err(Usage);
        };
        if start.runtime_dir.is_some() && which != b"--stop" {
            error.text(b" takes no --runtime-dir (a start makes it, --stop removes it)");
            return Err(Usage);
        }
        let given = signal;
        let signal = signal.unwrap_or(libc::SIGTERM);
        return Ok(match which {
            b"--stop" => Command::Stop {
                pid_file,
                schedule: stop_schedule(retry, timeout, given, line)?,
                trust,
                runtime_dir: start.runtime_dir,
            },
            b"--signal" if retry.is_some() => {
                line.text(b"--retry needs --stop (a schedule of signals until the daemon is gone)");
                return Err(Usage);
            }
            b"--signal" => Command::Signal {
                pid_file,
                signal,
                timeout: timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
                trust,
            },
            _ => Command::Status { pid_file, trust },
        });
    }
    if signal.is_some() || retry.is_some() {
        let error = &mut *line;
        error.text(b"--signal and --retry are for a running daemon (--stop or --signal with --pidfile), not a start");
        return Err(Usage);
    }
    let Some(program) = program else {
        let error = &mut *line;
        error.text(b"missing -- before the program (daemonic [OPTIONS] -- PROGRAM [ARGS...])");
        return Err(Usage);
    };
    if program.is_empty() {
        let error = &mut *line;
        error.text(b"missing program after --");
        return Err(Usage);
    }
    start.program = program;
    start.stop_timeout = timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
    #[cfg(feature = "logs")]
    if let Some(text) = syslog_stderr {
        let main = start.syslog.unwrap_or(3 * 8 + 5);
        let Some(priority) = crate::syslog::severity(text, main) else {
            line.text(b"--syslog-stderr ")
                .text(text)
                .text(b": expected a severity (err, warning, notice, info, ...)");
            return Err(Usage);
        };
        start.syslog_stderr = Some(priority);
    }
    check(start, timeout.is_some(), start_limit_given, line)?;
    Ok(Command::Start)
}

/// Combinations that cannot work, or that this build cannot do.
fn check(
    start: &Start,
    timeout_given: bool,
    start_limit_given: bool,
    line: &mut Line,
) -> Result<(), Usage> {
    let error = line;
    if start.restart.is_some() && !start.supervise {
        error.text(b"--restart needs --supervise");
    } else if start_limit_given && !start.supervise {
        error.text(b"--start-limit needs --supervise (and means something with --restart)");
    } else if start.success_exits != [0; 4] && !start.supervise {
        error.text(b"--success-exit needs --supervise (the supervisor's status)");
    } else if start.stop_signal != libc::SIGTERM && !start.supervise {
        error.text(b"--stop-signal needs --supervise (the supervisor sends it when asked to stop)");
    } else if timeout_given && !start.supervise {
        error.text(
            b"--timeout on a start needs --supervise (the supervisor's grace before SIGKILL)",
        );
    } else if start.child_pid_file.is_some() && !start.supervise {
        error.text(b"--child-pidfile needs --supervise");
    } else if watchdog_given(start) && (!start.supervise || start.wait_ready.is_none()) {
        error.text(b"--watchdog needs --supervise and --wait-ready (the program says WATCHDOG=1 where it says READY=1)");
    } else if let Some(fd) = start
        .ready_fd
        .into_iter()
        .chain(start.keep_fds().iter().copied())
        .find(|fd| (3..3 + listen_count(start) as i32).contains(fd))
    {
        error
            .text(b"fd ")
            .num(fd.into())
            .text(b" is where a --listen socket goes (3 up, in order): choose another for --ready-fd or --keep-fd");
    } else if watchdog_given(start) && start.ready_fd.is_some() {
        error.text(b"--watchdog needs the notification socket, not --ready-fd");
    } else if start.syslog.is_some() && !start.supervise {
        error.text(b"--syslog needs --supervise (the supervisor sends the lines)");
    } else if start.syslog.is_none()
        && (start.syslog_tag.is_some()
            || start.syslog_stderr.is_some()
            || start.syslog_socket.is_some())
    {
        error.text(b"--syslog-tag, --syslog-stderr and --syslog-socket need --syslog");
    } else if (start.rotate.is_some() || start.timestamps) && !start.supervise {
        error.text(b"--rotate and --timestamps need --supervise (the supervisor writes the file)");
    } else if (start.rotate.is_some() || start.timestamps)
        && (start.stdout.is_none() && start.stderr.is_none()
            || start.stdout.is_some() && start.stderr.is_some() && start.stdout != start.stderr)
    {
        error.text(
            b"--rotate and --timestamps need one output file (--output, --stdout or --stderr)",
        );
    } else if let Some(path) = start
        .rotate
        .and(start.stdout.or(start.stderr))
        .filter(|path| !regular_or_absent(path))
    {
        error
            .text(b"--rotate: ")
            .c(path)
            .text(b" is not a regular file (a device or a FIFO is never renamed)");
    } else if start.foreground && start.supervise && !cfg!(feature = "pid1") {
        error.text(b"--foreground with --supervise (PID 1): this daemonic was built without pid1 (cargo feature \"pid1\", or \"full\")");
    } else if start.foreground
        && (start.wait_ready.is_some() || start.ready_fd.is_some())
        && !start.supervise
    {
        error.text(b"--wait-ready needs a caller to wait: not with --foreground");
    } else {
        return Ok(());
    }
    Err(Usage)
}

/// How many `--listen`s were given (none, in a build without `harden`).
fn listen_count(start: &Start) -> usize {
    #[cfg(feature = "harden")]
    return start.listen_count;
    #[cfg(not(feature = "harden"))]
    {
        let _ = start;
        0
    }
}

/// Whether `--watchdog` was given (never, in a build without the supervisor).
fn watchdog_given(start: &Start) -> bool {
    #[cfg(feature = "supervise")]
    return start.watchdog.is_some();
    #[cfg(not(feature = "supervise"))]
    {
        let _ = start;
        false
    }
}

/// Whether `path` names a regular file, or nothing yet.
fn regular_or_absent(path: &CStr) -> bool {
    rustix::fs::stat(path).map_or(true, |stat| {
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile
    })
}

/// A whole number, with an optional sign.
fn number(text: &[u8], option: Name, line: &mut Line) -> Result<i32, Usage> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let limit = if negative { 1 << 31 } else { i32::MAX as u64 };
    match sys::parse_u64(digits, limit) {
        Some(n) if negative => Ok((n as i64).wrapping_neg() as i32),
        Some(n) => Ok(n as i32),
        None => {
            let error = &mut *line;
            option.write(error);
            error
                .text(b" ")
                .text(text)
                .text(b": expected a whole number");
            Err(Usage)
        }
    }
}

/// `--stop`'s schedule: `--retry`'s, or `--signal` then SIGKILL after
/// `--timeout`. `signal` is `--signal`'s, if given.
fn stop_schedule(
    retry: Option<&[u8]>,
    timeout: Option<Duration>,
    signal: Option<i32>,
    line: &mut Line,
) -> Result<Schedule, Usage> {
    let first = signal.unwrap_or(libc::SIGTERM);
    match (retry, timeout) {
        (None, timeout) => Schedule::timeout(first, timeout.unwrap_or(DEFAULT_STOP_TIMEOUT), line),
        (Some(_), Some(_)) => {
            line.text(b"--retry and --timeout both say how long to wait: give one (--retry SIG/SECS/KILL/SECS says both)");
            Err(Usage)
        }
        (Some(text), None) if signal.is_some() && text.contains(&b'/') => {
            line.text(b"--retry ")
                .text(text)
                .text(b": the schedule names its signals; --signal goes with a bare --retry SECS");
            Err(Usage)
        }
        (Some(text), None) => Schedule::retry(text, first, line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_into(words: &str, start: &mut Start) -> Result<Command, String> {
        let args: Vec<&'static CStr> = words
            .split_whitespace()
            .map(|w| &*Box::leak(std::ffi::CString::new(w).unwrap().into_boxed_c_str()))
            .collect();
        let mut line = Line::daemonic();
        parse(Vec::leak(args), start, &mut line)
            .map_err(|Usage| String::from_utf8_lossy(line.as_bytes()).into_owned())
    }

    fn parse_words(words: &str) -> Result<Command, String> {
        parse_into(words, &mut Start::default())
    }

    fn start_of(words: &str) -> Start {
        let mut start = Start::default();
        match parse_into(words, &mut start) {
            Ok(Command::Start) => start,
            Err(error) => panic!("{words}: {error}"),
            Ok(_) => panic!("{words}: not a start"),
        }
    }

    #[test]
    fn start_takes_the_program_after_dashes() {
        let start = start_of("-p /run/x.pid -m 027 --env A=1 -C/tmp -- sleep 60 --env");
        assert_eq!(start.program, [c"sleep", c"60", c"--env"]);
        assert_eq!(start.umask, Some(0o27));
        assert_eq!(start.env(), [c"A=1"]);
        assert_eq!(start.chdir, Some(c"/tmp"));
        assert_eq!(start.pid_file, Some(c"/run/x.pid"));
        let start = start_of("--user=nobody:nogroup --pidfile=/p -- x");
        assert_eq!(start.user, Some(&b"nobody"[..]));
        assert_eq!(start.group, Some(&b"nogroup"[..]));
        assert_eq!(start.pid_file, Some(c"/p"));
    }

    #[test]
    fn optional_values() {
        let start = start_of("--wait-ready -- x");
        assert_eq!(start.wait_ready, Some(DEFAULT_WAIT));
        let start = start_of("--wait-ready=5 -- x");
        assert_eq!(start.wait_ready, Some(Duration::from_secs(5)));
        assert_eq!(
            start_of("--wait-ready=.25 -- x").wait_ready,
            Some(Duration::from_millis(250))
        );
    }

    #[cfg(feature = "supervise")]
    #[test]
    fn restart_delays() {
        let start = start_of("--supervise --restart=2.5 -- x");
        assert_eq!(start.restart, Some(Duration::from_millis(2500)));
        let start = start_of("--supervise --restart -- x");
        assert_eq!(start.restart, Some(DEFAULT_RESTART_DELAY));
        for (words, expected) in [
            ("--restart -- x", "--restart needs --supervise"),
            ("--supervise --restart=0 -- x", "at least 0.1 s"),
            (
                "--supervise --restart=1e300 -- x",
                "expected seconds from 0 to 31536000 (a year)",
            ),
        ] {
            let error = parse_words(words).err().unwrap_or_default();
            assert!(error.contains(expected), "{words}: {error}");
        }
    }

    /// Each option of a mode left out is known, and refused as such.
    #[cfg(not(all(feature = "supervise", feature = "logs", feature = "harden")))]
    #[test]
    fn modes_built_without() {
        let mut words = vec![];
        if !cfg!(feature = "supervise") {
            words.extend([
                ("--supervise -- x", "--supervise", "supervise"),
                ("--restart=2 -- x", "--restart", "supervise"),
                ("--child-pidfile c -- x", "--child-pidfile", "supervise"),
                ("--start-limit 5 -- x", "--start-limit", "supervise"),
                ("--stop-signal QUIT -- x", "--stop-signal", "supervise"),
                ("--success-exit 143 -- x", "--success-exit", "supervise"),
                ("--watchdog 5 -- x", "--watchdog", "supervise"),
            ]);
        }
        if !cfg!(feature = "logs") {
            words.extend([
                ("--output f --rotate 1M -- x", "--rotate", "logs"),
                ("--output f --timestamps -- x", "--timestamps", "logs"),
                ("--syslog -- x", "--syslog", "logs"),
                ("--syslog-tag t -- x", "--syslog-tag", "logs"),
                ("--syslog-stderr err -- x", "--syslog-stderr", "logs"),
                ("--syslog-socket /s -- x", "--syslog-socket", "logs"),
            ]);
        }
        if !cfg!(feature = "harden") {
            words.extend([
                ("--cap net_raw -- x", "--cap", "harden"),
                ("--no-new-privs -- x", "--no-new-privs", "harden"),
                ("--limit nofile=1 -- x", "--limit", "harden"),
                ("--env-file f -- x", "--env-file", "harden"),
                ("--runtime-dir d -- x", "--runtime-dir", "harden"),
            ]);
        }
        for (words, option, mode) in words {
            let error = parse_words(words).err().unwrap_or_default();
            let expected = format!(
                "daemonic: {option}: this daemonic was built without {mode} (cargo feature \"{mode}\", or \"full\")"
            );
            assert_eq!(error, expected, "{words}");
        }
    }

    #[cfg(all(feature = "supervise", not(feature = "pid1")))]
    #[test]
    fn pid1_built_without() {
        let error = parse_words("--foreground --supervise -- x").err();
        assert!(
            error
                .as_ref()
                .is_some_and(|e| e.contains("built without pid1")),
            "{error:?}"
        );
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (words, expected) in [
            ("-p x sleep 1", "put the program after --"),
            ("-p x", "missing -- before the program"),
            ("-p x --", "missing program after --"),
            ("-m 999 -- x", "expected an octal mask"),
            ("-m 8 -- x", "expected an octal mask"),
            ("--bogus -- x", "invalid option '--bogus'"),
            ("-Z -- x", "invalid option '-Z'"),
            ("-p", "missing argument for option '-p'"),
            ("--stop=1 -p x", "option '--stop' takes no value"),
            ("--stop", "--stop needs --pidfile"),
            ("--status -p x -- y", "--status takes no program"),
            ("--env NOEQUALS -- x", "expected KEY=VALUE"),
            ("--env =1 -- x", "empty name"),
            ("--stop -p x --signal FOO", "unknown signal"),
            ("--keep-fd -5 -- x", "expected a whole number from 3 up"),
            ("--keep-fd 1 -- x", "fds 0, 1 and 2 are always kept"),
            ("--keep-fd 2147483647 -- x", "fd 2147483647 is not open"),
            ("--keep-fd 2147483648 -- x", "expected a whole number"),
            ("--ready-fd 2147483647 -- x", "beyond the fd limit"),
            ("--timeout 3 -- x", "--timeout on a start needs --supervise"),
            ("--nice x -- y", "--nice x: expected a whole number"),
        ] {
            let error = parse_words(words).err().unwrap_or_default();
            assert!(error.starts_with("daemonic: "), "{words}: {error}");
            assert!(error.contains(expected), "{words}: {error}");
        }
    }

    #[cfg(feature = "supervise")]
    #[test]
    fn supervisor_limits_and_signals() {
        let start =
            start_of("--supervise --restart=0.1:0.5 --start-limit 0 --stop-signal QUIT -- x");
        assert_eq!(start.restart, Some(Duration::from_millis(100)));
        assert_eq!(start.restart_cap, Some(Duration::from_millis(500)));
        assert_eq!(start.start_limit.0, 0);
        assert_eq!(start.stop_signal, libc::SIGQUIT);
        let start = start_of("--supervise --success-exit 143 --success-exit 0 -- x");
        assert_eq!(start.success_exits, [1, 0, 1 << (143 - 128), 0]);
        let start = start_of("--supervise --start-limit 20/60 -- x");
        assert_eq!(start.start_limit, (20, Duration::from_secs(60)));
        let start = start_of("--supervise -- x");
        assert_eq!(start.start_limit, DEFAULT_START_LIMIT);
        assert_eq!(
            (start.stop_signal, start.restart_cap),
            (libc::SIGTERM, None)
        );
        for (words, expected) in [
            ("--supervise --start-limit x -- y", "expected BURST[/SECS]"),
            ("--supervise --start-limit 5/0 -- y", "SECS above 0"),
            ("--start-limit 5 -- y", "--start-limit needs --supervise"),
            ("--stop-signal QUIT -- y", "--stop-signal needs --supervise"),
            (
                "--supervise --stop-signal BOGUS -- y",
                "--stop-signal BOGUS: unknown signal",
            ),
            ("--supervise --restart=1:0.5 -- y", "MAX at least the delay"),
            ("--supervise --success-exit 256 -- y", "from 0 to 255"),
            ("--success-exit 1 -- y", "--success-exit needs --supervise"),
            (
                "--watchdog 1 -- y",
                "--watchdog needs --supervise and --wait-ready",
            ),
            (
                "--supervise --watchdog 1 -- y",
                "--watchdog needs --supervise and --wait-ready",
            ),
            (
                "--supervise --wait-ready --ready-fd 5 --watchdog 1 -- y",
                "not --ready-fd",
            ),
            (
                "--supervise --wait-ready --watchdog 0.05 -- y",
                "--watchdog 0.05: at least 0.1 s",
            ),
        ] {
            let error = parse_words(words).err().unwrap_or_default();
            assert!(error.contains(expected), "{words}: {error}");
        }
    }

    #[cfg(feature = "logs")]
    #[test]
    fn syslog_priorities() {
        let start = start_of("--supervise --syslog -- y");
        assert_eq!(start.syslog, Some(29));
        let start =
            start_of("--supervise --syslog=local0.info --syslog-stderr err --syslog-tag t -- y");
        assert_eq!(
            (start.syslog, start.syslog_stderr),
            (Some(16 * 8 + 6), Some(16 * 8 + 3))
        );
        assert_eq!(start.syslog_tag, Some(&b"t"[..]));
    }

    #[cfg(feature = "logs")]
    #[test]
    fn rotation_sizes() {
        for (words, expected) in [
            ("--rotate 1M -- y", "need --supervise"),
            ("--supervise --timestamps -- y", "need one output file"),
            (
                "--supervise --stdout a --stderr b --timestamps -- y",
                "need one output file",
            ),
            (
                "--supervise --output f --rotate 10 -- y",
                "SIZE at least 1024",
            ),
            (
                "--supervise --output f --rotate 1M:x -- y",
                "expected SIZE[:COUNT]",
            ),
            (
                "--supervise --output /dev/null --rotate 1M -- y",
                "/dev/null is not a regular file",
            ),
        ] {
            let error = parse_words(words).err().unwrap_or_default();
            assert!(error.contains(expected), "{words}: {error}");
        }
        let start = start_of("--supervise --output f --rotate 2M:3 --timestamps -- y");
        assert_eq!(start.rotate, Some((2 << 20, 3)));
        assert!(start.timestamps);
        let start = start_of("--supervise --output f --rotate 4096 -- y");
        assert_eq!(start.rotate, Some((4096, 10)));
        let start = start_of("--supervise --stdout f --stderr f --rotate 8k:0 -- y");
        assert_eq!(start.rotate, Some((8192, 0)));
    }

    #[test]
    fn stop_and_status() {
        use crate::schedule::{Action, KILL_WAIT};
        let Ok(Command::Stop { schedule, .. }) =
            parse_words("--stop -p x --signal HUP --timeout 3")
        else {
            panic!("not a stop");
        };
        assert_eq!(
            schedule.actions,
            [
                Action::Signal(libc::SIGHUP),
                Action::Wait(Duration::from_secs(3)),
                Action::Signal(libc::SIGKILL),
                Action::Wait(KILL_WAIT),
            ]
        );
        let Ok(Command::Stop { schedule, .. }) = parse_words("--stop -p x --retry QUIT/2/KILL/1")
        else {
            panic!("not a stop");
        };
        assert_eq!(schedule.actions[0], Action::Signal(libc::SIGQUIT));
        // --signal alone: a signal for a running daemon, which runs on.
        let Ok(Command::Signal {
            signal, timeout, ..
        }) = parse_words("--signal SIGUSR1 -p x")
        else {
            panic!("not a signal");
        };
        assert_eq!((signal, timeout), (libc::SIGUSR1, DEFAULT_STOP_TIMEOUT));
        for (words, expected) in [
            ("--signal HUP", "--signal needs --pidfile"),
            ("--signal HUP -p x --retry 5", "--retry needs --stop"),
            (
                "--stop -p x --retry 5 --timeout 3",
                "--retry and --timeout both",
            ),
            (
                "--stop -p x --signal HUP --retry TERM/5",
                "the schedule names its signals",
            ),
            ("--signal HUP -p x -- prog", "not a start"),
            ("--retry 5 -- prog", "not a start"),
        ] {
            let error = parse_words(words).err().unwrap_or_default();
            assert!(error.contains(expected), "{words}: {error}");
        }
        for words in [
            "--stop -p x --timeout 1e300",
            "--wait-ready=1e300 -- x",
            "--stop -p x --timeout -1",
            "--stop -p x --timeout nan",
            "--stop -p x --timeout 31536001",
            "--stop -p x --timeout .",
            "--stop -p x --timeout 1.2.3",
        ] {
            let error = parse_words(words).err().unwrap_or_default();
            assert!(
                error.contains("expected seconds from 0 to 31536000 (a year)"),
                "{words}: {error}"
            );
        }
        assert!(matches!(
            parse_words("--status --pidfile x --trust-pidfile"),
            Ok(Command::Status { trust: true, .. })
        ));
        assert!(matches!(parse_words("-hV"), Ok(Command::Help)));
        assert!(matches!(parse_words("-V"), Ok(Command::Version)));
    }
}
