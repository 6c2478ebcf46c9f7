//! Outbound HTTP allow-lists: deny by default, and loopback, link-local, private and
//! reserved addresses only when an entry names them by IP or CIDR. An IPv6 address that
//! carries an IPv4 one (mapped, NAT64, 6to4, Teredo, ...) is judged by that IPv4 address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::PolicyError;

/// The hosts one plugin may reach. Empty means none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    target: Target,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// An exact host name, lower-cased.
    Name(String),
    /// `*.example.com`: any subdomain, not the apex.
    Suffix(String),
    /// An IP or CIDR: the only way to reach non-public addresses.
    Net(IpNet),
}

/// Why a request was refused; its Display is what the step log shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No entry names the host.
    #[error("`{host}:{port}` is not in this plugin's http allow-list")]
    NotListed {
        /// Requested host.
        host: String,
        /// Requested port.
        port: u16,
    },
    /// The host is listed by name but resolves to an address that is not public.
    #[error(
        "`{host}` resolves to {addr}, not a public address ({class}); list that address or its network explicitly to allow it"
    )]
    PrivateAddress {
        /// Requested host.
        host: String,
        /// The address it resolved to.
        addr: IpAddr,
        /// Its class, e.g. `private 10.0.0.0/8` or `NAT64 of 10.0.0.1, private 10.0.0.0/8`.
        class: String,
    },
}

impl AllowList {
    /// Parses the entries of `[plugins.grants.<plugin>] http = [...]`.
    pub fn parse(plugin: &str, entries: &[String]) -> Result<Self, PolicyError> {
        let entries = entries
            .iter()
            .map(|e| {
                parse_entry(e).map_err(|reason| PolicyError::BadAllowEntry {
                    plugin: plugin.into(),
                    entry: e.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// True when no host may be reached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `egress` rule of a confined command: any host, but only at public addresses,
    /// unless an address is in this list. `resolved` as in [`AllowList::check`].
    pub fn check_egress(&self, host: &str, port: u16, resolved: &[IpAddr]) -> Result<(), Denied> {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => resolved.to_vec(),
        };
        let listed = |ip: &IpAddr| {
            let ip = match ip {
                IpAddr::V6(v6) => embedded_v4(*v6).map_or(*ip, |(_, v4)| IpAddr::V4(v4)),
                IpAddr::V4(_) => *ip,
            };
            self.entries
                .iter()
                .any(|e| e.port.is_none_or(|p| p == port) && matches!(&e.target, Target::Net(n) if n.contains(&ip)))
        };
        match addrs
            .iter()
            .filter(|ip| !listed(ip))
            .find_map(|ip| non_public(ip).map(|class| (*ip, class)))
        {
            Some((addr, class)) => Err(Denied::PrivateAddress { host, addr, class }),
            None if addrs.is_empty() => Err(Denied::NotListed { host, port }),
            None => Ok(()),
        }
    }

    /// Checks a request to `host:port` whose name resolved to `resolved` (empty when the
    /// host is an IP literal, which is then checked as its own address).
    pub fn check(&self, host: &str, port: u16, resolved: &[IpAddr]) -> Result<(), Denied> {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let literal: Option<IpAddr> = host.parse().ok();
        let addrs: Vec<IpAddr> = match literal {
            Some(ip) => vec![ip],
            None => resolved.to_vec(),
        };
        let port_ok = |e: &Entry| e.port.is_none_or(|p| p == port);
        let by_name = self.entries.iter().filter(|e| port_ok(e)).any(|e| match &e.target {
            Target::Name(n) => literal.is_none() && *n == host,
            Target::Suffix(s) => literal.is_none() && host.ends_with(s.as_str()),
            Target::Net(_) => false,
        });
        let listed = |ip: &IpAddr| {
            self.entries
                .iter()
                .filter(|e| port_ok(e))
                .any(|e| matches!(&e.target, Target::Net(n) if n.contains(ip)))
        };
        // An IPv6 address carrying an IPv4 one is also covered by a listing of that IPv4
        // address: the operator allowed where the packets go.
        let covered = |ip: &IpAddr| {
            listed(ip)
                || match ip {
                    IpAddr::V6(v6) => embedded_v4(*v6).is_some_and(|(_, v4)| listed(&IpAddr::V4(v4))),
                    IpAddr::V4(_) => false,
                }
        };
        let by_address = literal.is_some() && addrs.iter().all(covered);
        if !by_name && !by_address {
            return Err(Denied::NotListed { host, port });
        }
        let refused = addrs
            .iter()
            .filter(|ip| !covered(ip))
            .find_map(|ip| non_public(ip).map(|class| (*ip, class)));
        match refused {
            Some((addr, class)) => Err(Denied::PrivateAddress { host, addr, class }),
            None => Ok(()),
        }
    }
}

fn parse_entry(raw: &str) -> Result<Entry, String> {
    let s = raw.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Err("empty entry".into());
    }
    if s.contains("://") || s.contains('/') && s.parse::<IpNet>().is_err() {
        return Err("give a host, not a URL".into());
    }
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(Entry {
            target: Target::Net(net),
            port: None,
        });
    }
    if let Ok(ip) = s.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(Entry {
            target: Target::Net(IpNet::from(ip)),
            port: None,
        });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?)),
        None => (s.as_str(), None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Entry {
            target: Target::Net(IpNet::from(ip)),
            port,
        });
    }
    let valid = |label: &str| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let target = match host.strip_prefix("*.") {
        Some(rest) if rest.split('.').all(valid) => Target::Suffix(format!(".{rest}")),
        None if host.split('.').all(valid) => Target::Name(host.to_string()),
        _ => return Err("not a valid host name".into()),
    };
    Ok(Entry { target, port })
}

