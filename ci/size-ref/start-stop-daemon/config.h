/*
 * What dpkg's configure would say on Linux, for building Debian's
 * utils/start-stop-daemon.c alone, statically against musl, as ci/size
 * builds every C reference. Only the build is ours: the source is Debian's,
 * fetched by ci/size with apt-get source.
 */
#define _GNU_SOURCE
#define VERSION "(Debian source)"
#define RUNSTATEDIR "/run"
#define OS_Linux
#define HAVE_SYS_PARAM_H
#define HAVE_SYS_SYSCALL_H
#define HAVE_SYS_USER_H
#define HAVE_STDDEF_H
#define HAVE_ERR_H
#define HAVE_SETSID
#define HAVE_TIOCNOTTY
#define HAVE_IOPRIO_SET
#define HAVE_GETDTABLESIZE
/* musl 1.2.3 declares no close_range(); the system call is there. */
#define HAVE_CLOSE_RANGE
#define close_range(first, last, flags) syscall(SYS_close_range, first, last, flags)
#include <sys/syscall.h>
#include <unistd.h>
