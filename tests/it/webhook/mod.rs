//! The validating admission webhook end to end.

mod admission;
mod pools;
