//! IP and CIDR syntax as the API server checks it (upstream `k8s.io/utils/net` sloppy
//! parsing, `IsValidIP`, `IsValidCIDR`, `ValidateNonSpecialIP`, and the "will be invalid in a
//! future release" warnings from `pkg/api/service/warnings.go`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::field_error::{FieldError, Path};

/// Upstream `IsValidIP` message.
pub const INVALID_IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
/// Upstream `IsValidCIDR` message.
pub const INVALID_CIDR_MSG: &str =
    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// Parse an IP like Go's `netutils.ParseIPSloppy`: IPv4 octets may carry leading zeros
/// (read as decimal). IPv4-mapped IPv6 addresses come back as IPv4, like Go's `To4()`.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        });
    }
    parse_ipv4_leading_zeros(s).map(IpAddr::V4)
}

fn parse_ipv4_leading_zeros(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut n = 0;
    for part in s.split('.') {
        if n == 4 || part.is_empty() || part.len() > 3 || !part.bytes().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let v: u16 = part.parse().ok()?;
        octets[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then(|| Ipv4Addr::from(octets))
}

/// Whether `s` parses as an IPv6 address (Go `IsIPv6String`: parses and `To4() == nil`).
pub fn is_ipv6_string(s: &str) -> bool {
    matches!(parse_ip_sloppy(s), Some(IpAddr::V6(_)))
}

/// Whether `s` parses as an IPv4 address (Go `IsIPv4String`).
pub fn is_ipv4_string(s: &str) -> bool {
    matches!(parse_ip_sloppy(s), Some(IpAddr::V4(_)))
}

/// Parse a CIDR like Go's `netutils.ParseCIDRSloppy` (host bits may be set).
pub fn parse_cidr_sloppy(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = s.split_once('/')?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    // Go's ParseCIDR does not fold IPv4-mapped addresses for the length check; keep the
    // textual family.
    let ip = if addr.contains(':') {
        IpAddr::V6(addr.parse::<Ipv6Addr>().ok()?)
    } else {
        IpAddr::V4(parse_ipv4_leading_zeros(addr)?)
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

/// Upstream `IsValidIP(path, value)` (legacy, non-strict).
pub fn validate_ip(value: &str, path: &Path) -> Vec<FieldError> {
    if parse_ip_sloppy(value).is_some() {
        Vec::new()
    } else {
        vec![FieldError::invalid(path, value, INVALID_IP_MSG)]
    }
}

/// Upstream `IsValidCIDR(path, value)` (legacy, non-strict).
pub fn validate_cidr(value: &str, path: &Path) -> Vec<FieldError> {
    if parse_cidr_sloppy(value).is_some() {
        Vec::new()
    } else {
        vec![FieldError::invalid(path, value, INVALID_CIDR_MSG)]
    }
}

/// Upstream `IsValidIPv4Address`.
pub fn validate_ipv4(value: &str, path: &Path) -> Vec<FieldError> {
    if is_ipv4_string(value) {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            value,
            "must be a valid IPv4 address",
        )]
    }
}

/// Upstream `IsValidIPv6Address`.
pub fn validate_ipv6(value: &str, path: &Path) -> Vec<FieldError> {
    if is_ipv6_string(value) {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            value,
            "must be a valid IPv6 address",
        )]
    }
}

fn is_link_local_unicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 169 && v4.octets()[1] == 254,
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn is_link_local_multicast(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 224 && o[1] == 0 && o[2] == 0
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            o[0] == 0xff && (o[1] & 0x0f) == 0x02
        }
    }
}

