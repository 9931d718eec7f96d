//! The daemon's description from the command line: a [`Plan`] of what a
//! start asked for, but what to execute (the start, the supervisor and
//! `--exec-activated` each add that).

use daemonic::{Detach, Plan, Stdio};

use crate::ids::Ids;
use crate::request::Start;

/// The daemon's description: everything but what to execute.
pub fn plan<'a>(start: &'a Start, ids: &'a Ids) -> Plan<'a> {
    let mut plan = Plan::new().keep_fds(start.keep_fds());
    if let Some(path) = start.pid_file {
        plan = plan.pid_file(path);
    }
    match start.chdir {
        Some(dir) => plan = plan.working_directory(dir),
        // In the foreground the program is the caller's command, as with
        // tini: Docker's WORKDIR holds. Not inside a --chroot, where the
        // old directory would lie outside the new root.
        None if start.foreground && start.chroot.is_none() => {
            plan = plan.working_directory(c".");
        }
        None => {}
    }
    if let Some(mask) = start.umask {
        plan = plan.umask(mask);
    }
    // Detached, the streams go to /dev/null unless a file is named; in
    // the foreground they stay where the caller has them: systemd's journal
    // and a container's log read them there, as with tini.
    let kept = if start.foreground {
        Stdio::Inherit
    } else {
        Stdio::Null
    };
    plan = plan
        .stdin(kept)
        .stdout(start.stdout.map_or(kept, Stdio::File))
        .stderr(start.stderr.map_or(kept, Stdio::File));
    if let Some(uid) = ids.uid {
        plan = plan.user(uid);
    }
    if let Some(gid) = ids.gid {
        plan = plan.group(gid);
    }
    if let Some(groups) = ids.groups {
        plan = plan.groups(groups);
    }
    if let Some(dir) = start.chroot {
        plan = plan.chroot(dir);
    }
    if let Some(increment) = start.nice {
        plan = plan.nice(increment);
    }
    if start.foreground {
        plan = plan.detach(Detach::Never);
    }
    #[cfg(feature = "harden")]
    {
        if let Some(keep) = start.caps {
            plan = plan.capabilities(keep);
        }
        plan = plan
            .limits(start.limits())
            .no_new_privileges(start.no_new_privs);
    }
    plan
}
