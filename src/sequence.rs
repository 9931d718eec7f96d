//! The daemonizing sequence after the first fork, one step a function, in
//! the order they run.
//!
//! Everything here may run in a child of a multithreaded process, so it is
//! only system calls on data prepared before the fork: no allocation, no
//! lock, no panic, no formatting. A failing step reports itself through the
//! report pipe and ends the process with `_exit` (or, when the plan does not
//! detach, returns the error).

use rustix::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use rustix::fs::CWD;
use rustix::io::{Errno, FdFlags};
use rustix::process::{Pid, WaitOptions};

use crate::daemon::Daemon;
use crate::error::{Error, Step};
use crate::exec::{self, Exec};
use crate::execpaths;
use crate::fds::{self, KeepList, Strategy};
#[cfg(daemonic_clone_vm)]
use crate::fork::{ChildStack, vfork_on};
use crate::fork::{Forked, exit_now, fork};
use crate::plan::{Plan, ProgramReadiness, Readiness};
use crate::report::{self, Record};
use crate::setup::Setup;
use crate::stdio::{self, Stream};
#[cfg(daemonic_clone_vm)]
use crate::time::KillTimer;
use crate::{pidfile, privileges, resources, signals};

/// Exit status of a session leader or daemon that reported a failure.
const FAILED: i32 = 1;

/// A step's failure: which step, which error.
type StepResult = Result<(), (Step, Errno)>;

/// Runs the child's part of a detached start. Returns only in the daemon,
/// and not at all when the plan executes a program.
pub(crate) fn run_detached<'a>(plan: &Plan<'a>, report: OwnedFd, mut setup: Setup) -> Daemon<'a> {
    new_session(&report);
    fork_daemon(plan, &report, &mut setup);
    let pid = rustix::process::getpid();
    let failed = |setup: &Setup, (step, errno): (Step, Errno)| -> ! {
        remove_pid_file(plan, setup);
        fail(&report, step, errno, pid)
    };
    if let Err(failure) = daemon_steps(plan, &mut setup, Some(&report), pid) {
        failed(&setup, failure);
    }
    if let Some((program, paths)) = execpaths::of(plan) {
        let failure = (paths.exec)(plan, program, &mut setup, Some(&report), pid);
        failed(&setup, failure);
    }
    finish(plan, setup, Some(report), pid)
}

/// The exec variant's detached start without `fork`: the session leader
/// and the daemon are made with `clone(CLONE_VM | CLONE_VFORK)` on stacks
/// of their own ([`vfork_on`]), so no page table of the caller is copied,
/// however large it is. The caller waits (as `vfork` makes it) until the
/// leader has exited, which it does once the daemon has executed the
/// program or failed; the records are in the pipe by then. Returns the
/// leader's PID (a zombie for the caller to reap).
///
/// Everything the two children run is what the fork path runs, on data
/// they only read: the daemon works on a bitwise copy of `setup` that it
/// never drops (the fds in it are its own copies; the memory is the
/// caller's), and it ends in `execve` or `_exit`.
///
/// Only for plans that execute a program, reset signals and do not wait
/// for the program's readiness (the leader then waits for the daemon to
/// end, which would keep the caller suspended): see `Plan::start`.
#[cfg(daemonic_clone_vm)]
pub(crate) fn start_vforked(
    plan: &Plan<'_>,
    report: &OwnedFd,
    setup: &Setup,
    stacks: &[ChildStack; 2],
) -> rustix::io::Result<Pid> {
    let mut leader = || -> i32 {
        new_session(report);
        let mut daemon = || -> i32 { exec_vforked(plan, report, setup) };
        // SAFETY: the daemon runs the sequence on data it only reads and
        // ends in execve or _exit (exec_vforked).
        let forked = unsafe { vfork_on(&stacks[1], &mut daemon) };
        match forked {
            Ok(daemon) => {
                let _ = report::send(report, Record::Forked(daemon));
                exit_now(0)
            }
            Err(errno) => fail(report, Step::SecondFork, errno, rustix::process::getpid()),
        }
    };
    // SAFETY: the leader makes system calls only (setsid, clone, write) and
    // ends in _exit.
    unsafe { vfork_on(&stacks[0], &mut leader) }
}

