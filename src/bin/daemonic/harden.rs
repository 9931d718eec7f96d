//! The hardening options' values (feature `harden`): `--cap NAME` and
//! `--limit RESOURCE=SOFT[:HARD]`, as systemd's `AmbientCapabilities=` and
//! `LimitNOFILE=` (and the rest) name them.

use daemonic::{Capabilities, Limit, Resource};

use crate::out::Line;
use crate::sys;
use crate::values::Usage;

/// The resources `--limit` takes, by the names of systemd's `Limit*=`
/// (and ulimit's): `nofile` is `RLIMIT_NOFILE`. A `static`: see
/// help.rs's `PACKED`.
static RESOURCES: [(&[u8], Resource); 16] = [
    (b"cpu", Resource::Cpu),
    (b"fsize", Resource::Fsize),
    (b"data", Resource::Data),
    (b"stack", Resource::Stack),
    (b"core", Resource::Core),
    (b"rss", Resource::Rss),
    (b"nproc", Resource::Nproc),
    (b"nofile", Resource::Nofile),
    (b"memlock", Resource::Memlock),
    (b"as", Resource::As),
    (b"locks", Resource::Locks),
    (b"sigpending", Resource::Sigpending),
    (b"msgqueue", Resource::Msgqueue),
    (b"nice", Resource::Nice),
    (b"rtprio", Resource::Rtprio),
    (b"rttime", Resource::Rttime),
];

/// `--cap NAME`: a capability's number, by capabilities(7)'s name with or
/// without `CAP_`.
pub fn capability(text: &[u8], line: &mut Line) -> Result<u32, Usage> {
    Capabilities::by_name(text).ok_or_else(|| {
        line.text(b"--cap ").text(text).text(
            b": unknown capability (a name of capabilities(7): net_bind_service, sys_time, ...)",
        );
        Usage
    })
}

/// `--limit RESOURCE=SOFT[:HARD]`: one value sets both limits, as
/// systemd's `LimitNOFILE=4096` does; `infinity` is no limit.
pub fn limit(text: &[u8], line: &mut Line) -> Result<Limit, Usage> {
    let mut bad = |why: &[u8]| {
        line.text(b"--limit ").text(text).text(b": ").text(why);
        Usage
    };
    let Some(eq) = text.iter().position(|&b| b == b'=') else {
        return Err(bad(b"expected RESOURCE=SOFT[:HARD]"));
    };
    let (name, values) = (&text[..eq], &text[eq + 1..]);
    let Some(&(_, resource)) = RESOURCES.iter().find(|(known, _)| *known == name) else {
        return Err(bad(
            b"unknown resource (nofile, nproc, core, memlock, as, stack, cpu, fsize, data, rss, rtprio, rttime, nice, msgqueue, sigpending, locks)",
        ));
    };
    let (soft, hard) = match values.iter().position(|&b| b == b':') {
        Some(colon) => (&values[..colon], &values[colon + 1..]),
        None => (values, values),
    };
    let value = |text: &[u8]| match text {
        b"infinity" => Some(None),
        digits => sys::parse_u64(digits, u64::MAX - 1).map(Some),
    };
    let (Some(soft), Some(hard)) = (value(soft), value(hard)) else {
        return Err(bad(b"expected a whole number or 'infinity' for each limit"));
    };
    let limit = Limit::new(resource, soft, hard);
    match (soft, hard) {
        (Some(soft), Some(hard)) if soft > hard => {
            Err(bad(b"the soft limit is above the hard one"))
        }
        (None, Some(_)) => Err(bad(b"the soft limit is above the hard one")),
        _ => Ok(limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit_of(text: &str) -> Result<Limit, String> {
        let mut line = Line::daemonic();
        limit(text.as_bytes(), &mut line)
            .map_err(|Usage| String::from_utf8_lossy(line.as_bytes()).into_owned())
    }

    #[test]
    fn limits_as_systemd_writes_them() {
        assert_eq!(
            limit_of("nofile=4096:65536"),
            Ok(Limit::new(Resource::Nofile, Some(4096), Some(65536)))
        );
        assert_eq!(
            limit_of("core=0"),
            Ok(Limit::new(Resource::Core, Some(0), Some(0)))
        );
        assert_eq!(
            limit_of("memlock=infinity"),
            Ok(Limit::new(Resource::Memlock, None, None))
        );
        assert_eq!(
            limit_of("stack=8388608:infinity"),
            Ok(Limit::new(Resource::Stack, Some(8 << 20), None))
        );
        for (text, why) in [
            ("nofile", "expected RESOURCE=SOFT[:HARD]"),
            ("files=10", "unknown resource"),
            ("nofile=ten", "expected a whole number"),
            ("nofile=10:", "expected a whole number"),
            ("nofile=20:10", "soft limit is above the hard one"),
            ("nofile=infinity:10", "soft limit is above the hard one"),
            ("nofile=18446744073709551615", "expected a whole number"),
        ] {
            let error = limit_of(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn capabilities_by_name() {
        let mut line = Line::daemonic();
        assert_eq!(
            capability(b"CAP_NET_BIND_SERVICE", &mut line).ok(),
            Some(10)
        );
        assert_eq!(capability(b"net_raw", &mut line).ok(), Some(13));
        assert!(capability(b"net_bind", &mut line).is_err());
        assert!(String::from_utf8_lossy(line.as_bytes()).contains("unknown capability"));
    }
}
