//! `fork` and `_exit`: the two calls rustix leaves to libc.
//!
//! rustix's own `kernel_fork` bypasses libc, which would leave libc's state
//! (its cached thread id, its `pthread_atfork` handlers, the locks of its
//! `malloc`) wrong in the child. The daemon goes on to run the program's own
//! code, which may call into libc, so the fork must be libc's.

use rustix::io::{self, Errno};
use rustix::process::Pid;

/// Which side of a fork this process is on.
pub(crate) enum Forked {
    /// The original process; the child has this PID.
    Parent(Pid),
    /// The new process.
    Child,
}

/// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html).
///
/// After it returns [`Forked::Child`] in a multithreaded program, only
/// async-signal-safe work may follow: the callers in this crate run plain
/// system calls on data prepared before the fork.
pub(crate) fn fork() -> io::Result<Forked> {
    // SAFETY: `fork` has no preconditions of its own. What makes the child
    // sound is the code that follows it: the sequence runs only system calls
    // on memory prepared before the fork, touching no lock and no allocator,
    // until it returns to the program in the daemon (documented on `start`).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(last_errno()),
        0 => Ok(Forked::Child),
        // A positive PID from fork is a valid PID.
        pid => Ok(Forked::Parent(Pid::from_raw(pid).ok_or(Errno::INVAL)?)),
    }
}

/// A stack for a child that shares this process's memory (see
/// [`vfork_on`]): anonymous memory with a guard page below it, so that an
/// overflow faults instead of writing over the caller's memory. Unmapped
/// when dropped, which the caller does once the child has executed a
/// program or exited.
#[cfg(daemonic_clone_vm)]
pub(crate) struct ChildStack {
    region: *mut core::ffi::c_void,
    len: usize,
}

#[cfg(daemonic_clone_vm)]
impl ChildStack {
    /// What the sequence needs (a few 4 KiB buffers for `/proc` walks and
    /// paths, and its frames), with room to spare; the guard page comes on
    /// top.
    const SIZE: usize = 128 * 1024;
    const GUARD: usize = 4096;

    pub(crate) fn new() -> io::Result<ChildStack> {
        use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
        let len = Self::SIZE + Self::GUARD;
        // SAFETY: a fresh private anonymous mapping nothing else refers
        // to; its lowest page is then made inaccessible.
        unsafe {
            let region = rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE | MapFlags::STACK,
            )?;
            let stack = ChildStack { region, len };
            rustix::mm::mprotect(region, Self::GUARD, MprotectFlags::empty())?;
            Ok(stack)
        }
    }

    /// The stack's top (stacks grow down), 16-byte aligned.
    fn top(&self) -> *mut core::ffi::c_void {
        // The mapping is page-aligned and its length a multiple of pages.
        self.region.cast::<u8>().wrapping_add(self.len).cast()
    }
}

#[cfg(daemonic_clone_vm)]
impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no child runs on it any more (see new).
        let _ = unsafe { rustix::mm::munmap(self.region, self.len) };
    }
}

/// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html) with
/// `CLONE_VM | CLONE_VFORK`: runs `child` in a new process that shares this
/// process's memory, on `stack`, and returns (with its PID) once it has
/// executed a program or exited. No page table is copied, so the cost does
/// not grow with the caller's memory, as with glibc's `posix_spawn`.
///
/// All signals are blocked around the call, with the raw system call (the C
/// library's own reserved ones too), so no handler of the caller ever runs
/// in the child on the shared memory; the child unblocks them only after
/// putting the handlers back to their defaults.
///
/// # Safety
///
/// `child` runs on shared memory while this thread waits: it must only read
/// what it borrows, make system calls (no allocation, no lock, nothing that
/// changes the C library's state, no `fork` but this one), and end with
/// `execve` or `_exit`, never return or unwind. Other threads of this
/// process keep running meanwhile; they must not unmap what the child uses
/// (the plan and setup of a start they do not own).
#[cfg(daemonic_clone_vm)]
pub(crate) unsafe fn vfork_on(
    stack: &ChildStack,
    child: &mut dyn FnMut() -> i32,
) -> io::Result<Pid> {
    extern "C" fn trampoline(arg: *mut core::ffi::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&mut &mut dyn FnMut` below, alive for as
        // long as the child can run: its parent waits (CLONE_VFORK).
        let child = unsafe { &mut *arg.cast::<&mut dyn FnMut() -> i32>() };
        child()
    }
    let mut child = child;
    let all = block_all_signals();
    // SAFETY: the trampoline and its argument are valid (see above); the
    // stack is ours and unused; CLONE_VFORK keeps this frame, and with it
    // `child`, alive until the child is done with the shared memory.
    let pid = unsafe {
        libc::clone(
            trampoline,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut child as *mut &mut dyn FnMut() -> i32).cast(),
        )
    };
    let result = if pid < 0 { Err(last_errno()) } else { Ok(pid) };
    restore_signals(all);
    Pid::from_raw(result?).ok_or(Errno::INVAL)
}

/// Blocks every signal of this thread with `rt_sigprocmask` itself; the
/// mask it replaced.
#[cfg(daemonic_clone_vm)]
fn block_all_signals() -> u64 {
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: 8-byte kernel signal sets (x86_64, aarch64, riscv64, arm:
    // _NSIG / 8), ours to read and write.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all as *const u64,
            &mut old as *mut u64,
            8usize,
        )
    };
    old
}

/// Puts back the mask [`block_all_signals`] replaced.
#[cfg(daemonic_clone_vm)]
fn restore_signals(old: u64) {
    // SAFETY: as in `block_all_signals`, with no old set wanted.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &old as *const u64,
            core::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

/// [`_exit(2)`](https://man7.org/linux/man-pages/man2/_exit.2.html): ends the
/// process at once, running no `atexit` handler and flushing no stdio buffer,
/// both of which belong to the original process and would run twice.
pub(crate) fn exit_now(status: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and takes any status.
    unsafe { libc::_exit(status) }
}

/// The errno libc set for the call that just failed.
pub(crate) fn last_errno() -> Errno {
    // SAFETY: each of these returns a pointer to the calling thread's errno,
    // valid for the thread's life; we read it right after the failed call.
    let raw = unsafe { *errno_location() };
    Errno::from_raw_os_error(raw)
}

#[cfg(any(target_os = "illumos", target_os = "solaris"))]
use libc::___errno as errno_location;
#[cfg(target_os = "android")]
use libc::__errno as errno_location;
#[cfg(any(target_os = "netbsd", target_os = "openbsd"))]
use libc::__errno as errno_location;
#[cfg(any(target_os = "linux", target_os = "redox"))]
use libc::__errno_location as errno_location;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "dragonfly"
))]
use libc::__error as errno_location;

/// How many threads this process has: `num_threads`, the 20th field of
/// `/proc/self/stat` (read into a stack buffer).
#[cfg(daemonic_procfs)]
pub(crate) fn threads() -> Option<u32> {
    use rustix::fs::{Mode, OFlags};
    let file = rustix::fs::open(
        c"/proc/self/stat",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 1024];
    let len = rustix::io::read(&file, &mut buf).ok()?;
    let text = &buf[..len];
    // After the command name (which may hold spaces and parentheses):
    // field 3, the state, is the first; field 20 the eighteenth.
    let after_name = &text[text.iter().rposition(|&b| b == b')')? + 1..];
    let field = after_name
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(17)?;
    u32::try_from(crate::decimal::parse(field)?).ok()
}

#[cfg(not(daemonic_procfs))]
pub(crate) fn threads() -> Option<u32> {
    None
}
