//! Hostile clients and hostile inputs against the embedded API server (issue 15).

mod clients;
mod correctness;
mod support;
