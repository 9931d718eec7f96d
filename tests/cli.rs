//! The `daemonic` command, run as users and init scripts run it: exit
//! statuses, messages, the files it leaves (or not), and the tools people
//! already use on its PID files.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Started, TempDir, assert_one_line_error, stderr, stdout};

fn main() {
    common::main(helpers, tests());
}

fn tests() -> Vec<common::Test> {
    let mut tests: Vec<common::Test> = vec![
        ("start_status_stop", start_status_stop),
        ("status_statuses", status_statuses),
        ("bad_input_starts_nothing", bad_input_starts_nothing),
        ("stop_escalates_to_sigkill", stop_escalates_to_sigkill),
        ("interop_start_stop_daemon", interop_start_stop_daemon),
        ("interop_pkill_flock_kill", interop_pkill_flock_kill),
        (
            "wait_ready_through_notify_socket",
            wait_ready_through_notify_socket,
        ),
        ("wait_ready_through_fd", wait_ready_through_fd),
        ("not_ready_in_time", not_ready_in_time),
        (
            "foreground_under_a_notify_listener",
            foreground_under_a_notify_listener,
        ),
        ("foreground_keeps_the_streams", foreground_keeps_the_streams),
        ("help_and_version", help_and_version),
        (
            "paths_and_arguments_that_are_not_utf8",
            paths_and_arguments_that_are_not_utf8,
        ),
        (
            "daemonic_without_a_mode_refuses_it",
            daemonic_without_a_mode_refuses_it,
        ),
    ];
    tests.extend(common::when(
        common::SUPERVISE,
        vec![
            ("supervisor_forwards_signals", supervisor_forwards_signals),
            (
                "supervisor_restarts_until_stopped",
                supervisor_restarts_until_stopped,
            ),
            (
                "relative_paths_from_a_working_directory",
                relative_paths_from_a_working_directory,
            ),
        ],
    ));
    tests.extend(common::when(
        common::LOGS,
        vec![
            ("output_rotates_by_size", output_rotates_by_size),
            ("output_reopens_on_hangup", output_reopens_on_hangup),
            (
                "output_kept_whole_across_exit",
                output_kept_whole_across_exit,
            ),
            (
                "syslog_lines_as_a_listener_sees_them",
                syslog_lines_as_a_listener_sees_them,
            ),
            (
                "syslog_counts_lines_lost_while_missing",
                syslog_counts_lines_lost_while_missing,
            ),
        ],
    ));
    tests.extend(common::when(
        common::PID1,
        vec![
            (
                "supervisor_reports_to_notify_socket",
                supervisor_reports_to_notify_socket,
            ),
            (
                "pid1_passes_the_status_through",
                pid1_passes_the_status_through,
            ),
            (
                "pid1_reaps_a_thousand_orphans",
                pid1_reaps_a_thousand_orphans,
            ),
            (
                "pid1_forwards_signals_and_stops_the_tree",
                pid1_forwards_signals_and_stops_the_tree,
            ),
        ],
    ));
    tests
}

// ---- programs daemonic runs (this binary, by DAEMONIC_TEST_HELPER) --------

fn helpers(name: &str, args: Vec<String>) {
    let arg = |i: usize| args[i].clone();
    let millis = |i: usize| Duration::from_millis(args[i].parse().unwrap());
    match name {
        "ready" => {
            std::thread::sleep(millis(1));
            fs::write(arg(0), "ready").unwrap();
            let socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
            socket
                .send_to(b"READY=1", std::env::var("NOTIFY_SOCKET").unwrap())
                .unwrap();
            std::thread::sleep(Duration::from_secs(60));
        }
        "ready-fd" => {
            std::thread::sleep(millis(2));
            fs::write(arg(1), "ready").unwrap();
            let fd: i32 = arg(0).parse().unwrap();
            // SAFETY: writes one byte to the inherited fd.
            unsafe { libc::write(fd, b"\n".as_ptr().cast(), 1) };
            std::thread::sleep(Duration::from_secs(60));
        }
        "signals" => record_signals(&arg(0)),
        "ignore-term" => common::ignore_term_then_ready(&arg(0)),
        "run" => {
            use std::io::Write;
            let mut log = fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(arg(0))
                .unwrap();
            // The parent too: the supervisor, for a test whose supervisor
            // may be gone (with its PID file) before the start returns.
            let parent = std::os::unix::process::parent_id();
            writeln!(log, "run {} {parent}", std::process::id()).unwrap();
            std::thread::sleep(millis(2));
            std::process::exit(arg(1).parse().unwrap());
        }
        "sleep" => std::thread::sleep(Duration::from_secs(60)),
        other => panic!("no helper {other}"),
    }
}

/// Appends the name of each HUP, USR1 and USR2 received to `log`; ends on TERM.
fn record_signals(log: &str) {
    use std::io::Write;
    // SAFETY: the set is initialised before use; sigwait fills `signal`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, libc::SIGTERM] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        fs::write(log, "").unwrap();
        loop {
            let mut signal = 0;
            libc::sigwait(&set, &mut signal);
            let name = match signal {
                libc::SIGHUP => "HUP",
                libc::SIGUSR1 => "USR1",
                libc::SIGUSR2 => "USR2",
                _ => std::process::exit(0),
            };
            let mut file = fs::OpenOptions::new().append(true).open(log).unwrap();
            writeln!(file, "{name}").unwrap();
        }
    }
}

// ---- running daemonic ----------------------------------------------------

fn daemonic(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_daemonic"));
    command.args(args).stdin(std::process::Stdio::null());
    common::run(&mut command)
}

