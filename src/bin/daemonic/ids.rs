//! `-u USER[:GROUP]` and `-g GROUP` resolved to ids before anything forks:
//! `getpwnam_r`, `getgrnam_r` and `getgrouplist` into buffers of our own
//! (anonymous memory, grown on `ERANGE`), or on musl the files those read
//! (see `etc.rs`). The C library's name service may itself allocate and
//! read files here, in the caller, which is fine; the daemon only gets the
//! numbers.

use core::ffi::CStr;

use crate::out::Line;
use crate::sys;

/// The ids the daemon switches to, and its supplementary groups.
#[derive(Default)]
pub struct Ids {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<&'static [u32]>,
}

impl Ids {
    /// Who owns what is made for the daemon (its notification socket's
    /// directory, its runtime directory): the user it runs as, with its
    /// group (or this process's); `None` when the user does not change.
    pub fn owner(&self) -> Option<(u32, u32)> {
        let gid = || rustix::process::getgid().as_raw();
        self.uid.map(|uid| (uid, self.gid.unwrap_or_else(gid)))
    }
}

/// The most supplementary groups a user may have (Linux's `NGROUPS_MAX`).
const MAX_GROUPS: usize = 65536;

/// Resolves the user and group to ids, and the supplementary groups to
/// set: the user's own when started as root with a user named, only the
/// group when started as root with a numeric user or a group alone,
/// untouched otherwise (only root may set them). `Err` when a name is
/// unknown, with the message in `line`.
pub fn resolve(user: Option<&[u8]>, group: Option<&[u8]>, line: &mut Line) -> Result<Ids, Unknown> {
    let mut ids = Ids::default();
    let mut database = database::Database::new();
    let mut user_name = None;
    if let Some(user) = user {
        let (uid, primary) = match number(user) {
            Some(uid) => (uid, database.by_uid(uid)),
            None => {
                let name = c_name(user, line)?;
                let Some((uid, primary)) = database.by_name(name) else {
                    return Err(unknown(b"user", user, line));
                };
                user_name = Some(name);
                (uid, Some(primary))
            }
        };
        if primary.is_none() && group.is_none() {
            // With no passwd entry there is no primary group to switch to,
            // and keeping the caller's (root's gid 0) would be an accident.
            line.text(b"user ")
                .text(user)
                .text(b" has no passwd entry: name its group with -g");
            return Err(Unknown);
        }
        ids.uid = Some(uid);
        ids.gid = primary;
    }
    if let Some(group) = group {
        ids.gid = Some(match number(group) {
            Some(gid) => gid,
            None => match database.group_by_name(c_name(group, line)?) {
                Some(gid) => gid,
                None => return Err(unknown(b"group", group, line)),
            },
        });
    }
    if rustix::process::geteuid().is_root() {
        ids.groups = match (user_name, ids.gid) {
            (Some(name), Some(gid)) => Some(group_list(&mut database, name, gid, line)?),
            (None, Some(gid)) => Some(sys::slab(1, gid).map_err(|_| out_of_memory(line))?),
            _ => None,
        };
    }
    Ok(ids)
}

fn number(text: &[u8]) -> Option<u32> {
    sys::parse_u64(text, u64::from(u32::MAX)).map(|n| n as u32)
}

/// A user or group that cannot be had: its message is in the caller's
/// [`Line`].
pub struct Unknown;

fn c_name(name: &[u8], line: &mut Line) -> Result<&'static CStr, Unknown> {
    sys::c_string(&[name]).map_err(|_| out_of_memory(line))
}

fn unknown(what: &[u8], name: &[u8], line: &mut Line) -> Unknown {
    line.text(b"unknown ")
        .text(what)
        .text(b" '")
        .text(name)
        .text(b"'");
    Unknown
}

fn out_of_memory(line: &mut Line) -> Unknown {
    line.text(b"out of memory looking up users and groups");
    Unknown
}

/// A user in more groups than [`MAX_GROUPS`], or no memory for the list.
struct TooMany;

/// Every group `user` belongs to, `gid` included, with the message when
/// they cannot be had.
fn group_list(
    database: &mut database::Database,
    user: &CStr,
    gid: u32,
    line: &mut Line,
) -> Result<&'static [u32], Unknown> {
    database.group_list(user, gid).map_err(|TooMany| {
        line.text(b"user ")
            .c(user)
            .text(b" belongs to too many groups");
        Unknown
    })
}

/// The C library's name service (NSS: files, LDAP, systemd-userdb, ...).
#[cfg(not(target_env = "musl"))]
mod database {
    use core::ffi::{CStr, c_char};

    use super::{MAX_GROUPS, TooMany};
    use crate::sys;

    /// Nothing to hold: the C library keeps what it reads.
    pub struct Database;

    impl Database {
        pub fn new() -> Database {
            Database
        }

        /// [`getpwnam_r(3)`](https://man7.org/linux/man-pages/man3/getpwnam_r.3.html):
        /// the user's id and primary group.
        pub fn by_name(&mut self, name: &CStr) -> Option<(u32, u32)> {
            lookup(|entry: &mut libc::passwd, buf, len, result| {
                // SAFETY: every pointer is valid for the call; `buf` holds `len`.
                unsafe { libc::getpwnam_r(name.as_ptr(), entry, buf, len, result) }
            })
            .map(|p| (p.pw_uid, p.pw_gid))
        }

