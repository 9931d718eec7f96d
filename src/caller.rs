//! The caller's side: wait for the report, reap the session leader, and
//! clean up after a daemon that failed or never got ready.

use core::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::CWD;
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};
use rustix::time::{ClockId, clock_gettime};

use crate::error::Error;
use crate::pidfile;
use crate::plan::Plan;
use crate::report::{RECORD_LEN, Record};

/// How long the caller waits for a failed or killed daemon, and the session
/// leader, to be gone: they have nothing left to do but exit.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Waits until the daemon reports ready (its PID) or failed, dies, or runs
/// out of time. Whatever the outcome, the session leader is reaped and, on
/// error, no daemon and no PID file of this start remain.
pub(crate) fn await_report(
    plan: &Plan<'_>,
    reader: OwnedFd,
    session_leader: Pid,
    start_dir: Option<&OwnedFd>,
) -> Result<Pid, Error> {
    let deadline = plan.ready_timeout.map(Deadline::after);
    let mut daemon = None;
    let outcome = loop {
        match next_record(&reader, deadline.as_ref()) {
            Ok(Some(Record::Forked(pid))) => daemon = Some(pid),
            Ok(Some(Record::Ready(pid))) => break Ok(pid),
            Ok(Some(Record::Failed { step, errno, .. })) => {
                // The sender exits right after its report; the pipe closes
                // once it (and the session leader) are gone.
                drain_until_closed(&reader);
                break Err(Error::Os { step, errno });
            }
            Ok(None) => {
                stop(plan, daemon, &reader, start_dir);
                break Err(Error::Vanished { pid: daemon });
            }
            Err(Waited::TimedOut) => {
                stop(plan, daemon, &reader, start_dir);
                let timeout = plan.ready_timeout.unwrap_or_default();
                break Err(Error::NotReady {
                    pid: daemon,
                    timeout,
                });
            }
        }
    };
    reap(session_leader);
    outcome
}

/// Kills a daemon that will not report, waits for it to be gone, and removes
/// the PID file it may have written.
fn stop(plan: &Plan<'_>, daemon: Option<Pid>, reader: &OwnedFd, start_dir: Option<&OwnedFd>) {
    let Some(pid) = daemon else {
        // The session leader never forked: reaping it is all there is to do.
        return;
    };
    // ESRCH: it is gone already.
    let _ = rustix::process::kill_process(pid, Signal::KILL);
    drain_until_closed(reader);
    if let Some(path) = plan.pid_file {
        let dir = start_dir.map_or(CWD, |fd| fd.as_fd());
        let _ = pidfile::remove_if_names(dir, path, pid);
    }
}

enum Waited {
    TimedOut,
}

/// The next record, `None` at end of file (every writer gone). Bytes that
/// are not a record end the wait as a vanished daemon would.
fn next_record(reader: &OwnedFd, deadline: Option<&Deadline>) -> Result<Option<Record>, Waited> {
    let mut bytes = [0u8; RECORD_LEN];
    let mut filled = 0;
    while filled < RECORD_LEN {
        if !wait_readable(reader, deadline) {
            return Err(Waited::TimedOut);
        }
        match rustix::io::read(reader, &mut bytes[filled..]) {
            Ok(0) => return Ok(None),
            Ok(n) => filled += n,
            Err(Errno::INTR) | Err(Errno::AGAIN) => {}
            // Reading our own pipe cannot fail otherwise; treat it as silence.
            Err(_) => return Ok(None),
        }
    }
    Ok(Record::decode(&bytes))
}

/// Reads and drops records until every writer has closed the pipe, for at
/// most [`EXIT_GRACE`].
fn drain_until_closed(reader: &OwnedFd) {
    let deadline = Deadline::after(EXIT_GRACE);
    while let Ok(Some(_)) = next_record(reader, Some(&deadline)) {}
}

/// Waits until `fd` is readable (or at end of file); false when the
/// deadline passes first.
fn wait_readable(fd: &OwnedFd, deadline: Option<&Deadline>) -> bool {
    loop {
        let timeout = match deadline {
            Some(deadline) => match deadline.remaining() {
                Some(left) => Some(left),
                None => return false,
            },
            None => None,
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(0) => {}
            Ok(_) => return true,
            Err(Errno::INTR) | Err(Errno::AGAIN) => {}
            // poll on one valid fd does not fail otherwise; let read decide.
            Err(_) => return true,
        }
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

/// A point in time on the monotonic clock.
struct Deadline {
    at: Timespec,
}

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        let now = clock_gettime(ClockId::Monotonic);
        let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX / 2);
        let mut at = Timespec {
            tv_sec: now.tv_sec.saturating_add(secs),
            tv_nsec: now.tv_nsec + i64::from(timeout.subsec_nanos()),
        };
        if at.tv_nsec >= 1_000_000_000 {
            at.tv_sec = at.tv_sec.saturating_add(1);
            at.tv_nsec -= 1_000_000_000;
        }
        Deadline { at }
    }

    /// Time left, or `None` once the deadline has passed.
    fn remaining(&self) -> Option<Timespec> {
        let now = clock_gettime(ClockId::Monotonic);
        let mut left = Timespec {
            tv_sec: self.at.tv_sec - now.tv_sec,
            tv_nsec: self.at.tv_nsec - now.tv_nsec,
        };
        if left.tv_nsec < 0 {
            left.tv_sec -= 1;
            left.tv_nsec += 1_000_000_000;
        }
        if left.tv_sec < 0 || (left.tv_sec == 0 && left.tv_nsec == 0) {
            return None;
        }
        Some(left)
    }
}

/// Sleeps with `poll(2)` on no fds, which every Unix has.
fn sleep(duration: Duration) {
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: i64::from(duration.subsec_nanos()),
    };
    let _ = rustix::event::poll(&mut [], Some(&timeout));
}
