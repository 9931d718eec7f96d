//! `--supervise`: daemonic stays as the program's parent. It holds the PID
//! file (with its own PID) and its lock, writes the program's PID to
//! `--child-pidfile`, forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2,
//! restarts the program after an abnormal exit with `--restart`, and
//! removes its PID files when it ends.
//!
//! Everything the loop needs (argv, envp, paths, the readiness channel) is
//! prepared before the first fork; the loop itself allocates nothing:
//! signals arrive on a `signalfd`, children are reaped with `waitpid`, the
//! restart delay is a `poll` timeout, messages are built in stack buffers.

use core::ffi::CStr;
use core::time::Duration;

use daemonic::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use daemonic::{Daemon, Errno, Error, Exec, ExitStatus, Readiness, Started, Step};

use crate::args::{DEFAULT_WAIT, Start};
use crate::childenv::ChildExec;
use crate::ids::Ids;
#[cfg(feature = "logs")]
use crate::logfile;
use crate::out::Line;
use crate::program::{self, Notify};
use crate::pump::{self, Pump};
use crate::sigconf::{self, Inherited};
use crate::watchdog::{self, Ping};
use crate::{exit, outcome, startplan, sys, tree};
use daemonic::decimal::Decimal;

/// The longest delay between restarts.
const RESTART_CAP: Duration = Duration::from_secs(60);
/// A program that ran this long before it failed starts the delays over.
const STABLE_RUN: Duration = Duration::from_secs(10);
/// The signals the supervisor does not forward: SIGCHLD (its own), the
/// synchronous ones (a fault of the supervisor itself, which must end it),
/// the terminal stops (as tini leaves them), and the two that cannot be
/// caught. Every other signal, realtime ones included, is forwarded, as
/// a PID 1 must (tini, dumb-init).
const NOT_FORWARDED: [i32; 11] = [
    libc::SIGCHLD,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGKILL,
];

/// Whether the supervisor forwards `signal` (SIGSTOP cannot be caught;
/// the C library's reserved ones cannot be blocked: both stay out of the
/// set whatever this says).
fn forwarded(signal: i32) -> bool {
    signal != libc::SIGSTOP && !NOT_FORWARDED.contains(&signal)
}

/// The program to run and how, prepared before the first fork.
struct Program {
    exec: Exec<'static>,
    child_pid_file: Option<&'static CStr>,
    readiness: Channel,
    wait: Duration,
    restart: Option<Duration>,
    /// The longest restart delay.
    restart_cap: Duration,
    /// At most this many starts within this long (`--start-limit`; 0:
    /// never give up).
    start_limit: (u32, Duration),
    /// What a stop request sends the program's tree (`--stop-signal`).
    stop_signal: i32,
    /// Program statuses that count as 0 (`--success-exit`).
    success_exits: [u64; 4],
    /// `--foreground`: no caller hears a failure; the supervisor says it.
    foreground: bool,
    /// The program as given (`argv[0]`), for messages.
    name: &'static CStr,
    /// With `--foreground`: the signals the caller ignored and blocked,
    /// which the program gets back (see sigconf.rs).
    inherited: Option<Inherited>,
    /// The terminal's foreground process group when the supervisor took
    /// the terminal over (it was the foreground group of its controlling
    /// terminal on fd 0): each run of the program is made the foreground
    /// group, and the terminal goes back to this group when it exits.
    terminal: core::cell::Cell<Option<i32>>,
    /// How long a stopping program (and what it started) gets before
    /// SIGKILL.
    grace: Duration,
    /// The supervisor's PID, which the program checks after asking for its
    /// parent-death signal.
    supervisor: core::cell::Cell<i32>,
    /// The fd holding the PID file's lock (-1: none), which the program
    /// inherits: should it outlive the supervisor (a set-uid program loses
    /// its parent-death signal at exec), the lock stays held, a second
    /// start fails, and `--stop` finds it (see inspect.rs).
    lock: core::cell::Cell<RawFd>,
    /// `--watchdog`: how often the program must say `WATCHDOG=1`.
    watchdog: Option<Duration>,
    /// The program's `execve` arrays with slots for `WATCHDOG_PID` and
    /// `LISTEN_PID` (its own PID), when it has either.
    child_exec: Option<ChildExec>,
    /// `--listen`'s sockets, the supervisor's for its life; each run gets
    /// them at fds 3, 4, ...
    listen: &'static [RawFd],
    /// `--runtime-dir NAME`: removed (or, as `-u`'s user, emptied) at exit.
    #[cfg(feature = "harden")]
    runtime_dir: Option<&'static CStr>,
    /// `--rotate`, `--timestamps`, `--syslog`: the pipes the program's
    /// output goes into (one, or with `--syslog-stderr` one per stream).
    outputs: [Option<OutputPipe>; 2],
}

