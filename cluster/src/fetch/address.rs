//! Which addresses a manifest may be fetched from.
//!
//! [`is_refused`] is the built-in list: every range that reaches the gateway's own host,
//! the provider's internal networks, or something that is not a server on the Internet.
//! [`AddressPolicy`] adds the operator's `deny_cidrs` (always refused) and `allow_cidrs`
//! (lifts a built-in refusal) on top of it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is refused. Its `Display` is a phrase that follows "<address> is".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// 127.0.0.0/8 and ::1: the gateway's own host.
    Loopback,
    /// 0.0.0.0 and `::`: connecting to it reaches the local host on Linux.
    Unspecified,
    /// 0.0.0.0/8 other than 0.0.0.0 ("this network", never a destination).
    ThisNetwork,
    /// RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT shared space; clouds put internal services there.
    SharedAddressSpace,
    /// 169.254.0.0/16 and fe80::/10.
    LinkLocal,
    /// A cloud's instance metadata service (169.254.169.254, Alibaba's 100.100.100.200,
    /// AWS's fd00:ec2::254), which hands out the node's credentials.
    CloudMetadata,
    /// 192.0.0.0/24, IETF protocol assignments.
    ProtocolAssignments,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18.0.0/15 and 2001:2::/48, for benchmarking networks.
    Benchmarking,
    /// 224.0.0.0/4 and ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240.0.0.0/4 and IPv6 space outside global unicast (2000::/3) not named otherwise.
    Reserved,
    /// fc00::/7, the IPv6 counterpart of the private ranges.
    UniqueLocal,
    /// fec0::/10, deprecated site-local, still routed internally on some networks.
    SiteLocal,
    /// `::a.b.c.d`, the deprecated IPv4-compatible form.
    Ipv4Compatible,
    /// 100::/64, discard-only.
    DiscardOnly,
    /// 64:ff9b:1::/48, local-use NAT64: translated by the provider's own gateway, and where the
    /// IPv4 address sits depends on a prefix length that only that network knows.
    LocalUseNat64,
    /// 2001::/32, Teredo: the real destination is obfuscated inside the address.
    Teredo,
    /// An IPv6 address that carries a refused IPv4 address (IPv4-mapped, NAT64 or 6to4).
    Embedded {
        /// How the IPv4 address is carried.
        form: Embedding,
        /// The carried IPv4 address.
        v4: Ipv4Addr,
        /// Why the carried address is refused.
        reason: Box<Reason>,
    },
    /// In one of the operator's `deny_cidrs`.
    Denied(IpNet),
}

/// The IPv6 forms that carry an IPv4 address a connection ends up at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedding {
    /// `::ffff:a.b.c.d`: a dual-stack socket connects to a.b.c.d itself.
    Ipv4Mapped,
    /// `64:ff9b::a.b.c.d`: a NAT64 gateway connects to a.b.c.d.
    Nat64,
    /// `2002:aabb:ccdd::/48`: a 6to4 relay tunnels to a.b.c.d.
    SixToFour,
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Embedding::Ipv4Mapped => "IPv4-mapped",
            Embedding::Nat64 => "NAT64",
            Embedding::SixToFour => "6to4",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Loopback => f.write_str("loopback"),
            Reason::Unspecified => {
                f.write_str("the unspecified address (it reaches the local host)")
            }
            Reason::ThisNetwork => f.write_str("in 0.0.0.0/8 (\"this network\")"),
            Reason::Private => f.write_str("private (RFC 1918)"),
            Reason::SharedAddressSpace => f.write_str("carrier-grade NAT space (100.64.0.0/10)"),
            Reason::LinkLocal => f.write_str("link-local"),
            Reason::CloudMetadata => f.write_str("link-local (cloud metadata)"),
            Reason::ProtocolAssignments => f.write_str("IETF protocol assignment (192.0.0.0/24)"),
            Reason::Documentation => f.write_str("a documentation-only address"),
            Reason::Benchmarking => f.write_str("a benchmarking address"),
            Reason::Multicast => f.write_str("multicast"),
            Reason::Broadcast => f.write_str("broadcast"),
            Reason::Reserved => f.write_str("reserved"),
            Reason::UniqueLocal => f.write_str("unique-local (fc00::/7)"),
            Reason::SiteLocal => f.write_str("site-local (fec0::/10)"),
            Reason::Ipv4Compatible => f.write_str("IPv4-compatible (deprecated ::/96)"),
            Reason::DiscardOnly => f.write_str("discard-only (100::/64)"),
            Reason::LocalUseNat64 => f.write_str("local-use NAT64 (64:ff9b:1::/48)"),
            Reason::Teredo => f.write_str("Teredo (2001::/32), which hides the real destination"),
            Reason::Embedded { form, v4, reason } => {
                write!(f, "the {form} form of {v4}, which is {reason}")
            }
            Reason::Denied(net) => write!(f, "in {net}, which deny_cidrs refuses"),
        }
    }
}

