//! Where webhooks may be delivered. MLflow's webhooks were an SSRF vector: a
//! user who may create a webhook could make the server POST to its own
//! loopback services or to a cloud metadata endpoint. Keel resolves the host
//! and refuses every address that is not globally routable unless the operator
//! lists the host or the address in `--webhook-allowed-destinations`. The
//! check runs when a webhook is saved and again on every delivery, on the very
//! addresses the connection then uses (a DNS answer cannot change in between).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use keel_core::{KeelError, Result};
use url::{Host, Url};

/// The flag and variable named in refusals, so an operator knows what to set.
pub const ALLOW_LIST_FLAG: &str = "--webhook-allowed-destinations";
pub const ALLOW_LIST_ENV: &str = "KEEL_WEBHOOK_ALLOWED_DESTINATIONS";

/// The operator's allow-list: host names (matched case-insensitively) and IP
/// addresses that may be reached even though they are not public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationPolicy {
    hosts: Vec<String>,
    addresses: Vec<IpAddr>,
}

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The host resolved to an address that is not public and not allowed.
    NotPublic {
        host: String,
        address: IpAddr,
        kind: &'static str,
    },
    /// The host could not be resolved.
    Unresolvable { host: String, reason: String },
}

impl Refusal {
    pub fn message(&self) -> String {
        match self {
            Refusal::NotPublic {
                host,
                address,
                kind,
            } => format!(
                "webhook destination '{host}' resolves to {address}, a {kind} address; Keel \
                 delivers webhooks only to public addresses unless the host or address is listed \
                 in {ALLOW_LIST_FLAG} ({ALLOW_LIST_ENV})"
            ),
            Refusal::Unresolvable { host, reason } => {
                format!("cannot resolve webhook destination '{host}': {reason}")
            }
        }
    }
}

impl From<Refusal> for KeelError {
    fn from(refusal: Refusal) -> Self {
        KeelError::invalid(refusal.message())
    }
}

impl DestinationPolicy {
    /// A policy from the operator's list (`host1,10.0.0.5,[::1]`); empty
    /// entries are ignored.
    pub fn new<I, S>(entries: I) -> DestinationPolicy
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut policy = DestinationPolicy::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let unbracketed = entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or(entry);
            if unbracketed.is_empty() {
                continue;
            }
            match unbracketed.parse::<IpAddr>() {
                Ok(address) => policy.addresses.push(canonical(address)),
                Err(_) => policy.hosts.push(normalize_host(unbracketed)),
            }
        }
        policy
    }

    /// Parses a comma-separated list, as the flag and variable give it.
    pub fn from_list(list: &str) -> DestinationPolicy {
        DestinationPolicy::new(list.split(','))
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.hosts.contains(&host)
    }

    fn address_allowed(&self, address: IpAddr) -> bool {
        self.addresses.contains(&canonical(address))
    }

    /// Checks already-resolved addresses of `host`: every one must be public
    /// or allowed (one private answer among public ones is enough to refuse).
    pub fn check_addresses(&self, host: &str, addresses: &[IpAddr]) -> Result<(), Refusal> {
        if self.host_allowed(host) {
            return Ok(());
        }
        for address in addresses {
            if self.address_allowed(*address) {
                continue;
            }
            if let Some(kind) = non_public_kind(*address) {
                return Err(Refusal::NotPublic {
                    host: host.to_string(),
                    address: *address,
                    kind,
                });
            }
        }
        Ok(())
    }

    /// Resolves `host:port` (blocking) and checks every address; the addresses
    /// returned are the ones a connection may use.
    pub fn resolve(&self, host: &Host<&str>, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
        let (shown, addresses): (String, Vec<SocketAddr>) = match host {
            Host::Ipv4(address) => (
                address.to_string(),
                vec![SocketAddr::new((*address).into(), port)],
            ),
            Host::Ipv6(address) => (
                format!("[{address}]"),
                vec![SocketAddr::new((*address).into(), port)],
            ),
            Host::Domain(name) => {
                let resolved = (*name, port)
                    .to_socket_addrs()
                    .map_err(|err| Refusal::Unresolvable {
                        host: (*name).to_string(),
                        reason: err.to_string(),
                    })?
                    .collect::<Vec<_>>();
                if resolved.is_empty() {
                    return Err(Refusal::Unresolvable {
                        host: (*name).to_string(),
                        reason: "no addresses".to_string(),
                    });
                }
                ((*name).to_string(), resolved)
            }
        };
        let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
        self.check_addresses(&shown, &ips)?;
        Ok(addresses)
    }

    /// Resolves and checks the host of a parsed webhook URL (blocking).
    pub fn check_url(&self, url: &Url) -> Result<Vec<SocketAddr>, Refusal> {
        let host = url.host().ok_or_else(|| Refusal::Unresolvable {
            host: url.as_str().to_string(),
            reason: "the URL has no host".to_string(),
        })?;
        let port = url.port_or_known_default().unwrap_or(80);
        self.resolve(&host, port)
    }
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// IPv4 addresses carried in IPv6 (mapped, 6to4, NAT64) are judged as IPv4,
/// so a wrapped private address cannot pass as public.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = v6.segments();
    let octets = v6.octets();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if segments[0] == 0x2002 {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(
            octets[12], octets[13], octets[14], octets[15],
        ));
    }
    None
}

/// The kind of a non-public address, or `None` for a globally routable one.
pub fn non_public_kind(address: IpAddr) -> Option<&'static str> {
    match canonical(address) {
        IpAddr::V4(v4) => ipv4_kind(v4),
        IpAddr::V6(v6) => ipv6_kind(v6),
    }
}

