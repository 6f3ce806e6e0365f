//! Running the `nft` command: a script given on standard input (`nft -f -`) is one nftables
//! transaction, which the kernel commits as a whole or not at all, and `nft -j list ...`
//! reads state back as JSON.
//!
//! The IPVS backend keeps one small table of its own this way (a few rules and sets whose
//! elements change with Services). The nftables backend, written separately, talks netlink
//! batches to the kernel directly (`nftables/`); the two are to be merged into one runner.
#![warn(missing_docs)]

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A failure to run `nft`.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The program could not be started (not installed, not executable).
    #[error(
        "cannot run {program}: {source}; install nftables (the `nft` command) or put it on the PATH"
    )]
    NotInstalled {
        /// The program.
        program: PathBuf,
        /// Why it did not start.
        #[source]
        source: io::Error,
    },
    /// Writing the script or reading the answer failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `nft` ran and refused: its exit status and its own error text (which names the line of
    /// the script and the kernel's reason).
    #[error("{action} failed ({status}): {stderr}")]
    Refused {
        /// What was being done (`apply nftables script`, `list table inet svcplane-ipvs`).
        action: String,
        /// The exit status.
        status: String,
        /// `nft`'s standard error, trimmed.
        stderr: String,
    },
    /// `nft -j` printed something that is not JSON.
    #[error("{action}: nft printed invalid JSON: {source}")]
    Json {
        /// What was being listed.
        action: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// Counts of what a runner did, for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NftCounters {
    /// Scripts applied (`nft -f -` runs, each one transaction).
    pub transactions: u64,
    /// Listings read (`nft -j list ...` runs).
    pub listings: u64,
}

/// Runs `nft` (found on the PATH unless another program is given).
#[derive(Debug, Clone)]
pub struct NftRunner {
    program: PathBuf,
    counters: NftCounters,
}

impl Default for NftRunner {
    fn default() -> Self {
        NftRunner::new()
    }
}

impl NftRunner {
    /// A runner of `nft` from the PATH.
    pub fn new() -> NftRunner {
        NftRunner::with_program("nft")
    }

    /// A runner of another program speaking `nft`'s command line (tests).
    pub fn with_program(program: impl AsRef<Path>) -> NftRunner {
        NftRunner {
            program: program.as_ref().to_path_buf(),
            counters: NftCounters::default(),
        }
    }

    /// What the runner did so far.
    pub fn counters(&self) -> NftCounters {
        self.counters
    }

    /// `nft --version`: whether the program runs at all, and which version it is.
    pub fn version(&self) -> Result<String, NftError> {
        let output = Command::new(&self.program)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| NftError::NotInstalled {
                program: self.program.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(NftError::Refused {
                action: "nft --version".into(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Applies `script` as one transaction (`nft -f -`).
    pub fn apply(&mut self, script: &str) -> Result<(), NftError> {
        self.counters.transactions += 1;
        let mut child = Command::new(&self.program)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NftError::NotInstalled {
                program: self.program.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A script nft refuses early may close its end before reading everything: the exit
        // status and stderr below say why, so a broken pipe here is not the error to report.
        let written = stdin.write_all(script.as_bytes());
        drop(stdin);
        let output = child.wait_with_output().map_err(|source| NftError::Io {
            action: "wait for nft",
            source,
        })?;
        if !output.status.success() {
            return Err(NftError::Refused {
                action: "apply nftables script".into(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        written.map_err(|source| NftError::Io {
            action: "write the script to nft",
            source,
        })
    }

    /// `nft -j list <what>`: the JSON listing, or `None` when the object does not exist.
    pub fn list_json(&mut self, what: &[&str]) -> Result<Option<serde_json::Value>, NftError> {
        self.counters.listings += 1;
        let action = format!("nft -j list {}", what.join(" "));
        let output = Command::new(&self.program)
            .args(["-j", "list"])
            .args(what)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| NftError::NotInstalled {
                program: self.program.clone(),
                source,
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if stderr.contains("No such file or directory") {
                return Ok(None);
            }
            return Err(NftError::Refused {
                action,
                status: output.status.to_string(),
                stderr,
            });
        }
        serde_json::from_slice(&output.stdout)
            .map(Some)
            .map_err(|source| NftError::Json { action, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_reported_as_not_installed_naming_it() {
        let mut runner = NftRunner::with_program("/nonexistent/nft");
        let err = runner.apply("list ruleset\n").unwrap_err();
        assert!(matches!(err, NftError::NotInstalled { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/nft"), "{err}");
        assert!(err.to_string().contains("install nftables"), "{err}");
        assert!(runner.version().is_err());
    }

    /// A stand-in for nft that fails like nft does: exit status 1 and a message on stderr.
    #[test]
    fn a_refusal_carries_the_exit_status_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("nft");
        std::fs::write(
            &fake,
            "#!/bin/sh\ncat >/dev/null\necho 'Error: No such file or directory' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut runner = NftRunner::with_program(&fake);
        let err = runner
            .apply("add element inet t s { 1.2.3.4 }\n")
            .unwrap_err();
        match &err {
            NftError::Refused { status, stderr, .. } => {
                assert!(status.contains('1'), "{status}");
                assert!(stderr.contains("No such file"), "{stderr}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // For a listing, "No such file or directory" means the object is absent.
        assert_eq!(runner.list_json(&["table", "inet", "t"]).unwrap(), None);
        assert_eq!(
            runner.counters(),
            NftCounters {
                transactions: 1,
                listings: 1
            }
        );
    }
}
