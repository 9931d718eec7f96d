//! The program's `execve` arrays when some of its environment is its own
//! PID (`WATCHDOG_PID` for `--watchdog`, `LISTEN_PID` for `--listen`), which
//! differs for each run. Nothing may be allocated in the forked child: the
//! pointer arrays are laid out before any fork, with a slot for each such
//! entry, which each child points at a buffer on its own stack.

use core::ffi::{CStr, c_char};

use daemonic::Errno;

use crate::sys;

/// At most this many entries hold the child's PID.
const MAX_PID_VARS: usize = 2;

/// `argv` and `envp` for `execve`; raw pointers, written only in a forked
/// child (its own copy).
pub struct ChildExec {
    program: &'static CStr,
    argv: *const *const c_char,
    envp: *mut *const c_char,
    /// Each variable whose value is the child's PID (`NAME=`), and its slot.
    pid_vars: [Option<(&'static [u8], usize)>; MAX_PID_VARS],
}

impl ChildExec {
    /// Lays out `program`, `args` and `env`, with a slot after `env` for
    /// each of `pid_vars` (`b"WATCHDOG_PID="`), before any fork.
    pub fn prepare(
        program: &'static CStr,
        args: &[&'static CStr],
        env: &[&'static CStr],
        pid_vars: &[&'static [u8]],
    ) -> Result<ChildExec, Errno> {
        let argv = sys::slab(args.len() + 1, core::ptr::null::<c_char>())?;
        for (slot, arg) in argv.iter_mut().zip(args) {
            *slot = arg.as_ptr();
        }
        let envp = sys::slab(env.len() + MAX_PID_VARS + 1, core::ptr::null::<c_char>())?;
        for (slot, entry) in envp.iter_mut().zip(env) {
            *slot = entry.as_ptr();
        }
        let mut slots = [None; MAX_PID_VARS];
        for (at, (slot, &name)) in slots.iter_mut().zip(pid_vars).enumerate() {
            *slot = Some((name, env.len() + at));
        }
        Ok(ChildExec {
            program,
            argv: argv.as_ptr(),
            envp: envp.as_mut_ptr(),
            pid_vars: slots,
        })
    }

    /// In a forked child: `execve` with each PID variable set to this
    /// process. Returns only on failure.
    ///
    /// # Safety
    ///
    /// Only in a child of `fork`, whose copy of the arrays nobody else
    /// uses; nothing is allocated.
    pub unsafe fn execute(&self) -> Errno {
        let pid = daemonic::decimal::Decimal::pid(rustix::process::getpid());
        let digits = pid.digits();
        let mut entries = [[0u8; 40]; MAX_PID_VARS];
        for (entry, var) in entries.iter_mut().zip(&self.pid_vars) {
            let Some((name, slot)) = *var else {
                continue;
            };
            // A name of our own (at most 16 bytes) and at most 20 digits:
            // the NUL stays.
            entry[..name.len()].copy_from_slice(name);
            entry[name.len()..name.len() + digits.len()].copy_from_slice(digits);
            // SAFETY: `slot` is within the `envp` laid out by `prepare`,
            // this child's own copy; `entry` lives on this stack until
            // execve, NUL-terminated.
            unsafe { *self.envp.add(slot) = entry.as_ptr().cast() };
        }
        // SAFETY: null-terminated arrays of C strings that live as long as
        // the process (or this frame); execve replaces it or returns.
        unsafe { libc::execve(self.program.as_ptr(), self.argv, self.envp) };
        sys::errno()
    }
}
