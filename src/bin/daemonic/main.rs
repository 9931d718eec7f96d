//! `daemonic`: start, stop, check and supervise a program as a daemon, on
//! the `daemonic` crate. See `daemonic --help` and README.md.

mod args;
mod control;
mod start;
mod supervise;

use args::Command;

/// Exit statuses, as `--help` documents them.
mod exit {
    pub const STARTED: i32 = 0;
    pub const USAGE: i32 = 1;
    pub const ALREADY_RUNNING: i32 = 2;
    pub const COULD_NOT_START: i32 = 3;
    pub const NOT_READY: i32 = 4;
    // --status, as LSB init scripts have it.
    pub const STATUS_RUNNING: i32 = 0;
    pub const STATUS_DEAD_PID_FILE: i32 = 1;
    pub const STATUS_NOT_RUNNING: i32 = 3;
    pub const STATUS_UNKNOWN: i32 = 4;
    // --stop.
    pub const STOP_DONE: i32 = 0;
    pub const STOP_NOT_RUNNING: i32 = 1;
    pub const STOP_UNKNOWN: i32 = 4;
}

const HELP: &str = "\
daemonic: run a program as a Unix daemon

USAGE
  daemonic [OPTIONS] -- PROGRAM [ARGS...]      start PROGRAM as a daemon
  daemonic --stop --pidfile PATH [--signal SIG] [--timeout SECS]
  daemonic --status --pidfile PATH

START OPTIONS
  -p, --pidfile PATH      write the daemon's PID to PATH, locked (flock) for its life;
                          a second start while it runs fails (status 2)
  -C, --chdir DIR         working directory (default /)
  -m, --umask OCTAL       file mode creation mask (default 022)
  -o, --stdout FILE       standard output to FILE (append, create 0640; default /dev/null)
  -e, --stderr FILE       standard error to FILE
      --output FILE       both to FILE
  -u, --user USER[:GROUP] run as USER (name or number), with its groups
  -g, --group GROUP       run as GROUP
      --chroot DIR        change root to DIR first (the working directory is inside)
      --keep-fd N         keep fd N open (repeatable; all other fds above 2 are closed)
      --env KEY=VALUE     set an environment variable (repeatable)
      --clear-env         start from an empty environment
      --nice N            add N to the nice value
      --wait-ready[=SECS] return once PROGRAM reports ready: READY=1 on the
                          NOTIFY_SOCKET daemonic provides, or a newline on --ready-fd
                          (default 60 s; not ready in time: status 4, PROGRAM stopped)
      --ready-fd N        PROGRAM writes a newline to fd N when ready (s6 style)
      --supervise         stay as a supervisor: hold the PID file (own PID), write
                          PROGRAM's PID to --child-pidfile, forward SIGTERM, SIGINT,
                          SIGHUP, SIGUSR1, SIGUSR2, remove the PID files at exit
      --child-pidfile PATH  with --supervise: PROGRAM's PID file
      --restart[=DELAY]   with --supervise: restart PROGRAM when it exits abnormally,
                          after DELAY seconds (default 1), doubling up to 60 s;
                          never after a stop request
      --foreground        every step but the forks (systemd Type=notify, containers)
  -h, --help              this text
  -V, --version           the version

STOP OPTIONS
      --signal SIG        the signal to send (name or number; default TERM)
      --timeout SECS      wait this long for the daemon to go, then SIGKILL (default 10)

EXIT STATUS
  start:    0 started (and ready, with --wait-ready); 1 usage error; 2 already running
            (the message names the PID); 3 PROGRAM could not be started (the message
            names the step and the OS error); 4 not ready in time (PROGRAM was stopped,
            no PID file left)
  --status: 0 running; 1 not running but the PID file exists; 3 not running;
            4 unknown (the PID file cannot be read)
  --stop:   0 stopped (once the process is gone); 1 not running; 4 could not tell or
            could not stop
Every error message starts with 'daemonic: '.
";

fn main() {
    let args = std::env::args_os().skip(1).collect();
    let status = match args::parse(args) {
        Err(message) => {
            eprintln!("daemonic: {message} (see daemonic --help)");
            exit::USAGE
        }
        Ok(Command::Help) => {
            print!("{HELP}");
            0
        }
        Ok(Command::Version) => {
            println!("daemonic {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Command::Status { pid_file }) => control::status(&pid_file),
        Ok(Command::Stop {
            pid_file,
            signal,
            timeout,
        }) => control::stop(&pid_file, signal, timeout),
        Ok(Command::Start(start)) => start::run(*start),
    };
    std::process::exit(status);
}
