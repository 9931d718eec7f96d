//! The program a supervisor runs, prepared before the first fork: its
//! `execve` arrays, readiness channel, output pipes, `--listen` sockets,
//! restart policy, and the paths it writes, all laid out so that the
//! supervisor's loop (supervise.rs) allocates nothing.

use core::ffi::CStr;
use core::time::Duration;

use daemonic::fd::{OwnedFd, RawFd};
use daemonic::{Errno, Error, Exec, Step};

use crate::childenv::ChildExec;
use crate::ids::Ids;
#[cfg(feature = "logs")]
use crate::logfile;
use crate::program::{self, Notify};
use crate::pump;
use crate::request::{DEFAULT_WAIT, Start};
use crate::sigconf::{self, Inherited};
use crate::sys;
use crate::watchdog;

/// The longest delay between restarts, unless `--restart=DELAY:MAX` says.
pub const RESTART_CAP: Duration = Duration::from_secs(60);

/// The program to run and how, prepared before the first fork.
pub struct Program {
    pub exec: Exec<'static>,
    pub child_pid_file: Option<&'static CStr>,
    pub readiness: Channel,
    pub wait: Duration,
    pub restart: Option<Duration>,
    /// The longest restart delay.
    pub restart_cap: Duration,
    /// At most this many starts within this long (`--start-limit`; 0:
    /// never give up).
    pub start_limit: (u32, Duration),
    /// What a stop request sends the program's tree (`--stop-signal`).
    pub stop_signal: i32,
    /// Program statuses that count as 0 (`--success-exit`).
    pub success_exits: [u64; 4],
    /// `--foreground`: no caller hears a failure; the supervisor says it.
    pub foreground: bool,
    /// The program as given (`argv[0]`), for messages.
    pub name: &'static CStr,
    /// With `--foreground`: the signals the caller ignored and blocked,
    /// which the program gets back (see sigconf.rs).
    pub inherited: Option<Inherited>,
    /// The terminal's foreground process group when the supervisor took
    /// the terminal over (it was the foreground group of its controlling
    /// terminal on fd 0): each run of the program is made the foreground
    /// group, and the terminal goes back to this group when it exits.
    pub terminal: core::cell::Cell<Option<i32>>,
    /// How long a stopping program (and what it started) gets before
    /// SIGKILL.
    pub grace: Duration,
    /// The supervisor's PID, which the program checks after asking for its
    /// parent-death signal.
    pub supervisor: core::cell::Cell<i32>,
    /// The fd holding the PID file's lock (-1: none), which the program
    /// inherits: should it outlive the supervisor (a set-uid program loses
    /// its parent-death signal at exec), the lock stays held, a second
    /// start fails, and `--stop` finds it (see inspect.rs).
    pub lock: core::cell::Cell<RawFd>,
    /// `--watchdog`: how often the program must say `WATCHDOG=1`.
    pub watchdog: Option<Duration>,
    /// The program's `execve` arrays with slots for `WATCHDOG_PID` and
    /// `LISTEN_PID` (its own PID), when it has either.
    pub child_exec: Option<ChildExec>,
    /// `--listen`'s sockets, the supervisor's for its life; each run gets
    /// them at fds 3, 4, ...
    pub listen: &'static [RawFd],
    /// `--runtime-dir NAME`: removed (or, as `-u`'s user, emptied) at exit.
    #[cfg(feature = "harden")]
    pub runtime_dir: Option<&'static CStr>,
    /// `--rotate`, `--timestamps`, `--syslog`: the pipes the program's
    /// output goes into (one, or with `--syslog-stderr` one per stream).
    pub outputs: [Option<OutputPipe>; 2],
}

/// A pipe the program's output goes into, when the supervisor carries it.
pub struct OutputPipe {
    pub dest: pump::Dest,
    /// Non-blocking: the supervisor's loop reads what is there.
    pub read: OwnedFd,
    /// The program's fd 1 and/or 2; the supervisor keeps it open, so that
    /// a restarted program writes into the same pipe.
    pub write: OwnedFd,
    pub stdout: bool,
    pub stderr: bool,
}

/// How the first run of the program says it is ready.
pub enum Channel {
    /// As soon as it is executed.
    None,
    /// `READY=1` on this bound socket, in this private directory.
    Socket {
        socket: OwnedFd,
        dir: &'static CStr,
        path: &'static CStr,
    },
    /// A newline on fd N (a pipe is made for each run).
    Fd(RawFd),
}

