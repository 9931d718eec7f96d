//! The few things the command needs from the system that neither rustix
//! nor the library hands it as it wants them, without `std`: the last
//! libc error, the monotonic clock, sleeping, and memory for what is sized
//! by the command line (anonymous `mmap`, never the C allocator).

use core::ffi::CStr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use core::time::Duration;

use daemonic::Errno;

/// The `errno` a libc call just left.
pub fn errno() -> Errno {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    Errno::from_raw_os_error(unsafe { *libc::__errno_location() })
}

/// `Ok(n)` for a non-negative return, the `errno` for -1.
pub fn check(rc: libc::c_long) -> Result<libc::c_long, Errno> {
    if rc < 0 { Err(errno()) } else { Ok(rc) }
}

/// Time on the monotonic clock, since some fixed moment:
/// [`clock_gettime(2)`](https://man7.org/linux/man-pages/man2/clock_gettime.2.html),
/// on 64-bit Linux as a plain system call, not through the vDSO, whose page
/// would count in a supervisor's resident memory (as the library's clock
/// does, for the same reason).
pub fn now() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[cfg(target_pointer_width = "64")]
    // SAFETY: a valid clock id and a timespec to fill, the kernel's own
    // layout on 64-bit Linux; cannot fail.
    unsafe {
        libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut now)
    };
    #[cfg(not(target_pointer_width = "64"))]
    // SAFETY: a valid clock id and a timespec to fill; cannot fail.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now)
    };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Milliseconds until `deadline` (monotonic), for `poll`: 0 once passed.
pub fn millis_until(deadline: Duration) -> i32 {
    millis(deadline.saturating_sub(now()))
}

/// A duration in whole milliseconds, rounded up, capped for `poll`.
pub fn millis(duration: Duration) -> i32 {
    let ms = duration
        .as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(duration.subsec_nanos().div_ceil(1_000_000)));
    ms.min(i32::MAX as u64) as i32
}

/// [`nanosleep(2)`](https://man7.org/linux/man-pages/man2/nanosleep.2.html).
pub fn sleep(duration: Duration) {
    let time = libc::timespec {
        tv_sec: duration.as_secs() as _,
        tv_nsec: duration.subsec_nanos() as _,
    };
    // SAFETY: a valid timespec; no remainder wanted.
    unsafe { libc::nanosleep(&time, core::ptr::null_mut()) };
}

/// [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html) for
/// input on `fds` (a negative one is passed over), up to `timeout` ms (-1:
/// for ever); which are readable (or closed at the other end).
pub fn readable<const N: usize>(fds: [libc::c_int; N], timeout: i32) -> [bool; N] {
    let mut polled = fds.map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: N valid pollfds in our array.
    unsafe { libc::poll(polled.as_mut_ptr(), N as libc::nfds_t, timeout) };
    polled.map(|fd| fd.revents != 0)
}

/// Gives the kernel back the stack pages below the caller's frame, with
/// [`madvise(2)`](https://man7.org/linux/man-pages/man2/madvise.2.html)
/// `MADV_DONTNEED`: what parsing, user lookups and message buffers touched
/// before a fork would otherwise be copied into the daemon and count in
/// its resident memory for its life (a child's peak RSS starts at what
/// fork copied). Only on the main thread, and only the pages wholly below
/// this function's frame, less one page for the system call's own, down
/// to `REACH` below it (the command's deepest calls go about 20 KiB deep).
#[cfg(feature = "supervise")]
#[inline(never)]
pub fn forget_dead_stack() {
    const REACH: usize = 64 * 1024;
    if rustix::thread::gettid() != rustix::process::getpid() {
        return;
    }
    // SAFETY: getauxval has no preconditions (0 for an unknown entry).
    let page = unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize;
    if !page.is_power_of_two() {
        return;
    }
    let here = core::hint::black_box(0u8);
    let top = (&raw const here as usize & !(page - 1)).saturating_sub(page);
    let bottom = top.saturating_sub(REACH);
    // Nothing but the main thread's stack is mapped in [bottom, top): the
    // kernel places other mappings at least the stack's size limit and a
    // guard gap (1 MiB) below the stack's top, and this process maps
    // nothing at fixed addresses. What is not mapped is passed over (ENOMEM,
    // ignored).
    // SAFETY: the range is below this frame and the system call's, on a
    // stack that grows down: no live object is in it, and MADV_DONTNEED
    // only makes its pages read as zeros when next touched.
    let _ = unsafe {
        rustix::mm::madvise(
            bottom as *mut _,
            top - bottom,
            rustix::mm::Advice::LinuxDontNeed,
        )
    };
}

