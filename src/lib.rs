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
//! | # | step | call | option (default) |
//! |---|---|---|---|
//! | 1 | check and prepare | none: paths are `&CStr`s, vectors laid out | |
//! | 2 | lock the PID file | [`open(O_NOFOLLOW)`][open], [`flock`][flock] | [`Plan::pid_file`] (none) |
//! | 3 | report pipe | [`pipe2(O_CLOEXEC)`][pipe2] | |
//! | 4 | fork | [`fork`][fork] | [`Plan::detach`] (always) |
//! | 5 | new session | [`setsid`][setsid] | |
//! | 6 | fork again, leader exits | [`fork`][fork], [`_exit`][exit] | |
//! | 7 | signals to default, mask empty | [`sigaction`][sigaction], [`sigprocmask`][sigprocmask] | [`Plan::reset_signals`] (on) |
//! | 8 | umask | [`umask`][umask] | [`Plan::umask`] (`022`) |
//! | 9 | standard streams | [`open(O_NOCTTY)`][open], [`dup2`][dup2] | [`Plan::stdin`], [`Plan::stdout`], [`Plan::stderr`] (`/dev/null`) |
//! | 10 | new root | [`chroot`][chroot] | [`Plan::chroot`] (none) |
//! | 11 | working directory | [`chdir`][chdir] | [`Plan::working_directory`] (`/`) |
//! | 12 | close inherited fds | [`close_range`][close_range], or a `/proc/self/fd` walk, or a loop | [`Plan::inherited_fds`] (close), [`Plan::keep_fds`] |
//! | 13 | core dumps, priority | [`setrlimit`][setrlimit], [`nice`][nice] | [`Plan::disable_core_dumps`], [`Plan::nice`] |
//! | 14 | write the PID | [`fstat`][fstat], [`ftruncate`][ftruncate] (a file not empty only), [`pwrite`][pwrite] | |
//! | 15 | drop privileges | [`setgroups`][setgroups], [`setresgid`][setresgid], [`setresuid`][setresuid] | [`Plan::user`], [`Plan::group`], [`Plan::groups`] (unchanged) |
//! | 16 | execute a program | [`execve`][execve] | [`Plan::exec`] (none) |
//! | 17 | ready | [`write`][write], `sd_notify`, notification fd | [`Plan::readiness`], [`Plan::notify_socket`], [`Plan::notify_fd`], [`Plan::program_readiness`] |
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
//! [flock]: https://man7.org/linux/man-pages/man2/flock.2.html
//! [sigaction]: https://man7.org/linux/man-pages/man2/sigaction.2.html
//! [sigprocmask]: https://man7.org/linux/man-pages/man2/sigprocmask.2.html
//! [chroot]: https://man7.org/linux/man-pages/man2/chroot.2.html
//! [close_range]: https://man7.org/linux/man-pages/man2/close_range.2.html
//! [setrlimit]: https://man7.org/linux/man-pages/man2/setrlimit.2.html
//! [nice]: https://man7.org/linux/man-pages/man2/nice.2.html
//! [fstat]: https://man7.org/linux/man-pages/man2/fstat.2.html
//! [ftruncate]: https://man7.org/linux/man-pages/man2/ftruncate.2.html
//! [pwrite]: https://man7.org/linux/man-pages/man2/pwrite.2.html
//! [setgroups]: https://man7.org/linux/man-pages/man2/setgroups.2.html
//! [setresgid]: https://man7.org/linux/man-pages/man2/setresgid.2.html
//! [setresuid]: https://man7.org/linux/man-pages/man2/setresuid.2.html
//! [execve]: https://man7.org/linux/man-pages/man2/execve.2.html
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
// docs.rs (Cargo.toml's metadata) marks what needs a feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
// The docs point at the std builder; without `std` it does not exist.
#![cfg_attr(not(feature = "std"), allow(rustdoc::broken_intra_doc_links))]

// The C library this crate calls (fork, _exit, execve, clone, sigaction):
// with std, std links it; without, the libc crate only declares it, and a
// program that names it before this crate in the link (as a `#![no_main]`
// binary does) can find `execve` unresolved in a debug build.
#[cfg(not(feature = "std"))]
#[link(name = "c")]
unsafe extern "C" {}

mod caller;
mod capabilities;
mod daemon;
#[doc(hidden)]
pub mod decimal;
mod error;
mod exec;
mod execpaths;
#[doc(hidden)]
pub mod fds;
mod fork;
mod message;
mod notify;
mod parentdir;
mod pidfile;
mod plan;
mod privileges;
mod progress;
pub mod proof;
mod report;
mod resources;
mod sequence;
mod setup;
mod signals;
mod start;
mod stdio;
mod stop;
mod time;
mod trust;

#[cfg(feature = "std")]
mod builder;
#[cfg(feature = "std")]
mod lookup;
#[cfg(feature = "std")]
mod options;
#[cfg(feature = "std")]
mod prepare;
#[cfg(feature = "std")]
mod program;

#[cfg(feature = "std")]
pub use builder::{EXIT_START_FAILED, StartError};
pub use capabilities::Capabilities;
pub use daemon::Daemon;
pub use error::{Context, Error, ExitStatus, Step};
pub use exec::{CStrArray, Environment, Exec};
pub use fds::InheritedFds;
pub use message::{Described, write_os_error};
#[cfg(feature = "std")]
pub use options::{Daemonize, OwnedProgramReadiness, OwnedStdio};
pub use plan::{DEFAULT_READY_TIMEOUT, DEFAULT_UMASK, Detach, Plan, ProgramReadiness, Readiness};
#[cfg(feature = "std")]
pub use program::{Program, environment};
pub use resources::{Limit, Resource};
pub use start::{Parent, Started};
/// File descriptor types, as [`Stdio::Fd`] and [`proof`] take them.
///
/// With the `std` feature these are `std::os::fd`'s own types, so a
/// `std::fs::File`'s `as_fd()` goes straight in; without `std`, the same
/// names as rustix defines them, for `#![no_std]` programs that open fds
/// with rustix or libc.
///
/// ```
/// # #[cfg(feature = "std")] {
/// use daemonic::fd::AsFd;
/// let file = std::fs::File::open("/dev/null").unwrap();
/// let stdin = daemonic::Stdio::Fd(file.as_fd());
/// # let _ = stdin;
/// # }
/// ```
pub mod fd {
    pub use rustix::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
}
/// The `errno` values errors carry, and PIDs (re-exported from rustix).
pub use rustix::io::Errno;
pub use rustix::process::Pid;
pub use stdio::Stdio;
pub use stop::StopSignals;
