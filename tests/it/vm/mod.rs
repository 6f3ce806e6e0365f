//! The IPVS dataplane on Debian's kernel in a qemu guest, and the guest harness itself (scripts/vm/README.md).

mod harness;
mod ipvs_agent;
mod ipvs_batches;
mod ipvs_graceful;
mod ipvs_smoke;
mod ipvs_table;
mod support;
