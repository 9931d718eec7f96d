//! A program that starts a daemon through [`daemonic::Plan`] as its
//! `key=value` arguments say, and prints what `start` returned:
//!
//! - in the caller, one line: `parent pid=N` or `error step=STEP errno=N
//!   pid=N message=TEXT`, then ` forks=N` (forks this process made) and,
//!   with `subreaper=1`, ` left=N` (its descendants still running once the
//!   error came back);
//! - in the daemon, what `then=` says: `serve` (default: run until SIGTERM,
//!   then remove the PID file and exit 0), `fail:ERRNO` (report that error),
//!   `drop` (drop the handle without reporting), `hang` (never report),
//!   `exit:N`.
//!
//! Options of the complete sequence: `fds=close|cloexec|keep`, `keep=N`
//! (repeatable), `extra_fds=N` (the caller opens N more fds before
//! starting), `threads=N` (the caller starts N sleeping threads first),
//! `signals=0` (no reset), `block=N`, `ignore=N`, `handle=N`
//! (signal set-up in the caller), `chroot`, `uid`, `gid`, `groups=A,B`,
//! `nocore=1`, `nice=N`, `nofile=SOFT:HARD` (`inf` for either),
//! `caps=BITS` (the capabilities kept), `nnp=1`, `exec=PATH`, `arg=A` (repeatable, after argv[0]),
//! `env=K=V` (repeatable; any makes the environment exact), `detach=never|auto`,
//! `notify_socket=PATH`, `notify_fd=N`, `await=socket:PATH|fd:N`,
//! `heap_mib=N` (the caller touches N MiB of heap before starting).
//!
//! Other keys: `pid_file`, `cwd`, `umask` (octal), `stdin`/`stdout`/`stderr`
//! (`null`, `inherit`, `fd:N` or a path), `readiness=manual`, `timeout_ms`
//! (0: none), `delay_ms=N` (the daemon's set-up time before it reports
//! ready), `marker=PATH` (created just before reporting ready), `say=1`
//! (the daemon writes a line to its stdout and stderr).

use std::ffi::{CStr, CString, c_char};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use daemonic::{
    CStrArray, Detach, Environment, Error, Exec, InheritedFds, Plan, ProgramReadiness, Readiness,
    Started, Stdio,
};

/// The `key=value` arguments, in order (some keys repeat).
struct Options(Vec<(String, String)>);

impl Options {
    fn get(&self, key: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v)
    }
}

static FORKS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_fork() {
    FORKS.fetch_add(1, Ordering::SeqCst);
}

