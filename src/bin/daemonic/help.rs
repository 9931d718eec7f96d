//! `--help`: the text of help.txt, packed by build.rs (`pack_help`, where
//! the format is described) to less than half its size, and unpacked here
//! into a stack buffer on the one path that prints it.

/// help.txt as build.rs packed it. A `static`, so that it has a symbol
/// of its own, by which build.rs links it with the code a supervisor never
/// runs (`CALLER_ONLY_DATA`), outside what a supervisor maps.
static PACKED: [u8; include_bytes!(concat!(env!("OUT_DIR"), "/help.packed")).len()] =
    *include_bytes!(concat!(env!("OUT_DIR"), "/help.packed"));

/// The text as this build has it: help.txt without the options of modes
/// (Cargo features) left out.
#[cfg(test)]
const TEXT: &str = include_str!(concat!(env!("OUT_DIR"), "/help.txt"));

/// The text's length. Only the length is used: the text itself is not in
/// the binary.
pub const LEN: usize = include_str!(concat!(env!("OUT_DIR"), "/help.txt")).len();

/// The help text, unpacked into `buf`.
pub fn text(buf: &mut [u8; LEN]) -> &[u8] {
    let len = unpack(&PACKED, buf);
    &buf[..len]
}

/// Unpacks `packed` into `out`; the bytes written. Stops at anything that
/// does not fit (build.rs made `packed`, so nothing does).
fn unpack(packed: &[u8], out: &mut [u8]) -> usize {
    let mut len: usize = 0;
    let mut bytes = packed.iter();
    while let Some(&byte) = bytes.next() {
        let (back, count) = if byte < 0x80 {
            (0, 1)
        } else {
            let low = bytes.next().copied().unwrap_or(0);
            let back = usize::from(byte & 7) << 8 | usize::from(low);
            (back, usize::from(byte >> 3 & 15) + 3)
        };
        for _ in 0..count {
            let byte = match back {
                0 => byte,
                _ => match len.checked_sub(back).and_then(|from| out.get(from)) {
                    Some(&earlier) => earlier,
                    None => return len,
                },
            };
            let Some(slot) = out.get_mut(len) else {
                return len;
            };
            *slot = byte;
            len += 1;
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_to_the_text() {
        let mut buf = [0; LEN];
        assert_eq!(text(&mut buf), TEXT.as_bytes());
        assert!(PACKED.len() < LEN / 2, "{} of {LEN}", PACKED.len());
    }

    /// Each mode's options are described only where it is built; the
    /// lean command's always are.
    #[test]
    fn describes_the_options_of_this_build() {
        let full = include_str!("help.txt");
        let has = |option: &str| TEXT.contains(option);
        for (option, built) in [
            ("--supervise         stay", cfg!(feature = "supervise")),
            ("--restart[", cfg!(feature = "supervise")),
            ("--success-exit N", cfg!(feature = "supervise")),
            ("--rotate SIZE", cfg!(feature = "logs")),
            ("--syslog-socket PATH", cfg!(feature = "logs")),
            ("--cap CAP", cfg!(feature = "harden")),
            ("--no-new-privs ", cfg!(feature = "harden")),
            ("--limit RESOURCE", cfg!(feature = "harden")),
            ("--env-file FILE", cfg!(feature = "harden")),
            ("--runtime-dir NAME", cfg!(feature = "harden")),
            ("--pidfile PATH", true),
            ("--wait-ready", true),
            ("--foreground ", true),
            ("--retry SCHEDULE", true),
        ] {
            assert!(full.contains(option), "{option}");
            assert_eq!(has(option), built, "{option}");
        }
        assert_eq!(
            TEXT == full,
            cfg!(all(
                feature = "supervise",
                feature = "logs",
                feature = "harden"
            ))
        );
    }

    #[test]
    fn stops_at_a_repeat_from_before_the_start() {
        let mut out = [0; 8];
        assert_eq!(unpack(&[b'a', 0x80, 2, b'b'], &mut out), 1);
        assert_eq!(unpack(&[b'a', 0x80, 1], &mut out), 4);
        assert_eq!(&out[..4], b"aaaa");
    }
}
