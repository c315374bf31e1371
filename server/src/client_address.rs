//! Who is on the other end of a request. Behind a reverse proxy every connection comes from the
//! proxy, so sign-in limits per address would lock everybody out together; the client's address is
//! then read from `Forwarded` (RFC 7239) or `X-Forwarded-For`, but only when the connection comes
//! from a proxy the operator trusts (`--trusted-proxies`), and only as far as trusted hops go:
//! anything a client writes into those headers itself sits to the left of what its proxy appended.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// An address block: an address and how many leading bits must match (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressBlock {
    network: IpAddr,
    prefix: u8,
}

impl AddressBlock {
    /// Parses `192.168.1.10`, `10.0.0.0/8`, `2001:db8::/32`.
    pub fn parse(s: &str) -> Result<AddressBlock, String> {
        let s = s.trim();
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let network: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP address or block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(AddressBlock { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> Option<(u128, u32)> {
            match (self.network, ip.to_canonical()) {
                (IpAddr::V4(_), IpAddr::V4(v)) => Some((u128::from(u32::from(v)), 32)),
                (IpAddr::V6(_), IpAddr::V6(v)) => Some((u128::from(v), 128)),
                _ => None,
            }
        };
        let (Some((net, width)), Some((candidate, _))) = (bits(self.network), bits(ip)) else { return false };
        let shift = width - u32::from(self.prefix);
        let mask = if shift >= width { 0 } else { (u128::MAX >> (128 - width)) >> shift << shift };
        net & mask == candidate & mask
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<AddressBlock>);

impl TrustedProxies {
    /// A comma-separated list of addresses and blocks; empty trusts nobody.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        list.split(',').filter(|s| !s.trim().is_empty()).map(AddressBlock::parse).collect::<Result<_, _>>().map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|b| b.contains(ip))
    }

    /// The client's address for a connection from `peer` carrying `headers`: the peer itself unless
    /// it is trusted; then the right-most forwarded address that is not a trusted proxy (or the
    /// left-most, if every hop is trusted). Unreadable entries stop the walk at the last good one.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_hops(headers).iter().rev() {
            let Some(ip) = hop else { break };
            client = *ip;
            if !self.trusts(*ip) {
                break;
            }
        }
        client
    }
}

/// The forwarded-for addresses, client first: from `Forwarded` when present, else from
/// `X-Forwarded-For` (every header line, in order). `None` for an entry that is not an address
/// (`unknown`, an obfuscated identifier, garbage).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim);
    let forwarded: Vec<Option<IpAddr>> = values("forwarded")
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| node_address(v.trim().trim_matches('"')))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    values("x-forwarded-for").map(node_address).collect()
}

/// `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn node_address(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    node.parse().ok().or_else(|| node.rsplit_once(':').and_then(|(ip, _)| ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)))
}

/// Puts the client's address into the request for the pages and server functions
/// ([`app::state::ClientAddress`]).
pub async fn resolve(State(trusted): State<Arc<TrustedProxies>>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = trusted.client_address(peer.ip(), req.headers());
        req.extensions_mut().insert(app::state::ClientAddress(client));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_match_by_prefix_for_both_families() {
        let b = AddressBlock::parse("10.0.0.0/8").unwrap();
        assert!(b.contains(ip("10.200.3.4")) && !b.contains(ip("11.0.0.1")));
        assert!(b.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 is the IPv4 address");
        assert!(AddressBlock::parse("2001:db8::/32").unwrap().contains(ip("2001:db8:1::9")));
        assert!(!AddressBlock::parse("2001:db8::/32").unwrap().contains(ip("10.0.0.1")));
        assert!(AddressBlock::parse("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
        assert!(AddressBlock::parse("192.0.2.1").unwrap().contains(ip("192.0.2.1")));
        assert!(!AddressBlock::parse("192.0.2.1").unwrap().contains(ip("192.0.2.2")));
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.0/x", "::/129"] {
            assert!(AddressBlock::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies_and_only_past_trusted_hops() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.66, 203.0.113.7")]);
        // A direct client cannot choose its address by writing the header.
        assert_eq!(proxies.client_address(ip("203.0.113.50"), &xff), ip("203.0.113.50"));
        // Through the proxy: the right-most address the proxy saw; what the client wrote is to its left.
        assert_eq!(proxies.client_address(ip("10.0.0.5"), &xff), ip("203.0.113.7"));
        // Two trusted hops (a load balancer, then the proxy).
        let chain = headers(&[("x-forwarded-for", "198.51.100.66, 203.0.113.7, 192.0.2.1")]);
        assert_eq!(proxies.client_address(ip("10.0.0.5"), &chain), ip("203.0.113.7"));
        // Several header lines are one list.
        let lines = headers(&[("x-forwarded-for", "198.51.100.66"), ("x-forwarded-for", "203.0.113.8")]);
        assert_eq!(proxies.client_address(ip("10.0.0.5"), &lines), ip("203.0.113.8"));
        // Nothing forwarded: the proxy itself.
        assert_eq!(proxies.client_address(ip("10.0.0.5"), &HeaderMap::new()), ip("10.0.0.5"));
        // Garbage where the proxy's entry should be: stop at the proxy rather than believe more.
        assert_eq!(proxies.client_address(ip("10.0.0.5"), &headers(&[("x-forwarded-for", "203.0.113.7, unknown")])), ip("10.0.0.5"));
        // Nobody trusted: headers are ignored.
        assert_eq!(TrustedProxies::default().client_address(ip("10.0.0.5"), &xff), ip("10.0.0.5"));
    }

    #[test]
    fn the_standard_forwarded_header_wins_and_its_forms_are_read() {
        let proxies = TrustedProxies::parse("10.0.0.1").unwrap();
        let h = headers(&[
            ("forwarded", "for=198.51.100.66;proto=https, for=\"[2001:db8::7]:4711\";by=10.0.0.1"),
            ("x-forwarded-for", "203.0.113.99"),
        ]);
        assert_eq!(proxies.client_address(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        let port = headers(&[("forwarded", "for=203.0.113.7:4711")]);
        assert_eq!(proxies.client_address(ip("10.0.0.1"), &port), ip("203.0.113.7"));
    }
}
