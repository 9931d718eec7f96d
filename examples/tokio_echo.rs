//! `tokio_echo PIDFILE PORTFILE`: an echo server on tokio, daemonized the
//! right way round: daemonize first, then build the runtime.
//!
//! An async runtime started before the fork does not survive it: its worker
//! threads stay behind in the caller (`fork` copies only the calling
//! thread), and the daemon closes the runtime's epoll and event fds with
//! every other inherited fd. So the daemon builds its runtime itself, once
//! `daemonize` has returned in it; `#[tokio::main]` would build it too early.
//!
//! It binds 127.0.0.1 on a port the system picks, writes the port to
//! PORTFILE, then reports ready: the caller exits only once clients can
//! connect. SIGTERM or SIGINT stop it; its PID file goes with it.

use std::process::exit;

use daemonic::{Daemonize, Readiness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, pid_file, port_file] = args.as_slice() else {
        eprintln!("usage: tokio_echo PIDFILE PORTFILE");
        exit(2);
    };
    // 1. Daemonize, with no runtime yet: one thread, nothing to lose.
    let mut daemon = Daemonize::new()
        .pid_file(pid_file)
        .readiness(Readiness::Manual)
        .daemonize()
        .unwrap_or_else(|error| {
            eprintln!("tokio_echo: {error}");
            exit(1)
        });
    // 2. Stop signals blocked before any runtime thread exists: threads
    //    inherit the mask, so SIGTERM waits for us on this thread.
    let stop = match daemon.block_stop_signals() {
        Ok(stop) => stop,
        Err(errno) => daemon.fail_at("block SIGTERM", errno),
    };
    // 3. The runtime, in the daemon.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_io()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => daemon.fail_at("build the tokio runtime", errno_of(&error)),
    };
    let listener = match runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")) {
        Ok(listener) => listener,
        Err(error) => daemon.fail_at("bind 127.0.0.1:0", errno_of(&error)),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    if let Err(error) = std::fs::write(port_file, format!("{port}\n")) {
        daemon.fail_at("write the port file", errno_of(&error));
    }
    // 4. Ready: the caller of `daemonize` exits 0 now.
    if daemon.ready().is_err() {
        drop(daemon);
        exit(1);
    }
    runtime.spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = socket.read(&mut buf).await {
                    if socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    // 5. Serve until asked to stop, then shut the runtime down and drop
    //    the handle (which removes the PID file).
    stop.wait(None);
    runtime.shutdown_background();
    drop(daemon);
}

fn errno_of(error: &std::io::Error) -> daemonic::Errno {
    daemonic::Errno::from_io_error(error).unwrap_or(daemonic::Errno::IO)
}
