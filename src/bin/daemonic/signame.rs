//! Signals by name, as `--signal`, `--stop-signal` and `--retry` take them
//! (`TERM`, `SIGTERM` or a number), and back to a name for messages.

/// The signals people name in init scripts and unit files.
const SIGNALS: &[(&[u8], i32)] = &[
    (b"HUP", libc::SIGHUP),
    (b"INT", libc::SIGINT),
    (b"QUIT", libc::SIGQUIT),
    (b"KILL", libc::SIGKILL),
    (b"USR1", libc::SIGUSR1),
    (b"USR2", libc::SIGUSR2),
    (b"ALRM", libc::SIGALRM),
    (b"TERM", libc::SIGTERM),
    (b"CONT", libc::SIGCONT),
    (b"STOP", libc::SIGSTOP),
    (b"WINCH", libc::SIGWINCH),
    (b"ABRT", libc::SIGABRT),
    (b"PWR", libc::SIGPWR),
];

/// A signal by name (with or without `SIG`) or by number from 1 to 64.
pub fn by_name(text: &[u8]) -> Option<i32> {
    if let Some(n) = crate::sys::parse_u64(text, 64).filter(|&n| n >= 1) {
        return Some(n as i32);
    }
    let name = text.strip_prefix(b"SIG").unwrap_or(text);
    SIGNALS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, signal)| signal)
}

/// `KILL` for SIGKILL, if the signal has a name here.
pub fn name(signal: i32) -> Option<&'static [u8]> {
    SIGNALS
        .iter()
        .find(|&&(_, number)| number == signal)
        .map(|&(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(by_name(b"TERM"), Some(libc::SIGTERM));
        assert_eq!(by_name(b"SIGQUIT"), Some(libc::SIGQUIT));
        assert_eq!(by_name(b"9"), Some(libc::SIGKILL));
        assert_eq!(by_name(b"64"), Some(64));
        for bad in [&b"0"[..], b"65", b"term", b"SIG", b"", b"-9"] {
            assert_eq!(by_name(bad), None, "{bad:?}");
        }
        assert_eq!(name(libc::SIGKILL), Some(&b"KILL"[..]));
        assert_eq!(name(40), None);
    }
}
