//! `svcplane-vm`: runs a shell script in the real-kernel test guest by hand, for debugging what a
//! VM test does (the same [`svcplane_tests::vm::Guest`] the tests use).
//!
//! ```text
//! cargo run -p svcplane-tests --bin svcplane-vm -- SCRIPT [--binary PATH]... \
//!     [--file HOST:GUEST]... [--timeout-s N] [--memory-mb N] [--kernel-arg ARG]...
//! ```
//!
//! Prints the script's output, then boot and total times; exits with the script's status.
//! `SVCPLANE_VM_VERBOSE=1` shows the console live, `SVCPLANE_VM_KEEP=1` keeps the initramfs and
//! a `run-qemu.sh` that boots it again.

use std::process::ExitCode;
use std::time::Duration;

use svcplane_tests::vm::Guest;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("svcplane-vm: {msg}");
            eprintln!(
                "usage: svcplane-vm SCRIPT [--binary PATH]... [--file HOST:GUEST]... \
                 [--timeout-s N] [--memory-mb N] [--kernel-arg ARG]..."
            );
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let mut guest = Guest::new();
    let mut script = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match arg.as_str() {
            "--binary" => guest = guest.binary(value("--binary")?),
            "--file" => {
                let v = value("--file")?;
                let (host, dest) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--file {v:?}: expected HOST:GUEST"))?;
                guest = guest.file(host, dest);
            }
            "--timeout-s" => {
                let v = value("--timeout-s")?;
                let secs = v.parse().map_err(|_| format!("--timeout-s {v:?}"))?;
                guest = guest.timeout(Duration::from_secs(secs));
            }
            "--kernel-arg" => guest = guest.kernel_arg(value("--kernel-arg")?),
            "--memory-mb" => {
                let v = value("--memory-mb")?;
                guest = guest.memory_mb(v.parse().map_err(|_| format!("--memory-mb {v:?}"))?);
            }
            path if !path.starts_with("--") && script.is_none() => {
                script = Some(
                    std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?,
                );
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let script = script.ok_or("missing SCRIPT")?;
    let run = guest.script(script).try_run().map_err(|e| e.to_string())?;
    print!("{}", run.output);
    eprintln!(
        "svcplane-vm: exit {} timed_out {} boot {:.2?} total {:.2?}",
        run.exit_code, run.timed_out, run.boot_time, run.total_time
    );
    Ok(ExitCode::from(u8::try_from(run.exit_code).unwrap_or(1)))
}
