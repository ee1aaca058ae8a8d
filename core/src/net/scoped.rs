//! TCP that can dial link-local IPv6 (`fe80::/10`) addresses.
//!
//! A link-local address means nothing without the interface it lives on: `fe80::1` may exist
//! on every link a laptop has, so the kernel refuses to connect to it unless the socket
//! address names the interface (its *scope id*). That is the network two laptops on a cable,
//! or an ad-hoc Wi-Fi with no DHCP server, have — and libp2p's TCP transport drops the scope:
//! it reads `/ip6/fe80::1/tcp/4001` into a socket address with scope 0.
//!
//! The multiaddr format already has the place for it, `/ip6zone/<zone>` before `/ip6/`
//! (as in `fe80::1%eth0`). mDNS tells us the zone: mdns-sd reports the interface each
//! address record arrived on, and a link-local address is only reachable through that
//! interface. [`ScopedTcp`] wraps libp2p's TCP transport: an address with a zone is dialed
//! here with the scope id set; everything else, and all listening, goes to the inner
//! transport unchanged. Listening needs nothing: a socket bound to `::` accepts link-local
//! connections on every interface.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::Transport;
use libp2p::multiaddr::Protocol;
use libp2p::tcp::tokio::TcpStream;
use libp2p::Multiaddr;

type Inner = libp2p::tcp::tokio::Transport;

/// libp2p's tokio TCP transport, plus dialing `/ip6zone/<zone>/ip6/<fe80::…>/tcp/<port>`.
pub struct ScopedTcp {
    inner: Inner,
}

impl ScopedTcp {
    pub fn new(config: libp2p::tcp::Config) -> ScopedTcp {
        ScopedTcp {
            inner: Inner::new(config),
        }
    }
}

impl Transport for ScopedTcp {
    type Output = TcpStream;
    type Error = io::Error;
    type ListenerUpgrade = <Inner as Transport>::ListenerUpgrade;
    type Dial = BoxFuture<'static, io::Result<TcpStream>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<io::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<io::Error>> {
        match scoped_socket_addr(&addr) {
            None => self.inner.dial(addr, opts),
            Some(Err(why)) => Err(TransportError::Other(io::Error::new(
                io::ErrorKind::InvalidInput,
                why,
            ))),
            Some(Ok(sa)) => Ok(async move {
                let s = tokio::net::TcpStream::connect(SocketAddr::V6(sa)).await?;
                s.set_nodelay(true)?;
                Ok(TcpStream(s))
            }
            .boxed()),
        }
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, io::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// `None` when `addr` has no zone (the inner transport's business); otherwise the socket
/// address with its scope id, or why there is none (an unknown interface).
fn scoped_socket_addr(addr: &Multiaddr) -> Option<Result<SocketAddrV6, String>> {
    let mut it = addr.iter();
    let Some(Protocol::Ip6zone(zone)) = it.next() else {
        return None;
    };
    let (Some(Protocol::Ip6(ip)), Some(Protocol::Tcp(port))) = (it.next(), it.next()) else {
        return None;
    };
    if !matches!(it.next(), None | Some(Protocol::P2p(_))) {
        return None;
    }
    Some(scope_id(&zone).map(|scope| SocketAddrV6::new(ip, port, 0, scope)))
}

/// The interface index for a zone: a number as is, otherwise an interface name.
fn scope_id(zone: &str) -> Result<u32, String> {
    if let Ok(n) = zone.parse::<u32>() {
        return Ok(n);
    }
    interface_index(zone).ok_or_else(|| format!("no network interface named {zone:?} here"))
}

fn interface_index(name: &str) -> Option<u32> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .find(|i| i.name == name)?
        .index
}

/// Is this an IPv6 link-local unicast address (`fe80::/10`)?
pub fn is_link_local(ip: &Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

/// The address with its zone, if it is link-local and the zone is known; `None` for a
/// link-local address without one (undialable).
pub fn zoned(ip: Ipv6Addr, zone: &str) -> Option<Multiaddr> {
    if !is_link_local(&ip) {
        return Some(Multiaddr::empty().with(Protocol::Ip6(ip)));
    }
    (!zone.is_empty()).then(|| {
        Multiaddr::empty()
            .with(Protocol::Ip6zone(zone.to_string().into()))
            .with(Protocol::Ip6(ip))
    })
}

/// Does `addr` only make sense on this host (a zone names one of our interfaces)? Such an
/// address must not be handed to other devices.
pub fn is_host_local(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip6zone(_) => true,
        Protocol::Ip6(ip) => is_link_local(&ip),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoned_addresses_get_a_scope_and_others_are_left_alone() {
        let a: Multiaddr = "/ip6zone/lo/ip6/fe80::1/tcp/4001".parse().unwrap();
        let sa = scoped_socket_addr(&a).unwrap().unwrap();
        assert_eq!(sa.port(), 4001);
        assert_eq!(sa.scope_id(), interface_index("lo").unwrap());
        let n: Multiaddr = "/ip6zone/7/ip6/fe80::1/tcp/1".parse().unwrap();
        assert_eq!(scoped_socket_addr(&n).unwrap().unwrap().scope_id(), 7);
        let bad: Multiaddr = "/ip6zone/no-such-if0/ip6/fe80::1/tcp/1".parse().unwrap();
        assert!(scoped_socket_addr(&bad)
            .unwrap()
            .unwrap_err()
            .contains("no-such-if0"));
        for plain in ["/ip6/fe80::1/tcp/1", "/ip4/10.0.0.1/tcp/1"] {
            assert!(scoped_socket_addr(&plain.parse().unwrap()).is_none());
        }
        assert!(is_host_local(&a));
        assert!(is_host_local(&"/ip6/fe80::2/tcp/1".parse().unwrap()));
        assert!(!is_host_local(&"/ip6/fd77::2/tcp/1".parse().unwrap()));
    }
}