/// The daemon's part of [`start_vforked`]: every step, then `execve`.
#[cfg(daemonic_clone_vm)]
fn exec_vforked(plan: &Plan<'_>, report: &OwnedFd, shared: &Setup) -> ! {
    // The caller cannot time out while suspended: the steps bound
    // themselves (see caller::await_report).
    let timer = plan.ready_timeout.and_then(KillTimer::arm);
    // SAFETY: a bitwise copy of the caller's setup, never dropped (see
    // start_vforked): what the steps change (fds taken and closed) is this
    // process's own, and nothing of the caller's memory is written or freed.
    let mut setup = core::mem::ManuallyDrop::new(unsafe { core::ptr::read(shared) });
    let setup = &mut *setup;
    let pid = rustix::process::getpid();
    let failed = |setup: &Setup, (step, errno): (Step, Errno)| -> ! {
        remove_pid_file(plan, setup);
        fail(report, step, errno, pid)
    };
    if let Err(failure) = daemon_steps(plan, setup, Some(report), pid) {
        failed(setup, failure);
    }
    let Some((program, _)) = plan.exec else {
        // Never so: start_vforked is for plans that execute a program.
        failed(setup, (Step::Exec, Errno::INVAL));
    };
    // What is left cannot block (the PID file's fd kept across exec; no
    // readiness fd on this path), and the timer must not kill the daemon
    // between its "executing" record and execve.
    if let Some(timer) = timer {
        timer.disarm();
    }
    let failure = exec_program(plan, &program, setup, Some(report), pid);
    failed(setup, failure)
}

/// Runs every step but the forks in this process ([`Detach::Never`]).
///
/// [`Detach::Never`]: crate::Detach::Never
pub(crate) fn run_in_place<'a>(plan: &Plan<'a>, mut setup: Setup) -> Result<Daemon<'a>, Error> {
    let pid = rustix::process::getpid();
    let failed = |setup: &Setup, (step, errno): (Step, Errno)| {
        remove_pid_file(plan, setup);
        Error::Os { step, errno }
    };
    daemon_steps(plan, &mut setup, None, pid).map_err(|failure| failed(&setup, failure))?;
    if let Some((program, paths)) = execpaths::of(plan) {
        let failure = (paths.exec)(plan, program, &mut setup, None, pid);
        return Err(failed(&setup, failure));
    }
    Ok(finish(plan, setup, None, pid))
}

/// The daemon's steps, in order.
fn daemon_steps(
    plan: &Plan<'_>,
    setup: &mut Setup,
    report: Option<&OwnedFd>,
    pid: Pid,
) -> StepResult {
    reach(setup, Step::ResetSignals);
    reset_signals(plan)?;
    set_umask(plan);
    redirect_streams(plan, setup)?;
    reach(setup, Step::ChangeRoot);
    change_root(plan)?;
    reach(setup, Step::ChangeDirectory);
    change_directory(plan)?;
    reach(setup, Step::CloseFds);
    close_inherited_fds(plan, setup, report)?;
    limit_resources(plan)?;
    reach(setup, Step::PidFile);
    write_pid_file(setup, pid)?;
    reach(setup, Step::SetUid);
    drop_privileges(plan)
}

/// Records the step the daemon is about to run, for the caller's message
/// should it time out (one store to shared memory).
fn reach(setup: &Setup, step: Step) {
    if let Some(progress) = &setup.progress {
        progress.reach(step);
    }
}

/// Hands what the daemon keeps to its handle, and reports ready unless the
/// program will.
fn finish<'a>(plan: &Plan<'a>, setup: Setup, report: Option<OwnedFd>, pid: Pid) -> Daemon<'a> {
    if let Some(progress) = &setup.progress {
        progress.done();
    }
    let mut daemon = Daemon::new(pid, plan, setup.pid_file, report);
    if plan.readiness == Readiness::WhenStarted {
        // A failed report reaches the caller as a vanished daemon.
        let _ = daemon.ready();
    }
    daemon
}

/// daemon(7) step 6: `setsid()` in the first child, leaving the caller's
/// session and with it any controlling terminal.
fn new_session(report: &OwnedFd) {
    if let Err(errno) = rustix::process::setsid() {
        fail(report, Step::NewSession, errno, rustix::process::getpid());
    }
}

