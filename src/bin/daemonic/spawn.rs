//! One run of the supervised program: forked, the child's steps up to its
//! `execve` (signals, fds, the readiness channel, the terminal), the first
//! run's readiness heard, and the child PID file written and removed. On
//! data [`Program`] laid out before the first fork: nothing allocates.

use core::time::Duration;

use daemonic::decimal::Decimal;
use daemonic::fd::{AsRawFd, OwnedFd, RawFd};
use daemonic::{Errno, Error, ExitStatus};

use crate::supervised::{Channel, Program};
use crate::{sys, tree};

/// A running program.
pub struct Child {
    pub pid: i32,
    /// When it started (monotonic).
    pub started: Duration,
    /// The read end of its readiness pipe (`--ready-fd`), first run only.
    pub ready_pipe: Option<OwnedFd>,
}

/// Forks and executes the program; the exec's failure comes back through a
/// close-on-exec pipe. Writes the child PID file.
pub fn spawn(program: &Program) -> Result<Child, Errno> {
    let (exec_read, exec_write) = sys::pipe()?;
    let ready = match program.readiness {
        Channel::Fd(_) => Some(sys::pipe()?),
        _ => None,
    };
    // SAFETY: the child makes only async-signal-safe calls on memory
    // prepared before the fork (this process is single-threaded anyway).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys::errno());
    }
    if pid == 0 {
        exec_child(program, &exec_write, ready.as_ref().map(|(_, w)| w));
    }
    // The child does the same; whichever runs first, the group exists before
    // anything signals it. EACCES once the child has executed: done by then.
    // SAFETY: setpgid on our own child.
    unsafe { libc::setpgid(pid, pid) };
    drop(exec_write);
    let mut errno = [0u8; 4];
    // SAFETY: reads at most 4 bytes into our buffer.
    let got = unsafe { libc::read(exec_read.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
    if got == 4 {
        reap(pid);
        return Err(Errno::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    write_child_pid_file(program, pid);
    Ok(Child {
        pid,
        started: sys::now(),
        ready_pipe: ready.map(|(read, _)| read),
    })
}

/// In the forked child: default signals, readiness fd in place, `execve`;
/// on failure the errno goes back through the pipe.
pub fn exec_child(program: &Program, exec_write: &OwnedFd, ready_write: Option<&OwnedFd>) -> ! {
    // SAFETY: plain system calls on valid fds and prepared, null-terminated
    // vectors; `_exit` ends the child whatever happens.
    unsafe {
        if !tree::detach_program(program.supervisor.get()) {
            libc::_exit(127);
        }
        // The program's group takes the terminal, as a shell gives a job
        // the terminal (SIGTTOU is ignored here, so the call from what is
        // still a background group goes through); else `tac`, `bash -m`
        // or an interactive shell stop themselves on their first read.
        if let Some(_original) = program.terminal() {
            libc::tcsetpgrp(0, libc::getpid());
        }
        // What the supervisor ignores for itself, the program gets at its
        // default; then, as a container's entry point, what the caller had.
        for signal in [libc::SIGPIPE, libc::SIGTTIN, libc::SIGTTOU] {
            libc::signal(signal, libc::SIG_DFL);
        }
        match program.inherited() {
            Some(inherited) => inherited.restore(),
            None => {
                let mut empty: libc::sigset_t = core::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, core::ptr::null_mut());
            }
        }
        // --listen's sockets go to fds 3, 4, ...: what of ours sits there
        // in this child moves above them first (the sockets themselves sit
        // above, see Program::prepare; what else is there is close-on-exec
        // and not the program's).
        let top = 3 + program.listen.len() as i32;
        let above = |fd: i32, command: i32| match (3..top).contains(&fd) {
            true => libc::fcntl(fd, command, top),
            false => fd,
        };
        let exec_write = above(exec_write.as_raw_fd(), libc::F_DUPFD_CLOEXEC);
        let ready_write = ready_write.map(|w| above(w.as_raw_fd(), libc::F_DUPFD_CLOEXEC));
        let lock = match program.lock.get() {
            fd if fd >= 0 => above(fd, libc::F_DUPFD),
            none => none,
        };
        if lock >= 0 {
            // In this child only: the supervisor's own fd stays close-on-exec.
            libc::fcntl(lock, libc::F_SETFD, 0);
        }
        for output in program.outputs.iter().flatten() {
            let write = output.write.as_raw_fd();
            if output.stdout {
                libc::dup2(write, 1);
            }
            if output.stderr {
                libc::dup2(write, 2);
            }
        }
        if let (Channel::Fd(target), Some(write)) = (&program.readiness, ready_write) {
            if write == *target {
                libc::fcntl(*target, libc::F_SETFD, 0);
            } else {
                libc::dup2(write, *target);
            }
        }
        // The copies dup2 makes are not close-on-exec.
        for (at, &socket) in program.listen.iter().enumerate() {
            libc::dup2(socket, 3 + at as i32);
        }
        let errno = match &program.child_exec {
            Some(child_exec) => child_exec.execute(),
            None => program.exec.execute(),
        };
        let errno = errno.raw_os_error().to_ne_bytes();
        libc::write(exec_write, errno.as_ptr().cast(), 4);
        libc::_exit(127)
    }
}

/// What one read from the readiness channel brought.
pub enum Heard {
    /// Closed (or unreadable): it will never say more.
    Closed,
    /// Not yet the word.
    Nothing,
    Ready,
    /// `ERRNO=`: the program failed to start.
    Failed(Errno),
}

/// One read from readiness channel `fd`. Out of line: its page-sized
/// buffer is on the stack only while a message is read, not under the
/// supervisor's loop for its life (a frame that size touches its pages as
/// the function is entered).
#[inline(never)]
pub fn hear(channel: &Channel, fd: RawFd) -> Heard {
    let mut buf = [0u8; 4096];
    // SAFETY: reads into our buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    match usize::try_from(n) {
        Ok(n) if n > 0 => said_ready(channel, &buf[..n.min(buf.len())]),
        _ => Heard::Closed,
    }
}

/// What a readiness message says: ready, failed (`ERRNO=`), or nothing yet.
pub fn said_ready(channel: &Channel, said: &[u8]) -> Heard {
    let heard = match channel {
        Channel::Fd(_) => said.contains(&b'\n').then_some(Heard::Ready),
        Channel::Socket { .. } => said.split(|&b| b == b'\n').find_map(|line| {
            if line == b"READY=1" {
                return Some(Heard::Ready);
            }
            let errno = line
                .strip_prefix(b"ERRNO=")
                .and_then(|digits| sys::parse_u64(digits, 4095))?;
            Some(Heard::Failed(Errno::from_raw_os_error(errno as i32)))
        }),
        Channel::None => Some(Heard::Ready),
    };
    heard.unwrap_or(Heard::Nothing)
}

/// The error for program `pid` that ended (raw wait status) before it was ready.
pub fn exited(pid: i32, raw: i32) -> Error {
    let status = if libc::WIFSIGNALED(raw) {
        ExitStatus::Signal(libc::WTERMSIG(raw))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(raw))
    };
    Error::Exited {
        pid: daemonic::Pid::from_raw(pid),
        status,
    }
}

pub fn write_child_pid_file(program: &Program, pid: i32) {
    let Some(path) = &program.child_pid_file else {
        return;
    };
    // SAFETY: open/write/close on a prepared C string and a stack buffer.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644,
        );
        if fd >= 0 {
            let text = Decimal::new(u64::from(pid.unsigned_abs()));
            libc::write(fd, text.line().as_ptr().cast(), text.line().len());
            libc::close(fd);
        }
    }
}

pub fn remove_child_pid_file(program: &Program) {
    if let Some(path) = &program.child_pid_file {
        // SAFETY: unlink reads a prepared C string.
        unsafe { libc::unlink(path.as_ptr()) };
    }
}

pub fn reap(pid: i32) {
    let mut status = 0;
    // SAFETY: as above, blocking.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}