/// A pipe the program's output goes into, when the supervisor carries it.
struct OutputPipe {
    dest: pump::Dest,
    /// Non-blocking: the supervisor's loop reads what is there.
    read: OwnedFd,
    /// The program's fd 1 and/or 2; the supervisor keeps it open, so that
    /// a restarted program writes into the same pipe.
    write: OwnedFd,
    stdout: bool,
    stderr: bool,
}

/// How the first run of the program says it is ready.
enum Channel {
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

#[inline(never)]
pub fn run(start: &mut Start, ids: &Ids) -> i32 {
    let program = match Program::prepare(start, ids) {
        Ok(program) => program,
        Err(Prepare::Unfit(unfit)) => return outcome::unfit_program(unfit, start),
        Err(Prepare::Failed(error)) => return outcome::report(&error),
        #[cfg(feature = "harden")]
        Err(Prepare::Listen(address, errno)) => return crate::listen::cannot(address, errno),
    };
    if let Channel::Socket { socket, .. } = &program.readiness {
        start.keep_fds[start.kept] = socket.as_raw_fd();
        start.kept += 1;
    }
    for output in program.outputs.iter().flatten() {
        for fd in [output.read.as_raw_fd(), output.write.as_raw_fd()] {
            start.keep_fds[start.kept] = fd;
            start.kept += 1;
        }
    }
    let mut plan = startplan::plan(start, ids)
        .readiness(Readiness::Manual)
        // The supervisor's own wait ends first, with the precise error.
        .ready_timeout(Some(program.wait + Duration::from_secs(5)));
    // The supervisor is the service's main process: it tells systemd.
    if let Some(socket) = sys::getenv(c"NOTIFY_SOCKET") {
        plan = plan.notify_socket(socket);
    }
    // The supervisor stays for months: it should not hold the pages this
    // process used so far, deeper than its own loop ever goes.
    sys::forget_dead_stack();
    match plan.start() {
        Ok(Started::Parent(_)) => {
            // The socket's path stays while the program pings its
            // watchdog: the supervisor removes it at exit.
            if program.watchdog.is_none() {
                program.remove_private_dir();
            }
            exit::STARTED
        }
        Ok(Started::Daemon(daemon)) => supervise(daemon, &program),
        Err(error) => {
            program.remove_private_dir();
            outcome::refused(&error, &plan, start)
        }
    }
}

/// Why the program could not be prepared.
enum Prepare {
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
    fn prepare(start: &mut Start, ids: &Ids) -> Result<Program, Prepare> {
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
    fn foreground(&self) -> bool {
        cfg!(feature = "pid1") && self.foreground
    }

    /// The group the terminal goes back to (PID 1's build only).
    fn terminal(&self) -> Option<i32> {
        self.terminal.get().filter(|_| cfg!(feature = "pid1"))
    }

    /// The caller's signal configuration for the program (PID 1's build
    /// only).
    fn inherited(&self) -> Option<&Inherited> {
        self.inherited.as_ref().filter(|_| cfg!(feature = "pid1"))
    }

    fn remove_private_dir(&self) {
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
        let (read, write) = pipe()?;
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

/// The supervisor's life, in the daemon. Never returns.
fn supervise(mut daemon: Daemon<'_>, program: &Program) -> ! {
    program.supervisor.set(daemon.pid().as_raw_pid());
    // A supervisor run as a background job must not be stopped by the
    // terminal (tini ignores them too); the program gets them back.
    // SAFETY: setting dispositions to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGTTIN, libc::SIG_IGN);
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
    }
    if program.foreground() {
        program.terminal.set(terminal_foreground());
    }
    if let Some(lock) = daemon.pid_file_lock() {
        program.lock.set(lock.as_raw_fd());
    }
    // What the program backgrounds stays ours to reap and to stop. Where
    // the system refuses (Linux before 3.4, qemu-user), the supervisor still
    // stops the program's process group, and says what it cannot do.
    if let Err(errno) = tree::become_subreaper() {
        say(
            &mut None,
            b"cannot become a child subreaper (os error ",
            errno.raw_os_error().into(),
            b"): processes the program backgrounds outside its group are not stopped with it",
        );
    }
    let signals = match SignalFd::new() {
        Ok(signals) => signals,
        Err(errno) => daemon.fail_with(Error::Os {
            step: Step::Initialization,
            errno,
        }),
    };
    // The first run decides what the caller hears.
    let mut child = match spawn(program) {
        Ok(child) => child,
        // No caller to tell: say it, with a shell's status.
        Err(errno) if program.foreground() => {
            give_back_terminal(program);
            outcome::exec_failed(program.name, errno)
        }
        Err(errno) => daemon.fail_with(Error::Os {
            step: Step::Exec,
            errno,
        }),
    };
    let mut pump = None;
    if program.outputs.iter().any(Option::is_some) {
        let [first, second] = &program.outputs;
        let source =
            |output: &Option<OutputPipe>| output.as_ref().map(|o| (o.read.as_raw_fd(), o.dest));
        match Pump::new([source(first), source(second)]) {
            Ok(made) => pump = Some(made),
            Err(errno) => {
                tree::kill_all(child.pid);
                remove_child_pid_file(program);
                daemon.fail_with(Error::Os {
                    step: Step::Initialization,
                    errno,
                });
            }
        }
    }
    if let Some(pump) = pump.as_mut() {
        pump.set_pid(child.pid);
    }
    if let Err(error) = await_first_ready(program, &signals, &mut child, &mut pump) {
        // The whole tree: a program that forked before failing leaves
        // nothing behind holding anything.
        tree::kill_all(child.pid);
        remove_child_pid_file(program);
        daemon.fail_with(error);
    }
    if daemon.ready().is_err() {
        // The caller is gone; carry on: the program runs.
    }
    let mut supervision = Loop::new(program, child, &signals, pump);
    let status = supervision.run();
    if let Some(pump) = supervision.pump.as_mut() {
        // A stalled file gets up to the grace to take what it holds.
        pump.finish(sys::now() + program.grace);
    }
    remove_child_pid_file(program);
    // As -u's user the directory can be emptied, not removed from /run:
    // `--stop --runtime-dir` does that as root. Nobody to tell either way.
    #[cfg(feature = "harden")]
    if let Some(name) = program.runtime_dir {
        let _ = crate::rundir::remove(name);
    }
    drop(daemon);
    program.remove_private_dir();
    // SAFETY: ends this process; nothing is buffered.
    unsafe { libc::_exit(status) }
}

/// The terminal's foreground process group, if daemonic's own group is it
/// on the controlling terminal at fd 0: only then is the terminal ours to
/// hand over (a background job must not take it from its shell).
fn terminal_foreground() -> Option<i32> {
    // SAFETY: plain calls on fd 0; each fails harmlessly if it is no
    // terminal or not ours.
    unsafe {
        if libc::isatty(0) != 1 {
            return None;
        }
        let foreground = libc::tcgetpgrp(0);
        (foreground > 0 && foreground == libc::getpgrp()).then_some(foreground)
    }
}

/// Gives the terminal back to the group that had it before the program.
fn give_back_terminal(program: &Program) {
    if let Some(original) = program.terminal() {
        // SAFETY: an ioctl on fd 0 with a process group number; SIGTTOU is
        // ignored, so a background caller is not stopped.
        unsafe { libc::tcsetpgrp(0, original) };
    }
}

/// A running program.
struct Child {
    pid: i32,
    /// When it started (monotonic).
    started: Duration,
    /// The read end of its readiness pipe (`--ready-fd`), first run only.
    ready_pipe: Option<OwnedFd>,
}

/// Forks and executes the program; the exec's failure comes back through a
/// close-on-exec pipe. Writes the child PID file.
fn spawn(program: &Program) -> Result<Child, Errno> {
    let (exec_read, exec_write) = pipe()?;
    let ready = match program.readiness {
        Channel::Fd(_) => Some(pipe()?),
        _ => None,
    };
    // SAFETY: the child makes only async-signal-safe calls on memory
    // prepared before the fork (this process is single-threaded anyway).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys::errno());
    }
    if pid == 0 {
        exec_child(program, &exec_write, ready.as_ref().map(|(_, w)| w));
    }
    // The child does the same; whichever runs first, the group exists before
    // anything signals it. EACCES once the child has executed: done by then.
    // SAFETY: setpgid on our own child.
    unsafe { libc::setpgid(pid, pid) };
    drop(exec_write);
    let mut errno = [0u8; 4];
    // SAFETY: reads at most 4 bytes into our buffer.
    let got = unsafe { libc::read(exec_read.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
    if got == 4 {
        reap(pid);
        return Err(Errno::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    write_child_pid_file(program, pid);
    Ok(Child {
        pid,
        started: sys::now(),
        ready_pipe: ready.map(|(read, _)| read),
    })
}

/// In the forked child: default signals, readiness fd in place, `execve`;
/// on failure the errno goes back through the pipe.
fn exec_child(program: &Program, exec_write: &OwnedFd, ready_write: Option<&OwnedFd>) -> ! {
    // SAFETY: plain system calls on valid fds and prepared, null-terminated
    // vectors; `_exit` ends the child whatever happens.
    unsafe {
        if !tree::detach_program(program.supervisor.get()) {
            libc::_exit(127);
        }
        // The program's group takes the terminal, as a shell gives a job
        // the terminal (SIGTTOU is ignored here, so the call from what is
        // still a background group goes through); else `tac`, `bash -m`
        // or an interactive shell stop themselves on their first read.
        if let Some(_original) = program.terminal() {
            libc::tcsetpgrp(0, libc::getpid());
        }
        // What the supervisor ignores for itself, the program gets at its
        // default; then, as a container's entry point, what the caller had.
        for signal in [libc::SIGPIPE, libc::SIGTTIN, libc::SIGTTOU] {
            libc::signal(signal, libc::SIG_DFL);
        }
        match program.inherited() {
            Some(inherited) => inherited.restore(),
            None => {
                let mut empty: libc::sigset_t = core::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, core::ptr::null_mut());
            }
        }
        // --listen's sockets go to fds 3, 4, ...: what of ours sits there
        // in this child moves above them first (the sockets themselves sit
        // above, see Program::prepare; what else is there is close-on-exec
        // and not the program's).
        let top = 3 + program.listen.len() as i32;
        let above = |fd: i32, command: i32| match (3..top).contains(&fd) {
            true => libc::fcntl(fd, command, top),
            false => fd,
        };
        let exec_write = above(exec_write.as_raw_fd(), libc::F_DUPFD_CLOEXEC);
        let ready_write = ready_write.map(|w| above(w.as_raw_fd(), libc::F_DUPFD_CLOEXEC));
        let lock = match program.lock.get() {
            fd if fd >= 0 => above(fd, libc::F_DUPFD),
            none => none,
        };
        if lock >= 0 {
            // In this child only: the supervisor's own fd stays close-on-exec.
            libc::fcntl(lock, libc::F_SETFD, 0);
        }
        for output in program.outputs.iter().flatten() {
            let write = output.write.as_raw_fd();
            if output.stdout {
                libc::dup2(write, 1);
            }
            if output.stderr {
                libc::dup2(write, 2);
            }
        }
        if let (Channel::Fd(target), Some(write)) = (&program.readiness, ready_write) {
            if write == *target {
                libc::fcntl(*target, libc::F_SETFD, 0);
            } else {
                libc::dup2(write, *target);
            }
        }
        // The copies dup2 makes are not close-on-exec.
        for (at, &socket) in program.listen.iter().enumerate() {
            libc::dup2(socket, 3 + at as i32);
        }
        let errno = match &program.child_exec {
            Some(child_exec) => child_exec.execute(),
            None => program.exec.execute(),
        };
        let errno = errno.raw_os_error().to_ne_bytes();
        libc::write(exec_write, errno.as_ptr().cast(), 4);
        libc::_exit(127)
    }
}

/// Waits for the first run's readiness: ready, or the error for the caller.
/// Out of line, as [`absolute`].
#[inline(never)]
fn await_first_ready(
    program: &Program,
    signals: &SignalFd,
    child: &mut Child,
    pump: &mut Option<Pump>,
) -> Result<(), Error> {
    let channel = match (&program.readiness, &child.ready_pipe) {
        (Channel::None, _) | (Channel::Fd(_), None) => return Ok(()),
        (Channel::Socket { socket, .. }, _) => socket.as_raw_fd(),
        (Channel::Fd(_), Some(pipe)) => pipe.as_raw_fd(),
    };
    let deadline = sys::now() + program.wait;
    loop {
        let left = sys::millis_until(deadline);
        if left == 0 {
            return Err(Error::Os {
                step: Step::Readiness,
                errno: Errno::TIMEDOUT,
            });
        }
        // A closed channel (-1) is skipped by poll; so is a stalled file's
        // pipe, tried again after a while.
        let [outputs0, outputs1] = pump.as_ref().map_or([-1, -1], Pump::fds);
        let retry_at = pump.as_ref().and_then(Pump::retry_at);
        let wait = retry_at.map_or(left, |at| sys::millis_until(at).min(left));
        let ready = sys::readable([signals.fd.as_raw_fd(), channel, outputs0, outputs1], wait);
        let retry_due = retry_at.is_some_and(|at| sys::now() >= at);
        if let (Some(pump), true) = (pump.as_mut(), ready[2] || ready[3] || retry_due) {
            pump.drain(false);
        }
        if ready[0] {
            match signals.next() {
                Some(libc::SIGCHLD) => {
                    tree::reap_others(child.pid);
                    // Left a zombie: the caller kills its group, then reaps.
                    if let Some(status) = tree::exited(child.pid) {
                        return Err(exited(child.pid, status));
                    }
                }
                Some(signal) => forward(child.pid, signal),
                None => {}
            }
        }
        if channel < 0 || !ready[1] {
            continue;
        }
        match hear(&program.readiness, channel) {
            Heard::Nothing => {}
            Heard::Ready => return Ok(()),
            Heard::Failed(errno) => {
                return Err(Error::Os {
                    step: Step::Initialization,
                    errno,
                });
            }
            Heard::Closed => {
                // Closed without a newline: it never will be ready. Its exit
                // status says more, if it follows at once.
                sys::sleep(Duration::from_millis(100));
                if let Some(status) = tree::exited(child.pid) {
                    return Err(exited(child.pid, status));
                }
                child.ready_pipe = None;
                return Err(Error::Os {
                    step: Step::Readiness,
                    errno: Errno::PIPE,
                });
            }
        }
    }
}

/// What one read from the readiness channel brought.
enum Heard {
    /// Closed (or unreadable): it will never say more.
    Closed,
    /// Not yet the word.
    Nothing,
    Ready,
    /// `ERRNO=`: the program failed to start.
    Failed(Errno),
}

/// One read from readiness channel `fd`. Out of line: its page-sized
/// buffer is on the stack only while a message is read, not under the
/// supervisor's loop for its life (a frame that size touches its pages as
/// the function is entered).
#[inline(never)]
fn hear(channel: &Channel, fd: RawFd) -> Heard {
    let mut buf = [0u8; 4096];
    // SAFETY: reads into our buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    match usize::try_from(n) {
        Ok(n) if n > 0 => said_ready(channel, &buf[..n.min(buf.len())]),
        _ => Heard::Closed,
    }
}

/// What a readiness message says: ready, failed (`ERRNO=`), or nothing yet.
fn said_ready(channel: &Channel, said: &[u8]) -> Heard {
    let heard = match channel {
        Channel::Fd(_) => said.contains(&b'\n').then_some(Heard::Ready),
        Channel::Socket { .. } => said.split(|&b| b == b'\n').find_map(|line| {
            if line == b"READY=1" {
                return Some(Heard::Ready);
            }
            let errno = line
                .strip_prefix(b"ERRNO=")
                .and_then(|digits| sys::parse_u64(digits, 4095))?;
            Some(Heard::Failed(Errno::from_raw_os_error(errno as i32)))
        }),
        Channel::None => Some(Heard::Ready),
    };
    heard.unwrap_or(Heard::Nothing)
}

/// The error for program `pid` that ended (raw wait status) before it was ready.
fn exited(pid: i32, raw: i32) -> Error {
    let status = if libc::WIFSIGNALED(raw) {
        ExitStatus::Signal(libc::WTERMSIG(raw))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(raw))
    };
    Error::Exited {
        pid: daemonic::Pid::from_raw(pid),
        status,
    }
}

/// The supervision loop after the first run is up.
struct Loop<'p> {
    program: &'p Program,
    signals: &'p SignalFd,
    /// The program's output, when the supervisor writes it.
    pump: Option<Pump>,
    child: Option<Child>,
    stop_requested: bool,
    delay: Duration,
    /// When to restart the program (monotonic).
    restart_at: Option<Duration>,
    /// When a stopping program's tree gets SIGKILL.
    kill_at: Option<Duration>,
    last_status: i32,
    /// The start limit's window: when it began, how many starts since.
    window: (Duration, u32),
    /// `--watchdog`: when the program must have said `WATCHDOG=1` by.
    watchdog_at: Option<Duration>,
    /// The watchdog stopped this run: its end counts as a crash.
    watchdog_fired: bool,
}

impl<'p> Loop<'p> {
    fn new(
        program: &'p Program,
        mut child: Child,
        signals: &'p SignalFd,
        pump: Option<Pump>,
    ) -> Loop<'p> {
        child.ready_pipe = None;
        Loop {
            program,
            pump,
            signals,
            child: Some(child),
            stop_requested: false,
            delay: program.restart.unwrap_or(Duration::ZERO),
            restart_at: None,
            kill_at: None,
            last_status: 0,
            window: (Duration::ZERO, 0),
            watchdog_at: None,
            watchdog_fired: false,
        }
        .started_now()
    }

