//! The command line, parsed with lexopt into what to do.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;

use crate::control::Trust;

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Start(Box<Start>),
    Stop {
        pid_file: PathBuf,
        signal: i32,
        timeout: Duration,
        trust: Trust,
    },
    Status {
        pid_file: PathBuf,
        trust: Trust,
    },
    Help,
    Version,
}

/// Everything `daemonic [OPTIONS] -- PROGRAM [ARGS...]` takes.
#[derive(Debug, Default)]
pub struct Start {
    pub pid_file: Option<PathBuf>,
    pub child_pid_file: Option<PathBuf>,
    pub chdir: Option<PathBuf>,
    pub umask: Option<u32>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub chroot: Option<PathBuf>,
    pub keep_fds: Vec<i32>,
    pub env: Vec<(OsString, OsString)>,
    pub clear_env: bool,
    pub nice: Option<i32>,
    /// `--wait-ready`: how long to wait for the program's readiness.
    pub wait_ready: Option<Duration>,
    pub ready_fd: Option<i32>,
    pub supervise: bool,
    /// `--restart`: the first delay.
    pub restart: Option<Duration>,
    /// `--timeout` with `--supervise`: how long a stopping program gets
    /// before SIGKILL.
    pub stop_timeout: Duration,
    pub foreground: bool,
    pub program: OsString,
    pub args: Vec<OsString>,
}

/// A usage error: the message, without the `daemonic: ` prefix.
pub type UsageError = String;

/// How long `--wait-ready` waits without a value, and `--stop` before SIGKILL.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The first restart delay without a value (FreeBSD daemon(8)'s `-r`).
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
/// The shortest restart delay: a program failing at once must not make the
/// supervisor spin.
pub const MIN_RESTART_DELAY: Duration = Duration::from_millis(100);
/// The longest timeout or delay taken: a year, far beyond any real wait and
/// far inside what clocks and `poll` can count.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