pub fn run(args: Vec<String>) {
    let options = Options(
        args.iter()
            .map(|arg| {
                let (key, value) = arg.split_once('=').expect("key=value");
                (key.to_string(), value.to_string())
            })
            .collect(),
    );
    let c = |key: &str| {
        options
            .get(key)
            .map(|v| CString::new(v.as_bytes()).unwrap())
    };
    // SAFETY: registers a handler that only bumps an atomic counter.
    unsafe { libc::pthread_atfork(Some(count_fork), None, None) };
    if options.get("subreaper").is_some_and(|v| v == "1") {
        super::become_subreaper();
    }
    // A large host: every page touched, so its page tables are filled.
    let heap: Vec<u8> = vec![1; options.get("heap_mib").map_or(0, |n| n.parse().unwrap()) << 20];
    std::hint::black_box(&heap);

    let (pid_file, cwd) = (c("pid_file"), c("cwd"));
    let streams = [c("stdin"), c("stdout"), c("stderr")];
    let stdio = |i: usize| -> Stdio<'_> {
        match streams[i].as_deref().map(|s| s.to_str().unwrap()) {
            None | Some("null") => Stdio::Null,
            Some("inherit") => Stdio::Inherit,
            Some(fd) if fd.starts_with("fd:") => {
                let n = fd[3..].parse().unwrap();
                // SAFETY: the test passes fds it opened for this process.
                Stdio::Fd(unsafe { daemonic::fd::BorrowedFd::borrow_raw(n) })
            }
            Some(_) => Stdio::File(streams[i].as_deref().unwrap()),
        }
    };
    let mut plan = Plan::new()
        .stdin(stdio(0))
        .stdout(stdio(1))
        .stderr(stdio(2));
    if let Some(path) = pid_file.as_deref() {
        plan = plan.pid_file(path);
    }
    if let Some(dir) = cwd.as_deref() {
        plan = plan.working_directory(dir);
    }
    if let Some(mask) = options.get("umask") {
        plan = plan.umask(u32::from_str_radix(mask, 8).unwrap());
    }
    if options.get("readiness").is_some_and(|v| v == "manual") {
        plan = plan.readiness(Readiness::Manual);
    }
    let number = |key: &str| options.get(key).map(|v| v.parse::<i32>().unwrap());
    match options.get("fds").map(String::as_str) {
        Some("cloexec") => plan = plan.inherited_fds(InheritedFds::CloseOnExec),
        Some("keep") => plan = plan.inherited_fds(InheritedFds::Keep),
        _ => {}
    }
    let keep: Vec<i32> = options.all("keep").map(|v| v.parse().unwrap()).collect();
    plan = plan.keep_fds(&keep);
    for _ in 0..number("threads").unwrap_or(0) {
        // What an async runtime started too early leaves in the caller.
        std::thread::spawn(|| std::thread::sleep(Duration::from_secs(60)));
    }
    for _ in 0..number("extra_fds").unwrap_or(0) {
        // Leaked on purpose: fds the daemon must not inherit.
        std::mem::forget(std::fs::File::open("/dev/null").unwrap());
    }
    if options.get("signals").is_some_and(|v| v == "0") {
        plan = plan.reset_signals(false);
    }
    set_up_signals(number("block"), number("ignore"), number("handle"));
    let chroot = c("chroot");
    if let Some(dir) = chroot.as_deref() {
        plan = plan.chroot(dir);
    }
    let groups: Option<Vec<u32>> = options.get("groups").map(|v| {
        v.split(',')
            .filter(|g| !g.is_empty())
            .map(|g| g.parse().unwrap())
            .collect()
    });
    if let Some(uid) = number("uid") {
        plan = plan.user(uid as u32);
    }
    if let Some(gid) = number("gid") {
        plan = plan.group(gid as u32);
    }
    if let Some(groups) = groups.as_deref() {
        plan = plan.groups(groups);
    }
    if options.get("nocore").is_some_and(|v| v == "1") {
        plan = plan.disable_core_dumps(true);
    }
    if let Some(increment) = number("nice") {
        plan = plan.nice(increment);
    }
    let limit = |v: &str| (v != "inf").then(|| v.parse::<u64>().unwrap());
    let limits: Vec<daemonic::Limit> = options
        .all("nofile")
        .map(|v| {
            let (soft, hard) = v.split_once(':').unwrap();
            daemonic::Limit::new(daemonic::Resource::Nofile, limit(soft), limit(hard))
        })
        .collect();
    plan = plan.limits(&limits);
    if let Some(bits) = options.get("caps") {
        plan = plan.capabilities(daemonic::Capabilities::from_bits(bits.parse().unwrap()));
    }
    if options.get("nnp").is_some_and(|v| v == "1") {
        plan = plan.no_new_privileges(true);
    }
    let program = c("exec");
    let argv: Vec<CString> = program
        .iter()
        .cloned()
        .chain(
            options
                .all("arg")
                .map(|a| CString::new(a.as_bytes()).unwrap()),
        )
        .collect();
    let env: Vec<CString> = options
        .all("env")
        .map(|e| CString::new(e.as_bytes()).unwrap())
        .collect();
    let argv_refs: Vec<&CStr> = argv.iter().map(CString::as_c_str).collect();
    let env_refs: Vec<&CStr> = env.iter().map(CString::as_c_str).collect();
    let mut argv_slots: Vec<*const c_char> = vec![std::ptr::null(); argv.len() + 1];
    let mut env_slots: Vec<*const c_char> = vec![std::ptr::null(); env.len() + 1];
    if let Some(program) = program.as_deref() {
        let env = if env.is_empty() {
            Environment::Inherit
        } else {
            Environment::Exact(CStrArray::new(&env_refs, &mut env_slots).unwrap())
        };
        plan = plan.exec(Exec {
            program,
            args: CStrArray::new(&argv_refs, &mut argv_slots).unwrap(),
            env,
        });
    }
    if options.get("allow_threads").is_some_and(|v| v == "1") {
        plan = plan.allow_threads(true);
    }
    match options.get("detach").map(String::as_str) {
        Some("never") => plan = plan.detach(Detach::Never),
        Some("auto") => plan = plan.detach(Detach::Auto),
        _ => {}
    }
    // `notify_listen=PATH`: this caller binds the NOTIFY_SOCKET itself, as
    // systemd would, and reports whether READY=1 had arrived when `start`
    // returned.
    let listener = options
        .get("notify_listen")
        .map(|path| std::os::unix::net::UnixDatagram::bind(path).unwrap());
    let notify_socket = c("notify_socket").or_else(|| c("notify_listen"));
    if let Some(socket) = notify_socket.as_deref() {
        plan = plan.notify_socket(socket);
    }
    if let Some(fd) = number("notify_fd") {
        plan = plan.notify_fd(fd);
    }
    let await_socket = options
        .get("await")
        .and_then(|v| v.strip_prefix("socket:"))
        .map(|p| CString::new(p).unwrap());
    if let Some(socket) = await_socket.as_deref() {
        plan = plan.program_readiness(ProgramReadiness::NotifySocket(socket));
    }
    if let Some(fd) = options.get("await").and_then(|v| v.strip_prefix("fd:")) {
        plan = plan.program_readiness(ProgramReadiness::Fd(fd.parse().unwrap()));
    }
    if let Some(ms) = options.get("timeout_ms") {
        let ms: u64 = ms.parse().unwrap();
        plan = plan.ready_timeout((ms > 0).then(|| Duration::from_millis(ms)));
    }

    match plan.start() {
        Ok(Started::Parent(parent)) => {
            let notified = listener.map(|socket| {
                socket.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 64];
                socket.recv(&mut buf).is_ok()
            });
            println!(
                "parent pid={} forks={} notified_first={notified:?}",
                parent.pid().as_raw_pid(),
                FORKS.load(Ordering::SeqCst)
            );
        }
        Err(error) => {
            let (step, errno) = match error {
                Error::Os { step, errno } => (format!("{step:?}"), errno.raw_os_error()),
                Error::Initialization { errno, .. } => {
                    (String::from("Initialization"), errno.raw_os_error())
                }
                _ => (String::from("none"), 0),
            };
            let pid = match error {
                Error::Vanished { pid, .. } | Error::NotReady { pid, .. } => {
                    pid.map_or(0, |p| p.as_raw_pid())
                }
                _ => 0,
            };
            let left = if options.get("subreaper").is_some_and(|v| v == "1") {
                descendants_left().to_string()
            } else {
                String::from("unknown")
            };
            println!(
                "error step={step} errno={errno} pid={pid} forks={} left={left} message={error}",
                FORKS.load(Ordering::SeqCst)
            );
            std::process::exit(1);
        }
        Ok(Started::Daemon(mut daemon)) => {
            let then = options.get("then").map_or("serve", String::as_str);
            // Blocked before anyone learns where the daemon is: a test may
            // send SIGTERM the moment it reads `where`.
            let signals = (then == "serve").then(block_term);
            if let Some(path) = options.get("where") {
                // Who the daemon is, for tests that cannot see it otherwise.
                std::fs::write(path, format!("pid={}", std::process::id())).unwrap();
            }
            if options.get("say").is_some_and(|v| v == "1") {
                let _ = writeln!(std::io::stdout(), "daemon stdout");
                let _ = writeln!(std::io::stderr(), "daemon stderr");
            }
            if let Some(errno) = then.strip_prefix("fail-at:") {
                let errno = daemonic::Errno::from_raw_os_error(errno.parse().unwrap());
                daemon.fail_at("bind 127.0.0.1:80", errno);
            }
            // fail_io from a std::io::Error: an OS error's number, or
            // `other` (no number: EIO).
            #[cfg(feature = "std")]
            if let Some(errno) = then.strip_prefix("fail-io:") {
                let error = match errno {
                    "other" => std::io::Error::other("no OS error"),
                    errno => std::io::Error::from_raw_os_error(errno.parse().unwrap()),
                };
                daemon.fail_io("bind 127.0.0.1:80", &error);
            }
            if let Some(errno) = then.strip_prefix("fail:") {
                daemon.fail(daemonic::Errno::from_raw_os_error(errno.parse().unwrap()));
            }
            if let Some(status) = then.strip_prefix("exit:") {
                std::process::exit(status.parse().unwrap());
            }
            if then == "hang" {
                // Keeps the report pipe open and never reports.
                std::thread::sleep(Duration::from_secs(60));
                std::process::exit(0);
            }
            if then == "drop" {
                // Closes the report pipe without a word, keeps running.
                drop(daemon);
                std::thread::sleep(Duration::from_secs(60));
                std::process::exit(0);
            }
            let signals = signals.unwrap_or_else(block_term);
            if let Some(ms) = options.get("delay_ms") {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            }
            if let Some(marker) = options.get("marker") {
                std::fs::write(marker, b"ready").unwrap();
            }
            let _ = daemon.ready();
            wait_for(&signals, 60);
            drop(daemon);
            std::process::exit(0);
        }
    }
}