    /// Records a start, for the start limit.
    fn started_now(mut self) -> Self {
        self.record_start();
        self
    }

    /// Counts a start in the start limit's window, which begins at the
    /// first start after the last window ran out (systemd's rate limit).
    fn record_start(&mut self) {
        let now = sys::now();
        self.window = next_window(self.window, self.program.start_limit.1, now);
        self.watchdog_at = self.program.watchdog.map(|period| now + period);
        self.watchdog_fired = false;
    }

    /// Whether the window already holds as many starts as the limit allows:
    /// one more would exceed it. Never with a limit of 0.
    fn start_limit_hit(&self) -> bool {
        limit_hit(self.window, self.program.start_limit, sys::now())
    }

    /// Runs until the program ends for good; the supervisor's exit status.
    fn run(&mut self) -> i32 {
        let signals = self.signals;
        loop {
            let retry_at = self.pump.as_ref().and_then(Pump::retry_at);
            let timeout = match self
                .restart_at
                .into_iter()
                .chain(self.kill_at)
                .chain(retry_at)
                .chain(self.watchdog_at)
                .min()
            {
                Some(at) => sys::millis_until(at),
                None => -1,
            };
            let [outputs0, outputs1] = self.pump.as_ref().map_or([-1, -1], Pump::fds);
            let pings = match (&self.program.watchdog, &self.program.readiness) {
                (Some(_), Channel::Socket { socket, .. }) => socket.as_raw_fd(),
                _ => -1,
            };
            let ready = sys::readable([signals.fd.as_raw_fd(), outputs0, outputs1, pings], timeout);
            if ready[3] {
                self.heard_ping(pings);
            }
            self.watch();
            let retry_due = retry_at.is_some_and(|at| sys::now() >= at);
            if let (Some(pump), true) = (self.pump.as_mut(), ready[1] || ready[2] || retry_due) {
                pump.drain(false);
            }
            if let Some(at) = self.restart_at {
                if sys::now() >= at {
                    self.restart_at = None;
                    self.restart();
                }
            }
            if let (Some(at), Some(child)) = (self.kill_at, &self.child) {
                if sys::now() >= at {
                    // The grace is over: SIGKILL the program's whole tree.
                    self.kill_at = None;
                    tree::signal(child.pid, libc::SIGKILL);
                }
            }
            if !ready[0] {
                continue;
            }
            while let Some(signal) = signals.next() {
                if let Some(status) = self.on_signal(signal) {
                    return status;
                }
            }
        }
    }

