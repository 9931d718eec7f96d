//! `daemonic --foreground --supervise -- PROGRAM` as a container's entry
//! point, on the scenarios of tini's and dumb-init's own tests: terminals
//! (dumb-init's tty_test: `tac`, `bash -m`; Ctrl-C), programs that cannot
//! be executed (126, 127), the working directory (Docker's WORKDIR), the
//! signal configuration (tini's sigconf test), the terminal stop signals,
//! exit statuses and their remap (tini's `-e`), and a graceful tree stop.
//! Each runs as a plain child and as PID 1 of a PID namespace.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Started, TempDir, stderr, stdout};

fn main() {
    common::main(helpers, tests());
}

fn tests() -> Vec<common::Test> {
    vec![
        ("a_terminal_program_reads_it", a_terminal_program_reads_it),
        ("job_control_in_a_shell", job_control_in_a_shell),
        ("ctrl_c_reaches_the_program", ctrl_c_reaches_the_program),
        ("the_terminal_goes_back", the_terminal_goes_back),
        (
            "programs_that_cannot_be_executed",
            programs_that_cannot_be_executed,
        ),
        (
            "the_callers_working_directory",
            the_callers_working_directory,
        ),
        (
            "the_callers_signal_configuration",
            the_callers_signal_configuration,
        ),
        (
            "terminal_stop_signals_do_not_stop_the_supervisor",
            terminal_stop_signals_do_not_stop_the_supervisor,
        ),
        ("sigterm_statuses", sigterm_statuses),
        ("success_exit_remaps", success_exit_remaps),
        ("graceful_tree_stop", graceful_tree_stop),
    ]
}

// ---- helpers this binary runs -------------------------------------------

fn helpers(name: &str, args: Vec<String>) {
    match name {
        // tini's sigconf-test: ignore and block a few signals, then execute.
        "sigconf" => {
            // SAFETY: dispositions and the mask of this single-threaded
            // helper, right before it executes.
            unsafe {
                for signal in [libc::SIGTTOU, libc::SIGSEGV, libc::SIGINT] {
                    libc::signal(signal, libc::SIG_IGN);
                }
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for signal in [libc::SIGTTIN, libc::SIGILL, libc::SIGTERM] {
                    libc::sigaddset(&mut set, signal);
                }
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            let error = Command::new(&args[0]).args(&args[1..]).exec();
            panic!("exec {}: {error}", args[0]);
        }
        other => panic!("no helper {other}"),
    }
}

// ---- where daemonic runs ---------------------------------------------------

/// A plain child of the test, or PID 1 of a PID namespace.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    Child,
    Pid1,
}

const PLACES: [Place; 2] = [Place::Child, Place::Pid1];

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The places this machine can run: PID namespaces need root.
fn places(case: &str) -> Vec<Place> {
    if root() && Path::new("/usr/bin/unshare").exists() {
        PLACES.to_vec()
    } else {
        println!("{case}: as PID 1: skipped (needs root and unshare)");
        vec![Place::Child]
    }
}

/// `daemonic --foreground --supervise OPTIONS -- PROGRAM...` at `place`;
/// as PID 1 after `setsid --ctty` when `terminal`, so that PID 1 is the
/// session leader holding the terminal, as under `docker run -it`.
fn entry(place: Place, terminal: bool, options: &[&str], program: &[&str]) -> Command {
    let mut args = vec![
        env!("CARGO_BIN_EXE_daemonic"),
        "--foreground",
        "--supervise",
    ];
    args.extend_from_slice(options);
    args.push("--");
    args.extend_from_slice(program);
    let mut command = match place {
        Place::Child => Command::new(args[0]),
        Place::Pid1 => {
            let mut command = Command::new("unshare");
            command.args(["--fork", "--pid", "--mount-proc"]);
            if terminal {
                command.args(["setsid", "--ctty"]);
            }
            command.arg(args[0]);
            command
        }
    };
    command.args(&args[1..]).stdin(Stdio::null());
    command
}

