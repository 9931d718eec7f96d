//! Support shared by the integration tests: a small harness (each test
//! binary also serves as the helper program its tests start, picked by an
//! environment variable), `/proc` readers, temporary directories and
//! bounded waits.
//!
//! Each test binary makes itself a child subreaper, so the daemons its
//! helpers start are reparented to it: a test can then wait for exactly the
//! daemon it started, by PID, and see how it ended.

#![allow(dead_code)]

pub mod plan_helper;

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that turns a test binary into a helper.
pub const HELPER_ENV: &str = "DAEMONIC_TEST_HELPER";

/// How long a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub type Test = (&'static str, fn());

/// The modes the command under test was built with (Cargo features, as
/// README's "Building tiny" lists them): the lean command's tests run in
/// every build, a mode's tests only where it is built (the tests of
/// `daemonic_without_a_mode_refuses_it` in cli.rs check the refusal).
pub const SUPERVISE: bool = cfg!(feature = "supervise");
pub const LOGS: bool = cfg!(feature = "logs");
pub const PID1: bool = cfg!(feature = "pid1");
pub const HARDEN: bool = cfg!(feature = "harden");

/// `tests` if `built`, else none.
pub fn when(built: bool, tests: Vec<Test>) -> Vec<Test> {
    if built { tests } else { Vec::new() }
}

/// Whether this build of the command takes every option in `args` (the
/// options of a mode it was built without are refused).
pub fn takes(args: &[&str]) -> bool {
    args.iter().all(|arg| {
        let logs = ["--rotate", "--timestamps", "--syslog"]
            .iter()
            .any(|option| arg.starts_with(option));
        let supervise = [
            "--supervise",
            "--restart",
            "--child-pidfile",
            "--start-limit",
            "--stop-signal",
            "--success-exit",
            "--watchdog",
        ]
        .iter()
        .any(|option| arg.starts_with(option));
        let harden = [
            "--cap",
            "--no-new-privs",
            "--limit",
            "--env-file",
            "--runtime-dir",
            "--listen",
        ]
        .iter()
        .any(|option| arg.starts_with(option));
        (!logs || LOGS) && (!supervise || SUPERVISE) && (!harden || HARDEN)
    })
}

/// `[false, true]`: without and with `--supervise`, where it is built.
pub fn with_and_without_supervisor() -> &'static [bool] {
    if SUPERVISE { &[false, true] } else { &[false] }
}

/// Runs the helper named by [`HELPER_ENV`] if set (passing the program's
/// arguments), else every test, in parallel, and exits like libtest.
pub fn main(helper: fn(&str, Vec<String>), tests: Vec<Test>) {
    main_with_public_copies(helper, tests, &[]);
}

/// As [`main`], first making [`public_copy`]s of `public`, while this
/// process has one thread.
pub fn main_with_public_copies(helper: fn(&str, Vec<String>), tests: Vec<Test>, public: &[&Path]) {
    if let Some(name) = std::env::var_os(HELPER_ENV) {
        let args = std::env::args().skip(1).collect();
        helper(&name.to_string_lossy(), args);
        std::process::exit(0);
    }
    for path in public {
        public_copy(path);
    }
    become_subreaper();
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let selected: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let started = Instant::now();
    let failed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (name, test) in &selected {
            let failed = &failed;
            scope.spawn(move || {
                let outcome = std::panic::catch_unwind(test);
                let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
                if outcome.is_err() {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
                println!("test {name} ... {verdict}");
            });
        }
    });
    remove_public_copies();
    let failed = failed.load(Ordering::SeqCst);
    let passed = selected.len() - failed;
    let status = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {status}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        tests.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    std::process::exit(if failed == 0 { 0 } else { 101 });
}

/// How an error's message shows `errno`: std's text, or without std the
/// errno's `name`, each followed by the number.
pub fn errno_text(errno: i32, name: &str) -> String {
    if cfg!(feature = "std") {
        std::io::Error::from_raw_os_error(errno).to_string()
    } else {
        format!("{name} (os error {errno})")
    }
}

