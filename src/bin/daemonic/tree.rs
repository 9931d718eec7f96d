//! The program's process tree, as the supervisor owns it: the program runs
//! in a process group of its own (its PID), and the supervisor is a child
//! subreaper, so whatever the program backgrounds and leaves behind becomes
//! the supervisor's child rather than init's.
//!
//! The program itself is left a zombie (seen with `WNOWAIT`) until the rest
//! of its tree is gone: while it is unreaped its PID, which names the
//! group, cannot be reused, so `kill(-group)` never reaches a stranger.
//!
//! Everything here runs in the supervisor's loop: stack buffers and system
//! calls only, nothing allocates.

use core::time::Duration;

use crate::procfs::{each_pid, field, read_small, stat_fields};
use crate::sys;

/// At most this many children are listed at once; more are handled on the
/// next round.
const MAX_CHILDREN: usize = 256;

/// Makes this process a child subreaper ([`PR_SET_CHILD_SUBREAPER`], Linux
/// 3.4): orphaned descendants are re-parented to it.
///
/// [`PR_SET_CHILD_SUBREAPER`]: https://man7.org/linux/man-pages/man2/PR_SET_CHILD_SUBREAPER.2const.html
pub fn become_subreaper() -> Result<(), daemonic::Errno> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
}

/// In the forked program, before `execve`: a process group of its own,
/// and SIGKILL when the supervisor dies ([`PR_SET_PDEATHSIG`], kept across
/// `execve`). False if the supervisor (`parent`) is already gone.
///
/// [`PR_SET_PDEATHSIG`]: https://man7.org/linux/man-pages/man2/PR_SET_PDEATHSIG.2const.html
pub fn detach_program(parent: i32) -> bool {
    // SAFETY: plain system calls on integers, async-signal-safe.
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // The supervisor may have died before the prctl: then no signal
        // will come, and the parent is someone else.
        libc::getppid() == parent
    }
}

/// Sends `signal` to the program's group and to every other child of the
/// supervisor (orphans of the tree that left the group).
pub fn signal(group: i32, signal: i32) {
    // SAFETY: kill takes plain integers; the group's number is pinned by
    // its leader, which the caller has not reaped.
    unsafe { libc::kill(-group, signal) };
    let mut pids = [0i32; MAX_CHILDREN];
    for &child in children(&mut pids) {
        if child != group {
            // SAFETY: an unreaped child of ours: its PID cannot be reused.
            unsafe { libc::kill(child, signal) };
        }
    }
}

/// Sends a stop signal to the program's tree (as [`signal`]), then SIGCONT,
/// so that a stopped process (SIGSTOP, a debugger) acts on it now, as
/// runit's `sv down` and s6's `s6-svc -d` do. SIGKILL needs none.
pub fn stop(group: i32, stop_signal: i32) {
    signal(group, stop_signal);
    if stop_signal != libc::SIGKILL && stop_signal != libc::SIGCONT {
        signal(group, libc::SIGCONT);
    }
}

/// The program's raw wait status if it has exited, leaving it a zombie.
pub fn exited(main: i32) -> Option<i32> {
    // SAFETY: waitid fills our zeroed siginfo.
    unsafe {
        let mut info: libc::siginfo_t = core::mem::zeroed();
        let rc = libc::waitid(
            libc::P_PID,
            main as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if rc != 0 || info.si_pid() != main {
            return None;
        }
        let status = info.si_status();
        Some(match info.si_code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            _ => status & 0x7f,
        })
    }
}

/// Reaps every child that has ended but `main`: as long as `main` lives,
/// whatever `waitid` names, however many (a PID 1 may inherit a thousand
/// orphans between two reads of its signals); once `main` is a zombie
/// itself (and so named first), those the children list shows.
pub fn reap_others(main: i32) {
    if reap_without_list(main) {
        return;
    }
    let mut pids = [0i32; MAX_CHILDREN];
    for &child in children(&mut pids) {
        if child != main {
            let mut status = 0;
            // SAFETY: waitpid on our own child, into our local.
            unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        }
    }
}

