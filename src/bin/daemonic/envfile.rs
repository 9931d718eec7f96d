//! `--env-file FILE` (feature `harden`): `KEY=VALUE` lines, read as
//! systemd's `EnvironmentFile=` reads them (systemd.exec(5)), before
//! anything forks. No shell expansion: `$HOME` stays `$HOME`.
//!
//! - Empty lines and lines starting with `#` or `;` are comments.
//! - Whitespace around the line and after `=` is dropped.
//! - `'...'` is taken as it is (it may span lines); `"..."` takes `\"`,
//!   `\\`, `` \` `` and `\$` as the character, a backslash before a newline
//!   joins lines, any other backslash stays; unquoted, a backslash keeps
//!   the next character and joins lines before a newline.
//!
//! Stricter than systemd, which passes over what it cannot read: a line
//! without `=`, a name that is not `[A-Za-z_][A-Za-z0-9_]*`, a quote never
//! closed, text after a closing quote, or a NUL is an error that names the
//! file and line, and nothing starts.

use core::ffi::CStr;

use daemonic::Errno;
use rustix::fs::{FileType, Mode, OFlags};

use crate::out::Line;
use crate::sys;

/// The largest file read: far beyond any real environment, and a bound on
/// what a wrong path (a log, a disk image) makes this read.
const MAX_FILE: usize = 1 << 20;

/// Why a file's entries cannot be had.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// The file could not be read.
    Read(Errno),
    /// A FIFO, a device or a directory.
    NotRegular,
    /// Larger than [`MAX_FILE`].
    TooLarge,
    /// Line N: what is wrong.
    Line(usize, &'static [u8]),
}

/// The entries of every file in `files`, in order, then `given` (so that
/// `--env` wins over a file, and a later file over an earlier one); on
/// failure the message names the file and line.
pub fn merge(
    files: &[&'static CStr],
    given: &[&'static CStr],
    line: &mut Line,
) -> Result<&'static mut [&'static CStr], ()> {
    let mut total = given.len();
    // Read each once; keep the texts in memory of their own.
    let read = sys::slab(files.len(), &b""[..]).map_err(|errno| out_of_memory(line, errno))?;
    for (at, &path) in files.iter().enumerate() {
        read[at] = read_file(path).map_err(|bad| said(line, path, bad))?;
        total += read[at].iter().filter(|&&b| b == b'\n').count() + 1;
    }
    let entries = sys::slab(total, c"").map_err(|errno| out_of_memory(line, errno))?;
    let mut len = 0;
    for (at, &path) in files.iter().enumerate() {
        let mut add = |entry| {
            entries[len] = entry;
            len += 1;
        };
        parse(read[at], &mut add).map_err(|bad| said(line, path, bad))?;
    }
    for &entry in given {
        entries[len] = entry;
        len += 1;
    }
    Ok(&mut entries[..len])
}

fn out_of_memory(line: &mut Line, errno: Errno) {
    line.text(b"--env-file: ").errno(errno);
}

fn said(line: &mut Line, path: &CStr, bad: Bad) {
    line.text(b"--env-file ").c(path).text(b": ");
    match bad {
        Bad::Read(errno) => line.errno(errno),
        Bad::NotRegular => line.text(b"not a regular file"),
        Bad::TooLarge => line.text(b"larger than 1 MiB"),
        Bad::Line(number, why) => line.text(b"line ").num(number as i64).text(b": ").text(why),
    };
}

/// The whole file, refusing what is not a regular file without blocking
/// on it (a FIFO opened non-blocking returns at once).
fn read_file(path: &CStr) -> Result<&'static [u8], Bad> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let file = rustix::fs::open(path, flags, Mode::empty()).map_err(Bad::Read)?;
    let stat = rustix::fs::fstat(&file).map_err(Bad::Read)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(Bad::NotRegular);
    }
    let size = usize::try_from(stat.st_size).map_err(|_| Bad::TooLarge)?;
    if size > MAX_FILE {
        return Err(Bad::TooLarge);
    }
    // One byte more than the size: a file that grows meanwhile is read to
    // that point, not beyond the buffer.
    let buf = sys::zeroed::<u8>(size + 1).map_err(Bad::Read)?;
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(Bad::Read(errno)),
        }
    }
    Ok(&buf[..len])
}

