//! Network namespaces for dataplane tests on this host: create them, wire them with veth
//! pairs, give them addresses, routes and sysctls, run commands and threads inside them, and
//! remove them again — on drop, so also when a test fails.
//!
//! Names are `sp<tag>-<pid>-<n>` (short: interface and namespace names are limited), unique
//! per process and test, so tests run in parallel. Namespaces left behind by a test process
//! that was killed are removed by the next [`Netns::new`] (their pid no longer runs). Every
//! interface is created inside a test namespace (`ip -n NS link add … peer … netns OTHER`),
//! never in the host's.
//!
//! Needs root and `ip` (iproute2); `scripts/install-test-deps.sh` installs it.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

static NEXT: AtomicUsize = AtomicUsize::new(0);
static SWEEP: Once = Once::new();

/// A network namespace owned by a test; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

fn run_ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` (iproute2) runs; scripts/install-test-deps.sh installs it")
}

/// Removes `sp…-<pid>-<n>` namespaces of processes that no longer run.
fn sweep_leftovers() {
    let out = run_ip(&["netns", "list"]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let mut parts = name.rsplitn(3, '-');
        let (_, pid, tag) = (parts.next(), parts.next(), parts.next());
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if tag.is_some_and(|t| t.starts_with("sp"))
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = run_ip(&["netns", "del", name]);
        }
    }
}

impl Netns {
    /// A new namespace tagged `tag` (a few letters), loopback up, ICMP rate limits off (the
    /// first ICMP error toward a new peer is otherwise swallowed), IPv6 duplicate address
    /// detection off (addresses are usable at once). Panics, saying why, when it cannot be
    /// created: a test that needs one must not pass without it.
    pub fn new(tag: &str) -> Netns {
        SWEEP.call_once(sweep_leftovers);
        let name = format!(
            "sp{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let out = run_ip(&["netns", "add", &name]);
        assert!(
            out.status.success(),
            "cannot create network namespace {name} (dataplane tests need root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.sysctl("net.ipv4.icmp_ratelimit", "0");
        ns.sysctl("net.ipv6.icmp.ratelimit", "0");
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0");
        ns
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS…`; panics on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        let out = run_ip(&full);
        assert!(
            out.status.success(),
            "ip {} failed: {}",
            full.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    /// Sets a sysctl inside the namespace (`/proc/sys/net` is per namespace).
    pub fn sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.exec_ok(&["sh", "-c", &format!("echo {value} > {path}")]);
    }

    /// Turns on IPv4 and IPv6 forwarding.
    pub fn enable_forwarding(&self) {
        self.sysctl("net.ipv4.ip_forward", "1");
        self.sysctl("net.ipv6.conf.all.forwarding", "1");
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `args` inside the namespace and waits for it.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.command(args[0])
            .args(&args[1..])
            .output()
            .expect("ip netns exec runs")
    }

    /// Runs `args` inside the namespace; its stdout, or a panic with its stderr.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} failed in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `args` inside the namespace; the process is killed when the handle drops.
    pub fn spawn(&self, args: &[&str]) -> Process {
        let child = self
            .command(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec runs");
        Process { child: Some(child) }
    }

    /// Runs `f` on a thread that entered the namespace: sockets it opens live there.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = PathBuf::from(format!("/run/netns/{}", self.name));
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).expect("the namespace's file");
                setns(&file, CloneFlags::CLONE_NEWNET).expect("setns into the namespace");
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Adds an address (`10.0.0.1/24`, `fd00::1/64`) to an interface.
    pub fn addr(&self, iface: &str, cidr: &str) {
        if cidr.contains(':') {
            self.ip(&["-6", "addr", "add", cidr, "dev", iface, "nodad"]);
        } else {
            self.ip(&["addr", "add", cidr, "dev", iface]);
        }
    }

    /// Adds a route: `route("10.96.0.0/12", "192.168.0.1")`.
    pub fn route(&self, destination: &str, via: &str) {
        let family = if via.contains(':') { "-6" } else { "-4" };
        self.ip(&[family, "route", "add", destination, "via", via]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace removes its interfaces (and veth peers elsewhere).
        let _ = run_ip(&["netns", "del", &self.name]);
    }
}

/// A veth pair: `a_if` in `a`, `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// A process started with [`Netns::spawn`]; killed on drop.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
}

impl Process {
    /// Takes ownership of a child started elsewhere (for example with [`Netns::command`]).
    pub fn from_child(child: Child) -> Process {
        Process { child: Some(child) }
    }

    /// Reads stdout lines until one satisfies `done` or `timeout` passes; the lines read.
    pub fn read_until(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        use std::io::BufRead as _;
        let stdout = self
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("stdout is piped and read once");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let finished = done(&line);
                    lines.push(line);
                    if finished {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        lines
    }

    /// Waits up to `timeout` for the process to exit; its output, or `None` (then it is
    /// killed).
    pub fn wait_output(mut self, timeout: Duration) -> Option<Output> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
        self.child.take()?.wait_with_output().ok()
    }

    /// The process id.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A binary the workspace built into the same target directory as the running test (for
/// example `svcplane`, whose package is not this crate's, so `CARGO_BIN_EXE_svcplane` is not
/// set here). Panics, saying how to build it, when it is missing.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name>
    let dir = exe.parent().expect("test binary directory");
    let profile = if dir.ends_with("deps") {
        dir.parent().expect("profile directory")
    } else {
        dir
    };
    let path = profile.join(name);
    assert!(
        path.is_file(),
        "{} is not built; `cargo test --workspace` builds it, or run `cargo build --bin {name}` first",
        path.display()
    );
    path
}
