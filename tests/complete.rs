//! The complete daemon(7) sequence, seen from outside: the locked PID file,
//! inherited fds, signals, privileges, chroot, resources, exec, readiness
//! protocols and detaching, each with its failure paths.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Started, TempDir, field, stdout};

fn main() {
    common::main(helpers, tests());
}

fn tests() -> Vec<common::Test> {
    let tests: Vec<common::Test> = vec![
        (
            "second_start_fails_before_forking",
            second_start_fails_before_forking,
        ),
        (
            "capabilities_limits_and_no_new_privs",
            capabilities_limits_and_no_new_privs,
        ),
        (
            "flock_sees_the_lock_for_the_daemons_life",
            flock_sees_the_lock_for_the_daemons_life,
        ),
        ("stale_pid_file_is_taken_over", stale_pid_file_is_taken_over),
        (
            "untrustworthy_pid_files_are_refused",
            untrustworthy_pid_files_are_refused,
        ),
        (
            "twenty_concurrent_starts_make_one_daemon",
            twenty_concurrent_starts_make_one_daemon,
        ),
        (
            "inherited_fds_are_closed_but_kept_ones",
            inherited_fds_are_closed_but_kept_ones,
        ),
        (
            "cloexec_mode_marks_instead_of_closing",
            cloexec_mode_marks_instead_of_closing,
        ),
        (
            "every_close_strategy_closes_the_same_fds",
            every_close_strategy_closes_the_same_fds,
        ),
        ("signals_are_reset", signals_are_reset),
        ("exec_resets_sigpipe_too", exec_resets_sigpipe_too),
        (
            "privileges_are_dropped_for_good",
            privileges_are_dropped_for_good,
        ),
        (
            "chroot_with_working_directory_inside",
            chroot_with_working_directory_inside,
        ),
        ("core_dumps_off_and_nice", core_dumps_off_and_nice),
        (
            "exec_runs_the_program_holding_the_lock",
            exec_runs_the_program_holding_the_lock,
        ),
        (
            "exec_failures_reach_the_caller",
            exec_failures_reach_the_caller,
        ),
        (
            "exec_from_a_large_host_without_fork",
            exec_from_a_large_host_without_fork,
        ),
        ("sd_notify_on_ready", sd_notify_on_ready),
        (
            "sd_notify_before_the_caller_returns",
            sd_notify_before_the_caller_returns,
        ),
        (
            "sd_notify_to_an_abstract_socket",
            sd_notify_to_an_abstract_socket,
        ),
        ("s6_notification_fd_on_ready", s6_notification_fd_on_ready),
        (
            "program_ready_through_notify_socket",
            program_ready_through_notify_socket,
        ),
        ("program_ready_through_fd", program_ready_through_fd),
        (
            "program_reporting_errno_fails_the_start",
            program_reporting_errno_fails_the_start,
        ),
        (
            "program_exiting_early_reports_its_status",
            program_exiting_early_reports_its_status,
        ),
        (
            "program_never_ready_is_killed",
            program_never_ready_is_killed,
        ),
        (
            "foreground_reports_to_notify_socket",
            foreground_reports_to_notify_socket,
        ),
        (
            "auto_detach_stays_when_stdin_is_a_socket",
            auto_detach_stays_when_stdin_is_a_socket,
        ),
        ("auto_detach_stays_under_init", auto_detach_stays_under_init),
    ];
    tests.into_iter().chain(std_tests()).collect()
}

#[cfg(feature = "std")]
fn std_tests() -> Vec<common::Test> {
    vec![
        (
            "unknown_user_is_refused_before_fork",
            unknown_user_is_refused_before_fork,
        ),
        (
            "builder_user_by_name_brings_its_groups",
            builder_user_by_name_brings_its_groups,
        ),
        (
            "unflushed_output_is_written_once",
            unflushed_output_is_written_once,
        ),
        ("both_streams_into_one_log", both_streams_into_one_log),
        ("quickstart_serves_and_stops", quickstart_serves_and_stops),
        (
            "pid_file_left_after_the_drop_is_said",
            pid_file_left_after_the_drop_is_said,
        ),
        (
            "tokio_runtime_built_in_the_daemon",
            tokio_runtime_built_in_the_daemon,
        ),
        (
            "privileged_socket_kept_across_the_drop",
            privileged_socket_kept_across_the_drop,
        ),
    ]
}

#[cfg(not(feature = "std"))]
fn std_tests() -> Vec<common::Test> {
    Vec::new()
}

fn helpers(name: &str, args: Vec<String>) {
    match name {
        "plan" => common::plan_helper::run(args),
        "program" => program(args),
        "close" => close_with_strategy(&args),
        #[cfg(feature = "std")]
        "builder-user" => builder_user(&args),
        #[cfg(feature = "std")]
        "builder-print" => builder_print(&args),
        #[cfg(feature = "std")]
        "builder-output" => builder_output(&args),
        #[cfg(feature = "std")]
        "builder-left" => builder_left(&args),
        other => panic!("no helper {other}"),
    }
}

// ---- helpers run as programs -------------------------------------------