/// Hands each entry of `text` to `add`, as a `KEY=VALUE` C string.
pub fn parse(text: &[u8], add: &mut dyn FnMut(&'static CStr)) -> Result<(), Bad> {
    // A value is never longer than the text it comes from.
    let scratch = sys::zeroed::<u8>(text.len() + 1).map_err(Bad::Read)?;
    let mut at = 0;
    let mut number = 1;
    while at < text.len() {
        let start_line = number;
        let bad = |why| Bad::Line(start_line, why);
        at = skip_blank(text, at);
        match text.get(at) {
            None => break,
            Some(b'\n') => {
                at += 1;
                number += 1;
                continue;
            }
            Some(b'#' | b';') => {
                at = end_of_line(text, at);
                continue;
            }
            Some(_) => {}
        }
        let end = end_of_line(text, at);
        let Some(eq) = text[at..end].iter().position(|&b| b == b'=') else {
            return Err(bad(b"expected KEY=VALUE"));
        };
        let key = trim_end(&text[at..at + eq]);
        if !is_name(key) {
            return Err(bad(b"the name is not [A-Za-z_][A-Za-z0-9_]*"));
        }
        at = skip_blank(text, at + eq + 1);
        let (len, next, lines) = value(text, at, scratch).map_err(bad)?;
        if scratch[..len].contains(&0) {
            return Err(bad(b"a NUL byte"));
        }
        let entry = sys::c_string(&[key, b"=", &scratch[..len]]).map_err(Bad::Read)?;
        add(entry);
        at = next;
        number += lines;
    }
    Ok(())
}

/// The value at `at` into `out`: its length, where the line after it
/// starts, and how many newlines were passed.
fn value(
    text: &[u8],
    mut at: usize,
    out: &mut [u8],
) -> Result<(usize, usize, usize), &'static [u8]> {
    let mut len = 0;
    let mut lines = 0;
    let mut push = |byte: u8, len: &mut usize| {
        out[*len] = byte;
        *len += 1;
    };
    match text.get(at) {
        Some(&quote @ (b'\'' | b'"')) => {
            at += 1;
            loop {
                let Some(&byte) = text.get(at) else {
                    return Err(b"no closing quote");
                };
                at += 1;
                match byte {
                    b'\n' => {
                        lines += 1;
                        push(byte, &mut len);
                    }
                    _ if byte == quote => break,
                    b'\\' if quote == b'"' => match text.get(at) {
                        Some(b'\n') => {
                            at += 1;
                            lines += 1;
                        }
                        Some(&next @ (b'"' | b'\\' | b'`' | b'$')) => {
                            at += 1;
                            push(next, &mut len);
                        }
                        _ => push(byte, &mut len),
                    },
                    _ => push(byte, &mut len),
                }
            }
            // Only blanks may follow the closing quote on its line.
            let after = skip_blank(text, at);
            if !matches!(text.get(after), None | Some(b'\n')) {
                return Err(b"text after the closing quote");
            }
            at = after;
        }
        _ => {
            while let Some(&byte) = text.get(at) {
                match byte {
                    b'\n' => break,
                    b'\\' => {
                        at += 1;
                        match text.get(at) {
                            Some(b'\n') => lines += 1,
                            Some(&next) => push(next, &mut len),
                            None => break,
                        }
                    }
                    _ => push(byte, &mut len),
                }
                at += 1;
            }
            while len > 0 && matches!(out[len - 1], b' ' | b'\t' | b'\r') {
                len -= 1;
            }
        }
    }
    // Past the line's newline.
    if text.get(at) == Some(&b'\n') {
        at += 1;
        lines += 1;
    }
    Ok((len, at, lines))
}

fn skip_blank(text: &[u8], mut at: usize) -> usize {
    while matches!(text.get(at), Some(b' ' | b'\t' | b'\r')) {
        at += 1;
    }
    at
}

fn end_of_line(text: &[u8], at: usize) -> usize {
    text[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |n| at + n)
}

fn trim_end(mut bytes: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// A name a shell would take: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_name(key: &[u8]) -> bool {
    match key.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Result<Vec<String>, Bad> {
        let mut out = Vec::new();
        parse(text.as_bytes(), &mut |entry: &'static CStr| {
            out.push(entry.to_str().unwrap().to_string())
        })?;
        Ok(out)
    }

    #[test]
    fn reads_as_systemd_does() {
        let text = "# comment\n; comment too\n\n  A=1  \nB = two words \nC='single $HOME \\n'\nD=\"x\\\"y\\\\z\\$q\\w\"\nE=line\\\ncontinued\nF=\"multi\nline\"\nG=\nH=a=b\n";
        assert_eq!(
            entries(text).unwrap(),
            [
                "A=1",
                "B=two words",
                "C=single $HOME \\n",
                "D=x\"y\\z$q\\w",
                "E=linecontinued",
                "F=multi\nline",
                "G=",
                "H=a=b",
            ]
        );
        assert_eq!(entries("X=1").unwrap(), ["X=1"]);
        assert_eq!(entries("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn malformed_lines_name_their_number() {
        for (text, number, why) in [
            ("A=1\nnot a setting\n", 2, "expected KEY=VALUE"),
            ("A=1\n\n1X=2\n", 3, "the name is not"),
            ("A-B=2\n", 1, "the name is not"),
            ("=2\n", 1, "the name is not"),
            ("A='open\nB=1\n", 1, "no closing quote"),
            ("A=\"x\" y\n", 1, "text after the closing quote"),
            ("A=\"two\nlines\"\nB\n", 3, "expected KEY=VALUE"),
            ("A=x\\\ny\nB\n", 3, "expected KEY=VALUE"),
        ] {
            match entries(text) {
                Err(Bad::Line(n, said)) => {
                    assert_eq!(n, number, "{text:?}");
                    assert!(
                        String::from_utf8_lossy(said).contains(why),
                        "{text:?}: {}",
                        String::from_utf8_lossy(said)
                    );
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
