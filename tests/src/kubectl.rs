//! Running the real `kubectl` against an embedded API server, with a private HOME and cache so
//! tests never share (or pollute) discovery and OpenAPI caches.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::{require_kubectl, Fixture};

/// A TLS fixture plus a private HOME for kubectl.
pub struct Kubectl {
    /// The embedded API server kubectl talks to.
    pub fx: Fixture,
    /// kubectl's HOME (and `KUBECACHEDIR` below it); also a place for manifests.
    pub home: tempfile::TempDir,
}

impl Kubectl {
    /// Starts the TLS fixture. kubectl must be installed (`scripts/install-test-deps.sh`
    /// installs one when the machine has none): a missing kubectl fails the test loudly rather
    /// than skipping it.
    pub async fn start(test: &str) -> Kubectl {
        require_kubectl(test);
        Kubectl {
            fx: Fixture::start_tls().await,
            home: tempfile::tempdir().expect("temp HOME"),
        }
    }

    /// A kubectl command for this fixture, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.fx.kubeconfig_path())
            .args(args)
            .env("HOME", self.home.path())
            .env("KUBECACHEDIR", self.home.path().join("cache"))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs kubectl to completion (30 s at most): (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(30), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} timed out"))
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs kubectl and requires success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args).await;
        assert!(
            ok,
            "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout
    }

    /// Writes a file into the private HOME; returns its path.
    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, content).expect("write manifest");
        path.display().to_string()
    }
}