    /// What the notification socket said: a ping moves the deadline on, a
    /// trigger brings it to now.
    fn heard_ping(&mut self, socket: RawFd) {
        let (Some(period), Some(_)) = (self.program.watchdog, &self.child) else {
            // Between runs: read and drop.
            let _ = watchdog::heard(socket);
            return;
        };
        match watchdog::heard(socket) {
            Ping::Alive if !self.watchdog_fired => {
                self.watchdog_at = Some(sys::now() + period);
            }
            Ping::Trigger => self.watchdog_at = Some(sys::now()),
            _ => {}
        }
    }

    /// A missed deadline: the program hangs. SIGABRT to its tree (a core
    /// to look at), SIGKILL after the grace; its end counts as a crash.
    fn watch(&mut self) {
        let (Some(at), Some(child)) = (self.watchdog_at, &self.child) else {
            return;
        };
        if sys::now() < at || self.watchdog_fired {
            return;
        }
        self.watchdog_at = None;
        self.watchdog_fired = true;
        say(
            &mut self.pump,
            b"program (PID ",
            child.pid.into(),
            b") missed its watchdog deadline (no WATCHDOG=1 in time): SIGABRT",
        );
        tree::stop(child.pid, libc::SIGABRT);
        self.kill_at.get_or_insert(sys::now() + self.program.grace);
    }

