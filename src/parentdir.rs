//! The directory a path names its file in, opened (without following the
//! last component) from a copy of the path's directory part on the stack.

use core::ffi::CStr;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::{self, Errno};

/// The longest directory part of a PID file path we resolve (Linux's
/// `PATH_MAX`); the copy lives on the caller's stack before the fork.
const DIR_PATH_MAX: usize = 4096;

/// Opens the directory part of `path` (`.` when there is none).
pub(crate) fn open_parent(path: &CStr) -> io::Result<OwnedFd> {
    let bytes = path.to_bytes();
    match bytes.iter().rposition(|&b| b == b'/') {
        None => open_dir(c"."),
        Some(0) => open_dir(c"/"),
        Some(slash) if slash < SHORT_DIR_PATH => open_prefix::<SHORT_DIR_PATH>(&bytes[..slash]),
        Some(slash) => open_long_prefix(&bytes[..slash]),
    }
}

/// Directory parts up to this long are copied in a small buffer: a page
/// of stack touched here would be copied into the daemon by fork and stay
/// resident in it.
const SHORT_DIR_PATH: usize = 256;

/// Opens `dir`, copied with a NUL into a buffer of `N` bytes.
fn open_prefix<const N: usize>(dir: &[u8]) -> io::Result<OwnedFd> {
    if dir.len() >= N {
        return Err(Errno::NAMETOOLONG);
    }
    let mut buf = [0u8; N];
    buf[..dir.len()].copy_from_slice(dir);
    // `path` has no interior NUL, so neither has its prefix.
    open_dir(CStr::from_bytes_until_nul(&buf).map_err(|_| Errno::INVAL)?)
}

/// A long directory part, out of line so that its page-sized buffer is on
/// the stack only when needed.
#[inline(never)]
fn open_long_prefix(dir: &[u8]) -> io::Result<OwnedFd> {
    open_prefix::<DIR_PATH_MAX>(dir)
}

fn open_dir(dir: &CStr) -> io::Result<OwnedFd> {
    #[cfg(daemonic_o_path)]
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    #[cfg(not(daemonic_o_path))]
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(dir, flags, Mode::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory opened is the path's own, for a short directory part,
    /// a long one (past the small buffer) and none; one past `PATH_MAX` is
    /// refused, not cut.
    #[test]
    fn open_parent_opens_the_directory_part() {
        use std::os::unix::fs::MetadataExt;
        let same = |fd: &OwnedFd, dir: &std::path::Path| {
            let opened = rustix::fs::fstat(fd).unwrap();
            let dir = std::fs::metadata(dir).unwrap();
            (opened.st_dev as u64, opened.st_ino as u64) == (dir.dev(), dir.ino())
        };
        let base =
            std::env::temp_dir().join(std::format!("daemonic-parent-{}", std::process::id()));
        let long = base.join("d".repeat(200)).join("e".repeat(200));
        std::fs::create_dir_all(&long).unwrap();
        for dir in [&base, &long] {
            let file =
                std::ffi::CString::new(dir.join("x.pid").into_os_string().into_encoded_bytes());
            let fd = open_parent(&file.unwrap()).unwrap();
            assert!(same(&fd, dir), "{dir:?}");
        }
        assert!(long.as_os_str().len() > SHORT_DIR_PATH);
        assert!(same(
            &open_parent(c"x.pid").unwrap(),
            std::path::Path::new(".")
        ));
        assert!(same(
            &open_parent(c"/x.pid").unwrap(),
            std::path::Path::new("/")
        ));
        let too_long =
            std::ffi::CString::new(std::format!("/{}/x.pid", "a".repeat(DIR_PATH_MAX))).unwrap();
        assert_eq!(open_parent(&too_long).err(), Some(Errno::NAMETOOLONG));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