/// A slice of `len` copies of `fill` that lives as long as the process,
/// in memory of its own: for what the command line sizes (argument and
/// environment vectors, fd lists, group lists). Never freed: it serves
/// until the process ends or executes.
///
/// # Errors
///
/// `ENOMEM` when the system has no memory to give.
pub fn slab<T: Copy>(len: usize, fill: T) -> Result<&'static mut [T], Errno> {
    let slice = zeroed_memory::<T>(len)?;
    // SAFETY: `len` Ts of fresh, aligned memory nothing else refers to;
    // each is written before the slice is made.
    unsafe {
        for at in 0..len {
            slice.add(at).write(fill);
        }
        Ok(core::slice::from_raw_parts_mut(slice, len))
    }
}

/// Numbers, for which all-zero bytes are zero.
pub trait Zeroed: Copy {}
impl Zeroed for u8 {}
impl Zeroed for i8 {}
impl Zeroed for i32 {}
impl Zeroed for u32 {}

/// `len` zeros, as [`slab`] makes them, but untouched: fresh anonymous
/// memory is zero already, and a page nothing writes costs no memory.
pub fn zeroed<T: Zeroed>(len: usize) -> Result<&'static mut [T], Errno> {
    let slice = zeroed_memory::<T>(len)?;
    // SAFETY: fresh zeroed memory, aligned for T, for which zero bytes are
    // a valid value.
    Ok(unsafe { core::slice::from_raw_parts_mut(slice, len) })
}

/// The chunk small slabs are carved from now (null before the first).
static CHUNK_NOW: AtomicPtr<Chunk> = AtomicPtr::new(core::ptr::null_mut());
/// Small slabs share chunks of this size; larger ones get a mapping each.
const CHUNK: usize = 64 * 1024;

/// The head of a chunk: where its free room starts (an address).
struct Chunk {
    next: AtomicUsize,
}

/// Room for `len` Ts, zeroed and never handed out before: carved from a
/// shared chunk (so that a few small slabs take one page, not one each),
/// or mapped alone when large. Anonymous `mmap`, never the C allocator,
/// and no lock: a compare-and-swap claims the room (the command has one
/// thread; its unit tests have many).
fn zeroed_memory<T>(len: usize) -> Result<*mut T, Errno> {
    let bytes = len.max(1).checked_mul(size_of::<T>()).ok_or(Errno::NOMEM)?;
    let align = align_of::<T>();
    if bytes > CHUNK / 4 {
        return map(bytes).map(|at| at.cast());
    }
    let chunk = CHUNK_NOW.load(Ordering::Acquire);
    if !chunk.is_null() {
        // SAFETY: a published chunk is mapped for the process's life.
        let next = unsafe { &(*chunk).next };
        let end = chunk as usize + CHUNK;
        let mut at = next.load(Ordering::Relaxed);
        loop {
            let start = at.next_multiple_of(align);
            if start + bytes > end {
                break;
            }
            match next.compare_exchange_weak(
                at,
                start + bytes,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(start as *mut T),
                Err(now) => at = now,
            }
        }
    }
    // A new chunk: this slab first, then published for the next ones (if
    // another thread published one meanwhile, theirs stays current).
    let fresh = map(CHUNK)?.cast::<Chunk>();
    let start = (fresh as usize + size_of::<Chunk>()).next_multiple_of(align);
    // SAFETY: the fresh mapping is ours and large enough for its head.
    unsafe {
        fresh.write(Chunk {
            next: AtomicUsize::new(start + bytes),
        })
    };
    let _ = CHUNK_NOW.compare_exchange(chunk, fresh, Ordering::AcqRel, Ordering::Acquire);
    Ok(start as *mut T)
}

