//! Logs that survive a full flash: the supervisor's output file on a small
//! tmpfs filled before and during output (every line kept, in order), the
//! oldest rotated file dropped to make room, a deleted log made anew,
//! `--output` and `--syslog` at once, the most disk `--rotate` uses, a
//! device refused for rotation, and the supervisor's own lines stamped.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Started, TempDir, assert_one_line_error, stderr, stdout};

fn main() {
    common::main(|name, _| panic!("no helper {name}"), tests());
}

fn tests() -> Vec<common::Test> {
    vec![
        ("disk_full_before_output", disk_full_before_output),
        ("disk_full_during_output", disk_full_during_output),
        (
            "disk_full_drops_the_oldest_rotated_file",
            disk_full_drops_the_oldest_rotated_file,
        ),
        ("a_deleted_log_is_made_anew", a_deleted_log_is_made_anew),
        ("file_and_syslog_at_once", file_and_syslog_at_once),
        ("rotation_holds_its_size_cap", rotation_holds_its_size_cap),
        ("rotation_refuses_a_device", rotation_refuses_a_device),
        (
            "the_supervisors_lines_are_stamped",
            the_supervisors_lines_are_stamped,
        ),
    ]
}

fn daemonic(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_daemonic"));
    command.args(args).stdin(Stdio::null());
    common::run(&mut command)
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `script` (sh) in a mount namespace of its own with a 64 KiB tmpfs
/// at `$T` and daemonic as `$D`; `None` (said) where that cannot be had.
fn on_small_tmpfs(case: &str, script: &str) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("{case}: skipped: mounting a tmpfs needs root");
        return None;
    }
    let dir = TempDir::new("tmpfs");
    let mount = dir.join("fs");
    fs::create_dir(&mount).unwrap();
    let full = format!("mount -t tmpfs -o size=64k tmpfs \"$T\" || exit 11\n{script}");
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-ec", &full])
        .env("T", &mount)
        .env("D", env!("CARGO_BIN_EXE_daemonic"))
        .stdin(Stdio::null());
    let output = common::run(&mut command);
    if output.status.code() == Some(11) {
        println!("{case}: skipped: a tmpfs cannot be mounted here");
        return None;
    }
    assert!(
        output.status.success(),
        "{case}: {}{}",
        stdout(&output),
        stderr(&output)
    );
    Some(stdout(&output))
}

/// Checks that `text` is `line-1` ... `line-N`, every one, in order.
fn assert_numbered(text: &str, n: usize) {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n, "{} lines", lines.len());
    for (at, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line-{}", at + 1), "at line {}", at + 1);
    }
}

/// A program writing `line-1` ... `line-N` (a pause every `every` lines).
fn writer(n: usize, every: usize) -> String {
    format!(
        "i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo line-$i; \
         [ $((i % {every})) = 0 ] && sleep 0.02; done; true"
    )
}

/// The file system is full before the program writes a line; space comes
/// back half a second later: the log holds every line, in order.
fn disk_full_before_output() {
    let script = format!(
        r#"head -c 1M /dev/zero > "$T/fill" 2>/dev/null || true
        "$D" --foreground --supervise --output "$T/log" -- sh -c '{}' &
        P=$!
        sleep 0.5
        echo "while full: $(wc -c < "$T/log") bytes"
        rm "$T/fill"
        wait $P
        echo "---"
        cat "$T/log""#,
        writer(3000, 1_000_000)
    );
    let Some(out) = on_small_tmpfs("disk_full_before_output", &script) else {
        return;
    };
    let (head, log) = out.split_once("---\n").unwrap();
    assert!(head.contains("while full: 0 bytes"), "{head}");
    assert_numbered(log, 3000);
}

/// The file system fills while the program writes (another writer takes
/// the space), and frees a while later: nothing lost, nothing twice.
fn disk_full_during_output() {
    let script = format!(
        r#""$D" --foreground --supervise --output "$T/log" -- sh -c '{}' &
        P=$!
        while [ "$(wc -l < "$T/log" 2>/dev/null || echo 0)" -lt 200 ]; do sleep 0.01; done
        head -c 1M /dev/zero > "$T/fill" 2>/dev/null || true
        sleep 0.5
        rm "$T/fill"
        wait $P
        cat "$T/log""#,
        writer(3000, 50)
    );
    let Some(log) = on_small_tmpfs("disk_full_during_output", &script) else {
        return;
    };
    assert_numbered(&log, 3000);
}

/// With `--rotate`, a full disk first costs the oldest rotated file: the
/// program, writing far more than fits, never waits for good, and what is
/// kept is the newest lines without a gap.
fn disk_full_drops_the_oldest_rotated_file() {
    let script = format!(
        r#""$D" --foreground --supervise --output "$T/log" --rotate 8k:20 -- sh -c '{}'
        for n in $(seq 20 -1 1); do [ -e "$T/log.$n" ] && cat "$T/log.$n"; done
        cat "$T/log""#,
        writer(20000, 1_000_000)
    );
    let Some(kept) = on_small_tmpfs("disk_full_drops_the_oldest_rotated_file", &script) else {
        return;
    };
    let lines: Vec<&str> = kept.lines().collect();
    assert_eq!(lines.last(), Some(&"line-20000"));
    let first: usize = lines[0].strip_prefix("line-").unwrap().parse().unwrap();
    assert!(first > 1, "nothing was dropped: the test wrote too little");
    for (at, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line-{}", first + at), "a gap");
    }
}

