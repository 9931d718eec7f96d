//! `--listen ADDR` (feature `harden`, with `--supervise`): sockets bound by
//! the start as root, before the user changes, and handed to each run of
//! the program by systemd's socket-activation protocol (sd_listen_fds(3)):
//! fds 3, 4, ... in the order given, `LISTEN_FDS`, `LISTEN_PID` (the
//! program's own PID) and `LISTEN_FDNAMES`. The supervisor keeps them open
//! across restarts, as s6-fdholder does: a client that connects while the
//! program restarts waits in the listen queue instead of being refused.
//!
//! Addresses, never names (nothing is looked up): `PORT`, `:PORT` or
//! `*:PORT` (every address, IPv6 and IPv4), `1.2.3.4:PORT`, `[::1]:PORT`,
//! each TCP, or `udp:` before one of those; `unix:/PATH` (a stale socket
//! file there is replaced; mode 0666, owned by the program's user).

#[cfg(feature = "supervise")]
use core::ffi::CStr;
use core::net::{IpAddr, Ipv6Addr, SocketAddr};

#[cfg(feature = "supervise")]
use daemonic::Errno;
#[cfg(feature = "supervise")]
use daemonic::fd::OwnedFd;
#[cfg(feature = "supervise")]
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::sys;

#[cfg(feature = "supervise")]
/// How many connections wait while the program restarts (the kernel caps
/// it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// One `--listen`, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Address<'a> {
    Tcp(SocketAddr),
    Udp(SocketAddr),
    Unix(&'a [u8]),
}

/// `ADDR` as `--listen` takes it.
pub fn parse(text: &[u8]) -> Option<Address<'_>> {
    if let Some(path) = text.strip_prefix(b"unix:") {
        return (path.first() == Some(&b'/') && !path.contains(&0)).then_some(Address::Unix(path));
    }
    let (udp, rest) = match text.strip_prefix(b"udp:") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let address = inet(rest)?;
    Some(if udp {
        Address::Udp(address)
    } else {
        Address::Tcp(address)
    })
}

/// `PORT`, `:PORT`, `*:PORT` (the IPv6 wildcard, which takes IPv4 too),
/// `IPV4:PORT` or `[IPV6]:PORT`.
fn inet(text: &[u8]) -> Option<SocketAddr> {
    let port = |digits: &[u8]| {
        sys::parse_u64(digits, 65535)
            .filter(|&port| port > 0)
            .map(|port| port as u16)
    };
    let wildcard = text
        .strip_prefix(b"*:")
        .or_else(|| text.strip_prefix(b":"))
        .unwrap_or(text);
    if wildcard.iter().all(u8::is_ascii_digit) {
        return Some(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            port(wildcard)?,
        ));
    }
    core::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(feature = "supervise")]
/// A bound (and, for a stream, listening) socket for `address`,
/// close-on-exec: the supervisor's, which each run gets a copy of.
pub fn bind(address: Address<'_>, owner: Option<(u32, u32)>) -> Result<OwnedFd, Errno> {
    match address {
        Address::Tcp(inet) | Address::Udp(inet) => {
            let stream = matches!(address, Address::Tcp(_));
            let family = match inet {
                SocketAddr::V4(_) => AddressFamily::INET,
                SocketAddr::V6(_) => AddressFamily::INET6,
            };
            let kind = if stream {
                SocketType::STREAM
            } else {
                SocketType::DGRAM
            };
            let fd = rustix::net::socket_with(family, kind, SocketFlags::CLOEXEC, None)?;
            if stream {
                // A restarted daemonic binds again while old connections
                // linger in TIME_WAIT.
                rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
            }
            if let SocketAddr::V6(v6) = inet {
                if v6.ip().is_unspecified() {
                    // [::] takes IPv4 too, as systemd's ListenStream=PORT.
                    rustix::net::sockopt::set_ipv6_v6only(&fd, false)?;
                }
            }
            rustix::net::bind(&fd, &inet)?;
            if stream {
                rustix::net::listen(&fd, BACKLOG)?;
            }
            Ok(fd)
        }
        Address::Unix(path) => bind_unix(sys::c_string(&[path])?, owner),
    }
}

#[cfg(feature = "supervise")]
fn bind_unix(path: &CStr, owner: Option<(u32, u32)>) -> Result<OwnedFd, Errno> {
    use rustix::fs::{AtFlags, CWD, FileType};
    // A socket file left by an earlier run goes; anything else stays, and
    // the bind then fails (EADDRINUSE).
    if let Ok(stat) = rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
        if FileType::from_raw_mode(stat.st_mode) == FileType::Socket {
            rustix::fs::unlink(path)?;
        }
    }
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    // systemd's SocketMode= default; the program's user owns it.
    rustix::fs::chmodat(
        CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o666),
        AtFlags::empty(),
    )?;
    if let Some((uid, gid)) = owner {
        rustix::fs::chownat(
            CWD,
            path,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    rustix::net::listen(&fd, BACKLOG)?;
    Ok(fd)
}

#[cfg(feature = "supervise")]
/// The name `LISTEN_FDNAMES` gives the socket: `tcp-PORT`, `udp-PORT` or
/// `unix` (sd_listen_fds_with_names(3); a name holds no `:`).
pub fn name<'a>(address: Address<'_>, buf: &'a mut [u8; 16]) -> &'a [u8] {
    let (kind, port): (&[u8], Option<u16>) = match address {
        Address::Tcp(inet) => (b"tcp-", Some(inet.port())),
        Address::Udp(inet) => (b"udp-", Some(inet.port())),
        Address::Unix(_) => (b"unix", None),
    };
    buf[..kind.len()].copy_from_slice(kind);
    let mut len = kind.len();
    if let Some(port) = port {
        let digits = daemonic::decimal::Decimal::new(port.into());
        let digits = digits.digits();
        buf[len..len + digits.len()].copy_from_slice(digits);
        len += digits.len();
    }
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_written() {
        let any = |port| SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
        assert_eq!(parse(b"80"), Some(Address::Tcp(any(80))));
        assert_eq!(parse(b":8080"), Some(Address::Tcp(any(8080))));
        assert_eq!(parse(b"*:53"), Some(Address::Tcp(any(53))));
        assert_eq!(parse(b"udp:53"), Some(Address::Udp(any(53))));
        assert_eq!(
            parse(b"127.0.0.1:80"),
            Some(Address::Tcp("127.0.0.1:80".parse().unwrap()))
        );
        assert_eq!(
            parse(b"udp:[::1]:514"),
            Some(Address::Udp("[::1]:514".parse().unwrap()))
        );
        assert_eq!(
            parse(b"unix:/run/x.sock"),
            Some(Address::Unix(b"/run/x.sock"))
        );
        for bad in [
            &b"localhost:80"[..],
            b"0",
            b"65536",
            b"1.2.3.4",
            b"1.2.3.4:",
            b"unix:relative",
            b"tcp:80",
            b"",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        #[cfg(feature = "supervise")]
        let mut buf = [0; 16];
        #[cfg(feature = "supervise")]
        assert_eq!(name(parse(b"udp:53").unwrap(), &mut buf), b"udp-53");
        #[cfg(feature = "supervise")]
        assert_eq!(name(parse(b"unix:/s").unwrap(), &mut buf), b"unix");
    }
}
