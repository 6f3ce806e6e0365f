//! `svcplane-nettest`: the traffic tool of the dataplane tests (std and socket2 only, so it is
//! small and runs unchanged on the host, in network namespaces and in the test VM).
//!
//! ```text
//! svcplane-nettest serve --name NAME [--tcp ADDR:PORT]... [--udp ADDR:PORT]... [--lifetime-ms MS]
//! svcplane-nettest probe (--tcp|--udp) ADDR:PORT [--count N] [--timeout-ms T] [--interval-ms I] [--bind ADDR[:PORT]]
//! svcplane-nettest hold --tcp ADDR:PORT [--interval-ms I] [--duration-ms D] [--timeout-ms T] [--bind ADDR]
//! ```
//!
//! * `serve` answers every line on a TCP connection with `NAME\n` (the connection stays open) and
//!   every UDP datagram with `NAME`. It prints `listening tcp|udp ADDR:PORT` per socket (port 0
//!   picks one) and then `ready`, and exits by itself after `--lifetime-ms` (default 10 minutes).
//! * `probe` makes `--count` attempts (default 10), each on a new connection or a new UDP socket
//!   (a new source port, so a new conntrack entry and a new scheduling decision: UDP sockets
//!   stay open until the probe ends, so the kernel cannot hand a port out twice), and prints one
//!   line per attempt: the answering name, `refused`, `reset`, `timeout` or `error KIND`; then
//!   `summary attempts=N answered=N refused=N reset=N timeout=N error=N distinct=N`.
//! * `hold` keeps one TCP connection and sends a line every `--interval-ms` for `--duration-ms`,
//!   printing `reply NAME` per answer; on the first failure it prints `failed REASON`. Then
//!   `summary replies=N failures=0|1 names=A,B`. Exit status 1 when the connection failed.
//!
//! Every loop is bounded in count and time. Usage errors exit with status 2.

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, ErrorKind, Read as _, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Connections one `serve` process handles at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 512;
/// Lines longer than this end the connection (`serve` never buffers without bound).
const MAX_LINE: usize = 4096;
/// Upper bounds on what one `probe` or `hold` may ask for, so no typo runs for hours.
const MAX_COUNT: u64 = 100_000;
const MAX_DURATION_MS: u64 = 600_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("svcplane-nettest: {msg}");
            eprintln!("usage: svcplane-nettest serve|probe|hold ... (see the file's doc comment)");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let (cmd, rest) = args.split_first().ok_or("missing subcommand")?;
    let opts = Options::parse(rest)?;
    let mut out = io::stdout().lock();
    match cmd.as_str() {
        "serve" => {
            let name = opts.one("name")?.ok_or("serve needs --name")?;
            let lifetime = Duration::from_millis(opts.millis("lifetime-ms", 600_000)?);
            let server = Server::start(&name, &opts.addrs("tcp")?, &opts.addrs("udp")?)
                .map_err(|e| format!("cannot listen: {e}"))?;
            if server.tcp.is_empty() && server.udp.is_empty() {
                return Err("serve needs at least one --tcp or --udp".into());
            }
            for addr in &server.tcp {
                writeln!(out, "listening tcp {addr}").ok();
            }
            for addr in &server.udp {
                writeln!(out, "listening udp {addr}").ok();
            }
            writeln!(out, "ready").ok();
            out.flush().ok();
            drop(out);
            thread::sleep(lifetime);
            Ok(ExitCode::SUCCESS)
        }
        "probe" => {
            let target = Target::from_options(&opts)?;
            let count = opts.number("count", 10)?.min(MAX_COUNT);
            let timeout = Duration::from_millis(opts.millis("timeout-ms", 1000)?.max(1));
            let interval = Duration::from_millis(opts.millis("interval-ms", 0)?);
            let bind = opts.one("bind")?;
            let mut tally = Tally::default();
            let mut held = Vec::new();
            for i in 0..count {
                if i > 0 && !interval.is_zero() {
                    thread::sleep(interval);
                }
                let outcome = target.attempt(bind.as_deref(), timeout, &mut held);
                writeln!(out, "{outcome}").ok();
                tally.add(&outcome);
            }
            writeln!(out, "{}", tally.summary()).ok();
            Ok(ExitCode::SUCCESS)
        }
        "hold" => {
            let addr = match Target::from_options(&opts)? {
                Target::Tcp(addr) => addr,
                Target::Udp(_) => return Err("hold speaks TCP only (--tcp)".into()),
            };
            let interval = Duration::from_millis(opts.millis("interval-ms", 100)?.max(1));
            let duration = Duration::from_millis(opts.millis("duration-ms", 1000)?);
            let timeout = Duration::from_millis(opts.millis("timeout-ms", 1000)?.max(1));
            let bind = opts.one("bind")?;
            let report = hold(addr, bind.as_deref(), interval, duration, timeout, &mut out);
            writeln!(out, "{}", report.summary()).ok();
            Ok(if report.failure.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        other => Err(format!("unknown subcommand {other:?}")),
    }
}

/// `--key value` pairs; a key may repeat (`--tcp` twice).
struct Options(Vec<(String, String)>);

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let (key, value) = match key.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => {
                    let value = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
                    (key.to_string(), value.clone())
                }
            };
            const KNOWN: [&str; 11] = [
                "name",
                "tcp",
                "udp",
                "lifetime-ms",
                "count",
                "timeout-ms",
                "interval-ms",
                "duration-ms",
                "bind",
                "help",
                "version",
            ];
            if !KNOWN.contains(&key.as_str()) {
                return Err(format!("unknown option --{key}"));
            }
            pairs.push((key, value));
        }
        Ok(Options(pairs))
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, key: &str) -> Result<Option<String>, String> {
        match self.all(key).as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v.to_string())),
            _ => Err(format!("--{key} given more than once")),
        }
    }

    fn number(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.one(key)? {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: {v:?} is not a whole number")),
        }
    }

    fn millis(&self, key: &str, default: u64) -> Result<u64, String> {
        Ok(self.number(key, default)?.min(MAX_DURATION_MS))
    }

    fn addrs(&self, key: &str) -> Result<Vec<SocketAddr>, String> {
        self.all(key)
            .into_iter()
            .map(|v| parse_addr(key, v))
            .collect()
    }
}