/// `program MODE ...`: what an executed program does about readiness.
fn program(args: Vec<String>) {
    let notify = |message: &str| {
        let path = std::env::var("NOTIFY_SOCKET").expect("NOTIFY_SOCKET");
        let socket = std::os::unix::net::UnixDatagram::unbound().unwrap();
        socket.send_to(message.as_bytes(), path).unwrap();
    };
    let arg = |i: usize| args[i].clone();
    match args[0].as_str() {
        "ready" => {
            std::thread::sleep(Duration::from_millis(arg(1).parse().unwrap()));
            fs::write(arg(2), "ready").unwrap();
            notify("STATUS=up\nREADY=1\n");
        }
        "fd" => {
            std::thread::sleep(Duration::from_millis(arg(2).parse().unwrap()));
            fs::write(arg(3), "ready").unwrap();
            let fd: i32 = arg(1).parse().unwrap();
            // SAFETY: writes one byte from a static to the inherited fd.
            unsafe { libc::write(fd, b"\n".as_ptr().cast(), 1) };
        }
        "errno" => {
            notify(&format!("ERRNO={}", arg(1)));
            std::process::exit(1);
        }
        "exit" => std::process::exit(arg(1).parse().unwrap()),
        "never" => {}
        other => panic!("no program mode {other}"),
    }
    std::thread::sleep(Duration::from_secs(60));
}

/// `close STRATEGY MODE OUT`: opens fds, then, in a forked child, closes
/// inherited fds with one strategy (keeping one) and writes what is left.
fn close_with_strategy(args: &[String]) {
    use daemonic::fds::{Strategy, close_inherited_with};
    let strategy = match args[0].as_str() {
        "best" => Strategy::Best,
        "proc" => Strategy::ProcWalk,
        _ => Strategy::Loop,
    };
    let mode = if args[1] == "cloexec" {
        daemonic::InheritedFds::CloseOnExec
    } else {
        daemonic::InheritedFds::Close
    };
    let files: Vec<fs::File> = (0..12)
        .map(|_| fs::File::open("/dev/null").unwrap())
        .collect();
    let kept = files[5].as_raw_fd();
    // SAFETY: the child only makes system calls, then lists its fds with
    // std (it is single-threaded: this helper starts no threads).
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let ok = close_inherited_with(&[kept], [-1; 6], mode, strategy).is_ok();
            let mut listing = format!("ok={ok} kept={kept} fds=");
            for entry in fs::read_dir("/proc/self/fd").unwrap() {
                let fd: i32 = entry
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .parse()
                    .unwrap();
                let flags =
                    fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
                let cloexec = flags.lines().any(|l| {
                    l.starts_with("flags:")
                        && u32::from_str_radix(l[6..].trim(), 8).unwrap_or(0) & 0o2000000 != 0
                });
                listing.push_str(&format!("{fd}{},", if cloexec { "e" } else { "" }));
            }
            fs::write(&args[2], listing).unwrap();
            libc::_exit(0);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
    drop(files);
}

/// `builder-user USER PID_FILE`: the std builder resolving a user by name.
#[cfg(feature = "std")]
fn builder_user(args: &[String]) {
    let builder = daemonic::Daemonize::new()
        .user(&args[0])
        .pid_file(&args[1])
        .readiness(daemonic::Readiness::Manual);
    match builder.daemonize() {
        Ok(mut daemon) => {
            let _ = daemon.ready();
            std::thread::sleep(Duration::from_secs(60));
        }
        Err(error) => {
            // The error names what failed (the user) by itself.
            println!("refused message={error}");
            std::process::exit(2);
        }
    }
}

/// `builder-print OUT PID_FILE`: prints without a newline (it stays in
/// std's buffer), then daemonizes with standard output to OUT and prints a
/// line there.
#[cfg(feature = "std")]
fn builder_print(args: &[String]) {
    use std::io::Write;
    print!("before the fork");
    let daemon = daemonic::Daemonize::new()
        .stdout(daemonic::OwnedStdio::File(args[0].clone().into()))
        .pid_file(&args[1])
        .daemonize();
    println!("in the daemon");
    let _ = std::io::stdout().flush();
    drop(daemon);
}

/// `builder-output LOG PID_FILE output|file`: daemonizes with both
/// streams into LOG, by `output(LOG)` or by an open file (`From<File>`),
/// writes a line to each and ends.
#[cfg(feature = "std")]
fn builder_output(args: &[String]) {
    use std::io::Write;
    let builder = daemonic::Daemonize::new().pid_file(&args[1]);
    let builder = match args[2].as_str() {
        "output" => builder.output(&args[0]),
        _ => {
            let log = fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&args[0])
                .unwrap();
            let again = log.try_clone().unwrap();
            builder.stdout(log.into()).stderr(again.into())
        }
    };
    let daemon = builder.daemonize().unwrap();
    let _ = writeln!(std::io::stdout(), "to stdout");
    let _ = std::io::stdout().flush();
    let _ = writeln!(std::io::stderr(), "to stderr");
    drop(daemon);
}

/// `builder-left USER PID_FILE LOG`: daemonizes as USER with both streams
/// into LOG, then ends at once, dropping its handle.
#[cfg(feature = "std")]
fn builder_left(args: &[String]) {
    let daemon = daemonic::Daemonize::new()
        .user(&args[0])
        .pid_file(&args[1])
        .output(&args[2])
        .daemonize()
        .unwrap();
    drop(daemon);
}

// ---- shared checks -----------------------------------------------------

fn plan(args: &[&str]) -> Output {
    common::run(&mut common::helper("plan", args))
}

