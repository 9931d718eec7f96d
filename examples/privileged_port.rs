//! `privileged_port PORT PIDFILE PORTFILE`: binds 127.0.0.1:PORT as root
//! (80, say, which only root may bind), then daemonizes as `nobody`,
//! keeping the listening socket: the daemon serves on the privileged port
//! without the privilege. PORT 0 lets the system pick one; the port bound
//! is written to PORTFILE. It answers each connection with its user id.
//!
//! The socket is bound before the start and handed over with `keep_fd`:
//! every other inherited fd is closed, and the daemon, which is the same
//! program, goes on using the `TcpListener` it already has.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::process::exit;

use daemonic::{Daemonize, Readiness};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, port, pid_file, port_file] = args.as_slice() else {
        eprintln!("usage: privileged_port PORT PIDFILE PORTFILE");
        exit(2);
    };
    // Bound while still root.
    let listener =
        TcpListener::bind(("127.0.0.1", port.parse().unwrap_or(0))).unwrap_or_else(|error| {
            eprintln!("privileged_port: bind 127.0.0.1:{port}: {error}");
            exit(1)
        });
    let bound = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    // Written by the caller, still root: nobody could not write here.
    if let Err(error) = std::fs::write(port_file, format!("{bound}\n")) {
        eprintln!("privileged_port: {port_file}: {error}");
        exit(1);
    }
    let mut daemon = Daemonize::new()
        .pid_file(pid_file)
        .keep_fds([listener.as_raw_fd()])
        .user("nobody")
        .readiness(Readiness::Manual)
        .daemonize()
        .unwrap_or_else(|error| {
            eprintln!("privileged_port: {error}");
            exit(1)
        });
    // As nobody from here; the PID file was written before the switch.
    let _ = daemon.ready();
    for stream in listener.incoming().flatten() {
        let mut stream = stream;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let _ = writeln!(stream, "uid={uid}");
    }
}
