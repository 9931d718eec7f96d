/* killwait PIDFILE: the reference for `daemonic --stop`: SIGTERM to the
 * PID the file names, then wait until that process is gone, woken by its
 * pidfd the moment it exits (no polling). No proof that the PID is the
 * daemon, no lock check: the floor a stop cannot be cheaper than. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fputs("usage: killwait PIDFILE\n", stderr);
        return 2;
    }
    FILE *file = fopen(argv[1], "r");
    int pid = 0;
    if (!file || fscanf(file, "%d", &pid) != 1 || pid <= 1) return 1;
    fclose(file);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0 || syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) != 0) return 1;
    struct pollfd gone = {.fd = pidfd, .events = POLLIN};
    return poll(&gone, 1, 10000) == 1 ? 0 : 1;
}