/// The supervisor's PID as the host sees it: `command`'s own, or the child
/// unshare forked.
fn supervisor_of(place: Place, spawned: i32) -> i32 {
    match place {
        Place::Child => spawned,
        Place::Pid1 => child_of(spawned),
    }
}

fn child_of(parent: i32) -> i32 {
    let mut child = 0;
    common::wait_until("a child", || {
        let path = format!("/proc/{parent}/task/{parent}/children");
        child = fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .map_or(0, |c| c.parse().unwrap());
        child > 0
    });
    child
}

/// Started, to be waited for (or killed and reaped) by its PID.
fn spawned(mut command: Command) -> Started {
    Started::new(command.spawn().unwrap().id() as i32)
}

fn run(mut command: Command) -> Output {
    common::run(&mut command)
}

// ---- a terminal ---------------------------------------------------------

/// A pseudo-terminal whose slave side `command` gets as its standard
/// streams, echo and output processing off (what is read is what the
/// program wrote). Plain: the command is made session leader with it as
/// its controlling terminal; as PID 1, `setsid --ctty` does that inside.
struct Pty {
    master: fs::File,
    child: Started,
}

impl Pty {
    fn spawn(place: Place, mut command: Command) -> Pty {
        let (master, slave) = match place {
            Place::Child => common::with_controlling_terminal(&mut command),
            Place::Pid1 => {
                let (master, slave) = open_pty();
                let stream = || Stdio::from(slave.try_clone().unwrap());
                command.stdin(stream()).stdout(stream()).stderr(stream());
                (master, slave)
            }
        };
        raw_output(&slave);
        let child = Started::new(command.spawn().unwrap().id() as i32);
        drop(slave);
        Pty { master, child }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Everything written to the terminal until every slave side is closed
    /// (EIO), waiting at most [`common::PATIENCE`].
    fn read_to_end(&mut self) -> String {
        let deadline = Instant::now() + common::PATIENCE;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the terminal stayed open: {}",
                String::from_utf8_lossy(&all)
            );
            let mut poll = libc::pollfd {
                fd: self.master.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd of ours.
            let ready = unsafe { libc::poll(&mut poll, 1, left.as_millis() as i32) };
            if ready <= 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            match self.master.read(&mut buf) {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&all).into_owned(),
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    }
}

fn open_pty() -> (fs::File, OwnedFd) {
    // SAFETY: a new pty pair's fds, both ours.
    unsafe {
        let (mut master, mut slave) = (0, 0);
        let rc = libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        );
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        for fd in [master, slave] {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        use std::os::fd::FromRawFd;
        (fs::File::from_raw_fd(master), OwnedFd::from_raw_fd(slave))
    }
}

/// Echo and output processing off, as dumb-init's tty test has them.
fn raw_output(slave: &OwnedFd) {
    // SAFETY: termios of our own terminal fd.
    unsafe {
        let mut attrs: libc::termios = std::mem::zeroed();
        assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut attrs), 0);
        attrs.c_oflag &= !libc::OPOST;
        attrs.c_lflag &= !libc::ECHO;
        assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &attrs), 0);
    }
}

/// dumb-init's test_tty: `tac` reads the terminal, which it can only do in
/// the terminal's foreground process group.
fn a_terminal_program_reads_it() {
    for place in places("a_terminal_program_reads_it") {
        let mut pty = Pty::spawn(place, entry(place, true, &[], &["tac"]));
        pty.write(b"1\n2\n3\n");
        pty.write(b"\x04\x04");
        let output = pty.read_to_end();
        assert_eq!(pty.child.wait(), 0, "{place:?}: {output:?}");
        assert_eq!(output, "3\n2\n1\n", "{place:?}");
    }
}

