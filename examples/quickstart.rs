//! `quickstart PIDFILE LOG [USER]`: README's library quick start. A daemon
//! with a PID file and a log (both streams), running as USER if given,
//! ready only once its socket is bound (an echo server on 127.0.0.1, on the
//! port the kernel picks, which it logs), stopped cleanly by SIGTERM or
//! SIGINT: the PID file goes with it.
//!
//! If it cannot start, the calling process prints why (naming the file or
//! user) and exits 1; once it is ready, the caller exits 0.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::exit;

use daemonic::{Daemonize, Readiness};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [pid_file, log, rest @ ..] = args.as_slice() else {
        eprintln!("usage: quickstart PIDFILE LOG [USER]");
        exit(2)
    };
    let mut builder = Daemonize::new()
        .pid_file(pid_file)
        .output(log)
        // The caller returns once the daemon says so, not at the fork.
        .readiness(Readiness::Manual);
    if let [user] = rest {
        builder = builder.user(user);
    }
    let mut daemon = builder.daemonize().unwrap_or_else(|error| {
        eprintln!("quickstart: {error}");
        exit(daemonic::EXIT_START_FAILED)
    });
    // Only the daemon gets here. Stop requests wait until asked for, so one
    // sent the moment the caller returns still ends the daemon cleanly.
    let stop = match daemon.block_stop_signals() {
        Ok(stop) => stop,
        Err(errno) => daemon.fail(errno),
    };
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        // The caller prints: failed to initialize (bind 127.0.0.1:0): ...
        Err(error) => daemon.fail_io("bind 127.0.0.1:0", &error),
    };
    println!("listening on {}", listener.local_addr().unwrap());
    if daemon.ready().is_err() {
        // The caller is gone. Drop the handle first: `exit` runs no
        // destructor, and the PID file would stay.
        drop(daemon);
        exit(1);
    }
    // Threads are fine from here on: the daemon is made.
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let mut buf = [0; 512];
            while let Ok(n @ 1..) = client.read(&mut buf) {
                let _ = client.write_all(&buf[..n]);
            }
        }
    });
    let signal = stop.wait(None);
    println!("stopping on signal {signal:?}");
    // Dropping the handle removes the PID file.
    drop(daemon);
}
