//! The daemon as seen from outside: `/proc`, the PID file, exit statuses.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Started, TempDir, field, stdout};

fn main() {
    common::main(helpers, tests());
}

fn tests() -> Vec<common::Test> {
    #[allow(unused_mut)]
    let mut tests: Vec<common::Test> = vec![
        (
            "terminal_control_really_has_a_terminal",
            terminal_control_really_has_a_terminal,
        ),
        ("options_reach_the_daemon", options_reach_the_daemon),
        ("dev_null_is_opened_once", dev_null_is_opened_once),
        (
            "relative_paths_follow_the_callers_directory",
            relative_paths_follow_the_callers_directory,
        ),
        ("inherit_and_fd_streams", inherit_and_fd_streams),
        (
            "manual_readiness_holds_the_caller",
            manual_readiness_holds_the_caller,
        ),
        (
            "ready_timeout_kills_and_cleans_up",
            ready_timeout_kills_and_cleans_up,
        ),
        (
            "cloned_daemon_blocked_in_a_step_times_out",
            cloned_daemon_blocked_in_a_step_times_out,
        ),
        (
            "program_failure_reaches_the_caller",
            program_failure_reaches_the_caller,
        ),
        (
            "program_failure_names_what_failed",
            program_failure_names_what_failed,
        ),
        ("silent_daemon_is_an_error", silent_daemon_is_an_error),
    ];
    #[cfg(feature = "std")]
    tests.push(("io_failure_names_what_failed", io_failure_names_what_failed));
    #[cfg(feature = "std")]
    tests.push((
        "sleeper_detaches_from_terminal_and_session",
        sleeper_detaches_from_terminal_and_session,
    ));
    #[cfg(feature = "std")]
    tests.push((
        "sleeper_ends_on_its_own_and_on_sigterm",
        sleeper_ends_on_its_own_and_on_sigterm,
    ));
    tests
}

fn helpers(name: &str, args: Vec<String>) {
    match name {
        "plan" => common::plan_helper::run(args),
        "stat-self" => {
            // Where this process stands, for the terminal control test.
            let text = fs::read_to_string("/proc/self/stat").unwrap();
            fs::write(&args[0], text).unwrap();
        }
        other => panic!("no helper {other}"),
    }
}

/// The daemon opens `/dev/null` once for the three streams (seen with
/// strace), and still ends with it on 0, 1 and 2, also when the caller's
/// standard input was closed (the open then lands on fd 0 itself).
fn dev_null_is_opened_once() {
    if Command::new("strace").arg("-V").output().is_err() {
        println!("dev_null_is_opened_once: skipped: no strace (ci/install installs it)");
        return;
    }
    for stdin_closed in [false, true] {
        let dir = TempDir::new("devnull");
        let (pid_file, trace, place) = (dir.join("d.pid"), dir.join("trace"), dir.join("where"));
        let helper = std::env::current_exe().unwrap();
        let mut command = Command::new("strace");
        command
            .args(["-f", "-qq", "-e", "trace=open,openat", "-o"])
            .arg(&trace)
            .arg(&helper)
            .arg(format!("pid_file={}", pid_file.display()))
            .arg(format!("where={}", place.display()))
            .arg("readiness=manual")
            .env(common::HELPER_ENV, "plan");
        if stdin_closed {
            // SAFETY: closes fd 0 in the child before exec; async-signal-safe.
            unsafe {
                use std::os::unix::process::CommandExt;
                command.pre_exec(|| {
                    libc::close(0);
                    Ok(())
                });
            }
        } else {
            command.stdin(std::process::Stdio::null());
        }
        // strace -f waits for the daemon too: it runs in the background
        // while the daemon is looked at and stopped.
        command.stdout(std::process::Stdio::null());
        let mut tracer = command.spawn().unwrap();
        // Written once SIGTERM is blocked in the daemon.
        common::wait_until("the daemon says where it runs", || {
            fs::read_to_string(&place).is_ok_and(|t| !t.is_empty())
        });
        let mut daemon = common::Started::new(common::read_pid_file(&pid_file));
        for fd in 0..3 {
            assert_eq!(
                common::fd_target(daemon.pid, fd),
                std::path::Path::new("/dev/null"),
                "fd {fd} (stdin closed: {stdin_closed})"
            );
        }
        assert_eq!(daemon.stop(libc::SIGTERM), 0);
        let traced = common::wait_pid(tracer.id() as i32, common::PATIENCE);
        if traced.is_none() {
            let _ = tracer.kill();
        }
        let _ = tracer.wait();
        let text = fs::read_to_string(&trace).unwrap();
        let opens = text
            .lines()
            .filter(|line| line.contains("\"/dev/null\"") && !line.contains("= -1"))
            .count();
        // The caller's own opens (std's stdio set-up) are not the daemon's:
        // count only those of the daemon's PID.
        let daemon_opens = text
            .lines()
            .filter(|line| line.starts_with(&format!("{} ", daemon.pid)))
            .filter(|line| line.contains("\"/dev/null\""))
            .count();
        assert_eq!(
            daemon_opens, 1,
            "stdin closed: {stdin_closed}: {opens} in all\n{text}"
        );
    }
}