/// Upstream `ValidateNonSpecialIP` / `ValidateEndpointIP`: no unspecified, loopback,
/// link-local or link-local multicast addresses (seed "EndpointSlices": endpoint IPs).
pub fn validate_non_special_ip(value: &str, path: &Path) -> Vec<FieldError> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a valid IP address",
        )];
    };
    let mut errs = Vec::new();
    if ip.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            value,
            format!("may not be unspecified ({value})"),
        ));
    }
    if ip.is_loopback() {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if is_link_local_unicast(&ip) {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if is_link_local_multicast(&ip) {
        errs.push(FieldError::invalid(
            path,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// Warnings for an IP that the legacy parser accepts but a strict one would not (upstream
/// `GetWarningsForIP`). The unparsable-value text matches what a v1.32 kube-apiserver
/// returned for `spec.loadBalancerIP` (FACTS.md).
pub fn warnings_for_ip(path: &Path, value: &str) -> Vec<String> {
    match value.parse::<IpAddr>() {
        Err(_) => vec![format!(
            "{path}: IP address was accepted, but will be invalid in a future Kubernetes release"
        )],
        Ok(IpAddr::V6(v6)) => {
            let canonical = v6.to_string();
            if canonical != value {
                vec![format!(
                    "{path}: IPv6 address {value:?} is not in RFC 5952 canonical format ({canonical:?}), which may cause controller apply-loops"
                )]
            } else {
                Vec::new()
            }
        }
        Ok(IpAddr::V4(_)) => Vec::new(),
    }
}

/// Warnings for a CIDR accepted by the legacy parser (upstream `GetWarningsForCIDR`).
pub fn warnings_for_cidr(path: &Path, value: &str) -> Vec<String> {
    let strict = value.split_once('/').and_then(|(a, b)| {
        let ip = a.parse::<IpAddr>().ok()?;
        if b.starts_with('0') && b.len() > 1 {
            return None;
        }
        let bits: u8 = b.parse().ok()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some((ip, bits))
    });
    let Some((ip, bits)) = strict else {
        return vec![format!(
            "{path}: IP prefix was accepted, but will be invalid in a future Kubernetes release"
        )];
    };
    let mut warnings = Vec::new();
    let masked = mask(ip, bits);
    if masked != ip {
        warnings.push(format!(
            "{path}: CIDR value {value:?} is ambiguous in this context (should be \"{ip}\" or \"{masked}/{bits}\"?)"
        ));
    }
    if ip.is_ipv6() {
        let canonical = format!("{ip}/{bits}");
        if canonical != value {
            warnings.push(format!(
                "{path}: IPv6 prefix {value:?} is not in RFC 5952 canonical format ({canonical:?}), which may cause controller apply-loops"
            ));
        }
    }
    warnings
}

fn mask(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sloppy_parser_accepts_leading_zeros() {
        assert_eq!(
            parse_ip_sloppy("010.000.0.1"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert!(parse_ip_sloppy("256.0.0.1").is_none());
        assert!(parse_ip_sloppy("1.2.3").is_none());
        assert!(is_ipv4_string("::ffff:1.2.3.4"));
    }

    #[test]
    fn cidrs() {
        assert!(parse_cidr_sloppy("10.0.0.0/8").is_some());
        assert!(parse_cidr_sloppy("10.0.0.1/8").is_some());
        assert!(parse_cidr_sloppy("10.0.0.0/33").is_none());
        assert!(parse_cidr_sloppy("10.0.0.0").is_none());
        assert!(parse_cidr_sloppy("2001:db8::/64").is_some());
    }

    #[test]
    fn special_ips_are_rejected() {
        let p = Path::new("x");
        assert_eq!(validate_non_special_ip("127.0.0.1", &p).len(), 1);
        assert_eq!(validate_non_special_ip("169.254.1.1", &p).len(), 1);
        assert_eq!(validate_non_special_ip("224.0.0.1", &p).len(), 1);
        assert_eq!(validate_non_special_ip("0.0.0.0", &p).len(), 1);
        assert_eq!(validate_non_special_ip("::1", &p).len(), 1);
        assert_eq!(validate_non_special_ip("fe80::1", &p).len(), 1);
        assert!(validate_non_special_ip("10.1.2.3", &p).is_empty());
    }

    #[test]
    fn warnings() {
        let p = Path::new("spec").child("loadBalancerIP");
        assert_eq!(
            warnings_for_ip(&p, "not-an-ip"),
            vec!["spec.loadBalancerIP: IP address was accepted, but will be invalid in a future Kubernetes release".to_string()]
        );
        assert_eq!(warnings_for_ip(&p, "2001:DB8::1").len(), 1);
        assert!(warnings_for_ip(&p, "10.0.0.1").is_empty());
        assert_eq!(warnings_for_cidr(&p, "10.0.0.1/8").len(), 1);
        assert!(warnings_for_cidr(&p, "10.0.0.0/8").is_empty());
    }
}