/// A fresh private anonymous mapping of `bytes`, page-aligned (more than
/// any T needs), zeroed by the kernel.
fn map(bytes: usize) -> Result<*mut u8, Errno> {
    // SAFETY: a new mapping at an address the kernel picks; nothing else
    // refers to it.
    unsafe {
        rustix::mm::mmap_anonymous(
            core::ptr::null_mut(),
            bytes,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::PRIVATE,
        )
        .map(|at| at.cast())
    }
}

/// A C string copied into a slab: `parts` joined, NUL-terminated.
pub fn c_string(parts: &[&[u8]]) -> Result<&'static CStr, Errno> {
    let len: usize = parts.iter().map(|part| part.len()).sum();
    let buf = zeroed::<u8>(len + 1)?;
    let mut at = 0;
    for part in parts {
        if part.contains(&0) {
            return Err(Errno::INVAL);
        }
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    CStr::from_bytes_with_nul(buf).map_err(|_| Errno::INVAL)
}

/// The value of environment variable `name` (`getenv(3)`).
pub fn getenv(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: getenv reads the environment, which nothing here changes; the
    // string it returns lives as long as the environment entry.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: non-null: a NUL-terminated string.
    (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) })
}

/// The process's environment (`environ`), entry by entry.
pub fn environ() -> impl Iterator<Item = &'static CStr> {
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    // SAFETY: environ is a null-terminated array of C strings that nothing
    // here changes while this runs.
    let mut at = unsafe { environ };
    core::iter::from_fn(move || {
        // SAFETY: `at` stays within the array until its null entry.
        unsafe {
            if at.is_null() || (*at).is_null() {
                return None;
            }
            let entry = CStr::from_ptr(*at);
            at = at.add(1);
            Some(entry)
        }
    })
}

/// Decimal digits into a number, without sign; `None` for anything else
/// or beyond `max` (the library's parser: at most 19 digits).
/// Hands `path` (never followed if a link) to `owner`, `(uid, gid)`, if
/// any: what daemonic makes as root for the daemon's user (`Ids::owner`).
pub fn give_to(path: &CStr, owner: Option<(u32, u32)>) -> Result<(), Errno> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    rustix::fs::chownat(
        rustix::fs::CWD,
        path,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
}

pub fn parse_u64(digits: &[u8], max: u64) -> Option<u64> {
    daemonic::decimal::parse(digits).filter(|&n| n <= max)
}

/// A PID or other positive `i32` in decimal.
pub fn parse_pid(digits: &[u8]) -> Option<i32> {
    parse_u64(digits, i32::MAX as u64).map(|n| n as i32)
}

/// A close-on-exec pipe:
/// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html).
#[cfg(feature = "supervise")]
pub fn pipe() -> Result<(daemonic::fd::OwnedFd, daemonic::fd::OwnedFd), Errno> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_slabs() {
        assert_eq!(parse_pid(b"123"), Some(123));
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"12a"), None);
        assert_eq!(parse_pid(b"2147483648"), None);
        assert_eq!(parse_u64(b"99999999999999999999", u64::MAX), None);
        let s = slab(3, 7u32).unwrap();
        assert_eq!(s, [7, 7, 7]);
        // Small slabs share a chunk, each aligned and apart.
        let bytes = zeroed::<u8>(3).unwrap();
        let words = slab(2, u64::MAX).unwrap();
        let (b, w) = (bytes.as_ptr() as usize, words.as_ptr() as usize);
        assert!(w >= b + 3 || w + 16 <= b, "slabs overlap");
        assert_eq!(words.as_ptr() as usize % align_of::<u64>(), 0);
        assert_eq!(bytes, [0, 0, 0]);
        bytes.fill(1);
        assert_eq!(words, [u64::MAX; 2]);
        let large = zeroed::<u32>(1 << 20).unwrap();
        assert!(large.iter().all(|&n| n == 0));
        assert_eq!(c_string(&[b"/a", b"/b"]).unwrap(), c"/a/b");
        assert_eq!(millis(Duration::from_nanos(1)), 1);
    }
}
