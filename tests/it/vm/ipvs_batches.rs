//! A table larger than one IPVS plan (the backend plans and sends at most 512 virtual services
//! at a time) on a real kernel (Debian's, in the test VM): every virtual service and
//! destination of every batch is programmed; a second run against changed manifests deletes
//! the Services that are gone (planned after every batch), adds and removes destinations of
//! Services spread over the table, and a removed TCP destination with no connection is deleted
//! in the same run (draining is tracked across batches). Counted with `ipvsadm -Ln`, parsed
//! here. Fails, never skips, when the VM cannot boot.

use crate::vm::support as vm_ipvs_support;

use std::time::Duration;

use svcplane_tests::vm::{workspace_binary, Guest};
use vm_ipvs_support::*;

const MANIFESTS: &str = "/etc/svcplane/manifests";
/// Three plans' worth of Services (512 per plan).
const SERVICES: usize = 1_200;

fn cluster_ip(i: usize) -> String {
    format!("10.97.{}.{}", i / 250, 1 + i % 250)
}

fn endpoint(i: usize, e: usize) -> String {
    format!("10.245.{}.{}", (i * 3 + e) / 250, 1 + (i * 3 + e) % 250)
}

/// `services` ClusterIP Services; Service `i` has endpoints `0..endpoints(i)`.
fn manifests(services: usize, endpoints: impl Fn(usize) -> usize) -> String {
    let mut m = nodes();
    for i in 0..services {
        let name = format!("s{i}");
        m += &service(
            &name,
            &format!(
                "clusterIP: {}\nports:\n- {{name: http, port: 80, targetPort: 8080}}",
                cluster_ip(i)
            ),
            "",
        );
        let addresses: Vec<String> = (0..endpoints(i)).map(|e| endpoint(i, e)).collect();
        let eps: Vec<Ep<'_>> = addresses.iter().map(|a| Ep(a, "node-b")).collect();
        m += &slice(
            &format!("{name}-a"),
            &name,
            "IPv4",
            &[("http", "TCP", 8080)],
            &eps,
        );
    }
    m
}

/// Real servers of `cluster_ip(i):80` in `ipvsadm -Ln` output.
fn reals_of(table: &std::collections::BTreeMap<String, (String, Vec<Real>)>, i: usize) -> usize {
    table
        .get(&format!("TCP {}:80", cluster_ip(i)))
        .map(|(_, reals)| reals.len())
        .unwrap_or_else(|| panic!("virtual service of s{i} missing"))
}

#[test]
fn ipvs_full_syncs_larger_than_one_plan_program_and_retire_every_batch() {
    let _heavy = crate::heavy::heavy_blocking();
    let agent = format!(
        "svcplane node-agent --node-name {NODE} --manifests {MANIFESTS} --backend ipvs --once"
    );
    // Second state: the last 300 Services are gone; s0 gains an endpoint, s1 and s850 drop
    // one.
    // The kernel refuses a masqueraded real server it has no unicast route to.
    let mut script = String::from("set -e\nip link set lo up\nip route add 10.245.0.0/16 dev lo\n");
    script += &format!("section first-run\n{agent} 2>&1\nsection first-ipvs\nipvsadm -Ln\n");
    script += &format!(
        "section second-run\ncp /etc/svcplane/second.yaml {MANIFESTS}/cluster.yaml\n{agent} 2>&1\n\
         section second-ipvs\nipvsadm -Ln\n"
    );
    let run = Guest::new()
        .binary(workspace_binary("svcplane"))
        .file_contents(
            &format!("{MANIFESTS}/cluster.yaml"),
            manifests(SERVICES, |_| 2),
        )
        .file_contents(
            "/etc/svcplane/second.yaml",
            manifests(SERVICES - 300, |i| match i {
                0 => 3,
                1 | 850 => 1,
                _ => 2,
            }),
        )
        .script(script)
        .timeout(Duration::from_secs(300))
        .run();
    println!(
        "vm ipvs batches: boot to script {:.2?}, to result {:.2?}",
        run.boot_time, run.total_time
    );
    run.assert_success();
    let section = |name: &str| {
        run.section(name)
            .unwrap_or_else(|| panic!("section {name} missing:\n{}", run.output))
    };
    let first = section("first-run");
    assert!(
        first.contains(&format!("programmed {SERVICES} virtual servers")),
        "{first}"
    );
    let table = parse_ipvsadm(&section("first-ipvs"));
    assert_eq!(table.len(), SERVICES, "one virtual service per Service");
    for i in [0, 511, 512, 1023, 1024, SERVICES - 1] {
        assert_eq!(reals_of(&table, i), 2, "s{i}");
    }
    let reals: usize = table.values().map(|(_, r)| r.len()).sum();
    assert_eq!(reals, 2 * SERVICES);

    let second = section("second-run");
    assert!(
        second.contains(&format!("programmed {} virtual servers", SERVICES - 300)),
        "{second}"
    );
    let table = parse_ipvsadm(&section("second-ipvs"));
    assert_eq!(
        table.len(),
        SERVICES - 300,
        "the gone Services' virtual services are deleted"
    );
    assert!(!table.contains_key(&format!("TCP {}:80", cluster_ip(SERVICES - 1))));
    assert_eq!(
        reals_of(&table, 0),
        3,
        "s0 gained an endpoint (first batch)"
    );
    assert_eq!(
        reals_of(&table, 1),
        1,
        "s1's removed TCP destination had no connection: deleted in the same run"
    );
    assert_eq!(
        reals_of(&table, 850),
        1,
        "s850 (second batch): the same, for a batch after the first"
    );
    assert_eq!(reals_of(&table, 899), 2);
    let reals: usize = table.values().map(|(_, r)| r.len()).sum();
    assert_eq!(reals, 2 * (SERVICES - 300) + 1 - 2);
}
