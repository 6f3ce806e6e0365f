//! The real-kernel harness fails loudly, with the reason, instead of hanging or skipping: a
//! missing cache, a guest that cannot boot, a guest that hangs, and a script that runs past its
//! timeout each end in a clear error or result within their time limits.

use std::time::{Duration, Instant};

use svcplane_tests::vm::{workspace_binary, Guest, VmError};

#[test]
fn an_unprepared_cache_is_an_error_that_says_how_to_prepare_it() {
    let empty = tempfile::tempdir().unwrap();
    let err = Guest::new()
        .cache_dir(empty.path())
        .script("true")
        .try_run()
        .unwrap_err();
    assert!(matches!(err, VmError::NotPrepared(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("scripts/install-test-deps.sh"),
        "{message}"
    );
    assert!(message.contains("vm.env"), "{message}");
}

#[test]
fn a_guest_whose_init_dies_reports_the_kernel_panic_from_the_console() {
    let _heavy = crate::heavy::heavy_blocking();
    // `true` as PID 1 exits at once: the kernel panics ("Attempted to kill init"), and with
    // panic=-1 the guest resets, so qemu ends without a result.
    let err = Guest::new()
        .kernel_arg("rdinit=/usr/bin/true")
        .script("true")
        .try_run()
        .unwrap_err();
    let VmError::NoResult { console, .. } = &err else {
        panic!("expected NoResult, got {err}");
    };
    assert!(console.contains("Kernel panic"), "{err}");
    assert!(console.contains("Attempted to kill init"), "{err}");
}

#[test]
fn a_hung_guest_is_killed_at_its_hard_limit() {
    let _heavy = crate::heavy::heavy_blocking();
    // A shell reading the empty console as PID 1 never ends; qemu is killed at timeout +
    // boot budget (2 s here), long before a normal boot would finish under emulation.
    let started = Instant::now();
    let err = Guest::new()
        .kernel_arg("rdinit=/usr/bin/cat")
        .script("true")
        .timeout(Duration::from_secs(1))
        .boot_budget(Duration::from_secs(1))
        .try_run()
        .unwrap_err();
    let elapsed = started.elapsed();
    let VmError::Hung {
        limit,
        script_started,
        ..
    } = &err
    else {
        panic!("expected Hung, got {err}");
    };
    assert_eq!(*limit, Duration::from_secs(2));
    assert!(!script_started);
    // Generous: the guest may first wait for a VM slot (two guests run at once per process).
    assert!(elapsed < Duration::from_secs(90), "took {elapsed:?}");
    assert!(err.to_string().contains("qemu was killed"), "{err}");
}

#[test]
fn the_host_built_svcplane_runs_in_the_guest_and_a_script_past_its_timeout_is_killed() {
    let _heavy = crate::heavy::heavy_blocking();
    let run = Guest::new()
        .binary(workspace_binary("svcplane"))
        .file_contents("/etc/demo/greeting", "hello from the host\n")
        .script(
            "section version\nsvcplane --version\nsection file\ncat /etc/demo/greeting\n\
             section wait\necho sleeping\nsleep 600\necho not reached\n",
        )
        .timeout(Duration::from_secs(3))
        .run();
    println!(
        "boot to script {:.2?}, boot to result {:.2?}",
        run.boot_time, run.total_time
    );
    assert!(run.timed_out, "{}", run.output);
    assert_eq!(run.exit_code, 137, "killed with SIGKILL");
    assert_eq!(
        run.section("version").as_deref(),
        Some(concat!("svcplane ", env!("CARGO_PKG_VERSION"), "\n"))
    );
    assert_eq!(
        run.section("file").as_deref(),
        Some("hello from the host\n")
    );
    assert_eq!(run.section("wait").as_deref(), Some("sleeping\n"));
}
