//! Bad input and failing steps: a precise error in the caller, nothing left
//! behind (no daemon, no zombie, no PID file), and no fork at all where the
//! input could be checked first.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{TempDir, field, stdout};

fn main() {
    // Copies nobody can execute, made before any test thread forks.
    common::main_with_public_copies(helpers, tests(), &[&std::env::current_exe().unwrap()]);
}

fn tests() -> Vec<common::Test> {
    #[allow(unused_mut)]
    let mut tests: Vec<common::Test> = vec![
        ("missing_working_directory", missing_working_directory),
        (
            "pid_file_in_missing_directory",
            pid_file_in_missing_directory,
        ),
        ("stdout_file_is_a_directory", stdout_file_is_a_directory),
        ("stdout_file_not_writable", stdout_file_not_writable),
        ("missing_stdin_file", missing_stdin_file),
        ("pid_file_symlink_is_refused", pid_file_symlink_is_refused),
        (
            "closed_keep_fd_is_refused_before_fork",
            closed_keep_fd_is_refused_before_fork,
        ),
    ];
    #[cfg(feature = "std")]
    tests.push((
        "interior_nul_is_refused_before_fork",
        interior_nul_is_refused_before_fork,
    ));
    #[cfg(feature = "std")]
    tests.push((
        "bad_umask_is_refused_before_fork",
        bad_umask_is_refused_before_fork,
    ));
    #[cfg(feature = "std")]
    tests.push((
        "builder_caller_prints_step_and_error",
        builder_caller_prints_step_and_error,
    ));
    #[cfg(feature = "std")]
    tests.push((
        "builder_returns_what_it_finds_before_the_fork",
        builder_returns_what_it_finds_before_the_fork,
    ));
    tests
}

fn helpers(name: &str, args: Vec<String>) {
    match name {
        "plan" => common::plan_helper::run(args),
        #[cfg(feature = "std")]
        "builder" => builder_helper(args),
        other => panic!("no helper {other}"),
    }
}

#[cfg(feature = "std")]
/// `builder PID_FILE [UMASK|- [WORKING_DIRECTORY]]`: daemonizes through
/// the std builder; prints `refused forks=N forked=BOOL message=...` and
/// exits 2 if `daemonize` returns an error.
fn builder_helper(args: Vec<String>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static FORKS: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn count_fork() {
        FORKS.fetch_add(1, Ordering::SeqCst);
    }
    // SAFETY: the handler only bumps an atomic counter.
    unsafe { libc::pthread_atfork(Some(count_fork), None, None) };
    // An argument cannot carry a NUL byte: `%00` stands for one.
    let mut builder = daemonic::Daemonize::new().pid_file(args[0].replace("%00", "\0"));
    if let Some(mask) = args.get(1).filter(|mask| *mask != "-") {
        builder = builder.umask(u32::from_str_radix(mask, 8).unwrap());
    }
    if let Some(dir) = args.get(2) {
        builder = builder.working_directory(dir);
    }
    match builder.daemonize() {
        Ok(daemon) => drop(daemon),
        Err(error) => {
            println!(
                "refused forks={} forked={} message={error}",
                FORKS.load(Ordering::SeqCst),
                error.forked()
            );
            std::process::exit(2);
        }
    }
}

/// Starts the plan helper as a subreaper and checks the error it prints:
/// the step, the errno, and that none of its descendants is left.
fn expect_failure(args: &[&str], step: &str, errno: i32) -> String {
    let mut all = vec!["subreaper=1"];
    all.extend_from_slice(args);
    let output = common::run(&mut common::helper("plan", &all));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_eq!(field(&text, "step"), Some(step), "{text}");
    assert_eq!(
        field(&text, "errno"),
        Some(errno.to_string().as_str()),
        "{text}"
    );
    assert_eq!(
        field(&text, "left"),
        Some("0"),
        "daemon left running: {text}"
    );
    text
}

fn missing_working_directory() {
    let dir = TempDir::new("nocwd");
    let pid_file = dir.join("p.pid");
    let text = expect_failure(
        &[
            &format!("cwd={}", dir.join("missing").display()),
            &format!("pid_file={}", pid_file.display()),
        ],
        "ChangeDirectory",
        libc::ENOENT,
    );
    let expected = format!(
        "message=failed to change directory (chdir): {}",
        common::errno_text(libc::ENOENT, "ENOENT")
    );
    assert!(text.contains(&expected), "{text}");
    assert!(!pid_file.exists());
}

/// A kept fd (or notification fd) that names nothing would be "kept" as
/// nothing in the daemon, or as whatever it opens there next: refused
/// before anything forks, including the highest fd number (whose neighbour
/// once overflowed).
fn closed_keep_fd_is_refused_before_fork() {
    let dir = TempDir::new("keepclosed");
    let pid_file = dir.join("p.pid");
    for (option, fd) in [
        ("keep", "987"),
        ("keep", "2147483647"),
        ("keep", "-4"),
        // The s6 notification fd: once aborted the daemon in debug builds.
        ("notify_fd", "57"),
    ] {
        let output = common::run(&mut common::helper(
            "plan",
            &[
                &format!("pid_file={}", pid_file.display()),
                &format!("{option}={fd}"),
            ],
        ));
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{fd}: {text}");
        assert_eq!(field(&text, "forks"), Some("0"), "{fd}: {text}");
        assert!(text.contains("message=invalid keep_fds"), "{fd}: {text}");
        assert!(!pid_file.exists(), "{fd}: PID file left");
    }
}