impl Reason {
    /// Whether `allow_cidrs` can lift this refusal. Unspecified, multicast and broadcast
    /// addresses are never a server to fetch from, and 0.0.0.0 is an alias of the local host
    /// that would slip past an allowance written for one loopback address; `deny_cidrs` is the
    /// operator's own word and wins over their allowances.
    pub fn overridable(&self) -> bool {
        match self {
            Reason::Unspecified
            | Reason::ThisNetwork
            | Reason::Multicast
            | Reason::Broadcast
            | Reason::Denied(_) => false,
            Reason::Embedded { reason, .. } => reason.overridable(),
            _ => true,
        }
    }
}

/// The built-in refusal of `ip`, or `None` for an address on the public Internet.
pub fn is_refused(ip: IpAddr) -> Option<Reason> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<Reason> {
    let reason = match ip.octets() {
        [0, 0, 0, 0] => Reason::Unspecified,
        [0, ..] => Reason::ThisNetwork,
        [127, ..] => Reason::Loopback,
        [10, ..] | [192, 168, ..] => Reason::Private,
        [172, b, ..] if (16..=31).contains(&b) => Reason::Private,
        [100, 100, 100, 200] => Reason::CloudMetadata,
        [100, b, ..] if (64..=127).contains(&b) => Reason::SharedAddressSpace,
        [169, 254, 169, 254] => Reason::CloudMetadata,
        [169, 254, ..] => Reason::LinkLocal,
        [192, 0, 0, _] => Reason::ProtocolAssignments,
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => Reason::Documentation,
        [198, 18 | 19, ..] => Reason::Benchmarking,
        [224..=239, ..] => Reason::Multicast,
        [255, 255, 255, 255] => Reason::Broadcast,
        [240..=255, ..] => Reason::Reserved,
        _ => return None,
    };
    Some(reason)
}

fn v6_reason(ip: Ipv6Addr) -> Option<Reason> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some(Reason::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Reason::Loopback);
    }
    if let Some((form, v4)) = embedded_v4(ip) {
        // A carried public IPv4 address is as fine as the address itself.
        return v4_reason(v4).map(|reason| Reason::Embedded {
            form,
            v4,
            reason: Box::new(reason),
        });
    }
    let reason = match seg {
        [0, 0, 0, 0, 0, 0, _, _] => Reason::Ipv4Compatible,
        [0x64, 0xff9b, 1, ..] => Reason::LocalUseNat64,
        [0x100, 0, 0, 0, ..] => Reason::DiscardOnly,
        [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] => Reason::CloudMetadata,
        [0x2001, 0, ..] => Reason::Teredo,
        [0x2001, 0xdb8, ..] => Reason::Documentation,
        [0x2001, 2, 0, ..] => Reason::Benchmarking,
        [0x3fff, b, ..] if b & 0xf000 == 0 => Reason::Documentation,
        [a, ..] if a & 0xfe00 == 0xfc00 => Reason::UniqueLocal,
        [a, ..] if a & 0xffc0 == 0xfe80 => Reason::LinkLocal,
        [a, ..] if a & 0xffc0 == 0xfec0 => Reason::SiteLocal,
        [a, ..] if a & 0xff00 == 0xff00 => Reason::Multicast,
        // Everything else outside global unicast is unassigned or special; nothing a user's
        // manifest is served from.
        [a, ..] if a & 0xe000 != 0x2000 => Reason::Reserved,
        _ => return None,
    };
    Some(reason)
}

/// The IPv4 address an IPv6 address ends up at, for the forms where that is knowable.
pub(crate) fn embedded_v4(ip: Ipv6Addr) -> Option<(Embedding, Ipv4Addr)> {
    let seg = ip.segments();
    let low32 = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    match seg {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some((Embedding::Ipv4Mapped, low32)),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((Embedding::Nat64, low32)),
        [0x2002, hi, lo, ..] => Some((
            Embedding::SixToFour,
            Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8),
        )),
        _ => None,
    }
}

/// The built-in list plus the operator's `allow_cidrs` and `deny_cidrs`.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressPolicy {
    pub(crate) allow: Vec<IpNet>,
    pub(crate) deny: Vec<IpNet>,
}

