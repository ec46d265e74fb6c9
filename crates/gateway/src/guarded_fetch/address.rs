//! Which addresses a fetch of an untrusted URL may reach: the public internet only, unless an
//! operator names a network it trusts. IPv4 is judged against a table of special-purpose ranges
//! (IANA's registry, RFC 6890 and successors); IPv6 is allowed only inside global unicast
//! (2000::/3) minus its special ranges, and every IPv6 form that carries an IPv4 address
//! (mapped, compatible, NAT64, 6to4) is judged by the IPv4 address it carries.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A CIDR network, e.g. `10.0.0.0/8` or `::1/128`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `addr/prefix` (or a bare address); host bits must be zero, so a typo such as
    /// `10.0.0.1/8` is caught rather than silently trusting a whole /8.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?}: not an IP network (expected e.g. 10.0.0.0/8 or fd00::/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: prefix length must be a number from 0 to {max}"))?,
        };
        let net = Network { addr, prefix };
        if net.masked() != addr {
            return Err(format!(
                "{text:?}: address has bits set beyond the /{prefix} prefix (did you mean {}/{prefix}?)",
                net.masked()
            ));
        }
        Ok(net)
    }

    /// Whether `ip` is inside. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address
    /// it maps: a socket to it reaches that IPv4 host.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => in_v4(ip, u32::from(net), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => in_v6(ip, u128::from(net), self.prefix),
            // A v6 network can still name a mapped address literally (::ffff:0:0/96).
            (IpAddr::V6(net), IpAddr::V4(_)) => match ip {
                IpAddr::V6(ip) => in_v6(ip, u128::from(net), self.prefix),
                IpAddr::V4(_) => false,
            },
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }

    fn masked(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        }
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Network::parse(s)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Why an address is refused: the special range it falls in, and the IPv6 form it was carried
/// by when the verdict was made on an embedded IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbidden {
    pub range: &'static str,
    pub carried_by: Option<&'static str>,
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.carried_by {
            None => f.write_str(self.range),
            Some(form) => write!(f, "{} (IPv4 carried by a {form} IPv6 address)", self.range),
        }
    }
}

/// `Err` with the reason when `ip` is not a public address. Trust is decided by the caller.
pub fn check(ip: IpAddr) -> Result<(), Forbidden> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4).map_err(|range| Forbidden {
            range,
            carried_by: None,
        }),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

/// Special-purpose IPv4 ranges (base, prefix, name); first match wins.
const V4_FORBIDDEN: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "unspecified (0.0.0.0/8, \"this network\")"),
    (0x0A00_0000, 8, "private (10.0.0.0/8)"),
    (0x6440_0000, 10, "shared address space / CGNAT (100.64.0.0/10)"),
    (0x7F00_0000, 8, "loopback (127.0.0.0/8)"),
    (0xA9FE_0000, 16, "link-local (169.254.0.0/16)"),
    (0xAC10_0000, 12, "private (172.16.0.0/12)"),
    (0xC000_0000, 24, "IETF protocol assignments (192.0.0.0/24)"),
    (0xC000_0200, 24, "documentation (192.0.2.0/24)"),
    (0xC058_6300, 24, "6to4 relay anycast (192.88.99.0/24)"),
    (0xC0A8_0000, 16, "private (192.168.0.0/16)"),
    (0xC612_0000, 15, "benchmarking (198.18.0.0/15)"),
    (0xC633_6400, 24, "documentation (198.51.100.0/24)"),
    (0xCB00_7100, 24, "documentation (203.0.113.0/24)"),
    (0xE000_0000, 4, "multicast (224.0.0.0/4)"),
    (0xFFFF_FFFF, 32, "broadcast (255.255.255.255)"),
    (0xF000_0000, 4, "reserved (240.0.0.0/4)"),
];

fn check_v4(ip: Ipv4Addr) -> Result<(), &'static str> {
    match V4_FORBIDDEN.iter().find(|(base, prefix, _)| in_v4(ip, *base, *prefix)) {
        Some((_, _, name)) => Err(*name),
        None => Ok(()),
    }
}

/// IPv6 forms carrying an IPv4 address in their low 32 bits (base, prefix, name).
const V6_CARRYING_V4: &[(u128, u8, &str)] = &[
    (0xffff_0000_0000, 96, "IPv4-mapped (::ffff:0:0/96)"),
    (0xffff_0000_0000_0000, 96, "IPv4-translated (::ffff:0:0:0/96)"),
    (0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96, "NAT64 (64:ff9b::/96)"),
    // Last: :: and ::1 are in it too, and are judged as themselves first.
    (0, 96, "IPv4-compatible (::/96)"),
];

