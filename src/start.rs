//! Starting: the orchestration of [`Plan::start`]. The caller checks the
//! plan, prepares ([`Setup`]), makes the report pipe and forks; then hands
//! over to [`caller`] in the calling process and to
//! [`sequence`] in the children. The layers: the steps at
//! the bottom (one module each), the description ([`Plan`]) above them,
//! this on top.

#[cfg(daemonic_clone_vm)]
use rustix::fd::OwnedFd;
use rustix::fs::FileType;
#[cfg(daemonic_clone_vm)]
use rustix::io::Errno;
use rustix::process::Pid;

use crate::caller;
use crate::daemon::Daemon;
use crate::error::{Error, Step};
use crate::exec::Exec;
use crate::execpaths::ExecPaths;
#[cfg(daemonic_clone_vm)]
use crate::execpaths::{self, StartVforked};
use crate::fork::{Forked, fork};
use crate::plan::{Detach, Plan};
use crate::progress::Progress;
use crate::setup::{self, Setup};
#[cfg(daemonic_clone_vm)]
use crate::time::Deadline;
use crate::{report, sequence};

/// A failed start, and when it failed.
pub(crate) struct Failed {
    pub(crate) error: Error,
    /// A daemon had been forked (it has ended since; nothing is left).
    /// Read by the builder, which returns only what came before.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) forked: bool,
}

impl Failed {
    /// A failure a forked daemon reported, or the caller saw in it.
    fn forked(error: Error) -> Failed {
        Failed {
            error,
            forked: true,
        }
    }
}

/// What `?` makes of an error: one found before anything forked.
impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            forked: false,
        }
    }
}

impl<'a> Plan<'a> {
    /// Starts the daemon: returns [`Started::Parent`] in the calling process
    /// once the daemon is ready, and [`Started::Daemon`] in the daemon (with
    /// [`exec`](Plan::exec), the daemon becomes the program instead).
    ///
    /// Before anything forks: the plan is checked, the PID file locked and
    /// the report pipe made. The first child calls `setsid` and forks the
    /// daemon, then `_exit`s. The daemon runs the steps of
    /// [the sequence](crate#the-sequence) and, with
    /// [`Readiness::WhenStarted`](crate::Readiness::WhenStarted), reports ready. A failure in any step
    /// travels back to the caller, which returns it as an error with no
    /// daemon, no zombie and no PID file left.
    ///
    /// # In the daemon
    ///
    /// Between the fork and the return, the child runs system calls on data
    /// prepared before the fork: nothing allocates, takes a lock or panics,
    /// so starting from a multithreaded program is safe. After the return,
    /// the daemon runs the program's code with one thread: the one that
    /// called `start`. If other threads existed, locks they held at the fork
    /// stay held in the daemon (glibc's `malloc` and Rust's default allocator
    /// on it prepare for that; a plain spin-lock allocator does not).
    ///
    /// # Errors
    ///
    /// In the caller only: see [`Error`]. Every error means no daemon is
    /// running and no PID file was left by this start.
    pub fn start(&self) -> Result<Started<'a>, Error> {
        self.start_telling_when().map_err(|failed| failed.error)
    }

    /// [`start`](Self::start), telling apart the errors found before
    /// anything forked from those of a daemon that was forked (and has
    /// ended since): the builder returns the first and reports the second.
    pub(crate) fn start_telling_when(&self) -> Result<Started<'a>, Failed> {
        self.check()?;
        // Decided once: with Detach::Auto it asks the system.
        let detaches = self.detaches();
        self.check_threads(detaches)?;
        // Where a cloned daemon records its step: declared before `setup`,
        // which points at it, so that it outlives it.
        #[cfg(daemonic_clone_vm)]
        let clone_progress = core::sync::atomic::AtomicU8::new(0);
        let mut setup = Setup::prepare(self)?;
        if let Err(error) = setup.move_own_fds(self) {
            setup.remove_pid_file(self);
            return Err(error.into());
        }
        if !detaches {
            return Ok(Started::Daemon(sequence::run_in_place(self, setup)?));
        }
        // Until the fork, a failure leaves the PID file to this process.
        let failed = |setup: &Setup, step: Step, errno| {
            setup.remove_pid_file(self);
            Error::Os { step, errno }
        };
        let (reader, writer) = report::pipe().map_err(|e| failed(&setup, Step::ReportPipe, e))?;
        let writer = match setup::off_overwritten(writer, self, true) {
            Ok(writer) => writer,
            Err(error) => {
                setup.remove_pid_file(self);
                return Err(error.into());
            }
        };
        #[cfg(daemonic_clone_vm)]
        if let Some(start_vforked) = self.vforks() {
            // SAFETY: `clone_progress` outlives `setup` (declared before
            // it), and the children are done with it once start_vforked
            // returns: the leader has exited, the daemon has executed the
            // program or ended.
            setup.progress = Some(unsafe { Progress::in_caller(&clone_progress) });
            // When the cloned daemon's timer kills it (see KillTimer),
            // counted from before the clone: the caller is suspended until
            // the daemon has executed the program or ended.
            let killed_at = self.ready_timeout.map(Deadline::after);
            if let Some(forked) = start_vforked(self, &writer, &setup) {
                let session_leader = forked.map_err(|e| failed(&setup, Step::Fork, e))?;
                drop(writer);
                setup.program_ready_writer = None;
                let pid = caller::await_report(self, reader, session_leader, &mut setup, killed_at)
                    .map_err(Failed::forked)?;
                return Ok(Started::Parent(Parent { pid }));
            }
        }
        // A forked daemon records its steps in a shared page (the cloned
        // one in the caller's own memory, above).
        setup.progress = Progress::new();
        let forked = fork().map_err(|e| failed(&setup, Step::Fork, e))?;
        match forked {
            Forked::Parent(session_leader) => {
                drop(writer);
                setup.program_ready_writer = None;
                let pid = caller::await_report(self, reader, session_leader, &mut setup, None)
                    .map_err(Failed::forked)?;
                Ok(Started::Parent(Parent { pid }))
            }
            Forked::Child => {
                drop(reader);
                setup.program_ready_reader = None;
                let daemon = sequence::run_detached(self, writer, setup);
                Ok(Started::Daemon(daemon))
            }
        }
    }

    /// The clone path, when this start makes its children with
    /// `clone(CLONE_VM | CLONE_VFORK)` rather than `fork`: a detached start
    /// that executes a program (the daemon never returns into the caller's
    /// code), resets signals (so no handler of the caller runs in the
    /// children) and does not wait for the program's own readiness (the
    /// session leader would then wait for the daemon to end, keeping the
    /// caller suspended).
    #[cfg(daemonic_clone_vm)]
    fn vforks(&self) -> Option<StartVforked> {
        let (_, paths) = execpaths::of(self)?;
        (self.reset_signals && self.program_readiness.is_none()).then_some(paths.start_vforked)
    }

    /// Refuses to fork a daemon that returns into the caller's code from a
    /// process with other threads, unless allowed
    /// ([`Plan::allow_threads`]): counted from `/proc/self/stat` (where
    /// there is no `/proc`, nothing is refused).
    fn check_threads(&self, detaches: bool) -> Result<(), Error> {
        if self.allow_threads || self.exec.is_some() || !detaches {
            return Ok(());
        }
        match crate::fork::threads() {
            Some(threads) if threads > 1 => Err(Error::Threaded { threads }),
            _ => Ok(()),
        }
    }

    /// Makes the daemon execute a program as its last step (default: none,
    /// and `start` returns in the daemon). A failed exec reaches the caller
    /// as [`Step::Exec`] with its errno. (Here, not in plan.rs: the code
    /// that executes it, `EXEC_PATHS`, is this module's.)
    pub const fn exec(mut self, exec: Exec<'a>) -> Self {
        self.exec = Some((exec, &EXEC_PATHS));
        self
    }

    /// Whether this start forks, deciding [`Detach::Auto`].
    pub(crate) fn detaches(&self) -> bool {
        match self.detach {
            Detach::Always => true,
            Detach::Never => false,
            Detach::Auto => !started_by_init_or_superserver(),
        }
    }
}

