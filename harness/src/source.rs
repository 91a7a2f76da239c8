//! Client source addresses: which local IP each client connection is opened from.
//!
//! Receives: the `--source-addrs` spec as written (`auto`, `none`, or a list of addresses
//! and IPv4 ranges), then the resolved target address and the run's peak client count.
//! Emits: the addresses to open connections from (empty: let the kernel choose), and
//! connected TCP streams bound to them, one address after another.
//! Must not: bind a source port itself (the kernel picks it at `connect`, with
//! `IP_BIND_ADDRESS_NO_PORT`), or spread clients over addresses for a target that is not
//! on loopback unless the user listed them.
//!
//! Why: Linux gives `connect()` ports of one parity first, so ~14,000 connections from one
//! source address to one `address:port` exhaust the even half of the default ephemeral
//! range (32768-60999); every later connect then scans it, at ~0.7 ms of kernel time each
//! (`__inet_hash_connect` / `__inet_check_established`). At 2,000 connects/s that is more
//! than a core, and the swarm stalls for seconds (seen at 19,000 clients). Loopback
//! answers on all of 127.0.0.0/8, so `auto` spreads a large run over 127.0.0.1, .2, ...

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpSocket, TcpStream};

/// `auto` opens at most this many connections from one source address.
pub const PER_SOURCE: u32 = 8_000;
/// Most addresses a spec may name.
const MAX_SOURCES: usize = 4_096;

/// `--source-addrs` as given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SourceSpec {
    /// Loopback IPv4 targets with more than [`PER_SOURCE`] clients: 127.0.0.1, .2, ...
    /// (one address per [`PER_SOURCE`] clients); otherwise the kernel's choice.
    #[default]
    Auto,
    /// Always the kernel's choice.
    Off,
    /// These addresses, in turn.
    List(Vec<IpAddr>),
}

impl SourceSpec {
    /// `auto`, `none`, or a comma-separated list of IPs and IPv4 ranges
    /// (`127.0.0.1-8` or `127.0.0.1-127.0.0.8`).
    pub fn parse(s: &str) -> Result<SourceSpec, String> {
        let s = s.trim();
        match s {
            "auto" => return Ok(SourceSpec::Auto),
            "none" | "off" => return Ok(SourceSpec::Off),
            _ => {}
        }
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(format!("source-addrs {s:?}: empty item"));
            }
            match item.split_once('-') {
                None => out.push(item.parse::<IpAddr>().map_err(|_| {
                    format!("source-addrs: {item:?} is not an IP address (or auto / none)")
                })?),
                Some((first, last)) => out.extend(range(first, last)?),
            }
            if out.len() > MAX_SOURCES {
                return Err(format!("source-addrs: more than {MAX_SOURCES} addresses"));
            }
        }
        if out.iter().any(|a| a.is_ipv4()) && out.iter().any(|a| a.is_ipv6()) {
            return Err("source-addrs: mixes IPv4 and IPv6 addresses".into());
        }
        Ok(SourceSpec::List(out))
    }

    /// The addresses to connect from, for a run against `target` with at most `clients`
    /// connected at once.
    pub fn resolve(&self, target: SocketAddr, clients: u32) -> Result<Vec<IpAddr>, String> {
        match self {
            SourceSpec::Off => Ok(Vec::new()),
            SourceSpec::Auto => Ok(match target.ip() {
                IpAddr::V4(ip) if ip.is_loopback() && clients > PER_SOURCE => {
                    let n = clients.div_ceil(PER_SOURCE).min(254) as u8;
                    (1..=n)
                        .map(|d| IpAddr::V4(Ipv4Addr::new(127, 0, 0, d)))
                        .collect()
                }
                _ => Vec::new(),
            }),
            SourceSpec::List(list) => {
                if let Some(bad) = list.iter().find(|a| a.is_ipv4() != target.is_ipv4()) {
                    return Err(format!(
                        "source address {bad} and target {target} are of different IP versions"
                    ));
                }
                Ok(list.clone())
            }
        }
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Auto => f.write_str("auto"),
            SourceSpec::Off => f.write_str("none"),
            SourceSpec::List(l) => {
                let items: Vec<String> = l.iter().map(IpAddr::to_string).collect();
                f.write_str(&items.join(","))
            }
        }
    }
}

