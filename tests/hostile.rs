//! The `daemonic` command against PID files it must not trust and PIDs it
//! must not signal: files naming PID 1 or a reused PID, locks taken by
//! other processes and users, files other users own or can replace, FIFOs,
//! bad numbers, and a supervisor that must own every process it started.
//! Each case checks, from outside, that nothing but the daemon was touched:
//! sentinel processes record every signal they get.
//!
//! Cases that need another user run as root and use `nobody`; run as
//! another user, they print why they are skipped.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Started, TempDir, stderr, stdout};

fn main() {
    // Copies nobody can execute, made before any test thread forks.
    common::main_with_public_copies(
        helpers,
        tests(),
        &[&this_binary(), Path::new(env!("CARGO_BIN_EXE_daemonic"))],
    );
}

fn tests() -> Vec<common::Test> {
    let mut tests: Vec<common::Test> = vec![
        ("pid_one_locked_by_another", pid_one_locked_by_another),
        (
            "reused_pid_is_never_signalled",
            reused_pid_is_never_signalled,
        ),
        ("pid_reused_in_a_namespace", pid_reused_in_a_namespace),
        (
            "without_proc_nothing_is_proven",
            without_proc_nothing_is_proven,
        ),
        ("probes_do_not_fail_a_start", probes_do_not_fail_a_start),
        (
            "root_refuses_files_others_control",
            root_refuses_files_others_control,
        ),
        (
            "dropped_daemon_cannot_rewrite",
            dropped_daemon_cannot_rewrite,
        ),
        ("lock_taken_by_another_user", lock_taken_by_another_user),
        (
            "unprivileged_stop_fails_at_once",
            unprivileged_stop_fails_at_once,
        ),
        (
            "failed_wait_ready_kills_the_tree",
            failed_wait_ready_kills_the_tree,
        ),
        ("fifo_pid_file_does_not_hang", fifo_pid_file_does_not_hang),
        ("bad_numbers_are_usage_errors", bad_numbers_are_usage_errors),
        ("numeric_user_needs_a_group", numeric_user_needs_a_group),
        (
            "closed_ready_fd_fails_at_once",
            closed_ready_fd_fails_at_once,
        ),
        ("blocked_output_is_named", blocked_output_is_named),
        ("randomized_adversaries", randomized_adversaries),
    ];
    tests.extend(common::when(
        common::SUPERVISE,
        vec![
            (
                "supervised_stop_reaches_the_program",
                supervised_stop_reaches_the_program,
            ),
            (
                "killed_supervisor_takes_its_program",
                killed_supervisor_takes_its_program,
            ),
            (
                "supervisor_stops_what_is_left",
                supervisor_stops_what_is_left,
            ),
            ("restarts_are_limited", restarts_are_limited),
        ],
    ));
    tests
}

// ---- programs daemonic runs (this binary, by DAEMONIC_TEST_HELPER) --------

fn helpers(name: &str, args: Vec<String>) {
    match name {
        "sleep" => std::thread::sleep(Duration::from_secs(120)),
        "ignore-term" => common::ignore_term_then_ready(&args[0]),
        "sentinel" => sentinel(&args[0]),
        "lock" => lock(&args[0], &args[1]),
        "random-run" => random_run(&args[0]),
        other => panic!("no helper {other}"),
    }
}

/// Blocks every signal it can and appends the number of each one it gets
/// to `log`: a process no test may signal. SIGKILL and SIGSTOP show in its
/// wait status instead.
fn sentinel(log: &str) {
    use std::io::Write;
    fs::write(log, "").unwrap();
    // SAFETY: the set is initialised before use; sigwait fills `signal`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        loop {
            let mut signal = 0;
            libc::sigwait(&set, &mut signal);
            let mut file = fs::OpenOptions::new().append(true).open(log).unwrap();
            writeln!(file, "{signal}").unwrap();
        }
    }
}

/// Opens `path` read-only, locks it (`-x` exclusive, `-s` shared) and
/// sleeps: another process holding a daemon's PID file.
fn lock(path: &str, how: &str) {
    use std::os::fd::AsRawFd;
    let file = fs::File::open(path).unwrap();
    let operation = if how == "-s" {
        libc::LOCK_SH
    } else {
        libc::LOCK_EX
    };
    // SAFETY: flock on our own open fd.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), operation) }, 0);
    std::thread::sleep(Duration::from_secs(120));
}

/// A process the tests must never signal.
struct Sentinel {
    process: Started,
    log: PathBuf,
}

impl Sentinel {
    fn new(dir: &TempDir, tag: &str) -> Sentinel {
        Sentinel::in_dir(dir.path(), tag)
    }

    fn in_dir(dir: &Path, tag: &str) -> Sentinel {
        let log = dir.join(format!("sentinel-{tag}"));
        // Reaped by PID when `Started` drops, like every daemon here.
        let pid = common::helper("sentinel", &[arg(&log)])
            .spawn()
            .unwrap()
            .id();
        let process = Started::new(pid as i32);
        common::wait_until("the sentinel is ready", || log.exists());
        Sentinel { process, log }
    }