/// Why `ip` is not an address on the public internet (its class, and for an IPv6 address
/// that carries an IPv4 one, which), or `None` when it is public.
fn non_public(ip: &IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => v4_class(*v4).map(str::to_string),
        IpAddr::V6(v6) => v6_class(*v6),
    }
}

/// IPv4 ranges that are not public, first match wins (IANA special-purpose registry).
const V4_CLASSES: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "\"this network\" 0.0.0.0/8"),
    ([10, 0, 0, 0], 8, "private 10.0.0.0/8"),
    ([100, 64, 0, 0], 10, "shared address space (CGNAT) 100.64.0.0/10"),
    ([127, 0, 0, 0], 8, "loopback 127.0.0.0/8"),
    ([169, 254, 0, 0], 16, "link-local 169.254.0.0/16"),
    ([172, 16, 0, 0], 12, "private 172.16.0.0/12"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments 192.0.0.0/24"),
    ([192, 0, 2, 0], 24, "documentation 192.0.2.0/24"),
    ([192, 88, 99, 0], 24, "deprecated 6to4 relay anycast 192.88.99.0/24"),
    ([192, 168, 0, 0], 16, "private 192.168.0.0/16"),
    ([198, 18, 0, 0], 15, "benchmarking 198.18.0.0/15"),
    ([198, 51, 100, 0], 24, "documentation 198.51.100.0/24"),
    ([203, 0, 113, 0], 24, "documentation 203.0.113.0/24"),
    ([224, 0, 0, 0], 4, "multicast 224.0.0.0/4"),
    // Before 240.0.0.0/4, which holds it, so the message names it.
    ([255, 255, 255, 255], 32, "broadcast 255.255.255.255"),
    ([240, 0, 0, 0], 4, "reserved 240.0.0.0/4"),
];

/// IPv6 ranges that are not public and carry no IPv4 address to judge instead, first
/// match wins. Everything outside 2000::/3 is refused after these anyway; listing the
/// ranges below it only makes the message name them.
const V6_CLASSES: &[(u128, u32, &str)] = &[
    // Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the operator's
    // prefix length, so the whole range counts as the local network it translates into.
    (0x0064_ff9b_0001 << 80, 48, "local-use NAT64 64:ff9b:1::/48"),
    (0x0100 << 112, 64, "discard-only 100::/64"),
    (0x2001_0002 << 96, 48, "benchmarking 2001:2::/48"),
    (0x2001_0010 << 96, 28, "deprecated ORCHID 2001:10::/28"),
    (0x2001_0db8 << 96, 32, "documentation 2001:db8::/32"),
    (0x3fff << 112, 20, "documentation 3fff::/20"),
    (0xfc00 << 112, 7, "unique local fc00::/7"),
    (0xfe80 << 112, 10, "link-local fe80::/10"),
    (0xfec0 << 112, 10, "deprecated site-local fec0::/10"),
    (0xff00 << 112, 8, "multicast ff00::/8"),
];

fn in_prefix(addr: u128, prefix: u128, len: u32, bits: u32) -> bool {
    let mask = u128::MAX.checked_shl(bits - len).unwrap_or(0) & (u128::MAX >> (128 - bits));
    addr & mask == prefix & mask
}

