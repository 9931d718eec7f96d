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
    let stop_signals = block_stop_signals();
    if daemon.ready().is_err() {
        // The caller is gone: nobody wants this daemon. Drop the handle
        // first, as `exit` runs no destructor and the PID file would stay.
        drop(daemon);
        exit(1);
    }
    wait_for_signal(&stop_signals, Duration::from_secs(seconds));
    // Dropping the handle removes the PID file.
    drop(daemon);
}

fn usage() -> ! {
    eprintln!("usage: sleeper PIDFILE SECONDS");
    exit(2)
}

/// Blocks SIGTERM and SIGINT so that they wait for `sigtimedwait`.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset and
    // pthread_sigmask read it once it is initialised.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of `signals` or for `duration`, whichever comes first.
fn wait_for_signal(signals: &libc::sigset_t, duration: Duration) {
    let timeout = libc::timespec {
        tv_sec: duration.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        tv_nsec: 0,
    };
    loop {
        // SAFETY: `signals` is an initialised set and `timeout` a valid
        // timespec; a null info pointer is allowed.
        let signal = unsafe { libc::sigtimedwait(signals, std::ptr::null_mut(), &timeout) };
        let interrupted =
            signal == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
        if !interrupted {
            return;
        }
    }
}
