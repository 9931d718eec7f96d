//! Probes the target and names each platform capability the sources choose
//! a code path by, as a `daemonic_*` cfg.
//!
//! Cargo sets `CARGO_CFG_TARGET_*` for the target being built (not the host
//! running this script), so cross builds pick the right paths.

use std::env;

/// One capability: its cfg name, what it means, and whether the target has it.
struct Capability {
    cfg: &'static str,
    has: fn(&Target) -> bool,
}

struct Target {
    os: String,
    family: String,
    arch: String,
}

impl Target {
    fn is_linux_like(&self) -> bool {
        self.os == "linux" || self.os == "android"
    }
    fn is_any(&self, oses: &[&str]) -> bool {
        oses.contains(&self.os.as_str())
    }
}

/// The systems beside Linux whose calls that make fds (`pipe2`, `socket`)
/// take a close-on-exec flag.
const CLOEXEC_FLAG_SYSTEMS: &[&str] = &[
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "illumos",
    "solaris",
];

const CAPABILITIES: &[Capability] = &[
    // pipe2(2) with O_CLOEXEC: the report pipe is close-on-exec from birth.
    // Without it, pipe(2) then fcntl(F_SETFD) (racy only against a
    // concurrent exec in another thread of the caller, which is documented).
    Capability {
        cfg: "daemonic_pipe2",
        has: |t| t.is_linux_like() || t.is_any(CLOEXEC_FLAG_SYSTEMS) || t.os == "redox",
    },
    // close_range(2) as a raw system call: Linux 5.9 (the caller falls back
    // on ENOSYS).
    Capability {
        cfg: "daemonic_close_range_syscall",
        has: |t| t.is_linux_like(),
    },
    // close_range(2) as the C library's function: FreeBSD 12.2 (a system
    // call there, async-signal-safe).
    Capability {
        cfg: "daemonic_close_range_libc",
        has: |t| t.os == "freebsd",
    },
    // closefrom(2) as a system call (async-signal-safe): NetBSD, OpenBSD,
    // DragonFly. (FreeBSD's is close_range; illumos's closefrom(3C) walks
    // /proc with opendir, which allocates: not after fork.)
    Capability {
        cfg: "daemonic_closefrom",
        has: |t| t.is_any(&["netbsd", "openbsd", "dragonfly"]),
    },
    // getgrouplist(3) with `int` group ids, the old BSD prototype (macOS).
    Capability {
        cfg: "daemonic_grouplist_int",
        has: |t| t.is_any(&["macos", "ios", "tvos", "watchos", "visionos"]),
    },
    // SOCK_CLOEXEC on socket(2); elsewhere (macOS) fcntl(FD_CLOEXEC) after.
    Capability {
        cfg: "daemonic_socket_cloexec",
        has: |t| t.is_linux_like() || t.is_any(CLOEXEC_FLAG_SYSTEMS),
    },
    // O_PATH: a directory fd good only for *at() calls, which opens even
    // where the directory cannot be listed.
    Capability {
        cfg: "daemonic_o_path",
        has: |t| t.is_linux_like(),
    },
    // Credentials are per thread in the Linux kernel: rustix's raw
    // set_thread_{uid,gid,groups} are right in the single-threaded daemon
    // and skip glibc's signal-based broadcast to other threads.
    Capability {
        cfg: "daemonic_thread_credentials",
        has: |t| t.is_linux_like(),
    },
    // AF_UNIX abstract socket names (NOTIFY_SOCKET=@name).
    Capability {
        cfg: "daemonic_abstract_sockets",
        has: |t| t.is_linux_like(),
    },
    // /proc/self/fd and /proc/PID/stat as Linux lays them out.
    Capability {
        cfg: "daemonic_procfs",
        has: |t| t.is_linux_like(),
    },
    // pidfd_open(2), Linux 5.3: a handle on a process that turns readable
    // when it exits (zombie or not) and never names a later process that
    // reused its PID. Older kernels answer ENOSYS and the callers fall back.
    Capability {
        cfg: "daemonic_pidfd",
        has: |t| t.is_linux_like(),
    },
    // sigtimedwait(2): POSIX realtime signals, not on macOS or OpenBSD (nor
    // in the libc crate for illumos).
    Capability {
        cfg: "daemonic_sigtimedwait",
        has: |t| t.is_linux_like() || t.is_any(&["freebsd", "netbsd"]),
    },
    // clone(2) with CLONE_VM | CLONE_VFORK on a stack of our own, as
    // posix_spawn does: the exec variant starts without copying the
    // caller's page tables (libc's `clone` wrapper, Linux).
    Capability {
        cfg: "daemonic_clone_vm",
        // MIPS's kernel signal set is 16 bytes, not 8: not done there.
        has: |t| t.os == "linux" && !t.arch.starts_with("mips"),
    },
    // Linux numbers /dev/null as character device 1:3, so the daemon can
    // check it got the real null device (as glibc's daemon(3) does).
    Capability {
        cfg: "daemonic_dev_null_1_3",
        has: |t| t.is_linux_like(),
    },
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target = Target {
        os: env::var("CARGO_CFG_TARGET_OS").unwrap_or_default(),
        family: env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default(),
        arch: env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default(),
    };
    if !target.family.split(',').any(|f| f == "unix") {
        // A daemon is a Unix notion: say so plainly instead of failing in
        // rustix or libc with a wall of missing items.
        println!(
            "cargo::error=daemonic supports Unix targets only (target_os = {:?})",
            target.os
        );
    }
    // docs.rs passes --cfg docsrs (Cargo.toml's metadata).
    println!("cargo::rustc-check-cfg=cfg(docsrs)");
    for capability in CAPABILITIES {
        println!("cargo::rustc-check-cfg=cfg({})", capability.cfg);
        if (capability.has)(&target) {
            println!("cargo::rustc-cfg={}", capability.cfg);
        }
    }
    link_tiny_command(&target);
    if env::var_os("CARGO_FEATURE_CLI").is_some() {
        pack_help();
    }
}

