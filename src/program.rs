//! With `std`: a program prepared for `execve` before any fork.

#![cfg_attr(docsrs, doc(cfg(feature = "std")))]

use std::ffi::{CString, OsStr, OsString, c_char};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use crate::{CStrArray, Environment, Error, Exec};

/// A program ready to be executed after a fork: its path searched for in
/// `PATH`, its argument and environment vectors laid out as C strings and
/// pointer arrays. Make it before forking; [`Program::exec`] then describes
/// it for [`Plan::exec`](crate::Plan::exec) or [`Exec::execute`], which
/// allocate nothing.
///
/// # Example
///
/// ```no_run
/// use std::ffi::OsString;
/// let program = daemonic::Program::new(
///     "sleep".as_ref(),
///     &[OsString::from("60")],
///     daemonic::environment(false, &[]),
/// )?;
/// let plan = daemonic::Plan::new().exec(program.exec());
/// # let _ = plan;
/// # Ok::<(), daemonic::Error>(())
/// ```
#[derive(Debug)]
pub struct Program {
    path: CString,
    _args: Vec<CString>,
    _env: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

// SAFETY: `argv` and `envp` point only into the C strings this value owns
// (`path`, `_args`, `_env`, whose heap buffers do not move when the value
// does), are written once in `new` and only read after: moving the value
// to another thread, or reading it from several, is as sound as for the
// owned strings themselves.
unsafe impl Send for Program {}
// SAFETY: see `Send` above: shared access only reads.
unsafe impl Sync for Program {}

impl Program {
    /// `program` (searched for in the `PATH` of `env` when it has no `/`)
    /// with `args` after `argv[0]`, and exactly the environment `env`.
    ///
    /// # Errors
    ///
    /// [`Error::InteriorNul`] when a string holds a NUL byte;
    /// [`Error::Invalid`] (option `exec`) when a name without `/` is no
    /// executable file in `PATH`: found before anything forks, rather than
    /// as `ENOENT` from `execve` in the daemon. (The search looks at the
    /// caller's file system: under a chroot, give a path.)
    pub fn new(
        program: &OsStr,
        args: &[OsString],
        env: Vec<(OsString, OsString)>,
    ) -> Result<Program, Error> {
        let nul = |option| move |_| Error::InteriorNul { option };
        let path_var = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        let resolved = search_path(program, path_var.as_deref()).ok_or(Error::Invalid {
            option: "exec",
            reason: "no such program in PATH",
        })?;
        let path = CString::new(resolved.into_os_string().into_vec()).map_err(nul("exec"))?;
        let args: Vec<CString> = std::iter::once(program)
            .chain(args.iter().map(OsString::as_os_str))
            .map(|arg| CString::new(arg.as_bytes()).map_err(nul("exec")))
            .collect::<Result<_, _>>()?;
        let env: Vec<CString> = env
            .into_iter()
            .map(|(key, value)| {
                let mut entry = key.into_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                CString::new(entry).map_err(nul("env"))
            })
            .collect::<Result<_, _>>()?;
        // The pointers stay valid when the vectors move: they point into the
        // strings' own heap buffers, which do not.
        let pointers = |strings: &[CString]| -> Vec<*const c_char> {
            strings
                .iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Ok(Program {
            argv: pointers(&args),
            envp: pointers(&env),
            path,
            _args: args,
            _env: env,
        })
    }

    /// The program as the last step of a plan, or to [`Exec::execute`].
    pub fn exec(&self) -> Exec<'_> {
        Exec {
            program: &self.path,
            args: CStrArray::from_terminated(&self.argv),
            env: Environment::Exact(CStrArray::from_terminated(&self.envp)),
        }
    }
}

/// This process's environment (or none, with `clear`) with `changes`
/// applied in order: `Some(value)` sets, `None` removes.
///
/// ```
/// use std::ffi::OsString;
///
/// let env = daemonic::environment(
///     true,
///     &[
///         (OsString::from("LANG"), Some(OsString::from("C"))),
///         (OsString::from("TZ"), Some(OsString::from("UTC"))),
///         (OsString::from("TZ"), None),
///     ],
/// );
/// assert_eq!(env, [(OsString::from("LANG"), OsString::from("C"))]);
/// ```
pub fn environment(
    clear: bool,
    changes: &[(OsString, Option<OsString>)],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = if clear {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    for (key, value) in changes {
        env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            env.push((key.clone(), value.clone()));
        }
    }
    env
}

/// `program` itself when it holds a `/`, else the first executable file of
/// that name in `path`, if any.
fn search_path(program: &OsStr, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let default = OsStr::new("/usr/local/bin:/usr/bin:/bin");
    for dir in std::env::split_paths(path.unwrap_or(default)) {
        let candidate = dir.join(program);
        if let Ok(c_candidate) = CString::new(candidate.as_os_str().as_bytes()) {
            let executable =
                rustix::fs::access(c_candidate.as_c_str(), rustix::fs::Access::EXEC_OK).is_ok();
            if executable && candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}