/// After a failed start: how many of our descendants are still running once
/// the zombies among them are reaped (bounded wait of 2 s for exits).
fn descendants_left() -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes into our local.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc < 0 {
            return 0; // ECHILD: no children at all
        }
        if rc == 0 {
            if std::time::Instant::now() > deadline {
                return std::fs::read_to_string(format!(
                    "/proc/self/task/{}/children",
                    std::process::id()
                ))
                .map(|text| text.split_whitespace().count())
                .unwrap_or(1);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The caller's signal set-up the daemon must not inherit: a blocked
/// signal, an ignored one, a handled one.
fn set_up_signals(block: Option<i32>, ignore: Option<i32>, handle: Option<i32>) {
    extern "C" fn handler(_: libc::c_int) {}
    // SAFETY: plain signal-set and disposition calls on valid locals; the
    // handler does nothing.
    unsafe {
        if let Some(signal) = block {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        if let Some(signal) = ignore {
            libc::signal(signal, libc::SIG_IGN);
        }
        if let Some(signal) = handle {
            libc::signal(signal, handler as *const () as libc::sighandler_t);
        }
    }
}

fn block_term() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before it is read.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for(set: &libc::sigset_t, seconds: i64) {
    // time_t is 32 or 64 bits by target (libc deprecates naming it on musl).
    let timeout = libc::timespec {
        tv_sec: seconds as _,
        tv_nsec: 0,
    };
    // SAFETY: valid set and timespec; a null info pointer is allowed.
    unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
}