fn parse_addr(key: &str, v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("--{key}: {v:?} is not ADDR:PORT (IPv6 as [ADDR]:PORT)"))
}

/// What `probe` and `hold` talk to.
#[derive(Debug, Clone, Copy)]
enum Target {
    Tcp(SocketAddr),
    Udp(SocketAddr),
}

impl Target {
    fn from_options(opts: &Options) -> Result<Target, String> {
        match (opts.one("tcp")?, opts.one("udp")?) {
            (Some(a), None) => Ok(Target::Tcp(parse_addr("tcp", &a)?)),
            (None, Some(a)) => Ok(Target::Udp(parse_addr("udp", &a)?)),
            _ => Err("give exactly one of --tcp ADDR:PORT or --udp ADDR:PORT".into()),
        }
    }

    /// One attempt on a fresh connection or socket. A UDP socket on a kernel-chosen port goes
    /// into `held`, kept open by the caller so that later attempts cannot be given its port
    /// again (a reused source port would be the same conntrack entry and the same scheduling
    /// decision; a closed TCP connection's port is kept from reuse by `TIME_WAIT`).
    fn attempt(self, bind: Option<&str>, timeout: Duration, held: &mut Vec<UdpSocket>) -> Outcome {
        let result = match self {
            Target::Tcp(addr) => tcp_once(addr, bind, timeout),
            Target::Udp(addr) => udp_once(addr, bind, timeout, held),
        };
        match result {
            Ok(name) => Outcome::Answer(name),
            Err(e) => Outcome::from_error(&e),
        }
    }
}

/// The result of one probe attempt, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Answer(String),
    Refused,
    Reset,
    Timeout,
    Error(String),
}

