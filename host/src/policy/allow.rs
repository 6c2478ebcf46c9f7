//! Outbound HTTP allow-lists: deny by default, and loopback, link-local and private
//! addresses only when an entry names them by IP or CIDR.

use std::net::IpAddr;

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
    /// The host is listed by name but resolves to a private address.
    #[error(
        "`{host}` resolves to {addr}, a loopback, link-local or private address; list that address or its network explicitly to allow it"
    )]
    PrivateAddress {
        /// Requested host.
        host: String,
        /// The address it resolved to.
        addr: IpAddr,
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
        let covered = |ip: &IpAddr| {
            self.entries
                .iter()
                .filter(|e| port_ok(e))
                .any(|e| matches!(&e.target, Target::Net(n) if n.contains(ip)))
        };
        let by_address = literal.is_some() && addrs.iter().all(covered);
        if !by_name && !by_address {
            return Err(Denied::NotListed { host, port });
        }
        match addrs.iter().find(|ip| !is_public(ip) && !covered(ip)) {
            Some(addr) => Err(Denied::PrivateAddress { host, addr: *addr }),
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

/// Whether an address is on the public internet (not loopback, private, link-local, ...).
fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(&IpAddr::V4(v4));
            }
            let seg0 = v6.segments()[0];
            !(v6.is_loopback() || v6.is_unspecified() || (seg0 & 0xfe00) == 0xfc00 || (seg0 & 0xffc0) == 0xfe80)
        }
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
                addr: LOOPBACK
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

    #[test]
    fn urls_and_garbage_are_rejected_with_a_reason() {
        for bad in ["https://example.com", "exa mple.com", "host:99999", ""] {
            let err = AllowList::parse("deploy", &[bad.to_string()]).unwrap_err();
            assert!(err.to_string().contains("invalid http allow-list entry"), "{err}");
        }
    }
}
