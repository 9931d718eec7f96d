//! The no_std entry point: a plan of borrowed data, describing the daemon
//! (`start` runs it: see `start.rs`). Allocates nothing, forks nothing.

use core::ffi::CStr;
use core::time::Duration;

use rustix::fd::RawFd;

use crate::capabilities::{self, Capabilities};
use crate::error::{Error, Step};
use crate::exec::Exec;
use crate::fds::InheritedFds;
use crate::message::{Described, Subject};
use crate::privileges::Credentials;
use crate::resources::Limit;
use crate::stdio::Stdio;

/// When the daemon tells the caller it is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// As soon as the sequence is done, before `start` returns in the daemon
    /// (the default).
    WhenStarted,
    /// When the program calls [`Daemon::ready`](crate::Daemon::ready), after its own set-up (say,
    /// once its sockets are bound), so that whoever started it can rely on
    /// the service being there, as daemon(7) asks.
    Manual,
}

/// Whether to fork at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detach {
    /// Fork twice and leave the caller (the default).
    Always,
    /// Run every other step in this process: for systemd `Type=notify`
    /// services, containers and supervisors that want their child to stay.
    Never,
    /// Fork unless already a daemon's child of init or a super-server: the
    /// parent is PID 1, or standard input is a socket (inetd), as
    /// python-daemon's `detach_process` decides.
    Auto,
}

/// How the caller learns that an executed program is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramReadiness<'a> {
    /// The caller binds an `AF_UNIX` datagram socket at this path (`@name`:
    /// abstract, Linux only: refused by `start` elsewhere) and waits for `READY=1` on it, as systemd does for
    /// `Type=notify`. The program's environment must name it as
    /// `NOTIFY_SOCKET` (the std builder adds it). `ERRNO=N` fails the start;
    /// `EXTEND_TIMEOUT_USEC=N` extends the wait.
    NotifySocket(&'a CStr),
    /// The program writes a newline to this fd (above 2), s6's
    /// `notification-fd` protocol.
    Fd(RawFd),
}

