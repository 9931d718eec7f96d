//! Resource settings of the daemon: core dumps and scheduling priority.

use rustix::io;
use rustix::process::{Resource, Rlimit};

/// `setrlimit(RLIMIT_CORE, 0)`: a crashing daemon dumps no core, which
/// could hold secrets it read as root (python-daemon's `prevent_core`).
pub(crate) fn disable_core_dumps() -> io::Result<()> {
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    rustix::process::setrlimit(Resource::Core, none)
}

/// [`nice(2)`](https://man7.org/linux/man-pages/man2/nice.2.html): adds
/// `increment` to the scheduling priority, as start-stop-daemon's
/// `--nicelevel` does.
pub(crate) fn nice(increment: i32) -> io::Result<()> {
    rustix::process::nice(increment).map(|_| ())
}