fn plan(args: &[&str]) -> std::process::Output {
    common::run(&mut common::helper("plan", args))
}

#[cfg(feature = "std")]
fn sleeper_detaches_from_terminal_and_session() {
    let dir = TempDir::new("sleeper");
    let pid_file = dir.join("sleeper.pid");
    let mut command = common::example("sleeper");
    command.arg(&pid_file).arg("60");
    let (master, slave) = common::with_controlling_terminal(&mut command);
    let caller = command.spawn().expect("spawn sleeper");
    drop(slave);
    let caller_pid = caller.id() as i32;
    let output = caller.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");

    // The PID file exists as soon as the caller has exited 0.
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    let stat = common::stat(daemon.pid);
    let me = std::process::id() as i32;
    assert_ne!(daemon.pid, caller_pid);
    // Reparented to us (the subreaper), not left under the caller or the
    // session leader.
    assert_eq!(stat.ppid, me, "{stat:?}");
    // A session of its own (the one the session leader made), led by a
    // process that is gone: the daemon is no session leader and can never
    // acquire a controlling terminal.
    assert_ne!(stat.session, caller_pid);
    assert_ne!(stat.session, common::stat(me).session);
    assert_ne!(stat.session, daemon.pid);
    assert_eq!(stat.pgrp, stat.session);
    assert_eq!(stat.tty_nr, 0, "{stat:?}");
    assert_eq!(common::cwd(daemon.pid), Path::new("/"));
    assert_eq!(common::status(daemon.pid, "Umask"), "0022");
    for fd in 0..3 {
        assert_eq!(
            common::fd_target(daemon.pid, fd),
            Path::new("/dev/null"),
            "fd {fd}"
        );
    }
    let mode = fs::metadata(&pid_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // Hanging up the terminal signals the caller's session, not the daemon's.
    drop(master);
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(common::stat(daemon.pid).state, 'S');
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
    assert!(!pid_file.exists(), "PID file left behind");
}

/// The control for the test above: under the same set-up, a process does
/// have a controlling terminal, so `tty_nr == 0` in the daemon means
/// something.
fn terminal_control_really_has_a_terminal() {
    let dir = TempDir::new("tty");
    let out = dir.join("stat");
    let mut command = common::helper("stat-self", &[out.to_str().unwrap()]);
    let (_master, slave) = common::with_controlling_terminal(&mut command);
    let mut child = command.spawn().unwrap();
    drop(slave);
    assert!(child.wait().unwrap().success());
    let text = fs::read_to_string(&out).unwrap();
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let tty_nr: i32 = rest.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert_ne!(tty_nr, 0, "{text}");
}

#[cfg(feature = "std")]
fn sleeper_ends_on_its_own_and_on_sigterm() {
    let dir = TempDir::new("sleeper-end");
    let pid_file = dir.join("s.pid");
    let output = common::run(common::example("sleeper").arg(&pid_file).arg("1"));
    assert!(output.status.success(), "{output:?}");
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert_eq!(daemon.wait(), 0, "exit status after sleeping");
    assert!(!pid_file.exists());

    let output = common::run(common::example("sleeper").arg(&pid_file).arg("60"));
    assert!(output.status.success(), "{output:?}");
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert_eq!(daemon.stop(libc::SIGTERM), 0, "exit status on SIGTERM");
    assert!(!pid_file.exists());
}

fn options_reach_the_daemon() {
    let dir = TempDir::new("options");
    let work = dir.join("work");
    fs::create_dir(&work).unwrap();
    let (pid_file, out, err, input) = (
        dir.join("d.pid"),
        dir.join("out.log"),
        dir.join("err.log"),
        dir.join("in"),
    );
    fs::write(&input, "input").unwrap();
    fs::write(&out, "earlier line\n").unwrap();
    let arg = |key: &str, path: &Path| format!("{key}={}", path.display());
    let output = plan(&[
        &arg("pid_file", &pid_file),
        &arg("cwd", &work),
        &arg("stdin", &input),
        &arg("stdout", &out),
        &arg("stderr", &err),
        "umask=027",
        "say=1",
        "readiness=manual",
    ]);
    let mut daemon = common::started(&output);
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    assert_eq!(common::cwd(daemon.pid), work);
    assert_eq!(common::status(daemon.pid, "Umask"), "0027");
    assert_eq!(common::fd_target(daemon.pid, 0), input);
    assert_eq!(common::fd_target(daemon.pid, 1), out);
    assert_eq!(common::fd_target(daemon.pid, 2), err);
    // Appended, not truncated; created 0640 less the umask.
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "earlier line\ndaemon stdout\n"
    );
    assert_eq!(fs::read_to_string(&err).unwrap(), "daemon stderr\n");
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&err), 0o640);
    // Created by the caller before the fork (so it can be locked first):
    // 0644 under the caller's umask 022.
    assert_eq!(mode(&pid_file), 0o644);
    // Inherited fds closed: the streams, the PID file (its lock) and its
    // directory (to remove it) are all the daemon holds; the report pipe
    // closed once ready.
    let fds = common::open_fds_once_reported(daemon.pid);
    let targets: Vec<_> = fds[3..]
        .iter()
        .map(|&fd| common::fd_target(daemon.pid, fd))
        .collect();
    assert_eq!(fds.len(), 5, "{fds:?} {targets:?}");
    assert!(targets.contains(&pid_file), "{targets:?}");
    assert!(targets.contains(&dir.path().to_path_buf()), "{targets:?}");
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
    assert!(!pid_file.exists());
}