impl Outcome {
    fn from_error(e: &io::Error) -> Outcome {
        match e.kind() {
            ErrorKind::ConnectionRefused => Outcome::Refused,
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => Outcome::Reset,
            ErrorKind::TimedOut | ErrorKind::WouldBlock => Outcome::Timeout,
            ErrorKind::UnexpectedEof => Outcome::Error("closed".into()),
            kind => Outcome::Error(format!("{kind:?}").to_lowercase()),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Answer(name) => f.write_str(name),
            Outcome::Refused => f.write_str("refused"),
            Outcome::Reset => f.write_str("reset"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Error(kind) => write!(f, "error {kind}"),
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    attempts: u64,
    answered: u64,
    refused: u64,
    reset: u64,
    timeout: u64,
    error: u64,
    names: BTreeSet<String>,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        self.attempts += 1;
        match outcome {
            Outcome::Answer(name) => {
                self.answered += 1;
                self.names.insert(name.clone());
            }
            Outcome::Refused => self.refused += 1,
            Outcome::Reset => self.reset += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::Error(_) => self.error += 1,
        }
    }

    fn summary(&self) -> String {
        format!(
            "summary attempts={} answered={} refused={} reset={} timeout={} error={} distinct={}",
            self.attempts,
            self.answered,
            self.refused,
            self.reset,
            self.timeout,
            self.error,
            self.names.len()
        )
    }
}

fn bind_addr(bind: Option<&str>, target: SocketAddr) -> io::Result<SocketAddr> {
    match bind {
        // An address (any port) or an address and port (the same source port each attempt).
        Some(b) => b
            .parse::<SocketAddr>()
            .or_else(|_| b.parse().map(|ip| SocketAddr::new(ip, 0)))
            .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "bad --bind address")),
        None if target.is_ipv4() => Ok("0.0.0.0:0".parse().expect("literal")),
        None => Ok("[::]:0".parse().expect("literal")),
    }
}

fn tcp_connect(addr: SocketAddr, bind: Option<&str>, timeout: Duration) -> io::Result<TcpStream> {
    let Some(_) = bind else {
        return TcpStream::connect_timeout(&addr, timeout);
    };
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.bind(&bind_addr(bind, addr)?.into())?;
    socket.connect_timeout(&addr.into(), timeout)?;
    Ok(socket.into())
}

