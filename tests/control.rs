//! The control verbs as operators use them: a reload that keeps the
//! daemon (`--signal`), stop schedules (`--retry`), stopped (SIGSTOP)
//! daemons, crash loops on the operator's terms (`--start-limit`), the
//! supervisor's stop signal, containers whose seccomp profile refuses
//! pidfds and `close_range`, a program that backgrounds itself under
//! `--supervise`, and a set-uid program that outlives its supervisor.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Started, TempDir, assert_one_line_error, stderr, stdout};

/// This binary by a path of its own, so that `common::public_copy` makes
/// it a second copy, for the set-uid test alone.
const SETUID_COPY_OF: &str = "/proc/self/exe";

fn main() {
    // A helper runs where /proc may be missing: it needs no public copy.
    if std::env::var_os(common::HELPER_ENV).is_some() {
        return common::main(helpers, tests());
    }
    let exe = std::env::current_exe().unwrap();
    // Two copies: the second, reached by another path to the same binary,
    // is the one the set-uid test makes set-uid (setuid_copy).
    common::main_with_public_copies(helpers, tests(), &[&exe, Path::new(SETUID_COPY_OF)]);
}

fn tests() -> Vec<common::Test> {
    let mut tests: Vec<common::Test> = vec![
        ("reload_keeps_the_daemon", reload_keeps_the_daemon),
        (
            "stopped_daemon_stops_on_its_signal",
            stopped_daemon_stops_on_its_signal,
        ),
        ("retry_schedules", retry_schedules),
        ("control_under_seccomp", control_under_seccomp),
        ("start_under_seccomp", start_under_seccomp),
        (
            "nothing_pins_without_pidfds_or_proc",
            nothing_pins_without_pidfds_or_proc,
        ),
        (
            "a_lock_handed_on_by_a_live_taker_is_not_a_survivor",
            a_lock_handed_on_by_a_live_taker_is_not_a_survivor,
        ),
        ("ready_as_another_user", ready_as_another_user),
    ];
    tests.extend(common::when(
        common::SUPERVISE,
        vec![
            (
                "stopped_supervised_program_stops_on_its_signal",
                stopped_supervised_program_stops_on_its_signal,
            ),
            (
                "start_limit_zero_never_gives_up",
                start_limit_zero_never_gives_up,
            ),
            ("start_limit_gives_up_as_set", start_limit_gives_up_as_set),
            (
                "stop_signal_reaches_the_program",
                stop_signal_reaches_the_program,
            ),
            (
                "watchdog_restarts_a_hung_program",
                watchdog_restarts_a_hung_program,
            ),
            (
                "program_that_backgrounds_itself",
                program_that_backgrounds_itself,
            ),
            (
                "setuid_program_outlives_its_supervisor",
                setuid_program_outlives_its_supervisor,
            ),
        ],
    ));
    tests
}

// ---- programs daemonic runs (this binary, by DAEMONIC_TEST_HELPER) --------

fn helpers(name: &str, args: Vec<String>) {
    match name {
        "trap" => trap(&args[0], &args[1]),
        "ignore-term" => common::ignore_term_then_ready(&args[0]),
        "run" => {
            use std::io::Write;
            let mut log = fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&args[0])
                .unwrap();
            let parent = std::os::unix::process::parent_id();
            // One write: a reader never sees half a line (writeln! may
            // write it in pieces).
            let line = format!("run {} {parent}\n", std::process::id());
            log.write_all(line.as_bytes()).unwrap();
            std::process::exit(args[1].parse().unwrap());
        }
        "sleep" => std::thread::sleep(Duration::from_secs(60)),
        "watchdog" => watchdog_pinger(&args[0], args[1].parse().unwrap()),
        "notify-ready" => {
            let socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
            let notify = std::env::var("NOTIFY_SOCKET").unwrap();
            socket.send_to(b"READY=1", notify).unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        "seccomp-exec" => seccomp_exec(&args),
        other => panic!("no helper {other}"),
    }
}