impl AddressPolicy {
    /// `Err` with the reason when `ip` must not be connected to.
    ///
    /// `deny_cidrs` also match the IPv4 address an IPv6 form carries, so a denied API server
    /// cannot be reached as `::ffff:a.b.c.d` or through NAT64/6to4. `allow_cidrs` match the
    /// address as connected to (an IPv4-mapped address counts as its IPv4 address, since the
    /// kernel connects to exactly that).
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Reason> {
        let canonical = ip.to_canonical();
        let carried = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(|(_, v4)| IpAddr::V4(v4)),
            IpAddr::V4(_) => None,
        };
        for candidate in [Some(ip), Some(canonical), carried].into_iter().flatten() {
            if let Some(net) = self.deny.iter().find(|net| net.contains(&candidate)) {
                return Err(Reason::Denied(*net));
            }
        }
        match is_refused(ip) {
            None => Ok(()),
            Some(reason)
                if reason.overridable()
                    && self
                        .allow
                        .iter()
                        .any(|net| net.contains(&ip) || net.contains(&canonical)) =>
            {
                Ok(())
            }
            Some(reason) => Err(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> Option<Reason> {
        is_refused(s.parse().expect("test address"))
    }

    #[test]
    fn ipv4_special_ranges_are_refused() {
        let cases = [
            ("127.0.0.1", Reason::Loopback),
            ("127.255.255.254", Reason::Loopback),
            ("0.0.0.0", Reason::Unspecified),
            ("0.1.2.3", Reason::ThisNetwork),
            ("10.0.0.1", Reason::Private),
            ("172.16.0.1", Reason::Private),
            ("172.31.255.255", Reason::Private),
            ("192.168.1.1", Reason::Private),
            ("169.254.169.254", Reason::CloudMetadata),
            ("169.254.170.2", Reason::LinkLocal),
            ("100.64.0.1", Reason::SharedAddressSpace),
            ("100.127.255.255", Reason::SharedAddressSpace),
            ("100.100.100.200", Reason::CloudMetadata),
            ("192.0.0.8", Reason::ProtocolAssignments),
            ("192.0.2.1", Reason::Documentation),
            ("198.51.100.7", Reason::Documentation),
            ("203.0.113.9", Reason::Documentation),
            ("198.18.0.1", Reason::Benchmarking),
            ("198.19.255.255", Reason::Benchmarking),
            ("224.0.0.1", Reason::Multicast),
            ("239.255.255.250", Reason::Multicast),
            ("240.0.0.1", Reason::Reserved),
            ("255.255.255.255", Reason::Broadcast),
        ];
        for (addr, reason) in cases {
            assert_eq!(refused(addr), Some(reason), "{addr}");
        }
    }

    #[test]
    fn ipv4_public_and_range_edges_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "11.0.0.0",
            "126.255.255.255",
            "128.0.0.0",
        ] {
            assert_eq!(refused(addr), None, "{addr}");
        }
    }

    #[test]
    fn ipv6_special_ranges_are_refused() {
        let cases = [
            ("::1", Reason::Loopback),
            ("::", Reason::Unspecified),
            ("fc00::1", Reason::UniqueLocal),
            ("fdff:ffff::1", Reason::UniqueLocal),
            ("fd00:ec2::254", Reason::CloudMetadata),
            ("fe80::1", Reason::LinkLocal),
            ("febf::1", Reason::LinkLocal),
            ("fec0::1", Reason::SiteLocal),
            ("ff02::1", Reason::Multicast),
            ("::10.0.0.1", Reason::Ipv4Compatible),
            ("::8.8.8.8", Reason::Ipv4Compatible),
            ("100::1", Reason::DiscardOnly),
            ("64:ff9b:1::a00:1", Reason::LocalUseNat64),
            ("2001::1", Reason::Teredo),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reason::Teredo),
            ("2001:db8::1", Reason::Documentation),
            ("3fff::1", Reason::Documentation),
            ("2001:2::1", Reason::Benchmarking),
            ("4000::1", Reason::Reserved),
            ("1::1", Reason::Reserved),
        ];
        for (addr, reason) in cases {
            assert_eq!(refused(addr), Some(reason), "{addr}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_refused_ipv4_are_refused() {
        let embedded = |form, v4: &str, reason| Reason::Embedded {
            form,
            v4: v4.parse().expect("test address"),
            reason: Box::new(reason),
        };
        let cases = [
            (
                "::ffff:127.0.0.1",
                embedded(Embedding::Ipv4Mapped, "127.0.0.1", Reason::Loopback),
            ),
            (
                "::ffff:169.254.169.254",
                embedded(
                    Embedding::Ipv4Mapped,
                    "169.254.169.254",
                    Reason::CloudMetadata,
                ),
            ),
            (
                "64:ff9b::10.1.2.3",
                embedded(Embedding::Nat64, "10.1.2.3", Reason::Private),
            ),
            (
                "64:ff9b::a9fe:a9fe",
                embedded(Embedding::Nat64, "169.254.169.254", Reason::CloudMetadata),
            ),
            (
                "2002:7f00:1::1",
                embedded(Embedding::SixToFour, "127.0.0.1", Reason::Loopback),
            ),
            (
                "2002:c0a8:0101::",
                embedded(Embedding::SixToFour, "192.168.1.1", Reason::Private),
            ),
        ];
        for (addr, reason) in cases {
            assert_eq!(refused(addr), Some(reason), "{addr}");
        }
        assert_eq!(
            refused("::ffff:127.0.0.1")
                .map(|r| r.to_string())
                .as_deref(),
            Some("the IPv4-mapped form of 127.0.0.1, which is loopback")
        );
    }

    #[test]
    fn ipv6_public_and_forms_carrying_public_ipv4_pass() {
        for addr in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:800::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
            "2001:4860::1",
        ] {
            assert_eq!(refused(addr), None, "{addr}");
        }
    }