/// The code only a plan that executes a program runs ([`ExecPaths`]):
/// [`Plan::exec`] stores a reference to it, and nothing else refers to
/// these functions, so a program that never calls `exec` links none of them.
pub(crate) const EXEC_PATHS: ExecPaths = ExecPaths {
    exec: sequence::exec_program,
    hear_program: caller::hear_program,
    #[cfg(daemonic_clone_vm)]
    start_vforked,
};

/// [`sequence::start_vforked`] on two stacks of its own.
#[cfg(daemonic_clone_vm)]
fn start_vforked(
    plan: &Plan<'_>,
    report: &OwnedFd,
    setup: &Setup,
) -> Option<rustix::io::Result<Pid>> {
    use crate::fork::ChildStack;
    let stacks = [ChildStack::new().ok()?, ChildStack::new().ok()?];
    match sequence::start_vforked(plan, report, setup, &stacks) {
        Err(Errno::NOSYS | Errno::PERM | Errno::INVAL) => None,
        result => Some(result),
    }
}

/// The parent is init, or standard input is a socket (inetd).
fn started_by_init_or_superserver() -> bool {
    if rustix::process::getppid().is_some_and(|pid| pid.as_raw_pid() == 1) {
        return true;
    }
    // SAFETY: fd 0 is only borrowed for this fstat; if it is closed, fstat
    // answers EBADF.
    let stdin = unsafe { rustix::fd::BorrowedFd::borrow_raw(0) };
    rustix::fs::fstat(stdin)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Socket)
}

/// What [`Plan::start`] returns, in each of the two processes.
// Boxing the daemon's handle would allocate, which no_std cannot, and the
// value is returned once per process.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Started<'a> {
    /// In the calling process: the daemon is running and ready.
    Parent(Parent),
    /// In the daemon.
    Daemon(Daemon<'a>),
}

/// The calling process's view of a started daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parent {
    pid: Pid,
}

impl Parent {
    /// The daemon's PID.
    pub fn pid(&self) -> Pid {
        self.pid
    }
}