fn arg(key: &str, path: &Path) -> String {
    format!("{key}={}", path.display())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `flock -n FILE true` gets the lock.
fn flock_free(path: &Path) -> bool {
    Command::new("flock")
        .arg("-n")
        .arg(path)
        .arg("true")
        .status()
        .expect("run flock(1)")
        .success()
}

/// The bit of signal `n` in a `/proc/PID/status` mask.
fn bit(n: i32) -> u64 {
    1 << (n - 1)
}

fn mask(pid: i32, key: &str) -> u64 {
    u64::from_str_radix(&common::status(pid, key), 16).unwrap()
}

fn self_exe() -> PathBuf {
    std::env::current_exe().unwrap()
}

// ---- the PID file ------------------------------------------------------

fn second_start_fails_before_forking() {
    let dir = TempDir::new("second");
    let pid_file = dir.join("d.pid");
    let mut first = common::started(&plan(&[&arg("pid_file", &pid_file), "readiness=manual"]));
    let output = plan(&[&arg("pid_file", &pid_file)]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(field(&text, "forks"), Some("0"), "it forked: {text}");
    assert!(
        text.contains(&format!("message=already running as PID {}", first.pid)),
        "{text}"
    );
    // The running daemon's file is untouched.
    assert_eq!(common::read_pid_file(&pid_file), first.pid);
    assert_eq!(first.stop(libc::SIGTERM), 0);
    assert!(!pid_file.exists());
}

fn flock_sees_the_lock_for_the_daemons_life() {
    let dir = TempDir::new("flock");
    let pid_file = dir.join("d.pid");
    let mut daemon = common::started(&plan(&[&arg("pid_file", &pid_file), "readiness=manual"]));
    assert!(
        !flock_free(&pid_file),
        "flock(1) got the lock the daemon holds"
    );
    // kill $(cat PIDFILE) reaches the daemon.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill $(cat {})", pid_file.display()))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(daemon.wait(), 0);
    assert!(!pid_file.exists());
}

fn stale_pid_file_is_taken_over() {
    let dir = TempDir::new("stale");
    let pid_file = dir.join("d.pid");
    // A file no process holds a lock on, naming a process that may exist,
    // longer than the daemon's line: it must be truncated, not overwritten.
    fs::write(&pid_file, "1\n# left by a daemon that ended long ago\n").unwrap();
    let mut daemon = common::started(&plan(&[&arg("pid_file", &pid_file), "readiness=manual"]));
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

fn untrustworthy_pid_files_are_refused() {
    let dir = TempDir::new("untrusted");
    let open = dir.join("open.pid");
    fs::write(&open, "").unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o666)).unwrap();
    let text = stdout(&plan(&[&arg("pid_file", &open)]));
    assert!(
        text.contains("message=invalid pid_file: is writable by everyone")
            && text.contains("forks=0"),
        "{text}"
    );
    let fifo = dir.join("fifo.pid");
    common::mkfifo(&fifo);
    let text = stdout(&plan(&[&arg("pid_file", &fifo)]));
    assert!(
        text.contains("message=invalid pid_file: is not a regular file")
            && text.contains("forks=0"),
        "{text}"
    );
}

fn twenty_concurrent_starts_make_one_daemon() {
    let dir = TempDir::new("concurrent");
    let pid_file = dir.join("d.pid");
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let pid_file = &pid_file;
                scope.spawn(move || {
                    plan(&[
                        &arg("pid_file", pid_file),
                        "readiness=manual",
                        "delay_ms=100",
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let texts: Vec<String> = outputs.iter().map(stdout).collect();
    let winners: Vec<&String> = texts.iter().filter(|t| t.starts_with("parent")).collect();
    assert_eq!(winners.len(), 1, "{texts:#?}");
    let mut daemon = Started::new(field(winners[0], "pid").unwrap().parse().unwrap());
    let expected = format!("message=already running as PID {}", daemon.pid);
    for text in texts.iter().filter(|t| !t.starts_with("parent")) {
        assert!(
            text.contains(&expected) && text.contains("forks=0"),
            "{text}"
        );
    }
    println!(
        "concurrent starts: 20 started, 1 daemon, 19 refused naming PID {}",
        daemon.pid
    );
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

// ---- inherited fds -----------------------------------------------------

/// Starts the plan helper with an extra fd at `number` (inherited, not
/// close-on-exec) besides `args`.
fn plan_with_fd(args: &[&str], number: i32) -> Output {
    let file = fs::File::open("/dev/null").unwrap();
    let fd = file.as_raw_fd();
    let mut command = common::helper("plan", args);
    // SAFETY: dup2 is async-signal-safe; `fd` is open in the child.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, number) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = common::run(&mut command);
    drop(file);
    output
}

fn inherited_fds_are_closed_but_kept_ones() {
    let dir = TempDir::new("fds");
    let pid_file = dir.join("d.pid");
    let output = plan_with_fd(
        &[
            &arg("pid_file", &pid_file),
            "extra_fds=6",
            "keep=900",
            "readiness=manual",
        ],
        900,
    );
    let mut daemon = common::started(&output);
    let fds = common::open_fds_once_reported(daemon.pid);
    // 0-2, the PID file and its directory, the kept fd: nothing else.
    assert_eq!(fds.len(), 6, "{fds:?}");
    assert_eq!(*fds.last().unwrap(), 900, "{fds:?}");
    assert_eq!(common::fd_target(daemon.pid, 900), Path::new("/dev/null"));
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

fn cloexec_mode_marks_instead_of_closing() {
    let output = plan_with_fd(&["fds=cloexec", "readiness=manual"], 900);
    let mut daemon = common::started(&output);
    let flags =
        fs::read_to_string(format!("/proc/{}/fdinfo/900", daemon.pid)).expect("fd 900 kept open");
    let flags = flags
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(
        u32::from_str_radix(&flags, 8).unwrap() & 0o2000000,
        0,
        "not close-on-exec: {flags}"
    );
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

fn every_close_strategy_closes_the_same_fds() {
    let dir = TempDir::new("strategies");
    for mode in ["close", "cloexec"] {
        let mut listings = Vec::new();
        for strategy in ["best", "proc", "loop"] {
            let out = dir.join(&format!("{strategy}-{mode}"));
            let output = common::run(&mut common::helper(
                "close",
                &[strategy, mode, out.to_str().unwrap()],
            ));
            assert!(output.status.success(), "{output:?}");
            let text = fs::read_to_string(&out).unwrap();
            assert!(text.contains("ok=true"), "{strategy} {mode}: {text}");
            let kept = field(&text, "kept").unwrap().to_string();
            let fds = field(&text, "fds").unwrap().trim_end_matches(',');
            let mut fds: Vec<&str> = fds.split(',').collect();
            fds.sort_by_key(|f| f.trim_end_matches('e').parse::<i32>().unwrap());
            let fds = fds.join(",");
            if mode == "close" {
                // 0-2, the kept one, and the fd read_dir used to list.
                let count = fds.split(',').count();
                assert!(
                    fds.starts_with("0,1,2,") && fds.contains(&format!(",{kept}")) && count == 5,
                    "{strategy}: {fds}"
                );
            } else {
                // All twelve still open, all but the kept one close-on-exec.
                assert!(
                    fds.split(',').filter(|f| f.ends_with('e')).count() >= 11,
                    "{strategy}: {fds}"
                );
                assert!(
                    fds.split(',').any(|f| f.trim_end_matches('e') == kept),
                    "{strategy}: {fds}"
                );
            }
            listings.push(
                fds.split(',')
                    .filter(|f| f.parse::<i32>().map_or(true, |n| n < 14))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        assert!(
            listings.windows(2).all(|w| w[0] == w[1]),
            "{mode}: {listings:?}"
        );
    }
}

// ---- signals -----------------------------------------------------------

fn signals_are_reset() {
    let caller_setup = ["block=10", "ignore=1", "handle=12", "readiness=manual"];
    let mut daemon = common::started(&plan(&caller_setup));
    // SIGTERM is the helper's own: it blocks it to wait for it, and the
    // mask shows it until the wait begins.
    assert_eq!(mask(daemon.pid, "SigBlk") & !bit(libc::SIGTERM), 0);
    // SIGPIPE stays ignored for Rust code; SIGHUP, ignored by the caller,
    // not. (glibc's reserved 32 and 33 stay as the environment left them.)
    let reserved = bit(32) | bit(33);
    assert_eq!(mask(daemon.pid, "SigIgn") & !reserved, bit(libc::SIGPIPE));
    assert_eq!(mask(daemon.pid, "SigCgt"), 0);
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
    // The control: without the reset, the caller's set-up shows.
    let mut daemon = common::started(&plan(&[&caller_setup[..], &["signals=0"]].concat()));
    assert_ne!(mask(daemon.pid, "SigBlk") & bit(libc::SIGUSR1), 0);
    assert_ne!(mask(daemon.pid, "SigIgn") & bit(libc::SIGHUP), 0);
    assert_ne!(mask(daemon.pid, "SigCgt") & bit(libc::SIGUSR2), 0);
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

fn exec_resets_sigpipe_too() {
    let mut daemon = common::started(&plan(&[
        "block=10",
        "ignore=1",
        "exec=/bin/sleep",
        "arg=60",
    ]));
    assert_eq!(mask(daemon.pid, "SigIgn"), 0);
    assert_eq!(mask(daemon.pid, "SigBlk"), 0);
    // SIGTERM's default action ends sleep.
    let status = daemon.stop(libc::SIGTERM);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
}

// ---- privileges, chroot, resources -------------------------------------

fn privileges_are_dropped_for_good() {
    if !is_root() {
        println!("privileges_are_dropped_for_good: needs root, skipped");
        return;
    }
    let dir = TempDir::new("privileges");
    let pid_file = dir.join("d.pid");
    let output = plan(&[
        &arg("pid_file", &pid_file),
        "uid=65534",
        "gid=65534",
        "groups=65534",
        "readiness=manual",
    ]);
    let mut daemon = common::started(&output);
    assert_eq!(
        common::status(daemon.pid, "Uid"),
        "65534\t65534\t65534\t65534"
    );
    assert_eq!(
        common::status(daemon.pid, "Gid"),
        "65534\t65534\t65534\t65534"
    );
    assert_eq!(common::status(daemon.pid, "Groups"), "65534");
    // Written before the drop: root's file, which the daemon cannot rewrite.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&pid_file).unwrap().uid(), 0);
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

/// Output still in std's buffer at the fork goes to the terminal once, not
/// also into the daemon's log.
#[cfg(feature = "std")]
fn unflushed_output_is_written_once() {
    let dir = TempDir::new("flush");
    let (out, pid_file) = (dir.join("out"), dir.join("d.pid"));
    let output = common::run(&mut common::helper(
        "builder-print",
        &[out.to_str().unwrap(), pid_file.to_str().unwrap()],
    ));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "before the fork");
    common::wait_until("the daemon wrote and ended", || !pid_file.exists());
    assert_eq!(fs::read_to_string(&out).unwrap(), "in the daemon\n");
}

/// `Daemonize::output` and an open `File` as a stream: both streams of the
/// daemon end up in the one log, neither line over the other.
#[cfg(feature = "std")]
fn both_streams_into_one_log() {
    for how in ["output", "file"] {
        let dir = TempDir::new("output");
        let (log, pid_file) = (dir.join("log"), dir.join("d.pid"));
        fs::write(&log, "before\n").unwrap();
        let output = common::run(&mut common::helper(
            "builder-output",
            &[log.to_str().unwrap(), pid_file.to_str().unwrap(), how],
        ));
        assert!(output.status.success(), "{how}: {output:?}");
        common::wait_until("the daemon wrote and ended", || !pid_file.exists());
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            "before\nto stdout\nto stderr\n",
            "{how}"
        );
    }
}

/// examples/quickstart, README's library quick start: ready once bound,
/// it answers; SIGTERM ends it and its PID file; a start it cannot make
/// names the file.
#[cfg(feature = "std")]
fn quickstart_serves_and_stops() {
    use std::io::{Read, Write};
    let dir = TempDir::new("quickstart");
    let (pid_file, log) = (dir.join("q.pid"), dir.join("q.log"));
    let output = common::run(common::example("quickstart").arg(&pid_file).arg(&log));
    assert!(output.status.success(), "{output:?}");
    let daemon = common::read_pid_file(&pid_file);
    // Ready means bound: the port is in the log before the caller returned.
    let said = fs::read_to_string(&log).unwrap();
    let port = said
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|port| port.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("{said}"));
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"echo me").unwrap();
    let mut answer = [0; 7];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"echo me");
    // SAFETY: the daemon this test started, named by its PID file.
    unsafe { libc::kill(daemon, libc::SIGTERM) };
    common::wait_until("the daemon ended with its PID file", || !pid_file.exists());
    assert!(
        fs::read_to_string(&log)
            .unwrap()
            .ends_with("stopping on signal Some(15)\n")
    );
    let missing = dir.join("missing/q.pid");
    let output = common::run(common::example("quickstart").arg(&missing).arg(&log));
    assert_eq!(output.status.code(), Some(daemonic::EXIT_START_FAILED));
    assert!(
        common::stderr(&output).contains(&format!(
            "failed to write the PID file {}",
            missing.display()
        )),
        "{output:?}"
    );
}

/// A daemon that changes its user and then may not remove its PID file
/// (root's directory) is said to leave it: by the caller before the fork,
/// on its standard error, and by the daemon when its handle drops, in its
/// log; the file is left, not silently.
#[cfg(feature = "std")]
fn pid_file_left_after_the_drop_is_said() {
    if !is_root() {
        println!("skipped: needs root to change the user");
        return;
    }
    let dir = TempDir::new("left");
    let (pid_file, log) = (dir.join("d.pid"), dir.join("log"));
    let output = common::run(&mut common::helper(
        "builder-left",
        &["nobody", pid_file.to_str().unwrap(), log.to_str().unwrap()],
    ));
    assert!(output.status.success(), "{output:?}");
    let warned = common::stderr(&output);
    assert!(
        warned.contains(&format!(
            "warning: the daemon, running as uid 65534, will not be able to remove its PID file {} (its directory is not writable by that user)",
            pid_file.display()
        )),
        "{warned}"
    );
    common::wait_until("the daemon said it left its PID file", || {
        fs::read_to_string(&log).is_ok_and(|said| said.contains("left behind"))
    });
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        format!(
            "daemonic: PID file {} left behind: {}\n",
            pid_file.display(),
            common::errno_text(libc::EACCES, "EACCES")
        )
    );
    assert!(pid_file.exists());
}

/// examples/tokio_echo: daemonized first, then its runtime built: it
/// serves once the start returns, and SIGTERM ends it with its PID file.
#[cfg(feature = "std")]
fn tokio_runtime_built_in_the_daemon() {
    use std::io::{Read, Write};
    let dir = TempDir::new("tokio");
    let (pid_file, port_file) = (dir.join("t.pid"), dir.join("port"));
    let output = common::run(common::example("tokio_echo").arg(&pid_file).arg(&port_file));
    assert!(output.status.success(), "{output:?}");
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    // The runtime's threads run in the daemon, not in the caller.
    assert!(
        fs::read_dir(format!("/proc/{}/task", daemon.pid))
            .unwrap()
            .count()
            >= 3
    );
    let port: u16 = fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"echo me").unwrap();
    let mut echoed = [0u8; 7];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"echo me");
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
    assert!(!pid_file.exists(), "PID file left");
}

/// examples/privileged_port: a socket bound as root, kept across the drop
/// to nobody, still serves (port 0 here; 80 in real use).
#[cfg(feature = "std")]
fn privileged_socket_kept_across_the_drop() {
    use std::io::Read;
    if !is_root() {
        println!("privileged_socket_kept_across_the_drop: needs root, skipped");
        return;
    }
    let dir = TempDir::new("privport");
    let (pid_file, port_file) = (dir.join("p.pid"), dir.join("port"));
    let output = common::run(
        common::example("privileged_port")
            .arg("0")
            .arg(&pid_file)
            .arg(&port_file),
    );
    assert!(output.status.success(), "{output:?}");
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert_eq!(
        common::status(daemon.pid, "Uid"),
        "65534\t65534\t65534\t65534"
    );
    let port: u16 = fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut answer = String::new();
    std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap()
        .read_to_string(&mut answer)
        .unwrap();
    assert_eq!(answer, "uid=65534\n");
    daemon.stop(libc::SIGTERM);
}

/// The std builder, by name: nobody's groups come along, root's go.
#[cfg(feature = "std")]
fn builder_user_by_name_brings_its_groups() {
    if !is_root() {
        println!("builder_user_by_name_brings_its_groups: needs root, skipped");
        return;
    }
    let dir = TempDir::new("byname");
    let pid_file = dir.join("d.pid");
    let output = common::run(&mut common::helper(
        "builder-user",
        &["nobody", pid_file.to_str().unwrap()],
    ));
    assert!(output.status.success(), "{output:?}");
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert_eq!(
        common::status(daemon.pid, "Uid"),
        "65534\t65534\t65534\t65534"
    );
    assert!(
        !common::status(daemon.pid, "Groups")
            .split_whitespace()
            .any(|g| g == "0")
    );
    daemon.stop(libc::SIGKILL);
}

fn chroot_with_working_directory_inside() {
    if !is_root() {
        println!("chroot_with_working_directory_inside: needs root, skipped");
        return;
    }
    let dir = TempDir::new("chroot");
    let root = dir.join("root");
    fs::create_dir_all(root.join("inside")).unwrap();
    let pid_file = dir.join("d.pid");
    let output = plan(&[
        &arg("pid_file", &pid_file),
        &arg("chroot", &root),
        "cwd=/inside",
        "readiness=manual",
    ]);
    let mut daemon = common::started(&output);
    assert_eq!(
        fs::read_link(format!("/proc/{}/root", daemon.pid)).unwrap(),
        root
    );
    assert_eq!(common::cwd(daemon.pid), root.join("inside"));
    // Removed through the directory fd, though outside the daemon's root.
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
    assert!(
        !pid_file.exists(),
        "PID file outside the chroot left behind"
    );
}

/// An unprivileged program keeps CAP_NET_BIND_SERVICE alone, ambient
/// across its execve (systemd's AmbientCapabilities=), under no_new_privs,
/// with its open-file limits; as `/proc/PID/status` and `limits` show.
fn capabilities_limits_and_no_new_privs() {
    if !is_root() {
        println!("capabilities_limits_and_no_new_privs: needs root, skipped");
        return;
    }
    let dir = TempDir::new("caps");
    let pid_file = dir.join("d.pid");
    let output = plan(&[
        &arg("pid_file", &pid_file),
        "uid=65534",
        "gid=65534",
        "groups=65534",
        &format!("caps={}", 1u64 << 10),
        "nnp=1",
        "nofile=100:200",
        "exec=/bin/sleep",
        "arg=60",
    ]);
    let mut daemon = common::started(&output);
    for field in ["CapAmb", "CapBnd", "CapPrm", "CapEff", "CapInh"] {
        assert_eq!(
            common::status(daemon.pid, field),
            "0000000000000400",
            "{field}"
        );
    }
    assert_eq!(common::status(daemon.pid, "NoNewPrivs"), "1");
    assert_eq!(
        common::status(daemon.pid, "Uid"),
        "65534\t65534\t65534\t65534"
    );
    let limits = fs::read_to_string(format!("/proc/{}/limits", daemon.pid)).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        nofile
            .split_whitespace()
            .skip(3)
            .take(2)
            .collect::<Vec<_>>(),
        ["100", "200"],
        "{nofile}"
    );
    let status = daemon.stop(libc::SIGTERM);
    assert!(libc::WIFSIGNALED(status), "{status}");
    // A soft limit above the hard one: refused before anything forks.
    let output = plan(&[&arg("pid_file", &pid_file), "nofile=300:200"]);
    let said = stdout(&output);
    assert!(
        said.contains("error step=") && said.contains("forks=0"),
        "{said}"
    );
    assert!(
        said.contains("soft limit is above its hard limit"),
        "{said}"
    );
}

fn core_dumps_off_and_nice() {
    let mut daemon = common::started(&plan(&["nocore=1", "nice=5", "readiness=manual"]));
    let limits = fs::read_to_string(format!("/proc/{}/limits", daemon.pid)).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(),
        ["0", "0"],
        "{core}"
    );
    let stat = fs::read_to_string(format!("/proc/{}/stat", daemon.pid)).unwrap();
    let nice: i32 = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    let own = fs::read_to_string("/proc/self/stat").unwrap();
    let own_nice: i32 = own[own.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(nice, (own_nice + 5).min(19));
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

// ---- exec --------------------------------------------------------------

fn exec_runs_the_program_holding_the_lock() {
    let dir = TempDir::new("exec");
    let pid_file = dir.join("d.pid");
    let mut daemon = common::started(&plan(&[
        &arg("pid_file", &pid_file),
        "exec=/bin/sleep",
        "arg=60",
    ]));
    let exe = fs::read_link(format!("/proc/{}/exe", daemon.pid)).unwrap();
    assert!(exe.ends_with("sleep"), "{exe:?}");
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    assert_eq!(
        fs::read_to_string(format!("/proc/{}/cmdline", daemon.pid)).unwrap(),
        concat!("/bin/sleep", "\0", "60", "\0")
    );
    assert!(
        !flock_free(&pid_file),
        "the executed program does not hold the lock"
    );
    let stat = common::stat(daemon.pid);
    assert_ne!(stat.session, daemon.pid);
    assert_eq!(stat.tty_nr, 0);
    daemon.stop(libc::SIGTERM);
    // Nobody removes it (sleep does not know it), but the lock went with
    // sleep: the next start takes the stale file over.
    assert!(flock_free(&pid_file));
}

/// The exec variant from a host that has touched 512 MiB starts as any
/// other, through `clone(CLONE_VM | CLONE_VFORK)`: the caller's fork
/// handlers (counted by the helper with pthread_atfork) never run, as they
/// would for `fork`, which would copy the page tables of all 512 MiB. The
/// control: without the signal reset the start forks, and the count shows.
fn exec_from_a_large_host_without_fork() {
    let dir = TempDir::new("largehost");
    let pid_file = dir.join("d.pid");
    let output = plan(&[
        &arg("pid_file", &pid_file),
        "heap_mib=512",
        "exec=/bin/sleep",
        "arg=60",
    ]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(field(&text, "forks"), Some("0"), "{text}");
    let mut daemon = common::started(&output);
    let exe = fs::read_link(format!("/proc/{}/exe", daemon.pid)).unwrap();
    assert!(exe.ends_with("sleep"), "{exe:?}");
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    let stat = common::stat(daemon.pid);
    assert_ne!(stat.session, daemon.pid);
    assert_eq!(stat.session, stat.pgrp);
    assert_eq!(stat.tty_nr, 0);
    assert!(
        !flock_free(&pid_file),
        "the executed program does not hold the lock"
    );
    let status = daemon.stop(libc::SIGTERM);
    assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM);
    // The control: the same start without the signal reset forks.
    let output = plan(&[
        &arg("pid_file", &pid_file),
        "signals=0",
        "exec=/bin/sleep",
        "arg=60",
    ]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(field(&text, "forks"), Some("1"), "{text}");
    common::started(&output).stop(libc::SIGKILL);
}

fn exec_failures_reach_the_caller() {
    let dir = TempDir::new("execfail");
    let pid_file = dir.join("d.pid");
    let not_executable = dir.join("plain");
    fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let garbage = dir.join("garbage");
    fs::write(&garbage, [0x7fu8, b'E', 0, 0, 1, 2, 3]).unwrap();
    fs::set_permissions(&garbage, fs::Permissions::from_mode(0o755)).unwrap();
    let cases = [
        (dir.join("missing"), libc::ENOENT),
        (not_executable, libc::EACCES),
        (garbage, libc::ENOEXEC),
    ];
    for (program, errno) in cases {
        if errno == libc::EACCES && is_root() {
            // Root may read but still not execute a file with no x bit.
        }
        let output = plan(&[
            "subreaper=1",
            &arg("pid_file", &pid_file),
            &arg("exec", &program),
        ]);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{text}");
        assert_eq!(field(&text, "step"), Some("Exec"), "{text}");
        assert_eq!(
            field(&text, "errno"),
            Some(errno.to_string().as_str()),
            "{text}"
        );
        assert!(
            text.contains("message=failed to execute the program (execve): "),
            "{text}"
        );
        assert_eq!(field(&text, "left"), Some("0"), "{text}");
        assert!(
            !pid_file.exists(),
            "PID file left after a failed exec: {text}"
        );
    }
}

// ---- readiness protocols -----------------------------------------------

fn sd_notify_on_ready() {
    let dir = TempDir::new("sdnotify");
    let path = dir.join("notify");
    let socket = common::datagram_listener(&path);
    let mut daemon = common::started(&plan(&[&arg("notify_socket", &path), "readiness=manual"]));
    assert_eq!(
        common::next_datagram(&socket),
        format!("READY=1\nMAINPID={}\n", daemon.pid)
    );
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

/// The caller is told last: when `start` returns (and the caller may exit),
/// a supervisor listening on NOTIFY_SOCKET already has READY=1 and MAINPID.
fn sd_notify_before_the_caller_returns() {
    let dir = TempDir::new("sdorder");
    for _ in 0..20 {
        let path = dir.join("notify");
        let _ = fs::remove_file(&path);
        let output = plan(&[&arg("notify_listen", &path), "readiness=manual"]);
        let mut daemon = common::started(&output);
        let text = stdout(&output);
        assert!(
            text.contains("notified_first=Some(true)"),
            "the caller returned first: {text}"
        );
        assert_eq!(daemon.stop(libc::SIGTERM), 0);
    }
}

fn sd_notify_to_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("daemonic-test-{}", std::process::id());
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = std::os::unix::net::UnixDatagram::bind_addr(&address).unwrap();
    socket.set_read_timeout(Some(common::PATIENCE)).unwrap();
    let mut daemon = common::started(&plan(&[
        &format!("notify_socket=@{name}"),
        "readiness=manual",
    ]));
    assert_eq!(
        common::next_datagram(&socket),
        format!("READY=1\nMAINPID={}\n", daemon.pid)
    );
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

/// A pipe whose write end the helper inherits at fd `number`.
fn pipe_to(number: i32, command: &mut Command) -> OwnedFd {
    let mut ends = [0; 2];
    // SAFETY: pipe2 writes two new fds into `ends`, which we then own.
    assert_eq!(
        unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) },
        0
    );
    // SAFETY: both fds were just made by pipe2 and nothing else owns them.
    let (reader, writer) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    let fd = writer.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; `fd` is open in the child.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, number) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Ours goes when the command is spawned.
    std::mem::forget(writer);
    reader
}

fn s6_notification_fd_on_ready() {
    let mut command = common::helper("plan", &["notify_fd=901", "keep=901", "readiness=manual"]);
    let reader = pipe_to(901, &mut command);
    let output = common::run(&mut command);
    let mut daemon = common::started(&output);
    let mut reader = fs::File::from(reader);
    let mut byte = [0u8; 1];
    reader.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"\n");
    // The daemon closed it after the newline.
    assert!(!common::open_fds(daemon.pid).contains(&901));
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
}

/// The plan helper executing this binary as `program ARGS...`.
fn exec_self(extra: &[&str], program_args: &[&str], env: &[String]) -> Output {
    let mut args: Vec<String> = vec![
        arg("exec", &self_exe()),
        format!("env={}=program", common::HELPER_ENV),
    ];
    args.extend(env.iter().map(|e| format!("env={e}")));
    args.extend(program_args.iter().map(|a| format!("arg={a}")));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    plan(&refs)
}

fn program_ready_through_notify_socket() {
    let dir = TempDir::new("progready");
    let (socket, marker) = (dir.join("notify"), dir.join("marker"));
    let output = exec_self(
        &[&format!("await=socket:{}", socket.display())],
        &["ready", "300", marker.to_str().unwrap()],
        &[format!("NOTIFY_SOCKET={}", socket.display())],
    );
    let mut daemon = common::started(&output);
    assert!(marker.exists(), "returned before the program was ready");
    assert_eq!(
        fs::read_link(format!("/proc/{}/exe", daemon.pid)).unwrap(),
        self_exe()
    );
    assert!(!socket.exists(), "the caller's socket was left behind");
    // Reparented to us once the caller killed the waiting session leader.
    assert_eq!(common::stat(daemon.pid).ppid, std::process::id() as i32);
    daemon.stop(libc::SIGKILL);
}

fn program_ready_through_fd() {
    let dir = TempDir::new("progfd");
    let marker = dir.join("marker");
    let output = exec_self(
        &["await=fd:7"],
        &["fd", "7", "300", marker.to_str().unwrap()],
        &[],
    );
    let mut daemon = common::started(&output);
    assert!(marker.exists(), "returned before the program was ready");
    daemon.stop(libc::SIGKILL);
}

fn program_reporting_errno_fails_the_start() {
    let dir = TempDir::new("progerrno");
    let socket = dir.join("notify");
    let pid_file = dir.join("d.pid");
    let output = exec_self(
        &[
            &format!("await=socket:{}", socket.display()),
            &arg("pid_file", &pid_file),
            "subreaper=1",
        ],
        &["errno", "98"],
        &[format!("NOTIFY_SOCKET={}", socket.display())],
    );
    let text = stdout(&output);
    assert_eq!(field(&text, "step"), Some("Initialization"), "{text}");
    assert_eq!(field(&text, "errno"), Some("98"), "{text}");
    assert_eq!(field(&text, "left"), Some("0"), "{text}");
    assert!(!pid_file.exists());
}

fn program_exiting_early_reports_its_status() {
    let dir = TempDir::new("progexit");
    let socket = dir.join("notify");
    let output = exec_self(
        &[&format!("await=socket:{}", socket.display()), "subreaper=1"],
        &["exit", "3"],
        &[format!("NOTIFY_SOCKET={}", socket.display())],
    );
    let text = stdout(&output);
    assert!(
        text.contains("exited with status 3 before it was ready"),
        "{text}"
    );
    assert_eq!(field(&text, "left"), Some("0"), "{text}");
}

fn program_never_ready_is_killed() {
    let dir = TempDir::new("prognever");
    let socket = dir.join("notify");
    let pid_file = dir.join("d.pid");
    let output = exec_self(
        &[
            &format!("await=socket:{}", socket.display()),
            &arg("pid_file", &pid_file),
            "timeout_ms=400",
            "subreaper=1",
        ],
        &["never"],
        &[format!("NOTIFY_SOCKET={}", socket.display())],
    );
    let text = stdout(&output);
    assert!(
        text.contains("not ready within 0.400 s; it was killed"),
        "{text}"
    );
    assert_eq!(field(&text, "left"), Some("0"), "{text}");
    assert!(!pid_file.exists());
}

// ---- detaching ---------------------------------------------------------

// `Started` reaps the child by PID.
#[allow(clippy::zombie_processes)]
fn foreground_reports_to_notify_socket() {
    let dir = TempDir::new("foreground");
    let (path, place, pid_file) = (dir.join("notify"), dir.join("where"), dir.join("d.pid"));
    let socket = common::datagram_listener(&path);
    let mut command = common::helper(
        "plan",
        &[
            "detach=never",
            &arg("notify_socket", &path),
            &arg("where", &place),
            &arg("pid_file", &pid_file),
            "readiness=manual",
        ],
    );
    let child = command.stdout(std::process::Stdio::null()).spawn().unwrap();
    let mut daemon = Started::new(child.id() as i32);
    assert_eq!(
        common::next_datagram(&socket),
        format!("READY=1\nMAINPID={}\n", daemon.pid)
    );
    assert_eq!(
        fs::read_to_string(&place).unwrap(),
        format!("pid={}", daemon.pid)
    );
    assert_eq!(common::read_pid_file(&pid_file), daemon.pid);
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
    assert!(!pid_file.exists());
}

// `Started` reaps the child by PID.
#[allow(clippy::zombie_processes)]
fn auto_detach_stays_when_stdin_is_a_socket() {
    let dir = TempDir::new("inetd");
    let place = dir.join("where");
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut command = common::helper(
        "plan",
        &[
            "detach=auto",
            &arg("where", &place),
            "stdin=inherit",
            "readiness=manual",
        ],
    );
    let child = command
        .stdin(OwnedFd::from(theirs))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = Started::new(child.id() as i32);
    common::wait_until("the daemon wrote where it runs", || {
        fs::read_to_string(&place).is_ok_and(|text| !text.is_empty())
    });
    assert_eq!(
        fs::read_to_string(&place).unwrap(),
        format!("pid={}", daemon.pid)
    );
    assert_eq!(daemon.stop(libc::SIGTERM), 0);
    drop(ours);
}

/// Under a PID namespace whose init is `sh`, a helper started by it has
/// parent PID 1 and runs in place.
fn auto_detach_stays_under_init() {
    if !is_root() {
        println!("auto_detach_stays_under_init: needs root, skipped");
        return;
    }
    let dir = TempDir::new("underinit");
    let (place, spawned) = (dir.join("where"), dir.join("spawned"));
    let script = format!(
        "{}={} {} detach=auto where={} timeout_ms=1000 & echo $! > {}; sleep 0.5; kill $!",
        common::HELPER_ENV,
        "plan",
        self_exe().display(),
        place.display(),
        spawned.display()
    );
    let status = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(status.success() || status.code().is_some());
    let place = fs::read_to_string(&place).expect("the helper ran");
    let spawned = fs::read_to_string(&spawned).unwrap();
    assert_eq!(
        place,
        format!("pid={}", spawned.trim()),
        "it forked under init"
    );
}

#[cfg(feature = "std")]
fn unknown_user_is_refused_before_fork() {
    let dir = TempDir::new("nouser");
    let pid_file = dir.join("d.pid");
    let output = common::run(&mut common::helper(
        "builder-user",
        &["no-such-user-here", pid_file.to_str().unwrap()],
    ));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "message=invalid user no-such-user-here: no such entry in the system's database"
        ),
        "{text}"
    );
    assert!(!pid_file.exists());
}
