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

use core::time::Duration;

use daemonic::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use daemonic::{Daemon, Errno, Error, Readiness, Started, Step};

use crate::ids::Ids;
use crate::out::Line;
use crate::pump::Pump;
use crate::request::Start;
use crate::spawn::{Child, Heard, exited, hear, remove_child_pid_file, spawn};
use crate::supervised::{Channel, OutputPipe, Prepare, Program};
use crate::watchdog::{self, Ping};
use crate::{exit, outcome, startplan, sys, tree};

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

/// Waits for the first run's readiness: ready, or the error for the caller.
/// Out of line, as `absolute` in supervised.rs.
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
/// up to `cap` (`--restart=DELAY:MAX`, default [`RESTART_CAP`](crate::supervised::RESTART_CAP)); a run of
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

/// A shell-style exit code: the code, or 128 + the signal.
fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervised::RESTART_CAP;

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