pub fn parse(args: Vec<OsString>) -> Result<Command, UsageError> {
    // The program and its arguments follow the first `--`, untouched.
    let split = args.iter().position(|arg| arg == "--");
    let (options, program) = match split {
        Some(at) => (&args[..at], Some(&args[at + 1..])),
        None => (&args[..], None),
    };
    let mut parser = lexopt::Parser::from_args(options.iter().cloned());
    let mut start = Start::default();
    let mut mode: Option<&str> = None;
    let mut pid_file_given = false;
    let mut signal = libc::SIGTERM;
    let mut timeout = DEFAULT_STOP_TIMEOUT;
    let mut trust = Trust::default();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("stop") => mode = Some("stop"),
            Long("status") => mode = Some("status"),
            Short('p') | Long("pidfile") => {
                start.pid_file = Some(parser.value().map_err(|e| e.to_string())?.into());
                pid_file_given = true;
            }
            Long("child-pidfile") => start.child_pid_file = Some(path(&mut parser)?),
            Short('C') | Long("chdir") => start.chdir = Some(path(&mut parser)?),
            Short('m') | Long("umask") => start.umask = Some(octal(&text(&mut parser)?)?),
            Short('o') | Long("stdout") => start.stdout = Some(path(&mut parser)?),
            Short('e') | Long("stderr") => start.stderr = Some(path(&mut parser)?),
            Long("output") => {
                let file = path(&mut parser)?;
                start.stdout = Some(file.clone());
                start.stderr = Some(file);
            }
            Short('u') | Long("user") => {
                let value = text(&mut parser)?;
                match value.split_once(':') {
                    Some((user, group)) => {
                        start.user = Some(user.to_string());
                        start.group = Some(group.to_string());
                    }
                    None => start.user = Some(value),
                }
            }
            Short('g') | Long("group") => start.group = Some(text(&mut parser)?),
            Long("chroot") => start.chroot = Some(path(&mut parser)?),
            Long("keep-fd") => {
                let fd = number(&text(&mut parser)?, "--keep-fd")?;
                if (0..3).contains(&fd) {
                    return Err(format!("--keep-fd {fd}: fds 0, 1 and 2 are always kept"));
                }
                check_open(fd, "--keep-fd")?;
                start.keep_fds.push(fd);
            }
            Long("env") => {
                let value = parser.value().map_err(|e| e.to_string())?;
                let text = value.to_string_lossy().into_owned();
                let Some((key, val)) = text.split_once('=') else {
                    return Err(format!("--env {text}: expected KEY=VALUE"));
                };
                if key.is_empty() {
                    return Err(format!("--env {text}: empty name"));
                }
                start.env.push((key.into(), val.into()));
            }
            Long("clear-env") => start.clear_env = true,
            Long("nice") => start.nice = Some(number(&text(&mut parser)?, "--nice")?),
            Long("wait-ready") => {
                start.wait_ready = Some(match parser.optional_value() {
                    Some(value) => seconds(&value.to_string_lossy(), "--wait-ready")?,
                    None => DEFAULT_WAIT,
                })
            }
            Long("ready-fd") => {
                let fd = number(&text(&mut parser)?, "--ready-fd")?;
                if fd < 3 {
                    return Err(format!("--ready-fd {fd}: must be above 2"));
                }
                let limit = fd_limit();
                if i64::from(fd) >= limit {
                    return Err(format!(
                        "--ready-fd {fd}: beyond the fd limit ({limit}, RLIMIT_NOFILE)"
                    ));
                }
                start.ready_fd = Some(fd);
            }
            Long("supervise") => start.supervise = true,
            Long("restart") => {
                let delay = match parser.optional_value() {
                    Some(value) => seconds(&value.to_string_lossy(), "--restart")?,
                    None => DEFAULT_RESTART_DELAY,
                };
                if delay < MIN_RESTART_DELAY {
                    return Err(format!(
                        "--restart={}: the delay must be at least 0.1 s",
                        delay.as_secs_f64()
                    ));
                }
                start.restart = Some(delay);
            }
            Long("foreground") => start.foreground = true,
            Long("signal") => signal = signal_number(&text(&mut parser)?)?,
            Long("timeout") => timeout = seconds(&text(&mut parser)?, "--timeout")?,
            Long("trust-pidfile") => trust.pid_file = true,
            Value(value) => {
                return Err(format!(
                    "unexpected argument '{}': put the program after --",
                    value.to_string_lossy()
                ));
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    match mode {
        Some(which) => {
            if program.is_some() {
                return Err(format!("--{which} takes no program"));
            }
            let Some(pid_file) = start.pid_file.filter(|_| pid_file_given) else {
                return Err(format!("--{which} needs --pidfile"));
            };
            Ok(if which == "stop" {
                Command::Stop {
                    pid_file,
                    signal,
                    timeout,
                    trust,
                }
            } else {
                Command::Status { pid_file, trust }
            })
        }
        None => {
            let Some(program) = program else {
                return Err(String::from(
                    "missing -- before the program (daemonic [OPTIONS] -- PROGRAM [ARGS...])",
                ));
            };
            let Some((first, rest)) = program.split_first() else {
                return Err(String::from("missing program after --"));
            };
            start.program = first.clone();
            start.args = rest.to_vec();
            start.stop_timeout = timeout;
            check(&start)?;
            Ok(Command::Start(Box::new(start)))
        }
    }
}

/// Combinations that cannot work.
fn check(start: &Start) -> Result<(), UsageError> {
    if start.restart.is_some() && !start.supervise {
        return Err(String::from("--restart needs --supervise"));
    }
    if start.stop_timeout != DEFAULT_STOP_TIMEOUT && !start.supervise {
        return Err(String::from(
            "--timeout on a start needs --supervise (the supervisor's grace before SIGKILL)",
        ));
    }
    if start.child_pid_file.is_some() && !start.supervise {
        return Err(String::from("--child-pidfile needs --supervise"));
    }
    if start.foreground
        && (start.wait_ready.is_some() || start.ready_fd.is_some())
        && !start.supervise
    {
        return Err(String::from(
            "--wait-ready needs a caller to wait: not with --foreground",
        ));
    }
    Ok(())
}

fn text(parser: &mut lexopt::Parser) -> Result<String, UsageError> {
    parser
        .value()
        .map_err(|e| e.to_string())?
        .into_string()
        .map_err(|value| format!("not valid text: {}", value.to_string_lossy()))
}

fn path(parser: &mut lexopt::Parser) -> Result<PathBuf, UsageError> {
    Ok(parser.value().map_err(|e| e.to_string())?.into())
}

fn octal(text: &str) -> Result<u32, UsageError> {
    match u32::from_str_radix(text, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(format!(
            "--umask {text}: expected an octal mask from 0 to 777"
        )),
    }
}

fn number(text: &str, option: &str) -> Result<i32, UsageError> {
    text.parse()
        .map_err(|_| format!("{option} {text}: expected a whole number"))
}

fn seconds(text: &str, option: &str) -> Result<Duration, UsageError> {
    match text.parse::<f64>() {
        Ok(secs) if (0.0..=MAX_SECONDS).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "{option} {text}: expected seconds from 0 to {MAX_SECONDS} (a year)"
        )),
    }
}

