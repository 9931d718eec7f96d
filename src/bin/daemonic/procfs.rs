//! Reading `/proc`: small files whole, and `/proc/PID/stat`'s fields. For
//! `--stop` (which process holds the PID file, its session) and for the
//! supervisor (its children, the program's group).

use core::ffi::CStr;

use core::mem::MaybeUninit;

use daemonic::decimal::Decimal;
use daemonic::fd::OwnedFd;
use rustix::fs::{Mode, OFlags, RawDir};

use crate::sys;

/// `/proc/PID` followed by `file` (`/stat`), as a C string in `buf`.
pub fn proc_file<'b>(pid: i32, file: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b CStr> {
    let digits = Decimal::new(u64::from(pid.unsigned_abs()));
    let mut len = 0;
    for part in [&b"/proc/"[..], digits.digits(), file, b"\0"] {
        buf.get_mut(len..len + part.len())?.copy_from_slice(part);
        len += part.len();
    }
    CStr::from_bytes_with_nul(&buf[..len]).ok()
}

/// Reads a small `/proc` file whole into `buf`.
pub fn read_small<'b>(path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let file = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    read_all(&file, buf)
}

/// Reads an open `/proc` file whole into `buf` (as much as fits).
pub fn read_all<'b>(file: &OwnedFd, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) => return None,
        }
    }
    Some(&buf[..len])
}

/// `/proc/PID/stat` after the command name, into `buf`: its fields
/// from the state on, for [`field`].
pub fn stat_fields(pid: i32, buf: &mut [u8; 512]) -> Option<&[u8]> {
    let mut path = [0u8; 32];
    let text = read_small(proc_file(pid, b"/stat", &mut path)?, buf)?;
    let close = text.iter().rposition(|&b| b == b')')?;
    Some(&text[close + 1..])
}

/// Field `index` of [`stat_fields`] (0: state, 1: ppid, 2: pgrp, 3:
/// session).
pub fn field(fields: &[u8], index: usize) -> Option<&[u8]> {
    fields
        .split(|&b| b == b' ' || b == b'\n')
        .filter(|field| !field.is_empty())
        .nth(index)
}

/// Calls `visit` with each PID in `/proc` until it returns `false`; `None`
/// when `/proc` cannot be read.
pub fn each_pid(mut visit: impl FnMut(i32) -> bool) -> Option<()> {
    let proc = rustix::fs::open(
        c"/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // A kilobyte holds some thirty entries a getdents(2) call: a supervisor
    // that counts its tree as PID 1 keeps a page of stack fewer resident
    // than with a page-sized buffer, for a few more calls.
    let mut dir_buf = [MaybeUninit::<u8>::uninit(); 1024];
    let mut entries = RawDir::new(&proc, &mut dir_buf);
    while let Some(entry) = entries.next() {
        let pid = entry
            .ok()
            .and_then(|e| sys::parse_pid(e.file_name().to_bytes()));
        if let Some(pid) = pid {
            if !visit(pid) {
                break;
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths_and_stat_fields() {
        let mut buf = [0u8; 32];
        assert_eq!(
            proc_file(i32::MAX, b"/stat", &mut buf),
            Some(c"/proc/2147483647/stat")
        );
        assert_eq!(proc_file(7, b"", &mut buf), Some(c"/proc/7"));
        // A command name with spaces and parentheses: fields count after
        // the last ')'.
        let fields = b" S 1 42 42 0";
        assert_eq!(field(fields, 0), Some(&b"S"[..]));
        assert_eq!(field(fields, 2), Some(&b"42"[..]));
        assert_eq!(field(fields, 9), None);
        let mut stat = [0u8; 512];
        let own = rustix::process::getpid().as_raw_pid();
        let fields = stat_fields(own, &mut stat).expect("/proc/self/stat");
        assert_eq!(field(fields, 0).map(<[u8]>::len), Some(1));
        let mut seen_self = false;
        each_pid(|pid| {
            seen_self |= pid == own;
            true
        });
        assert!(seen_self);
    }
}
