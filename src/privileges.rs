//! Dropping privileges in the daemon (daemon(7) step 13): supplementary
//! groups, then the group, then the user, then a check that the drop holds.

use rustix::io::{self, Errno};
use rustix::process::{Gid, Uid};

use crate::error::Step;

/// Who the daemon runs as ([`Plan::user`](crate::Plan::user),
/// [`group`](crate::Plan::group), [`groups`](crate::Plan::groups)). Ids
/// only: names are resolved before the fork (the std builder does it with
/// `getpwnam_r`), because the name service is neither async-signal-safe nor
/// free of allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Credentials<'a> {
    /// The user id to switch to.
    pub(crate) uid: Option<u32>,
    /// The group id to switch to.
    pub(crate) gid: Option<u32>,
    /// The supplementary groups to set, replacing the caller's (which would
    /// otherwise stay, as they do under the `daemonize` crate). `Some(&[])`
    /// clears them.
    pub(crate) groups: Option<&'a [u32]>,
}

impl Credentials<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.uid.is_none() && self.gid.is_none() && self.groups.is_none()
    }
}

/// The largest supplementary group list the daemon sets (Linux's
/// `NGROUPS_MAX`), copied to the stack before the call.
const GROUPS_MAX: usize = 65536;

/// Sets groups, group and user, in that order (each later call needs the
/// privilege the earlier ones still have), then checks that root cannot be
/// regained.
pub(crate) fn drop_to(credentials: &Credentials<'_>) -> Result<(), (Step, Errno)> {
    if let Some(groups) = credentials.groups {
        set_groups(groups).map_err(|e| (Step::SetGroups, e))?;
    }
    if let Some(gid) = credentials.gid {
        set_gid(gid).map_err(|e| (Step::SetGid, e))?;
    }
    if let Some(uid) = credentials.uid {
        set_uid(uid).map_err(|e| (Step::SetUid, e))?;
    }
    verify(credentials).map_err(|e| (Step::VerifyPrivileges, e))
}

/// A dropped user must not get root back: `setuid(0)` has to fail. Real
/// and effective ids must be the ones asked for.
fn verify(credentials: &Credentials<'_>) -> io::Result<()> {
    if let Some(gid) = credentials.gid {
        let gid = Gid::from_raw(gid);
        if rustix::process::getgid() != gid || rustix::process::getegid() != gid {
            return Err(Errno::PERM);
        }
    }
    if let Some(uid) = credentials.uid {
        let uid = Uid::from_raw(uid);
        if rustix::process::getuid() != uid || rustix::process::geteuid() != uid {
            return Err(Errno::PERM);
        }
        if !uid.is_root() && set_uid(0).is_ok() {
            return Err(Errno::PERM);
        }
    }
    Ok(())
}

#[cfg(daemonic_thread_credentials)]
fn set_groups(groups: &[u32]) -> io::Result<()> {
    // Gid is a transparent u32: view the list as Gids without copying.
    if groups.len() > GROUPS_MAX {
        return Err(Errno::INVAL);
    }
    // SAFETY: `Gid` is `#[repr(transparent)]` over the platform's gid_t,
    // a u32 here; the slice's length and lifetime carry over unchanged.
    let gids = unsafe { core::slice::from_raw_parts(groups.as_ptr().cast::<Gid>(), groups.len()) };
    rustix::thread::set_thread_groups(gids)
}

#[cfg(daemonic_thread_credentials)]
fn set_gid(gid: u32) -> io::Result<()> {
    // setresgid(gid, gid, gid): real, effective and saved, so it sticks.
    rustix::thread::set_thread_res_gid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))
}

#[cfg(daemonic_thread_credentials)]
fn set_uid(uid: u32) -> io::Result<()> {
    rustix::thread::set_thread_res_uid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))
}

#[cfg(not(daemonic_thread_credentials))]
fn set_groups(groups: &[u32]) -> io::Result<()> {
    if groups.len() > GROUPS_MAX {
        return Err(Errno::INVAL);
    }
    // SAFETY: gid_t is u32 on the Unix targets rustix supports; the pointer
    // and length come from a valid slice.
    let rc = unsafe { libc::setgroups(groups.len() as _, groups.as_ptr().cast()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(crate::fork::last_errno())
    }
}

#[cfg(not(daemonic_thread_credentials))]
fn set_gid(gid: u32) -> io::Result<()> {
    // SAFETY: setgid takes a plain integer.
    if unsafe { libc::setgid(gid) } == 0 {
        Ok(())
    } else {
        Err(crate::fork::last_errno())
    }
}

#[cfg(not(daemonic_thread_credentials))]
fn set_uid(uid: u32) -> io::Result<()> {
    // SAFETY: setuid takes a plain integer.
    if unsafe { libc::setuid(uid) } == 0 {
        Ok(())
    } else {
        Err(crate::fork::last_errno())
    }
}