/// The class of a non-public IPv4 address.
fn v4_class(v4: Ipv4Addr) -> Option<&'static str> {
    let addr = u128::from(u32::from(v4));
    V4_CLASSES
        .iter()
        .find(|(net, len, _)| in_prefix(addr, u128::from(u32::from_be_bytes(*net)), *len, 32))
        .map(|(_, _, class)| *class)
}

/// The class of a non-public IPv6 address; one that carries an IPv4 address takes that
/// address's class, since the packets end up there.
fn v6_class(v6: Ipv6Addr) -> Option<String> {
    if v6.is_unspecified() {
        return Some("unspecified ::".into());
    }
    if v6.is_loopback() {
        return Some("loopback ::1".into());
    }
    if let Some((how, v4)) = embedded_v4(v6) {
        return v4_class(v4).map(|class| format!("{how} of {v4}, {class}"));
    }
    let addr = u128::from(v6);
    if let Some((_, _, class)) = V6_CLASSES.iter().find(|(net, len, _)| in_prefix(addr, *net, *len, 128)) {
        return Some((*class).into());
    }
    // IANA has allocated only 2000::/3 for global unicast; the rest is reserved.
    (!in_prefix(addr, 0x2000 << 112, 3, 128)).then(|| "reserved, outside global unicast 2000::/3".into())
}