fn pid_file_in_missing_directory() {
    let dir = TempDir::new("nopiddir");
    let pid_file = dir.join("missing/p.pid");
    let text = expect_failure(
        &[&format!("pid_file={}", pid_file.display())],
        "PidFile",
        libc::ENOENT,
    );
    let expected = format!(
        "message=failed to write the PID file: {}",
        common::errno_text(libc::ENOENT, "ENOENT")
    );
    assert!(text.contains(&expected), "{text}");
}

fn stdout_file_is_a_directory() {
    let dir = TempDir::new("outdir");
    let pid_file = dir.join("p.pid");
    let text = expect_failure(
        &[
            &format!("stdout={}", dir.path().display()),
            &format!("pid_file={}", pid_file.display()),
        ],
        "RedirectStdout",
        libc::EISDIR,
    );
    let expected = format!(
        "message=failed to redirect standard output: {}",
        common::errno_text(libc::EISDIR, "EISDIR")
    );
    assert!(text.contains(&expected), "{text}");
    assert!(!pid_file.exists(), "a failed start wrote the PID file");
}

/// A read-only file, opened by a process that is not root (when the test
/// runs as root, the helper runs as `nobody`, which cannot bypass modes).
fn stdout_file_not_writable() {
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("readonly");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.join("ro.log");
    fs::write(&out, "").unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o444)).unwrap();
    let mut command = common::helper(
        "plan",
        &["subreaper=1", &format!("stderr={}", out.display())],
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // The same helper, from a copy nobody can execute.
        let exe = common::public_copy(&std::env::current_exe().unwrap());
        command = Command::new(exe);
        command
            .env(common::HELPER_ENV, "plan")
            .args(["subreaper=1", &format!("stderr={}", out.display())])
            .stdin(std::process::Stdio::null())
            .uid(65534)
            .gid(65534);
    }
    let output = common::run(&mut command);
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{text} {}",
        common::stderr(&output)
    );
    assert_eq!(field(&text, "step"), Some("RedirectStderr"), "{text}");
    assert_eq!(
        field(&text, "errno"),
        Some(libc::EACCES.to_string().as_str()),
        "{text}"
    );
    assert_eq!(field(&text, "left"), Some("0"), "{text}");
    assert_eq!(fs::read_to_string(&out).unwrap(), "");
}

fn missing_stdin_file() {
    let dir = TempDir::new("noin");
    expect_failure(
        &[&format!("stdin={}", dir.join("nothing").display())],
        "RedirectStdin",
        libc::ENOENT,
    );
}

/// A symlink planted at the PID file's path is not followed: the file it
/// points at is left untouched.
fn pid_file_symlink_is_refused() {
    let dir = TempDir::new("symlink");
    let victim = dir.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let pid_file = dir.join("p.pid");
    std::os::unix::fs::symlink(&victim, &pid_file).unwrap();
    expect_failure(
        &[&format!("pid_file={}", pid_file.display())],
        "PidFile",
        libc::ELOOP,
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[cfg(feature = "std")]
fn interior_nul_is_refused_before_fork() {
    let output = common::run(&mut common::helper("builder", &["/tmp/bad%00name.pid"]));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert_eq!(field(&text, "forks"), Some("0"), "{text}");
    assert!(
        text.contains("message=the path given for pid_file contains a NUL byte"),
        "{text}"
    );
}

#[cfg(feature = "std")]
fn bad_umask_is_refused_before_fork() {
    let dir = TempDir::new("umask");
    let pid_file = dir.join("p.pid");
    let output = common::run(&mut common::helper(
        "builder",
        &[pid_file.to_str().unwrap(), "1777"],
    ));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert_eq!(field(&text, "forks"), Some("0"), "{text}");
    assert!(
        text.contains("message=invalid umask: has bits above 0o777"),
        "{text}"
    );
    assert!(!pid_file.exists());
}

/// `daemonize`'s one rule: what it finds before anything forks comes back
/// to the program as an error naming the file (here a PID file in a missing
/// directory: the program goes on, prints and exits 2 itself); a forked
/// daemon's failure is printed by the caller, which exits 1 and never
/// returns into the program.
#[cfg(feature = "std")]
fn builder_returns_what_it_finds_before_the_fork() {
    let dir = TempDir::new("rule");
    let pid_file = dir.join("missing/p.pid");
    let output = common::run(&mut common::helper(
        "builder",
        &[pid_file.to_str().unwrap()],
    ));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert_eq!(field(&text, "forks"), Some("0"), "{text}");
    assert_eq!(field(&text, "forked"), Some("false"), "{text}");
    let expected = format!(
        "message=failed to write the PID file {}: No such file or directory",
        pid_file.display()
    );
    assert!(text.contains(&expected), "{text}");

    let pid_file = dir.join("p.pid");
    let missing = dir.join("nowhere");
    let output = common::run(&mut common::helper(
        "builder",
        &[pid_file.to_str().unwrap(), "-", missing.to_str().unwrap()],
    ));
    assert_eq!(output.status.code(), Some(daemonic::EXIT_START_FAILED));
    assert_eq!(stdout(&output), "", "returned into the program");
    let said = common::stderr(&output);
    assert!(
        said.contains(&format!(
            "failed to change directory (chdir) to {}: No such file or directory",
            missing.display()
        )),
        "{said}"
    );
    assert!(!pid_file.exists());
}

/// Under the std builder, the caller itself prints the daemon's error,
/// naming the file, and exits 1.
#[cfg(feature = "std")]
fn builder_caller_prints_step_and_error() {
    let dir = TempDir::new("builder");
    let pid_file = dir.join("missing/p.pid");
    let output = common::run(common::example("sleeper").arg(&pid_file).arg("5"));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        common::stderr(&output),
        format!(
            "sleeper: failed to write the PID file {}: No such file or directory (os error 2)\n",
            pid_file.display()
        )
    );
    assert!(!pid_file.exists());
}
