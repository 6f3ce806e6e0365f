//! Programs an IPVS table of `--services` × `--dests` from empty with `IpvsClient::apply`,
//! dumps it, applies one destination change, deletes it; then, with `--ipvsadm`, does the same
//! with `ipvsadm --restore` as the baseline, in the same run. Needs root and a kernel with IPVS;
//! meant for the VM (this host has no IPVS).
//!
//! ```sh
//! ip route add 10.201.0.0/16 dev lo      # masqueraded destinations must be routable
//! ipvs_bench --services 10000 --dests 10 --ipvsadm
//! ```
//!
//! Virtual addresses are 10.200.x.y:80/TCP, destinations 10.201.x.y:8080. The table must be
//! empty at start; everything created is deleted at the end.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use svcplane_dataplane::ipvs::{
    Destination, IpvsClient, IpvsOp, Protocol, Scheduler, ServiceKey, VirtualService,
};

struct Args {
    services: u32,
    dests: u32,
    ipvsadm: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        services: 10_000,
        dests: 10,
        ipvsadm: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<u32, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--services" => args.services = number("--services")?,
            "--dests" => args.dests = number("--dests")?,
            "--ipvsadm" => args.ipvsadm = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.services == 0 || args.services > 65_000 || args.dests > 1000 {
        return Err("--services must be 1..=65000 and --dests at most 1000".into());
    }
    Ok(args)
}

fn vip(i: u32) -> ServiceKey {
    ServiceKey::new(Protocol::Tcp, Ipv4Addr::from(0x0ac8_0000 + i).into(), 80)
}

fn endpoint(i: u32, j: u32, dests: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0ac9_0000 + (i * dests + j) % 0xffff)
}

fn table(args: &Args) -> Vec<IpvsOp> {
    let mut ops = Vec::with_capacity((args.services * (args.dests + 1)) as usize);
    for i in 0..args.services {
        let service = vip(i);
        ops.push(IpvsOp::AddService(VirtualService::new(
            service,
            Scheduler::RoundRobin,
        )));
        for j in 0..args.dests {
            let dest =
                Destination::masquerade(endpoint(i, j, args.dests).into(), 8080 + j as u16, 1);
            ops.push(IpvsOp::AddDest { service, dest });
        }
    }
    ops
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if let Err(e) = run() {
        eprintln!("ipvs_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let mut ipvs = IpvsClient::open().map_err(|e| e.to_string())?;
    if !ipvs.services().map_err(|e| e.to_string())?.is_empty() {
        return Err("the IPVS table is not empty; run on an empty table".into());
    }
    let ops = table(&args);
    println!(
        "table: {} services x {} destinations = {} operations",
        args.services,
        args.dests,
        ops.len()
    );

    let before = ipvs.counters();
    let start = Instant::now();
    let outcomes = ipvs.apply(&ops).map_err(|e| e.to_string())?;
    let full = start.elapsed();
    let after = ipvs.counters();
    if let Some(Err(e)) = outcomes.iter().find(|o| o.is_err()) {
        return Err(format!("apply: {e} (are the destinations routable?)"));
    }
    println!(
        "svcplane full sync: {:.1} ms, {} messages, {} sends, {} receives, peak RSS {} KiB",
        ms(full),
        after.messages_sent - before.messages_sent,
        after.send_calls - before.send_calls,
        after.recv_calls - before.recv_calls,
        peak_rss_kib()
    );

    let start = Instant::now();
    let services = ipvs.services().map_err(|e| e.to_string())?;
    let mut dest_count = 0;
    for service in &services {
        dest_count += ipvs
            .destinations(&service.key)
            .map_err(|e| e.to_string())?
            .len();
    }
    println!(
        "svcplane dump: {:.1} ms for {} services, {} destinations",
        ms(start.elapsed()),
        services.len(),
        dest_count
    );
    if services.len() != args.services as usize
        || dest_count != (args.services * args.dests) as usize
    {
        return Err("the dump does not match the table".into());
    }

    let change = IpvsOp::EditDest {
        service: vip(args.services / 2),
        dest: Destination::masquerade(endpoint(args.services / 2, 0, args.dests).into(), 8080, 0),
    };
    let before = ipvs.counters();
    let start = Instant::now();
    let outcome = ipvs
        .apply(std::slice::from_ref(&change))
        .map_err(|e| e.to_string())?;
    let one = start.elapsed();
    let after = ipvs.counters();
    outcome[0].clone().map_err(|e| e.to_string())?;
    println!(
        "svcplane one change: {:.3} ms, {} messages, {} sends, {} receives",
        ms(one),
        after.messages_sent - before.messages_sent,
        after.send_calls - before.send_calls,
        after.recv_calls - before.recv_calls
    );

    let cleanup: Vec<IpvsOp> = services.iter().map(|s| IpvsOp::DelService(s.key)).collect();
    let start = Instant::now();
    let outcomes = ipvs.apply(&cleanup).map_err(|e| e.to_string())?;
    println!("svcplane delete all: {:.1} ms", ms(start.elapsed()));
    if outcomes.iter().any(Result::is_err) {
        return Err("deleting the services failed".into());
    }

    if args.ipvsadm {
        baseline(&args)?;
    }
    Ok(())
}

/// The same table through `ipvsadm --restore`, the baseline a user would script.
fn baseline(args: &Args) -> Result<(), String> {
    let mut rules = String::new();
    for i in 0..args.services {
        let service = vip(i);
        rules.push_str(&format!("-A -t {}:80 -s rr\n", service.addr));
        for j in 0..args.dests {
            rules.push_str(&format!(
                "-a -t {}:80 -r {}:{} -m -w 1\n",
                service.addr,
                endpoint(i, j, args.dests),
                8080 + j
            ));
        }
    }
    let start = Instant::now();
    let mut child = Command::new("ipvsadm")
        .arg("--restore")
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ipvsadm: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("ipvsadm stdin")?
        .write_all(rules.as_bytes())
        .map_err(|e| format!("ipvsadm stdin: {e}"))?;
    let status = child.wait().map_err(|e| format!("ipvsadm: {e}"))?;
    let restore = start.elapsed();
    if !status.success() {
        return Err(format!("ipvsadm --restore failed: {status}"));
    }
    println!("ipvsadm --restore: {:.1} ms", ms(restore));

    let i = args.services / 2;
    let start = Instant::now();
    let status = Command::new("ipvsadm")
        .args([
            "-e",
            "-t",
            &format!("{}:80", vip(i).addr),
            "-r",
            &format!("{}:8080", endpoint(i, 0, args.dests)),
            "-m",
            "-w",
            "0",
        ])
        .status()
        .map_err(|e| format!("ipvsadm: {e}"))?;
    println!(
        "ipvsadm one change (process included): {:.3} ms",
        ms(start.elapsed())
    );
    if !status.success() {
        return Err(format!("ipvsadm -e failed: {status}"));
    }
    let status = Command::new("ipvsadm")
        .arg("-C")
        .status()
        .map_err(|e| format!("ipvsadm -C: {e}"))?;
    if !status.success() {
        return Err(format!("ipvsadm -C failed: {status}"));
    }
    Ok(())
}
