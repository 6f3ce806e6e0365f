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
        Self::start_with(test, svcplane_apiserver::Config::default()).await
    }

    /// Starts a TLS fixture with `config` (its `tls` forced on), e.g. with
    /// `authorization_mode: AuthorizationMode::Rbac`.
    pub async fn start_with(test: &str, config: svcplane_apiserver::Config) -> Kubectl {
        require_kubectl(test);
        Kubectl {
            fx: Fixture::start_with(svcplane_apiserver::Config {
                tls: true,
                ..config
            })
            .await,
            home: tempfile::tempdir().expect("temp HOME"),
        }
    }

    /// A kubectl command for this fixture (as its admin), not started.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with(&self.fx.kubeconfig_path(), args)
    }

    /// A kubectl command with another kubeconfig (e.g. [`Kubectl::token_kubeconfig`]).
    pub fn command_with(&self, kubeconfig: &std::path::Path, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("HOME", self.home.path())
            .env("KUBECACHEDIR", self.home.path().join("cache"))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs kubectl to completion (30 s at most): (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        self.run_with(&self.fx.kubeconfig_path(), args).await
    }

    /// Writes a kubeconfig for this fixture's server that authenticates with a bearer token
    /// (no client certificate); returns its path.
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> std::path::PathBuf {
        let path = self.home.path().join(name);
        std::fs::write(&path, self.fx.server.kubeconfig_with_token(token))
            .expect("write kubeconfig");
        path
    }

    /// Runs kubectl with `kubeconfig` to completion (30 s at most): (success, stdout, stderr).
    pub async fn run_with(
        &self,
        kubeconfig: &std::path::Path,
        args: &[&str],
    ) -> (bool, String, String) {
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            self.command_with(kubeconfig, args).output(),
        )
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
