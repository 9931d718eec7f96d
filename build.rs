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

/// Functions a supervisor runs from its start to its idle wait, detached
/// (the steps after the fork) or as PID 1 (`--foreground --supervise`),
/// and while its program exits. Named by the part of their symbol that
/// both manglings share (`8daemonic5parse` in `_ZN8daemonic5parse` and in
/// `_RNvCs.._8daemonic5parse`); a `*` stands for the `$LT$impl..` part of
/// a method's name. Found by tracing those runs (`ci/layout` prints what a
/// run executes outside these lists); `ci/size` fails when a name matches
/// no function (renamed, or inlined everywhere) and when a supervisor maps
/// any page of code it should not run.
const RESIDENT: &[&str] = &[
    // The start, which the daemon's side of a fork returns through.
    "5start38_*5start",
    // Whether the plan executes a program: asked in every daemon.
    "9execpaths2of",
    // The steps after the fork.
    "4fork4fork",
    "4fork8exit_now",
    "8sequence11new_session",
    "8sequence12daemon_steps",
    "5setup15off_overwritten",
    "5setup5Setup12move_own_fds",
    "5stdio5Stdio4path",
    "5stdio14place_borrowed",
    "3fds11close_range",
    "6report4send",
    "6report6Record6encode",
    "6report17write_all_at_once",
    "9parentdir8open_dir",
    "7pidfile9file_name",
    "7pidfile9lock_soon",
    "7pidfile15names_same_file",
    "6daemon6Daemon5ready",
    "8sequence6finish",
    // The loop, and a program's end.
    "9supervise3run",
    "5spawn5spawn",
    "9supervise9supervise",
    "9supervise9exit_code",
    "9supervise4Loop3new",
    "9supervise4Loop3run",
    "9supervise4Loop12record_start",
    "9supervise8SignalFd4next",
    "9supervise17await_first_ready",
    "9supervise18give_back_terminal",
    "5spawn21remove_child_pid_file",
    "6daemon6Daemon15remove_pid_file",
    "4tree4reap",
    "4tree6exited",
    "4tree8children",
    "4tree8end_rest",
    "4tree11reap_others",
    "4tree12others_alive",
    "6procfs",
    "7decimal",
    "3sys3now",
    "3sys8readable",
    "3sys9parse_pid",
    "3sys9parse_u64",
    "10supervised7Program18remove_private_dir",
    "4time13monotonic_now",
    "4time8Deadline5after",
    "4time8Deadline9remaining",
    "3sys3map",
    "3sys4slab",
    "3sys6getenv",
    "3sys13zeroed_memory",
    "3sys17forget_dead_stack",
    "3sys4pipe",
    "3out4Line4text",
    "3out4Line8daemonic",
];

/// Functions only PID 1 runs of all a supervisor runs: its command line and
/// the start before the loop, which a detached supervisor's caller ran.
/// Named as [`RESIDENT`] names them.
const PID1_START: &[&str] = &[
    "5parse",
    "7request5Start3env",
    "7request5Start7listens",
    "7request5Start8keep_fds",
    "7request5Start9env_files",
    "4args6Parser5short",
    "4args6Parser9following",
    "5start3run",
    "9startplan4plan",
    "5start8start_as",
    "5start11resolve_ids",
    "5start14read_env_files",
    "4plan4Plan5check",
    "5setup5Setup7prepare",
    "7program3key",
    "7program5array",
    "7program11environment",
    "7program16prepare_with_env",
    "10supervised7Program7prepare",
    "10supervised12output_pipes",
];

/// The C library's functions those runs execute, by the name of the
/// section musl builds each into (`.text.NAME`, the name it is defined by,
/// not a weak alias: `__sigaction`, not `sigaction`): its start and exit,
/// signals, fork, waiting, a few string functions (not the clock: the
/// command reads it by system call, not through the vDSO). Its few
/// functions in assembly (`memcpy`, the signal return) have plain `.text`
/// sections and stay with this code.
const RESIDENT_LIBC: &[&str] = &[
    "main",
    "_start_c",
    "__libc_start_main",
    "libc_start_main_stage2",
    "libc_start_init",
    "__init_libc",
    "__init_tp",
    "__copy_tls",
    "static_init_tls",
    "__do_init",
    "__do_fini",
    "libc_exit_fini",
    "__getauxval",
    "getenv",
    "exit",
    "_Exit",
    "_exit",
    "fork",
    "_Fork",
    "__post_Fork",
    "__lock",
    "__unlock",
    "__errno_location",
    "__syscall_ret",
    "syscall",
    "__syscall_cp",
    "sccp",
    "read",
    "poll",
    "isatty",
    "setpgid",
    "waitpid",
    "waitid",
    "signal",
    "__sigaction",
    "__libc_sigaction",
    "sigemptyset",
    "sigaddset",
    "sigprocmask",
    "pthread_sigmask",
    "signalfd",
    "__block_all_sigs",
    "__block_app_sigs",
    "__restore_sigs",
    "memcmp",
    "bcmp",
    "strlen",
    "strcmp",
    "strncmp",
    "__strchrnul",
    "dummy",
    "dummy1",
];

