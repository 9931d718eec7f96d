//! `spawn [--user USER] [--chroot DIR] [--output FILE] [--ready-fd N] PIDFILE PROGRAM [ARGS...]`:
//! starts PROGRAM as a daemon (the exec variant of the sequence), holding
//! the PID file's lock. Exits 0 once PROGRAM runs (or, with `--ready-fd N`,
//! once it wrote a newline to fd N), 1 with the step and the OS error if
//! it could not be started, 2 on bad arguments.
//!
//! `ci/fault-inject` scripts against this interface.

use std::process::exit;

use daemonic::{Daemonize, OwnedProgramReadiness};

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mut builder = Daemonize::new();
    while let Some(option) = args.next_if(|arg| arg.starts_with("--")) {
        let value = args.next().unwrap_or_else(|| usage());
        builder = match option.as_str() {
            "--user" => builder.user(&value),
            "--chroot" => builder.chroot(value),
            "--output" => builder
                .stdout(daemonic::OwnedStdio::File(value.clone().into()))
                .stderr(daemonic::OwnedStdio::File(value.into())),
            "--ready-fd" => builder.program_readiness(OwnedProgramReadiness::Fd(
                value.parse().unwrap_or_else(|_| usage()),
            )),
            _ => usage(),
        };
    }
    let (Some(pid_file), Some(program)) = (args.next(), args.next()) else {
        usage()
    };
    // With exec, the daemon becomes the program: only errors come back,
    // those found before anything forked (the program's are printed by
    // daemonize, which then exits).
    let Err(error) = builder.pid_file(pid_file).exec(program, args).daemonize() else {
        unreachable!("an executed daemon does not return here")
    };
    eprintln!("spawn: {error}");
    exit(daemonic::EXIT_START_FAILED)
}

fn usage() -> ! {
    eprintln!(
        "usage: spawn [--user USER] [--chroot DIR] [--output FILE] [--ready-fd N] PIDFILE PROGRAM [ARGS...]"
    );
    exit(2)
}