/// Reaps whatever `waitid` names, as long as it is not `main`: true when
/// no ended child is left, false when `main` is the one named (it stays,
/// and others may wait behind it). Works without `/proc`.
fn reap_without_list(main: i32) -> bool {
    // Bounded: a child that ends as fast as the loop reaps goes next round.
    for _ in 0..65536 {
        // SAFETY: waitid fills our zeroed siginfo; waitpid reaps a child
        // it named.
        unsafe {
            let mut info: libc::siginfo_t = core::mem::zeroed();
            let rc = libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            let pid = info.si_pid();
            if rc != 0 || pid == 0 {
                return true;
            }
            if pid == main {
                return false;
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
        }
    }
    true
}

/// Reaps `main` for good.
pub fn reap(main: i32) {
    let mut status = 0;
    // SAFETY: waitpid on our own child, into our local.
    unsafe { libc::waitpid(main, &mut status, 0) };
}

/// Whether anything of the tree but `main` is still alive: another child
/// of ours, or a process of the group (a grandchild whose parent lives).
/// Unknown without `/proc`: then the caller waits out its grace.
pub fn others_alive(group: i32) -> Option<bool> {
    reap_others(group);
    let mut pids = [0i32; MAX_CHILDREN];
    if children(&mut pids).iter().any(|&child| child != group) {
        return Some(true);
    }
    group_has_live_member(group, group)
}

/// Ends what is left of the tree after `main` exited (it is a zombie): the
/// group and the other children get SIGTERM, then SIGKILL after `grace`.
/// Returns at once when nothing is left. `on_wait` runs between checks (it
/// reads the supervisor's signals).
// `dyn`: one copy of this and of `wait_until_alone` for both callers.
pub fn end_rest(main: i32, grace: Duration, on_wait: &mut dyn FnMut(Duration)) {
    if others_alive(main) == Some(false) {
        return;
    }
    stop(main, libc::SIGTERM);
    let alone = wait_until_alone(main, sys::now() + grace, None, on_wait);
    if !alone {
        // Again each round: a process whose parent just died is re-parented
        // to us (or left the group) after the previous round.
        let deadline = sys::now() + Duration::from_secs(5);
        wait_until_alone(main, deadline, Some(libc::SIGKILL), on_wait);
    }
    reap_others(main);
}

/// SIGKILLs the program's whole tree and reaps it, the program last (its
/// unreaped PID keeps naming its group until then).
pub fn kill_all(main: i32) {
    signal(main, libc::SIGKILL);
    // SAFETY: waitid fills our zeroed siginfo; WNOWAIT leaves it a zombie.
    unsafe {
        let mut info: libc::siginfo_t = core::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            main as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
    }
    end_rest(main, Duration::ZERO, &mut sys::sleep);
    reap(main);
}

/// Waits until nothing of the tree but `main` is alive, up to `deadline`,
/// sending `resend` (if any) to what is left each round.
fn wait_until_alone(
    main: i32,
    deadline: Duration,
    resend: Option<i32>,
    on_wait: &mut dyn FnMut(Duration),
) -> bool {
    loop {
        if others_alive(main) == Some(false) {
            return true;
        }
        if let Some(sig) = resend {
            signal(main, sig);
        }
        let now = sys::now();
        if now >= deadline {
            return false;
        }
        on_wait((deadline - now).min(Duration::from_millis(20)));
    }
}

/// This process's children, from `/proc/thread-self/children` (the
/// supervisor has one thread), into `pids`; empty when it cannot be read.
/// Room for [`MAX_CHILDREN`] PIDs of seven digits and their spaces: a
/// smaller buffer than a page, a page less of a PID 1's stack.
fn children(pids: &mut [i32; MAX_CHILDREN]) -> &[i32] {
    let mut buf = [0u8; MAX_CHILDREN * 8];
    let Some(text) = read_small(c"/proc/thread-self/children", &mut buf) else {
        return &[];
    };
    let full = text.len() == MAX_CHILDREN * 8;
    pids_in(text, full, pids)
}

/// The PIDs in `text`, a list separated by spaces, into `pids` (as many
/// as fit). When `text` filled its buffer, the last word may be a PID cut
/// short (`123` of `1234`), another process's: it is left out, as nothing
/// is signalled or reaped that is not proven a child.
fn pids_in<'p>(text: &[u8], full: bool, pids: &'p mut [i32; MAX_CHILDREN]) -> &'p [i32] {
    let whole = if full {
        let end = text.iter().rposition(|&b| b == b' ' || b == b'\n');
        &text[..end.unwrap_or(0)]
    } else {
        text
    };
    let mut count = 0;
    for word in whole.split(|&b| b == b' ' || b == b'\n') {
        if let Some(pid) = sys::parse_pid(word) {
            if count < pids.len() {
                pids[count] = pid;
                count += 1;
            }
        }
    }
    &pids[..count]
}

/// Whether a live (not zombie) process other than `except` is in `group`,
/// by a walk of `/proc/*/stat`.
fn group_has_live_member(group: i32, except: i32) -> Option<bool> {
    let mut found = false;
    each_pid(|pid| {
        if pid == except {
            return true;
        }
        let mut stat = [0u8; 512];
        if let Some(fields) = stat_fields(pid, &mut stat) {
            let live = field(fields, 0).is_some_and(|state| state != b"Z");
            found = live && field(fields, 2).and_then(sys::parse_pid) == Some(group);
        }
        !found
    })?;
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_of_a_cut_list() {
        let mut pids = [0; MAX_CHILDREN];
        assert_eq!(pids_in(b"12 345 6789 ", false, &mut pids), [12, 345, 6789]);
        assert_eq!(pids_in(b"12 345 6789", false, &mut pids), [12, 345, 6789]);
        // A buffer filled to its end: "6789" may be the start of "67890".
        assert_eq!(pids_in(b"12 345 6789", true, &mut pids), [12, 345]);
        assert_eq!(pids_in(b"12 345 ", true, &mut pids), [12, 345]);
        assert_eq!(pids_in(b"123456", true, &mut pids), [] as [i32; 0]);
        // More than fit: the first MAX_CHILDREN.
        let mut long = [0u8; MAX_CHILDREN * 8 + 8];
        for (at, word) in long.chunks_mut(8).enumerate() {
            word.copy_from_slice(format!("{:7} ", 1_000_000 + at).as_bytes());
        }
        let got = pids_in(&long, false, &mut pids);
        assert_eq!(got.len(), MAX_CHILDREN);
        assert_eq!(got[MAX_CHILDREN - 1], 1_000_000 + MAX_CHILDREN as i32 - 1);
    }
}