/// dumb-init's test_child_gets_controlling_tty_if_we_had_one: `bash -m`
/// has job control.
fn job_control_in_a_shell() {
    if !Path::new("/bin/bash").exists() {
        println!("job_control_in_a_shell: skipped: no bash");
        return;
    }
    for place in places("job_control_in_a_shell") {
        let command = entry(place, true, &[], &["/bin/bash", "--norc", "-m"]);
        let mut pty = Pty::spawn(place, command);
        pty.write(b"echo \"flags are: [[$-]]\"\n");
        pty.write(b"exit 0\n");
        let output = pty.read_to_end();
        assert_eq!(pty.child.wait(), 0, "{place:?}: {output}");
        let flags = output
            .split("flags are: [[")
            .nth(1)
            .and_then(|rest| rest.split("]]").next())
            .unwrap_or_else(|| panic!("{place:?}: no flags in {output:?}"));
        assert!(
            flags.contains('m'),
            "{place:?}: no job control: {flags:?} in {output:?}"
        );
    }
}

/// Ctrl-C reaches the program, the terminal's foreground group, which dies
/// of SIGINT: status 130, as a shell reports it.
fn ctrl_c_reaches_the_program() {
    for place in places("ctrl_c_reaches_the_program") {
        let mut pty = Pty::spawn(place, entry(place, true, &[], &["cat"]));
        let supervisor = supervisor_of(place, pty.child.pid);
        let program = child_of(supervisor);
        common::wait_until("the program has the terminal", || {
            tpgid(supervisor) == Some(program)
        });
        pty.write(b"\x03");
        let output = pty.read_to_end();
        let status = pty.child.wait();
        assert_eq!(status, 130 << 8, "{place:?}: {output:?}");
    }
}

/// The terminal's foreground group (`tpgid` of `/proc/PID/stat`).
fn tpgid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(5)?
        .parse()
        .ok()
}

/// When the program exits, the terminal goes back to the group that had it
/// (here the shell's, daemonic's own), as it was.
fn the_terminal_goes_back() {
    let script = format!(
        "{} --foreground --supervise -- sh -c 'exit 3'; \
         echo \"status=$? tpgid=$(cut -d' ' -f8 /proc/$$/stat) pgrp=$(cut -d' ' -f5 /proc/$$/stat)\"",
        env!("CARGO_BIN_EXE_daemonic")
    );
    let mut command = Command::new("sh");
    command.args(["-c", &script]);
    let mut pty = Pty::spawn(Place::Child, command);
    let output = pty.read_to_end();
    assert_eq!(pty.child.wait(), 0, "{output}");
    let field = |key| common::field(&output, key).map(str::to_owned);
    assert_eq!(field("status").as_deref(), Some("3"), "{output}");
    assert_eq!(field("tpgid"), field("pgrp"), "{output}");
}

// ---- programs that cannot be executed -------------------------------------

/// As shells, tini and docker report them: 127 not found, 126 found but
/// not executable, each with one line saying so.
fn programs_that_cannot_be_executed() {
    let dir = TempDir::new("noexec");
    let data = dir.join("data");
    fs::write(&data, "not a program\n").unwrap();
    for place in places("programs_that_cannot_be_executed") {
        for (program, status, text) in [
            (
                "no-such-program-here",
                127,
                "no program 'no-such-program-here' in PATH",
            ),
            ("/no/such/program", 127, "/no/such/program"),
            (data.to_str().unwrap(), 126, "Permission denied"),
        ] {
            let output = run(entry(place, false, &[], &[program]));
            let err = stderr(&output);
            assert_eq!(
                output.status.code(),
                Some(status),
                "{place:?} {program}: {err}"
            );
            assert!(
                err.starts_with("daemonic: ") && err.lines().count() == 1 && err.contains(text),
                "{place:?} {program}: {err:?}"
            );
        }
    }
    // Without --supervise, in the foreground: the same statuses.
    let mut plain = Command::new(env!("CARGO_BIN_EXE_daemonic"));
    plain.args(["--foreground", "--", data.to_str().unwrap()]);
    assert_eq!(run(plain).status.code(), Some(126));
}

// ---- the working directory ---------------------------------------------------

