//! With `std`: a builder that owns its data and a `daemonize` that returns
//! only in the daemon.

#![cfg_attr(docsrs, doc(cfg(feature = "std")))]

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::lookup::Id;
use crate::options::{Daemonize, OwnedProgramReadiness, OwnedStdio};
use crate::prepare::{Prepared, PreparedStdio};
use crate::{
    Capabilities, Daemon, Detach, Error, InheritedFds, Limit, Plan, Program, ProgramReadiness,
    Readiness, Started, Step,
};

/// Exit status of the calling process when [`Daemonize::daemonize`] could
/// not start the daemon.
pub const EXIT_START_FAILED: i32 = 1;

impl Default for Daemonize {
    fn default() -> Self {
        Daemonize::new()
    }
}

impl Daemonize {
    /// A builder with every default of [`Plan`]; the notification socket
    /// defaults to the environment's `NOTIFY_SOCKET`.
    pub fn new() -> Daemonize {
        let plan = Plan::new();
        Daemonize {
            working_directory: PathBuf::from("/"),
            umask: plan.umask,
            stdin: OwnedStdio::Null,
            stdout: OwnedStdio::Null,
            stderr: OwnedStdio::Null,
            pid_file: None,
            inherited_fds: plan.inherited_fds,
            keep_fds: Vec::new(),
            reset_signals: plan.reset_signals,
            chroot: None,
            user: None,
            group: None,
            disable_core_dumps: false,
            nice: None,
            limits: Vec::new(),
            capabilities: None,
            no_new_privileges: false,
            program: None,
            env_clear: false,
            env_changes: Vec::new(),
            detach: plan.detach,
            allow_threads: plan.allow_threads,
            readiness: plan.readiness,
            notify_socket: None,
            notify_fd: None,
            program_readiness: None,
            ready_timeout: plan.ready_timeout,
        }
    }