    /// Handles one signal; `Some(status)` when the supervisor is done.
    fn on_signal(&mut self, signal: i32) -> Option<i32> {
        if let (libc::SIGHUP, Some(pump)) = (signal, self.pump.as_mut()) {
            if pump.takes_hangup() {
                // logrotate or newsyslog moved the file: write a new one.
                pump.drain(false);
                pump.reopen();
                return None;
            }
        }
        if signal != libc::SIGCHLD {
            let stop = signal == libc::SIGTERM || signal == libc::SIGINT;
            if stop {
                self.stop_requested = true;
                if self.child.is_none() {
                    return Some(0);
                }
            }
            if let Some(child) = &self.child {
                if stop {
                    // The whole tree stops (with the stop signal, and
                    // SIGCONT for what is stopped), SIGKILLed after the grace.
                    tree::stop(child.pid, self.program.stop_signal);
                    self.kill_at.get_or_insert(sys::now() + self.program.grace);
                } else {
                    forward(child.pid, signal);
                }
            }
            return None;
        }
        // Orphans of the tree, re-parented to us, are reaped as they end,
        // between restarts too.
        tree::reap_others(self.child.as_ref().map_or(0, |child| child.pid));
        let child = self.child.as_ref()?;
        let status = tree::exited(child.pid)?;
        // The terminal goes back as it was before the program took it.
        give_back_terminal(self.program);
        let ran = sys::now().saturating_sub(child.started);
        let main = child.pid;
        // What the program left running goes with it; then it is reaped.
        let grace = match self.kill_at {
            Some(at) => at.saturating_sub(sys::now()),
            None => self.program.grace,
        };
        let stop_requested = &mut self.stop_requested;
        let signals = self.signals;
        let pump = &mut self.pump;
        // What the program wrote last goes out first, then what the rest
        // of its tree writes while it is stopped.
        if let Some(pump) = pump.as_mut() {
            pump.drain(false);
        }
        if !*stop_requested && tree::others_alive(main) == Some(true) {
            left_running(pump, main, exit_code(status));
        }
        tree::end_rest(main, grace, &mut |pause| {
            if wait_signal(signals, pause) == Some(libc::SIGTERM) {
                *stop_requested = true;
            }
            if let Some(pump) = pump.as_mut() {
                pump.drain(false);
            }
        });
        tree::reap(main);
        if let Some(pump) = self.pump.as_mut() {
            // A last line without its newline goes out too.
            pump.drain(true);
        }
        self.kill_at = None;
        self.child = None;
        remove_child_pid_file(self.program);
        self.last_status = exit_code(status);
        // tini's -e: a status that counts as success (a JVM's 143).
        let code = self.last_status as usize;
        if code < 256 && self.program.success_exits[code / 64] & (1 << (code % 64)) != 0 {
            self.last_status = 0;
        }
        let abnormal = self.last_status != 0 || self.watchdog_fired;
        if self.watchdog_fired && self.last_status == 0 {
            // A hang that ended well is still a failure to report.
            self.last_status = exit::COULD_NOT_START;
        }
        if self.stop_requested || !abnormal || self.program.restart.is_none() {
            // A stop asked for ends with 0, but as PID 1 (a container's or
            // a PID namespace's init): then the program's own status goes
            // out, as tini and docker-init pass it through.
            let pid1 = rustix::process::getpid().is_init();
            return Some(if self.stop_requested && !pid1 {
                0
            } else {
                self.last_status
            });
        }
        if self.start_limit_hit() {
            gave_up(&mut self.pump, self.last_status, self.program.start_limit);
            return Some(self.last_status);
        }
        self.schedule_restart(ran);
        say(
            &mut self.pump,
            b"program ended with status ",
            self.last_status.into(),
            b"; restarting",
        );
        None
    }

