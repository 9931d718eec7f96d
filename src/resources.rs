//! Resource settings of the daemon: core dumps, limits and scheduling
//! priority.

use rustix::io;
pub use rustix::process::Resource;
use rustix::process::Rlimit;

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

/// One resource limit for the daemon ([`Plan::limits`](crate::Plan::limits)),
/// as [`setrlimit(2)`](https://man7.org/linux/man-pages/man2/setrlimit.2.html)
/// takes it: `None` is `RLIM_INFINITY`.
///
/// ```
/// use daemonic::{Limit, Resource};
///
/// // systemd's LimitNOFILE=4096:65536, and no core files.
/// let limits = [
///     Limit::new(Resource::Nofile, Some(4096), Some(65536)),
///     Limit::new(Resource::Core, Some(0), Some(0)),
/// ];
/// let plan = daemonic::Plan::new().limits(&limits);
/// # let _ = plan;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Which limit.
    pub resource: Resource,
    /// The soft limit, what the kernel enforces (`None`: unlimited).
    pub soft: Option<u64>,
    /// The hard limit, the ceiling an unprivileged process may raise its
    /// soft limit to (`None`: unlimited).
    pub hard: Option<u64>,
}

impl Limit {
    /// `resource` limited to `soft`, at most `hard`.
    pub const fn new(resource: Resource, soft: Option<u64>, hard: Option<u64>) -> Limit {
        Limit {
            resource,
            soft,
            hard,
        }
    }

    /// Whether the soft limit is within the hard one, as `setrlimit`
    /// requires.
    pub(crate) const fn is_ordered(&self) -> bool {
        match (self.soft, self.hard) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(soft), Some(hard)) => soft <= hard,
        }
    }
}

/// Sets each limit, in order (a hard limit is raised only as root: the
/// step runs before the user changes).
pub(crate) fn set_limits(limits: &[Limit]) -> io::Result<()> {
    for limit in limits {
        let rlimit = Rlimit {
            current: limit.soft,
            maximum: limit.hard,
        };
        rustix::process::setrlimit(limit.resource, rlimit)?;
    }
    Ok(())
}