/// Everything the daemon needs, prepared before anything forks, borrowed
/// from the caller. Works without `std` and allocates nothing.
///
/// Defaults, each chosen for a daemon that cannot hurt the system it runs on:
///
/// | option | default | why |
/// |---|---|---|
/// | [`working_directory`](Plan::working_directory) | `/` | keeps no mount point busy |
/// | [`umask`](Plan::umask) | `0o022` | files the program creates 0666 come out 0644, not world-writable (daemon(7) says 0, which leaves modes to each `open` call; most programs pass 0666 and expect a umask) |
/// | [`stdin`](Plan::stdin), [`stdout`](Plan::stdout), [`stderr`](Plan::stderr) | [`Stdio::Null`] | no terminal is held open |
/// | [`pid_file`](Plan::pid_file) | none | locked with `flock` for the daemon's life |
/// | [`inherited_fds`](Plan::inherited_fds) | [`InheritedFds::Close`] | but [`keep_fds`](Plan::keep_fds) |
/// | [`reset_signals`](Plan::reset_signals) | on | handlers to `SIG_DFL` (SIGPIPE stays ignored unless exec), mask emptied |
/// | [`chroot`](Plan::chroot) | none | |
/// | [`user`](Plan::user), [`group`](Plan::group), [`groups`](Plan::groups) | unchanged | |
/// | [`disable_core_dumps`](Plan::disable_core_dumps) | off | |
/// | [`nice`](Plan::nice) | unchanged | |
/// | [`limits`](Plan::limits) | unchanged | |
/// | [`capabilities`](Plan::capabilities) | unchanged (Linux) | |
/// | [`no_new_privileges`](Plan::no_new_privileges) | off (Linux) | |
/// | [`exec`](Plan::exec) | none: `start` returns in the daemon | |
/// | [`detach`](Plan::detach) | [`Detach::Always`] | |
/// | [`readiness`](Plan::readiness) | [`Readiness::WhenStarted`] | |
/// | [`notify_socket`](Plan::notify_socket), [`notify_fd`](Plan::notify_fd) | none | told when the daemon is ready |
/// | [`ready_timeout`](Plan::ready_timeout) | 60 s | start-stop-daemon's `--notify-timeout` default |
///
/// # Example
///
/// ```no_run
/// use daemonic::{Plan, Started};
///
/// let plan = Plan::new().pid_file(c"/run/mydaemon.pid").umask(0o027);
/// match plan.start() {
///     Ok(Started::Parent(parent)) => {
///         // The daemon is up: its PID is in the file and here.
///         println!("started {}", parent.pid().as_raw_pid());
///     }
///     Ok(Started::Daemon(daemon)) => {
///         // Here runs the daemon: no terminal, its own session, cwd `/`.
///         # let _ = daemon;
///     }
///     Err(error) => eprintln!("mydaemon: {error}"),
/// }
/// ```
///
/// Each option returns the changed plan (a `Plan` is `Copy`): a call whose
/// result is dropped changes nothing, and the compiler says so.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// let plan = daemonic::Plan::new();
/// plan.umask(0o077); // dropped: `plan` keeps 0o022
/// ```
///
/// ```
/// #![deny(unused_must_use)]
/// let plan = daemonic::Plan::new();
/// let plan = plan.umask(0o077);
/// # let _ = plan;
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a Plan does nothing until started, and each option returns the changed plan"]
pub struct Plan<'a> {
    pub(crate) working_directory: &'a CStr,
    pub(crate) umask: u32,
    pub(crate) stdin: Stdio<'a>,
    pub(crate) stdout: Stdio<'a>,
    pub(crate) stderr: Stdio<'a>,
    pub(crate) pid_file: Option<&'a CStr>,
    pub(crate) inherited_fds: InheritedFds,
    pub(crate) keep_fds: &'a [RawFd],
    pub(crate) reset_signals: bool,
    pub(crate) chroot: Option<&'a CStr>,
    pub(crate) credentials: Credentials<'a>,
    pub(crate) disable_core_dumps: bool,
    pub(crate) nice: Option<i32>,
    pub(crate) limits: &'a [Limit],
    pub(crate) capabilities: Option<Capabilities>,
    pub(crate) no_new_privileges: bool,
    /// The code of the two above, once either is asked for.
    pub(crate) privilege_steps: Option<&'static capabilities::Steps>,
    /// The program, and the code that executes it: `execpaths::ExecPaths`,
    /// held as `dyn Any` (see execpaths.rs) and set by [`Plan::exec`].
    pub(crate) exec: Option<(Exec<'a>, &'static (dyn core::any::Any + Send + Sync))>,
    pub(crate) detach: Detach,
    pub(crate) allow_threads: bool,
    pub(crate) readiness: Readiness,
    pub(crate) notify_socket: Option<&'a CStr>,
    pub(crate) notify_fd: Option<RawFd>,
    pub(crate) program_readiness: Option<ProgramReadiness<'a>>,
    pub(crate) ready_timeout: Option<Duration>,
}

/// The default time the caller waits for the daemon to report.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The default file mode creation mask of the daemon.
pub const DEFAULT_UMASK: u32 = 0o022;

impl Default for Plan<'_> {
    fn default() -> Self {
        Plan::new()
    }
}