fn relative_paths_follow_the_callers_directory() {
    let dir = TempDir::new("relative");
    fs::create_dir(dir.join("work")).unwrap();
    let mut command = common::helper(
        "plan",
        &[
            "pid_file=rel.pid",
            "stdout=rel.out",
            "cwd=work",
            "say=1",
            "readiness=manual",
        ],
    );
    command.current_dir(dir.path());
    let output = common::run(&mut command);
    let mut daemon = common::started(&output);
    assert_eq!(common::cwd(daemon.pid), dir.join("work"));
    // Written where the caller stood, not in the daemon's new directory.
    assert_eq!(common::read_pid_file(&dir.join("rel.pid")), daemon.pid);
    assert_eq!(
        fs::read_to_string(dir.join("rel.out")).unwrap(),
        "daemon stdout\n"
    );
    assert!(!dir.join("work/rel.pid").exists());
    // The daemon kept the caller's directory open to remove the PID file;
    // and removing it works from the new working directory.
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
    assert!(
        !dir.join("rel.pid").exists(),
        "relative PID file left behind"
    );
}

fn inherit_and_fd_streams() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("inherit");
    let log = fs::File::create(dir.join("given.log")).unwrap();
    let log_fd = log.as_raw_fd();
    let mut command = common::helper(
        "plan",
        &[
            "stdout=inherit",
            &format!("stderr=fd:{log_fd}"),
            "readiness=manual",
        ],
    );
    // The helper inherits the log under its own number: clear its
    // close-on-exec flag in the child only.
    // SAFETY: fcntl is async-signal-safe; the fd is open in the child.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(log_fd, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let stdout_file = fs::File::create(dir.join("inherited.out")).unwrap();
    command.stdout(stdout_file);
    let status = command.status().unwrap();
    assert!(status.success());
    let text = fs::read_to_string(dir.join("inherited.out")).unwrap();
    let mut daemon = Started::new(field(&text, "pid").unwrap().parse().unwrap());
    assert_eq!(common::fd_target(daemon.pid, 1), dir.join("inherited.out"));
    assert_eq!(common::fd_target(daemon.pid, 2), dir.join("given.log"));
    assert_eq!(common::fd_target(daemon.pid, 0), Path::new("/dev/null"));
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