    #[test]
    fn reasons_read_as_a_sentence() {
        assert_eq!(
            Reason::CloudMetadata.to_string(),
            "link-local (cloud metadata)"
        );
        let net: IpNet = "10.96.0.0/12".parse().expect("test net");
        assert_eq!(
            Reason::Denied(net).to_string(),
            "in 10.96.0.0/12, which deny_cidrs refuses"
        );
    }

    fn policy(allow: &[&str], deny: &[&str]) -> AddressPolicy {
        let nets = |v: &[&str]| v.iter().map(|s| s.parse().expect("test net")).collect();
        AddressPolicy {
            allow: nets(allow),
            deny: nets(deny),
        }
    }

    fn check(p: &AddressPolicy, ip: &str) -> Result<(), Reason> {
        p.check(ip.parse().expect("test address"))
    }

    #[test]
    fn allow_lifts_builtin_refusals_only_where_it_says() {
        let p = policy(&["127.0.0.1/32"], &[]);
        assert_eq!(check(&p, "127.0.0.1"), Ok(()));
        // The kernel connects to 127.0.0.1 itself for the mapped form.
        assert_eq!(check(&p, "::ffff:127.0.0.1"), Ok(()));
        assert_eq!(check(&p, "127.0.0.2"), Err(Reason::Loopback));
        assert_eq!(check(&p, "::1"), Err(Reason::Loopback));
        assert_eq!(check(&p, "10.0.0.1"), Err(Reason::Private));
        // Translated forms go through a gateway: allowed only if their IPv6 prefix is.
        assert!(check(&p, "64:ff9b::127.0.0.1").is_err());
        assert_eq!(check(&p, "8.8.8.8"), Ok(()));
    }

    #[test]
    fn some_refusals_cannot_be_allowed() {
        let p = policy(&["0.0.0.0/0", "::/0"], &[]);
        assert_eq!(check(&p, "10.0.0.1"), Ok(()));
        assert_eq!(check(&p, "0.0.0.0"), Err(Reason::Unspecified));
        assert_eq!(check(&p, "0.1.2.3"), Err(Reason::ThisNetwork));
        assert_eq!(check(&p, "::"), Err(Reason::Unspecified));
        assert_eq!(check(&p, "224.0.0.1"), Err(Reason::Multicast));
        assert_eq!(check(&p, "255.255.255.255"), Err(Reason::Broadcast));
        assert_eq!(check(&p, "ff02::1"), Err(Reason::Multicast));
    }

    #[test]
    fn deny_wins_over_allow_and_matches_carried_ipv4() {
        let api: IpNet = "34.1.2.3/32".parse().expect("test net");
        let pods: IpNet = "10.244.0.0/16".parse().expect("test net");
        let p = policy(&["10.0.0.0/8"], &["10.244.0.0/16", "34.1.2.3/32"]);
        assert_eq!(check(&p, "10.1.0.1"), Ok(()));
        assert_eq!(check(&p, "10.244.3.4"), Err(Reason::Denied(pods)));
        assert_eq!(check(&p, "34.1.2.3"), Err(Reason::Denied(api)));
        assert_eq!(check(&p, "::ffff:34.1.2.3"), Err(Reason::Denied(api)));
        assert_eq!(check(&p, "64:ff9b::34.1.2.3"), Err(Reason::Denied(api)));
        assert_eq!(check(&p, "2002:2201:0203::1"), Err(Reason::Denied(api)));
        assert_eq!(check(&p, "34.1.2.4"), Ok(()));
    }
}
