/* dpkg's libcompat, as much of it as start-stop-daemon.c uses on Linux. */
#define LIBCOMPAT_ATTR_ENUM_FLAGS
#define LIBCOMPAT_ATTR_NORET __attribute__((noreturn))
#define LIBCOMPAT_ATTR_PRINTF(n) __attribute__((format(printf, n, n + 1)))
#define LIBCOMPAT_ATTR_VPRINTF(n) __attribute__((format(printf, n, 0)))
