//! Kernel parameters under `/proc/sys`, and the ones kube-proxy's IPVS mode sets.
//!
//! [`ipvs_sysctls`] is the pure decision (from the kernel version), [`Sysctls::ensure`] the thin
//! apply step: like kube-proxy's `EnsureSysctl`, it writes a value only when it differs.
#![warn(missing_docs)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A sysctl could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// The file could not be read (absent: the feature, e.g. IPVS, is not loaded).
    #[error("read sysctl {name}: {source}")]
    Read {
        /// Sysctl name, `net/ipv4/vs/conntrack`.
        name: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file could not be written.
    #[error("write sysctl {name} = {value}: {source}")]
    Write {
        /// Sysctl name.
        name: String,
        /// The value being written.
        value: i64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file does not hold an integer.
    #[error("sysctl {name}: {content:?} is not an integer")]
    NotAnInteger {
        /// Sysctl name.
        name: String,
        /// What the file held.
        content: String,
    },
    /// The name is empty, absolute, or climbs out of `/proc/sys`.
    #[error("sysctl name {name:?}: must be a relative path such as net/ipv4/ip_forward")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A kernel release string could not be parsed.
    #[error("kernel release {release:?}: expected MAJOR.MINOR[.PATCH]...")]
    KernelVersion {
        /// The release string.
        release: String,
    },
}

/// One sysctl and the value it must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysctlSetting {
    /// Name relative to `/proc/sys`, with slashes: `net/ipv4/vs/conntrack`.
    pub name: &'static str,
    /// Value.
    pub value: i64,
}

/// `net/ipv4/vs/conntrack`: IPVS keeps conntrack entries, so netfilter (masquerade) sees them.
pub const VS_CONNTRACK: &str = "net/ipv4/vs/conntrack";
/// `net/ipv4/vs/conn_reuse_mode`.
pub const VS_CONN_REUSE_MODE: &str = "net/ipv4/vs/conn_reuse_mode";
/// `net/ipv4/vs/expire_nodest_conn`: drop connections of deleted destinations at once.
pub const VS_EXPIRE_NODEST_CONN: &str = "net/ipv4/vs/expire_nodest_conn";
/// `net/ipv4/vs/expire_quiescent_template`: persistence templates of weight-0 destinations
/// expire, so affinity does not pin clients to a terminating endpoint.
pub const VS_EXPIRE_QUIESCENT_TEMPLATE: &str = "net/ipv4/vs/expire_quiescent_template";
/// `net/ipv4/ip_forward`.
pub const IP_FORWARD: &str = "net/ipv4/ip_forward";

/// A kernel version, as kube-proxy compares them (`version.ParseGeneric` of the release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch (0 when absent).
    pub patch: u32,
}

impl KernelVersion {
    /// A version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Parses a release such as `6.1.0-27-amd64` or `5.10.0` as `version.ParseGeneric` does:
    /// an optional `v`, then at least two dot-separated numbers; whatever follows is ignored.
    pub fn parse(release: &str) -> Result<Self, SysctlError> {
        let error = || SysctlError::KernelVersion {
            release: release.to_string(),
        };
        let release_trimmed = release.trim();
        let release_trimmed = release_trimmed.strip_prefix('v').unwrap_or(release_trimmed);
        let numeric_end = release_trimmed
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(release_trimmed.len());
        let numbers: Vec<&str> = release_trimmed[..numeric_end]
            .trim_end_matches('.')
            .split('.')
            .collect();
        if numbers.len() < 2 {
            return Err(error());
        }
        let number = |s: &str| s.parse::<u32>().map_err(|_| error());
        Ok(Self {
            major: number(numbers[0])?,
            minor: number(numbers[1])?,
            patch: numbers.get(2).map(|s| number(s)).transpose()?.unwrap_or(0),
        })
    }