    /// The daemon's working directory (default `/`, so no mount point is
    /// kept busy); made absolute against the caller's before the fork. Under
    /// [`chroot`](Self::chroot), inside the new root. As [`Plan::working_directory`].
    pub fn working_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_directory = dir.into();
        self
    }

    /// The daemon's file mode creation mask (default `0o022`; bits above
    /// `0o777` are refused before the fork). As [`Plan::umask`].
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = mask;
        self
    }

    /// Where standard input comes from (default [`OwnedStdio::Null`]). A file
    /// is opened read-only, before any [`chroot`](Self::chroot). As
    /// [`Plan::stdin`].
    pub fn stdin(mut self, redirect: OwnedStdio) -> Self {
        self.stdin = redirect;
        self
    }

    /// Where standard output goes (default [`OwnedStdio::Null`]). A file is
    /// opened for appending, created 0640, before any
    /// [`chroot`](Self::chroot). As [`Plan::stdout`].
    pub fn stdout(mut self, redirect: OwnedStdio) -> Self {
        self.stdout = redirect;
        self
    }

    /// Where standard error goes (default [`OwnedStdio::Null`]); as
    /// [`stdout`](Self::stdout). As [`Plan::stderr`].
    pub fn stderr(mut self, redirect: OwnedStdio) -> Self {
        self.stderr = redirect;
        self
    }

    /// Standard output and standard error both appended to the file at
    /// `path` (created 0640), as the command's `--output` does: each
    /// stream opens it for appending, so their writes never overwrite
    /// each other's.
    ///
    /// ```no_run
    /// let daemon = daemonic::Daemonize::new()
    ///     .output("/var/log/mydaemon.log")
    ///     .daemonize();
    /// # let _ = daemon;
    /// ```
    pub fn output(self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.stdout(OwnedStdio::File(path.clone()))
            .stderr(OwnedStdio::File(path))
    }

    /// The PID file (default: none), opened `O_NOFOLLOW` and locked with
    /// `flock` before the fork: a running daemon holding it fails the start
    /// with [`Error::AlreadyRunning`]; a stale one is taken over. The daemon
    /// writes its PID, keeps the lock for life (on a read-only fd) and
    /// removes the file when its handle is dropped.
    ///
    /// With [`user`](Self::user), the daemon writes the file before it drops
    /// privileges, but cannot remove it from a directory only root may
    /// write (`/run`): the file stays, unlocked, and the next start takes it
    /// over. Let whoever stops the daemon remove it (`daemonic --stop` does,
    /// and systemd with `PIDFile=`), or put it in a directory the user owns
    /// (`/run/mydaemon/`, made by root). As [`Plan::pid_file`].
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pid_file = Some(path.into());
        self
    }

    /// What happens to inherited fds above 2 (default: closed, but those
    /// given to [`keep_fds`](Self::keep_fds)). As [`Plan::inherited_fds`].
    pub fn inherited_fds(mut self, policy: InheritedFds) -> Self {
        self.inherited_fds = policy;
        self
    }

    /// Fds above 2 that stay open in the daemon (say, a listening socket
    /// bound before the start); added to those given before. They must be
    /// open now. As [`Plan::keep_fds`].
    pub fn keep_fds(mut self, fds: impl IntoIterator<Item = RawFd>) -> Self {
        self.keep_fds.extend(fds);
        self
    }

    /// Whether to put every signal handler back to `SIG_DFL` and unblock
    /// every signal in the daemon (default on; SIGPIPE stays ignored unless
    /// the daemon executes a program). As [`Plan::reset_signals`].
    pub fn reset_signals(mut self, reset: bool) -> Self {
        self.reset_signals = reset;
        self
    }

    /// A new root directory for the daemon (default: none; needs root).
    /// Streams are opened before it, the working directory inside it. As
    /// [`Plan::chroot`].
    pub fn chroot(mut self, dir: impl Into<PathBuf>) -> Self {
        self.chroot = Some(dir.into());
        self
    }

    /// The user to run as, by name or number. By name, its primary group
    /// and (when started as root) its supplementary groups come with it; a
    /// number without a passwd entry needs a [`group`](Self::group) (root's
    /// group 0 is never kept by accident). Names are looked up before the
    /// fork. The daemon cannot remove a PID file from a directory only root
    /// may write: see [`pid_file`](Self::pid_file).
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(Id::parse(user));
        self
    }

    /// The group to run as, by name or number (overrides the user's).
    pub fn group(mut self, group: &str) -> Self {
        self.group = Some(Id::parse(group));
        self
    }

    /// Sets `RLIMIT_CORE` to 0 in the daemon, as python-daemon's
    /// `prevent_core` does (default: unchanged). As
    /// [`Plan::disable_core_dumps`].
    pub fn disable_core_dumps(mut self, disable: bool) -> Self {
        self.disable_core_dumps = disable;
        self
    }

    /// Adds `increment` to the daemon's nice value (default: unchanged). As
    /// [`Plan::nice`].
    pub fn nice(mut self, increment: i32) -> Self {
        self.nice = Some(increment);
        self
    }

    /// Sets a resource limit in the daemon (repeatable; default: as
    /// inherited). As [`Plan::limits`].
    ///
    /// ```no_run
    /// use daemonic::{Daemonize, Limit, Resource};
    ///
    /// let daemon = Daemonize::new()
    ///     .limit(Limit::new(Resource::Nofile, Some(65536), Some(65536)))
    ///     .daemonize();
    /// # let _ = daemon;
    /// ```
    pub fn limit(mut self, limit: Limit) -> Self {
        self.limits.push(limit);
        self
    }

    /// Keeps exactly these capabilities across the change of
    /// [`user`](Self::user), for the daemon and the program it executes
    /// (Linux). As [`Plan::capabilities`].
    ///
    /// ```no_run
    /// use daemonic::{Capabilities, Daemonize};
    ///
    /// let bind = Capabilities::by_name(b"net_bind_service").unwrap();
    /// let daemon = Daemonize::new()
    ///     .user("nobody")
    ///     .capabilities(Capabilities::EMPTY.with(bind))
    ///     .exec("/usr/sbin/httpd", ["-p", "80"])
    ///     .daemonize();
    /// # let _ = daemon;
    /// ```
    pub fn capabilities(mut self, keep: Capabilities) -> Self {
        self.capabilities = Some(keep);
        self
    }

    /// Sets `no_new_privs` in the daemon (Linux). As
    /// [`Plan::no_new_privileges`].
    pub fn no_new_privileges(mut self, set: bool) -> Self {
        self.no_new_privileges = set;
        self
    }

    /// Executes `program` with `args` (`argv[1..]`) as the daemon's last
    /// step. A program name without `/` is searched for in `PATH` first.
    pub fn exec<I, S>(mut self, program: impl Into<OsString>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.program = Some((program.into(), args.into_iter().map(Into::into).collect()));
        self
    }

    /// Sets an environment variable for the executed program.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env_changes.push((key.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable for the executed program.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env_changes.push((key.into(), None));
        self
    }

    /// Starts the executed program's environment empty (then [`env`](Self::env)).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env_changes.clear();
        self
    }

    /// Whether to fork at all (default [`Detach::Always`]; [`Detach::Never`]
    /// for systemd `Type=notify` and containers; [`Detach::Auto`] stays when
    /// started by init or inetd). As [`Plan::detach`].
    pub fn detach(mut self, detach: Detach) -> Self {
        self.detach = detach;
        self
    }

    /// When the daemon tells its caller it is ready (default
    /// [`Readiness::WhenStarted`]; with [`Readiness::Manual`], when the
    /// program calls [`Daemon::ready`]). As [`Plan::readiness`].
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// The `NOTIFY_SOCKET` the daemon tells when ready (default: the
    /// environment's; `None`: none).
    pub fn notify_socket(mut self, socket: Option<PathBuf>) -> Self {
        self.notify_socket = Some(socket);
        self
    }

    /// An fd the daemon writes a newline to, and closes, when it is ready
    /// (s6's notification fd; default: none). It must be open now. As
    /// [`Plan::notify_fd`].
    pub fn notify_fd(mut self, fd: RawFd) -> Self {
        self.notify_fd = Some(fd);
        self
    }

    /// With [`exec`](Self::exec): wait until the executed program itself
    /// says it is ready (default: the exec's success is enough). As
    /// [`Plan::program_readiness`].
    pub fn program_readiness(mut self, how: OwnedProgramReadiness) -> Self {
        self.program_readiness = Some(how);
        self
    }

    /// How long the caller waits for the daemon to report ready or failed
    /// (default 60 s; `None` waits for ever); then the daemon is killed and
    /// its PID file removed. As [`Plan::ready_timeout`].
    pub fn ready_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Whether to start from a process with other threads a daemon that
    /// returns into this program (default `false`: refused before the
    /// fork, [`Error::Threaded`]). As [`Plan::allow_threads`], which says
    /// why and what to do instead.
    pub fn allow_threads(mut self, allow: bool) -> Self {
        self.allow_threads = allow;
        self
    }

    /// Turns this process into a daemon. Returns in the daemon, or with the
    /// errors found before anything forked; once a daemon was forked, the
    /// calling process exits: 0 when the daemon is ready, or
    /// [`EXIT_START_FAILED`] after printing why it failed
    /// (`PROGRAM: failed to STEP FILE: OS ERROR`) on its standard error.
    /// With [`exec`](Self::exec), the daemon becomes the program, and this
    /// returns nowhere but in errors.
    ///
    /// ```no_run
    /// let daemon = daemonic::Daemonize::new()
    ///     .pid_file("/run/mydaemon.pid")
    ///     .daemonize()
    ///     .unwrap_or_else(|error| {
    ///         // Nothing forked: a bad option, an unknown user, a PID file
    ///         // held or in a missing directory, named in the message.
    ///         eprintln!("mydaemon: {error}");
    ///         std::process::exit(daemonic::EXIT_START_FAILED);
    ///     });
    /// // Only the daemon gets here.
    /// # drop(daemon);
    /// ```
    ///
    /// # Errors
    ///
    /// In the calling process, before anything forked: see [`StartError`]
    /// ([`StartError::forked`] is false). With [`Detach::Never`] (or
    /// [`Detach::Auto`] deciding so) nothing forks, and every error is
    /// returned.
    pub fn daemonize(self) -> Result<Daemon<'static>, StartError> {
        match self.start() {
            Ok(Started::Daemon(daemon)) => Ok(daemon),
            Ok(Started::Parent(_)) => std::process::exit(0),
            Err(error) if error.forked() => report_and_exit(&error.to_string()),
            Err(error) => Err(error),
        }
    }

    /// Starts the daemon and returns in both processes, like
    /// [`Plan::start`]: [`Started::Parent`] in the caller once the daemon
    /// is ready, [`Started::Daemon`] in the daemon (with
    /// [`exec`](Self::exec), only errors return there). For programs that
    /// map errors to their own exit statuses.
    ///
    /// Every path is made absolute and turned into a C string here, users
    /// and groups are looked up, the program searched for in `PATH` and its
    /// argument and environment vectors built, all before anything forks,
    /// so the daemon allocates nothing. Standard output is flushed first,
    /// so that text `print!` left in std's buffer is not written twice.
    /// When the daemon will change its [`user`](Self::user) and then not be
    /// able to remove its PID file (a directory only root may write), a
    /// warning says so on standard error first.
    ///
    /// # Errors
    ///
    /// In the calling process: see [`StartError`]; nothing is left running.
    pub fn start(mut self) -> Result<Started<'static>, StartError> {
        let detach = self.resolved_detach();
        let settings = (
            self.umask,
            self.readiness,
            self.ready_timeout,
            self.inherited_fds,
        );
        let (reset_signals, disable_core_dumps, nice, notify_fd) = (
            self.reset_signals,
            self.disable_core_dumps,
            self.nice,
            self.notify_fd,
        );
        let (capabilities, no_new_privileges, allow_threads) = (
            self.capabilities,
            self.no_new_privileges,
            self.allow_threads,
        );
        // For the caller's messages; never freed in the daemon, which must
        // not call the allocator.
        let names = core::mem::ManuallyDrop::new(Names::of(&self));
        // The builder's own strings are freed here, in the caller.
        let mut prepared = match Prepared::new(&mut self) {
            Ok(prepared) => prepared,
            Err(error) => {
                let names = core::mem::ManuallyDrop::into_inner(names);
                return Err(StartError::new(error, false, &names));
            }
        };
        if let Some(warning) = prepared.pid_file_left_warning() {
            eprintln!("{}: warning: {warning}", program_name());
        }
        drop(self);
        let (umask, readiness, ready_timeout, inherited_fds) = settings;
        let exec = prepared.program.as_ref().map(Program::exec);
        let [stdin, stdout, stderr] = &prepared.streams;
        let mut plan = Plan::new()
            .working_directory(&prepared.working_directory)
            .umask(umask)
            .stdin(stdin.stdio())
            .stdout(stdout.stdio())
            .stderr(stderr.stdio())
            .inherited_fds(inherited_fds)
            .keep_fds(&prepared.keep_fds)
            .reset_signals(reset_signals)
            .credentials(prepared.credentials())
            .disable_core_dumps(disable_core_dumps)
            .limits(&prepared.limits)
            .no_new_privileges(no_new_privileges)
            .detach(detach)
            .allow_threads(allow_threads)
            .readiness(readiness)
            .ready_timeout(ready_timeout);
        if let Some(path) = prepared.pid_file.as_deref() {
            plan = plan.pid_file(path);
        }
        if let Some(dir) = prepared.chroot.as_deref() {
            plan = plan.chroot(dir);
        }
        if let Some(increment) = nice {
            plan = plan.nice(increment);
        }
        if let Some(keep) = capabilities {
            plan = plan.capabilities(keep);
        }
        if let Some(exec) = exec {
            plan = plan.exec(exec);
        }
        if let Some(socket) = prepared.notify_socket.as_deref() {
            plan = plan.notify_socket(socket);
        }
        if let Some(fd) = notify_fd {
            plan = plan.notify_fd(fd);
        }
        match (
            prepared.program_readiness,
            prepared.program_socket.as_deref(),
        ) {
            (Some(OwnedProgramReadiness::Fd(fd)), _) => {
                plan = plan.program_readiness(ProgramReadiness::Fd(fd))
            }
            (Some(OwnedProgramReadiness::NotifySocket), Some(socket)) => {
                plan = plan.program_readiness(ProgramReadiness::NotifySocket(socket));
            }
            _ => {}
        }
        // What std still buffers would be written twice: by the caller, and
        // by the daemon into its log. (Standard error is not buffered.)
        // Output another thread adds between here and the fork can still
        // be: print nothing from other threads while starting.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        // The daemon lets go of the borrowed strings before it takes them
        // over; the caller never gets past this statement.
        let daemon = match plan.start_telling_when() {
            Ok(Started::Daemon(daemon)) => daemon.forget_paths(),
            Ok(Started::Parent(parent)) => {
                prepared.remove_private_dir();
                drop(core::mem::ManuallyDrop::into_inner(names));
                return Ok(Started::Parent(parent));
            }
            Err(failed) => {
                prepared.remove_private_dir();
                let names = core::mem::ManuallyDrop::into_inner(names);
                return Err(StartError::new(failed.error, failed.forked, &names));
            }
        };
        // The fds given for the streams now sit on 0, 1 and 2. The
        // originals: one that was the stream's own number is the stream
        // now; one kept by number, the caller's to keep; the others the
        // sequence closed with every inherited fd (under
        // `InheritedFds::Close`: closing them again would close whatever
        // took the number since, and std aborts on the EBADF), else they
        // are closed here (a system call, no allocation).
        let closed = inherited_fds == InheritedFds::Close;
        for stream in &mut prepared.streams {
            if let PreparedStdio::Fd(fd) = stream {
                let number = std::os::fd::AsRawFd::as_raw_fd(fd);
                if closed || number <= 2 || prepared.keep_fds.contains(&number) {
                    let fd = core::mem::replace(stream, PreparedStdio::Null);
                    if let PreparedStdio::Fd(fd) = fd {
                        let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
                    }
                } else {
                    *stream = PreparedStdio::Null;
                }
            }
        }
        let pid_file = prepared.pid_file.take();
        let notify_socket = prepared.notify_socket.take();
        Ok(Started::Daemon(daemon.owning(
            pid_file,
            notify_socket,
            prepared,
        )))
    }

    /// `error`, as this builder's start returned it, with what it failed
    /// on: the PID file, a stream's file, the directory, the program, the
    /// user or group (`failed to write the PID file /run/x.pid: ...`).
    /// [`daemonize`](Self::daemonize) prints its errors this way.
    ///
    /// ```
    /// use daemonic::{Daemonize, Errno, Error, Step};
    ///
    /// let builder = Daemonize::new().working_directory("/srv/missing");
    /// let error = Error::Os { step: Step::ChangeDirectory, errno: Errno::NOENT };
    /// assert!(builder
    ///     .describe(&error)
    ///     .starts_with("failed to change directory (chdir) to /srv/missing: "));
    /// ```
    pub fn describe(&self, error: &Error) -> String {
        Names::of(self).describe(error)
    }

    /// [`Detach::Auto`] decided now.
    fn resolved_detach(&self) -> Detach {
        match self.detach {
            Detach::Auto if !Plan::new().detach(Detach::Auto).detaches() => Detach::Never,
            Detach::Auto => Detach::Always,
            fixed => fixed,
        }
    }
}

