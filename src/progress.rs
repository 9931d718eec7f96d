//! The step the daemon has reached, in one shared page the caller reads
//! when the daemon is late: "not ready in 60 s" becomes "not ready in 60 s
//! (still trying to redirect standard output)", which names a FIFO nobody
//! reads or a hung network mount.
//!
//! A shared anonymous mapping survives both forks, so the daemon records a
//! step with one store to memory: no system call, no record on the report
//! pipe, nothing to read unless the caller times out.

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, Ordering};

use rustix::mm::{MapFlags, ProtFlags};

use crate::error::Step;

/// The smallest mapping the kernel hands out.
const LEN: usize = 4096;

/// What is stored once the sequence is done.
const DONE: u8 = 0;

/// The shared page; unmapped when dropped (in each process that has it).
/// Or, for daemons made with `clone(CLONE_VM)`, which share all of the
/// caller's memory anyway, a cell of the caller's ([`Progress::in_caller`]).
#[derive(Debug)]
pub(crate) struct Progress {
    page: NonNull<AtomicU8>,
    mapped: bool,
}

impl Progress {
    /// Maps the page; `None` if the system refuses (the start goes on,
    /// without the step in a timeout's message).
    pub(crate) fn new() -> Option<Progress> {
        // SAFETY: a new anonymous mapping at an address the kernel picks;
        // nothing else refers to it.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                LEN,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
            )
        }
        .ok()?;
        let page = NonNull::new(ptr.cast::<AtomicU8>())?;
        Some(Progress { page, mapped: true })
    }

    /// Records in `cell`, which the caller's cloned children share with it:
    /// no mapping to make (a shared page costs a start some 35 µs: the
    /// kernel makes a shmem file for it).
    ///
    /// # Safety
    ///
    /// `cell` must stay where it is for as long as this `Progress` and
    /// every child that records in it live.
    #[cfg(daemonic_clone_vm)]
    pub(crate) unsafe fn in_caller(cell: &AtomicU8) -> Progress {
        Progress {
            page: NonNull::from(cell),
            mapped: false,
        }
    }

    fn cell(&self) -> &AtomicU8 {
        // SAFETY: the page is mapped, zeroed and writable for as long as
        // `self` lives (or the caller's cell stays, as `in_caller`
        // demands); an AtomicU8 has no alignment demand.
        unsafe { self.page.as_ref() }
    }

    /// The daemon is about to run `step`.
    pub(crate) fn reach(&self, step: Step) {
        self.cell().store(step as u8, Ordering::Relaxed);
    }

    /// The daemon has run every step.
    pub(crate) fn done(&self) {
        self.cell().store(DONE, Ordering::Relaxed);
    }

    /// The step the daemon was last in, if it was still in one.
    pub(crate) fn last(&self) -> Option<Step> {
        Step::from_u8(self.cell().load(Ordering::Relaxed))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.mapped {
            return;
        }
        // SAFETY: the mapping made in `new`, unmapped once: nothing refers
        // to it after `self` goes.
        let _ = unsafe { rustix::mm::munmap(self.page.as_ptr().cast::<c_void>(), LEN) };
    }
}