fn manual_readiness_holds_the_caller() {
    let dir = TempDir::new("manual");
    let marker = dir.join("marker");
    // The daemon takes its time before it writes the marker and reports.
    let output = plan(&[
        "readiness=manual",
        "delay_ms=300",
        &format!("marker={}", marker.display()),
    ]);
    let mut daemon = common::started(&output);
    // The daemon writes the marker just before it reports ready: a caller
    // that returned earlier would find no marker.
    assert!(
        marker.exists(),
        "caller returned before the daemon was ready"
    );
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

fn ready_timeout_kills_and_cleans_up() {
    let dir = TempDir::new("timeout");
    let pid_file = dir.join("t.pid");
    let output = plan(&[
        &format!("pid_file={}", pid_file.display()),
        "readiness=manual",
        "timeout_ms=300",
        "then=hang",
    ]);
    timed_out_and_cleaned_up(&output, &pid_file);
}

/// The start failed for want of readiness within 0.3 s, its daemon was
/// SIGKILLed (and reaped here, the subreaper) and left no PID file. What
/// it printed.
fn timed_out_and_cleaned_up(output: &std::process::Output, pid_file: &Path) -> String {
    let text = stdout(output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("not ready within 0.300 s"), "{text}");
    let pid: i32 = field(&text, "pid").unwrap().parse().unwrap();
    assert!(pid > 0, "{text}");
    let status = common::wait_pid(pid, common::PATIENCE).expect("killed daemon reaped");
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL);
    assert!(!pid_file.exists(), "PID file left behind");
    text
}

/// A daemon that will execute a program is made with clone(CLONE_VM), and
/// its caller is suspended until it executes the program: a step that
/// blocks (opening a FIFO nobody reads) must still end at the plan's
/// timeout, with the step named, the daemon killed and no PID file left.
fn cloned_daemon_blocked_in_a_step_times_out() {
    let dir = TempDir::new("blocked");
    let (pid_file, fifo) = (dir.join("b.pid"), dir.join("out.fifo"));
    common::mkfifo(&fifo);
    let began = std::time::Instant::now();
    let output = plan(&[
        &format!("pid_file={}", pid_file.display()),
        &format!("stdout={}", fifo.display()),
        "exec=/bin/sleep",
        "arg=60",
        "timeout_ms=300",
    ]);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    let text = timed_out_and_cleaned_up(&output, &pid_file);
    assert!(
        text.contains("still trying to redirect standard output"),
        "{text}"
    );
}