/// Takes HUP, USR1, QUIT, INT and TERM with `sigwait` and appends each
/// one's name to `log`; ends with status 0 after QUIT, INT or TERM. USR2
/// stays blocked and never taken. Ready (a newline on `ready_fd`, then
/// closed) once all that is set up.
fn trap(log: &str, ready_fd: &str) -> ! {
    use std::io::Write;
    let taken = [
        (libc::SIGHUP, "HUP"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGINT, "INT"),
        (libc::SIGTERM, "TERM"),
    ];
    // SAFETY: the sets are initialised before use; sigwait fills `signal`;
    // the ready fd is ours, written once and closed.
    unsafe {
        let mut blocked: libc::sigset_t = std::mem::zeroed();
        let mut waited: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut blocked);
        libc::sigemptyset(&mut waited);
        for (signal, _) in taken {
            libc::sigaddset(&mut blocked, signal);
            libc::sigaddset(&mut waited, signal);
        }
        libc::sigaddset(&mut blocked, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut());
        fs::write(log, "").unwrap();
        let fd: i32 = ready_fd.parse().unwrap();
        assert_eq!(libc::write(fd, b"\n".as_ptr().cast(), 1), 1);
        libc::close(fd);
        loop {
            let mut signal = 0;
            libc::sigwait(&waited, &mut signal);
            let name = taken.iter().find(|(n, _)| *n == signal).unwrap().1;
            let mut file = fs::OpenOptions::new().append(true).open(log).unwrap();
            writeln!(file, "{name}").unwrap();
            if !matches!(name, "HUP" | "USR1") {
                std::process::exit(0);
            }
        }
    }
}

/// The system call numbers a container's older seccomp profile refuses
/// (the same on x86_64 and i386: numbers from 403 up are shared).
const PIDFD_SEND_SIGNAL: u32 = 424;
const PIDFD_OPEN: u32 = 434;
const CLOSE_RANGE: u32 = 436;

/// The audit architecture of this build, for the filter's first check.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xC000_003E);
#[cfg(target_arch = "x86")]
const AUDIT_ARCH: Option<u32> = Some(0x4000_0003);
#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
const AUDIT_ARCH: Option<u32> = None;

/// Installs a seccomp filter that answers EPERM to `pidfd_open`,
/// `pidfd_send_signal` and `close_range` (as Docker's profiles before 20.10
/// and Podman's before 3.2 did), or with `args[0]` `send-only` to
/// `pidfd_send_signal` alone; checks that it does, leaves fd 9 open for the
/// program to inherit, and executes the rest of `args`.
fn seccomp_exec(args: &[String]) {
    use std::os::unix::process::CommandExt;
    // BPF_LD | BPF_W | BPF_ABS (the first two are 0), BPF_JMP | BPF_JEQ |
    // BPF_K, BPF_RET | BPF_K.
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x05 | 0x10;
    const RET_K: u16 = 0x06;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO_EPERM: u32 = 0x0005_0000 | libc::EPERM as u32;
    let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let send_only = args[0] == "send-only";
    let args = &args[1..];
    // A number no system call has, where a refused call would stand.
    let refused = |nr| if send_only { u32::MAX } else { nr };
    let filter = [
        // arch, at offset 4 of seccomp_data: another ABI is let through.
        insn(LD_W_ABS, 0, 0, 4),
        insn(JEQ_K, 0, 5, AUDIT_ARCH.unwrap()),
        // nr, at offset 0.
        insn(LD_W_ABS, 0, 0, 0),
        insn(JEQ_K, 3, 0, refused(PIDFD_OPEN)),
        insn(JEQ_K, 2, 0, PIDFD_SEND_SIGNAL),
        insn(JEQ_K, 1, 0, refused(CLOSE_RANGE)),
        insn(RET_K, 0, 0, ALLOW),
        insn(RET_K, 0, 0, ERRNO_EPERM),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with plain integers, then with a filter program that
    // lives until the exec below; the syscalls probed take integers.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog
            ),
            0,
            "PR_SET_SECCOMP: {}",
            std::io::Error::last_os_error()
        );
        for nr in [PIDFD_OPEN, PIDFD_SEND_SIGNAL, CLOSE_RANGE] {
            if refused(nr) != nr {
                continue;
            }
            let rc = libc::syscall(libc::c_long::from(nr as i32), -1, 0, 0, 0);
            assert_eq!(rc, -1);
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EPERM)
            );
        }
        // An fd the daemon must not inherit: close_range would close it.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        assert!(null >= 0 && libc::dup2(null, 9) == 9);
    }
    let error = Command::new(&args[0]).args(&args[1..]).exec();
    panic!("exec {}: {error}", args[0]);
}

// ---- running daemonic ----------------------------------------------------

fn daemonic(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_daemonic"));
    command.args(args).stdin(Stdio::null());
    common::run(&mut command)
}

/// `daemonic ARGS` under the seccomp filter of [`seccomp_exec`].
fn daemonic_under_seccomp(args: &[&str]) -> Output {
    daemonic_under("pidfds", args)
}

