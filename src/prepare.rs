//! The builder's data made ready for the daemon, before the fork: paths as
//! absolute C strings, names resolved to ids, the program's vectors laid
//! out, the private notification directory made. Runs in the caller, where
//! allocating is fine; the daemon only reads what this made.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::lookup::{Ids, resolve_ids};
use crate::options::{Daemonize, OwnedProgramReadiness, OwnedStdio};
use crate::privileges::Credentials;
use crate::{Error, Program, Stdio, Step, environment};

/// The builder's data in the form the daemon uses, made before the fork:
/// paths as absolute C strings, names resolved to ids, vectors laid out.
///
/// The daemon's handle keeps it, so nothing here is freed between the fork
/// and the moment the program drops the handle: `free` takes the allocator's
/// lock just as `malloc` does.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) working_directory: CString,
    pub(crate) streams: [PreparedStdio; 3],
    pub(crate) pid_file: Option<CString>,
    pub(crate) chroot: Option<CString>,
    pub(crate) keep_fds: Vec<RawFd>,
    /// Moved here, so that the daemon (which keeps this) frees nothing.
    pub(crate) limits: Vec<crate::Limit>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) groups: Option<Vec<u32>>,
    pub(crate) program: Option<Program>,
    pub(crate) notify_socket: Option<CString>,
    pub(crate) program_readiness: Option<OwnedProgramReadiness>,
    pub(crate) program_socket: Option<CString>,
    pub(crate) private_dir: Option<PathBuf>,
}

impl Prepared {
    /// Why the daemon, once it has changed its user, will not be able to
    /// remove its PID file, if it will not: the file's directory is not
    /// writable by that user (as owner, by its group or supplementary
    /// groups, or by everyone), or is sticky and someone else's (the file
    /// itself is the caller's: written before the change). ACLs are not
    /// read: this decides a warning, never the start.
    pub(crate) fn pid_file_left_warning(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let (uid, path) = (self.uid?, self.pid_file.as_ref()?);
        if uid == rustix::process::geteuid().as_raw() {
            return None;
        }
        let path = Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let meta = std::fs::metadata(dir).ok()?;
        let mode = meta.mode();
        let in_group = |gid: u32| {
            self.gid == Some(gid) || self.groups.as_ref().is_some_and(|all| all.contains(&gid))
        };
        let writable = (meta.uid() == uid && mode & 0o200 != 0)
            || (in_group(meta.gid()) && mode & 0o020 != 0)
            || mode & 0o002 != 0;
        let why = if !writable {
            "its directory is not writable by that user"
        } else if mode & 0o1000 != 0 && meta.uid() != uid {
            "its directory is sticky and not that user's"
        } else {
            return None;
        };
        Some(format!(
            "the daemon, running as uid {uid}, will not be able to remove its PID file {} ({why}): remove it once the daemon has stopped (daemonic --stop does), or put it in a directory that user owns",
            path.display()
        ))
    }

