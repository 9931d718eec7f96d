//! `--runtime-dir NAME` (feature `harden`): `/run/NAME`, made by the
//! start as root before the user changes and owned by `-u`'s user (mode
//! 0755), so that the daemon keeps its socket and PID file there; removed
//! with what it holds when the service ends, as systemd's
//! `RuntimeDirectory=` is.
//!
//! Every call works from an fd of the parent directory, never a path, and
//! opens nothing that is a symbolic link (`O_NOFOLLOW`, `unlinkat`): what
//! the user put inside cannot send root's removal elsewhere.

use core::ffi::CStr;

use daemonic::Errno;
use daemonic::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::sys;

/// Where the directories go.
pub const PARENT: &CStr = c"/run";

/// How deep removal goes: a runtime directory holds sockets and PID
/// files, rarely a subdirectory; deeper trees are left.
const MAX_DEPTH: u32 = 8;

/// Whether `name` may be a directory of [`PARENT`]: one path component,
/// not `.` or `..`.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= 255 && !name.contains(&b'/') && name != b"." && name != b".."
}

/// `/run/NAME` made (or taken over, if there) for `owner`, mode 0755;
/// whether it was made now.
pub fn create(name: &CStr, owner: Option<(u32, u32)>) -> Result<bool, Errno> {
    let parent = open_dir(None, PARENT)?;
    let made = match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(errno) => return Err(errno),
    };
    let dir = open_dir(Some(parent.as_fd()), name)?;
    if let Some((uid, gid)) = owner {
        rustix::fs::fchown(
            &dir,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )?;
    }
    // A directory found there keeps no mode of its own (umask, a setgid
    // bit): 0755, as systemd's default RuntimeDirectoryMode=.
    rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o755))?;
    Ok(made)
}

/// `/run/NAME` as a path, for the program's `RUNTIME_DIRECTORY`.
pub fn path(name: &CStr) -> Result<&'static CStr, Errno> {
    sys::c_string(&[PARENT.to_bytes(), b"/", name.to_bytes()])
}

/// Removes `/run/NAME` and what it holds, as far as this process may (the
/// supervisor after the user changed can empty it, not remove it from
/// `/run`: `--stop` as root does). Nothing there is not an error.
pub fn remove(name: &CStr) -> Result<(), Errno> {
    let parent = open_dir(None, PARENT)?;
    match remove_tree(parent.as_fd(), name, 0) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(errno) => Err(errno),
    }
}

/// A directory, never through a symbolic link.
fn open_dir(parent: Option<BorrowedFd<'_>>, path: &CStr) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match parent {
        Some(parent) => rustix::fs::openat(parent, path, flags, Mode::empty())?,
        None => rustix::fs::open(path, flags, Mode::empty())?,
    };
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return Err(Errno::NOTDIR);
    }
    Ok(fd)
}

/// Removes `name` in `parent` and, when it is a directory, what it holds.
fn remove_tree(parent: BorrowedFd<'_>, name: &CStr, depth: u32) -> Result<(), Errno> {
    // Not through unlink's error: unlinking from a parent it may not write
    // (/run, as the user) fails before a directory is told apart, and its
    // contents would stay.
    let stat = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory || depth >= MAX_DEPTH {
        return rustix::fs::unlinkat(parent, name, AtFlags::empty());
    }
    // Should it have become a link meanwhile, this fails (O_NOFOLLOW).
    let dir = open_dir(Some(parent), name)?;
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 1024];
    // Entries are removed while the directory is read: read again from the
    // start until a pass removes nothing (what cannot go stays).
    loop {
        let mut removed = false;
        rustix::fs::seek(&dir, rustix::fs::SeekFrom::Start(0))?;
        let mut entries = rustix::fs::RawDir::new(&dir, &mut buf);
        while let Some(entry) = entries.next() {
            let entry = entry?;
            let child = entry.file_name();
            if matches!(child.to_bytes(), b"." | b"..") {
                continue;
            }
            if remove_tree(dir.as_fd(), child, depth + 1).is_ok() {
                removed = true;
            }
        }
        if !removed {
            break;
        }
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_component() {
        for name in [&b"web"[..], b"my.service", b"a..b"] {
            assert!(valid_name(name), "{name:?}");
        }
        for name in [&b""[..], b".", b"..", b"a/b", b"/etc", b"../etc"] {
            assert!(!valid_name(name), "{name:?}");
        }
        assert!(!valid_name(&[b'x'; 256]));
    }

    #[test]
    fn removes_a_tree_but_follows_no_link() {
        let base = std::env::temp_dir().join(format!("daemonic-rundir-{}", std::process::id()));
        let outside = base.join("outside");
        let tree = base.join("tree");
        std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        std::fs::write(tree.join("pid"), "1").unwrap();
        std::fs::write(tree.join("sub/deeper/file"), "1").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        let parent = std::ffi::CString::new(base.to_str().unwrap()).unwrap();
        let parent = open_dir(None, &parent).unwrap();
        remove_tree(parent.as_fd(), c"tree", 0).unwrap();
        assert!(!tree.exists());
        assert!(outside.join("keep").exists(), "followed the link");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
