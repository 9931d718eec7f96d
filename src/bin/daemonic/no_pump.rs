//! The supervisor built without the `logs` feature carries no output: the
//! program writes its output file itself, as the library opened it for the
//! supervisor (no `--rotate`, `--timestamps` or `--syslog`, which the
//! parser refuses as "built without logs").
//!
//! The supervisor is written once, over pump.rs's interface; here that
//! interface has types with no values. No [`Dest`] (and so no
//! `OutputPipe`) and no [`Pump`] can exist, so every path through one is
//! known dead at compile time and none of the pump's code is linked, where
//! a `cfg` on each use would have forked the supervisor's code.

use core::time::Duration;

use daemonic::Errno;
use daemonic::fd::RawFd;

/// Where one stream of the program's output goes: nowhere the supervisor
/// carries, in this build.
#[derive(Clone, Copy)]
pub enum Dest {}

/// The program's output as the supervisor carries it: never, in this build.
pub enum Pump {}

impl Pump {
    /// No pump is made: every output is `None` here (`Dest` has no values).
    pub fn new(_outputs: [Option<(RawFd, Dest)>; 2]) -> Result<Pump, Errno> {
        Err(Errno::NOSYS)
    }

    pub fn set_pid(&mut self, _pid: i32) {
        match *self {}
    }

    pub fn fds(&self) -> [libc::c_int; 2] {
        match *self {}
    }

    pub fn retry_at(&self) -> Option<Duration> {
        match *self {}
    }

    pub fn takes_hangup(&self) -> bool {
        match *self {}
    }

    pub fn drain(&mut self, _end: bool) {
        match *self {}
    }

    pub fn say(&mut self, _line: &[u8]) -> bool {
        match *self {}
    }

    pub fn finish(&mut self, _deadline: Duration) {
        match *self {}
    }

    pub fn reopen(&mut self) {
        match *self {}
    }
}
