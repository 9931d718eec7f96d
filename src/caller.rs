//! The caller's side: wait for the report (and an executed program's own
//! readiness), reap the session leader, and clean up after a daemon that
//! failed or never got ready.

use core::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};

use crate::error::{Error, ExitStatus, Step};
use crate::execpaths;
use crate::notify::{self, Heard, Said};
use crate::plan::{Plan, ProgramReadiness};
use crate::report::{self, CONTEXT_LEN, RECORD_LEN, Record};
use crate::setup::Setup;
use crate::time::{Deadline, sleep};

/// How long the caller waits for a failed or killed daemon, and the session
/// leader, to be gone: they have nothing left to do but exit.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Waits until the daemon reports ready (its PID) or failed, dies, or runs
/// out of time. Whatever the outcome, the session leader is reaped and, on
/// error, no daemon and no PID file of this start remain. `killed_at`: when
/// the daemon's own timer kills it, if it has one (a cloned daemon's).
// Out of line: one copy, however many callers LTO sees (ci/size measures).
#[inline(never)]
pub(crate) fn await_report(
    plan: &Plan<'_>,
    reader: OwnedFd,
    session_leader: Pid,
    setup: &mut Setup,
    killed_at: Option<Deadline>,
) -> Result<Pid, Error> {
    let mut wait = Wait {
        plan,
        report: Some(reader),
        program: setup.program_ready_reader.take(),
        deadline: plan.ready_timeout.map(Deadline::after),
        daemon: None,
        executing: false,
        reported_failure: false,
        closed_without_ready: false,
        context: None,
    };
    let mut outcome = wait.outcome();
    if let (Err(Error::Vanished { pid, .. }), Some(killed_at)) = (&outcome, killed_at) {
        // Killed by its timer, it vanishes without a word. Past that time
        // it timed out, and the step it last reached says where it hung (a
        // FIFO nobody reads, a hung mount).
        if killed_at.remaining().is_none() {
            outcome = Err(Error::NotReady {
                pid: *pid,
                timeout: plan.ready_timeout.unwrap_or_default(),
                last_step: None,
            });
        }
    }
    if let Err(Error::NotReady { last_step, .. }) = &mut outcome {
        // An executed program cannot record steps: it is past them all.
        if !wait.executing {
            *last_step = setup.progress.as_ref().and_then(|p| p.last());
        }
    }
    if outcome.is_err() {
        wait.stop_daemon(session_leader);
        // Every other holder of the lock is gone: it is ours to remove.
        setup.remove_pid_file(plan);
    }
    if let Some(ProgramReadiness::NotifySocket(path)) = plan.program_readiness {
        let _ = rustix::fs::unlink(path);
    }
    if plan.program_readiness.is_some() {
        // It waits for the daemon to end: once the program is ready, or has
        // failed, it has nothing left to report.
        let _ = rustix::process::kill_process(session_leader, Signal::KILL);
    }
    reap(session_leader);
    outcome
}

/// The state of one wait.
struct Wait<'p, 'a> {
    plan: &'p Plan<'a>,
    /// The report pipe, until every writer closed it.
    report: Option<OwnedFd>,
    /// The program's readiness channel, until it closes.
    program: Option<OwnedFd>,
    deadline: Option<Deadline>,
    /// The daemon's PID, once known.
    daemon: Option<Pid>,
    /// The daemon said it is about to exec.
    executing: bool,
    /// The daemon (or session leader) reported its own failure and has
    /// exited: there is nothing to stop.
    reported_failure: bool,
    /// The program closed its readiness fd without a newline.
    closed_without_ready: bool,
    /// What the daemon said it was doing, ahead of its failure.
    context: Option<crate::error::Context>,
}

/// How long a program that closed its readiness fd gets for its exit status
/// to arrive (the fd closes when it exits): the status says more.
const CLOSED_GRACE: Duration = Duration::from_millis(100);

/// What one readable fd had to say.
enum Event {
    Record(Record),
    ReportClosed,
    Program(Said),
    ProgramClosed,
    TimedOut,
}