/// Orphans of our descendants (the daemons) become our children.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes plain integers.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(
        rc,
        0,
        "PR_SET_CHILD_SUBREAPER: {}",
        std::io::Error::last_os_error()
    );
}

/// A copy of the executable `path` that every user can run, in a directory
/// every user can enter (made once per path and process): the checkout may
/// sit where `nobody` cannot go, under a 0700 home or `mktemp -d`.
///
/// Make each copy before the tests start (see [`main`]'s `public`): a copy
/// written while another thread forks is held open for writing by that
/// child until it executes, and executing the copy then fails with
/// `ETXTBSY`.
pub fn public_copy(path: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static MADE: std::sync::Mutex<Vec<(PathBuf, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap();
    if let Some((_, copy)) = made.iter().find(|(from, _)| from == path) {
        return copy.clone();
    }
    let base = std::env::var_os("TMPDIR").unwrap_or_else(|| OsString::from("/tmp"));
    let dir = PathBuf::from(base).join(format!(
        "daemonic-{}-public-{}",
        std::process::id(),
        made.len()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join(path.file_name().unwrap());
    fs::copy(path, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    made.push((path.to_path_buf(), copy.clone()));
    copy
}

/// Removes the copies [`public_copy`] made (at the end of the run).
pub fn remove_public_copies() {
    let base = std::env::var_os("TMPDIR").unwrap_or_else(|| OsString::from("/tmp"));
    for n in 0..16 {
        let dir = PathBuf::from(&base).join(format!("daemonic-{}-public-{n}", std::process::id()));
        let _ = fs::remove_dir_all(dir);
    }
}

/// This test binary, started as the helper `name` with `args`.
pub fn helper(name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.env(HELPER_ENV, name).args(args);
    command.stdin(Stdio::null());
    command
}

/// An example program, built first (a no-op when it is fresh): `cargo test
/// --test NAME` does not rebuild examples, and a stale one would test old
/// code.
pub fn example(name: &str) -> Command {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    // target/PROFILE/deps/TEST-HASH -> target/PROFILE/examples/NAME
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cargo
            .args(["build", "--quiet", "--example", name, "--manifest-path"])
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
        if profile_dir.file_name() == Some(std::ffi::OsStr::new("release")) {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo");
        assert!(status.success(), "cargo build --example {name} failed");
        built.push(name.to_string());
    }
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} not built", path.display());
    let mut command = Command::new(path);
    command.stdin(Stdio::null());
    command
}

/// Runs `command` to its end (bounded by [`PATIENCE`]) and returns what it
/// printed and how it exited.
pub fn run(command: &mut Command) -> Output {
    command.stdout(Stdio::piped());
    run_keeping_stdout(command)
}

/// As [`run`], with standard output wherever the command already sends it.
pub fn run_keeping_stdout(command: &mut Command) -> Output {
    run_keeping_stdout_for(command, PATIENCE)
}

/// As [`run_keeping_stdout`], bounded by `patience`.
pub fn run_keeping_stdout_for(command: &mut Command, patience: Duration) -> Output {
    let child = command.stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id() as i32;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(patience) {
        Ok(output) => output.expect("wait"),
        Err(_) => {
            kill(pid, libc::SIGKILL);
            panic!("process {pid} still running after {patience:?}");
        }
    }
}

/// The daemon a helper started, from its line `parent pid=N`; the start
/// must have succeeded.
pub fn started(output: &Output) -> Started {
    let text = stdout(output);
    assert!(
        output.status.success(),
        "start failed: {text} {}",
        stderr(output)
    );
    Started::new(field(&text, "pid").unwrap().parse().unwrap())
}

/// Text of a process's standard output.
/// The command failed with `status` and said so in one line, `daemonic: `
/// first, holding `text`.
pub fn assert_one_line_error(output: &Output, status: i32, text: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(status), "{err}");
    assert!(
        err.starts_with("daemonic: ") && err.ends_with('\n') && err.lines().count() == 1,
        "{err:?}"
    );
    assert!(err.contains(text), "expected {text:?} in {err:?}");
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Text of a process's standard error.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The value of `key=VALUE` among the whitespace-separated words of `text`.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// The `ignore-term` helper: ignores SIGTERM, then says it is ready by a
/// newline on the fd named in `ready_fd` (the command's `--ready-fd`), so a
/// test that stops it knows the signal can no longer end it.
pub fn ignore_term_then_ready(ready_fd: &str) -> ! {
    // SAFETY: setting a disposition.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    let fd: i32 = ready_fd.parse().unwrap();
    // SAFETY: writes one byte from a static buffer to the inherited fd.
    assert_eq!(unsafe { libc::write(fd, b"\n".as_ptr().cast(), 1) }, 1);
    std::thread::sleep(Duration::from_secs(120));
    std::process::exit(0)
}

pub fn kill(pid: i32, signal: i32) {
    // SAFETY: kill takes plain integers; `pid` is a process this test started.
    unsafe { libc::kill(pid, signal) };
}

/// A daemon this test started: killed and reaped when dropped, so a failing
/// assertion leaves nothing running.
pub struct Started {
    pub pid: i32,
    reaped: bool,
}

impl Started {
    pub fn new(pid: i32) -> Started {
        Started { pid, reaped: false }
    }

    /// Sends `signal` and waits for the daemon to end; returns its wait status.
    pub fn stop(&mut self, signal: i32) -> i32 {
        kill(self.pid, signal);
        self.wait()
    }

    /// Waits (bounded) for the daemon, our child through the subreaper, to
    /// end; returns its wait status.
    pub fn wait(&mut self) -> i32 {
        // A test may look at the daemon as soon as it shows itself (a file
        // it writes), while its first parent still lives (slowly, under
        // strace): only once that parent has exited is the daemon
        // reparented to this subreaper and ours to wait for.
        wait_until("the daemon is reparented to the test", || {
            parent_of(self.pid).is_none_or(|ppid| ppid == std::process::id() as i32)
        });
        let status = wait_pid(self.pid, PATIENCE).expect("daemon did not end in time");
        self.reaped = true;
        status
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if !self.reaped {
            kill(self.pid, libc::SIGKILL);
            // Not `wait_pid`: a second panic while unwinding would abort.
            let mut status = 0;
            // SAFETY: waitpid writes into our local; it blocks only until
            // the process we just killed is gone.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
        }
    }
}

/// Waits up to `timeout` for our child `pid` to end; its wait status.
pub fn wait_pid(pid: i32, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid {
            return Some(status);
        }
        assert!(
            rc == 0,
            "waitpid({pid}): {}",
            std::io::Error::last_os_error()
        );
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The parent of `pid`, or `None` once it is gone (reaped).
pub fn parent_of(pid: i32) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat(&text).ppid)
}

/// The fields of `/proc/PID/stat` a daemon test looks at.
#[derive(Debug)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub tty_nr: i32,
}

pub fn stat(pid: i32) -> Stat {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat"))
}

fn parse_stat(text: &str) -> Stat {
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Stat {
        state: fields[0].chars().next().unwrap(),
        ppid: fields[1].parse().unwrap(),
        pgrp: fields[2].parse().unwrap(),
        session: fields[3].parse().unwrap(),
        tty_nr: fields[4].parse().unwrap(),
    }
}

/// A line's value from `/proc/PID/status`, e.g. `Umask`.
/// A supervisor's one child, once it has one.
pub fn program_of(supervisor: i32) -> i32 {
    let mut child = None;
    wait_until("the supervisor's program", || {
        let path = format!("/proc/{supervisor}/task/{supervisor}/children");
        child = fs::read_to_string(path)
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok());
        child.is_some()
    });
    child.unwrap()
}