/// A failed start of a [`Daemonize`]: the [`Error`], and a message that
/// names what it failed on (`failed to write the PID file /run/x.pid: No
/// such file or directory`), so that the error keeps its file, program or
/// user through `?` into a `Box<dyn std::error::Error>` or an
/// `anyhow::Error`. Its [`source`](std::error::Error::source) is the
/// [`Error`], which [`error`](Self::error) gives to match on.
///
/// ```
/// use daemonic::{Daemonize, Error, Step};
///
/// fn start() -> Result<(), Box<dyn std::error::Error>> {
///     Daemonize::new()
///         .pid_file("/nonexistent/dir/app.pid")
///         .detach(daemonic::Detach::Always)
///         .daemonize()?;
///     Ok(())
/// }
/// let message = start().unwrap_err().to_string();
/// assert!(message.contains("/nonexistent/dir/app.pid"), "{message}");
/// ```
#[derive(Debug)]
pub struct StartError {
    error: Error,
    message: String,
    forked: bool,
}

impl StartError {
    fn new(error: Error, forked: bool, names: &Names) -> StartError {
        StartError {
            message: names.describe(&error),
            error,
            forked,
        }
    }

    /// The error, without the names: to match on its kind
    /// (`Error::AlreadyRunning`, a [`Step`]).
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error, without the names.
    pub fn into_error(self) -> Error {
        self.error
    }