/// Why the program could not be prepared.
pub enum Prepare {
    /// `--listen ADDR` could not be bound.
    #[cfg(feature = "harden")]
    Listen(&'static CStr, Errno),
    /// Not found, or no memory: said as a start would.
    Unfit(program::Unfit),
    /// The notification socket or the child PID file's path.
    Failed(Error),
}

impl Program {
    /// Out of line: only the start runs it, and build.rs links it with what
    /// PID 1 alone runs (PID1_START), outside a detached supervisor's pages.
    #[inline(never)]
    pub fn prepare(start: &mut Start, ids: &Ids) -> Result<Program, Prepare> {
        let failed = |step| move |errno| Prepare::Failed(Error::Os { step, errno });
        let mut pid_vars: [&[u8]; 2] = [b"", b""];
        let mut pid_var_count = 0;
        if let Some(period) = start.watchdog {
            let entry = watchdog::usec_entry(period).map_err(failed(Step::Readiness))?;
            start.prepend_env(entry).map_err(failed(Step::Readiness))?;
            pid_vars[pid_var_count] = b"WATCHDOG_PID=";
            pid_var_count += 1;
        }
        #[cfg(feature = "harden")]
        let listen = listen_sockets(start, ids)?;
        #[cfg(not(feature = "harden"))]
        let listen: &'static [RawFd] = &[];
        if !listen.is_empty() {
            pid_vars[pid_var_count] = b"LISTEN_PID=";
            pid_var_count += 1;
        }
        let (readiness, notify) = match (start.ready_fd, start.wait_ready) {
            (Some(fd), _) => (Channel::Fd(fd), Notify::Remove),
            (None, Some(_)) => {
                let owner = ids.owner();
                let (dir, path) = program::private_dir(owner).map_err(failed(Step::Readiness))?;
                let socket = bind(path, owner).map_err(|errno| {
                    program::remove_private_dir(dir, path);
                    failed(Step::Readiness)(errno)
                })?;
                let entry = sys::c_string(&[b"NOTIFY_SOCKET=", path.to_bytes()])
                    .map_err(failed(Step::Readiness))?;
                (Channel::Socket { socket, dir, path }, Notify::Set(entry))
            }
            // The supervisor is the service's main process and tells a
            // NOTIFY_SOCKET itself; the program must not answer for it.
            (None, None) => (Channel::None, Notify::Remove),
        };
        let (exec, env) = program::prepare_with_env(start, notify).map_err(Prepare::Unfit)?;
        let child_exec = match pid_var_count {
            0 => None,
            count => Some(
                ChildExec::prepare(exec.program, start.program, env, &pid_vars[..count])
                    .map_err(|errno| Prepare::Unfit(errno.into()))?,
            ),
        };
        let program = Program {
            exec,
            watchdog: start.watchdog,
            child_exec,
            listen,
            child_pid_file: None,
            readiness,
            wait: start.wait_ready.unwrap_or(DEFAULT_WAIT),
            restart: start.restart,
            restart_cap: start.restart_cap.unwrap_or(RESTART_CAP),
            start_limit: start.start_limit,
            stop_signal: start.stop_signal,
            success_exits: start.success_exits,
            foreground: start.foreground,
            name: start.program[0],
            // Read before the library resets the signals (in place, with
            // --foreground).
            inherited: start.foreground.then(sigconf::record),
            terminal: core::cell::Cell::new(None),
            grace: start.stop_timeout,
            supervisor: core::cell::Cell::new(0),
            lock: core::cell::Cell::new(-1),
            #[cfg(feature = "harden")]
            runtime_dir: start.runtime_dir,
            outputs: [None, None],
        };
        let outputs = match output_pipes(start) {
            Ok(outputs) => outputs,
            Err(errno) => {
                program.remove_private_dir();
                return Err(failed(Step::RedirectStdout)(errno));
            }
        };
        let child_pid_file = match start.child_pid_file {
            Some(path) => Some(absolute(path).map_err(|errno| {
                program.remove_private_dir();
                failed(Step::Prepare)(errno)
            })?),
            None => None,
        };
        Ok(Program {
            child_pid_file,
            outputs,
            ..program
        })
    }

    /// `--foreground`: PID 1's supervisor. Only the `pid1` build has one
    /// (the parser refuses it elsewhere); there the constant `false` takes
    /// the terminal and signal code out of the binary.
    pub fn foreground(&self) -> bool {
        cfg!(feature = "pid1") && self.foreground
    }

    /// The group the terminal goes back to (PID 1's build only).
    pub fn terminal(&self) -> Option<i32> {
        self.terminal.get().filter(|_| cfg!(feature = "pid1"))
    }

    /// The caller's signal configuration for the program (PID 1's build
    /// only).
    pub fn inherited(&self) -> Option<&Inherited> {
        self.inherited.as_ref().filter(|_| cfg!(feature = "pid1"))
    }

