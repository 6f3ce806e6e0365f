//! svcplane's integration tests in one binary (issue 13, part 5): one module per area, each
//! with its shared support module. One binary links the whole stack once instead of once per
//! test file.
//!
//! All tests share this process and run in parallel (`--test-threads`, default the CPU count).
//! Tests that load the machine, measure the process or time themselves take [`heavy`] so that
//! no two of them overlap; see that module for which and why.
//!
//! Run one area or one file with a filter: `cargo test -p svcplane-tests --test it apiserver::`,
//! `cargo test -p svcplane-tests --test it vm::ipvs_table`.

mod heavy;

/// The traffic tool (`svcplane-nettest`, tests/src/bin) that cargo built for these tests: run on
/// the host, in network namespaces and in the VM guests.
const NETTEST: &str = env!("CARGO_BIN_EXE_svcplane-nettest");

mod allocation;
mod apiserver;
mod controllers;
mod dataplane;
mod helm;
mod hostile;
mod kubectl;
mod status_page;
mod vm;
mod webhook;