/// Processes whose command line holds `token` (zombies too).
pub fn processes_with(token: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(token) {
                found.push(pid);
            }
        }
    }
    found
}

pub fn status(pid: i32, key: &str) -> String {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Where the daemon's fd `n` points.
pub fn fd_target(pid: i32, n: i32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/fd/{n}")).expect("read fd link")
}

/// Every fd number the process has open.
pub fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fd dir")
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .parse()
                .unwrap()
        })
        .collect();
    fds.sort_unstable();
    fds
}

/// Whether the process's fd `n` is a pipe (false once it is closed).
pub fn is_pipe(pid: i32, n: i32) -> bool {
    fs::read_link(format!("/proc/{pid}/fd/{n}"))
        .is_ok_and(|target| target.to_string_lossy().starts_with("pipe:"))
}

/// The daemon's open fds once it has closed its report pipe. `ready` sends
/// the record before it closes the pipe, so the caller (and the test) may
/// look in between; a daemon that never closes it fails the wait.
pub fn open_fds_once_reported(pid: i32) -> Vec<i32> {
    wait_until("the daemon closes its report pipe", || {
        !open_fds(pid).into_iter().any(|fd| is_pipe(pid, fd))
    });
    open_fds(pid)
}

pub fn cwd(pid: i32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/cwd")).expect("read cwd")
}