/// `daemonic ARGS` under the filter `which` (see [`seccomp_exec`]).
fn daemonic_under(which: &str, args: &[&str]) -> Output {
    let mut all = vec![which, env!("CARGO_BIN_EXE_daemonic")];
    all.extend_from_slice(args);
    common::run(&mut common::helper("seccomp-exec", &all))
}

/// `OPTIONS --env=HELPER=mode -- THIS_BINARY ARGS`, as daemonic's words.
fn words<'a>(options: &[&'a str], env: &'a str, exe: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = options.to_vec();
    all.extend_from_slice(&[env, "--", exe]);
    all.extend_from_slice(args);
    all
}

fn start(options: &[&str], mode: &str, args: &[&str]) -> Output {
    let env = format!("--env={}={mode}", common::HELPER_ENV);
    let exe = std::env::current_exe().unwrap();
    daemonic(&words(options, &env, exe.to_str().unwrap(), args))
}

/// A daemon (or supervisor) running helper "trap", started once it is set
/// up; its log.
fn trapping(dir: &TempDir, pid_file: &Path, options: &[&str]) -> (Started, PathBuf) {
    let log = dir.join("trap.log");
    let mut all = vec!["-p", arg(pid_file), "--ready-fd", "5"];
    all.extend_from_slice(options);
    let output = start(&all, "trap", &[arg(&log), "5"]);
    assert!(output.status.success(), "start: {}", stderr(&output));
    (Started::new(common::read_pid_file(pid_file)), log)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn log_of(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn running(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|_| !matches!(common::stat(pid).state, 'Z' | 'X'))
}

fn wait_stopped(pid: i32) {
    common::wait_until("the process stopped (state T)", || {
        common::stat(pid).state == 'T'
    });
}

// ---- --signal: a reload ----------------------------------------------------

fn reload_keeps_the_daemon() {
    let dir = TempDir::new("reload");
    let pid_file = dir.join("d.pid");
    let (mut daemon, log) = trapping(&dir, &pid_file, &[]);
    let reload = daemonic(&["--signal", "HUP", "-p", arg(&pid_file)]);
    assert_eq!(reload.status.code(), Some(0), "{}", stderr(&reload));
    assert_eq!(stderr(&reload), "");
    common::wait_until("HUP taken", || log_of(&log) == "HUP\n");
    // The daemon runs on, its PID file too: nothing waited, nothing killed.
    assert!(running(daemon.pid));
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    // A signal it blocks and never takes: said, status 4; still running.
    let pending = daemonic(&["--signal", "USR2", "-p", arg(&pid_file), "--timeout", "0.3"]);
    assert_one_line_error(&pending, 4, "has not taken SIGUSR2 within 0.3 s");
    assert!(running(daemon.pid));
    // A reload does not resume a daemon someone stopped (a debugger): HUP
    // waits, not taken, and the daemon stays stopped.
    common::kill(daemon.pid, libc::SIGSTOP);
    wait_stopped(daemon.pid);
    let stopped = daemonic(&["--signal", "HUP", "-p", arg(&pid_file), "--timeout", "0.3"]);
    assert_one_line_error(
        &stopped,
        4,
        "has not taken SIGHUP within 0.3 s (it blocks the signal, or is stopped)",
    );
    assert_eq!(common::stat(daemon.pid).state, 'T', "resumed by a reload");
    common::kill(daemon.pid, libc::SIGCONT);
    common::wait_until("the pending HUP taken", || log_of(&log) == "HUP\nHUP\n");
    // Nothing there: 1.
    let missing = daemonic(&["--signal", "HUP", "-p", arg(&dir.join("none.pid"))]);
    assert_one_line_error(&missing, 1, "not running");
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert_eq!(daemon.wait(), 0);
    assert_eq!(log_of(&log), "HUP\nHUP\nTERM\n");

    if !common::SUPERVISE {
        return;
    }
    // Supervised: the supervisor takes it and forwards it; both run on.
    let (mut supervisor, log) = trapping(&dir, &pid_file, &["--supervise"]);
    let program = common::program_of(supervisor.pid);
    let reload = daemonic(&["--signal", "HUP", "-p", arg(&pid_file)]);
    assert_eq!(reload.status.code(), Some(0), "{}", stderr(&reload));
    common::wait_until("HUP forwarded", || log_of(&log) == "HUP\n");
    assert!(running(supervisor.pid) && running(program));
    common::kill(supervisor.pid, libc::SIGTERM);
    assert_eq!(supervisor.wait(), 0);
}

// ---- SIGSTOP ---------------------------------------------------------------

/// A daemon stopped with SIGSTOP (or by a debugger) gets SIGCONT right
/// after its stop signal, so it acts on it: it exits 0 from its own
/// handler, long before the 60 s timeout's SIGKILL.
fn stopped_daemon_stops_on_its_signal() {
    let dir = TempDir::new("sigstop");
    let pid_file = dir.join("d.pid");
    let (mut daemon, log) = trapping(&dir, &pid_file, &[]);
    common::kill(daemon.pid, libc::SIGSTOP);
    wait_stopped(daemon.pid);
    let stop = daemonic(&["--stop", "-p", arg(&pid_file), "--timeout", "60"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert!(!stderr(&stop).contains("SIGKILL"), "{}", stderr(&stop));
    assert_eq!(daemon.wait(), 0, "ended by its own TERM handler");
    assert_eq!(log_of(&log), "TERM\n");
    assert!(!pid_file.exists());
}

/// The same under `--supervise`: the program stopped, then the supervisor
/// itself stopped. Either way the tree stops on SIGTERM, not SIGKILL.
fn stopped_supervised_program_stops_on_its_signal() {
    let dir = TempDir::new("supstop");
    let pid_file = dir.join("s.pid");
    for stopped in ["program", "supervisor"] {
        let (mut supervisor, log) = trapping(&dir, &pid_file, &["--supervise", "--timeout", "60"]);
        let program = common::program_of(supervisor.pid);
        let target = if stopped == "program" {
            program
        } else {
            supervisor.pid
        };
        common::kill(target, libc::SIGSTOP);
        wait_stopped(target);
        let stop = daemonic(&["--stop", "-p", arg(&pid_file), "--timeout", "60"]);
        assert_eq!(stop.status.code(), Some(0), "{stopped}: {}", stderr(&stop));
        assert_eq!(supervisor.wait(), 0, "{stopped}");
        assert_eq!(log_of(&log), "TERM\n", "{stopped}: the program took TERM");
        assert!(!pid_file.exists());
    }
}

// ---- --retry ----------------------------------------------------------------

/// A daemon that ignores SIGTERM, started once it does.
fn ignoring_term(pid_file: &Path) -> Started {
    let started = start(
        &["-p", arg(pid_file), "--ready-fd", "5"],
        "ignore-term",
        &["5"],
    );
    assert!(started.status.success(), "{}", stderr(&started));
    Started::new(common::read_pid_file(pid_file))
}

fn retry_schedules() {
    let dir = TempDir::new("retry");
    let pid_file = dir.join("d.pid");
    let mut daemon = ignoring_term(&pid_file);
    // A schedule without SIGKILL ends with the daemon still there: 2, as
    // start-stop-daemon --retry has it.
    let stop = daemonic(&["--stop", "-p", arg(&pid_file), "--retry", "TERM/0.2"]);
    assert_one_line_error(&stop, 2, "the stop schedule is over");
    assert!(stderr(&stop).contains(&format!("PID {} still running after 0.2", daemon.pid)));
    assert!(running(daemon.pid));
    // forever: the items after it, until the daemon is gone.
    let stop = daemonic(&[
        "--stop",
        "-p",
        arg(&pid_file),
        "--retry",
        "TERM/0.1/forever/USR1/0.1",
    ]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert!(
        stderr(&stop).contains("sending SIGUSR1"),
        "{}",
        stderr(&stop)
    );
    let status = daemon.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGUSR1);
    assert!(!pid_file.exists());

    // A bare number: --signal's signal, then SIGKILL, each given that long.
    let mut daemon = ignoring_term(&pid_file);
    let stop = daemonic(&["--stop", "-p", arg(&pid_file), "--retry", "0.2"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert!(
        stderr(&stop).contains("sending SIGKILL"),
        "{}",
        stderr(&stop)
    );
    let status = daemon.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
}

// ---- --start-limit -----------------------------------------------------------

/// Lines of a `run` log: one per start.
fn runs(log: &Path) -> usize {
    log_of(log).lines().count()
}

/// The board whose device comes late: 50 quick crashes, and the supervisor
/// still restarts it.
fn start_limit_zero_never_gives_up() {
    let dir = TempDir::new("nolimit");
    let (pid_file, log, out) = (dir.join("s.pid"), dir.join("runs"), dir.join("out"));
    let started = start(
        &[
            "-p",
            arg(&pid_file),
            "--supervise",
            "--restart=0.1:0.1",
            "--start-limit",
            "0",
            "--output",
            arg(&out),
        ],
        "run",
        &[arg(&log), "3"],
    );
    assert!(started.status.success(), "{}", stderr(&started));
    let mut supervisor = Started::new(common::read_pid_file(&pid_file));
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs(&log) < 51 {
        assert!(Instant::now() < deadline, "{} runs in 60 s", runs(&log));
        assert!(running(supervisor.pid), "gave up: {}", log_of(&out));
        std::thread::sleep(Duration::from_millis(20));
    }
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert_eq!(supervisor.wait(), 0);
    assert!(!log_of(&out).contains("giving up"), "{}", log_of(&out));
}

/// The default (5 starts in 10 s) and a limit of one's own: the supervisor
/// gives up with the program's status and says which limit and option.
fn start_limit_gives_up_as_set() {
    let dir = TempDir::new("limit");
    for (limit, starts) in [(None, 5), (Some("2/10"), 2)] {
        let (pid_file, log, out) = (dir.join("s.pid"), dir.join("runs"), dir.join("out"));
        let _ = fs::remove_file(&log);
        let mut options = vec![
            "-p",
            arg(&pid_file),
            "--supervise",
            "--restart=0.1:0.1",
            "--output",
            arg(&out),
        ];
        if let Some(limit) = limit {
            options.extend_from_slice(&["--start-limit", limit]);
        }
        let started = start(&options, "run", &[arg(&log), "3"]);
        assert!(started.status.success(), "{}", stderr(&started));
        // The supervisor may be gone with its PID file by now: its PID is
        // the program's parent, on each line.
        common::wait_until("the first run", || log_of(&log).contains('\n'));
        let supervisor: i32 = log_of(&log)
            .split_whitespace()
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(Started::new(supervisor).wait(), 3 << 8, "{}", log_of(&out));
        assert_eq!(runs(&log), starts, "{limit:?}");
        let said = log_of(&out);
        let expected =
            format!("after {starts} starts within 10 s: giving up (--start-limit BURST/SECS");
        assert!(said.contains(&expected), "{said}");
    }
}

// ---- --stop-signal -------------------------------------------------------------

fn stop_signal_reaches_the_program() {
    let dir = TempDir::new("stopsig");
    let pid_file = dir.join("s.pid");
    let (mut supervisor, log) =
        trapping(&dir, &pid_file, &["--supervise", "--stop-signal", "QUIT"]);
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert_eq!(supervisor.wait(), 0);
    assert_eq!(log_of(&log), "QUIT\n", "nginx's graceful stop, not TERM");
}

// ---- readiness as another user ------------------------------------------------

/// `-u nobody --wait-ready`: the program, running as nobody, reaches the
/// notification socket daemonic made as root (its directory and socket are
/// handed to nobody), plain and supervised; before, it got EACCES and the
/// start failed.
fn ready_as_another_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("ready_as_another_user: needs root, skipped");
        return;
    }
    let program = common::public_copy(&std::env::current_exe().unwrap());
    let env = format!("--env={}=notify-ready", common::HELPER_ENV);
    for &supervise in common::with_and_without_supervisor() {
        let dir = TempDir::new("readyuser");
        let pid_file = dir.join("s.pid");
        let err = dir.join("err");
        let mut args = vec![
            "-p",
            arg(&pid_file),
            "-u",
            "nobody",
            "--wait-ready=10",
            "-e",
            arg(&err),
        ];
        if supervise {
            args.push("--supervise");
        }
        args.extend([env.as_str(), "--", arg(&program)]);
        let started = daemonic(&args);
        assert!(
            started.status.success(),
            "supervise {supervise}: {}; the program said: {}",
            stderr(&started),
            fs::read_to_string(&err).unwrap_or_default()
        );
        let mut daemon = Started::new(common::read_pid_file(&pid_file));
        let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
        assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
        daemon.wait();
    }
}

// ---- --watchdog ------------------------------------------------------------------

/// sd_notify's watchdog as a program does it: `WATCHDOG_PID` must be its
/// own PID; READY=1, then `pings` WATCHDOG=1 a quarter of WATCHDOG_USEC
/// apart, then it hangs. Logs `run PID` and, should SIGABRT come (its
/// handler keeps it hanging, so SIGKILL must follow), `ABRT`.
fn watchdog_pinger(log: &str, pings: u32) -> ! {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};
    static LOG_FD: AtomicI32 = AtomicI32::new(-1);
    extern "C" fn on_abort(_: libc::c_int) {
        // SAFETY: write(2) on an fd opened before the handler was set.
        unsafe { libc::write(LOG_FD.load(Ordering::SeqCst), b"ABRT\n".as_ptr().cast(), 5) };
    }
    let pid: u32 = std::env::var("WATCHDOG_PID").unwrap().parse().unwrap();
    assert_eq!(pid, std::process::id(), "WATCHDOG_PID");
    let usec: u64 = std::env::var("WATCHDOG_USEC").unwrap().parse().unwrap();
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .unwrap();
    LOG_FD.store(file.as_raw_fd(), Ordering::SeqCst);
    // SAFETY: the handler only writes to the log's fd.
    unsafe { libc::signal(libc::SIGABRT, on_abort as *const () as libc::sighandler_t) };
    writeln!(file, "run {pid}").unwrap();
    let socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let notify = std::env::var("NOTIFY_SOCKET").unwrap();
    socket.send_to(b"READY=1", &notify).unwrap();
    for _ in 0..pings {
        std::thread::sleep(Duration::from_micros(usec / 4));
        socket.send_to(b"WATCHDOG=1", &notify).unwrap();
    }
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// systemd's WatchdogSec= under `--supervise`: a program that pings keeps
/// running past several periods; one that stops is stopped (SIGABRT, then
/// SIGKILL when it does not die) within its period and the grace, and
/// restarted as after a crash, with its own WATCHDOG_PID.
fn watchdog_restarts_a_hung_program() {
    let dir = TempDir::new("watchdog");
    let (pid_file, log, out) = (dir.join("s.pid"), dir.join("runs"), dir.join("out"));
    let began = Instant::now();
    let started = start(
        &[
            "-p",
            arg(&pid_file),
            "--supervise",
            "--wait-ready=5",
            "--watchdog",
            "0.4",
            "--timeout",
            "0.5",
            "--restart=0.1",
            "--output",
            arg(&out),
        ],
        "watchdog",
        &[arg(&log), "12"],
    );
    assert!(started.status.success(), "{}", stderr(&started));
    let mut supervisor = Started::new(common::read_pid_file(&pid_file));
    common::wait_until("the hung program restarted", || {
        log_of(&log)
            .lines()
            .filter(|l| l.starts_with("run "))
            .count()
            >= 2
    });
    // 12 pings 0.1 s apart kept the first run alive for 1.2 s, three
    // times its period; then 0.4 s without one, SIGABRT, 0.5 s, SIGKILL,
    // 0.1 s. Unheard pings would have ended it after 1 s.
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(1200),
        "restarted after {took:?}"
    );
    let runs = log_of(&log);
    let pids: Vec<&str> = runs
        .lines()
        .filter_map(|l| l.strip_prefix("run "))
        .collect();
    assert_ne!(pids[0], pids[1]);
    assert!(runs.contains("ABRT\n"), "{runs}");
    common::wait_until("the supervisor said why", || {
        log_of(&out).contains("missed its watchdog deadline")
    });
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert_eq!(supervisor.wait(), 0);
}

// ---- seccomp ---------------------------------------------------------------------

fn seccomp_here(case: &str) -> bool {
    if AUDIT_ARCH.is_none() {
        println!("{case}: skipped: no seccomp filter written for this architecture");
    }
    AUDIT_ARCH.is_some()
}

/// Under a profile that answers EPERM to the pidfd calls, `--status`,
/// `--signal` and `--stop` pin the daemon by its `/proc` directory and
/// still act on it, never "held by another process".
fn control_under_seccomp() {
    if !seccomp_here("control_under_seccomp") {
        return;
    }
    // Both calls refused; or pidfd_open allowed and pidfd_send_signal not.
    for which in ["pidfds", "send-only"] {
        let dir = TempDir::new("seccomp");
        let pid_file = dir.join("d.pid");
        let (mut daemon, log) = trapping(&dir, &pid_file, &[]);
        let status = daemonic_under(which, &["--status", "-p", arg(&pid_file)]);
        assert_eq!(
            status.status.code(),
            Some(0),
            "{which}: {}",
            stderr(&status)
        );
        assert_eq!(
            stdout(&status),
            format!("daemonic: running as PID {}\n", daemon.pid)
        );
        let reload = daemonic_under(which, &["--signal", "HUP", "-p", arg(&pid_file)]);
        assert_eq!(
            reload.status.code(),
            Some(0),
            "{which}: {}",
            stderr(&reload)
        );
        common::wait_until("HUP taken", || log_of(&log) == "HUP\n");
        let stop = daemonic_under(which, &["--stop", "-p", arg(&pid_file)]);
        assert_eq!(stop.status.code(), Some(0), "{which}: {}", stderr(&stop));
        assert_eq!(daemon.wait(), 0);
        assert_eq!(log_of(&log), "HUP\nTERM\n", "{which}");
        assert!(!pid_file.exists());
        // Gone: the same answers as without the filter.
        let status = daemonic_under(which, &["--status", "-p", arg(&pid_file)]);
        assert_eq!(
            status.status.code(),
            Some(3),
            "{which}: {}",
            stderr(&status)
        );
    }
}

/// A start under the same profile: `close_range` refused, the fds are
/// closed another way (fd 9, open in the caller, is not in the daemon),
/// and the caller's pidfd wait falls back too.
fn start_under_seccomp() {
    if !seccomp_here("start_under_seccomp") {
        return;
    }
    let dir = TempDir::new("seccompstart");
    let (pid_file, log) = (dir.join("d.pid"), dir.join("trap.log"));
    let env = format!("--env={}=trap", common::HELPER_ENV);
    let exe = std::env::current_exe().unwrap();
    let options = ["-p", arg(&pid_file), "--ready-fd", "5"];
    let output = daemonic_under_seccomp(&words(
        &options,
        &env,
        exe.to_str().unwrap(),
        &[arg(&log), "5"],
    ));
    assert!(output.status.success(), "start: {}", stderr(&output));
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    let fds = common::open_fds_once_reported(daemon.pid);
    assert!(!fds.contains(&9), "fd 9 inherited: {fds:?}");
    // 0, 1, 2 and the PID file's lock, nothing else.
    assert_eq!(fds.len(), 4, "{fds:?}");
    common::kill(daemon.pid, libc::SIGTERM);
    assert_eq!(daemon.wait(), 0);
}

/// Pidfds refused and no `/proc` (a board's container): nothing can pin the
/// PID, so nothing is signalled, and the message says which way failed.
fn nothing_pins_without_pidfds_or_proc() {
    // SAFETY: geteuid has no preconditions.
    if !seccomp_here("nothing_pins_without_pidfds_or_proc") || unsafe { libc::geteuid() } != 0 {
        println!("nothing_pins_without_pidfds_or_proc: skipped: needs root and a filter");
        return;
    }
    let dir = TempDir::new("nopin");
    let pid_file = dir.join("d.pid");
    let (mut daemon, log) = trapping(&dir, &pid_file, &[]);
    let script = r#"
        umount -l /proc || exit 11
        "$0" "$@"; echo "status=$?"
        "$0" "$@" --stop; echo "stop=$?"
    "#;
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(std::env::current_exe().unwrap())
        .args([
            "pidfds",
            env!("CARGO_BIN_EXE_daemonic"),
            "--status",
            "-p",
            arg(&pid_file),
        ])
        .env(common::HELPER_ENV, "seccomp-exec")
        .stdin(Stdio::null());
    let output = common::run(&mut command);
    if output.status.code() == Some(11) {
        println!("nothing_pins_without_pidfds_or_proc: skipped: /proc cannot be unmounted here");
        return;
    }
    let text = stdout(&output);
    assert!(
        text.contains("status=4") && text.contains("stop=4"),
        "{text}{}",
        stderr(&output)
    );
    let expected = format!("cannot pin PID {} named by", daemon.pid);
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("pidfd_open refused"),
        "{}",
        stderr(&output)
    );
    assert!(running(daemon.pid));
    assert_eq!(log_of(&log), "", "signalled");
    common::kill(daemon.pid, libc::SIGTERM);
    assert_eq!(daemon.wait(), 0);
}

// ---- what --supervise cannot supervise -------------------------------------------

/// `sh -c 'sleep 999 & exit 0'`: the program puts its work in the
/// background and exits 0. The supervisor stops what it left (nothing is
/// left behind), exits with its status, and says why and what to run.
fn program_that_backgrounds_itself() {
    let dir = TempDir::new("bg");
    let (pid_file, out, pids) = (dir.join("s.pid"), dir.join("out"), dir.join("pids"));
    let script = format!("sleep 999 & echo \"$PPID $!\" > {}; exit 0", arg(&pids));
    let output = daemonic(&[
        "-p",
        arg(&pid_file),
        "--supervise",
        "--output",
        arg(&out),
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    common::wait_until("the script's PIDs", || log_of(&pids).ends_with('\n'));
    let text = log_of(&pids);
    let mut numbers = text.split_whitespace().map(|n| n.parse::<i32>().unwrap());
    let (supervisor, sleep) = (numbers.next().unwrap(), numbers.next().unwrap());
    assert_eq!(Started::new(supervisor).wait(), 0);
    assert!(
        !running(sleep),
        "the backgrounded sleep {sleep} was left running"
    );
    let said = log_of(&out);
    assert!(
        said.contains("ended with status 0 but left processes running: stopping them")
            && said.contains("--supervise wants a program that stays in the foreground"),
        "{said}"
    );
    assert!(!pid_file.exists());
}

/// A set-uid program loses its parent-death signal at exec, so it outlives
/// a supervisor that dies. It keeps the PID file's lock the supervisor
/// handed it: a second start is refused and names it, `--status` says
/// what it is, `--signal` leaves it alone, and `--stop` stops it.
fn setuid_program_outlives_its_supervisor() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("setuid_program_outlives_its_supervisor: skipped: needs root (users, set-uid)");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("setuid");
    let pid_file = dir.join("s.pid");
    // A copy of this binary, set-uid to a user of no account: run by
    // nobody, it changes its effective user at exec.
    // A copy of its own (made before the tests started, as every copy
    // must be): the shared public copy, made set-uid, would run the other
    // tests' programs as 65533.
    let copy = common::public_copy(Path::new(SETUID_COPY_OF));
    std::os::unix::fs::chown(&copy, Some(65533), Some(65533)).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).unwrap();
    let env = format!("--env={}=sleep", common::HELPER_ENV);
    let options = ["-p", arg(&pid_file), "--supervise", "-u", "nobody"];
    let output = daemonic(&words(&options, &env, arg(&copy), &[]));
    assert!(output.status.success(), "start: {}", stderr(&output));
    let mut supervisor = Started::new(common::read_pid_file(&pid_file));
    let program = common::program_of(supervisor.pid);
    common::wait_until("the program executed, set-uid", || {
        common::status(program, "Uid").split_whitespace().nth(1) == Some("65533")
    });
    supervisor.stop(libc::SIGKILL);
    // Its parent-death SIGKILL was cleared at exec: it lives on (a program
    // that kept it would be dead before the supervisor could be reaped).
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        running(program),
        "the set-uid program died with its supervisor"
    );
    let mut program = Started::new(program);

    let again = daemonic(&words(&["-p", arg(&pid_file)], &env, arg(&copy), &[]));
    assert_one_line_error(&again, 2, &format!("locked by PID {}", program.pid));
    assert!(
        stderr(&again).contains("outlived the daemon") && stderr(&again).contains("--stop -p"),
        "{}",
        stderr(&again)
    );
    let status = daemonic(&["--status", "-p", arg(&pid_file)]);
    assert_one_line_error(&status, 4, "still holds its lock: it outlived the daemon");
    assert!(stderr(&status).contains(&format!("PID {} (", program.pid)));
    let reload = daemonic(&["--signal", "HUP", "-p", arg(&pid_file)]);
    assert_one_line_error(&reload, 4, "not signalling it (--stop stops it)");
    assert!(running(program.pid));
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert!(
        stderr(&stop).contains("stopping what holds it"),
        "{}",
        stderr(&stop)
    );
    let status = program.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
    assert!(!pid_file.exists(), "the stale PID file stayed");
}

/// `flock FILE command` hands the lock it took to `command`, which then
/// holds a lock it did not take, like a survivor; but the lock's taker
/// lives, so it is not one: a stale PID file under such a lock is refused,
/// and nothing is signalled.
fn a_lock_handed_on_by_a_live_taker_is_not_a_survivor() {
    let dir = TempDir::new("flockcmd");
    let pid_file = dir.join("d.pid");
    // A PID no process has: above the kernel's pid_max.
    fs::write(&pid_file, "4194305\n").unwrap();
    let mut flock = Started::new(
        Command::new("flock")
            .args(["-x", arg(&pid_file), "sleep", "30"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
            .id() as i32,
    );
    // flock's child, not ours: killed by its PID, reaped by flock.
    let command = common::program_of(flock.pid);
    common::wait_until("the lock is held", || {
        !Command::new("flock")
            .args(["-n", "-x", arg(&pid_file), "true"])
            .status()
            .unwrap()
            .success()
    });
    let stop = daemonic(&["--stop", "-p", arg(&pid_file), "--timeout", "0.2"]);
    assert_one_line_error(&stop, 4, "not signalling anything");
    assert!(running(command) && running(flock.pid));
    common::kill(command, libc::SIGKILL);
    flock.wait();
}