/// The command's `--help` text (src/bin/daemonic/help.txt), packed into
/// `$OUT_DIR/help.packed` for src/bin/daemonic/help.rs to unpack: 5.6 KB
/// of text is the largest single thing in the small static command, and
/// half of it repeats (option names, indentation). BusyBox packs its usage
/// texts for the same reason.
///
/// The format: the text is ASCII, so a byte below 0x80 stands for itself;
/// two bytes `1LLLLDDD DDDDDDDD` repeat `LLLL + 3` bytes (3 to 18) from
/// `DDDDDDDDDDD` bytes back (1 to 2047). Greedy longest matches: about
/// 2.6 KB.
fn pack_help() {
    const TEXT: &str = "src/bin/daemonic/help.txt";
    println!("cargo::rerun-if-changed={TEXT}");
    let (Ok(text), Some(out_dir)) = (std::fs::read(TEXT), env::var_os("OUT_DIR")) else {
        println!("cargo::error=cannot read {TEXT}");
        return;
    };
    if !text.is_ascii() {
        println!("cargo::error={TEXT} must be ASCII (its packed form uses the high bit)");
        return;
    }
    // The text as this build has it (help.rs takes its length, and its
    // tests compare), then packed.
    let text = help_of_this_build(&text);
    let unpacked = std::path::Path::new(&out_dir).join("help.txt");
    if std::fs::write(&unpacked, &text).is_err() {
        println!("cargo::error=cannot write {}", unpacked.display());
        return;
    }
    let mut packed = Vec::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let (back, len) = longest_repeat(&text, at);
        if len >= 3 {
            packed.push(0x80 | ((len - 3) << 3) as u8 | (back >> 8) as u8);
            packed.push(back as u8);
            at += len;
        } else {
            packed.push(text[at]);
            at += 1;
        }
    }
    let path = std::path::Path::new(&out_dir).join("help.packed");
    if std::fs::write(&path, packed).is_err() {
        println!("cargo::error=cannot write {}", path.display());
    }
}