    /// The running kernel's version, from `/proc/sys/kernel/osrelease` (what kube-proxy reads).
    pub fn running() -> Result<Self, SysctlError> {
        Self::parse(&Sysctls::proc().read("kernel/osrelease")?)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What to do with `net/ipv4/vs/conn_reuse_mode`, decided by kernel version exactly as
/// kube-proxy's `NewProxier` does (`pkg/proxy/ipvs/proxier.go`, kubernetes#88541, #93297).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnReuseMode {
    /// Kernel older than 4.1 (`connReuseMinSupportedKernelVersion`): the sysctl does not
    /// exist; kube-proxy logs an error and leaves it.
    Unsupported,
    /// Kernel 4.1 up to 5.9: set it to 0, so reused source ports do not hit a 1 s delay with
    /// `conntrack=1` (kubernetes#81775).
    SetToZero,
    /// Kernel 5.9 or newer (`connReuseFixedKernelVersion`, linux commit 35dfb013149f): the
    /// delay is fixed; leave the kernel's default (1), which also reschedules connections
    /// that reuse a port of a removed destination.
    LeaveAsIs,
}

/// `connReuseMinSupportedKernelVersion` in kube-proxy.
const CONN_REUSE_MIN_SUPPORTED: KernelVersion = KernelVersion::new(4, 1, 0);
/// `connReuseFixedKernelVersion` in kube-proxy.
const CONN_REUSE_FIXED: KernelVersion = KernelVersion::new(5, 9, 0);

/// kube-proxy's decision for `conn_reuse_mode` on `kernel`.
pub fn conn_reuse_mode(kernel: KernelVersion) -> ConnReuseMode {
    if kernel < CONN_REUSE_MIN_SUPPORTED {
        ConnReuseMode::Unsupported
    } else if kernel >= CONN_REUSE_FIXED {
        ConnReuseMode::LeaveAsIs
    } else {
        ConnReuseMode::SetToZero
    }
}

/// The sysctls kube-proxy's IPVS mode ensures, in its order (`NewProxier` in
/// `pkg/proxy/ipvs/proxier.go`): `vs/conntrack=1`, `vs/conn_reuse_mode=0` only on kernels
/// 4.1 to 5.9, `vs/expire_nodest_conn=1`, `vs/expire_quiescent_template=1`, `ip_forward=1`.
/// (`arp_ignore`/`arp_announce` belong to kube-proxy's `--ipvs-strict-arp`, not set here.)
pub fn ipvs_sysctls(kernel: KernelVersion) -> Vec<SysctlSetting> {
    let mut settings = vec![SysctlSetting {
        name: VS_CONNTRACK,
        value: 1,
    }];
    if conn_reuse_mode(kernel) == ConnReuseMode::SetToZero {
        settings.push(SysctlSetting {
            name: VS_CONN_REUSE_MODE,
            value: 0,
        });
    }
    settings.extend([
        SysctlSetting {
            name: VS_EXPIRE_NODEST_CONN,
            value: 1,
        },
        SysctlSetting {
            name: VS_EXPIRE_QUIESCENT_TEMPLATE,
            value: 1,
        },
        SysctlSetting {
            name: IP_FORWARD,
            value: 1,
        },
    ]);
    settings
}

/// Access to a sysctl tree: `/proc/sys`, or another directory in tests.
#[derive(Debug, Clone)]
pub struct Sysctls {
    root: PathBuf,
}

impl Sysctls {
    /// The running kernel's `/proc/sys` (of the current network namespace for `net/*`).
    pub fn proc() -> Self {
        Self::at("/proc/sys")
    }

    /// A tree rooted at `root` (for tests).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, SysctlError> {
        let relative = Path::new(name);
        let valid = !name.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !valid {
            return Err(SysctlError::InvalidName {
                name: name.to_string(),
            });
        }
        Ok(self.root.join(relative))
    }

    /// The value of `name`, trimmed.
    pub fn read(&self, name: &str) -> Result<String, SysctlError> {
        let content =
            std::fs::read_to_string(self.path(name)?).map_err(|source| SysctlError::Read {
                name: name.to_string(),
                source,
            })?;
        Ok(content.trim().to_string())
    }

    /// The integer value of `name`.
    pub fn read_int(&self, name: &str) -> Result<i64, SysctlError> {
        let content = self.read(name)?;
        content.parse().map_err(|_| SysctlError::NotAnInteger {
            name: name.to_string(),
            content,
        })
    }

    /// Writes `value` to `name`.
    pub fn write_int(&self, name: &str, value: i64) -> Result<(), SysctlError> {
        std::fs::write(self.path(name)?, format!("{value}\n")).map_err(|source| {
            SysctlError::Write {
                name: name.to_string(),
                value,
                source,
            }
        })
    }

