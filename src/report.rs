//! The report pipe: how the session leader and the daemon tell the caller
//! what happened, in fixed-size records.
//!
//! A record is [`RECORD_LEN`] bytes, far below `PIPE_BUF` (512 bytes or more
//! by POSIX), so each `write` lands in the pipe whole: records from the
//! session leader and the daemon never interleave, and the caller reads them
//! one at a time. Both ends live on one machine, so integers travel in native
//! byte order.

use rustix::fd::{AsFd, OwnedFd};
use rustix::io::{self, Errno};
use rustix::process::Pid;

use crate::error::{Context, Step};

/// Bytes in one record: magic, kind, step, reserved, errno or wait status
/// (i32), pid (i32).
pub(crate) const RECORD_LEN: usize = 12;

/// First byte of every record, so a stray write into the pipe is not
/// mistaken for a report.
const MAGIC: u8 = 0xDA;

/// What one record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// From the session leader: it forked the daemon, which has this PID.
    Forked(Pid),
    /// From the daemon (whose PID this is): it is ready.
    Ready(Pid),
    /// From the session leader or the daemon (whose PID this is): `step`
    /// failed with `errno`. The sender exits right after.
    Failed { step: Step, errno: Errno, pid: Pid },
    /// From the daemon: it is about to `execve`. If the pipe then closes
    /// with no `Failed`, the exec succeeded (the pipe is close-on-exec).
    Executing(Pid),
    /// From the session leader, which waits for the daemon when the caller
    /// waits for an executed program to report ready: the daemon ended
    /// with this raw wait status.
    Exited { pid: Pid, status: i32 },
    /// From the daemon, right before its `Failed`: what it was doing. On
    /// the wire, a header record whose step byte is the text's length, then
    /// [`Context::MAX`] bytes of text, zero-padded ([`CONTEXT_LEN`]).
    Context(Context),
}

/// Bytes that follow a context header record.
pub(crate) const CONTEXT_LEN: usize = Context::MAX;

const KIND_FORKED: u8 = 1;
const KIND_READY: u8 = 2;
const KIND_FAILED: u8 = 3;
const KIND_EXECUTING: u8 = 4;
const KIND_EXITED: u8 = 5;
const KIND_CONTEXT: u8 = 6;

impl Record {
    pub(crate) fn encode(self) -> [u8; RECORD_LEN] {
        let (kind, step, errno, pid) = match self {
            Record::Forked(pid) => (KIND_FORKED, 0, 0, pid),
            Record::Ready(pid) => (KIND_READY, 0, 0, pid),
            Record::Failed { step, errno, pid } => {
                (KIND_FAILED, step as u8, errno.raw_os_error(), pid)
            }
            Record::Executing(pid) => (KIND_EXECUTING, 0, 0, pid),
            Record::Exited { pid, status } => (KIND_EXITED, 0, status, pid),
            // The header only; `send_failure` writes the text after it.
            Record::Context(context) => (KIND_CONTEXT, context.wire().1, 0, Pid::INIT),
        };
        let mut bytes = [0u8; RECORD_LEN];
        bytes[0] = MAGIC;
        bytes[1] = kind;
        bytes[2] = step;
        bytes[4..8].copy_from_slice(&errno.to_ne_bytes());
        bytes[8..12].copy_from_slice(&pid.as_raw_pid().to_ne_bytes());
        bytes
    }

    /// The record these bytes hold, or `None` for bytes no sender writes.
    pub(crate) fn decode(bytes: &[u8; RECORD_LEN]) -> Option<Record> {
        if bytes[0] != MAGIC {
            return None;
        }
        let errno = i32::from_ne_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        let pid = Pid::from_raw(i32::from_ne_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11],
        ]))?;
        match bytes[1] {
            KIND_FORKED => Some(Record::Forked(pid)),
            KIND_READY => Some(Record::Ready(pid)),
            KIND_FAILED => Some(Record::Failed {
                step: Step::from_u8(bytes[2])?,
                errno: Errno::from_raw_os_error(errno),
                pid,
            }),
            KIND_EXECUTING => Some(Record::Executing(pid)),
            KIND_EXITED => Some(Record::Exited { pid, status: errno }),
            // The text follows: the reader fills it in (see `context_len`).
            KIND_CONTEXT => Some(Record::Context(Context::new(""))),
            _ => None,
        }
    }
}

/// Makes the report pipe, close-on-exec on both ends so an exec'd program
/// (or a program the caller's other threads exec) never holds it open.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(daemonic_pipe2)]
    {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
    }
    #[cfg(not(daemonic_pipe2))]
    {
        let (reader, writer) = rustix::pipe::pipe()?;
        rustix::io::fcntl_setfd(&reader, rustix::io::FdFlags::CLOEXEC)?;
        rustix::io::fcntl_setfd(&writer, rustix::io::FdFlags::CLOEXEC)?;
        Ok((reader, writer))
    }
}

/// The length a context header announces (its step byte).
pub(crate) fn context_len(header: &[u8; RECORD_LEN]) -> usize {
    usize::from(header[2]).min(CONTEXT_LEN)
}

/// Sends a failure with what the daemon was doing: the context header, its
/// text and the `Failed` record, in one `write(2)` of 72 bytes (below
/// `PIPE_BUF`, so whole or not at all).
pub(crate) fn send_failure(writer: impl AsFd, context: &Context, failed: Record) -> io::Result<()> {
    let mut bytes = [0u8; RECORD_LEN + CONTEXT_LEN + RECORD_LEN];
    bytes[..RECORD_LEN].copy_from_slice(&Record::Context(*context).encode());
    bytes[RECORD_LEN..RECORD_LEN + CONTEXT_LEN].copy_from_slice(context.wire().0);
    bytes[RECORD_LEN + CONTEXT_LEN..].copy_from_slice(&failed.encode());
    write_all_at_once(writer, &bytes)
}

/// Sends one record. Safe to call after fork: one `write(2)` of a stack
/// buffer, retried on `EINTR`.
pub(crate) fn send(writer: impl AsFd, record: Record) -> io::Result<()> {
    write_all_at_once(writer, &record.encode())
}

fn write_all_at_once(writer: impl AsFd, bytes: &[u8]) -> io::Result<()> {
    loop {
        match io::write(&writer, bytes) {
            // A pipe write of at most PIPE_BUF bytes is all or nothing.
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(errno),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n).unwrap()
    }

    #[test]
    fn every_record_survives_encoding() {
        let mut records = vec![
            Record::Forked(pid(7)),
            Record::Ready(pid(1 << 22)),
            Record::Executing(pid(9)),
            Record::Exited {
                pid: pid(9),
                status: 0x0f00,
            },
        ];
        for &step in Step::ALL {
            records.push(Record::Failed {
                step,
                errno: Errno::NOENT,
                pid: pid(42),
            });
        }
        for record in records {
            assert_eq!(Record::decode(&record.encode()), Some(record));
        }
    }

    #[test]
    fn foreign_bytes_are_not_records() {
        assert_eq!(Record::decode(&[0; RECORD_LEN]), None);
        let mut bytes = Record::Ready(pid(3)).encode();
        bytes[1] = 99;
        assert_eq!(Record::decode(&bytes), None);
        let mut bytes = Record::Failed {
            step: Step::Fork,
            errno: Errno::AGAIN,
            pid: pid(3),
        }
        .encode();
        bytes[2] = 200;
        assert_eq!(Record::decode(&bytes), None);
    }
}