/// Special-purpose IPv6 ranges refused outright (base, prefix, name); first match wins.
const V6_FORBIDDEN: &[(u128, u8, &str)] = &[
    (
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64, "discard-only (100::/64)"),
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 32, "Teredo (2001::/32)"),
    (
        0x2001_0002_0000_0000_0000_0000_0000_0000,
        48,
        "benchmarking (2001:2::/48)",
    ),
    (0x2001_0010_0000_0000_0000_0000_0000_0000, 28, "ORCHID (2001:10::/28)"),
    (0x2001_0020_0000_0000_0000_0000_0000_0000, 28, "ORCHIDv2 (2001:20::/28)"),
    (
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "documentation (2001:db8::/32)",
    ),
    (
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "documentation (3fff::/20)",
    ),
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7, "unique local (fc00::/7)"),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10, "link-local (fe80::/10)"),
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10, "site-local (fec0::/10)"),
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8, "multicast (ff00::/8)"),
];

const GLOBAL_UNICAST: (u128, u8) = (0x2000_0000_0000_0000_0000_0000_0000_0000, 3);
const SIX_TO_FOUR: (u128, u8) = (0x2002_0000_0000_0000_0000_0000_0000_0000, 16);

fn check_v6(ip: Ipv6Addr) -> Result<(), Forbidden> {
    let refuse = |range: &'static str| {
        Err(Forbidden {
            range,
            carried_by: None,
        })
    };
    if ip.is_unspecified() {
        return refuse("unspecified (::)");
    }
    if ip.is_loopback() {
        return refuse("loopback (::1)");
    }
    let bits = u128::from(ip);
    for (base, prefix, form) in V6_CARRYING_V4 {
        if in_v6(ip, *base, *prefix) {
            // Truncation intended: the low 32 bits are the IPv4 address.
            let v4 = Ipv4Addr::from(bits as u32);
            return check_v4(v4).map_err(|range| Forbidden {
                range,
                carried_by: Some(*form),
            });
        }
    }
    if in_v6(ip, SIX_TO_FOUR.0, SIX_TO_FOUR.1) {
        let v4 = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return check_v4(v4).map_err(|range| Forbidden {
            range,
            carried_by: Some("6to4 (2002::/16)"),
        });
    }
    if let Some((_, _, name)) = V6_FORBIDDEN.iter().find(|(base, prefix, _)| in_v6(ip, *base, *prefix)) {
        return refuse(name);
    }
    if !in_v6(ip, GLOBAL_UNICAST.0, GLOBAL_UNICAST.1) {
        return refuse("not global unicast (outside 2000::/3)");
    }
    Ok(())
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0)
}

fn in_v4(ip: Ipv4Addr, base: u32, prefix: u8) -> bool {
    u32::from(ip) & mask32(prefix) == base & mask32(prefix)
}

