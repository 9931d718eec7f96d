//! Hardening as systemd's unit options give it, without systemd (feature
//! `harden`), checked from outside: a program run as nobody binds a
//! privileged port with `--cap net_bind_service` alone (and cannot
//! without it), `CapAmb`, `CapBnd`, `NoNewPrivs` and `/proc/PID/limits`
//! as asked, plain and supervised; `--env-file` lines as systemd reads
//! them reach the program; bad input is one line, status 1, before
//! anything starts.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Started, TempDir, assert_one_line_error, stderr};

fn main() {
    let exe = std::env::current_exe().unwrap();
    common::main_with_public_copies(helpers, tests(), &[&exe]);
}

fn tests() -> Vec<common::Test> {
    vec![
        (
            "cap_lets_nobody_bind_a_privileged_port",
            cap_lets_nobody_bind_a_privileged_port,
        ),
        ("env_files_reach_the_program", env_files_reach_the_program),
        (
            "runtime_dir_is_made_owned_and_removed",
            runtime_dir_is_made_owned_and_removed,
        ),
        ("bad_input_starts_nothing", bad_input_starts_nothing),
        (
            "listen_hands_sockets_across_restarts",
            listen_hands_sockets_across_restarts,
        ),
    ]
}

// ---- programs daemonic runs (this binary, by DAEMONIC_TEST_HELPER) --------

fn helpers(name: &str, args: Vec<String>) {
    match name {
        // Binds 127.0.0.1:PORT and says so on stdout (or why not); then
        // answers each connection with "hello".
        "bind" => {
            let listener =
                match std::net::TcpListener::bind(("127.0.0.1", args[0].parse().unwrap())) {
                    Ok(listener) => listener,
                    Err(error) => {
                        println!("error {}", error.raw_os_error().unwrap_or(0));
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                };
            println!("bound");
            for stream in listener.incoming() {
                let _ = stream.unwrap().write_all(b"hello");
            }
        }
        // Socket activation as sd_listen_fds(3) reads it: LISTEN_PID must
        // be this process; fd 3 is a TCP listener. Each connection's line
        // gets "PID NAMES" back, but "crash", which ends it with status 1.
        "activated" => {
            use std::io::BufRead;
            use std::os::fd::FromRawFd;
            let pid: u32 = std::env::var("LISTEN_PID").unwrap().parse().unwrap();
            assert_eq!(pid, std::process::id(), "LISTEN_PID");
            assert_eq!(std::env::var("LISTEN_FDS").unwrap(), args[0]);
            let names = std::env::var("LISTEN_FDNAMES").unwrap();
            // SAFETY: fd 3 is the listening socket daemonic handed over.
            let listener = unsafe { std::net::TcpListener::from_raw_fd(3) };
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                let mut line = String::new();
                std::io::BufReader::new(&stream)
                    .read_line(&mut line)
                    .unwrap();
                if line.trim() == "crash" {
                    std::process::exit(1);
                }
                writeln!(stream, "{pid} {names}").unwrap();
            }
        }
        other => panic!("no helper {other}"),
    }
}

// ---- support --------------------------------------------------------------

fn daemonic(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_daemonic"));
    command.args(args).stdin(Stdio::null());
    common::run(&mut command)
}