    /// Fails if anything signalled it.
    fn assert_untouched(&self) {
        let log = fs::read_to_string(&self.log).unwrap();
        assert!(
            log.is_empty(),
            "sentinel {} got signals {log:?}",
            self.process.pid
        );
        assert_eq!(
            common::wait_pid(self.process.pid, Duration::ZERO),
            None,
            "sentinel {} ended",
            self.process.pid
        );
    }
}

// ---- running daemonic ----------------------------------------------------

fn daemonic(args: &[&str]) -> Output {
    run_daemonic(Command::new(env!("CARGO_BIN_EXE_daemonic")), args)
}

fn run_daemonic(mut command: Command, args: &[&str]) -> Output {
    command.args(args).stdin(Stdio::null());
    common::run(&mut command)
}

/// `daemonic OPTIONS -- PROGRAM` as helper `mode`, PROGRAM being this test
/// binary (or the copy at `program`, for another user to run).
fn daemonic_running(options: &[&str], program: &Path, mode: &str, args: &[&str]) -> Output {
    let env = format!("--env={}={mode}", common::HELPER_ENV);
    let mut all: Vec<&str> = options.to_vec();
    all.push(&env);
    all.push("--");
    all.push(arg(program));
    all.extend_from_slice(args);
    daemonic(&all)
}

