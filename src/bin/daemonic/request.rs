//! What the command line asks for: the command, a start's options (filled
//! in by the parser, args.rs, and read by every part of a start), and the
//! defaults of their values.

use core::ffi::CStr;
use core::time::Duration;

use crate::schedule::Schedule;
#[cfg(any(feature = "harden", feature = "supervise"))]
use crate::sys;
#[cfg(feature = "supervise")]
pub use crate::values::MIN_RESTART_DELAY;
pub use crate::values::{DEFAULT_START_LIMIT, Usage};

/// What the command line asks for.
pub enum Command {
    /// A start, as the [`Start`] given to [`parse`] now says.
    Start,
    /// `--stop`: signal by the schedule, until the daemon is gone.
    Stop {
        pid_file: &'static CStr,
        schedule: Schedule,
        trust: bool,
        /// `--runtime-dir NAME`: removed once the daemon is gone.
        runtime_dir: Option<&'static CStr>,
    },
    /// `--signal SIG` alone: send it, and wait up to `timeout` for the
    /// daemon to take it; the daemon runs on (a reload).
    Signal {
        pid_file: &'static CStr,
        signal: i32,
        timeout: Duration,
        trust: bool,
    },
    Status {
        pid_file: &'static CStr,
        trust: bool,
    },
    Help,
    Version,
}

/// Everything `daemonic [OPTIONS] -- PROGRAM [ARGS...]` takes. Filled in
/// place by [`parse`] and used in place: moving it about costs a static
/// binary hundreds of bytes of copies.
#[derive(Default)]
pub struct Start {
    pub pid_file: Option<&'static CStr>,
    pub child_pid_file: Option<&'static CStr>,
    pub chdir: Option<&'static CStr>,
    pub umask: Option<u32>,
    pub stdout: Option<&'static CStr>,
    pub stderr: Option<&'static CStr>,
    /// `-u USER[:GROUP]`'s user, as given.
    pub user: Option<&'static [u8]>,
    pub group: Option<&'static [u8]>,
    pub chroot: Option<&'static CStr>,
    /// `--keep-fd`s, with five slots spare for the supervisor's socket and
    /// its two output pipes.
    pub keep_fds: &'static mut [i32],
    pub kept: usize,
    /// `--env`s, `KEY=VALUE` as given.
    pub env: &'static mut [&'static CStr],
    pub env_count: usize,
    pub clear_env: bool,
    pub nice: Option<i32>,
    /// `--wait-ready`: how long to wait for the program's readiness.
    pub wait_ready: Option<Duration>,
    pub ready_fd: Option<i32>,
    pub supervise: bool,
    /// `--restart`: the first delay.
    pub restart: Option<Duration>,
    /// `--timeout` with `--supervise`: how long a stopping program gets
    /// before SIGKILL.
    pub stop_timeout: Duration,
    /// `--restart=DELAY:MAX`: the longest delay (default a minute).
    #[cfg(feature = "supervise")]
    pub restart_cap: Option<Duration>,
    /// `--start-limit BURST[/SECS]`: at most BURST starts within SECS (0:
    /// no limit).
    pub start_limit: (u32, Duration),
    /// `--stop-signal SIG`: what a stop request sends the program's tree.
    pub stop_signal: i32,
    /// `--watchdog SECS`: how often the program must say `WATCHDOG=1`.
    #[cfg(feature = "supervise")]
    pub watchdog: Option<Duration>,
    /// `--success-exit N`s: bit N set for each program status that counts
    /// as 0 (tini's `-e`).
    pub success_exits: [u64; 4],
    /// `--rotate SIZE[:COUNT]`: bytes per file, files kept.
    pub rotate: Option<(u64, u32)>,
    /// `--timestamps`.
    pub timestamps: bool,
    /// `--syslog[=FACILITY.PRIORITY]`: `<PRI>`'s number.
    pub syslog: Option<u8>,
    /// `--syslog-tag TAG` (default: the program's name).
    pub syslog_tag: Option<&'static [u8]>,
    /// `--syslog-stderr SEVERITY`: standard error's `<PRI>`.
    pub syslog_stderr: Option<u8>,
    /// `--syslog-socket PATH` (default `/dev/log`).
    pub syslog_socket: Option<&'static CStr>,
    /// `--cap`s: the capabilities kept.
    #[cfg(feature = "harden")]
    pub caps: Option<daemonic::Capabilities>,
    #[cfg(feature = "harden")]
    pub no_new_privs: bool,
    /// `--runtime-dir NAME`: `/run/NAME`.
    pub runtime_dir: Option<&'static CStr>,
    /// `--limit`s, in order.
    #[cfg(feature = "harden")]
    pub limits: &'static mut [daemonic::Limit],
    #[cfg(feature = "harden")]
    pub limit_count: usize,
    /// `--listen`s, in order (checked by `listen::parse`).
    #[cfg(feature = "harden")]
    pub listens: &'static mut [&'static CStr],
    #[cfg(feature = "harden")]
    pub listen_count: usize,
    /// `--env-file`s, in order.
    #[cfg(feature = "harden")]
    pub env_files: &'static mut [&'static CStr],
    #[cfg(feature = "harden")]
    pub env_file_count: usize,
    pub foreground: bool,
    /// The program and its arguments: `argv[0]` first, never empty.
    pub program: &'static [&'static CStr],
}

impl Start {
    pub fn keep_fds(&self) -> &[i32] {
        &self.keep_fds[..self.kept]
    }

    pub fn env(&self) -> &[&'static CStr] {
        &self.env[..self.env_count]
    }

    /// `entry` before the environment's other entries, so that an `--env`
    /// for the same name replaces it (the last one wins).
    #[cfg(any(feature = "harden", feature = "supervise"))]
    pub fn prepend_env(&mut self, entry: &'static CStr) -> Result<(), daemonic::Errno> {
        let entries = sys::slab(self.env_count + 1, entry)?;
        entries[1..].copy_from_slice(self.env());
        self.env_count = entries.len();
        self.env = entries;
        Ok(())
    }

    #[cfg(feature = "harden")]
    pub fn limits(&self) -> &[daemonic::Limit] {
        &self.limits[..self.limit_count]
    }

    #[cfg(feature = "harden")]
    pub fn listens(&self) -> &[&'static CStr] {
        &self.listens[..self.listen_count]
    }

    #[cfg(feature = "harden")]
    pub fn env_files(&self) -> &[&'static CStr] {
        &self.env_files[..self.env_file_count]
    }
}

/// How long `--wait-ready` waits without a value, and `--stop` before SIGKILL.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The first restart delay without a value (FreeBSD daemon(8)'s `-r`).
#[cfg(feature = "supervise")]
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