impl Wait<'_, '_> {
    // Out of line: one copy, however many callers LTO sees (ci/size measures).
    #[inline(never)]
    fn outcome(&mut self) -> Result<Pid, Error> {
        let awaits_program = self.plan.program_readiness.is_some();
        loop {
            match self.next_event() {
                Event::Record(Record::Forked(pid)) => self.daemon = Some(pid),
                Event::Record(Record::Ready(pid)) => return Ok(pid),
                Event::Record(Record::Executing(pid)) => {
                    self.daemon = Some(pid);
                    self.executing = true;
                }
                Event::Record(Record::Context(context)) => self.context = Some(context),
                Event::Record(Record::Failed { step, errno, .. }) => {
                    // The sender exits right after; wait until it has.
                    self.drain_report();
                    self.reported_failure = true;
                    return Err(match (step, self.context) {
                        (Step::Initialization, Some(context)) => {
                            Error::Initialization { context, errno }
                        }
                        _ => Error::Os { step, errno },
                    });
                }
                Event::Record(Record::Exited { pid, status }) => {
                    // A program that reported its failure and exited: the
                    // report was sent first, so it is waiting in the socket.
                    if let Some(Event::Program(Said::Failed(errno))) = self.read_program() {
                        return Err(Error::Os {
                            step: Step::Initialization,
                            errno,
                        });
                    }
                    return Err(Error::Exited {
                        pid: Some(pid),
                        status: ExitStatus::from_raw(status),
                    });
                }
                Event::ReportClosed if self.executing && !awaits_program => {
                    // The pipe is close-on-exec: the exec succeeded.
                    return self.daemon.ok_or_else(|| vanished(None));
                }
                Event::ReportClosed => return Err(vanished(self.daemon)),
                Event::Program(Said::Ready) => {
                    return self.daemon.ok_or_else(|| vanished(None));
                }
                Event::Program(Said::Failed(errno)) => {
                    return Err(Error::Os {
                        step: Step::Initialization,
                        errno,
                    });
                }
                Event::Program(Said::ExtendTimeout(usec)) => {
                    if self.deadline.is_some() {
                        self.deadline = Some(Deadline::after(Duration::from_micros(usec)));
                    }
                }
                Event::Program(Said::Other) => {}
                Event::ProgramClosed => {
                    // Closed without a newline: it never will be ready. Fail
                    // now, unless its exit status follows at once.
                    self.closed_without_ready = true;
                    self.deadline = Some(Deadline::after(CLOSED_GRACE));
                }
                Event::TimedOut if self.closed_without_ready => {
                    return Err(Error::Os {
                        step: Step::Readiness,
                        errno: Errno::PIPE,
                    });
                }
                Event::TimedOut => {
                    return Err(Error::NotReady {
                        pid: self.daemon,
                        timeout: self.plan.ready_timeout.unwrap_or_default(),
                        last_step: None,
                    });
                }
            }
        }
    }

    // Out of line: one copy, however many callers LTO sees (ci/size measures).
    #[inline(never)]
    fn next_event(&mut self) -> Event {
        loop {
            let timeout = match &self.deadline {
                Some(deadline) => match deadline.remaining() {
                    Some(left) => Some(left),
                    None => return Event::TimedOut,
                },
                None => None,
            };
            let (report_ready, program_ready) = match poll_both(
                self.report.as_ref(),
                self.program.as_ref(),
                timeout.as_ref(),
            ) {
                Ok(ready) => ready,
                Err(Errno::INTR | Errno::AGAIN) => continue,
                // poll on our own open fds fails only if they closed: let
                // the reads below find out.
                Err(_) => (self.report.is_some(), self.program.is_some()),
            };
            if !report_ready && !program_ready {
                continue;
            }
            if let (true, Some(report)) = (report_ready, &self.report) {
                return match read_record(report) {
                    Some(record) => Event::Record(record),
                    None => {
                        self.report = None;
                        Event::ReportClosed
                    }
                };
            }
            if program_ready {
                if let Some(event) = self.read_program() {
                    return event;
                }
            }
        }
    }

