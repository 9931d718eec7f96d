//! Starting: the options onto the library's builder, its errors onto the
//! exit statuses.

use daemonic::{Daemonize, Detach, Error, OwnedProgramReadiness, OwnedStdio, Started, Step};

use crate::args::{DEFAULT_WAIT, Start};
use crate::{exit, supervise};

/// Builds the daemon's description: everything but what to execute.
pub fn builder(start: &Start) -> Daemonize {
    let mut builder = Daemonize::new();
    if let Some(path) = &start.pid_file {
        builder = builder.pid_file(path);
    }
    if let Some(dir) = &start.chdir {
        builder = builder.working_directory(dir);
    }
    if let Some(mask) = start.umask {
        builder = builder.umask(mask);
    }
    if let Some(path) = &start.stdout {
        builder = builder.stdout(OwnedStdio::File(path.clone()));
    }
    if let Some(path) = &start.stderr {
        builder = builder.stderr(OwnedStdio::File(path.clone()));
    }
    if let Some(user) = &start.user {
        builder = builder.user(user);
    }
    if let Some(group) = &start.group {
        builder = builder.group(group);
    }
    if let Some(dir) = &start.chroot {
        builder = builder.chroot(dir);
    }
    builder = builder.keep_fds(start.keep_fds.iter().copied());
    if let Some(increment) = start.nice {
        builder = builder.nice(increment);
    }
    if start.foreground {
        builder = builder.detach(Detach::Never);
    }
    builder
}

pub fn run(start: Start) -> i32 {
    if start.supervise {
        return supervise::run(start);
    }
    let mut builder = builder(&start);
    if start.clear_env {
        builder = builder.env_clear();
    }
    for (key, value) in &start.env {
        builder = builder.env(key, value);
    }
    if let Some(fd) = start.ready_fd {
        builder = builder.program_readiness(OwnedProgramReadiness::Fd(fd));
    } else if start.wait_ready.is_some() {
        builder = builder.program_readiness(OwnedProgramReadiness::NotifySocket);
    }
    builder = builder.ready_timeout(Some(start.wait_ready.unwrap_or(DEFAULT_WAIT)));
    match builder.exec(&start.program, &start.args).start() {
        Ok(Started::Parent(_)) => exit::STARTED,
        // An executed program never returns here.
        Ok(Started::Daemon(_)) => exit::COULD_NOT_START,
        Err(error) => refused(&error, &start),
    }
}

/// Prints why a start failed, naming the user, group or file involved, and
/// gives the exit status.
pub fn refused(error: &Error, start: &Start) -> i32 {
    match error {
        Error::Invalid {
            option: "user",
            reason,
        } if reason.starts_with("a numeric user") => {
            eprintln!(
                "daemonic: user {} has no passwd entry: name its group with -g",
                start.user.as_deref().unwrap_or_default()
            );
            exit::USAGE
        }
        Error::Invalid { option: "user", .. } => unknown("user", start.user.as_deref()),
        Error::Invalid {
            option: "group", ..
        } => unknown("group", start.group.as_deref()),
        Error::Invalid { option: "exec", .. } => {
            eprintln!(
                "daemonic: no program '{}' in PATH",
                start.program.to_string_lossy()
            );
            exit::COULD_NOT_START
        }
        Error::Os { .. } => {
            // What failed on what: the builder names the path or program.
            let described = builder(start)
                .exec(&start.program, &start.args)
                .describe(error);
            eprintln!("daemonic: {described}");
            status_of(error)
        }
        Error::NotReady {
            last_step: Some(step),
            ..
        } => {
            eprintln!(
                "daemonic: the daemon was not ready in time, still {}; it was stopped",
                doing(*step, start)
            );
            exit::NOT_READY
        }
        error => report(error),
    }
}

/// What the daemon was doing at `step`, with the path it was opening.
fn doing(step: Step, start: &Start) -> String {
    let opening = |what: &str, path: Option<&std::path::PathBuf>| match path {
        Some(path) => format!("opening the {what} {}", path.display()),
        None => format!("opening /dev/null for the {what}"),
    };
    match step {
        Step::RedirectStdout => opening("output file", start.stdout.as_ref()),
        Step::RedirectStderr => opening("error file", start.stderr.as_ref()),
        Step::RedirectStdin => opening("input", None),
        Step::ChangeDirectory => match &start.chdir {
            Some(dir) => format!("changing directory to {}", dir.display()),
            None => String::from("changing directory to /"),
        },
        step => format!("trying to {step}"),
    }
}

/// An unknown user or group, named.
pub fn unknown(what: &str, name: Option<&str>) -> i32 {
    eprintln!("daemonic: unknown {what} '{}'", name.unwrap_or_default());
    exit::USAGE
}

/// Prints the error and gives its exit status.
pub fn report(error: &Error) -> i32 {
    match error {
        Error::Os {
            step: Step::Readiness,
            errno: daemonic::Errno::TIMEDOUT,
        } => eprintln!("daemonic: the program was not ready in time; it was stopped"),
        error => eprintln!("daemonic: {error}"),
    }
    status_of(error)
}

pub fn status_of(error: &Error) -> i32 {
    match error {
        Error::AlreadyRunning { .. } | Error::LockedByOther { .. } => exit::ALREADY_RUNNING,
        Error::UntrustedPidFile { .. } => exit::USAGE,
        Error::NotReady { .. } => exit::NOT_READY,
        Error::Os {
            step: Step::Readiness,
            errno: daemonic::Errno::TIMEDOUT,
        } => exit::NOT_READY,
        Error::Invalid { .. } | Error::InteriorNul { .. } => exit::USAGE,
        _ => exit::COULD_NOT_START,
    }
}
