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

use core::ffi::CStr;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use daemonic::Errno;
use daemonic::fd::{AsRawFd, OwnedFd};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::sys;

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
/// `IPV4:PORT` or `[IPV6]:PORT`. A parser of our own: core's `FromStr`
/// for addresses is 10 KB of a static binary.
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
    if let Some(rest) = text.strip_prefix(b"[") {
        let close = rest.iter().position(|&b| b == b']')?;
        let digits = rest[close + 1..].strip_prefix(b":")?;
        return Some(SocketAddr::new(
            IpAddr::V6(ipv6(&rest[..close])?),
            port(digits)?,
        ));
    }
    let colon = text.iter().rposition(|&b| b == b':')?;
    Some(SocketAddr::new(
        IpAddr::V4(ipv4(&text[..colon])?),
        port(&text[colon + 1..])?,
    ))
}

/// `a.b.c.d`, each 0 to 255 in decimal.
fn ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 {
            return None;
        }
        *octet = u8::try_from(sys::parse_u64(part, 255)?).ok()?;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// Eight groups of up to four hex digits, one run of them written `::`.
fn ipv6(text: &[u8]) -> Option<Ipv6Addr> {
    let groups = |part: &[u8], out: &mut [u16; 8]| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let mut count = 0;
        for group in part.split(|&b| b == b':') {
            if group.is_empty() || group.len() > 4 || count == 8 {
                return None;
            }
            let mut value = 0u16;
            for &digit in group {
                value = value << 4 | (digit as char).to_digit(16)? as u16;
            }
            out[count] = value;
            count += 1;
        }
        Some(count)
    };
    let (mut head, mut tail) = ([0u16; 8], [0u16; 8]);
    let (heads, tails, gap) = match text.windows(2).position(|w| w == b"::") {
        Some(at) => (
            groups(&text[..at], &mut head)?,
            groups(&text[at + 2..], &mut tail)?,
            true,
        ),
        None => (groups(text, &mut head)?, 0, false),
    };
    if gap && heads + tails > 7 || !gap && heads != 8 {
        return None;
    }
    head[8 - tails..].copy_from_slice(&tail[..tails]);
    Some(Ipv6Addr::from(head))
}

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
    sys::give_to(path, owner)?;
    rustix::net::listen(&fd, BACKLOG)?;
    Ok(fd)
}

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

/// `--listen`'s sockets, bound, and what the program's environment says
/// of them.
pub struct Bound {
    /// The sockets, close-on-exec, each above fd `3 + count`: placing one
    /// at its fd (3, 4, ...) never overwrites another.
    pub fds: &'static [i32],
    pub fds_entry: &'static CStr,
    pub names_entry: &'static CStr,
}

/// Binds every address in `addresses` (as root, before the user changes);
/// the address that failed, and why. Out of line: one copy for both starts.
#[inline(never)]
pub fn bind_all(
    addresses: &[&'static CStr],
    owner: Option<(u32, u32)>,
) -> Result<Bound, (&'static CStr, Errno)> {
    let first = addresses.first().copied().unwrap_or(c"");
    let fds = sys::slab(addresses.len(), -1).map_err(|e| (first, e))?;
    let top = 3 + addresses.len() as i32;
    let mut names = [0u8; 1024];
    let mut names_len = 0;
    for (at, &address) in addresses.iter().enumerate() {
        let parsed = parse(address.to_bytes()).ok_or((address, Errno::INVAL))?;
        let socket = bind(parsed, owner).map_err(|e| (address, e))?;
        // SAFETY: duplicates our own socket; the original closes at drop.
        let high = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top) };
        if high < 0 {
            return Err((address, sys::errno()));
        }
        fds[at] = high;
        let mut buf = [0; 16];
        let name = name(parsed, &mut buf);
        if names_len + name.len() < names.len() {
            if at > 0 {
                names[names_len] = b':';
                names_len += 1;
            }
            names[names_len..names_len + name.len()].copy_from_slice(name);
            names_len += name.len();
        }
    }
    let count = daemonic::decimal::Decimal::new(addresses.len() as u64);
    let entry = |parts: &[&[u8]]| sys::c_string(parts).map_err(|e| (first, e));
    Ok(Bound {
        fds,
        fds_entry: entry(&[b"LISTEN_FDS=", count.digits()])?,
        names_entry: entry(&[b"LISTEN_FDNAMES=", &names[..names_len]])?,
    })
}

/// Says why `--listen ADDR` could not be bound; a start's failure status.
#[inline(never)]
pub fn cannot(address: &CStr, errno: Errno) -> i32 {
    crate::out::Line::daemonic()
        .text(b"--listen ")
        .c(address)
        .text(b": cannot bind: ")
        .errno(errno)
        .eprint();
    crate::exit::COULD_NOT_START
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
        assert_eq!(
            parse(b"[fe80::1:2]:9"),
            Some(Address::Tcp("[fe80::1:2]:9".parse().unwrap()))
        );
        assert_eq!(
            parse(b"[1:2:3:4:5:6:7:8]:9"),
            Some(Address::Tcp("[1:2:3:4:5:6:7:8]:9".parse().unwrap()))
        );
        assert_eq!(
            parse(b"[::]:9"),
            Some(Address::Tcp("[::]:9".parse().unwrap()))
        );
        assert_eq!(
            parse(b"0.0.0.0:1"),
            Some(Address::Tcp("0.0.0.0:1".parse().unwrap()))
        );
        for bad in [
            &b"localhost:80"[..],
            b"256.1.1.1:80",
            b"1.2.3:80",
            b"1.2.3.4.5:80",
            b"[1:2:3:4:5:6:7:8:9]:1",
            b"[1::2::3]:1",
            b"[12345::]:1",
            b"[::1]",
            b"[::1]80",
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
        let mut buf = [0; 16];
        assert_eq!(name(parse(b"udp:53").unwrap(), &mut buf), b"udp-53");
        assert_eq!(name(parse(b"unix:/s").unwrap(), &mut buf), b"unix");
    }
}
