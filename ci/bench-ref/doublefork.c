/* doublefork PIDFILE PROGRAM [ARGS...]: the floor ci/bench measures the
 * daemonic command against. The classic double fork done as cheaply as C
 * can, but with the guarantee daemonic gives: it returns only once PROGRAM
 * has been executed (0), or with the exec error (1), learnt through a
 * close-on-exec pipe; the PID file holds the daemon's PID before it
 * executes. No PID file lock, no signal reset, no fd closing, no /dev/null:
 * what a start cannot be cheaper than. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fputs("usage: doublefork PIDFILE PROGRAM [ARGS...]\n", stderr);
        return 2;
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return 1;
    pid_t leader = fork();
    if (leader < 0) return 1;
    if (leader == 0) {
        close(report[0]);
        setsid();
        pid_t daemon = fork();
        if (daemon != 0) _exit(daemon < 0);
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[16];
            int len = snprintf(line, sizeof line, "%d\n", (int)getpid());
            if (write(fd, line, len) != len) _exit(1);
            close(fd);
        }
        execv(argv[2], argv + 2);
        int error = errno;
        if (write(report[1], &error, sizeof error) < 0) _exit(127);
        _exit(127);
    }
    close(report[1]);
    int status;
    waitpid(leader, &status, 0);
    int error;
    if (read(report[0], &error, sizeof error) == sizeof error) {
        fprintf(stderr, "doublefork: %s: %s\n", argv[2], strerror(error));
        return 1;
    }
    return 0;
}
