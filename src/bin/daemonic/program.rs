//! The program to execute, prepared before anything forks: its path found
//! in `PATH`, its argument and environment vectors laid out in memory of
//! their own, and the private directory its `NOTIFY_SOCKET` lives in.

use core::ffi::{CStr, c_char};

use daemonic::decimal::Decimal;
use daemonic::{CStrArray, Environment, Errno, Exec};
use rustix::fs::{Access, FileType, Mode};

use crate::request::Start;
use crate::sys;

/// What becomes of `NOTIFY_SOCKET` in the program's environment.
#[derive(Clone, Copy)]
pub enum Notify {
    /// As the caller has it.
    Keep,
    /// Removed: the supervisor answers for the service itself.
    #[cfg(feature = "supervise")]
    Remove,
    /// This `NOTIFY_SOCKET=PATH` entry instead.
    Set(&'static CStr),
}

/// Why the program cannot be prepared.
pub enum Unfit {
    /// A name without `/` that no directory of `PATH` holds as an
    /// executable file.
    NotInPath,
    /// No memory for the vectors.
    NoMemory,
}

impl From<Errno> for Unfit {
    fn from(_: Errno) -> Unfit {
        Unfit::NoMemory
    }
}

/// The program of `start` with its environment, ready for `execve`.
pub fn prepare(start: &Start, notify: Notify) -> Result<Exec<'static>, Unfit> {
    prepare_with_env(start, notify).map(|(exec, _)| exec)
}

/// As [`prepare`], with the environment's entries it laid out (for arrays
/// of one's own over them, as childenv.rs makes).
pub fn prepare_with_env(
    start: &Start,
    notify: Notify,
) -> Result<(Exec<'static>, &'static [&'static CStr]), Unfit> {
    let env = environment(start, notify)?;
    let path_var = env
        .iter()
        .find_map(|entry| entry.to_bytes().strip_prefix(b"PATH="));
    let program = find(start.program[0], path_var).ok_or(Unfit::NotInPath)?;
    let exec = Exec {
        program,
        args: array(start.program)?,
        env: Environment::Exact(array(env)?),
    };
    Ok((exec, env))
}

/// A null-terminated pointer array over `strings`.
fn array(strings: &'static [&'static CStr]) -> Result<CStrArray<'static>, Errno> {
    let slots = sys::slab(strings.len() + 1, core::ptr::null::<c_char>())?;
    CStrArray::new(strings, slots).map_err(|_| Errno::NOMEM)
}

/// The name of a `KEY=VALUE` entry.
fn key(entry: &CStr) -> &[u8] {
    let bytes = entry.to_bytes();
    let eq = bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len());
    &bytes[..eq]
}

/// The caller's environment (none with `--clear-env`), with every `--env`
/// applied in order (a later one for the same name wins) and
/// `NOTIFY_SOCKET` as `notify` says.
fn environment(start: &Start, notify: Notify) -> Result<&'static [&'static CStr], Errno> {
    let inherited = if start.clear_env {
        0
    } else {
        sys::environ().count()
    };
    let given = start.env();
    let entries = sys::slab(inherited + given.len() + 1, c"")?;
    let mut len = 0;
    let replaced = |name: &[u8], from: usize| {
        let notify_changed = !matches!(notify, Notify::Keep) && name == b"NOTIFY_SOCKET";
        notify_changed || given[from..].iter().any(|entry| key(entry) == name)
    };
    for entry in sys::environ().take(inherited) {
        if !replaced(key(entry), 0) {
            entries[len] = entry;
            len += 1;
        }
    }
    for (at, &entry) in given.iter().enumerate() {
        if !replaced(key(entry), at + 1) {
            entries[len] = entry;
            len += 1;
        }
    }
    if let Notify::Set(entry) = notify {
        entries[len] = entry;
        len += 1;
    }
    Ok(&entries[..len])
}

/// The program of `start`, found as [`prepare`] finds it.
#[cfg(feature = "harden")]
pub fn locate(start: &Start, notify: Notify) -> Result<&'static CStr, Unfit> {
    prepare(start, notify).map(|exec| exec.program)
}

/// `program` itself when it holds a `/`, else the first executable regular
/// file of that name in the directories of `path` (the default search path
/// without one; an empty entry is the working directory, as POSIX has it).
/// Looked up on the caller's file system: under `--chroot`, give a path.
fn find(program: &'static CStr, path: Option<&[u8]>) -> Option<&'static CStr> {
    let name = program.to_bytes();
    if name.contains(&b'/') {
        return Some(program);
    }
    let path = path.unwrap_or(b"/usr/local/bin:/usr/bin:/bin");
    let mut candidate = [0u8; 4096];
    for dir in path.split(|&b| b == b':') {
        let parts: [&[u8]; 3] = if dir.is_empty() {
            [b"", b"", name]
        } else {
            [dir, b"/", name]
        };
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len >= candidate.len() {
            continue;
        }
        let mut at = 0;
        for part in parts {
            candidate[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        candidate[at] = 0;
        let Ok(c_candidate) = CStr::from_bytes_with_nul(&candidate[..=at]) else {
            continue;
        };
        let executable = rustix::fs::access(c_candidate, Access::EXEC_OK).is_ok();
        let regular = rustix::fs::stat(c_candidate)
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile);
        if executable && regular {
            return sys::c_string(&[&candidate[..at]]).ok();
        }
    }
    None
}

/// A fresh directory, mode 0700, for a program's notification socket:
/// under `/run` for root, else `$TMPDIR` or `/tmp`. Its path, and the
/// socket's.
pub fn private_dir(owner: Option<(u32, u32)>) -> Result<(&'static CStr, &'static CStr), Errno> {
    let base: &[u8] = if rustix::process::geteuid().is_root()
        && rustix::fs::stat(c"/run")
            .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory)
    {
        b"/run"
    } else {
        sys::getenv(c"TMPDIR").map_or(&b"/tmp"[..], CStr::to_bytes)
    };
    let pid = Decimal::new(u64::from(
        rustix::process::getpid().as_raw_pid().unsigned_abs(),
    ));
    let nanos = Decimal::new(u64::from(sys::now().subsec_nanos()));
    for attempt in 0..100u64 {
        let attempt = Decimal::new(attempt);
        let dir = sys::c_string(&[
            base,
            b"/daemonic-notify.",
            pid.digits(),
            b".",
            nanos.digits(),
            b".",
            attempt.digits(),
        ])?;
        match rustix::fs::mkdir(dir, Mode::RWXU) {
            Ok(()) => {
                // The program runs as `-u`'s user: the directory is its
                // (and root's) to reach, nobody else's.
                if let Err(errno) = sys::give_to(dir, owner) {
                    let _ = rustix::fs::rmdir(dir);
                    return Err(errno);
                }
                let socket = sys::c_string(&[dir.to_bytes(), b"/notify"])?;
                return Ok((dir, socket));
            }
            Err(Errno::EXIST) => continue,
            Err(errno) => return Err(errno),
        }
    }
    Err(Errno::EXIST)
}

/// Removes the private directory and the socket in it.
pub fn remove_private_dir(dir: &CStr, socket: &CStr) {
    let _ = rustix::fs::unlink(socket);
    let _ = rustix::fs::rmdir(dir);
}