fn this_binary() -> PathBuf {
    std::env::current_exe().unwrap()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn start(options: &[&str], pid_file: &Path, mode: &str) -> Started {
    let mut all = vec!["-p", arg(pid_file)];
    all.extend_from_slice(options);
    let output = daemonic_running(&all, &this_binary(), mode, &[]);
    assert!(output.status.success(), "start failed: {}", stderr(&output));
    Started::new(common::read_pid_file(pid_file))
}

fn assert_error(output: &Output, status: i32, text: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(status), "{err}");
    assert!(
        err.starts_with("daemonic: ") && err.lines().count() == 1,
        "{err:?}"
    );
    assert!(err.contains(text), "expected {text:?} in {err:?}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the case can run here; prints why not.
fn as_root(case: &str) -> bool {
    if !is_root() {
        println!("{case}: skipped: needs root (it uses the user nobody)");
    }
    is_root()
}

/// A directory every user can enter (for PID files nobody's processes must
/// reach), and copies of `daemonic` and of this test binary that `nobody`
/// can execute.
struct Public {
    dir: TempDir,
}

impl Public {
    fn new(tag: &str) -> Public {
        let dir = TempDir::new(tag);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        Public { dir }
    }

    fn program(&self) -> PathBuf {
        common::public_copy(&this_binary())
    }

    /// `daemonic ARGS` run as nobody.
    fn daemonic_as_nobody(&self, args: &[&str]) -> Output {
        let mut command = as_nobody();
        command.arg(common::public_copy(Path::new(env!(
            "CARGO_BIN_EXE_daemonic"
        ))));
        run_daemonic(command, args)
    }
}

/// A command prefix that runs what follows as nobody, with no groups.
fn as_nobody() -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
    command
}

/// The helper `lock` on `file` (`-x` or `-s`), run as `program` (with
/// `prefix`, as another user): started, and holding the lock once this
/// returns.
fn hold_lock(file: &Path, how: &str, program: &Path, prefix: Option<Command>) -> Started {
    let mut command = prefix.unwrap_or_else(|| Command::new("env"));
    command
        .arg(format!("{}=lock", common::HELPER_ENV))
        .arg(program)
        .args([arg(file), how])
        .stdin(Stdio::null());
    // Reaped by PID when `Started` drops.
    let holder = Started::new(command.spawn().unwrap().id() as i32);
    // setpriv and env execute the program: same PID. Held once a probe fails.
    common::wait_until("the lock is held", || {
        !Command::new("flock")
            .args(["-n", "-x", arg(file), "true"])
            .status()
            .unwrap()
            .success()
    });
    holder
}

/// Our child `pid` is gone: reaped now, or already reaped by someone else.
fn assert_gone(pid: i32) {
    let deadline = Instant::now() + common::PATIENCE;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes into our local.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if rc == pid || (rc < 0 && !Path::new(&format!("/proc/{pid}")).exists()) {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} still running");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---- what a PID file may name -------------------------------------------

fn pid_one_locked_by_another() {
    let dir = TempDir::new("pid1");
    let pid_file = dir.join("one.pid");
    fs::write(&pid_file, "1\n").unwrap();
    let mut holder = hold_lock(&pid_file, "-x", &this_binary(), None);
    let status = daemonic(&["--status", "-p", arg(&pid_file)]);
    assert_error(&status, 4, &format!("held by PID {}", holder.pid));
    assert!(stderr(&status).contains("not by PID 1 which it names"));
    let stop = daemonic(&["--stop", "-p", arg(&pid_file), "--timeout", "0.2"]);
    assert_error(&stop, 4, "not signalling anything");
    // The start does not claim PID 1 runs: it names the holder.
    let again = daemonic_running(&["-p", arg(&pid_file)], &this_binary(), "sleep", &[]);
    assert_error(
        &again,
        2,
        &format!("locked by PID {}, not by PID 1 which it names", holder.pid),
    );
    // The lock holder was not signalled either.
    assert_eq!(common::wait_pid(holder.pid, Duration::ZERO), None);
    assert_eq!(fs::read_to_string(&pid_file).unwrap(), "1\n");
    holder.stop(libc::SIGKILL);
}

fn reused_pid_is_never_signalled() {
    let dir = TempDir::new("reuse");
    let pid_file = dir.join("r.pid");
    let mut daemon = start(&[], &pid_file, "sleep");
    let sentinel = Sentinel::new(&dir, "reuse");
    // What a reused PID looks like to the checker: the locked file names a
    // live process that does not hold it.
    fs::write(&pid_file, format!("{}\n", sentinel.process.pid)).unwrap();
    let status = daemonic(&["--status", "-p", arg(&pid_file)]);
    assert_error(&status, 4, &format!("held by PID {} (", daemon.pid));
    assert!(
        stderr(&status).contains(&format!(
            "not by PID {} which it names",
            sentinel.process.pid
        )),
        "{}",
        stderr(&status)
    );
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_error(&stop, 4, "not signalling anything");
    sentinel.assert_untouched();
    // Named again, the daemon is proven and stopped.
    fs::write(&pid_file, format!("{}\n", daemon.pid)).unwrap();
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let status = daemon.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
    sentinel.assert_untouched();
}

/// The issue's case for real: in a PID namespace, a program backgrounds a
/// child (which keeps the lock) and exits; its PID is then reused by an
/// unrelated process (`ns_last_pid` picks the number). Neither `--status`
/// nor `--stop` may take that process for the daemon. When the script, PID 1
/// of the namespace, ends, the kernel kills everything left in it.
fn pid_reused_in_a_namespace() {
    if !as_root("pid_reused_in_a_namespace") {
        return;
    }
    let dir = TempDir::new("pidns");
    let script = r#"
        D=$1; F=$2
        "$D" -p "$F" -- /bin/sh -c 'sleep 1000 & exit 0' || exit 10
        N=$(cat "$F")
        for i in $(seq 500); do
            [ -e /proc/$N ] && [ "$(cut -d' ' -f3 /proc/$N/stat)" != Z ] || break
            sleep 0.01
        done
        echo $((N - 1)) > /proc/sys/kernel/ns_last_pid || exit 11
        sleep 1000 & S=$!
        echo "named=$N reused_by=$S"
        [ "$S" = "$N" ] || exit 12
        "$D" --status -p "$F"; echo "status=$?"
        "$D" --stop -p "$F" --timeout 1; echo "stop=$?"
        kill -0 "$S" && echo "reused alive"
        exit 0
    "#;
    let mut command = Command::new("unshare");
    command
        .args(["--fork", "--pid", "--mount-proc", "sh", "-c", script, "sh"])
        .arg(env!("CARGO_BIN_EXE_daemonic"))
        .arg(dir.join("ns.pid"))
        .stdin(Stdio::null());
    let output = common::run(&mut command);
    let text = stdout(&output);
    if output.status.code() == Some(11) {
        println!("pid_reused_in_a_namespace: skipped: ns_last_pid cannot be written here");
        return;
    }
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    let named = common::field(&text, "named").unwrap();
    assert_eq!(common::field(&text, "reused_by"), Some(named), "{text}");
    assert!(
        text.contains("status=4") && text.contains("stop=4"),
        "{text}"
    );
    assert!(text.contains("reused alive"), "{text}");
    assert!(
        stderr(&output).contains(&format!("not by PID {named} which it names")),
        "{}",
        stderr(&output)
    );
}

/// Without `/proc` (a board, a chroot) nothing proves the PID: `--status`
/// and `--stop` say so and refuse, until `--trust-pidfile` accepts the
/// file's word; then the signal still goes through a pidfd.
fn without_proc_nothing_is_proven() {
    if !as_root("without_proc_nothing_is_proven") {
        return;
    }
    let dir = TempDir::new("noproc");
    let pid_file = dir.join("n.pid");
    let mut daemon = start(&[], &pid_file, "sleep");
    let script = r#"
        D=$1; F=$2
        umount -l /proc || exit 11
        "$D" --status -p "$F"; echo "status=$?"
        "$D" --stop -p "$F"; echo "stop=$?"
        "$D" --status --trust-pidfile -p "$F"; echo "trusted_status=$?"
        "$D" --stop --trust-pidfile -p "$F"; echo "trusted_stop=$?"
    "#;
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(env!("CARGO_BIN_EXE_daemonic"))
        .arg(&pid_file)
        .stdin(Stdio::null());
    let output = common::run(&mut command);
    let text = stdout(&output);
    if output.status.code() == Some(11) {
        println!("without_proc_nothing_is_proven: skipped: /proc cannot be unmounted here");
        return;
    }
    for expected in ["status=4", "stop=4", "trusted_status=0", "trusted_stop=0"] {
        assert!(
            text.contains(expected),
            "{expected}: {text}{}",
            stderr(&output)
        );
    }
    assert!(
        stderr(&output).contains("nothing proves it is the daemon"),
        "{}",
        stderr(&output)
    );
    let status = daemon.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
}

/// A probe such as `daemonic --status` holds a free PID file's lock for a
/// moment while it looks; a start at that instant must still start. The
/// probe here does what `--status` does (lock, look, unlock), in a loop.
/// Tells a helper thread to stop however the test ends, a failed
/// assertion included (else the scope would wait for it for ever).
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn probes_do_not_fail_a_start() {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = TempDir::new("probes");
    let pid_file = dir.join("p.pid");
    fs::write(&pid_file, "").unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if let Ok(file) = fs::File::open(&pid_file) {
                    // SAFETY: flock on our own open fd.
                    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                    // The file closes here, and the lock with it.
                }
            }
        });
        let _stop = StopOnDrop(&done);
        for round in 0..30 {
            let output = daemonic_running(&["-p", arg(&pid_file)], &this_binary(), "sleep", &[]);
            assert!(
                output.status.success(),
                "round {round}: {}",
                stderr(&output)
            );
            let mut daemon = Started::new(common::read_pid_file(&pid_file));
            daemon.stop(libc::SIGKILL);
        }
    });
    // A probe that holds the lock for 150 ms, as one descheduled on a busy
    // machine does: longer than a start's first tries, not a daemon.
    let file = fs::File::open(&pid_file).unwrap();
    // SAFETY: flock on our own open fd.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    let held = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(file);
        });
        let output = daemonic_running(&["-p", arg(&pid_file)], &this_binary(), "sleep", &[]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(held.elapsed() >= Duration::from_millis(150));
        Started::new(common::read_pid_file(&pid_file)).stop(libc::SIGKILL);
    });
}