    /// Reads the program's readiness channel, through
    /// [`ExecPaths`](crate::execpaths::ExecPaths) (only an executed program
    /// has one).
    fn read_program(&mut self) -> Option<Event> {
        let (fd, (_, paths)) = (self.program.as_ref()?, execpaths::of(self.plan)?);
        match (paths.hear_program)(self.plan, fd) {
            Heard::Nothing => None,
            Heard::Said(said) => Some(Event::Program(said)),
            Heard::Closed => {
                // Closed without a newline: not ready; its exit will tell.
                self.program = None;
                Some(Event::ProgramClosed)
            }
        }
    }

    /// Reads and drops records until every writer has closed the pipe, for
    /// at most [`EXIT_GRACE`].
    fn drain_report(&mut self) {
        let Some(report) = self.report.take() else {
            return;
        };
        let deadline = Deadline::after(EXIT_GRACE);
        while let Some(left) = deadline.remaining() {
            let mut fds = [PollFd::new(&report, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&left)) {
                Ok(0) => return,
                Ok(_) => {
                    if read_record(&report).is_none() {
                        return;
                    }
                }
                Err(Errno::INTR) => {}
                Err(_) => return,
            }
        }
    }

    /// Kills a daemon (or executed program) that will not report, with
    /// everything it started, and waits for it to be gone.
    // Out of line: one copy, however many callers LTO sees (ci/size measures).
    #[inline(never)]
    fn stop_daemon(&mut self, session_leader: Pid) {
        if self.reported_failure {
            return;
        }
        // Pinned before the kill: the wait below then sees this process
        // end, even as a zombie nobody reaps, and never another one.
        let pinned = self.daemon.and_then(pin);
        if let Some(pid) = self.daemon {
            // ESRCH: it is gone already.
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        // The session leader's `setsid` made a process group of its PID,
        // which the daemon and whatever it forked are in (unless they left
        // it). No other process can be: a group is only joined from inside
        // its session, and its number is not reused while it has members.
        // Before the `setsid` there is no such group: ESRCH.
        let _ = rustix::process::kill_process_group(session_leader, Signal::KILL);
        self.drain_report();
        if self.executing {
            // An executed program does not hold the report pipe: wait until
            // the PID is gone.
            if let Some(pid) = self.daemon {
                wait_gone(pid, pinned.as_ref());
            }
        }
    }
}

/// Reads the program's readiness channel: a datagram on the socket, or
/// bytes on the pipe (a newline means ready).
pub(crate) fn hear_program(plan: &Plan<'_>, fd: &OwnedFd) -> Heard {
    let mut buf = [0u8; 4096];
    match plan.program_readiness {
        Some(ProgramReadiness::NotifySocket(_)) => match notify::receive(fd.as_fd(), &mut buf) {
            Ok(datagram) => Heard::Said(notify::parse(datagram)),
            Err(Errno::AGAIN | Errno::INTR) => Heard::Nothing,
            Err(_) => Heard::Closed,
        },
        _ => match rustix::io::read(fd, &mut buf) {
            Ok(0) => Heard::Closed,
            Ok(n) if buf[..n].contains(&b'\n') => Heard::Said(Said::Ready),
            Ok(_) | Err(Errno::AGAIN | Errno::INTR) => Heard::Nothing,
            Err(_) => Heard::Closed,
        },
    }
}

/// Polls whichever of the two fds are open; which of them are readable (or
/// at end of file). With neither open, sleeps until the timeout.
fn poll_both(
    first: Option<&OwnedFd>,
    second: Option<&OwnedFd>,
    timeout: Option<&rustix::event::Timespec>,
) -> Result<(bool, bool), Errno> {
    let readable = |fd: &PollFd<'_>| !fd.revents().is_empty();
    match (first, second) {
        (Some(a), Some(b)) => {
            let mut fds = [PollFd::new(a, PollFlags::IN), PollFd::new(b, PollFlags::IN)];
            rustix::event::poll(&mut fds, timeout)?;
            Ok((readable(&fds[0]), readable(&fds[1])))
        }
        (Some(a), None) => {
            let mut fds = [PollFd::new(a, PollFlags::IN)];
            rustix::event::poll(&mut fds, timeout)?;
            Ok((readable(&fds[0]), false))
        }
        (None, Some(b)) => {
            let mut fds = [PollFd::new(b, PollFlags::IN)];
            rustix::event::poll(&mut fds, timeout)?;
            Ok((false, readable(&fds[0])))
        }
        (None, None) => {
            rustix::event::poll(&mut [], timeout)?;
            Ok((false, false))
        }
    }
}

/// One record, or `None` at end of file (every writer gone) or on bytes
/// that are not a record.
fn read_record(reader: &OwnedFd) -> Option<Record> {
    let mut bytes = [0u8; RECORD_LEN];
    read_exactly(reader, &mut bytes)?;
    match Record::decode(&bytes)? {
        Record::Context(_) => {
            // Its text follows in the same write.
            let mut text = [0u8; CONTEXT_LEN];
            read_exactly(reader, &mut text)?;
            let len = report::context_len(&bytes);
            Some(Record::Context(crate::error::Context::from_wire(
                &text[..len],
            )))
        }
        record => Some(record),
    }
}

/// Fills `buf` from the pipe; `None` at end of file or on an error.
fn read_exactly(reader: &OwnedFd, buf: &mut [u8]) -> Option<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::io::read(reader, &mut buf[filled..]) {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(Errno::INTR) | Err(Errno::AGAIN) => {}
            Err(_) => return None,
        }
    }
    Some(())
}