fn in_v6(ip: Ipv6Addr, base: u128, prefix: u8) -> bool {
    u128::from(ip) & mask128(prefix) == base & mask128(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        check(s.parse().unwrap()).is_err()
    }

    #[test]
    fn every_forbidden_v4_range_and_its_boundaries() {
        // (first address of the range, last address, the address just before, just after)
        let ranges = [
            ("0.0.0.0", "0.255.255.255", None, Some("1.0.0.0")),
            ("10.0.0.0", "10.255.255.255", Some("9.255.255.255"), Some("11.0.0.0")),
            (
                "100.64.0.0",
                "100.127.255.255",
                Some("100.63.255.255"),
                Some("100.128.0.0"),
            ),
            (
                "127.0.0.0",
                "127.255.255.255",
                Some("126.255.255.255"),
                Some("128.0.0.0"),
            ),
            (
                "169.254.0.0",
                "169.254.255.255",
                Some("169.253.255.255"),
                Some("169.255.0.0"),
            ),
            (
                "172.16.0.0",
                "172.31.255.255",
                Some("172.15.255.255"),
                Some("172.32.0.0"),
            ),
            ("192.0.0.0", "192.0.0.255", Some("191.255.255.255"), Some("192.0.1.0")),
            ("192.0.2.0", "192.0.2.255", Some("192.0.1.255"), Some("192.0.3.0")),
            (
                "192.88.99.0",
                "192.88.99.255",
                Some("192.88.98.255"),
                Some("192.88.100.0"),
            ),
            (
                "192.168.0.0",
                "192.168.255.255",
                Some("192.167.255.255"),
                Some("192.169.0.0"),
            ),
            (
                "198.18.0.0",
                "198.19.255.255",
                Some("198.17.255.255"),
                Some("198.20.0.0"),
            ),
            (
                "198.51.100.0",
                "198.51.100.255",
                Some("198.51.99.255"),
                Some("198.51.101.0"),
            ),
            (
                "203.0.113.0",
                "203.0.113.255",
                Some("203.0.112.255"),
                Some("203.0.114.0"),
            ),
            ("224.0.0.0", "255.255.255.255", Some("223.255.255.255"), None),
        ];
        for (first, last, before, after) in ranges {
            assert!(refused(first), "{first} must be refused");
            assert!(refused(last), "{last} must be refused");
            if let Some(b) = before {
                assert!(!refused(b), "{b} must be allowed");
            }
            if let Some(a) = after {
                assert!(!refused(a), "{a} must be allowed");
            }
        }
        for ok in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "172.15.255.255",
            "100.63.255.255",
        ] {
            assert_eq!(check(ok.parse().unwrap()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn named_reasons() {
        let reason = |s: &str| check(s.parse().unwrap()).unwrap_err().to_string();
        assert!(reason("127.0.0.1").starts_with("loopback"));
        assert!(reason("169.254.169.254").starts_with("link-local"));
        assert!(reason("255.255.255.255").starts_with("broadcast"));
        assert!(reason("240.0.0.1").starts_with("reserved"));
        assert!(reason("239.1.2.3").starts_with("multicast"));
        assert!(reason("0.0.0.0").starts_with("unspecified"));
        assert!(reason("::").starts_with("unspecified"));
        assert!(reason("::1").starts_with("loopback"));
        let mapped = reason("::ffff:169.254.169.254");
        assert!(
            mapped.starts_with("link-local") && mapped.contains("IPv4-mapped"),
            "{mapped}"
        );
    }

    #[test]
    fn v6_special_ranges() {
        for bad in [
            "::",
            "::1",
            "fe80::1",
            "febf:ffff::1",
            "fec0::1",
            "feff:ffff::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "ff0e::1",
            "2001:db8::1",
            "2001::1",
            "2001:2::1",
            "2001:10::1",
            "3fff::1",
            "100::1",
            "64:ff9b:1::1",
            // Outside 2000::/3 altogether.
            "::2:0:0:1",
            "4000::1",
            "1234::1",
        ] {
            assert!(refused(bad), "{bad} must be refused");
        }
        for ok in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860:4860::8888",
            "2001:200::1",
        ] {
            assert_eq!(check(ok.parse().unwrap()), Ok(()), "{ok}");
        }
        // Just outside fc00::/7 and fe80::/10 are still outside 2000::/3: refused for that reason.
        let e = check("fbff::1".parse().unwrap()).unwrap_err();
        assert!(e.range.starts_with("not global unicast"), "{e}");
    }

    #[test]
    fn v6_carrying_v4_is_judged_by_the_v4() {
        for bad in [
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:172.16.0.0",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:0:192.168.1.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "2002:7f00:0001::1",
            "2002:a9fe:a9fe::",
            "2002:0a00:0001:1234::1",
        ] {
            let e = check(bad.parse().unwrap()).unwrap_err();
            assert!(e.carried_by.is_some(), "{bad}: {e}");
        }
        for ok in [
            "::ffff:8.8.8.8",
            "::ffff:172.15.255.255",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "::8.8.8.8",
        ] {
            assert_eq!(check(ok.parse().unwrap()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn networks_parse_and_contain() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.255.0.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.0".parse().unwrap()));
        assert!(
            n.contains("::ffff:10.0.0.1".parse().unwrap()),
            "mapped address is the v4 host"
        );
        assert!(
            !n.contains("::10.0.0.1".parse().unwrap()),
            "only mapped counts as the v4 host"
        );
        assert_eq!(n.to_string(), "10.0.0.0/8");

        let lo6 = Network::parse("::1/128").unwrap();
        assert!(lo6.contains("::1".parse().unwrap()));
        assert!(!lo6.contains("127.0.0.1".parse().unwrap()));
        assert!(!lo6.contains("::2".parse().unwrap()));

        let host = Network::parse("192.168.1.7").unwrap();
        assert_eq!(host.to_string(), "192.168.1.7/32");
        assert!(host.contains("192.168.1.7".parse().unwrap()));
        assert!(!host.contains("192.168.1.8".parse().unwrap()));

        let all = Network::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let ula: Network = "fd00::/8".parse().unwrap();
        assert!(ula.contains("fd12::1".parse().unwrap()));
        assert!(!ula.contains("fc00::1".parse().unwrap()));

        let mapped_net = Network::parse("::ffff:0:0/96").unwrap();
        assert!(mapped_net.contains("::ffff:1.2.3.4".parse().unwrap()));

        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/x",
            "example.com/8",
            "",
            "10.0.0.0/-1",
        ] {
            assert!(Network::parse(bad).is_err(), "{bad:?} must not parse");
        }
        assert!(
            Network::parse("10.0.0.1/8")
                .unwrap_err()
                .contains("did you mean 10.0.0.0/8")
        );
    }
}
