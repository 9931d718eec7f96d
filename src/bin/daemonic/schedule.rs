//! `--stop`'s schedule: which signals to send, and how long to wait for
//! the daemon to go after each, as start-stop-daemon's `--retry` has it.
//!
//! `--retry TERM/30/KILL/5` sends SIGTERM, waits up to 30 s, sends SIGKILL
//! and waits up to 5 s more; a bare number `N` stands for `SIG/N/KILL/N`
//! with `--signal`'s SIG; `forever` repeats the items after it until the
//! daemon is gone. Without `--retry`, `--timeout T` (default 10) means
//! `SIG/T/KILL/5`. A schedule that ends with the daemon still there is
//! exit status 2, as with start-stop-daemon.

use core::time::Duration;

use crate::out::Line;
use crate::values::{Usage, seconds};
use crate::{signame, sys};

/// One item of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Signal(i32),
    /// Wait up to this long for the daemon to be gone.
    Wait(Duration),
    /// Go on at this item (what `forever` leaves at the end).
    Repeat(usize),
}

/// How long SIGKILL gets to take, after `--timeout`'s grace.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// A stop's schedule, prepared before anything is signalled.
#[derive(Clone, Copy)]
pub struct Schedule {
    pub actions: &'static [Action],
}

impl Schedule {
    /// `--signal SIG --timeout T`: SIG, wait T, SIGKILL, wait [`KILL_WAIT`].
    pub fn timeout(signal: i32, grace: Duration, line: &mut Line) -> Result<Schedule, Usage> {
        Self::of(
            &[
                Action::Signal(signal),
                Action::Wait(grace),
                Action::Signal(libc::SIGKILL),
                Action::Wait(KILL_WAIT),
            ],
            line,
        )
    }

    /// `--retry TIMEOUT|SCHEDULE`, `signal` being `--signal`'s (for a bare
    /// timeout).
    pub fn retry(text: &[u8], signal: i32, line: &mut Line) -> Result<Schedule, Usage> {
        if !text.contains(&b'/') {
            let grace = seconds(text, b"--retry", line)?;
            return Self::of(
                &[
                    Action::Signal(signal),
                    Action::Wait(grace),
                    Action::Signal(libc::SIGKILL),
                    Action::Wait(grace),
                ],
                line,
            );
        }
        let items = text.split(|&b| b == b'/').count();
        // One more for the jump `forever` adds at the end.
        let Ok(actions) = sys::slab(items + 1, Action::Repeat(0)) else {
            line.text(b"out of memory");
            return Err(Usage);
        };
        let mut len = 0;
        let mut forever = None;
        for item in text.split(|&b| b == b'/') {
            if item == b"forever" {
                if forever.is_some() {
                    return Err(bad(text, b"'forever' appears twice", line));
                }
                forever = Some(len);
                continue;
            }
            let signal = item.strip_prefix(b"-").unwrap_or(item);
            actions[len] = if item.first().is_some_and(u8::is_ascii_digit) {
                Action::Wait(seconds(item, b"--retry", line)?)
            } else if let Some(signal) = signame::by_name(signal) {
                Action::Signal(signal)
            } else {
                return Err(bad(text, b"expected signals and seconds", line));
            };
            len += 1;
        }
        if let Some(at) = forever {
            if at == len {
                return Err(bad(text, b"nothing after 'forever' to repeat", line));
            }
            actions[len] = Action::Repeat(at);
            len += 1;
        }
        let actions = &actions[..len];
        if len < 2 || !actions.iter().any(|a| matches!(a, Action::Wait(_))) {
            return Err(bad(text, b"expected at least a signal and a time", line));
        }
        Ok(Schedule { actions })
    }

    fn of(actions: &[Action], line: &mut Line) -> Result<Schedule, Usage> {
        let Ok(slab) = sys::slab(actions.len(), Action::Repeat(0)) else {
            line.text(b"out of memory");
            return Err(Usage);
        };
        slab.copy_from_slice(actions);
        Ok(Schedule { actions: slab })
    }
}

fn bad(text: &[u8], why: &[u8], line: &mut Line) -> Usage {
    line.text(b"--retry ")
        .text(text)
        .text(b": ")
        .text(why)
        .text(b" (e.g. TERM/30/KILL/5)");
    Usage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<std::vec::Vec<Action>, std::string::String> {
        let mut line = Line::daemonic();
        Schedule::retry(text.as_bytes(), libc::SIGHUP, &mut line)
            .map(|schedule| schedule.actions.to_vec())
            .map_err(|Usage| std::string::String::from_utf8_lossy(line.as_bytes()).into_owned())
    }

    const fn secs(n: u64) -> Action {
        Action::Wait(Duration::from_secs(n))
    }

    #[test]
    fn schedules_as_start_stop_daemon_reads_them() {
        use Action::Signal;
        assert_eq!(
            parsed("TERM/30/KILL/5"),
            Ok(vec![Signal(libc::SIGTERM), secs(30), Signal(9), secs(5)])
        );
        assert_eq!(
            parsed("-QUIT/2.5/-9/1"),
            Ok(vec![
                Signal(libc::SIGQUIT),
                Action::Wait(Duration::from_millis(2500)),
                Signal(9),
                secs(1)
            ])
        );
        // A bare number: --signal's, then SIGKILL, each given that long.
        assert_eq!(
            parsed("7"),
            Ok(vec![Signal(libc::SIGHUP), secs(7), Signal(9), secs(7)])
        );
        // forever: the items after it, again and again.
        assert_eq!(
            parsed("TERM/1/forever/KILL/2"),
            Ok(vec![
                Signal(libc::SIGTERM),
                secs(1),
                Signal(9),
                secs(2),
                Action::Repeat(2)
            ])
        );
        for (bad, why) in [
            ("TERM", "expected seconds"),
            ("TERM/", "expected signals and seconds"),
            ("TERM/KILL", "at least a signal and a time"),
            ("TERM/5/forever", "nothing after 'forever'"),
            ("forever/TERM/5/forever/1", "'forever' appears twice"),
            ("TERM/5x", "expected seconds"),
            ("BOGUS/5", "expected signals and seconds"),
        ] {
            let error = parsed(bad).err().unwrap_or_default();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