impl<'a> Plan<'a> {
    /// A plan with every default (see the table above).
    pub const fn new() -> Plan<'a> {
        Plan {
            working_directory: c"/",
            umask: DEFAULT_UMASK,
            stdin: Stdio::Null,
            stdout: Stdio::Null,
            stderr: Stdio::Null,
            pid_file: None,
            inherited_fds: InheritedFds::Close,
            keep_fds: &[],
            reset_signals: true,
            chroot: None,
            credentials: Credentials {
                uid: None,
                gid: None,
                groups: None,
            },
            disable_core_dumps: false,
            nice: None,
            limits: &[],
            capabilities: None,
            no_new_privileges: false,
            privilege_steps: None,
            exec: None,
            detach: Detach::Always,
            allow_threads: false,
            readiness: Readiness::WhenStarted,
            notify_socket: None,
            notify_fd: None,
            program_readiness: None,
            ready_timeout: Some(DEFAULT_READY_TIMEOUT),
        }
    }

    /// The daemon's working directory (default `/`). A relative path is
    /// resolved against the caller's working directory; under
    /// [`chroot`](Plan::chroot), inside the new root.
    pub const fn working_directory(mut self, dir: &'a CStr) -> Self {
        self.working_directory = dir;
        self
    }

    /// The daemon's file mode creation mask (default `0o022`). Bits above
    /// `0o777` are refused by [`start`](Plan::start).
    pub const fn umask(mut self, mask: u32) -> Self {
        self.umask = mask;
        self
    }

    /// Where standard input comes from (default `/dev/null`). Files are
    /// opened before [`chroot`](Plan::chroot), relative to the caller.
    pub const fn stdin(mut self, stdio: Stdio<'a>) -> Self {
        self.stdin = stdio;
        self
    }

    /// Where standard output goes (default `/dev/null`).
    pub const fn stdout(mut self, stdio: Stdio<'a>) -> Self {
        self.stdout = stdio;
        self
    }

    /// Where standard error goes (default `/dev/null`).
    pub const fn stderr(mut self, stdio: Stdio<'a>) -> Self {
        self.stderr = stdio;
        self
    }

    /// The PID file (default: none). [`start`](Plan::start) opens it with
    /// `O_NOFOLLOW` and locks it with `flock` before forking: a running
    /// daemon holding it makes the start fail with
    /// [`Error::AlreadyRunning`]; a file nobody holds is stale and taken
    /// over. The daemon writes its PID, holds the lock for its life (across
    /// [`exec`](Plan::exec) too) and removes the file when its
    /// [`Daemon`](crate::Daemon) handle is dropped. A relative path is resolved against the
    /// caller's working directory.
    pub const fn pid_file(mut self, path: &'a CStr) -> Self {
        self.pid_file = Some(path);
        self
    }

    /// What happens to inherited fds above 2 (default: closed).
    pub const fn inherited_fds(mut self, policy: InheritedFds) -> Self {
        self.inherited_fds = policy;
        self
    }

    /// Fds above 2 that stay open in the daemon (say, a listening socket).
    pub const fn keep_fds(mut self, fds: &'a [RawFd]) -> Self {
        self.keep_fds = fds;
        self
    }

    /// Whether to put every signal handler back to `SIG_DFL` and unblock
    /// every signal (default on). SIGPIPE stays ignored if it was, unless
    /// the daemon [`exec`](Plan::exec)s: Rust's runtime ignores it and Rust
    /// code expects `EPIPE`.
    pub const fn reset_signals(mut self, reset: bool) -> Self {
        self.reset_signals = reset;
        self
    }

    /// A new root directory for the daemon (default: none). Needs root.
    pub const fn chroot(mut self, dir: &'a CStr) -> Self {
        self.chroot = Some(dir);
        self
    }

    /// The user id the daemon runs as (default: the caller's), set last,
    /// after [`group`](Plan::group) and [`groups`](Plan::groups), and then
    /// checked: `setuid(0)` must fail. The PID file is written before the
    /// switch; afterwards the daemon cannot remove it from a directory only
    /// root may write, so it stays (unlocked, taken over by the next start)
    /// unless whoever stops the daemon removes it (`daemonic --stop`,
    /// systemd's `PIDFile=`) or it lives in a directory the user owns.
    /// Ids only: resolve names before (the std builder's `user` takes names).
    ///
    /// ```no_run
    /// use daemonic::Plan;
    ///
    /// // nobody:nogroup on Debian, with no supplementary groups left over
    /// // from root (which the daemonize crate keeps).
    /// Plan::new().user(65534).group(65534).groups(&[65534]).start()?;
    /// # Ok::<(), daemonic::Error>(())
    /// ```
    pub const fn user(mut self, uid: u32) -> Self {
        self.credentials.uid = Some(uid);
        self
    }

    /// The group id the daemon runs as (default: the caller's).
    pub const fn group(mut self, gid: u32) -> Self {
        self.credentials.gid = Some(gid);
        self
    }

    /// The daemon's supplementary groups, replacing the caller's (default:
    /// the caller's, which only root may change; `&[]` clears them).
    pub const fn groups(mut self, groups: &'a [u32]) -> Self {
        self.credentials.groups = Some(groups);
        self
    }

    /// All three at once (the std builder's resolved names).
    #[cfg(feature = "std")]
    pub(crate) const fn credentials(mut self, credentials: Credentials<'a>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Sets `RLIMIT_CORE` to 0 in the daemon (default: unchanged).
    pub const fn disable_core_dumps(mut self, disable: bool) -> Self {
        self.disable_core_dumps = disable;
        self
    }

    /// Adds `increment` to the daemon's nice value (default: unchanged).
    pub const fn nice(mut self, increment: i32) -> Self {
        self.nice = Some(increment);
        self
    }

    /// Sets each of `limits` in the daemon, as root before the user changes
    /// (systemd's `LimitNOFILE=` and the rest; default: as inherited).
    /// A soft limit above its hard one is refused before the fork.
    pub const fn limits(mut self, limits: &'a [Limit]) -> Self {
        self.limits = limits;
        self
    }

    /// Keeps exactly `keep` of the daemon's capabilities, and hands them to
    /// the program it executes (Linux; systemd's `AmbientCapabilities=`
    /// with a `CapabilityBoundingSet=` of the same): before the user
    /// changes, the bounding set is reduced to `keep` and the permitted set
    /// kept across the change; after it, `keep` is the permitted,
    /// effective, inheritable and ambient set. So a program run as an
    /// unprivileged [`user`](Plan::user) binds port 80 with
    /// `CAP_NET_BIND_SERVICE` and can gain nothing else, even by a set-uid
    /// program. Needs root (`CAP_SETPCAP`); elsewhere than Linux refused
    /// before the fork.
    ///
    /// ```no_run
    /// use daemonic::{Capabilities, Plan};
    ///
    /// let net_bind_service = Capabilities::by_name(b"net_bind_service").unwrap();
    /// let plan = Plan::new()
    ///     .user(65534)
    ///     .group(65534)
    ///     .capabilities(Capabilities::EMPTY.with(net_bind_service));
    /// # let _ = plan;
    /// ```
    pub const fn capabilities(mut self, keep: Capabilities) -> Self {
        self.capabilities = Some(keep);
        self.privilege_steps = Some(&capabilities::STEPS);
        self
    }

    /// Sets `no_new_privs` last (Linux; systemd's `NoNewPrivileges=`): no
    /// `execve` of the daemon or what it starts gains privileges from a
    /// set-uid bit or file capabilities (default: off). Elsewhere than
    /// Linux refused before the fork.
    pub const fn no_new_privileges(mut self, set: bool) -> Self {
        self.no_new_privileges = set;
        if set {
            self.privilege_steps = Some(&capabilities::STEPS);
        }
        self
    }

    /// Whether to fork (default [`Detach::Always`]).
    pub const fn detach(mut self, detach: Detach) -> Self {
        self.detach = detach;
        self
    }

    /// Whether to start a daemon that returns into this program's code
    /// from a process with other threads (default `false`: refused before
    /// the fork with [`Error::Threaded`]). `fork` copies only the calling
    /// thread: the daemon has none of the others (an async runtime's
    /// workers, a logger's), and locks they held stay taken in it, so code
    /// that waits on them hangs. The safe patterns: start before any thread
    /// (before building a runtime: `#[tokio::main]` builds one first), or
    /// [`exec`](Self::exec) a program (allowed, as nothing of this program
    /// runs in the daemon), or stay in place ([`Detach::Never`]). Allow it
    /// only for code after the start that needs none of the other threads
    /// and none of their locks (the default allocators of glibc and Rust on
    /// it prepare for the fork; see [why nothing may allocate after
    /// fork](crate#why-nothing-may-allocate-after-fork)).
    pub const fn allow_threads(mut self, allow: bool) -> Self {
        self.allow_threads = allow;
        self
    }

    /// When the daemon reports ready (default [`Readiness::WhenStarted`]).
    pub const fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// A `NOTIFY_SOCKET` to send `READY=1` and `MAINPID=` to when the daemon
    /// is ready (default: none; the std builder takes the environment's), so
    /// the daemon runs under systemd `Type=notify`. A path, or `@name` for
    /// an abstract socket (Linux only: [`start`](Plan::start) refuses one
    /// elsewhere, before anything forks).
    pub const fn notify_socket(mut self, socket: &'a CStr) -> Self {
        self.notify_socket = Some(socket);
        self
    }

    /// An fd the daemon writes a newline to, and closes, when it is ready
    /// (s6's notification fd; default: none).
    pub const fn notify_fd(mut self, fd: RawFd) -> Self {
        self.notify_fd = Some(fd);
        self
    }

    /// With [`exec`](Plan::exec): wait until the executed program itself
    /// says it is ready (default: the exec's success is enough).
    pub const fn program_readiness(mut self, readiness: ProgramReadiness<'a>) -> Self {
        self.program_readiness = Some(readiness);
        self
    }

    /// How long the caller waits for the daemon to report ready or failed
    /// (default 60 s; `None` waits for ever). When it runs out, the daemon
    /// is killed and its PID file removed.
    pub const fn ready_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// `error`, as this plan's [`start`](Plan::start) returned it, with what
    /// it failed on: the PID file's path, a stream's file, the directory,
    /// the program, the user or group id. Allocates nothing.
    ///
    /// `failed to change directory (chdir) to /srv/missing: No such file or
    /// directory (os error 2)` rather than `failed to change directory
    /// (chdir): No such file or directory (os error 2)`.
    pub fn describe<'p>(&'p self, error: &'p Error) -> Described<'p> {
        let path = |path: &'p CStr| Some(Subject::Path(path.to_bytes()));
        let subject = match error.step() {
            Some(Step::PidFile) => self.pid_file.and_then(path),
            Some(Step::RedirectStdin) => self.stdin.path().and_then(path),
            Some(Step::RedirectStdout) => self.stdout.path().and_then(path),
            Some(Step::RedirectStderr) => self.stderr.path().and_then(path),
            Some(Step::ChangeDirectory) => path(self.working_directory),
            Some(Step::ChangeRoot) => self.chroot.and_then(path),
            Some(Step::Exec) => self.exec.and_then(|(exec, _)| path(exec.program)),
            Some(Step::SetUid) => self.credentials.uid.map(|id| Subject::Id("uid", id)),
            Some(Step::SetGid) => self.credentials.gid.map(|id| Subject::Id("gid", id)),
            _ => None,
        };
        Described { error, subject }
    }

    /// Checks what can be checked without the daemon.
    // Out of line: one copy, however many callers LTO sees (ci/size measures).
    #[inline(never)]
    pub(crate) fn check(&self) -> Result<(), Error> {
        let invalid = |option, reason| Err(Error::Invalid { option, reason });
        if self.umask & !0o777 != 0 {
            return invalid("umask", "has bits above 0o777");
        }
        if let Some(readiness) = self.program_readiness {
            if self.exec.is_none() {
                return invalid(
                    "program_readiness",
                    "needs exec: only an executed program reports itself",
                );
            }
            if let ProgramReadiness::Fd(fd) = readiness {
                if fd <= 2 {
                    return invalid("program_readiness", "the fd must be above 2");
                }
                if self.keep_fds.contains(&fd) {
                    return invalid("program_readiness", "the fd is also in keep_fds");
                }
            }
        }
        for &fd in self.keep_fds.iter().chain(&self.notify_fd) {
            check_open(fd)?;
        }
        if !self.limits.iter().all(Limit::is_ordered) {
            return invalid("limits", "a soft limit is above its hard limit");
        }
        if !cfg!(any(target_os = "linux", target_os = "android"))
            && (self.capabilities.is_some() || self.no_new_privileges)
        {
            return invalid(
                "capabilities",
                "capabilities and no_new_privileges are Linux-only",
            );
        }
        // A Linux feature asked for elsewhere is refused here, not found
        // missing in the daemon.
        #[cfg(not(daemonic_abstract_sockets))]
        {
            let program_socket = match self.program_readiness {
                Some(ProgramReadiness::NotifySocket(path)) => Some(path),
                _ => None,
            };
            for socket in self.notify_socket.iter().chain(&program_socket) {
                if socket.to_bytes().starts_with(b"@") {
                    return invalid(
                        "notify_socket",
                        "abstract socket names (@name) are Linux-only",
                    );
                }
            }
        }
        if self.program_readiness.is_some() && self.detach == Detach::Never {
            return invalid(
                "program_readiness",
                "needs a detached start: no caller is left to wait",
            );
        }
        Ok(())
    }
}

/// An fd the daemon is to keep or write to must be open now: a number
/// that names nothing (or, later, something else) would otherwise surface
/// in the daemon, where nothing can be asked any more.
fn check_open(fd: RawFd) -> Result<(), Error> {
    let invalid = |reason| {
        Err(Error::Invalid {
            option: "keep_fds",
            reason,
        })
    };
    if fd < 0 {
        return invalid("an fd number is negative");
    }
    // SAFETY: the fd is only borrowed for this fcntl, which answers EBADF
    // when it is not open.
    let borrowed = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    match rustix::io::fcntl_getfd(borrowed) {
        Ok(_) => Ok(()),
        Err(_) => invalid("an fd to keep (or the notification fd) is not open"),
    }
}
