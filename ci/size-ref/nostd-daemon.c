/*
 * nostd-daemon PIDFILE SECONDS: what ci/nostd does, in C, written for the
 * size comparison in ci/size (static musl, -Os). It locks the PID file
 * before forking, forks twice with setsid between, and in the daemon resets
 * the signal mask, sets the umask, puts /dev/null on 0-2, changes to /,
 * closes inherited fds, writes its PID and reports ready through a pipe;
 * the caller exits 0 on ready, 1 with the failing step's errno otherwise.
 * The daemon waits for SIGTERM (or SECONDS) and removes its PID file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Writes the pieces and a newline to stderr in one write, no stdio (as
 * the Rust version uses no core::fmt). */
static void say(const char *a, const char *b, const char *c) {
    char line[256];
    size_t len = 0;
    const char *parts[] = {"nostd-daemon: ", a, b, c};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        for (const char *p = parts[i]; *p && len < sizeof line - 1; p++)
            line[len++] = *p;
    line[len++] = '\n';
    (void)!write(2, line, len);
}

/* One record: 'R' ready, or 'F' and an errno. */
static void report(int fd, char kind, int err) {
    char record[1 + sizeof err] = {kind};
    memcpy(record + 1, &err, sizeof err);
    (void)!write(fd, record, sizeof record);
}

static void fail(int fd, int err) {
    report(fd, 'F', err);
    _exit(1);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        say("usage: nostd-daemon PIDFILE SECONDS", "", "");
        return 2;
    }
    const char *path = argv[1];
    unsigned seconds = (unsigned)strtoul(argv[2], NULL, 10);
    int pidfd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (pidfd < 0 || flock(pidfd, LOCK_EX | LOCK_NB) != 0) {
        say(path, ": ", strerror(errno));
        return 1;
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return 1;
    pid_t leader = fork();
    if (leader < 0)
        return 1;
    if (leader > 0) {
        close(pipefd[1]);
        char record[1 + sizeof(int)];
        ssize_t n = read(pipefd[0], record, sizeof record);
        if (n == (ssize_t)sizeof record && record[0] == 'R')
            return 0;
        int err = 0;
        if (n == (ssize_t)sizeof record)
            memcpy(&err, record + 1, sizeof err);
        say("failed: ", strerror(err), "");
        unlink(path);
        return 1;
    }
    close(pipefd[0]);
    if (setsid() < 0)
        fail(pipefd[1], errno);
    pid_t daemon = fork();
    if (daemon < 0)
        fail(pipefd[1], errno);
    if (daemon > 0)
        _exit(0);
    sigset_t none, term;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    umask(022);
    int null = open("/dev/null", O_RDWR | O_NOCTTY);
    if (null < 0)
        fail(pipefd[1], errno);
    for (int fd = 0; fd < 3; fd++)
        if (dup2(null, fd) < 0)
            fail(pipefd[1], errno);
    if (null > 2)
        close(null);
    if (chdir("/") != 0)
        fail(pipefd[1], errno);
    /* Close every fd above 2 but the PID file and the pipe. */
    int keep_low = pidfd < pipefd[1] ? pidfd : pipefd[1];
    int keep_high = pidfd < pipefd[1] ? pipefd[1] : pidfd;
    syscall(SYS_close_range, 3, keep_low - 1, 0);
    syscall(SYS_close_range, keep_low + 1, keep_high - 1, 0);
    syscall(SYS_close_range, keep_high + 1, ~0U, 0);
    char text[16];
    int len = 0;
    char digits[12];
    int n = 0;
    for (unsigned pid = (unsigned)getpid(); pid || !n; pid /= 10)
        digits[n++] = (char)('0' + pid % 10);
    while (n)
        text[len++] = digits[--n];
    text[len++] = '\n';
    if (ftruncate(pidfd, 0) != 0 || pwrite(pidfd, text, len, 0) != len)
        fail(pipefd[1], errno);
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    report(pipefd[1], 'R', 0);
    close(pipefd[1]);
    struct timespec timeout = {.tv_sec = seconds};
    sigtimedwait(&term, NULL, &timeout);
    unlink(path);
    return 0;
}