    /// Sets the next restart, after a run of `ran`.
    fn schedule_restart(&mut self, ran: Duration) {
        let first = self.program.restart.unwrap_or_default();
        let (now, next) = restart_delays(self.delay, first, self.program.restart_cap, ran);
        self.restart_at = Some(sys::now() + now);
        self.delay = next;
    }

    fn restart(&mut self) {
        if self.stop_requested {
            return;
        }
        self.record_start();
        match spawn(self.program) {
            Ok(child) => {
                if let Some(pump) = self.pump.as_mut() {
                    pump.set_pid(child.pid);
                }
                self.child = Some(child);
            }
            Err(errno) => {
                say_errno(&mut self.pump, b"failed to execute the program: ", errno);
                self.schedule_restart(Duration::ZERO);
            }
        }
    }
}

/// The delay before this restart and the one after it: `current`, doubling
/// up to `cap` (`--restart=DELAY:MAX`, default [`RESTART_CAP`]); a run of
/// [`STABLE_RUN`] or more starts over at `first`.
fn restart_delays(
    current: Duration,
    first: Duration,
    cap: Duration,
    ran: Duration,
) -> (Duration, Duration) {
    let now = if ran >= STABLE_RUN { first } else { current };
    (now, (now * 2).min(cap).max(first))
}

/// The start limit's window after a start at `now`: a new one when the
/// last began more than `interval` ago.
fn next_window(window: (Duration, u32), interval: Duration, now: Duration) -> (Duration, u32) {
    let (began, count) = window;
    if count == 0 || now.saturating_sub(began) > interval {
        (now, 1)
    } else {
        (began, count.saturating_add(1))
    }
}

/// Whether `window` already holds `limit`'s burst of starts (never for a
/// burst of 0).
fn limit_hit(window: (Duration, u32), limit: (u32, Duration), now: Duration) -> bool {
    let ((began, count), (burst, interval)) = (window, limit);
    burst > 0 && count >= burst && now.saturating_sub(began) <= interval
}

/// The program ended on its own but left processes running: most likely it
/// put itself in the background (forked and exited), which leaves nothing
/// to supervise. Its tree is stopped all the same (nothing is left behind);
/// this says why, and what to run instead. Out of line, as [`say`].
#[inline(never)]
fn left_running(pump: &mut Option<Pump>, main: i32, status: i32) {
    let mut line = Line::daemonic();
    line.text(b"program (PID ")
        .num(main.into())
        .text(b") ended with status ")
        .num(status.into())
        .text(b" but left processes running: stopping them. Did it put itself in the background? --supervise wants a program that stays in the foreground (nginx -g 'daemon off;', sshd -D, ...)");
    tell(pump, &mut line);
}

/// The give-up line: the limit, and the option that sets it. Out of line,
/// as [`say`].
#[inline(never)]
fn gave_up(pump: &mut Option<Pump>, status: i32, (burst, interval): (u32, Duration)) {
    let mut line = Line::daemonic();
    line.text(b"program ended with status ")
        .num(status.into())
        .text(b" after ")
        .num(burst.into())
        .text(b" starts within ")
        .secs(interval)
        .text(b" s: giving up (--start-limit BURST/SECS sets the limit, 0 never gives up)");
    tell(pump, &mut line);
}

/// The blocked signals the supervisor reads, as a `signalfd`.
struct SignalFd {
    fd: OwnedFd,
}

impl SignalFd {
    fn new() -> Result<SignalFd, Errno> {
        // SAFETY: the set is initialised before it is read; signalfd returns
        // a new fd we own.
        unsafe {
            let mut set: libc::sigset_t = core::mem::zeroed();
            libc::sigemptyset(&mut set);
            // Every forwarded signal and SIGCHLD; sigaddset refuses the C
            // library's reserved ones, which stay as they are.
            for signal in 1..=64 {
                if forwarded(signal) || signal == libc::SIGCHLD {
                    libc::sigaddset(&mut set, signal);
                }
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) != 0 {
                return Err(sys::errno());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(sys::errno());
            }
            Ok(SignalFd {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The next pending signal, if any.
    fn next(&self) -> Option<i32> {
        // SAFETY: signalfd_siginfo is plain data; read fills it whole or fails.
        unsafe {
            let mut info: libc::signalfd_siginfo = core::mem::zeroed();
            let size = size_of::<libc::signalfd_siginfo>();
            let n = libc::read(
                self.fd.as_raw_fd(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            );
            (n == size as isize).then_some(info.ssi_signo as i32)
        }
    }
}

/// Waits up to `timeout` for a signal on `signals`; the one read, if any.
fn wait_signal(signals: &SignalFd, timeout: Duration) -> Option<i32> {
    sys::readable([signals.fd.as_raw_fd()], sys::millis(timeout));
    signals.next()
}

fn forward(pid: i32, signal: i32) {
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(pid, signal) };
}

fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: as above, blocking.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// A shell-style exit code: the code, or 128 + the signal.
fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

fn write_child_pid_file(program: &Program, pid: i32) {
    let Some(path) = &program.child_pid_file else {
        return;
    };
    // SAFETY: open/write/close on a prepared C string and a stack buffer.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644,
        );
        if fd >= 0 {
            let text = Decimal::new(u64::from(pid.unsigned_abs()));
            libc::write(fd, text.line().as_ptr().cast(), text.line().len());
            libc::close(fd);
        }
    }
}

fn remove_child_pid_file(program: &Program) {
    if let Some(path) = &program.child_pid_file {
        // SAFETY: unlink reads a prepared C string.
        unsafe { libc::unlink(path.as_ptr()) };
    }
}

/// A line to standard error: `before`, `number`, `after`. Out of line, so
/// that the message buffer is on the stack only while it is written, not
/// under the loop for the supervisor's life (see `parse` in main.rs).
#[inline(never)]
fn say(pump: &mut Option<Pump>, before: &[u8], number: i64, after: &[u8]) {
    let mut line = Line::daemonic();
    line.text(before).num(number).text(after);
    tell(pump, &mut line);
}

/// A line to standard error: `before` and the OS error. As [`say`].
#[inline(never)]
fn say_errno(pump: &mut Option<Pump>, before: &[u8], errno: Errno) {
    let mut line = Line::daemonic();
    line.text(before).errno(errno);
    tell(pump, &mut line);
}

/// Where the supervisor's own lines go: into the file it carries on its
/// standard error, stamped like the program's and in order with them
/// (`--timestamps`), or else straight to standard error.
fn tell(pump: &mut Option<Pump>, line: &mut Line) {
    let bytes = line.terminated();
    if !pump.as_mut().is_some_and(|pump| pump.say(bytes)) {
        crate::out::write_all(2, bytes);
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_double_to_the_cap_and_start_over_after_a_stable_run() {
        let first = Duration::from_secs(1);
        let mut delay = first;
        let mut seen = std::vec::Vec::new();
        for _ in 0..8 {
            let (now, next) = restart_delays(delay, first, RESTART_CAP, Duration::from_secs(1));
            seen.push(now.as_secs());
            delay = next;
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            restart_delays(delay, first, RESTART_CAP, STABLE_RUN).0,
            first
        );
        // A zero delay stays zero: restart at once, as asked.
        assert_eq!(
            restart_delays(Duration::ZERO, Duration::ZERO, RESTART_CAP, Duration::ZERO),
            (Duration::ZERO, Duration::ZERO)
        );
        // --restart=0.5:2: doubling stops at 2 s.
        let (half, two) = (Duration::from_millis(500), Duration::from_secs(2));
        let mut delay = half;
        let mut seen = std::vec::Vec::new();
        for _ in 0..4 {
            let (now, next) = restart_delays(delay, half, two, Duration::ZERO);
            seen.push(now.as_millis());
            delay = next;
        }
        assert_eq!(seen, [500, 1000, 2000, 2000]);
    }

    #[test]
    fn start_limit_windows() {
        let secs = Duration::from_secs;
        let limit = (3, secs(10));
        let mut window = (Duration::ZERO, 0);
        for at in [100, 101, 102] {
            assert!(!limit_hit(window, limit, secs(at)), "before start at {at}");
            window = next_window(window, limit.1, secs(at));
        }
        // Three starts within 10 s: a fourth would exceed the limit...
        assert!(limit_hit(window, limit, secs(103)));
        // ...but not once the window has run out: a new one begins.
        assert!(!limit_hit(window, limit, secs(111)));
        assert_eq!(next_window(window, limit.1, secs(111)), (secs(111), 1));
        // A burst of 0 never gives up.
        assert!(!limit_hit((secs(100), 1000), (0, secs(10)), secs(100)));
    }
}