fn program_failure_reaches_the_caller() {
    let dir = TempDir::new("fail");
    let pid_file = dir.join("f.pid");
    let output = plan(&[
        &format!("pid_file={}", pid_file.display()),
        "readiness=manual",
        &format!("then=fail:{}", libc::EADDRINUSE),
        "subreaper=1",
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(field(&text, "step"), Some("Initialization"), "{text}");
    assert_eq!(
        field(&text, "errno"),
        Some(libc::EADDRINUSE.to_string().as_str())
    );
    let expected = format!(
        "message=failed to initialize (reported by the daemon): {}",
        common::errno_text(libc::EADDRINUSE, "EADDRINUSE")
    );
    assert!(text.contains(&expected), "{text}");
    assert_eq!(field(&text, "left"), Some("0"), "{text}");
    assert!(!pid_file.exists(), "PID file left behind");
}

/// With `fail_at`, the caller hears what failed too, not only the errno.
fn program_failure_names_what_failed() {
    let dir = TempDir::new("failat");
    let pid_file = dir.join("f.pid");
    let output = plan(&[
        &format!("pid_file={}", pid_file.display()),
        "readiness=manual",
        &format!("then=fail-at:{}", libc::EADDRINUSE),
        "subreaper=1",
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(field(&text, "step"), Some("Initialization"), "{text}");
    let expected = format!(
        "message=failed to initialize (bind 127.0.0.1:80): {}",
        common::errno_text(libc::EADDRINUSE, "EADDRINUSE")
    );
    assert!(text.contains(&expected), "{text}");
    assert_eq!(field(&text, "left"), Some("0"), "{text}");
    assert!(!pid_file.exists(), "PID file left behind");
}

/// `fail_io`: an `io::Error`'s OS error travels with the context; one
/// without a number arrives as EIO.
#[cfg(feature = "std")]
fn io_failure_names_what_failed() {
    for (then, errno, name) in [
        (
            format!("fail-io:{}", libc::EADDRINUSE),
            libc::EADDRINUSE,
            "EADDRINUSE",
        ),
        ("fail-io:other".to_string(), libc::EIO, "EIO"),
    ] {
        let dir = TempDir::new("failio");
        let pid_file = dir.join("f.pid");
        let output = plan(&[
            &format!("pid_file={}", pid_file.display()),
            "readiness=manual",
            &format!("then={then}"),
            "subreaper=1",
        ]);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{text}");
        assert_eq!(
            field(&text, "errno"),
            Some(errno.to_string().as_str()),
            "{text}"
        );
        let expected = format!(
            "message=failed to initialize (bind 127.0.0.1:80): {}",
            common::errno_text(errno, name)
        );
        assert!(text.contains(&expected), "{text}");
        assert_eq!(field(&text, "left"), Some("0"), "{text}");
        assert!(!pid_file.exists(), "PID file left behind");
    }
}

fn silent_daemon_is_an_error() {
    let dir = TempDir::new("silent");
    let pid_file = dir.join("s.pid");
    let output = plan(&[
        &format!("pid_file={}", pid_file.display()),
        "readiness=manual",
        "then=drop",
        "subreaper=1",
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("ended before reporting"), "{text}");
    // A single-threaded caller: no word about threads.
    assert!(!text.contains("threads"), "{text}");
    // The daemon that dropped its handle but kept running was killed.
    assert_eq!(field(&text, "left"), Some("0"), "{text}");
    assert!(!pid_file.exists(), "PID file left behind");
    // Started from a process with other threads (say, a runtime started too
    // early): refused before the fork, naming the way out.
    let output = plan(&[
        &format!("pid_file={}", pid_file.display()),
        "readiness=manual",
        "then=drop",
        "threads=3",
    ]);
    let text = stdout(&output);
    assert_eq!(field(&text, "forks"), Some("0"), "{text}");
    assert!(
        text.contains("from a process with 4 threads: the daemon would have only the calling one"),
        "{text}"
    );
    assert!(!pid_file.exists(), "PID file left behind");
    // Allowed, the daemon that vanishes gets an error that names the likely
    // reason.
    let output = plan(&[
        &format!("pid_file={}", pid_file.display()),
        "readiness=manual",
        "then=drop",
        "threads=3",
        "allow_threads=1",
    ]);
    let text = stdout(&output);
    assert!(
        text.contains("started from a process with 4 threads, which do not survive fork"),
        "{text}"
    );
}