/// The PID a PID file names, checking its exact format: digits and `\n`.
pub fn read_pid_file(path: &Path) -> i32 {
    let text = fs::read_to_string(path).expect("read PID file");
    assert!(
        text.ends_with('\n') && !text[..text.len() - 1].contains('\n'),
        "{text:?}"
    );
    text.trim_end().parse().expect("PID file holds a number")
}

/// Waits (bounded) until `condition` holds.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A directory of our own, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base = std::env::var_os("TMPDIR").unwrap_or_else(|| OsString::from("/tmp"));
        let path = PathBuf::from(base).join(format!("daemonic-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        // Canonical, so it compares equal to what /proc shows.
        TempDir(path.canonicalize().unwrap())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Starts `command` as the leader of a new session whose controlling
/// terminal is a fresh pseudo-terminal, so a test can check the daemon left
/// it behind. Returns the terminal's master side (keep it open: closing it
/// hangs the terminal up) and our copy of the slave side (close it once the
/// command is spawned).
pub fn with_controlling_terminal(command: &mut Command) -> (fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r are called on the fd
    // we just got, with a buffer of the size we pass.
    let (master, slave_path) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master, name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr()).to_owned();
        (fs::File::from_raw_fd(master), path)
    };
    let slave = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(std::ffi::OsStr::from_bytes(slave_path.to_bytes()))
        .expect("open terminal");
    let slave = std::os::fd::OwnedFd::from(slave);
    let slave_fd = slave.as_raw_fd();
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // calls (setsid, ioctl, dup2) on an fd that stays open until then.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for target in 0..3 {
                if libc::dup2(slave_fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    (master, slave)
}

/// A datagram socket bound at `path` (a notification or syslog listener),
/// reading with a timeout of [`PATIENCE`].
pub fn datagram_listener(path: &Path) -> std::os::unix::net::UnixDatagram {
    let socket = std::os::unix::net::UnixDatagram::bind(path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    socket
}

/// The next datagram on `socket` as text, within [`PATIENCE`] (its read
/// timeout). A receive with a timeout fails with EINTR when a signal, or a
/// stop and a continue, reaches this process, whatever SA_RESTART says
/// (signal(7)); seen once in CI: that is retried, not failed.
pub fn next_datagram(socket: &std::os::unix::net::UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    loop {
        match socket.recv(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted && Instant::now() < deadline => {}
            received => {
                let n = received.expect("a datagram in time");
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
    }
}

/// A FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo reads a C string we own.
    assert_eq!(
        unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) },
        0,
        "mkfifo {}",
        path.display()
    );
}