/// The options of help.txt that belong to a mode (a Cargo feature beyond
/// the lean `cli`): how an option's entry starts, and the feature's
/// `CARGO_FEATURE_` name. A build without the mode leaves the entry out,
/// as it refuses the option ("built without").
const HELP_MODES: &[(&str, &str)] = &[
    ("--supervise", "SUPERVISE"),
    ("--child-pidfile", "SUPERVISE"),
    ("--restart", "SUPERVISE"),
    ("--start-limit", "SUPERVISE"),
    ("--stop-signal", "SUPERVISE"),
    ("--timeout SECS      with --supervise", "SUPERVISE"),
    ("--success-exit", "SUPERVISE"),
    ("--watchdog", "SUPERVISE"),
    ("--rotate", "LOGS"),
    ("--timestamps", "LOGS"),
    ("--syslog", "LOGS"),
    ("--cap", "HARDEN"),
    ("--no-new-privs", "HARDEN"),
    ("--limit", "HARDEN"),
    ("--env-file", "HARDEN"),
    ("--runtime-dir", "HARDEN"),
    ("--listen", "HARDEN"),
];

/// `text` without the entries of the modes this build leaves out. An
/// entry is a line that starts (after at most 6 spaces) with `-`, and the
/// lines indented deeper that follow it.
fn help_of_this_build(text: &[u8]) -> Vec<u8> {
    let built = |feature: &str| env::var_os(format!("CARGO_FEATURE_{feature}")).is_some();
    let mut kept = Vec::with_capacity(text.len());
    let mut leaving = false;
    for line in text.split_inclusive(|&b| b == b'\n') {
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let entry = &line[indent..];
        if indent <= 6 && entry.starts_with(b"-") {
            leaving = HELP_MODES
                .iter()
                .any(|(start, feature)| entry.starts_with(start.as_bytes()) && !built(feature));
        } else if indent <= 6 {
            leaving = false;
        }
        if !leaving {
            kept.extend_from_slice(line);
        }
    }
    kept
}

/// The longest run (at most 18 bytes) at `at` that also starts 1 to 2047
/// bytes earlier: how far back and how long; the nearest wins a tie.
fn longest_repeat(text: &[u8], at: usize) -> (usize, usize) {
    let mut best = (0, 0);
    for back in 1..=at.min(2047) {
        let len = (0..18.min(text.len() - at))
            .take_while(|&i| text[at - back + i] == text[at + i])
            .count();
        if len > best.1 {
            best = (back, len);
        }
    }
    best
}

/// A linker script fragment that drops unwind tables (`.eh_frame`), but
/// for the C runtime's start files, whose start-up code names their own.
/// Inserted into the linker's default script, not replacing it.
const DISCARD_UNWIND_TABLES: &str = "SECTIONS { /DISCARD/ : { EXCLUDE_FILE(*crtbegin*.o *crtend*.o) *(.eh_frame) } } INSERT AFTER .text;\n";

/// Functions of the command only its first process runs, before any fork
/// or for `--stop`, `--status` and `--help`: the command line, user
/// lookups, the checks and messages of a refused start, and the library's
/// caller side (its checks, the PID file's lock, awaiting the daemon's
/// report, the exec path's clone). Named by the part of their symbol that
/// both manglings share (`8daemonic7control` in `_ZN8daemonic7control4stop`
/// and in `_RNvNtCs.._8daemonic7control4stop`). `ci/size` fails when a
/// name matches no function (renamed, or inlined everywhere).
const CALLER_ONLY: &[&str] = &[
    "5parse",
    "10print_help",
    "13out_of_memory",
    "4args",
    "7control",
    "9supervise7Program7prepare",
    "9supervise12output_pipes",
    "7envfile",
    "5start14read_env_files",
    "5start8start_as",
    // The caller renders the errors the daemon reports.
    "5error5Error6render",
    "5start16make_runtime_dir",
    "5start8activate",
    "6listen",
    // A short-lived image of its own, before the program's execve.
    "9activated",
    "5start18remove_runtime_dir",
    // Runs only before the fork: the supervisor's life goes on inside
    // supervise::run, which never returns to it.
    "5start3run",
    "7inspect",
    "6pinned",
    "8schedule",
    "7signame",
    "6values",
    "3etc",
    "3ids",
    "5start11resolve_ids",
    "5start4plan",
    "5start7refused",
    "5start13unfit_program",
    "5start6report",
    "5start9status_of",
    "5start5doing",
    "7program7prepare",
    "7program5array",
    "7program3key",
    "7program11environment",
    "7program11private_dir",
    "5proof",
    "6caller",
    "4plan4Plan5check",
    "5setup5Setup7prepare",
    "7pidfile4lock",
    "7pidfile7held_by",
    "7pidfile11open_parent",
    "7pidfile16open_long_prefix",
    "7pidfile17check_trustworthy",
    "5start13start_vforked",
    "8sequence13start_vforked",
    "4fork8vfork_on",
];