    pub(crate) fn new(builder: &mut Daemonize) -> Result<Prepared, Error> {
        let Ids { uid, gid, groups } = resolve_ids(builder.user.as_ref(), builder.group.as_ref())?;
        let mut prepared = Prepared {
            // chdir resolves a relative directory against the caller's own
            // (or inside the new root), as wanted; files are opened first.
            working_directory: c_string(
                builder.working_directory.as_os_str(),
                "working_directory",
            )?,
            streams: [
                PreparedStdio::new(std::mem::take(&mut builder.stdin), "stdin")?,
                PreparedStdio::new(std::mem::take(&mut builder.stdout), "stdout")?,
                PreparedStdio::new(std::mem::take(&mut builder.stderr), "stderr")?,
            ],
            pid_file: builder
                .pid_file
                .as_deref()
                .map(|p| c_path(p, "pid_file"))
                .transpose()?,
            chroot: builder
                .chroot
                .as_deref()
                .map(|p| c_path(p, "chroot"))
                .transpose()?,
            keep_fds: std::mem::take(&mut builder.keep_fds),
            limits: std::mem::take(&mut builder.limits),
            uid,
            gid,
            groups,
            program: None,
            notify_socket: None,
            program_readiness: builder.program_readiness,
            program_socket: None,
            private_dir: None,
        };
        if builder.program.is_none() {
            let socket = match builder.notify_socket.take() {
                Some(choice) => choice,
                None => std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from),
            };
            prepared.notify_socket = socket
                .map(|s| c_string(s.as_os_str(), "notify_socket"))
                .transpose()?;
        }
        if let Some((program, args)) = builder.program.take() {
            prepared.prepare_exec(builder, program, args)?;
        }
        Ok(prepared)
    }

    fn prepare_exec(
        &mut self,
        builder: &Daemonize,
        program: OsString,
        args: Vec<OsString>,
    ) -> Result<(), Error> {
        let mut env = environment(builder.env_clear, &builder.env_changes);
        if self.program_readiness == Some(OwnedProgramReadiness::NotifySocket) {
            let dir = private_dir()?;
            let socket = dir.join("notify");
            env.retain(|(k, _)| k != "NOTIFY_SOCKET");
            env.push(("NOTIFY_SOCKET".into(), socket.clone().into_os_string()));
            self.program_socket = Some(c_string(socket.as_os_str(), "notify_socket")?);
            self.private_dir = Some(dir);
        }
        self.program = Some(Program::new(&program, &args, env)?);
        Ok(())
    }

    pub(crate) fn credentials(&self) -> Credentials<'_> {
        Credentials {
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.as_deref(),
        }
    }

    /// In the caller (and on a failed start), the private notification
    /// directory has served: remove it.
    pub(crate) fn remove_private_dir(&self) {
        if let Some(dir) = &self.private_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A [`OwnedStdio`] with its path turned into a C string.
#[derive(Debug)]
pub(crate) enum PreparedStdio {
    Null,
    Inherit,
    File(CString),
    Fd(OwnedFd),
}

impl PreparedStdio {
    fn new(redirect: OwnedStdio, option: &'static str) -> Result<PreparedStdio, Error> {
        Ok(match redirect {
            OwnedStdio::Null => PreparedStdio::Null,
            OwnedStdio::Inherit => PreparedStdio::Inherit,
            OwnedStdio::Fd(fd) => PreparedStdio::Fd(fd),
            OwnedStdio::File(path) => PreparedStdio::File(c_path(&path, option)?),
        })
    }

    pub(crate) fn stdio(&self) -> Stdio<'_> {
        match self {
            PreparedStdio::Null => Stdio::Null,
            PreparedStdio::Inherit => Stdio::Inherit,
            PreparedStdio::File(path) => Stdio::File(path),
            PreparedStdio::Fd(fd) => Stdio::Fd(fd.as_fd()),
        }
    }
}

/// A fresh directory, mode 0700, for the program's notification socket.
fn private_dir() -> Result<PathBuf, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let base = if rustix::process::geteuid().is_root() && Path::new("/run").is_dir() {
        PathBuf::from("/run")
    } else {
        std::env::temp_dir()
    };
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "daemonic-notify.{}.{nanos}.{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(Step::Readiness, &e)),
        }
    }
    Err(Error::Os {
        step: Step::Readiness,
        errno: rustix::io::Errno::EXIST,
    })
}

fn io_error(step: Step, error: &std::io::Error) -> Error {
    Error::Os {
        step,
        errno: rustix::io::Errno::from_io_error(error).unwrap_or(rustix::io::Errno::INVAL),
    }
}

/// `path` made absolute against the current directory, as a C string.
fn c_path(path: &Path, option: &'static str) -> Result<CString, Error> {
    let absolute = std::path::absolute(path).map_err(|error| io_error(Step::Prepare, &error))?;
    c_string(absolute.as_os_str(), option)
}

fn c_string(text: &OsStr, option: &'static str) -> Result<CString, Error> {
    CString::new(text.as_bytes()).map_err(|_| Error::InteriorNul { option })
}
