//! Network namespaces for host tests: created per test, removed on drop (also when the test
//! fails), with helpers to run `ip`/`nft` in them and to run test code inside them.
//!
//! These tests need root and iproute2 (`scripts/install-test-deps.sh`); without them they fail
//! with a message saying so, they never skip.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sched::{setns, CloneFlags};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Panics unless running as root with `tools` on the PATH.
pub fn require(tools: &[&str]) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test creates network namespaces and must run as root (it is not skipped)"
    );
    for tool in tools {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "`{tool}` is not installed: run scripts/install-test-deps.sh (the test is not skipped)"
        );
    }
}

/// A network namespace that exists for the life of the value.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// Creates `svcplane-<tag>-<pid>-<n>` with `lo` up.
    pub fn new(tag: &str) -> Self {
        require(&["ip"]);
        let name = format!(
            "svcplane-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        run(Command::new("ip").args(["netns", "add", &name]), None);
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> <args>`; panics with stderr on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        run(
            Command::new("ip").arg("-n").arg(&self.name).args(args),
            None,
        )
    }

    /// `ip -n <ns> <args>`, returning whether it succeeded (for probes).
    pub fn ip_ok(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// `ip netns exec <ns> <program> <args>` with `stdin`; panics with stderr on failure.
    pub fn exec(&self, program: &str, args: &[&str], stdin: Option<&str>) -> String {
        run(
            Command::new("ip")
                .args(["netns", "exec", &self.name, program])
                .args(args),
            stdin,
        )
    }

    /// Runs `f` on a thread that has entered the namespace: sockets it opens live there.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|e| panic!("setns {path}: {e}"));
                f()
            });
            match thread.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs the future `f` on a single-threaded tokio runtime inside the namespace.
    pub fn block_on<F, Fut, R>(&self, f: F) -> R
    where
        F: FnOnce() -> Fut + Send,
        Fut: std::future::Future<Output = R>,
        R: Send,
    {
        self.run(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            runtime.block_on(f())
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("warning: could not delete network namespace {}", self.name);
        }
    }
}

fn run(command: &mut Command, stdin: Option<&str>) -> String {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{description}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("{description}: writing stdin: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{description}: {e}"));
    assert!(
        output.status.success(),
        "{description} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