/// Steps 7 and 8: fork again, so the daemon is not a session leader and can
/// never acquire a controlling terminal, and `_exit` in the session leader.
/// It tells the caller the daemon's PID first, so a daemon that dies
/// silently can still be named. When the caller waits for an executed
/// program's readiness, it first waits for the daemon to end, so that an
/// early exit's status reaches the caller (which kills it once the program
/// is ready).
fn fork_daemon(plan: &Plan<'_>, report: &OwnedFd, setup: &mut Setup) {
    match fork() {
        Ok(Forked::Child) => {}
        Ok(Forked::Parent(daemon)) => {
            let _ = report::send(report, Record::Forked(daemon));
            if plan.program_readiness.is_some() {
                // Hold nothing but the report pipe while waiting.
                *setup = Setup {
                    start_dir: None,
                    pid_file: None,
                    program_ready_reader: None,
                    program_ready_writer: None,
                    progress: None,
                };
                let waited = rustix::io::retry_on_intr(|| {
                    rustix::process::waitpid(Some(daemon), WaitOptions::empty())
                });
                if let Ok(Some((_, status))) = waited {
                    let _ = report::send(
                        report,
                        Record::Exited {
                            pid: daemon,
                            status: status.as_raw(),
                        },
                    );
                }
            }
            exit_now(0);
        }
        Err(errno) => fail(report, Step::SecondFork, errno, rustix::process::getpid()),
    }
}

/// Steps 2 and 3: default signal dispositions, nothing blocked.
fn reset_signals(plan: &Plan<'_>) -> StepResult {
    if !plan.reset_signals {
        return Ok(());
    }
    signals::reset_handlers(plan.exec.is_some());
    signals::unblock_all().map_err(|e| (Step::ResetSignals, e))
}

/// Step 10: the file mode creation mask. `umask(2)` cannot fail.
fn set_umask(plan: &Plan<'_>) {
    rustix::process::umask(crate::trust::mode(plan.umask));
}

/// Step 9: the standard streams, opened before any `chroot` (their paths are
/// the caller's), relative ones against the caller's directory.
fn redirect_streams(plan: &Plan<'_>, setup: &mut Setup) -> StepResult {
    let dir = setup.start_dir.as_ref().map_or(CWD, |fd| fd.as_fd());
    // Opened once for every stream that goes to /dev/null.
    let mut null = stdio::DevNull::default();
    for (stdio, stream, step) in [
        (&plan.stdin, Stream::Stdin, Step::RedirectStdin),
        (&plan.stdout, Stream::Stdout, Step::RedirectStdout),
        (&plan.stderr, Stream::Stderr, Step::RedirectStderr),
    ] {
        reach(setup, step);
        stdio::redirect(stdio, stream, dir, &mut null).map_err(|e| (step, e))?;
    }
    null.done();
    // Not needed any more: no fd of the caller's directory stays open.
    setup.start_dir = None;
    Ok(())
}

/// A new root, when asked for (python-daemon's `chroot_directory`).
fn change_root(plan: &Plan<'_>) -> StepResult {
    match plan.chroot {
        Some(dir) => rustix::process::chroot(dir).map_err(|e| (Step::ChangeRoot, e)),
        None => Ok(()),
    }
}

/// Step 11: the working directory, `/` unless told otherwise (inside the
/// new root, if any).
fn change_directory(plan: &Plan<'_>) -> StepResult {
    rustix::process::chdir(plan.working_directory).map_err(|e| (Step::ChangeDirectory, e))
}

/// Step 1 (in the daemon, where it cannot disturb the caller): close every
/// fd above 2 but those kept.
fn close_inherited_fds(plan: &Plan<'_>, setup: &Setup, report: Option<&OwnedFd>) -> StepResult {
    let mut own = setup.own_fds(report);
    own[4] = plan.notify_fd.unwrap_or(-1);
    let keep = KeepList {
        caller: plan.keep_fds,
        own,
    };
    fds::close_inherited(&keep, plan.inherited_fds, Strategy::Best).map_err(|e| (Step::CloseFds, e))
}

/// Core dumps and priority, when asked for.
fn limit_resources(plan: &Plan<'_>) -> StepResult {
    if plan.disable_core_dumps {
        resources::disable_core_dumps().map_err(|e| (Step::DisableCoreDumps, e))?;
    }
    if let Some(increment) = plan.nice {
        resources::nice(increment).map_err(|e| (Step::Nice, e))?;
    }
    resources::set_limits(plan.limits).map_err(|e| (Step::Limits, e))
}

