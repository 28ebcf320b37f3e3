//! The client's address, as the DCR and sign-in limits see it.
//!
//! Behind a reverse proxy every connection comes from the proxy, so limits
//! keyed by the peer address would lump all clients together. The
//! `X-Forwarded-For` header (de facto standard; RFC 7239 `Forwarded` carries
//! the same) names the client, but anyone can send it: it is read only when
//! the peer is listed in `trusted_proxies`, and then from the right, skipping
//! addresses of trusted proxies, so the first untrusted hop is the client.
//! A client cannot forge its way past a trusted proxy, which appends the
//! address it saw.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, StatusCode, request::Parts},
};
use ipnet::IpNet;

use crate::state::AppState;

/// The client address of a request (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = StatusCode;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ClientAddr, StatusCode> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(ClientAddr(client_addr(
            peer.ip(),
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

/// The client behind `peer`, trusting `X-Forwarded-For` only through
/// `trusted` proxies.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|hop| hop.trim().parse::<IpAddr>().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_addresses_count_only_through_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        // A direct client cannot choose its address.
        assert_eq!(
            client_addr(stranger, &headers(&["198.51.100.1"]), &trusted),
            stranger
        );
        // Through the proxy: the last untrusted hop, not a forged first one.
        assert_eq!(
            client_addr(proxy, &headers(&["1.2.3.4, 198.51.100.7"]), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_addr(proxy, &headers(&["198.51.100.7", "10.0.0.9"]), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(client_addr(proxy, &headers(&[]), &trusted), proxy);
        assert_eq!(client_addr(proxy, &headers(&["nonsense"]), &trusted), proxy);
        // Nothing trusted: the header is ignored.
        assert_eq!(client_addr(proxy, &headers(&["198.51.100.7"]), &[]), proxy);
    }
}