fn root_refuses_files_others_control() {
    if !as_root("root_refuses_files_others_control") {
        return;
    }
    let dir = TempDir::new("trust");
    let nobody_uid = uid_of("nobody");
    let owned = dir.join("owned.pid");
    fs::write(&owned, "").unwrap();
    std::os::unix::fs::chown(&owned, Some(nobody_uid), None).unwrap();
    let group_writable = dir.join("group.pid");
    fs::write(&group_writable, "").unwrap();
    fs::set_permissions(&group_writable, fs::Permissions::from_mode(0o664)).unwrap();
    let open_dir = dir.join("open");
    fs::create_dir(&open_dir).unwrap();
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let in_open_dir = open_dir.join("x.pid");
    // A file root made there: others could still replace it.
    fs::write(&in_open_dir, "").unwrap();
    let cases = [
        (
            &owned,
            format!("another user owns (owner uid {nobody_uid}, mode 0644)"),
        ),
        (
            &group_writable,
            String::from("its group or others can write (owner uid 0, mode 0664)"),
        ),
        (
            &in_open_dir,
            String::from("without the sticky bit (owner uid 0, mode 0777)"),
        ),
    ];
    for (path, text) in &cases {
        let started = daemonic_running(&["-p", arg(path)], &this_binary(), "sleep", &[]);
        assert_error(&started, 1, "refusing the PID file: root does not use");
        assert!(
            stderr(&started).contains(text.as_str()),
            "{}",
            stderr(&started)
        );
        let status = daemonic(&["--status", "-p", arg(path)]);
        assert_error(&status, 4, text);
        let stop = daemonic(&["--stop", "-p", arg(path)]);
        assert_error(&stop, 4, text);
    }
    assert_eq!(
        fs::read(&in_open_dir).unwrap(),
        b"",
        "a refused start wrote"
    );
    assert!(!open_dir.join("y.pid").exists());
    let refused = daemonic_running(
        &["-p", arg(&open_dir.join("y.pid"))],
        &this_binary(),
        "sleep",
        &[],
    );
    assert_error(&refused, 1, "without the sticky bit");
    assert!(
        !open_dir.join("y.pid").exists(),
        "a refused start left a PID file"
    );
    // The sticky bit makes a shared directory fine (/tmp, /run/lock).
    fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let mut daemon = start(&[], &in_open_dir, "sleep");
    assert_eq!(
        daemonic(&["--stop", "-p", arg(&in_open_dir)]).status.code(),
        Some(0)
    );
    daemon.wait();
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn dropped_daemon_cannot_rewrite() {
    if !as_root("dropped_daemon_cannot_rewrite") {
        return;
    }
    let public = Public::new("dropped");
    let pid_file = public.dir.join("d.pid");
    let output = daemonic_running(
        &["-p", arg(&pid_file), "-u", "nobody"],
        &public.program(),
        "sleep",
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert_eq!(
        common::status(daemon.pid, "Uid").split_whitespace().next(),
        Some("65534")
    );
    // Every fd of the daemon on its PID file is read-only.
    let mut on_pid_file = 0;
    for fd in common::open_fds(daemon.pid) {
        if common::fd_target(daemon.pid, fd) == pid_file {
            on_pid_file += 1;
            let info = fs::read_to_string(format!("/proc/{}/fdinfo/{fd}", daemon.pid)).unwrap();
            let info = info.replace(":\t", "=");
            let flags = common::field(&info, "flags").unwrap();
            let flags = u32::from_str_radix(flags, 8).unwrap();
            assert_eq!(
                flags & libc::O_ACCMODE as u32,
                libc::O_RDONLY as u32,
                "fd {fd}"
            );
            // And nobody cannot reopen it for writing through /proc either.
            let write = as_nobody()
                .args([
                    "sh",
                    "-c",
                    &format!("echo 1 > /proc/{}/fd/{fd}", daemon.pid),
                ])
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(!write.success(), "nobody rewrote the PID file");
        }
    }
    assert_eq!(on_pid_file, 1, "the daemon holds its PID file once");
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    daemon.wait();
    assert!(!pid_file.exists());
}

fn lock_taken_by_another_user() {
    if !as_root("lock_taken_by_another_user") {
        return;
    }
    let public = Public::new("otherlock");
    let pid_file = public.dir.join("l.pid");
    let sentinel = Sentinel::new(&public.dir, "otherlock");
    for how in ["-x", "-s"] {
        // Root's file (0644), naming a process; nobody opens it read-only
        // and locks it.
        fs::write(&pid_file, format!("{}\n", sentinel.process.pid)).unwrap();
        let mut nobody_env = as_nobody();
        nobody_env.arg("env");
        let mut holder = hold_lock(&pid_file, how, &public.program(), Some(nobody_env));
        let again = daemonic_running(&["-p", arg(&pid_file)], &this_binary(), "sleep", &[]);
        assert_error(
            &again,
            2,
            &format!(
                "locked by PID {}, not by PID {} which it names",
                holder.pid, sentinel.process.pid
            ),
        );
        assert_error(
            &daemonic(&["--status", "-p", arg(&pid_file)]),
            4,
            &format!("held by PID {} (", holder.pid),
        );
        assert_error(
            &daemonic(&["--stop", "-p", arg(&pid_file)]),
            4,
            "not signalling anything",
        );
        sentinel.assert_untouched();
        assert_eq!(common::wait_pid(holder.pid, Duration::ZERO), None);
        holder.stop(libc::SIGKILL);
    }
}

fn unprivileged_stop_fails_at_once() {
    if !as_root("unprivileged_stop_fails_at_once") {
        return;
    }
    let public = Public::new("eperm");
    let pid_file = public.dir.join("e.pid");
    let mut daemon = start(&[], &pid_file, "sleep");
    let began = Instant::now();
    let stop = public.daemonic_as_nobody(&["--stop", "-p", arg(&pid_file)]);
    assert_error(
        &stop,
        4,
        &format!(
            "cannot signal PID {}: {}",
            daemon.pid,
            // The command puts OS errors in the C library's words, with or
            // without std.
            std::io::Error::from_raw_os_error(libc::EPERM)
        ),
    );
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(
        common::wait_pid(daemon.pid, Duration::ZERO),
        None,
        "the daemon ended"
    );
    // nobody cannot look into root's daemon: --status says so.
    let status = public.daemonic_as_nobody(&["--status", "-p", arg(&pid_file)]);
    assert_error(&status, 4, "nothing proves it is the daemon");
    let trusted = public.daemonic_as_nobody(&["--status", "--trust-pidfile", "-p", arg(&pid_file)]);
    assert_eq!(trusted.status.code(), Some(0));
    assert!(stdout(&trusted).contains("not verified"));
    daemon.stop(libc::SIGTERM);
}

// ---- the supervisor owns its tree ------------------------------------------

/// A supervisor running helper `mode` with `args`: it, its program's PID,
/// and the paths of its PID file and of the program's.
fn supervised(
    dir: &TempDir,
    options: &[&str],
    mode: &str,
    args: &[&str],
) -> (Started, i32, PathBuf, PathBuf) {
    let (pid_file, child_pid_file) = (dir.join("s.pid"), dir.join("c.pid"));
    let mut all = vec![
        "-p",
        arg(&pid_file),
        "--supervise",
        "--child-pidfile",
        arg(&child_pid_file),
    ];
    all.extend_from_slice(options);
    let output = daemonic_running(&all, &this_binary(), mode, args);
    assert!(output.status.success(), "start failed: {}", stderr(&output));
    let supervisor = Started::new(common::read_pid_file(&pid_file));
    common::wait_until("the child PID file", || child_pid_file.exists());
    let program = common::read_pid_file(&child_pid_file);
    (supervisor, program, pid_file, child_pid_file)
}

fn supervised_stop_reaches_the_program() {
    let dir = TempDir::new("supstop");
    // Started once it ignores SIGTERM, so only SIGKILL can stop it.
    let (mut supervisor, program, pid_file, child_pid_file) =
        supervised(&dir, &["--ready-fd", "5"], "ignore-term", &["5"]);
    let began = Instant::now();
    let stop = daemonic(&["--stop", "-p", arg(&pid_file), "--timeout", "1"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert!(
        stderr(&stop).contains("sending SIGKILL"),
        "{}",
        stderr(&stop)
    );
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    // The supervisor saw its program killed and cleaned up after it.
    assert_eq!(supervisor.wait(), 0);
    assert_gone(program);
    assert!(
        !pid_file.exists() && !child_pid_file.exists(),
        "PID files left"
    );
}

fn killed_supervisor_takes_its_program() {
    let dir = TempDir::new("pdeath");
    let (mut supervisor, program, pid_file, _) = supervised(&dir, &[], "sleep", &[]);
    assert_eq!(supervisor.stop(libc::SIGKILL) & 0x7f, libc::SIGKILL);
    // Re-parented to us (the test is a subreaper), killed by its
    // parent-death signal.
    let status = common::wait_pid(program, common::PATIENCE).expect("the program still runs");
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    // The lock went with the supervisor: the file is stale, not held.
    assert_eq!(
        daemonic(&["--status", "-p", arg(&pid_file)]).status.code(),
        Some(1)
    );
}

fn supervisor_stops_what_is_left() {
    let dir = TempDir::new("leftover");
    let pid_file = dir.join("s.pid");
    // One child in the program's group, one that left it (setsid).
    let (in_group, own_session) = (dir.join("in-group"), dir.join("own-session"));
    let script = format!(
        "sleep 300 & echo $! > {}; setsid sleep 301 & echo $! > {}; sleep 0.2",
        arg(&in_group),
        arg(&own_session)
    );
    let output = daemonic(&[
        "-p",
        arg(&pid_file),
        "--supervise",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut supervisor = Started::new(common::read_pid_file(&pid_file));
    // The shell ends; the supervisor stops what it left, then itself.
    assert_eq!(supervisor.wait(), 0);
    for file in [&in_group, &own_session] {
        let pid: i32 = fs::read_to_string(file).unwrap().trim().parse().unwrap();
        assert_gone(pid);
    }
    assert!(!pid_file.exists());
}

fn failed_wait_ready_kills_the_tree() {
    for &supervise in common::with_and_without_supervisor() {
        let dir = TempDir::new("readytree");
        let pid_file = dir.join("w.pid");
        let forked = dir.join("forked");
        let script = format!("sleep 300 & echo $! > {}; exec sleep 301", arg(&forked));
        let mut args = vec!["-p", arg(&pid_file), "--wait-ready=0.5"];
        if supervise {
            args.push("--supervise");
        }
        args.extend(["--", "/bin/sh", "-c", &script]);
        let output = daemonic(&args);
        assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
        let pid: i32 = fs::read_to_string(&forked).unwrap().trim().parse().unwrap();
        assert_gone(pid);
        assert!(!pid_file.exists(), "PID file left");
        // Nothing holds the lock any more.
        let free = Command::new("flock")
            .args(["-n", arg(&dir.join("w.pid")), "true"])
            .status()
            .unwrap();
        assert!(free.success());
    }
}

// ---- no wait without a reason; bad numbers ---------------------------------

fn fifo_pid_file_does_not_hang() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("f.pid");
    common::mkfifo(&fifo);
    // common::run fails the test past its patience: a hang cannot pass.
    assert_error(
        &daemonic(&["--status", "-p", arg(&fifo)]),
        4,
        "not a regular file",
    );
    assert_error(
        &daemonic(&["--stop", "-p", arg(&fifo)]),
        4,
        "not a regular file",
    );
    let start = daemonic_running(&["-p", arg(&fifo)], &this_binary(), "sleep", &[]);
    assert_error(&start, 1, "not a regular file");
}

fn bad_numbers_are_usage_errors() {
    for (args, text) in [
        (vec!["--keep-fd", "2147483647"], "fd 2147483647 is not open"),
        (vec!["--keep-fd", "77"], "fd 77 is not open"),
        (vec!["--keep-fd", "99999"], "fd 99999 is not open"),
        (vec!["--keep-fd", "-1"], "expected a whole number from 3 up"),
        (vec!["--ready-fd", "2147483647"], "beyond the fd limit"),
        (vec!["--wait-ready=1e300"], "expected seconds from 0"),
        (
            vec!["--supervise", "--restart=1e300"],
            "expected seconds from 0",
        ),
        (vec!["--supervise", "--restart=0"], "at least 0.1 s"),
        (
            vec!["--supervise", "--timeout", "inf"],
            "expected seconds from 0",
        ),
    ]
    .into_iter()
    .filter(|(args, _)| common::takes(args))
    {
        let mut all = args.clone();
        all.extend(["--", "/bin/sleep", "1"]);
        assert_error(&daemonic(&all), 1, text);
    }
    assert_error(
        &daemonic(&["--stop", "-p", "x", "--timeout", "1e300"]),
        1,
        "expected seconds from 0",
    );
    // An fd that is open is kept (and only then).
    let dir = TempDir::new("keepfd");
    let pid_file = dir.join("k.pid");
    let kept = fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let fd = kept.as_raw_fd();
    // SAFETY: clearing close-on-exec on our own open fd, so daemonic inherits it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    let mut daemon = start(&["--keep-fd", &fd.to_string()], &pid_file, "sleep");
    assert!(common::open_fds(daemon.pid).contains(&fd));
    daemon.stop(libc::SIGKILL);
}

fn numeric_user_needs_a_group() {
    assert_error(
        &daemonic(&["-u", "99999", "--", "/bin/sleep", "1"]),
        1,
        "user 99999 has no passwd entry: name its group with -g",
    );
    if !as_root("numeric_user_needs_a_group (with -g)") {
        return;
    }
    let public = Public::new("numeric");
    let pid_file = public.dir.join("n.pid");
    let output = daemonic_running(
        &["-p", arg(&pid_file), "-u", "99999", "-g", "99998"],
        &public.program(),
        "sleep",
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    let ids = |key| common::status(daemon.pid, key);
    assert!(ids("Uid").split_whitespace().all(|id| id == "99999"));
    assert!(ids("Gid").split_whitespace().all(|id| id == "99998"));
    assert_eq!(ids("Groups"), "99998");
    daemon.stop(libc::SIGKILL);
}

fn restarts_are_limited() {
    let dir = TempDir::new("startlimit");
    let (pid_file, runs) = (dir.join("s.pid"), dir.join("runs"));
    let script = format!("echo run >> {}; exit 3", arg(&runs));
    let output = daemonic(&[
        "-p",
        arg(&pid_file),
        "--supervise",
        "--restart=0.1",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut supervisor = Started::new(common::read_pid_file(&pid_file));
    // 0.1 + 0.2 + 0.4 + 0.8 s of delays: the fifth start is within 10 s of
    // the first, and the supervisor gives up with the program's status.
    let status = supervisor.wait();
    assert_eq!(libc::WEXITSTATUS(status), 3);
    assert_eq!(fs::read_to_string(&runs).unwrap().lines().count(), 5);
    assert!(!pid_file.exists());
}

fn closed_ready_fd_fails_at_once() {
    for &supervise in common::with_and_without_supervisor() {
        let dir = TempDir::new("readyclosed");
        let pid_file = dir.join("r.pid");
        let mut args = vec!["-p", arg(&pid_file), "--ready-fd", "5", "--wait-ready=30"];
        if supervise {
            args.push("--supervise");
        }
        args.extend(["--", "/bin/sh", "-c", "exec 5>&-; exec sleep 300"]);
        let began = Instant::now();
        let output = daemonic(&args);
        assert_error(
            &output,
            3,
            "the program closed its readiness fd without reporting ready",
        );
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
        assert!(!pid_file.exists());
    }
}

fn blocked_output_is_named() {
    let dir = TempDir::new("blocked");
    let pid_file = dir.join("b.pid");
    let fifo = dir.join("out.fifo");
    common::mkfifo(&fifo);
    let output = daemonic(&[
        "-p",
        arg(&pid_file),
        "--output",
        arg(&fifo),
        "--wait-ready=0.5",
        "--",
        "/bin/sleep",
        "300",
    ]);
    assert_error(
        &output,
        4,
        &format!("still opening the output file {}", fifo.display()),
    );
    assert!(!pid_file.exists());
}

// ---- a randomized run ------------------------------------------------------

/// A small xorshift generator: repeatable from its printed seed.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Starts, checks, stops and restarts daemons on one PID file 1,000 times
/// while another thread holds its lock, rewrites it to name sentinels,
/// replaces it and deletes it. No sentinel may get a signal; afterwards
/// every daemon started is found (by the token in its arguments) and
/// stopped by PID, and none is left. It runs in a helper process that is a
/// subreaper of its own, so that reaping what it started never takes a
/// process another test waits for.
fn randomized_adversaries() {
    let dir = TempDir::new("random");
    let mut command = common::helper("random-run", &[arg(dir.path())]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let pid = child.id() as i32;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    let output = match receiver.recv_timeout(Duration::from_secs(300)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            common::kill(pid, libc::SIGKILL);
            panic!("the randomized run took more than 300 s");
        }
    };
    print!("{}", stdout(&output));
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
}

/// The randomized run itself, in the helper process.
fn random_run(dir: &str) {
    common::become_subreaper();
    let iterations: usize = std::env::var("DAEMONIC_RANDOM_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = Path::new(dir);
    let pid_file = dir.join("r.pid");
    let token = format!("daemonic-random-{}", std::process::id());
    let sentinels: Vec<Sentinel> = (0..3)
        .map(|i| Sentinel::in_dir(dir, &i.to_string()))
        .collect();
    let sentinel_pids: Vec<i32> = sentinels.iter().map(|s| s.process.pid).collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("randomized_adversaries: seed {seed}, {iterations} iterations");
    let began = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    std::thread::scope(|scope| {
        scope.spawn(|| adversary(&pid_file, &sentinel_pids, seed, &done));
        let _stop = StopOnDrop(&done);
        let mut random = Random(seed.rotate_left(17) | 1);
        for _ in 0..iterations {
            let (what, output) = match random.below(4) {
                0 => (
                    "start",
                    daemonic_running(&["-p", arg(&pid_file)], &this_binary(), "sleep", &[&token]),
                ),
                1 => ("status", daemonic(&["--status", "-p", arg(&pid_file)])),
                2 => (
                    "stop",
                    daemonic(&["--stop", "-p", arg(&pid_file), "--timeout", "2"]),
                ),
                _ => {
                    daemonic(&["--stop", "-p", arg(&pid_file), "--timeout", "2"]);
                    (
                        "restart",
                        daemonic_running(
                            &["-p", arg(&pid_file), "--supervise"]
                                [..2 + usize::from(common::SUPERVISE)],
                            &this_binary(),
                            "sleep",
                            &[&token],
                        ),
                    )
                }
            };
            let code = output.status.code().unwrap_or(-1);
            *outcomes.entry(format!("{what}={code}")).or_default() += 1;
            // Every outcome is one of the documented statuses.
            assert!(
                [0, 1, 2, 3, 4].contains(&code),
                "{what}: {code} {}",
                stderr(&output)
            );
            reap_children_except(&sentinel_pids);
        }
    });
    println!(
        "randomized_adversaries: {:.1} s, outcomes {outcomes:?}",
        began.elapsed().as_secs_f64()
    );
    for sentinel in &sentinels {
        sentinel.assert_untouched();
    }
    // Clean up what is still running: by the token, then by PID.
    let mut left = processes_with(&token);
    for &pid in &left {
        common::kill(pid, libc::SIGKILL);
    }
    let deadline = Instant::now() + common::PATIENCE;
    while !left.is_empty() {
        reap_children_except(&sentinel_pids);
        left = processes_with(&token);
        assert!(Instant::now() < deadline, "left running: {left:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    for sentinel in sentinels {
        sentinel.assert_untouched();
        let mut process = sentinel.process;
        process.stop(libc::SIGKILL);
    }
}

/// The adversary: until `done`, at random, holds the file's lock for a
/// moment, rewrites it to name a sentinel, replaces it by a new file that
/// names one, or deletes it.
fn adversary(pid_file: &Path, sentinels: &[i32], seed: u64, done: &std::sync::atomic::AtomicBool) {
    use std::os::fd::AsRawFd;
    let mut random = Random(seed);
    let replacement = pid_file.with_extension("new");
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let victim = sentinels[random.below(sentinels.len() as u64) as usize];
        match random.below(4) {
            0 => {
                if let Ok(file) = fs::File::open(pid_file) {
                    // SAFETY: flock on our own open fd.
                    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                    std::thread::sleep(Duration::from_millis(random.below(5)));
                }
            }
            1 => {
                if pid_file.exists() {
                    let _ = fs::write(pid_file, format!("{victim}\n"));
                }
            }
            2 => {
                let _ = fs::write(&replacement, format!("{victim}\n"));
                let _ = fs::rename(&replacement, pid_file);
            }
            _ => {
                let _ = fs::remove_file(pid_file);
            }
        }
        std::thread::sleep(Duration::from_millis(random.below(3)));
    }
}

/// Reaps every child of ours that has ended, but never a sentinel.
fn reap_children_except(keep: &[i32]) {
    loop {
        let mut status = 0;
        // SAFETY: waitid with WNOWAIT only looks; waitpid reaps that one.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            let pid = info.si_pid();
            if rc != 0 || pid == 0 {
                return;
            }
            assert!(!keep.contains(&pid), "sentinel {pid} ended");
            libc::waitpid(pid, &mut status, 0);
        }
    }
}

/// Processes whose command line holds `token`.
fn processes_with(token: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            if !zombie && String::from_utf8_lossy(&cmdline).contains(token) {
                found.push(pid);
            }
        }
    }
    found
}
