//! Binds `--count` IPv4 /32 and as many IPv6 /128 addresses to one link with
//! `IfaceClient::add_addresses`, lists and removes them; then the same with `ip -batch` (one
//! request and acknowledgement per line) as the baseline, in the same run. Runs inside a network
//! namespace it creates and deletes; needs root and iproute2.
//!
//! ```sh
//! cargo run --release -p svcplane-dataplane --example iface_bench -- --count 5000          # veth
//! cargo run --release -p svcplane-dataplane --example iface_bench -- --count 5000 --dummy  # svcplane0
//! ```

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::time::Instant;

use nix::sched::{setns, CloneFlags};
use svcplane_dataplane::iface::{IfaceClient, InterfaceAddress, DUMMY_LINK_NAME};

/// Deletes the namespace when dropped, also on error.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| format!("ip: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {status}", args.join(" ")))
    }
}

fn addresses(count: u32) -> Vec<InterfaceAddress> {
    (0..count)
        .flat_map(|i| {
            let v4 = IpAddr::V4(Ipv4Addr::from(0x0a60_0000 + i));
            let v6 = IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0x96,
                0,
                0,
                0,
                0,
                (i >> 16) as u16,
                i as u16,
            ));
            [InterfaceAddress::host(v4), InterfaceAddress::host(v6)]
        })
        .collect()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("iface_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut count = 5000u32;
    let mut dummy = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => {
                count = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0 && *n <= 60_000)
                    .ok_or("--count needs a number in 1..=60000")?
            }
            "--dummy" => dummy = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let name = format!("svcplane-bench-{}", std::process::id());
    ip(&["netns", "add", &name])?;
    let ns = Namespace(name);
    let link = if dummy { DUMMY_LINK_NAME } else { "bench0" };
    if !dummy {
        ip(&[
            "-n", &ns.0, "link", "add", "bench0", "type", "veth", "peer", "name", "bench1",
        ])?;
        ip(&["-n", &ns.0, "link", "set", "bench0", "up"])?;
    }
    let wanted = addresses(count);

    let path = format!("/run/netns/{}", ns.0);
    let wanted_ref = &wanted;
    std::thread::scope(|scope| {
        scope
            .spawn(move || -> Result<(), String> {
                let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    let client = IfaceClient::new().map_err(|e| e.to_string())?;
                    let link = if dummy {
                        client
                            .ensure_dummy(DUMMY_LINK_NAME)
                            .await
                            .map_err(|e| e.to_string())?
                    } else {
                        client
                            .link(link)
                            .await
                            .map_err(|e| e.to_string())?
                            .ok_or("the veth link is missing")?
                    };
                    let start = Instant::now();
                    let added = client.add_addresses(link.index, wanted_ref).await;
                    let add = start.elapsed();
                    if let Some((addr, e)) = added.failed.first() {
                        return Err(format!("add {addr}: {e}"));
                    }
                    let start = Instant::now();
                    let listed = client.addresses(link.index).await.map_err(|e| e.to_string())?;
                    let list = start.elapsed();
                    let start = Instant::now();
                    let removed = client.remove_addresses(link.index, wanted_ref).await;
                    let remove = start.elapsed();
                    println!(
                        "IfaceClient: add {} addresses {:.1} ms, list {} {:.1} ms, remove {} {:.1} ms",
                        added.changed,
                        add.as_secs_f64() * 1e3,
                        listed.len(),
                        list.as_secs_f64() * 1e3,
                        removed.changed,
                        remove.as_secs_f64() * 1e3
                    );
                    Ok(())
                })
            })
            .join()
            .map_err(|_| "benchmark thread panicked".to_string())?
    })?;

    let batch: String = wanted
        .iter()
        .map(|a| format!("addr add {a} dev {link}\n"))
        .collect();
    let file = std::env::temp_dir().join(format!("{}.batch", ns.0));
    std::fs::write(&file, batch).map_err(|e| format!("{}: {e}", file.display()))?;
    let start = Instant::now();
    let result = ip(&["-n", &ns.0, "-batch", &file.to_string_lossy()]);
    let baseline = start.elapsed();
    let _ = std::fs::remove_file(&file);
    result?;
    println!(
        "ip -batch: add {} addresses {:.1} ms",
        wanted.len(),
        baseline.as_secs_f64() * 1e3
    );
    Ok(())
}