/// An fd the daemon is to keep must be open here: a closed number would be
/// "kept" as nothing, or as whatever the daemon opens there next.
fn check_open(fd: i32, option: &str) -> Result<(), UsageError> {
    if fd < 0 {
        return Err(format!("{option} {fd}: expected a whole number from 3 up"));
    }
    // SAFETY: F_GETFD only asks about the fd number; EBADF if not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("{option} {fd}: fd {fd} is not open"));
    }
    Ok(())
}

/// The soft `RLIMIT_NOFILE`: no fd at or above it can be opened or made.
fn fd_limit() -> i64 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map_or(i64::from(i32::MAX), |n| n.min(i32::MAX as u64) as i64)
}

/// A signal by name (`TERM`, `SIGTERM`) or number.
pub fn signal_number(text: &str) -> Result<i32, UsageError> {
    if let Ok(n) = text.parse::<i32>() {
        if (1..65).contains(&n) {
            return Ok(n);
        }
    }
    let name = text.strip_prefix("SIG").unwrap_or(text);
    let signal = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "WINCH" => libc::SIGWINCH,
        _ => return Err(format!("--signal {text}: unknown signal")),
    };
    Ok(signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &str) -> Result<Command, UsageError> {
        parse(words.split_whitespace().map(OsString::from).collect())
    }

    #[test]
    fn start_takes_the_program_after_dashes() {
        let Ok(Command::Start(start)) = parse_words("-p /run/x.pid -m 027 --env A=1 -- sleep 60")
        else {
            panic!("not a start");
        };
        assert_eq!(start.program, "sleep");
        assert_eq!(start.args, ["60"]);
        assert_eq!(start.umask, Some(0o27));
        assert_eq!(start.env, [("A".into(), "1".into())]);
    }

    #[test]
    fn optional_values() {
        let Ok(Command::Start(start)) = parse_words("--wait-ready --supervise --restart=2.5 -- x")
        else {
            panic!("not a start");
        };
        assert_eq!(start.wait_ready, Some(DEFAULT_WAIT));
        assert_eq!(start.restart, Some(Duration::from_millis(2500)));
        let Ok(Command::Start(start)) = parse_words("--wait-ready=5 -- x") else {
            panic!("not a start");
        };
        assert_eq!(start.wait_ready, Some(Duration::from_secs(5)));
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (words, expected) in [
            ("-p x sleep 1", "put the program after --"),
            ("-p x", "missing -- before the program"),
            ("-p x --", "missing program after --"),
            ("-m 999 -- x", "expected an octal mask"),
            ("--bogus -- x", "invalid option '--bogus'"),
            ("--stop", "--stop needs --pidfile"),
            ("--restart -- x", "--restart needs --supervise"),
            ("--env NOEQUALS -- x", "expected KEY=VALUE"),
            ("--stop -p x --signal FOO", "unknown signal"),
            ("--supervise --restart=0 -- x", "at least 0.1 s"),
            ("--keep-fd -5 -- x", "expected a whole number from 3 up"),
            ("--keep-fd 2147483647 -- x", "fd 2147483647 is not open"),
            ("--ready-fd 2147483647 -- x", "beyond the fd limit"),
            ("--timeout 3 -- x", "--timeout on a start needs --supervise"),
        ] {
            let error = parse_words(words).err().unwrap_or_default();
            assert!(error.contains(expected), "{words}: {error}");
        }
    }

    #[test]
    fn stop_and_status() {
        let Ok(Command::Stop {
            signal, timeout, ..
        }) = parse_words("--stop -p x --signal HUP --timeout 3")
        else {
            panic!("not a stop");
        };
        assert_eq!((signal, timeout), (libc::SIGHUP, Duration::from_secs(3)));
        for words in [
            "--stop -p x --timeout 1e300",
            "--wait-ready=1e300 -- x",
            "--supervise --restart=1e300 -- x",
            "--stop -p x --timeout -1",
            "--stop -p x --timeout nan",
        ] {
            let error = parse_words(words).err().unwrap_or_default();
            assert!(
                error.contains("expected seconds from 0"),
                "{words}: {error}"
            );
        }
        assert!(matches!(
            parse_words("--status --pidfile x"),
            Ok(Command::Status { .. })
        ));
    }
}
