//! Capabilities a daemon keeps when it drops root, and the `no_new_privs`
//! flag: what systemd's `AmbientCapabilities=`, `CapabilityBoundingSet=`
//! and `NoNewPrivileges=` give a service, as steps of the sequence around
//! the user change (daemon(7) step 13). Linux only; elsewhere
//! [`Plan::check`](crate::Plan) refuses them before anything forks.
//!
//! The order is the kernel's (capabilities(7)): the bounding set is reduced
//! while the daemon is still root (`PR_CAPBSET_DROP` needs `CAP_SETPCAP`);
//! `PR_SET_KEEPCAPS` keeps the permitted set across `setresuid`, which
//! otherwise empties it; after the change the permitted, effective and
//! inheritable sets become exactly the kept ones (`capset`), and each is
//! raised in the ambient set, the one `execve` of an ordinary program
//! passes on. `no_new_privs` comes last: it stops set-uid bits and file
//! capabilities from granting more at `execve`, and leaves the ambient set
//! as it is.

/// A set of capabilities, by number as capabilities(7) and
/// `<linux/capability.h>` have them: bit N is capability N
/// (`CAP_NET_BIND_SERVICE` is 10).
///
/// ```
/// use daemonic::Capabilities;
///
/// let caps = Capabilities::EMPTY.with(Capabilities::by_name(b"net_bind_service").unwrap());
/// assert!(caps.contains(10));
/// assert_eq!(Capabilities::by_name(b"CAP_NET_BIND_SERVICE"), Some(10));
/// assert_eq!(Capabilities::name(10), Some("net_bind_service"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u64);

/// capabilities(7)'s names, without `CAP_`, by number (Linux 5.9's 41).
/// A `static`, with a symbol of its own (the command links it apart from
/// what its supervisor maps).
static NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

impl Capabilities {
    /// No capability.
    pub const EMPTY: Capabilities = Capabilities(0);

    /// This set and capability `number` (numbers from 64 up do not exist
    /// and leave the set as it is).
    #[must_use]
    pub const fn with(self, number: u32) -> Capabilities {
        match 1u64.checked_shl(number) {
            Some(bit) => Capabilities(self.0 | bit),
            None => self,
        }
    }

    /// Whether capability `number` is in the set.
    pub const fn contains(self, number: u32) -> bool {
        match 1u64.checked_shl(number) {
            Some(bit) => self.0 & bit != 0,
            None => false,
        }
    }

    /// The set as bits (bit N: capability N), as `/proc/PID/status` shows
    /// `CapAmb`.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The set with these bits.
    pub const fn from_bits(bits: u64) -> Capabilities {
        Capabilities(bits)
    }

    /// The number of a capability by its capabilities(7) name, with or
    /// without `CAP_`, in either case (`net_bind_service`,
    /// `CAP_NET_BIND_SERVICE`).
    pub fn by_name(name: &[u8]) -> Option<u32> {
        let name = match name.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case(b"cap_") => &name[4..],
            _ => name,
        };
        let at = NAMES
            .iter()
            .position(|known| known.as_bytes().eq_ignore_ascii_case(name))?;
        u32::try_from(at).ok()
    }

    /// The capabilities(7) name of capability `number`, without `CAP_`.
    pub fn name(number: u32) -> Option<&'static str> {
        NAMES.get(usize::try_from(number).ok()?).copied()
    }
}

/// The steps, reached only through what [`Plan::capabilities`] and
/// [`Plan::no_new_privileges`] store (as `start::EXEC_PATHS` is through
/// `Plan::exec`): a daemon that asks for neither links none of this.
///
/// [`Plan::capabilities`]: crate::Plan::capabilities
/// [`Plan::no_new_privileges`]: crate::Plan::no_new_privileges
#[derive(Debug)]
pub(crate) struct Steps {
    /// Before the user changes: whether it changes.
    pub(crate) before_user_change: fn(Capabilities, bool) -> rustix::io::Result<()>,
    /// After it: whether it changed.
    pub(crate) after_user_change: fn(Capabilities, bool) -> rustix::io::Result<()>,
    pub(crate) no_new_privileges: fn() -> rustix::io::Result<()>,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const STEPS: Steps = Steps {
    before_user_change,
    after_user_change,
    no_new_privileges,
};

/// Elsewhere [`Plan::check`](crate::Plan) refuses both before the fork;
/// should a step run all the same, it fails.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const STEPS: Steps = Steps {
    before_user_change: |_, _| Err(rustix::io::Errno::NOSYS),
    after_user_change: |_, _| Err(rustix::io::Errno::NOSYS),
    no_new_privileges: || Err(rustix::io::Errno::NOSYS),
};

/// Before the user changes (as root): the bounding set reduced to `keep`,
/// and, when a user change follows, the permitted set kept across it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn before_user_change(keep: Capabilities, user_changes: bool) -> rustix::io::Result<()> {
    use rustix::io::Errno;
    use rustix::thread::{CapabilitySet, remove_capability_from_bounding_set};
    for number in 0..64 {
        if keep.contains(number) {
            continue;
        }
        match remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << number)) {
            Ok(()) => {}
            // Past the kernel's last capability.
            Err(Errno::INVAL) => break,
            Err(errno) => return Err(errno),
        }
    }
    if user_changes {
        rustix::thread::set_keep_capabilities(true)?;
    }
    Ok(())
}

/// After the user changed: exactly `keep` permitted, effective and
/// inheritable, and raised in the ambient set for the program `execve`
/// runs.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn after_user_change(keep: Capabilities, user_changed: bool) -> rustix::io::Result<()> {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    if user_changed {
        rustix::thread::set_keep_capabilities(false)?;
    }
    let set = CapabilitySet::from_bits_retain(keep.bits());
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: set,
            permitted: set,
            inheritable: set,
        },
    )?;
    for number in 0..64 {
        if keep.contains(number) {
            let one = CapabilitySet::from_bits_retain(1 << number);
            rustix::thread::configure_capability_in_ambient_set(one, true)?;
        }
    }
    Ok(())
}

/// `PR_SET_NO_NEW_PRIVS`: no `execve` from here on gains privileges.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn no_new_privileges() -> rustix::io::Result<()> {
    rustix::thread::set_no_new_privs(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(Capabilities::by_name(b"chown"), Some(0));
        assert_eq!(Capabilities::by_name(b"Cap_Sys_Admin"), Some(21));
        assert_eq!(Capabilities::by_name(b"checkpoint_restore"), Some(40));
        assert_eq!(Capabilities::by_name(b"cap_"), None);
        assert_eq!(Capabilities::by_name(b"net_bind"), None);
        for number in 0..41 {
            let name = Capabilities::name(number).unwrap();
            assert_eq!(Capabilities::by_name(name.as_bytes()), Some(number));
        }
        assert_eq!(Capabilities::name(41), None);
        let set = Capabilities::EMPTY.with(10).with(13).with(64);
        assert_eq!(set.bits(), 1 << 10 | 1 << 13);
        assert!(set.contains(13) && !set.contains(12) && !set.contains(99));
    }
}