    /// Whether a daemon had been forked when the start failed: it reported
    /// a failed step, ended or was not ready in time (and has been ended;
    /// nothing is left running). False for what was found before anything
    /// forked: a bad option, an unknown user, a held or untrusted PID file.
    pub fn forked(&self) -> bool {
        self.forked
    }
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// For `?` in functions that return the library's [`Error`]: the names go.
impl From<StartError> for Error {
    fn from(error: StartError) -> Error {
        error.error
    }
}

/// For `?` in functions that return [`std::io::Error`]: the kind of the
/// [`Error`]'s conversion, the message with its names.
impl From<StartError> for std::io::Error {
    fn from(error: StartError) -> std::io::Error {
        let kind = std::io::Error::from(error.error).kind();
        std::io::Error::new(kind, error.message)
    }
}

/// What a builder's steps act on, by name, kept to describe an error once
/// the builder is gone.
struct Names {
    pid_file: Option<PathBuf>,
    streams: [Option<PathBuf>; 3],
    working_directory: PathBuf,
    chroot: Option<PathBuf>,
    program: Option<OsString>,
    user: Option<Id>,
    group: Option<Id>,
}

impl Names {
    fn of(builder: &Daemonize) -> Names {
        let file = |redirect: &OwnedStdio| match redirect {
            OwnedStdio::File(path) => Some(path.clone()),
            _ => None,
        };
        Names {
            pid_file: builder.pid_file.clone(),
            streams: [
                file(&builder.stdin),
                file(&builder.stdout),
                file(&builder.stderr),
            ],
            working_directory: builder.working_directory.clone(),
            chroot: builder.chroot.clone(),
            program: builder.program.as_ref().map(|(program, _)| program.clone()),
            user: builder.user.clone(),
            group: builder.group.clone(),
        }
    }

