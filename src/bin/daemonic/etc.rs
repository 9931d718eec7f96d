//! `/etc/passwd` and `/etc/group`, read and searched without the C
//! library. On musl the command looks users and groups up here: musl's own
//! lookups read the same two files (and ask nscd, which musl systems do not
//! run), but through stdio and `malloc`, which would be two thirds of a
//! kilobyte-counted static binary. Elsewhere the C library's name service
//! (NSS: LDAP, systemd-userdb, ...) is used; these functions are tested on
//! every system all the same.
//!
//! The formats are those of passwd(5) and group(5): one entry per line,
//! fields separated by `:`; `name:password:uid:gid:gecos:home:shell` and
//! `name:password:gid:member,member`. Malformed lines are passed over, as
//! the C libraries do.

use core::ffi::CStr;

use rustix::fs::{Mode, OFlags};

use crate::sys;

/// The largest database file read: far beyond any real one, and a bound on
/// the memory a hostile file could make this take.
const MAX_FILE: u64 = 64 << 20;

/// The whole file at `path`, in memory of its own; `None` if it cannot be
/// read (then nobody is found in it).
pub fn read(path: &CStr) -> Option<&'static [u8]> {
    let file = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let size = rustix::fs::fstat(&file).ok()?.st_size as u64;
    if size > MAX_FILE {
        return None;
    }
    // One byte more than the size: a file that grows meanwhile is read to
    // that point, not beyond the buffer.
    let buf = sys::zeroed::<u8>(size as usize + 1).ok()?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    Some(&buf[..len])
}

/// The lines of a database, each split into its `:`-separated fields.
fn entries(text: &[u8]) -> impl Iterator<Item = Fields<'_>> {
    text.split(|&b| b == b'\n').map(|line| Fields { line })
}

/// One line's fields.
#[derive(Clone, Copy)]
struct Fields<'t> {
    line: &'t [u8],
}

impl<'t> Fields<'t> {
    fn get(self, index: usize) -> Option<&'t [u8]> {
        self.line.split(|&b| b == b':').nth(index)
    }

    fn number(self, index: usize) -> Option<u32> {
        sys::parse_u64(self.get(index)?, u64::from(u32::MAX)).map(|n| n as u32)
    }
}

/// passwd(5): user `name`'s id and primary group.
pub fn user_by_name(passwd: &[u8], name: &[u8]) -> Option<(u32, u32)> {
    entries(passwd)
        .filter(|entry| entry.get(0) == Some(name))
        .find_map(|entry| Some((entry.number(2)?, entry.number(3)?)))
}

/// passwd(5): the primary group of the first user with id `uid`.
pub fn user_by_id(passwd: &[u8], uid: u32) -> Option<u32> {
    entries(passwd)
        .filter(|entry| entry.number(2) == Some(uid))
        .find_map(|entry| entry.number(3))
}

/// group(5): group `name`'s id.
pub fn group_by_name(group: &[u8], name: &[u8]) -> Option<u32> {
    entries(group)
        .filter(|entry| entry.get(0) == Some(name))
        .find_map(|entry| entry.number(2))
}

/// group(5): `gid` and every group that lists `user` as a member, each
/// once, into `out`; how many, or `None` when `out` is too short.
pub fn groups_of(group: &[u8], user: &[u8], gid: u32, out: &mut [u32]) -> Option<usize> {
    *out.first_mut()? = gid;
    let mut len = 1;
    for entry in entries(group) {
        let (Some(id), Some(members)) = (entry.number(2), entry.get(3)) else {
            continue;
        };
        let member = members.split(|&b| b == b',').any(|m| m == user);
        if member && !out[..len].contains(&id) {
            *out.get_mut(len)? = id;
            len += 1;
        }
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
        broken line\n\
        web:x:33:34:web server:/var/www:/usr/sbin/nologin\n\
        bad:x:notanumber:1::/:/bin/sh\n\
        web2:x:33:35::/:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\n\
        web:x:34:\n\
        audio:x:29:pulse,web\n\
        video:x:44:webby\n\
        staff:x:50:web\n\
        again:x:29:web\n";

    #[test]
    fn users_and_groups() {
        assert_eq!(user_by_name(PASSWD, b"web"), Some((33, 34)));
        assert_eq!(user_by_name(PASSWD, b"we"), None);
        assert_eq!(user_by_name(PASSWD, b"bad"), None);
        assert_eq!(user_by_name(PASSWD, b""), None);
        assert_eq!(user_by_id(PASSWD, 33), Some(34));
        assert_eq!(user_by_id(PASSWD, 7), None);
        assert_eq!(group_by_name(GROUP, b"audio"), Some(29));
        assert_eq!(group_by_name(GROUP, b"nope"), None);
        let mut out = [0; 8];
        let n = groups_of(GROUP, b"web", 34, &mut out).unwrap();
        assert_eq!(&out[..n], [34, 29, 50]);
        let mut short = [0; 2];
        assert_eq!(groups_of(GROUP, b"web", 34, &mut short), None);
    }

    /// The same answers as the C library's lookups for this system's own
    /// users and groups.
    #[test]
    fn agrees_with_the_c_library() {
        let passwd = read(c"/etc/passwd").expect("/etc/passwd");
        let group = read(c"/etc/group").expect("/etc/group");
        for name in [c"root", c"nobody", c"daemon"] {
            // SAFETY: a valid C string; the entry is read at once.
            let entry = unsafe { libc::getpwnam(name.as_ptr()) };
            let expected =
                (!entry.is_null()).then(|| unsafe { ((*entry).pw_uid, (*entry).pw_gid) });
            assert_eq!(user_by_name(passwd, name.to_bytes()), expected, "{name:?}");
        }
        for name in [c"root", c"nogroup", c"adm"] {
            // SAFETY: as above.
            let entry = unsafe { libc::getgrnam(name.as_ptr()) };
            let expected = (!entry.is_null()).then(|| unsafe { (*entry).gr_gid });
            assert_eq!(group_by_name(group, name.to_bytes()), expected, "{name:?}");
        }
    }
}