    /// Makes each setting hold, writing only those whose current value differs or cannot be
    /// read (kube-proxy's `EnsureSysctl`). Returns the settings written. Stops at the first
    /// failure.
    pub fn ensure(&self, settings: &[SysctlSetting]) -> Result<Vec<SysctlSetting>, SysctlError> {
        let mut written = Vec::new();
        for setting in settings {
            if self.read_int(setting.name).ok() == Some(setting.value) {
                continue;
            }
            self.write_int(setting.name, setting.value)?;
            tracing::info!(sysctl = setting.name, value = setting.value, "set sysctl");
            written.push(*setting);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(settings: &[SysctlSetting]) -> Vec<(&str, i64)> {
        settings.iter().map(|s| (s.name, s.value)).collect()
    }

    #[test]
    fn kernel_release_strings_parse_like_version_parse_generic() {
        let cases = [
            ("6.1.0-27-amd64", KernelVersion::new(6, 1, 0)),
            ("6.18.44-fc-v1045", KernelVersion::new(6, 18, 44)),
            ("5.9", KernelVersion::new(5, 9, 0)),
            ("4.19.0+\n", KernelVersion::new(4, 19, 0)),
            ("3.10.0-1160.el7.x86_64", KernelVersion::new(3, 10, 0)),
            ("v6.1", KernelVersion::new(6, 1, 0)),
        ];
        for (release, want) in cases {
            assert_eq!(KernelVersion::parse(release).unwrap(), want, "{release}");
        }
        for bad in ["", "6", "linux", "v", ".1.2"] {
            assert!(KernelVersion::parse(bad).is_err(), "{bad:?} must not parse");
        }
    }

    /// Rows: kernel version → kube-proxy's conn_reuse_mode decision (proxier.go NewProxier).
    #[test]
    fn conn_reuse_mode_follows_kube_proxy_kernel_thresholds() {
        let rows = [
            ((3, 10, 0), ConnReuseMode::Unsupported), // below connReuseMinSupportedKernelVersion
            ((4, 0, 99), ConnReuseMode::Unsupported),
            ((4, 1, 0), ConnReuseMode::SetToZero), // 4.1 is the first supported
            ((4, 19, 0), ConnReuseMode::SetToZero),
            ((5, 8, 18), ConnReuseMode::SetToZero),
            ((5, 9, 0), ConnReuseMode::LeaveAsIs), // connReuseFixedKernelVersion
            ((6, 1, 0), ConnReuseMode::LeaveAsIs),
        ];
        for ((major, minor, patch), want) in rows {
            let kernel = KernelVersion::new(major, minor, patch);
            assert_eq!(conn_reuse_mode(kernel), want, "kernel {kernel}");
        }
    }

    #[test]
    fn ipvs_sysctls_set_conn_reuse_mode_only_on_kernels_4_1_to_5_9() {
        assert_eq!(
            names(&ipvs_sysctls(KernelVersion::new(5, 4, 0))),
            vec![
                ("net/ipv4/vs/conntrack", 1),
                ("net/ipv4/vs/conn_reuse_mode", 0),
                ("net/ipv4/vs/expire_nodest_conn", 1),
                ("net/ipv4/vs/expire_quiescent_template", 1),
                ("net/ipv4/ip_forward", 1),
            ]
        );
        for kernel in [KernelVersion::new(6, 1, 0), KernelVersion::new(3, 10, 0)] {
            assert_eq!(
                names(&ipvs_sysctls(kernel)),
                vec![
                    ("net/ipv4/vs/conntrack", 1),
                    ("net/ipv4/vs/expire_nodest_conn", 1),
                    ("net/ipv4/vs/expire_quiescent_template", 1),
                    ("net/ipv4/ip_forward", 1),
                ],
                "kernel {kernel}"
            );
        }
    }

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Sysctls) {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let sysctls = Sysctls::at(dir.path());
        (dir, sysctls)
    }

    #[test]
    fn ensure_writes_only_values_that_differ() {
        let (_dir, sysctls) = tree(&[
            ("net/ipv4/vs/conntrack", "0\n"),
            ("net/ipv4/vs/expire_nodest_conn", "1\n"),
            ("net/ipv4/vs/expire_quiescent_template", "0\n"),
            ("net/ipv4/ip_forward", "1\n"),
        ]);
        let written = sysctls
            .ensure(&ipvs_sysctls(KernelVersion::new(6, 1, 0)))
            .unwrap();
        assert_eq!(
            names(&written),
            vec![
                ("net/ipv4/vs/conntrack", 1),
                ("net/ipv4/vs/expire_quiescent_template", 1)
            ]
        );
        assert_eq!(sysctls.read_int("net/ipv4/vs/conntrack").unwrap(), 1);
        assert_eq!(
            sysctls
                .read("net/ipv4/vs/expire_quiescent_template")
                .unwrap(),
            "1"
        );
        let again = sysctls
            .ensure(&ipvs_sysctls(KernelVersion::new(6, 1, 0)))
            .unwrap();
        assert!(again.is_empty(), "a second ensure writes nothing");
    }

    #[test]
    fn missing_ipvs_sysctls_are_a_write_error_naming_the_sysctl() {
        let (_dir, sysctls) = tree(&[("net/ipv4/ip_forward", "0")]);
        let err = sysctls
            .ensure(&ipvs_sysctls(KernelVersion::new(6, 1, 0)))
            .unwrap_err();
        assert!(matches!(err, SysctlError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("net/ipv4/vs/conntrack"), "{err}");
    }

    #[test]
    fn non_integer_and_escaping_names_are_refused() {
        let (_dir, sysctls) = tree(&[("kernel/osrelease", "6.1.0-27-amd64\n")]);
        assert_eq!(sysctls.read("kernel/osrelease").unwrap(), "6.1.0-27-amd64");
        assert!(matches!(
            sysctls.read_int("kernel/osrelease"),
            Err(SysctlError::NotAnInteger { .. })
        ));
        for name in [
            "",
            "../etc/passwd",
            "/proc/sys/net/ipv4/ip_forward",
            "net/../../x",
        ] {
            assert!(
                matches!(sysctls.read(name), Err(SysctlError::InvalidName { .. })),
                "{name:?}"
            );
        }
    }

    #[test]
    fn running_kernel_version_is_readable() {
        let version = KernelVersion::running().unwrap();
        assert!(version.major >= 3, "{version}");
    }
}
