//! `svcplane validate -f FILE|-`: check multi-document YAML/JSON offline with the same
//! defaulting and validation as the API server and the webhook. The checks are
//! `svcplane-rules`' ([`svcplane_rules::validate_documents_in`]); this module owns the flags
//! and reading the input.

use std::io::{Read, Write};
use std::path::PathBuf;

use svcplane_rules::{
    ServiceRanges, DEFAULT_SERVICE_CLUSTER_IP_RANGE, DEFAULT_SERVICE_NODE_PORT_RANGE,
    EXIT_UNREADABLE,
};

/// Command-line arguments of `svcplane validate`.
#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// File with one or more YAML or JSON documents; `-` reads standard input.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// The API server's Service ClusterIP range (one CIDR, or two of different families): a
    /// chosen `clusterIP` outside it is rejected, as at allocation.
    #[arg(long = "service-cluster-ip-range", default_value = DEFAULT_SERVICE_CLUSTER_IP_RANGE)]
    pub service_cluster_ip_range: String,
    /// The API server's NodePort range: a chosen `nodePort` outside it is rejected, as at
    /// allocation.
    #[arg(long = "service-node-port-range", default_value = DEFAULT_SERVICE_NODE_PORT_RANGE)]
    pub service_node_port_range: String,
}

/// Run `svcplane validate`: print each object's verdict, errors and warnings to `out` and
/// return the exit status (0 allowed, 1 rejected, 2 unreadable input).
pub fn run_validate(args: &ValidateArgs, out: &mut dyn Write) -> u8 {
    let ranges = match ServiceRanges::parse(
        &args.service_cluster_ip_range,
        &args.service_node_port_range,
    ) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return EXIT_UNREADABLE;
        }
    };
    let mut text = String::new();
    let read = if args.file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(&args.file).map(|t| text = t)
    };
    if let Err(e) = read {
        let _ = writeln!(out, "error: cannot read {}: {e}", args.file.display());
        return EXIT_UNREADABLE;
    }
    svcplane_rules::validate_documents_in(&text, &ranges, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use svcplane_rules::{EXIT_ALLOWED, EXIT_REJECTED};

    /// Arguments for `file` with the default ranges, as the flags' defaults give them.
    fn for_file(file: impl Into<PathBuf>) -> ValidateArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ValidateArgs,
        }
        let file = file.into();
        Cli::parse_from(["svcplane-validate", "-f", file.to_str().unwrap()]).args
    }

    #[test]
    fn unreadable_input_exits_two() {
        let mut sink = Vec::new();
        let code = run_validate(&for_file("/nonexistent/svc.yaml"), &mut sink);
        assert_eq!(code, EXIT_UNREADABLE);
    }

    #[test]
    fn reads_files() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{ports: [{{port: 0}}]}}"
        )
        .unwrap();
        let mut out = Vec::new();
        let code = run_validate(&for_file(f.path()), &mut out);
        assert_eq!(code, EXIT_REJECTED);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("spec.ports[0].port: Invalid value: 0"));
    }

    /// `pkg/registry/core/service/storage/alloc.go initNodePorts`/`allocClusterIPs`: a chosen
    /// nodePort or ClusterIP outside the configured ranges is rejected with the allocator's
    /// message; `--service-node-port-range` and `--service-cluster-ip-range` move the ranges.
    #[test]
    fn allocation_range_checks_follow_the_range_flags() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: NodePort, clusterIP: 10.1.0.10, ports: [{{port: 80, nodePort: 8080}}]}}"
        )
        .unwrap();
        let run = |args: &ValidateArgs| {
            let mut out = Vec::new();
            let code = run_validate(args, &mut out);
            (code, String::from_utf8(out).unwrap())
        };
        let (code, out) = run(&for_file(f.path()));
        assert_eq!(code, EXIT_REJECTED, "{out}");
        assert!(
            out.contains("error: spec.clusterIPs: Invalid value: []string{\"10.1.0.10\"}: failed to allocate IP 10.1.0.10: the provided IP (10.1.0.10) is not in the valid range. The range of valid IPs is 10.96.0.0/12"),
            "{out}"
        );
        let mut args = for_file(f.path());
        args.service_cluster_ip_range = "10.1.0.0/16".into();
        let (code, out) = run(&args);
        assert_eq!(code, EXIT_REJECTED, "{out}");
        assert!(
            out.contains("error: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"),
            "{out}"
        );
        args.service_node_port_range = "8000-9000".into();
        let (code, out) = run(&args);
        assert_eq!(code, EXIT_ALLOWED, "{out}");
        args.service_node_port_range = "9000-8000".into();
        let (code, out) = run(&args);
        assert_eq!(code, EXIT_UNREADABLE, "{out}");
        assert!(out.contains("--service-node-port-range"), "{out}");
    }
}
