//! `daemonize-start PIDFILE PROGRAM [ARGS...]`: daemonizes with the
//! `daemonize` crate (its PID file written by the daemon), then executes
//! PROGRAM. For ci/bench's table.

use std::os::unix::process::CommandExt;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: daemonize-start PIDFILE PROGRAM [ARGS...]");
        std::process::exit(2);
    }
    if let Err(error) = daemonize::Daemonize::new().pid_file(&args[0]).start() {
        eprintln!("daemonize-start: {error}");
        std::process::exit(1);
    }
    let error = std::process::Command::new(&args[1]).args(&args[2..]).exec();
    eprintln!("daemonize-start: {error}");
    std::process::exit(127);
}