/// A daemon that ended without a word, with the likely reason when this
/// process has other threads.
fn vanished(pid: Option<Pid>) -> Error {
    Error::Vanished {
        pid,
        caller_threads: crate::fork::threads().filter(|&n| n > 1),
    }
}

/// A pidfd for `pid`, where the system has them.
#[cfg(daemonic_pidfd)]
fn pin(pid: Pid) -> Option<OwnedFd> {
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

#[cfg(not(daemonic_pidfd))]
fn pin(_pid: Pid) -> Option<OwnedFd> {
    None
}

/// Waits (at most [`EXIT_GRACE`]) until no process has `pid`, or, with its
/// pidfd, until it has exited: a zombie nobody reaps (the daemon's parent
/// is init or some subreaper) has ended all the same. When the caller is
/// the subreaper the daemon was reparented to, it reaps it.
fn wait_gone(pid: Pid, pidfd: Option<&OwnedFd>) {
    let deadline = Deadline::after(EXIT_GRACE);
    if let Some(pidfd) = pidfd {
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        while let Some(left) = deadline.remaining() {
            match rustix::event::poll(&mut fds, Some(&left)) {
                Err(Errno::INTR) => continue,
                _ => break,
            }
        }
        let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
        return;
    }
    while deadline.remaining().is_some() {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some(_)) => return,
            Ok(None) => {}
            // Not our child: it is gone when no signal can reach it.
            Err(_) if rustix::process::test_kill_process(pid).is_err() => return,
            Err(_) => {}
        }
        sleep(Duration::from_millis(1));
    }
}

/// Reaps the session leader, which exits right after its second fork: wait
/// for it a little, then kill it (it can only be stuck before that fork).
fn reap(session_leader: Pid) {
    let deadline = Deadline::after(EXIT_GRACE);
    loop {
        match rustix::process::waitpid(Some(session_leader), WaitOptions::NOHANG) {
            Ok(Some(_)) => return,
            // ECHILD: SIGCHLD is ignored here (the kernel reaped it) or
            // another waiter of the caller's took it. EINTR: try again.
            Err(Errno::INTR) => continue,
            Err(_) => return,
            Ok(None) => {}
        }
        if deadline.remaining().is_none() {
            let _ = rustix::process::kill_process(session_leader, Signal::KILL);
            let _ = rustix::io::retry_on_intr(|| {
                rustix::process::waitpid(Some(session_leader), WaitOptions::empty())
            });
            return;
        }
        sleep(Duration::from_millis(1));
    }
}