/// `daemonic OPTIONS -- THIS_TEST_BINARY` as helper `mode` with `args`.
fn daemonic_running(options: &[&str], mode: &str, args: &[&str]) -> Output {
    let exe = std::env::current_exe().unwrap();
    let env = format!("--env={}={mode}", common::HELPER_ENV);
    let mut all: Vec<&str> = options.to_vec();
    all.push(&env);
    all.push("--");
    all.push(exe.to_str().unwrap());
    all.extend_from_slice(args);
    daemonic(&all)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn exe_of(pid: i32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/exe")).unwrap()
}

// ---- start, status, stop -------------------------------------------------

fn start_status_stop() {
    let dir = TempDir::new("cli");
    let pid_file = dir.join("s.pid");
    let output = daemonic(&["-p", arg(&pid_file), "--", "/bin/sleep", "60"]);
    assert!(output.status.success(), "{output:?}");
    // What systemd's Type=forking with PIDFile= relies on: when the start
    // command exits, the PID file names the running main process, which is
    // not the command's child and has a session of its own.
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert!(exe_of(daemon.pid).ends_with("sleep"));
    let stat = common::stat(daemon.pid);
    assert_eq!(stat.ppid, std::process::id() as i32);
    assert_ne!(stat.session, daemon.pid);
    assert_eq!(stat.tty_nr, 0);

    let status = daemonic(&["--status", "-p", arg(&pid_file)]);
    assert_eq!(status.status.code(), Some(0));
    assert_eq!(
        stdout(&status),
        format!("daemonic: running as PID {}\n", daemon.pid)
    );

    let again = daemonic(&["-p", arg(&pid_file), "--", "/bin/sleep", "60"]);
    assert_one_line_error(&again, 2, &format!("already running as PID {}", daemon.pid));

    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{stop:?}");
    let status = daemon.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
    // sleep did not know its PID file: --stop removed it.
    assert!(!pid_file.exists());
    assert_eq!(
        daemonic(&["--status", "-p", arg(&pid_file)]).status.code(),
        Some(3)
    );
    assert_one_line_error(
        &daemonic(&["--stop", "-p", arg(&pid_file)]),
        1,
        "not running",
    );
}

fn status_statuses() {
    let dir = TempDir::new("status");
    let stale = dir.join("stale.pid");
    fs::write(&stale, "4194000\n").unwrap();
    let output = daemonic(&["--status", "-p", arg(&stale)]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stdout(&output).contains("not running, but"));
    // A path under a file cannot be read: unknown.
    let unknown = stale.join("x.pid");
    assert_eq!(
        daemonic(&["--status", "-p", arg(&unknown)]).status.code(),
        Some(4)
    );
    assert_eq!(
        daemonic(&["--status", "-p", arg(&dir.join("none.pid"))])
            .status
            .code(),
        Some(3)
    );
}

fn bad_input_starts_nothing() {
    let dir = TempDir::new("bad");
    let pid_file = dir.join("b.pid");
    let token = format!("daemonic-bad-{}", std::process::id());
    let not_executable = dir.join("plain");
    fs::write(&not_executable, "").unwrap();
    let held = dir.join("held.pid");
    let mut holder = started_by(&daemonic_running(&["-p", arg(&held)], "sleep", &[]), &held);
    let p = arg(&pid_file);
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec![
                "--bogus", "-p", p, "--", "/bin/sh", "-c", "sleep 60", &token,
            ],
            1,
            "invalid option '--bogus'".into(),
        ),
        (
            vec!["-p", p, "/bin/sh", "-c", "sleep 60", &token],
            1,
            "put the program after --".into(),
        ),
        (
            vec!["-p", p, "-m", "888", "--", "/bin/sh", &token],
            1,
            "expected an octal mask".into(),
        ),
        (
            vec!["-p", p, "-u", "no-such-user", "--", "/bin/sh", &token],
            1,
            "unknown user 'no-such-user'".into(),
        ),
        (
            vec!["-p", p, "-g", "no-such-group", "--", "/bin/sh", &token],
            1,
            "unknown group 'no-such-group'".into(),
        ),
        (vec!["-p", p, "--"], 1, "missing program after --".into()),
        (
            vec!["-p", p, "--", "/no/such/program", &token],
            3,
            "failed to execute /no/such/program (execve): No such file or directory".into(),
        ),
        (
            vec!["-p", p, "--", "no-such-program-in-path", &token],
            3,
            "no program 'no-such-program-in-path' in PATH".into(),
        ),
        (
            vec![
                "-p",
                p,
                "--supervise",
                "--",
                "no-such-program-in-path",
                &token,
            ],
            3,
            "no program 'no-such-program-in-path' in PATH".into(),
        ),
        (
            vec!["-p", p, "--", arg(&not_executable), &token],
            3,
            format!(
                "failed to execute {} (execve): Permission denied",
                not_executable.display()
            ),
        ),
        (
            vec!["-p", arg(&held), "--", "/bin/sh", &token],
            2,
            format!("already running as PID {}", holder.pid),
        ),
        (
            vec!["-p", p, "-C", "/no/such/dir", "--", "/bin/sh", &token],
            3,
            "failed to change directory (chdir) to /no/such/dir: No such file or directory".into(),
        ),
        (
            vec!["-p", "/no/such/dir/x.pid", "--", "/bin/sh", &token],
            3,
            "failed to write the PID file /no/such/dir/x.pid: No such file or directory".into(),
        ),
        (
            vec![
                "-p",
                p,
                "--output",
                "/no/such/dir/log",
                "--",
                "/bin/sh",
                &token,
            ],
            3,
            "failed to redirect standard output to /no/such/dir/log: No such file".into(),
        ),
    ];
    for (args, status, text) in cases.into_iter().filter(|(args, ..)| common::takes(args)) {
        let output = daemonic(&args);
        assert_one_line_error(&output, status, &text);
        assert!(!pid_file.exists(), "{args:?} left a PID file");
        assert!(
            common::processes_with(&token).is_empty(),
            "{args:?} left a process"
        );
    }
    assert_eq!(holder.stop(libc::SIGKILL) & 0x7f, libc::SIGKILL);
}