/// `a.b.c.d-e` or `a.b.c.d-a.b.c.e`: IPv4 addresses differing in the last octet.
fn range(first: &str, last: &str) -> Result<Vec<IpAddr>, String> {
    let bad = || format!("source-addrs: {first}-{last} is not a range like 127.0.0.1-8");
    let a: Ipv4Addr = first.trim().parse().map_err(|_| bad())?;
    let last = last.trim();
    let end: u8 = match last.parse::<u8>() {
        Ok(octet) => octet,
        Err(_) => {
            let b: Ipv4Addr = last.parse().map_err(|_| bad())?;
            if b.octets()[..3] != a.octets()[..3] {
                return Err(format!(
                    "source-addrs: {first}-{last}: a range may differ in the last octet only"
                ));
            }
            b.octets()[3]
        }
    };
    let [p, q, r, start] = a.octets();
    if end < start {
        return Err(format!(
            "source-addrs: {first}-{last} ends before it starts"
        ));
    }
    Ok((start..=end)
        .map(|d| IpAddr::V4(Ipv4Addr::new(p, q, r, d)))
        .collect())
}

/// Source addresses in turn; empty means the kernel's choice.
#[derive(Debug, Default)]
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    pub fn new(addrs: Vec<IpAddr>) -> Sources {
        Sources {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// A TCP connection to `target`, from the next source address.
    pub async fn connect(&self, target: SocketAddr) -> io::Result<TcpStream> {
        if self.addrs.is_empty() {
            return TcpStream::connect(target).await;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.addrs.len();
        let src = self.addrs[i];
        let socket = if src.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        no_port_at_bind(&socket)?;
        socket.bind(SocketAddr::new(src, 0))?;
        socket.connect(target).await
    }
}

/// `IP_BIND_ADDRESS_NO_PORT`: `bind(ip, 0)` fixes the address only; `connect` picks the
/// port for the whole 4-tuple, so ports are shared across destinations as without bind.
/// The one `unsafe` of the swarm: neither socket2 nor tokio exposes this option.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn no_port_at_bind(socket: &TcpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: the descriptor is owned by `socket` and open for this call; the option value
    // points to a live c_int of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn no_port_at_bind(_socket: &TcpSocket) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_keywords_lists_and_ranges() {
        assert_eq!(SourceSpec::parse("auto"), Ok(SourceSpec::Auto));
        assert_eq!(SourceSpec::parse("none"), Ok(SourceSpec::Off));
        assert_eq!(
            SourceSpec::parse("127.0.0.2, 127.0.0.5-7"),
            Ok(SourceSpec::List(vec![
                v4("127.0.0.2"),
                v4("127.0.0.5"),
                v4("127.0.0.6"),
                v4("127.0.0.7")
            ]))
        );
        assert_eq!(
            SourceSpec::parse("10.0.0.1-10.0.0.2"),
            Ok(SourceSpec::List(vec![v4("10.0.0.1"), v4("10.0.0.2")]))
        );
        assert_eq!(
            SourceSpec::parse("::1"),
            Ok(SourceSpec::List(vec![v4("::1")]))
        );
    }

    #[test]
    fn rejects_bad_specs_with_reasons() {
        for (spec, says) in [
            ("127.0.0.300", "not an IP"),
            ("127.0.0.9-3", "ends before"),
            ("127.0.0.1-127.0.1.4", "last octet"),
            ("127.0.0.1,,", "empty item"),
            ("127.0.0.1,::1", "mixes"),
            ("", "empty item"),
            ("fast", "not an IP"),
        ] {
            let e = SourceSpec::parse(spec).unwrap_err();
            assert!(e.contains(says), "{spec:?}: {e}");
        }
    }

    #[test]
    fn auto_spreads_large_loopback_runs_only() {
        let lo: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        let other: SocketAddr = "192.0.2.1:3000".parse().unwrap();
        assert!(SourceSpec::Auto.resolve(lo, PER_SOURCE).unwrap().is_empty());
        let spread = SourceSpec::Auto.resolve(lo, 19_000).unwrap();
        assert_eq!(
            spread,
            vec![v4("127.0.0.1"), v4("127.0.0.2"), v4("127.0.0.3")]
        );
        assert!(SourceSpec::Auto.resolve(other, 19_000).unwrap().is_empty());
        assert_eq!(SourceSpec::Auto.resolve(lo, 10_000_000).unwrap().len(), 254);
        let v6 = SourceSpec::List(vec![v4("::1")]);
        assert!(v6.resolve(lo, 10).unwrap_err().contains("IP versions"));
    }

    #[tokio::test]
    async fn connects_from_each_source_in_turn() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let sources = Sources::new(vec![v4("127.0.0.2"), v4("127.0.0.3")]);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let stream = sources.connect(target).await.unwrap();
            let (_accepted, peer) = listener.accept().await.unwrap();
            assert_eq!(stream.local_addr().unwrap(), peer);
            seen.push(peer.ip());
        }
        assert_eq!(
            seen,
            vec![
                v4("127.0.0.2"),
                v4("127.0.0.3"),
                v4("127.0.0.2"),
                v4("127.0.0.3")
            ]
        );
    }
}
