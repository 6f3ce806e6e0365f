//! The `svcplane-nettest` command line as the dataplane tests use it: `serve` prints its bound
//! addresses, `probe` prints one line per attempt and a summary, `hold` keeps one connection.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::NETTEST;

/// A `serve` process, killed on drop; its `listening` lines read from stdout.
struct Serve {
    child: Child,
    tcp: Vec<String>,
    udp: Vec<String>,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(NETTEST)
            .arg("serve")
            .args(args)
            .args(["--lifetime-ms", "30000"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("svcplane-nettest runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut tcp, mut udp) = (Vec::new(), Vec::new());
        for line in lines.by_ref() {
            let line = line.expect("serve output");
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["listening", "tcp", a] => tcp.push(a.to_string()),
                ["listening", "udp", a] => udp.push(a.to_string()),
                ["ready"] => break,
                other => panic!("unexpected serve line {other:?}"),
            }
        }
        Serve { child, tcp, udp }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nettest(args: &[&str]) -> Output {
    Command::new(NETTEST)
        .args(args)
        .output()
        .expect("svcplane-nettest runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn probe_prints_one_name_per_attempt_then_a_summary() {
    let serve = Serve::start(&[
        "--name",
        "web-1",
        "--tcp",
        "127.0.0.1:0",
        "--udp",
        "127.0.0.1:0",
        "--tcp",
        "[::1]:0",
    ]);
    assert_eq!(serve.tcp.len(), 2);
    for (proto, addr) in [
        ("--tcp", &serve.tcp[0]),
        ("--udp", &serve.udp[0]),
        ("--tcp", &serve.tcp[1]),
    ] {
        let out = nettest(&["probe", proto, addr, "--count", "4", "--timeout-ms", "2000"]);
        assert!(out.status.success(), "{out:?}");
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..4], ["web-1"; 4], "{text}");
        assert_eq!(
            lines[4],
            "summary attempts=4 answered=4 refused=0 reset=0 timeout=0 error=0 distinct=1"
        );
    }
}

#[test]
fn probe_to_a_closed_port_says_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = nettest(&["probe", "--tcp", &port.to_string(), "--count", "2"]);
    assert_eq!(
        stdout(&out),
        "refused\nrefused\nsummary attempts=2 answered=0 refused=2 reset=0 timeout=0 error=0 distinct=0\n"
    );
}

#[test]
fn hold_keeps_one_connection_and_exits_zero_when_every_ping_is_answered() {
    let _heavy = crate::heavy::heavy_blocking();
    let serve = Serve::start(&["--name", "keep", "--tcp", "127.0.0.1:0"]);
    let started = std::time::Instant::now();
    let out = nettest(&[
        "hold",
        "--tcp",
        &serve.tcp[0],
        "--interval-ms",
        "50",
        "--duration-ms",
        "400",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = stdout(&out);
    let replies = text.lines().filter(|l| *l == "reply keep").count();
    assert!(replies >= 4, "{text}");
    assert_eq!(
        text.lines().last().unwrap(),
        format!("summary replies={replies} failures=0 names=keep")
    );
}

#[test]
fn hold_exits_one_when_the_server_goes_away() {
    let mut serve = Serve::start(&["--name", "gone", "--tcp", "127.0.0.1:0"]);
    let addr = serve.tcp[0].clone();
    let hold = Command::new(NETTEST)
        .args(["hold", "--tcp", &addr, "--interval-ms", "50"])
        .args(["--duration-ms", "5000", "--timeout-ms", "1000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    let out = hold.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("reply gone"), "{text}");
    assert!(text.contains("\nfailed "), "{text}");
    assert!(text.ends_with("failures=1 names=gone\n"), "{text}");
}

#[test]
fn usage_errors_exit_two_and_name_the_option() {
    for (args, needle) in [
        (vec!["probe", "--tcp", "nowhere"], "--tcp"),
        (vec!["serve", "--tcp", "127.0.0.1:0"], "--name"),
        (
            vec!["probe", "--count", "x", "--tcp", "127.0.0.1:1"],
            "--count",
        ),
        (vec!["fly"], "fly"),
    ] {
        let out = nettest(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: {out:?}"
        );
    }
}