/// Read-only data a supervisor does not read while all is well, named as
/// [`RESIDENT`] names code: `--help`'s packed text, name tables and jump
/// tables of the parser's refusals, the caller's, and those that describe
/// a failed step. Placed with the code a supervisor does not run.
const CALLER_ONLY_DATA: &[&str] = &[
    "4help6PACKED",
    "6harden9RESOURCES",
    "12capabilities5NAMES",
    "7outcome7refused",
    "7outcome9status_of",
    "4args13built_without",
    "6caller",
    // The tables that name a failed step and say it: read when one fails.
    "5error",
    "7message",
];

/// Methods of these types (named `_ZN..$LT$daemonic..TYPE..`, not by a
/// path of daemonic's) run only when something failed or for the caller.
const COLD_IMPLS: &[&str] = &["error..", "message..", "inspect..", "control.."];

/// Lays out the code for a small resident supervisor. The kernel maps a
/// binary's pages in aligned blocks of 64 KiB as they are first touched
/// ("fault-around"), within one mapping; a supervisor that runs a function
/// from each block holds the whole binary resident. So [`RESIDENT`] code
/// goes first, the read-only data after it; then, each after a gap in the
/// addresses (which makes the linker start a segment and the kernel a
/// mapping of its own there: a fault in one maps nothing of the next),
/// [`PID1_START`], then everything else (the rest of the command's and
/// the C library's code, panics, `--help`'s text, musl's error texts). A
/// detached supervisor maps the first part, PID 1 the first two. The gaps
/// cost no bytes of the file (each part's file offset keeps its address's
/// place in the page). rust-lld (the aarch64 boards' linker) puts
/// read-only data first and gets the order without the gaps. Measured by
/// ci/size as the supervisor's peak RSS, detached and as PID 1.
fn place_resident_code_first(script: &mut String, lld: bool) {
    script.push_str("SECTIONS { .text.resident : {");
    for name in RESIDENT {
        script.push_str(&format!(" *(.text.*8daemonic{name}*)"));
    }
    for name in RESIDENT_LIBC {
        script.push_str(&format!(" *(.text.{name})"));
    }
    script.push_str(" } } INSERT BEFORE .text;\n");
    // The gap: 64 KiB, as GNU ld starts a segment only past a gap of its
    // maximum page size.
    let (after, gap) = if lld {
        (".text", "")
    } else {
        (".rodata", " . + 0x10000")
    };
    script.push_str(&format!("SECTIONS {{ .text.pid1_start{gap} : {{"));
    for name in PID1_START {
        script.push_str(&format!(" *(.text.*8daemonic{name}*)"));
    }
    script.push_str(&format!(" }} .text.rest{gap} : {{"));
    for name in CALLER_ONLY_DATA {
        script.push_str(&format!(" *(.rodata.*8daemonic{name}*)"));
    }
    // The trait methods that render an error into bytes (generic, so named
    // by their type, not by a path of daemonic's).
    for name in COLD_IMPLS {
        script.push_str(&format!(" *(.text.*$LT$daemonic..{name}*)"));
    }
    script.push_str(" *(.rodata.errmsgstr .rodata.errmsgidx)");
    script.push_str(" *(.text.unlikely .text.unlikely.*) *(.text.*8daemonic*) *libc.a:*(.text.*)");
    script.push_str(&format!(" }} }} INSERT AFTER {after};\n"));
}

/// The `daemonic` command without `std` never unwinds (it builds only
/// with `panic = "abort"`, which every profile of Cargo.toml sets; cargo
/// does not tell build scripts the profile's strategy) and prints no
/// backtraces, so its unwind tables are dead weight: about 15 KB of a
/// 100 KB static binary (README, "Building tiny"). With `std`, std's panic
/// message may walk the stack: kept. The same script lays out its code for
/// a small resident supervisor ([`place_resident_code_first`]).
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
    place_resident_code_first(&mut text, lld);
    let script = std::path::Path::new(&out_dir).join("tiny-command.ld");
    if std::fs::write(&script, text).is_err() {
        return;
    }
    // The link map beside it, named by the build's mode (the builds of each
    // mode's out directory may link in any order): ci/size checks against
    // the `full` and `pid1` maps that every name in RESIDENT and PID1_START
    // still matches a function in one of them.
    let mode = ["FULL", "PID1", "SUPERVISE", "HARDEN"]
        .into_iter()
        .find(|mode| env::var_os(format!("CARGO_FEATURE_{mode}")).is_some())
        .unwrap_or("CLI")
        .to_lowercase();
    let map = script.with_file_name(format!("tiny-command-{mode}.map"));
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