/// One TCP connection: connect, send a line, read the answering line.
fn tcp_once(addr: SocketAddr, bind: Option<&str>, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut stream = tcp_connect(addr, bind, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    stream.write_all(b"ping\n")?;
    stream.set_read_timeout(Some(remaining(deadline)?))?;
    let mut line = String::new();
    let n = BufReader::new(&stream)
        .take(MAX_LINE as u64)
        .read_line(&mut line)?;
    if n == 0 {
        return Err(ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end().to_string())
}

/// One UDP exchange on a new socket: send a datagram, read the answer. The socket goes into
/// `held` when the kernel chose its port (see [`Target::attempt`]).
fn udp_once(
    addr: SocketAddr,
    bind: Option<&str>,
    timeout: Duration,
    held: &mut Vec<UdpSocket>,
) -> io::Result<String> {
    let local = bind_addr(bind, addr)?;
    let socket = UdpSocket::bind(local)?;
    let exchange = || -> io::Result<String> {
        // Connected, so an ICMP port unreachable comes back as ECONNREFUSED.
        socket.connect(addr)?;
        socket.set_read_timeout(Some(timeout))?;
        socket.send(b"ping")?;
        let mut buf = [0u8; 1500];
        let n = socket.recv(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
    };
    let answer = exchange();
    if local.port() == 0 {
        held.push(socket);
    }
    answer
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ErrorKind::TimedOut.into())
    } else {
        Ok(left)
    }
}

/// What one `hold` saw.
#[derive(Debug, Default)]
struct HoldReport {
    replies: u64,
    names: BTreeSet<String>,
    failure: Option<String>,
}

impl HoldReport {
    fn summary(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        format!(
            "summary replies={} failures={} names={}",
            self.replies,
            u8::from(self.failure.is_some()),
            names.join(",")
        )
    }
}

/// One long-lived TCP connection that sends a line every `interval` until `duration` has passed
/// or the first failure.
fn hold(
    addr: SocketAddr,
    bind: Option<&str>,
    interval: Duration,
    duration: Duration,
    timeout: Duration,
    out: &mut dyn Write,
) -> HoldReport {
    let mut report = HoldReport::default();
    let start = Instant::now();
    let stream = match tcp_connect(addr, bind, timeout) {
        Ok(s) => s,
        Err(e) => {
            let reason = Outcome::from_error(&e).to_string();
            writeln!(out, "failed connect {reason}").ok();
            report.failure = Some(reason);
            return report;
        }
    };
    let mut reader = BufReader::new(stream.try_clone().expect("clone a TCP stream"));
    let mut writer = stream;
    let mut first = true;
    while first || start.elapsed() + interval <= duration {
        if !first {
            thread::sleep(interval);
        }
        first = false;
        let result = (|| -> io::Result<String> {
            writer.set_write_timeout(Some(timeout))?;
            writer.write_all(b"ping\n")?;
            reader.get_ref().set_read_timeout(Some(timeout))?;
            let mut line = String::new();
            if reader.by_ref().take(MAX_LINE as u64).read_line(&mut line)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            Ok(line.trim_end().to_string())
        })();
        match result {
            Ok(name) => {
                writeln!(out, "reply {name}").ok();
                report.replies += 1;
                report.names.insert(name);
            }
            Err(e) => {
                let reason = Outcome::from_error(&e).to_string();
                writeln!(out, "failed {reason}").ok();
                report.failure = Some(reason);
                break;
            }
        }
        out.flush().ok();
    }
    report
}

/// A running `serve`: its bound addresses; its threads live as long as the process.
struct Server {
    tcp: Vec<SocketAddr>,
    udp: Vec<SocketAddr>,
}

impl Server {
    fn start(name: &str, tcp: &[SocketAddr], udp: &[SocketAddr]) -> io::Result<Server> {
        let name: Arc<str> = Arc::from(name);
        let mut server = Server {
            tcp: Vec::new(),
            udp: Vec::new(),
        };
        for addr in tcp {
            let listener = TcpListener::bind(addr)?;
            server.tcp.push(listener.local_addr()?);
            let name = name.clone();
            thread::spawn(move || accept_loop(listener, name));
        }
        for addr in udp {
            let socket = UdpSocket::bind(addr)?;
            server.udp.push(socket.local_addr()?);
            let name = name.clone();
            thread::spawn(move || udp_loop(socket, name));
        }
        Ok(server)
    }
}

fn accept_loop(listener: TcpListener, name: Arc<str>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: closed at once
        }
        let name = name.clone();
        let open = open.clone();
        thread::spawn(move || {
            answer_lines(stream, &name);
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Answers each line with the server's name until the peer closes or a line is too long.
fn answer_lines(stream: TcpStream, name: &str) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let reply = format!("{name}\n");
    loop {
        let mut line = Vec::new();
        match reader
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) if line.last() != Some(&b'\n') => return,
            Ok(_) => {
                if writer.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

fn udp_loop(socket: UdpSocket, name: Arc<str>) {
    let mut buf = [0u8; 1500];
    loop {
        if let Ok((_, peer)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(name.as_bytes(), peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Only bounds a failure; generous because a loaded machine can starve a server thread.
    const T: Duration = Duration::from_secs(10);

    fn loopback(v6: bool) -> SocketAddr {
        if v6 {
            "[::1]:0".parse().unwrap()
        } else {
            "127.0.0.1:0".parse().unwrap()
        }
    }

    /// A port nothing listens on: bound, read, and released.
    fn closed_tcp_port() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[test]
    fn tcp_probe_gets_the_server_name_on_ipv4_and_ipv6() {
        for v6 in [false, true] {
            let server = Server::start("alpha", &[loopback(v6)], &[]).unwrap();
            for _ in 0..3 {
                let outcome = Target::Tcp(server.tcp[0]).attempt(None, T, &mut Vec::new());
                assert_eq!(outcome, Outcome::Answer("alpha".into()), "v6={v6}");
            }
        }
    }

    #[test]
    fn udp_attempts_keep_their_sockets_so_each_has_its_own_source_port() {
        let server = Server::start("gamma", &[], &[loopback(false)]).unwrap();
        let mut held = Vec::new();
        for _ in 0..20 {
            let outcome = Target::Udp(server.udp[0]).attempt(None, T, &mut held);
            assert_eq!(outcome, Outcome::Answer("gamma".into()));
        }
        let ports: BTreeSet<u16> = held
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert_eq!((held.len(), ports.len()), (20, 20));
        // A fixed source port (`--bind ADDR:PORT`) is reused on purpose: nothing is held.
        let fixed = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut none = Vec::new();
        let outcome = Target::Udp(server.udp[0]).attempt(Some(&fixed.to_string()), T, &mut none);
        assert_eq!(outcome, Outcome::Answer("gamma".into()));
        assert!(none.is_empty());
    }

    #[test]
    fn udp_probe_gets_the_server_name_on_ipv4_and_ipv6() {
        for v6 in [false, true] {
            let server = Server::start("beta", &[], &[loopback(v6)]).unwrap();
            let outcome = Target::Udp(server.udp[0]).attempt(None, T, &mut Vec::new());
            assert_eq!(outcome, Outcome::Answer("beta".into()), "v6={v6}");
        }
    }

    #[test]
    fn tcp_probe_to_a_closed_port_is_refused() {
        let outcome = Target::Tcp(closed_tcp_port()).attempt(None, T, &mut Vec::new());
        assert_eq!(outcome, Outcome::Refused);
    }

    #[test]
    fn udp_probe_to_a_closed_port_is_refused_through_icmp() {
        let addr = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let outcome = Target::Udp(addr).attempt(None, T, &mut Vec::new());
        assert_eq!(outcome, Outcome::Refused);
    }

    #[test]
    fn udp_probe_without_an_answer_times_out_within_its_timeout() {
        // A bound socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let start = Instant::now();
        let outcome = Target::Udp(silent.local_addr().unwrap()).attempt(
            None,
            Duration::from_millis(150),
            &mut Vec::new(),
        );
        assert_eq!(outcome, Outcome::Timeout);
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn tcp_connection_stays_open_and_answers_every_line() {
        let server = Server::start("gamma", &[loopback(false)], &[]).unwrap();
        let mut out = Vec::new();
        let report = hold(
            server.tcp[0],
            None,
            Duration::from_millis(20),
            Duration::from_millis(200),
            T,
            &mut out,
        );
        assert_eq!(report.failure, None);
        assert!(report.replies >= 5, "replies: {}", report.replies);
        assert_eq!(report.names.iter().collect::<Vec<_>>(), ["gamma"]);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count() as u64, report.replies);
        assert!(text.lines().all(|l| l == "reply gamma"));
    }

    #[test]
    fn hold_reports_a_connection_the_server_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers two lines, then closes.
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            for _ in 0..2 {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                writer.write_all(b"delta\n").unwrap();
            }
        });
        let mut out = Vec::new();
        let report = hold(
            addr,
            None,
            Duration::from_millis(10),
            Duration::from_secs(5),
            T,
            &mut out,
        );
        server.join().unwrap();
        assert_eq!(report.replies, 2);
        assert!(report.failure.is_some());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines().last().unwrap().starts_with("failed "),
            "{text}"
        );
    }

    #[test]
    fn hold_to_a_closed_port_fails_at_connect() {
        let mut out = Vec::new();
        let report = hold(
            closed_tcp_port(),
            None,
            Duration::from_millis(10),
            Duration::from_millis(50),
            T,
            &mut out,
        );
        assert_eq!(report.failure.as_deref(), Some("refused"));
        assert_eq!(String::from_utf8(out).unwrap(), "failed connect refused\n");
    }

    #[test]
    fn bind_sets_the_source_address_of_tcp_and_udp() {
        // The server sees the client's address; 127.0.0.2 is loopback too on Linux.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || tcp_connect(addr, Some("127.0.0.2"), T).unwrap());
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.2");
        drop(client.join().unwrap());

        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = server.local_addr().unwrap();
        let probe = thread::spawn(move || udp_once(target, Some("127.0.0.3"), T, &mut Vec::new()));
        let mut buf = [0u8; 64];
        let (_, peer) = server.recv_from(&mut buf).unwrap();
        assert_eq!(peer.ip().to_string(), "127.0.0.3");
        server.send_to(b"epsilon", peer).unwrap();
        assert_eq!(probe.join().unwrap().unwrap(), "epsilon");
    }

    #[test]
    fn summary_counts_each_outcome() {
        let mut tally = Tally::default();
        for o in [
            Outcome::Answer("a".into()),
            Outcome::Answer("b".into()),
            Outcome::Answer("a".into()),
            Outcome::Refused,
            Outcome::Timeout,
            Outcome::Reset,
            Outcome::Error("x".into()),
        ] {
            tally.add(&o);
        }
        assert_eq!(
            tally.summary(),
            "summary attempts=7 answered=3 refused=1 reset=1 timeout=1 error=1 distinct=2"
        );
    }

    #[test]
    fn options_reject_unknown_flags_and_bad_addresses() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(Options::parse(&args(&["--nope", "1"])).is_err());
        assert!(Options::parse(&args(&["--count"])).is_err());
        let opts = Options::parse(&args(&["--tcp", "10.0.0.1"])).unwrap();
        assert!(Target::from_options(&opts)
            .unwrap_err()
            .contains("not ADDR:PORT"));
        let opts = Options::parse(&args(&["--tcp=[fd00::1]:80", "--count", "3"])).unwrap();
        assert!(matches!(Target::from_options(&opts), Ok(Target::Tcp(a)) if a.is_ipv6()));
        assert_eq!(opts.number("count", 10).unwrap(), 3);
        let both = Options::parse(&args(&["--tcp", "1.2.3.4:1", "--udp", "1.2.3.4:1"])).unwrap();
        assert!(Target::from_options(&both).is_err());
    }
}
