//! `sleeper PIDFILE SECONDS`: daemonizes with the defaults and that PID
//! file, sleeps, then exits, removing its PID file. SIGTERM or SIGINT end
//! the sleep early, the same way.
//!
//! If it cannot start, the calling process prints the step and the OS error
//! and exits 1 (2 for bad arguments). Other checks script against this
//! interface: keep it stable.

use std::process::exit;
use std::time::Duration;

use daemonic::{Daemonize, Readiness};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (pid_file, seconds) = match args.as_slice() {
        [_, pid_file, seconds] => match seconds.parse::<u64>() {
            Ok(seconds) => (pid_file.clone(), seconds),
            Err(_) => usage(),
        },
        _ => usage(),
    };
    let mut daemon = Daemonize::new()
        .pid_file(pid_file)
        // Ready only once SIGTERM is caught: a stop request sent the moment
        // the caller returns must still remove the PID file.
        .readiness(Readiness::Manual)
        .daemonize()
        .unwrap_or_else(|error| {
            eprintln!("sleeper: {error}");
            exit(1)
        });
    let stop = match daemon.block_stop_signals() {
        Ok(stop) => stop,
        Err(errno) => daemon.fail(errno),
    };
    if daemon.ready().is_err() {
        // The caller is gone: nobody wants this daemon. Drop the handle
        // first, as `exit` runs no destructor and the PID file would stay.
        drop(daemon);
        exit(1);
    }
    stop.wait(Some(Duration::from_secs(seconds)));
    // Dropping the handle removes the PID file.
    drop(daemon);
}

fn usage() -> ! {
    eprintln!("usage: sleeper PIDFILE SECONDS");
    exit(2)
}