fn ipv4_kind(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = v4.octets();
    if v4.is_unspecified() || a == 0 {
        return Some("unspecified");
    }
    if v4.is_loopback() {
        return Some("loopback");
    }
    if v4.is_private() {
        return Some("private");
    }
    if v4.is_link_local() {
        return Some("link-local");
    }
    if v4.is_multicast() {
        return Some("multicast");
    }
    if v4.is_broadcast() {
        return Some("broadcast");
    }
    if a == 100 && (64..128).contains(&b) {
        return Some("shared (carrier-grade NAT)");
    }
    if (a == 192 && b == 0 && c == 0) || (a == 198 && (18..20).contains(&b)) || a >= 240 {
        return Some("reserved");
    }
    if v4.is_documentation() {
        return Some("documentation");
    }
    None
}

fn ipv6_kind(v6: Ipv6Addr) -> Option<&'static str> {
    let first = v6.segments()[0];
    if v6.is_unspecified() {
        return Some("unspecified");
    }
    if v6.is_loopback() {
        return Some("loopback");
    }
    if first & 0xfe00 == 0xfc00 {
        return Some("private (unique local)");
    }
    if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        return Some("link-local");
    }
    if v6.is_multicast() {
        return Some("multicast");
    }
    if first == 0x2001 && v6.segments()[1] == 0x0db8 {
        return Some("documentation");
    }
    // Only 2000::/3 is global unicast; the rest (IPv4-compatible ::a.b.c.d,
    // discard prefix, ...) is not a destination anyone needs.
    if first & 0xe000 != 0x2000 {
        return Some("reserved");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &DestinationPolicy, url: &str) -> Result<(), Refusal> {
        let url = Url::parse(url).expect("a URL");
        policy.check_url(&url).map(|_| ())
    }

    fn refused_kind(policy: &DestinationPolicy, url: &str) -> Option<&'static str> {
        match check(policy, url) {
            Err(Refusal::NotPublic { kind, .. }) => Some(kind),
            Err(Refusal::Unresolvable { .. }) => Some("unresolvable"),
            Ok(()) => None,
        }
    }

    #[test]
    fn non_public_destinations_are_refused_by_default() {
        let policy = DestinationPolicy::default();
        let cases = [
            ("http://127.0.0.1/hook", "loopback"),
            ("http://127.1.2.3:8080/", "loopback"),
            ("http://localhost:9000/", "loopback"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://[::1]/", "loopback"),
            ("http://[fd00::1]/", "private (unique local)"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://[::ffff:169.254.169.254]/", "link-local"),
            ("http://[64:ff9b::a00:1]/", "private"),
            ("http://[2002:c0a8:0101::1]/", "private"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://224.0.0.1/", "multicast"),
            ("http://100.64.0.1/", "shared (carrier-grade NAT)"),
            // Legacy numeric spellings: the WHATWG parser reads them as the
            // IPv4 address a socket would connect to.
            ("http://2130706433/", "loopback"),
            ("http://0x7f.0.0.1/", "loopback"),
            ("http://0177.0.0.1/", "loopback"),
            ("http://127.1/", "loopback"),
            ("http://0xa9fea9fe/", "link-local"),
        ];
        for (url, kind) in cases {
            assert_eq!(refused_kind(&policy, url), Some(kind), "{url}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let policy = DestinationPolicy::default();
        for url in [
            "https://93.184.215.14/hook",
            "http://8.8.8.8:8080/",
            "http://[2606:4700:4700::1111]/",
            "http://172.32.0.1/",
            "http://192.169.0.1/",
        ] {
            assert_eq!(refused_kind(&policy, url), None, "{url}");
        }
    }

    #[test]
    fn the_allow_list_admits_hosts_and_addresses() {
        let policy = DestinationPolicy::from_list(" localhost , 10.0.0.5,[::1],Hooks.Internal.");
        assert_eq!(refused_kind(&policy, "http://localhost:8080/x"), None);
        assert!(policy.host_allowed("LOCALHOST."));
        assert_eq!(refused_kind(&policy, "http://10.0.0.5/x"), None);
        assert_eq!(refused_kind(&policy, "http://[::1]:9/x"), None);
        assert_eq!(refused_kind(&policy, "http://[::ffff:10.0.0.5]/x"), None);
        assert_eq!(
            refused_kind(&policy, "http://10.0.0.6/x"),
            Some("private"),
            "only the listed address"
        );
        assert_eq!(
            refused_kind(&policy, "http://127.0.0.1/x"),
            Some("loopback")
        );
        assert!(policy.host_allowed("hooks.internal"));
    }

    #[test]
    fn one_private_answer_among_public_ones_is_refused() {
        let policy = DestinationPolicy::default();
        let answers = [
            "93.184.215.14".parse().expect("ip"),
            "10.0.0.1".parse().expect("ip"),
        ];
        let refusal = policy
            .check_addresses("rebind.example", &answers)
            .unwrap_err();
        let message = refusal.message();
        assert!(message.contains("10.0.0.1"), "{message}");
        assert!(message.contains(ALLOW_LIST_FLAG), "{message}");
        assert!(message.contains(ALLOW_LIST_ENV), "{message}");
    }

    #[test]
    fn unresolvable_hosts_are_refused() {
        let policy = DestinationPolicy::default();
        assert_eq!(
            refused_kind(&policy, "http://no-such-host.invalid/"),
            Some("unresolvable")
        );
    }
}