/// The daemon a successful start wrote to `pid_file` (the command prints
/// nothing on success).
fn started_by(output: &Output, pid_file: &Path) -> Started {
    assert!(output.status.success(), "start failed: {}", stderr(output));
    Started::new(common::read_pid_file(pid_file))
}

fn start(options: &[&str], pid_file: &Path, mode: &str, args: &[&str]) -> Started {
    let mut all = vec!["-p", arg(pid_file)];
    all.extend_from_slice(options);
    started_by(&daemonic_running(&all, mode, args), pid_file)
}

// ---- the tools people use ------------------------------------------------

/// `start-stop-daemon --stop --retry` waits for the process to vanish; we
/// are its subreaper, so we reap it while start-stop-daemon waits (init
/// would, outside a test).
fn stop_with_start_stop_daemon(pid_file: &Path, daemon: &mut Started) -> i32 {
    let mut ssd = Command::new("start-stop-daemon")
        .args(["--stop", "--pidfile", arg(pid_file), "--retry", "5"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = daemon.wait();
    assert!(
        ssd.wait().unwrap().success(),
        "start-stop-daemon --stop failed"
    );
    status
}

fn interop_start_stop_daemon() {
    let dir = TempDir::new("ssd");
    let pid_file = dir.join("s.pid");
    let mut daemon = start(&[], &pid_file, "sleep", &[]);
    let status = stop_with_start_stop_daemon(&pid_file, &mut daemon);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
    if !common::SUPERVISE {
        return;
    }
    // Supervised: start-stop-daemon signals the supervisor, which forwards.
    let child_pid_file = dir.join("c.pid");
    let mut supervisor = start(
        &["--supervise", "--child-pidfile", arg(&child_pid_file)],
        &pid_file,
        "sleep",
        &[],
    );
    let child = common::read_pid_file(&child_pid_file);
    assert_eq!(
        stop_with_start_stop_daemon(&pid_file, &mut supervisor),
        0,
        "the supervisor exits 0 on a stop request"
    );
    assert!(
        fs::metadata(format!("/proc/{child}")).is_err(),
        "child {child} left"
    );
    assert!(
        !pid_file.exists() && !child_pid_file.exists(),
        "PID files left"
    );
}

fn interop_pkill_flock_kill() {
    let dir = TempDir::new("tools");
    let pid_file = dir.join("s.pid");
    let flock_free = || {
        Command::new("flock")
            .args(["-n", arg(&pid_file), "true"])
            .status()
            .unwrap()
            .success()
    };
    let mut daemon = start(&[], &pid_file, "sleep", &[]);
    assert!(!flock_free(), "flock(1) does not see the lock");
    assert!(
        Command::new("pkill")
            .arg("-F")
            .arg(&pid_file)
            .status()
            .unwrap()
            .success()
    );
    daemon.wait();
    assert!(flock_free(), "the lock outlived the daemon");
    if !common::SUPERVISE {
        return;
    }
    let mut daemon = start(&["--supervise"], &pid_file, "sleep", &[]);
    let kill = Command::new("sh")
        .arg("-c")
        .arg(format!("kill $(cat {})", pid_file.display()))
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(daemon.wait(), 0);
    assert!(!pid_file.exists());
}

fn stop_escalates_to_sigkill() {
    let dir = TempDir::new("sigkill");
    let pid_file = dir.join("s.pid");
    // Started once it ignores SIGTERM, so only SIGKILL can stop it.
    let mut daemon = start(&["--ready-fd", "5"], &pid_file, "ignore-term", &["5"]);
    let stop = daemonic(&["--stop", "-p", arg(&pid_file), "--timeout", "0.3"]);
    assert_eq!(stop.status.code(), Some(0), "{stop:?}");
    assert!(stderr(&stop).contains("sending SIGKILL"), "{stop:?}");
    let status = daemon.wait();
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
}

// ---- readiness -----------------------------------------------------------

fn wait_ready_through_notify_socket() {
    ready_before_return("waitready", &["--wait-ready=10"], "ready", &[]);
}

fn wait_ready_through_fd() {
    ready_before_return("readyfd", &["--ready-fd", "5"], "ready-fd", &["5"]);
}

/// With and without --supervise, the start returns only once the program
/// (helper `mode`, which writes a marker 300 ms in, then reports) is ready.
fn ready_before_return(tag: &str, readiness: &[&str], mode: &str, mode_args: &[&str]) {
    let dir = TempDir::new(tag);
    let (pid_file, marker) = (dir.join("s.pid"), dir.join("marker"));
    let mut args = mode_args.to_vec();
    args.extend([arg(&marker), "300"]);
    for &supervise in common::with_and_without_supervisor() {
        let mut options = readiness.to_vec();
        if supervise {
            options.push("--supervise");
        }
        let _ = fs::remove_file(&marker);
        let mut daemon = start(&options, &pid_file, mode, &args);
        assert!(
            marker.exists(),
            "{options:?}: returned before the program was ready"
        );
        assert_eq!(
            daemonic(&["--stop", "-p", arg(&pid_file)]).status.code(),
            Some(0)
        );
        daemon.wait();
    }
}

fn not_ready_in_time() {
    let dir = TempDir::new("notready");
    let pid_file = dir.join("s.pid");
    let token = format!("notready-{}", std::process::id());
    for options in [
        &["--wait-ready=0.5"][..],
        &["--wait-ready=0.5", "--supervise"],
    ]
    .into_iter()
    .filter(|options| common::takes(options))
    {
        let mut all = vec!["-p", arg(&pid_file)];
        all.extend_from_slice(options);
        let output = daemonic_running(&all, "sleep", &[&token]);
        assert_eq!(output.status.code(), Some(4), "{options:?}: {output:?}");
        assert!(stderr(&output).starts_with("daemonic: "), "{output:?}");
        assert!(!pid_file.exists(), "{options:?}: PID file left");
        common::wait_until("the unready program is gone", || {
            common::processes_with(&token)
                .iter()
                .all(|&pid| common::stat(pid).state == 'Z')
        });
    }
    if !common::SUPERVISE {
        return;
    }
    // An early exit names its status.
    let output = daemonic_running(
        &["-p", arg(&pid_file), "--wait-ready=5", "--supervise"],
        "run",
        &[arg(&dir.join("log")), "7", "0"],
    );
    assert_one_line_error(&output, 3, "exited with status 7 before it was ready");
}

/// `daemonic OPTIONS -- THIS_BINARY ready MARKER 100` under a
/// NOTIFY_SOCKET, as systemd runs a Type=notify service: it stays our child.
// `Started` reaps it by PID.
#[allow(clippy::zombie_processes)]
fn in_foreground(options: &[&str], socket: &Path, marker: &Path) -> Started {
    let child = Command::new(env!("CARGO_BIN_EXE_daemonic"))
        .args(options)
        .arg(format!("--env={}=ready", common::HELPER_ENV))
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args([arg(marker), "100"])
        .env("NOTIFY_SOCKET", socket)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Started::new(child.id() as i32)
}

/// In the foreground the program writes where daemonic's caller reads
/// (systemd's journal, `docker logs`), detached to /dev/null unless told.
fn foreground_keeps_the_streams() {
    for options in [&["--foreground"][..], &["--foreground", "--supervise"]]
        .into_iter()
        .filter(|options| common::takes(options) && (options.len() == 1 || common::PID1))
    {
        let mut args = options.to_vec();
        args.extend(["--", "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"]);
        let output = daemonic(&args);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_eq!(stdout(&output), "to-stdout\n");
        assert_eq!(stderr(&output), "to-stderr\n");
    }
    let dir = TempDir::new("fgnull");
    let pid_file = dir.join("s.pid");
    let output = daemonic(&[
        "-p",
        arg(&pid_file),
        "--",
        "/bin/sh",
        "-c",
        "echo detached; exec sleep 60",
    ]);
    assert!(output.status.success(), "{output:?}");
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    for fd in 0..3 {
        assert_eq!(
            fs::read_link(format!("/proc/{}/fd/{fd}", daemon.pid)).unwrap(),
            Path::new("/dev/null")
        );
    }
    assert_eq!(stdout(&output), "");
    daemon.stop(libc::SIGTERM);
}

fn foreground_under_a_notify_listener() {
    let dir = TempDir::new("fg");
    let (socket_path, pid_file, marker) =
        (dir.join("notify"), dir.join("s.pid"), dir.join("marker"));
    let listener = common::datagram_listener(&socket_path);
    let exe = std::env::current_exe().unwrap();
    let mut daemon = in_foreground(
        &["--foreground", "-p", arg(&pid_file)],
        &socket_path,
        &marker,
    );
    assert_eq!(common::next_datagram(&listener), "READY=1");
    // Every step but the forks: daemonic became the program, in place.
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    assert_eq!(exe_of(daemon.pid), exe);
    daemon.stop(libc::SIGKILL);
}

// ---- the supervisor --------------------------------------------------------

fn supervisor_forwards_signals() {
    let dir = TempDir::new("forward");
    let (pid_file, child_pid_file, log) = (dir.join("s.pid"), dir.join("c.pid"), dir.join("log"));
    let mut supervisor = start(
        &["--supervise", "--child-pidfile", arg(&child_pid_file)],
        &pid_file,
        "signals",
        &[arg(&log)],
    );
    let child = common::read_pid_file(&child_pid_file);
    assert_eq!(common::stat(child).ppid, supervisor.pid);
    common::wait_until("the program set up its signals", || log.exists());
    for (sent, signal) in [libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2]
        .into_iter()
        .enumerate()
    {
        common::kill(supervisor.pid, signal);
        common::wait_until("the signal forwarded", || {
            fs::read_to_string(&log).unwrap().lines().count() > sent
        });
    }
    assert_eq!(fs::read_to_string(&log).unwrap(), "HUP\nUSR1\nUSR2\n");
    // The supervisor's loop allocates nothing, and holds little.
    let rss = common::status(supervisor.pid, "VmHWM");
    println!("supervisor peak RSS: {rss}");
    common::kill(supervisor.pid, libc::SIGTERM);
    assert_eq!(supervisor.wait(), 0);
    assert!(!pid_file.exists() && !child_pid_file.exists());
}

fn supervisor_restarts_until_stopped() {
    let dir = TempDir::new("restart");
    let (pid_file, child_pid_file, log) = (dir.join("s.pid"), dir.join("c.pid"), dir.join("log"));
    let mut supervisor = start(
        &[
            "--supervise",
            "--restart=0.1",
            "--child-pidfile",
            arg(&child_pid_file),
        ],
        &pid_file,
        "run",
        &[arg(&log), "3", "50"],
    );
    common::wait_until("three runs", || {
        fs::read_to_string(&log).map_or(0, |t| t.lines().count()) >= 3
    });
    let stop = daemonic(&["--stop", "-p", arg(&pid_file)]);
    assert_eq!(stop.status.code(), Some(0), "{stop:?}");
    assert_eq!(supervisor.wait(), 0);
    let runs = fs::read_to_string(&log).unwrap().lines().count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fs::read_to_string(&log).unwrap().lines().count(),
        runs,
        "restarted after the stop"
    );
    assert!(!pid_file.exists() && !child_pid_file.exists());
    // A clean exit is not restarted: the supervisor ends with it, maybe
    // before the start returns, so its PID comes from the program's line.
    let once = dir.join("once");
    let output = daemonic_running(
        &["-p", arg(&pid_file), "--supervise", "--restart=0.1"],
        "run",
        &[arg(&once), "0", "0"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    common::wait_until("the program's line", || {
        fs::read_to_string(&once).is_ok_and(|t| t.ends_with('\n'))
    });
    let line = fs::read_to_string(&once).unwrap();
    let supervisor_pid = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert_eq!(Started::new(supervisor_pid).wait(), 0);
    assert_eq!(fs::read_to_string(&once).unwrap().lines().count(), 1);
    assert!(!pid_file.exists());
}

fn supervisor_reports_to_notify_socket() {
    let dir = TempDir::new("supnotify");
    let (socket_path, pid_file, marker) =
        (dir.join("notify"), dir.join("s.pid"), dir.join("marker"));
    let listener = common::datagram_listener(&socket_path);
    let mut supervisor = in_foreground(
        &[
            "--foreground",
            "--supervise",
            "--wait-ready=10",
            "-p",
            arg(&pid_file),
        ],
        &socket_path,
        &marker,
    );
    // The supervisor is the main process systemd sees.
    assert_eq!(
        common::next_datagram(&listener),
        format!("READY=1\nMAINPID={}\n", supervisor.pid)
    );
    assert!(marker.exists());
    common::kill(supervisor.pid, libc::SIGTERM);
    assert_eq!(supervisor.wait(), 0);
}

fn help_and_version() {
    let help = daemonic(&["--help"]);
    assert!(help.status.success());
    assert!(stdout(&help).contains("EXIT STATUS"));
    let version = daemonic(&["-V"]);
    assert_eq!(
        stdout(&version),
        format!("daemonic {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// A mode's options, in a build with it: `--help` describes them. In a
/// build without it: refused as such, one line, status 1, nothing started
/// and no PID file (README, "Building tiny").
fn daemonic_without_a_mode_refuses_it() {
    let dir = TempDir::new("modes");
    let pid_file = dir.join("s.pid");
    let help = stdout(&daemonic(&["--help"]));
    let token = format!("modes-{}", std::process::id());
    for (option, options, mode, built) in [
        (
            "--supervise",
            &["--supervise"][..],
            "supervise",
            common::SUPERVISE,
        ),
        (
            "--restart",
            &["--restart=1"],
            "supervise",
            common::SUPERVISE,
        ),
        (
            "--success-exit",
            &["--success-exit", "143"],
            "supervise",
            common::SUPERVISE,
        ),
        (
            "--rotate",
            &["--output", "log", "--rotate", "1M"],
            "logs",
            common::LOGS,
        ),
        ("--syslog", &["--syslog"], "logs", common::LOGS),
        ("--cap", &["--cap", "net_raw"], "harden", common::HARDEN),
        (
            "--env-file",
            &["--env-file", "/etc/environment"],
            "harden",
            common::HARDEN,
        ),
    ] {
        if built {
            assert!(
                help.contains(&format!("  {option}")),
                "{option} not in --help"
            );
            continue;
        }
        assert!(!help.contains(&format!("  {option}")), "{option} in --help");
        let mut args = vec!["-p", arg(&pid_file)];
        args.extend_from_slice(options);
        args.extend(["--", "/bin/sh", "-c", "exec sleep 60", &token]);
        let output = daemonic(&args);
        assert_one_line_error(
            &output,
            1,
            &format!("{option}: this daemonic was built without {mode}"),
        );
        assert!(!pid_file.exists(), "{options:?} left a PID file");
        assert!(
            common::processes_with(&token).is_empty(),
            "{options:?} started"
        );
    }
    // PID 1's mode is --foreground with --supervise.
    if common::SUPERVISE && !common::PID1 {
        let output = daemonic(&["--foreground", "--supervise", "--", "/bin/true"]);
        assert_one_line_error(&output, 1, "built without pid1");
    }
}

/// Paths and arguments are bytes, not text: a PID file in a directory whose
/// name is not UTF-8, and a program argument that is not either, go through.
fn paths_and_arguments_that_are_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("bytes");
    let odd = dir.path().join(OsStr::from_bytes(b"caf\xe9-\xff"));
    fs::create_dir(&odd).unwrap();
    let pid_file = odd.join(OsStr::from_bytes(b"d\xe9mon.pid"));
    let marker = odd.join(OsStr::from_bytes(b"arg-\xfe"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_daemonic"));
    command
        .arg("-p")
        .arg(&pid_file)
        .arg("-C")
        .arg(&odd)
        .args(["--", "/bin/sh", "-c", "touch \"$1\"; exec sleep 60", "sh"])
        .arg(&marker)
        .stdin(std::process::Stdio::null());
    let output = common::run(&mut command);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert_eq!(common::cwd(daemon.pid), odd);
    common::wait_until("the program got its argument", || marker.exists());
    let mut status = Command::new(env!("CARGO_BIN_EXE_daemonic"));
    status.arg("--status").arg("-p").arg(&pid_file);
    let status = common::run(&mut status);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let mut stop = Command::new(env!("CARGO_BIN_EXE_daemonic"));
    stop.arg("--stop").arg("-p").arg(&pid_file);
    assert_eq!(common::run(&mut stop).status.code(), Some(0));
    daemon.wait();
    assert!(!pid_file.exists());
}

/// Run from a directory with relative paths, as an init script does after
/// `cd`: the PID files, the output file and the program (found in `PATH`)
/// are the directory's, before and after the daemon's `chdir("/")`; an
/// environment value that is not UTF-8 reaches the program as bytes.
fn relative_paths_from_a_working_directory() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("relative");
    fs::create_dir(dir.join("run")).unwrap();
    let in_dir = |args: &[&OsStr]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_daemonic"));
        command
            .args(args)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null());
        common::run(&mut command)
    };
    let os = |text: &'static str| OsStr::new(text);
    let started = in_dir(&[
        os("-p"),
        os("run/s.pid"),
        os("--supervise"),
        os("--child-pidfile"),
        os("run/c.pid"),
        os("--output"),
        os("log"),
        OsStr::from_bytes(b"--env=ODD=\xff\xfe"),
        os("--"),
        os("sh"),
        os("-c"),
        os("printf '%s\\n' \"$ODD\"; exec sleep 60"),
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let mut supervisor = Started::new(common::read_pid_file(&dir.join("run/s.pid")));
    let child = common::read_pid_file(&dir.join("run/c.pid"));
    assert_eq!(common::stat(child).ppid, supervisor.pid);
    assert_eq!(common::cwd(supervisor.pid), Path::new("/"));
    common::wait_until("the program wrote its line", || {
        fs::read(dir.join("log")).is_ok_and(|log| log.ends_with(b"\n"))
    });
    assert_eq!(fs::read(dir.join("log")).unwrap(), b"\xff\xfe\n");
    let status = in_dir(&[os("--status"), os("-p"), os("run/s.pid")]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert_eq!(
        stdout(&status),
        format!("daemonic: running as PID {}\n", supervisor.pid)
    );
    let stop = in_dir(&[os("--stop"), os("-p"), os("run/s.pid")]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    assert_eq!(supervisor.wait(), 0);
    assert!(!dir.join("run/s.pid").exists() && !dir.join("run/c.pid").exists());
}

// ---- daemonic as PID 1 of a PID namespace --------------------------------

/// `unshare --fork --pid --mount-proc ARGS...`: PID 1 of a fresh PID
/// namespace with its own /proc, or `None` where this cannot run (not
/// root, no unshare).
fn in_pid_namespace(args: &[&str]) -> Option<Command> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let unshare = Path::new("/usr/bin/unshare");
    if !root || !unshare.exists() {
        println!("needs root and unshare(1): skipped");
        return None;
    }
    let mut command = Command::new(unshare);
    command
        .args(["--fork", "--pid", "--mount-proc"])
        .args(args)
        .stdin(std::process::Stdio::null());
    Some(command)
}

/// `daemonic --foreground --supervise OPTIONS -- /bin/sh -c SCRIPT` as the
/// namespace's PID 1.
fn pid1(options: &[&str], script: &str) -> Option<Command> {
    let mut args = vec![
        env!("CARGO_BIN_EXE_daemonic"),
        "--foreground",
        "--supervise",
    ];
    args.extend_from_slice(options);
    args.extend(["--", "/bin/sh", "-c", script]);
    in_pid_namespace(&args)
}

/// As PID 1, daemonic exits with the program's status, 128 + N for a
/// signal, as tini and a shell report it.
fn pid1_passes_the_status_through() {
    for (script, status) in [("exit 7", 7), ("kill -USR1 $$", 128 + libc::SIGUSR1)] {
        let Some(mut command) = pid1(&[], script) else {
            return;
        };
        let output = common::run(&mut command);
        assert_eq!(output.status.code(), Some(status), "{script}: {output:?}");
    }
}

/// A thousand short-lived orphans, re-parented to PID 1 as they die, leave
/// no zombie behind. The control: a PID 1 that waits for its own child only
/// (Python's subprocess; a shell would reap them all with wait) leaves
/// them all.
fn pid1_reaps_a_thousand_orphans() {
    let dir = TempDir::new("orphans");
    let count = dir.join("zombies");
    let script = format!(
        "i=0; while [ $i -lt 1000 ]; do (/bin/true &); i=$((i + 1)); done; \
         sleep 0.5; \
         grep -l '^State:[[:space:]]*Z' /proc/[0-9]*/status 2>/dev/null | wc -l >{}",
        count.display()
    );
    let Some(mut command) = pid1(&[], &script) else {
        return;
    };
    let output = common::run(&mut command);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let zombies: usize = fs::read_to_string(&count).unwrap().trim().parse().unwrap();
    assert_eq!(zombies, 0, "zombies left under daemonic as PID 1");
    // The control: a PID 1 that reaps only its own child.
    let python = "import subprocess, sys; subprocess.run(['/bin/sh', '-c', sys.argv[1]])";
    let Some(mut control) = in_pid_namespace(&["python3", "-c", python, &script]) else {
        return;
    };
    common::run(&mut control);
    let zombies: usize = fs::read_to_string(&count).unwrap().trim().parse().unwrap();
    assert!(
        zombies >= 900,
        "the control saw {zombies} zombies, not ~1000"
    );
}

/// Signals sent to PID 1 reach the program (not only TERM and HUP); SIGTERM
/// stops the whole tree, and one that ignores it is killed after
/// --timeout; the status is the program's.
fn pid1_forwards_signals_and_stops_the_tree() {
    let dir = TempDir::new("pid1signals");
    let log = dir.join("log");
    let script = format!(
        "for s in HUP QUIT USR1 WINCH ALRM CONT; do trap \"echo $s >>{log}\" $s; done; \
         echo ready >>{log}; while :; do sleep 0.05; done",
        log = log.display()
    );
    let Some((mut unshare, init)) = pid1_ready(&["--timeout", "1"], &script, &log) else {
        return;
    };
    for signal in [
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGWINCH,
        libc::SIGALRM,
    ] {
        common::kill(init, signal);
        let name = match signal {
            libc::SIGHUP => "HUP",
            libc::SIGQUIT => "QUIT",
            libc::SIGUSR1 => "USR1",
            libc::SIGWINCH => "WINCH",
            _ => "ALRM",
        };
        common::wait_until(&format!("SIG{name} forwarded"), || {
            fs::read_to_string(&log).is_ok_and(|l| l.lines().any(|line| line == name))
        });
    }
    // SIGTERM has no trap: the program dies of it, daemonic exits 143.
    common::kill(init, libc::SIGTERM);
    let status = pid1_status(&mut unshare);
    assert_eq!(
        libc::WEXITSTATUS(status),
        128 + libc::SIGTERM,
        "{status:#x}"
    );

    // A program that ignores SIGTERM, with a child of its own: both go,
    // SIGKILLed after the 1 s --timeout.
    let script = format!(
        "trap '' TERM; /bin/sleep 100 & echo ready >>{log}; wait",
        log = log.display()
    );
    let _ = fs::remove_file(&log);
    let Some((mut unshare, init)) = pid1_ready(&["--timeout", "1"], &script, &log) else {
        return;
    };
    let began = std::time::Instant::now();
    common::kill(init, libc::SIGTERM);
    let status = pid1_status(&mut unshare);
    assert_eq!(
        libc::WEXITSTATUS(status),
        128 + libc::SIGKILL,
        "{status:#x}"
    );
    assert!(
        began.elapsed() >= Duration::from_millis(900),
        "{:?}",
        began.elapsed()
    );
}

/// The PID (here) of the namespace's PID 1: unshare's only child.
/// [`pid1`] started, once its script has written `ready` into `log`: the
/// unshare process and the namespace's PID 1 as this namespace sees it.
fn pid1_ready(options: &[&str], script: &str, log: &Path) -> Option<(std::process::Child, i32)> {
    let mut command = pid1(options, script)?;
    let unshare = command.spawn().unwrap();
    let init = namespace_init(unshare.id() as i32);
    common::wait_until("the program is ready", || {
        fs::read_to_string(log).is_ok_and(|l| l.contains("ready"))
    });
    Some((unshare, init))
}

/// The wait status of `unshare` (daemonic's, passed through), bounded.
fn pid1_status(unshare: &mut std::process::Child) -> i32 {
    let status = common::wait_pid(unshare.id() as i32, common::PATIENCE).expect("unshare ended");
    // Reaped already by wait_pid: this only tells std so.
    let _ = unshare.try_wait();
    status
}

fn namespace_init(unshare: i32) -> i32 {
    let mut child = 0;
    common::wait_until("unshare forked PID 1", || {
        let children = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .unwrap_or_default();
        child = children
            .split_whitespace()
            .next()
            .map_or(0, |c| c.parse().unwrap());
        child > 0
    });
    child
}

// ---- the supervisor writes the program's output ---------------------------

/// `daemonic --supervise -p DIR/s.pid OPTIONS -- /bin/sh -c SCRIPT`, started;
/// the supervisor.
fn supervised_sh(dir: &TempDir, options: &[&str], script: &str) -> Started {
    let pid_file = dir.join("s.pid");
    let mut args = vec!["--supervise", "-p", arg(&pid_file)];
    args.extend_from_slice(options);
    args.extend(["--", "/bin/sh", "-c", script]);
    let output = daemonic(&args);
    assert!(output.status.success(), "{output:?}");
    Started::new(common::read_pid_file(&pid_file))
}

/// Waits until the supervisor has taken all its program wrote so far: every
/// pipe it holds is empty and it sleeps in its poll, which it enters only
/// after handling what it read.
fn wait_until_drained(supervisor: i32) {
    let pipe_is_empty = |fd: i32| {
        if !common::is_pipe(supervisor, fd) {
            return true;
        }
        let path = format!("/proc/{supervisor}/fd/{fd}");
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        // A pipe opened through /proc is the same pipe: FIONREAD counts the
        // bytes the supervisor has not read.
        let Ok(pipe) = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
        else {
            return true; // closed meanwhile
        };
        let mut unread: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into our local.
        let rc = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut unread) };
        rc == 0 && unread == 0
    };
    common::wait_until("the supervisor has read its pipes", || {
        // The kernel function it sleeps in: poll_schedule_timeout (6.x),
        // do_sys_poll (older).
        fs::read_to_string(format!("/proc/{supervisor}/wchan")).is_ok_and(|at| at.contains("poll"))
            && common::open_fds(supervisor).into_iter().all(pipe_is_empty)
    });
}

/// Line N of the test programs: 80 bytes with the newline.
fn numbered_line(n: usize) -> String {
    format!("line {n:06} {}", "x".repeat(67))
}

/// The program's lines in a file, timestamps (if any) taken off.
fn lines_of(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| match line.find(" line ") {
            Some(at) if line.starts_with("20") => line[at + 1..].to_string(),
            _ => line.to_string(),
        })
        .collect()
}

/// `--rotate 4096:3`: FILE moves to FILE.1 (and on to FILE.3) each time it
/// passes 4096 bytes, at a line's end; the oldest goes; what is kept is the
/// latest output, whole and in order.
fn output_rotates_by_size() {
    let dir = TempDir::new("rotate");
    let log = dir.join("log");
    let script = format!(
        "i=0; while [ $i -lt 400 ]; do printf 'line %06d %s\\n' $i {}; i=$((i + 1)); done; sleep 60",
        "x".repeat(67)
    );
    let mut supervisor = supervised_sh(
        &dir,
        &["--output", arg(&log), "--rotate", "4096:3"],
        &script,
    );
    common::wait_until("the program's last line", || {
        lines_of(&log)
            .last()
            .is_some_and(|l| *l == numbered_line(399))
    });
    let kept: Vec<PathBuf> = ["log.3", "log.2", "log.1", "log"]
        .iter()
        .map(|name| dir.join(name))
        .collect();
    for file in &kept[..3] {
        let size = fs::metadata(file).unwrap().len();
        assert!((4096..4096 + 80).contains(&size), "{file:?}: {size} bytes");
    }
    assert!(!dir.join("log.4").exists(), "more than 3 files kept");
    let lines: Vec<String> = kept.iter().flat_map(|file| lines_of(file)).collect();
    let first: usize = lines[0][5..11].parse().unwrap();
    let expected: Vec<String> = (first..400).map(numbered_line).collect();
    assert_eq!(lines, expected, "the kept output is not whole and in order");
    assert!(first > 0, "nothing was dropped: the test wrote too little");
    common::kill(supervisor.pid, libc::SIGTERM);
    assert_eq!(supervisor.wait(), 0);
}

/// Without `--rotate`, SIGHUP makes the supervisor reopen FILE (logrotate
/// moved it); the program, which does not handle SIGHUP, never gets it, and
/// no line is lost or written twice across the move.
fn output_reopens_on_hangup() {
    let dir = TempDir::new("reopen");
    let (log, moved) = (dir.join("log"), dir.join("log.old"));
    let child_pid_file = dir.join("c.pid");
    let script = format!(
        "i=0; while :; do printf 'line %06d %s\\n' $i {}; i=$((i + 1)); sleep 0.01; done",
        "x".repeat(67)
    );
    let mut supervisor = supervised_sh(
        &dir,
        &[
            "--output",
            arg(&log),
            "--timestamps",
            "--child-pidfile",
            arg(&child_pid_file),
        ],
        &script,
    );
    let child = common::read_pid_file(&child_pid_file);
    common::wait_until("some lines", || lines_of(&log).len() >= 5);
    fs::rename(&log, &moved).unwrap();
    common::kill(supervisor.pid, libc::SIGHUP);
    common::wait_until("lines in the new file", || lines_of(&log).len() >= 5);
    assert_eq!(
        common::read_pid_file(&child_pid_file),
        child,
        "the program was restarted"
    );
    common::kill(supervisor.pid, libc::SIGTERM);
    assert_eq!(supervisor.wait(), 0);
    let lines: Vec<String> = lines_of(&moved).into_iter().chain(lines_of(&log)).collect();
    let expected: Vec<String> = (0..lines.len()).map(numbered_line).collect();
    assert_eq!(lines, expected, "lines lost or doubled across the reopen");
    let stamped = fs::read_to_string(&log).unwrap();
    let first = stamped.lines().next().unwrap();
    assert_eq!(first.as_bytes()[10], b'T', "{first}");
    assert_eq!(&first[23..25], "Z ", "{first}");
}

/// What the program wrote just before it exited is all in the file when
/// the supervisor has gone, in order.
fn output_kept_whole_across_exit() {
    let dir = TempDir::new("whole");
    let log = dir.join("log");
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.02; done; \
         i=0; while [ $i -lt 3000 ]; do printf 'line %06d %s\\n' $i {x}; i=$((i + 1)); done",
        go = dir.join("go").display(),
        x = "x".repeat(67)
    );
    let mut supervisor = supervised_sh(&dir, &["--output", arg(&log), "--timestamps"], &script);
    fs::write(dir.join("go"), "").unwrap();
    assert_eq!(supervisor.wait(), 0);
    let expected: Vec<String> = (0..3000).map(numbered_line).collect();
    assert_eq!(lines_of(&log), expected);
}

// ---- the supervisor sends the program's output to syslog ------------------

/// Each line is one `<PRI>TAG[PID]: line` datagram, standard error at its
/// own priority with --syslog-stderr, a long line in pieces, a last line
/// without a newline sent when the program ends.
fn syslog_lines_as_a_listener_sees_them() {
    let dir = TempDir::new("syslog");
    let socket_path = dir.join("log.sock");
    let listener = common::datagram_listener(&socket_path);
    let child_pid_file = dir.join("c.pid");
    let script = format!(
        "echo one; echo two >&2; printf '%02000d\\n' 0; printf 'last'; while [ ! -e {} ]; do sleep 0.02; done",
        dir.join("go").display()
    );
    let mut supervisor = supervised_sh(
        &dir,
        &[
            "--syslog=local0.info",
            "--syslog-stderr",
            "err",
            "--syslog-tag",
            "board",
            "--syslog-socket",
            arg(&socket_path),
            "--child-pidfile",
            arg(&child_pid_file),
        ],
        &script,
    );
    let pid = common::read_pid_file(&child_pid_file);
    // local0 = 16: info 16 * 8 + 6, err 16 * 8 + 3. Standard output and
    // error go through pipes of their own: their relative order is not kept.
    let mut got: Vec<String> = (0..5).map(|_| common::next_datagram(&listener)).collect();
    got.sort();
    let long_piece = "0".repeat(900);
    let mut expected = vec![
        format!("<131>board[{pid}]: two"),
        format!("<134>board[{pid}]: one"),
        format!("<134>board[{pid}]: {long_piece}"),
        format!("<134>board[{pid}]: {long_piece}"),
        format!("<134>board[{pid}]: {}", "0".repeat(200)),
    ];
    expected.sort();
    assert_eq!(got, expected);
    fs::write(dir.join("go"), "").unwrap();
    assert_eq!(
        common::next_datagram(&listener),
        format!("<134>board[{pid}]: last")
    );
    assert_eq!(supervisor.wait(), 0);
}

/// With no socket at the path, lines are counted, never waited for; the
/// count comes first once a listener is there.
fn syslog_counts_lines_lost_while_missing() {
    let dir = TempDir::new("sysloglost");
    let socket_path = dir.join("log.sock");
    let script = format!(
        "echo a; echo b; echo c; : > {wrote}; while [ ! -e {go} ]; do sleep 0.02; done; echo d; sleep 60",
        wrote = dir.join("wrote").display(),
        go = dir.join("go").display()
    );
    let mut supervisor = supervised_sh(
        &dir,
        &["--syslog", "--syslog-socket", arg(&socket_path)],
        &script,
    );
    // The supervisor is not held up: once the program has written a, b and
    // c, it reads and drops them and waits for more; then listen.
    common::wait_until("the program wrote", || dir.join("wrote").exists());
    wait_until_drained(supervisor.pid);
    let listener = common::datagram_listener(&socket_path);
    fs::write(dir.join("go"), "").unwrap();
    let note = common::next_datagram(&listener);
    assert!(
        note.starts_with("<29>sh[")
            && note.ends_with("]: daemonic: 3 lines lost while the syslog socket took none"),
        "{note}"
    );
    let line = common::next_datagram(&listener);
    assert!(
        line.starts_with("<29>sh[") && line.ends_with("]: d"),
        "{line}"
    );
    common::kill(supervisor.pid, libc::SIGTERM);
    assert_eq!(supervisor.wait(), 0);
}