/// `daemonic OPTIONS --env=HELPER=mode -- THIS_BINARY (public copy) ARGS`.
fn start(options: &[&str], mode: &str, args: &[&str]) -> Output {
    let env = format!("--env={}={mode}", common::HELPER_ENV);
    let program = common::public_copy(&std::env::current_exe().unwrap());
    let mut all = options.to_vec();
    all.extend([env.as_str(), "--", arg(&program)]);
    all.extend_from_slice(args);
    daemonic(&all)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A privileged port in `range` nothing listens on now (bound and let go
/// by root); each test has a range of its own, as they run in parallel.
fn free_privileged_port(mut range: std::ops::Range<u16>) -> u16 {
    range
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below 1024")
}

/// The first line the program wrote to `out`.
fn first_line(out: &Path) -> String {
    let mut line = String::new();
    common::wait_until("the program's first line", || {
        line = fs::read_to_string(out).unwrap_or_default();
        line.ends_with('\n')
    });
    line.trim_end().to_string()
}

/// `/proc/PID/limits`' soft and hard "Max open files".
fn open_files_limits(pid: i32) -> Vec<String> {
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace()
        .skip(3)
        .take(2)
        .map(String::from)
        .collect()
}

// ---- the tests ------------------------------------------------------------

/// systemd's AmbientCapabilities=CAP_NET_BIND_SERVICE with User=nobody:
/// without `--cap` the bind is refused (EACCES), with it a client gets
/// an answer, and the program holds that capability alone, ambient, under
/// no_new_privs, with the limits asked for. Under `--supervise` the
/// program the supervisor starts (and restarts) has the same.
fn cap_lets_nobody_bind_a_privileged_port() {
    if !is_root() {
        println!("cap_lets_nobody_bind_a_privileged_port: needs root, skipped");
        return;
    }
    let dir = TempDir::new("cap");
    let (pid_file, out) = (dir.join("d.pid"), dir.join("out"));
    let port = free_privileged_port(600..800).to_string();
    let base = ["-p", arg(&pid_file), "-u", "nobody", "-o", arg(&out)];

    // The control: nobody alone may not.
    let started = start(&base, "bind", &[&port]);
    assert!(started.status.success(), "{}", stderr(&started));
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert_eq!(first_line(&out), format!("error {}", libc::EACCES));
    assert_eq!(common::status(daemon.pid, "CapAmb"), "0000000000000000");
    daemon.stop(libc::SIGKILL);
    fs::remove_file(&out).unwrap();

    let hardening = [
        "--cap",
        "net_bind_service",
        "--no-new-privs",
        "--limit",
        "nofile=100:200",
    ];
    let mut supervised = vec![false];
    if common::SUPERVISE {
        supervised.push(true);
    }
    for supervise in supervised {
        let mut options = base.to_vec();
        options.extend(hardening);
        if supervise {
            options.push("--supervise");
        }
        let started = start(&options, "bind", &[&port]);
        assert!(started.status.success(), "{}", stderr(&started));
        let mut daemon = Started::new(common::read_pid_file(&pid_file));
        let program = if supervise {
            common::program_of(daemon.pid)
        } else {
            daemon.pid
        };
        assert_eq!(first_line(&out), "bound", "supervised: {supervise}");
        let mut client =
            std::net::TcpStream::connect(("127.0.0.1", port.parse().unwrap())).unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "hello");
        for field in ["CapAmb", "CapBnd", "CapPrm", "CapEff"] {
            assert_eq!(
                common::status(program, field),
                "0000000000000400",
                "{field}, supervised: {supervise}"
            );
        }
        assert_eq!(common::status(program, "NoNewPrivs"), "1");
        assert_eq!(common::status(program, "Uid"), "65534\t65534\t65534\t65534");
        assert_eq!(open_files_limits(program), ["100", "200"]);
        assert_eq!(
            daemon.stop(libc::SIGTERM) & 0x7f,
            if supervise { 0 } else { libc::SIGTERM }
        );
        fs::remove_file(&out).unwrap();
    }
}

/// Lines as systemd's EnvironmentFile= reads them reach the program, a
/// later file over an earlier one, `--env` over both; nothing is expanded.
fn env_files_reach_the_program() {
    let dir = TempDir::new("envfile");
    let (pid_file, out) = (dir.join("d.pid"), dir.join("out"));
    let (first, second) = (dir.join("first.env"), dir.join("second.env"));
    fs::write(
        &first,
        "# the service's settings\n; also a comment\n\nPORT=80\n  NAME = 'a b'  \nHOME_TOO=$HOME\nQUOTED=\"say \\\"hi\\\"\"\nJOINED=one\\\ntwo\nSHADOWED=first\n",
    )
    .unwrap();
    fs::write(&second, "SHADOWED=second\nGIVEN=file\n").unwrap();
    let started = daemonic(&[
        "-p",
        arg(&pid_file),
        "-o",
        arg(&out),
        "--env-file",
        arg(&first),
        "--env-file",
        arg(&second),
        "--env=GIVEN=option",
        "--",
        "/bin/sh",
        "-c",
        "printf '%s|' \"$PORT\" \"$NAME\" \"$HOME_TOO\" \"$QUOTED\" \"$JOINED\" \"$SHADOWED\" \"$GIVEN\"; echo; exec sleep 60",
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    assert_eq!(
        first_line(&out),
        "80|a b|$HOME|say \"hi\"|onetwo|second|option|"
    );
    daemon.stop(libc::SIGTERM);
}

/// systemd's RuntimeDirectory=: /run/NAME made 0755 for `-u`'s user
/// (who writes in it, and finds it in RUNTIME_DIRECTORY), holding the PID
/// file; `--stop --runtime-dir` removes it with what it holds. A
/// supervisor running as root removes it itself at exit; one running as
/// nobody empties it, and `--stop` removes what is left. A failed start
/// leaves nothing it made.
fn runtime_dir_is_made_owned_and_removed() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !is_root() {
        println!("runtime_dir_is_made_owned_and_removed: needs root, skipped");
        return;
    }
    let name = format!("daemonic-test-{}", std::process::id());
    let dir = Path::new("/run").join(&name);
    let pid_file = dir.join("d.pid");
    let script = "echo \"$RUNTIME_DIRECTORY\" > \"$RUNTIME_DIRECTORY/where\"; exec sleep 60";
    let stop = || daemonic(&["--stop", "-p", arg(&pid_file), "--runtime-dir", &name]);
    let mut runs = vec![(vec!["-u", "nobody"], false)];
    if common::SUPERVISE {
        runs.push((vec!["-u", "nobody", "--supervise"], true));
        runs.push((vec!["--supervise"], true));
    }
    for (options, supervised) in runs {
        let mut args = vec!["-p", arg(&pid_file), "--runtime-dir", &name];
        args.extend(&options);
        args.extend(["--", "/bin/sh", "-c", script]);
        let started = daemonic(&args);
        assert!(
            started.status.success(),
            "{options:?}: {}",
            stderr(&started)
        );
        let mut daemon = Started::new(common::read_pid_file(&pid_file));
        let meta = fs::metadata(&dir).unwrap();
        let nobody = options.contains(&"nobody");
        assert_eq!(meta.uid(), if nobody { 65534 } else { 0 }, "{options:?}");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        common::wait_until("the program wrote into it", || {
            fs::read_to_string(dir.join("where")).is_ok_and(|w| w.ends_with('\n'))
        });
        assert_eq!(
            fs::read_to_string(dir.join("where")).unwrap(),
            format!("/run/{name}\n")
        );
        if supervised {
            // The supervisor ends by itself: as root it removes the
            // directory, as nobody it empties it.
            common::kill(daemon.pid, libc::SIGTERM);
            daemon.wait();
            if nobody {
                let left: Vec<_> = fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                assert!(left.is_empty(), "{options:?}: {left:?}");
                assert_eq!(stop().status.code(), Some(1));
            }
        } else {
            assert_eq!(stop().status.code(), Some(0));
            daemon.wait();
        }
        assert!(!dir.exists(), "{options:?}: /run/{name} left");
    }
    // A start that fails removes the directory it made.
    let failed = daemonic(&[
        "-p",
        arg(&pid_file),
        "--runtime-dir",
        &name,
        "--",
        "/no/such/program",
    ]);
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    assert!(!dir.exists(), "a failed start left /run/{name}");
}

/// systemd's socket activation: a port below 1024 (and under `--supervise`
/// a unix socket too), bound as root and handed at fds 3 and 4 to a program
/// running as nobody (without any capability), with LISTEN_PID its own
/// PID, plain and supervised; the supervisor keeps them, so a client that
/// connects while the program restarts is answered by the next run, not
/// refused.
fn listen_hands_sockets_across_restarts() {
    use std::io::BufRead;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !is_root() {
        println!("listen_hands_sockets_across_restarts: needs root, skipped");
        return;
    }
    let dir = TempDir::new("listen");
    let (pid_file, out, unix) = (dir.join("s.pid"), dir.join("out"), dir.join("s.sock"));
    let port = free_privileged_port(800..1000);
    let tcp = format!("127.0.0.1:{port}");
    let unix_address = format!("unix:{}", arg(&unix));
    let ask = |line: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        writeln!(stream, "{line}").unwrap();
        let mut answer = String::new();
        std::io::BufReader::new(stream)
            .read_line(&mut answer)
            .unwrap();
        answer
    };
    // Plain: the daemon itself is the program, its PID LISTEN_PID (the
    // start executes it through daemonic, which sets it).
    let started = start(
        &["-p", arg(&pid_file), "-u", "nobody", "--listen", &tcp],
        "activated",
        &["1"],
    );
    assert!(started.status.success(), "{}", stderr(&started));
    let mut daemon = Started::new(common::read_pid_file(&pid_file));
    let answer = ask("hi");
    assert_eq!(answer, format!("{} tcp-{port}\n", daemon.pid));
    assert_eq!(
        common::status(daemon.pid, "Uid"),
        "65534\t65534\t65534\t65534"
    );
    assert_eq!(daemon.stop(libc::SIGTERM) & 0x7f, libc::SIGTERM);
    if !common::SUPERVISE {
        return;
    }
    let started = start(
        &[
            "-p",
            arg(&pid_file),
            "--supervise",
            "-u",
            "nobody",
            "--restart=0.5",
            "--listen",
            &tcp,
            "--listen",
            &unix_address,
            "-o",
            arg(&out),
        ],
        "activated",
        &["2"],
    );
    assert!(started.status.success(), "{}", stderr(&started));
    let mut supervisor = Started::new(common::read_pid_file(&pid_file));
    let first = ask("hi");
    let (pid, names) = first.trim().split_once(' ').unwrap();
    assert_eq!(names, format!("tcp-{port}:unix"));
    let pid: i32 = pid.parse().unwrap();
    assert_eq!(common::status(pid, "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(common::status(pid, "CapEff"), "0000000000000000");
    let meta = fs::metadata(&unix).unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (65534, 0o666)
    );
    assert!(std::os::unix::net::UnixStream::connect(&unix).is_ok());
    // The program ends; for 0.5 s none runs. A client now still gets in.
    let _ = ask("crash");
    common::wait_until("the first run gone", || {
        fs::metadata(format!("/proc/{pid}")).is_err() || common::stat(pid).state == 'Z'
    });
    let second = ask("hi again");
    let (next, _) = second.trim().split_once(' ').unwrap();
    assert_ne!(next.parse::<i32>().unwrap(), pid, "answered by a new run");
    common::kill(supervisor.pid, libc::SIGTERM);
    assert_eq!(supervisor.wait(), 0);
}

/// Each mistake is one line naming what is wrong (the file and line of an
/// env file), status 1, and nothing starts: no process, no PID file. A
/// FIFO given as an env file is refused without waiting for a writer.
fn bad_input_starts_nothing() {
    let dir = TempDir::new("hardenbad");
    let pid_file = dir.join("d.pid");
    let malformed = dir.join("bad.env");
    fs::write(&malformed, "A=1\n\nnot a setting\n").unwrap();
    let quote = dir.join("quote.env");
    fs::write(&quote, "A='never closed\nB=2\n").unwrap();
    let fifo = dir.join("fifo.env");
    let c_fifo = std::ffi::CString::new(arg(&fifo)).unwrap();
    // SAFETY: a valid path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
    let token = format!("hardenbad-{}", std::process::id());
    let malformed_said = format!("--env-file {}: line 3: expected KEY=VALUE", arg(&malformed));
    let quote_said = format!("--env-file {}: line 1: no closing quote", arg(&quote));
    let fifo_said = format!("--env-file {}: not a regular file", arg(&fifo));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_address = busy.local_addr().unwrap().to_string();
    let busy_said = format!("--listen {busy_address}: cannot bind: Address");
    let missing = dir.join("missing.env");
    let missing_said = format!("--env-file {}: No such file or directory", arg(&missing));
    for (options, said) in [
        (
            vec!["--cap", "net_bind"],
            "--cap net_bind: unknown capability",
        ),
        (
            vec!["--limit", "files=10"],
            "--limit files=10: unknown resource",
        ),
        (
            vec!["--limit", "nofile=20:10"],
            "--limit nofile=20:10: the soft limit is above the hard one",
        ),
        (vec!["--env-file", arg(&malformed)], &malformed_said),
        (vec!["--env-file", arg(&quote)], &quote_said),
        (vec!["--env-file", arg(&fifo)], &fifo_said),
        (vec!["--env-file", arg(&missing)], &missing_said),
        (
            vec!["--runtime-dir", "../etc"],
            "--runtime-dir ../etc: expected one name, without / or ..",
        ),
        (vec!["--runtime-dir", "a/b"], "expected one name"),
        (
            vec!["--listen", "localhost:80"],
            "--listen localhost:80: expected PORT, HOST:PORT",
        ),
    ] {
        let mut args = vec!["-p", arg(&pid_file)];
        args.extend(&options);
        args.extend(["--", "/bin/sh", "-c", "exec sleep 60", &token]);
        let output = daemonic(&args);
        assert_one_line_error(&output, 1, said);
        assert!(!pid_file.exists(), "{options:?} left a PID file");
        assert!(
            common::processes_with(&token).is_empty(),
            "{options:?} started"
        );
    }
    // A port in use: the start fails (status 3) before anything forks.
    {
        let output = daemonic(&[
            "-p",
            arg(&pid_file),
            "--listen",
            &busy_address,
            "--",
            "/bin/sh",
            "-c",
            "exec sleep 60",
            &token,
        ]);
        assert_one_line_error(&output, 3, &busy_said);
        assert!(!pid_file.exists(), "a busy port left a PID file");
        assert!(
            common::processes_with(&token).is_empty(),
            "a busy port started"
        );
    }
}
