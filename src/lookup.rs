//! Users and groups by name, resolved before the fork (`getpwnam_r`,
//! `getgrnam_r`, `getgrouplist`): the name service may allocate, read files
//! and talk to daemons, none of which a forked child may do. Runs in the
//! caller only.

use std::ffi::{CString, c_char};

use crate::Error;

/// A user or group, by name or number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Id {
    Name(String),
    Number(u32),
}

impl Id {
    pub(crate) fn parse(spec: &str) -> Id {
        match spec.parse() {
            Ok(n) => Id::Number(n),
            Err(_) => Id::Name(spec.to_string()),
        }
    }
}

/// Resolves the user and group to ids, and the supplementary groups to set:
/// the user's own when started as root with a user named, none but the
/// group when started as root with a number, untouched otherwise (only root
/// may set them).
pub(crate) fn resolve_ids(user: Option<&Id>, group: Option<&Id>) -> Result<Ids, Error> {
    let mut uid = None;
    let mut gid = None;
    let mut user_name = None;
    if let Some(user) = user {
        let (id, primary) = match user {
            Id::Number(n) => (*n, lookup_user_by_id(*n).map(|(_, g)| g)),
            Id::Name(name) => {
                let (id, primary) = lookup_user(name)?;
                user_name = Some(name.clone());
                (id, Some(primary))
            }
        };
        uid = Some(id);
        gid = primary;
        if primary.is_none() && group.is_none() {
            // With no passwd entry there is no primary group to switch to,
            // and keeping the caller's (root's gid 0) would be an accident.
            return Err(Error::Invalid {
                option: "user",
                reason: "a numeric user without a passwd entry needs a group",
            });
        }
    }
    if let Some(group) = group {
        gid = Some(match group {
            Id::Number(n) => *n,
            Id::Name(name) => lookup_group(name)?,
        });
    }
    let root = rustix::process::geteuid().is_root();
    let groups = match (root, uid.is_some() || gid.is_some(), &user_name, gid) {
        (true, _, Some(name), Some(gid)) => Some(group_list(name, gid)?),
        (true, true, None, Some(gid)) => Some(vec![gid]),
        _ => None,
    };
    Ok(Ids { uid, gid, groups })
}

/// Resolved user, group and supplementary groups.
pub(crate) struct Ids {
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) groups: Option<Vec<u32>>,
}

fn unknown(option: &'static str) -> Error {
    Error::Invalid {
        option,
        reason: "no such entry in the system's database",
    }
}

/// `getpwnam_r`: the user's id and primary group.
fn lookup_user(name: &str) -> Result<(u32, u32), Error> {
    let c_name = CString::new(name).map_err(|_| Error::InteriorNul { option: "user" })?;
    with_buffer(|passwd: &mut libc::passwd, buf, result| {
        // SAFETY: every pointer is valid for the call; `buf` is as long as
        // the length passed.
        unsafe { libc::getpwnam_r(c_name.as_ptr(), passwd, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|p: libc::passwd| (p.pw_uid, p.pw_gid))
    .ok_or_else(|| unknown("user"))
}

/// `getpwuid_r`: a numeric user's primary group, if it has an entry.
fn lookup_user_by_id(uid: u32) -> Option<(u32, u32)> {
    with_buffer(|passwd: &mut libc::passwd, buf, result| {
        // SAFETY: as in `lookup_user`.
        unsafe { libc::getpwuid_r(uid, passwd, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|p: libc::passwd| (p.pw_uid, p.pw_gid))
}

/// `getgrnam_r`: the group's id.
fn lookup_group(name: &str) -> Result<u32, Error> {
    let c_name = CString::new(name).map_err(|_| Error::InteriorNul { option: "group" })?;
    with_buffer(|group: &mut libc::group, buf, result| {
        // SAFETY: as in `lookup_user`.
        unsafe { libc::getgrnam_r(c_name.as_ptr(), group, buf.as_mut_ptr(), buf.len(), result) }
    })
    .map(|g: libc::group| g.gr_gid)
    .ok_or_else(|| unknown("group"))
}

/// Calls a `get*_r` function with a buffer that grows on `ERANGE`; the
/// entry, if found.
fn with_buffer<T>(
    mut call: impl FnMut(&mut T, &mut [c_char], *mut *mut T) -> libc::c_int,
) -> Option<T> {
    let mut size = 1024;
    loop {
        // SAFETY: passwd and group are plain C structs for which all-zero
        // is a valid (empty) value.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as c_char; size];
        let mut result: *mut T = std::ptr::null_mut();
        match call(&mut entry, &mut buf, &mut result) {
            libc::ERANGE if size < (1 << 20) => size *= 4,
            0 if !result.is_null() => return Some(entry),
            _ => return None,
        }
    }
}

/// The group ids `getgrouplist` takes and fills: `int` where the C
/// library keeps the old BSD prototype (macOS), `gid_t` elsewhere.
#[cfg(daemonic_grouplist_int)]
type GroupListId = libc::c_int;
#[cfg(not(daemonic_grouplist_int))]
type GroupListId = libc::gid_t;

/// `getgrouplist`: every group `user` belongs to, `gid` included.
// The casts change the type where GroupListId is `int`.
#[allow(clippy::unnecessary_cast)]
fn group_list(user: &str, gid: u32) -> Result<Vec<u32>, Error> {
    let c_user = CString::new(user).map_err(|_| Error::InteriorNul { option: "user" })?;
    let mut count: libc::c_int = 64;
    loop {
        let mut groups: Vec<GroupListId> = vec![0; count as usize];
        let capacity = count;
        // SAFETY: `groups` holds `count` entries; getgrouplist writes at
        // most that many and sets `count` to the number it needs.
        let rc = unsafe {
            libc::getgrouplist(
                c_user.as_ptr(),
                gid as GroupListId,
                groups.as_mut_ptr(),
                &mut count,
            )
        };
        if rc >= 0 {
            groups.truncate(count as usize);
            // Group ids are unsigned: an `int` one is the same bits.
            return Ok(groups.into_iter().map(|id| id as u32).collect());
        }
        if count <= capacity {
            count = capacity * 2;
        }
        if count > 65536 {
            return Err(Error::Invalid {
                option: "user",
                reason: "belongs to too many groups",
            });
        }
    }
}
