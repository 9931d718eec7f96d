//! The table of what only a plan that executes a program runs, and the way
//! to it from a plan. The plan holds the table type-erased (as `dyn Any`),
//! so that plan.rs, which everything imports, names no module above it;
//! the modules that run the table's functions (sequence, caller, start)
//! get it back here.

use core::any::Any;

use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::process::Pid;

use crate::error::Step;
use crate::exec::Exec;
use crate::notify::Heard;
use crate::plan::Plan;
use crate::setup::Setup;

/// The program a plan executes, and the code that executes it.
pub(crate) fn of<'p, 'a>(plan: &'p Plan<'a>) -> Option<(&'p Exec<'a>, &'static ExecPaths)> {
    let (exec, code) = plan.exec.as_ref()?;
    let code: &'static (dyn Any + Send + Sync) = *code;
    Some((exec, code.downcast_ref::<ExecPaths>()?))
}

/// What only a plan that executes a program runs. [`Plan::exec`] stores a
/// reference to `start::EXEC_PATHS`, and nothing else refers to these functions:
/// a program that never calls `exec` (a daemon running its own code, as most
/// library users' are) links none of this code, the clone path above all
/// (about 3 KB of a static no_std daemon, measured with `bash ci/size`).
pub(crate) struct ExecPaths {
    /// The daemon's last steps: the fds the program keeps, then `execve`.
    /// Returns only on failure, with the step that failed.
    pub(crate) exec: ExecProgram,
    /// The caller's read of the program's readiness channel
    /// ([`Plan::program_readiness`], which needs `exec`).
    pub(crate) hear_program: fn(&Plan<'_>, &OwnedFd) -> Heard,
    /// The clone path's start, see [`Plan::vforks`].
    #[cfg(daemonic_clone_vm)]
    pub(crate) start_vforked: StartVforked,
}

/// A plan's `Debug` shows the program; the table's addresses say nothing.
impl core::fmt::Debug for ExecPaths {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ExecPaths")
    }
}

pub(crate) type ExecProgram =
    fn(&Plan<'_>, &Exec<'_>, &mut Setup, Option<&OwnedFd>, Pid) -> (Step, Errno);

/// The session leader's PID, or its error; `None` when this system will
/// not (stacks cannot be mapped, `clone` refused as unknown or forbidden):
/// then `fork` it is.
#[cfg(daemonic_clone_vm)]
pub(crate) type StartVforked = fn(&Plan<'_>, &OwnedFd, &Setup) -> Option<rustix::io::Result<Pid>>;
