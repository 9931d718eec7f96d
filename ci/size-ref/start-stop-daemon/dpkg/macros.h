/* dpkg's macros, as much of them as start-stop-daemon.c uses. */
#define DPKG_ATTR_NORET __attribute__((noreturn))
#define DPKG_ATTR_PRINTF(n) __attribute__((format(printf, n, n + 1)))
#define DPKG_ATTR_VPRINTF(n) __attribute__((format(printf, n, 0)))
#define array_count(a) (sizeof(a) / sizeof((a)[0]))
#define countof(a) array_count(a)
