//! Telling a supervisor the daemon is ready: systemd's `sd_notify` protocol
//! and the s6 notification fd. Messages are built in stack buffers, so both
//! work after fork and without `std`.

use core::ffi::CStr;

use rustix::fd::{BorrowedFd, OwnedFd, RawFd};
use rustix::io::{self, Errno};
#[cfg(daemonic_socket_cloexec)]
use rustix::net::SocketFlags;
use rustix::net::{AddressFamily, SendFlags, SocketAddrUnix, SocketType};

/// Where a `NOTIFY_SOCKET` value points: a path, or with a leading `@` an
/// abstract socket name (Linux).
fn address(socket: &CStr) -> io::Result<SocketAddrUnix> {
    match socket.to_bytes() {
        [] => Err(Errno::INVAL),
        #[cfg(daemonic_abstract_sockets)]
        [b'@', name @ ..] => SocketAddrUnix::new_abstract_name(name),
        #[cfg(not(daemonic_abstract_sockets))]
        [b'@', ..] => Err(Errno::AFNOSUPPORT),
        _ => SocketAddrUnix::new(socket),
    }
}

/// An `AF_UNIX` datagram socket, close-on-exec.
#[cfg(daemonic_socket_cloexec)]
fn datagram_socket() -> io::Result<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
}

/// An `AF_UNIX` datagram socket, close-on-exec, where `socket(2)` takes no
/// such flag (macOS): set right after, racing only an exec in another
/// thread of the caller (documented, as for `pipe2`).
#[cfg(not(daemonic_socket_cloexec))]
fn datagram_socket() -> io::Result<OwnedFd> {
    let socket = rustix::net::socket(AddressFamily::UNIX, SocketType::DGRAM, None)?;
    rustix::io::fcntl_setfd(&socket, rustix::io::FdFlags::CLOEXEC)?;
    Ok(socket)
}

/// Sends one `sd_notify` datagram (`KEY=VALUE` lines) to `socket`.
///
/// See [sd_notify(3)](https://www.freedesktop.org/software/systemd/man/sd_notify.html).
pub(crate) fn send(socket: &CStr, message: &[u8]) -> io::Result<()> {
    let address = address(socket)?;
    let fd = datagram_socket()?;
    rustix::net::sendto(&fd, message, SendFlags::empty(), &address)?;
    Ok(())
}

/// A notification message in a fixed buffer; longer text is cut off.
pub(crate) struct Message {
    bytes: [u8; 512],
    len: usize,
}

impl Message {
    pub(crate) fn new() -> Message {
        Message {
            bytes: [0; 512],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, text: &[u8]) -> &mut Message {
        let n = text.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&text[..n]);
        self.len += n;
        self
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The s6 protocol: a newline on the notification fd, which is then closed.
pub(crate) fn write_newline(fd: RawFd) -> io::Result<()> {
    // SAFETY: the fd is the program's notification fd, open since before
    // the daemon started; we take it over to close it after the write.
    let fd = unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(fd) };
    loop {
        match rustix::io::write(&fd, b"\n") {
            Err(Errno::INTR) => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// What a readiness message from the program says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Said {
    Ready,
    Failed(Errno),
    ExtendTimeout(u64),
    Other,
}

/// What the program's readiness channel held, at one read.
pub(crate) enum Heard {
    Nothing,
    Said(Said),
    /// The program closed it.
    Closed,
}

/// Reads an `sd_notify` datagram's lines, most decisive first: a failure
/// (`ERRNO=`), readiness (`READY=1`), more time (`EXTEND_TIMEOUT_USEC=`).
pub(crate) fn parse(datagram: &[u8]) -> Said {
    let mut said = Said::Other;
    for line in datagram.split(|&b| b == b'\n') {
        if line == b"READY=1" && said == Said::Other {
            said = Said::Ready;
        } else if let Some(n) = line.strip_prefix(b"ERRNO=").and_then(crate::decimal::parse) {
            return Said::Failed(Errno::from_raw_os_error(n.min(i32::MAX as u64) as i32));
        } else if let Some(usec) = line
            .strip_prefix(b"EXTEND_TIMEOUT_USEC=")
            .and_then(crate::decimal::parse)
        {
            if said == Said::Other {
                said = Said::ExtendTimeout(usec);
            }
        }
    }
    said
}

/// Binds the caller's own `NOTIFY_SOCKET`, for a program it execs to report
/// to. Credentials are passed along (`SO_PASSCRED`), as systemd does, so a
/// program can rely on them.
pub(crate) fn bind(socket: &CStr) -> io::Result<OwnedFd> {
    let address = address(socket)?;
    let fd = datagram_socket()?;
    rustix::net::bind(&fd, &address)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::net::sockopt::set_socket_passcred(&fd, true)?;
    Ok(fd)
}

/// Hands a bound socket's file to `uid` (and `gid`): a program that runs
/// as that user must be able to write to it to send. Abstract names
/// (`@name`) have no file.
pub(crate) fn give_to(socket: &CStr, uid: u32, gid: Option<u32>) -> io::Result<()> {
    if socket.to_bytes().starts_with(b"@") {
        return Ok(());
    }
    rustix::fs::chownat(
        rustix::fs::CWD,
        socket,
        Some(rustix::fs::Uid::from_raw(uid)),
        gid.map(rustix::fs::Gid::from_raw),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
}

/// Receives one datagram into `buf`.
pub(crate) fn receive<'b>(fd: BorrowedFd<'_>, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
    let (len, _) = rustix::net::recv(fd, &mut *buf, rustix::net::RecvFlags::DONTWAIT)?;
    Ok(&buf[..len.min(buf.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_the_decisive_line() {
        assert_eq!(parse(b"READY=1"), Said::Ready);
        assert_eq!(parse(b"STATUS=up\nREADY=1\n"), Said::Ready);
        assert_eq!(parse(b"READY=1\nERRNO=98"), Said::Failed(Errno::ADDRINUSE));
        assert_eq!(
            parse(b"EXTEND_TIMEOUT_USEC=5000000"),
            Said::ExtendTimeout(5_000_000)
        );
        assert_eq!(parse(b"STATUS=starting"), Said::Other);
        assert_eq!(parse(b"READY=0"), Said::Other);
        assert_eq!(parse(b"ERRNO=x"), Said::Other);
    }

    #[test]
    fn message_cuts_long_text() {
        let mut message = Message::new();
        message.push(b"STATUS=").push(&[b'x'; 600]);
        assert_eq!(message.as_bytes().len(), 512);
    }
}