/// A live log deleted without SIGHUP (a cleanup script) is made anew, and
/// the program's next lines go there.
fn a_deleted_log_is_made_anew() {
    let dir = TempDir::new("deleted");
    let (pid_file, log) = (dir.join("s.pid"), dir.join("log"));
    let output = daemonic(&[
        "-p",
        arg(&pid_file),
        "--supervise",
        "--output",
        arg(&log),
        "--",
        "sh",
        "-c",
        "while :; do echo tick; sleep 0.05; done",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut supervisor = Started::new(common::read_pid_file(&pid_file));
    common::wait_until("a first line", || log.exists());
    fs::remove_file(&log).unwrap();
    // Checked at most once a second.
    let patience = std::time::Instant::now() + Duration::from_secs(5);
    while !fs::read_to_string(&log).is_ok_and(|t| t.contains("tick\n")) {
        assert!(std::time::Instant::now() < patience, "not made anew");
        std::thread::sleep(Duration::from_millis(20));
    }
    common::kill(supervisor.pid, libc::SIGTERM);
    assert_eq!(supervisor.wait(), 0);
}

/// `--output` and `--syslog` together (daemon(8) `-o` with `-S`): each line
/// to both.
fn file_and_syslog_at_once() {
    let dir = TempDir::new("both");
    let (log, socket) = (dir.join("log"), dir.join("log.sock"));
    let listener = common::datagram_listener(&socket);
    let output = daemonic(&[
        "--foreground",
        "--supervise",
        "--output",
        arg(&log),
        "--syslog",
        "--syslog-socket",
        arg(&socket),
        "--syslog-tag",
        "both",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line-$i; done",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_numbered(&fs::read_to_string(&log).unwrap(), 5);
    for i in 1..=5 {
        let datagram = common::next_datagram(&listener);
        assert!(
            datagram.starts_with("<29>both[") && datagram.ends_with(&format!("]: line-{i}")),
            "{datagram:?}"
        );
    }
}

/// The most disk `--rotate SIZE:COUNT` uses: SIZE x (COUNT + 1), plus one
/// line (a file rotates at the end of the line that passes SIZE).
fn rotation_holds_its_size_cap() {
    let dir = TempDir::new("cap");
    let log = dir.join("log");
    let output = daemonic(&[
        "--foreground",
        "--supervise",
        "--output",
        arg(&log),
        "--rotate",
        "1k:2",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 500 ]; do i=$((i+1)); echo \"line $i of the cap test, fifty bytes or so\"; done",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let longest = 50;
    let mut total = 0;
    for name in ["log", "log.1", "log.2"] {
        let size = fs::metadata(dir.join(name)).unwrap().len();
        assert!(size <= 1024 + longest, "{name}: {size} bytes");
        total += size;
    }
    assert!(!dir.join("log.3").exists());
    assert!(total <= 1024 * 3 + longest, "{total} bytes in all");
}

/// `--rotate` never renames a device or a FIFO.
fn rotation_refuses_a_device() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("fifo");
    common::mkfifo(&fifo);
    for target in ["/dev/stdout", "/dev/null", arg(&fifo)] {
        let output = daemonic(&[
            "--supervise",
            "--output",
            target,
            "--rotate",
            "1M",
            "--",
            "true",
        ]);
        assert_one_line_error(
            &output,
            1,
            "is not a regular file (a device or a FIFO is never renamed)",
        );
    }
}

/// A line the supervisor writes about the program (a restart, giving up)
/// goes into the file stamped like the program's, in order with them.
fn the_supervisors_lines_are_stamped() {
    let dir = TempDir::new("stamped");
    let log = dir.join("log");
    let output = daemonic(&[
        "--foreground",
        "--supervise",
        "--output",
        arg(&log),
        "--timestamps",
        "--restart=0.1",
        "--start-limit",
        "2/10",
        "--",
        "sh",
        "-c",
        "echo hello; exit 3",
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    for line in &lines {
        let (stamp, _) = line.split_once(' ').unwrap();
        assert!(
            stamp.len() == 24 && stamp.ends_with('Z'),
            "unstamped: {line}"
        );
    }
    assert!(
        lines[0].ends_with(" hello") && lines[2].ends_with(" hello"),
        "{text}"
    );
    assert!(
        lines[1].ends_with("daemonic: program ended with status 3; restarting"),
        "{text}"
    );
    assert!(
        lines[3].contains("daemonic: program ended with status 3 after 2 starts"),
        "{text}"
    );
}