        /// `getpwuid_r(3)`: a numeric user's primary group, if it has an entry.
        pub fn by_uid(&mut self, uid: u32) -> Option<u32> {
            lookup(|entry: &mut libc::passwd, buf, len, result| {
                // SAFETY: as in `by_name`.
                unsafe { libc::getpwuid_r(uid, entry, buf, len, result) }
            })
            .map(|p| p.pw_gid)
        }

        /// [`getgrnam_r(3)`](https://man7.org/linux/man-pages/man3/getgrnam_r.3.html):
        /// the group's id.
        pub fn group_by_name(&mut self, name: &CStr) -> Option<u32> {
            lookup(|entry: &mut libc::group, buf, len, result| {
                // SAFETY: as in `by_name`.
                unsafe { libc::getgrnam_r(name.as_ptr(), entry, buf, len, result) }
            })
            .map(|g| g.gr_gid)
        }

        /// [`getgrouplist(3)`](https://man7.org/linux/man-pages/man3/getgrouplist.3.html):
        /// every group `user` belongs to, `gid` included.
        pub fn group_list(&mut self, user: &CStr, gid: u32) -> Result<&'static [u32], TooMany> {
            let mut capacity: usize = 64;
            loop {
                let groups = sys::zeroed::<libc::gid_t>(capacity).map_err(|_| TooMany)?;
                let mut count = capacity as libc::c_int;
                // SAFETY: `groups` holds `count` entries; getgrouplist writes
                // at most that many and sets `count` to the number it needs.
                let rc = unsafe {
                    libc::getgrouplist(user.as_ptr(), gid, groups.as_mut_ptr(), &mut count)
                };
                if rc >= 0 {
                    return Ok(&groups[..(count as usize).min(capacity)]);
                }
                capacity = (count as usize).max(capacity * 2);
                if capacity > MAX_GROUPS {
                    return Err(TooMany);
                }
            }
        }
    }

    /// Calls a `get*_r` function with a buffer grown on `ERANGE` (up to
    /// 1 MiB); the entry, if found.
    fn lookup<T>(
        mut call: impl FnMut(&mut T, *mut c_char, usize, *mut *mut T) -> libc::c_int,
    ) -> Option<T> {
        let mut size = 16 * 1024;
        loop {
            let buf = sys::zeroed::<c_char>(size).ok()?;
            // SAFETY: passwd and group are plain C structs for which
            // all-zero is a valid (empty) value.
            let mut entry: T = unsafe { core::mem::zeroed() };
            let mut result: *mut T = core::ptr::null_mut();
            match call(&mut entry, buf.as_mut_ptr(), buf.len(), &mut result) {
                libc::ERANGE if size < (1 << 20) => size *= 4,
                0 if !result.is_null() => return Some(entry),
                _ => return None,
            }
        }
    }
}

/// `/etc/passwd` and `/etc/group` read here (see [`crate::etc`]), each
/// at most once.
#[cfg(target_env = "musl")]
mod database {
    use core::ffi::CStr;

    use super::{MAX_GROUPS, TooMany};
    use crate::{etc, sys};

    /// The two files, each read when first needed (empty if it cannot be
    /// read: nobody is found in it).
    pub struct Database {
        passwd: Option<&'static [u8]>,
        group: Option<&'static [u8]>,
    }

    /// `file`'s text, read into `slot` the first time.
    fn text(slot: &mut Option<&'static [u8]>, file: &CStr) -> &'static [u8] {
        slot.get_or_insert_with(|| etc::read(file).unwrap_or_default())
    }

    impl Database {
        pub fn new() -> Database {
            Database {
                passwd: None,
                group: None,
            }
        }

        pub fn by_name(&mut self, name: &CStr) -> Option<(u32, u32)> {
            etc::user_by_name(text(&mut self.passwd, c"/etc/passwd"), name.to_bytes())
        }

        pub fn by_uid(&mut self, uid: u32) -> Option<u32> {
            etc::user_by_id(text(&mut self.passwd, c"/etc/passwd"), uid)
        }

        pub fn group_by_name(&mut self, name: &CStr) -> Option<u32> {
            etc::group_by_name(text(&mut self.group, c"/etc/group"), name.to_bytes())
        }

        pub fn group_list(&mut self, user: &CStr, gid: u32) -> Result<&'static [u32], TooMany> {
            // Pages are only touched as groups are found.
            let groups = sys::zeroed::<u32>(MAX_GROUPS).map_err(|_| TooMany)?;
            let group = text(&mut self.group, c"/etc/group");
            let len = etc::groups_of(group, user.to_bytes(), gid, groups).ok_or(TooMany)?;
            Ok(&groups[..len])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(user: Option<&[u8]>, group: Option<&[u8]>) -> Result<Ids, String> {
        let mut line = Line::daemonic();
        resolve(user, group, &mut line)
            .map_err(|Unknown| String::from_utf8_lossy(line.as_bytes()).into_owned())
    }

    #[test]
    fn names_and_numbers() {
        let root = resolved(Some(b"root"), None).unwrap();
        assert_eq!((root.uid, root.gid), (Some(0), Some(0)));
        let numeric = resolved(Some(b"0"), Some(b"0")).unwrap();
        assert_eq!((numeric.uid, numeric.gid), (Some(0), Some(0)));
        let error = resolved(Some(b"no-such-user-here"), None).err().unwrap();
        assert_eq!(error, "daemonic: unknown user 'no-such-user-here'");
        let error = resolved(None, Some(b"no-such-group-here")).err().unwrap();
        assert_eq!(error, "daemonic: unknown group 'no-such-group-here'");
        let error = resolved(Some(b"4000000000"), None).err().unwrap();
        assert!(error.ends_with("has no passwd entry: name its group with -g"));
    }
}
