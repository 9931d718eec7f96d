/*
 * minidaemon: a daemon(8)-like supervisor in C, for ci/size to measure
 * daemonic against: what FreeBSD daemon(8) -p does, in as little code as
 * reads clearly. Not part of daemonic; written for this comparison only.
 *
 *   minidaemon PIDFILE PROGRAM [ARGS...]
 *
 * Forks, setsid()s, forks again, chdir("/"), umask(022), /dev/null on 0-2,
 * writes its PID to PIDFILE under flock(), runs PROGRAM as its child,
 * forwards TERM, INT, HUP, USR1 and USR2, and removes PIDFILE when the
 * child ends.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void detach(void) {
    if (fork() != 0) _exit(0);
    setsid();
    if (fork() != 0) _exit(0);
    if (chdir("/") != 0) _exit(1);
    umask(022);
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; fd++) dup2(null, fd);
    if (null > 2) close(null);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: minidaemon PIDFILE PROGRAM [ARGS...]\n");
        return 1;
    }
    int pidfd = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (pidfd < 0 || flock(pidfd, LOCK_EX | LOCK_NB) != 0) {
        perror("minidaemon: pid file");
        return 2;
    }
    detach();
    char text[16];
    int len = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (ftruncate(pidfd, 0) != 0 || pwrite(pidfd, text, len, 0) != len) _exit(1);

    sigset_t set;
    sigemptyset(&set);
    int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&set, forwarded[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);

    pid_t child = fork();
    if (child == 0) {
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    for (;;) {
        int signal;
        sigwait(&set, &signal);
        if (signal != SIGCHLD) {
            kill(child, signal);
            continue;
        }
        int status;
        if (waitpid(child, &status, WNOHANG) == child) break;
    }
    unlink(argv[1]);
    return 0;
}
