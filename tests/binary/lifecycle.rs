//! The real `svcplane` binary through its life cycle (issue 15, "Correctness" and "Exposure"):
//! SIGTERM and SIGINT stop `dev`, `webhook` and `controller-manager` gracefully with every
//! acknowledged write kept; resourceVersions never go back across restarts, `kill -9`
//! included, and no temporary file is left behind; `validate` of an empty file fails; a
//! non-loopback listener is warned about; generated private keys are owner-only.
//!
//! These tests live in the root package because only its tests get `CARGO_BIN_EXE_svcplane`.
//! Everything listens on loopback (or on an ephemeral port of all interfaces for the exposure
//! warning, which nothing connects to from outside), every wait is bounded, and every child
//! process is killed when its test ends, passing or failing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The binary under test: the one cargo built, or `SVCPLANE_TEST_BINARY` (to run this suite
/// against another build, e.g. to see which properties an older one lacks).
fn svcplane() -> String {
    std::env::var("SVCPLANE_TEST_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_svcplane").to_string())
}
/// Upper bound for a start-up or a graceful stop (the servers' grace period is 10 s).
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `svcplane` process, killed on drop.
struct Process {
    child: Child,
    /// Lines the process printed on stdout so far (the banner).
    stdout: std::sync::mpsc::Receiver<String>,
    stderr_log: PathBuf,
}