/// Step 12: the PID, written by the daemon so it is its own, while it still
/// has the privileges the caller had. The writable fd is closed right
/// after: the daemon keeps only the read-only one that holds the lock, so
/// neither it (after dropping privileges) nor a program it executes can
/// make the file name another process.
fn write_pid_file(setup: &mut Setup, pid: Pid) -> StepResult {
    let Some(locked) = &mut setup.pid_file else {
        return Ok(());
    };
    let Some(writer) = locked.writer.take() else {
        return Ok(());
    };
    pidfile::write(writer.as_fd(), pid).map_err(|e| (Step::PidFile, e))
}

/// Step 13: drop privileges, last, so every step before had them; the
/// capabilities asked for kept across the user change, and
/// `no_new_privs` set after it (see capabilities.rs).
fn drop_privileges(plan: &Plan<'_>) -> StepResult {
    let steps = plan.privilege_steps;
    let user_changes = plan.credentials.uid.is_some();
    let keep = plan.capabilities.zip(steps);
    if let Some((keep, steps)) = keep {
        (steps.before_user_change)(keep, user_changes).map_err(|e| (Step::Capabilities, e))?;
    }
    if !plan.credentials.is_empty() {
        privileges::drop_to(&plan.credentials)?;
    }
    if let Some((keep, steps)) = keep {
        (steps.after_user_change)(keep, user_changes).map_err(|e| (Step::Capabilities, e))?;
    }
    if let (true, Some(steps)) = (plan.no_new_privileges, steps) {
        (steps.no_new_privileges)().map_err(|e| (Step::NoNewPrivileges, e))?;
    }
    Ok(())
}

/// The last steps of a daemon that executes a program (a forked one, or
/// one in place): the fds the program keeps, then `execve`, told to the
/// caller first. Returns only on failure. Reached through
/// [`EXEC_PATHS`](crate::start::EXEC_PATHS) only.
pub(crate) fn exec_program(
    plan: &Plan<'_>,
    program: &Exec<'_>,
    setup: &mut Setup,
    report: Option<&OwnedFd>,
    pid: Pid,
) -> (Step, Errno) {
    if let Err(failure) = prepare_exec(plan, setup) {
        return failure;
    }
    reach(setup, Step::Exec);
    if let Some(report) = report {
        let _ = report::send(report, Record::Executing(pid));
    }
    (Step::Exec, exec::exec(program))
}

/// Before `execve`: the PID file's fd (and with it the lock) must survive
/// the exec, and the readiness pipe's end must sit at the fd number the
/// program writes to.
fn prepare_exec(plan: &Plan<'_>, setup: &mut Setup) -> StepResult {
    if let Some(locked) = &setup.pid_file {
        rustix::io::fcntl_setfd(&locked.file, FdFlags::empty()).map_err(|e| (Step::PidFile, e))?;
    }
    place_program_fd(plan, setup)
}

/// Puts the readiness pipe's write end on the program's fd number.
fn place_program_fd(plan: &Plan<'_>, setup: &mut Setup) -> StepResult {
    let (Some(ProgramReadiness::Fd(target)), Some(writer)) =
        (plan.program_readiness, setup.program_ready_writer.take())
    else {
        return Ok(());
    };
    let failed = |e| (Step::Readiness, e);
    if writer.as_raw_fd() == target {
        rustix::io::fcntl_setfd(&writer, FdFlags::empty()).map_err(failed)?;
        let _ = writer.into_raw_fd();
        return Ok(());
    }
    // SAFETY: `target` is above 2 and none of the crate's own fds (moved
    // off it before the fork); dup2 replaces whatever the caller had there.
    let mut slot = unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(target) };
    let placed = rustix::io::dup2(&writer, &mut slot).map_err(failed);
    // The program owns fd `target` from here.
    let _ = slot.into_raw_fd();
    placed
}

/// Removes the PID file after a failure: the daemon holds the lock.
fn remove_pid_file(plan: &Plan<'_>, setup: &Setup) {
    setup.remove_pid_file(plan);
}

/// Reports a failed step and ends the process.
pub(crate) fn fail(report: &OwnedFd, step: Step, errno: Errno, pid: Pid) -> ! {
    let _ = report::send(report, Record::Failed { step, errno, pid });
    exit_now(FAILED)
}
