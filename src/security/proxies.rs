//! The client's address behind reverse proxies (`APP_TRUSTED_PROXIES`). A request's
//! `X-Forwarded-For` is believed only when the socket peer is a proxy we run; the client is
//! then the right-most address in it that is not one of our proxies (each proxy appends the
//! address it received the request from, so everything left of the first address we did not
//! write ourselves may be forged). From any other peer the headers are ignored: a client
//! cannot choose the address that rate limits, risk rules and the audit log see.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The networks whose requests may name the client in `X-Forwarded-For`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR blocks (`10.0.0.0/8, ::1`); an
    /// empty list trusts nobody.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                IpNet::from_str(s)
                    .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
                    .map_err(|_| format!("'{s}' is not an IP address or CIDR block"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: `peer` itself unless `peer` is a trusted proxy, then the
    /// right-most address of `forwarded_for` (or, without it, `real_ip`) that is not a
    /// trusted proxy. A malformed entry stops the walk at the last address known good.
    pub fn client_ip(
        &self,
        peer: IpAddr,
        forwarded_for: Option<&str>,
        real_ip: Option<&str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let Some(list) = forwarded_for.filter(|l| !l.trim().is_empty()) else {
            return real_ip.and_then(|r| parse_hop(r.trim())).unwrap_or(peer);
        };
        let mut client = peer;
        for hop in list.rsplit(',').map(str::trim) {
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    std::net::SocketAddr::from_str(hop)
        .ok()
        .map(|s| canonical(s.ip()))
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:10.0.0.1`) is that IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lists_parse_and_bad_entries_are_named() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 127.0.0.1 ,::1,, fd00::/8").unwrap();
        assert_eq!(t.0.len(), 4);
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        let err = TrustedProxies::parse("10.0.0.0/8, proxy.local").unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let c = t.client_ip(ip("203.0.113.9"), Some("1.1.1.1"), Some("2.2.2.2"));
        assert_eq!(c, ip("203.0.113.9"));
        let nobody = TrustedProxies::default();
        assert_eq!(
            nobody.client_ip(ip("10.0.0.1"), Some("1.1.1.1"), None),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        // client -> nginx (10.0.0.5) -> ingress (127.0.0.1) -> us
        let c = t.client_ip(
            ip("127.0.0.1"),
            Some("198.51.100.7, 10.0.0.5"),
            Some("10.0.0.5"),
        );
        assert_eq!(c, ip("198.51.100.7"));
        // A forged left part is never believed: the first hop we did not write wins.
        let c = t.client_ip(ip("10.0.0.5"), Some("6.6.6.6, 198.51.100.7"), None);
        assert_eq!(c, ip("198.51.100.7"));
        // Ports and IPv6 brackets, and IPv4 seen through an IPv6 socket.
        let c = t.client_ip(ip("::ffff:10.0.0.5"), Some("[2001:db8::1]:443"), None);
        assert_eq!(c, ip("2001:db8::1"));
        let c = t.client_ip(ip("10.0.0.5"), Some("198.51.100.7:5555"), None);
        assert_eq!(c, ip("198.51.100.7"));
    }

    #[test]
    fn missing_all_trusted_and_malformed_lists_fall_back_safely() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        // No header: X-Real-IP from the proxy, else the proxy itself.
        assert_eq!(
            t.client_ip(ip("10.0.0.5"), None, Some("198.51.100.7")),
            ip("198.51.100.7")
        );
        assert_eq!(t.client_ip(ip("10.0.0.5"), None, None), ip("10.0.0.5"));
        assert_eq!(
            t.client_ip(ip("10.0.0.5"), Some("  "), None),
            ip("10.0.0.5")
        );
        // Every hop is ours: the left-most of them.
        assert_eq!(
            t.client_ip(ip("10.0.0.5"), Some("10.1.1.1, 10.2.2.2"), None),
            ip("10.1.1.1")
        );
        // Garbage stops the walk at the last good address.
        assert_eq!(
            t.client_ip(ip("10.0.0.5"), Some("198.51.100.7, junk, 10.2.2.2"), None),
            ip("10.2.2.2")
        );
        assert_eq!(
            t.client_ip(ip("10.0.0.5"), Some("unknown"), None),
            ip("10.0.0.5")
        );
    }
}