/// Docker's WORKDIR: the program starts where daemonic was started, unless
/// `-C` says otherwise (without --foreground the default stays `/`).
fn the_callers_working_directory() {
    let dir = TempDir::new("workdir");
    for place in places("the_callers_working_directory") {
        let mut command = entry(place, false, &[], &["/bin/pwd"]);
        command.current_dir(dir.path());
        let output = run(command);
        assert_eq!(
            stdout(&output).trim_end(),
            dir.path().to_str().unwrap(),
            "{place:?}"
        );
        let mut command = entry(place, false, &["-C", "/"], &["/bin/pwd"]);
        command.current_dir(dir.path());
        assert_eq!(stdout(&run(command)), "/\n", "{place:?}");
    }
}

// ---- signals ---------------------------------------------------------------

/// A `/proc/self/status` mask, as signal numbers.
fn signals_in(status: &str, key: &str) -> Vec<i32> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in {status}"));
    let mask = u64::from_str_radix(hex.trim(), 16).unwrap();
    (1..=64).filter(|n| mask & (1 << (n - 1)) != 0).collect()
}

/// `/proc/self/status` of a child this test starts directly.
fn direct_child_status() -> String {
    let mut cat = Command::new("cat");
    cat.arg("/proc/self/status");
    stdout(&run(cat))
}

/// tini's sigconf test: the program gets the ignored signals and the mask
/// the entry point was started with; the supervisor's own (its signalfd's
/// mask, SIGPIPE, SIGTTIN, SIGTTOU ignored) do not leak into it.
fn the_callers_signal_configuration() {
    for place in places("the_callers_signal_configuration") {
        let command = entry(place, false, &[], &["cat", "/proc/self/status"]);
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
        let mut wrapped = common::helper("sigconf", &[]);
        wrapped.arg(program).args(args);
        let output = run(wrapped);
        let status = stdout(&output);
        assert!(output.status.success(), "{place:?}: {}", stderr(&output));
        let ignored = signals_in(&status, "SigIgn");
        let blocked = signals_in(&status, "SigBlk");
        for signal in [libc::SIGTTOU, libc::SIGSEGV, libc::SIGINT] {
            assert!(
                ignored.contains(&signal),
                "{place:?}: {signal} not ignored: {ignored:?}"
            );
        }
        for signal in [libc::SIGTTIN, libc::SIGILL, libc::SIGTERM] {
            assert!(
                blocked.contains(&signal),
                "{place:?}: {signal} not blocked: {blocked:?}"
            );
        }
        assert!(!ignored.contains(&libc::SIGPIPE), "{place:?}: {ignored:?}");
        // Started as this test starts any child, the program has what such
        // a child has (glibc's posix_spawn leaves its reserved signals, 32
        // and 33, ignored in it), nothing of the supervisor's.
        let status = stdout(&run(entry(
            place,
            false,
            &[],
            &["cat", "/proc/self/status"],
        )));
        let baseline = direct_child_status();
        for key in ["SigIgn", "SigBlk"] {
            assert_eq!(
                signals_in(&status, key),
                signals_in(&baseline, key),
                "{place:?} {key}"
            );
        }
    }
}

/// A supervisor in a background job is not stopped by the terminal's stop
/// signals (it ignores them, as tini does); the program gets the default.
fn terminal_stop_signals_do_not_stop_the_supervisor() {
    for place in places("terminal_stop_signals_do_not_stop_the_supervisor") {
        let mut outer = spawned(entry(place, false, &[], &["sleep", "30"]));
        let supervisor = supervisor_of(place, outer.pid);
        let program = child_of(supervisor);
        common::wait_until("the program runs", || {
            common::status(program, "Name") == "sleep"
        });
        let status_of = |pid: i32| fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let ignored = signals_in(&status_of(supervisor), "SigIgn");
        assert!(
            ignored.contains(&libc::SIGTTIN) && ignored.contains(&libc::SIGTTOU),
            "{place:?}: {ignored:?}"
        );
        // (A namespace's init ignores these from outside anyway; the plain
        // child is the case that would stop.)
        common::kill(supervisor, libc::SIGTTOU);
        common::kill(supervisor, libc::SIGTTIN);
        std::thread::sleep(Duration::from_millis(100));
        assert_ne!(
            common::stat(supervisor).state,
            'T',
            "{place:?}: the supervisor stopped"
        );
        let baseline = signals_in(&direct_child_status(), "SigIgn");
        assert_eq!(
            signals_in(&status_of(program), "SigIgn"),
            baseline,
            "{place:?}: the program inherited the supervisor's"
        );
        common::kill(supervisor, libc::SIGTERM);
        let expected = match place {
            Place::Child => 0,
            Place::Pid1 => 143 << 8,
        };
        assert_eq!(outer.wait(), expected, "{place:?}");
    }
}