    pub fn remove_private_dir(&self) {
        if let Channel::Socket { dir, path, .. } = &self.readiness {
            program::remove_private_dir(dir, path);
        }
    }
}

/// The output pipes: the supervisor carries the program's output to a
/// regular output file (so that a full disk or a deleted file loses
/// nothing, see pump.rs) and to syslog. A device or FIFO named as output
/// (a console, a terminal) stays the program's own, unless `--rotate` or
/// `--timestamps` (which refuse one) or `--syslog` ask for the pump.
#[cfg(feature = "logs")]
#[inline(never)]
fn output_pipes(start: &Start) -> Result<[Option<OutputPipe>; 2], Errno> {
    let output = |dest, stdout, stderr| -> Result<Option<OutputPipe>, Errno> {
        let (read, write) = sys::pipe()?;
        rustix::fs::fcntl_setfl(&read, rustix::fs::OFlags::NONBLOCK)?;
        Ok(Some(OutputPipe {
            dest,
            read,
            write,
            stdout,
            stderr,
        }))
    };
    let carried = |path: Option<&'static CStr>| {
        path.filter(|path| {
            start.rotate.is_some()
                || start.timestamps
                || start.syslog.is_some()
                || regular_or_new(path)
        })
    };
    let file = |path: Option<&'static CStr>,
                stdout: bool,
                stderr: bool|
     -> Result<Option<logfile::Config>, Errno> {
        let Some(path) = path else {
            return Ok(None);
        };
        Ok(Some(logfile::Config {
            path: absolute(path)?,
            rotate: start.rotate,
            timestamps: start.timestamps,
            stdout,
            stderr,
        }))
    };
    let (out_file, err_file) = (carried(start.stdout), carried(start.stderr));
    // One file for both streams, or one each.
    let (out_file, err_file) = match (out_file, err_file) {
        (Some(a), Some(b)) if a == b => (file(Some(a), true, true)?, None),
        (a, b) => (file(a, true, false)?, file(b, false, true)?),
    };
    let program = start.program[0].to_bytes();
    let name = program.rsplit(|&b| b == b'/').next().unwrap_or(program);
    let syslog = |priority| crate::syslog::Config {
        socket: start.syslog_socket.unwrap_or(c"/dev/log"),
        tag: start.syslog_tag.unwrap_or(name),
        priority,
    };
    let main = start.syslog.map(syslog);
    // Standard error apart: at a syslog severity of its own, or to a file
    // of its own.
    let err_syslog = start.syslog_stderr.map(syslog);
    // One pipe when both streams go to the same places.
    let one_pipe =
        err_syslog.is_none() && err_file.is_none() && out_file.as_ref().is_none_or(|f| f.stderr);
    let first = pump::Dest {
        file: out_file,
        syslog: main,
    };
    let second = pump::Dest {
        file: err_file,
        syslog: err_syslog.or(main),
    };
    let wanted = |dest: &pump::Dest| dest.file.is_some() || dest.syslog.is_some();
    let pipe_for = |dest: pump::Dest, stdout, stderr| match wanted(&dest) {
        true => output(dest, stdout, stderr),
        false => Ok(None),
    };
    Ok(if one_pipe {
        [pipe_for(first, true, true)?, None]
    } else {
        [
            pipe_for(first, true, false)?,
            pipe_for(second, false, true)?,
        ]
    })
}

/// Built without `logs`, the program writes its files itself.
#[cfg(not(feature = "logs"))]
fn output_pipes(_: &Start) -> Result<[Option<OutputPipe>; 2], Errno> {
    Ok([None, None])
}

/// `--listen`'s sockets (listen::bind_all), kept across the library's fd
/// closing; `LISTEN_FDS` and `LISTEN_FDNAMES` for the program.
#[cfg(feature = "harden")]
fn listen_sockets(start: &mut Start, ids: &Ids) -> Result<&'static [RawFd], Prepare> {
    if start.listens().is_empty() {
        return Ok(&[]);
    }
    let bound = crate::listen::bind_all(start.listens(), ids.owner())
        .map_err(|(address, errno)| Prepare::Listen(address, errno))?;
    let failed = |errno| {
        Prepare::Failed(Error::Os {
            step: Step::Prepare,
            errno,
        })
    };
    start.prepend_env(bound.fds_entry).map_err(failed)?;
    start.prepend_env(bound.names_entry).map_err(failed)?;
    for &fd in bound.fds.iter() {
        start.keep_fds[start.kept] = fd;
        start.kept += 1;
    }
    Ok(bound.fds)
}

/// Whether `path` is a regular file, or none yet (it is created as one).
#[cfg(feature = "logs")]
fn regular_or_new(path: &CStr) -> bool {
    match rustix::fs::stat(path) {
        Ok(stat) => {
            rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile
        }
        Err(_) => true,
    }
}

/// An `AF_UNIX` datagram socket bound at `path`, close-on-exec.
/// Owned by `owner` (the program's user, who must be able to write to it).
fn bind(path: &CStr, owner: Option<(u32, u32)>) -> Result<OwnedFd, Errno> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::bind(&socket, &SocketAddrUnix::new(path)?)?;
    sys::give_to(path, owner)?;
    Ok(socket)
}

/// `path` against the working directory, for a file the supervisor writes
/// after its `chdir`. Out of line: its buffer is not to stay on the
/// supervisor's stack (see `parse` in main.rs).
#[inline(never)]
fn absolute(path: &'static CStr) -> Result<&'static CStr, Errno> {
    if path.to_bytes().starts_with(b"/") {
        return Ok(path);
    }
    let mut cwd = [0u8; 4096];
    // The system call itself (it returns the length, NUL included): the C
    // library's getcwd carries a malloc path for a null buffer.
    // SAFETY: getcwd writes at most `cwd.len()` bytes into our buffer.
    let len = sys::check(unsafe { libc::syscall(libc::SYS_getcwd, cwd.as_mut_ptr(), cwd.len()) })?
        as usize;
    let len = len.saturating_sub(1);
    sys::c_string(&[&cwd[..len], b"/", path.to_bytes()])
}