    fn describe(&self, error: &Error) -> String {
        use crate::message::Described;
        let subject = match (error, error.step()) {
            (Error::Invalid { option: "user", .. }, _) => id("uid", &self.user),
            (
                Error::Invalid {
                    option: "group", ..
                },
                _,
            ) => id("gid", &self.group),
            (_, step) => self.step_subject(step),
        };
        Described { error, subject }.to_string()
    }

    /// What `step` acts on, if anything.
    fn step_subject(&self, step: Option<Step>) -> Option<crate::message::Subject<'_>> {
        use crate::message::Subject;
        match step {
            Some(Step::PidFile) => path(&self.pid_file),
            Some(Step::RedirectStdin) => path(&self.streams[0]),
            Some(Step::RedirectStdout) => path(&self.streams[1]),
            Some(Step::RedirectStderr) => path(&self.streams[2]),
            Some(Step::ChangeDirectory) => {
                Some(Subject::Path(self.working_directory.as_os_str().as_bytes()))
            }
            Some(Step::ChangeRoot) => path(&self.chroot),
            Some(Step::Exec) => self
                .program
                .as_ref()
                .map(|program| Subject::Path(program.as_bytes())),
            Some(Step::SetUid) => id("uid", &self.user),
            Some(Step::SetGid) => id("gid", &self.group),
            _ => None,
        }
    }
}

fn path(path: &Option<PathBuf>) -> Option<crate::message::Subject<'_>> {
    path.as_ref()
        .map(|path| crate::message::Subject::Path(path.as_os_str().as_bytes()))
}

fn id<'a>(label: &'static str, id: &'a Option<Id>) -> Option<crate::message::Subject<'a>> {
    use crate::message::Subject;
    match id {
        Some(Id::Number(n)) => Some(Subject::Id(label, *n)),
        Some(Id::Name(name)) => Some(Subject::Path(name.as_bytes())),
        None => None,
    }
}

/// Prints `PROGRAM: MESSAGE` on standard error in one `writev` call, so the
/// line is never interleaved with another process's, and exits with
/// [`EXIT_START_FAILED`].
fn report_and_exit(message: &str) -> ! {
    let line = format!("{}: {message}\n", program_name());
    let _ = std::io::stderr().write_vectored(&[std::io::IoSlice::new(line.as_bytes())]);
    std::process::exit(EXIT_START_FAILED)
}

/// The name this program was started as, for messages.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| String::from("daemonic"))
}