/// SIGTERM to the entry point stops the tree. As PID 1 the status is the
/// program's (143 for `sleep`, as tini and docker report it); as a plain
/// child a stop asked for is 0 (what systemd counts as a clean stop of a
/// `Type=notify` service).
fn sigterm_statuses() {
    for place in places("sigterm_statuses") {
        let mut outer = spawned(entry(place, false, &[], &["sleep", "30"]));
        let supervisor = supervisor_of(place, outer.pid);
        let program = child_of(supervisor);
        common::wait_until("the program runs", || {
            common::status(program, "Name") == "sleep"
        });
        common::kill(supervisor, libc::SIGTERM);
        let expected = match place {
            Place::Child => 0,
            Place::Pid1 => 143 << 8,
        };
        assert_eq!(outer.wait(), expected, "{place:?}");
    }
}

/// tini's exit code test: with `--success-exit N`, status N is 0; with
/// every other status remapped, N stays N. Also for a signal's 128+N.
fn success_exit_remaps() {
    for code in [0, 1, 42, 143, 255] {
        let script = format!("exit {code}");
        let status = |remap: &[String]| {
            let mut options: Vec<&str> = Vec::new();
            for n in remap {
                options.extend(["--success-exit", n.as_str()]);
            }
            run(entry(Place::Child, false, &options, &["sh", "-c", &script]))
                .status
                .code()
        };
        assert_eq!(status(&[code.to_string()]), Some(0), "-e {code}");
        let others: Vec<String> = (0..256)
            .filter(|&n| n != code)
            .map(|n| n.to_string())
            .collect();
        assert_eq!(status(&others), Some(code), "every status but {code}");
    }
    // As PID 1, a JVM's 143 (the program killed by SIGTERM) counted as 0.
    for place in places("success_exit_remaps") {
        let output = run(entry(
            place,
            false,
            &["--success-exit", "143"],
            &["sh", "-c", "kill $$"],
        ));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{place:?}: {}",
            stderr(&output)
        );
    }
}

/// tini #180: the program and a daemon it left re-parented to the
/// supervisor each handle SIGTERM; the supervisor exits right after the
/// last one is gone, not at the 60 s `--timeout`, and neither got SIGKILL.
fn graceful_tree_stop() {
    for place in places("graceful_tree_stop") {
        let dir = TempDir::new("graceful");
        let log = dir.join("log");
        let script = format!(
            "(setsid sh -c 'trap \"echo daemon >> {log}; exit 0\" TERM; echo up >> {log}; while :; do sleep 0.05; done' &); \
             trap 'echo program >> {log}; exit 0' TERM; echo up >> {log}; while :; do sleep 0.05; done",
            log = log.display()
        );
        let mut outer = spawned(entry(
            place,
            false,
            &["--timeout", "60"],
            &["sh", "-c", &script],
        ));
        let supervisor = supervisor_of(place, outer.pid);
        common::wait_until("both up", || {
            fs::read_to_string(&log).is_ok_and(|t| t.matches("up").count() == 2)
        });
        common::kill(supervisor, libc::SIGTERM);
        // Waits at most PATIENCE (10 s), well under the 60 s timeout.
        assert_eq!(outer.wait(), 0, "{place:?}");
        let text = fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("program\n") && text.contains("daemon\n"),
            "{place:?}: {text}"
        );
    }
}
