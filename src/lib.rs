//! Turn a process into a Unix daemon correctly: the whole sequence of
//! systemd's [daemon(7)] "SysV daemons" list, with raw system calls and no
//! heap allocation after `fork`, failures and readiness reported to the
//! process that started the daemon.
//!
//! Two ways in:
//!
//! - [`Plan`]: borrowed data (`&CStr` paths, plain numbers), works without
//!   `std` or `alloc`. [`Plan::start`] returns in both processes: the caller
//!   gets [`Started::Parent`] once the daemon is ready, the daemon gets
//!   [`Started::Daemon`].
//! - [`Daemonize`] (feature `std`, on by default): a builder that owns its
//!   data; [`Daemonize::daemonize`] returns only in the daemon, the caller
//!   exiting 0 once the daemon is ready, or non-zero with the error.
//!
//! # The sequence
//!
//! | # | step | call | why |
//! |---|---|---|---|
//! | 1 | prepare | (none) | paths are `&CStr`s, the PID text has a fixed buffer: the children allocate nothing |
//! | 2 | report pipe | [`pipe2(O_CLOEXEC)`][pipe2] | failures and readiness travel back to the caller |
//! | 3 | fork | [`fork`][fork] | the caller keeps running, to wait for the report |
//! | 4 | new session | [`setsid`][setsid] | leaves the caller's session and its controlling terminal |
//! | 5 | fork again | [`fork`][fork], [`_exit`][exit] | the daemon is no session leader, so it can never acquire a terminal; the session leader exits at once |
//! | 6 | umask | [`umask`][umask] | file modes independent of the caller's mask (default `022`) |
//! | 7 | working directory | [`chdir`][chdir] | keeps no mount point busy (default `/`) |
//! | 8 | standard streams | [`open`][open], [`dup2`][dup2] | `/dev/null` (checked to be the null device) or the files given |
//! | 9 | PID file | [`open(O_NOFOLLOW)`][open], [`write`][write] | the daemon's own PID, in one write; no symlink followed |
//! | 10 | ready | [`write`][write] to the report pipe | the caller returns only once the daemon is up |
//!
//! A failing step sends a fixed-size record (the step and the `errno`) and
//! ends its process with `_exit`; the caller returns it as an [`Error`]
//! whose message names both, having reaped the session leader and left no
//! daemon and no PID file.
//!
//! [daemon(7)]: https://man7.org/linux/man-pages/man7/daemon.7.html
//! [pipe2]: https://man7.org/linux/man-pages/man2/pipe.2.html
//! [fork]: https://man7.org/linux/man-pages/man2/fork.2.html
//! [setsid]: https://man7.org/linux/man-pages/man2/setsid.2.html
//! [exit]: https://man7.org/linux/man-pages/man2/_exit.2.html
//! [umask]: https://man7.org/linux/man-pages/man2/umask.2.html
//! [chdir]: https://man7.org/linux/man-pages/man2/chdir.2.html
//! [open]: https://man7.org/linux/man-pages/man2/open.2.html
//! [dup2]: https://man7.org/linux/man-pages/man2/dup.2.html
//! [write]: https://man7.org/linux/man-pages/man2/write.2.html
//!
//! # Why nothing may allocate after fork
//!
//! `fork` copies only the calling thread. A lock another thread held at that
//! moment (the allocator's, stdout's, the environment's) stays held in the
//! child for ever, and the child's first `malloc` or `println!` can hang.
//! POSIX allows only async-signal-safe calls in that child, so the sequence
//! here is plain system calls on data prepared before the fork.
//!
//! # Example
//!
//! ```no_run
//! use daemonic::{Plan, Readiness, Started};
//!
//! let plan = Plan::new()
//!     .pid_file(c"/run/example.pid")
//!     .readiness(Readiness::Manual);
//! match plan.start() {
//!     Ok(Started::Parent(parent)) => {
//!         println!("example running as {}", parent.pid().as_raw_pid());
//!     }
//!     Ok(Started::Daemon(mut daemon)) => {
//!         // ... bind sockets, open files ...
//!         daemon.ready().ok();
//!         // ... serve; dropping `daemon` removes the PID file.
//!     }
//!     Err(error) => eprintln!("example: {error}"),
//! }
//! ```
#![cfg_attr(all(not(feature = "std"), not(test)), no_std)]
#![warn(missing_docs)]
// The docs point at the std builder; without `std` it does not exist.
#![cfg_attr(not(feature = "std"), allow(rustdoc::broken_intra_doc_links))]

mod caller;
mod daemon;
mod error;
mod exec;
#[doc(hidden)]
pub mod fds;
mod fork;
mod notify;
mod pidfile;
mod plan;
mod privileges;
mod report;
mod resources;
mod sequence;
mod signals;
mod stdio;
mod time;

#[cfg(feature = "std")]
mod builder;

#[cfg(feature = "std")]
pub use builder::{AwaitReady, Daemonize, EXIT_START_FAILED, Redirect};
pub use daemon::Daemon;
pub use error::{Error, ExitStatus, Step};
pub use exec::{CStrArray, Environment, Exec};
pub use fds::InheritedFds;
pub use plan::{
    DEFAULT_READY_TIMEOUT, DEFAULT_UMASK, Detach, Parent, Plan, ProgramReadiness, Readiness,
    Started,
};
pub use privileges::Credentials;
/// File descriptor types as [`Stdio::Fd`] takes them: `std`'s own with the
/// `std` feature, rustix's stand-ins without it (re-exported from rustix).
pub use rustix::fd;
/// The `errno` values errors carry, and PIDs (re-exported from rustix).
pub use rustix::io::Errno;
pub use rustix::process::Pid;
pub use stdio::Stdio;