/// Read-only data only the command's first process reads, named as
/// [`CALLER_ONLY`] names code: `--help`'s packed text and the name tables
/// of the parser. Placed with that code.
const CALLER_ONLY_DATA: &[&str] = &[
    "4help6PACKED",
    "6harden9RESOURCES",
    "12capabilities5NAMES",
    // Their jump tables.
    "5parse",
    "5start7refused",
];

/// Places [`CALLER_ONLY`] code and what is never expected to run (panics)
/// at the end of the binary's code, instead of amid the rest. The kernel
/// maps a binary's pages in aligned blocks of 64 KiB as they are first
/// touched ("fault-around"), so a supervisor that runs code from every
/// block holds the whole binary resident; with this layout all it runs,
/// and the read-only data it reads, lie in the first block, and the
/// caller's code (about a third of the text) is never mapped into it.
/// GNU ld puts read-only data in the code's segment, after the code: the
/// caller's code goes after the data. rust-lld gives read-only data a
/// segment of its own: after the code. Measured by ci/size as the
/// supervisor's peak RSS; the file grows only by an alignment (80 bytes).
fn place_caller_only_code(script: &mut String, lld: bool) {
    script.push_str("SECTIONS { .text.caller_only : {");
    for name in CALLER_ONLY {
        script.push_str(&format!(" *(.text.*8daemonic{name}*)"));
    }
    for name in CALLER_ONLY_DATA {
        script.push_str(&format!(" *(.rodata.*8daemonic{name}*)"));
    }
    // musl's strerror texts: the caller's messages name OS errors; a
    // supervisor does only when something fails.
    script.push_str(" *(.rodata.errmsgstr .rodata.errmsgidx)");
    let after = if lld { ".text" } else { ".rodata" };
    script.push_str(&format!(
        " *(.text.unlikely .text.unlikely.*) }} }} INSERT AFTER {after};\n"
    ));
}

/// The `daemonic` command without `std` never unwinds (it builds only
/// with `panic = "abort"`, which every profile of Cargo.toml sets; cargo
/// does not tell build scripts the profile's strategy) and prints no
/// backtraces, so its unwind tables are dead weight: about 15 KB of a
/// 100 KB static binary (README, "Building tiny"). With `std`, std's panic
/// message may walk the stack: kept. The same script lays out its code for
/// a small resident supervisor ([`place_caller_only_code`]).
fn link_tiny_command(target: &Target) {
    let wanted = env::var_os("CARGO_FEATURE_CLI").is_some()
        && env::var_os("CARGO_FEATURE_STD").is_none()
        && target.is_linux_like();
    let Some(out_dir) = env::var_os("OUT_DIR").filter(|_| wanted) else {
        return;
    };
    // rust-lld (the aarch64 boards' linker) takes linker options as they
    // are; a C compiler driver wants them behind -Wl.
    let lld = env::var("RUSTC_LINKER").is_ok_and(|linker| linker.ends_with("lld"));
    let mut text = String::from(DISCARD_UNWIND_TABLES);
    place_caller_only_code(&mut text, lld);
    let script = std::path::Path::new(&out_dir).join("tiny-command.ld");
    if std::fs::write(&script, text).is_err() {
        return;
    }
    // The link map beside it: ci/size checks against it that every name
    // in CALLER_ONLY still matches a function, in the build with every mode
    // (named apart: the builds of each mode's out directory may link in
    // any order).
    let full = env::var_os("CARGO_FEATURE_FULL").is_some();
    let map = script.with_file_name(if full {
        "tiny-command-full.map"
    } else {
        "tiny-command.map"
    });
    let (script, map) = (script.display(), map.display());
    if lld {
        println!("cargo::rustc-link-arg-bin=daemonic=-T");
        println!("cargo::rustc-link-arg-bin=daemonic={script}");
        println!("cargo::rustc-link-arg-bin=daemonic=-Map={map}");
    } else {
        println!("cargo::rustc-link-arg-bin=daemonic=-Wl,-T,{script}");
        println!("cargo::rustc-link-arg-bin=daemonic=-Wl,-Map,{map}");
    }
}
