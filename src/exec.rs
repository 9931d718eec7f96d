//! Replacing the daemon with another program: `execve` on an argument and
//! environment vector prepared before the fork.

use core::ffi::{CStr, c_char};

use rustix::io::Errno;

use crate::error::Error;

/// A null-terminated array of C string pointers, as `execve` takes, built
/// in a buffer the caller provides: no allocation, even without `std`.
#[derive(Clone, Copy, Debug)]
pub struct CStrArray<'a> {
    pointers: &'a [*const c_char],
}

impl<'a> CStrArray<'a> {
    /// Lays out `strings` in `buffer` (which needs one slot more, for the
    /// terminating null pointer).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when `buffer` is too short.
    ///
    /// # Example
    ///
    /// ```
    /// use daemonic::CStrArray;
    /// let mut slots = [core::ptr::null(); 3];
    /// let argv = CStrArray::new(&[c"sleep", c"60"], &mut slots).unwrap();
    /// assert_eq!(argv.len(), 2);
    /// ```
    pub fn new(
        strings: &[&'a CStr],
        buffer: &'a mut [*const c_char],
    ) -> Result<CStrArray<'a>, Error> {
        if buffer.len() <= strings.len() {
            return Err(Error::Invalid {
                option: "exec",
                reason: "buffer needs one slot more than there are strings",
            });
        }
        for (slot, string) in buffer.iter_mut().zip(strings) {
            *slot = string.as_ptr();
        }
        buffer[strings.len()] = core::ptr::null();
        Ok(CStrArray {
            pointers: &buffer[..=strings.len()],
        })
    }

    /// The number of strings.
    pub fn len(&self) -> usize {
        self.pointers.len() - 1
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A view of pointers already laid out and null-terminated by this
    /// crate (its std [`Program`](crate::Program)).
    #[cfg(feature = "std")]
    pub(crate) fn from_terminated(pointers: &'a [*const c_char]) -> CStrArray<'a> {
        debug_assert!(pointers.last().is_some_and(|p| p.is_null()));
        CStrArray { pointers }
    }

    fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

/// The environment a program is executed with.
#[derive(Clone, Copy, Debug)]
pub enum Environment<'a> {
    /// The caller's, as it stands (`environ`).
    Inherit,
    /// Exactly these `KEY=VALUE` strings; an empty array clears it.
    Exact(CStrArray<'a>),
}

/// A program for the daemon to become: the last step of the sequence.
///
/// Everything is borrowed and laid out by the caller before the fork, so it
/// works without `std` (with `std`, [`Program`](crate::Program) builds one
/// from `OsStr`s and searches `PATH`).
///
/// # Example
///
/// ```no_run
/// use daemonic::{CStrArray, Environment, Exec, Plan};
///
/// let (mut argv, mut envp) = ([core::ptr::null(); 3], [core::ptr::null(); 2]);
/// let exec = Exec {
///     program: c"/usr/bin/sleep",
///     args: CStrArray::new(&[c"sleep", c"600"], &mut argv).unwrap(),
///     env: Environment::Exact(CStrArray::new(&[c"LANG=C"], &mut envp).unwrap()),
/// };
/// // The daemon becomes `sleep 600`; a failed execve comes back as
/// // Error::Os { step: Step::Exec, .. } from start.
/// Plan::new().pid_file(c"/run/sleep.pid").exec(exec).start()?;
/// # Ok::<(), daemonic::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Exec<'a> {
    /// The program's path. It is not searched for in `PATH` (that would read
    /// the environment after fork); the std builder searches before.
    pub program: &'a CStr,
    /// The argument vector, `argv[0]` first.
    pub args: CStrArray<'a>,
    /// The environment.
    pub env: Environment<'a>,
}

impl Exec<'_> {
    /// Replaces this process with the program:
    /// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html).
    /// Async-signal-safe and free of allocation, so a child forked from a
    /// multithreaded process (a supervisor's) may call it. Returns only on
    /// failure, with the error.
    pub fn execute(&self) -> Errno {
        exec(self)
    }
}

/// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html).
/// Returns only on failure.
pub(crate) fn exec(exec: &Exec<'_>) -> Errno {
    // SAFETY: every pointer array is null-terminated and points at C strings
    // that the caller's borrow keeps alive; execve/execv read them and
    // replace the process or return -1.
    unsafe {
        match exec.env {
            Environment::Inherit => libc::execv(exec.program.as_ptr(), exec.args.as_ptr()),
            Environment::Exact(env) => {
                libc::execve(exec.program.as_ptr(), exec.args.as_ptr(), env.as_ptr())
            }
        };
    }
    crate::fork::last_errno()
}