/// The IPv4 address an IPv6 address carries and reaches, with the name of the scheme: IPv4-
/// mapped, IPv4-compatible, SIIT's IPv4-translated, NAT64's well-known prefix, 6to4 (the
/// relay's address) and Teredo (the client's public address, stored inverted).
fn embedded_v4(v6: Ipv6Addr) -> Option<(&'static str, Ipv4Addr)> {
    let addr = u128::from(v6);
    let low32 = Ipv4Addr::from(addr as u32);
    if in_prefix(addr, 0xffff << 32, 96, 128) {
        Some(("IPv4-mapped", low32))
    } else if in_prefix(addr, 0, 96, 128) {
        Some(("IPv4-compatible", low32))
    } else if in_prefix(addr, 0xffff << 48, 96, 128) {
        Some(("IPv4-translated", low32))
    } else if in_prefix(addr, 0x0064_ff9b << 96, 96, 128) {
        Some(("NAT64", low32))
    } else if in_prefix(addr, 0x2002 << 112, 16, 128) {
        Some(("6to4", Ipv4Addr::from((addr >> 80) as u32)))
    } else if in_prefix(addr, 0x2001_0000 << 96, 32, 128) {
        Some(("Teredo", Ipv4Addr::from(!(addr as u32))))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse("p", &entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    const PUBLIC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(93, 184, 215, 14));
    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn empty_list_denies_everything() {
        let l = AllowList::default();
        assert!(matches!(
            l.check("example.com", 443, &[PUBLIC]),
            Err(Denied::NotListed { .. })
        ));
    }

    #[test]
    fn listed_name_allows_only_that_name_and_port() {
        let l = list(&["deploy.example.com", "api.example.com:8443"]);
        assert_eq!(l.check("deploy.example.com", 443, &[PUBLIC]), Ok(()));
        assert_eq!(l.check("DEPLOY.example.com", 80, &[PUBLIC]), Ok(()));
        assert!(l.check("evil.example.com", 443, &[PUBLIC]).is_err());
        assert_eq!(l.check("api.example.com", 8443, &[PUBLIC]), Ok(()));
        assert!(l.check("api.example.com", 443, &[PUBLIC]).is_err());
    }

    #[test]
    fn wildcard_matches_subdomains_not_apex_or_lookalikes() {
        let l = list(&["*.example.com"]);
        assert_eq!(l.check("a.b.example.com", 443, &[PUBLIC]), Ok(()));
        assert!(l.check("example.com", 443, &[PUBLIC]).is_err());
        assert!(l.check("badexample.com", 443, &[PUBLIC]).is_err());
    }

    #[test]
    fn listed_name_resolving_to_loopback_is_denied() {
        let l = list(&["deploy.example.com"]);
        assert_eq!(
            l.check("deploy.example.com", 443, &[LOOPBACK]),
            Err(Denied::PrivateAddress {
                host: "deploy.example.com".into(),
                addr: LOOPBACK,
                class: "loopback 127.0.0.0/8".into(),
            })
        );
    }

    #[test]
    fn loopback_allowed_only_when_listed_by_address() {
        assert!(list(&["localhost"]).check("localhost", 80, &[LOOPBACK]).is_err());
        assert!(list(&[]).check("127.0.0.1", 80, &[]).is_err());
        assert_eq!(list(&["127.0.0.1"]).check("127.0.0.1", 8080, &[]), Ok(()));
        assert_eq!(list(&["127.0.0.1:8080"]).check("127.0.0.1", 8080, &[]), Ok(()));
        assert!(list(&["127.0.0.1:8080"]).check("127.0.0.1", 8081, &[]).is_err());
        assert_eq!(
            list(&["localhost", "127.0.0.0/8"]).check("localhost", 80, &[LOOPBACK]),
            Ok(())
        );
        assert_eq!(list(&["[::1]"]).check("[::1]", 80, &[]), Ok(()));
    }

    #[test]
    fn private_ranges_need_explicit_cidr() {
        let ten = "10.1.2.3".parse().unwrap();
        assert!(list(&["internal.corp"]).check("internal.corp", 443, &[ten]).is_err());
        assert_eq!(
            list(&["internal.corp", "10.0.0.0/8"]).check("internal.corp", 443, &[ten]),
            Ok(())
        );
        assert!(
            list(&["*.corp"])
                .check("x.corp", 443, &["169.254.169.254".parse().unwrap()])
                .is_err()
        );
    }

    /// Addresses a listed name may resolve to, and whether the request may go there with
    /// only the name listed (`None`) or the refusal's class.
    const VERDICTS: &[(&str, Option<&str>)] = &[
        ("93.184.215.14", None),
        ("8.8.8.8", None),
        ("0.1.2.3", Some("\"this network\" 0.0.0.0/8")),
        ("10.1.2.3", Some("private 10.0.0.0/8")),
        ("100.64.0.1", Some("shared address space (CGNAT) 100.64.0.0/10")),
        ("100.127.255.254", Some("shared address space (CGNAT) 100.64.0.0/10")),
        ("100.128.0.1", None),
        ("127.0.0.2", Some("loopback 127.0.0.0/8")),
        ("169.254.169.254", Some("link-local 169.254.0.0/16")),
        ("172.31.0.1", Some("private 172.16.0.0/12")),
        ("172.32.0.1", None),
        ("192.0.0.8", Some("IETF protocol assignments 192.0.0.0/24")),
        ("192.0.2.1", Some("documentation 192.0.2.0/24")),
        ("192.88.99.1", Some("deprecated 6to4 relay anycast 192.88.99.0/24")),
        ("192.168.1.1", Some("private 192.168.0.0/16")),
        ("198.18.0.1", Some("benchmarking 198.18.0.0/15")),
        ("198.19.255.255", Some("benchmarking 198.18.0.0/15")),
        ("198.20.0.1", None),
        ("198.51.100.7", Some("documentation 198.51.100.0/24")),
        ("203.0.113.9", Some("documentation 203.0.113.0/24")),
        ("224.0.0.251", Some("multicast 224.0.0.0/4")),
        ("239.255.255.250", Some("multicast 224.0.0.0/4")),
        ("240.0.0.1", Some("reserved 240.0.0.0/4")),
        ("255.255.255.254", Some("reserved 240.0.0.0/4")),
        ("255.255.255.255", Some("broadcast 255.255.255.255")),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("::", Some("unspecified ::")),
        ("::1", Some("loopback ::1")),
        (
            "::ffff:127.0.0.1",
            Some("IPv4-mapped of 127.0.0.1, loopback 127.0.0.0/8"),
        ),
        ("::ffff:10.0.0.1", Some("IPv4-mapped of 10.0.0.1, private 10.0.0.0/8")),
        ("::ffff:93.184.215.14", None),
        (
            "::127.0.0.1",
            Some("IPv4-compatible of 127.0.0.1, loopback 127.0.0.0/8"),
        ),
        (
            "::0.0.0.2",
            Some("IPv4-compatible of 0.0.0.2, \"this network\" 0.0.0.0/8"),
        ),
        (
            "::ffff:0:169.254.169.254",
            Some("IPv4-translated of 169.254.169.254, link-local 169.254.0.0/16"),
        ),
        ("64:ff9b::a00:1", Some("NAT64 of 10.0.0.1, private 10.0.0.0/8")),
        ("64:ff9b::7f00:1", Some("NAT64 of 127.0.0.1, loopback 127.0.0.0/8")),
        (
            "64:ff9b::c612:1",
            Some("NAT64 of 198.18.0.1, benchmarking 198.18.0.0/15"),
        ),
        ("64:ff9b::5db8:d70e", None),
        ("64:ff9b:1::5db8:d70e", Some("local-use NAT64 64:ff9b:1::/48")),
        (
            "2002:a9fe:a9fe::1",
            Some("6to4 of 169.254.169.254, link-local 169.254.0.0/16"),
        ),
        ("2002:f000:1::1", Some("6to4 of 240.0.0.1, reserved 240.0.0.0/4")),
        ("2002:5db8:d70e::1", None),
        // Teredo: server 65.54.227.120, client 192.168.1.1 stored inverted (3f57:fefe).
        (
            "2001:0:4136:e378:8000:63bf:3f57:fefe",
            Some("Teredo of 192.168.1.1, private 192.168.0.0/16"),
        ),
        // Client 93.184.215.14 inverted.
        ("2001:0:4136:e378:8000:63bf:a247:28f1", None),
        ("100::1", Some("discard-only 100::/64")),
        ("2001:2::1", Some("benchmarking 2001:2::/48")),
        ("2001:10::1", Some("deprecated ORCHID 2001:10::/28")),
        ("2001:db8::1", Some("documentation 2001:db8::/32")),
        ("3fff::1", Some("documentation 3fff::/20")),
        ("fc00::1", Some("unique local fc00::/7")),
        ("fd12:3456::1", Some("unique local fc00::/7")),
        ("fe80::1", Some("link-local fe80::/10")),
        ("fec0::1", Some("deprecated site-local fec0::/10")),
        ("ff02::1", Some("multicast ff00::/8")),
        ("4000::1", Some("reserved, outside global unicast 2000::/3")),
        ("::2:3:4:5", Some("reserved, outside global unicast 2000::/3")),
    ];

    #[test]
    fn every_address_class_gets_its_verdict() {
        let l = list(&["svc.example.com"]);
        for (addr, expected) in VERDICTS {
            let ip: IpAddr = addr.parse().unwrap();
            let verdict = l.check("svc.example.com", 443, &[ip]);
            match expected {
                None => assert_eq!(verdict, Ok(()), "{addr}"),
                Some(class) => assert_eq!(
                    verdict,
                    Err(Denied::PrivateAddress {
                        host: "svc.example.com".into(),
                        addr: ip,
                        class: (*class).into()
                    }),
                    "{addr}"
                ),
            }
        }
    }

    #[test]
    fn a_refused_address_among_public_ones_is_still_refused() {
        let nat64: IpAddr = "64:ff9b::a9fe:a9fe".parse().unwrap();
        let verdict = list(&["svc.example.com"]).check("svc.example.com", 443, &[PUBLIC, nat64]);
        let err = verdict.unwrap_err().to_string();
        assert!(
            err.contains("not a public address (NAT64 of 169.254.169.254, link-local 169.254.0.0/16)"),
            "{err}"
        );
    }

    #[test]
    fn non_public_classes_pass_only_when_listed_by_address() {
        let cases = [
            ("198.18.0.1", "198.18.0.0/15"),
            ("240.0.0.1", "240.0.0.0/4"),
            ("100.64.0.1", "100.64.0.0/10"),
            ("fec0::1", "fec0::/10"),
            ("64:ff9b::a00:1", "64:ff9b::/96"),
            // The IPv4 address behind an embedding, listed, covers the IPv6 form too.
            ("64:ff9b::a00:1", "10.0.0.0/8"),
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("2002:a00:1::1", "10.0.0.1"),
            ("2001:0:4136:e378:8000:63bf:3f57:fefe", "192.168.1.1"),
        ];
        for (addr, entry) in cases {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(
                list(&["svc.example.com", entry]).check("svc.example.com", 443, &[ip]),
                Ok(()),
                "{addr} with {entry}"
            );
            assert!(
                list(&["svc.example.com", "172.16.0.0/12"])
                    .check("svc.example.com", 443, &[ip])
                    .is_err(),
                "{addr} without {entry}"
            );
        }
        // Listing one embedded address does not open its neighbours.
        let other: IpAddr = "64:ff9b::a00:2".parse().unwrap();
        assert!(
            list(&["svc.example.com", "10.0.0.1"])
                .check("svc.example.com", 443, &[other])
                .is_err()
        );
    }

    #[test]
    fn urls_and_garbage_are_rejected_with_a_reason() {
        for bad in ["https://example.com", "exa mple.com", "host:99999", ""] {
            let err = AllowList::parse("deploy", &[bad.to_string()]).unwrap_err();
            assert!(err.to_string().contains("invalid http allow-list entry"), "{err}");
        }
    }
}