impl Process {
    fn spawn(args: &[&str], dir: &Path) -> Process {
        let stderr_log = dir.join(format!("stderr-{}.log", unique()));
        let child = Command::new(svcplane())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).expect("stderr log"))
            .spawn()
            .expect("svcplane starts");
        let mut child = child;
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Process {
            child,
            stdout: rx,
            stderr_log,
        }
    }

    /// Waits for a stdout line containing `needle`; returns it and the lines before it.
    fn wait_for_line(&mut self, needle: &str) -> (String, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return (line, before),
                Ok(line) => before.push(line),
                Err(_) => panic!(
                    "no line with {needle:?} on stdout within {PATIENCE:?}; got {before:?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// The rest of stdout once the process has exited.
    fn remaining_stdout(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        lines
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("`kill` runs (scripts/install-test-deps.sh installs procps)");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits (bounded) for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {PATIENCE:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `svcplane dev` on an ephemeral loopback port over plain HTTP, in `dir`.
fn dev(dir: &Path, state_file: &Path, extra: &[&str]) -> (Process, String) {
    let state = state_file.to_str().expect("utf-8 path");
    let mut args = vec![
        "dev",
        "--insecure-http",
        "--listen",
        "127.0.0.1:0",
        "--no-examples",
        "--kubeconfig-out",
        "dev.kubeconfig",
        "--work-dir",
        "work",
        "--node-agents-listen",
        "127.0.0.1:0",
        "--state-file",
        state,
    ];
    args.extend_from_slice(extra);
    let mut p = Process::spawn(&args, dir);
    let (line, _) = p.wait_for_line("API server listening on");
    let url = line
        .rsplit(' ')
        .next()
        .expect("URL at the end of the banner line")
        .to_string();
    p.wait_for_line("Press Ctrl-C to stop.");
    (p, url)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Creates a ConfigMap; returns its resourceVersion when the server acknowledged it.
async fn create_configmap(client: &reqwest::Client, url: &str, name: &str) -> Option<u64> {
    let resp = client
        .post(format!("{url}/api/v1/namespaces/default/configmaps"))
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}))
        .send()
        .await
        .ok()?;
    if resp.status().as_u16() != 201 {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    body["metadata"]["resourceVersion"].as_str()?.parse().ok()
}

async fn configmap_names(client: &reqwest::Client, url: &str) -> (u64, Vec<String>) {
    let list: Value = client
        .get(format!("{url}/api/v1/namespaces/default/configmaps"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("list JSON");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("list resourceVersion");
    let names = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    (rv, names)
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------------------------

const SEQUENTIAL_WRITES: usize = 30;

/// Writes 30 objects, then keeps 4 writers going while the signal arrives; every write the
/// server acknowledged must be in the state file after the process exits.
async fn writes_survive(signal: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.json");
    // The whole dev setup: webhook and controllers stop in order around the API server.
    let (mut p, url) = dev(dir.path(), &state, &[]);
    let client = http();
    let mut acknowledged = Vec::new();
    for i in 0..SEQUENTIAL_WRITES {
        let name = format!("seq-{i}");
        if create_configmap(&client, &url, &name).await.is_some() {
            acknowledged.push(name);
        }
    }
    assert_eq!(
        acknowledged.len(),
        SEQUENTIAL_WRITES,
        "every write before the signal succeeds"
    );

    // Writers still busy when the signal arrives.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..2_000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let name = format!("busy-{w}-{i}");
                match create_configmap(&client, &url, &name).await {
                    Some(_) => acked.push(name),
                    // Refused or cut: the server is going away.
                    None => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.signal(signal);
    let status = tokio::task::spawn_blocking(move || {
        let status = p.wait_exit();
        (status, p)
    })
    .await
    .expect("waiter");
    let (status, mut p) = status;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        acknowledged.extend(w.await.expect("writer"));
    }
    assert!(
        status.success(),
        "`svcplane dev` exits 0 on {signal}, got {status:?}; stderr:\n{}",
        p.stderr()
    );
    let tail = p.remaining_stdout();
    assert!(
        tail.iter()
            .any(|l| l.contains(&format!("{signal} received"))),
        "the shutdown is announced: {tail:?}"
    );
    assert!(tail.iter().any(|l| l.contains("stopped")), "{tail:?}");

    // Restart from the state file: every acknowledged write is there.
    let (p2, url2) = dev(dir.path(), &state, &["--no-webhook", "--no-controllers"]);
    let (_, names) = configmap_names(&client, &url2).await;
    let missing: Vec<&String> = acknowledged.iter().filter(|n| !names.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost on {signal}: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    drop(p2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_dev_gracefully_and_keeps_every_acknowledged_write() {
    writes_survive("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_dev_gracefully_and_keeps_every_acknowledged_write() {
    writes_survive("INT").await;
}

/// A free loopback port (bound and released; the child binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_webhook_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let certs = dir.path().join("certs");
    let mut p = Process::spawn(
        &[
            "webhook",
            "--listen",
            &listen,
            "--generate-certs",
            certs.to_str().unwrap(),
        ],
        dir.path(),
    );
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let up = client
            .get(format!("https://{listen}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "webhook not serving; stderr:\n{}",
            p.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.signal("TERM");
    let started = Instant::now();
    let status = p.wait_exit();
    assert!(
        status.success(),
        "`svcplane webhook` exits 0 on SIGTERM, got {status:?}; stderr:\n{}",
        p.stderr()
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_controller_manager_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.json");
    let (server, _url) = dev(dir.path(), &state, &["--no-webhook", "--no-controllers"]);
    let mut cm = Process::spawn(
        &[
            "controller-manager",
            "--kubeconfig",
            "dev.kubeconfig",
            "--metrics-addr",
            "127.0.0.1:0",
            "--leader-elect=false",
        ],
        dir.path(),
    );
    // Let it start its informers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        cm.child.try_wait().unwrap().is_none(),
        "controller-manager runs; stderr:\n{}",
        cm.stderr()
    );
    cm.signal("TERM");
    let status = cm.wait_exit();
    assert!(
        status.success(),
        "`svcplane controller-manager` exits 0 on SIGTERM, got {status:?}; stderr:\n{}",
        cm.stderr()
    );
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// resourceVersions across restarts and crashes
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_versions_never_go_back_after_kill_9_and_no_temp_file_is_left() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.json");
    // Leftovers of an earlier crash (this and the former per-process naming).
    std::fs::write(dir.path().join(".state.json.tmp"), "partial").unwrap();
    std::fs::write(dir.path().join(".state.json.tmp-424242"), "partial").unwrap();
    let client = http();
    let mut highest_acknowledged = 0;
    for round in 0..3 {
        let (mut p, url) = dev(dir.path(), &state, &["--no-webhook", "--no-controllers"]);
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: temporary files left: {leftovers:?}"
        );
        // The first write after a restart is above everything acknowledged before.
        let first = create_configmap(&client, &url, &format!("first-{round}"))
            .await
            .expect("create after restart");
        assert!(
            first > highest_acknowledged,
            "round {round}: resourceVersion went back: {first} after {highest_acknowledged} was acknowledged"
        );
        // A watch resuming from an acknowledged revision the crash lost must not silently
        // miss events: it is told to relist (410) instead.
        if highest_acknowledged > 0 {
            let line = client
                .get(format!(
                    "{url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={highest_acknowledged}&timeoutSeconds=1"
                ))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let event: Value = serde_json::from_str(line.lines().next().unwrap_or("{}")).unwrap();
            assert_eq!(event["type"], "ERROR", "round {round}: {line}");
            assert_eq!(event["object"]["code"], 410, "round {round}: {line}");
        }
        highest_acknowledged = first;
        for i in 0..200 {
            if let Some(rv) = create_configmap(&client, &url, &format!("r{round}-{i}")).await {
                highest_acknowledged = highest_acknowledged.max(rv);
            }
        }
        let (list_rv, _) = configmap_names(&client, &url).await;
        highest_acknowledged = highest_acknowledged.max(list_rv);
        // Crash right after the writes: the last ones are not in any snapshot yet.
        p.signal("KILL");
        p.wait_exit();
    }
    let (p, url) = dev(dir.path(), &state, &["--no-webhook", "--no-controllers"]);
    let (list_rv, _) = configmap_names(&client, &url).await;
    assert!(
        list_rv > highest_acknowledged,
        "list resourceVersion {list_rv} after {highest_acknowledged} was acknowledged"
    );
    drop(p);
}

// ---------------------------------------------------------------------------------------------
// validate, exposure, key files
// ---------------------------------------------------------------------------------------------

#[test]
fn validate_of_an_empty_file_fails_with_exit_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in [
        ("empty.yaml", ""),
        ("blank.yaml", "\n\n"),
        ("comments.yaml", "# nothing here\n---\n"),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = Command::new(svcplane())
            .args(["validate", "-f", file.to_str().unwrap()])
            .output()
            .expect("svcplane validate runs");
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("no objects"), "{name}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_warns_when_listening_beyond_loopback_without_authorization() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut p = Process::spawn(
        &[
            "dev",
            "--insecure-http",
            "--listen",
            "0.0.0.0:0",
            "--no-examples",
            "--no-webhook",
            "--no-controllers",
            "--no-node-agents",
            "--kubeconfig-out",
            "dev.kubeconfig",
        ],
        dir.path(),
    );
    let (_, banner) = p.wait_for_line("Press Ctrl-C to stop.");
    let warning = banner
        .iter()
        .find(|l| l.contains("WARNING"))
        .unwrap_or_else(|| panic!("no warning in the banner: {banner:?}"));
    assert!(warning.contains("without authorization"), "{warning}");
    assert!(warning.contains("Secrets"), "{warning}");
    assert!(
        p.stderr().contains("without authorization"),
        "the warning is logged too: {}",
        p.stderr()
    );
    p.signal("TERM");
    assert!(p.wait_exit().success());

    // On loopback there is nothing to warn about.
    let state = dir.path().join("state.json");
    let (mut quiet, _) = dev(dir.path(), &state, &["--no-webhook", "--no-controllers"]);
    quiet.signal("TERM");
    quiet.wait_exit();
    let tail = quiet.remaining_stdout();
    assert!(!quiet.stderr().contains("without authorization"));
    assert!(!tail.iter().any(|l| l.contains("WARNING")), "{tail:?}");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_private_keys_are_owner_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Even with a permissive umask the key is created 0600.
    let certs = dir.path().join("certs");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000 && exec {} webhook --generate-certs {} --generate-only",
            svcplane(),
            certs.display()
        ))
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&certs.join("tls.key")), 0o600);
    assert_eq!(
        mode(&certs.join("tls.crt")),
        0o666,
        "certificates are public"
    );

    // `svcplane dev` writes its webhook's key the same way.
    let state = dir.path().join("state.json");
    let (mut p, _) = dev(dir.path(), &state, &["--no-controllers"]);
    assert_eq!(mode(&dir.path().join("work/webhook-certs/tls.key")), 0o600);
    p.signal("TERM");
    p.wait_exit();
}
